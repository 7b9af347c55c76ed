"""Azure explainability: a feature-attribution drift monitor per model; what Azure ML lacks, said at validate.

- monitoring.explainability: an Azure ML schedule with a CreateMonitor action (a model monitor)
  holding one FeatureAttributionDrift signal: the feature importance of the endpoint's captured
  requests and responses (model_inputs and model_outputs, the data assets serving writes, read
  through the data-collector preprocessor over a rolling window) against the baseline (an MLTable
  at the baseline's bucket and prefix), on DRIFT_SCHEDULES[schedule] (UTC), on serverless Spark
  running as the model's group identity. Azure ML measures it as normalized discounted cumulative
  gain (1: the same ranking of features) and alerts below its threshold, so the threshold is
  1 - max_attribution_drift. Azure ML computes importance against the baseline's target column,
  named by monitoring.bias.label when the spec has one (validate warns when it has none).
- monitoring.bias: Azure ML model monitors have no bias signal (data drift, prediction drift, data
  quality, feature attribution drift and custom signals only): validate warns at its path.
- monitoring.model_quality: the model performance signal exists only in Azure ML's preview API
  versions (ModelPerformance), not in the stable API (2025-12-01) that pulumi-azure-native
  declares schedules with: validate warns at its path, and nothing is built.

Notifications: model monitors mail a breach to monitoring.notify.emails (the action group's
addresses) and cannot notify an action group: the webhook is not told (a gap, warned at validate).

Grants: none here. The group identity's one role assignment (governance_access.py) reads the
baseline and the model's captured requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import monitoring_rules as rules
from mlops_infra.backends.azure.monitoring import monitor_definition
from mlops_infra.backends.azure.schedules import ncrontab
from mlops_infra.backends.azure.serving import CAPTURE_VERSION, CaptureAssets
from mlops_infra.backends.azure.storage_workspace import SparkNetwork, WorkspaceRef
from mlops_infra.backends.azure.training import asset_name
from mlops_infra.naming import stable_hash
from mlops_infra.spec.models import Model
from mlops_infra.stages.base import finding
from mlops_infra.stages.explainability import ExplainabilityOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.schedule import DRIFT_SCHEDULES
from mlops_infra.stages.storage import StorageOutputs

if TYPE_CHECKING:
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

METRIC = "NormalizedDiscountedCumulativeGain"  # the one FeatureAttributionMetric of the API


def threshold(max_attribution_drift: float) -> float:
    """NDCG below which Azure ML alerts: 1 is an unchanged ranking of the features."""
    return round(1.0 - max_attribution_drift, 6)


def monitor_name(model: str) -> str:
    return f"{model.replace('-', '_')}_attribution"


def signal_name(model: str) -> str:
    """Ends in the model's hash, so no model's signal name contains another's (as drift's)."""
    return f"{monitor_name(model)}_drift_{stable_hash(model)}"


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    problems: list[Problem] = []
    webhook = bool(spec.monitoring.notify.webhook)
    for i, model in enumerate(spec.models):
        mon = model.monitoring
        if mon is None:
            continue
        base = ("models", i, "monitoring")
        if mon.bias is not None:
            problems.append(BACKEND.gap("models[].monitoring.bias", (*base, "bias")))
        if mon.model_quality is not None:
            problems.append(BACKEND.gap("models[].monitoring.model_quality", (*base, "model_quality")))
        if mon.explainability is None:
            continue
        path = (*base, "explainability")
        capture = model.serving.data_capture if model.serving else None
        if capture is not None and not capture.capture_responses:
            problems.append(
                finding(
                    path,
                    "Azure ML's feature attribution drift reads the endpoint's captured responses as well as its "
                    "requests, and this model captures requests only",
                    hint=f"set models[{i}].serving.data_capture.capture_responses: true",
                )
            )
        if mon.bias is None:
            problems.append(
                finding(
                    path,
                    "Azure ML computes feature importance against the baseline's target (label) column, and the spec "
                    "names none: Azure ML then has no target to attribute",
                    hint=f"name the label column with models[{i}].monitoring.bias.label (Azure reads it from there)",
                    severity="warning",
                )
            )
        problems.append(
            finding(
                (*path, "baseline"),
                "Azure ML model monitors read the attribution baseline as an MLTable: it must hold an MLTable file "
                "describing the baseline's data files, with the endpoint's input columns and the label column",
                hint="write one with the mltable Python package (mltable.from_delimited_files(...).save(...)) next "
                "to the baseline files",
                severity="warning",
            )
        )
        if webhook:
            problems.append(BACKEND.gap("models[].monitoring.explainability to notify.webhook", path))
    return problems


def build(ctx: StageContext) -> ExplainabilityOutputs:
    workspace = ctx.upstream.find(WorkspaceRef)
    monitors: dict[str, list[Any]] = {}
    if workspace is None:
        return ExplainabilityOutputs(monitors=monitors)
    for model in sorted(ctx.models(), key=lambda m: m.name):
        mon = model.monitoring
        if mon is None or mon.explainability is None:
            continue
        if model.serving is None or model.serving.data_capture is None:
            continue  # validate reports explainability without captured requests
        monitors[model.name] = [_attribution_monitor(ctx, model, workspace).id]
    return ExplainabilityOutputs(monitors=monitors)


def _rolling(model: Model, collection: str, window: str) -> ml.RollingInputDataArgs:
    from pulumi_azure_native import machinelearningservices as ml

    return ml.RollingInputDataArgs(
        input_data_type="Rolling",
        job_input_type="uri_folder",
        uri=f"azureml:{asset_name(model.name, collection)}:{CAPTURE_VERSION}",
        data_context=collection,
        preprocessing_component_id=rules.MDC_PREPROCESSOR,
        window_size=window,
        window_offset="P0D",
    )


def _attribution_monitor(ctx: StageContext, model: Model, workspace: WorkspaceRef) -> ml.Schedule:
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    assert model.monitoring is not None and model.monitoring.explainability is not None
    explain = model.monitoring.explainability
    label = model.monitoring.bias.label if model.monitoring.bias else None
    storage = ctx.upstream.of(StorageOutputs)
    identity = ctx.upstream.of(GovernanceOutputs).reader(model)
    captured = ctx.upstream.of(CaptureAssets).versions
    waits = [captured[key] for key in (f"{model.name}/model_inputs", f"{model.name}/model_outputs") if key in captured]
    spark = ctx.upstream.find(SparkNetwork)
    bucket = storage.buckets.get(explain.baseline.bucket)
    reference_uri = pulumi.Output.concat(bucket.uri, "/", explain.baseline.prefix) if bucket is not None else ""
    window = rules.LOOKBACK[explain.schedule]
    signal = ml.FeatureAttributionDriftMonitoringSignalArgs(
        signal_type="FeatureAttributionDrift",
        production_data=[_rolling(model, "model_inputs", window), _rolling(model, "model_outputs", window)],
        reference_data=ml.FixedInputDataArgs(
            input_data_type="Fixed", job_input_type="mltable", uri=reference_uri, data_context="training"
        ),
        feature_importance_settings=ml.FeatureImportanceSettingsArgs(mode="Enabled", target_column=label),
        metric_threshold=ml.FeatureAttributionMetricThresholdArgs(
            metric=METRIC, threshold=ml.MonitoringThresholdArgs(value=threshold(explain.max_attribution_drift))
        ),
        notification_types=["AmlNotification"],
    )
    emails = sorted(set(ctx.spec.monitoring.notify.emails))
    where = f"bucket {explain.baseline.bucket}" + (f" under {explain.baseline.prefix}" if explain.baseline.prefix else "")
    return ml.Schedule(
        ctx.logical("attribution", model.name),
        name=monitor_name(model.name),
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.SchedulePropertiesArgs(
            display_name=f"{model.name} feature attribution drift",
            description=f"mlops-infra: feature importance of {model.name}'s captured traffic against {where}",
            is_enabled=True,
            trigger=ml.CronTriggerArgs(
                trigger_type="Cron", expression=ncrontab(DRIFT_SCHEDULES[explain.schedule]), time_zone="UTC"
            ),
            action=ml.CreateMonitorActionArgs(
                action_type="CreateMonitor",
                monitor_definition=monitor_definition(identity, {signal_name(model.name): signal}, emails),
            ),
            tags=ctx.tags(),
        ),
        # The capture data assets are named, not referenced: wait for serving to declare them. A
        # private stack's Spark runs in the managed network, provisioned for it (storage_workspace.py).
        opts=ctx.opts(depends_on=[*waits, *(spark.provisioned if spark else [])]),
    )
