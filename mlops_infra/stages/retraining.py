"""Retraining: schedules and event triggers that start a model's training pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class RetrainingOutputs:
    triggers: dict[str, list[Any]]  # model name -> trigger ids

    def exports(self) -> dict[str, Any]:
        return {}


def _check(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        retrain = model.retraining
        if retrain is None:
            continue
        path = ("models", i, "retraining")
        if model.training is None:
            problems.append(
                finding(
                    path,
                    "retraining starts the model's training pipeline, but this model has no training block",
                    hint="add training: to this model or remove retraining:",
                )
            )
        if retrain.on_drift and not (model.monitoring and model.monitoring.drift):
            problems.append(
                finding(
                    (*path, "on_drift"),
                    "on_drift needs drift monitoring on this model",
                    hint=f"add models[{i}].monitoring.drift, or set on_drift: false",
                )
            )
        problems += check_bucket_ref(spec, retrain.on_new_data, (*path, "on_new_data"))
    return problems


STAGE = Stage(
    name="retraining",
    title="Retraining",
    requires=("governance", "storage", "training", "monitoring"),
    used_at=lambda spec: model_paths(spec, "retraining"),
    checks=(_check,),
)
