"""Kubernetes monitoring (Prometheus Operator): a PodMonitor and a PrometheusRule per served model
(latency p99, error rate, traffic floor from KServe's queue-proxy metrics), an AlertmanagerConfig
sending to the spec's emails and webhook, a Grafana dashboard ConfigMap for the sidecar, and per
drift-monitored model an Evidently CronJob that pushes mlops_infra_drift_detected to a Pushgateway."""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import CRONJOB, container, env_list, metadata, name, pod_spec, settings_of
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.backends.kubernetes.training import uri_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.storage import StorageOutputs, capture_prefix

MONITORING_API = "monitoring.coreos.com/v1"
ALERTMANAGER_API = "monitoring.coreos.com/v1alpha1"
DRIFT_SCHEDULES = {"hourly": "0 * * * *", "daily": "0 2 * * *", "weekly": "0 2 * * 1"}
DRIFT_METRIC = "mlops_infra_drift_detected"
# KServe's queue-proxy (Knative serverless mode) exports these; its latency histogram is in milliseconds.
LATENCY = "revision_app_request_latencies_bucket"
REQUESTS = "revision_app_request_count"


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    problems = []
    drift = [i for i, m in enumerate(spec.models) if m.monitoring is not None and m.monitoring.drift is not None]
    for i in drift:
        path = ("models", i, "monitoring", "drift")
        if settings.images.drift is None:
            problems.append(finding(path, "drift on Kubernetes runs your Evidently image as a CronJob, and "
                                    "clouds.kubernetes.images.drift names none",
                                    hint="set clouds.kubernetes.images.drift: REGISTRY/IMAGE:TAG"))  # fmt: skip
        if settings.pushgateway is None:
            problems.append(finding(path, "the drift job reports to Prometheus through a Pushgateway, and "
                                    "clouds.kubernetes.pushgateway names none",
                                    hint="set clouds.kubernetes.pushgateway: http://pushgateway.monitoring.svc:9091"))  # fmt: skip
    return problems


def selector(ctx: StageContext, model: str) -> str:
    return f'namespace="{common.namespace_name(ctx)}", configuration_name="{name(ctx, model)}-predictor"'


def alert_rules(ctx: StageContext, model: Any) -> list[dict[str, Any]]:
    mon, where = model.monitoring, selector(ctx, model.name)
    labels = {"severity": "critical", "mlops_model": model.name}
    rules: list[dict[str, Any]] = []
    if mon.latency_p99_ms:
        rules.append({"alert": "ModelLatencyP99High", "for": "5m", "labels": labels,
                      "expr": f"histogram_quantile(0.99, sum by (le) (rate({LATENCY}{{{where}}}[5m]))) > {mon.latency_p99_ms}",
                      "annotations": {"summary": f"{model.name}: p99 latency above {mon.latency_p99_ms} ms"}})  # fmt: skip
    if mon.error_rate_percent:
        errors = f'sum(rate({REQUESTS}{{{where}, response_code_class="5xx"}}[5m]))'
        total = f"sum(rate({REQUESTS}{{{where}}}[5m]))"
        rules.append({"alert": "ModelErrorRateHigh", "for": "5m", "labels": labels,
                      "expr": f"100 * {errors} / {total} > {mon.error_rate_percent}",
                      "annotations": {"summary": f"{model.name}: more than {mon.error_rate_percent}% errors"}})  # fmt: skip
    if mon.min_invocations_per_hour:
        rules.append({"alert": "ModelTrafficLow", "for": "15m", "labels": labels,
                      "expr": f"sum(increase({REQUESTS}{{{where}}}[1h])) < {mon.min_invocations_per_hour}",
                      "annotations": {"summary": f"{model.name}: fewer than {mon.min_invocations_per_hour} requests an hour"}})  # fmt: skip
    if mon.drift:
        rules.append({"alert": "ModelDataDrift", "labels": {**labels, "severity": "warning"},
                      "expr": f'max({DRIFT_METRIC}{{model="{model.name}"}}) > 0',
                      "annotations": {"summary": f"{model.name}: captured requests drift from the baseline"}})  # fmt: skip
    return rules


def build(ctx: StageContext) -> MonitoringOutputs:
    import pulumi_kubernetes as k8s

    ns = common.cluster(ctx).namespace
    alarms: dict[str, list[Any]] = {}
    for model in ctx.models():
        if model.monitoring is None or model.serving is None:
            continue
        label = {"mlops-infra/model": model.name}
        k8s.apiextensions.CustomResource(
            ctx.logical("metrics", model.name), api_version=MONITORING_API, kind="PodMonitor",
            metadata=metadata(ctx, name(ctx, model.name), ns, **label),
            spec={"selector": {"matchLabels": {"serving.kserve.io/inferenceservice": name(ctx, model.name)}},
                  "podMetricsEndpoints": [{"port": "http-usermetric", "interval": "30s"}]},
            opts=ctx.opts(),
        )  # fmt: skip
        rules = alert_rules(ctx, model)
        if rules:
            rule_name = name(ctx, "alerts", model.name)
            k8s.apiextensions.CustomResource(
                ctx.logical("alerts", model.name), api_version=MONITORING_API, kind="PrometheusRule",
                metadata=metadata(ctx, rule_name, ns, **label),
                spec={"groups": [{"name": model.name, "rules": rules}]}, opts=ctx.opts(),
            )  # fmt: skip
            alarms[model.name] = [f"{rule_name}/{r['alert']}" for r in rules]
        if model.monitoring.drift is not None:
            drift_job(ctx, ns, model)
    channel = ctx.shared("channel", lambda: stack_wide(ctx, ns))
    return MonitoringOutputs(channel=channel, alarms=alarms)


def stack_wide(ctx: StageContext, ns: Any) -> Any:
    """The AlertmanagerConfig (email and webhook receivers) and the dashboard: one each per stack."""
    import pulumi_kubernetes as k8s

    notify = ctx.spec.monitoring.notify
    receiver: dict[str, Any] = {"name": "mlops-infra"}
    if notify.emails:
        receiver["emailConfigs"] = [{"to": email, "sendResolved": True} for email in notify.emails]
    if notify.webhook:
        receiver["webhookConfigs"] = [{"url": notify.webhook, "sendResolved": True}]
    channel_name = name(ctx, "alerts")
    if notify.emails or notify.webhook:
        k8s.apiextensions.CustomResource(
            ctx.logical("alertmanager"), api_version=ALERTMANAGER_API, kind="AlertmanagerConfig",
            metadata=metadata(ctx, channel_name, ns),
            spec={"route": {"receiver": "mlops-infra", "groupBy": ["alertname", "mlops_model"],
                            "groupWait": "30s", "repeatInterval": "4h"},
                  "receivers": [receiver]},
            opts=ctx.opts(),
        )  # fmt: skip
    if ctx.spec.monitoring.dashboard:
        k8s.core.v1.ConfigMap(
            ctx.logical("dashboard"), metadata=metadata(ctx, name(ctx, "dashboard"), ns, grafana_dashboard="1"),
            data={"mlops-infra.json": json.dumps(dashboard(ctx), indent=1, sort_keys=True)}, opts=ctx.opts(),
        )  # fmt: skip
    return ns.apply(lambda n: f"{n}/{channel_name}")


def dashboard(ctx: StageContext) -> dict[str, Any]:
    """One row of panels per served model (every model of the spec: the dashboard is stack-wide)."""
    panels: list[dict[str, Any]] = []
    for row, model in enumerate(m for m in ctx.spec.models if m.serving is not None):
        where = selector(ctx, model.name)
        queries = {
            "requests / s": f"sum(rate({REQUESTS}{{{where}}}[5m]))",
            "p99 latency (ms)": f"histogram_quantile(0.99, sum by (le) (rate({LATENCY}{{{where}}}[5m])))",
            "5xx / s": f'sum(rate({REQUESTS}{{{where}, response_code_class="5xx"}}[5m]))',
        }
        for col, (title, expr) in enumerate(queries.items()):
            panels.append({"type": "timeseries", "title": f"{model.name}: {title}",
                           "gridPos": {"h": 8, "w": 8, "x": 8 * col, "y": 8 * row},
                           "targets": [{"expr": expr, "refId": "A"}]})  # fmt: skip
    return {"title": f"{ctx.spec.project} {ctx.spec.environment} models", "uid": name(ctx, "dashboard")[:40],
            "schemaVersion": 39, "panels": panels}  # fmt: skip


def drift_job(ctx: StageContext, ns: Any, model: Any) -> None:
    import pulumi
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    drift = model.monitoring.drift
    storage = ctx.upstream.of(StorageOutputs)
    reader = ctx.upstream.of(GovernanceOutputs).reader(model)
    env = env_list({"MODEL": model.name, "PUSHGATEWAY_URL": settings.pushgateway or "", "METRIC": DRIFT_METRIC})
    env += [
        {"name": "BASELINE_URI", "value": uri_of(storage, drift.baseline)},
        {"name": "CAPTURE_URI", "value": pulumi.Output.concat(storage.artifacts.uri, "/", capture_prefix(model.name))},
        *common.store_env(ctx),
    ]
    job = container("evidently", settings.images.drift, env=env,
                    resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}})  # fmt: skip
    k8s.batch.v1.CronJob(
        ctx.logical("drift", model.name),
        metadata=metadata(ctx, ctx.namer.name(CRONJOB, "drift", model.name), ns, **{"mlops-infra/model": model.name}),
        spec={"schedule": DRIFT_SCHEDULES[drift.schedule], "concurrencyPolicy": "Forbid",
              "jobTemplate": {"spec": {"backoffLimit": 1, "ttlSecondsAfterFinished": 86400, "template": {
                  "metadata": {"labels": common.labels(ctx)},
                  "spec": pod_spec(reader.id, [job], restartPolicy="Never")}}}},
        opts=ctx.opts(),
    )  # fmt: skip
