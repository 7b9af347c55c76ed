"""GCP registry: the Vertex AI model registry, filled by each model's training workflow.

Pulumi has no resource for a model upload (a version is the outcome of a run, not declared
state), so there is nothing to create per model: the training workflow uploads every trained
model as a new version of one registry model, projects/P/locations/R/models/<model id>, whose
path is known before deployment and is this stage's output. The approval mode becomes the
version alias the upload sets (backends/gcp/training.py): automatic moves "default", the
version deployments use; manual marks the version "candidate" and leaves "default" for a person
to move. What this stage declares is the IAM the workflow identity ("automation") needs for the
upload: a custom role with the three Vertex AI permissions it uses (models.get to find the
model, models.upload, operations.list while the upload runs), since roles/aiplatform.user is
the narrowest predefined role holding models.upload and grants far more.

The role and its grant are stack-wide (the shared stack of a split spec); registry paths are per
model and constants, so a model stack computes its own without reading anything from the shared stack.
"""

from __future__ import annotations

import pulumi_gcp as gcp

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.gcp.naming import custom_role_id, model_id
from mlops_infra.stages.registry import RegistryOutputs

# Permissions per method (aiplatform v1 REST reference): models.get, models.upload; the upload's
# long-running operation is polled through projects.locations.operations.get, which Vertex AI
# authorizes with aiplatform.operations.list (there is no aiplatform.operations.get permission).
REGISTRAR_PERMISSIONS = ("aiplatform.models.get", "aiplatform.models.upload", "aiplatform.operations.list")


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
        automation = ctx.upstream["governance"].identities["automation"]
        role = gcp.projects.IAMCustomRole(
            ctx.logical("role", "registrar"),
            project=project,
            role_id=custom_role_id(ctx.namer, "model", "registrar"),
            title=f"mlops-infra {ctx.spec.project}/{ctx.spec.environment} model registrar",
            description="Upload trained models as new versions to the Vertex AI model registry",
            permissions=list(REGISTRAR_PERMISSIONS),
            stage="GA",
            opts=ctx.opts(),
        )
        # Project-level: models.upload is authorized on the location, not on a model.
        gcp.projects.IAMMember(
            ctx.logical("project-grant", "registrar", "automation"),
            project=project,
            role=role.role_id.apply(lambda rid: f"projects/{project}/roles/{rid}"),
            member=automation.principal,
            opts=ctx.opts(),
        )
    return RegistryOutputs(registries=registries)
