"""Serving: a managed online endpoint per model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding, model_paths
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class ServingOutputs:
    endpoints: dict[str, Any]  # model name -> endpoint name
    urls: dict[str, Any]  # model name -> invocation URL

    def exports(self) -> dict[str, Any]:
        return {"endpoints": dict(sorted(self.endpoints.items())), "urls": dict(sorted(self.urls.items()))}


def _check_model_source(spec: SpecBase) -> list:
    return [
        finding(
            ("models", i, "serving"),
            "serving needs a model artifact: a training block or serving.model_uri",
            hint="add training: to this model, or set serving.model_uri to an artifact in your storage",
        )
        for i, m in enumerate(spec.models)
        if m.serving is not None and m.training is None and not m.serving.model_uri
    ]


def _check_async_output(spec: SpecBase) -> list:
    """An async output names a bucket of the spec, on every cloud (also where the model is served
    realtime instead: the spec must stay valid for the clouds that build it)."""
    problems = []
    for i, model in enumerate(spec.models):
        options = model.serving.async_inference if model.serving is not None else None
        if options is not None and options.output is not None:
            problems += check_bucket_ref(spec, options.output, ("models", i, "serving", "async", "output"))
    return problems


STAGE = Stage(
    name="serving",
    title="Serving",
    requires=("governance", "storage", "registry", "training"),
    used_at=lambda spec: model_paths(spec, "serving"),
    checks=(_check_model_source, _check_async_output),
)
