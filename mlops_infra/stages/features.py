"""Features: feature groups with an offline (and optional online) store, read by training and serving."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class FeatureOutputs:
    groups: dict[str, Any]  # feature group name -> its id in the cloud

    def exports(self) -> dict[str, Any]:
        return {"feature_groups": dict(sorted(self.groups.items()))}


def group_names(spec: SpecBase) -> list[str]:
    return [g.name for g in spec.feature_store.groups] if spec.feature_store else []


def readers(spec: SpecBase, group: str) -> list[str]:
    """The models that read a feature group (their identities get read access, nobody else)."""
    return [m.name for m in spec.models if group in m.features]


def _check(spec: SpecBase) -> list:
    problems = []
    known = group_names(spec)
    seen: dict[str, int] = {}
    for i, name in enumerate(known):
        if name in seen:
            problems.append(
                finding(("feature_store", "groups", i, "name"), f"duplicate feature group {name!r}",
                        hint="feature group names are unique within a spec", value=name)
            )
        seen.setdefault(name, i)
    if spec.feature_store:
        for i, group in enumerate(spec.feature_store.groups):
            problems += check_bucket_ref(spec, group.source, ("feature_store", "groups", i, "source"))
    for i, model in enumerate(spec.models):
        for j, name in enumerate(model.features):
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            problems.append(
                finding(
                    ("models", i, "features", j),
                    f"unknown feature group {name!r}",
                    hint=f"did you mean {close[0]!r}?" if close else "declare it under feature_store.groups",
                    value=name,
                )
            )
    return problems


STAGE = Stage(
    name="features",
    title="Features",
    requires=("governance", "storage"),
    used_at=lambda spec: [("feature_store",)] if spec.feature_store else [],
    checks=(_check,),
    stack_wide=True,
)
