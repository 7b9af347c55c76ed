"""Shared by the Azure stage modules: role assignments and wiring of names we choose.

Importing it loads no SDK (validate imports the stage modules for their checks); the functions
that declare resources import pulumi and azure-native when called.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pulumi
    from pulumi_azure_native import authorization

    from mlops_infra.backends.context import StageContext

# Built-in role definition GUIDs (the same in every Azure cloud and tenant).
# Source: learn.microsoft.com/azure/role-based-access-control/built-in-roles (security and storage pages).
ROLES: dict[str, str] = {
    # keys/read, wrapKey, unwrapKey: what a service needs for customer-managed-key encryption
    "Key Vault Crypto Service Encryption User": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    # cryptographic operations with keys (encrypt, decrypt, wrap, unwrap, sign, verify); no key management
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
    # read and list blobs and containers
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    # read, write and delete blobs and containers
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    # read, write and delete secrets (data plane only; no key or vault management)
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    # Source for the three below: built-in-roles, "AI + machine learning" and "Containers" tables.
    # The control-plane role Azure ML gives a workspace's own identity since 11/2024, in place of
    # Contributor ("minimum permissions needed for the managed identity to perform its tasks").
    "Azure AI Administrator": "b78c5d69-af96-48a3-bf8d-a8b4d589de94",
    # write metrics (MLflow runs) to a workspace, nothing else in it
    "AzureML Metrics Writer (preview)": "635dd51f-9968-44d3-b7fb-6d9a6bd613ae",
    # pull images from a container registry
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    # approve private endpoint connections to AI dependency resources (read them, approve, no data):
    # what a workspace running as a user-assigned identity needs for its managed network's private
    # endpoints (built-in-roles, "AI + machine learning"; how-to-managed-network, read 2026-12-06)
    "Azure AI Enterprise Network Connection Approver": "b556d68e-0be0-4f35-a333-ad7ee1ce17ea",
}

# Seeds every role assignment name: assignment names are GUIDs, derived (never random) so that
# re-running a program yields the same names.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "mlops-infra:azure:role-assignment")

# DNS suffixes of the Azure public cloud, the only cloud clouds.azure targets today.
VAULT_DNS_SUFFIX = "vault.azure.net"
BLOB_DNS_SUFFIX = "blob.core.windows.net"



def assignment_name(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def role_definition_id(subscription_id: Any, role: str) -> pulumi.Output[str]:
    import pulumi

    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", ROLES[role]
    )


def grant(
    ctx: StageContext,
    *,
    role: str,
    principal_id: Any,
    principal: str,
    scope: Any,
    target: str,
    subscription_id: Any,
    description: str,
    condition: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> authorization.RoleAssignment:
    """Assign built-in `role` to a managed identity on `scope`.

    `principal` (an identity role such as "training") and `target` (what `scope` is, in words
    stable across runs: "key", "bucket/raw") name the assignment, logically and physically.
    The GUID name is fixed, so a replacement must delete the old assignment first.
    """
    import pulumi
    from pulumi_azure_native import authorization

    slug = "-".join(role.lower().replace("(", " ").replace(")", " ").split())
    seed = (ctx.namer.scope, ctx.spec.project, ctx.spec.environment, target, ROLES[role], principal)
    options = ctx.opts(delete_before_replace=True)
    if opts is not None:
        options = pulumi.ResourceOptions.merge(options, opts)
    extra: dict[str, Any] = {}
    if condition is not None:
        extra = {"condition": condition, "condition_version": "2.0"}
    return authorization.RoleAssignment(
        ctx.logical("grant", principal, slug, *target.split("/")),
        role_assignment_name=assignment_name(*seed),
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        description=description,
        opts=options,
        **extra,
    )


def after(echo: pulumi.Output[Any], value: str) -> pulumi.Output[str]:
    """`value` (a name we chose) once the resource behind `echo` exists.

    `echo` is one of the resource's outputs that repeats an input (its location, say). The
    result is known while planning, unlike the resource's computed `name`, yet consumers
    still depend on the resource and wait for it during deployment.
    """
    return echo.apply(lambda _: value)


def share_waits(ctx: StageContext, value: Any) -> None:
    """Hand later stages of this stack resources their acting resources wait for (depends_on).

    Same stack only: resources never cross stacks. A split spec's shared stack builds no model
    resources, which are what waits for these, and its model stacks find them deployed.
    """
    if ctx.stack_wide and ctx.part.name:
        return
    ctx.share(value)


def grants_for(
    ctx: StageContext,
    *,
    principal_id: Any,
    principal: str,
    subscription_id: Any,
    needs: list[tuple[str, Any, str, str]],
) -> list[authorization.RoleAssignment]:
    """One built-in role assignment per (role, scope, target, why) in `needs`, for one identity."""
    return [
        grant(
            ctx,
            role=role,
            principal_id=principal_id,
            principal=principal,
            scope=scope,
            target=target,
            subscription_id=subscription_id,
            description=f"mlops-infra: {why}",
        )
        for role, scope, target, why in needs
    ]


def once_granted(identity_id: Any, grants: list[Any]) -> pulumi.Output[Any]:
    """`identity_id` once every one of `grants` exists.

    Azure checks an identity's access when a resource that runs as it is created (a key when a
    storage account or workspace is created): such resources take this id, and so wait.
    """
    import pulumi

    return pulumi.Output.all(identity_id, *(g.principal_type for g in grants)).apply(lambda values: values[0])


def custom_role(
    ctx: StageContext, *, slug: str, words: str, description: str, actions: tuple[str, ...], scope: Any, subscription_id: Any
) -> tuple[str, pulumi.Output[str]]:
    """A custom role of the stack (explicit `actions`, assignable at `scope` only): (its GUID, its id).

    The id is built from names (known while planning), once the definition exists.
    """
    import pulumi
    from pulumi_azure_native import authorization

    spec = ctx.spec
    guid = assignment_name(ctx.namer.scope, spec.project, spec.environment, "role-definition", slug)
    role = authorization.RoleDefinition(
        ctx.logical("role", slug),
        role_definition_id=guid,
        role_name=f"mlops-infra {words} {spec.project}-{spec.environment} {guid[:8]}",
        description=description,
        role_type="CustomRole",
        scope=pulumi.Output.concat("/subscriptions/", subscription_id),
        assignable_scopes=[scope],
        permissions=[authorization.PermissionArgs(actions=list(actions))],
        opts=ctx.opts(),
    )
    role_id = pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", after(role.role_name, guid)
    )
    return guid, role_id


def assign_custom(
    ctx: StageContext,
    *,
    role: tuple[str, Any],
    slug: str,
    principal: str,
    principal_id: Any,
    scope: Any,
    target: str,
    description: str,
) -> authorization.RoleAssignment:
    """Assign a custom_role() to a managed identity on `scope` (`target` names the scope in words)."""
    from pulumi_azure_native import authorization

    guid, role_id = role
    spec = ctx.spec
    return authorization.RoleAssignment(
        ctx.logical("grant", principal, slug, target),
        role_assignment_name=assignment_name(ctx.namer.scope, spec.project, spec.environment, target, guid, principal),
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=role_id,
        scope=scope,
        description=description,
        opts=ctx.opts(delete_before_replace=True),
    )


def identity_workflow(
    ctx: StageContext,
    *,
    key: str,
    name: str,
    identity_id: Any,
    definition: Any,
    parameters: dict[str, tuple[str, Any]],
    depends_on: list[Any],
) -> Any:
    """An enabled Logic App in the stack's resource group running as one user-assigned identity;
    `parameters`: name -> (its logic.ParameterType, value). Its first run waits for `depends_on`."""
    from pulumi_azure_native import logic

    from mlops_infra.stages.governance import GovernanceOutputs

    return logic.Workflow(
        ctx.logical("workflow", key),
        workflow_name=name,
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        location=ctx.settings.location,
        state=logic.WorkflowState.ENABLED,
        identity=logic.ManagedServiceIdentityArgs(
            type=logic.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=identity_id.apply(lambda found: [found]),
        ),
        definition=definition,
        parameters={
            param: logic.WorkflowParameterArgs(type=kind, value=value) for param, (kind, value) in parameters.items()
        },
        tags=ctx.tags(),
        opts=ctx.opts(depends_on=depends_on or None),
    )
