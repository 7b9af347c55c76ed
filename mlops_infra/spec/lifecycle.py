"""The spec's lifecycle parts beyond the core stages: batch scoring, serving modes, features,
data preparation, workspaces, explainability and the evaluation gate.

Each states what the platform team needs; each cloud's backend maps it to a managed service or
says, at validate, why it cannot.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from mlops_infra.spec.common import Compute, DataRef, Strict
from mlops_infra.spec.types import (
    Cron,
    HintedValueError,
    Image,
    JobDuration,
    ResourceName,
    ShortDuration,
    TimeZone,
    TrafficPercent,
)


# --- batch scoring (stage `batch`) -------------------------------------------------------------


class Batch(Strict):
    """Scheduled (or new-data) batch scoring with the model's registered or given version."""

    input: DataRef = Field(description="what to score: {bucket, prefix}")
    output: DataRef = Field(description="where predictions go: {bucket, prefix}, not inside input")
    schedule: Optional[Cron] = Field(None, description="5-field cron of the scoring runs")
    timezone: TimeZone = Field("UTC", description="IANA time zone of the schedule")
    on_new_data: bool = Field(False, description="also score when objects arrive under input")
    compute: Compute = Field(description="size class or explicit requirements per instance")
    instance_count: int = Field(1, ge=1, le=100, description="instances per run")
    max_runtime: JobDuration = Field(86400, description="stop a run after this long")
    model_uri: Optional[str] = Field(
        None, max_length=1024, description="score with this artifact; default: the registry's latest approved version"
    )

    @model_validator(mode="after")
    def _trigger_and_places(self) -> "Batch":
        if not (self.schedule or self.on_new_data):
            raise HintedValueError(
                "batch scoring needs a trigger: schedule or on_new_data",
                hint="e.g. schedule: '0 2 * * *' (daily at 02:00), or on_new_data: true",
            )
        if self.input.bucket == self.output.bucket and (
            self.output.prefix.startswith(self.input.prefix) or self.input.prefix.startswith(self.output.prefix)
        ):
            raise HintedValueError(
                "batch output overlaps its input: each run would score its own predictions",
                hint="write predictions to another prefix or bucket",
            )
        return self


# --- serving modes (stage `serving`) ------------------------------------------------------------


class Serverless(Strict):
    memory_gib: int = Field(2, ge=1, le=64, description="memory per invocation environment")
    max_concurrency: int = Field(10, ge=1, le=1000, description="concurrent invocations at most")


class AsyncInference(Strict):
    output: Optional[DataRef] = Field(None, description="where responses go (default: the artifact bucket)")
    max_concurrent_per_instance: int = Field(
        4, ge=1, le=1000, description="requests one instance handles at once"
    )


class Shadow(Strict):
    """A challenger that gets a copy of some traffic; its responses are captured, never returned."""

    image: Optional[Image] = Field(None, description="challenger image (default: the serving image)")
    model_uri: Optional[str] = Field(None, max_length=1024, description="challenger artifact")
    traffic_percent: TrafficPercent = Field(description="share of requests copied to the challenger (whole percent)")

    @model_validator(mode="after")
    def _something_to_compare(self) -> "Shadow":
        if self.image is None and self.model_uri is None:
            raise HintedValueError(
                "a shadow needs a challenger: an image, a model_uri, or both",
                hint="e.g. shadow: {image: ghcr.io/acme/serve:1.5.0, traffic_percent: 10}",
            )
        return self


# --- features (stage `features`) -----------------------------------------------------------------


class Feature(Strict):
    name: ResourceName = Field(description="feature name")
    type: Literal["string", "integer", "float", "boolean", "timestamp"] = Field(description="value type")


class FeatureGroup(Strict):
    name: ResourceName = Field(description="feature group (feature view, feature set) name")
    record_id: ResourceName = Field(description="the feature that identifies a record (an entity key)")
    event_time: ResourceName = Field(description="the timestamp feature of each record")
    features: list[Feature] = Field(min_length=2, max_length=500, description="the group's features")
    online: bool = Field(False, description="also keep an online store for serving-time lookups")
    source: Optional[DataRef] = Field(None, description="where the offline store's data lands or comes from")

    @model_validator(mode="after")
    def _keys_are_features(self) -> "FeatureGroup":
        names = [f.name for f in self.features]
        missing = [k for k in (self.record_id, self.event_time) if k not in names]
        if missing:
            raise HintedValueError(
                f"{', '.join(repr(m) for m in missing)} must be one of the group's features",
                hint="list the record id and the event time under features:",
            )
        return self


class FeatureStore(Strict):
    groups: list[FeatureGroup] = Field(min_length=1, max_length=200, description="feature groups")


# --- data preparation (stage `data_prep`) --------------------------------------------------------


class DataPrep(Strict):
    """A containerised preparation job that writes what training reads."""

    image: Image = Field(description="preparation container image with an explicit tag or digest")
    compute: Compute = Field(description="size class or explicit requirements")
    inputs: list[DataRef] = Field(min_length=1, max_length=20, description="what the job reads")
    output: DataRef = Field(description="where it writes; training reads this prefix")
    schedule: Optional[Cron] = Field(None, description="5-field cron of the runs")
    timezone: TimeZone = Field("UTC", description="IANA time zone of the schedule")
    on_new_data: bool = Field(False, description="also run when objects arrive under the first input")
    max_runtime: JobDuration = Field(14400, description="stop a run after this long")
    environment: dict[str, str] = Field(default_factory=dict, max_length=100, description="container environment")

    @model_validator(mode="after")
    def _trigger(self) -> "DataPrep":
        if not (self.schedule or self.on_new_data):
            raise HintedValueError(
                "data preparation needs a trigger: schedule or on_new_data",
                hint="e.g. schedule: '0 1 * * *' (daily at 01:00, before training), or on_new_data: true",
            )
        return self


# --- workspaces (stage `workspaces`) --------------------------------------------------------------


class WorkspaceUser(Strict):
    name: ResourceName = Field(description="user or team name: one workspace each")
    size: Optional[Literal["cpu-small", "cpu-medium", "cpu-large", "gpu-small"]] = Field(
        None, description="override the default size"
    )


class Workspaces(Strict):
    users: list[WorkspaceUser] = Field(min_length=1, max_length=500, description="one managed notebook each")
    size: Literal["cpu-small", "cpu-medium", "cpu-large", "gpu-small"] = Field(
        "cpu-small", description="default notebook size"
    )
    idle_shutdown: ShortDuration = Field(3600, description="stop a notebook idle this long")


# --- explainability, bias, model quality (stage `explainability`) -------------------------------


class Explainability(Strict):
    schedule: Literal["hourly", "daily", "weekly"] = Field("daily", description="how often attributions are computed")
    baseline: DataRef = Field(description="data whose feature attributions are the reference")
    max_attribution_drift: float = Field(0.1, gt=0, le=1, description="alert above this attribution drift")


class Bias(Strict):
    facet: ResourceName = Field(description="the sensitive feature to compare groups on")
    label: ResourceName = Field(description="the label (or prediction) column")
    baseline: DataRef = Field(description="data the bias metrics are computed against")
    schedule: Literal["hourly", "daily", "weekly"] = Field("daily", description="how often bias is checked")


class ModelQuality(Strict):
    ground_truth: DataRef = Field(description="where the true labels land, joined to captured requests")
    problem_type: Literal["binary", "multiclass", "regression"] = Field(description="what the model predicts")
    metric: str = Field(min_length=1, max_length=64, description="e.g. accuracy, f1, auc, rmse")
    threshold: float = Field(description="alert when the metric crosses this")
    schedule: Literal["hourly", "daily", "weekly"] = Field("daily", description="how often quality is computed")


# --- the evaluation gate (stage `training`) -------------------------------------------------------


class Evaluation(Strict):
    """Runs after training; the new version is registered (or approved) only when it passes."""

    image: Optional[Image] = Field(None, description="evaluation image (default: the training image)")
    command: list[str] = Field(
        default_factory=list, max_length=20, description="entry point and arguments (default: the image's)"
    )
    metric: str = Field(min_length=1, max_length=64, description="the metric the container writes")
    threshold: float = Field(description="the value the metric must reach")
    direction: Literal["maximize", "minimize"] = Field("maximize", description="which way is better")
    compare_to_approved: bool = Field(False, description="also beat the currently approved version")
