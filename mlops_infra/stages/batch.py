"""Batch: scheduled (or new-data) scoring of a bucket prefix with the model's version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class BatchOutputs:
    jobs: dict[str, Any]  # model name -> what starts its scoring runs (pipeline, workflow, endpoint)

    def exports(self) -> dict[str, Any]:
        return {}


def _check(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        batch = model.batch
        if batch is None:
            continue
        path = ("models", i, "batch")
        problems += check_bucket_ref(spec, batch.input, (*path, "input"))
        problems += check_bucket_ref(spec, batch.output, (*path, "output"))
        if batch.model_uri is None and (model.registry is None or model.training is None):
            problems.append(
                finding(
                    path,
                    "batch scoring uses the registry's latest approved version, but this model has no "
                    "training and registry to make one",
                    hint="add training: and registry:, or set batch.model_uri to an artifact",
                )
            )
    return problems


STAGE = Stage(
    name="batch",
    title="Batch",
    requires=("governance", "storage", "training", "registry", "monitoring"),
    used_at=lambda spec: model_paths(spec, "batch"),
    checks=(_check,),
)
