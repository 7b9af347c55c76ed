"""Kubernetes serving: a KServe InferenceService per model (min/max replicas, scale to zero
allowed, a canary traffic share), and with data capture KServe's request logger sending to a
Fluent Bit collector that writes the requests to the artifact bucket (data-capture/<model>/)."""

from __future__ import annotations

import math
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import container, env_list, metadata, name, pod_spec, settings_of
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import StorageOutputs, capture_prefix
from mlops_infra.stages.training import TrainingOutputs

LOGGER_PORT = 8888
ISVC_API = "serving.kserve.io/v1beta1"


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    from mlops_infra.backends.kubernetes import BACKEND

    problems = []
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving is None:
            continue
        path = ("models", i, "serving")
        if serving.data_capture is not None and serving.data_capture.sampling_percent < 100:
            problems.append(BACKEND.gap("models[].serving.data_capture.sampling_percent",
                                        (*path, "data_capture", "sampling_percent"),
                                        value=serving.data_capture.sampling_percent))  # fmt: skip
        scaling = serving.autoscaling
        for field in ("scale_in_cooldown", "scale_out_cooldown"):
            if field in scaling.model_fields_set:
                problems.append(BACKEND.gap(f"models[].serving.autoscaling.{field}", (*path, "autoscaling", field),
                                            value=getattr(scaling, field)))  # fmt: skip
        if serving.rollout.mode == "linear":
            problems.append(BACKEND.gap("models[].serving.rollout.linear", (*path, "rollout", "mode"), value="linear"))
        if serving.rollout.mode == "canary" and serving.rollout.rollback_on_alarms:
            problems.append(BACKEND.gap("models[].serving.rollout.rollback_on_alarms",
                                        (*path, "rollout", "rollback_on_alarms"), value=True))  # fmt: skip
        if serving.shadow is not None:
            problems.append(BACKEND.gap("models[].serving.shadow", (*path, "shadow")))
        if serving.auth == "key":
            problems.append(BACKEND.gap("models[].serving.auth.key", (*path, "auth"), value="key"))
    return problems


def scaling(autoscaling: Any) -> dict[str, Any]:
    """KServe's scale metric: CPU share, or requests per second per replica (the spec says per minute)."""
    found: dict[str, Any] = {"minReplicas": autoscaling.min_replicas, "maxReplicas": autoscaling.max_replicas}
    if autoscaling.target_cpu_percent is not None:
        found.update(scaleMetric="cpu", scaleTarget=int(autoscaling.target_cpu_percent))
    elif autoscaling.target_requests_per_replica is not None:
        found.update(scaleMetric="rps", scaleTarget=max(1, math.ceil(autoscaling.target_requests_per_replica / 60)))
    return found


def build(ctx: StageContext) -> ServingOutputs:
    import pulumi
    import pulumi_kubernetes as k8s

    ns = common.cluster(ctx).namespace
    storage = ctx.upstream.of(StorageOutputs)
    trained = ctx.upstream.find(TrainingOutputs)
    serving_sa = ctx.upstream.of(GovernanceOutputs).identities["serving"].id
    served = [m for m in ctx.models() if m.serving is not None]
    # One request logger per stack, built where stack-wide resources are (the shared stack of a split spec):
    # model stacks read its address instead of each declaring the same objects in the namespace.
    capture = any(m.serving is not None and m.serving.data_capture is not None for m in ctx.spec.models)
    logger_url = ctx.shared("request-log", lambda: request_logger(ctx, ns)) if capture else None
    endpoints: dict[str, Any] = {}
    urls: dict[str, Any] = {}
    for model in served:
        serving = model.serving
        if serving is None:
            continue
        isvc_name = name(ctx, model.name)
        model_uri = serving.model_uri or (trained.output_uris.get(model.name) if trained else None)
        env = env_list(dict(serving.environment)) + common.store_env(ctx)
        if model_uri is not None:
            env.append({"name": "MODEL_URI", "value": model_uri})
        predictor: dict[str, Any] = {
            **scaling(serving.autoscaling),
            **pod_spec(serving_sa, [container("kserve-container", serving.image, env=env,
                                              ports=[{"containerPort": 8080, "protocol": "TCP"}],
                                              resources=common.resources(serving.compute.requirements))]),
        }  # fmt: skip
        if serving.rollout.mode == "canary":
            predictor["canaryTrafficPercent"] = serving.rollout.canary_percent
        if serving.data_capture is not None and logger_url is not None:
            predictor["logger"] = {
                "mode": "all" if serving.data_capture.capture_responses else "request",
                "url": pulumi.Output.concat(logger_url, "/", model.name),
            }
        k8s.apiextensions.CustomResource(
            ctx.logical("endpoint", model.name), api_version=ISVC_API, kind="InferenceService",
            metadata=metadata(ctx, isvc_name, ns, **{"mlops-infra/model": model.name}),
            spec={"predictor": predictor}, opts=ctx.opts(),
        )  # fmt: skip
        endpoints[model.name] = isvc_name
        # The in-cluster address (KServe's external URL depends on the cluster's ingress domain).
        urls[model.name] = pulumi.Output.concat("http://", isvc_name, "-predictor.", ns, ".svc.cluster.local")
    return ServingOutputs(endpoints=endpoints, urls=urls)


FLUENT_BIT = """[SERVICE]
    Flush 5
    Log_Level info
[INPUT]
    Name http
    Listen 0.0.0.0
    Port {port}
[OUTPUT]
    Name s3
    Match *
    bucket {bucket}
    region {region}
    endpoint {endpoint}
    use_put_object On
    total_file_size 10M
    upload_timeout 1m
    store_dir /tmp/fluent-bit
    s3_key_format /{prefix}$TAG/%Y/%m/%d/%H%M%S-$UUID.json
"""


def request_logger(ctx: StageContext, ns: Any) -> Any:
    """Fluent Bit receiving KServe's request logs over HTTP (the URL path is the model) into the artifact bucket."""
    import pulumi
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    found = common.cluster(ctx)
    artifacts = ctx.upstream.of(StorageOutputs).artifacts
    config = pulumi.Output.all(artifacts.physical).apply(lambda parts: FLUENT_BIT.format(
        port=LOGGER_PORT, bucket=parts[0], region=settings.object_store.region, endpoint=found.store_endpoint,
        prefix=capture_prefix("").rstrip("/") + "/"))  # fmt: skip
    logger_name = name(ctx, "request-log")
    configmap = k8s.core.v1.ConfigMap(ctx.logical("request-log-config"), metadata=metadata(ctx, logger_name, ns),
                                      data={"fluent-bit.conf": config}, opts=ctx.opts())  # fmt: skip
    selector = {"app.kubernetes.io/name": "request-log"}
    collector = container(
        "fluent-bit", settings.images.request_logger,
        args=["--config=/fluent-bit/etc/fluent-bit.conf"], env=common.store_env(ctx),
        ports=[{"name": "http", "containerPort": LOGGER_PORT}],
        volumeMounts=[{"name": "config", "mountPath": "/fluent-bit/etc", "readOnly": True}],
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    )  # fmt: skip
    k8s.apps.v1.Deployment(
        ctx.logical("request-log"), metadata=metadata(ctx, logger_name, ns),
        spec={"replicas": 1, "selector": {"matchLabels": selector},
              "template": {"metadata": {"labels": common.labels(ctx, **selector)},
                           "spec": pod_spec(found.service_accounts["serving"], [collector], volumes=[
                               {"name": "config", "configMap": {"name": configmap.metadata.apply(lambda m: m.name)}}])}},
        opts=ctx.opts(),
    )  # fmt: skip
    service = k8s.core.v1.Service(
        ctx.logical("request-log-service"), metadata=metadata(ctx, logger_name, ns),
        spec={"type": "ClusterIP", "selector": selector, "ports": [{"name": "http", "port": LOGGER_PORT, "targetPort": "http"}]},
        opts=ctx.opts(),
    )  # fmt: skip
    return pulumi.Output.all(service.metadata.apply(lambda m: m.name), ns).apply(
        lambda parts: f"http://{parts[0]}.{parts[1]}.svc:{LOGGER_PORT}"
    )
