"""The stack's project custom roles: the narrow permission sets granted where no predefined role fits.

Every stack has the same five, whatever its models (governance makes them, the stages grant
them), and they are protected (Backend.kept_types): GCP holds a deleted custom role's id for up
to 37 days (facts/reserved-names.json), so a role deleted when a spec stopped needing it, or by
a default destroy, could not be made again for weeks. Only `destroy --delete-data` deletes them;
clouds.gcp.name_generation then gives the next deployment new ids (naming.custom_role_id). A
project holds at most 300 custom roles (cloud.google.com/iam/quotas): five per stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import grants
from mlops_infra.backends.gcp.naming import custom_role_id

if TYPE_CHECKING:
    import pulumi
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext


@dataclass(frozen=True)
class RoleSpec:
    words: tuple[str, ...]  # the id and title ("training", "launcher")
    description: str
    permissions: tuple[str, ...]
    moved_from: str = ""  # the stage that held it before governance made every role (an alias)


ROLES = {
    # Starting a workflow execution (Cloud Scheduler's OAuth token, Eventarc's push) is
    # projects.locations.workflows.executions.create: workflows.executions.create on the workflow,
    # which Workflows authorizes at the project (roles/workflows.invoker is grantable on projects
    # only). The predefined invoker also reads executions and sends callbacks: this role does not.
    grants.STARTER: RoleSpec(
        ("workflow", "starter"),
        "Start executions of the stack's workflows (retraining and drift runs)",
        ("workflows.executions.create",),
    ),
    # Exactly what the training workflow calls: customJobs.create / get / cancel (IAM permission per
    # method, aiplatform v1 REST reference).
    grants.LAUNCHER: RoleSpec(
        ("training", "launcher"),
        "Submit, watch and cancel the Vertex AI custom jobs of the training workflows",
        ("aiplatform.customJobs.cancel", "aiplatform.customJobs.create", "aiplatform.customJobs.get"),
        moved_from="training:launcher",
    ),
    # Permissions per method (aiplatform v1 REST reference): models.get, models.upload; the upload's
    # long-running operation is polled through projects.locations.operations.get, which Vertex AI
    # authorizes with aiplatform.operations.list (there is no aiplatform.operations.get permission).
    grants.REGISTRAR: RoleSpec(
        ("model", "registrar"),
        "Upload trained models as new versions to the Vertex AI model registry",
        ("aiplatform.models.get", "aiplatform.models.upload", "aiplatform.operations.list"),
        moved_from="registry:registrar",
    ),
    # What a group identity does on the project. Cloud Logging takes entries only at the project
    # (custom jobs' and drift workflows' logs); a drift workflow also runs a BigQuery query job
    # (bigquery.jobs.create: the creator may then get its own job, cloud.google.com/bigquery/docs/
    # jobs-overview) and writes one point of the stack's drift metric (timeSeries.create). Reads go
    # through per-dataset and per-folder grants. One role per group keeps each group to one
    # principal appearance in the project's policy (grants.project_bindings).
    grants.MODEL_WORKER: RoleSpec(
        ("model", "worker"), "Write the logs of a model group's training jobs", ("logging.logEntries.create",)
    ),
    grants.DRIFT_WORKER: RoleSpec(
        ("drift", "worker"),
        "Write the logs of a model group's jobs, run its drift queries and write its drift metric",
        ("bigquery.jobs.create", "logging.logEntries.create", "monitoring.timeSeries.create"),
    ),
}


# Exactly what the batch workflows call: batchPredictionJobs.create / get / cancel (IAM permission
# per method, cloud.google.com/vertex-ai/docs/general/iam-permissions, read 2026-12-06). Added to the
# launcher role when a model is scored in batch, not a role of their own: custom roles are protected
# (see above), and one that came and went with the batch blocks would block the update removing them.
BATCH_LAUNCHER_PERMISSIONS = (
    "aiplatform.batchPredictionJobs.cancel",
    "aiplatform.batchPredictionJobs.create",
    "aiplatform.batchPredictionJobs.get",
)


def role_specs(spec: Any) -> dict[str, RoleSpec]:
    """The stack's custom roles for `spec`: ROLES, the launcher widened to batch prediction jobs
    when a model has a batch block (an in-place update of the role either way)."""
    roles = dict(ROLES)
    if any(m.batch is not None for m in spec.models):
        launcher = roles[grants.LAUNCHER]
        roles[grants.LAUNCHER] = replace(
            launcher,
            description="Submit, watch and cancel the Vertex AI custom jobs of the training workflows and the batch "
            "prediction jobs of the batch workflows",
            permissions=tuple(sorted({*launcher.permissions, *BATCH_LAUNCHER_PERMISSIONS})),
        )
    return roles


def stack_roles(ctx: StageContext) -> dict[str, pulumi.Output]:
    """Every custom role of the stack, as the projects/P/roles/ID paths grants take."""
    return {name: _custom_role(ctx, name, spec) for name, spec in role_specs(ctx.spec).items()}


def _custom_role(ctx: StageContext, name: str, role: RoleSpec) -> pulumi.Output:
    import pulumi
    import pulumi_gcp as gcp

    project = ctx.settings.project
    aliases = []
    if role.moved_from:
        stage, old = role.moved_from.split(":")
        parent = pulumi.create_urn(stage, f"mlops-infra:gcp:{stage.capitalize()}")
        aliases.append(pulumi.Alias(name=f"{stage}-role-{old}", parent=parent))
    created = gcp.projects.IAMCustomRole(
        ctx.logical("role", name),
        project=project,
        role_id=custom_role_id(ctx.namer, ctx.settings, *role.words),
        title=f"mlops-infra {ctx.spec.project}/{ctx.spec.environment} {' '.join(role.words)}",
        description=role.description,
        permissions=list(role.permissions),
        stage="GA",
        opts=ctx.opts(protect=True, aliases=aliases),
    )
    return created.role_id.apply(lambda rid: f"projects/{project}/roles/{rid}")


def project_grant(
    ctx: StageContext, key: str, who: str, *, role: pulumi.Input[str], member: pulumi.Input[str]
) -> gcp.projects.IAMMember:
    """`role` on the project for `member` (logical name project-grant-<key>-<who>)."""
    import pulumi_gcp as gcp

    return gcp.projects.IAMMember(
        ctx.logical("project-grant", key, who),
        project=ctx.settings.project,
        role=role,
        member=member,
        opts=ctx.opts(),
    )


SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"  # iam.serviceAccounts.actAs (and get/list)


def act_as_grant(ctx: StageContext, *, group: str, account: pulumi.Input[str], member: pulumi.Input[str]) -> None:
    """actAs for `member` (the automation identity) on one model group's service account `account`
    (its email), a grant on that account's own policy: workflows launch Vertex AI jobs as it."""
    import pulumi
    import pulumi_gcp as gcp

    project = ctx.settings.project
    gcp.serviceaccount.IAMMember(
        ctx.logical("actas-grant", "automation", group),
        service_account_id=pulumi.Output.from_input(account).apply(lambda email: f"projects/{project}/serviceAccounts/{email}"),
        role=SERVICE_ACCOUNT_USER,
        member=member,
        opts=ctx.opts(),
    )
