"""How each AWS physical name is built (rules: data/cloud-name-rules.json).

Kinds and their scope of uniqueness on AWS:
- aws.s3.bucket: global per partition. Every bucket is created in the account's regional namespace
  (S3 "account regional namespaces"): its name ends with "-<account id>-<region>-an", a suffix
  only that account can create buckets with, so no other organization can take (or, after a
  `destroy --delete-data`, re-take) a stack's bucket names. Where S3 offers no such namespace
  (facts/s3.json) the name ends with "-<account id>-<region>" in the global namespace. The part
  before the suffix is "<project>-<environment>-<bucket>", truncated with a hash when too long.
- aws.iam.role: unique per account, across regions -> the region is one of the name's words,
  so the same project/environment can be deployed to two regions of one account.
- aws.iam.policy: inline role policies are unique per role; customer managed policies per account,
  across regions (the region is one of their words, as for roles).
- aws.kms.alias, aws.cloudtrail.trail: unique per account and region.
- aws.ecr.repository, aws.sagemaker.*: unique per account and region.
- aws.sagemaker.training_job: the per-model prefix of every training job the stack starts
  (pipeline runs and one-off jobs); capped at JOB_PREFIX_MAX characters so that a one-off
  job's content hash, and the suffix SageMaker Pipelines appends, still fit in 63.
- aws.sagemaker.model, aws.sagemaker.endpoint_config: immutable on SageMaker, so their names
  are a per-model prefix (at most CONTENT_PREFIX_MAX characters) + "-" + a hash of their whole
  definition (content_name): any change is a new resource with a new name, created before the
  old one is deleted, while the endpoint (a stable name) is updated in place.
- aws.cloudwatch.alarm: the alarms the monitoring stage creates per served model; the serving
  stage names them first (alarm_name) for the endpoint's automatic rollback, so both stages agree
  without depending on each other. The retraining stage names the drift alarm the same way.
- aws.sagemaker.monitoring_job_definition: immutable (SageMaker has no update call for job
  definitions): a per-model prefix + a hash of the definition, like models and endpoint configs.
- aws.sns.topic, aws.cloudwatch.dashboard: one per stack (dashboards: one per page of models).
- aws.sagemaker.monitoring_schedule, aws.events.rule, aws.scheduler.schedule: per model (rules:
  one per purpose). EventBridge Scheduler schedules live in the account's "default" group.

Stack prefixes (stack_prefix): every name of a kind this stack generates starts with the
sanitized "<project>-<environment>-" (or, where a kind's limit cuts into it, with the part of
it every name keeps). IAM grants name the stack's resources by it (ARN wildcards), so their
size does not grow with the number of models. Another stack whose project-environment starts
with the same words ("churn-dev-eu" after "churn-dev") in the same account and region would
share the pattern: give stacks of one account distinct project or environment names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlops_infra.backends.aws.policies import partition_of
from mlops_infra.errors import InternalError
from mlops_infra.facts import fact
from mlops_infra.naming import (
    HASH_LENGTH,
    Namer,
    NameStyle,
    _sanitize,
    make_name,
    name_rules,
    stable_hash,
)

JOB_PREFIX_MAX = 40
CONTENT_HASH_LENGTH = 12
CONTENT_PREFIX_MAX = 63 - CONTENT_HASH_LENGTH - 1  # SageMaker ModelName / EndpointConfigName: 63
# The kinds of alarm the monitoring stage creates per served model (issue 5), which the
# endpoint's deployment rolls back on: the model's p99 latency and its error rate.
ALARM_KINDS = ("latency", "errors")
# Every kind of alarm the monitoring stage creates per model: the rollback alarms, the traffic
# floor (min_invocations_per_hour) and data drift (which retraining's on_drift listens to).
MONITOR_ALARM_KINDS = (*ALARM_KINDS, "traffic", "drift")
# A model's batch scoring runs that failed (the batch stage creates it, notifying the same topic).
BATCH_ALARM_KIND = "batch"

STYLES = {
    # Unique across organizations through the account suffix (bucket_name), not a hash.
    "aws.s3.bucket": NameStyle(),
    "aws.iam.role": NameStyle(),
    "aws.iam.policy": NameStyle(),
    "aws.kms.alias": NameStyle(prefix="alias/"),
    "aws.cloudtrail.trail": NameStyle(),
    "aws.ecr.repository": NameStyle(),
    "aws.sagemaker.pipeline": NameStyle(),
    "aws.sagemaker.training_job": NameStyle(max_length=JOB_PREFIX_MAX),
    "aws.sagemaker.transform_job": NameStyle(max_length=JOB_PREFIX_MAX),
    "aws.sagemaker.model_package_group": NameStyle(),
    "aws.sagemaker.mlflow_tracking_server": NameStyle(),
    "aws.sagemaker.model": NameStyle(max_length=CONTENT_PREFIX_MAX),
    "aws.sagemaker.endpoint_config": NameStyle(max_length=CONTENT_PREFIX_MAX),
    "aws.sagemaker.endpoint": NameStyle(),
    "aws.cloudwatch.alarm": NameStyle(),
    "aws.cloudwatch.dashboard": NameStyle(),
    "aws.sns.topic": NameStyle(),
    "aws.sagemaker.monitoring_job_definition": NameStyle(max_length=CONTENT_PREFIX_MAX),
    "aws.sagemaker.monitoring_schedule": NameStyle(),
    "aws.events.rule": NameStyle(),
    "aws.scheduler.schedule": NameStyle(),
    "aws.sagemaker.feature_group": NameStyle(),
    "aws.sagemaker.processing_job": NameStyle(max_length=JOB_PREFIX_MAX),
    "aws.sagemaker.domain": NameStyle(),
    "aws.sagemaker.user_profile": NameStyle(),
}


class AwsNamer(Namer):
    """A namer that knows the stack's account and region (bucket names end with them)."""

    def __init__(self, *, account_id: str | None, region: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account_id = account_id
        self.region = region


ACCOUNT_REGIONAL = "account-regional"
GLOBAL = "global"


def bucket_namespace(region: str) -> str:
    """Where the stack's buckets are created: the account's regional namespace where S3 offers it."""
    namespaces = fact("aws", "s3", "account_regional_namespace").value
    available = partition_of(region) in namespaces["partitions"] and region not in namespaces["unavailable_regions"]
    return ACCOUNT_REGIONAL if available else GLOBAL


def bucket_name(namer: Namer, bucket: str) -> str:
    """"<project>-<environment>-<bucket>-<account id>-<region>[-an]" within S3's 63 characters."""
    if not isinstance(namer, AwsNamer) or namer.account_id is None:
        raise InternalError("AWS bucket names need clouds.aws.account_id (validate requires it)")
    suffix = f"-{namer.account_id}-{namer.region}"
    if bucket_namespace(namer.region) == ACCOUNT_REGIONAL:
        suffix += fact("aws", "s3", "account_regional_namespace").value["suffix_end"]
    kind = "aws.s3.bucket"
    rule = name_rules()[kind]
    style = replace(namer.styles[kind], max_length=rule.max - len(suffix))
    name = make_name([namer.project, namer.environment, bucket], style=style, rule=rule, seed=(kind, namer.scope)) + suffix
    if not rule.accepts(name):
        raise InternalError(f"generated {kind} name {name!r} breaks the cloud's rule {rule.regex}")
    return name


def role_name(namer: Namer, role: str, region: str) -> str:
    return namer.name("aws.iam.role", role, region)


def group_role_name(namer: Namer, group: str, region: str) -> str:
    """The role of a model group (models[].group): it runs the group's jobs ("<group>-jobs"
    never equals a stack identity's word, so group and stack roles cannot collide)."""
    return namer.name("aws.iam.role", group, "jobs", region)


def managed_policy_name(namer: Namer, purpose: str, region: str) -> str:
    """A customer managed policy of the stack (unique per account, like roles: the region is a word)."""
    return namer.name("aws.iam.policy", purpose, region)


def key_alias(namer: Namer) -> str:
    return namer.name("aws.kms.alias", "key")


def trail_name(namer: Namer) -> str:
    return namer.name("aws.cloudtrail.trail", "audit")


def inline_policy_name(namer: Namer, purpose: str, *parts: str) -> str:
    """An inline role policy (unique per role): its purpose, and the model for per-model grants."""
    return namer.name("aws.iam.policy", purpose, *parts)


def repository_name(namer: Namer, model: str, purpose: str = "training") -> str:
    """The ECR repository a model's training (or serving) image is pushed to."""
    return namer.name("aws.ecr.repository", model, purpose)


def pipeline_name(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.pipeline", model, "training")


def batch_pipeline_name(namer: Namer, model: str) -> str:
    """A model's batch scoring pipeline (a Transform step): "<stack>-<model>-batch"."""
    return namer.name("aws.sagemaker.pipeline", model, "batch")


def transform_job_prefix(namer: Namer, model: str) -> str:
    """What every batch transform job of a model starts with (IAM grants name them by the stack's)."""
    return namer.name("aws.sagemaker.transform_job", model)


def batch_model_prefix(namer: Namer, model: str) -> str:
    """What every SageMaker model a batch pipeline scores with starts with (+ its content hash)."""
    return namer.name("aws.sagemaker.model", model, "batch")


def batch_schedule_name(namer: Namer, model: str) -> str:
    """A model's EventBridge Scheduler schedule for batch scoring."""
    return namer.name("aws.scheduler.schedule", model, "batch")


def job_prefix(namer: Namer, model: str) -> str:
    """What every training job of a model starts with (IAM grants name jobs by it)."""
    return namer.name("aws.sagemaker.training_job", model)


def model_package_group_name(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.model_package_group", model)


def tracking_server_name(namer: Namer) -> str:
    return namer.name("aws.sagemaker.mlflow_tracking_server", "mlflow")


def model_prefix(namer: Namer, model: str) -> str:
    """What every SageMaker model of a served model starts with (+ "-" + its content hash)."""
    return namer.name("aws.sagemaker.model", model)


def shadow_model_prefix(namer: Namer, model: str) -> str:
    """What every SageMaker model of a served model's shadow variant starts with (+ its content hash)."""
    return namer.name("aws.sagemaker.model", model, "shadow")


def endpoint_config_prefix(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.endpoint_config", model)


def endpoint_name(namer: Namer, model: str) -> str:
    """A served model's endpoint: a stable name, updated in place."""
    return namer.name("aws.sagemaker.endpoint", model)


def alarm_name(namer: Namer, model: str, kind: str) -> str:
    """The CloudWatch alarm of `kind` (MONITOR_ALARM_KINDS) of a model. The monitoring stage
    creates it under this name; the serving stage rolls deployments back on the ALARM_KINDS
    ones, the retraining stage listens to the drift one."""
    if kind not in (*MONITOR_ALARM_KINDS, BATCH_ALARM_KIND):
        raise ValueError(f"unknown alarm kind {kind!r}; one of {', '.join(MONITOR_ALARM_KINDS)}")
    return namer.name("aws.cloudwatch.alarm", model, kind)


def pipeline_alarm_name(namer: Namer, model: str, purpose: str) -> str:
    """The alarm on failed runs of a model's pipeline: "prep" (data preparation) or "gate" (the
    training pipeline's evaluation gate). Within the stack's alarm prefix, which the alert topic
    accepts."""
    return namer.name("aws.cloudwatch.alarm", model, purpose, "failed")


def topic_name(namer: Namer) -> str:
    """The stack's notification channel (SNS topic)."""
    return namer.name("aws.sns.topic", "alerts")


def dashboard_name(namer: Namer, page: int) -> str:
    """The stack's dashboard; page 1 is "<stack>-models", later pages "<stack>-models-<n>"."""
    return namer.name("aws.cloudwatch.dashboard", "models", *([str(page)] if page > 1 else []))


def monitoring_definition_prefix(namer: Namer, model: str) -> str:
    """What every data-quality job definition of a model starts with (+ "-" + its content hash)."""
    return namer.name("aws.sagemaker.monitoring_job_definition", model)


def monitoring_schedule_name(namer: Namer, model: str) -> str:
    return namer.name("aws.sagemaker.monitoring_schedule", model)


def signal_definition_prefix(namer: Namer, model: str, signal: str) -> str:
    """What every job definition of a model's explainability, bias or model-quality monitoring
    starts with (+ "-" + its content hash)."""
    return namer.name("aws.sagemaker.monitoring_job_definition", model, signal.replace("_", "-"))


def signal_schedule_name(namer: Namer, model: str, signal: str) -> str:
    return namer.name("aws.sagemaker.monitoring_schedule", model, signal.replace("_", "-"))


def signal_alarm_name(namer: Namer, model: str, signal: str) -> str:
    """The alarm on a signal's executions that found violations (within the stack's alarm prefix)."""
    return namer.name("aws.cloudwatch.alarm", model, signal.replace("_", "-"))


def rule_name(namer: Namer, model: str, purpose: str) -> str:
    """An EventBridge rule of a model: "violations" (monitoring), "newdata" or "drift" (retraining)."""
    return namer.name("aws.events.rule", model, purpose)


def schedule_name(namer: Namer, model: str) -> str:
    """A model's EventBridge Scheduler schedule (retraining on a cron)."""
    return namer.name("aws.scheduler.schedule", model, "retrain")


def feature_group_name(namer: Namer, group: str) -> str:
    """A feature group of the stack's feature store (unique per account and region)."""
    return namer.name("aws.sagemaker.feature_group", group)


def prep_pipeline_name(namer: Namer, model: str) -> str:
    """A model's data-preparation pipeline (starts with the stack's pipeline prefix, like training's)."""
    return namer.name("aws.sagemaker.pipeline", model, "prep")


def prep_job_prefix(namer: Namer, model: str) -> str:
    """What every processing job of a model's data preparation starts with (Pipelines extends it)."""
    return namer.name("aws.sagemaker.processing_job", model, "prep")


def evaluation_job_prefix(namer: Namer, model: str) -> str:
    """What every evaluation job of a model's training pipeline starts with (the gate)."""
    return namer.name("aws.sagemaker.processing_job", model, "eval")


def prep_schedule_name(namer: Namer, model: str) -> str:
    """A model's EventBridge Scheduler schedule of its data preparation."""
    return namer.name("aws.scheduler.schedule", model, "prep")


def domain_name(namer: Namer) -> str:
    """The stack's SageMaker Studio domain (workspaces)."""
    return namer.name("aws.sagemaker.domain", "studio")


def user_profile_name(namer: Namer, user: str) -> str:
    """A workspace user's Studio user profile (unique within the domain)."""
    return namer.name("aws.sagemaker.user_profile", user)


def content_name(prefix: str, definition: Mapping[str, Any]) -> str:
    """prefix + "-" + a hash of a whole definition (canonical JSON): immutable resources get a
    new name whenever anything in their definition changes, and keep it otherwise."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return f"{prefix}-{stable_hash(text, length=CONTENT_HASH_LENGTH)}"


def stack_prefix(namer: Namer, kind: str) -> str:
    """The start every name of `kind` that `namer` generates (with at least one part) shares.

    The namer joins the sanitized words project, environment, parts; when the result is too
    long it keeps the first `room` characters and appends "-<hash>". So every name starts with
    "<project>-<environment>-", or with its first `room` characters when the kind's limit is
    shorter than that.
    """
    style = namer.styles[kind]
    rule = name_rules()[kind]
    sep = style.separator
    head = sep.join(w for w in (_sanitize(namer.project, style), _sanitize(namer.environment, style)) if w) + sep
    limit = min(rule.max, style.max_length or rule.max) - len(style.prefix)
    room = limit - HASH_LENGTH - len(sep)
    return style.prefix + (head if room >= len(head) else head[:max(room, 0)])
