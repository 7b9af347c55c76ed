"""AWS storage: one S3 bucket per spec.storage.buckets entry plus the artifact bucket.

Per bucket (all protected: destroying a bucket's settings while keeping the bucket would leave
it weaker than declared): s3.Bucket in the account's regional namespace where S3 offers one
(naming.bucket_name: the name ends with the account id and region, and no other account can
ever create it, even after `destroy --delete-data`), BucketOwnershipControls
(BucketOwnerEnforced: no ACLs), BucketPublicAccessBlock (all four), BucketVersioning
(Enabled; Suspended for a data bucket with versioning: false, which works whether or not
the bucket was versioned before), BucketServerSideEncryptionConfiguration (aws:kms with
the stack key, S3 Bucket Keys), BucketLifecycleConfiguration (archive to GLACIER, expire,
expire noncurrent versions, abort incomplete multipart uploads after 7 days) and a
BucketPolicy denying requests without TLS 1.2+, and with governance.network: private every
request that does not come through the stack's VPC (aws:SourceVpc), except AWS services' own,
those of the identity deploying the stack (read at deploy time: so that `up`, `refresh` and
`destroy` work from where they run) and, on the artifact bucket, the MLflow server's role (the
server runs in SageMaker's network). force_destroy is false except in the teardown
program `destroy --delete-data` runs first, which empties the buckets so they can be deleted.

A data bucket some model retrains on (models[].retraining.on_new_data) gets an
s3.BucketNotification sending its events to EventBridge (eventbridge: true), where the
retraining stage's rules pick the new objects under the model's prefix. It holds no data and is
not protected (removing the last such model turns the notifications off again).

The serving identity's S3 grant (read models/, write data-capture/) is built here; each model
group's identity reads only its models' data (governance.py, governance_grants.py). With
spec.governance.audit_logs, a single-region CloudTrail trail records S3 data events on the
stack's buckets (except its own log files) into the artifact bucket under audit-logs/,
encrypted with the stack key and with log file validation. The trail is protected: a default
`destroy` keeps the data, and the audit of who reads it stays on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.aws import features_sdk, policies
from mlops_infra.backends.aws.naming import (
    ACCOUNT_REGIONAL,
    bucket_name,
    bucket_namespace,
    inline_policy_name,
    role_name,
    trail_name,
)
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.aws.tracking import ROLE as MLFLOW_ROLE
from mlops_infra.backends.context import StageContext
from mlops_infra.facts import fact
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import tracking
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, BucketRef, StorageOutputs

if TYPE_CHECKING:
    import pulumi_aws as aws

ABORT_MULTIPART_DAYS = 7
ARCHIVE_STORAGE_CLASS = "GLACIER"  # S3 Glacier Flexible Retrieval


def check(spec: Any, settings: Any) -> list[Problem]:
    """Where S3 has no account regional namespace, a deleted bucket's name is anyone's."""
    if bucket_namespace(settings.region) == ACCOUNT_REGIONAL:
        return []
    reuse = fact("aws", "s3", "global_namespace_reuse")
    return [finding(
        ("clouds", "aws", "region"),
        f"S3 offers no account regional namespace in {settings.region} "
        f"({fact('aws', 's3', 'account_regional_namespace').source}): the stack's buckets are created in the "
        f"global namespace, where a deleted bucket's name can be created by any account "
        f"({reuse.source}, as of {reuse.as_of})",
        hint="bucket names end with your account id, so only a deliberate squatter would take one; after "
        "`destroy --delete-data`, redeploy soon, or keep the data (a default destroy keeps the buckets)",
        value=settings.region,
        severity="warning",
    )]


def build(ctx: StageContext) -> StorageOutputs:
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    partition = policies.partition_of(region)
    account_id = ctx.settings.account_id
    audit = spec.governance.audit_logs
    trail = trail_name(ctx.namer) if audit else None

    physical = {b.name: bucket_name(ctx.namer, b.name) for b in spec.storage.buckets}
    physical[ARTIFACTS] = bucket_name(ctx.namer, ARTIFACTS)

    # Feature Store writes offline stores from SageMaker's own network, as the features role.
    offline = features_sdk.offline_buckets(spec)
    writer = (policies.role_arn(partition, account_id, role_name(ctx.namer, features_sdk.ROLE, region)),)
    refs: dict[str, BucketRef] = {}
    for bucket in spec.storage.buckets:
        created = _bucket(ctx, bucket.name, physical[bucket.name], bucket, versioned=bucket.versioning,
                          key_arn=gov.key_id, policy=_policy(ctx, physical[bucket.name],
                                                             exempt=writer if bucket.name in offline else ()))
        refs[bucket.name] = created["ref"]

    audit_args = (account_id, policies.trail_arn(partition, region, account_id, trail)) if trail else None
    # The MLflow server runs in SageMaker's own network and writes its artifacts (mlflow/) from there.
    mlflow = ((policies.role_arn(partition, account_id, role_name(ctx.namer, MLFLOW_ROLE, region)),)
              if tracking.STAGE.used(spec) else ())
    artifacts = _bucket(ctx, ARTIFACTS, physical[ARTIFACTS], spec.storage.artifacts, versioned=True,
                        key_arn=gov.key_id, policy=_policy(ctx, physical[ARTIFACTS], audit=audit_args,
                                                           exempt=mlflow + (writer if ARTIFACTS in offline else ())))

    for name in sorted(retrained_buckets(spec) & set(refs)):
        aws.s3.BucketNotification(
            ctx.logical("notification", name),
            bucket=refs[name].physical,
            eventbridge=True,
            opts=ctx.opts(),
        )

    aws.iam.RolePolicy(
        ctx.logical("grant", "serving"),
        name=inline_policy_name(ctx.namer, "storage"),
        role=gov.identities["serving"].id,
        policy=json.dumps(policies.serving_storage_grant(partition=partition, artifacts=physical[ARTIFACTS])),
        opts=ctx.opts(),
    )

    if trail:
        _trail(ctx, trail, partition, physical, artifacts, gov.key_id)

    return StorageOutputs(buckets=refs, artifacts=artifacts["ref"])


def _policy(ctx: StageContext, bucket: str, *, audit: tuple[str, str] | None = None,
            exempt: tuple[str, ...] = ()) -> Any:
    """A bucket's policy (policies.bucket_policy): TLS only, and in a private network, nothing from
    outside the stack's VPC but AWS services, the identity deploying the stack (so that `up` and
    `destroy` still work from where they run) and `exempt`."""
    import pulumi

    partition = policies.partition_of(ctx.settings.region)
    network = ctx.upstream.find(PrivateNetwork)
    if network is None:
        return json.dumps(policies.bucket_policy(partition=partition, bucket=bucket, audit=audit))

    def document(values: list[str]) -> str:
        vpc, deployer = values
        perimeter = policies.NetworkPerimeter(vpc_id=vpc, exempt=(deployer, *exempt))
        return json.dumps(policies.bucket_policy(partition=partition, bucket=bucket, audit=audit, network=perimeter))

    return pulumi.Output.all(network.vpc_id, network.deployer).apply(document)


def _bucket(
    ctx: StageContext, name: str, physical: str, rules: Any, *, versioned: bool, key_arn: Any, policy: Any
) -> dict[str, Any]:
    import pulumi_aws as aws

    protected = ctx.opts(protect=True)
    bucket = aws.s3.Bucket(
        ctx.logical("bucket", name),
        bucket=physical,
        bucket_namespace=bucket_namespace(ctx.settings.region),
        force_destroy=ctx.teardown,
        tags=ctx.tags(),
        opts=protected,
    )
    ownership = aws.s3.BucketOwnershipControls(
        ctx.logical("ownership", name),
        bucket=bucket.bucket,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=protected,
    )
    public = aws.s3.BucketPublicAccessBlock(
        ctx.logical("publicaccess", name),
        bucket=bucket.bucket,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=protected,
    )
    aws.s3.BucketVersioning(
        ctx.logical("versioning", name),
        bucket=bucket.bucket,
        versioning_configuration={"status": "Enabled" if versioned else "Suspended"},
        opts=protected,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        ctx.logical("encryption", name),
        bucket=bucket.bucket,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
                "bucket_key_enabled": True,
            }
        ],
        opts=protected,
    )
    aws.s3.BucketLifecycleConfiguration(
        ctx.logical("lifecycle", name),
        bucket=bucket.bucket,
        rules=lifecycle_rules(rules),
        opts=protected,
    )
    bucket_policy = aws.s3.BucketPolicy(
        ctx.logical("policy", name),
        bucket=bucket.bucket,
        policy=policy,
        # S3 rejects a policy while the public access block is being written.
        opts=ctx.opts(protect=True, depends_on=[public, ownership]),
    )
    ref = BucketRef(name=name, physical=bucket.bucket, uri=bucket.bucket.apply(lambda b: f"s3://{b}"))
    return {"bucket": bucket, "policy": bucket_policy, "encryption": encryption, "ref": ref}


def retrained_buckets(spec: Any) -> set[str]:
    """Data buckets whose new objects start a model's retraining (retraining.on_new_data)."""
    buckets = {m.retraining.new_data_ref.bucket for m in spec.models
               if m.retraining is not None and m.retraining.new_data_ref is not None}
    # Batch scoring and data preparation on new data listen to their input's bucket the same way.
    return (
        buckets
        | {m.batch.input.bucket for m in spec.models if m.batch is not None and m.batch.on_new_data}
        | {m.data_prep.inputs[0].bucket for m in spec.models if m.data_prep is not None and m.data_prep.on_new_data}
    )


def lifecycle_rules(rules: Any) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Lifecycle rules of a bucket from its spec (storage.buckets[] or storage.artifacts)."""
    # An empty filter: every object (SDK docs, "Specifying an empty filter").
    whole_bucket: aws.s3.BucketLifecycleConfigurationRuleFilterArgsDict = {}
    out: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = []
    if rules.archive_after_days is not None:
        out.append({"id": "archive", "status": "Enabled", "filter": whole_bucket,
                    "transitions": [{"days": rules.archive_after_days, "storage_class": ARCHIVE_STORAGE_CLASS}]})
    if rules.expire_after_days is not None:
        out.append({"id": "expire", "status": "Enabled", "filter": whole_bucket,
                    "expiration": {"days": rules.expire_after_days}})
    if rules.noncurrent_expire_after_days is not None:
        out.append({"id": "expire-noncurrent", "status": "Enabled", "filter": whole_bucket,
                    "noncurrent_version_expiration": {"noncurrent_days": rules.noncurrent_expire_after_days}})
    out.append({"id": "abort-incomplete-uploads", "status": "Enabled", "filter": whole_bucket,
                "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS}})
    return out


def _trail(
    ctx: StageContext, trail: str, partition: str, physical: dict[str, str], artifacts: dict[str, Any], key_arn: Any
) -> None:
    import pulumi_aws as aws

    logged = [f"{policies.bucket_arn(partition, p)}/" for _, p in sorted(physical.items())]
    own_logs = f"{policies.bucket_arn(partition, physical[ARTIFACTS])}/{policies.AUDIT_PREFIX}/"
    aws.cloudtrail.Trail(
        ctx.logical("trail", "audit"),
        name=trail,
        s3_bucket_name=artifacts["bucket"].bucket,
        s3_key_prefix=policies.AUDIT_PREFIX,
        kms_key_id=key_arn,
        is_multi_region_trail=False,
        is_organization_trail=False,
        include_global_service_events=False,
        enable_log_file_validation=True,
        enable_logging=True,
        advanced_event_selectors=[
            {
                "name": "S3 data events on the stack's buckets, except the trail's own log files",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    {"field": "resources.ARN", "starts_withs": logged, "not_starts_withs": [own_logs]},
                ],
            }
        ],
        tags=ctx.tags(),
        # CloudTrail checks at creation that it may write to the bucket with the key.
        opts=ctx.opts(protect=True, depends_on=[artifacts["policy"], artifacts["encryption"]]),
    )
