"""Kubernetes retraining: a CronJob per model that runs its training Job template on the schedule
(in the schedule's time zone). Kubernetes has no event source for new objects or alerts, so
on_new_data and on_drift are validate warnings saying what would carry the event (Backend.gaps)."""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import CRONJOB, metadata
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.backends.kubernetes.training import JobTemplates
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.retraining import RetrainingOutputs


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    from mlops_infra.backends.kubernetes import BACKEND

    problems = []
    for i, model in enumerate(spec.models):
        retraining = model.retraining
        if retraining is None:
            continue
        path = ("models", i, "retraining")
        if retraining.on_new_data is not None:
            problems.append(BACKEND.gap("models[].retraining.on_new_data", (*path, "on_new_data")))
        if retraining.on_drift:
            problems.append(BACKEND.gap("models[].retraining.on_drift", (*path, "on_drift"), value=True))
    return problems


def build(ctx: StageContext) -> RetrainingOutputs:
    import pulumi_kubernetes as k8s

    ns = common.cluster(ctx).namespace
    templates = ctx.upstream.of(JobTemplates).templates
    triggers: dict[str, list[Any]] = {}
    for model in ctx.models():
        retraining = model.retraining
        if retraining is None or retraining.schedule is None or model.name not in templates:
            continue
        cron_name = ctx.namer.name(CRONJOB, "retrain", model.name)
        k8s.batch.v1.CronJob(
            ctx.logical("schedule", model.name),
            metadata=metadata(ctx, cron_name, ns, **{"mlops-infra/model": model.name}),
            spec={"schedule": retraining.schedule, "timeZone": retraining.timezone, "concurrencyPolicy": "Forbid",
                  "startingDeadlineSeconds": 3600, "jobTemplate": templates[model.name]},
            opts=ctx.opts(),
        )  # fmt: skip
        triggers[model.name] = [f"cronjob/{cron_name}"]
    return RetrainingOutputs(triggers=triggers)
