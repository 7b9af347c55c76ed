"""Azure features: an Azure ML managed feature store, an entity and a feature set per feature group.

- The feature store: an Azure ML workspace of kind FeatureStore (one per stack), wired like the
  stack's workspace (storage_workspace.py) and sharing its associated resources: the stack's
  storage account (its offline data, identity-based datastores, no shared keys), key vault,
  container registry and Application Insights; encrypted with the stack key (customer-managed,
  through the workspace identity, which already holds the key and vault grants), hbiWorkspace on;
  Spark runtime 3.4 for feature computation. With governance.network: private, public network
  access is off, its managed network allows only approved outbound traffic, and clients reach it
  through a private endpoint in the stack's inbound network (network.py). It is protected: a
  default destroy keeps it with its feature definitions.
- Per feature group (names are workspace asset names, training.asset_name):
  * a feature store entity (container + version "1"): the group's record_id as its index column,
    with its type;
  * a feature set container, where versions of the group's feature set are registered.
  Adding a group adds exactly these three resources.
- Who reads: each model group whose models name a feature group (models[].features) gets one
  role assignment on the feature store: a custom role of the stack that reads the store, its
  entities and feature sets and nothing else (FEATURE_READER_ACTIONS). Azure RBAC cannot narrow
  a principal to one feature set, so a reader sees the store's definitions; the data behind them
  stays behind the group's blob condition (governance_access.py), which adds the named groups'
  source prefixes to the group's reads.

Not built here (validate warns at the group): feature set versions, whose specification is a
FeaturesetSpec.yaml folder in storage that Azure ML reads when the version is registered
(azure-native cannot write a blob to a storage account without shared keys), and online or
offline materialization stores (an ADLS Gen2 account and an Azure Managed Redis the stack does
not create). Feature retrieval then reads each group's source directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.common import after, assign_custom, custom_role
from mlops_infra.backends.azure.governance import AzureGovernance
from mlops_infra.backends.azure.governance_access import feature_reader_groups
from mlops_infra.backends.azure.naming import generation_parts
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef, secured_workspace_args
from mlops_infra.backends.azure.training import asset_name
from mlops_infra.stages.features import FeatureOutputs
from mlops_infra.stages.governance import GovernanceOutputs

if TYPE_CHECKING:
    import pulumi
    from pulumi_azure_native import authorization
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.lifecycle import FeatureGroup
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

SPARK_RUNTIME = "3.4"  # the feature store's compute runtime (reference-yaml-feature-store: 3.4)
ENTITY_VERSION = "1"
# Feature types -> Azure ML FeatureDataType (String, Integer, Long, Float, Double, Binary, Datetime, Boolean).
DATA_TYPES = {"string": "String", "integer": "Long", "float": "Double", "boolean": "Boolean", "timestamp": "Datetime"}
# The custom "feature reader" role: read the feature store and its definitions. Source: Azure
# resource provider operations, Microsoft.MachineLearningServices, and "Manage access control for
# managed feature store" (feature set consumer permissions), read 2026-12-06.
FEATURE_READER_ACTIONS = (
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/featuresets/read",
    "Microsoft.MachineLearningServices/workspaces/featurestoreentities/read",
)


def feature_store_name(ctx: StageContext) -> str:
    return ctx.namer.name("azure.ml.workspace", "features", *generation_parts(ctx.settings))


def entity_name(group: str) -> str:
    return asset_name(group, "entity")


def featureset_name(group: str) -> str:
    return asset_name(group, "features")


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    if spec.feature_store is None:
        return []
    problems: list[Problem] = []
    for i, group in enumerate(spec.feature_store.groups):
        path = ("feature_store", "groups", i)
        problems.append(BACKEND.gap("feature_store.groups[] feature set versions", path, value=group.name))
        if group.online:
            problems.append(BACKEND.gap("feature_store.groups[].online", (*path, "online"), value=True))
    return problems


def build(ctx: StageContext) -> FeatureOutputs:
    spec = ctx.spec
    workspace = ctx.upstream.find(WorkspaceRef)
    if spec.feature_store is None or workspace is None or not ctx.builds_stack:
        return FeatureOutputs(groups={})
    store = _feature_store(ctx, workspace)
    store_name = after(store.tags, feature_store_name(ctx))
    groups: dict[str, Any] = {}
    for group in sorted(spec.feature_store.groups, key=lambda g: g.name):
        groups[group.name] = _group(ctx, group, workspace, store_name)
    _readers(ctx, store)
    return FeatureOutputs(groups=groups)


def _feature_store(ctx: StageContext, workspace: WorkspaceRef) -> ml.Workspace:
    from pulumi_azure_native import machinelearningservices as ml

    governance = ctx.upstream.of(GovernanceOutputs)
    azure = ctx.upstream.of(AzureGovernance)
    assert azure.workspace is not None  # governance makes it whenever a workspace exists
    identity_id = azure.workspace.identity.id
    private = ctx.spec.governance.network == "private"
    store = ml.Workspace(
        ctx.logical("store"),
        workspace_name=feature_store_name(ctx),
        resource_group_name=workspace.resource_group,
        location=workspace.location,
        kind="FeatureStore",
        friendly_name=f"{ctx.spec.project} {ctx.spec.environment} features",
        description=f"mlops-infra: feature store of {ctx.spec.project} ({ctx.spec.environment})",
        sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
        storage_account=workspace.account_id,
        key_vault=azure.workspace.vault_id,
        application_insights=workspace.insights_id,
        container_registry=workspace.registry_id,
        **secured_workspace_args(
            identity_id=identity_id, key_id=governance.key_id, vault_id=azure.workspace.vault_id, private=private
        ),
        feature_store_settings=ml.FeatureStoreSettingsArgs(
            compute_runtime=ml.ComputeRuntimeDtoArgs(spark_runtime_version=SPARK_RUNTIME)
        ),
        v1_legacy_mode=False,
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    if private:
        from mlops_infra.backends.azure.network import PrivateNetwork, private_endpoint

        network = ctx.upstream.of(PrivateNetwork)
        private_endpoint(ctx, network, target="featurestore", resource_id=store.id, rg=workspace.resource_group)
    return store


def _group(ctx: StageContext, group: FeatureGroup, workspace: WorkspaceRef, store: Any) -> Any:
    from pulumi_azure_native import machinelearningservices as ml

    rg, tags = workspace.resource_group, ctx.tags()
    record = next(f for f in group.features if f.name == group.record_id)
    entity = ml.FeaturestoreEntityContainerEntity(
        ctx.logical("entity", group.name),
        name=entity_name(group.name),
        resource_group_name=rg,
        workspace_name=store,
        properties=ml.FeaturestoreEntityContainerPropertiesArgs(
            description=f"mlops-infra: records of feature group {group.name}, keyed by {group.record_id}",
            tags=tags,
        ),
        opts=ctx.opts(),
    )
    ml.FeaturestoreEntityVersion(
        ctx.logical("entityversion", group.name),
        name=entity.name.apply(lambda _: entity_name(group.name)),
        version=ENTITY_VERSION,
        resource_group_name=rg,
        workspace_name=store,
        properties=ml.FeaturestoreEntityVersionPropertiesArgs(
            description=f"mlops-infra: {group.record_id} ({record.type})",
            index_columns=[ml.IndexColumnArgs(column_name=group.record_id, data_type=DATA_TYPES[record.type])],
            tags=tags,
        ),
        opts=ctx.opts(),
    )
    featureset = ml.FeaturesetContainerEntity(
        ctx.logical("featureset", group.name),
        name=featureset_name(group.name),
        resource_group_name=rg,
        workspace_name=store,
        properties=ml.FeaturesetContainerPropertiesArgs(
            description=f"mlops-infra: feature group {group.name} ({len(group.features)} features, event time "
            f"{group.event_time})",
            tags=tags,
        ),
        opts=ctx.opts(),
    )
    return featureset.id


def _readers(ctx: StageContext, store: ml.Workspace) -> list[authorization.RoleAssignment]:
    """The feature reader role on the store, assigned to each model group that names a feature group."""
    groups = feature_reader_groups(ctx.spec)
    if not groups:
        return []
    identities = ctx.upstream.of(GovernanceOutputs).groups
    spec = ctx.spec
    role = custom_role(
        ctx,
        slug="feature-reader",
        words="feature reader",
        description=f"mlops-infra: read the feature store of {spec.project} ({spec.environment}) and its definitions",
        actions=FEATURE_READER_ACTIONS,
        scope=store.id,
        subscription_id=ctx.upstream.of(AzureGovernance).subscription_id,
    )
    return [
        assign_custom(
            ctx,
            role=role,
            slug="feature-reader",
            principal=group,
            principal_id=identities[group].principal,
            scope=store.id,
            target="featurestore",
            description=f"mlops-infra: model group {group} reads the feature groups its models name",
        )
        for group in groups
    ]
