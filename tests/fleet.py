"""A fleet shaped like a real organization's: many models, each reading only its own data.

Every model trains on its own prefix of `raw`, compares drift with its own baseline under
`features`, and retrains when objects arrive under its own prefix of `labels`: three
per-model prefixes in three buckets, the case that broke each cloud's IAM limits.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.planning import BASE_SPEC


def fleet_model(name: str, *, group: str | None = None) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": name,
        "training": {
            "image": "ghcr.io/acme/train:1.0.0",
            "compute": {"size": "cpu-large"},
            "max_runtime": "4h",
            "inputs": [{"bucket": "raw", "prefix": f"{name}/"}],
        },
        "registry": {"approval": "manual"},
        "serving": {
            "image": "ghcr.io/acme/serve:1.0.0",
            "compute": {"size": "cpu-small"},
            "autoscaling": {"min_replicas": 1, "max_replicas": 2, "target_requests_per_replica": 100},
            "data_capture": {"sampling_percent": 10},
        },
        "monitoring": {
            "latency_p99_ms": 300,
            "drift": {"baseline": {"bucket": "features", "prefix": f"{name}/baseline/"}, "schedule": "daily"},
        },
        "retraining": {"on_new_data": {"bucket": "labels", "prefix": f"{name}/"}},
    }
    if group is not None:
        model["group"] = group
    return model


def fleet_spec(models: int, *, group_size: int = 0, environment: str = "prod") -> dict[str, Any]:
    """`models` models named m0000...; with group_size, groups of that many share an identity."""
    spec = copy.deepcopy(BASE_SPEC)
    spec["environment"] = environment
    spec["storage"] = {"buckets": [{"name": "raw"}, {"name": "features"}, {"name": "labels"}]}
    spec["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}, "dashboard": True}
    spec["models"] = [
        fleet_model(f"m{i:04d}", group=f"team{i // group_size:03d}" if group_size else None) for i in range(models)
    ]
    return spec
