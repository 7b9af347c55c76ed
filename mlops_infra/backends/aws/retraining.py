"""AWS retraining: schedules and event rules that start a model's SageMaker training pipeline.

Per stack (when some model retrains):
- iam.RolePolicy "retraining" on the automation identity (assumed by EventBridge and
  EventBridge Scheduler, this account only): sagemaker:StartPipelineExecution on the stack's
  training pipelines, named by the stack's prefix (triggers.automation_grants). Nothing else:
  the pipeline runs as the training identity (training.py), so automation passes no role and
  reads no data.

Per model with `retraining` (and a training pipeline), each targeting that model's pipeline
(the training stage's TrainingOutputs.pipelines ARN) with the automation role, retrying for an
hour at most:
- schedule: scheduler.Schedule "<stack>-<model>-retrain" in the default group, the neutral
  cron translated to EventBridge Scheduler's cron(...) (triggers.scheduler_cron: '?' in the
  day field not used, weekdays 1-7 = SUN-SAT) in retraining.timezone (IANA), no flexible
  window. A cron restricting both day fields cannot be translated: a validation error.
- on_new_data: cloudwatch.EventRule "<stack>-<model>-newdata" on S3 "Object Created" events of
  the bucket, filtered by the prefix (the storage stage turns the bucket's EventBridge
  notifications on), and a cloudwatch.EventTarget starting the pipeline. Every new object is
  one event: upload a dataset as one object (or under a prefix that receives one object per
  version), or expect one execution per object.
- on_drift: cloudwatch.EventRule "<stack>-<model>-drift" on the model's drift alarm (monitoring
  stage, named by naming.alarm_name) entering ALARM, and a cloudwatch.EventTarget starting the
  pipeline.

Split specs: the grant is stack-wide and lives in the shared stack; each model stack holds its
models' schedules, rules and targets.

The pipeline is a templated target (its ARN as the target's ARN), rather than the universal
target arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution: the same target shape as
the EventBridge rules, and the plan shows each trigger wired to its pipeline resource.
EventBridge Scheduler schedules take no tags (their groups do; the stack uses the default group).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws.naming import (
    alarm_name,
    inline_policy_name,
    rule_name,
    schedule_name,
    stack_prefix,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.retraining import RetrainingOutputs
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.training import TrainingOutputs

if TYPE_CHECKING:
    import pulumi

SCHEDULE_GROUP = "default"
TARGET_ID = "pipeline"


def check(spec: Any, settings: Any) -> list[Problem]:
    """Schedules EventBridge Scheduler cannot express."""
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        retrain = model.retraining
        if retrain is not None and retrain.schedule:
            problems += check_cron(retrain.schedule, ("models", i, "retraining", "schedule"),
                                   gap="models[].retraining.schedule")
    return problems


def check_cron(cron: str, path: tuple, *, gap: str) -> list[Problem]:
    """A neutral cron EventBridge Scheduler cannot express: the backend's gap `gap`, or untranslatable."""
    if triggers.restricts_either_day(cron):
        return [BACKEND.gap(gap, path, value=cron)]
    try:
        triggers.scheduler_cron(cron)
    except triggers.UntranslatableCron as exc:
        return [finding(path, str(exc), hint="use fewer distinct minutes, hours or days", value=cron)]
    return []


def build(ctx: StageContext) -> RetrainingOutputs:
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    training = ctx.upstream.find(TrainingOutputs)
    pipelines = dict(training.pipelines) if training is not None else {}  # this stack's pipelines
    automation = gov.identities["automation"]

    # The grant exists once per stack when any model retrains: decided from every model (a
    # trained model has a pipeline in its own stack), so that all stacks of a split agree. A
    # model stack does not wait for it (None): the shared stack holding it is deployed first.
    grant = None
    if ctx.builds_stack and any(m.retraining is not None and m.training is not None for m in spec.models):
        partition = policies.partition_of(region)
        prefix = stack_prefix(ctx.namer, "aws.sagemaker.pipeline")
        grant = aws.iam.RolePolicy(
            ctx.logical("grant", "automation"),
            name=inline_policy_name(ctx.namer, "retraining"),
            role=automation.id,
            policy=json.dumps(triggers.automation_grants(partition=partition, region=region,
                                                       account_id=ctx.settings.account_id, pipelines=prefix)),
            opts=ctx.opts(),
        )
    ids: dict[str, list[Any]] = {}
    for model in ctx.models():
        if model.retraining is not None and model.name in pipelines:
            ids[model.name] = _triggers(ctx, model, pipeline=pipelines[model.name], role=automation.principal,
                                        grant=grant)
    return RetrainingOutputs(triggers=ids)


def _triggers(ctx: StageContext, model: Any, *, pipeline: Any, role: Any, grant: Any | None) -> list[Any]:
    import pulumi

    spec = ctx.spec
    storage = ctx.upstream.of(StorageOutputs)
    retrain = model.retraining
    name = model.name
    what = f"mlops-infra {spec.project}/{spec.environment}: retrain {name}"
    # The role must hold its grant before a trigger first fires.
    opts = ctx.opts(depends_on=ctx.waits(grant))
    ids: list[Any] = []

    if retrain.schedule:
        schedule = pipeline_schedule(ctx.logical("schedule", name), name=schedule_name(ctx.namer, name),
                                     what=what, cron=retrain.schedule, timezone=retrain.timezone, pipeline=pipeline,
                                     role=role, opts=opts)
        if schedule is not None:
            ids.append(schedule)

    new_data = retrain.new_data_ref
    if new_data is not None and new_data.bucket in storage.buckets:
        pattern: pulumi.Input[str] = pulumi.Output.from_input(storage.buckets[new_data.bucket].physical).apply(
            lambda bucket: json.dumps(triggers.new_data_pattern(bucket, new_data.prefix)))
        where = f"storage bucket {new_data.bucket}" + (f" under {new_data.prefix}" if new_data.prefix else "")
        ids.append(pipeline_rule(ctx, name, "newdata", pattern=pattern, description=f"{what} when objects arrive in {where}",
                         pipeline=pipeline, role=role, opts=opts))

    if retrain.on_drift and model.monitoring is not None and model.monitoring.drift is not None:
        pattern = json.dumps(triggers.alarm_pattern(alarm_name(ctx.namer, name, "drift")))
        ids.append(pipeline_rule(ctx, name, "drift", pattern=pattern, description=f"{what} when its drift alarm fires",
                         pipeline=pipeline, role=role, opts=opts))
    return ids


def pipeline_schedule(
    logical: str, *, name: str, what: str, cron: str, timezone: str, pipeline: Any, role: Any,
    opts: pulumi.ResourceOptions,
) -> Any:
    """A Scheduler schedule starting `pipeline` as `role` on a neutral cron; its name (None when the
    cron cannot be translated: a validation error)."""
    import pulumi_aws as aws

    try:
        expression = triggers.scheduler_cron(cron)
    except triggers.UntranslatableCron:
        return None
    schedule = aws.scheduler.Schedule(
        logical,
        name=name,
        group_name=SCHEDULE_GROUP,
        description=f"{what} on '{cron}' ({timezone})",
        schedule_expression=expression,
        schedule_expression_timezone=timezone,
        flexible_time_window={"mode": "OFF"},
        state="ENABLED",
        action_after_completion="NONE",
        target={"arn": pipeline, "role_arn": role, "retry_policy": triggers.RETRY_POLICY.copy()},
        opts=opts,
    )
    return schedule.name


def pipeline_rule(
    ctx: StageContext, model: str, purpose: str, *, pattern: Any, description: str, pipeline: Any, role: Any,
    opts: pulumi.ResourceOptions,
) -> Any:
    import pulumi_aws as aws

    rule = aws.cloudwatch.EventRule(
        ctx.logical("rule", purpose, model),
        name=rule_name(ctx.namer, model, purpose),
        description=description,
        event_pattern=pattern,
        state="ENABLED",
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    aws.cloudwatch.EventTarget(
        ctx.logical("target", purpose, model),
        rule=rule.name,
        target_id=TARGET_ID,
        arn=pipeline,
        role_arn=role,
        retry_policy=triggers.RETRY_POLICY.copy(),
        opts=opts,
    )
    return rule.name
