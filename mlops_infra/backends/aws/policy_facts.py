"""What the policy rules need to know about AWS plans (pure data, no SDK)."""

from __future__ import annotations

from mlops_infra.backends.aws.catalog import INSTANCE_SPECS
from mlops_infra.policy.facts import CloudFacts, Companion, Require

_BUCKET = "aws:s3/bucket:Bucket"
_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"

FACTS = CloudFacts(
    stateful=frozenset({_BUCKET, "aws:s3/bucketV2:BucketV2", "aws:kms/key:Key"}),
    encryption=(
        Companion(_BUCKET, "bucket", _SSE, "bucket", why="every bucket needs a default encryption configuration"),
        Require(_SSE, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "aws:kms", why="SSE-KMS with the stack key"),
        Require("aws:kms/key:Key", "enableKeyRotation", True, why="key rotation"),
        Require("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "kmsKeyArn", why="endpoint volumes"),
    ),
    public_access=(
        Companion(_BUCKET, "bucket", _BLOCK, "bucket", why="every bucket needs a public access block"),
        Require(_BLOCK, "blockPublicAcls", True),
        Require(_BLOCK, "blockPublicPolicy", True),
        Require(_BLOCK, "ignorePublicAcls", True),
        Require(_BLOCK, "restrictPublicBuckets", True),
    ),
    public_principals=(),
    broad_roles=(r"arn:aws:iam::aws:policy/(AdministratorAccess|PowerUserAccess)\b",),
    audit=(Require("aws:cloudtrail/trail:Trail", "enableLogging", True),),
    replica_limits=(("aws:appautoscaling/target:Target", "maxCapacity"),),
    gpus={name: spec.gpus for name, spec in INSTANCE_SPECS.items()},
)
