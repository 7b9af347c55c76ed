"""GCP monitoring: notification channels, endpoint alert policies, a dashboard, drift monitoring.

Per stack:
- a Cloud Monitoring notification channel per address in monitoring.notify.emails (type email)
  and one for monitoring.notify.webhook (type webhook_tokenauth: a token, if any, rides in the
  URL). Cloud Monitoring has no channel that groups others, so "the stack's channel" is this set:
  every policy notifies all of them, and the stage output lists their names.
- with dashboard: true and served models, one dashboard (templates/gcp/dashboard.json.j2): a row
  per served model with its endpoint's predictions, p99 latency, errors and replicas. It is the
  one resource that lists every model: adding a model updates it (and creates the rest). Endpoint
  ids are chosen by the namer, so it lists endpoints of other stacks of a split spec too.
- with drift monitoring: the stack's custom metric descriptor (automation.drift_metric_type).
  Each model's drift workflow runs as its group's identity, which the storage stage already lets
  read the model's baseline; what it needs on the project (BigQuery jobs.create, the metric's
  timeSeries.create, its call logs: none has a narrower resource) is its group's worker role
  (governance.py), one grant per group.
Per model whose training workflow has an evaluation gate, and per model with data preparation,
an alert policy on that workflow's error log entries (a failed run or gate), notifying the stack's
channels: this stage is the first to have them (training and data_prep are built before it).
All of these are in the shared stack of a split spec; model stacks get the channel names and the
drift metric type from it (ctx.shared) and hold the per-model resources below.

Per served model with thresholds, one alert policy per threshold on its Vertex AI endpoint's
metrics (automation.endpoint_filter): p99 of prediction_latencies (milliseconds, as the spec's
latency_p99_ms) over 5 minutes; error_count / prediction_count over 5 minutes against
error_rate_percent / 100; predictions per hour below min_invocations_per_hour (no traffic at
all counts as below). Vertex AI has no automatic rollback on alarms (serving.check() says so):
these policies notify, and the stage output lists them per model.

Per model with drift (an endpoint that captures requests):
- an external BigQuery table over the baseline objects in the model's capture dataset (the
  serving stage's), dataViewer on that dataset for the model's group identity;
- a workflow (templates/gcp/drift.yaml.j2 + drift.sql.j2) that computes the drift score (largest
  PSI over the features, captured requests of the last period against the baseline) and writes it
  to the custom metric, running as the model's group identity, encrypted with the key;
- a Cloud Scheduler job on DRIFT_SCHEDULES[schedule] (UTC) that starts it with an OAuth token of
  the automation identity (the one that may start workflows: governance.py);
- an alert policy on the model's drift series above automation.DRIFT_THRESHOLD, notifying the
  stack's channels; with retraining.on_drift also a Pub/Sub topic (CMEK), publish rights on it
  for the Cloud Monitoring notification agent, and a pubsub channel the policy notifies only when
  an incident opens (the retraining stage's Eventarc trigger starts training from that topic).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import automation as auto
from mlops_infra.backends.gcp import naming
from mlops_infra.backends.gcp.naming import (
    capture_dataset_id,
    drift_workflow_name,
    scheduler_job_name,
    topic_id,
    workflow_name,
)
from mlops_infra.backends.gcp.scheduling import workflow_job
from mlops_infra.backends.gcp.serving_endpoints import CAPTURE_TABLE
from mlops_infra.backends.gcp.shared import CaptureDatasets, DriftTopics, ProjectServices, WorkerGrants
from mlops_infra.layout import group_of
from mlops_infra.spec.models import Model
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.templating import render, render_json

if TYPE_CHECKING:
    import pulumi
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext

DASHBOARD_TEMPLATE = "gcp/dashboard.json.j2"
DRIFT_TEMPLATE = "gcp/drift.yaml.j2"
DRIFT_QUERY_TEMPLATE = "gcp/drift.sql.j2"
DASHBOARD_COLUMNS = 48  # mosaicLayout's grid width
TILE_WIDTH, TILE_HEIGHT = 12, 16  # four charts per row
DATA_VIEWER = "roles/bigquery.dataViewer"  # read the capture table and the baseline table
PUBLISHER = "roles/pubsub.publisher"
AUTO_CLOSE = "1800s"  # incidents without data close after 30 minutes (the shortest allowed)


def check(spec: Any, settings: Any) -> list[Problem]:
    """Workflow ids are unique per project and region: a drift workflow may not take the name of
    another model's training workflow (model "x" drifts in "P-E-x-drift", which is the training
    workflow of a model called "x-drift")."""
    from mlops_infra.backends.gcp import BACKEND

    namer = BACKEND.namer(spec, settings)
    index = {m.name: i for i, m in enumerate(spec.models)}
    trained = {workflow_name(namer, m.name): m.name for m in spec.models if m.training is not None}
    problems: list[Problem] = []
    for model in auto.drift_models(spec):
        other = trained.get(drift_workflow_name(namer, model.name))
        if other is not None:
            problems.append(
                finding(
                    ("models", index[other], "name"),
                    f"on GCP the training workflow of model {other!r} and the drift workflow of model "
                    f"{model.name!r} would both be {drift_workflow_name(namer, model.name)!r}",
                    hint="rename one of the two models",
                    value=other,
                )
            )
    return problems


def build(ctx: StageContext) -> MonitoringOutputs:
    serving = ctx.upstream.find(ServingOutputs)
    # The endpoints of the models this stack builds (the serving stage's, same stack).
    endpoints: dict[str, Any] = dict(serving.endpoints) if serving is not None else {}
    built = {m.name for m in ctx.models()}
    channel_names = ctx.shared("channels", lambda: [c.name for c in _channels(ctx)])

    alarms: dict[str, list[Any]] = {}
    for model in auto.alarm_models(ctx.spec):
        if model.name in built and model.name in endpoints:
            alarms[model.name] = [p.name for p in _endpoint_alerts(ctx, model, endpoints[model.name], channel_names)]

    # Whether the stack has a drift metric is decided from every model, so the shared stack of a
    # split spec makes it (and the grants) whenever a model stack's drift workflows need it.
    drifting = auto.drift_models(ctx.spec)
    ctx.share(DriftTopics())
    # Absent in a model stack of a split spec: the shared stack holds the groups' grants.
    worker_grants = ctx.upstream.find(WorkerGrants)
    if drifting:
        metric_type = ctx.shared("drift-metric", lambda: _drift_metric(ctx))
        for model in drifting:
            if model.name in built and model.name in endpoints:
                # Its group's worker grant (governance.py); in a model stack the shared stack's.
                worker = worker_grants.by_group.get(group_of(model)) if worker_grants is not None else None
                _drift(ctx, model, metric_type=metric_type, channel_names=channel_names, waits_for=ctx.waits(worker))

    if channel_names:
        for model in ctx.models():
            for workflow, what in failure_watched(ctx.namer, model):
                _failure_alert(ctx, model, workflow=workflow, what=what, channel_names=channel_names)

    served = [m.name for m in ctx.spec.models if m.serving is not None]
    if ctx.spec.monitoring.dashboard and served and ctx.builds_stack:
        _dashboard(ctx, served, endpoints)
    return MonitoringOutputs(channel=channel_names, alarms=alarms)


# --- notification channels ----------------------------------------------------------------
def _channels(ctx: StageContext) -> list[gcp.monitoring.NotificationChannel]:
    import pulumi_gcp as gcp

    notify = ctx.spec.monitoring.notify
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    channels = []
    for email in dict.fromkeys(notify.emails):  # duplicates would be two channels for one inbox
        channels.append(
            gcp.monitoring.NotificationChannel(
                ctx.logical("channel-email", email),
                project=ctx.settings.project,
                type="email",
                display_name=f"mlops-infra {stack}: {email}",
                description=f"alerts of the mlops-infra stack {stack}",
                labels={"email_address": email},
                user_labels=ctx.tags(),
                opts=ctx.opts(),
            )
        )
    if notify.webhook:
        channels.append(
            gcp.monitoring.NotificationChannel(
                ctx.logical("channel-webhook"),
                project=ctx.settings.project,
                type="webhook_tokenauth",
                display_name=f"mlops-infra {stack}: webhook",
                description=f"alerts of the mlops-infra stack {stack}, posted as JSON",
                labels={"url": notify.webhook},
                user_labels=ctx.tags(),
                opts=ctx.opts(),
            )
        )
    return channels


# --- endpoint alert policies --------------------------------------------------------------
def endpoint_conditions(monitoring: Any, endpoint_id: str) -> dict[str, gcp.monitoring.AlertPolicyConditionArgsDict]:
    """Alert conditions per threshold the model sets (pure: tests call it too)."""
    window = f"{auto.ALERT_WINDOW_SECONDS}s"
    by_endpoint = ["resource.label.endpoint_id"]
    conditions: dict[str, gcp.monitoring.AlertPolicyConditionArgsDict] = {}
    if monitoring.latency_p99_ms:
        conditions["latency"] = {
            "display_name": f"p99 latency above {monitoring.latency_p99_ms} ms",
            "condition_threshold": {
                "filter": auto.endpoint_filter(endpoint_id, auto.LATENCY_METRIC),
                # p99 per series (deployed model, latency type), then the largest: the total
                # latency, which includes the model's and the overhead.
                "aggregations": [
                    {"alignment_period": window, "per_series_aligner": "ALIGN_PERCENTILE_99",
                     "cross_series_reducer": "REDUCE_MAX", "group_by_fields": by_endpoint}
                ],
                "comparison": "COMPARISON_GT",
                "threshold_value": float(monitoring.latency_p99_ms),  # prediction_latencies is in ms
                "duration": window,
                "trigger": {"count": 1},
            },
        }
    if monitoring.error_rate_percent:
        counts: gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgsDict = {
            "alignment_period": window, "per_series_aligner": "ALIGN_DELTA",
            "cross_series_reducer": "REDUCE_SUM", "group_by_fields": by_endpoint,
        }
        conditions["errors"] = {
            "display_name": f"errors above {monitoring.error_rate_percent:g}% of predictions",
            "condition_threshold": {
                "filter": auto.endpoint_filter(endpoint_id, auto.ERROR_METRIC),
                "aggregations": [counts],
                "denominator_filter": auto.endpoint_filter(endpoint_id, auto.PREDICTION_METRIC),
                "denominator_aggregations": [counts],
                "comparison": "COMPARISON_GT",
                "threshold_value": monitoring.error_rate_percent / 100,  # a ratio, not a percentage
                "duration": window,
                "trigger": {"count": 1},
            },
        }
    if monitoring.min_invocations_per_hour:
        hour = f"{auto.TRAFFIC_WINDOW_SECONDS}s"
        conditions["traffic"] = {
            "display_name": f"fewer than {monitoring.min_invocations_per_hour} predictions per hour",
            "condition_threshold": {
                "filter": auto.endpoint_filter(endpoint_id, auto.PREDICTION_METRIC),
                "aggregations": [
                    {"alignment_period": hour, "per_series_aligner": "ALIGN_DELTA",
                     "cross_series_reducer": "REDUCE_SUM", "group_by_fields": by_endpoint}
                ],
                "comparison": "COMPARISON_LT",
                "threshold_value": float(monitoring.min_invocations_per_hour),
                "duration": "0s",
                # An idle endpoint reports no predictions at all: that is below the minimum too.
                "evaluation_missing_data": "EVALUATION_MISSING_DATA_ACTIVE",
                "trigger": {"count": 1},
            },
        }
    return conditions


SEVERITY = {"latency": "ERROR", "errors": "ERROR", "traffic": "WARNING"}


def _endpoint_alerts(
    ctx: StageContext, model: Model, endpoint_path: Any, channel_names: list[Any]
) -> list[gcp.monitoring.AlertPolicy]:
    import pulumi
    import pulumi_gcp as gcp

    assert model.monitoring is not None
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    policies = []
    kinds = list(endpoint_conditions(model.monitoring, "ID"))
    for kind in kinds:
        # Built from the endpoint's path (an output of the serving stage's endpoint), so the
        # policy waits for the endpoint and the plan shows which one it watches.

        def condition_for(path: Any, kind: str = kind) -> gcp.monitoring.AlertPolicyConditionArgsDict:
            return endpoint_conditions(model.monitoring, auto.endpoint_id_of(path))[kind]

        condition = pulumi.Output.from_input(endpoint_path).apply(condition_for)
        title = _CONDITION_TITLES[kind]
        policies.append(
            gcp.monitoring.AlertPolicy(
                ctx.logical(f"alert-{kind}", model.name),
                project=ctx.settings.project,
                display_name=f"mlops-infra {stack} {model.name}: {title}",
                combiner="OR",
                conditions=[condition],
                notification_channels=channel_names,
                severity=SEVERITY[kind],
                alert_strategy={"auto_close": AUTO_CLOSE},
                documentation={
                    "mime_type": "text/markdown",
                    "subject": f"{model.name} ({stack}): {title}",
                    "content": _DOCS[kind].format(model=model.name, stack=stack),
                },
                user_labels={**ctx.tags(), "mlops-model": model.name},
                opts=ctx.opts(),
            )
        )
    return policies


# --- failed runs -------------------------------------------------------------------------------
# Workflows logs an execution's errors (and sys.log entries) under the monitored resource
# workflows.googleapis.com/Workflow, labelled with its workflow_id (cloud.google.com/workflows/docs/monitor);
# a log-match condition fires on the first such entry. Cloud Monitoring requires a notification
# rate limit on log-match policies.
FAILURE_RATE_LIMIT = "3600s"


def failure_watched(namer: Any, model: Model) -> list[tuple[str, str]]:
    """The workflows of `model` whose failed runs notify the stack's channels, with what they do:
    the training workflow when it has an evaluation gate (a failed gate fails the run), and the
    data preparation workflow."""
    watched = []
    if model.training is not None and model.training.evaluation is not None:
        watched.append((workflow_name(namer, model.name), "training run or evaluation gate"))
    if model.data_prep is not None:
        watched.append((naming.prep_workflow_name(namer, model.name), "data preparation run"))
    return watched


def failure_filter(*, project: str, workflow: str) -> str:
    """The log filter of a workflow's failed runs (pure)."""
    return (
        'resource.type="workflows.googleapis.com/Workflow" '
        f'AND resource.labels.project_id="{project}" '
        f'AND resource.labels.workflow_id="{workflow}" '
        "AND severity>=ERROR"
    )


def _failure_alert(
    ctx: StageContext, model: Model, *, workflow: str, what: str, channel_names: list[Any]
) -> gcp.monitoring.AlertPolicy:
    import pulumi_gcp as gcp

    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    purpose = "prep" if what.startswith("data") else "training"
    return gcp.monitoring.AlertPolicy(
        ctx.logical(f"alert-failed-{purpose}", model.name),
        project=ctx.settings.project,
        display_name=f"mlops-infra {stack} {model.name}: failed {what}",
        combiner="OR",
        conditions=[
            {
                "display_name": f"{workflow}: an execution logged an error",
                "condition_matched_log": {"filter": failure_filter(project=ctx.settings.project, workflow=workflow)},
            }
        ],
        notification_channels=channel_names,
        severity="ERROR",
        alert_strategy={"auto_close": AUTO_CLOSE, "notification_rate_limit": {"period": FAILURE_RATE_LIMIT}},
        documentation={
            "mime_type": "text/markdown",
            "subject": f"{model.name} ({stack}): failed {what}",
            "content": f"A run of the workflow **{workflow}** (model {model.name}, mlops-infra stack {stack}) failed. "
            "Its error (for a failed evaluation gate: the score and the rule it missed) is in the execution: "
            f"gcloud workflows executions list {workflow} --location={ctx.settings.region}",
        },
        user_labels={**ctx.tags(), "mlops-model": model.name},
        opts=ctx.opts(),
    )


_CONDITION_TITLES = {"latency": "p99 latency", "errors": "error rate", "traffic": "too little traffic"}
_DOCS = {
    "latency": "The Vertex AI endpoint of model **{model}** (mlops-infra stack {stack}) answers slower than "
    "its latency_p99_ms. Check the replicas chart on the stack's dashboard and the container logs.",
    "errors": "The Vertex AI endpoint of model **{model}** (mlops-infra stack {stack}) fails more predictions "
    "than its error_rate_percent. Check the container logs; roll back with `gcloud ai endpoints update "
    "--traffic-split` if a new version caused it.",
    "traffic": "The Vertex AI endpoint of model **{model}** (mlops-infra stack {stack}) served fewer "
    "predictions in the last hour than its min_invocations_per_hour. Check its callers.",
}


# --- dashboard ------------------------------------------------------------------------------
def dashboard_values(*, display_name: str, labels: dict[str, str], endpoint_ids: dict[str, str]) -> dict[str, Any]:
    """What templates/gcp/dashboard.json.j2 renders: a row of four charts per model (pure)."""
    minute = {"alignmentPeriod": "60s"}
    rows = []
    for model, endpoint_id in sorted(endpoint_ids.items()):
        charts = [
            {
                "title": "predictions per second",
                "filter": auto.endpoint_filter(endpoint_id, auto.PREDICTION_METRIC),
                "aggregation": {**minute, "perSeriesAligner": "ALIGN_RATE", "crossSeriesReducer": "REDUCE_SUM",
                                "groupByFields": ["metric.label.deployed_model_id"]},
                "legend": "deployed model ${metric.labels.deployed_model_id}",
                "unit": "1/s",
                "axis": "predictions/s",
            },
            {
                "title": "p99 latency (ms)",
                "filter": auto.endpoint_filter(endpoint_id, auto.LATENCY_METRIC),
                "aggregation": {**minute, "perSeriesAligner": "ALIGN_PERCENTILE_99", "crossSeriesReducer": "REDUCE_MAX",
                                "groupByFields": ["metric.label.deployed_model_id"]},
                "legend": "deployed model ${metric.labels.deployed_model_id}",
                "unit": "ms",
                "axis": "ms",
            },
            {
                "title": "errors per second",
                "filter": auto.endpoint_filter(endpoint_id, auto.ERROR_METRIC),
                "aggregation": {**minute, "perSeriesAligner": "ALIGN_RATE", "crossSeriesReducer": "REDUCE_SUM",
                                "groupByFields": ["metric.label.deployed_model_id"]},
                "legend": "deployed model ${metric.labels.deployed_model_id}",
                "unit": "1/s",
                "axis": "errors/s",
            },
            {
                "title": "replicas",
                "filter": auto.endpoint_filter(endpoint_id, auto.REPLICAS_METRIC),
                "aggregation": {**minute, "perSeriesAligner": "ALIGN_MEAN", "crossSeriesReducer": "REDUCE_SUM",
                                "groupByFields": ["metric.label.deployed_model_id"]},
                "legend": "deployed model ${metric.labels.deployed_model_id}",
                "unit": "1",
                "axis": "replicas",
            },
        ]
        rows.append({"model": model, "charts": charts})
    return {
        "display_name": display_name,
        "labels": labels,
        "columns": DASHBOARD_COLUMNS,
        "tile_width": TILE_WIDTH,
        "tile_height": TILE_HEIGHT,
        "rows": rows,
    }


def dashboard_json(**values: Any) -> str:
    """The dashboard JSON (rendered, parsed and dumped again: a malformed template fails here)."""
    return json.dumps(render_json(DASHBOARD_TEMPLATE, **dashboard_values(**values)), sort_keys=True)


def _dashboard(ctx: StageContext, served: list[str], endpoints: dict[str, Any]) -> gcp.monitoring.Dashboard:
    """A row per served model of the spec. An endpoint built in this stack gives its id as an
    output (the dashboard waits for it); one in a model stack of a split spec (not deployed yet
    when the shared stack is) has the same id from the namer: endpoint ids are chosen, not assigned."""
    import pulumi
    import pulumi_gcp as gcp

    display_name = f"mlops-infra {ctx.spec.project}/{ctx.spec.environment}"
    labels = ctx.tags()
    ids = {
        model: pulumi.Output.from_input(endpoints[model]).apply(auto.endpoint_id_of)
        if model in endpoints
        else naming.endpoint_id(ctx.namer, model)
        for model in served
    }
    body = pulumi.Output.all(**ids).apply(
        lambda endpoint_ids: dashboard_json(display_name=display_name, labels=labels, endpoint_ids=endpoint_ids)
    )
    return gcp.monitoring.Dashboard(
        ctx.logical("dashboard"), project=ctx.settings.project, dashboard_json=body, opts=ctx.opts()
    )


# --- drift ----------------------------------------------------------------------------------
def _drift_metric(ctx: StageContext) -> Any:
    import pulumi_gcp as gcp

    descriptor = gcp.monitoring.MetricDescriptor(
        ctx.logical("metric-drift"),
        project=ctx.settings.project,
        type=auto.drift_metric_type(ctx.spec.project, ctx.spec.environment),
        metric_kind="GAUGE",
        value_type="DOUBLE",
        unit="1",
        display_name=f"mlops-infra {ctx.spec.project}/{ctx.spec.environment} drift",
        description="largest Population Stability Index of a model's features, captured requests against "
        "the baseline (written by the model's drift workflow)",
        labels=[{"key": "model", "value_type": "STRING", "description": "the model's name in the mlops-infra spec"}],
        opts=ctx.opts(),
    )
    return descriptor.type


def drift_query(ctx: StageContext, model: Model) -> str:
    """The drift query of `model` (pure: the table names derive from the namer)."""
    assert model.monitoring is not None and model.monitoring.drift is not None
    project = ctx.settings.project
    dataset = capture_dataset_id(ctx.namer, model.name)
    return render(
        DRIFT_QUERY_TEMPLATE,
        model=model.name,
        captured=f"{project}.{dataset}.{CAPTURE_TABLE}",
        baseline=f"{project}.{dataset}.{auto.BASELINE_TABLE}",
        window_hours=auto.DRIFT_WINDOW_HOURS[model.monitoring.drift.schedule],
    )


def drift_source(ctx: StageContext, model: Model, *, metric_type: str) -> str:
    """The drift workflow's YAML source (pure; called inside apply with the resolved metric type)."""
    assert model.monitoring is not None and model.monitoring.drift is not None
    schedule = model.monitoring.drift.schedule
    return render(
        DRIFT_TEMPLATE,
        workflow=drift_workflow_name(ctx.namer, model.name),
        model=model.name,
        schedule=schedule,
        cron=auto.drift_cron(schedule),
        time_zone=auto.DRIFT_TIME_ZONE,
        project=ctx.settings.project,
        location=ctx.settings.region,
        query=drift_query(ctx, model),
        labels={**ctx.tags(), "mlops-model": model.name},
        metric={"type": metric_type, "labels": {"model": model.name}},
        metric_type=metric_type,
        threshold=auto.DRIFT_THRESHOLD,
    )


def _drift(ctx: StageContext, model: Model, *, metric_type: Any, channel_names: list[Any], waits_for: list[Any]) -> None:
    import pulumi
    import pulumi_gcp as gcp

    assert model.monitoring is not None and model.monitoring.drift is not None
    governance = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    runner = governance.reader(model)  # its group's identity
    project, region = ctx.settings.project, ctx.settings.region
    drift = model.monitoring.drift
    labels = {**ctx.tags(), "mlops-model": model.name}
    dataset = capture_dataset_id(ctx.namer, model.name)
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    # The capture dataset is the serving stage's: these wait for it.
    upstream = ctx.opts(depends_on=[ctx.upstream.of(CaptureDatasets).by_model[model.name]])

    baseline = drift.baseline_ref
    table = gcp.bigquery.Table(
        ctx.logical("drift-baseline", model.name),
        project=project,
        dataset_id=dataset,
        table_id=auto.BASELINE_TABLE,
        description=f"drift baseline of model {model.name}: one JSON instance per line (mlops-infra {stack})",
        # A definition over objects in Cloud Storage, no data of its own.
        deletion_protection=False,
        schema=json.dumps([{"name": "line", "type": "STRING", "mode": "NULLABLE", "description": "one JSON instance"}]),
        external_data_configuration={
            "autodetect": False,
            "source_format": "CSV",
            "source_uris": [storage.buckets[baseline.bucket].uri.apply(lambda uri: f"{uri}/{baseline.prefix}*")],
            "csv_options": {"quote": "", "field_delimiter": auto.BASELINE_DELIMITER},
        },
        labels=labels,
        opts=upstream,
    )
    reader = gcp.bigquery.DatasetIamMember(
        ctx.logical("drift-reader", model.name),
        project=project,
        dataset_id=dataset,
        role=DATA_VIEWER,
        member=runner.principal,
        opts=upstream,
    )
    workflow = gcp.workflows.Workflow(
        ctx.logical("drift-workflow", model.name),
        name=drift_workflow_name(ctx.namer, model.name),
        project=project,
        region=region,
        description=f"drift score of model {model.name} (mlops-infra {stack})",
        service_account=runner.id,
        crypto_key_name=ctx.upstream.of(ProjectServices).service_keys["workflows"],
        call_log_level="LOG_ERRORS_ONLY",
        deletion_protection=False,
        source_contents=pulumi.Output.from_input(metric_type).apply(
            lambda mtype: drift_source(ctx, model, metric_type=mtype)
        ),
        labels=labels,
        opts=ctx.opts(depends_on=[table]),
    )
    workflow_path = workflow.name.apply(lambda n: f"projects/{project}/locations/{region}/workflows/{n}")
    workflow_job(
        ctx,
        ctx.logical("drift-schedule", model.name),
        name=scheduler_job_name(ctx.namer, model.name, "drift"),
        model=model.name,
        purpose="drift",
        description=f"computes the drift of model {model.name} {drift.schedule} (mlops-infra {stack})",
        schedule=auto.drift_cron(drift.schedule),
        time_zone=auto.DRIFT_TIME_ZONE,
        workflow_path=workflow_path,
        # The first run finds its grants and tables in place.
        opts=ctx.opts(depends_on=[reader, table, *waits_for]),
    )

    notify = list(channel_names)
    if model.name in {m.name for m in auto.drift_retrained(ctx.spec)}:
        notify.append(_retrain_channel(ctx, model).name)
    gcp.monitoring.AlertPolicy(
        ctx.logical("alert-drift", model.name),
        project=project,
        display_name=f"mlops-infra {stack} {model.name}: data drift",
        combiner="OR",
        conditions=[
            {
                "display_name": f"drift score above {auto.DRIFT_THRESHOLD}",
                "condition_threshold": {
                    "filter": pulumi.Output.from_input(metric_type).apply(lambda t: auto.drift_filter(t, model.name)),
                    "aggregations": [{"alignment_period": f"{auto.DRIFT_ALIGNMENT_SECONDS}s", "per_series_aligner": "ALIGN_MAX"}],
                    "comparison": "COMPARISON_GT",
                    "threshold_value": auto.DRIFT_THRESHOLD,
                    "duration": "0s",
                    # Each run writes one point: the incident closes once it is out of view, and
                    # the next run above the threshold opens a new one.
                    "evaluation_missing_data": "EVALUATION_MISSING_DATA_INACTIVE",
                    "trigger": {"count": 1},
                },
            }
        ],
        notification_channels=notify,
        severity="WARNING",
        # Opening notifies (and starts retraining, through the pubsub channel); closing does not.
        alert_strategy={"auto_close": AUTO_CLOSE, "notification_prompts": ["OPENED"]},
        documentation={
            "mime_type": "text/markdown",
            "subject": f"{model.name} ({stack}): data drift",
            "content": f"The requests the endpoint of model **{model.name}** (mlops-infra stack {stack}) received "
            f"drift from its baseline (largest feature PSI above {auto.DRIFT_THRESHOLD})."
            + (" Its training workflow has been started." if len(notify) > len(channel_names) else ""),
        },
        user_labels=labels,
        opts=ctx.opts(),
    )


def _retrain_channel(ctx: StageContext, model: Model) -> gcp.monitoring.NotificationChannel:
    """The model's drift topic and the pubsub channel that publishes its drift alerts there."""
    import pulumi_gcp as gcp

    services = ctx.upstream.of(ProjectServices)
    project = ctx.settings.project
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    topic = gcp.pubsub.Topic(
        ctx.logical("drift-topic", model.name),
        name=topic_id(ctx.namer, model.name, "drift"),
        project=project,
        kms_key_name=services.service_keys["pubsub"],
        message_storage_policy={"allowed_persistence_regions": [ctx.settings.region]},
        labels={**ctx.tags(), "mlops-model": model.name},
        opts=ctx.opts(),
    )
    ctx.upstream.of(DriftTopics).by_model[model.name] = topic
    publisher = gcp.pubsub.TopicIAMMember(
        ctx.logical("drift-publisher", model.name),
        project=project,
        topic=topic.name,
        role=PUBLISHER,
        member=services.service_agents["monitoring"],
        opts=ctx.opts(),
    )
    return gcp.monitoring.NotificationChannel(
        ctx.logical("channel-retrain", model.name),
        project=project,
        type="pubsub",
        display_name=f"mlops-infra {stack}: retrain {model.name}",
        description=f"drift alerts of model {model.name}, which start its training workflow",
        labels={"topic": topic.name.apply(lambda n: f"projects/{project}/topics/{n}")},
        user_labels={**ctx.tags(), "mlops-model": model.name},
        opts=ctx.opts(depends_on=[publisher]),
    )

