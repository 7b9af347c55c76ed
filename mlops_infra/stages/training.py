"""Training: a repeatable, parameterised training definition per model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths
from mlops_infra.stages.refs import check_bucket_ref


# Layout of the artifact bucket that every cloud follows (relative to its root).
def output_prefix(model: str) -> str:
    """Where a model's trained artifacts land."""
    return f"models/{model}/"


def checkpoint_prefix(model: str) -> str:
    """Where spot/preemptible training keeps checkpoints to resume from."""
    return f"checkpoints/{model}/"


@dataclass(frozen=True)
class TrainingOutputs:
    pipelines: dict[str, Any]  # model name -> what retraining starts: pipeline ARN / workflow id / job id
    output_uris: dict[str, Any]  # model name -> artifact bucket URI + output_prefix(model)
    images: dict[str, Any] = field(default_factory=dict)  # model name -> the image the cloud will pull

    def exports(self) -> dict[str, Any]:
        return {
            "pipelines": dict(sorted(self.pipelines.items())),
            "output_uris": dict(sorted(self.output_uris.items())),
            "images": dict(sorted(self.images.items())),
        }


def _check_inputs(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        if model.training is None:
            continue
        for j, ref in enumerate(model.training.inputs):
            problems += check_bucket_ref(spec, ref, ("models", i, "training", "inputs", j))
    return problems


def _check_evaluation(spec: SpecBase) -> list:
    """The gate decides what is registered: without a registry there is nothing to gate."""
    return [
        finding(
            ("models", i, "training", "evaluation"),
            "the evaluation gate decides which versions are registered, but this model has no registry",
            hint="add registry: {approval: automatic} (or manual), or remove the evaluation",
        )
        for i, model in enumerate(spec.models)
        if model.training is not None and model.training.evaluation is not None and model.registry is None
    ]


STAGE = Stage(
    name="training",
    title="Training",
    requires=("governance", "storage", "tracking", "registry"),
    used_at=lambda spec: model_paths(spec, "training"),
    checks=(_check_inputs, _check_evaluation),
)
