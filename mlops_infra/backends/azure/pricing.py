"""What a model's training run is billed for on Azure: its compute cluster's VM size.

Azure Machine Learning adds no charge of its own to the VMs it runs on, so the VM price is the
training price.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.azure import catalog


def training_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per instance) of a training run: the cluster's VM size."""
    return [(catalog.training_vm_size(model, settings), 1)]


def serving_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    """(SKU, count per replica) of a model's online deployment: its instance type."""
    return [(catalog.serving_instance_type(model, settings), 1)]
