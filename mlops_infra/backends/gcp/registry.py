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

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.gcp.naming import model_id
from mlops_infra.backends.gcp import grants
from mlops_infra.backends.gcp.roles import ROLES, project_grant
from mlops_infra.stages.registry import RegistryOutputs

REGISTRAR_PERMISSIONS = ROLES[grants.REGISTRAR].permissions


def build(ctx: StageContext) -> RegistryOutputs:
    project, region = ctx.settings.project, ctx.settings.region
    # Only models with training get versions on GCP (backend.check() warns about the others).
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
        governance = ctx.upstream["governance"]
        # Project-level: models.upload is authorized on the location, not on a model.
        project_grant(
            ctx, "registrar", "automation", role=governance.extra["roles"][grants.REGISTRAR],
            member=governance.identities["automation"].principal,
        )
    return RegistryOutputs(registries=registries)
