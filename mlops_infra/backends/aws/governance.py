"""AWS governance: the stack's KMS key (+ alias), its workload roles and their grants.

- kms.Key: customer managed, rotated every spec.governance.key_rotation_days, deleted after a
  30-day wait (facts/kms.json), protected. Its policy lets the account administer the key and
  lets IAM policies grant its use (explicit actions, no kms:*); with audit logs, CloudTrail may
  encrypt this stack's trail's log files with it (aws:SourceArn = the trail's ARN); with a
  monitoring stage, CloudWatch may use it to publish the stack's alarms (aws:SourceArn = the
  stack's alarm name prefix) to the stack's SNS topic, which the key encrypts.
- iam.Role "serving" (assumed by SageMaker: every endpoint's execution role) and "automation"
  (assumed by EventBridge rules and Scheduler); each trust is limited to this account
  (aws:SourceAccount). Serving may use the key (iam.RolePolicy "key"); automation may not.
- One iam.Role per model group (governance_grants.py, mlops_infra/access.py), assumed by SageMaker, with
  its inline "data" policy (its models' data and artifacts, passing only itself) and an
  iam.RolePolicyAttachment per stack-wide iam.Policy it needs ("training", "monitoring": the
  stack's images, logs, job names, the key). A model's jobs run as its group's identity, whose
  principal (the role ARN) resolves only once those grants exist: stages that start work as it
  wait for exactly its grants, and the stack's prerequisites stay bounded by the stack's
  identities, never by its models.
- With governance.network: private, the stack's network (governance_network.py: a VPC with
  private subnets, security groups and VPC endpoints, or the one the spec brings), shared with
  later stages as a PrivateNetwork; the group identities' managed policies and the serving
  grant then let SageMaker attach network interfaces in that VPC only.
S3 needs no service grant on the key (it calls KMS with the caller's permissions); the
CloudTrail trail itself, and its bucket policy, are built by the storage stage.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws.naming import (
    inline_policy_name,
    key_alias,
    managed_policy_name,
    role_name,
    stack_prefix,
    trail_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.facts import fact
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import monitoring
from mlops_infra.stages.governance import GovernanceOutputs, Identity

STACK_IDENTITIES = ("serving", "automation")  # a model group's identity does the training work
ROLE_DESCRIPTIONS = {
    "serving": "SageMaker models and endpoints",
    "automation": "EventBridge rules and schedules that start pipelines",
}
PURPOSE_DESCRIPTIONS = {
    "training": "what every model group's identity needs to train: the stack's training images, logs, jobs, key",
    "monitoring": "what every model group's identity needs to monitor drift: the analyzer image, logs, the key",
}


def check(spec: Any, settings: Any) -> list[Problem]:
    """Every identity's policies inside IAM's size limits, the stack's roles inside the account's
    quota, and the private network's settings (governance_network.py)."""
    return grants.problems(spec, BACKEND.namer(spec, settings), settings) + network.check(spec, settings)


def build(ctx: StageContext) -> GovernanceOutputs:
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    partition = policies.partition_of(region)
    account_id = settings.account_id
    audit = spec.governance.audit_logs
    # The monitoring stage's SNS topic is encrypted with this key: its alarms publish to it.
    alerts = monitoring.STAGE.used(spec)
    trail = policies.trail_arn(partition, region, account_id, trail_name(ctx.namer)) if audit else None
    alarms = policies.alarm_arn(partition, region, account_id, stack_prefix(ctx.namer, "aws.cloudwatch.alarm") + "*")
    # Later stages place their jobs and models in it, and the buckets refuse requests from outside it.
    private = ctx.share(network.build(ctx)) if network.private(spec) else None

    key = aws.kms.Key(
        ctx.logical("key"),
        description=f"mlops-infra {spec.project}/{spec.environment}: encrypts buckets, jobs, endpoints and audit logs",
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        multi_region=False,
        enable_key_rotation=True,
        rotation_period_in_days=spec.governance.key_rotation_days,
        deletion_window_in_days=fact("aws", "kms", "key_deletion_waiting_days").value,
        policy=json.dumps(policies.key_policy(partition=partition, account_id=account_id, trail=trail,
                                              alarms=alarms if alerts else None)),
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    aws.kms.Alias(ctx.logical("alias"), name=key_alias(ctx.namer), target_key_id=key.arn, opts=ctx.opts())

    identities: dict[str, Identity] = {}
    for role in STACK_IDENTITIES:
        resource = _role(ctx, ctx.logical("role", role), role_name(ctx.namer, role, region), role,
                         f"{role}: {ROLE_DESCRIPTIONS[role]}")
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
        groups=_groups(ctx, key, private),
    )


def _role(ctx: StageContext, logical: str, name: str, trusted: str, description: str) -> Any:
    import pulumi_aws as aws

    spec = ctx.spec
    return aws.iam.Role(
        logical,
        name=name,
        description=f"mlops-infra {spec.project}/{spec.environment} {description}",
        assume_role_policy=json.dumps(policies.trust_policy(trusted, account_id=ctx.settings.account_id)),
        max_session_duration=3600,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )


def _groups(ctx: StageContext, key: Any, private: network.PrivateNetwork | None) -> dict[str, Identity]:
    """One identity per model group, with its grants (see the module docstring)."""
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    spec_groups = grants.groups(spec, ctx.namer, region)
    shared = {}
    for purpose in grants.used_purposes(spec_groups):

        def document(arn: str, purpose: str = purpose) -> str:
            return json.dumps(grants.managed(spec, ctx.namer, settings, arn, [purpose])[purpose])

        def private_document(values: list[str], purpose: str = purpose) -> str:
            arn, vpc = values
            return json.dumps(grants.managed(spec, ctx.namer, settings, arn, [purpose], vpc_id=vpc)[purpose])

        shared[purpose] = aws.iam.Policy(
            ctx.logical("policy", purpose),
            name=managed_policy_name(ctx.namer, purpose, region),
            description=f"mlops-infra {spec.project}/{spec.environment}: {PURPOSE_DESCRIPTIONS[purpose]}",
            # In a private network the jobs attach to the stack's VPC, whose id the cloud assigns.
            policy=key.arn.apply(document) if private is None
            else pulumi.Output.all(key.arn, private.vpc_id).apply(private_document),
            tags=ctx.tags(),
            opts=ctx.opts(),
        )
    identities: dict[str, Identity] = {}
    group_grants: list[Any] = []
    for group in spec_groups:
        role = _role(ctx, ctx.logical("group", group.name), group.role, "jobs",
                     f"model group {group.name}: its models' training and monitoring jobs")
        held: list[Any] = [aws.iam.RolePolicy(
            ctx.logical("groupdata", group.name),
            name=inline_policy_name(ctx.namer, "data"),
            role=role.name,
            policy=json.dumps(grants.group_data(spec, ctx.namer, settings, group)),
            opts=ctx.opts(),
        )]
        held += [aws.iam.RolePolicyAttachment(
            ctx.logical("groupattach", purpose, group.name),
            role=role.name,
            policy_arn=shared[purpose].arn,
            opts=ctx.opts(),
        ) for purpose in group.purposes]
        group_grants += held
        principal = pulumi.Output.all(role.arn, *(grant.id for grant in held)).apply(lambda values: values[0])
        identities[group.name] = Identity(role="training", id=role.name, principal=principal)
    _waited_through_identities(ctx, group_grants)
    return identities


def _waited_through_identities(ctx: StageContext, group_grants: list[Any]) -> None:
    """Take the group grants out of the stack's prerequisites (which recorded them as they were
    made): every acting resource of the stack waits for all prerequisites, so listing one grant per
    group there would grow each one's dependencies with the fleet. A group's jobs wait for its
    grants through its identity's principal instead."""
    made = {id(grant) for grant in group_grants}
    ctx.prerequisites[:] = [p for p in ctx.prerequisites if id(p) not in made]
