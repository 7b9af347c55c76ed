"""AWS data preparation: per model, a SageMaker pipeline of one Processing step, and its triggers.

Per model with `data_prep` (its own pipeline: the training pipeline is left as it is):
- ecr.Repository "<stack>-<model>-prep": where the preparation image lives when the spec names
  one SageMaker cannot pull (as for training: training_jobs.py); protected, the stack key.
- sagemaker.Pipeline "<stack>-<model>-prep": a Processing step (data_prep_jobs.py) running the
  image on the catalog's processing instance for data_prep.compute, each input copied under
  /opt/ml/processing/input/<n>, /opt/ml/processing/output uploaded to the output prefix (which
  training reads) encrypted with the stack key, volumes encrypted with the key, network
  isolation, inter-container encryption, the stack's VpcConfig in a private network, stopped
  after max_runtime, run as the model's group identity.
- schedule: scheduler.Schedule "<stack>-<model>-prep" (the neutral cron in data_prep.timezone,
  as retraining translates it); on_new_data: cloudwatch.EventRule "<stack>-<model>-prepdata" on
  objects created under the first input, and its EventTarget. Both start the pipeline as the
  automation identity.
- failed runs: cloudwatch.EventRule "<stack>-<model>-prepfailed" (no target) matching the
  pipeline's failed executions, and cloudwatch.MetricAlarm "<stack>-<model>-prep-failed" on its
  matches, notifying the stack's alert topic (when the stack has one).

Grants: inline "dataprep" on the group identity (data_prep_jobs.prep_grants: its jobs, logs,
output prefixes, image, the key, the VPC); its reads are in the group's "data" policy. Inline
"dataprep" on the automation identity: start the stack's preparation pipelines only.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import data_prep_jobs as prep
from mlops_infra.backends.aws import governance_network as network_facts
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.aws.naming import (
    bucket_name,
    inline_policy_name,
    prep_job_prefix,
    prep_pipeline_name,
    prep_schedule_name,
    repository_name,
    rule_name,
    stack_prefix,
    topic_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import monitoring
from mlops_infra.stages.data_prep import DataPrepOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import StorageOutputs

REPOSITORY = "prep"  # the last word of a preparation image repository's name


def check(spec: Any, settings: Any) -> list[Problem]:
    """Images SageMaker cannot pull, schedules EventBridge Scheduler cannot express, environments
    SageMaker rejects."""
    from mlops_infra.backends.aws.retraining import check_cron
    from mlops_infra.backends.aws.training import check_environment, image_problems

    namer = BACKEND.namer(spec, settings)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        data_prep = model.data_prep
        if data_prep is None:
            continue
        path = ("models", i, "data_prep")
        problems += image_problems(
            data_prep.image, (*path, "image"), settings=settings, gap="models[].data_prep.image",
            repository=repository_name(namer, model.name, REPOSITORY),
            says=f"SageMaker Processing pulls images only from Amazon ECR: this stack prepares {model.name!r}'s "
            "data with {target} (the stack's repository, same tag)")
        if data_prep.schedule:
            problems += check_cron(data_prep.schedule, (*path, "schedule"), gap="models[].data_prep.schedule")
        problems += check_environment(data_prep.environment, path)
    return problems


def alert_actions(ctx: StageContext) -> list[str]:
    """The stack's alert topic as alarm actions, by its ARN (known before deployment), for stages
    built before the monitoring stage; none when the stack has no monitoring."""
    if not monitoring.STAGE.used(ctx.spec):
        return []
    region, account = ctx.settings.region, ctx.settings.account_id
    return [alarms.topic_arn(policies.partition_of(region), region, account, topic_name(ctx.namer))]


def failure_alarm(ctx: StageContext, *, model: str, purpose: str, pipeline: Any, what: str) -> None:
    """An EventRule matching a pipeline's failed executions and an alarm on it notifying the stack."""
    import pulumi
    import pulumi_aws as aws
    from mlops_infra.backends.aws.naming import pipeline_alarm_name

    spec = ctx.spec
    rule = aws.cloudwatch.EventRule(
        ctx.logical("failed", model),
        name=rule_name(ctx.namer, model, f"{purpose}failed"),
        description=f"mlops-infra {spec.project}/{spec.environment}: failed runs of {what}",
        event_pattern=pulumi.Output.from_input(pipeline).apply(lambda arn: json.dumps(prep.failed_pattern(arn))),
        state="ENABLED",
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    actions = alert_actions(ctx)
    aws.cloudwatch.MetricAlarm(
        ctx.logical("alarm", "failed", model),
        name=pipeline_alarm_name(ctx.namer, model, purpose),
        alarm_description=f"mlops-infra {spec.project}/{spec.environment}: a run of {what} failed",
        **alarms.drift_alarm(rule=rule.name),
        alarm_actions=actions,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def build(ctx: StageContext) -> DataPrepOutputs:
    import pulumi
    import pulumi_aws as aws

    from mlops_infra.backends.aws.training import image_repository

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    network = ctx.upstream.find(PrivateNetwork)
    partition, account = policies.partition_of(region), settings.account_id
    automation = gov.identities["automation"]
    pipelines_pattern = triggers.pipeline_arn(partition, region, account,
                                              f"{stack_prefix(ctx.namer, 'aws.sagemaker.pipeline')}*-prep")

    start = None
    if ctx.builds_stack and any(m.data_prep is not None for m in spec.models):
        start = aws.iam.RolePolicy(
            ctx.logical("grant", "automation"),
            name=inline_policy_name(ctx.namer, "dataprep"),
            role=automation.id,
            policy=json.dumps(prep.start_grant(pipelines_pattern)),
            opts=ctx.opts(),
        )
        _group_grants(ctx, partition=partition, network=network)

    started: dict[str, Any] = {}
    for model in ctx.models():
        data_prep = model.data_prep
        if data_prep is None:
            continue
        identity = gov.reader(model)
        repo = repository_name(ctx.namer, model.name, REPOSITORY)
        repository = image_repository(ctx, model.name, repo)
        image = jobs.pulled_image(image=data_prep.image, partition=partition, region=region, account=account,
                                  repository=repo)
        instance_type = catalog.instance_type(data_prep.compute, "processing", settings)
        refs = [*data_prep.inputs, data_prep.output]
        uris = [under(storage.buckets[r.bucket].uri, r.prefix) for r in refs]

        def definition(values: list[Any], model: Any = model, image: str = image, instance_type: str = instance_type,
                       count: int = len(data_prep.inputs)) -> str:
            role_arn, key_arn, vpc, *where = values
            job = prep.PrepValues(
                job_name=prep_job_prefix(ctx.namer, model.name), image=image, role_arn=role_arn, key_arn=key_arn,
                instance_type=instance_type, volume_encrypted=not catalog.has_instance_storage(instance_type),
                max_runtime=int(model.data_prep.max_runtime), inputs=tuple(where[:count]), output=where[count],
                environment=tuple(sorted(model.data_prep.environment.items())),
                tags=tuple(sorted(ctx.tags().items())), vpc=vpc,
            )
            return json.dumps(prep.pipeline_definition(job), sort_keys=True)

        name = prep_pipeline_name(ctx.namer, model.name)
        pipeline = aws.sagemaker.Pipeline(
            ctx.logical("pipeline", model.name),
            pipeline_name=name,
            pipeline_display_name=name,
            pipeline_description=f"mlops-infra {spec.project}/{spec.environment}: prepares {model.name}'s data",
            role_arn=identity.principal,
            pipeline_definition=pulumi.Output.all(
                identity.principal, gov.key_id, network.vpc_config() if network is not None else None, *uris,
            ).apply(definition),
            tags=ctx.tags(),
            opts=ctx.opts(depends_on=[repository, *ctx.prerequisites]),
        )
        started[model.name] = _triggers(ctx, model, pipeline=pipeline.arn, role=automation.principal, grant=start)
        failure_alarm(ctx, model=model.name, purpose="prep", pipeline=pipeline.arn,
                      what=f"{model.name}'s data preparation")
    return DataPrepOutputs(jobs=started)


def under(uri: Any, prefix: str) -> Any:
    """s3://bucket/prefix from a bucket URI (an Output or a string)."""
    import pulumi

    def join(base: str) -> str:
        return f"{base}/{prefix}"

    return pulumi.Output.from_input(uri).apply(join)


def vpc_statements(*, partition: str, region: str, account_id: str, vpc_id: str | None) -> tuple[dict[str, Any], ...]:
    """What a job's role needs to attach it to the stack's VPC (none outside a private network)."""
    if not vpc_id:
        return ()
    return tuple(network_facts.network_grants(partition=partition, region=region, account_id=account_id,
                                              vpc_id=vpc_id))


def _group_grants(ctx: StageContext, *, partition: str, network: PrivateNetwork | None) -> None:
    """Each model group's "dataprep" policy (stack-wide: decided from every model of the spec)."""
    import pulumi
    import pulumi_aws as aws

    spec, region, account = ctx.spec, ctx.settings.region, ctx.settings.account_id
    gov = ctx.upstream.of(GovernanceOutputs)
    by_group: dict[str, list[Any]] = {}
    for model in spec.models:
        if model.data_prep is not None:
            by_group.setdefault(group_of(model), []).append(model)
    stack_repos = jobs.repository_arn(partition, region, account,
                                      f"{stack_prefix(ctx.namer, 'aws.ecr.repository')}*-{REPOSITORY}")
    for group, models in sorted(by_group.items()):
        outputs = sorted({(bucket_name(ctx.namer, m.data_prep.output.bucket), m.data_prep.output.prefix)
                          for m in models})
        spec_repos = [jobs.spec_repository_arn(partition, jobs.image_source(m.data_prep.image, region))
                      for m in models]
        repositories = sorted({stack_repos, *(r for r in spec_repos if r is not None)})

        def document(values: list[Any], outputs: list[tuple[str, str]] = outputs,
                     repositories: list[str] = repositories, group: str = group) -> str:
            key, vpc = values
            vpc_grants = vpc_statements(partition=partition, region=region, account_id=account,
                                        vpc_id=network_facts.grants_of_group(spec, group, vpc, region))
            return json.dumps(prep.prep_grants(
                partition=partition, region=region, account_id=account,
                job_prefix=stack_prefix(ctx.namer, "aws.sagemaker.processing_job"), key_arn=key, outputs=outputs,
                repository=repositories if len(repositories) > 1 else repositories[0], network=vpc_grants))

        aws.iam.RolePolicy(
            ctx.logical("grant", group),
            name=inline_policy_name(ctx.namer, "dataprep"),
            role=gov.groups[group].id,
            policy=pulumi.Output.all(gov.key_id, network.vpc_id if network is not None else None).apply(document),
            opts=ctx.opts(),
        )


def _triggers(ctx: StageContext, model: Any, *, pipeline: Any, role: Any, grant: Any | None) -> list[Any]:
    import pulumi

    from mlops_infra.backends.aws.retraining import pipeline_rule, pipeline_schedule

    spec = ctx.spec
    storage = ctx.upstream.of(StorageOutputs)
    data_prep = model.data_prep
    what = f"mlops-infra {spec.project}/{spec.environment}: prepare {model.name}'s data"
    opts = ctx.opts(depends_on=ctx.waits(grant))
    ids: list[Any] = []
    if data_prep.schedule:
        schedule = pipeline_schedule(ctx.logical("schedule", model.name),
                                     name=prep_schedule_name(ctx.namer, model.name), what=what, cron=data_prep.schedule,
                                     timezone=data_prep.timezone, pipeline=pipeline, role=role, opts=opts)
        if schedule is not None:
            ids.append(schedule)
    if data_prep.on_new_data:
        first = data_prep.inputs[0]
        pattern = pulumi.Output.from_input(storage.buckets[first.bucket].physical).apply(
            lambda bucket: json.dumps(triggers.new_data_pattern(bucket, first.prefix)))
        where = f"storage bucket {first.bucket}" + (f" under {first.prefix}" if first.prefix else "")
        ids.append(pipeline_rule(ctx, model.name, "prepdata", pattern=pattern,
                                 description=f"{what} when objects arrive in {where}", pipeline=pipeline, role=role,
                                 opts=opts))
    return ids
