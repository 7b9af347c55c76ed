"""Test helpers: build a spec from a dict and plan it offline."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlops_infra.backends import registry
from mlops_infra.plan import plan_document
from mlops_infra.spec.models import spec_model

ROOT = Path(__file__).resolve().parent.parent
# Every cloud of the backend registry: the one list of clouds (a new backend folder joins every
# cloud-parametrized test, security invariants included).
CLOUDS: tuple[str, ...] = tuple(registry())

BASE_SPEC: dict[str, Any] = {
    "apiVersion": "mlops-infra/v1",
    "project": "churn",
    "environment": "dev",
    "clouds": {
        "aws": {"region": "us-east-1", "account_id": "123456789012"},
        "gcp": {"project": "acme-ml-dev", "region": "us-central1", "name_generation": 1},
        "azure": {"location": "westeurope", "subscription_id": "00000000-0000-0000-0000-000000000000"},
        "kubernetes": {
            "context": "kind-mlops",
            "object_store": {"endpoint": "https://minio.example.com", "credentials_secret": "object-store"},
            "quota": {"cpus": 256, "memory_gib": 1024, "gpus": 8},
        },
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


def by_name(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """The plan's resource of that logical name."""
    return next(r for r in plan["resources"] if r["name"] == name)


def resources_of(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


@lru_cache(maxsize=None)
def _example_plan(stack: str, cloud: str) -> str:
    from mlops_infra import api
    from mlops_infra.plan import dump_plan

    source = api.resolve_source(stack=stack, spec=None, root=ROOT)
    return dump_plan(api.plan(source=source, cloud=cloud).document)


def example_plan(stack: str, cloud: str) -> dict[str, Any]:
    """The plan of stacks/<stack>.yaml on `cloud`, planned once per test session (a fresh copy each call)."""
    return json.loads(_example_plan(stack, cloud))


def lifecycle_edit(cloud: str) -> tuple[str, int, int]:
    """A bucket lifecycle change the cloud applies: (field, value in the examples, new value).

    Archiving where the cloud has an archive tier; expiry where archive_after_days is only a gap
    (an S3-compatible store on a cluster), since changing it there plans nothing.
    """
    from mlops_infra.backends import registry

    if "storage.buckets[].archive_after_days" in registry()[cloud].gaps:
        return "expire_after_days", 730, 1200
    return "archive_after_days", 90, 120
