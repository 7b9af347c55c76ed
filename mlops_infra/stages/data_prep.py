"""Data preparation: a containerised job, on a schedule or on new data, writing what training reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class DataPrepOutputs:
    jobs: dict[str, Any]  # model name -> what starts its preparation runs

    def exports(self) -> dict[str, Any]:
        return {}


def _check(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        prep = model.data_prep
        if prep is None:
            continue
        path = ("models", i, "data_prep")
        for j, ref in enumerate(prep.inputs):
            problems += check_bucket_ref(spec, ref, (*path, "inputs", j))
        problems += check_bucket_ref(spec, prep.output, (*path, "output"))
        if any(ref.bucket == prep.output.bucket and ref.prefix.startswith(prep.output.prefix) for ref in prep.inputs):
            problems.append(
                finding(
                    (*path, "output"),
                    "the preparation job would read what it writes: an input lies inside its output",
                    hint="write to a prefix of its own, e.g. prepared/",
                )
            )
        reads = model.training.input_refs if model.training else []
        if model.training is not None and not any(
            ref.bucket == prep.output.bucket and prep.output.prefix.startswith(ref.prefix) for ref in reads
        ):
            prefix = prep.output.prefix or '""'
            problems.append(
                finding(
                    (*path, "output"),
                    "training does not read what the preparation job writes",
                    hint=f"add {{bucket: {prep.output.bucket}, prefix: {prefix}}} to models[{i}].training.inputs",
                    severity="warning",
                )
            )
    return problems


STAGE = Stage(
    name="data_prep",
    title="DataPrep",
    requires=("governance", "storage"),
    used_at=lambda spec: model_paths(spec, "data_prep"),
    checks=(_check,),
)
