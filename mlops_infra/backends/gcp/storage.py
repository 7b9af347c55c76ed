"""GCP storage: one Cloud Storage bucket per data bucket plus the artifact bucket, and their grants.

Every bucket: regional (with the key and Vertex AI), uniform bucket-level access (IAM only, no
ACLs), public access prevention enforced, versioned (unless a data bucket opts out), encrypted
with the governance key (objects written with other keys are refused), lifecycle-managed,
soft delete on, labelled, never force-destroyed, protected.

TLS-only needs no setting on GCP: the Cloud Storage APIs (JSON and XML) are served over HTTPS
only. The one plain-HTTP path GCS has is static website hosting through a CNAME, which needs a
`website` block: none is ever set here (tests assert it).
"""

from __future__ import annotations

from typing import Any

import pulumi_gcp as gcp

from mlops_infra.backends.context import StageContext
from mlops_infra.stages.storage import ARTIFACTS, BucketRef, StorageOutputs, data_reads
from mlops_infra.stages.training import checkpoint_prefix, output_prefix

OBJECT_VIEWER = "roles/storage.objectViewer"  # get + list objects
# Read, create, overwrite and delete objects (training rewrites checkpoints and outputs);
# versioning and soft delete keep what it overwrites or deletes.
OBJECT_USER = "roles/storage.objectUser"
# What training may touch in the artifact bucket: the roots of the neutral layout (models/<model>/
# and checkpoints/<model>/, stages/training.py), not captured data or anything else there.
TRAINING_ROOTS = tuple(sorted({f"{prefix('m').split('/', 1)[0]}/" for prefix in (output_prefix, checkpoint_prefix)}))
SOFT_DELETE_SECONDS = 7 * 86400  # the GCS default, stated so plans show it (7-90 days allowed)
ABORT_MULTIPART_AFTER_DAYS = 7


def build(ctx: StageContext) -> StorageOutputs:
    governance = ctx.upstream["governance"]
    training = governance.identities["training"]
    read_prefixes = data_reads(ctx.spec)

    buckets: dict[str, BucketRef] = {}
    for spec_bucket in ctx.spec.storage.buckets:
        bucket = _bucket(ctx, spec_bucket.name, spec_bucket, versioning=spec_bucket.versioning, key_id=governance.key_id)
        buckets[spec_bucket.name] = _ref(spec_bucket.name, bucket)
        prefixes = read_prefixes.get(spec_bucket.name)
        if prefixes is not None:
            physical = ctx.namer.name("gcp.storage.bucket", spec_bucket.name)
            gcp.storage.BucketIAMMember(
                ctx.logical("grant", "training-read", spec_bucket.name),
                bucket=bucket.name,
                role=OBJECT_VIEWER,
                member=training.principal,
                condition=prefix_condition(physical, prefixes),
                opts=ctx.opts(),
            )

    artifacts = _bucket(ctx, ARTIFACTS, ctx.spec.storage.artifacts, versioning=True, key_id=governance.key_id)
    artifacts_physical = ctx.namer.name("gcp.storage.bucket", ARTIFACTS)
    # Training reads and writes model outputs and checkpoints, nothing else in the bucket.
    # The serving identity gets nothing here: the serving stage lets it read each served model's
    # artifact prefix (one grant per model), and captured requests go to BigQuery on GCP.
    gcp.storage.BucketIAMMember(
        ctx.logical("grant", "training-readwrite", ARTIFACTS),
        bucket=artifacts.name,
        role=OBJECT_USER,
        member=training.principal,
        condition=prefix_condition(artifacts_physical, list(TRAINING_ROOTS)),
        opts=ctx.opts(),
    )
    return StorageOutputs(buckets=buckets, artifacts=_ref(ARTIFACTS, artifacts))


def _bucket(ctx: StageContext, name: str, settings: Any, *, versioning: bool, key_id: Any) -> gcp.storage.Bucket:
    return gcp.storage.Bucket(
        ctx.logical("bucket", name),
        name=ctx.namer.name("gcp.storage.bucket", name),
        project=ctx.settings.project,
        location=ctx.settings.region.upper(),  # the key ring's region: CMEK needs the same location
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning={"enabled": versioning},
        # key_id waits for the Cloud Storage agent's grant on the key (see governance.py).
        encryption={
            "default_kms_key_name": key_id,
            "google_managed_encryption_enforcement_config": {"restriction_mode": "FullyRestricted"},
            "customer_supplied_encryption_enforcement_config": {"restriction_mode": "FullyRestricted"},
        },
        lifecycle_rules=lifecycle_rules(
            archive_after_days=settings.archive_after_days,
            expire_after_days=settings.expire_after_days,
            noncurrent_expire_after_days=settings.noncurrent_expire_after_days,
        ),
        soft_delete_policy={"retention_duration_seconds": SOFT_DELETE_SECONDS},
        force_destroy=False,
        labels=ctx.tags(),
        opts=ctx.opts(protect=True),
    )


def _ref(name: str, bucket: gcp.storage.Bucket) -> BucketRef:
    return BucketRef(name=name, physical=bucket.name, uri=bucket.name.apply(lambda n: f"gs://{n}"))


def lifecycle_rules(
    *, archive_after_days: int | None, expire_after_days: int | None, noncurrent_expire_after_days: int | None
) -> list[gcp.storage.BucketLifecycleRuleArgsDict]:
    """The bucket's lifecycle rules, in a fixed order (pure: tests compare them with the spec)."""
    rules: list[gcp.storage.BucketLifecycleRuleArgsDict] = []
    if archive_after_days is not None:
        rules.append(
            {
                "action": {"type": "SetStorageClass", "storage_class": "ARCHIVE"},
                "condition": {"age": archive_after_days, "with_state": "LIVE"},
            }
        )
    if expire_after_days is not None:
        # On a versioned bucket this makes the live object noncurrent; the next rule removes it.
        rules.append({"action": {"type": "Delete"}, "condition": {"age": expire_after_days, "with_state": "LIVE"}})
    if noncurrent_expire_after_days is not None:
        # Kept on unversioned buckets too: it clears versions left from when versioning was on.
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {"days_since_noncurrent_time": noncurrent_expire_after_days, "with_state": "ARCHIVED"},
            }
        )
    rules.append(
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": ABORT_MULTIPART_AFTER_DAYS}}
    )
    return rules


def prefix_condition(
    physical_bucket: str, prefixes: list[str]
) -> gcp.storage.BucketIAMMemberConditionArgsDict | None:
    """An IAM condition limiting object reads (get and list) to `prefixes`; None for the whole bucket.

    Object gets are matched on the object's resource name; lists on the prefix the caller asks
    for (the storage.googleapis.com/objectListPrefix API attribute). Prefixes come from the
    spec's DataRef pattern (letters, digits, . _ = - and /), so they need no escaping.
    """
    if not prefixes or "" in prefixes:
        return None
    clauses = []
    for prefix in prefixes:
        clauses.append(f'resource.name.startsWith("projects/_/buckets/{physical_bucket}/objects/{prefix}")')
        clauses.append(f'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{prefix}")')
    return {
        "title": "mlops-infra object prefixes",
        "description": f"only under: {', '.join(prefixes)}",
        "expression": " || ".join(clauses),
    }
