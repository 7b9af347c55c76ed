"""AWS governance: the stack's KMS key (+ alias), the workload roles and their key grants.

- kms.Key: customer managed, rotated every spec.governance.key_rotation_days, 30-day
  deletion window, protected. Its policy lets the account administer the key and lets
  IAM policies grant its use (explicit actions, no kms:*); with audit logs, CloudTrail may
  encrypt this stack's trail's log files with it (aws:SourceArn = the trail's ARN); with a
  monitoring stage, CloudWatch may use it to publish the stack's alarms (aws:SourceArn = the
  stack's alarm name prefix) to the stack's SNS topic, which the key encrypts.
- iam.Role per identity: training and serving are assumed by SageMaker, automation by
  EventBridge (rules and Scheduler); each trust is limited to this account (aws:SourceAccount).
- iam.RolePolicy: training and serving may encrypt / decrypt with the key; automation may not.
S3 needs no service grant on the key (it calls KMS with the caller's permissions); the
CloudTrail trail itself, and its bucket policy, are built by the storage stage.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws.naming import inline_policy_name, key_alias, role_name, stack_prefix, trail_name
from mlops_infra.backends.context import StageContext
from mlops_infra.stages import monitoring
from mlops_infra.stages.governance import IDENTITIES, GovernanceOutputs, Identity

ROLE_DESCRIPTIONS = {
    "training": "SageMaker training, processing and pipeline steps",
    "serving": "SageMaker models and endpoints",
    "automation": "EventBridge rules and schedules that start pipelines",
}


def build(ctx: StageContext) -> GovernanceOutputs:
    spec, region = ctx.spec, ctx.settings.region
    partition = policies.partition_of(region)
    caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=ctx.parent, provider=ctx.provider))
    account_id = caller.account_id
    audit = spec.governance.audit_logs
    # The monitoring stage's SNS topic is encrypted with this key: its alarms publish to it.
    alerts = monitoring.STAGE.used(spec)

    def key_policy(account: str) -> str:
        trail = policies.trail_arn(partition, region, account, trail_name(ctx.namer)) if audit else None
        alarms = policies.alarm_arn(partition, region, account, stack_prefix(ctx.namer, "aws.cloudwatch.alarm") + "*")
        return json.dumps(policies.key_policy(partition=partition, account_id=account, trail=trail,
                                              alarms=alarms if alerts else None))

    key = aws.kms.Key(
        ctx.logical("key"),
        description=f"mlops-infra {spec.project}/{spec.environment}: encrypts buckets, jobs, endpoints and audit logs",
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        multi_region=False,
        enable_key_rotation=True,
        rotation_period_in_days=spec.governance.key_rotation_days,
        deletion_window_in_days=30,
        policy=account_id.apply(key_policy),
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    aws.kms.Alias(ctx.logical("alias"), name=key_alias(ctx.namer), target_key_id=key.arn, opts=ctx.opts())

    def trust(role: str) -> Any:
        return account_id.apply(lambda account: json.dumps(policies.trust_policy(role, account_id=account)))

    identities: dict[str, Identity] = {}
    for role in IDENTITIES:
        resource = aws.iam.Role(
            ctx.logical("role", role),
            name=role_name(ctx.namer, role, region),
            description=f"mlops-infra {spec.project}/{spec.environment} {role}: {ROLE_DESCRIPTIONS[role]}",
            assume_role_policy=trust(role),
            max_session_duration=3600,
            tags=ctx.tags(),
            opts=ctx.opts(),
        )
        identities[role] = Identity(role=role, id=resource.name, principal=resource.arn)
        if role in policies.KEY_USERS:
            aws.iam.RolePolicy(
                ctx.logical("keygrant", role),
                name=inline_policy_name(ctx.namer, "key"),
                role=resource.name,
                policy=key.arn.apply(lambda arn: json.dumps(policies.key_use_policy(arn))),
                opts=ctx.opts(),
            )
    return GovernanceOutputs(
        key_id=key.arn,
        identities=identities,
        extra={"account_id": account_id, "partition": partition, "key_alias": key_alias(ctx.namer)},
    )
