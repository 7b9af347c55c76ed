"""Azure data preparation: per model with `data_prep`, an Azure ML command job on a schedule.

Per model, in the stack's Azure ML workspace:
- a compute cluster of its own (the catalog's processing VM size for data_prep.compute), from 0 to
  1 node, running as the model's group identity (training.compute_cluster: no SSH, no node
  public IP on a private stack). Not the training cluster: its size is training's, and a prep
  run would queue behind a training run;
- an environment holding the preparation image (a private stack's copy of it, images.py);
- an Azure ML schedule with a cron trigger (schedules.ncrontab; the IANA zone as a Windows zone)
  and a CreateJob action: a command job running the image's `prepare` executable as
  `prepare --output DIR --<input> DIR ...` (inputs read-only mounts of the data containers under
  their prefixes; the output a read-write mount of data_prep.output through an identity-based
  datastore of that bucket), with data_prep.environment as its environment and max_runtime as its
  timeout. A failed run mails monitoring.notify.emails (the job's notification settings: Azure
  ML job notifications are emails, or Azure DevOps webhooks only, so notify.webhook is not told:
  a gap, warned at validate).

Grants: the group identity's one role assignment (governance_access.py) lets it read the inputs'
prefixes and read and write the output prefix, nowhere else in the data buckets.

Datastores: one per bucket a preparation job writes (Azure ML writes job outputs to datastore
paths only), with no stored credentials: each job reaches the container as its own identity.
They are stack-wide (a split spec's shared stack builds them; model stacks name them).

on_new_data is not built on Azure: validate says so at models[i].data_prep.on_new_data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.retraining import cron_schedule, schedule_problems
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef, identity_datastore
from mlops_infra.backends.azure.training import asset_name, compute_cluster, input_names, model_environment
from mlops_infra.spec.models import Model
from mlops_infra.stages.data_prep import DataPrepOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs

if TYPE_CHECKING:
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

PREPARE_COMMAND = "prepare"
OUTPUT = "prepared"
PURPOSE = "processing"
FAILED = "JobFailed"  # EmailNotificationEnableType


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        prep = model.data_prep
        if prep is None:
            continue
        path = ("models", i, "data_prep")
        if prep.on_new_data:
            problems.append(BACKEND.gap("models[].data_prep.on_new_data", (*path, "on_new_data"), value=True))
        problems += schedule_problems(prep.schedule, prep.timezone, path)
        if spec.monitoring.notify.webhook:
            problems.append(BACKEND.gap("models[].data_prep failures to notify.webhook", path))
    return problems


def command(inputs: list[str]) -> str:
    parts = [PREPARE_COMMAND, "--output", f"${{{{outputs.{OUTPUT}}}}}"]
    for name in sorted(inputs):
        parts += [f"--{name}", f"${{{{inputs.{name}}}}}"]
    return " ".join(parts)


def datastore_name(ctx: StageContext, bucket: str) -> str:
    return ctx.namer.name("azure.ml.datastore", "data", bucket)


@dataclass(frozen=True)
class Datastores:
    """Datastore names of the buckets preparation jobs write, and what declares them in this stack."""

    names: dict[str, str]
    resources: list[Any]


def _datastores(ctx: StageContext, workspace: WorkspaceRef) -> Datastores:
    written = sorted({m.data_prep.output.bucket for m in ctx.spec.models if m.data_prep is not None})
    names = {bucket: datastore_name(ctx, bucket) for bucket in written}
    storage = ctx.upstream.of(StorageOutputs)
    resources: list[Any] = []
    if not ctx.builds_stack:
        return Datastores(names=names, resources=resources)
    account = ctx.namer.name("azure.storage.account")
    for bucket in written:
        ref = storage.buckets.get(bucket)
        if ref is None:
            continue  # validate reports unknown buckets
        resources.append(
            identity_datastore(
                ctx,
                key=bucket,
                name=names[bucket],
                rg=workspace.resource_group,
                workspace_name=workspace.name,
                account_name=account,
                container=ref.physical,
                subscription_id=workspace.subscription_id,
                description=f"mlops-infra: bucket {bucket}, written by data preparation jobs",
            )
        )
    return Datastores(names=names, resources=resources)


def build(ctx: StageContext) -> DataPrepOutputs:
    workspace = ctx.upstream.find(WorkspaceRef)
    prepared = sorted((m for m in ctx.models() if m.data_prep is not None), key=lambda m: m.name)
    if workspace is None or not (prepared or ctx.builds_stack):
        return DataPrepOutputs(jobs={})
    datastores = _datastores(ctx, workspace)
    jobs: dict[str, Any] = {}
    for model in prepared:
        schedule = _model(ctx, model, workspace, datastores)
        if schedule is not None:
            jobs[model.name] = schedule.id
    return DataPrepOutputs(jobs=jobs)


def _model(ctx: StageContext, model: Model, workspace: WorkspaceRef, datastores: Datastores) -> ml.Schedule | None:
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    prep = model.data_prep
    assert prep is not None
    if not prep.schedule:
        return None  # on_new_data only: validate reports it
    storage = ctx.upstream.of(StorageOutputs)
    identity = ctx.upstream.of(GovernanceOutputs).reader(model)
    compute = compute_cluster(
        ctx,
        name=ctx.namer.name("azure.ml.compute_cluster", model.name, "prep"),
        key=model.name,
        workspace=workspace,
        identity=identity,
        vm_size=catalog.instance_type(prep.compute, PURPOSE, ctx.settings),
        count=1,
        spot=False,
        description=f"mlops-infra: data preparation of {model.name}",
    )
    _, _, environment = model_environment(
        ctx, name=asset_name(model.name, "prep_env"), key=model.name, workspace=workspace, image=prep.image,
        description=f"mlops-infra: data preparation image of {model.name}",
    )
    inputs = {
        name: pulumi.Output.concat(storage.buckets[ref.bucket].uri, "/", ref.prefix)
        for name, ref in input_names(prep.inputs).items()
        if ref.bucket in storage.buckets
    }
    output = pulumi.Output.concat(
        "azureml://datastores/", datastores.names[prep.output.bucket], "/paths/", prep.output.prefix
    )
    when = f"{prep.schedule} ({prep.timezone})"
    emails = sorted(set(ctx.spec.monitoring.notify.emails))
    job = ml.CommandJobArgs(
        job_type="Command",
        display_name=f"{model.name} data preparation (schedule)",
        description=f"mlops-infra: prepares the data of {model.name} at {when}",
        experiment_name=model.name,
        command=command(list(inputs)),
        environment_id=environment.id,
        environment_variables=dict(sorted(prep.environment.items())),
        compute_id=compute.id,
        identity=ml.ManagedIdentityArgs(identity_type="Managed", resource_id=identity.id),
        inputs={
            key: ml.UriFolderJobInputArgs(job_input_type="uri_folder", uri=uri, mode=ml.InputDeliveryMode.READ_ONLY_MOUNT)
            for key, uri in sorted(inputs.items())
        },
        outputs={
            OUTPUT: ml.UriFolderJobOutputArgs(
                job_output_type="uri_folder", uri=output, mode=ml.OutputDeliveryMode.READ_WRITE_MOUNT
            )
        },
        limits=ml.CommandJobLimitsArgs(job_limits_type="Command", timeout=f"PT{prep.max_runtime}S"),
        resources=ml.JobResourceConfigurationArgs(instance_count=1),
        notification_setting=ml.NotificationSettingArgs(email_on=[FAILED], emails=emails) if emails else None,
        tags={**ctx.tags(), "mlops-infra/trigger": "schedule"},
    )
    return cron_schedule(
        ctx,
        key=model.name,
        name=asset_name(model.name, "prepare"),
        workspace=workspace,
        display_name=f"{model.name} data preparation",
        description=f"mlops-infra: prepares the data of {model.name} at {when}",
        cron=prep.schedule,
        timezone=prep.timezone,
        job=job,
        # The output datastore is named, not referenced; the first run needs the group's grant.
        depends_on=[*datastores.resources, *ctx.prerequisites],
    )
