"""GCP serving: per model, a Vertex AI endpoint and the model deployed to it.

Per model with `serving`:
- a Vertex AI endpoint (AiEndpoint): stable id (naming.endpoint_id), CMEK with the governance
  key, labels, request-response logging to BigQuery when the spec asks for data capture, Private
  Service Connect when governance.network is private (this project only, its address made by
  Vertex AI in the stack's network: psc_config). Its URN, id and URL never change with what
  it serves. Its traffic split belongs to the DeployedModel below (ignored here).
- with data capture: a BigQuery dataset (CMEK, protected, labelled) that Vertex AI logs sampled
  requests and responses into (table request_response_logging, which Vertex AI creates), and
  dataEditor on that dataset for the Vertex AI service agent (which writes the rows) and the
  serving identity.
- the DeployedModel (deployed_model.py, a dynamic resource): uploads the model from its
  artifact with the serving container and deploys it to the endpoint with the catalog's serving
  machine, min/max replicas, the autoscaling target, the serving identity and the rollout.
  The artifact is serving.model_uri when given (a path without scheme lives in the artifact
  bucket); for a trained model with a registry block, the registry version the "approved" alias
  names (the training workflow moves it on automatic approval, a person on manual; until a
  version has it, the DeployedModel waits and the next `up` after an approval deploys it). A trained model without a registry block has no artifact mlops-infra can pick (each
  run writes its own folder) and check() reports it. The uploaded model gets a content-
  derived id (naming.served_model_id over everything that forces a new deployment), so a new
  image or artifact is a new model, deployed and given traffic before the old one goes.
- grants, one resource each, per model (nothing lists every model): read its Artifact Registry
  repository (the training stage's, or one created here for a model without training), and the
  dataset grants above. Reading its artifact is a grant on the artifact's managed folder that
  the storage stage makes (one per folder, shared by models deploying from the same folder:
  backends/gcp/grants.py); the deployment waits for it. Log writing (one project-level grant:
  Cloud Logging has no narrower resource) is stack-wide: the shared stack of a split spec holds
  it and the folder grants, each model stack its models' endpoints, datasets, deployments and
  their other grants.

The serving image follows the model-upload rule (Artifact Registry or Container Registry only):
anything else is pulled from the model's repository, and check() warns with the push target. Outputs: endpoints {model: endpoint resource name}, urls {model: invocation URL}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import catalog, grants
from mlops_infra.backends.gcp import serving_endpoints as endpoints
from mlops_infra.backends.gcp.naming import (
    UPLOAD_SOURCES,
    capture_dataset_id,
    endpoint_id,
    image_findings,
    invocation_url,
    model_id,
    model_upload_image,
    repository_id,
    served_model_id,
)
from mlops_infra.backends.gcp.explainability import explanation_spec
from mlops_infra.backends.gcp.roles import project_grant
from mlops_infra.backends.gcp.serving_endpoints import (
    CAPTURE_TABLE,
    REGISTRY,
    SERVING_ALIAS,
    UPLOAD,
    autoscaling_metric_specs,
    model_source,
    rollout_props,
)
from mlops_infra.backends.gcp.shared import (
    CaptureDatasets,
    DeployedModels,
    ImageRepositories,
    ObjectGrants,
    PrivateNetwork,
    ProjectServices,
)
from mlops_infra.backends.gcp.training import image_repository
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.backends.context import StageContext
    from mlops_infra.backends.gcp.deployed_model import DeployedModel

LOG_WRITER = "roles/logging.logWriter"
REPOSITORY_READER = "roles/artifactregistry.reader"
DATA_EDITOR = "roles/bigquery.dataEditor"  # create the logging table, insert rows
LOGGING_TABLE = CAPTURE_TABLE
PSC_ADDRESS = "PSC_ADDRESS"  # the endpoint's PSC address in the network: known once a model is deployed


def check(spec: Any, settings: Any) -> list[Problem]:
    """What Vertex AI endpoints cannot do as the spec says, knowable offline."""
    from mlops_infra.backends.gcp import BACKEND

    problems: list[Problem] = []
    namer = BACKEND.namer(spec, settings)
    artifacts = namer.name("gcp.storage.bucket", "artifacts")
    serving_email = f"{namer.name('gcp.iam.service_account_id', 'serving')}@{settings.project}.iam.gserviceaccount.com"
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving is None:
            continue
        base = ("models", i, "serving")
        problems += image_findings(
            serving.image, (*base, "image"), accepted=UPLOAD_SOURCES, use="model upload",
            sources="Artifact Registry or Container Registry", settings=settings,
            repository=repository_id(namer, model.name),
        )
        source = endpoints.model_source(model, artifacts_bucket=artifacts)
        if source.kind == endpoints.UPLOAD and model.training is not None and model.registry is not None:
            problems.append(
                finding(
                    (*base, "model_uri"),
                    f"the endpoint serves this artifact, not the versions the training workflow registers in "
                    f"{model_id(namer, model.name)}: registry and endpoint would disagree on what is served",
                    hint="remove model_uri to serve the registry version called "
                    f"{endpoints.SERVING_ALIAS!r}, or remove the registry block",
                    value=serving.model_uri,
                    severity="warning",
                )
            )
        if source.kind == endpoints.UNSUPPORTED:
            problems.append(
                BACKEND.gap("models[].serving.model_uri (outside Cloud Storage)", (*base, "model_uri"), value=serving.model_uri)
            )
        elif source.bucket is not None:
            problems.append(
                finding(
                    (*base, "model_uri"),
                    f"the model is uploaded from gs://{source.bucket}, outside the stack's artifact bucket: "
                    "mlops-infra grants the serving identity no access there",
                    hint=f"grant roles/storage.objectViewer on gs://{source.bucket} (or its prefix) to "
                    f"serviceAccount:{serving_email}, or use a path in the artifact bucket gs://{artifacts}",
                    value=serving.model_uri,
                    severity="warning",
                )
            )
        elif source.kind == endpoints.MISSING and model.training is not None:
            problems.append(
                finding(
                    base,
                    "on GCP a trained model reaches its endpoint through the Vertex AI model registry (each "
                    "training run writes its own folder, so there is no single artifact to deploy): this model "
                    "has training but neither registry nor serving.model_uri",
                    hint="add registry: {approval: automatic} (every successful run is deployed) or "
                    "{approval: manual}, or set serving.model_uri to the artifact to serve",
                )
            )
        elif source.kind == endpoints.REGISTRY and model.registry.approval == "manual":
            problems.append(
                finding(
                    (*base[:2], "registry", "approval"),
                    f"the endpoint serves the version of {model_id(namer, model.name)} called "
                    f"{endpoints.SERVING_ALIAS!r}: with manual approval it stays empty until a person approves a "
                    "trained version, and the next `up` deploys it",
                    hint=f"approve with: gcloud ai models add-version-aliases {model_id(namer, model.name)}@VERSION "
                    f"--version-aliases={endpoints.SERVING_ALIAS} --region={settings.region} --project={settings.project}",
                    value="manual",
                    severity="warning",
                )
            )
        capture = serving.data_capture
        if capture is not None and not capture.capture_responses:
            problems.append(
                BACKEND.gap(
                    "models[].serving.data_capture.capture_responses", (*base, "data_capture", "capture_responses"),
                    value=False,
                )
            )
        problems += _serving_numbers(serving, base)
        problems += _rollout_findings(serving, base, settings=settings, endpoint=endpoint_id(namer, model.name))
        problems += _mode_findings(serving, base)
    return problems


def _mode_findings(serving: Any, base: tuple) -> list[Problem]:
    """Shadow traffic and key authentication, which Vertex AI endpoints do not offer (backend GAPS;
    serving modes are the neutral check's, Backend.serving_modes)."""
    from mlops_infra.backends.gcp import BACKEND

    problems: list[Problem] = []
    if serving.shadow is not None:
        problems.append(BACKEND.gap("models[].serving.shadow", (*base, "shadow")))
    if serving.auth == "key":
        problems.append(BACKEND.gap("models[].serving.auth.key", (*base, "auth"), value="key"))
    return problems


def _serving_numbers(serving: Any, base: tuple) -> list[Problem]:
    """Whole percentages (Vertex AI autoscaling targets are integers; traffic shares are whole in the
    neutral spec) and the cool-downs Vertex AI does not let anyone set."""
    problems: list[Problem] = []
    numbers = (
        (("autoscaling", "target_cpu_percent"), serving.autoscaling.target_cpu_percent, "autoscaling targets"),
    )
    for path, value, what in numbers:
        if not endpoints.whole_percent(value):
            problems.append(
                finding(
                    (*base, *path),
                    f"Vertex AI {what} are whole percentages, not {value:g}",
                    hint=f"use {int(value)} or {int(value) + 1}",
                    value=value,
                )
            )
    from mlops_infra.backends.gcp import BACKEND

    autoscaling = serving.autoscaling
    for field in ("scale_in_cooldown", "scale_out_cooldown"):
        if field in autoscaling.model_fields_set:
            problems.append(
                BACKEND.gap(
                    f"models[].serving.autoscaling.{field}", (*base, "autoscaling", field),
                    value=getattr(autoscaling, field),
                )
            )
    return problems


def _rollout_findings(serving: Any, base: tuple, *, settings: Any, endpoint: str) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    rollout = serving.rollout
    if rollout.mode == "all-at-once" or not rollout.rollback_on_alarms:
        return []
    steps = f"{int(rollout.canary_percent)}% then 100%" if rollout.mode == "canary" else f"+{int(rollout.step_percent)}% per step"
    minutes = endpoints.rollout_duration(rollout) / 60
    return [
        BACKEND.gap(
            "models[].serving.rollout.rollback_on_alarms", (*base, "rollout", "rollback_on_alarms"), value=True,
            hint=f"this {rollout.mode} rollout moves {steps}, {rollout.wait} s apart (about {minutes:g} min of `up`): "
            "watch the alarms meanwhile and roll back by hand with: gcloud ai endpoints update "
            f"{endpoint} --region={settings.region} --traffic-split=OLD_DEPLOYED_MODEL_ID=100; "
            "set rollback_on_alarms: false to acknowledge",
        )
    ]


def psc_config(project: str, network: Any) -> dict[str, Any]:
    """Private Service Connect for an endpoint: only this project may connect, and Vertex AI makes
    the PSC address in the stack's network itself (pscAutomationConfigs) when a model is deployed.
    PSC, not VPC Network Peering: peered endpoints take no traffic split and log no requests
    (cloud.google.com/vertex-ai/docs/predictions/choose-endpoint-type), and rollouts and data
    capture need both."""
    return {
        "enable_private_service_connect": True,
        "project_allowlists": [project],
        "psc_automation_configs": [{"project_id": project, "network": network}],
    }


def psc_address(config: Any) -> str:
    """The PSC address Vertex AI made in the network, once known; a placeholder before that."""
    automations = (config or {}).get("psc_automation_configs") or (config or {}).get("pscAutomationConfigs") or []
    address = next((a.get("ip_address") or a.get("ipAddress") for a in automations if isinstance(a, dict)), None)
    return address or PSC_ADDRESS


def build(ctx: StageContext) -> ServingOutputs:
    serving = ctx.upstream.of(GovernanceOutputs).identities["serving"]
    ctx.share(CaptureDatasets())
    ctx.share(DeployedModels())
    if ctx.builds_stack:
        # Containers (and client libraries in them) write logs as the serving identity.
        project_grant(ctx, "logwriter", "serving", role=LOG_WRITER, member=serving.principal)
    endpoints: dict[str, Any] = {}
    urls: dict[str, Any] = {}
    for model in ctx.models():
        if model.serving is None:
            continue
        endpoints[model.name], urls[model.name] = _serve(ctx, model)
    return ServingOutputs(endpoints=endpoints, urls=urls)


def _serve(ctx: StageContext, model: Model) -> tuple[Any, Any]:
    import pulumi
    import pulumi_gcp as gcp

    governance = ctx.upstream.of(GovernanceOutputs)
    registry = ctx.upstream.find(RegistryOutputs)
    project, region = ctx.settings.project, ctx.settings.region
    serving_identity = governance.identities["serving"]
    services = ctx.upstream.of(ProjectServices)
    service_keys = services.service_keys
    vertex_agent = services.service_agents["aiplatform"]
    spec = model.serving
    assert spec is not None
    name = model.name
    labels = {**ctx.tags(), "mlops-model": name}

    # --- the image and who may pull it ------------------------------------------------------
    repo_id = repository_id(ctx.namer, name)
    read_grants: list[pulumi.Resource] = []
    if model.training is None:
        # The training stage keeps a repository per trained model; this one has none yet.
        repo = image_repository(ctx, name, repo_id)
        repository: Any = repo.repository_id
        readers: tuple[tuple[str, Any], ...] = (("serving", serving_identity.principal), ("vertex-agent", vertex_agent))
        extra_opts: dict[str, Any] = {}
    else:
        repository = repo_id  # the training stage's (it waits for that stage)
        readers = (("serving", serving_identity.principal),)
        extra_opts = {"depends_on": [ctx.upstream.of(ImageRepositories).by_model[model.name]]}
    for who, member in readers:
        read_grants.append(
            gcp.artifactregistry.RepositoryIamMember(
                ctx.logical("repo-reader", who, name),
                project=project,
                location=region,
                repository=repository,
                role=REPOSITORY_READER,
                member=member,
                opts=ctx.opts(**extra_opts),
            )
        )
    image = model_upload_image(spec.image, ctx.settings, repo_id)

    # --- the artifact: the serving identity's read grant is the storage stage's --------------
    artifacts_physical = ctx.namer.name("gcp.storage.bucket", ARTIFACTS)
    source = model_source(model, artifacts_bucket=artifacts_physical)
    if source.path is not None:
        folder = grants.folder_name(source.path)
        location = f"{ARTIFACTS}/{folder}" if folder else ARTIFACTS
        # Absent in a model stack of a split spec: the shared stack, deployed first, holds it.
        object_grants = ctx.upstream.find(ObjectGrants)
        if object_grants is not None:
            read_grants += ctx.waits(object_grants.by_key.get(grants.grant_key(location, grants.SERVING)))

    # --- captured requests: a BigQuery dataset per model --------------------------------------
    capture: gcp.vertex.AiEndpointPredictRequestResponseLoggingConfigArgsDict | None = None
    capture_grants: list[pulumi.Resource] = []
    if spec.data_capture is not None:
        dataset = gcp.bigquery.Dataset(
            ctx.logical("capture-dataset", name),
            dataset_id=capture_dataset_id(ctx.namer, name),
            project=project,
            location=region,  # the key's region
            friendly_name=f"{name} captured requests",
            description=f"requests and responses sampled from the endpoint of model {name} "
            f"(mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
            default_encryption_configuration={"kms_key_name": service_keys["bigquery"]},
            # Vertex AI creates the logging table itself, outside the stack: the teardown before
            # `destroy --delete-data` lets the delete take the tables with the dataset.
            delete_contents_on_destroy=ctx.teardown,
            labels=ctx.tags(),
            opts=ctx.opts(protect=True),
        )
        ctx.upstream.of(CaptureDatasets).by_model[name] = dataset
        writers = (("vertex-agent", vertex_agent), ("serving", serving_identity.principal))
        for who, member in writers:
            capture_grants.append(
                gcp.bigquery.DatasetIamMember(
                    ctx.logical("capture-writer", who, name),
                    project=project,
                    dataset_id=dataset.dataset_id,
                    role=DATA_EDITOR,
                    member=member,
                    opts=ctx.opts(),
                )
            )
        capture = {
            "enabled": True,
            "sampling_rate": spec.data_capture.sampling_percent / 100,
            "bigquery_destination": {
                "output_uri": dataset.dataset_id.apply(lambda d: f"bq://{project}.{d}.{LOGGING_TABLE}"),
            },
        }

    # --- the endpoint ------------------------------------------------------------------------
    network = ctx.upstream.find(PrivateNetwork)
    private = network is not None
    endpoint = gcp.vertex.AiEndpoint(
        ctx.logical("endpoint", name),
        name=endpoint_id(ctx.namer, name),
        display_name=f"{name} (mlops-infra {ctx.spec.project}/{ctx.spec.environment})",
        description=f"online predictions of model {name}",
        project=project,
        location=region,
        region=region,
        encryption_spec={"kms_key_name": service_keys["aiplatform"]},
        predict_request_response_logging_config=capture,
        private_service_connect_config=psc_config(project, network.network) if network is not None else None,
        labels=labels,
        # Vertex AI creates the logging table as its service agent when the config is set.
        opts=ctx.opts(depends_on=capture_grants, ignore_changes=["traffic_split"]),
    )
    endpoint_path = endpoint.name.apply(lambda n: f"projects/{project}/locations/{region}/endpoints/{n}")
    if private:
        # Reached through the PSC address Vertex AI makes in the stack's network: the endpoint's
        # dedicated DNS name once Vertex AI has one, else that address (known after deployment).
        url = pulumi.Output.all(endpoint.dedicated_endpoint_dns, endpoint.name, endpoint.private_service_connect_config).apply(
            lambda parts: f"https://{parts[0] or psc_address(parts[2])}/v1/projects/{project}/locations/{region}/endpoints/{parts[1]}:predict"
        )
    else:
        url = endpoint.name.apply(lambda n: invocation_url(project=project, region=region, endpoint=n))

    # --- the deployment ----------------------------------------------------------------------
    if source.kind in (UPLOAD, REGISTRY):
        ctx.upstream.of(DeployedModels).by_model[name] = _deploy(
            ctx,
            model,
            source=source,
            endpoint_path=endpoint_path,
            image=image,
            labels=labels,
            registry_model=registry.registries.get(name) if registry is not None else None,
            waits_for=[*read_grants, *capture_grants],
        )
    return endpoint_path, url


def _deploy(
    ctx: StageContext,
    model: Model,
    *,
    source: Any,
    endpoint_path: Any,
    image: str,
    labels: dict[str, str],
    registry_model: Any,
    waits_for: list[pulumi.Resource],
) -> DeployedModel:
    import pulumi

    from mlops_infra.backends.gcp.deployed_model import DeployedModel

    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    project, region = ctx.settings.project, ctx.settings.region
    spec = model.serving
    assert spec is not None
    key = ctx.upstream.of(ProjectServices).service_keys["aiplatform"]
    container: dict[str, Any] = {"imageUri": image}
    if spec.environment:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(spec.environment.items())]
    machine = catalog.machine_spec(spec.compute, "serving", ctx.settings, model=model.name)
    machine_spec: dict[str, Any] = {"machineType": machine.machine_type}
    if machine.accelerator_type:
        machine_spec["acceleratorType"] = machine.accelerator_type
        machine_spec["acceleratorCount"] = machine.accelerator_count

    # Vertex Explainable AI (explainability.py): only for models whose attributions are monitored.
    explained = explanation_spec(ctx.spec, model)
    explanation = {"explanationSpec": explained} if explained else {}
    if source.kind == REGISTRY:
        described = pulumi.Output.all(registry_model, key).apply(
            lambda v: {
                "source": REGISTRY,
                "registryModel": v[0],
                "alias": SERVING_ALIAS,
                "containerSpec": container,
                "encryptionSpec": {"kmsKeyName": v[1]},
                **explanation,
            }
        )
    else:
        artifact = source.uri or storage.artifacts.uri.apply(lambda uri: f"{uri}/{source.path}")
        described = pulumi.Output.all(artifact, key).apply(
            lambda v: {
                "source": UPLOAD,
                "artifactUri": v[0],
                "containerSpec": container,
                "encryptionSpec": {"kmsKeyName": v[1]},
                **explanation,
            }
        )
    service_account = governance.identities["serving"].id
    # Content-derived: everything that forces a new deployed model, hashed.
    served_id = pulumi.Output.all(described, endpoint_path, service_account).apply(
        lambda v: served_model_id(
            ctx.namer,
            model.name,
            stable_hash(json.dumps({"model": v[0], "endpoint": v[1], "serviceAccount": v[2], "machineSpec": machine_spec}, sort_keys=True)),
        )
    )
    autoscaling = spec.autoscaling
    return DeployedModel(
        ctx.logical("deployed-model", model.name),
        {
            "project": project,
            "region": region,
            "endpoint": endpoint_path,
            "modelId": served_id,
            "model": described,
            "machineSpec": machine_spec,
            "serviceAccount": service_account,
            "replicas": {"min": autoscaling.min_replicas, "max": autoscaling.max_replicas},
            "autoscalingMetricSpecs": autoscaling_metric_specs(autoscaling),
            "rollout": rollout_props(spec.rollout),
            "labels": labels,
        },
        # Uploading reads the artifact and the image as the serving identity: its grants first.
        opts=ctx.opts(depends_on=[*waits_for, *ctx.prerequisites]),
    )
