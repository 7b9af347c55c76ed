"""Validation rules that every backend applies with its own facts (limits, service names).

The rule is shared; what differs per cloud is data passed in, so no backend
re-implements the loop and no shared code branches on the cloud.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable

from mlops_infra.backends.base import CatalogMiss
from mlops_infra.spec.problems import Path, Problem
from mlops_infra.stages.base import finding

COMPUTE_PURPOSES = ("training", "serving")  # model sections that carry a compute block


def unknown_override_models(spec: Any, cloud: str, overridden: Iterable[str]) -> list[Problem]:
    """Overrides that name a model the spec does not have."""
    names = sorted(m.name for m in spec.models)
    problems = []
    for name in sorted(overridden):
        if name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1)
        problems.append(
            finding(
                ("clouds", cloud, "overrides", "models", name),
                f"overrides name an unknown model {name!r}",
                hint=f"did you mean {close[0]!r}?" if close else f"known models: {', '.join(names) or 'none'}",
                value=name,
            )
        )
    return problems


def compute_misses(
    spec: Any,
    *,
    overridden: Callable[[Any, str], bool],
    resolve: Callable[[Any, str], Any],
) -> list[Problem]:
    """Each model's training/serving compute the catalog cannot serve (unless an override replaces it)."""
    problems = []
    for i, model in enumerate(spec.models):
        for purpose in COMPUTE_PURPOSES:
            section = getattr(model, purpose)
            if section is None or overridden(model, purpose):
                continue
            try:
                resolve(section.compute, purpose)
            except CatalogMiss as miss:
                problems.append(
                    finding(
                        ("models", i, purpose, "compute"), miss.message, hint=miss.hint, value=section.compute.label
                    )
                )
    return problems


def archive_minimum(spec: Any, *, minimum_days: int, tier: str, cloud: str) -> list[Problem]:
    """Warn when objects are deleted before the archive tier's minimum billed duration."""
    entries: list[tuple[Path, Any]] = [(("storage", "buckets", i), b) for i, b in enumerate(spec.storage.buckets)]
    entries.append((("storage", "artifacts"), spec.storage.artifacts))
    problems = []
    for path, rule in entries:
        archive, expire = rule.archive_after_days, rule.expire_after_days
        if archive is not None and expire is not None and expire - archive < minimum_days:
            problems.append(
                finding(
                    (*path, "expire_after_days"),
                    f"objects are deleted {expire - archive} days after moving to {tier}, which {cloud} bills "
                    f"for at least {minimum_days} days per object",
                    hint=f"expire at least {minimum_days} days after archive_after_days, or do not archive",
                    value=expire,
                    severity="warning",
                )
            )
    return problems


def no_scale_to_zero(spec: Any, *, service: str, hint: str) -> list[Problem]:
    """Errors for min_replicas: 0 where the endpoint service keeps at least one replica."""
    return [
        finding(
            ("models", i, "serving", "autoscaling", "min_replicas"),
            f"{service} cannot scale to zero: a deployment keeps at least one replica",
            hint=hint,
            value=0,
        )
        for i, model in enumerate(spec.models)
        if model.serving is not None and model.serving.autoscaling.min_replicas == 0
    ]


def private_network_has_no_effect(spec: Any, *, message: str, hint: str) -> list[Problem]:
    if spec.governance.network != "private":
        return []
    return [finding(("governance", "network"), message, hint=hint, value="private", severity="warning")]


def serving_modes(spec: Any, *, offered: frozenset[str], cloud: str, reason: Callable[[str], str]) -> list[Problem]:
    """A serving mode this cloud does not offer: an error, or with `mode_elsewhere: realtime` a
    warning that the model is served realtime here (its mode's own options left out)."""
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving is None or serving.mode in offered:
            continue
        path = ("models", i, "serving", "mode")
        why = reason(serving.mode)
        if serving.mode_elsewhere == "realtime":
            problems.append(
                finding(
                    path,
                    f"{cloud} has no {serving.mode} endpoints ({why}): served realtime there with this "
                    "model's autoscaling (mode_elsewhere: realtime)",
                    severity="warning",
                )
            )
        else:
            problems.append(
                finding(
                    path,
                    f"{cloud} has no {serving.mode} endpoints: {why}",
                    hint="use mode: realtime, or set mode_elsewhere: realtime to serve realtime on clouds "
                    f"without {serving.mode} endpoints",
                    value=serving.mode,
                )
            )
    return problems
