"""AWS features: SageMaker Feature Store feature groups, read by the models that name them.

Per feature_store.groups[] (stack-wide: built in the shared stack of a split spec):
- sagemaker.FeatureGroup "<stack>-<group>": the record id and event time, one feature
  definition per feature (features_sdk.FEATURE_TYPES), an offline store in S3 under
  source (bucket + prefix) or, without one, s3://<artifacts>/features/<group>/, encrypted with
  the stack key (no Glue table: the stack grants no Glue catalog), and with online: true an
  online store encrypted with the stack key. Protected (its offline data is kept by a default
  destroy, like the buckets); SageMaker cannot change a group's definition in place, so a
  changed group is replaced.
- one iam.Role "<stack>-features-<region>" (when there are groups), assumed by SageMaker only
  from this account: Feature Store writes the offline stores as it. One inline policy
  "offline-<group>" per group: write and read exactly that group's offline prefix, use the key.

Grants (least privilege, never on "*"):
- each model group whose models name feature groups (models[].features): inline policy
  "features" on its identity: read those groups' records (online) and metadata, and read their
  offline prefixes (training reads the offline store).
- the serving identity: read the online records of the groups a served model names (only
  groups with an online store can be read at serving time).
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import features_sdk as sdk
from mlops_infra.backends.aws.data_prep import under
from mlops_infra.backends.aws.naming import (
    bucket_name,
    feature_group_name,
    inline_policy_name,
    role_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.features import FeatureOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs

ROLE = sdk.ROLE


def check(spec: Any, settings: Any) -> list[Problem]:
    """Feature types Feature Store stores differently than the spec names them."""
    if spec.feature_store is None:
        return []
    problems: list[Problem] = []
    for i, group in enumerate(spec.feature_store.groups):
        for j, feature in enumerate(group.features):
            if feature.type in sdk.CONVERTED:
                problems.append(finding(
                    ("feature_store", "groups", i, "features", j, "type"),
                    f"SageMaker Feature Store has no {feature.type} type: {feature.name!r} is stored as "
                    f"{sdk.FEATURE_TYPES[feature.type]} ({sdk.CONVERTED[feature.type]})",
                    hint="write values in that form when ingesting records", value=feature.type,
                    severity="warning",
                ))
    return problems


def build(ctx: StageContext) -> FeatureOutputs:
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    if spec.feature_store is None or not ctx.builds_stack:
        return FeatureOutputs(groups={})
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    partition, account = policies.partition_of(region), settings.account_id
    places = {g.name: sdk.offline_place(g, artifacts=bucket_name(ctx.namer, ARTIFACTS),
                                        physical=lambda b: bucket_name(ctx.namer, b))
              for g in spec.feature_store.groups}

    role = aws.iam.Role(
        ctx.logical("role"),
        name=role_name(ctx.namer, ROLE, region),
        description=f"mlops-infra {spec.project}/{spec.environment} features: Feature Store writes offline stores",
        assume_role_policy=json.dumps(policies.trust_policy("jobs", account_id=account)),
        max_session_duration=3600,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    groups: dict[str, Any] = {}
    for group in spec.feature_store.groups:
        prefix = places[group.name][1]
        # One policy per group: adding a group adds its grant and changes no other.
        offline = aws.iam.RolePolicy(
            ctx.logical("offline", group.name),
            name=inline_policy_name(ctx.namer, "offline", group.name),
            role=role.id,
            policy=pulumi.Output.from_input(gov.key_id).apply(_offline_document(partition, places[group.name])),
            opts=ctx.opts(),
        )
        source = storage.artifacts.uri if group.source is None else storage.buckets[group.source.bucket].uri
        resource = aws.sagemaker.FeatureGroup(
            ctx.logical("group", group.name),
            feature_group_name=feature_group_name(ctx.namer, group.name),
            description=f"mlops-infra {spec.project}/{spec.environment}: feature group {group.name}",
            record_identifier_feature_name=group.record_id,
            event_time_feature_name=group.event_time,
            feature_definitions=sdk.feature_definitions(group),
            offline_store_config={
                "s3_storage_config": {
                    "s3_uri": under(source, prefix),
                    "kms_key_id": gov.key_id,
                },
                "disable_glue_table_creation": True,
            },
            online_store_config={"enable_online_store": True, "security_config": {"kms_key_id": gov.key_id}}
            if group.online else None,
            role_arn=pulumi.Output.all(role.arn, offline.id).apply(lambda values: values[0]),
            tags=ctx.tags(),
            opts=ctx.opts(protect=True),
        )
        groups[group.name] = resource.arn

    _grants(ctx, places=places, partition=partition, account=account)
    return FeatureOutputs(groups=groups)


def _offline_document(partition: str, place: tuple[str, str]) -> Any:
    def document(key: str) -> str:
        return json.dumps(sdk.offline_store_grant(partition=partition, places=[place], key_arn=key))

    return document


def _grants(ctx: StageContext, *, places: dict[str, tuple[str, str]], partition: str, account: str) -> None:
    """The readers' grants: each model group's identity, and the serving identity (see the docstring)."""
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    arn = sdk.group_arn_maker(partition=partition, region=region, account=account,
                              name=lambda g: feature_group_name(ctx.namer, g))
    by_group: dict[str, set[str]] = {}
    for model in spec.models:
        if model.features:
            by_group.setdefault(group_of(model), set()).update(model.features)
    for group, names in sorted(by_group.items()):
        if group not in gov.groups:
            continue  # a model that neither trains nor reads data has no identity to grant
        wanted = sorted(n for n in names if n in places)
        aws.iam.RolePolicy(
            ctx.logical("grant", group),
            name=inline_policy_name(ctx.namer, "features"),
            role=gov.groups[group].id,
            policy=json.dumps(sdk.reader_grant(partition=partition, groups=[arn(n) for n in wanted],
                                               places=[places[n] for n in wanted])),
            opts=ctx.opts(),
        )
    online = {g.name for g in spec.feature_store.groups if g.online} if spec.feature_store else set()
    served = sorted({n for m in spec.models if m.serving is not None for n in m.features if n in online})
    if served:
        aws.iam.RolePolicy(
            ctx.logical("grant", "serving"),
            name=inline_policy_name(ctx.namer, "features"),
            role=gov.identities["serving"].id,
            policy=json.dumps(sdk.online_grant([arn(n) for n in served])),
            opts=ctx.opts(),
        )

