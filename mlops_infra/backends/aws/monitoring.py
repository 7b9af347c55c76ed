"""AWS monitoring: the stack's alert channel, endpoint alarms, the dashboard, drift monitoring.

Per stack:
- sns.Topic "<stack>-alerts": the notification channel, encrypted with the stack key (the
  key policy lets CloudWatch use the key for the stack's alarms only, see governance.py), a
  sns.TopicPolicy letting CloudWatch publish the stack's alarms (aws:SourceAccount and the
  alarm name prefix) and nobody else, and one sns.TopicSubscription per monitoring.notify
  email (protocol email: each address confirms once by mail) and for the webhook (protocol
  https: the endpoint confirms by visiting the SubscribeURL SNS posts to it first; messages
  arrive as SNS JSON envelopes).
- cloudwatch.Dashboard "<stack>-models" (monitoring.dashboard): rendered from
  templates/aws/dashboard.json.j2, a row per served model (invocations, p99 latency in ms,
  4xx/5xx errors, running instances). CloudWatch takes 500 widgets per dashboard, so a stack
  serving more than 124 models gets pages "<stack>-models-2", ... (models by name).

Per served model with monitoring thresholds, a cloudwatch.MetricAlarm each (names from
naming.alarm_name: the serving stage's rollback alarms are exactly the latency and errors ones):
- latency: p99 ModelLatency above latency_p99_ms x 1000 (ModelLatency is in microseconds);
- errors: 100 x Invocation5XXErrors / Invocations above error_rate_percent (metric math);
- traffic: fewer Invocations in an hour than min_invocations_per_hour (no data = no traffic).
All on the model's endpoint (EndpointName from the serving stage, VariantName "primary"), with
the topic as alarm and OK action. MonitoringOutputs.alarms lists the latency and errors alarms
(what a rollout rolls back on); the retraining stage finds the drift alarm by its name.

Per model with monitoring.drift (and a served endpoint capturing data):
- sagemaker.DataQualityJobDefinition: the built-in Model Monitor analyzer over the endpoint's
  captured requests (s3://<artifacts>/data-capture/<model>/, which the endpoint writes) against
  the baseline's statistics.json and constraints.json under drift.baseline (bucket + prefix),
  reports to s3://<artifacts>/monitoring/<model>/ encrypted with the stack key, volumes
  encrypted with the key, network isolation and inter-container encryption (and the stack's
  VpcConfig in a private network), run as the model's group identity. Immutable: named by
  content (naming.content_name), so a change creates the new definition, moves the schedule to
  it, then deletes the old one.
- sagemaker.MonitoringSchedule "<stack>-<model>": DRIFT_SCHEDULES[drift.schedule] as Model
  Monitor's UTC cron (hourly or daily; weekly is a validation error).
- cloudwatch.EventRule "<stack>-<model>-violations" (no target): matches the schedule's
  executions that completed with violations; the drift alarm counts its matches.
- cloudwatch.MetricAlarm "<stack>-<model>-drift": at least one such execution in the last hour,
  notifying the topic (and, with retraining.on_drift, starting the pipeline: retraining.py).

Split specs: everything "per stack" above lives in the shared stack, the dashboard still with a
row per served model of the whole spec (it names the endpoints, which are built in the model
stacks); model stacks hold their models' alarms and drift resources and read the topic's ARN
from the shared stack (ctx.shared "topic").

Who runs the monitoring jobs: the model's group identity (governance.py, governance_grants.py), the one that
trains it. It reads the group's data (the drift baselines included) and exactly its models'
captured requests, writes their reports under monitoring/<model>/, and attaches the stack's
"monitoring" managed policy (the analyzer image, the processing logs, the key, EBS volumes).
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws.naming import (
    ALARM_KINDS,
    alarm_name,
    bucket_name,
    content_name,
    dashboard_name,
    endpoint_name,
    group_role_name,
    key_alias,
    monitoring_definition_prefix,
    monitoring_schedule_name,
    rule_name,
    stack_prefix,
    topic_name,
)
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.serving import ServingOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs


def check(spec: Any, settings: Any) -> list[Problem]:
    """What SageMaker Model Monitor and CloudWatch dashboards cannot do as the spec says."""
    namer = BACKEND.namer(spec, settings)
    region = settings.region
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        drift = model.monitoring.drift if model.monitoring else None
        if drift is None:
            continue
        path = ("models", i, "monitoring", "drift")
        if alarms.monitor_cron(drift.schedule) is None:
            problems.append(BACKEND.gap("models[].monitoring.drift.schedule", (*path, "schedule"),
                                        value=drift.schedule))
        if alarms.analyzer_image(policies.partition_of(region), region) is None:
            problems.append(BACKEND.gap("models[].monitoring.drift", path))
        ref = drift.baseline_ref
        uris = alarms.baseline_uris(bucket_name(namer, ref.bucket), ref.prefix)
        problems.append(finding(
            (*path, "baseline"),
            f"SageMaker Model Monitor compares {model.name!r}'s captured requests with a baseline's statistics "
            f"and constraints: the stack reads {uris['statistics']} and {uris['constraints']}",
            hint="write them with a baselining job over the baseline data (SageMaker Python SDK: "
            "DefaultModelMonitor.suggest_baseline, output to that prefix); requests must be tabular (CSV or "
            "flat JSON). Model Monitor is closed to new AWS customers: accounts that never used it cannot "
            "create schedules",
            severity="warning",
        ))
    served = [m for m in spec.models if m.serving is not None]
    if spec.monitoring.dashboard and len(served) > alarms.MODELS_PER_DASHBOARD:
        pages = len(alarms.pages([m.name for m in served]))
        problems.append(finding(
            ("monitoring", "dashboard"),
            f"a CloudWatch dashboard holds at most {alarms.MAX_WIDGETS} widgets ({alarms.MODELS_PER_DASHBOARD} "
            f"served models): the {len(served)} served models are shown on {pages} dashboards",
            hint="set monitoring.dashboard: false to create none", severity="warning",
        ))
    return problems


def build(ctx: StageContext) -> MonitoringOutputs:
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    serving = ctx.upstream.find(ServingOutputs)
    partition = policies.partition_of(region)

    # --- the channel (stack-wide: model stacks read its ARN from the shared stack) ------------
    actions = [ctx.shared("topic", lambda: _channel(ctx, partition=partition))]

    # --- endpoint alarms -------------------------------------------------------------------
    endpoint_of = dict(serving.endpoints) if serving is not None else {}  # this stack's endpoints
    names: dict[str, list[Any]] = {}
    for model in ctx.models():
        mon = model.monitoring
        if mon is None or model.name not in endpoint_of:
            continue
        for kind, args, description in endpoint_alarms(model, endpoint_of[model.name]):
            alarm = aws.cloudwatch.MetricAlarm(
                ctx.logical("alarm", kind, model.name),
                name=alarm_name(ctx.namer, model.name, kind),
                alarm_description=f"mlops-infra {spec.project}/{spec.environment}: {description}",
                **args,
                alarm_actions=actions,
                ok_actions=actions,
                tags=ctx.tags(),
                opts=ctx.opts(),
            )
            if kind in ALARM_KINDS:  # MonitoringOutputs.alarms: what a rollout rolls back on
                names.setdefault(model.name, []).append(alarm.name)

    # --- drift -----------------------------------------------------------------------------
    for model in ctx.models():
        if alarms.monitors_drift(model, region):
            _drift(ctx, model, endpoint=endpoint_of[model.name], actions=actions, partition=partition)

    # --- dashboard -------------------------------------------------------------------------
    served = [m.name for m in spec.models if m.serving is not None]  # a row each, whichever stack serves it
    if ctx.builds_stack and spec.monitoring.dashboard and served:
        _dashboards(ctx, served, endpoint_of)

    return MonitoringOutputs(channel=actions[0], alarms=names)


def _channel(ctx: StageContext, *, partition: str) -> Any:
    """The stack's alert topic, its policy and its subscriptions; returns the topic's ARN."""
    import pulumi_aws as aws

    spec, region, account = ctx.spec, ctx.settings.region, ctx.settings.account_id
    gov = ctx.upstream.of(GovernanceOutputs)
    alarm_pattern = policies.alarm_arn(partition, region, account, stack_prefix(ctx.namer, "aws.cloudwatch.alarm") + "*")
    name = topic_name(ctx.namer)
    topic = aws.sns.Topic(
        ctx.logical("topic"),
        name=name,
        display_name=f"mlops-infra {spec.project}/{spec.environment} alerts",
        kms_master_key_id=gov.key_id,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    aws.sns.TopicPolicy(
        ctx.logical("topicpolicy"),
        arn=topic.arn,
        policy=json.dumps(alarms.topic_policy(topic=alarms.topic_arn(partition, region, account, name),
                                              account_id=account, alarms=alarm_pattern)),
        opts=ctx.opts(),
    )
    notify = spec.monitoring.notify
    for email in sorted(set(notify.emails)):
        aws.sns.TopicSubscription(
            ctx.logical("email", email), topic=topic.arn, protocol="email", endpoint=email, opts=ctx.opts())
    if notify.webhook:
        aws.sns.TopicSubscription(
            ctx.logical("webhook"), topic=topic.arn, protocol="https", endpoint=notify.webhook,
            endpoint_auto_confirms=False, opts=ctx.opts())
    return topic.arn


def endpoint_alarms(model: Any, endpoint: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, MetricAlarm arguments, description) of each endpoint alarm the model's monitoring asks for."""
    mon, variant, name = model.monitoring, endpoints.VARIANT, model.name
    out = []
    if mon.latency_p99_ms is not None:
        out.append(("latency", alarms.latency_alarm(endpoint=endpoint, variant=variant, threshold_ms=mon.latency_p99_ms),
                    f"p99 model latency of {name} above {mon.latency_p99_ms} ms"))
    if mon.error_rate_percent is not None:
        out.append(("errors", alarms.error_alarm(endpoint=endpoint, variant=variant, percent=mon.error_rate_percent),
                    f"5xx responses of {name} above {mon.error_rate_percent}% of invocations"))
    if mon.min_invocations_per_hour is not None:
        out.append(("traffic", alarms.traffic_alarm(endpoint=endpoint, variant=variant,
                                                    minimum=mon.min_invocations_per_hour),
                    f"fewer than {mon.min_invocations_per_hour} invocations of {name} in an hour"))
    return out


def _drift(ctx: StageContext, model: Any, *, endpoint: Any, actions: list[Any], partition: str) -> None:
    import pulumi
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    name = model.name
    drift = model.monitoring.drift
    baseline = drift.baseline_ref
    image = alarms.analyzer_image(partition, region)
    instance_type = alarms.monitor_instance_type(ctx.settings)
    network = ctx.upstream.find(PrivateNetwork)

    def job(**values: Any) -> alarms.DriftJob:
        return alarms.DriftJob(image=image, instance_type=instance_type,
                               volume_encrypted=not catalog.has_instance_storage(instance_type), **values)

    # The name hashes the definition as it is known before deployment (physical names stand
    # for the ARNs and URIs the cloud assigns); tags stay out (updated in place).
    known_uris = alarms.baseline_uris(bucket_name(ctx.namer, baseline.bucket), baseline.prefix)
    known = job(
        endpoint=endpoint_name(ctx.namer, name), statistics=known_uris["statistics"],
        constraints=known_uris["constraints"],
        output=alarms.monitoring_output(f"s3://{bucket_name(ctx.namer, ARTIFACTS)}", name),
        key_arn=key_alias(ctx.namer),
        role_arn=policies.role_arn(partition, ctx.settings.account_id,
                                   group_role_name(ctx.namer, group_of(model), region)),
        vpc=network.vpc_config(known=True) if network is not None else None,
    )
    uris = pulumi.Output.from_input(storage.buckets[baseline.bucket].physical).apply(
        lambda bucket: alarms.baseline_uris(bucket, baseline.prefix))
    definition = aws.sagemaker.DataQualityJobDefinition(
        ctx.logical("drift", name),
        name=content_name(monitoring_definition_prefix(ctx.namer, name), alarms.data_quality_args(known)),
        **alarms.data_quality_args(job(
            endpoint=endpoint, statistics=uris["statistics"], constraints=uris["constraints"],
            output=pulumi.Output.from_input(storage.artifacts.uri).apply(
                lambda uri: alarms.monitoring_output(uri, name)),
            key_arn=gov.key_id, role_arn=gov.reader(model).principal,
            vpc=network.vpc_config() if network is not None else None,
        )),
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    schedule = monitoring_schedule_name(ctx.namer, name)
    expression = alarms.monitor_cron(drift.schedule)
    assert expression is not None  # monitors_drift() left out the schedules Model Monitor cannot run
    aws.sagemaker.MonitoringSchedule(
        ctx.logical("schedule", name),
        name=schedule,
        monitoring_schedule_config={
            "monitoring_type": "DataQuality",
            "monitoring_job_definition_name": definition.name,
            "schedule_config": {"schedule_expression": expression},
        },
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    rule = aws.cloudwatch.EventRule(
        ctx.logical("violations", name),
        name=rule_name(ctx.namer, name, "violations"),
        description=f"mlops-infra {spec.project}/{spec.environment}: drift checks of {name} that found violations",
        event_pattern=json.dumps(alarms.violations_pattern(schedule)),
        state="ENABLED",
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    aws.cloudwatch.MetricAlarm(
        ctx.logical("alarm", "drift", name),
        name=alarm_name(ctx.namer, name, "drift"),
        alarm_description=f"mlops-infra {spec.project}/{spec.environment}: the {drift.schedule} data-quality check "
        f"of {name} found its captured requests drifting from the baseline",
        **alarms.drift_alarm(rule=rule.name),
        alarm_actions=actions,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def _dashboards(ctx: StageContext, served: list[str], endpoint_of: dict[str, Any]) -> None:
    """Dashboards with a row per served model of the whole spec, `endpoint_of` or not."""
    import pulumi
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    by_name = {m.name: m for m in spec.models}

    def endpoint(model: str) -> Any:
        # The serving stage's output where this stack built the endpoint (unsplit), else its
        # name, known in advance: in a split spec the endpoints are in the model stacks.
        return endpoint_of.get(model, endpoint_name(ctx.namer, model))

    for number, page in enumerate(alarms.pages(served), start=1):
        title = f"mlops-infra {spec.project}/{spec.environment}: served models"
        if number > 1:
            title += f" (page {number})"

        def body(names: list[str], page: list[str] = page, title: str = title) -> str:
            rows = []
            for model, endpoint in zip(page, names):
                mon = by_name[model].monitoring
                rows.append(alarms.Row(model=model, endpoint=endpoint,
                                       latency_ms=mon.latency_p99_ms if mon else None,
                                       error_percent=mon.error_rate_percent if mon else None))
            return json.dumps(alarms.dashboard_body(region=region, title=title, rows=rows,
                                                    variant=endpoints.VARIANT))

        aws.cloudwatch.Dashboard(
            ctx.logical("dashboard", *([str(number)] if number > 1 else [])),
            dashboard_name=dashboard_name(ctx.namer, number),
            dashboard_body=pulumi.Output.all(*[endpoint(m) for m in page]).apply(body),
            opts=ctx.opts(),
        )
