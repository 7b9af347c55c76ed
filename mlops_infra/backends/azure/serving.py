"""Azure serving: per model a managed online endpoint in the stack's Azure ML workspace.

Per model with a `serving` block:
- OnlineEndpoint (stable name, updated in place): Microsoft Entra token auth (AADToken: no shared
  keys to leak or rotate; callers need the workspace's onlineEndpoints/score/action permission),
  public network access per governance.network, running as the governance "serving" identity.
  It is created without traffic (traffic may only name deployments that exist).
- the model: a ModelVersion holding the artifact location (the training output under
  models/<model>/ in the artifact container, through the workspace's identity-based datastore, or
  serving.model_uri) and the serving image and environment it is deployed with (properties
  SERVING_IMAGE_PROPERTY, SERVING_ENVIRONMENT_PROPERTY), in the registry's model container when the
  model has a registry block, else in a (protected) container of its own; its version is a hash
  of the location and the serving environment, so the registry records what the endpoint serves:
  the serving image, never the training image, with the model data.
- the container: an EnvironmentContainer + EnvironmentVersion holding the serving image and its
  inference routes (the SageMaker contract: GET /ping and POST /invocations on port 8080, model
  mounted at /opt/ml/model), versioned by a hash of both.
- OnlineDeployment (managed): the catalog's instance type for the "serving" purpose (or
  clouds.azure.overrides), the model version and environment, the spec's environment variables,
  min_replicas instances (Default scale settings; Azure Monitor scales it from there), liveness
  and readiness probes, request settings, Application Insights logging and the data collector.
  Its name holds a hash of everything that cannot change in place (image, model, instance type,
  environment, network), so such a change is a new deployment next to the old one (blue/green).
- data capture: a data collector with model_inputs (and model_outputs when capture_responses)
  at sampling_percent, each into a uri_folder data asset at data-capture/<model>/<collection>/
  of the artifact container (encrypted at rest with the governance key, like the whole account).
  The serving container logs them with the azureml-ai-monitoring Collector under those names.
- AutoscaleSetting (Azure Monitor) on the deployment: min/max/default capacity from the spec;
  scale out above target_requests_per_replica (RequestsPerMinute of the endpoint for this
  deployment, divided per instance) or target_cpu_percent (CpuUtilizationPercentage of the
  deployment; 70 % when the spec names neither), scale in below 60 % of it, with the spec's
  cool-downs (ISO 8601, at least one minute).
- EndpointTraffic (dynamic resource, traffic.py): after the deployment exists, routes traffic.

Rollout (blue/green between two deployments):
- all-at-once: the new deployment is created and healthy before it takes 100 % of the traffic;
  then the previous one is deleted.
- canary: the new deployment takes canary_percent, the previous one keeps the rest. This split is
  declarative: it holds until the next `up` that changes it (promote with mode all-at-once, or
  a newer release, which retires the older of the two).
- What Azure cannot do: step the split up after `wait` (so linear is an error and canary's wait
  has no effect) or roll back when the endpoint's alarms fire (no deployment guardrails on Azure
  ML): validate says so (gaps). During a canary the previous deployment keeps the instances it had
  (the autoscale setting follows the new deployment).
- Deployments are retained on delete: EndpointTraffic deletes one once it routes nothing to it,
  so Pulumi never deletes a deployment that still takes traffic.

Network: governance.network private disables public access to the endpoint: it is scored only
through the workspace's private endpoint in the stack's inbound network (network.py), whose
privatelink.api.azureml.ms records cover every endpoint of the workspace. Outbound traffic goes
through the workspace's managed network (approved outbound only), the deployment's
egressPublicNetworkAccess flag is left unset, as Azure asks for managed networks, and it runs
the copy of its image in the stack's registry (images.py). Public stacks set the flag to Enabled
explicitly.

Encryption: Azure ML endpoints take no key of their own; the workspace is encrypted with the
governance key (hbiWorkspace), model and captured data live in the CMK storage account, images
in the CMK container registry.

Grants (the serving identity, on top of governance's key grant and storage's prefix-limited
read of models/ and read/write of data-capture/): AcrPull on the stack's registry and AzureML
Metrics Writer on the workspace, once per stack; adding a model adds no grant. Deployments wait
for these grants (the ones made in this program; a split spec's shared stack is deployed first). A split spec
builds them in its shared stack, and everything per model above in the model's own stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.common import after, grant
from mlops_infra.backends.azure.governance import AzureGovernance, GovernanceGrants
from mlops_infra.backends.azure.images import private_image
from mlops_infra.backends.azure.naming import ALARM_KINDS, alarm_name
from mlops_infra.backends.azure.serving_rules import (
    HEALTH_PATH,
    METRIC_GRAIN,
    METRIC_WINDOW,
    MODEL_MOUNT_PATH,
    INPUTS,
    OUTPUTS,
    PROBE,
    MAX_AUTOSCALE_TAGS,
    MIN_COOLDOWN_SECONDS,
    REQUEST_TIMEOUT,
    ROLLING_RATE,
    SCORING_PATH,
    SERVING_PORT,
    capture_prefix,
    collections,
    iso_duration,
    model_source,
    models_prefix,
    scale_rule,
    scoring_url,
    traffic_percent,
)
from mlops_infra.backends.azure.storage import StorageGrants
from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.backends.azure.training import asset_name
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import Model
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.registry import RegistryOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import ARTIFACTS
from mlops_infra.stages.training import TrainingOutputs
from mlops_infra.tagging import MANAGED_KEYS

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.naming import Namer
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Path, Problem

VERSION_LENGTH = 12
DEPLOYMENT_HASH_LENGTH = 8
CAPTURE_VERSION = "1"  # the one version of each capture data asset (the drift monitor reads it)
MODEL_TYPE = "custom_model"
# What a registered model version records of the serving image it is deployed with.
SERVING_IMAGE_PROPERTY = "mlops-infra/serving-image"
SERVING_ENVIRONMENT_PROPERTY = "mlops-infra/serving-environment"
METRIC_NAMESPACES = {
    True: "microsoft.machinelearningservices/workspaces/onlineendpoints",
    False: "microsoft.machinelearningservices/workspaces/onlineendpoints/deployments",
}


@dataclass(frozen=True)
class CaptureAssets:
    """The data assets online deployments capture into, by "<model>/<collection>".

    The drift monitor names its asset instead of taking its id, so it waits for it (monitoring.py).
    """

    versions: dict[str, Any]


# --- what Azure ML managed online endpoints refuse, and why --------------------------------------
def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    namer = BACKEND.namer(spec, settings)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        if model.serving is not None:
            base: Path = ("models", i, "serving")
            problems += _rollout_problems(model, base, namer) + _cooldown_problems(model, base)
            problems += model_uri_problems(model, base, namer)
    from mlops_infra.backends.azure.serving_shadow import shadow_problems

    problems += shadow_problems(spec, settings)
    total_tags = len(spec.tags) + len(MANAGED_KEYS)
    if total_tags > MAX_AUTOSCALE_TAGS:
        problems.append(
            finding(
                ("tags",),
                f"Azure Monitor autoscale settings take at most {MAX_AUTOSCALE_TAGS} tags; "
                f"with mlops-infra's own {len(MANAGED_KEYS)}, this spec gives them {total_tags}",
                hint=f"keep at most {MAX_AUTOSCALE_TAGS - len(MANAGED_KEYS)} tags under tags:",
                value=len(spec.tags),
            )
        )
    return problems


def _rollout_problems(model: Model, base: Path, namer: Namer) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    assert model.serving is not None
    rollout = model.serving.rollout
    at = (*base, "rollout")
    problems = []
    if rollout.mode == "linear":
        problems.append(
            BACKEND.gap(
                "models[].serving.rollout.linear",
                (*at, "mode"),
                value="linear",
                hint=f"use mode: canary with canary_percent: {traffic_percent(rollout)} (the split holds until the "
                "next release or until you set mode: all-at-once)",
            )
        )
    if rollout.mode == "canary":
        problems.append(BACKEND.gap("models[].serving.rollout.wait", (*at, "wait"), value=rollout.wait))
    watched = [kind for kind in ALARM_KINDS if _alarmed(model, kind)]
    if rollout.rollback_on_alarms and watched:
        alarms = ", ".join(alarm_name(namer, model.name, kind) for kind in watched)
        problems.append(
            BACKEND.gap(
                "models[].serving.rollout.rollback_on_alarms", (*at, "rollback_on_alarms"), value=True,
                detail=f" (alarms: {alarms})",
            )
        )
    return problems


def _alarmed(model: Model, kind: str) -> bool:
    """Whether the model's monitoring block asks for this endpoint alarm (what a rollback would watch)."""
    monitoring = model.monitoring
    if monitoring is None:
        return False
    threshold = monitoring.latency_p99_ms if kind == "latency" else monitoring.error_rate_percent
    return threshold is not None


def _cooldown_problems(model: Model, base: Path) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    assert model.serving is not None
    autoscaling = model.serving.autoscaling
    return [
        BACKEND.gap(
            "models[].serving.autoscaling.cooldown below 60s",
            (*base, "autoscaling", field),
            value=seconds,
            detail=f": {seconds} s becomes 1 minute",
        )
        for field in ("scale_in_cooldown", "scale_out_cooldown")
        if (seconds := getattr(autoscaling, field)) < MIN_COOLDOWN_SECONDS
    ]


def model_uri_problems(model: Model, base: Path, namer: Namer) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    serving = model.serving
    assert serving is not None
    account = namer.name("azure.storage.account")
    container = namer.name("azure.storage.container", "artifacts")
    source = model_source(serving.model_uri, account=account, container=container, model=model.name)
    models = models_prefix()
    if source.kind == "unsupported":
        return [
            BACKEND.gap(
                "models[].serving.model_uri outside Azure storage",
                (*base, "model_uri"),
                value=serving.model_uri,
                hint=f"copy the model into the stack's artifact bucket under {models}{model.name}/ and point "
                "model_uri there, or drop model_uri to serve the training output",
            )
        ]
    if source.kind == "external" or (source.kind == "artifacts" and not source.path.startswith(models)):
        where = "outside the stack's artifact bucket" if source.kind == "external" else f"outside {models}"
        return [
            finding(
                (*base, "model_uri"),
                f"the model lies {where}: the serving identity gets no read access to it, so the "
                "deployment cannot load it unless you grant that",
                hint=f"put it under {models} in the artifact bucket, or give the stack's serving identity "
                "Storage Blob Data Reader on it",
                value=serving.model_uri,
                severity="warning",
            )
        ]
    return []


# --- what it builds ------------------------------------------------------------------------------
def build(ctx: StageContext) -> ServingOutputs:
    governance = ctx.upstream.of(GovernanceOutputs)
    identity = governance.identities["serving"]
    workspace = ctx.upstream.of(WorkspaceRef)
    # Grants on the shared serving identity exist once per stack; a model stack's deployments
    # find them in place, since the shared stack is deployed first.
    subscription_id = ctx.upstream.of(AzureGovernance).subscription_id
    grants = _grants(ctx, workspace, identity, subscription_id) if ctx.builds_stack else None
    # Made by governance and storage in this stack (none in a split's model stack).
    earlier = [found.serving for found in (ctx.upstream.find(GovernanceGrants), ctx.upstream.find(StorageGrants)) if found]
    waits = ctx.waits(grants, *earlier)
    endpoints: dict[str, Any] = {}
    urls: dict[str, Any] = {}
    captured: dict[str, Any] = {}
    for model in sorted((m for m in ctx.models() if m.serving is not None), key=lambda m: m.name):
        endpoints[model.name], urls[model.name] = _model(ctx, model, workspace, identity, waits, captured)
    ctx.share(CaptureAssets(versions=captured))
    return ServingOutputs(endpoints=endpoints, urls=urls)


def _grants(ctx: StageContext, workspace: Any, identity: Any, subscription_id: Any) -> list[Any]:
    common = {"principal_id": identity.principal, "principal": "serving", "subscription_id": subscription_id}
    return [
        grant(
            ctx,
            role="AcrPull",
            scope=workspace.registry_id,
            target="registry",
            description="mlops-infra: online deployments pull their images",
            **common,
        ),
        grant(
            ctx,
            role="AzureML Metrics Writer (preview)",
            scope=workspace.id,
            target="workspace",
            description="mlops-infra: online deployments write their metrics",
            **common,
        ),
    ]


def _model(
    ctx: StageContext, model: Model, workspace: Any, identity: Any, waits: list[Any], captured: dict[str, Any]
) -> tuple[Any, Any]:
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.traffic import EndpointTraffic

    serving = model.serving
    assert serving is not None
    rg, location, tags = workspace.resource_group, workspace.location, ctx.tags()
    public = ctx.spec.governance.network != "private"
    access = "Enabled" if public else "Disabled"

    # --- the endpoint: stable, updated in place ----------------------------------------------
    endpoint_name = ctx.namer.name("azure.ml.online_endpoint", model.name)
    description = f"mlops-infra: online endpoint of {model.name}"
    endpoint = ml.OnlineEndpoint(
        ctx.logical("endpoint", model.name),
        endpoint_name=endpoint_name,
        resource_group_name=rg,
        workspace_name=workspace.name,
        location=location,
        identity=ml.ManagedServiceIdentityArgs(
            type=ml.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=identity.id.apply(lambda identity_id: [identity_id]),
        ),
        properties=ml.OnlineEndpointPropertiesArgs(
            auth_mode=auth_mode(serving),
            description=description,
            public_network_access=access,
        ),
        tags=tags,
        opts=ctx.opts(),
    )
    # Whatever changes the endpoint makes EndpointTraffic write its traffic again (a PUT of the
    # endpoint without traffic must not leave it routing nowhere).
    revision = stable_hash(
        json.dumps({"auth": str(auth_mode(serving).value), "access": access, "description": description, "tags": tags}, sort_keys=True),
        length=VERSION_LENGTH,
    )
    endpoint_ref = after(endpoint.tags, endpoint_name)

    # --- model, container, capture ------------------------------------------------------------
    environment, environment_key = _environment(ctx, model, workspace)
    model_version, model_key = _model_version(ctx, model, workspace, environment_key)
    collectors = _capture(ctx, model, workspace, captured)

    # --- the deployment: named by a hash of what cannot change in place ---------------------
    instance_type = catalog.serving_instance_type(model, ctx.settings)
    variables = dict(sorted(serving.environment.items()))
    definition = {
        "model": model_key,
        "environment": environment_key,
        "instance_type": instance_type,
        "variables": variables,
        "egress": access if public else "managed-network",
        "mount": MODEL_MOUNT_PATH,
    }
    digest = stable_hash(model.name, json.dumps(definition, sort_keys=True), length=DEPLOYMENT_HASH_LENGTH)
    deployment_name = ctx.namer.name("azure.ml.online_deployment", model.name, digest)
    autoscaling = serving.autoscaling
    properties = deployment_properties(
        description=f"mlops-infra: {model.name} on {serving.image}",
        model_version=model_version,
        environment=environment,
        variables=variables,
        instance_type=instance_type,
        collectors=collectors,
        public=public,
    )
    deployment = ml.OnlineDeployment(
        ctx.logical("deployment", model.name),
        deployment_name=deployment_name,
        endpoint_name=endpoint_ref,
        resource_group_name=rg,
        workspace_name=workspace.name,
        location=location,
        # Default scale settings: Azure runs sku.capacity instances, which the autoscale setting
        # then moves between min_replicas and max_replicas.
        sku=ml.SkuArgs(name="Default", capacity=autoscaling.min_replicas),
        properties=properties,
        tags=tags,
        # Retained: EndpointTraffic deletes a replaced deployment once no traffic goes to it.
        opts=ctx.opts(retain_on_delete=True, depends_on=waits),
    )
    deployment_ref = after(deployment.tags, deployment_name)

    autoscale = _autoscale(ctx, model, workspace, endpoint, deployment, deployment_name)
    mirror: dict[str, Any] = {}
    if serving.shadow is not None:
        from mlops_infra.backends.azure.serving_shadow import shadow_deployment

        percent = serving.shadow.traffic_percent
        shadow = shadow_deployment(ctx, model, workspace, endpoint_ref, instance_type, waits)
        mirror = {"mirror": shadow.apply(lambda name: {name: percent})}
    if serving.auth == "key":
        from mlops_infra.backends.azure.serving_auth import keys_in_vault

        keys_in_vault(ctx, model, workspace, endpoint_ref)

    EndpointTraffic(
        ctx.logical("traffic", model.name),
        endpoint_id=endpoint.id,
        deployment=deployment_ref,
        percent=traffic_percent(serving.rollout),
        revision=revision,
        # A dynamic resource has no cloud provider of its own: parent only.
        opts=pulumi.ResourceOptions(parent=ctx.parent, depends_on=[autoscale]),
        **mirror,
    )
    return endpoint_ref, after(endpoint.tags, scoring_url(endpoint_name, location))


def deployment_properties(
    *,
    description: str,
    model_version: Any,
    environment: Any,
    variables: dict[str, str],
    instance_type: str,
    collectors: dict[str, Any],
    public: bool,
) -> Any:
    """A managed online deployment's properties: the model, its container, probes and capture."""
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    probe = ml.ProbeSettingsArgs(**PROBE)
    properties = ml.ManagedOnlineDeploymentArgs(
        endpoint_compute_type="Managed",
        description=description,
        model=model_version.id,
        environment_id=environment.id,
        environment_variables=variables,
        instance_type=instance_type,
        model_mount_path=MODEL_MOUNT_PATH,
        scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
        liveness_probe=probe,
        readiness_probe=probe,
        request_settings=ml.OnlineRequestSettingsArgs(
            # one request per vCPU at a time (Azure's default is 1); more get HTTP 429
            max_concurrent_requests_per_instance=int(catalog.VM_SIZES.get(instance_type, {}).get("cpus", 1)),
            request_timeout=REQUEST_TIMEOUT,
        ),
        app_insights_enabled=True,
        data_collector=ml.DataCollectorArgs(collections=collectors, rolling_rate=ROLLING_RATE) if collectors else None,
        egress_public_network_access="Enabled",
    )
    if not public:
        # With the workspace's managed network, Azure asks to leave the flag unset ("Network
        # isolation with managed online endpoints"); the SDK's Args class fills in "Enabled" when
        # it is not given, so it is cleared after construction.
        pulumi.set(properties, "egress_public_network_access", None)
    return properties


def _model_version(
    ctx: StageContext, model: Model, workspace: Any, environment_key: str, *, role: str = ""
) -> tuple[Any, str]:
    """The registered model version the deployment serves, and the key its version is derived from.

    A version is one pairing of model data and serving image: it records both (the serving image
    and its environment as properties), so the registry says what the endpoint serves, and a new
    image is a new version, as new data is. role "shadow": the challenger's, in a container of
    its own (a challenger is not a version of the registry's model).
    """
    from pulumi_azure_native import machinelearningservices as ml

    serving = model.serving
    assert serving is not None
    location, uri = artifact(ctx, serving.model_uri, model.name, workspace)
    key = json.dumps({"model": location, "serving": json.loads(environment_key)}, sort_keys=True)
    properties: dict[str, Any] = {
        "mlops-infra/source": "training output" if not serving.model_uri else "model_uri",
        SERVING_IMAGE_PROPERTY: json.loads(environment_key)["image"],  # what the deployment pulls
        SERVING_ENVIRONMENT_PROPERTY: serving_environment(model, json.loads(environment_key)["image"], role=role),
    }
    training = ctx.upstream.find(TrainingOutputs)
    if not serving.model_uri and training is not None and model.name in training.output_uris:
        properties["mlops-infra/artifact"] = training.output_uris[model.name]

    registry = ctx.upstream.find(RegistryOutputs)
    if not role and registry is not None and model.name in registry.registries:
        # The registry stage's model container (named like the model).
        container_name = registry.registries[model.name].apply(lambda _: model.name)
    else:
        name = asset_name(model.name, role or "serving")
        container = ml.ModelContainer(
            ctx.logical("model", model.name, *_role(role)),
            name=name,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.ModelContainerPropertiesArgs(
                description=f"mlops-infra: versions of {model.name} served by its endpoint", tags=ctx.tags()
            ),
            # Holds every version served so far, like the registry's containers: kept by destroy.
            opts=ctx.opts(protect=True),
        )
        container_name = container.name.apply(lambda _: name)
    model_version = ml.ModelVersion(
        ctx.logical("modelversion", model.name, *_role(role)),
        name=container_name,
        version=model_version_number(key),
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.ModelVersionPropertiesArgs(
            model_uri=uri,
            model_type=MODEL_TYPE,
            description=f"mlops-infra: the artifact {model.name}'s endpoint serves, with {serving.image}",
            properties=properties,
            tags=ctx.tags(),
        ),
        opts=ctx.opts(retain_on_delete=True),
    )
    return model_version, key


def artifact(ctx: StageContext, model_uri: str | None, model: str, workspace: Any) -> tuple[str, Any]:
    """(where, URI) of a model's files: model_uri, or the training output through the artifact
    bucket's datastore; `where` names it in version keys ("artifacts:<path>" or "uri:<uri>")."""
    import pulumi

    source = model_source(
        model_uri,
        account=ctx.namer.name("azure.storage.account"),
        container=ctx.namer.name("azure.storage.container", ARTIFACTS),
        model=model,
    )
    if source.kind == "artifacts":
        uri = pulumi.Output.concat("azureml://datastores/", workspace.artifacts_datastore, "/paths/", source.path)
        return f"artifacts:{source.path}", uri
    return f"uri:{source.uri}", source.uri


def auth_mode(serving: Any) -> Any:
    """The endpoint's auth mode: Microsoft Entra tokens for auth: iam, endpoint keys for auth: key."""
    from pulumi_azure_native import machinelearningservices as ml

    return ml.EndpointAuthMode.KEY if serving.auth == "key" else ml.EndpointAuthMode.AAD_TOKEN


def model_version_number(key: str) -> str:
    """Model versions are whole numbers: the first 8 hex digits of the key's hash."""
    return str(int(stable_hash(key, length=8), 16))


def serving_environment(model: Model, image: str | None = None, *, role: str = "") -> str:
    """The serving environment version a model's deployment runs: 'azureml:<name>:<version>'.

    `image` is what the deployment pulls (default: the spec's; a private stack's copy differs).
    """
    name, version, _ = _environment_key(model, image, role=role)
    return f"azureml:{name}:{version}"


def _role(role: str) -> tuple[str, ...]:
    """The extra part of logical names for a role's resources (none for the served model)."""
    return (role,) if role else ()


def _environment_key(model: Model, image: str | None = None, *, role: str = "") -> tuple[str, str, str]:
    """(name, version, key) of a model's serving environment: its image and inference routes."""
    serving = model.serving
    assert serving is not None
    routes = {"port": SERVING_PORT, "health": HEALTH_PATH, "scoring": SCORING_PATH}
    key = json.dumps({"image": image or serving.image, "routes": routes}, sort_keys=True)
    name = asset_name(model.name, f"{role}_env" if role else "serve_env")
    return name, stable_hash(key, length=VERSION_LENGTH), key


def _environment(ctx: StageContext, model: Model, workspace: Any, *, role: str = "") -> tuple[Any, str]:
    """The serving image with its inference routes, and the key its version is derived from."""
    from pulumi_azure_native import machinelearningservices as ml

    serving = model.serving
    assert serving is not None
    image, copies = private_image(ctx, serving.image, workspace=workspace, what="-".join((model.name, *_role(role))))
    name, version, key = _environment_key(model, image, role=role)
    container = ml.EnvironmentContainer(
        ctx.logical("environment", model.name, *_role(role)),
        name=name,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.EnvironmentContainerPropertiesArgs(
            description=f"mlops-infra: serving image of {model.name}", tags=ctx.tags()
        ),
        opts=ctx.opts(),
    )
    health = ml.RouteArgs(path=HEALTH_PATH, port=SERVING_PORT)
    environment = ml.EnvironmentVersion(
        ctx.logical("envversion", model.name, *_role(role)),
        name=container.name.apply(lambda _: name),
        version=version,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.EnvironmentVersionPropertiesArgs(
            image=image,
            os_type=ml.OperatingSystemType.LINUX,
            auto_rebuild=ml.AutoRebuildSetting.DISABLED,
            inference_config=ml.InferenceContainerPropertiesArgs(
                liveness_route=health,
                readiness_route=health,
                scoring_route=ml.RouteArgs(path=SCORING_PATH, port=SERVING_PORT),
            ),
            description=f"mlops-infra: {serving.image}",
            tags=ctx.tags(),
        ),
        # A private stack's copy of the image must be in its registry first.
        opts=ctx.opts(retain_on_delete=True, depends_on=copies),
    )
    return environment, key


def _capture(
    ctx: StageContext, model: Model, workspace: Any, captured: dict[str, Any], *, role: str = ""
) -> dict[str, Any]:
    """Data collector collections, each writing to a data asset under data-capture/<model>/.

    Each asset's version goes into `captured` too (CaptureAssets). role "shadow": the challenger
    captures every request mirrored to it and its response, under data-capture/<model>/shadow/
    (its responses are kept there and never returned); the drift monitor does not read them.
    """
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml
    serving = model.serving
    assert serving is not None
    found: dict[str, Any] = {}
    wanted = [INPUTS, OUTPUTS] if role else collections(serving.data_capture)
    for collection in wanted:
        word = collection.split("_", 1)[1]  # inputs / outputs
        name = asset_name(model.name, f"{role}_{collection}" if role else collection)
        path = f"{capture_prefix(model.name)}{role + '/' if role else ''}{collection}/"
        container = ml.DataContainer(
            ctx.logical("capture", word, model.name, *_role(role)),
            name=name,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.DataContainerPropertiesArgs(
                data_type=ml.DataType.URI_FOLDER,
                description=f"mlops-infra: {collection} captured by {model.name}'s endpoint",
                tags=ctx.tags(),
            ),
            opts=ctx.opts(),
        )
        version = ml.DataVersion(
            ctx.logical("captureversion", word, model.name, *_role(role)),
            name=after(container.name, name),
            version=CAPTURE_VERSION,
            resource_group_name=workspace.resource_group,
            workspace_name=workspace.name,
            properties=ml.UriFolderDataVersionArgs(
                data_type="uri_folder",
                data_uri=pulumi.Output.concat("azureml://datastores/", workspace.artifacts_datastore, "/paths/", path),
                description=f"mlops-infra: {collection} of {model.name} under {path} in the artifact bucket",
                tags=ctx.tags(),
            ),
            opts=ctx.opts(),
        )
        if role:
            rate = 1.0  # the mirror already samples: keep all of it
        else:
            captured[f"{model.name}/{collection}"] = version
            assert serving.data_capture is not None  # collections() is empty without a data_capture block
            rate = serving.data_capture.sampling_percent / 100
        found[collection] = ml.CollectionArgs(
            data_collection_mode=ml.DataCollectionMode.ENABLED, data_id=version.id, sampling_rate=rate
        )
    return found


def _autoscale(
    ctx: StageContext, model: Model, workspace: Any, endpoint: Any, deployment: Any, deployment_name: str
) -> Any:
    from pulumi_azure_native import monitor

    serving = model.serving
    assert serving is not None
    autoscaling = serving.autoscaling
    rule = scale_rule(autoscaling)
    source = endpoint.id if rule.on_endpoint else deployment.id
    dimensions = (
        [
            monitor.ScaleRuleMetricDimensionArgs(
                dimension_name="deployment",
                operator=monitor.ScaleRuleMetricDimensionOperationType.EQUALS,
                values=[deployment_name],
            )
        ]
        if rule.on_endpoint
        else None
    )

    def scale(above: bool) -> monitor.ScaleRuleArgs:
        return monitor.ScaleRuleArgs(
            metric_trigger=monitor.MetricTriggerArgs(
                metric_name=rule.metric,
                metric_namespace=METRIC_NAMESPACES[rule.on_endpoint],
                metric_resource_uri=source,
                dimensions=dimensions,
                divide_per_instance=rule.per_instance,
                operator=(
                    monitor.ComparisonOperationType.GREATER_THAN if above else monitor.ComparisonOperationType.LESS_THAN
                ),
                statistic=monitor.MetricStatisticType.AVERAGE,
                time_aggregation=monitor.TimeAggregationType.AVERAGE,
                time_grain=METRIC_GRAIN,
                time_window=METRIC_WINDOW,
                threshold=rule.scale_out_above if above else rule.scale_in_below,
            ),
            scale_action=monitor.ScaleActionArgs(
                direction=monitor.ScaleDirection.INCREASE if above else monitor.ScaleDirection.DECREASE,
                type=monitor.ScaleType.CHANGE_COUNT,
                value="1",
                cooldown=iso_duration(autoscaling.scale_out_cooldown if above else autoscaling.scale_in_cooldown),
            ),
        )

    location = workspace.location
    return monitor.AutoscaleSetting(
        ctx.logical("autoscale", model.name),
        # One setting per deployment, named like it (unique in the resource group).
        autoscale_setting_name=deployment_name,
        name=deployment_name,
        resource_group_name=workspace.resource_group,
        location=location,
        enabled=True,
        target_resource_uri=deployment.id,
        target_resource_location=location,
        profiles=[
            monitor.AutoscaleProfileArgs(
                name="default",
                capacity=monitor.ScaleCapacityArgs(
                    minimum=str(autoscaling.min_replicas),
                    maximum=str(autoscaling.max_replicas),
                    default=str(autoscaling.min_replicas),
                ),
                rules=[scale(True), scale(False)],
            )
        ],
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
