"""Explainability: feature-attribution drift, bias and model quality on the endpoint's captured data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.spec.problems import Path
from mlops_infra.stages.base import Stage, finding
from mlops_infra.stages.refs import check_bucket_ref

SIGNALS = ("explainability", "bias", "model_quality")


@dataclass(frozen=True)
class ExplainabilityOutputs:
    monitors: dict[str, list[Any]]  # model name -> its monitor ids

    def exports(self) -> dict[str, Any]:
        return {}


def _used_at(spec: SpecBase) -> list[Path]:
    return [
        ("models", i, "monitoring", signal)
        for i, model in enumerate(spec.models)
        if model.monitoring
        for signal in SIGNALS
        if getattr(model.monitoring, signal) is not None
    ]


def _check(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        mon = model.monitoring
        if mon is None:
            continue
        for signal in SIGNALS:
            config = getattr(mon, signal)
            if config is None:
                continue
            path = ("models", i, "monitoring", signal)
            if model.serving is None or model.serving.data_capture is None:
                problems.append(
                    finding(path, f"{signal.replace('_', ' ')} monitoring reads the endpoint's captured requests, "
                            "but this model captures none",
                            hint=f"add models[{i}].serving.data_capture: {{sampling_percent: 20}}")
                )
            ref = config.ground_truth if signal == "model_quality" else config.baseline
            field = "ground_truth" if signal == "model_quality" else "baseline"
            problems += check_bucket_ref(spec, ref, (*path, field))
    return problems


STAGE = Stage(
    name="explainability",
    title="Explainability",
    requires=("governance", "storage", "serving", "monitoring"),
    used_at=_used_at,
    checks=(_check,),
)
