"""GCP features: Vertex AI Feature Store over BigQuery, with an optional online store.

Per stack (feature_store):
- a BigQuery dataset (CMEK with the stack key through BigQuery's encryption account, protected,
  kept by a default destroy, emptied by the teardown before `destroy --delete-data`) holding the
  offline store: one table per feature group.
Per feature group:
- its offline table: one column per feature (names with "_" for "-", BigQuery's column rule),
  the record id and event time required, partitioned by day on the event time and clustered by
  the record id; encrypted with the stack key, protected and kept by a default destroy. The event-time
  column is called feature_timestamp: Vertex AI Feature Store reads a BigQuery source's
  timestamps from that column (cloud.google.com/vertex-ai/docs/featurestore/latest/prepare-data-source),
  and pulumi-gcp 10.2 has no setting that names another.
- a Vertex AI feature group over the table (entity id: the record id) and a feature per column
  besides the record id and the event time;
- with online: true, a feature view of the group in the stack's online store (one per stack,
  Bigtable-served with autoscaling, CMEK with the stack key through the Vertex AI agent), synced
  from BigQuery every hour.
Grants, one resource each (least privilege, nothing lists the fleet): the group identity of each
model naming the group (its training jobs) reads the group's table (dataViewer on that table
alone) and the feature group; the serving identity reads the feature view of an online group a
served model names. Querying BigQuery also needs bigquery.jobs.create, which has no narrower
resource than the project: such groups get the worker role that holds it (grants.worker_role).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp.shared import ProjectServices
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.features import FeatureOutputs, readers
from mlops_infra.stages.governance import GovernanceOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

# Vertex AI reads the event time of a BigQuery source from this column.
TIMESTAMP_COLUMN = "feature_timestamp"
# BigQuery GoogleSQL types of the neutral feature types.
BIGQUERY_TYPES = {"string": "STRING", "integer": "INT64", "float": "FLOAT64", "boolean": "BOOL", "timestamp": "TIMESTAMP"}
TABLE_VIEWER = "roles/bigquery.dataViewer"
# Read feature values of a feature group or view (cloud.google.com/vertex-ai/docs/featurestore/latest/control-access).
FEATURE_VIEWER = "roles/aiplatform.featurestoreDataViewer"
SYNC_CRON = "0 * * * *"  # feature views sync from BigQuery hourly
# Bigtable online serving: the smallest autoscaling range (one node at rest), 50 % CPU target.
ONLINE_NODES = {"min_node_count": 1, "max_node_count": 3, "cpu_utilization_target": 50}


def column(feature: str) -> str:
    """A feature's BigQuery column and Vertex AI feature id: "-" is not allowed there."""
    return feature.replace("-", "_")


def check(spec: Any, settings: Any) -> list[Problem]:
    """Where the spec asks for what the GCP feature store does not do."""
    from mlops_infra.backends.gcp import BACKEND

    if spec.feature_store is None:
        return []
    return [
        BACKEND.gap("feature_store.groups[].source", ("feature_store", "groups", i, "source"), value=group.source.bucket)
        for i, group in enumerate(spec.feature_store.groups)
        if group.source is not None
    ]


def schema(group: Any) -> list[dict[str, str]]:
    """The offline table's columns (pure)."""
    keys = {group.record_id, group.event_time}
    return [
        {
            "name": TIMESTAMP_COLUMN if f.name == group.event_time else column(f.name),
            "type": BIGQUERY_TYPES[f.type],
            "mode": "REQUIRED" if f.name in keys else "NULLABLE",
        }
        for f in group.features
    ]


def build(ctx: StageContext) -> FeatureOutputs:
    import pulumi
    import pulumi_gcp as gcp

    spec = ctx.spec
    assert spec.feature_store is not None
    project, region = ctx.settings.project, ctx.settings.region
    governance = ctx.upstream.of(GovernanceOutputs)
    keys = ctx.upstream.of(ProjectServices).service_keys
    labels = ctx.tags()
    dataset = gcp.bigquery.Dataset(
        ctx.logical("dataset"),
        dataset_id=ctx.namer.name("gcp.bigquery.dataset", "features"),
        project=project,
        location=region,  # the key's region: CMEK needs the same location
        description=f"offline feature store of mlops-infra {spec.project}/{spec.environment}",
        default_encryption_configuration={"kms_key_name": keys["bigquery"]},
        delete_contents_on_destroy=ctx.teardown,  # empties it when destroy --delete-data deletes it
        labels=labels,
        opts=ctx.opts(protect=True),
    )
    online = [g for g in spec.feature_store.groups if g.online]
    store = _online_store(ctx, keys["aiplatform"]) if online else None
    serving = governance.identities["serving"]
    served = {m.name for m in spec.models if m.serving is not None}

    ids: dict[str, Any] = {}
    for group in spec.feature_store.groups:
        table = gcp.bigquery.Table(
            ctx.logical("table", group.name),
            dataset_id=dataset.dataset_id,
            table_id=ctx.namer.name("gcp.bigquery.table", group.name),
            project=project,
            description=f"offline store of feature group {group.name}",
            schema=json.dumps(schema(group)),
            time_partitioning={"type": "DAY", "field": TIMESTAMP_COLUMN},
            clusterings=[column(group.record_id)],
            encryption_configuration={"kms_key_name": keys["bigquery"]},
            # Pulumi's protect guards it (and a default destroy keeps it: GcpBackend.keeps); the
            # provider's own flag would also block `destroy --delete-data`.
            deletion_protection=False,
            labels=labels,
            opts=ctx.opts(protect=True),
        )
        source = pulumi.Output.all(dataset.dataset_id, table.table_id).apply(lambda v: f"bq://{project}.{v[0]}.{v[1]}")
        feature_group = gcp.vertex.AiFeatureGroup(
            ctx.logical("group", group.name),
            name=ctx.namer.name("gcp.vertex.feature_store_id", group.name),
            project=project,
            region=region,
            description=f"feature group {group.name} (mlops-infra {spec.project}/{spec.environment})",
            big_query={"big_query_source": {"input_uri": source}, "entity_id_columns": [column(group.record_id)]},
            labels=labels,
            opts=ctx.opts(),
        )
        features = [f for f in group.features if f.name not in (group.record_id, group.event_time)]
        for feature in features:
            gcp.vertex.AiFeatureGroupFeature(
                ctx.logical("feature", group.name, feature.name),
                name=column(feature.name),
                feature_group=feature_group.name,
                project=project,
                region=region,
                version_column_name=column(feature.name),
                labels=labels,
                opts=ctx.opts(),
            )
        trained = sorted(
            {group_of(m) for m in spec.models if m.name in readers(spec, group.name)} & set(governance.groups)
        )
        for reader in trained:
            member = governance.groups[reader].principal
            gcp.bigquery.IamMember(
                ctx.logical("table-reader", group.name, reader),
                project=project,
                dataset_id=dataset.dataset_id,
                table_id=table.table_id,
                role=TABLE_VIEWER,
                member=member,
                opts=ctx.opts(),
            )
            gcp.vertex.AiFeatureGroupIamMember(
                ctx.logical("group-reader", group.name, reader),
                project=project,
                region=region,
                feature_group=feature_group.name,
                role=FEATURE_VIEWER,
                member=member,
                opts=ctx.opts(),
            )
        ids[group.name] = feature_group.name.apply(lambda n: f"projects/{project}/locations/{region}/featureGroups/{n}")
        if store is None or not group.online:
            continue
        view = gcp.vertex.AiFeatureOnlineStoreFeatureview(
            ctx.logical("view", group.name),
            name=ctx.namer.name("gcp.vertex.feature_store_id", group.name),
            feature_online_store=store.name,
            project=project,
            region=region,
            feature_registry_source={
                "feature_groups": [
                    {"feature_group_id": feature_group.name, "feature_ids": [column(f.name) for f in features]}
                ]
            },
            sync_config={"cron": SYNC_CRON},
            labels=labels,
            opts=ctx.opts(depends_on=[feature_group]),
        )
        if any(m in served for m in readers(spec, group.name)):
            gcp.vertex.AiFeatureOnlineStoreFeatureviewIamMember(
                ctx.logical("view-reader", group.name, "serving"),
                project=project,
                region=region,
                feature_online_store=store.name,
                feature_view=view.name,
                role=FEATURE_VIEWER,
                member=serving.principal,
                opts=ctx.opts(),
            )
    return FeatureOutputs(groups=ids)


def _online_store(ctx: StageContext, key: Any) -> Any:
    import pulumi_gcp as gcp

    return gcp.vertex.AiFeatureOnlineStore(
        ctx.logical("online-store"),
        name=ctx.namer.name("gcp.vertex.feature_store_id", "online"),
        project=ctx.settings.project,
        region=ctx.settings.region,
        bigtable={"auto_scaling": dict(ONLINE_NODES)},
        encryption_spec={"kms_key_name": key},
        labels=ctx.tags(),
        opts=ctx.opts(),
    )
