"""Training: a repeatable, parameterised training definition per model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, model_paths
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class TrainingOutputs:
    pipelines: dict[str, Any]  # model name -> pipeline / workflow / job id
    output_uris: dict[str, Any]  # model name -> where its artifacts land

    def exports(self) -> dict[str, Any]:
        return {"pipelines": dict(sorted(self.pipelines.items()))}


def _check_inputs(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        if model.training is None:
            continue
        for j, ref in enumerate(model.training.inputs):
            problems += check_bucket_ref(spec, ref, ("models", i, "training", "inputs", j))
    return problems


STAGE = Stage(
    name="training",
    title="Training",
    requires=("governance", "storage"),
    used_at=lambda spec: model_paths(spec, "training"),
    checks=(_check_inputs,),
)
