"""The neutral spec, apiVersion mlops-infra/v1, as strict pydantic models.

The spec states requirements (size classes, replicas, retention), never SKUs;
SKUs live only under clouds.<cloud>.overrides, whose models belong to each
backend (see backends/<cloud>/settings.py) and are attached in `spec_model()`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from mlops_infra.spec.common import SIZE_CLASSES, Compute, DataRef, SizeClass, Strict
from mlops_infra.spec.lifecycle import (
    AsyncInference,
    Batch,
    Bias,
    DataPrep,
    Evaluation,
    Explainability,
    FeatureStore,
    ModelQuality,
    Serverless,
    Shadow,
    Workspaces,
)
from mlops_infra.tagging import MAX_USER_TAGS, TagKey, TagValue
from mlops_infra.spec.types import (
    Cron,
    HintedValueError,
    Email,
    EnvironmentName,
    HttpsUrl,
    Image,
    JobDuration,
    PositivePercent,
    ProjectName,
    ResourceName,
    ShortDuration,
    TimeZone,
    TrafficPercent,
)


API_VERSION = "mlops-infra/v1"

class Bucket(Strict):
    name: ResourceName = Field(description="logical bucket name; feeds the physical name")
    versioning: bool = Field(True, description="keep object versions (required for audit and rollback)")
    archive_after_days: Optional[int] = Field(
        None, ge=1, le=36500, description="move objects to archive storage after N days"
    )
    expire_after_days: Optional[int] = Field(
        None, ge=1, le=36500, description="delete current objects after N days"
    )
    noncurrent_expire_after_days: Optional[int] = Field(
        90, ge=1, le=36500, description="delete superseded object versions after N days"
    )

    @model_validator(mode="after")
    def _lifecycle_order(self) -> "Bucket":
        if (
            self.archive_after_days is not None
            and self.expire_after_days is not None
            and self.expire_after_days <= self.archive_after_days
        ):
            raise HintedValueError(
                f"expire_after_days ({self.expire_after_days}) must be greater than "
                f"archive_after_days ({self.archive_after_days})",
                hint="objects are archived first, then deleted: raise expire_after_days or lower archive_after_days",
            )
        return self


class Artifacts(Strict):
    """The artifact bucket every stack gets (models, pipeline outputs, captured data)."""

    archive_after_days: Optional[int] = Field(
        None, ge=1, le=36500, description="move artifacts to archive storage after N days"
    )
    expire_after_days: Optional[int] = Field(None, ge=1, le=36500, description="delete artifacts after N days")
    noncurrent_expire_after_days: Optional[int] = Field(
        90, ge=1, le=36500, description="delete superseded artifact versions after N days"
    )


class Storage(Strict):
    buckets: list[Bucket] = Field(default_factory=list, max_length=100, description="data buckets")
    artifacts: Artifacts = Field(default_factory=Artifacts, description="the stack's artifact bucket")


class Tracking(Strict):
    enabled: bool = Field(True, description="experiment tracking (managed MLflow / Vertex metadata)")
    size: Literal["small", "medium", "large"] = Field("small", description="tracking server size")


class Training(Strict):
    image: Image = Field(description="training container image with an explicit tag or digest")
    compute: Compute = Field(description="size class or explicit requirements")
    spot: bool = Field(False, description="use spot/preemptible capacity (checkpoints required)")
    max_runtime: JobDuration = Field(
        86400, description="stop the job after this long"
    )
    max_wait: Optional[JobDuration] = Field(
        None, description="spot only: total time including waiting for capacity"
    )
    hyperparameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, max_length=100, description="passed to the training container"
    )
    environment: dict[str, str] = Field(default_factory=dict, max_length=100, description="container environment")
    inputs: list[ResourceName | DataRef] = Field(
        default_factory=list, max_length=20, description="bucket names or {bucket, prefix} the job reads"
    )
    run_on_deploy: bool = Field(False, description="also start one training run when deploying")
    evaluation: Optional[Evaluation] = Field(
        None, description="an evaluation gate: register (or approve) a new version only when it passes"
    )

    @model_validator(mode="after")
    def _spot(self) -> "Training":
        if self.max_wait is not None and not self.spot:
            raise HintedValueError("max_wait only applies to spot training", hint="set spot: true, or remove max_wait")
        if self.max_wait is not None and self.max_wait < self.max_runtime:
            raise HintedValueError(
                "max_wait must be at least max_runtime", hint="max_wait counts the run plus the wait for spot capacity"
            )
        return self

    @property
    def input_refs(self) -> list[DataRef]:
        return [i if isinstance(i, DataRef) else DataRef(bucket=i) for i in self.inputs]


class Registry(Strict):
    approval: Literal["manual", "automatic"] = Field(
        "manual", description="manual: new versions wait for approval before serving"
    )


class Autoscaling(Strict):
    min_replicas: int = Field(1, ge=0, le=1000, description="replicas kept running")
    max_replicas: int = Field(1, ge=1, le=1000, description="upper bound for scale-out")
    target_requests_per_replica: Optional[int] = Field(
        None, ge=1, le=100000, description="scale to keep this many requests per minute per replica"
    )
    target_cpu_percent: Optional[PositivePercent] = Field(None, description="or scale on CPU utilisation")
    scale_in_cooldown: ShortDuration = Field(300, description="wait after scaling in")
    scale_out_cooldown: ShortDuration = Field(60, description="wait after scaling out")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise HintedValueError(
                f"min_replicas ({self.min_replicas}) is greater than max_replicas ({self.max_replicas})",
                hint="raise max_replicas or lower min_replicas",
            )
        if self.target_requests_per_replica and self.target_cpu_percent:
            raise HintedValueError(
                "choose one target: target_requests_per_replica or target_cpu_percent", hint="remove one of them"
            )
        return self


class DataCapture(Strict):
    sampling_percent: PositivePercent = Field(100, description="share of requests captured")
    capture_responses: bool = Field(True, description="capture responses as well as requests")


class Rollout(Strict):
    mode: Literal["all-at-once", "canary", "linear"] = Field("all-at-once", description="how new versions go live")
    canary_percent: Optional[TrafficPercent] = Field(
        None, description="canary: traffic share of the first step (whole percent)"
    )
    step_percent: Optional[TrafficPercent] = Field(None, description="linear: traffic share added per step (whole percent)")
    wait: ShortDuration = Field(600, description="bake time between steps")
    rollback_on_alarms: bool = Field(True, description="roll back when the endpoint's alarms fire")

    @model_validator(mode="after")
    def _mode_fields(self) -> "Rollout":
        if self.mode == "canary" and self.canary_percent is None:
            raise HintedValueError("canary rollout needs canary_percent", hint="add canary_percent: 10, say")
        if self.mode == "linear" and self.step_percent is None:
            raise HintedValueError("linear rollout needs step_percent", hint="add step_percent: 20, say")
        if self.mode != "canary" and self.canary_percent is not None:
            raise HintedValueError("canary_percent only applies to mode: canary", hint="remove it, or set mode: canary")
        if self.mode != "linear" and self.step_percent is not None:
            raise HintedValueError("step_percent only applies to mode: linear", hint="remove it, or set mode: linear")
        return self


class Serving(Strict):
    image: Image = Field(description="serving container image with an explicit tag or digest")
    model_uri: Optional[str] = Field(
        None, max_length=1024, description="explicit model artifact URI; default: the training output"
    )
    compute: Compute = Field(description="size class or explicit requirements per replica")
    environment: dict[str, str] = Field(default_factory=dict, max_length=100, description="container environment")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="replica bounds and target")
    data_capture: Optional[DataCapture] = Field(None, description="request/response capture for monitoring")
    rollout: Rollout = Field(default_factory=Rollout, description="how a new version replaces the old")
    mode: Literal["realtime", "serverless", "async"] = Field(
        "realtime", description="realtime instances, serverless invocations, or asynchronous requests"
    )
    serverless: Optional[Serverless] = Field(None, description="mode: serverless: memory and concurrency")
    async_inference: Optional[AsyncInference] = Field(
        None, alias="async", description="mode: async: where responses go, and concurrency"
    )
    shadow: Optional[Shadow] = Field(None, description="a challenger that gets a copy of some traffic")
    auth: Literal["iam", "key"] = Field("iam", description="how clients authenticate: cloud identity, or a key")
    mode_elsewhere: Literal["error", "realtime"] = Field(
        "error",
        description="on a cloud without this mode: refuse the spec (error), or serve realtime there with the "
        "autoscaling given here (validate warns)",
    )

    @model_validator(mode="after")
    def _mode_options(self) -> "Serving":
        if self.serverless is not None and self.mode != "serverless":
            raise HintedValueError("serverless: options apply to mode: serverless only", hint="set mode: serverless")
        if self.async_inference is not None and self.mode != "async":
            raise HintedValueError("async: options apply to mode: async only", hint="set mode: async")
        return self

    @model_validator(mode="after")
    def _rollout_capacity(self) -> "Serving":
        if self.rollout.mode != "all-at-once" and self.autoscaling.max_replicas < 2:
            raise HintedValueError(
                f"a {self.rollout.mode} rollout needs max_replicas of at least 2 (traffic is split between replicas)",
                hint="set autoscaling: {max_replicas: 2} or more, or rollout: {mode: all-at-once}",
            )
        return self


class Drift(Strict):
    baseline: DataRef | ResourceName = Field(
        description="bucket (or {bucket, prefix}) holding the baseline data"
    )
    schedule: Literal["hourly", "daily", "weekly"] = Field("daily", description="how often drift is computed")

    @property
    def baseline_ref(self) -> DataRef:
        return self.baseline if isinstance(self.baseline, DataRef) else DataRef(bucket=self.baseline)


class ModelMonitoring(Strict):
    latency_p99_ms: Optional[int] = Field(None, ge=1, le=600000, description="alarm above this p99 latency")
    error_rate_percent: Optional[PositivePercent] = Field(None, description="alarm above this share of errors")
    min_invocations_per_hour: Optional[int] = Field(None, ge=1, description="alarm when traffic drops below")
    drift: Optional[Drift] = Field(None, description="data drift against a baseline")
    explainability: Optional[Explainability] = Field(None, description="feature-attribution drift")
    bias: Optional[Bias] = Field(None, description="bias metrics on a sensitive feature")
    model_quality: Optional[ModelQuality] = Field(None, description="quality against ground truth")


class Retraining(Strict):
    schedule: Optional[Cron] = Field(None, description="5-field cron, e.g. '0 3 * * 1'")
    timezone: TimeZone = Field("UTC", description="IANA time zone of the schedule")
    on_new_data: Optional[DataRef | ResourceName] = Field(
        None, description="retrain when objects arrive in this bucket (or {bucket, prefix})"
    )
    on_drift: bool = Field(False, description="retrain when the drift alarm fires")

    @model_validator(mode="after")
    def _some_trigger(self) -> "Retraining":
        if not (self.schedule or self.on_new_data or self.on_drift):
            raise HintedValueError(
                "give at least one trigger: schedule, on_new_data or on_drift",
                hint="e.g. schedule: '0 3 * * 1' (Mondays 03:00), on_new_data: <bucket> or on_drift: true",
            )
        return self

    @property
    def new_data_ref(self) -> DataRef | None:
        if self.on_new_data is None or isinstance(self.on_new_data, DataRef):
            return self.on_new_data
        return DataRef(bucket=self.on_new_data)


class Model(Strict):
    name: ResourceName = Field(description="model name; feeds physical names")
    training: Optional[Training] = Field(None, description="repeatable training run")
    registry: Optional[Registry] = Field(None, description="versioned model registry")
    serving: Optional[Serving] = Field(None, description="managed online endpoint")
    monitoring: Optional[ModelMonitoring] = Field(None, description="endpoint alarms and drift")
    retraining: Optional[Retraining] = Field(None, description="when to retrain automatically")
    batch: Optional[Batch] = Field(None, description="scheduled batch scoring")
    data_prep: Optional[DataPrep] = Field(None, description="a preparation job that writes what training reads")
    features: list[ResourceName] = Field(
        default_factory=list, max_length=50, description="feature groups (feature_store.groups) the model reads"
    )
    group: Optional[ResourceName] = Field(
        None,
        description="models of one group share the identity that trains them and reads their data, and with "
        "split.enabled one model stack (default: the model's own name)",
    )


class Notify(Strict):
    emails: list[Email] = Field(default_factory=list, max_length=50, description="alert recipients")
    webhook: Optional[HttpsUrl] = Field(None, description="https endpoint that receives alerts")


class Monitoring(Strict):
    notify: Notify = Field(default_factory=Notify, description="where alerts go")
    dashboard: bool = Field(True, description="one dashboard per stack, a row per model")


class Governance(Strict):
    encryption: Literal["customer-managed"] = Field(
        "customer-managed", description="stateful resources use a key this stack owns"
    )
    key_rotation_days: int = Field(365, ge=90, le=2560, description="automatic key rotation period")
    audit_logs: bool = Field(True, description="record data access to buckets and key use")
    network: Literal["public", "private"] = Field(
        "public", description="private: data services refuse public network access where the cloud allows"
    )
    singletons: Literal["owned", "external"] = Field(
        "owned",
        description="objects a cloud has once per account, project or subscription (e.g. GCP audit configs, "
        "Vertex AI's `default` metadata store): `owned` makes and keeps them in this stack; `external` leaves "
        "them to the one stack that owns them (when several stacks share an account, exactly one owns them; "
        "validate checks the specs beside this one)",
    )


class Split(Strict):
    enabled: bool = Field(
        False, description="deploy as a shared stack plus model stacks of bounded size (one per model group)"
    )
    max_models_per_stack: int = Field(20, ge=1, le=200, description="the most models one model stack may hold")


class Estimate(Strict):
    """What `mlops-infra cost` assumes about usage a plan cannot show; it changes no resource."""

    storage_gb: int = Field(
        100, ge=0, le=100_000_000, description="GB assumed stored in each bucket (data buckets and artifacts)"
    )
    extra_training_runs_per_month: int = Field(
        0, ge=0, le=10_000, description="training runs per model and month beyond its schedule (new data, drift)"
    )


class SpecBase(Strict):
    api_version: Literal["mlops-infra/v1"] = Field(alias="apiVersion", description="spec format version")
    project: ProjectName = Field(description="project slug (2-24); feeds every physical name")
    environment: EnvironmentName = Field(description="environment slug (2-16), e.g. dev")
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=MAX_USER_TAGS, description="tags/labels valid on every cloud"
    )
    storage: Storage = Field(default_factory=Storage, description="data and artifact buckets")
    tracking: Optional[Tracking] = Field(None, description="experiment tracking")
    models: list[Model] = Field(default_factory=list, max_length=5000, description="models and their lifecycle")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="stack-wide alerting")
    governance: Governance = Field(default_factory=Governance, description="keys, identities, audit")
    split: Split = Field(default_factory=Split, description="several Pulumi stacks instead of one")
    estimate: Estimate = Field(default_factory=Estimate, description="usage assumptions of `mlops-infra cost`")
    feature_store: Optional[FeatureStore] = Field(None, description="feature groups for training and serving")
    workspaces: Optional[Workspaces] = Field(None, description="managed notebooks in the platform's network")

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)

    def model(self, name: str) -> Model:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    def settings_for(self, cloud: str) -> Any:
        # `clouds` is added by spec_model() (create_model), one field per discovered backend.
        return getattr(self.clouds, cloud)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def spec_model() -> type[SpecBase]:
    """The full Spec model: SpecBase plus one `clouds.<name>` block per discovered backend."""
    from mlops_infra.backends import registry

    backends = registry()
    fields: dict[str, Any] = {
        name: (Optional[b.settings_model], Field(None, description=f"{b.display_name} target settings"))
        for name, b in backends.items()
    }
    clouds = create_model("Clouds", __config__=ConfigDict(extra="forbid", strict=True, frozen=True), **fields)
    cloud_names = tuple(sorted(backends))
    return create_model(
        "Spec",
        __base__=SpecBase,
        # A Literal of the discovered backends' names, built at run time: no static type can say it.
        cloud=(
            Optional[Literal[cloud_names]],  # type: ignore[arg-type]
            Field(None, description="default target cloud"),
        ),
        clouds=(clouds, Field(default_factory=clouds, description="per-cloud target settings and overrides")),
    )
