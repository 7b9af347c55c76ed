"""GCP data preparation: per model, a Cloud Workflows workflow running a Vertex AI custom job,
started by Cloud Scheduler.

Per model with data_prep:
- a workflow (templates/gcp/data_prep.yaml.j2) that submits the preparation custom job and
  waits for it; a failed job fails the run, and the monitoring stage's failed-run alert policy
  on the workflow notifies the stack's channels (monitoring.failure_watched);
- the custom job runs the spec's image on the catalog's machine for its compute, as the model's
  group identity, encrypted with the stack key, peered into the stack's network with network:
  private (training.peering), the interactive shell off. It reads its inputs (the storage stage's
  viewer grants from access.model_refs) and writes its output prefix (an objectUser grant on that
  managed folder alone, from access.model_writes); the container gets MLOPS_INPUTS,
  MLOPS_INPUT_<BUCKET>, MLOPS_OUTPUT_URI and MLOPS_MODEL;
- with schedule: a Cloud Scheduler job (scheduling.workflow_job: through Pub/Sub and Eventarc on
  a private network) that starts it as the automation identity.
The workflow runs as the automation identity with the training launcher role (custom jobs
create/get/cancel) and actAs on the group's account: the training stage grants both for trained
groups, this stage for the groups that only prepare data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp import catalog, grants
from mlops_infra.backends.gcp.naming import (
    TRAINING_SOURCES,
    drift_workflow_name,
    image_findings,
    prep_workflow_name,
    repository_id,
    scheduler_job_name,
    training_image,
    workflow_name,
)
from mlops_infra.backends.gcp.roles import act_as_grant, project_grant
from mlops_infra.backends.gcp.scheduling import workflow_job
from mlops_infra.backends.gcp.shared import ObjectGrants, PrivateNetwork, ProjectServices
from mlops_infra.backends.gcp.training import (
    POLL_SECONDS,
    TERMINAL_FAILURES,
    _literal,
    machine_spec_body,
    peering,
)
from mlops_infra.layout import group_of
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.data_prep import DataPrepOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.templating import render

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

TEMPLATE = "gcp/data_prep.yaml.j2"


def check(spec: Any, settings: Any) -> list[Problem]:
    """Images Vertex AI cannot pull where they are, new-data runs, and workflow name clashes."""
    from mlops_infra.backends.gcp import BACKEND

    problems: list[Problem] = []
    namer = BACKEND.namer(spec, settings)
    taken = {workflow_name(namer, m.name): m.name for m in spec.models if m.training is not None}
    taken.update({drift_workflow_name(namer, m.name): m.name for m in auto.drift_models(spec)})
    for i, model in enumerate(spec.models):
        prep = model.data_prep
        if prep is None:
            continue
        base = ("models", i, "data_prep")
        problems += image_findings(
            prep.image, (*base, "image"), accepted=TRAINING_SOURCES, use="custom jobs",
            sources="Artifact Registry, Container Registry or Docker Hub", settings=settings,
            repository=repository_id(namer, model.name),
        )
        if prep.on_new_data:
            problems.append(
                finding(
                    (*base, "on_new_data"),
                    "mlops-infra does not start data preparation on new objects on GCP yet: only the schedule "
                    "starts the preparation workflow",
                    hint="use schedule: (e.g. an hour before training), or start the workflow from your own "
                    f"Eventarc trigger: gcloud workflows run {prep_workflow_name(namer, model.name)}",
                    value=True,
                )
            )
        name = prep_workflow_name(namer, model.name)
        if name in taken and taken[name] != model.name:
            problems.append(
                finding(base, f"on GCP the data preparation workflow of model {model.name!r} would be named "
                        f"{name!r}, as a workflow of model {taken[name]!r}", hint="rename one of the two models",
                        value=model.name)
            )
    return problems


def build(ctx: StageContext) -> DataPrepOutputs:
    import pulumi
    import pulumi_gcp as gcp

    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    services = ctx.upstream.of(ProjectServices)
    network = ctx.upstream.find(PrivateNetwork)
    object_grants = ctx.upstream.find(ObjectGrants)
    project, region = ctx.settings.project, ctx.settings.region
    automation = governance.identities["automation"]
    if ctx.builds_stack:
        _launcher_grants(ctx, governance=governance)

    jobs: dict[str, Any] = {}
    for model in ctx.models():
        prep = model.data_prep
        if prep is None:
            continue
        name = prep_workflow_name(ctx.namer, model.name)
        identity = governance.reader(model)
        inputs: dict[str, Any] = {
            "key": services.service_keys["aiplatform"],
            "email": identity.id,
            "buckets": {b: storage.buckets[b].uri for b in sorted({r.bucket for r in [*prep.inputs, prep.output]})},
        }
        if network is not None:
            inputs["network_name"] = network.name
            inputs["reserved_ranges"] = network.peering_ranges

        def source(values: dict[str, Any], model: Model = model, name: str = name) -> str:
            return workflow_source(ctx, model, workflow=name, values=values)

        # The job writes its output folder: the run waits for that grant (same stack).
        output_grant = None
        if object_grants is not None:
            location = f"{prep.output.bucket}/{prep.output.prefix}" if prep.output.prefix else prep.output.bucket
            output_grant = object_grants.by_key.get(grants.grant_key(location, grants.group_key(group_of(model))))
        workflow = gcp.workflows.Workflow(
            ctx.logical("workflow", model.name),
            name=name,
            project=project,
            region=region,
            description=f"prepares the data of model {model.name} on Vertex AI (mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
            service_account=automation.id,
            crypto_key_name=services.service_keys["workflows"],
            call_log_level="LOG_ERRORS_ONLY",
            deletion_protection=False,
            source_contents=pulumi.Output.all(**inputs).apply(source),
            labels={**ctx.tags(), "mlops-model": model.name},
            opts=ctx.opts(depends_on=ctx.waits(output_grant)),
        )
        path = workflow.name.apply(lambda n: f"projects/{project}/locations/{region}/workflows/{n}")
        jobs[model.name] = path
        if prep.schedule:
            stack = f"{ctx.spec.project}/{ctx.spec.environment}"
            workflow_job(
                ctx,
                ctx.logical("schedule", model.name),
                name=scheduler_job_name(ctx.namer, model.name, "prep"),
                model=model.name,
                purpose="prep",
                description=f"prepares the data of model {model.name} on {prep.schedule!r} ({prep.timezone}, mlops-infra {stack})",
                schedule=auto.scheduler_cron(prep.schedule),
                time_zone=prep.timezone,
                workflow_path=path,
                opts=ctx.opts(),
            )
    return DataPrepOutputs(jobs=jobs)


def _launcher_grants(ctx: StageContext, *, governance: GovernanceOutputs) -> None:
    """The launcher role and actAs for groups that prepare data but neither train nor score in batch
    (the training and batch stages grant those)."""
    launching = {group_of(m) for m in ctx.spec.models if m.training is not None or m.batch is not None}
    preparing = sorted({group_of(m) for m in ctx.spec.models if m.data_prep is not None} - launching)
    if not preparing:
        return
    if not launching:
        role = ctx.upstream.of(ProjectServices).roles[grants.LAUNCHER]
        project_grant(ctx, "launcher", "automation", role=role, member=governance.identities["automation"].principal)
    for group in preparing:
        act_as_grant(
            ctx, group=group, account=governance.groups[group].id, member=governance.identities["automation"].principal
        )


# --- the workflow source (pure: called inside apply with resolved values) ---------------------
def workflow_source(ctx: StageContext, model: Model, *, workflow: str, values: dict[str, Any]) -> str:
    prep = model.data_prep
    assert prep is not None
    settings = ctx.settings
    return render(
        TEMPLATE,
        workflow=workflow,
        model=model.name,
        region=settings.region,
        parent=f"projects/{settings.project}/locations/{settings.region}",
        failed_states=list(TERMINAL_FAILURES),
        job_prefix=workflow,
        poll_seconds=POLL_SECONDS,
        output=_uri(values, prep.output),
        job=custom_job(ctx, model, values=values),
    )


def _uri(values: dict[str, Any], ref: Any) -> str:
    return f"{values['buckets'][ref.bucket]}/{ref.prefix}"


def custom_job(ctx: StageContext, model: Model, *, values: dict[str, Any]) -> dict[str, Any]:
    """The preparation CustomJob body (aiplatform v1 customJobs.create)."""
    prep = model.data_prep
    assert prep is not None
    settings = ctx.settings
    machine_spec = machine_spec_body(catalog.machine_spec(prep.compute, "training", settings))
    env = {k: _literal(v) for k, v in prep.environment.items()}
    by_bucket: dict[str, list[str]] = {}
    for ref in prep.inputs:
        by_bucket.setdefault(ref.bucket, []).append(_uri(values, ref))
    env.update(
        {
            "MLOPS_MODEL": model.name,
            "MLOPS_INPUTS": ",".join(uri for uris in by_bucket.values() for uri in uris),
            "MLOPS_OUTPUT_URI": _uri(values, prep.output),
        }
    )
    for bucket, uris in by_bucket.items():
        env[f"MLOPS_INPUT_{bucket.upper().replace('-', '_')}"] = ",".join(uris)
    image = training_image(prep.image, settings, repository_id(ctx.namer, model.name))
    container = {"imageUri": image, "env": [{"name": k, "value": v} for k, v in sorted(env.items())]}
    return {
        "displayName": "${job_display_name}",
        "labels": {**ctx.tags(), "mlops-model": model.name, "mlops-job": "data-prep"},
        "jobSpec": {
            "workerPoolSpecs": [{"machineSpec": machine_spec, "replicaCount": 1, "containerSpec": container}],
            "serviceAccount": values["email"],
            "scheduling": {"timeout": f"{prep.max_runtime}s", "strategy": "STANDARD"},
            "enableWebAccess": False,
            **peering(values),
        },
        "encryptionSpec": {"kmsKeyName": values["key"]},
    }
