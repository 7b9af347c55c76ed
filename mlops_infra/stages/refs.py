"""Checks shared by stages that point at buckets or at other parts of a model."""

from __future__ import annotations

import difflib

from mlops_infra.spec.models import DataRef, SpecBase
from mlops_infra.spec.problems import Path, Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS


def check_bucket_ref(spec: SpecBase, ref: DataRef | str | None, path: Path) -> list[Problem]:
    if ref is None:
        return []
    name = ref.bucket if isinstance(ref, DataRef) else ref
    known = sorted({b.name for b in spec.storage.buckets})
    if name in known:
        return []
    if isinstance(ref, DataRef):
        path = (*path, "bucket")
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif name == ARTIFACTS:
        hint = "the artifact bucket is managed by mlops-infra; point at a data bucket"
    else:
        hint = f"declare it under storage.buckets (known: {', '.join(known) or 'none'})"
    return [finding(path, f"unknown bucket {name!r}", hint=hint, value=name)]
