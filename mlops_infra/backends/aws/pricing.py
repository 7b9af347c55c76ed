"""What a model's training run is billed for on AWS: one SageMaker training instance type."""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.aws import catalog


def training_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per instance) of a training run: the override, else the catalog's type."""
    override = settings.overrides.models.get(model.name)
    chosen = override.training_instance_type if override is not None else None
    return [(chosen or catalog.instance_type(model.training.compute, "training", settings), 1)]


def serving_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per replica) of a model's endpoint: the override, else the catalog's type."""
    override = settings.overrides.models.get(model.name)
    chosen = override.serving_instance_type if override is not None else None
    return [(chosen or catalog.instance_type(model.serving.compute, "serving", settings), 1)]
