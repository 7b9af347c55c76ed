"""Kubernetes training: per model a suspended CronJob holding the training Job's template (start a
run with `kubectl create job --from=cronjob/NAME`; retraining schedules the same template), and a
one-off Job when run_on_deploy asks. Argo Workflows or Kubeflow's trainer are not used (no opt-in yet)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import CRONJOB, container, env_list, metadata, name, pod_spec
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.spec.common import DataRef
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.tracking import TrackingOutputs
from mlops_infra.stages.training import TrainingOutputs, checkpoint_prefix, output_prefix

# A date that never comes (February 31st): the training CronJob is a template, and suspended too.
NEVER = "0 0 31 2 *"


@dataclass(frozen=True)
class JobTemplates:
    """Training hands each model's Job template to retraining, which schedules it."""

    templates: dict[str, Any]  # model name -> a batch/v1 JobTemplateSpec


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    from mlops_infra.backends.kubernetes import BACKEND

    problems = []
    for i, model in enumerate(spec.models):
        training = model.training
        if training is None:
            continue
        path = ("models", i, "training")
        if training.spot:
            problems.append(BACKEND.gap("models[].training.spot", (*path, "spot"), value=True))
        if training.max_wait is not None:
            problems.append(BACKEND.gap("models[].training.max_wait", (*path, "max_wait"), value=training.max_wait))
        if training.compute.instance_count > 1:
            problems.append(finding((*path, "compute", "instance_count"),
                                    "a Kubernetes Job trains on one pod: distributed training needs Kubeflow's "
                                    "trainer or Argo Workflows, which mlops-infra does not deploy",
                                    hint="set instance_count: 1", value=training.compute.instance_count))  # fmt: skip
    return problems


def uri_of(storage: StorageOutputs, ref: DataRef | str) -> Any:
    import pulumi

    bucket, prefix = (ref, "") if isinstance(ref, str) else (ref.bucket, ref.prefix)
    return pulumi.Output.concat(storage.buckets[bucket].uri, "/", prefix)


def job_template(ctx: StageContext, model: Any) -> dict[str, Any]:
    import pulumi

    training = model.training
    storage = ctx.upstream.of(StorageOutputs)
    tracking = ctx.upstream.find(TrackingOutputs)
    reader = ctx.upstream.of(GovernanceOutputs).reader(model)
    env = env_list({f"HP_{k.upper()}": v for k, v in training.hyperparameters.items()})
    env += env_list(dict(training.environment))
    env += [
        {"name": "OUTPUT_URI", "value": pulumi.Output.concat(storage.artifacts.uri, "/", output_prefix(model.name))},
        {"name": "CHECKPOINT_URI", "value": pulumi.Output.concat(storage.artifacts.uri, "/", checkpoint_prefix(model.name))},
        {"name": "INPUT_URIS", "value": pulumi.Output.all(*[uri_of(storage, r) for r in training.inputs]).apply(",".join)},
        *common.store_env(ctx),
    ]  # fmt: skip
    if tracking is not None:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": tracking.tracking_uri})
    if model.registry is not None:
        from mlops_infra.backends.kubernetes.registry import registered_name

        env.append({"name": "MLFLOW_REGISTERED_MODEL", "value": registered_name(ctx, model.name)})
        env.append({"name": "MLOPS_APPROVAL", "value": model.registry.approval})
    if training.evaluation is not None:
        env.append({"name": "MLOPS_EVALUATION", "value": json.dumps(training.evaluation.model_dump(mode="json"))})
    trainer = container("train", training.image, env=env, resources=common.resources(training.compute.requirements))
    return {
        "metadata": {"labels": common.labels(ctx, **{"mlops-infra/model": model.name})},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": training.max_runtime,
            "ttlSecondsAfterFinished": 7 * 86400,
            "template": {
                "metadata": {"labels": common.labels(ctx, **{"mlops-infra/model": model.name})},
                "spec": pod_spec(reader.id, [trainer], restartPolicy="Never"),
            },
        },
    }  # fmt: skip


def build(ctx: StageContext) -> TrainingOutputs:
    import pulumi
    import pulumi_kubernetes as k8s

    ns = common.cluster(ctx).namespace
    storage = ctx.upstream.of(StorageOutputs)
    pipelines: dict[str, Any] = {}
    templates: dict[str, Any] = {}
    for model in ctx.models():
        if model.training is None:
            continue
        template = job_template(ctx, model)
        templates[model.name] = template
        cron_name = ctx.namer.name(CRONJOB, "train", model.name)
        k8s.batch.v1.CronJob(
            ctx.logical("template", model.name), metadata=metadata(ctx, cron_name, ns, **{"mlops-infra/model": model.name}),
            spec={"schedule": NEVER, "suspend": True, "concurrencyPolicy": "Forbid", "jobTemplate": template},
            opts=ctx.opts(),
        )  # fmt: skip
        pipelines[model.name] = f"cronjob/{cron_name}"
        if model.training.run_on_deploy:
            # A Job's pod template is immutable: its name follows the model's training, so a change runs anew.
            run_name = name(ctx, "train", model.name, common.digest(model.training.model_dump(mode="json")))
            k8s.batch.v1.Job(ctx.logical("run", model.name), metadata=metadata(ctx, run_name, ns),
                             spec=template["spec"], opts=ctx.opts())  # fmt: skip
    ctx.share(JobTemplates(templates=templates))
    outputs = {m: pulumi.Output.concat(storage.artifacts.uri, "/", output_prefix(m)) for m in pipelines}
    images = {m.name: m.training.image for m in ctx.models() if m.training is not None}
    return TrainingOutputs(pipelines=pipelines, output_uris=outputs, images=images)
