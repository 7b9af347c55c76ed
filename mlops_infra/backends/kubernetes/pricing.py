"""What a workload asks of the cluster (Kubernetes has no SKUs): its requests, as the policy and
cost rules read them. The first entry names the shape ("4cpu-16gib"), a GPU request follows."""

from __future__ import annotations

from typing import Any


def training_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    return _requests(model.training.compute)


def serving_skus(*, model: Any, settings: Any) -> list[tuple[str, int]]:
    return _requests(model.serving.compute)


def _requests(compute: Any) -> list[tuple[str, int]]:
    need = compute.requirements
    found = [(f"{need['cpus']}cpu-{need['memory_gib']}gib", 1)]
    if need["gpus"]:
        found.append(("nvidia.com/gpu", int(need["gpus"])))
    return found
