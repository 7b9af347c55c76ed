"""Test helpers: build a spec from a dict and plan it offline."""

from __future__ import annotations

import copy
from typing import Any

from mlops_infra.plan import plan_document
from mlops_infra.spec.models import spec_model

BASE_SPEC: dict[str, Any] = {
    "apiVersion": "mlops-infra/v1",
    "project": "churn",
    "environment": "dev",
    "clouds": {
        "aws": {"region": "us-east-1"},
        "gcp": {"project": "acme-ml-dev", "region": "us-central1"},
        "azure": {"location": "westeurope"},
    },
    "tags": {"owner": "ml-platform"},
    "storage": {"buckets": [{"name": "raw", "archive_after_days": 90, "expire_after_days": 730}]},
}


def spec_from(data: dict[str, Any] | None = None, **changes: Any) -> Any:
    raw = copy.deepcopy(data if data is not None else BASE_SPEC)
    raw.update(changes)
    return spec_model().model_validate(raw)


def plan_for(cloud: str, data: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    return plan_document(spec_from(data, **changes), cloud, stack="dev")


def resources_of(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]
