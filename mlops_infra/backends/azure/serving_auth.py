"""serving.auth: key on Azure: the online endpoint's keys, kept in the stack's Key Vault.

auth: iam (the default) is Microsoft Entra token auth (authMode AADToken): callers need the
workspace's onlineEndpoints/score/action permission. auth: key sets authMode Key: Azure ML
generates a primary and a secondary key when it creates the endpoint (the spec never holds a
key, and neither does the plan).

How the keys get into the vault: at each `up`, Pulumi reads them with the endpoint's listKeys
action (OnlineEndpoints_ListKeys, as the deploying identity) and writes them as two Key Vault
secrets of the stack's vault, <endpoint>-primary-key and <endpoint>-secondary-key, through the
ARM control plane (Microsoft.KeyVault/vaults/secrets/write: no data-plane access or network
path to the vault is needed, so private stacks work too). The values are Pulumi secrets:
encrypted in the stack's state, shown as "[secret]" or "(known after apply)" in plans. Keys
regenerated outside mlops-infra (`az ml online-endpoint regenerate-keys`) reach the vault at the
next `up`. Clients read them with Key Vault Secrets User on the secret (granted outside
mlops-infra: the clients are not in the spec) and send `Authorization: Bearer <key>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.governance import AzureGovernance
from mlops_infra.backends.azure.naming import vault_name
from mlops_infra.spec.models import Model
from mlops_infra.stages.governance import GovernanceOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

KEYS = ("primary", "secondary")
CONTENT_TYPE = "azureml-online-endpoint-key"


def secret_name(endpoint: str, which: str) -> str:
    """The vault secret holding one of an endpoint's keys (endpoint names are at most 32 characters)."""
    return f"{endpoint}-{which}-key"


def keys_in_vault(ctx: StageContext, model: Model, workspace: Any, endpoint: Any) -> list[Any]:
    """The endpoint's two keys as secrets of the stack's vault; `endpoint` is its name, once it exists."""
    import pulumi
    from pulumi_azure_native import keyvault
    from pulumi_azure_native import machinelearningservices as ml

    endpoint_name = ctx.namer.name("azure.ml.online_endpoint", model.name)
    vault = vault_name(ctx.namer, ctx.settings)
    # The vault's name once governance made it (its URI is handed out after the key exists).
    vault_ref = ctx.upstream.of(AzureGovernance).vault_uri.apply(lambda _: vault)
    keys = ml.list_online_endpoint_keys_output(
        endpoint_name=endpoint,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        opts=pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent),
    )
    values = {"primary": keys.primary_key, "secondary": keys.secondary_key}
    return [
        keyvault.Secret(
            ctx.logical("key", which, model.name),
            secret_name=secret_name(endpoint_name, which),
            vault_name=vault_ref,
            resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
            properties=keyvault.SecretPropertiesArgs(
                value=pulumi.Output.secret(values[which]),
                content_type=CONTENT_TYPE,
                attributes=keyvault.SecretAttributesArgs(enabled=True),
            ),
            tags=ctx.tags(),
            opts=ctx.opts(),
        )
        for which in KEYS
    ]
