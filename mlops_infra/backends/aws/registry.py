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

import pulumi_aws as aws

from mlops_infra.backends.aws.naming import model_package_group_name
from mlops_infra.backends.context import StageContext
from mlops_infra.stages.registry import RegistryOutputs


def build(ctx: StageContext) -> RegistryOutputs:
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
