"""Kubernetes registry: MLflow's model registry (on the tracking server). Per model, a ConfigMap
holds its registered-model name and approval policy, which training jobs read."""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import metadata, name
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.registry import RegistryOutputs

POLICY_FILE = "registry.json"


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    if spec.tracking is not None and spec.tracking.enabled:
        return []
    return [
        finding(("models", i, "registry"), "on Kubernetes the model registry is the MLflow server's, and tracking is off",
                hint="add tracking: {enabled: true}")
        for i, m in enumerate(spec.models) if m.registry is not None
    ]  # fmt: skip


def registered_name(ctx: StageContext, model: str) -> str:
    return f"{ctx.spec.project}-{ctx.spec.environment}-{model}"


def build(ctx: StageContext) -> RegistryOutputs:
    import pulumi_kubernetes as k8s

    ns = common.cluster(ctx).namespace
    registries: dict[str, Any] = {}
    for model in ctx.models():
        if model.registry is None:
            continue
        policy = {"registered_model": registered_name(ctx, model.name), "approval": model.registry.approval,
                  # automatic: a new version becomes the "champion" alias at once; manual: a person sets it.
                  "alias_on_register": "champion" if model.registry.approval == "automatic" else None}  # fmt: skip
        k8s.core.v1.ConfigMap(
            ctx.logical("policy", model.name), metadata=metadata(ctx, name(ctx, "registry", model.name), ns),
            data={POLICY_FILE: json.dumps(policy, indent=1, sort_keys=True)}, opts=ctx.opts(),
        )  # fmt: skip
        registries[model.name] = f"models:/{policy['registered_model']}"
    return RegistryOutputs(registries=registries)
