"""IAM, KMS and S3 policy documents and ARNs for the AWS backend, as pure data.

No SDK here: the stage modules JSON-encode these documents, the stages' checks measure
them (IAM size limits) and the tests read them. Every ARN is built from physical names,
so the documents are known before deployment; the only value the cloud supplies is the
account id (getCallerIdentity), and the key ARN for the key grants.

Artifact bucket layout (shared with later stages):
- audit-logs/     CloudTrail log files (written by CloudTrail only; no workload reads them)
- data-capture/   requests and responses captured by endpoints, one prefix per model (serving
                  writes; the model's group identity reads them for drift monitoring)
- models/         trained models, one prefix per model (the model's group identity writes,
                  serving reads)
- checkpoints/    spot training checkpoints, one prefix per model (the group identity)
- monitoring/     Model Monitor reports, one prefix per model (the group identity)
- mlflow/         the MLflow tracking server's artifact store (its own role)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from mlops_infra.stages.storage import CAPTURE_PREFIX
from mlops_infra.stages.training import output_prefix

VERSION = "2012-10-17"
AUDIT_PREFIX = "audit-logs"  # CloudTrail's S3KeyPrefix: keys are audit-logs/AWSLogs/<account>/...
MODELS_PREFIX = output_prefix("x").split("/", 1)[0] + "/"  # "models/": every model's output_prefix starts here

# The KMS actions a workload identity needs to read and write data encrypted with the key
# (S3 SSE-KMS, SageMaker volumes and outputs). Explicit: no kms:* and no GenerateDataKey*.
KMS_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)

# What the account (through IAM) may do to administer the key: the expansion of the
# console's default key-administrator statement (Create*, Describe*, Enable*, List*, Put*,
# Update*, Revoke*, Disable*, Get*, Delete*, TagResource, UntagResource, ScheduleKeyDeletion,
# CancelKeyDeletion, RotateKeyOnDemand) into the actions that apply to a key. It must keep
# kms:PutKeyPolicy, or the key becomes unmanageable (KMS's lockout safety check).
KMS_ADMIN_ACTIONS = (
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
    "kms:RevokeGrant",
    "kms:RetireGrant",
    "kms:DeleteAlias",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
)

S3_READ_OBJECT = ("s3:GetObject",)
S3_WRITE_OBJECT = ("s3:PutObject", "s3:AbortMultipartUpload")
S3_LIST_BUCKET = ("s3:ListBucket",)
S3_LOCATE_BUCKET = ("s3:GetBucketLocation",)
# Object actions no workload may take on the audit logs (an explicit deny beats any allow).
S3_AUDIT_DENY = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
)

SAGEMAKER = "sagemaker.amazonaws.com"
# Which service assumes each workload identity ("jobs": a model group's identity, which runs
# its models' training and monitoring jobs).
TRUSTED_SERVICES = {
    "jobs": (SAGEMAKER,),
    "serving": (SAGEMAKER,),
    "automation": ("events.amazonaws.com", "scheduler.amazonaws.com"),
}
KEY_USERS = ("serving",)  # group identities use the key through the stack's managed policies
REGISTER = ("sagemaker:CreateModelPackage",)
CLOUDTRAIL = "cloudtrail.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"
# What CloudWatch needs on the key to publish alarm notifications to a topic encrypted with it
# (SNS developer guide, "Enable compatibility between event sources from AWS services and
# encrypted topics": kms:GenerateDataKey* and kms:Decrypt; SNS calls GenerateDataKey).
KMS_PUBLISH_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


# --- ARNs -------------------------------------------------------------------
_PARTITIONS = (  # region prefix -> partition (longest prefix first)
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
)


def partition_of(region: str) -> str:
    """The ARN partition of a region (known offline, unlike a getPartition call)."""
    return next((p for prefix, p in _PARTITIONS if region.startswith(prefix)), "aws")


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def account_root(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def trail_arn(partition: str, region: str, account_id: str, trail: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{trail}"


# --- documents --------------------------------------------------------------
def document(statements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def key_policy(
    *, partition: str, account_id: str, trail: str | None = None, alarms: str | None = None
) -> dict[str, Any]:
    """The key policy: the account administers the key and lets IAM grant its use.

    With `trail` (a trail ARN), CloudTrail may encrypt that trail's log files with the key.
    With `alarms` (an alarm ARN pattern: the stack's alarms), CloudWatch may use the key to
    publish those alarms' notifications to the stack's encrypted SNS topic, and nothing else.
    """
    root = {"AWS": account_root(partition, account_id)}
    statements: list[dict[str, Any]] = [
        {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": root,
         "Action": list(KMS_ADMIN_ACTIONS), "Resource": "*"},
        # Without this statement IAM policies cannot grant use of the key, so the key grants
        # of the workload identities (aws.iam.RolePolicy) would have no effect.
        {"Sid": "IamPoliciesGrantKeyUse", "Effect": "Allow", "Principal": root,
         "Action": list(KMS_USE_ACTIONS), "Resource": "*"},
    ]
    if trail:
        only_this_trail = {"StringEquals": {"aws:SourceArn": trail}}
        statements += [
            {"Sid": "CloudTrailEncryptsLogs", "Effect": "Allow", "Principal": {"Service": CLOUDTRAIL},
             "Action": ["kms:GenerateDataKey"], "Resource": "*", "Condition": only_this_trail},
            {"Sid": "CloudTrailDescribesKey", "Effect": "Allow", "Principal": {"Service": CLOUDTRAIL},
             "Action": ["kms:DescribeKey"], "Resource": "*", "Condition": only_this_trail},
        ]
    if alarms:
        statements.append({
            "Sid": "CloudWatchAlarmsPublishToTopic", "Effect": "Allow", "Principal": {"Service": CLOUDWATCH},
            "Action": list(KMS_PUBLISH_ACTIONS), "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": alarms}},
        })
    return document(statements)


def alarm_arn(partition: str, region: str, account_id: str, alarm: str) -> str:
    """An alarm's ARN (a trailing "*" makes it a pattern)."""
    return f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{alarm}"


def trust_policy(role: str, *, account_id: str) -> dict[str, Any]:
    """Who may assume a workload identity: its service, on behalf of this account only."""
    services = list(TRUSTED_SERVICES[role])
    return document([{
        "Sid": "ServiceAssumesRole",
        "Effect": "Allow",
        "Principal": {"Service": services[0] if len(services) == 1 else services},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }])


def key_use_statement(key_arn: str) -> dict[str, Any]:
    """Encrypt and decrypt with the stack key (explicit actions, no kms:*)."""
    return {"Sid": "UseStackKey", "Effect": "Allow", "Action": list(KMS_USE_ACTIONS), "Resource": key_arn}


def key_use_policy(key_arn: str) -> dict[str, Any]:
    """A workload identity's grant on the stack key (inline role policy)."""
    return document([key_use_statement(key_arn)])


def key_arn(partition: str, region: str, account_id: str, key_id: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:key/{key_id}"


@dataclass(frozen=True)
class NetworkPerimeter:
    """Who may reach a bucket from outside the stack's VPC: nobody but `exempt` (principal ARNs:
    the identity deploying the stack, services that run outside it) and AWS services."""

    vpc_id: str
    exempt: tuple[str, ...]


def bucket_policy(
    *, partition: str, bucket: str, audit: tuple[str, str] | None = None, network: NetworkPerimeter | None = None,
) -> dict[str, Any]:
    """TLS-only (1.2 or later) access to a bucket; with audit=(account_id, trail ARN), CloudTrail
    may deliver that trail's log files under audit-logs/; with `network`, requests that do not
    come through a VPC endpoint of the stack's VPC are denied, except those of AWS services
    (service principals such as CloudTrail's, and services acting for a caller) and of the
    exempt principals."""
    arn = bucket_arn(partition, bucket)
    everything = [arn, f"{arn}/*"]
    statements: list[dict[str, Any]] = [
        # Denies must cover every principal and action; they grant nothing.
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": everything, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyTlsBelow12", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": everything, "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}},
    ]
    if network is not None:
        # Every condition must hold for the deny to apply: not through the VPC, not an AWS
        # service, not an exempt principal ("IfExists": a missing key counts as not matching).
        statements.append({
            "Sid": "DenyOutsideStackVpc", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": everything,
            "Condition": {
                "StringNotEqualsIfExists": {"aws:SourceVpc": network.vpc_id},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"},
                "ArnNotLikeIfExists": {"aws:PrincipalArn": list(network.exempt)},
            },
        })
    if audit:
        account_id, trail = audit
        statements += [
            {"Sid": "CloudTrailChecksAcl", "Effect": "Allow", "Principal": {"Service": CLOUDTRAIL},
             "Action": "s3:GetBucketAcl", "Resource": arn,
             "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
            {"Sid": "CloudTrailWritesLogs", "Effect": "Allow", "Principal": {"Service": CLOUDTRAIL},
             "Action": "s3:PutObject", "Resource": f"{arn}/{AUDIT_PREFIX}/AWSLogs/{account_id}/*",
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}},
        ]
    return document(statements)


def serving_storage_grant(*, partition: str, artifacts: str) -> dict[str, Any]:
    """The serving identity's S3 policy: read the trained models (models/, listing included: an
    endpoint may load a whole model prefix), write captured data under data-capture/, never touch
    the audit logs. A model served from elsewhere (serving.model_uri) gets its own grant from the
    serving stage."""
    art = bucket_arn(partition, artifacts)
    return document([
        {"Sid": "LocateArtifacts", "Effect": "Allow", "Action": list(S3_LOCATE_BUCKET), "Resource": art},
        {"Sid": "ListModels", "Effect": "Allow", "Action": list(S3_LIST_BUCKET), "Resource": art,
         "Condition": {"StringLike": {"s3:prefix": [MODELS_PREFIX, f"{MODELS_PREFIX}*"]}}},
        {"Sid": "ReadModels", "Effect": "Allow", "Action": list(S3_READ_OBJECT), "Resource": f"{art}/{MODELS_PREFIX}*"},
        {"Sid": "WriteCapturedData", "Effect": "Allow", "Action": list(S3_WRITE_OBJECT),
         "Resource": f"{art}/{CAPTURE_PREFIX}*"},
        {"Sid": "NoAuditLogs", "Effect": "Deny", "Action": list(S3_AUDIT_DENY), "Resource": f"{art}/{AUDIT_PREFIX}/*"},
    ])


def group_data_grant(
    *,
    partition: str,
    artifacts: str,
    reads: Mapping[str, list[str]],
    physical: Mapping[str, str],
    writes: list[str],
    captured: list[str],
    role_arn: str,
    package_groups: list[str],
    package_arn: str,
) -> dict[str, Any]:
    """A model group identity's inline policy: exactly its own models' data and artifacts.

    `reads`: data bucket -> the prefixes the group's models read ([""]: the whole bucket);
    `physical`: data bucket -> physical name; `writes`: artifact prefixes its jobs read and write
    (models/<model>/, checkpoints/<model>/, monitoring/<model>/); `captured`: prefixes of captured
    requests its monitoring jobs read (data-capture/<model>/). It may pass only itself to
    SageMaker (so a job it starts reads only this group's data) and register versions only into
    `package_groups` (its models' model package groups; `package_arn` is the account's SageMaker
    ARN prefix). Listing conditions name "<prefix>*", which also matches the prefix itself.
    """
    art = bucket_arn(partition, artifacts)
    arns = {name: bucket_arn(partition, physical[name]) for name in reads}
    statements: list[dict[str, Any]] = [
        {"Sid": "LocateBuckets", "Effect": "Allow", "Action": list(S3_LOCATE_BUCKET),
         "Resource": [*(arns[n] for n in reads), art]},
    ]
    whole = [arns[n] for n, prefixes in reads.items() if prefixes == [""]]
    if whole:
        statements.append({"Sid": "ListDataBuckets", "Effect": "Allow", "Action": list(S3_LIST_BUCKET),
                           "Resource": whole})
    for name, prefixes in reads.items():
        if prefixes != [""]:
            statements.append({"Effect": "Allow", "Action": list(S3_LIST_BUCKET), "Resource": arns[name],
                               "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}})
    if reads:
        statements.append({"Sid": "ReadData", "Effect": "Allow", "Action": list(S3_READ_OBJECT),
                           "Resource": [f"{arns[n]}/{p}*" for n, prefixes in reads.items() for p in prefixes]})
    statements.append({"Sid": "ListOwnArtifacts", "Effect": "Allow", "Action": list(S3_LIST_BUCKET), "Resource": art,
                       "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in [*writes, *captured]]}}})
    if writes:
        statements.append({"Sid": "ReadWriteOwnArtifacts", "Effect": "Allow",
                           "Action": [*S3_READ_OBJECT, *S3_WRITE_OBJECT], "Resource": [f"{art}/{p}*" for p in writes]})
    if captured:
        statements.append({"Sid": "ReadOwnCapturedData", "Effect": "Allow", "Action": list(S3_READ_OBJECT),
                           "Resource": [f"{art}/{p}*" for p in captured]})
    statements.append({"Sid": "PassOnlyItself", "Effect": "Allow", "Action": "iam:PassRole", "Resource": role_arn,
                       "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER}}})
    if package_groups:
        # SageMaker ARNs carry names in lower case.
        statements.append({"Sid": "RegisterOwnModels", "Effect": "Allow", "Action": list(REGISTER), "Resource": [
            arn for g in package_groups for arn in (f"{package_arn}:model-package-group/{g.lower()}",
                                                    f"{package_arn}:model-package/{g.lower()}/*")]})
    return document(statements)


def role_arn(partition: str, account_id: str, role: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role}"


def policy_size(doc: Mapping[str, Any]) -> int:
    """Characters IAM counts for a policy (JSON without whitespace)."""
    return len(json.dumps(doc, separators=(",", ":")))
