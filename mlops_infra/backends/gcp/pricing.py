"""What a model's training run is billed for on GCP: the machine type and its GPUs.

Vertex AI's price list names machine types and accelerators on separate lines, so a run is
priced as both (the price book holds the figures; a missing one is reported unpriced).
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.gcp import catalog


def training_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per instance) of a training run: the machine type, plus its accelerators."""
    return _skus(model.training.compute, "training", model=model, settings=settings)


def serving_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per replica) of a deployed model: the machine type, plus its accelerators."""
    return _skus(model.serving.compute, "serving", model=model, settings=settings)


def _skus(compute: Any, purpose: str, *, model: Any, settings: Any) -> list[tuple[str, int]]:
    spec = catalog.machine_spec(compute, purpose, settings, model=model.name)
    skus = [(spec.machine_type, 1)]
    if spec.accelerator_type:
        skus.append((spec.accelerator_type, spec.accelerator_count))
    return skus
