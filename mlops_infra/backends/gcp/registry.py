"""GCP registry: the Vertex AI model registry, filled by each model's training workflow.

Pulumi has no resource for a model upload (a version is the outcome of a run, not declared
state), so there is nothing to create per model: the training workflow uploads every trained
model as a new version of one registry model, projects/P/locations/R/models/<model id>, whose
path is known before deployment and is this stage's output. The approval mode becomes the
version alias the upload sets (backends/gcp/training.py): automatic moves "default", the
version deployments use; manual marks the version "candidate" and leaves "default" for a person
to move. What this stage declares is the IAM the workflow identity ("automation") needs for the
upload: the stack's model registrar role (roles.py: the three Vertex AI permissions it uses,
models.get to find the model, models.upload, operations.list while the upload runs), since
roles/aiplatform.user is the narrowest predefined role holding models.upload and grants far more.

The grant is stack-wide (the shared stack of a split spec); registry paths are per model and
constants, so a model stack computes its own without reading anything from the shared stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import grants
from mlops_infra.backends.gcp.naming import model_id, workflow_name
from mlops_infra.backends.gcp.roles import ROLES, project_grant
from mlops_infra.backends.gcp.shared import ProjectServices
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.registry import RegistryOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

REGISTRAR_PERMISSIONS = ROLES[grants.REGISTRAR].permissions


def check(spec: Any, settings: Any) -> list[Problem]:
    """Registry blocks GCP cannot fill as written: versions come from training runs, and each
    version needs a serving container."""
    from mlops_infra.backends.gcp import BACKEND

    namer = BACKEND.namer(spec, settings)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        if model.registry is None:
            continue
        path = ("models", i, "registry")
        if model.training is None:
            problems.append(BACKEND.gap("models[].registry (without training)", path, value=model.name))
        elif model.serving is None:
            problems.append(
                finding(
                    path,
                    "a Vertex AI model version needs a serving container, and this model has no serving section: "
                    "each workflow run must be started with the argument {\"serving_image\": \"...\"}",
                    hint=f"add serving: with its image, or start runs with: gcloud workflows run "
                    f"{workflow_name(namer, model.name)} --data='{{\"serving_image\": \"IMAGE\"}}'",
                    severity="warning",
                )
            )
    return problems


def build(ctx: StageContext) -> RegistryOutputs:
    project, region = ctx.settings.project, ctx.settings.region
    # Only models with training get versions on GCP (check() warns about the others).
    registered = [m.name for m in ctx.spec.models if m.registry is not None and m.training is not None]
    built = {m.name for m in ctx.models()}
    registries = {
        name: f"projects/{project}/locations/{region}/models/{model_id(ctx.namer, name)}"
        for name in registered
        if name in built
    }
    # The role and its grant serve every model's workflow: stack-wide, wanted when any model
    # registers (decided from the whole spec, so the shared stack of a split builds them too).
    if registered and ctx.builds_stack:
        # Project-level: models.upload is authorized on the location, not on a model.
        project_grant(
            ctx, "registrar", "automation", role=ctx.upstream.of(ProjectServices).roles[grants.REGISTRAR],
            member=ctx.upstream.of(GovernanceOutputs).identities["automation"].principal,
        )
    return RegistryOutputs(registries=registries)
