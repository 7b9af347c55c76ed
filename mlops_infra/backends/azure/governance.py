"""Azure governance: the resource group, Key Vault and its customer-managed key, the workload
identities with their grants, and audit logs.

- One resource group holds the stack (protected: deleting it deletes everything in it).
- The vault uses Azure RBAC (no access policies), soft delete and purge protection (both
  irreversible, and required for the storage account's customer-managed key; a deleted vault's
  name stays reserved for the retention period: check() warns, clouds.azure.generation
  is the way out).
- The key is RSA 3072, rotated by Key Vault every key_rotation_days; new versions expire
  KEY_EXPIRY_GRACE_DAYS after that, so a version is never used past its rotation for long.
- Managed identities: serving and automation (IDENTITIES but training: no stack-wide work runs as
  it on Azure), one per model group (GovernanceOutputs.groups), plus one the storage account uses
  to reach its key (Key Vault Crypto Service Encryption User on the key only). serving may
  encrypt/decrypt with the key (Key Vault Crypto User on the key); automation gets no key access.
- Model groups (mlops_infra/access.py): each group's identity trains its models, runs their drift
  monitors and reads their data, through exactly one role assignment: the stack's custom "model
  data" role on the resource group, with a condition naming the group's containers and prefixes
  (governance_access.py says why one, and what the role holds). The role is defined once per stack,
  assignable only to the stack's resource group.
- Audit logs: the vault's AuditEvent log goes to a Log Analytics workspace; storage sends its
  blob logs to the same workspace (storage.py). Both diagnostic settings are kept by a default
  destroy, like the workspace. The stack that owns the subscription's singletons
  (governance.singletons: owned) also exports the subscription's activity log (who changed or
  deleted what, including this stack's resources) to its audit workspace: one diagnostic setting
  per subscription, so one stack owns it.
- Private networking (governance.network: private): the inbound network of the stack's private
  endpoints, created or brought (network.py), shared as PrivateNetwork; the vault refuses public
  network access (trusted Azure services still reach the key) and gets no private endpoint, as
  only Azure services use it.
- Azure ML (when the spec uses tracking, training, registry or serving): the identity the
  workspace and its container registry run as ("workspace"), with what it needs on the key
  (wrap/unwrap for the customer-managed key) and on the vault (Azure AI Administrator for the
  control plane, Key Vault Secrets Officer for the secrets the workspace keeps there, and on a
  private stack Azure AI Enterprise Network Connection Approver, so the workspace's managed
  network may connect its private endpoint to the vault). The workspace itself is built by the
  storage stage (storage_workspace.py explains why).

The identities the storage account and the workspace run as are not protected themselves: a
default destroy keeps them because the kept account and workspace need them (with their key
grants), and --delete-data deletes them with the rest.

Values only the cloud knows (the tenant) come from clouds.azure or, when absent, from the
getClientConfig invoke; the subscription is clouds.azure.subscription_id (required).

Handed on: GovernanceOutputs (neutral), AzureGovernance (what the later Azure stages need of
the key, the vault and the identities; it crosses to a split spec's model stacks) and
GovernanceGrants (grants that later stages' resources wait for; same stack only).

Checked here (validate): the data access conditions and role assignments of the model groups
(governance_access.py), and the names Azure keeps after `destroy --delete-data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.access import reader_groups
from mlops_infra.backends.azure import governance_access
from mlops_infra.backends.azure.common import (
    VAULT_DNS_SUFFIX,
    after,
    assignment_name,
    grant,
    grants_for,
    once_granted,
    share_waits,
)
from mlops_infra.backends.azure.naming import ACTIVITY_LOG_SETTING_NAME, AUDIT_SETTING_NAME, vault_name as vault_name_of
from mlops_infra.backends.azure.images import image_problems
from mlops_infra.backends.azure.naming import workspace_name
from mlops_infra.backends.azure.network import build_network, is_private
from mlops_infra.backends.azure.network import problems as network_problems
from mlops_infra.backends.azure.storage_workspace import (
    NETWORK_APPROVER,
    NETWORK_APPROVER_WHY,
    WORKSPACE_IDENTITY,
    uses_workspace,
)
from mlops_infra.facts import fact
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import IDENTITIES, GovernanceOutputs, Identity

if TYPE_CHECKING:
    import pulumi
    from pulumi_azure_native import managedidentity

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.naming import Namer
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

KEY_SIZE = 3072
KEY_EXPIRY_GRACE_DAYS = 30  # Key Vault wants expiry at least 7 days after the rotation time
VAULT_SOFT_DELETE_DAYS = 90  # the maximum; with purge protection, nobody can shorten it
AUDIT_RETENTION_DAYS = 365
STORAGE_IDENTITY = "storage-cmk"
# Stack-wide identities on Azure: training's work is its groups' (GovernanceOutputs.groups).
STACK_IDENTITIES = tuple(role for role in IDENTITIES if role != "training")
# The subscription's activity log: control-plane writes and deletes, security and policy events.
ACTIVITY_LOG_CATEGORIES = ("Administrative", "Security", "Policy")


@dataclass(frozen=True)
class WorkspaceIdentity:
    """The identity the Azure ML workspace and its registry run as (when the spec uses one)."""

    # Handed out once every grant exists: Azure checks the key and the vault when the registry
    # and the workspace are created.
    identity: Identity
    client_id: Any  # Container Registry names the identity that reaches its key by client id
    vault_id: Any


@dataclass(frozen=True)
class AzureGovernance:
    """What the later Azure stages need from governance besides GovernanceOutputs (values only)."""

    location: str
    subscription_id: str
    key_name: Any
    vault_uri: Any
    # Its id is handed out only once the identity holds its key grant: Azure checks the key when
    # the storage account is created, so the account must wait for the grant.
    storage_identity: Identity
    audit_workspace_id: Any = None  # with governance.audit_logs
    workspace: WorkspaceIdentity | None = None  # when the spec uses the Azure ML workspace


@dataclass(frozen=True)
class GovernanceGrants:
    """Grants that later stages' acting resources wait for (depends_on); same stack only."""

    serving: list[Any]  # the serving identity's key grant: online deployments wait for it
    groups: dict[str, Any]  # model group -> its one role assignment: the group's one-off job waits for it


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    namer = BACKEND.namer(spec, settings)
    found = governance_access.problems(spec, namer) + _reserved_names(spec, settings, namer)
    return found + network_problems(spec, settings) + image_problems(spec)


def _reserved_names(spec: SpecBase, settings: AzureSettings, namer: Namer) -> list[Problem]:
    """Names Azure keeps after `destroy --delete-data`: said before the first deploy."""
    vault = fact("azure", "reserved-names", "key-vault-retention-days")
    held = [
        f"key vault {vault_name_of(namer, settings)} for {vault.value} days (purge protection, which the storage "
        "account's customer-managed key requires)"
    ]
    sources = [vault.source]
    if uses_workspace(spec):
        workspace = fact("azure", "reserved-names", "ml-workspace-soft-delete-days")
        held.append(f"Azure ML workspace {workspace_name(namer, settings)} for {workspace.value} days (soft delete)")
        sources.append(workspace.source)
    return [
        finding(
            ("clouds", "azure"),
            f"after `destroy --delete-data`, Azure keeps the names of the {' and '.join(held)}; deploying this "
            f"stack again before then fails (sources: {', '.join(sources)})",
            hint=f"to deploy again sooner, set clouds.azure.generation: {settings.generation + 1}, which gives "
            "those new names",
            severity="warning",
        )
    ]


def build(ctx: StageContext) -> GovernanceOutputs:
    import pulumi
    from pulumi_azure_native import keyvault, monitor, operationalinsights, resources

    settings = ctx.settings
    governance = ctx.spec.governance
    location = settings.location
    tags = ctx.tags()
    private = governance.network == "private"
    tenant_id, subscription_id = _client_config(ctx)

    group_name = ctx.namer.name("azure.resource_group", location)
    group = resources.ResourceGroup(
        ctx.logical("resource-group"),
        resource_group_name=group_name,
        location=location,
        tags=tags,
        opts=ctx.opts(protect=True),
    )
    rg = after(group.tags, group_name)

    vault_name = vault_name_of(ctx.namer, settings)
    vault = keyvault.Vault(
        ctx.logical("vault"),
        vault_name=vault_name,
        resource_group_name=rg,
        location=location,
        properties=keyvault.VaultPropertiesArgs(
            tenant_id=tenant_id,
            sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
            enable_rbac_authorization=True,
            access_policies=[],
            enable_soft_delete=True,
            soft_delete_retention_in_days=VAULT_SOFT_DELETE_DAYS,
            enable_purge_protection=True,
            enabled_for_deployment=False,
            enabled_for_disk_encryption=False,
            enabled_for_template_deployment=False,
            # Disabled still lets trusted Azure services (the storage account's CMK access) through.
            public_network_access="Disabled" if private else "Enabled",
            network_acls=keyvault.NetworkRuleSetArgs(
                default_action=keyvault.NetworkRuleAction.DENY if private else keyvault.NetworkRuleAction.ALLOW,
                bypass=keyvault.NetworkRuleBypassOptions.AZURE_SERVICES,
            ),
        ),
        tags=tags,
        opts=ctx.opts(protect=True),
    )

    key_name = ctx.namer.name("azure.keyvault.key", "cmk")
    days = governance.key_rotation_days
    key = keyvault.Key(
        ctx.logical("key"),
        key_name=key_name,
        vault_name=after(vault.tags, vault_name),
        resource_group_name=rg,
        properties=keyvault.KeyPropertiesArgs(
            kty=keyvault.JsonWebKeyType.RSA,
            key_size=KEY_SIZE,
            key_ops=["encrypt", "decrypt", "wrapKey", "unwrapKey"],
            attributes=keyvault.KeyAttributesArgs(enabled=True),
            rotation_policy=keyvault.RotationPolicyArgs(
                attributes=keyvault.KeyRotationPolicyAttributesArgs(expiry_time=f"P{days + KEY_EXPIRY_GRACE_DAYS}D"),
                lifetime_actions=[
                    keyvault.LifetimeActionArgs(
                        action=keyvault.ActionArgs(type=keyvault.KeyRotationPolicyActionType.ROTATE),
                        trigger=keyvault.TriggerArgs(time_after_create=f"P{days}D"),
                    )
                ],
            ),
        ),
        tags=tags,
        opts=ctx.opts(protect=True),
    )
    # Versionless URIs: services that hold them follow rotations to the newest key version.
    vault_uri = f"https://{vault_name}.{VAULT_DNS_SUFFIX}/"
    key_uri = after(key.tags, f"{vault_uri}keys/{key_name}")

    identities: dict[str, Identity] = {}
    for role in STACK_IDENTITIES:
        identity = _identity(ctx, role, rg)
        identities[role] = Identity(role=role, id=identity.id, principal=identity.principal_id)
    serving = identities["serving"]
    key_grant = grant(
        ctx,
        role="Key Vault Crypto User",
        principal_id=serving.principal,
        principal="serving",
        scope=key.id,
        target="key",
        subscription_id=subscription_id,
        description="mlops-infra: serving encrypts and decrypts with the stack key",
    )

    # Not protected: the kept storage account needs it, so a default destroy keeps it anyway.
    cmk_identity = _identity(ctx, STORAGE_IDENTITY, rg)
    cmk_grant = grant(
        ctx,
        role="Key Vault Crypto Service Encryption User",
        principal_id=cmk_identity.principal_id,
        principal=STORAGE_IDENTITY,
        scope=key.id,
        target="key",
        subscription_id=subscription_id,
        description="mlops-infra: the storage account wraps its account key with the stack key",
    )

    workspace_identity = _workspace_identity(ctx, rg, key, vault, subscription_id) if uses_workspace(ctx.spec) else None

    workspace_id = None
    if governance.audit_logs:
        workspace = operationalinsights.Workspace(
            ctx.logical("audit-workspace"),
            workspace_name=ctx.namer.name("azure.loganalytics.workspace", "audit"),
            resource_group_name=rg,
            location=location,
            sku=operationalinsights.WorkspaceSkuArgs(name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018),
            retention_in_days=AUDIT_RETENTION_DAYS,
            features=operationalinsights.WorkspaceFeaturesArgs(disable_local_auth=True),
            tags=tags,
            opts=ctx.opts(protect=True),
        )
        workspace_id = workspace.id
        monitor.DiagnosticSetting(
            ctx.logical("vault-audit"),
            name=AUDIT_SETTING_NAME,
            resource_uri=vault.id,
            workspace_id=workspace_id,
            logs=[monitor.DiagnosticsLogSettingsArgs(category="AuditEvent", enabled=True)],
            opts=ctx.opts(protect=True),
        )
        if governance.singletons == "owned":
            monitor.SubscriptionDiagnosticSetting(
                ctx.logical("activity-log"),
                name=ACTIVITY_LOG_SETTING_NAME,
                workspace_id=workspace_id,
                logs=[
                    monitor.SubscriptionLogSettingsArgs(category=category, enabled=True)
                    for category in ACTIVITY_LOG_CATEGORIES
                ],
                opts=ctx.opts(protect=True),
            )

    rg_id = after(group.tags, f"/subscriptions/{subscription_id}/resourceGroups/{group_name}")
    groups, group_grants = _groups(ctx, rg, rg_id, subscription_id)
    if private:
        ctx.share(build_network(ctx, rg=rg))

    ctx.share(
        AzureGovernance(
            location=location,
            subscription_id=subscription_id,
            key_name=after(key.tags, key_name),
            vault_uri=after(key.tags, vault_uri),
            storage_identity=Identity(
                role=STORAGE_IDENTITY,
                id=once_granted(cmk_identity.id, [cmk_grant]),
                principal=cmk_identity.principal_id,
            ),
            audit_workspace_id=workspace_id,
            workspace=workspace_identity,
        )
    )
    share_waits(ctx, GovernanceGrants(serving=[key_grant], groups=group_grants))
    return GovernanceOutputs(key_id=key_uri, identities=identities, groups=groups, scope=rg)


def _workspace_identity(ctx: StageContext, rg: Any, key: Any, vault: Any, subscription_id: Any) -> WorkspaceIdentity:
    """The Azure ML workspace's identity and its grants on the key and the vault.

    A user-assigned identity, not the workspace's system identity: the customer-managed key is
    checked when the workspace is created, so the identity must exist and hold its key grant
    before the workspace does. Azure ML documents Contributor (+ Key Vault Administrator) for such
    an identity; we grant the narrower Azure AI Administrator, the role Azure ML itself gives
    workspace identities, on the vault only, and only the secrets part of the data plane.
    """
    import pulumi

    identity = _identity(ctx, WORKSPACE_IDENTITY, rg)
    needs = [
        ("Key Vault Crypto Service Encryption User", key.id, "key",
         "the ML workspace and its registry wrap their data keys with the stack key"),
        ("Azure AI Administrator", vault.id, "vault", "the ML workspace manages its associated key vault"),
        ("Key Vault Secrets Officer", vault.id, "vault", "the ML workspace keeps its connection secrets in the vault"),
    ]
    if is_private(ctx.spec):
        needs.append((NETWORK_APPROVER, vault.id, "vault", NETWORK_APPROVER_WHY.format(what="key vault")))
    grants = grants_for(
        ctx, principal_id=identity.principal_id, principal=WORKSPACE_IDENTITY, subscription_id=subscription_id, needs=needs
    )
    return WorkspaceIdentity(
        identity=Identity(
            role=WORKSPACE_IDENTITY,
            id=once_granted(identity.id, grants),
            principal=identity.principal_id,
        ),
        client_id=identity.client_id,
        vault_id=vault.id,
    )


def _identity(ctx: StageContext, role: str, rg: Any, *parts: str) -> managedidentity.UserAssignedIdentity:
    from pulumi_azure_native import managedidentity

    return managedidentity.UserAssignedIdentity(
        ctx.logical("identity", role, *parts),
        resource_name_=ctx.namer.name("azure.managed_identity", role, *parts),
        resource_group_name=rg,
        location=ctx.settings.location,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def _groups(
    ctx: StageContext, rg: Any, rg_id: Any, subscription_id: str
) -> tuple[dict[str, Identity], dict[str, Any]]:
    """One identity per model group, each with its one role assignment (governance_access.py).

    Returns the identities and the assignments, by group.
    """
    from pulumi_azure_native import authorization

    accesses = governance_access.groups_access(ctx.spec, ctx.namer)
    if not accesses:
        return {}, {}
    role_id = _model_data_role(ctx, rg_id, subscription_id)
    members = reader_groups(ctx.spec)
    groups: dict[str, Identity] = {}
    assignments: dict[str, Any] = {}
    for access in accesses:
        identity = _identity(ctx, governance_access.GROUP_IDENTITY, rg, access.group)
        models = ", ".join(members[access.group].models)
        assignment = authorization.RoleAssignment(
            ctx.logical("grant", governance_access.GROUP_IDENTITY, access.group),
            role_assignment_name=assignment_name(ctx.namer.scope, ctx.spec.project, ctx.spec.environment, "group", access.group),
            principal_id=identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role_id,
            scope=rg_id,
            condition=access.condition,
            condition_version="2.0",
            description=f"mlops-infra: model group {access.group} trains, monitors and reads the data of {models}"[:512],
            opts=ctx.opts(delete_before_replace=True),
        )
        # The group's training job waits for it (training.py); model stacks find it deployed.
        assignments[access.group] = assignment
        groups[access.group] = Identity(
            role=f"{governance_access.GROUP_IDENTITY}-{access.group}", id=identity.id, principal=identity.principal_id
        )
    return groups, assignments


def _model_data_role(ctx: StageContext, rg_id: Any, subscription_id: str) -> pulumi.Output[str]:
    """The stack's custom role for its model groups, assignable to its resource group only."""
    import pulumi
    from pulumi_azure_native import authorization

    spec = ctx.spec
    guid = assignment_name(ctx.namer.scope, spec.project, spec.environment, "role-definition", "model-data")
    role = authorization.RoleDefinition(
        ctx.logical("role", "model-data"),
        role_definition_id=guid,
        role_name=f"mlops-infra model data {spec.project}-{spec.environment} {guid[:8]}",
        description=(
            f"mlops-infra: what a model group of {spec.project} ({spec.environment}) needs: its blobs (each "
            "assignment's condition names them), image pulls, metrics, the stack key"
        ),
        role_type="CustomRole",
        scope=f"/subscriptions/{subscription_id}",
        assignable_scopes=[rg_id],
        permissions=[
            authorization.PermissionArgs(
                actions=list(governance_access.ROLE_ACTIONS), data_actions=list(governance_access.ROLE_DATA_ACTIONS)
            )
        ],
        opts=ctx.opts(),
    )
    return pulumi.Output.concat(
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/",
        after(role.role_name, guid),
    )


def _client_config(ctx: StageContext) -> tuple[Any, str]:
    """(tenant id, subscription id): the tenant from clouds.azure, else from the credentials in use."""
    import pulumi
    from pulumi_azure_native import authorization

    settings = ctx.settings
    if settings.tenant_id:
        return settings.tenant_id, settings.subscription_id
    config = authorization.get_client_config_output(
        opts=pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent)
    )
    return config.tenant_id, settings.subscription_id
