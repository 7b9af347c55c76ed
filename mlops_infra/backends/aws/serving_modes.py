"""SageMaker serverless and asynchronous endpoints, shadow variants and auth, as pure data and checks.

No SDK here: serving.py turns these into pulumi-aws arguments, `check` is called from
serving.check. Facts, with their sources (read 2026-12-06):

- Serverless (CreateEndpointConfig ProductionVariants[].ServerlessConfig, botocore sagemaker
  service model): MemorySizeInMB 1024-6144 (in 1 GiB steps), MaxConcurrency 1-200; the variant
  names no instance type or count. Features serverless endpoints exclude
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, "Feature
  exclusions"): GPUs, VPC configuration, network isolation, data capture, multiple production
  variants, Model Monitor. Their metrics are the real-time ones (Invocations, Invocation5XXErrors,
  ModelLatency: serverless-endpoints-monitoring.html), so the endpoint alarms work unchanged.
- Asynchronous (CreateEndpointConfig AsyncInferenceConfig): OutputConfig S3OutputPath,
  S3FailurePath, KmsKeyId (encrypts the responses in S3); ClientConfig
  MaxConcurrentInvocationsPerInstance 1-1000. Async endpoints do not publish Invocations,
  InvocationsPerInstance or OverheadLatency, but publish ApproximateBacklogSizePerInstance
  (namespace AWS/SageMaker, dimension EndpointName) and the common Invocation5XXErrors and
  ModelLatency (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html):
  so they scale on the backlog per instance, and neither the error-rate alarm (5xx over
  Invocations) nor the traffic alarm (Invocations) can be computed. Invoked at
  /endpoints/<name>/async-invocations (InvokeEndpointAsync), SigV4-signed.
- Shadow variants (CreateEndpointConfig ShadowProductionVariants, 1-10): a variant that receives
  a copy of the production variant's requests, weighted against it by InitialVariantWeight;
  its responses are not returned, and the endpoint's data capture records them. Endpoints
  using serverless or asynchronous inference cannot have shadow variants
  (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html).
- Auth: InvokeEndpoint and InvokeEndpointAsync accept only requests signed with AWS Signature
  Version 4 (IAM); SageMaker endpoints have no API keys (serving.auth: key is a gap).
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.facts import fact
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

SHADOW_VARIANT = "shadow"
ASYNC_PREFIX = "async-inference/"  # default async responses: s3://<artifacts>/async-inference/<model>/
FAILURES = "failures/"  # async requests that failed: under the output location
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
BACKLOG_NAMESPACE = "AWS/SageMaker"
# Endpoint alarms an async endpoint cannot have (their metric needs Invocations).
ASYNC_NO_ALARMS = {"error_rate_percent": "errors", "min_invocations_per_hour": "traffic"}


# --- validate --------------------------------------------------------------------------------
def check(spec: Any, backend: Any, model: Any, path: tuple, region: str) -> list[Problem]:
    """What the model's serving mode, shadow and auth ask that SageMaker cannot do."""
    serving = model.serving
    problems: list[Problem] = []
    if serving.auth == "key":
        problems.append(backend.gap("models[].serving.auth", (*path, "auth"), value="key"))
    if serving.mode == "serverless":
        problems += _check_serverless(spec, backend, serving, path)
    elif serving.mode == "async":
        problems += _check_async(spec, model, path)
    if serving.shadow is not None:
        problems += _check_shadow(backend, serving, path, region)
    return problems


def _check_serverless(spec: Any, backend: Any, serving: Any, path: tuple) -> list[Problem]:
    options = serving.serverless
    problems: list[Problem] = []
    # facts/sagemaker-inference.json holds these limits with their sources.
    largest = fact("aws", "sagemaker-inference", "serverless_memory_mb").value[1] // 1024
    if options is not None and options.memory_gib > largest:
        problems.append(backend.gap("models[].serving.serverless.memory_gib",
                                    (*path, "serverless", "memory_gib"), value=options.memory_gib))
    if options is not None and options.max_concurrency > fact("aws", "sagemaker-inference",
                                                              "serverless_max_concurrency").value:
        problems.append(backend.gap("models[].serving.serverless.max_concurrency",
                                    (*path, "serverless", "max_concurrency"), value=options.max_concurrency))
    excluded = [
        (serving.compute.requirements["gpus"] > 0, ("compute",), "GPUs", "use a CPU compute (serverless runs on CPUs)"),
        (serving.data_capture is not None, ("data_capture",), "data capture (and so drift monitoring)",
         "remove data_capture, or use mode: realtime or async"),
        (spec.governance.network == "private", ("mode",), "a VPC configuration (governance.network: private)",
         "use mode: realtime or async, which run in the stack's VPC"),
        (serving.rollout.mode != "all-at-once", ("rollout", "mode"),
         "canary or linear rollouts (their steps are shares of a variant's instances; a serverless variant has "
         "none)", "use rollout: {mode: all-at-once}"),
    ]
    for excludes, where, what, hint in excluded:
        if excludes:
            problems.append(finding((*path, *where), f"SageMaker serverless endpoints exclude {what}", hint=hint))
    if "autoscaling" in serving.model_fields_set:
        problems.append(finding(
            (*path, "autoscaling"),
            "serverless endpoints scale on their own up to serverless.max_concurrency: autoscaling has no effect",
            hint="remove autoscaling, or bound the endpoint with serverless: {max_concurrency: N}", severity="warning",
        ))
    problems.append(finding(
        (*path, "mode"),
        "SageMaker serverless endpoints cannot isolate the serving container's network: unlike the stack's "
        "real-time and async models, this model's container may reach the internet",
        hint="use mode: realtime or async where the container must not reach any network", severity="warning",
    ))
    return problems


def _check_async(spec: Any, model: Any, path: tuple) -> list[Problem]:
    serving = model.serving
    problems: list[Problem] = []  # an unknown output bucket: the neutral serving check
    monitoring = model.monitoring
    for field, kind in ASYNC_NO_ALARMS.items():
        if monitoring is not None and getattr(monitoring, field) is not None:
            problems.append(finding(
                ("models", path[1], "monitoring", field),
                f"SageMaker async endpoints publish no Invocations metric, which the {kind} alarm counts",
                hint="remove it; latency_p99_ms works on async endpoints", value=getattr(monitoring, field),
            ))
    if serving.autoscaling.target_requests_per_replica is not None:
        problems.append(finding(
            (*path, "autoscaling", "target_requests_per_replica"),
            f"async endpoints publish no invocations per instance: this endpoint scales to keep "
            f"{serving.autoscaling.target_requests_per_replica} queued requests per instance "
            f"({BACKLOG_METRIC})",
            hint="set it to the backlog one instance should work through, or scale on target_cpu_percent",
            severity="warning",
        ))
    return problems


def _check_shadow(backend: Any, serving: Any, path: tuple, region: str) -> list[Problem]:
    shadow_path = (*path, "shadow")
    if serving.mode in fact("aws", "sagemaker-inference", "shadow_excluded_modes").value:
        return [finding(shadow_path, f"SageMaker {serving.mode} endpoints cannot have shadow variants",
                        hint="use mode: realtime for the shadow test, or remove shadow")]
    problems: list[Problem] = []
    if serving.data_capture is None:
        problems.append(finding(
            shadow_path, "a shadow variant's responses are kept only by the endpoint's data capture, which is off",
            hint="add data_capture: {sampling_percent: 100} (or less) to keep the challenger's responses",
        ))
    if serving.shadow.image is not None and jobs.image_source(serving.shadow.image, region).kind == "other-region":
        problems.append(backend.gap("models[].serving.image", (*shadow_path, "image"), value=serving.shadow.image))
    if serving.shadow.model_uri is not None and endpoints.parse_s3(serving.shadow.model_uri) is None:
        problems.append(backend.gap("models[].serving.model_uri", (*shadow_path, "model_uri"),
                                    value=serving.shadow.model_uri))
    return problems


# --- build -----------------------------------------------------------------------------------
def serverless_config(serving: Any) -> dict[str, int]:
    """ProductionVariantServerlessConfig from serving.serverless (its defaults without one)."""
    from mlops_infra.spec.lifecycle import Serverless

    options = serving.serverless or Serverless()
    return {"memory_size_in_mb": options.memory_gib * 1024, "max_concurrency": options.max_concurrency}


def async_output(serving: Any, model: str, *, artifacts_uri: str, bucket_uris: dict[str, str]) -> str:
    """Where an async endpoint writes responses: serving.async.output, else the artifact bucket's
    async-inference/<model>/ (both end in "/")."""
    options = serving.async_inference
    if options is not None and options.output is not None:
        return f"{bucket_uris[options.output.bucket]}/{options.output.prefix}"
    return f"{artifacts_uri}/{ASYNC_PREFIX}{model}/"


def async_config(serving: Any, *, output: Any, key_arn: Any) -> dict[str, Any]:
    """AsyncInferenceConfig: responses and failures under `output`, encrypted with the stack key."""
    from mlops_infra.spec.lifecycle import AsyncInference

    options = serving.async_inference or AsyncInference()
    return {
        "output_config": {"s3_output_path": output, "s3_failure_path": _under(output, FAILURES), "kms_key_id": key_arn},
        "client_config": {"max_concurrent_invocations_per_instance": options.max_concurrent_per_instance},
    }


def _under(base: Any, prefix: str) -> Any:
    if isinstance(base, str):
        return f"{base}{prefix}"
    return base.apply(lambda uri: f"{uri}{prefix}")


def shadow_variant(serving: Any, *, model_name: Any, instance_type: str) -> dict[str, Any]:
    """The shadow production variant: the primary's instance type and count (so latencies compare),
    weighted so that it gets shadow.traffic_percent of the primary's requests."""
    return {
        "variant_name": SHADOW_VARIANT,
        "model_name": model_name,
        "instance_type": instance_type,
        "initial_instance_count": endpoints.initial_instances(serving),
        "initial_variant_weight": round(serving.shadow.traffic_percent / 100, 4),
    }


def backlog_tracking(autoscaling: Any, *, endpoint: Any) -> dict[str, Any]:
    """Target tracking of an async endpoint: queued requests per instance."""
    return {
        "target_value": float(autoscaling.target_requests_per_replica),
        "customized_metric_specification": {
            "metric_name": BACKLOG_METRIC, "namespace": BACKLOG_NAMESPACE, "statistic": "Average",
            "dimensions": [{"name": "EndpointName", "value": endpoint}],
        },
        "scale_in_cooldown": int(autoscaling.scale_in_cooldown),
        "scale_out_cooldown": int(autoscaling.scale_out_cooldown),
    }


def invocation_url(mode: str, partition: str, region: str, endpoint: str) -> str:
    url = endpoints.invocation_url(partition, region, endpoint)
    return url.replace("/invocations", "/async-invocations") if mode == "async" else url


# --- IAM -------------------------------------------------------------------------------------
def async_output_grant(partition: str, output: str) -> dict[str, Any]:
    """The serving identity writes one async endpoint's responses (and failures) under `output`."""
    location = endpoints.parse_s3(output)
    if location is None:
        raise ValueError(f"not an S3 URI: {output!r}")
    return policies.document([{
        "Sid": "WriteAsyncResponses", "Effect": "Allow", "Action": list(policies.S3_WRITE_OBJECT),
        "Resource": f"{policies.bucket_arn(partition, location.bucket)}/{location.key}*",
    }])


def serving_mode_grants(spec: Any, namer: Any, model: Any, partition: str) -> list[dict[str, Any]]:
    """The per-model documents the serving identity gets for its mode and shadow (validate measures
    them: governance_grants): the async output grant, and the challenger's pull and data grants
    where its image or model data lies outside the stack."""
    from mlops_infra.backends.aws.naming import bucket_name
    from mlops_infra.stages.storage import ARTIFACTS

    serving = model.serving
    artifacts = bucket_name(namer, ARTIFACTS)
    region = getattr(namer, "region", "")
    out: list[dict[str, Any]] = []
    if serving.mode == "async":
        buckets = {b.name: f"s3://{bucket_name(namer, b.name)}" for b in spec.storage.buckets}
        options = serving.async_inference
        if options is None or options.output is None or options.output.bucket in buckets:
            output = async_output(serving, model.name, artifacts_uri=f"s3://{artifacts}", bucket_uris=buckets)
            out.append(async_output_grant(partition, output))
    shadow = serving.shadow
    if shadow is not None and shadow.image is not None and shadow.image != serving.image:
        elsewhere = jobs.spec_repository_arn(partition, jobs.image_source(shadow.image, region))
        if elsewhere is not None:
            out.append(jobs.image_pull_grant(elsewhere, "PullShadowImage"))
    if shadow is not None and shadow.model_uri and endpoints.parse_s3(shadow.model_uri) \
            and not endpoints.covered_by_storage_grant(shadow.model_uri, artifacts):
        out.append(endpoints.model_data_grant(partition, shadow.model_uri))
    return out
