"""GCP batch scoring: per model with `batch`, a Cloud Workflows workflow that runs a Vertex AI batch
prediction job, started on its schedule and/or when objects arrive under its input.

Why its own workflow: the training workflow trains and registers; scoring runs on its own cadence
and must not change when training does (a change of schedule touches only the Cloud Scheduler
job). Each execution submits a BatchPredictionJob built from the spec (templates/gcp/batch.yaml.j2),
polls it, cancels it after max_runtime (the job itself has no timeout field) and fails when the job
does; `gcloud workflows run NAME` starts a run by hand.

The job:
- model: the registry model's version the "approved" alias names (the one the endpoint serves:
  MODEL@approved), or with batch.model_uri an unmanaged container model: that artifact with the
  model's serving image (a Vertex AI prediction job needs a serving container either way);
- input: JSON Lines objects under batch.input (gs://BUCKET/PREFIX*); a run started by a new object
  scores that object alone. Output: JSON Lines under batch.output, one folder per run;
- dedicated resources: the catalog's prediction machine for batch.compute, instance_count
  replicas (starting and maximum);
- runs as the model group's service account, which reads the group's inputs and may write only
  under the group's output prefixes (managed folder grants, grants.storage_access);
- encrypted with the stack key (Vertex AI's service agent holds the key grant);
- network: BatchPredictionJob has no network field (aiplatform v1), so a job cannot be peered into
  the stack's network: check() says so when governance.network is private.

Triggers reuse what retraining uses: a Cloud Scheduler job (scheduling.workflow_job, through
Pub/Sub and Eventarc on a private network) and, with on_new_data, a Cloud Storage notification for
the input prefix into a topic of the model's that an Eventarc trigger turns into an execution.

Failed runs: an alert policy per model on Workflows' finished_execution_count (status other than
SUCCEEDED) of this workflow, notifying the monitoring stage's channels.

Identities: the workflow runs as the automation identity (as training's does): the launcher role
gains batchPredictionJobs.create/get/cancel when a model has batch (roles.role_specs), and actAs on
each batch group's service account (the job runs as it). Training makes those grants for groups it
launches jobs for already; this stage makes them for the others, never twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.access import reader_groups
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp import catalog, grants
from mlops_infra.backends.gcp.naming import (
    batch_workflow_name,
    model_id,
    model_upload_image,
    repository_id,
    scheduler_job_name,
    workflow_name,
)
from mlops_infra.backends.gcp.retraining import eventarc_trigger, new_data_topic
from mlops_infra.backends.gcp.roles import act_as_grant, project_grant
from mlops_infra.backends.gcp.scheduling import push_grant, workflow_job
from mlops_infra.backends.gcp.serving_endpoints import SERVING_ALIAS, UNSUPPORTED, artifact_source
from mlops_infra.backends.gcp.shared import ObjectGrants, ProjectServices, PushGrant
from mlops_infra.layout import group_of
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.batch import BatchOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs
from mlops_infra.stages.training import output_prefix
from mlops_infra.templating import render

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

TEMPLATE = "gcp/batch.yaml.j2"
POLL_SECONDS = 60  # how often the workflow asks for the job's state
# BatchPredictionJob states a job never leaves (aiplatform v1 JobState).
TERMINAL_FAILURES = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
# Instances and predictions as JSON Lines (BatchPredictionJob.inputConfig.instancesFormat,
# outputConfig.predictionsFormat; cloud.google.com/vertex-ai/docs/predictions/get-batch-predictions).
INSTANCES_FORMAT = "jsonl"
# The compute list batch prediction machines come from: the online prediction list
# (cloud.google.com/vertex-ai/docs/predictions/configure-compute covers both).
COMPUTE_PURPOSE = "serving"
NEW_DATA = "batch-input"  # the name part of the new-data topic and trigger ("<model>-batch-input")
SCHEDULE = "batch"  # the Cloud Scheduler job's name part ("<model>-batch")
# Workflows' execution metric (cloud.google.com/monitoring/api/metrics_gcp, "workflows" section):
# a DELTA INT64 count per finished execution, labelled with its status.
FINISHED_METRIC = "workflows.googleapis.com/finished_execution_count"
WORKFLOW_RESOURCE = "workflows.googleapis.com/Workflow"
FAILURE_WINDOW_SECONDS = 300
AUTO_CLOSE = "1800s"


def check(spec: Any, settings: Any) -> list[Problem]:
    """Batch scoring GCP cannot run as written, knowable offline."""
    from mlops_infra.backends.gcp import BACKEND

    namer = BACKEND.namer(spec, settings)
    artifacts = namer.name("gcp.storage.bucket", ARTIFACTS)
    trained = {workflow_name(namer, m.name): i for i, m in enumerate(spec.models) if m.training is not None}
    notified = bool(spec.monitoring.notify.emails or spec.monitoring.notify.webhook)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        batch = model.batch
        if batch is None:
            continue
        base = ("models", i, "batch")
        try:
            catalog.machine_spec(batch.compute, COMPUTE_PURPOSE, settings)
        except CatalogMiss as miss:
            problems.append(finding((*base, "compute"), miss.message, hint=miss.hint, value=batch.compute.label))
        problems += auto.time_zone_problems(batch.timezone, (*base, "timezone"))
        if batch.model_uri is not None:
            problems += _model_uri_problems(model, base, artifacts=artifacts, settings=settings, namer=namer)
        other = trained.get(batch_workflow_name(namer, model.name))
        if other is not None:
            problems.append(
                finding(
                    ("models", other, "name"),
                    f"on GCP the training workflow of model {spec.models[other].name!r} and the batch workflow of "
                    f"model {model.name!r} would both be {batch_workflow_name(namer, model.name)!r}",
                    hint="rename one of the two models",
                    value=spec.models[other].name,
                )
            )
        if spec.governance.network == "private":
            problems.append(BACKEND.gap("models[].batch (private network)", base))
        if not notified:
            problems.append(
                finding(
                    base,
                    "a failed batch run would notify nobody: the stack has no notification channel",
                    hint="add monitoring: {notify: {emails: [...]}} (or a webhook)",
                    severity="warning",
                )
            )
    return problems


def _model_uri_problems(model: Model, base: tuple, *, artifacts: str, settings: Any, namer: Any) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    batch = model.batch
    assert batch is not None and batch.model_uri is not None
    path = (*base, "model_uri")
    source = artifact_source(batch.model_uri, artifacts_bucket=artifacts)
    if source.kind == UNSUPPORTED:
        return [BACKEND.gap("models[].serving.model_uri (outside Cloud Storage)", path, value=batch.model_uri)]
    problems: list[Problem] = []
    if model.serving is None:
        problems.append(
            finding(
                path,
                "a Vertex AI batch prediction job runs an artifact in a serving container "
                "(UnmanagedContainerModel.containerSpec), and this model has no serving section to take it from",
                hint="add serving: with the image (on GCP it deploys an endpoint too), or remove model_uri to score "
                "with the registry's approved version",
                value=batch.model_uri,
            )
        )
    readable = model.training is not None and (source.path or "").startswith(output_prefix(model.name))
    if not readable:
        where = source.uri or f"gs://{artifacts}/{source.path}"
        email = f"{namer.name('gcp.iam.service_account_id', 'group', group_of(model))}@{settings.project}.iam.gserviceaccount.com"
        problems.append(
            finding(
                path,
                f"the batch job reads {where} as the model group's service account, which mlops-infra lets read "
                "only its group's data and trained models",
                hint=f"grant roles/storage.objectViewer on {where} to serviceAccount:{email}, or score a version "
                f"the training workflow wrote (under gs://{artifacts}/{output_prefix(model.name)})",
                value=batch.model_uri,
                severity="warning",
            )
        )
    return problems


def build(ctx: StageContext) -> BatchOutputs:
    import pulumi
    import pulumi_gcp as gcp

    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    registry = ctx.upstream.find(RegistryOutputs)
    monitoring = ctx.upstream.find(MonitoringOutputs)
    services = ctx.upstream.of(ProjectServices)
    automation = governance.identities["automation"]
    project, region = ctx.settings.project, ctx.settings.region

    if ctx.builds_stack:
        _launcher_grants(ctx, governance=governance)
    push = _push_grant(ctx, governance=governance, services=services)

    jobs: dict[str, Any] = {}
    for model in ctx.models():
        batch = model.batch
        if batch is None:
            continue
        runner = governance.reader(model)
        name = batch_workflow_name(ctx.namer, model.name)
        labels = {**ctx.tags(), "mlops-model": model.name}
        inputs: dict[str, Any] = {
            "key": services.service_keys["aiplatform"],
            "runner": runner.id,
            "input": storage.buckets[batch.input.bucket].uri,
            "output": storage.buckets[batch.output.bucket].uri,
            "artifacts": storage.artifacts.uri,
        }
        if batch.model_uri is None and registry is not None and model.name in registry.registries:
            inputs["registry_model"] = registry.registries[model.name]

        def source(values: dict[str, Any], model: Model = model, name: str = name) -> str:
            return workflow_source(ctx, model, workflow=name, values=values)

        workflow = gcp.workflows.Workflow(
            ctx.logical("workflow", model.name),
            name=name,
            project=project,
            region=region,
            description=f"scores model {model.name} in batch on Vertex AI (mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
            service_account=automation.id,
            crypto_key_name=services.service_keys["workflows"],
            call_log_level="LOG_ERRORS_ONLY",
            deletion_protection=False,  # a definition, not data
            source_contents=pulumi.Output.all(**inputs).apply(source),
            labels=labels,
            opts=ctx.opts(),
        )
        path = workflow.name.apply(lambda n: f"projects/{project}/locations/{region}/workflows/{n}")
        jobs[model.name] = path
        _triggers(ctx, model, workflow_path=path, labels=labels, push_grant=push, waits=_object_grants(ctx, model))
        if monitoring is not None:
            _failure_alert(ctx, model, workflow=name, channels=monitoring.channel, labels=labels)
    return BatchOutputs(jobs=jobs)


def _object_grants(ctx: StageContext, model: Model) -> list[Any]:
    """The group's grants on the prefixes covering the batch input and output (storage stage, same
    stack; absent in a model stack of a split spec, whose shared stack is deployed first): the
    first run triggered finds them in place."""
    batch = model.batch
    assert batch is not None
    found = ctx.upstream.find(ObjectGrants)
    group = reader_groups(ctx.spec).get(group_of(model))
    if found is None or group is None:
        return []
    principal = grants.group_key(group.name)
    waits: list[Any] = []
    for ref, prefixes in ((batch.input, group.reads), (batch.output, group.writes)):
        for prefix in prefixes.get(ref.bucket, []):
            if ref.prefix.startswith(prefix):
                location = f"{ref.bucket}/{prefix}" if prefix else ref.bucket
                waits += ctx.waits(found.by_key.get(grants.grant_key(location, principal)))
    return waits


def _triggers(
    ctx: StageContext, model: Model, *, workflow_path: Any, labels: dict[str, str], push_grant: Any, waits: list[Any]
) -> None:
    batch = model.batch
    assert batch is not None
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    if batch.schedule:
        workflow_job(
            ctx,
            ctx.logical("schedule", model.name),
            name=scheduler_job_name(ctx.namer, model.name, SCHEDULE),
            model=model.name,
            purpose=SCHEDULE,
            description=f"scores model {model.name} in batch on {batch.schedule!r} ({batch.timezone}, mlops-infra {stack})",
            schedule=auto.scheduler_cron(batch.schedule),
            time_zone=batch.timezone,
            workflow_path=workflow_path,
            opts=ctx.opts(depends_on=waits),
        )
    if batch.on_new_data:
        topic_path = new_data_topic(ctx, model.name, batch.input, purpose=NEW_DATA, labels=labels)
        eventarc_trigger(
            ctx, model.name, NEW_DATA, topic_path=topic_path, workflow=workflow_path, labels=labels,
            push_grant=push_grant, depends_on=waits,
        )


def _launcher_grants(ctx: StageContext, *, governance: GovernanceOutputs) -> None:
    """What the training stage does not grant already: the launcher role and log writing when no
    model trains, actAs on batch groups none of whose models train."""
    automation = governance.identities["automation"]
    if not any(m.training is not None for m in ctx.spec.models):
        role = ctx.upstream.of(ProjectServices).roles[grants.LAUNCHER]
        project_grant(ctx, "launcher", "automation", role=role, member=automation.principal)
        project_grant(ctx, "logwriter", "automation", role=grants.LOG_WRITER, member=automation.principal)
    trained = {group_of(m) for m in ctx.spec.models if m.training is not None}
    for group in sorted({group_of(m) for m in auto.batch_models(ctx.spec)} - trained):
        act_as_grant(ctx, group=group, account=governance.groups[group].id, member=automation.principal)


def _push_grant(ctx: StageContext, *, governance: GovernanceOutputs, services: ProjectServices) -> Any:
    """The Pub/Sub agent's token grant the new-data triggers push with: governance's (private
    networks) or retraining's when either makes it, else this stage's (stack-wide, made once)."""
    found = ctx.upstream.find(PushGrant)
    if found is not None:
        return found.grant
    if (
        ctx.builds_stack
        and auto.new_data_batched(ctx.spec)
        and not auto.push_grant_in_governance(ctx.spec)
        and not auto.retraining_pushes(ctx.spec)
    ):
        return push_grant(ctx, governance.identities["automation"], services.service_agents["pubsub"])
    return None


def _failure_alert(ctx: StageContext, model: Model, *, workflow: str, channels: Any, labels: dict[str, str]) -> None:
    import pulumi_gcp as gcp

    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    gcp.monitoring.AlertPolicy(
        ctx.logical("alert-failed", model.name),
        project=ctx.settings.project,
        display_name=f"mlops-infra {stack} {model.name}: batch scoring failed",
        combiner="OR",
        conditions=[
            {
                "display_name": "a batch scoring run did not succeed",
                "condition_threshold": {
                    "filter": failure_filter(workflow),
                    "aggregations": [{"alignment_period": f"{FAILURE_WINDOW_SECONDS}s", "per_series_aligner": "ALIGN_SUM"}],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": 0,
                    "duration": "0s",
                    "trigger": {"count": 1},
                },
            }
        ],
        notification_channels=channels,
        severity="ERROR",
        alert_strategy={"auto_close": AUTO_CLOSE, "notification_prompts": ["OPENED"]},
        documentation={
            "mime_type": "text/markdown",
            "subject": f"{model.name} ({stack}): batch scoring failed",
            "content": f"A run of the batch workflow **{workflow}** (model {model.name}, mlops-infra stack {stack}) "
            f"failed or was cancelled. See its executions: gcloud workflows executions list {workflow} "
            f"--location={ctx.settings.region}",
        },
        user_labels=labels,
        opts=ctx.opts(),
    )


def failure_filter(workflow: str) -> str:
    """Finished executions of `workflow` whose status is not SUCCEEDED (FAILED, CANCELLED)."""
    return (
        f'resource.type = "{WORKFLOW_RESOURCE}" AND resource.labels.workflow_id = "{workflow}" '
        f'AND metric.type = "{FINISHED_METRIC}" AND metric.labels.status != "SUCCEEDED"'
    )


# --- the workflow source (pure: called inside apply with resolved values; tests call it too) ---
def workflow_source(ctx: StageContext, model: Model, *, workflow: str, values: dict[str, Any]) -> str:
    """The rendered workflow YAML scoring `model` (values: resolved bucket URIs, key, runner email)."""
    batch = model.batch
    assert batch is not None
    settings = ctx.settings
    project, region = settings.project, settings.region
    return render(
        TEMPLATE,
        workflow=workflow,
        model=model.name,
        region=region,
        parent=f"projects/{project}/locations/{region}",
        output_root=f"{values['output']}/{batch.output.prefix}",
        input_uris=[f"{values['input']}/{batch.input.prefix}*"],
        failed_states=list(TERMINAL_FAILURES),
        job_prefix=workflow,
        max_runtime=int(batch.max_runtime),
        poll_seconds=POLL_SECONDS,
        job=prediction_job(ctx, model, values=values),
    )


def prediction_job(ctx: StageContext, model: Model, *, values: dict[str, Any]) -> dict[str, Any]:
    """The BatchPredictionJob body (aiplatform v1 projects.locations.batchPredictionJobs.create).
    Strings "${...}" are Workflows expressions over the workflow's variables."""
    batch = model.batch
    assert batch is not None
    machine = catalog.machine_spec(batch.compute, COMPUTE_PURPOSE, ctx.settings)
    machine_spec: dict[str, Any] = {"machineType": machine.machine_type}
    if machine.accelerator_type:
        machine_spec["acceleratorType"] = machine.accelerator_type
        machine_spec["acceleratorCount"] = machine.accelerator_count
    body: dict[str, Any] = {
        "displayName": "${job_display_name}",
        "labels": {**ctx.tags(), "mlops-model": model.name},
        "inputConfig": {"instancesFormat": INSTANCES_FORMAT, "gcsSource": {"uris": "${input_uris}"}},
        "outputConfig": {"predictionsFormat": INSTANCES_FORMAT, "gcsDestination": {"outputUriPrefix": "${output_uri}"}},
        "dedicatedResources": {
            "machineSpec": machine_spec,
            "startingReplicaCount": batch.instance_count,
            "maxReplicaCount": batch.instance_count,
        },
        "serviceAccount": values["runner"],
        "encryptionSpec": {"kmsKeyName": values["key"]},
    }
    body.update(model_reference(ctx, model, values=values))
    return body


def model_reference(ctx: StageContext, model: Model, *, values: dict[str, Any]) -> dict[str, Any]:
    """model: REGISTRY_MODEL@approved, or unmanagedContainerModel for batch.model_uri."""
    batch = model.batch
    assert batch is not None
    if batch.model_uri is None:
        registry_model = values.get("registry_model") or (
            f"projects/{ctx.settings.project}/locations/{ctx.settings.region}/models/{model_id(ctx.namer, model.name)}"
        )
        return {"model": f"{registry_model}@{SERVING_ALIAS}"}
    artifacts_bucket = values["artifacts"].removeprefix("gs://")
    source = artifact_source(batch.model_uri, artifacts_bucket=artifacts_bucket)
    uri = source.uri or f"{values['artifacts']}/{source.path}"
    if "${" in uri:  # Workflows would read it as an expression: make it the expression of its own literal
        uri = "${" + json.dumps(uri) + "}"
    container: dict[str, Any] = {}
    if model.serving is not None:
        container["imageUri"] = model_upload_image(
            model.serving.image, ctx.settings, repository_id(ctx.namer, model.name)
        )
    return {"unmanagedContainerModel": {"artifactUri": uri, "containerSpec": container}}
