"""Feature Store as pure data: feature types, offline store places, IAM grants (no SDK here)."""

from __future__ import annotations

from typing import Any, Callable

from mlops_infra.backends.aws import policies

# Neutral feature type -> Feature Store FeatureType (botocore 1.44.18 sagemaker shape FeatureType:
# Integral, Fractional, String; read 2026-12-06). Event times are strings in ISO-8601 form (or
# Fractional seconds since the epoch): the group's event_time feature is a String.
FEATURE_TYPES = {"string": "String", "integer": "Integral", "float": "Fractional", "boolean": "Integral",
                 "timestamp": "String"}
CONVERTED = {"boolean": "0 or 1", "timestamp": "an ISO-8601 date-time string, e.g. 2026-12-06T03:00:00Z"}
OFFLINE_PREFIX = "features/"  # + <group>/: offline stores of groups without a source, in the artifact bucket
# What Feature Store does with the offline store's role (Feature Store developer guide, "IAM
# permissions for the offline store"): write the Parquet files and check the bucket's ACL.
OFFLINE_WRITE = ("s3:PutObject", "s3:PutObjectAcl", "s3:GetObject")
OFFLINE_BUCKET = ("s3:GetBucketAcl",)
RECORD_READ = ("sagemaker:GetRecord", "sagemaker:BatchGetRecord")
METADATA_READ = ("sagemaker:DescribeFeatureGroup",)


ROLE = "features"  # a word of the offline stores' writer role's name


def offline_buckets(spec: Any) -> set[str]:
    """The buckets (spec names, ARTIFACTS for the artifact bucket) holding offline stores: their
    policies let the features role in from outside a private network (Feature Store writes from
    SageMaker's own network)."""
    from mlops_infra.stages.storage import ARTIFACTS

    groups = spec.feature_store.groups if spec.feature_store else []
    return {ARTIFACTS if g.source is None else g.source.bucket for g in groups}


def feature_definitions(group: Any) -> list[dict[str, str]]:
    return [{"feature_name": f.name, "feature_type": FEATURE_TYPES[f.type]} for f in group.features]


def offline_place(group: Any, *, artifacts: str, physical: Callable[[str], str]) -> tuple[str, str]:
    """(physical bucket, prefix) of a group's offline store."""
    if group.source is None:
        return artifacts, f"{OFFLINE_PREFIX}{group.name}/"
    return physical(group.source.bucket), group.source.prefix  # spec prefixes end with "/" (or are "")


def group_arn_maker(*, partition: str, region: str, account: str, name: Callable[[str], str]) -> Callable[[str], str]:
    # Feature group ARNs carry the name in lower case.
    return lambda group: f"arn:{partition}:sagemaker:{region}:{account}:feature-group/{name(group).lower()}"


def offline_store_grant(*, partition: str, places: list[tuple[str, str]], key_arn: str) -> dict[str, Any]:
    """The features role's policy: exactly the offline stores' prefixes, and the key."""
    buckets = sorted({policies.bucket_arn(partition, b) for b, _ in places})
    objects = sorted({f"{policies.bucket_arn(partition, b)}/{p}*" for b, p in places})
    return policies.document([
        {"Sid": "CheckBucketAcl", "Effect": "Allow", "Action": list(OFFLINE_BUCKET), "Resource": buckets},
        {"Sid": "WriteOfflineStores", "Effect": "Allow", "Action": list(OFFLINE_WRITE), "Resource": objects},
        policies.key_use_statement(key_arn),
    ])


def reader_grant(*, partition: str, groups: list[str], places: list[tuple[str, str]]) -> dict[str, Any]:
    """A model group identity's "features" policy: its feature groups' records and offline data."""
    by_bucket: dict[str, list[str]] = {}
    for bucket, prefix in places:
        by_bucket.setdefault(bucket, []).append(prefix)
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadFeatureGroups", "Effect": "Allow", "Action": [*RECORD_READ, *METADATA_READ], "Resource": groups},
    ]
    for n, (bucket, prefixes) in enumerate(sorted(by_bucket.items())):
        arn = policies.bucket_arn(partition, bucket)
        statements += [
            {"Sid": f"ListOfflineStores{n}", "Effect": "Allow", "Action": list(policies.S3_LIST_BUCKET),
             "Resource": arn, "Condition": {"StringLike": {"s3:prefix": sorted(f"{p}*" for p in prefixes)}}},
            {"Sid": f"ReadOfflineStores{n}", "Effect": "Allow", "Action": list(policies.S3_READ_OBJECT),
             "Resource": sorted(f"{arn}/{p}*" for p in prefixes)},
        ]
    return policies.document(statements)


def online_grant(groups: list[str]) -> dict[str, Any]:
    """The serving identity's "features" policy: online records of the groups served models read."""
    return policies.document([
        {"Sid": "ReadOnlineFeatures", "Effect": "Allow", "Action": list(RECORD_READ), "Resource": groups},
    ])
