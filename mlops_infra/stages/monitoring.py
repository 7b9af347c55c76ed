"""Monitoring: notifications, endpoint alarms, dashboards and drift detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding
from mlops_infra.stages.refs import check_bucket_ref


@dataclass(frozen=True)
class MonitoringOutputs:
    channel: Any  # notification channel id
    alarms: dict[str, list[Any]]  # model name -> alarm ids (used for rollback)

    def exports(self) -> dict[str, Any]:
        return {"notification_channel": self.channel}


def _used_at(spec: SpecBase) -> list:
    paths: list = [("models", i, "monitoring") for i, m in enumerate(spec.models) if m.monitoring]
    if spec.monitoring.notify.emails or spec.monitoring.notify.webhook:
        paths.append(("monitoring", "notify"))
    return paths


def _check(spec: SpecBase) -> list:
    problems = []
    for i, model in enumerate(spec.models):
        mon = model.monitoring
        if mon is None:
            continue
        path = ("models", i, "monitoring")
        endpoint_metrics = mon.latency_p99_ms or mon.error_rate_percent or mon.min_invocations_per_hour
        if endpoint_metrics and model.serving is None:
            problems.append(
                finding(
                    path,
                    "endpoint alarms need a serving block on this model",
                    hint="add serving: or remove latency/error thresholds",
                )
            )
        if mon.drift is None:
            continue
        drift_path = (*path, "drift")
        if model.serving is None:
            problems.append(
                finding(drift_path, "drift monitoring needs a serving block on this model", hint="add serving:")
            )
        elif model.serving.data_capture is None:
            problems.append(
                finding(
                    drift_path,
                    "drift monitoring compares captured requests with the baseline, but data capture is off",
                    hint=f"add models[{i}].serving.data_capture: {{sampling_percent: 20}}",
                )
            )
        problems += check_bucket_ref(spec, mon.drift.baseline, (*drift_path, "baseline"))
    return problems


STAGE = Stage(
    name="monitoring",
    title="Monitoring",
    requires=("governance", "storage", "serving"),
    used_at=_used_at,
    checks=(_check,),
)
