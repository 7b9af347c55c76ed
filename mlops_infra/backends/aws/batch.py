"""AWS batch scoring: per model with `batch`, its own scheduled SageMaker pipeline running Batch Transform.

Per model with `batch` (never inside the training pipeline: scoring has its own schedule):
- sagemaker.Model "<stack>-<model>-batch-<hash>": the serving image (else the training image)
  as the endpoint and the registry name it (training_jobs.pulled_image), the model data
  (batch.model_uri, else the model's training output s3://<artifacts>/models/<model>/, as the
  endpoint loads it), the model group's identity as execution role, network isolation, and in a
  private network the stack's VpcConfig. Immutable: named by content like serving's models.
- sagemaker.Pipeline "<stack>-<model>-batch" (templates/aws/batch-pipeline.json.j2), run as the
  group identity: one Transform step scoring every object under batch.input, predictions
  under <batch.output>/<execution id>/ encrypted with the stack key, the catalog's transform
  instance type for batch.compute, batch.instance_count instances, EBS volumes encrypted with
  the key. The output bucket's lifecycle rules manage the predictions.
- schedule: scheduler.Schedule "<stack>-<model>-batch" (batch.schedule in batch.timezone,
  translated as retraining's are: retraining_triggers.scheduler_cron) starting the pipeline as
  the automation identity; on_new_data: cloudwatch.EventRule "<stack>-<model>-batchdata" on S3
  "Object Created" under the input prefix (the storage stage routes the input bucket's events to
  EventBridge) and its EventTarget.
- failures: cloudwatch.EventRule "<stack>-<model>-batchfailed" (no target) matching the
  pipeline's failed executions, and cloudwatch.MetricAlarm "<stack>-<model>-batch" on its
  matches, notifying the monitoring stage's topic (the key and topic policies already let the
  stack's alarms publish there).

Grants: per model group with batch scoring, an inline "batch" policy on its identity
(batch_jobs.group_grant: the stack's transform jobs, logs, images, the key, its models' output
prefixes); the group's "data" policy already reads the inputs. Per stack, an inline "batch"
policy on the automation identity starting the stack's batch pipelines. Split specs: the
automation grant lives in the shared stack, the rest in the model's stack.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws import batch_jobs as batch_data
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws.governance_network import PrivateNetwork, grants_of_group, measured_vpc, private
from mlops_infra.backends.aws.retraining import check_cron, pipeline_rule, pipeline_schedule
from mlops_infra.backends.aws.naming import (
    BATCH_ALARM_KIND,
    alarm_name,
    batch_model_prefix,
    batch_pipeline_name,
    batch_schedule_name,
    bucket_name,
    content_name,
    group_role_name,
    inline_policy_name,
    rule_name,
    stack_prefix,
    transform_job_prefix,
)
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.backends.context import StageContext
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import monitoring
from mlops_infra.stages.base import finding
from mlops_infra.stages.batch import BatchOutputs
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.monitoring import MonitoringOutputs
from mlops_infra.stages.storage import ARTIFACTS, StorageOutputs


def check(spec: Any, settings: Any) -> list[Problem]:
    """What Batch Transform and EventBridge Scheduler cannot do as the spec's batch blocks say."""
    namer = BACKEND.namer(spec, settings)
    artifacts = bucket_name(namer, ARTIFACTS)
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        batch = model.batch
        if batch is None:
            continue
        path = ("models", i, "batch")
        if batch_data.scoring_image(model) is None:
            problems.append(finding(path, "SageMaker Batch Transform runs the model's inference image, and this "
                                    "model has neither serving nor training to name one",
                                    hint="add serving: {image: ...} (the image that scores), or training:"))
        try:
            catalog.instance_type(batch.compute, "transform", settings)
        except CatalogMiss as miss:
            problems.append(finding((*path, "compute"), miss.message, hint=miss.hint, value=batch.compute.label))
        if batch.schedule:
            problems += check_cron(batch.schedule, (*path, "schedule"), gap="models[].batch.schedule")
        if "max_runtime" in batch.model_fields_set:
            problems.append(BACKEND.gap("models[].batch.max_runtime", (*path, "max_runtime"), value=batch.max_runtime))
        location = endpoints.parse_s3(batch.model_uri) if batch.model_uri else None
        if batch.model_uri is None:
            problems.append(BACKEND.gap("models[].batch", (*path, "model_uri")))
        elif location is None:
            problems.append(BACKEND.gap("models[].batch.model_uri", (*path, "model_uri"), value=batch.model_uri))
        elif location.bucket == artifacts and not endpoints.covered_by_storage_grant(batch.model_uri, artifacts):
            problems.append(finding((*path, "model_uri"), "model_uri points into the artifact bucket outside the "
                                    "trained models, which no model identity may read",
                                    hint="use a location under models/ (where training writes models)",
                                    value=batch.model_uri))
    if any(m.batch is not None for m in spec.models) and not monitoring.STAGE.used(spec):
        problems.append(finding(("monitoring",), "nobody is told when a batch scoring run fails: the stack has no "
                                "notification channel", hint="add monitoring: {notify: {emails: [...]}}",
                                severity="warning"))
    return problems


def grant_size(spec: Any, namer: Any, settings: Any, models: list[Any]) -> int:
    """The characters a group's "batch" policy adds to its identity (governance_grants measures it)."""
    batched = [m for m in models if m.batch is not None]
    if not batched:
        return 0
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    from mlops_infra.backends.aws.governance_grants import KEY_ID_PLACEHOLDER

    vpc = measured_vpc(settings) if private(spec) else None
    return policies.policy_size(batch_data.group_grant(
        partition=partition, region=region, account_id=account, namer=namer, models=batched,
        key_arn=policies.key_arn(partition, region, account, KEY_ID_PLACEHOLDER),
        physical={b.name: bucket_name(namer, b.name) for b in spec.storage.buckets},
        artifacts=bucket_name(namer, ARTIFACTS),
        vpc_id=grants_of_group(spec, group_of(batched[0]), vpc, region)))


def build(ctx: StageContext) -> BatchOutputs:
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    partition = policies.partition_of(region)
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    network = ctx.upstream.find(PrivateNetwork)
    alerts = ctx.upstream.find(MonitoringOutputs)
    automation = gov.identities["automation"]

    # Stack-wide: the automation identity may start the stack's batch pipelines. A model stack
    # does not wait for it (None): the shared stack holding it is deployed first.
    start = aws.iam.RolePolicy(
        ctx.logical("grant", "automation"),
        name=inline_policy_name(ctx.namer, "batch"),
        role=automation.id,
        policy=json.dumps(batch_data.automation_grant(
            partition=partition, region=region, account_id=settings.account_id,
            pipelines=stack_prefix(ctx.namer, "aws.sagemaker.pipeline"))),
        opts=ctx.opts(),
    ) if ctx.builds_stack and any(m.batch is not None for m in spec.models) else None

    own = [m for m in ctx.models() if m.batch is not None and batch_data.scoring_image(m) is not None]
    group_grants = {group: _group_grant(ctx, group, [m for m in own if group_of(m) == group], network=network)
                    for group in sorted({group_of(m) for m in own})}
    pipelines: dict[str, Any] = {}
    for model in own:
        pipeline = _pipeline(ctx, model, grant=group_grants[group_of(model)], network=network, partition=partition)
        pipelines[model.name] = pipeline.arn
        _triggers(ctx, model, pipeline=pipeline.arn, role=automation.principal, grant=start, storage=storage)
        if alerts is not None:
            known_arn = triggers.pipeline_arn(partition, region, settings.account_id,
                                              batch_pipeline_name(ctx.namer, model.name))
            _failure_alarm(ctx, model, pipeline_arn=known_arn, topic=alerts.channel)
    return BatchOutputs(jobs=pipelines)


def _group_grant(ctx: StageContext, group: str, models: list[Any], *, network: PrivateNetwork | None) -> Any:
    import pulumi
    import pulumi_aws as aws

    settings, region = ctx.settings, ctx.settings.region
    partition = policies.partition_of(region)
    gov = ctx.upstream.of(GovernanceOutputs)
    physical = {b.name: bucket_name(ctx.namer, b.name) for b in ctx.spec.storage.buckets}

    def document(values: list[Any]) -> str:
        key_arn, vpc = values
        return json.dumps(batch_data.group_grant(
            partition=partition, region=region, account_id=settings.account_id, namer=ctx.namer, models=models,
            key_arn=key_arn, physical=physical, artifacts=bucket_name(ctx.namer, ARTIFACTS),
            vpc_id=grants_of_group(ctx.spec, group, vpc, region)))

    return aws.iam.RolePolicy(
        ctx.logical("groupgrant", group),
        name=inline_policy_name(ctx.namer, "batch"),
        role=gov.groups[group].id,
        policy=pulumi.Output.all(gov.key_id, network.vpc_id if network is not None else None).apply(document),
        opts=ctx.opts(),
    )


def _pipeline(ctx: StageContext, model: Any, *, grant: Any, network: PrivateNetwork | None, partition: str) -> Any:
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    gov = ctx.upstream.of(GovernanceOutputs)
    storage = ctx.upstream.of(StorageOutputs)
    batch, name = model.batch, model.name
    identity = gov.reader(model)
    image = batch_data.pulled(model, ctx.namer, partition=partition, region=region, account=settings.account_id)
    artifacts_known = f"s3://{bucket_name(ctx.namer, ARTIFACTS)}"
    known_uri = batch_data.model_data(model, artifacts_known)
    kind = endpoints.data_kind(known_uri)
    data_uri: Any = known_uri if batch.model_uri else pulumi.Output.from_input(storage.artifacts.uri).apply(
        lambda uri: batch_data.model_data(model, uri))
    known_role = policies.role_arn(partition, settings.account_id, group_role_name(ctx.namer, group_of(model), region))
    model_name = content_name(batch_model_prefix(ctx.namer, name), endpoints.model_args(
        image=image, data_uri=known_uri, kind=kind, environment=_environment(model), role_arn=known_role,
        vpc=network.vpc_config(known=True) if network else None))
    scoring = aws.sagemaker.Model(
        ctx.logical("model", name),
        name=model_name,
        **endpoints.model_args(image=image, data_uri=data_uri, kind=kind, environment=_environment(model),
                               role_arn=identity.principal, vpc=network.vpc_config() if network else None),
        tags=ctx.tags(),
        # SageMaker checks at creation that the role can reach the image and the data.
        opts=ctx.opts(depends_on=[grant, *ctx.prerequisites]),
    )
    instance_type = catalog.instance_type(batch.compute, "transform", settings)

    def definition(values: list[Any]) -> str:
        model_id, key_arn, input_bucket, output_bucket = values
        return json.dumps(batch_data.pipeline_definition(batch_data.TransformValues(
            job_name=transform_job_prefix(ctx.namer, name), model_name=model_id,
            input_uri=f"{input_bucket}/{batch.input.prefix}", output_uri=f"{output_bucket}/{batch.output.prefix}",
            key_arn=key_arn, instance_type=instance_type, instance_count=batch.instance_count,
            volume_encrypted=not catalog.has_instance_storage(instance_type), tags=tuple(sorted(ctx.tags().items())),
        )), sort_keys=True)

    pipeline_id = batch_pipeline_name(ctx.namer, name)
    return aws.sagemaker.Pipeline(
        ctx.logical("pipeline", name),
        pipeline_name=pipeline_id,
        pipeline_display_name=pipeline_id,
        pipeline_description=f"mlops-infra {spec.project}/{spec.environment}: batch scoring of {name}",
        role_arn=identity.principal,
        pipeline_definition=pulumi.Output.all(
            scoring.name, gov.key_id, storage.buckets[batch.input.bucket].uri, storage.buckets[batch.output.bucket].uri,
        ).apply(definition),
        tags=ctx.tags(),
        opts=ctx.opts(depends_on=[grant]),
    )


def _environment(model: Any) -> dict[str, str]:
    return dict(model.serving.environment) if model.serving is not None else {}


def _triggers(ctx: StageContext, model: Any, *, pipeline: Any, role: Any, grant: Any | None,
              storage: StorageOutputs) -> None:
    import pulumi

    spec = ctx.spec
    batch, name = model.batch, model.name
    what = f"mlops-infra {spec.project}/{spec.environment}: batch scoring of {name}"
    # The role must hold its grant before a trigger first fires.
    opts = ctx.opts(depends_on=ctx.waits(grant))
    if batch.schedule:
        pipeline_schedule(ctx.logical("schedule", name), name=batch_schedule_name(ctx.namer, name), what=what,
                          cron=batch.schedule, timezone=batch.timezone, pipeline=pipeline, role=role, opts=opts)
    if batch.on_new_data:
        ref = batch.input
        pattern = pulumi.Output.from_input(storage.buckets[ref.bucket].physical).apply(
            lambda bucket: json.dumps(triggers.new_data_pattern(bucket, ref.prefix)))
        where = f"storage bucket {ref.bucket}" + (f" under {ref.prefix}" if ref.prefix else "")
        pipeline_rule(ctx, name, "batchdata", pattern=pattern, description=f"{what} when objects arrive in {where}",
                      pipeline=pipeline, role=role, opts=opts)


def _failure_alarm(ctx: StageContext, model: Any, *, pipeline_arn: str, topic: Any) -> None:
    import pulumi_aws as aws

    spec, name = ctx.spec, model.name
    rule = aws.cloudwatch.EventRule(
        ctx.logical("rule", "failed", name),
        name=rule_name(ctx.namer, name, "batchfailed"),
        description=f"mlops-infra {spec.project}/{spec.environment}: failed batch scoring runs of {name}",
        event_pattern=json.dumps(batch_data.failure_pattern(pipeline_arn)),
        state="ENABLED",
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    aws.cloudwatch.MetricAlarm(
        ctx.logical("alarm", name),
        name=alarm_name(ctx.namer, name, BATCH_ALARM_KIND),
        alarm_description=f"mlops-infra {spec.project}/{spec.environment}: a batch scoring run of {name} failed",
        **alarms.drift_alarm(rule=rule.name),
        alarm_actions=[topic],
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
