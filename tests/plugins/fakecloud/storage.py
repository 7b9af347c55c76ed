"""FakeCloud storage: the spec's buckets and the artifact bucket, encrypted with the stack key."""

from __future__ import annotations

from mlops_infra.backends.context import StageContext
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, BucketRef, StorageOutputs


def build(ctx: StageContext) -> StorageOutputs:
    from mlops_infra.backends.fakecloud.resources import Bucket

    key = ctx.upstream.of(GovernanceOutputs).key_id

    def bucket(name: str, versioning: bool, expire: int | None) -> BucketRef:
        physical = ctx.namer.name("fakecloud.bucket", name)
        Bucket(
            ctx.logical("bucket", name),
            {"name": physical, "versioning": versioning, "expireAfterDays": expire, "encryptionKey": key,
             "publicAccess": False, "forceDestroy": ctx.teardown, "tags": ctx.tags()},
            ctx.opts(protect=True),
        )
        return BucketRef(name=name, physical=physical, uri=f"fake://{physical}")

    buckets = {b.name: bucket(b.name, b.versioning, b.expire_after_days) for b in ctx.spec.storage.buckets}
    artifacts = bucket(ARTIFACTS, True, ctx.spec.storage.artifacts.expire_after_days)
    return StorageOutputs(buckets=buckets, artifacts=artifacts)
