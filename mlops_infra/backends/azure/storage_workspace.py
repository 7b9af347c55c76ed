"""The stack's Azure ML workspace and what it is wired to; built by the storage stage.

One workspace per stack serves tracking (it is the MLflow server), training (its compute
clusters, environments, components and jobs), the registry (its model containers) and, later,
serving (its online endpoints). It exists whenever the spec uses any of these four stages.

Where it is declared, and why:
- Not in one of those four stages: a resource's URN names the stage component that holds it, so
  a workspace declared by "training" would move, and be deleted and re-created with every run,
  model and endpoint in it, when the spec turns training off but keeps tracking. It belongs to a
  stage that is always built.
- Not in governance, although governance is always built too: the workspace stores its metadata
  in the stack's storage account, which Azure checks when the workspace is created, and that
  account is declared by the storage stage, which runs after governance. A workspace declared
  in governance could not depend on it and would race it on the first deployment.
- So in storage (always built, right after the account), with the identity, key grant and vault
  grants it needs coming from governance (governance.py). Storage shares it with the later
  stages, which read it with `ctx.upstream.of(WorkspaceRef)` (or `.find`, when a stage may run
  without a workspace).

What is wired to it:
- storage account: the stack's own (CMK, no shared keys): system datastores use identities
  (systemDatastoresAuthMode Identity), never account keys;
- key vault: the governance vault; customer-managed key: the governance key (versionless, so
  rotations are followed), reached through the user-assigned "workspace" identity, which is also
  the workspace's primary identity; hbiWorkspace on (encrypted, wiped scratch disks on compute
  nodes, less diagnostic data);
- Application Insights: workspace-based, on a Log Analytics workspace of its own;
- container registry: Premium, because the spec's governance always asks for a customer-managed
  key (Basic and Standard registries cannot use one) and because only Premium can refuse public
  network access; admin user and anonymous pull off;
- network: governance.network private turns public access off on the workspace and the registry
  and gives the workspace a managed virtual network that allows only approved outbound traffic
  (Azure ML adds the private endpoints to the workspace, storage, vault and registry, and the
  service tags it needs; images from other registries are copied into the stack's registry:
  images.py), provisioned with the workspace (online deployments need it in place) and, when a
  model monitors drift, with serverless Spark (arm_actions.ManagedNetworkProvision). The workspace
  identity may approve those private endpoints (Azure AI Enterprise Network Connection Approver on
  the account, registry and vault only). Clients reach the workspace (and every online endpoint's
  scoring), the blobs and the registry through private endpoints in the stack's inbound network
  (network.py). Public leaves everything reachable.
- an identity-based datastore for the artifact container: job outputs are written through it.

The workspace identity gets Azure AI Administrator on each associated resource (the role Azure ML
gives workspace identities since 11/2024, narrower than the Contributor its docs list for
user-assigned identities), never on the resource group.

Quotas (validate, through storage.check): every trained model has a compute cluster of its own,
running as its group's identity: a node can get a token for every identity attached to its
cluster, so clusters are never shared across groups, and one per model keeps each model's VM size
and node count its own. Clusters scale to zero, so they cost nothing idle; what they do take is
Azure ML's total compute limit per region (clusters, compute instances and online deployments
together), checked here with the endpoint and deployment limits (facts/ml-quotas.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.common import after, grants_for, once_granted
from mlops_infra.backends.azure.naming import workspace_name as workspace_name_of
from mlops_infra.facts import fact
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.backends.azure.governance import AzureGovernance
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.stages.governance import GovernanceOutputs
    from mlops_infra.spec.problems import Problem

CLOUD = "azure"
ML_STAGES = ("tracking", "training", "registry", "serving", "data_prep", "workspaces", "features")  # stages that live in the workspace

WORKSPACE_IDENTITY = "workspace"  # governance identity the workspace and its registry run as
# What lets the workspace's managed network connect its private endpoints (private stacks only).
NETWORK_APPROVER = "Azure AI Enterprise Network Connection Approver"
NETWORK_APPROVER_WHY = "the ML workspace's managed network connects its private endpoint to the {what}"
LOG_RETENTION_DAYS = 90  # Application Insights data is retained free for 90 days
MLFLOW_HOST = "api.azureml.ms"  # Azure public cloud: <location>.api.azureml.ms serves MLflow


@dataclass(frozen=True)
class WorkspaceRef:
    """What the workspace stages need: names we chose (known while planning) and ids."""

    name: Any  # workspace name, once the workspace exists
    id: Any  # ARM id (known after apply)
    internal_id: Any  # the workspace's own GUID (names its default blob container; known after apply)
    resource_group: Any
    location: str
    subscription_id: Any
    tracking_uri: Any  # azureml://<location>.api.azureml.ms/mlflow/v1.0/<workspace ARM path>
    registry_id: Any  # the container registry's ARM id
    registry_name: str  # its name (known while planning): <name>.azurecr.io is its login server
    account_id: Any  # the storage account's ARM id
    artifacts_datastore: Any  # datastore name of the artifact container, once it exists
    # The workspace's Log Analytics workspace and Application Insights component: the monitoring
    # stage sends endpoint traffic logs there and hangs its dashboard on them.
    logs_id: Any = None  # Log Analytics workspace ARM id (known after apply)
    logs_name: str = ""  # its name (known while planning)
    insights_id: Any = None  # Application Insights component ARM id (known after apply)


def tracking_uri(location: str, subscription_id: Any, resource_group: Any, name: Any) -> pulumi.Output[str]:
    """The workspace's MLflow tracking URI, built from names (Workspace.mlFlowTrackingUri once deployed)."""
    import pulumi

    return pulumi.Output.concat(
        f"azureml://{location}.{MLFLOW_HOST}/mlflow/v1.0/subscriptions/",
        subscription_id,
        "/resourceGroups/",
        resource_group,
        "/providers/Microsoft.MachineLearningServices/workspaces/",
        name,
    )


def uses_workspace(spec: SpecBase) -> bool:
    """True when the spec uses a stage that lives in the Azure ML workspace."""
    from mlops_infra.stages import all_stages

    return any(stage.used(spec) for stage in all_stages() if stage.name in ML_STAGES)


@dataclass(frozen=True)
class MlUsage:
    clusters: int  # one compute cluster per trained model, one per model's data preparation
    endpoints: int  # one online endpoint per served model
    deployments: int  # one deployment per served model (two while a canary or a new release rolls out)
    instances: int = 0  # one compute instance per workspaces user

    @property
    def computes(self) -> int:
        return self.clusters + self.deployments + self.instances


def ml_usage(spec: SpecBase) -> MlUsage:
    served = sum(1 for m in spec.models if m.serving is not None)
    clusters = sum(1 for m in spec.models if m.training is not None) + sum(1 for m in spec.models if m.data_prep)
    instances = len(spec.workspaces.users) if spec.workspaces else 0
    return MlUsage(clusters=clusters, endpoints=served, deployments=served, instances=instances)


def quota_problems(spec: SpecBase, settings: Any) -> list[Problem]:
    usage = ml_usage(spec)
    where = f"in {settings.location}"
    found = []
    default = fact(CLOUD, "ml-quotas", "computes-per-region")
    most = fact(CLOUD, "ml-quotas", "computes-per-region-max")
    computes = (
        f"this stack runs {usage.computes} Azure ML computes {where} ({usage.clusters} compute clusters, "
        f"{usage.deployments} online deployments"
        + (f", {usage.instances} compute instances" if usage.instances else "")
        + ", more while a release rolls out)"
    )
    if usage.computes > most.value:
        found.append(
            finding(
                ("models",),
                f"{computes}, and Azure allows at most {most.cite()}",
                hint="spread the models over stacks in several regions or subscriptions",
                value=usage.computes,
            )
        )
    elif usage.computes > default.value:
        found.append(
            finding(
                ("models",),
                f"{computes}, above Azure's default total compute limit per region, {default.cite()}",
                hint=f"request an increase of the Azure Machine Learning total compute limit {where} (up to "
                f"{most.value}) before deploying",
                value=usage.computes,
                severity="warning",
            )
        )
    for key, count, what in (
        ("endpoints-per-region", usage.endpoints, "online endpoints"),
        ("deployments-per-region", usage.deployments, "online deployments"),
    ):
        limit = fact(CLOUD, "ml-quotas", key)
        if count > limit.value:
            found.append(
                finding(
                    ("models",),
                    f"this stack serves from {count} {what} {where}, above Azure's default of {limit.cite()}",
                    hint="request an exception (quota type Machine Learning Service: Endpoint Limits) before "
                    "deploying",
                    value=count,
                    severity="warning",
                )
            )
    return found


def build_workspace(
    ctx: StageContext,
    *,
    governance: GovernanceOutputs,
    azure: AzureGovernance,
    account: Any,
    account_name: pulumi.Input[str],
    artifacts: Any,
) -> WorkspaceRef:
    """Declare the workspace and its associated resources (called by storage.build).

    `account` is the stack's StorageAccount, `artifacts` the artifact BucketRef.
    """
    import pulumi
    from pulumi_azure_native import applicationinsights, containerregistry, operationalinsights
    from pulumi_azure_native import machinelearningservices as ml

    assert azure.workspace is not None  # governance makes the identity whenever the spec uses the workspace
    rg = governance.scope
    location = ctx.settings.location
    subscription_id = azure.subscription_id
    private = ctx.spec.governance.network == "private"
    tags = ctx.tags()
    identity = azure.workspace.identity
    public = "Disabled" if private else "Enabled"

    logs_name = ctx.namer.name("azure.loganalytics.workspace", "ml")
    logs = operationalinsights.Workspace(
        ctx.logical("logs"),
        workspace_name=logs_name,
        resource_group_name=rg,
        location=location,
        sku=operationalinsights.WorkspaceSkuArgs(name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018),
        retention_in_days=LOG_RETENTION_DAYS,
        features=operationalinsights.WorkspaceFeaturesArgs(disable_local_auth=True),
        tags=tags,
        opts=ctx.opts(protect=True),
    )
    insights = applicationinsights.Component(
        ctx.logical("insights"),
        # The name rules table has no Application Insights entry; its rule (1-260 characters, no
        # %&\\?/ or control characters, no trailing dot or space) accepts every Log Analytics name.
        resource_name_=ctx.namer.name("azure.loganalytics.workspace", "ml-insights"),
        resource_group_name=rg,
        location=location,
        kind="web",
        application_type=applicationinsights.ApplicationType.WEB,
        workspace_resource_id=logs.id,
        ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
        # Ingestion stays reachable: without a private link scope, computes and endpoints could not
        # send telemetry. Queries follow governance.network.
        public_network_access_for_ingestion=applicationinsights.PublicNetworkAccessType.ENABLED,
        public_network_access_for_query=public,
        tags=tags,
        opts=ctx.opts(),
    )

    registry_name = ctx.namer.name("azure.acr.registry")
    registry = containerregistry.Registry(
        ctx.logical("registry"),
        registry_name=registry_name,
        resource_group_name=rg,
        location=location,
        sku=containerregistry.SkuArgs(name=containerregistry.SkuName.PREMIUM),
        admin_user_enabled=False,
        anonymous_pull_enabled=False,
        public_network_access=public,
        network_rule_bypass_options=containerregistry.NetworkRuleBypassOptions.AZURE_SERVICES,
        network_rule_set=containerregistry.NetworkRuleSetArgs(default_action="Deny" if private else "Allow"),
        identity=containerregistry.IdentityPropertiesArgs(
            type=containerregistry.ResourceIdentityType.USER_ASSIGNED,
            # A map keyed by the identity's id: one Output for the whole map (see storage.py).
            user_assigned_identities=identity.id.apply(lambda identity_id: {identity_id: {}}),
        ),
        encryption=containerregistry.EncryptionPropertyArgs(
            status=containerregistry.EncryptionStatus.ENABLED,
            key_vault_properties=containerregistry.KeyVaultPropertiesArgs(
                key_identifier=governance.key_id, identity=azure.workspace.client_id
            ),
        ),
        # Export needs public access; a private registry also refuses to export images.
        policies=containerregistry.PoliciesArgs(
            export_policy=containerregistry.ExportPolicyArgs(status="disabled" if private else "enabled")
        ),
        tags=tags,
        opts=ctx.opts(protect=True),
    )

    associated = ((account.id, "account", "storage account"), (registry.id, "registry", "container registry"))
    needs = [
        ("Azure AI Administrator", scope, target, f"the ML workspace manages its associated {what}")
        for scope, target, what in (*associated, (insights.id, "insights", "Application Insights"))
    ]
    if private:
        needs += [(NETWORK_APPROVER, scope, target, NETWORK_APPROVER_WHY.format(what=what)) for scope, target, what in associated]
    grants = grants_for(
        ctx, principal_id=identity.principal, principal=WORKSPACE_IDENTITY, subscription_id=subscription_id, needs=needs
    )
    # The workspace waits for the grants that let its identity reach what it is wired to.
    identity_id = once_granted(identity.id, grants)

    name = workspace_name_of(ctx.namer, ctx.settings)
    workspace = ml.Workspace(
        ctx.logical("workspace"),
        workspace_name=name,
        resource_group_name=rg,
        location=location,
        friendly_name=f"{ctx.spec.project} {ctx.spec.environment}",
        description=f"mlops-infra: experiments, training and models of {ctx.spec.project} ({ctx.spec.environment})",
        kind="Default",
        sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
        storage_account=account.id,
        key_vault=azure.workspace.vault_id,
        application_insights=insights.id,
        container_registry=registry.id,
        **secured_workspace_args(
            identity_id=identity_id, key_id=governance.key_id, vault_id=azure.workspace.vault_id, private=private
        ),
        # Online deployments need the managed network in place: provisioned with the workspace.
        provision_network_now=True if private else None,
        v1_legacy_mode=False,
        tags=tags,
        opts=ctx.opts(protect=True),
    )
    workspace_name = after(workspace.tags, name)
    if private:
        _private_access(ctx, rg=rg, workspace=workspace, registry=registry)

    datastore_name = ctx.namer.name("azure.ml.datastore", "artifacts")
    datastore = identity_datastore(
        ctx,
        key="artifacts",
        name=datastore_name,
        rg=rg,
        workspace_name=workspace_name,
        account_name=account_name,
        container=artifacts.physical,
        subscription_id=subscription_id,
        description="mlops-infra: the stack's artifact bucket (models, checkpoints)",
    )

    return WorkspaceRef(
        name=workspace_name,
        id=workspace.id,
        internal_id=workspace.workspace_id,
        resource_group=rg,
        location=location,
        subscription_id=subscription_id,
        tracking_uri=tracking_uri(location, subscription_id, rg, workspace_name),
        registry_id=registry.id,
        registry_name=registry_name,
        account_id=account.id,
        artifacts_datastore=after(datastore.name, datastore_name),
        logs_id=logs.id,
        logs_name=logs_name,
        insights_id=insights.id,
    )


def secured_workspace_args(*, identity_id: Any, key_id: Any, vault_id: Any, private: bool) -> dict[str, Any]:
    """What every Azure ML workspace of the stack shares: runs as `identity_id` (user-assigned), the
    stack key (customer-managed, versionless), hbiWorkspace, identity-based system datastores, and
    with `private` no public access and a managed network that allows only approved outbound traffic."""
    from pulumi_azure_native import machinelearningservices as ml

    return {
        "identity": ml.ManagedServiceIdentityArgs(
            type=ml.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=identity_id.apply(lambda value: [value]),
        ),
        "primary_user_assigned_identity": identity_id,
        "encryption": ml.EncryptionPropertyArgs(
            status=ml.EncryptionStatus.ENABLED,
            key_vault_properties=ml.KeyVaultPropertiesArgs(key_identifier=key_id, key_vault_arm_id=vault_id),
            identity=ml.IdentityForCmkArgs(user_assigned_identity=identity_id),
        ),
        "hbi_workspace": True,
        "system_datastores_auth_mode": ml.SystemDatastoresAuthMode.IDENTITY,
        "public_network_access": "Disabled" if private else "Enabled",
        "allow_public_access_when_behind_vnet": False,
        "managed_network": ml.ManagedNetworkSettingsArgs(
            isolation_mode=ml.IsolationMode.ALLOW_ONLY_APPROVED_OUTBOUND if private else ml.IsolationMode.DISABLED
        ),
    }


def identity_datastore(
    ctx: StageContext,
    *,
    key: str,
    name: str,
    rg: Any,
    workspace_name: Any,
    account_name: Any,
    container: Any,
    subscription_id: Any,
    description: str,
) -> Any:
    """A blob datastore of one container with no stored credentials: every job reaches it as its own identity."""
    from pulumi_azure_native import machinelearningservices as ml

    return ml.Datastore(
        ctx.logical("datastore", key),
        name=name,
        resource_group_name=rg,
        workspace_name=workspace_name,
        properties=ml.AzureBlobDatastoreArgs(
            datastore_type="AzureBlob",
            account_name=account_name,
            container_name=container,
            credentials=ml.NoneDatastoreCredentialsArgs(credentials_type="None"),
            endpoint="core.windows.net",
            protocol="https",
            resource_group=rg,
            subscription_id=subscription_id,
            description=description,
            tags=ctx.tags(),
        ),
        opts=ctx.opts(),
    )


@dataclass(frozen=True)
class SparkNetwork:
    """The managed network provisioned with serverless Spark: drift monitors wait for it (same stack only)."""

    provisioned: list[Any]


def drifts(spec: SpecBase) -> bool:
    """Whether a model monitors drift or attributions (Azure ML model monitors run on serverless Spark)."""
    return any(
        m.monitoring is not None and (m.monitoring.drift is not None or m.monitoring.explainability is not None)
        for m in spec.models
    )


def _private_access(ctx: StageContext, *, rg: Any, workspace: Any, registry: Any) -> None:
    """A private workspace's private endpoints for clients, and its managed network with Spark."""
    import pulumi

    from mlops_infra.backends.azure.arm_actions import ManagedNetworkProvision
    from mlops_infra.backends.azure.common import share_waits
    from mlops_infra.backends.azure.network import PrivateNetwork, private_endpoint

    network = ctx.upstream.of(PrivateNetwork)
    private_endpoint(ctx, network, target="workspace", resource_id=workspace.id, rg=rg)
    private_endpoint(ctx, network, target="registry", resource_id=registry.id, rg=rg)
    if drifts(ctx.spec):
        provisioned = ManagedNetworkProvision(
            ctx.logical("managed-network"),
            workspace_id=workspace.id,
            include_spark=True,
            # A dynamic resource has no cloud provider of its own: parent only.
            opts=pulumi.ResourceOptions(parent=ctx.parent),
        )
        share_waits(ctx, SparkNetwork(provisioned=[provisioned]))
