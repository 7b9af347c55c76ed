"""Vertex AI serving facts as pure functions: where a served model comes from, its autoscaling
targets, its rollout steps. Shared by serving.py (build and check) and grants.py; imports no cloud SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.stages.training import output_prefix

# Autoscaling metrics of online prediction (aiplatform v1 AutoscalingMetricSpec.metricName;
# cloud.google.com/vertex-ai/docs/predictions/autoscaling): CPU utilisation in percent per
# replica, and request count in requests per minute per replica, the unit of the neutral
# target_requests_per_replica. Without a target Vertex AI keeps CPU at 60%.
CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
REQUEST_METRIC = "aiplatform.googleapis.com/prediction/online/request_count"
# Vertex AI resizes every 15 s from the previous 5 minutes (scale-out within 15 s, scale-in only
# once the highest target of the 5-minute window is lower): fixed, not configurable.
SCALE_OUT_SECONDS = 15
SCALE_IN_WINDOW_SECONDS = 300
# The registry alias a deployment follows: the approved version (automatic approval moves it on
# every upload, a person on manual approval: backends/gcp/training.py APPROVAL_ALIASES).
SERVING_ALIAS = "approved"
CAPTURE_TABLE = "request_response_logging"

UPLOAD, REGISTRY, MISSING, UNSUPPORTED = "upload", "registry", "missing", "unsupported"


@dataclass(frozen=True)
class ModelSource:
    """Where a served model's artifact comes from.

    kind: upload (serving.model_uri, uploaded as it is), registry (the training workflow's
    registry model, at the version SERVING_ALIAS names), missing (nothing to deploy yet),
    unsupported (a URI Vertex AI cannot read). `path`: the object prefix in the stack's artifact
    bucket the serving identity reads (None when the artifact is elsewhere); `uri`: an absolute
    gs:// URI, or None when it is `path` in the artifact bucket; `bucket`: a foreign bucket."""

    kind: str
    uri: str | None = None
    path: str | None = None
    bucket: str | None = None


def artifact_source(uri: str, *, artifacts_bucket: str) -> ModelSource:
    """Where an explicit model_uri points (serving's or batch's): gs://, or a path in the artifact bucket."""
    if uri.startswith("gs://"):
        bucket, _, path = uri[len("gs://"):].partition("/")
        if bucket == artifacts_bucket:
            return ModelSource(UPLOAD, uri=uri, path=path)
        return ModelSource(UPLOAD, uri=uri, bucket=bucket)
    if "://" in uri:
        return ModelSource(UNSUPPORTED, uri=uri)
    # No scheme: a path in the stack's artifact bucket.
    return ModelSource(UPLOAD, path=uri.lstrip("/"))


def model_source(model: Any, *, artifacts_bucket: str) -> ModelSource:
    uri = model.serving.model_uri
    if uri:
        return artifact_source(uri, artifacts_bucket=artifacts_bucket)
    if model.training is not None and model.registry is not None:
        # Versions of a trained model live under its output prefix (models/<model>/<run>/model/).
        return ModelSource(REGISTRY, path=output_prefix(model.name))
    return ModelSource(MISSING)


def autoscaling_metric_specs(autoscaling: Any) -> list[dict[str, Any]]:
    """DedicatedResources.autoscalingMetricSpecs for the neutral target (none: Vertex's default)."""
    if autoscaling.target_requests_per_replica:
        return [{"metricName": REQUEST_METRIC, "target": int(autoscaling.target_requests_per_replica)}]
    if autoscaling.target_cpu_percent:
        return [{"metricName": CPU_METRIC, "target": int(autoscaling.target_cpu_percent)}]
    return []


def rollout_props(rollout: Any) -> dict[str, Any]:
    """The rollout as the DeployedModel provider reads it (whole percentages)."""
    props: dict[str, Any] = {"mode": rollout.mode, "waitSeconds": int(rollout.wait)}
    if rollout.mode == "canary":
        props["canaryPercent"] = int(rollout.canary_percent)
    elif rollout.mode == "linear":
        props["stepPercent"] = int(rollout.step_percent)
    return props


def rollout_duration(rollout: Any) -> int:
    """Seconds `up` spends baking a new version on an endpoint that already serves traffic."""
    if rollout.mode == "canary":
        return int(rollout.wait) if rollout.canary_percent < 100 else 0
    if rollout.mode == "linear":
        steps = len(range(int(rollout.step_percent), 100, int(rollout.step_percent)))
        return steps * int(rollout.wait)
    return 0


def whole_percent(value: float | None) -> bool:
    return value is None or float(value).is_integer()
