"""Model registry: where trained models are versioned and approved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths


@dataclass(frozen=True)
class RegistryOutputs:
    registries: dict[str, Any]  # model name -> model package group / registry id

    def exports(self) -> dict[str, Any]:
        return {"registries": dict(sorted(self.registries.items()))}


def _check(spec: SpecBase) -> list:
    return [
        finding(
            ("models", i, "registry"),
            "a registry needs a training block or a serving.model_uri to register",
            hint="add training: to this model, or set serving.model_uri",
        )
        for i, m in enumerate(spec.models)
        if m.registry is not None and m.training is None and not (m.serving and m.serving.model_uri)
    ]


STAGE = Stage(
    name="registry",
    title="Registry",
    requires=("governance", "storage"),
    used_at=lambda spec: model_paths(spec, "registry"),
    checks=(_check,),
)
