"""AWS registry: one SageMaker model package group per model with a `registry` block.

The group is protected (it holds every registered version and its approval history) and
tagged. Approval is not a property of the group on SageMaker: each new version carries a
ModelApprovalStatus, set by the training pipeline's RegisterModel step from the spec
(manual: PendingManualApproval, automatic: Approved; see training.py). The mode stays out
of the group's own properties: SageMaker cannot update a group in place, and changing the
approval mode must not try to replace a protected group.

Nothing here is stack-wide: with a split spec, each model stack builds its own models' groups.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.aws.naming import model_package_group_name
from mlops_infra.backends.context import StageContext
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.registry import RegistryOutputs


def check(spec: Any, settings: Any) -> list[Problem]:
    """A registered version names the image that serves it: the serving image, when there is one."""
    return [
        finding(
            ("models", i, "registry"),
            f"model {model.name!r} has a registry but no serving section: its pipeline registers versions with "
            "the training image as their inference container",
            hint="add models[].serving (its image is registered), or check that the training image also serves",
            severity="warning",
        )
        for i, model in enumerate(spec.models)
        if model.registry is not None and model.training is not None and model.serving is None
    ]


def build(ctx: StageContext) -> RegistryOutputs:
    import pulumi_aws as aws

    spec = ctx.spec
    registries = {}
    for model in ctx.models():
        if model.registry is None:
            continue
        group = aws.sagemaker.ModelPackageGroup(
            ctx.logical("group", model.name),
            model_package_group_name=model_package_group_name(ctx.namer, model.name),
            model_package_group_description=f"mlops-infra {spec.project}/{spec.environment}: versions of model "
            f"{model.name}",
            tags=ctx.tags(),
            opts=ctx.opts(protect=True),
        )
        registries[model.name] = group.model_package_group_name
    return RegistryOutputs(registries=registries)
