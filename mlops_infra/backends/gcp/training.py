"""GCP training: per model, a Cloud Workflows workflow that runs a Vertex AI custom job.

Why a workflow: a Vertex AI custom job is a one-off run, not declarative state, and Pulumi has
no resource that starts one. The workflow is the repeatable, parameterised training definition
(the counterpart of a SageMaker pipeline): each execution submits a custom job built from the
spec, polls it to the end and, when the model has a registry block, uploads the trained model
to the Vertex AI model registry as a new version. It is what retraining triggers; `gcloud
workflows run NAME` starts a run by hand. Its source is rendered from templates/gcp/workflow.yaml.j2.

Per model: the workflow, and an Artifact Registry repository (CMEK, immutable tags, protected)
for the model's images, since Vertex AI pulls training images only from Artifact Registry,
Container Registry or Docker Hub, and serving images (model upload) only from the first two
(check() warns with the push target for anything else).

Identities. The custom job runs as its model group's service account (governance.py): it reads
its group's inputs and writes under its models' models/ and checkpoints/ folders in the artifact
bucket (managed folder grants, storage.py), writes logs (the group's worker role: log writes
have no narrower resource than the project) and reads the model's repository (the model upload
runs as it). Encryption is the service agents' business: the job needs no key grant. The image
itself is pulled by the Vertex AI service agent (a job's service account cannot pull images),
which gets reader on the repository.
The workflow runs as the "automation" identity (what starts pipelines and schedules): the
stack's training launcher role (roles.py), exactly the Vertex AI permissions it calls
(roles/aiplatform.user would add hundreds of others: endpoints, datasets, notebooks...; no
narrower predefined role exists), actAs on the group service accounts of training models only (to launch jobs as them, one grant on each
account's own policy), and logWriter for the workflow's call logs. These grants are
stack-wide: the shared stack of a split spec holds them, and model stacks hold only their
models' workflows, repositories and repository grants.

Encryption: the custom job (its disks and outputs), the uploaded model, the workflow (source,
arguments, results) and the repository all use the governance key; governance lets each API's
service agent use it and hands the key out only once that grant exists.

Network: with governance.network: private each custom job runs peered into the stack's network
(CustomJob.network, private services access: governance_network.py), taking its address from
the reserved range when the stack created it; the network is named by project number, which the
workflow reads from its own environment (GOOGLE_CLOUD_PROJECT_NUMBER). Vertex AI custom jobs have
no network-isolation switch (nothing like SageMaker's EnableNetworkIsolation): what a job can
reach in the project is bounded by its service account's grants, and a VPC Service Controls
perimeter (a prerequisite the stack cannot make) keeps the project's data inside. On a public
network a job runs on a Google-managed network. The interactive shell (enableWebAccess) stays off.

Evaluation gate (training.evaluation): after the training job the workflow runs an evaluation
custom job (the evaluation image, or the training image with its command; one replica of the
training machine, on demand, as the group's identity) that writes a JSON object of metrics to
MLOPS_METRICS_URI (the run's evaluation/metrics.json). The workflow reads it (the automation
identity may read the model's output folder alone) and uploads the version only when the metric
reaches the threshold and, with compare_to_approved, beats the score of the version called
"approved" (read from that version's own run folder; none yet, or one evaluated before the gate,
passes). A failing gate logs an error and fails the run: the monitoring stage's failed-run alert
policy notifies the stack's channels.

run_on_deploy: Pulumi has no resource that starts a workflow execution or a custom job once, so
GCP declares none; check() warns with the command that starts the run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import catalog, grants
from mlops_infra.backends.gcp.naming import (
    TRAINING_SOURCES,
    image_findings,
    model_id,
    model_upload_image,
    repository_id,
    training_image,
    workflow_name,
)
from mlops_infra.backends.gcp.roles import act_as_grant, project_grant
from mlops_infra.backends.gcp.serving_endpoints import SERVING_ALIAS
from mlops_infra.backends.gcp.shared import ImageRepositories, PrivateNetwork, ProjectServices
from mlops_infra.layout import group_of
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.tracking import TrackingOutputs
from mlops_infra.stages.training import (
    TrainingOutputs,
    checkpoint_prefix,
    output_prefix,
)
from mlops_infra.templating import render

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

TEMPLATE = "gcp/workflow.yaml.j2"
POLL_SECONDS = 60  # how often the workflow asks for the job's state (each poll is 3 billed steps)
# Spot without max_wait: the workflow allows this many times max_runtime in all (queueing for
# capacity, preemptions and restarts included) before it cancels the job.
SPOT_WAIT_FACTOR = 2
MAX_WAIT_CAP = 28 * 86400
# Vertex AI CustomJob states a job never leaves (aiplatform v1 JobState).
TERMINAL_FAILURES = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")

LOG_WRITER = "roles/logging.logWriter"
REPOSITORY_READER = "roles/artifactregistry.reader"
# Version aliases (Vertex AI model registry). The endpoint serves the version called "approved"
# (SERVING_ALIAS, backends/gcp/serving.py): automatic approval gives it to every new version
# (with "default", what commands use when they name no version); manual approval marks the new
# version "candidate" until a person approves it by moving "approved" to it (gcloud ai models
# add-version-aliases / the console). Not "default" for that: Vertex AI gives "default" to the
# first version of a model by itself, which would deploy it unapproved.
APPROVAL_ALIASES = {"automatic": ["default", SERVING_ALIAS], "manual": ["candidate"]}
# Container environment names the training workflow sets itself (job_environment).
RESERVED_ENV_PREFIX = "MLOPS_"


def check(spec: Any, settings: Any) -> list[Problem]:
    """Training images Vertex AI cannot pull where they are, run_on_deploy, and environment
    variables the workflow sets itself."""
    from mlops_infra.backends.gcp import BACKEND

    problems: list[Problem] = []
    namer = BACKEND.namer(spec, settings)
    for i, model in enumerate(spec.models):
        training, base = model.training, ("models", i, "training")
        if training is None:
            continue
        problems += image_findings(
            training.image, (*base, "image"), accepted=TRAINING_SOURCES, use="custom training",
            sources="Artifact Registry, Container Registry or Docker Hub", settings=settings,
            repository=repository_id(namer, model.name),
        )
        if training.evaluation is not None and training.evaluation.image is not None:
            problems += image_findings(
                training.evaluation.image, (*base, "evaluation", "image"), accepted=TRAINING_SOURCES,
                use="custom training", sources="Artifact Registry, Container Registry or Docker Hub",
                settings=settings, repository=repository_id(namer, model.name),
            )
        if training.run_on_deploy:
            problems.append(
                BACKEND.gap(
                    "models[].training.run_on_deploy", (*base, "run_on_deploy"), value=True,
                    hint=f"start the run after `up` with: gcloud workflows run {workflow_name(namer, model.name)} "
                    f"--project={settings.project} --location={settings.region}",
                )
            )
        for name in sorted(k for k in training.environment if k.startswith(RESERVED_ENV_PREFIX)):
            problems.append(
                finding(
                    (*base, "environment", name),
                    f"{RESERVED_ENV_PREFIX}* variables are set by mlops-infra on GCP; where it sets {name} too, "
                    "its value replaces the spec's",
                    hint="rename it (mlops-infra sets MLOPS_MODEL, MLOPS_OUTPUT_URI, MLOPS_MODEL_DIR, "
                    "MLOPS_CHECKPOINT_URI, MLOPS_INPUTS, MLOPS_INPUT_<BUCKET> and MLOPS_TRACKING_URI; for the "
                    "evaluation job also MLOPS_METRICS_URI and MLOPS_METRIC)",
                    value=name,
                    severity="warning",
                )
            )
    return problems


def build(ctx: StageContext) -> TrainingOutputs:
    import pulumi
    import pulumi_gcp as gcp

    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    tracking = ctx.upstream.find(TrackingOutputs)
    registry = ctx.upstream.find(RegistryOutputs)
    project, region = ctx.settings.project, ctx.settings.region
    automation = governance.identities["automation"]
    services = ctx.upstream.of(ProjectServices)
    service_keys = services.service_keys
    service_agents = services.service_agents
    repositories = ctx.share(ImageRepositories())
    network = ctx.upstream.find(PrivateNetwork)

    if ctx.builds_stack:  # one role and grants for every model's workflow (this stage exists when any model trains)
        _launcher_grants(ctx, governance=governance)

    pipelines: dict[str, Any] = {}
    output_uris: dict[str, Any] = {}
    images: dict[str, Any] = {}
    for model in ctx.models():
        if model.training is None:
            continue
        training = governance.reader(model)  # its group's identity
        repo_id = repository_id(ctx.namer, model.name)
        repo = image_repository(ctx, model.name, repo_id)
        repositories.by_model[model.name] = repo
        readers = (("training", training.principal), ("vertex-agent", service_agents["aiplatform"]))
        for who, member in readers:
            gcp.artifactregistry.RepositoryIamMember(
                ctx.logical("repo-reader", who, model.name),
                project=project,
                location=region,
                repository=repo.repository_id,
                role=REPOSITORY_READER,
                member=member,
                opts=ctx.opts(),
            )

        image = training_image(model.training.image, ctx.settings, repo_id)
        name = workflow_name(ctx.namer, model.name)
        inputs = {
            "artifacts_uri": storage.artifacts.uri,
            "key": service_keys["aiplatform"],
            "training_email": training.id,
            "buckets": {ref.bucket: storage.buckets[ref.bucket].uri for ref in model.training.input_refs},
        }
        if tracking is not None:
            inputs["tracking_uri"] = tracking.tracking_uri
        if registry is not None and model.name in registry.registries:
            inputs["model_name"] = registry.registries[model.name]
        if network is not None:
            inputs["network_name"] = network.name
            inputs["reserved_ranges"] = network.peering_ranges

        def render(
            values: dict[str, Any], model: Model = model, name: str = name, image: str = image, repo_id: str = repo_id
        ) -> str:
            return workflow_source(ctx, model, workflow=name, image=image, repository=repo_id, values=values)

        source = pulumi.Output.all(**inputs).apply(render)
        workflow = gcp.workflows.Workflow(
            ctx.logical("workflow", model.name),
            name=name,
            project=project,
            region=region,
            description=f"trains model {model.name} on Vertex AI (mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
            service_account=automation.id,
            crypto_key_name=service_keys["workflows"],
            call_log_level="LOG_ERRORS_ONLY",
            # A definition, not data: replaced and destroyed like any other (the provider's
            # default, true, would make `destroy` fail on it).
            deletion_protection=False,
            source_contents=source,
            labels=ctx.tags(),
            opts=ctx.opts(),
        )
        pipelines[model.name] = workflow.name.apply(lambda n: f"projects/{project}/locations/{region}/workflows/{n}")
        output_uris[model.name] = storage.artifacts.uri.apply(lambda uri, m=model.name: f"{uri}/{output_prefix(m)}")
        images[model.name] = image
    return TrainingOutputs(pipelines=pipelines, output_uris=output_uris, images=images)



def image_repository(ctx: StageContext, model: str, repo_id: str) -> Any:
    """A model's Artifact Registry repository: Docker, encrypted with the stack key, protected."""
    import pulumi_gcp as gcp

    return gcp.artifactregistry.Repository(
        ctx.logical("repository", model),
        project=ctx.settings.project,
        location=ctx.settings.region,
        repository_id=repo_id,
        format="DOCKER",
        mode="STANDARD_REPOSITORY",
        description=f"container images of model {model} (mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
        kms_key_name=ctx.upstream.of(ProjectServices).service_keys["artifactregistry"],
        # A tag names one image for good: a training run is reproducible from its tag.
        docker_config={"immutable_tags": True},
        labels=ctx.tags(),
        opts=ctx.opts(protect=True),
    )

def _launcher_grants(ctx: StageContext, *, governance: GovernanceOutputs) -> None:
    automation = governance.identities["automation"]
    # Project-level: custom jobs have no resource-level IAM (their names exist only once created).
    role = ctx.upstream.of(ProjectServices).roles[grants.LAUNCHER]
    project_grant(ctx, "launcher", "automation", role=role, member=automation.principal)
    # Launch jobs (and upload models) as a group's service account: actAs on each training
    # group's account alone, a grant on that account's own policy.
    trained = sorted({group_of(m) for m in ctx.spec.models if m.training is not None})
    for group in trained:
        act_as_grant(ctx, group=group, account=governance.groups[group].id, member=automation.principal)
    # Cloud Logging has no narrower resource for writing entries than the project (the groups
    # write theirs through their worker role, governance.py).
    project_grant(ctx, "logwriter", "automation", role=LOG_WRITER, member=automation.principal)


def machine_spec_body(machine: catalog.MachineSpec) -> dict[str, Any]:
    """A CustomJob worker pool's machineSpec."""
    body: dict[str, Any] = {"machineType": machine.machine_type}
    if machine.accelerator_type:
        body["acceleratorType"] = machine.accelerator_type
        body["acceleratorCount"] = machine.accelerator_count
    return body


# --- the workflow source (pure: called inside apply with resolved values; tests call it too) ---
def workflow_source(
    ctx: StageContext, model: Model, *, workflow: str, image: str, repository: str, values: dict[str, Any]
) -> str:
    """The rendered workflow YAML for `model` (values: resolved artifact URI, key, emails...)."""
    return render(TEMPLATE, **workflow_values(ctx, model, workflow=workflow, image=image, repository=repository, values=values))


def workflow_values(
    ctx: StageContext, model: Model, *, workflow: str, image: str, repository: str, values: dict[str, Any]
) -> dict[str, Any]:
    settings = ctx.settings
    project, region = settings.project, settings.region
    training = model.training
    assert training is not None
    labels = {**ctx.tags(), "mlops-model": model.name}
    key = values["key"]
    serving_image = None
    registry = None
    if "model_name" in values and model.registry is not None:
        serving_image = model_upload_image(model.serving.image, settings, repository) if model.serving else None
        registry = {
            "model_name": values["model_name"],
            "model_id": model_id(ctx.namer, model.name),
            "service_account": values["training_email"],
            "model": _model_body(model, labels=labels, key=key),
        }
    return {
        "workflow": workflow,
        "model": model.name,
        "region": region,
        "parent": f"projects/{project}/locations/{region}",
        "output_root": f"{values['artifacts_uri']}/{output_prefix(model.name)}",
        "checkpoint_root": f"{values['artifacts_uri']}/{checkpoint_prefix(model.name)}",
        "failed_states": list(TERMINAL_FAILURES),
        "job_prefix": workflow,
        "max_wait": max_wait(training),
        "poll_seconds": POLL_SECONDS,
        "job": custom_job(ctx, model, image=image, values=values, labels=labels),
        "registry": registry,
        "serving_image": serving_image,
        "evaluation": evaluation_values(ctx, model, image=image, repository=repository, values=values, labels=labels),
    }


def evaluation_values(
    ctx: StageContext, model: Model, *, image: str, repository: str, values: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any] | None:
    """The gate's part of the workflow: its custom job, where its metrics land and the comparisons
    (Workflows operators) that fail it; None without training.evaluation."""
    assert model.training is not None
    gate = model.training.evaluation
    if gate is None:
        return None
    maximize = gate.direction == "maximize"
    if gate.image is not None:
        image = training_image(gate.image, ctx.settings, repository)
    return {
        "bucket": values["artifacts_uri"].removeprefix("gs://"),
        "prefix": output_prefix(model.name),
        "metric": gate.metric,
        "threshold": gate.threshold,
        # A passing score reaches the threshold; with compare_to_approved it also beats the
        # approved version's own score (strictly: a tie keeps the approved version).
        "fails": f"${{score {'<' if maximize else '>'} gate_threshold}}",
        "not_better": f"${{approved_score != null and not (score {'>' if maximize else '<'} approved_score)}}",
        "rule": f"{'>=' if maximize else '<='} {gate.threshold:g}",
        "compare_to_approved": gate.compare_to_approved and "model_name" in values,
        "approved_alias": SERVING_ALIAS,
        "job": evaluation_job(ctx, model, image=image, values=values, labels=labels),
    }


def evaluation_job(
    ctx: StageContext, model: Model, *, image: str, values: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """The evaluation CustomJob: one replica of the training machine, as the group's identity,
    reading the run's model and the training inputs, writing metrics.json next to the model."""
    training = model.training
    assert training is not None and training.evaluation is not None
    job = custom_job(ctx, model, image=image, values=values, labels=labels)
    pool = dict(job["jobSpec"]["workerPoolSpecs"][0])
    container = dict(pool["containerSpec"], args=[])
    if training.evaluation.command:
        container["command"] = [_literal(arg) for arg in training.evaluation.command]
    env = {e["name"]: e["value"] for e in container["env"]}
    env["MLOPS_METRICS_URI"] = "${metrics_uri}"
    env["MLOPS_METRIC"] = training.evaluation.metric
    container["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    pool["containerSpec"] = container
    spec = dict(job["jobSpec"], workerPoolSpecs=[pool])
    # On demand: a gate waiting for spot capacity would hold the new version back for hours.
    spec["scheduling"] = {"timeout": spec["scheduling"]["timeout"], "strategy": "STANDARD"}
    return dict(job, displayName="${job_display_name + \"-evaluation\"}", jobSpec=spec)


def max_wait(training: Any) -> int | None:
    """Seconds the workflow waits for a spot job in all; None for on-demand jobs (their running
    time is bounded by scheduling.timeout, their queueing by Vertex AI)."""
    if not training.spot:
        return None
    return training.max_wait or min(SPOT_WAIT_FACTOR * training.max_runtime, MAX_WAIT_CAP)


def custom_job(ctx: StageContext, model: Model, *, image: str, values: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The CustomJob body (aiplatform v1 projects.locations.customJobs.create). Strings "${...}"
    are Workflows expressions over the workflow's variables (run-specific paths and names)."""
    training = model.training
    assert training is not None
    machine_spec = machine_spec_body(catalog.machine_spec(training.compute, "training", ctx.settings, model=model.name))
    container = {
        "imageUri": image,
        "args": [_literal(arg) for arg in hyperparameter_args(training.hyperparameters)],
        "env": [{"name": k, "value": v} for k, v in sorted(job_environment(ctx, model, values).items())],
    }
    # The first worker pool is the primary replica and takes exactly one; more instances run
    # as a second pool of identical workers.
    pools = [{"machineSpec": machine_spec, "replicaCount": 1, "containerSpec": container}]
    if training.compute.instance_count > 1:
        pools.append({"machineSpec": machine_spec, "replicaCount": training.compute.instance_count - 1, "containerSpec": container})
    return {
        "displayName": "${job_display_name}",
        "labels": labels,
        "jobSpec": {
            "workerPoolSpecs": pools,
            "serviceAccount": values["training_email"],
            "baseOutputDirectory": {"outputUriPrefix": "${base_output}"},
            "scheduling": {
                "timeout": f"{training.max_runtime}s",
                "strategy": "SPOT" if training.spot else "STANDARD",
            },
            "enableWebAccess": False,
            **peering(values),
        },
        "encryptionSpec": {"kmsKeyName": values["key"]},
    }


def peering(values: dict[str, Any]) -> dict[str, Any]:
    """CustomJobSpec.network (and reservedIpRanges) for a private network: the job runs peered into
    it. The network is named by project number, a Workflows expression over the workflow's own
    environment (the stack knows the project's id, not its number)."""
    if "network_name" not in values:
        return {}
    network = '"/global/networks/' + values["network_name"] + '"'
    spec: dict[str, Any] = {"network": '${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_NUMBER") + ' + network + "}"}
    if values.get("reserved_ranges"):
        spec["reservedIpRanges"] = list(values["reserved_ranges"])
    return spec


def hyperparameter_args(hyperparameters: dict[str, Any]) -> list[str]:
    """--name=value per hyperparameter, sorted by name (booleans as true/false)."""
    return [f"--{name}={_arg(value)}" for name, value in sorted(hyperparameters.items())]


def job_environment(ctx: StageContext, model: Model, values: dict[str, Any]) -> dict[str, str]:
    """The container environment: the spec's, plus where to read, write and track (the MLOPS_
    names set here win; check() warns when the spec sets one of them)."""
    training = model.training
    assert training is not None
    env = {name: _literal(value) for name, value in training.environment.items()}
    by_bucket: dict[str, list[str]] = {}
    for ref in training.input_refs:
        by_bucket.setdefault(ref.bucket, []).append(f"{values['buckets'][ref.bucket]}/{ref.prefix}")
    env.update(
        {
            "MLOPS_MODEL": model.name,
            "MLOPS_OUTPUT_URI": "${base_output}",
            "MLOPS_MODEL_DIR": "${model_dir}",
            "MLOPS_CHECKPOINT_URI": "${checkpoint_dir}",
            "MLOPS_INPUTS": ",".join(uri for uris in by_bucket.values() for uri in uris),
        }
    )
    for bucket, uris in by_bucket.items():
        env[f"MLOPS_INPUT_{bucket.upper().replace('-', '_')}"] = ",".join(uris)
    if "tracking_uri" in values:
        env["MLOPS_TRACKING_URI"] = values["tracking_uri"]
    return env


def _model_body(model: Model, *, labels: dict[str, str], key: str) -> dict[str, Any]:
    """The Model of models.upload (aiplatform v1): artifacts from this run, the serving container."""
    assert model.registry is not None
    container: dict[str, Any] = {"imageUri": "${serving_image}"}
    if model.serving is not None and model.serving.environment:
        container["env"] = [{"name": k, "value": _literal(v)} for k, v in sorted(model.serving.environment.items())]
    return {
        "displayName": model.name,
        "description": f"model {model.name}, trained by mlops-infra",
        "artifactUri": "${model_dir}",
        "containerSpec": container,
        "labels": {**labels, "mlops-approval": model.registry.approval},
        "versionAliases": APPROVAL_ALIASES[model.registry.approval],
        "versionDescription": '${"workflow execution " + run_id}',
        "encryptionSpec": {"kmsKeyName": key},
    }


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _literal(value: str) -> str:
    """A user string as Workflows reads it: a value written "${...}" is an expression, so any
    string holding "${" becomes the expression of its own quoted literal."""
    if "${" in value:
        return "${" + json.dumps(value) + "}"
    return value
