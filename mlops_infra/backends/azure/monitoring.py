"""Azure monitoring: the stack's action group, endpoint alerts, a workbook and drift monitors.

- Notifications: one Azure Monitor action group per stack (global, as action groups are) with an
  email receiver per monitoring.notify.emails entry and a webhook receiver for notify.webhook
  (common alert schema). Action groups have no customer-managed-key option: Azure keeps them
  encrypted with its own keys; what they hold is addresses, no data.
- Endpoint alarms per served model with a monitoring block, on its online endpoint:
  * latency: metric alert on RequestLatency_P99 (milliseconds, so latency_p99_ms as is), average
    over 5 minutes above the threshold; named naming.alarm_name(model, "latency");
  * errors: Azure metric alerts cannot divide one metric by another, so the share of server
    errors (HTTP 5xx) is a log search alert (scheduled query rule) on the endpoint's traffic log
    (AmlOnlineEndpointTrafficLog, sent by a diagnostic setting on the endpoint to the
    workspace's Log Analytics workspace): above error_rate_percent over 5 minutes; named
    naming.alarm_name(model, "errors"), the name serving's rollback warning cites;
  * traffic: metric alert on RequestsPerMinute, its hourly average below
    min_invocations_per_hour / 60; named naming.alert_name(model, "traffic").
  All notify the action group and resolve themselves when the condition clears.
- Dashboard (monitoring.dashboard): one Azure Monitor workbook per stack (Application Insights
  Workbook, on the workspace's Application Insights component), rendered from
  templates/azure/workbook.json.j2. Chosen over a portal dashboard because a workbook can list
  the stack's endpoints itself (Azure Resource Graph, when it opens): a row per model without
  naming any model, so adding one changes nothing in it, where a portal dashboard needs a tile
  per resource id written into it. The template renders to JSON with stack names only, so the
  plan shows it whole.
- Drift (models[i].monitoring.drift): an Azure ML schedule with a CreateMonitor action (a model
  monitor): a data drift signal between the baseline (a fixed MLTable at the drift baseline's
  bucket and prefix) and the endpoint's captured model_inputs (the data asset serving writes,
  read through Azure's data-collector preprocessor over a rolling window), on
  DRIFT_SCHEDULES[drift.schedule] (UTC), on serverless Spark running as the model's group
  identity (which reads the group's baselines and captured data already). Azure ML mails a breach to
  monitoring.notify.emails (the action group's addresses); model monitors cannot notify an action
  group. The breach is also an Event Grid event, which retraining.py routes to the retraining
  target and to a drift alert on the action group for models with on_drift.

Grants: none. The alerts read platform metrics and logs; the monitors run as the model's group
identity, whose one role assignment (governance, governance_access.py) lets it read the model's
drift baseline and captured requests.

Checked here (validate): the drift baseline must be an MLTable, and drift reaches the webhook only
through retraining's on_drift alert (model monitors notify by email only: a gap).

Split specs: the action group and the workbook are stack-wide (the shared stack; model stacks
read the action group's id from it); alerts, traffic log settings and drift monitors are per
model (the model's stack).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure import monitoring_rules as rules
from mlops_infra.backends.azure.naming import alarm_name, alert_name, workspace_name
from mlops_infra.backends.azure.schedules import ncrontab
from mlops_infra.backends.azure.serving import CAPTURE_VERSION, CaptureAssets
from mlops_infra.backends.azure.storage_workspace import SparkNetwork, WorkspaceRef
from mlops_infra.backends.azure.training import asset_name
from mlops_infra.spec.models import Model
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.schedule import DRIFT_SCHEDULES
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.templating import render_json

if TYPE_CHECKING:
    from pulumi_azure_native import applicationinsights, monitor
    from pulumi_azure_native import machinelearningservices as ml

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

# Seeds the workbook's resource name (workbook names are GUIDs): derived, never random.
_WORKBOOK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "mlops-infra:azure:workbook")
LOG_ANALYTICS_TYPE = "Microsoft.OperationalInsights/workspaces"
# The scheduled query rule API (2025-01-01-preview) takes "GreaterThan" etc.; the SDK's
# ConditionOperator enum lists another API's values ("gt"), so the string is given as is.
GREATER_THAN = "GreaterThan"


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    """What an Azure ML drift monitor needs that only the user can provide, and where it stops."""
    from mlops_infra.backends.azure import BACKEND

    drifting = [
        (i, model, model.monitoring.drift)
        for i, model in enumerate(spec.models)
        if model.monitoring is not None and model.monitoring.drift is not None
    ]
    problems = [
        finding(
            ("models", i, "monitoring", "drift", "baseline"),
            "Azure ML model monitors read the drift baseline as an MLTable: "
            + _where(drift.baseline_ref)
            + " must hold an MLTable file describing the baseline's data files, with the columns of the "
            "endpoint's captured inputs",
            hint="write one with the mltable Python package (mltable.from_delimited_files(...).save(...)) "
            "next to the baseline files",
            severity="warning",
        )
        for i, _, drift in drifting
    ]
    if not spec.monitoring.notify.webhook:
        return problems
    return problems + [
        BACKEND.gap(
            "models[].monitoring.drift to notify.webhook",
            ("models", i, "monitoring", "drift"),
            hint=f"set models[{i}].retraining.on_drift: true, or watch the monitor in Azure ML studio",
        )
        for i, model, _ in drifting
        if not (model.retraining is not None and model.retraining.on_drift)
    ]


def _where(ref: Any) -> str:
    """'bucket 'raw'' or 'churn/baseline/ in bucket 'features''."""
    return f"{ref.prefix} in bucket {ref.bucket!r}" if ref.prefix else f"bucket {ref.bucket!r}"


def build(ctx: StageContext) -> MonitoringOutputs:
    import pulumi

    spec = ctx.spec
    workspace = ctx.upstream.find(WorkspaceRef)
    serving = ctx.upstream.find(ServingOutputs)
    endpoints: dict[str, Any] = dict(serving.endpoints) if serving is not None else {}  # this part's models
    # Stack-wide, used by every model's alerts (and retraining's drift alerts): a model stack
    # reads its id from the shared stack.
    group = ctx.shared("channel", lambda: _action_group(ctx).id)

    alarms: dict[str, list[Any]] = {}
    for model in sorted((m for m in ctx.models() if m.monitoring is not None), key=lambda m: m.name):
        if model.name not in endpoints or workspace is None:
            continue  # validate reports monitoring without serving
        endpoint_id = pulumi.Output.concat(workspace.id, "/onlineEndpoints/", endpoints[model.name])
        alarms[model.name] = _endpoint_alarms(ctx, model, workspace, endpoints[model.name], endpoint_id, group)
        # Filtered above; `endpoints` holds served models only.
        assert model.monitoring is not None and model.serving is not None
        if model.monitoring.drift is not None and model.serving.data_capture is not None:
            _drift_monitor(ctx, model, workspace)
    # The workbook lists endpoints itself: it exists once per stack if any model serves.
    served = any(m.serving is not None for m in spec.models)
    if ctx.builds_stack and spec.monitoring.dashboard and served and workspace is not None:
        _workbook(ctx, workspace)
    return MonitoringOutputs(channel=group, alarms=alarms)


def _action_group(ctx: StageContext) -> monitor.ActionGroup:
    from pulumi_azure_native import monitor

    notify = ctx.spec.monitoring.notify
    emails = sorted(set(notify.emails))
    return monitor.ActionGroup(
        ctx.logical("channel"),
        action_group_name=ctx.namer.name("azure.monitor.action_group", "alerts"),
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        location=rules.GLOBAL,
        group_short_name=rules.short_name(ctx.spec.project, ctx.spec.environment),
        enabled=True,
        email_receivers=[
            monitor.MicrosoftCommonEmailReceiverArgs(
                name=rules.receiver_name("email", email), email_address=email, use_common_alert_schema=True
            )
            for email in emails
        ],
        webhook_receivers=(
            [
                monitor.WebhookReceiverArgs(
                    name=rules.receiver_name("webhook", notify.webhook),
                    service_uri=notify.webhook,
                    use_common_alert_schema=True,
                )
            ]
            if notify.webhook
            else []
        ),
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def metric_alert(
    ctx: StageContext,
    *,
    logical: str,
    name: str,
    description: str,
    scope: Any,
    resource_type: str,
    criterion: monitor.MetricCriteriaArgs,
    group: Any,
    severity: int,
    frequency: str = rules.FREQUENCY,
    window: str = rules.WINDOW,
) -> monitor.MetricAlert:
    """A static-threshold metric alert on one resource, notifying `group` (retraining uses it too)."""
    from pulumi_azure_native import monitor

    return monitor.MetricAlert(
        logical,
        rule_name=name,
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        location=rules.GLOBAL,
        description=description,
        severity=severity,
        enabled=True,
        scopes=[scope],
        target_resource_type=resource_type,
        target_resource_region=ctx.settings.location,
        evaluation_frequency=frequency,
        window_size=window,
        criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
            odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
            all_of=[criterion],
        ),
        auto_mitigate=True,
        actions=[monitor.MetricAlertActionArgs(action_group_id=group)],
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def _endpoint_alarms(
    ctx: StageContext, model: Model, workspace: Any, endpoint: Any, endpoint_id: Any, group: Any
) -> list[Any]:
    from pulumi_azure_native import monitor

    mon = model.monitoring
    assert mon is not None
    found: list[Any] = []
    if mon.latency_p99_ms is not None:
        found.append(
            metric_alert(
                ctx,
                logical=ctx.logical("alarm", "latency", model.name),
                name=alarm_name(ctx.namer, model.name, "latency"),
                description=f"mlops-infra: p99 latency of {model.name}'s endpoint above {mon.latency_p99_ms} ms",
                scope=endpoint_id,
                resource_type=rules.ENDPOINT_TYPE,
                criterion=monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion",
                    name="latency-p99",
                    metric_name=rules.LATENCY_METRIC,
                    metric_namespace=rules.ENDPOINT_TYPE,
                    operator=monitor.Operator.GREATER_THAN,
                    threshold=float(mon.latency_p99_ms),  # the metric is in milliseconds too
                    time_aggregation=monitor.AggregationTypeEnum.AVERAGE,
                ),
                group=group,
                severity=rules.SEVERITY["latency"],
            ).id
        )
    if mon.error_rate_percent is not None:
        found.append(_errors_alarm(ctx, model, workspace, endpoint, endpoint_id, group).id)
    if mon.min_invocations_per_hour is not None:
        found.append(
            metric_alert(
                ctx,
                logical=ctx.logical("alarm", "traffic", model.name),
                name=alert_name(ctx.namer, model.name, "traffic"),
                description=(
                    f"mlops-infra: fewer than {mon.min_invocations_per_hour} requests an hour to {model.name}'s endpoint"
                ),
                scope=endpoint_id,
                resource_type=rules.ENDPOINT_TYPE,
                criterion=monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion",
                    name="requests-per-minute",
                    metric_name=rules.REQUESTS_METRIC,
                    metric_namespace=rules.ENDPOINT_TYPE,
                    operator=monitor.Operator.LESS_THAN,
                    threshold=rules.per_minute(mon.min_invocations_per_hour),
                    time_aggregation=monitor.AggregationTypeEnum.AVERAGE,
                ),
                group=group,
                severity=rules.SEVERITY["traffic"],
                frequency=rules.TRAFFIC_FREQUENCY,
                window=rules.TRAFFIC_WINDOW,
            ).id
        )
    return found


def _errors_alarm(
    ctx: StageContext, model: Model, workspace: Any, endpoint: Any, endpoint_id: Any, group: Any
) -> monitor.ScheduledQueryRule:
    import pulumi
    from pulumi_azure_native import monitor

    mon = model.monitoring
    assert mon is not None and mon.error_rate_percent is not None  # called for models with an error rate only
    traffic_logs = monitor.DiagnosticSetting(
        ctx.logical("trafficlogs", model.name),
        name=rules.TRAFFIC_SETTING_NAME,
        resource_uri=endpoint_id,
        workspace_id=workspace.logs_id,
        logs=[monitor.DiagnosticsLogSettingsArgs(category=rules.TRAFFIC_LOG, enabled=True)],
        opts=ctx.opts(),
    )
    return monitor.ScheduledQueryRule(
        ctx.logical("logalarm", "errors", model.name),
        rule_name=alarm_name(ctx.namer, model.name, "errors"),
        resource_group_name=ctx.upstream.of(GovernanceOutputs).scope,
        location=ctx.settings.location,
        kind=monitor.Kind.LOG_ALERT,
        description=f"mlops-infra: server errors above {mon.error_rate_percent} % of {model.name}'s requests",
        severity=rules.SEVERITY["errors"],
        enabled=True,
        scopes=[workspace.logs_id],
        target_resource_types=[LOG_ANALYTICS_TYPE],
        evaluation_frequency=rules.ERRORS_FREQUENCY,
        window_size=rules.ERRORS_WINDOW,
        criteria=monitor.ScheduledQueryRuleCriteriaArgs(
            all_of=[
                monitor.ConditionArgs(
                    query=pulumi.Output.from_input(endpoint).apply(rules.error_query),
                    time_aggregation=monitor.TimeAggregation.AVERAGE,
                    metric_measure_column=rules.ERROR_COLUMN,
                    operator=GREATER_THAN,
                    threshold=float(mon.error_rate_percent),
                    failing_periods=monitor.ConditionFailingPeriodsArgs(
                        number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                    ),
                )
            ]
        ),
        auto_mitigate=True,
        actions=monitor.ActionsArgs(action_groups=[group]),
        tags=ctx.tags(),
        # The log exists once the endpoint sends it: the query validates against the table.
        opts=ctx.opts(depends_on=[traffic_logs]),
    )


def _drift_monitor(ctx: StageContext, model: Model, workspace: Any) -> ml.Schedule:
    import pulumi
    from pulumi_azure_native import machinelearningservices as ml

    assert model.monitoring is not None
    drift = model.monitoring.drift
    assert drift is not None
    storage = ctx.upstream.of(StorageOutputs)
    identity = ctx.upstream.of(GovernanceOutputs).reader(model)
    captured = ctx.upstream.of(CaptureAssets).versions[f"{model.name}/model_inputs"]
    spark = ctx.upstream.find(SparkNetwork)
    baseline = drift.baseline_ref
    bucket = storage.buckets.get(baseline.bucket)
    reference_uri = pulumi.Output.concat(bucket.uri, "/", baseline.prefix) if bucket is not None else ""
    emails = sorted(set(ctx.spec.monitoring.notify.emails))
    signal = ml.DataDriftMonitoringSignalArgs(
        signal_type="DataDrift",
        production_data=ml.RollingInputDataArgs(
            input_data_type="Rolling",
            job_input_type="uri_folder",
            uri=f"azureml:{asset_name(model.name, 'model_inputs')}:{CAPTURE_VERSION}",
            data_context="model_inputs",
            preprocessing_component_id=rules.MDC_PREPROCESSOR,
            window_size=rules.LOOKBACK[drift.schedule],
            window_offset="P0D",
        ),
        reference_data=ml.FixedInputDataArgs(
            input_data_type="Fixed",
            job_input_type="mltable",
            uri=reference_uri,
            data_context="training",
        ),
        features=ml.AllFeaturesArgs(filter_type="AllFeatures"),
        metric_thresholds=[
            ml.NumericalDataDriftMetricThresholdArgs(
                data_type="Numerical",
                metric=rules.NUMERICAL_METRIC,
                threshold=ml.MonitoringThresholdArgs(value=rules.NUMERICAL_THRESHOLD),
            ),
            ml.CategoricalDataDriftMetricThresholdArgs(
                data_type="Categorical",
                metric=rules.CATEGORICAL_METRIC,
                threshold=ml.MonitoringThresholdArgs(value=rules.CATEGORICAL_THRESHOLD),
            ),
        ],
        notification_types=["AmlNotification"],
    )
    definition = monitor_definition(identity, {rules.signal_name(model.name): signal}, emails)
    return ml.Schedule(
        ctx.logical("drift", model.name),
        name=rules.monitor_name(model.name),
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.name,
        properties=ml.SchedulePropertiesArgs(
            display_name=f"{model.name} data drift",
            description=(
                f"mlops-infra: {model.name}'s captured inputs against the baseline in bucket {baseline.bucket}"
                + (f" under {baseline.prefix}" if baseline.prefix else "")
            ),
            is_enabled=True,
            trigger=ml.CronTriggerArgs(
                trigger_type="Cron", expression=ncrontab(DRIFT_SCHEDULES[drift.schedule]), time_zone="UTC"
            ),
            action=ml.CreateMonitorActionArgs(action_type="CreateMonitor", monitor_definition=definition),
            tags=ctx.tags(),
        ),
        # The capture data asset is named, not referenced: wait for serving to declare it.
        # A private stack's Spark runs in the managed network, provisioned for it (storage_workspace.py).
        opts=ctx.opts(depends_on=[captured, *(spark.provisioned if spark else [])]),
    )


def monitor_definition(identity: Any, signals: dict[str, Any], emails: list[str]) -> ml.MonitorDefinitionArgs:
    """A model monitor's definition: `signals` on serverless Spark running as `identity` (the model
    group's), breaches mailed to `emails` (model monitors notify by email only)."""
    from pulumi_azure_native import machinelearningservices as ml

    return ml.MonitorDefinitionArgs(
        compute_configuration=ml.MonitorServerlessSparkComputeArgs(
            compute_type="ServerlessSpark",
            instance_type=rules.SPARK_INSTANCE_TYPE,
            runtime_version=rules.SPARK_RUNTIME,
            compute_identity=ml.ManagedComputeIdentityArgs(
                compute_identity_type="ManagedIdentity",
                identity=ml.ManagedServiceIdentityArgs(
                    type=ml.ManagedServiceIdentityType.USER_ASSIGNED,
                    user_assigned_identities=identity.id.apply(lambda identity_id: [identity_id]),
                ),
            ),
        ),
        signals=signals,
        alert_notification_settings=(
            ml.MonitorNotificationSettingsArgs(
                email_notification_settings=ml.MonitorEmailNotificationSettingsArgs(emails=emails)
            )
            if emails
            else None
        ),
    )


def workbook_name(ctx: StageContext) -> str:
    """The workbook's resource name: a GUID derived from the stack."""
    seed = f"{ctx.namer.scope}\x1f{ctx.spec.project}\x1f{ctx.spec.environment}"
    return str(uuid.uuid5(_WORKBOOK_NAMESPACE, seed))


def _workbook(ctx: StageContext, workspace: Any) -> applicationinsights.Workbook:
    from pulumi_azure_native import applicationinsights

    spec = ctx.spec
    title = f"{spec.project} {spec.environment}: models"
    values = rules.workbook_values(
        title=title,
        resource_group=ctx.namer.name("azure.resource_group", ctx.settings.location),
        workspace=workspace_name(ctx.namer, ctx.settings),
        logs=workspace.logs_name,
    )
    content = render_json(rules.WORKBOOK_TEMPLATE, **values)
    return applicationinsights.Workbook(
        ctx.logical("dashboard"),
        resource_name_=workbook_name(ctx),
        resource_group_name=workspace.resource_group,
        location=ctx.settings.location,
        kind=applicationinsights.WorkbookSharedTypeKind.SHARED,
        category="workbook",
        display_name=title,
        description=f"mlops-infra: endpoints, errors and instances of every model of {spec.project} ({spec.environment})",
        serialized_data=json.dumps(content, sort_keys=True),
        version=rules.WORKBOOK_VERSION,
        source_id=workspace.insights_id,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
