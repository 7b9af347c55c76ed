"""SageMaker real-time endpoints as pure data: model data, capture, rollout, scaling, grants.

No SDK here: the serving stage turns these into pulumi-aws arguments (snake_case dicts the
SDK accepts as its *Args), serving.check validates what SageMaker would reject and measures
the grants, and the tests read them. Facts, with their sources:

- Model data (CreateModel ContainerDefinition): ModelDataUrl takes one gzip-compressed tar
  archive (.tar.gz); ModelDataSource.S3DataSource takes uncompressed data (CompressionType
  None) as one object (S3DataType S3Object) or every object under a prefix ending in "/"
  (S3Prefix), which SageMaker copies into /opt/ml/model/.
- Data capture (CreateEndpointConfig DataCaptureConfig): InitialSamplingPercentage is an
  integer 0-100; CaptureOptions list CaptureMode Input and/or Output; KmsKeyId encrypts the
  captured files in S3.
- Endpoint configuration KmsKeyId encrypts the instances' storage volumes, and SageMaker
  rejects it for instance types with local NVMe storage (their storage is hardware-encrypted):
  catalog.has_instance_storage decides, as for training volumes.
- Rollout (UpdateEndpoint DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration):
  Type ALL_AT_ONCE | CANARY | LINEAR, WaitIntervalInSeconds 0-3600; CanarySize and
  LinearStepSize are CapacitySize {Type CAPACITY_PERCENT, Value integer >= 1}, the canary at
  most 50% and a linear step 10-50% of the variant's instances. Blue/green deployments keep the
  variant's name (deployment guardrails: "Exclusions"), hence one stable VARIANT.
  AutoRollbackConfiguration.Alarms: 1-10 alarm names; the model's execution role needs
  cloudwatch:DescribeAlarms on them (deployment guardrails: "Auto-Rollback Configuration").
- Scaling (Application Auto Scaling): resource id endpoint/<endpoint>/variant/<variant>,
  dimension sagemaker:variant:DesiredInstanceCount; target tracking on the predefined metric
  SageMakerVariantInvocationsPerInstance (invocations per minute per instance), or on the
  endpoint's CPUUtilization (namespace /aws/sagemaker/Endpoints), which is the sum over the
  instance's vCPUs (0 to 100 x vCPUs): a neutral CPU percentage is multiplied by the vCPUs.
- Logs: /aws/sagemaker/Endpoints/<endpoint>, written with the model's execution role.
- Invocation: POST https://runtime.sagemaker.<region>.<dns suffix>/endpoints/<name>/invocations,
  signed with SigV4 (IAM): SageMaker endpoints have no anonymous access and no key auth.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from mlops_infra.backends.aws import catalog, policies
from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import ALARM_KINDS, stack_prefix
from mlops_infra.naming import Namer
from mlops_infra.stages.storage import capture_prefix

if TYPE_CHECKING:
    from pulumi_aws.appautoscaling import (
        PolicyTargetTrackingScalingPolicyConfigurationArgsDict,
    )
    from pulumi_aws.sagemaker import (
        EndpointDeploymentConfigArgsDict,
        EndpointDeploymentConfigBlueGreenUpdatePolicyArgsDict,
        EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgsDict,
    )

VARIANT = "primary"  # the production variant of every endpoint (VariantName: stable across configurations)
METRIC_NAMESPACE = "/aws/sagemaker/Endpoints"
LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"  # + endpoint name
SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
CPU_METRIC = "CPUUtilization"
CAPTURE_MODES = {"requests": "Input", "responses": "Output"}
TRAFFIC = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
CANARY_MAX_PERCENT = 50
LINEAR_MIN_PERCENT = 10
LINEAR_MAX_PERCENT = 50
MIN_SPLIT_INSTANCES = 2  # a canary or a linear step is a share of the running instances
MAX_ROLLBACK_ALARMS = 10

# What the model's execution role (the serving identity) needs besides S3 and the key.
ENDPOINT_LOGS_GROUP = ("logs:CreateLogGroup", "logs:DescribeLogStreams")
ENDPOINT_LOGS_STREAM = ("logs:CreateLogStream", "logs:PutLogEvents")
ROLLBACK_ALARMS_READ = ("cloudwatch:DescribeAlarms",)

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.*)$")
COMPRESSED_SUFFIX = ".tar.gz"


# --- model data -------------------------------------------------------------------
@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # "" = the whole bucket; ends with "/" for a prefix


def parse_s3(uri: str) -> S3Location | None:
    match = _S3_URI.match(uri)
    return S3Location(match["bucket"], match["key"]) if match else None


def data_kind(uri: str) -> str:
    """How SageMaker loads a model location: "compressed" (one .tar.gz, ModelDataUrl),
    "prefix" (every object under a prefix, uncompressed) or "object" (one uncompressed object)."""
    if uri.endswith("/"):
        return "prefix"
    if uri.endswith(COMPRESSED_SUFFIX):
        return "compressed"
    return "object"


def container(*, image: Any, data_uri: Any, kind: str, environment: dict[str, str]) -> dict[str, Any]:
    """The model's primary container (ModelPrimaryContainerArgs as a dict). `data_uri` may be a
    pulumi Output; `kind` (data_kind of its known text) says how SageMaker loads it."""
    out: dict[str, Any] = {"image": image, "mode": "SingleModel", "environment": dict(sorted(environment.items()))}
    if kind == "compressed":
        out["model_data_url"] = data_uri
    else:
        out["model_data_source"] = {"s3_data_sources": [{
            "s3_uri": data_uri, "s3_data_type": "S3Prefix" if kind == "prefix" else "S3Object",
            "compression_type": "None"}]}
    return out


def model_args(
    *, image: Any, data_uri: Any, kind: str, environment: dict[str, str], role_arn: Any,
    vpc: dict[str, Any] | None = None, isolated: bool = True,
) -> dict[str, Any]:
    """A SageMaker model's arguments (everything but its name and tags): the container, the
    serving identity as execution role, network isolation (the container reaches no network;
    SageMaker fetches the model data and the image with the role; serverless endpoints exclude
    it: `isolated` False) and, in a private network, the VpcConfig through which SageMaker does so."""
    args = {
        "execution_role_arn": role_arn,
        "primary_container": container(image=image, data_uri=data_uri, kind=kind, environment=environment),
        "enable_network_isolation": isolated,
    }
    if vpc is not None:
        args["vpc_config"] = vpc
    return args


# --- endpoint configuration ---------------------------------------------------------
def capture_destination(artifacts_uri: str, model: str) -> str:
    return f"{artifacts_uri}/{capture_prefix(model)}"


def capture_config(capture: Any, *, destination: Any, key_arn: Any) -> dict[str, Any] | None:
    """DataCaptureConfig from serving.data_capture (None without capture)."""
    if capture is None:
        return None
    modes = [CAPTURE_MODES["requests"]] + ([CAPTURE_MODES["responses"]] if capture.capture_responses else [])
    return {
        "enable_capture": True,
        "initial_sampling_percentage": int(capture.sampling_percent),
        "destination_s3_uri": destination,
        "kms_key_id": key_arn,
        "capture_options": [{"capture_mode": m} for m in modes],
    }


def initial_instances(serving: Any) -> int:
    return max(serving.autoscaling.min_replicas, 1)


def endpoint_config_args(
    serving: Any, *, model_name: Any, instance_type: str, key_arn: Any, capture_destination: Any,
    async_output: Any = None, shadow_model: Any = None,
) -> dict[str, Any]:
    """An endpoint configuration's arguments (everything but its name and tags), for the serving
    mode (serving_modes.py): a serverless variant has no instances (so no volume key); an async
    configuration writes responses under `async_output`; `shadow_model` adds the shadow variant."""
    from mlops_infra.backends.aws import serving_modes as modes

    variant: dict[str, Any] = {"variant_name": VARIANT, "model_name": model_name}
    if serving.mode == "serverless":
        variant["serverless_config"] = modes.serverless_config(serving)
    else:
        variant.update(instance_type=instance_type, initial_instance_count=initial_instances(serving))
    variant["initial_variant_weight"] = 1.0
    args: dict[str, Any] = {"production_variants": [variant]}
    if serving.mode != "serverless" and not catalog.has_instance_storage(instance_type):
        args["kms_key_arn"] = key_arn
    capture = capture_config(serving.data_capture, destination=capture_destination, key_arn=key_arn)
    if capture is not None:
        args["data_capture_config"] = capture
    if serving.mode == "async":
        args["async_inference_config"] = modes.async_config(serving, output=async_output, key_arn=key_arn)
    if shadow_model is not None:
        args["shadow_production_variants"] = [modes.shadow_variant(serving, model_name=shadow_model,
                                                                   instance_type=instance_type)]
    return args


# --- rollout ------------------------------------------------------------------------
def rollback_alarm_kinds(model: Any) -> list[str]:
    """The alarms (ALARM_KINDS) the monitoring stage creates for a model, which its endpoint's
    deployments roll back on (none unless serving.rollout.rollback_on_alarms)."""
    if model.serving is None or not model.serving.rollout.rollback_on_alarms or model.monitoring is None:
        return []
    present = {"latency": model.monitoring.latency_p99_ms is not None,
               "errors": model.monitoring.error_rate_percent is not None}
    return [kind for kind in ALARM_KINDS if present[kind]]


def deployment_config(rollout: Any, alarms: list[str]) -> EndpointDeploymentConfigArgsDict:
    """The endpoint's DeploymentConfig: a blue/green update shifting traffic as the rollout says,
    baking `wait` seconds between steps, rolling back when one of `alarms` fires."""
    routing: EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgsDict = {
        "type": TRAFFIC[rollout.mode], "wait_interval_in_seconds": int(rollout.wait)
    }
    if rollout.mode == "canary":
        routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": int(rollout.canary_percent)}
    elif rollout.mode == "linear":
        routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": int(rollout.step_percent)}
    policy: EndpointDeploymentConfigBlueGreenUpdatePolicyArgsDict = {
        "traffic_routing_configuration": routing,
        # After the last step the old fleet stays for one more bake (so a late alarm still rolls
        # back); with all-at-once the wait interval is that bake already.
        "termination_wait_in_seconds": 0 if rollout.mode == "all-at-once" else int(rollout.wait),
    }
    config: EndpointDeploymentConfigArgsDict = {"blue_green_update_policy": policy}
    if alarms:
        config["auto_rollback_configuration"] = {"alarms": [{"alarm_name": a} for a in alarms]}
    return config


# --- scaling ------------------------------------------------------------------------
def scaling_resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT}"


def cpu_target(percent: float, instance_type: str) -> float | None:
    """CPUUtilization target for a neutral CPU percentage (None when the vCPUs are unknown)."""
    spec = catalog.spec_of(instance_type)
    return None if spec is None else round(percent * spec.cpus, 2)


def policy_suffix(autoscaling: Any) -> str | None:
    if autoscaling.target_requests_per_replica is not None:
        return "invocations"
    if autoscaling.target_cpu_percent is not None:
        return "cpu"
    return None


class _Cooldowns(TypedDict):
    scale_in_cooldown: int
    scale_out_cooldown: int


def target_tracking(
    autoscaling: Any, *, endpoint: Any, instance_type: str
) -> PolicyTargetTrackingScalingPolicyConfigurationArgsDict | None:
    """The target-tracking configuration for serving.autoscaling (None without a target)."""
    common: _Cooldowns = {"scale_in_cooldown": int(autoscaling.scale_in_cooldown),
                          "scale_out_cooldown": int(autoscaling.scale_out_cooldown)}
    if autoscaling.target_requests_per_replica is not None:
        return {"target_value": float(autoscaling.target_requests_per_replica),
                "predefined_metric_specification": {"predefined_metric_type": INVOCATIONS_METRIC}, **common}
    if autoscaling.target_cpu_percent is not None:
        target = cpu_target(autoscaling.target_cpu_percent, instance_type)
        return {
            "target_value": float(autoscaling.target_cpu_percent) if target is None else target,
            "customized_metric_specification": {
                "metric_name": CPU_METRIC, "namespace": METRIC_NAMESPACE, "statistic": "Average", "unit": "Percent",
                "dimensions": [{"name": "EndpointName", "value": endpoint}, {"name": "VariantName", "value": VARIANT}],
            },
            **common,
        }
    return None


# --- invocation ---------------------------------------------------------------------
def invocation_url(partition: str, region: str, endpoint: str) -> str:
    return f"https://runtime.sagemaker.{region}.{jobs.dns_suffix(partition)}/endpoints/{endpoint}/invocations"


# --- IAM ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ServingScope:
    """What the serving role may act on, named by the stack's prefixes (see jobs.TrainingScope)."""

    repositories: str  # name pattern of the stack's serving image repositories
    endpoints: str  # every endpoint of the stack starts with it
    alarms: str  # every alarm of the stack starts with it


def serving_scope(namer: Namer) -> ServingScope:
    return ServingScope(
        repositories=f"{stack_prefix(namer, 'aws.ecr.repository')}*-serving",
        endpoints=stack_prefix(namer, "aws.sagemaker.endpoint"),
        alarms=stack_prefix(namer, "aws.cloudwatch.alarm"),
    )


def serving_grants(
    *, partition: str, region: str, account_id: str, scope: ServingScope, vpc_id: str | None = None,
) -> dict[str, Any]:
    """The serving role's inline policy for endpoints: pull the stack's serving images, write
    its endpoints' logs, read the alarms deployments roll back on, and in a private network
    (`vpc_id`) attach the models' containers to the stack's VPC. The model data and captured
    data (S3) come from the storage stage's grant, the key from governance's. The container runs
    network-isolated: it calls no AWS API itself (so no cloudwatch:PutMetricData)."""
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:{LOG_GROUP_PREFIX}{scope.endpoints}*"
    return policies.document([
        {"Sid": "PullServingImages", "Effect": "Allow", "Action": list(jobs.ECR_PULL),
         "Resource": jobs.repository_arn(partition, region, account_id, scope.repositories)},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(jobs.ECR_LOGIN), "Resource": "*"},
        {"Sid": "UseEndpointLogGroups", "Effect": "Allow", "Action": list(ENDPOINT_LOGS_GROUP), "Resource": logs},
        {"Sid": "WriteEndpointLogs", "Effect": "Allow", "Action": list(ENDPOINT_LOGS_STREAM),
         "Resource": f"{logs}:log-stream:*"},
        {"Sid": "ReadRollbackAlarms", "Effect": "Allow", "Action": list(ROLLBACK_ALARMS_READ),
         "Resource": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{scope.alarms}*"},
        *(network.network_grants(partition=partition, region=region, account_id=account_id, vpc_id=vpc_id)
          if vpc_id else []),
    ])


def covered_by_storage_grant(uri: str, artifacts_bucket: str) -> bool:
    """Whether the storage stage's serving grant already lets the serving role read `uri`
    (the trained models in the artifact bucket)."""
    location = parse_s3(uri)
    return location is not None and location.bucket == artifacts_bucket and location.key.startswith(
        policies.MODELS_PREFIX)


def model_data_grant(partition: str, uri: str) -> dict[str, Any]:
    """Read access to one model location named by serving.model_uri (outside the trained models)."""
    location = parse_s3(uri)
    if location is None:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket = policies.bucket_arn(partition, location.bucket)
    if data_kind(uri) != "prefix":
        return policies.document([{"Sid": "ReadModel", "Effect": "Allow", "Action": list(policies.S3_READ_OBJECT),
                                   "Resource": f"{bucket}/{location.key}"}])
    listing: dict[str, Any] = {"Sid": "ListModel", "Effect": "Allow", "Action": list(policies.S3_LIST_BUCKET),
                               "Resource": bucket}
    if location.key:
        listing["Condition"] = {"StringLike": {"s3:prefix": [location.key, f"{location.key}*"]}}
    return policies.document([
        listing,
        {"Sid": "ReadModel", "Effect": "Allow", "Action": list(policies.S3_READ_OBJECT),
         "Resource": f"{bucket}/{location.key}*"},
    ])


def whole(value: float) -> bool:
    return math.isclose(value, round(value))
