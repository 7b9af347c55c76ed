"""Storage: the data buckets the spec names plus the stack's artifact bucket.

Every bucket is versioned (unless the spec says otherwise for a data bucket),
encrypted with the governance key, private, TLS-only, lifecycle-managed and
protected from destroy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding

ARTIFACTS = "artifacts"  # the artifact bucket's logical name; reserved for data buckets
CAPTURE_PREFIX = "data-capture/"  # where endpoints write captured requests in the artifact bucket


def capture_prefix(model: str) -> str:
    """Where one model's captured requests and responses land in the artifact bucket."""
    return f"{CAPTURE_PREFIX}{model}/"


@dataclass(frozen=True)
class BucketRef:
    name: str  # logical name from the spec
    physical: Any  # physical bucket / container name
    uri: Any  # s3://..., gs://..., https://<account>.blob.core.windows.net/<container>


@dataclass(frozen=True)
class StorageOutputs:
    buckets: dict[str, BucketRef]  # data buckets by logical name
    artifacts: BucketRef

    def exports(self) -> dict[str, Any]:
        return {
            "artifacts_uri": self.artifacts.uri,
            "bucket_uris": {name: ref.uri for name, ref in sorted(self.buckets.items())},
        }


def bucket_names(spec: SpecBase) -> set[str]:
    return {b.name for b in spec.storage.buckets}


def data_reads(spec: SpecBase) -> dict[str, list[str]]:
    """Data buckets some model of the stack reads -> the prefixes read ([""] = the whole bucket).

    The union over every model (see mlops_infra/access.py for what one identity may read).
    """
    from mlops_infra.access import reads_of

    return reads_of(spec.models)


def _check_buckets(spec: SpecBase) -> list:
    problems = []
    seen: dict[str, int] = {}
    for i, bucket in enumerate(spec.storage.buckets):
        path = ("storage", "buckets", i, "name")
        if bucket.name == ARTIFACTS:
            problems.append(
                finding(
                    path,
                    f"bucket name {ARTIFACTS!r} is reserved for the stack's artifact bucket",
                    hint="configure it under storage.artifacts, or pick another name",
                    value=bucket.name,
                )
            )
        if bucket.name in seen:
            problems.append(
                finding(
                    path,
                    f"duplicate bucket name {bucket.name!r} (also storage.buckets[{seen[bucket.name]}])",
                    hint="bucket names must be unique within a spec",
                )
            )
        seen.setdefault(bucket.name, i)
    return problems


STAGE = Stage(
    name="storage",
    title="Storage",
    requires=("governance",),
    used_at=lambda spec: [("storage",)],
    checks=(_check_buckets,),
    always=True,
    stack_wide=True,
)
