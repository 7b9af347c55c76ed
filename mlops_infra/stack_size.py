"""How many models one Pulumi stack holds before planning it gets heavy, per cloud, from measurements.

`mlops_infra/data/plan-size.json` keeps what benchmarks/run.py measured on each cloud: peak
memory and plan time, each at two spec sizes. Both grow linearly with the number of models
(README, Performance), so the line through a metric's two points says where one stack passes
its limit (about a minute, 2 GB). Above the first of those, validate warns and points to `split`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable

from mlops_infra.spec.problems import Problem

DATA = "plan-size.json"


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from importlib.resources import files

    return json.loads(files("mlops_infra.data").joinpath(DATA).read_text())


def models_per_stack_limit(cloud: str) -> int | None:
    """The most models (in hundreds) one stack holds on `cloud` while its plan stays within every
    limit; None when the cloud was not measured."""
    data = _data()
    measured = data["clouds"].get(cloud)
    if not measured:
        return None
    crossings = []
    for metric, limit in data["limits"].items():
        small, large = sorted(measured[metric], key=lambda point: point["models"])
        slope = (large["value"] - small["value"]) / (large["models"] - small["models"])
        crossings.append(small["models"] + (limit - small["value"]) / slope)
    return int(min(crossings)) // 100 * 100


def stack_size_problems(spec: Any, clouds: Iterable[str]) -> Iterable[Problem]:
    """A warning when one unsplit stack holds more models than planning handles comfortably."""
    from mlops_infra.stages.base import finding

    if spec.split.enabled:
        return
    count = len(spec.models)
    over = {}
    for cloud in clouds:
        limit = models_per_stack_limit(cloud)
        if limit is not None and count > limit:
            over[cloud] = limit
    if not over:
        return
    limits = _data()["limits"]
    where = ", ".join(f"{cloud} (above {limit:,} models)" for cloud, limit in sorted(over.items()))
    yield finding(
        ("models",),
        f"{count:,} models in one Pulumi stack: planning it takes more than about "
        f"{limits['plan_seconds']} s or {limits['peak_mib'] // 1024} GB of memory on {where}, and every `up` "
        "previews and locks all of them",
        hint="split the spec into a shared stack and model stacks: split: {enabled: true} "
        "(README, Big specs); one model's change then plans in about a second",
        value=count,
        severity="warning",
    )
