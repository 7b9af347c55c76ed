"""What the policy rules need to know about GCP plans (pure data, no SDK)."""

from __future__ import annotations

from mlops_infra.backends.gcp.catalog import accelerator_types
from mlops_infra.policy.facts import CloudFacts, Require

_BUCKET = "gcp:storage/bucket:Bucket"

FACTS = CloudFacts(
    stateful=frozenset({_BUCKET, "gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKey:CryptoKey"}),
    encryption=(
        Require(_BUCKET, "encryption.defaultKmsKeyName", why="CMEK with the stack key"),
        Require("gcp:kms/cryptoKey:CryptoKey", "rotationPeriod", why="key rotation"),
    ),
    public_access=(
        Require(_BUCKET, "publicAccessPrevention", "enforced"),
        Require(_BUCKET, "uniformBucketLevelAccess", True),
    ),
    public_principals=("allUsers", "allAuthenticatedUsers"),
    broad_roles=(r"^roles/(owner|editor|viewer)$", r"^roles/storage\.admin$", r"^roles/cloudkms\.admin$"),
    audit=(Require("gcp:projects/iAMAuditConfig:IAMAuditConfig", "auditLogConfigs"),),
    tag_fields={
        "gcp:monitoring/notificationChannel:NotificationChannel": "userLabels",
        "gcp:monitoring/metricDescriptor:MetricDescriptor": None,
    },
    replica_limits=(("pulumi-python:dynamic/mlops-infra-gcp:DeployedModel", "replicas.max"),),
    # A GCP machine spec names its GPUs as an accelerator type and count (even for a2/g2/a3).
    gpus={name: 1 for name in accelerator_types()},
)
