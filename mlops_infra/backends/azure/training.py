"""Azure training: per model an AmlCompute cluster, an environment and a command component.

Per model with a `training` block, in the stack's Azure ML workspace (storage_workspace.py):
- a compute cluster (AmlCompute) of the catalog's VM size (or clouds.azure.overrides), from 0
  nodes (it scales to zero after IDLE_SCALE_DOWN) to instance_count nodes, low priority for
  `spot: true`, running as the model's group identity (governance: one per models[].group), no
  SSH, no node public IP when governance.network is private. A cluster is never shared across
  groups: code on a node can get a token for every identity attached to its cluster;
- an environment (EnvironmentContainer + EnvironmentVersion) holding the spec's image as is:
  Azure ML pulls from any registry it can reach, so public images (ghcr.io, Docker Hub) need
  no copy in the stack's registry; images in the stack's registry are pulled with AcrPull;
- the repeatable definition: a command component (ComponentContainer + ComponentVersion whose
  spec is rendered from templates/azure/command_component.json.j2). A component is a workspace
  asset that any job or schedule can run again with other data, which is what retraining
  starts; TrainingOutputs.pipelines holds its ARM id. Its version is a hash of its content, so a
  changed definition is a new version and earlier runs keep the one they used.
- `run_on_deploy: true`: a command Job binding that definition to the data (inputs as
  uri_folder https URIs of the data containers, read-only mounts), to the artifact container
  (output `model` at output_prefix(model), checkpoints at checkpoint_prefix(model) for spot) and
  to the cluster. A job is immutable: its name is a hash of its whole definition, so any change
  is a new job, and an unchanged one is left alone. Jobs, environment and component versions are
  retained on delete: they hold run history that replacing them must not erase.

The container contract (documented in the README): the image provides a `train` executable
(SageMaker's convention), called as
`train --model-dir DIR [--checkpoint-dir DIR] --<input> DIR ... --<hyperparameter> VALUE ...`.
Low-priority nodes can be preempted: the job should write checkpoints to --checkpoint-dir and
resume from what it finds there. Azure has no wait limit for low-priority capacity, so max_wait
has no effect (validate warns: a gap); max_runtime is the job's timeout.

Grants: none here. Each group's identity holds one role assignment, made by governance
(governance_access.py): its data, its models' artifact prefixes and the workspace's two system
containers ("azureml": run logs and artifacts; "azureml-blobstore-<workspace id>": the default
datastore, which the workspace reaches with identities, not keys), image pulls from the stack's
registry (Azure ML keeps the images it prepares there) and MLflow metrics on the workspace.
AzureML Data Scientist would also let it submit jobs, create models, read every datastore's
secrets. A one-off job waits for its group's assignment (in a split spec the shared stack,
deployed first, holds it).
Jobs are submitted by whoever deploys (run_on_deploy) and by the retraining stage (its Azure ML
schedules, and its Logic Apps running as the automation identity, which retraining.py grants a
job-submitter role on the workspace). Every run binds the same definition the same way:
TrainingJobs (shared with the retraining stage) holds those bindings (TrainingJob) per model, and command_job_args /
command_job_body turn them into a command job (SDK arguments, or the REST body a Logic App sends).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.governance import GovernanceGrants
from mlops_infra.backends.azure.images import private_image
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.layout import group_of
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import DataRef, Model
from mlops_infra.stages.training import (
    TrainingOutputs,
    checkpoint_prefix,
    output_prefix,
)
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.templating import render_json

if TYPE_CHECKING:
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

TEMPLATE = "azure/command_component.json.j2"
TRAIN_COMMAND = "train"
IDLE_SCALE_DOWN = "PT120S"  # idle nodes are released after 2 minutes
MODEL_OUTPUT = "model"
CHECKPOINT_OUTPUT = "checkpoints"
VERSION_LENGTH = 12


@dataclass(frozen=True)
class TrainingJob:
    """How a run of one model's training definition is bound: what every retraining run submits."""

    model: str
    component: str  # "<component name>:<version>"
    component_id: Any  # the component version's ARM id
    command: str
    environment_id: Any  # the environment version's ARM id
    environment_variables: dict[str, str]
    compute_id: Any  # the model's compute cluster
    identity_id: Any  # the model group's identity the job runs as
    inputs: dict[str, Any]  # job input name -> uri_folder URI (read-only mount)
    outputs: dict[str, tuple[Any, str]]  # job output name -> (uri_folder URI, delivery mode)
    timeout_seconds: int
    instance_count: int
    process_count_per_instance: int | None  # set for distributed (PyTorch) runs
    image: str  # what the nodes pull: the spec's image, or a private stack's copy of it


@dataclass(frozen=True)
class TrainingJobs:
    """Each trained model's job bindings, by model name: what the retraining stage submits."""

    jobs: dict[str, TrainingJob]


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    return [
        BACKEND.gap("models[].training.max_wait", ("models", i, "training", "max_wait"), value=model.training.max_wait)
        for i, model in enumerate(spec.models)
        if model.training is not None and model.training.max_wait is not None
    ]


def asset_name(model: str, suffix: str) -> str:
    """A workspace asset name for `model`: 'churn-classifier' -> 'churn_classifier_train'.

    Spec names are slugs (single hyphens, no underscores), so the mapping is one to one and the
    result fits every Azure ML asset rule (letters, digits, underscores; letter first).
    """
    return f"{model.replace('-', '_')}_{suffix}"


def input_names(refs: list[DataRef]) -> dict[str, DataRef]:
    """Job input name -> the data it reads: the bucket, plus a hash when a prefix narrows it.

    Bucket slugs never contain "__", so 'raw' + prefix cannot collide with another bucket.
    """
    names: dict[str, DataRef] = {}
    for ref in refs:
        base = ref.bucket.replace("-", "_")
        names[f"{base}__{stable_hash(ref.prefix)}" if ref.prefix else base] = ref
    return dict(sorted(names.items()))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def command(inputs: list[str], hyperparameters: dict[str, Any], *, spot: bool) -> str:
    """The component's command line (hyperparameters as arguments, shell-quoted)."""
    parts = [TRAIN_COMMAND, "--model-dir", f"${{{{outputs.{MODEL_OUTPUT}}}}}"]
    if spot:
        parts += ["--checkpoint-dir", f"${{{{outputs.{CHECKPOINT_OUTPUT}}}}}"]
    for name in sorted(inputs):
        parts += [f"--{name}", f"${{{{inputs.{name}}}}}"]
    for key, value in sorted(hyperparameters.items()):
        parts += [shlex.quote(f"--{key}"), shlex.quote(_text(value))]
    return " ".join(parts)


def processes_per_node(vm_size: str) -> int:
    return max(1, int(catalog.VM_SIZES.get(vm_size, {}).get("gpus", 0)))


def component_values(model: Model, *, environment: str, vm_size: str) -> dict[str, Any]:
    """What the component template renders, without its version (which is a hash of this)."""
    training = model.training
    assert training is not None
    inputs = input_names(training.input_refs)
    outputs = {
        MODEL_OUTPUT: {"mode": "upload", "description": f"the trained model, under {output_prefix(model.name)}"},
    }
    if training.spot:
        outputs[CHECKPOINT_OUTPUT] = {
            "mode": "rw_mount",
            "description": f"checkpoints to resume from after preemption, under {checkpoint_prefix(model.name)}",
        }
    count = training.compute.instance_count
    return {
        "component_name": asset_name(model.name, "train"),
        "display_name": f"{model.name} training",
        "description": f"mlops-infra: trains {model.name}",
        "command": command(list(inputs), dict(training.hyperparameters), spot=training.spot),
        "environment": environment,
        "environment_variables": dict(sorted(training.environment.items())),
        "inputs": {
            name: f"bucket {ref.bucket}" + (f" under {ref.prefix}" if ref.prefix else "")
            for name, ref in inputs.items()
        },
        "outputs": outputs,
        "instance_count": count,
        # Several nodes: torch.distributed's environment (MASTER_ADDR, RANK, ...) on each, one
        # process per GPU.
        "distribution": (
            {"type": "pytorch", "process_count_per_instance": processes_per_node(vm_size)} if count > 1 else None
        ),
    }


def component_spec(values: dict[str, Any]) -> dict[str, Any]:
    """The rendered component spec; its version is the hash of everything else in it."""
    version = stable_hash(json.dumps(values, sort_keys=True), length=VERSION_LENGTH)
    return render_json(TEMPLATE, version=version, **values)


def build(ctx: StageContext) -> TrainingOutputs:
    import pulumi

    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    workspace = ctx.upstream.of(WorkspaceRef)
    models = sorted((m for m in ctx.models() if m.training is not None), key=lambda m: m.name)

    pipelines: dict[str, Any] = {}
    output_uris: dict[str, Any] = {}
    images: dict[str, Any] = {}
    jobs: dict[str, TrainingJob] = {}
    for model in models:
        jobs[model.name] = _model(ctx, model, workspace, governance.reader(model), storage)
        pipelines[model.name] = jobs[model.name].component_id
        output_uris[model.name] = pulumi.Output.concat(storage.artifacts.uri, "/", output_prefix(model.name))
        images[model.name] = jobs[model.name].image
    ctx.share(TrainingJobs(jobs=jobs))
    return TrainingOutputs(pipelines=pipelines, output_uris=output_uris, images=images)


def _model(ctx: StageContext, model: Model, workspace: Any, identity: Any, storage: Any) -> TrainingJob:
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    training = model.training
    assert training is not None
    rg, tags = workspace.resource_group, ctx.tags()
    vm_size = catalog.training_vm_size(model, ctx.settings)
    count = training.compute.instance_count

    compute_name = ctx.namer.name("azure.ml.compute_cluster", model.name)
    compute = compute_cluster(
        ctx,
        name=compute_name,
        model=model.name,
        workspace=workspace,
        identity=identity,
        vm_size=vm_size,
        max_nodes=count,
        low_priority=training.spot,
        description=f"mlops-infra: training of {model.name}",
    )

    environment_name = asset_name(model.name, "train_env")
    environment_container = ml.EnvironmentContainer(
        ctx.logical("environment", model.name),
        name=environment_name,
        resource_group_name=rg,
        workspace_name=workspace.name,
        properties=ml.EnvironmentContainerPropertiesArgs(
            description=f"mlops-infra: training image of {model.name}", tags=tags
        ),
        opts=ctx.opts(),
    )
    # A private stack runs the copy of the image in its own registry (images.py).
    image, copies = private_image(ctx, training.image, workspace=workspace, what=model.name)
    environment_version = stable_hash(image, "Linux", length=VERSION_LENGTH)
    environment = ml.EnvironmentVersion(
        ctx.logical("envversion", model.name),
        name=environment_container.name.apply(lambda _: environment_name),
        version=environment_version,
        resource_group_name=rg,
        workspace_name=workspace.name,
        properties=ml.EnvironmentVersionPropertiesArgs(
            image=image,
            os_type=ml.OperatingSystemType.LINUX,
            auto_rebuild=ml.AutoRebuildSetting.DISABLED,
            description=f"mlops-infra: {training.image}",
            tags=tags,
        ),
        opts=ctx.opts(retain_on_delete=True, depends_on=copies),
    )

    values = component_values(model, environment=f"azureml:{environment_name}:{environment_version}", vm_size=vm_size)
    spec = component_spec(values)
    component_name = spec["name"]
    component_container = ml.ComponentContainer(
        ctx.logical("component", model.name),
        name=component_name,
        resource_group_name=rg,
        workspace_name=workspace.name,
        properties=ml.ComponentContainerPropertiesArgs(description=f"mlops-infra: training of {model.name}", tags=tags),
        opts=ctx.opts(),
    )
    component = ml.ComponentVersion(
        ctx.logical("compversion", model.name),
        # Waits for the environment the spec names by reference.
        name=pulumi.Output.all(component_container.name, environment.name).apply(lambda _: component_name),
        version=spec["version"],
        resource_group_name=rg,
        workspace_name=workspace.name,
        properties=ml.ComponentVersionPropertiesArgs(
            component_spec=spec,
            description=values["description"],
            tags=tags,
        ),
        opts=ctx.opts(retain_on_delete=True),
    )

    job = _bindings(model, workspace, identity, storage, values, spec, compute, environment, component, image)
    if training.run_on_deploy:
        _job(ctx, job, workspace, spec, compute_name, vm_size)
    return job


def compute_cluster(
    ctx: StageContext,
    *,
    name: str,
    model: str,
    workspace: Any,
    identity: Any,
    vm_size: str,
    max_nodes: int,
    low_priority: bool,
    description: str,
) -> ml.Compute:
    """A model's AmlCompute cluster: from 0 to max_nodes nodes running as its group's identity, no
    SSH, no node public IP on a private network (batch.py makes its scoring clusters with it too)."""
    from pulumi_azure_native import machinelearningservices as ml

    private = ctx.spec.governance.network == "private"
    return ml.Compute(
        ctx.logical("compute", model),
        compute_name=name,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        location=workspace.location,
        identity=ml.ManagedServiceIdentityArgs(
            type=ml.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=identity.id.apply(lambda identity_id: [identity_id]),
        ),
        properties=ml.AmlComputeArgs(
            compute_type="AmlCompute",
            description=description,
            disable_local_auth=True,
            properties=ml.AmlComputePropertiesArgs(
                vm_size=vm_size,
                vm_priority=ml.VmPriority.LOW_PRIORITY if low_priority else ml.VmPriority.DEDICATED,
                os_type=ml.OsType.LINUX,
                scale_settings=ml.ScaleSettingsArgs(
                    min_node_count=0, max_node_count=max_nodes, node_idle_time_before_scale_down=IDLE_SCALE_DOWN
                ),
                remote_login_port_public_access=ml.RemoteLoginPortPublicAccess.DISABLED,
                enable_node_public_ip=not private,
            ),
        ),
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def _bindings(
    model: Model,
    workspace: Any,
    identity: Any,
    storage: Any,
    values: dict[str, Any],
    spec: dict[str, Any],
    compute: Any,
    environment: Any,
    component: Any,
    image: str,
) -> TrainingJob:
    """Bind the model's definition to its data, artifact prefixes, cluster and identity."""
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    training = model.training
    assert training is not None
    inputs = input_names(training.input_refs)
    uris = {
        name: pulumi.Output.concat(storage.buckets[ref.bucket].uri, "/", ref.prefix)
        for name, ref in inputs.items()
        if ref.bucket in storage.buckets  # unknown buckets are reported by validate
    }
    datastore = workspace.artifacts_datastore
    outputs = {MODEL_OUTPUT: (output_prefix(model.name), ml.OutputDeliveryMode.UPLOAD)}
    if training.spot:
        outputs[CHECKPOINT_OUTPUT] = (checkpoint_prefix(model.name), ml.OutputDeliveryMode.READ_WRITE_MOUNT)
    distribution = values["distribution"]
    return TrainingJob(
        model=model.name,
        component=f"{spec['name']}:{spec['version']}",
        component_id=component.id,
        command=values["command"],
        environment_id=environment.id,
        environment_variables=values["environment_variables"],
        compute_id=compute.id,
        identity_id=identity.id,
        inputs=dict(sorted(uris.items())),
        outputs={
            name: (pulumi.Output.concat("azureml://datastores/", datastore, "/paths/", prefix), str(mode.value))
            for name, (prefix, mode) in sorted(outputs.items())
        },
        timeout_seconds=training.max_runtime,
        instance_count=training.compute.instance_count,
        process_count_per_instance=distribution["process_count_per_instance"] if distribution else None,
        image=image,
    )


def command_job_args(
    job: TrainingJob,
    *,
    display_name: str,
    description: str,
    tags: dict[str, str],
    link_component: bool = True,
) -> ml.CommandJobArgs:
    """The command job that runs `job` (SDK arguments: a Job resource or a schedule's CreateJob action).

    link_component records the component version on the job (lineage in the studio); the
    one-off deploy job predates it and keeps its inputs, so an upgrade does not replace it.
    """
    from pulumi_azure_native import machinelearningservices as ml

    return ml.CommandJobArgs(
        job_type="Command",
        display_name=display_name,
        description=description,
        experiment_name=job.model,
        command=job.command,
        component_id=job.component_id if link_component else None,
        environment_id=job.environment_id,
        environment_variables=job.environment_variables,
        compute_id=job.compute_id,
        identity=ml.ManagedIdentityArgs(identity_type="Managed", resource_id=job.identity_id),
        inputs={
            key: ml.UriFolderJobInputArgs(job_input_type="uri_folder", uri=uri, mode=ml.InputDeliveryMode.READ_ONLY_MOUNT)
            for key, uri in job.inputs.items()
        },
        outputs={
            key: ml.UriFolderJobOutputArgs(job_output_type="uri_folder", uri=uri, mode=mode)
            for key, (uri, mode) in job.outputs.items()
        },
        limits=ml.CommandJobLimitsArgs(job_limits_type="Command", timeout=f"PT{job.timeout_seconds}S"),
        resources=ml.JobResourceConfigurationArgs(instance_count=job.instance_count),
        distribution=(
            ml.PyTorchArgs(distribution_type="PyTorch", process_count_per_instance=job.process_count_per_instance)
            if job.process_count_per_instance
            else None
        ),
        properties={"mlops-infra/component": job.component},
        tags=tags,
    )


def command_job_body(job: TrainingJob, *, display_name: str, description: str, tags: dict[str, str]) -> dict[str, Any]:
    """The same command job as the body of an ARM `PUT .../workspaces/{ws}/jobs/{name}` (REST names).

    Values only Azure knows (ids, URIs) stay Outputs inside the dict; Pulumi resolves them in place.
    """
    from pulumi_azure_native import machinelearningservices as ml

    properties: dict[str, Any] = {
        "jobType": "Command",
        "displayName": display_name,
        "description": description,
        "experimentName": job.model,
        "command": job.command,
        "componentId": job.component_id,
        "environmentId": job.environment_id,
        "environmentVariables": job.environment_variables,
        "computeId": job.compute_id,
        "identity": {"identityType": "Managed", "resourceId": job.identity_id},
        "inputs": {
            key: {"jobInputType": "uri_folder", "uri": uri, "mode": str(ml.InputDeliveryMode.READ_ONLY_MOUNT.value)}
            for key, uri in job.inputs.items()
        },
        "outputs": {
            key: {"jobOutputType": "uri_folder", "uri": uri, "mode": mode} for key, (uri, mode) in job.outputs.items()
        },
        "limits": {"jobLimitsType": "Command", "timeout": f"PT{job.timeout_seconds}S"},
        "resources": {"instanceCount": job.instance_count},
        "properties": {"mlops-infra/component": job.component},
        "tags": tags,
    }
    if job.process_count_per_instance:
        properties["distribution"] = {
            "distributionType": "PyTorch",
            "processCountPerInstance": job.process_count_per_instance,
        }
    return {"properties": properties}


def _job(
    ctx: StageContext,
    job: TrainingJob,
    workspace: Any,
    spec: dict[str, Any],
    compute_name: str,
    vm_size: str,
) -> ml.Job:
    """The one-off run of run_on_deploy, named by a hash of its whole definition."""
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    training = ctx.spec.model(job.model).training
    assert training is not None
    grants = ctx.upstream.find(GovernanceGrants)  # none in a split's model stack: the shared stack holds them
    # The job's name hashes its whole definition: the component's content and version, where it
    # runs (cluster, VM size, priority), how long, as whom, and where its data comes from and goes.
    definition = {
        "component": spec,
        "compute": compute_name,
        "vm_size": vm_size,
        "spot": training.spot,
        "timeout": training.max_runtime,
        "identity": f"group:{group_of(ctx.spec.model(job.model))}",
    }
    inputs, outputs = job.inputs, {key: uri for key, (uri, _) in job.outputs.items()}

    def job_name(resolved: list[Any]) -> str:
        bound = dict(zip(sorted(inputs) + sorted(outputs), resolved))
        text = json.dumps({**definition, "bindings": bound}, sort_keys=True)
        return f"{job.model}-train-{stable_hash(text, length=VERSION_LENGTH)}"

    name = pulumi.Output.all(*[inputs[k] for k in sorted(inputs)], *[outputs[k] for k in sorted(outputs)]).apply(
        job_name
    )
    return ml.Job(
        ctx.logical("job", job.model),
        id=name,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=command_job_args(
            job,
            display_name=f"{job.model} training (deploy)",
            description=f"mlops-infra: one-off training run of {job.model} started by the deployment",
            tags=ctx.tags(),
            link_component=False,
        ),
        opts=ctx.opts(
            retain_on_delete=True,
            depends_on=ctx.waits(grants.groups.get(group_of(ctx.spec.model(job.model))) if grants else None),
        ),
    )
