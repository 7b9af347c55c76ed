"""AWS serving: per model with `serving`, a SageMaker endpoint (real-time, serverless or async) and its scaling.

Per served model:
- ecr.Repository "<stack>-<model>-serving": where the serving image lives when the spec names
  an image SageMaker cannot pull (anything but a private ECR image in the stack's region; the
  same rules as training images, see training_jobs.py). Immutable tags, scan on push, the stack key,
  protected. `check` below warns with the push target.
- sagemaker.Model: the serving image, the model data (serving.model_uri, else the model's
  training output s3://<artifacts>/models/<model>/, which SageMaker copies, uncompressed, into
  /opt/ml/model/: set model_uri to one run's model.tar.gz to serve exactly that run), the
  environment, the serving identity as execution role, network isolation, and in a private
  network the stack's subnets and security group (VpcConfig).
- sagemaker.EndpointConfiguration: one production variant ("primary": blue/green deployments
  need the same variant name in every configuration) with the catalog's (or overridden)
  instance type and max(min_replicas, 1) instances; the instances' volumes encrypted with the
  stack key (except types with hardware-encrypted local storage); with data_capture, requests
  (and responses) sampled into s3://<artifacts>/data-capture/<model>/, encrypted with the key.
- sagemaker.Endpoint: a stable name, updated in place; a blue/green deployment config from
  serving.rollout (all at once, canary or linear steps, baking `wait` seconds) rolling back on
  the model's latency and error alarms, which the monitoring stage creates under the names
  naming.alarm_name gives (only those the model's monitoring block asks for).
- appautoscaling.Target on the variant (min max(min_replicas, 1), max max_replicas) and, with
  a target, a target-tracking appautoscaling.Policy: invocations per instance per minute, or
  CPU utilization (see serving_endpoints.py), with the spec's cool-downs.

Serving modes (serving_modes.py): mode: serverless makes the variant serverless (memory and
max concurrency from serving.serverless, no instances, no volume key, no scaling target, no
network isolation or VpcConfig: SageMaker excludes them); mode: async adds an
AsyncInferenceConfig (responses and failures under serving.async.output, else
s3://<artifacts>/async-inference/<model>/, encrypted with the stack key; a per-model grant lets
the serving identity write there) and scales on the backlog per instance. serving.shadow adds a
second model (the challenger: its image and/or model data, content-named "<model>-shadow") as a
shadow production variant on the primary's instance type and count, weighted to get
traffic_percent of the requests; the endpoint's data capture records its responses.

Immutable parts. SageMaker cannot update a model or an endpoint configuration, so their names
are their per-model prefix + a hash of their whole definition (naming.content_name), computed
from values known before deployment (physical names stand for the ARNs and URLs the cloud
assigns; the key alias for the key's ARN). A change of image, model data, environment,
instance type, instance count or capture settings creates a new model and configuration (new
physical names, same logical names: Pulumi replaces them, creating the new one first), the
endpoint switches to the new configuration in place (a blue/green deployment), and the old
ones are deleted afterwards. Tags are updated in place and stay out of the hash.

Grants (least privilege, sized independently of the number of models): one inline policy for
the stack (endpoints.serving_grants: the stack's serving repositories, its endpoints' log
groups, its rollback alarms, all named by the stack's prefix), plus per model only what the
stack's prefix cannot name: pull access to a spec-named ECR repository, read access to a
serving.model_uri outside the trained models. S3 (read models/, write data-capture/) comes from
the storage stage's grant, key use from governance's.

Split specs: the stack's inline policy is stack-wide and lives in the shared stack; each model
stack holds everything else above for its own models.

Security. Endpoints are reachable only with SigV4-signed requests by principals whose IAM
policies allow sagemaker:InvokeEndpoint (SageMaker has no anonymous or key access). With
governance.network: private, each model gets the stack's VpcConfig (governance_network.py):
SageMaker fetches its image and data through the VPC's endpoints, the serving identity may
attach network interfaces in that VPC only, and clients in (or connected to) the VPC invoke it
through the SageMaker Runtime interface endpoint. The VpcConfig is part of the model's content
hash (known stand-ins: the brought ids, or the created subnets' blocks and group name).

Known limit: SageMaker rejects an endpoint update that changes the instance type of a variant
registered with Application Auto Scaling ("Update endpoints that use auto scaling"): changing
a served model's compute or instance-type override needs its scaling removed first (deploy
with max_replicas equal to min_replicas and no target, then the new instance type, then the
scaling back). Changing the image, the model data or the capture settings is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import governance_grants as model_grants
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import serving_modes as modes
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    alarm_name,
    bucket_name,
    content_name,
    endpoint_config_prefix,
    endpoint_name,
    inline_policy_name,
    key_alias,
    model_prefix,
    repository_name,
    role_name,
    shadow_model_prefix,
)
from mlops_infra.backends.aws.training import check_environment, image_repository
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.backends.context import StageContext
from mlops_infra.naming import Namer
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import ARTIFACTS, CAPTURE_PREFIX, StorageOutputs
from mlops_infra.stages.training import TrainingOutputs, output_prefix


def check(spec: Any, settings: Any) -> list[Problem]:
    """What SageMaker endpoints would reject, or do differently than the spec says."""
    namer = BACKEND.namer(spec, settings)
    artifacts = bucket_name(namer, ARTIFACTS)
    stack_buckets = {artifacts} | {bucket_name(namer, b.name) for b in spec.storage.buckets}
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving is None:
            continue
        path = ("models", i, "serving")
        problems += _check_image(model, path, namer, settings.region, settings.account_id)
        problems += check_environment(serving.environment, path)
        if serving.model_uri:
            problems += _check_model_uri(serving.model_uri, (*path, "model_uri"), artifacts, stack_buckets)
        capture = serving.data_capture
        if capture is not None and not endpoints.whole(capture.sampling_percent):
            problems.append(BACKEND.gap("models[].serving.data_capture.sampling_percent",
                                        (*path, "data_capture", "sampling_percent"), value=capture.sampling_percent))
        problems += modes.check(spec, BACKEND, model, path, settings.region)
        if serving.mode != "serverless":  # serverless: no instances to shift or scale (serving_modes.py)
            problems += _check_rollout(serving, path)
            problems += _check_scaling(model, path, settings)
        if serving.shadow is not None:
            problems += _check_shadow_sources(model, path, namer, settings, artifacts, stack_buckets)
    return problems


def _check_shadow_sources(model: Any, path: tuple, namer: Namer, settings: Any, artifacts: str,
                          stack_buckets: set[str]) -> list[Problem]:
    """The challenger's image and model data, checked like the primary's."""
    shadow = model.serving.shadow
    problems: list[Problem] = []
    if shadow.image is not None and shadow.image != model.serving.image:
        problems += [p for p in _check_image(model, (*path, "shadow"), namer, settings.region, settings.account_id,
                                             image=shadow.image) if p.severity == "warning"]
    if shadow.model_uri and endpoints.parse_s3(shadow.model_uri):
        problems += _check_model_uri(shadow.model_uri, (*path, "shadow", "model_uri"), artifacts, stack_buckets)
    return problems


def _check_image(model: Any, path: tuple, namer: Namer, region: str, account: str,
                 image: str | None = None) -> list[Problem]:
    image = image or model.serving.image
    source = jobs.image_source(image, region)
    if source.kind == "stack":
        target = jobs.push_target(partition=policies.partition_of(region), region=region,
                                  repository=repository_name(namer, model.name, "serving"),
                                  reference=source.reference, account=account)
        return [finding(
            (*path, "image"),
            f"SageMaker endpoints pull images from Amazon ECR (or from a registry inside a VPC, which the stack "
            f"does not use): this stack serves {model.name!r} with {target} (the stack's repository, same tag)",
            hint=f"after `up` creates the repository, copy the image there (docker pull, docker tag, docker push) "
            f"and deploy again, or name a private ECR image in {region}",
            value=image,
            severity="warning",
        )]
    if source.kind == "other-region":
        return [BACKEND.gap("models[].serving.image", (*path, "image"), value=image)]
    return []


def _check_model_uri(uri: str, path: tuple, artifacts: str, stack_buckets: set[str]) -> list[Problem]:
    """SageMaker reads model data from S3 only; the stack's grants decide what the serving role reads."""
    location = endpoints.parse_s3(uri)
    if location is None:
        return [BACKEND.gap("models[].serving.model_uri", path, value=uri)]
    if location.bucket == artifacts and location.key.startswith((f"{policies.AUDIT_PREFIX}/", CAPTURE_PREFIX)):
        return [finding(
            path, "model_uri points into the artifact bucket's audit logs or captured data, which the serving "
            "identity may not read",
            hint=f"use a location under {policies.MODELS_PREFIX} (where training writes models)", value=uri,
        )]
    if location.bucket not in stack_buckets:
        return [finding(
            path, f"model_uri is outside this stack's buckets: the serving identity gets read access to it, but the "
            f"stack cannot check that {location.bucket} is private or which key encrypts it",
            hint="keep model artifacts in the stack's buckets; otherwise make sure the bucket blocks public access and, "
            "if it uses its own KMS key, that the key lets the serving role decrypt",
            value=uri, severity="warning",
        )]
    return []


def _check_rollout(serving: Any, path: tuple) -> list[Problem]:
    rollout = serving.rollout
    problems: list[Problem] = []
    if rollout.mode == "all-at-once":
        return problems
    if serving.autoscaling.min_replicas < endpoints.MIN_SPLIT_INSTANCES:
        problems.append(BACKEND.gap("models[].serving.rollout", (*path, "autoscaling", "min_replicas"),
                                    value=serving.autoscaling.min_replicas))
    if rollout.mode == "canary":
        value = rollout.canary_percent
        if value > endpoints.CANARY_MAX_PERCENT:
            problems.append(BACKEND.gap("models[].serving.rollout.canary_percent",
                                        (*path, "rollout", "canary_percent"), value=value))
    if rollout.mode == "linear":
        value = rollout.step_percent
        if not endpoints.LINEAR_MIN_PERCENT <= value <= endpoints.LINEAR_MAX_PERCENT:
            problems.append(BACKEND.gap("models[].serving.rollout.step_percent",
                                        (*path, "rollout", "step_percent"), value=value))
    return problems


def _check_scaling(model: Any, path: tuple, settings: Any) -> list[Problem]:
    autoscaling = model.serving.autoscaling
    problems: list[Problem] = []
    if autoscaling.target_cpu_percent is not None:
        try:
            instance_type = catalog.model_instance_type(model, "serving", settings)
        except CatalogMiss:
            instance_type = None  # reported by checks.compute_misses
        if instance_type is not None and endpoints.cpu_target(autoscaling.target_cpu_percent, instance_type) is None:
            problems.append(finding(
                (*path, "autoscaling", "target_cpu_percent"),
                f"SageMaker's CPUUtilization adds up every vCPU, and the catalog does not know how many "
                f"{instance_type} has: the target applies as if it had one",
                hint="scale on target_requests_per_replica, or use an instance type from the catalog",
                value=autoscaling.target_cpu_percent, severity="warning",
            ))
    if autoscaling.max_replicas > max(autoscaling.min_replicas, 1) and endpoints.policy_suffix(autoscaling) is None:
        problems.append(finding(
            (*path, "autoscaling"),
            f"no scaling target: the endpoint stays at {max(autoscaling.min_replicas, 1)} instance(s) and never "
            f"uses max_replicas ({autoscaling.max_replicas})",
            hint="set target_requests_per_replica or target_cpu_percent",
            severity="warning",
        ))
    return problems


def build(ctx: StageContext) -> ServingOutputs:
    import pulumi
    import pulumi_aws as aws

    region = ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    partition = policies.partition_of(region)
    role = gov.identities["serving"]
    scope = endpoints.serving_scope(ctx.namer)

    # Stack-wide: built where the stack's resources are; a model stack does not wait for it
    # (None), the shared stack holding it is deployed first.
    network = ctx.upstream.find(PrivateNetwork)

    def grants(vpc: str | None = None) -> str:
        return json.dumps(endpoints.serving_grants(partition=partition, region=region,
                                                   account_id=ctx.settings.account_id, scope=scope, vpc_id=vpc))

    grant = aws.iam.RolePolicy(
        ctx.logical("grant", "serving"),
        name=inline_policy_name(ctx.namer, "serving"),
        role=role.id,
        policy=grants() if network is None else pulumi.Output.from_input(network.vpc_id).apply(grants),
        opts=ctx.opts(),
    ) if ctx.builds_stack else None
    known = _KnownValues(
        artifacts=f"s3://{bucket_name(ctx.namer, ARTIFACTS)}",
        role_arn=f"arn:{partition}:iam::{jobs.ACCOUNT_PLACEHOLDER}:role/{role_name(ctx.namer, 'serving', region)}",
        key=key_alias(ctx.namer),
    )
    names: dict[str, Any] = {}
    urls: dict[str, Any] = {}
    for model in ctx.models():
        if model.serving is None:
            continue
        endpoint = _endpoint(ctx, model, grant=grant, known=known, partition=partition)
        names[model.name] = endpoint.name
        urls[model.name] = endpoint.name.apply(
            lambda name, mode=model.serving.mode: modes.invocation_url(mode, partition, region, name))
    return ServingOutputs(endpoints=names, urls=urls)


class _KnownValues:
    """Stand-ins, known before deployment, for what the content hashes cover."""

    def __init__(self, *, artifacts: str, role_arn: str, key: str) -> None:
        self.artifacts = artifacts  # s3://<artifact bucket>
        self.role_arn = role_arn
        self.key = key  # the key's alias stands for its ARN


def _endpoint(ctx: StageContext, model: Any, *, grant: Any | None, known: _KnownValues, partition: str) -> Any:
    import pulumi
    import pulumi_aws as aws

    region = ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    training = ctx.upstream.find(TrainingOutputs)
    role = gov.identities["serving"]
    serving = model.serving
    name = model.name

    # --- image ---------------------------------------------------------------------------
    repo_name = repository_name(ctx.namer, name, "serving")
    repository = image_repository(ctx, name, repo_name)
    # The same image the training pipeline registers (jobs.pulled_image).
    image = jobs.pulled_image(image=serving.image, partition=partition, region=region,
                              account=ctx.settings.account_id, repository=repo_name)

    grants = ctx.waits(grant)
    pull = model_grants.image_pulls(model, "serving", region)
    if pull is not None:
        grants.append(_model_grant(ctx, "imagegrant", "serving-image", name, pull))

    # --- model data ----------------------------------------------------------------------
    if serving.model_uri:
        known_uri = data_uri = serving.model_uri
    else:
        known_uri = f"{known.artifacts}/{output_prefix(name)}"
        data_uri = (training.output_uris[name] if training is not None and name in training.output_uris
                    else pulumi.Output.from_input(storage.artifacts.uri).apply(lambda uri: f"{uri}/{output_prefix(name)}"))
    artifacts_bucket = known.artifacts.removeprefix("s3://")
    if endpoints.parse_s3(known_uri) and not endpoints.covered_by_storage_grant(known_uri, artifacts_bucket):
        grants.append(_model_grant(ctx, "datagrant", "serving-model", name,
                                   endpoints.model_data_grant(partition, known_uri)))

    # --- model (immutable: content-derived name) -------------------------------------------
    environment = dict(serving.environment)
    # Serverless endpoints take neither a VPC nor network isolation (serving_modes.py).
    network = ctx.upstream.find(PrivateNetwork) if serving.mode != "serverless" else None
    isolated = serving.mode != "serverless"

    def sagemaker_model(
        logical: str, prefix: str, *, image: str, known_uri: str, data_uri: Any, waits: list[Any],
    ) -> tuple[str, Any]:
        kind = endpoints.data_kind(known_uri)
        model_name = content_name(prefix, endpoints.model_args(
            image=image, data_uri=known_uri, kind=kind, environment=environment, role_arn=known.role_arn,
            vpc=network.vpc_config(known=True) if network else None, isolated=isolated))
        return model_name, aws.sagemaker.Model(
            logical,
            name=model_name,
            **endpoints.model_args(image=image, data_uri=data_uri, kind=kind, environment=environment,
                                   role_arn=role.principal, vpc=network.vpc_config() if network else None,
                                   isolated=isolated),
            tags=ctx.tags(),
            # SageMaker checks at creation that the role can reach the image (in its repository).
            opts=ctx.opts(depends_on=waits),
        )

    model_name, primary = sagemaker_model(ctx.logical("model", name), model_prefix(ctx.namer, name), image=image,
                                          known_uri=known_uri, data_uri=data_uri, waits=[*grants, repository])
    shadow_names: tuple[Any, Any] = (None, None)
    if serving.shadow is not None:
        shadow_image, shadow_known, shadow_data = _challenger(ctx, model, image=image, known_uri=known_uri,
                                                              data_uri=data_uri, repository=repo_name,
                                                              grants=grants, known=known, partition=partition)
        shadow_name, shadow = sagemaker_model(ctx.logical("shadowmodel", name), shadow_model_prefix(ctx.namer, name),
                                              image=shadow_image, known_uri=shadow_known, data_uri=shadow_data,
                                              waits=[*grants, repository])
        shadow_names = (shadow_name, shadow.name)

    # --- endpoint configuration (immutable: content-derived name) --------------------------
    instance_type = catalog.model_instance_type(model, "serving", ctx.settings)
    async_known = async_real = None
    if serving.mode == "async":
        async_known, async_real = _async_output(ctx, model, known=known, partition=partition, grants=grants)
    config_name = content_name(endpoint_config_prefix(ctx.namer, name), endpoints.endpoint_config_args(
        serving, model_name=model_name, instance_type=instance_type, key_arn=known.key,
        capture_destination=endpoints.capture_destination(known.artifacts, name),
        async_output=async_known, shadow_model=shadow_names[0]))
    config = aws.sagemaker.EndpointConfiguration(
        ctx.logical("config", name),
        name=config_name,
        **endpoints.endpoint_config_args(
            serving, model_name=primary.name, instance_type=instance_type, key_arn=gov.key_id,
            capture_destination=pulumi.Output.from_input(storage.artifacts.uri).apply(
                lambda uri: endpoints.capture_destination(uri, name)),
            async_output=async_real, shadow_model=shadow_names[1]),
        tags=ctx.tags(),
        opts=ctx.opts(),
    )

    # --- endpoint (stable name, updated in place) ------------------------------------------
    alarms = [alarm_name(ctx.namer, name, kind) for kind in endpoints.rollback_alarm_kinds(model)]
    endpoint = aws.sagemaker.Endpoint(
        ctx.logical("endpoint", name),
        name=endpoint_name(ctx.namer, name),
        endpoint_config_name=config.name,
        deployment_config=endpoints.deployment_config(serving.rollout, alarms),
        tags=ctx.tags(),
        # The instances start at once: the role must hold its grants (and the model data must
        # exist: a one-off training job of the training stage finishes first).
        opts=ctx.opts(depends_on=[*grants, *ctx.prerequisites]),
    )

    # --- scaling (serverless endpoints scale on their own, up to their max concurrency) ---------
    if serving.mode == "serverless":
        return endpoint
    autoscaling = serving.autoscaling
    target = aws.appautoscaling.Target(
        ctx.logical("scaling", name),
        service_namespace=endpoints.SERVICE_NAMESPACE,
        resource_id=endpoint.name.apply(endpoints.scaling_resource_id),
        scalable_dimension=endpoints.SCALABLE_DIMENSION,
        min_capacity=endpoints.initial_instances(serving),
        max_capacity=autoscaling.max_replicas,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    tracking: Any = endpoints.target_tracking(autoscaling, endpoint=endpoint.name, instance_type=instance_type)
    suffix = endpoints.policy_suffix(autoscaling)
    if serving.mode == "async" and autoscaling.target_requests_per_replica is not None:
        tracking, suffix = modes.backlog_tracking(autoscaling, endpoint=endpoint.name), "backlog"
    if tracking is not None:
        aws.appautoscaling.Policy(
            ctx.logical("scalingpolicy", name),
            name=f"{endpoint_name(ctx.namer, name)}-{suffix}",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=tracking,
            opts=ctx.opts(),
        )
    return endpoint


def _challenger(
    ctx: StageContext, model: Any, *, image: str, known_uri: str, data_uri: Any, repository: str, grants: list[Any],
    known: _KnownValues, partition: str,
) -> tuple[str, str, Any]:
    """The shadow variant's image and model data (known and real), the primary's where the shadow
    names none, with the serving identity's grants on an image or model data outside the stack
    (appended to `grants`)."""
    region = ctx.settings.region
    shadow = model.serving.shadow
    name = model.name
    if shadow.image is not None:
        image = jobs.pulled_image(image=shadow.image, partition=partition, region=region,
                                  account=ctx.settings.account_id, repository=repository)
        elsewhere = jobs.spec_repository_arn(partition, jobs.image_source(shadow.image, region))
        if elsewhere is not None and shadow.image != model.serving.image:
            grants.append(_model_grant(ctx, "shadowimagegrant", "serving-shadow-image", name,
                                       jobs.image_pull_grant(elsewhere, "PullShadowImage")))
    if shadow.model_uri is not None:
        known_uri = data_uri = shadow.model_uri
        if endpoints.parse_s3(known_uri) and not endpoints.covered_by_storage_grant(
                known_uri, known.artifacts.removeprefix("s3://")):
            grants.append(_model_grant(ctx, "shadowdatagrant", "serving-shadow-model", name,
                                       endpoints.model_data_grant(partition, known_uri)))
    return image, known_uri, data_uri


def _async_output(
    ctx: StageContext, model: Any, *, known: _KnownValues, partition: str, grants: list[Any],
) -> tuple[str, Any]:
    """Where the async endpoint writes responses (known, real), and the serving identity's grant to
    write there (appended to `grants`: the endpoint waits for it)."""
    import pulumi

    storage = ctx.upstream.of(StorageOutputs)
    serving, name = model.serving, model.name
    buckets = {b: f"s3://{bucket_name(ctx.namer, b)}" for b in storage.buckets}
    known_output = modes.async_output(serving, name, artifacts_uri=known.artifacts, bucket_uris=buckets)
    options = serving.async_inference
    bucket = options.output.bucket if options is not None and options.output else None
    source = storage.buckets[bucket].uri if bucket else storage.artifacts.uri

    def real(uri: str) -> str:
        return modes.async_output(serving, name, artifacts_uri=uri, bucket_uris={bucket: uri} if bucket else {})

    grants.append(_model_grant(ctx, "asyncgrant", "serving-async", name,
                               modes.async_output_grant(partition, known_output)))
    return known_output, pulumi.Output.from_input(source).apply(real)


def _model_grant(ctx: StageContext, logical: str, purpose: str, model: str, document: dict[str, Any]) -> Any:
    """A per-model inline policy "<purpose>-<model>" on the serving identity (what the stack's
    prefixes cannot name: an image or model data outside the stack, an async output)."""
    import pulumi_aws as aws

    return aws.iam.RolePolicy(
        ctx.logical(logical, model),
        name=inline_policy_name(ctx.namer, purpose, model),
        role=ctx.upstream.of(GovernanceOutputs).identities["serving"].id,
        policy=json.dumps(document),
        opts=ctx.opts(),
    )
