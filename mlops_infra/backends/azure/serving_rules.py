"""Facts and pure rules of Azure ML managed online endpoints (no SDK: validate uses them too).

serving.py builds the resources from these and checks the spec against them. Sources:
- traffic: OnlineEndpointProperties.traffic is a map of deployment name to a whole percentage
  that sums to 100 (Azure ML REST API, online endpoints, 2025-12-01);
- autoscale: Azure Monitor autoscale settings (Microsoft.Insights/autoscalesettings) on the
  deployment; cool-downs are ISO 8601 durations between 1 minute and 1 week, metric windows at
  least 5 minutes; RequestsPerMinute is an endpoint metric split by the "deployment" dimension,
  CpuUtilizationPercentage a deployment metric (Azure Monitor supported metrics for
  Microsoft.MachineLearningServices/workspaces/onlineEndpoints[/deployments]);
- data collection: collections model_inputs / model_outputs (custom logging with the
  azureml-ai-monitoring Collector in the serving container), written to a uri_folder data asset
  (learn.microsoft.com/azure/machine-learning/how-to-collect-production-data);
- scoring URL: https://<endpoint>.<location>.inference.ml.azure.com/score (Azure public cloud).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypedDict

from mlops_infra.stages.storage import CAPTURE_PREFIX, capture_prefix  # noqa: F401 - re-exported to serving
from mlops_infra.stages.training import output_prefix

# The serving container contract (the SageMaker convention, so one image serves on every cloud):
# GET /ping answers 200 when healthy, POST /invocations scores, both on port 8080; the model
# artifact is mounted read-only at /opt/ml/model.
SERVING_PORT = 8080
HEALTH_PATH = "/ping"
SCORING_PATH = "/invocations"
MODEL_MOUNT_PATH = "/opt/ml/model"

SCORING_HOST = "inference.ml.azure.com"  # Azure public cloud


class Probe(TypedDict):
    """Liveness and readiness probe settings (the keyword arguments of ProbeSettingsArgs)."""

    initial_delay: str
    period: str
    timeout: str
    success_threshold: int
    failure_threshold: int


PROBE: Probe = {
    "initial_delay": "PT10S", "period": "PT10S", "timeout": "PT2S", "success_threshold": 1, "failure_threshold": 30
}
REQUEST_TIMEOUT = "PT5S"  # Azure's default scoring timeout, made explicit

# Autoscale (Azure Monitor): rules look at 5-minute averages of 1-minute samples. Azure has no
# target tracking, so a target becomes two rules: scale out above it, scale in below
# SCALE_IN_RATIO of it (the gap keeps the two rules from undoing each other: Azure's advice is a
# clear margin between the thresholds, "Best practices for autoscale").
METRIC_GRAIN = "PT1M"
METRIC_WINDOW = "PT5M"
SCALE_IN_RATIO = 0.6
DEFAULT_CPU_PERCENT = 70  # when the spec names no target
MIN_COOLDOWN_SECONDS = 60  # Azure Monitor refuses cool-downs below one minute
REQUESTS_METRIC = "RequestsPerMinute"  # endpoint metric, dimension "deployment"
CPU_METRIC = "CpuUtilizationPercentage"  # deployment metric
# Microsoft.Insights resources (autoscale settings among them) take at most 15 tags
# (REST API autoscalesettings/createorupdate, "tags").
MAX_AUTOSCALE_TAGS = 15

# Data collector: one collection per captured side; rolled per hour under the data asset path.
INPUTS, OUTPUTS = "model_inputs", "model_outputs"
ROLLING_RATE = "Hour"

# Where a model artifact may come from: schemes Azure ML reads model files from.
AZURE_SCHEMES = ("https", "azureml", "wasbs", "abfss")
_BLOB_URL = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<container>[^/]+)/?(?P<path>.*)$")


def models_prefix() -> str:
    """The artifact-bucket prefix every model's training output lies under ('models/')."""
    return output_prefix("x")[: -len("x/")]


def collections(data_capture: Any) -> list[str]:
    """The data collector's collections for a DataCapture block (none without one)."""
    if data_capture is None:
        return []
    return [INPUTS, OUTPUTS] if data_capture.capture_responses else [INPUTS]


def traffic_percent(rollout: Any) -> int:
    """The new deployment's share of traffic while the previous one still serves the rest.

    all-at-once: 100. canary: canary_percent. linear: step_percent (Azure cannot step it up by
    itself: serving.check reports linear as an error; this is what a forced plan would hold).
    """
    if rollout.mode == "canary":
        return int(rollout.canary_percent)
    if rollout.mode == "linear":
        return int(rollout.step_percent)
    return 100


def iso_duration(seconds: int) -> str:
    """Seconds as an ISO 8601 duration ('PT5M', 'PT1H30M', 'PT45S'); at least one minute.

    Azure Monitor rejects cool-downs below a minute: shorter ones become PT1M (serving.check warns).
    """
    seconds = max(int(seconds), MIN_COOLDOWN_SECONDS)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs:
        text += f"{secs}S"
    return text


@dataclass(frozen=True)
class ScaleRule:
    metric: str  # REQUESTS_METRIC or CPU_METRIC
    on_endpoint: bool  # the metric belongs to the endpoint (split by deployment), else to the deployment
    per_instance: bool  # divide the metric by the deployment's instance count
    scale_out_above: float
    scale_in_below: float


def scale_rule(autoscaling: Any) -> ScaleRule:
    """The metric and thresholds for a spec's Autoscaling block."""
    if autoscaling.target_requests_per_replica:
        target = float(autoscaling.target_requests_per_replica)
        return ScaleRule(REQUESTS_METRIC, True, True, target, round(target * SCALE_IN_RATIO, 2))
    target = float(autoscaling.target_cpu_percent or DEFAULT_CPU_PERCENT)
    return ScaleRule(CPU_METRIC, False, False, target, round(target * SCALE_IN_RATIO, 2))


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from.

    kind: "artifacts" (the stack's artifact container: `path` inside it, readable by the serving
    identity only under models_prefix()), "external" (`uri` as given; nothing is granted on it) or
    "unsupported" (a scheme Azure ML cannot read, e.g. s3:// or gs://).
    """

    kind: str
    path: str = ""
    uri: str = ""


def model_source(model_uri: str | None, *, account: str, container: str, model: str) -> ModelSource:
    """The artifact location of a served model: the training output unless model_uri is given."""
    if not model_uri:
        return ModelSource("artifacts", path=output_prefix(model))
    match = _BLOB_URL.match(model_uri)
    if match and match["account"] == account and match["container"] == container:
        return ModelSource("artifacts", path=match["path"])
    scheme = model_uri.split("://", 1)[0].lower() if "://" in model_uri else ""
    if scheme not in AZURE_SCHEMES:
        return ModelSource("unsupported", uri=model_uri)
    return ModelSource("external", uri=model_uri)


def scoring_url(endpoint: str, location: str) -> str:
    return f"https://{endpoint}.{location}.{SCORING_HOST}/score"
