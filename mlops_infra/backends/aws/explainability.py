"""AWS explainability: Clarify explainability and bias monitoring, and model-quality monitoring.

Per served model capturing data, for each of monitoring.explainability, .bias, .model_quality:
- cloudcontrol.Resource (AWS::SageMaker::Model{Explainability,Bias,Quality}JobDefinition,
  explainability_jobs.definition): the Clarify image (explainability, bias) or Model Monitor's
  analyzer (model quality) over the endpoint's captured requests, against constraints.json (and
  Clarify's analysis_config.json) under the signal's baseline folder, bias and model quality
  joined with the ground-truth labels (model_quality.ground_truth), reports to
  s3://<artifacts>/monitoring/<model>/<signal>/ encrypted with the stack key, volumes encrypted
  with the key, network isolation, inter-container encryption, the stack's VpcConfig in a private
  network, run as the model's group identity. Job definitions are immutable: named by content, so
  a change creates a new one, moves the schedule to it and deletes the old one.
- sagemaker.MonitoringSchedule "<stack>-<model>-<signal>" (hourly or daily, in UTC).
- cloudwatch.EventRule "<stack>-<model>-<signal>-violations" (no target) on the schedule's
  executions that completed with violations, and cloudwatch.MetricAlarm "<stack>-<model>-<signal>"
  on its matches, notifying the stack's alert topic.

Grants: inline "explainability" on each group identity with monitored models
(explainability_jobs.signal_grants). What the stack cannot set itself is said by validate: the
baseline files (written by a baselining job) hold the facet, label, attribution-drift and
quality thresholds the jobs compare against.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import explainability_jobs as signals
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws.data_prep import vpc_statements
from mlops_infra.backends.aws.governance_network import PrivateNetwork, grants_of_group
from mlops_infra.backends.aws.naming import (
    bucket_name,
    content_name,
    endpoint_name,
    group_role_name,
    inline_policy_name,
    key_alias,
    rule_name,
    signal_alarm_name,
    signal_definition_prefix,
    signal_schedule_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.explainability import ExplainabilityOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs


def monitored(model: Any, region: str) -> list[str]:
    """The signals a model gets (validation reports what is left out and why)."""
    mon = model.monitoring
    if mon is None or model.serving is None or model.serving.data_capture is None:
        return []
    partition = policies.partition_of(region)
    out = []
    for signal in signals.SIGNALS:
        config = getattr(mon, signal)
        if config is None or alarms.monitor_cron(config.schedule) is None:
            continue
        if signals.image_for(signal, partition, region) is None:
            continue
        if signal == "bias" and mon.model_quality is None:
            continue
        out.append(signal)
    return out


def check(spec: Any, settings: Any) -> list[Problem]:
    """Schedules, regions and inputs SageMaker cannot monitor with, and what the baselines must hold."""
    namer = BACKEND.namer(spec, settings)
    region = settings.region
    partition = policies.partition_of(region)
    artifacts = bucket_name(namer, ARTIFACTS)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        mon = model.monitoring
        if mon is None:
            continue
        for signal in signals.SIGNALS:
            config = getattr(mon, signal)
            if config is None:
                continue
            path = ("models", i, "monitoring", signal)
            if alarms.monitor_cron(config.schedule) is None:
                problems.append(BACKEND.gap(f"models[].monitoring.{signal}.schedule", (*path, "schedule"),
                                            value=config.schedule))
            if signals.image_for(signal, partition, region) is None:
                problems.append(BACKEND.gap(f"models[].monitoring.{signal}", path))
            if signal == "bias" and mon.model_quality is None:
                problems.append(BACKEND.gap("models[].monitoring.bias.label", (*path, "label"), value=config.label))
            if signal in monitored(model, region):
                problems.append(_baseline_note(model, signal, path, artifacts=artifacts,
                                               physical=lambda b: bucket_name(namer, b)))
    return problems


def _baseline_note(model: Any, signal: str, path: tuple, *, artifacts: str, physical: Any) -> Problem:
    """A warning saying which files the job reads and what they must hold (the spec's thresholds)."""
    bucket, prefix = signals.baseline_prefix(signal, model)
    where = f"s3://{artifacts if bucket == ARTIFACTS else physical(bucket)}/{prefix}"
    config = getattr(model.monitoring, signal)
    if signal == "model_quality":
        field, must = "metric", (f"its {config.metric} constraint with threshold {config.threshold} "
                                 f"({signals.PROBLEM_TYPES[config.problem_type]})")
        how = ("ModelQualityMonitor.suggest_baseline over labelled predictions, output to that folder; "
               "ground-truth records must carry the captured requests' inference ids")
    elif signal == "bias":
        field, must = "facet", f"facet {config.facet!r} and label {config.label!r}"
        how = "ModelBiasMonitor.suggest_baseline with a BiasConfig and DataConfig, output to that folder"
    else:
        field, must = "max_attribution_drift", f"an attribution-drift threshold of {config.max_attribution_drift}"
        how = "ModelExplainabilityMonitor.suggest_baseline with a SHAPConfig, output to that folder"
    files = signals.CONSTRAINTS_FILE if signal == "model_quality" else (
        f"{signals.CONFIG_FILE} and {signals.CONSTRAINTS_FILE}")
    return finding(
        (*path, field),
        f"SageMaker {signals.WORDS[signal]} monitoring of {model.name!r} reads {files} from {where}: the job "
        f"compares with what they say, which must be {must}",
        hint=f"write them with a baselining job (SageMaker Python SDK: {how}). Model Monitor is closed to new AWS "
        "customers: accounts that never used it cannot create schedules",
        severity="warning",
    )


def build(ctx: StageContext) -> ExplainabilityOutputs:
    region = ctx.settings.region
    serving = ctx.upstream.find(ServingOutputs)
    endpoint_of = dict(serving.endpoints) if serving is not None else {}
    if ctx.builds_stack:
        _grants(ctx)
    monitors: dict[str, list[Any]] = {}
    for model in ctx.models():
        if model.name not in endpoint_of:
            continue
        for signal in monitored(model, region):
            monitors.setdefault(model.name, []).append(
                _signal(ctx, model, signal, endpoint=endpoint_of[model.name]))
    return ExplainabilityOutputs(monitors=monitors)


def _signal(ctx: StageContext, model: Any, signal: str, *, endpoint: Any) -> Any:
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    channel = ctx.upstream.of(MonitoringOutputs).channel
    network = ctx.upstream.find(PrivateNetwork)
    partition = policies.partition_of(region)
    config = getattr(model.monitoring, signal)
    image = signals.image_for(signal, partition, region)
    assert image is not None  # monitored() leaves out regions without the image
    instance_type = alarms.monitor_instance_type(settings)
    artifacts = bucket_name(ctx.namer, ARTIFACTS)
    bucket, prefix = signals.baseline_prefix(signal, model)
    truth = model.monitoring.model_quality.ground_truth if signal in ("bias", "model_quality") else None

    def job(**values: Any) -> signals.SignalJob:
        return signals.SignalJob(
            signal=signal, image=image, instance_type=instance_type,
            volume_encrypted=not catalog.has_instance_storage(instance_type),
            problem_type=signals.PROBLEM_TYPES[config.problem_type] if signal == "model_quality" else None,
            **values)

    def physical(name: str) -> str:
        return artifacts if name == ARTIFACTS else bucket_name(ctx.namer, name)

    # The name hashes the definition as known before deployment (physical names for the ARNs and
    # URIs the cloud assigns, the key's alias for the key); tags stay out.
    known = signals.definition(job(
        name="", endpoint=endpoint_name(ctx.namer, model.name), baseline=f"s3://{physical(bucket)}/{prefix}",
        output=f"s3://{artifacts}/{signals.output_prefix(signal, model.name)}",
        ground_truth=f"s3://{physical(truth.bucket)}/{truth.prefix}" if truth is not None else None,
        key_arn=key_alias(ctx.namer),
        role_arn=policies.role_arn(partition, ctx.settings.account_id,
                                   group_role_name(ctx.namer, group_of(model), region)),
        vpc=network.vpc_config(known=True) if network is not None else None,
    ))
    name = content_name(signal_definition_prefix(ctx.namer, model.name, signal), known)

    def uri(bucket: str, prefix: str) -> Any:
        base = storage.artifacts.uri if bucket == ARTIFACTS else storage.buckets[bucket].uri
        return pulumi.Output.from_input(base).apply(lambda u: f"{u}/{prefix}")

    def state(values: list[Any]) -> str:
        endpoint_value, baseline, output, ground, key, role, vpc = values
        return json.dumps(signals.definition(job(
            name=name, endpoint=endpoint_value, baseline=baseline, output=output, ground_truth=ground,
            key_arn=key, role_arn=role, vpc=vpc, tags=tuple(sorted(ctx.tags().items())))), sort_keys=True)

    definition = aws.cloudcontrol.Resource(
        ctx.logical("definition", signal, model.name),
        type_name=signals.KINDS[signal][0],
        desired_state=pulumi.Output.all(
            endpoint, uri(bucket, prefix), uri(ARTIFACTS, signals.output_prefix(signal, model.name)),
            uri(truth.bucket, truth.prefix) if truth is not None else None,
            gov.key_id, gov.reader(model).principal, network.vpc_config() if network is not None else None,
        ).apply(state),
        opts=ctx.opts(),
    )
    schedule = signal_schedule_name(ctx.namer, model.name, signal)
    expression = alarms.monitor_cron(config.schedule)
    assert expression is not None  # monitored() leaves out what Model Monitor cannot run
    aws.sagemaker.MonitoringSchedule(
        ctx.logical("schedule", signal, model.name),
        name=schedule,
        monitoring_schedule_config={
            "monitoring_type": signals.KINDS[signal][2],
            "monitoring_job_definition_name": definition.id.apply(lambda _: name),
            "schedule_config": {"schedule_expression": expression},
        },
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    rule = aws.cloudwatch.EventRule(
        ctx.logical("violations", signal, model.name),
        name=rule_name(ctx.namer, model.name, f"{signal.replace('_', '-')}-violations"),
        description=f"mlops-infra {spec.project}/{spec.environment}: {signals.WORDS[signal]} checks of {model.name} "
        "that found violations",
        event_pattern=json.dumps(alarms.violations_pattern(schedule)),
        state="ENABLED",
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    alarm = aws.cloudwatch.MetricAlarm(
        ctx.logical("alarm", signal, model.name),
        name=signal_alarm_name(ctx.namer, model.name, signal),
        alarm_description=f"mlops-infra {spec.project}/{spec.environment}: the {config.schedule} "
        f"{signals.WORDS[signal]} check of {model.name} found violations of its baseline",
        **alarms.drift_alarm(rule=rule.name),
        alarm_actions=[channel],
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    return alarm.name


def _grants(ctx: StageContext) -> None:
    """Each group identity's "explainability" policy (stack-wide: decided from the whole spec)."""
    import pulumi
    import pulumi_aws as aws

    spec, region, account = ctx.spec, ctx.settings.region, ctx.settings.account_id
    gov = ctx.upstream.of(GovernanceOutputs)
    network = ctx.upstream.find(PrivateNetwork)
    partition = policies.partition_of(region)
    artifacts = bucket_name(ctx.namer, ARTIFACTS)
    by_group: dict[str, list[str]] = {}
    for model in spec.models:
        if monitored(model, region):
            by_group.setdefault(group_of(model), []).append(model.name)
    for group, models in sorted(by_group.items()):

        def document(values: list[Any], models: list[str] = models, group: str = group) -> str:
            key, vpc = values
            vpc_grants = vpc_statements(partition=partition, region=region, account_id=account,
                                        vpc_id=grants_of_group(spec, group, vpc, region))
            return json.dumps(signals.signal_grants(partition=partition, region=region, account_id=account,
                                                    artifacts=artifacts, models=sorted(models), key_arn=key,
                                                    network=vpc_grants))

        aws.iam.RolePolicy(
            ctx.logical("grant", group),
            name=inline_policy_name(ctx.namer, "explainability"),
            role=gov.groups[group].id,
            policy=pulumi.Output.all(gov.key_id, network.vpc_id if network is not None else None).apply(document),
            opts=ctx.opts(),
        )
