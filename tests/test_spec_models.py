"""Neutral spec models: defaults, local rules, schema completeness."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops_infra.spec.models import SIZE_CLASSES, Autoscaling, Compute, Rollout, Serving, Training, spec_model
from mlops_infra.spec.types import check_cron, format_duration, parse_duration


def test_compute_size_or_explicit() -> None:
    assert Compute(size="gpu-x8").requirements == SIZE_CLASSES["gpu-x8"]
    assert Compute(cpus=4, memory_gib=16).requirements == {"cpus": 4, "memory_gib": 16, "gpus": 0}
    with pytest.raises(ValidationError, match="not both"):
        Compute(size="cpu-small", cpus=2)
    with pytest.raises(ValidationError, match="size class"):
        Compute(cpus=2)


def test_durations() -> None:
    assert parse_duration("4h") == 14400 and format_duration(14400) == "4h"
    training = Training.model_validate(
        {"image": "r/i:1", "compute": {"size": "cpu-small"}, "spot": True, "max_runtime": "2h", "max_wait": "3h"}
    )
    assert training.max_runtime == 7200 and training.max_wait == 10800
    with pytest.raises(ValidationError, match="max_wait only applies"):
        Training.model_validate({"image": "r/i:1", "compute": {"size": "cpu-small"}, "max_wait": "3h"})
    with pytest.raises(ValidationError, match="duration"):
        Training.model_validate({"image": "r/i:1", "compute": {"size": "cpu-small"}, "max_runtime": "4 hours"})


def test_image_needs_tag_or_digest() -> None:
    with pytest.raises(ValidationError, match="explicit tag"):
        Training.model_validate({"image": "ghcr.io/acme/train", "compute": {"size": "cpu-small"}})
    Training.model_validate({"image": "ghcr.io/acme/train@sha256:" + "a" * 64, "compute": {"size": "cpu-small"}})


def test_autoscaling_and_rollout_rules() -> None:
    with pytest.raises(ValidationError, match="greater than max_replicas"):
        Autoscaling(min_replicas=3, max_replicas=2)
    with pytest.raises(ValidationError, match="canary_percent"):
        Rollout(mode="canary")
    with pytest.raises(ValidationError, match="at least 2"):
        Serving.model_validate(
            {"image": "r/i:1", "compute": {"size": "cpu-small"}, "rollout": {"mode": "canary", "canary_percent": 10}}
        )


def test_strict_types_no_coercion() -> None:
    with pytest.raises(ValidationError):
        Autoscaling.model_validate({"min_replicas": "1"})


@pytest.mark.parametrize("cron", ["0 3 * * 1", "*/15 * * * *", "0 0 1 jan,jul *", "30 4 1-7 * mon-fri"])
def test_valid_cron(cron: str) -> None:
    assert check_cron(cron) == cron


def test_schema_covers_every_section() -> None:
    schema = spec_model().model_json_schema(by_alias=True)
    assert set(schema["properties"]) >= {
        "apiVersion", "project", "environment", "cloud", "clouds", "tags", "storage", "tracking",
        "models", "monitoring", "governance", "split", "estimate", "feature_store", "workspaces",
    }
    model = schema["$defs"]["Model"]["properties"]
    assert set(model) == {
        "name", "training", "registry", "serving", "monitoring", "retraining", "group", "batch", "data_prep",
        "features",
    }
    assert {"mode", "serverless", "async", "shadow", "auth"} <= set(schema["$defs"]["Serving"]["properties"])
    assert schema["additionalProperties"] is False
