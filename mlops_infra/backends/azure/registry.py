"""Azure registry: one model container per model in the stack's Azure ML workspace.

All of it is per model: a split spec builds each container in its model's stack, and the
registry has nothing stack-wide.

The version each endpoint serves is registered into it by the serving stage (serving.py): one
ModelVersion per pairing of model data and serving image, recording both (the serving image and
environment as properties), so the registry always says what the endpoint runs, never the training
image. The container is protected, since deleting it deletes every version: a default destroy
keeps it.

Approval: Azure ML has no approval gate on model versions (SageMaker's model package status has
no counterpart), so the spec's mode is recorded on the container, as the tag and property
"approval" (manual / automatic), for whatever promotes a version to serving to honour;
validate warns that `approval: manual` is not enforced by Azure (a gap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.stages.registry import RegistryOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

APPROVAL_KEY = "approval"


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    return [
        BACKEND.gap("models[].registry.approval.manual", ("models", i, "registry", "approval"), value="manual")
        for i, model in enumerate(spec.models)
        if model.registry is not None and model.registry.approval == "manual"
    ]


def build(ctx: StageContext) -> RegistryOutputs:
    from pulumi_azure_native import machinelearningservices as ml

    workspace = ctx.upstream.of(WorkspaceRef)
    registries: dict[str, Any] = {}
    for model in sorted((m for m in ctx.models() if m.registry is not None), key=lambda m: m.name):
        assert model.registry is not None  # filtered above
        approval = model.registry.approval
        container = ml.ModelContainer(
            ctx.logical("model", model.name),
            # Spec model names are slugs, valid model names as they are: versions registered by
            # hand or by MLflow land under the name users know.
            name=model.name,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.ModelContainerPropertiesArgs(
                description=f"mlops-infra: versions of {model.name} (approval: {approval})",
                tags={**ctx.tags(), APPROVAL_KEY: approval},
                properties={APPROVAL_KEY: approval},
            ),
            opts=ctx.opts(protect=True),
        )
        registries[model.name] = container.id
    return RegistryOutputs(registries=registries)
