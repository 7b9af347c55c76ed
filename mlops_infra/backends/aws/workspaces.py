"""AWS workspaces: a SageMaker Studio domain and one user profile per workspace user.

Per stack with `workspaces` (stack-wide: built in the shared stack of a split spec):
- iam.Role "<stack>-workspaces-<region>", assumed by SageMaker from this account only: what the
  notebooks run as. Inline "workspaces" policy (workspace_grants): read the spec's data buckets,
  read and write s3://<artifacts>/workspaces/, use the stack key; nothing else (no job, endpoint
  or registry rights: notebooks explore, pipelines train).
- sagemaker.Domain "<stack>-studio": IAM authentication, home volumes (EFS) encrypted with the
  stack key and retained on delete, JupyterLab by default on the workspaces.size instance, idle
  JupyterLab apps shut down after workspaces.idle_shutdown (users cannot raise it), the role
  above as every user's execution role. With governance.network: private: VpcOnly in the stack's
  private subnets and security group (no public internet; SageMaker's API through the VPC's
  endpoints). With a public network: PublicInternetOnly, in the account's default VPC and its
  default subnets (Studio needs a VPC and subnets either way). Protected: it holds the users'
  home directories.
- sagemaker.UserProfile "<stack>-<user>" per workspaces.users[]: its size (or the default),
  the same idle shutdown and execution role.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws.governance_network import PrivateNetwork
from mlops_infra.backends.aws.naming import (
    bucket_name,
    domain_name,
    inline_policy_name,
    role_name,
    user_profile_name,
)
from mlops_infra.backends.context import StageContext
from mlops_infra.spec.models import Compute
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS
from mlops_infra.stages.workspaces import WorkspacesOutputs

ROLE = "workspaces"  # a word of the execution role's name
PREFIX = "workspaces/"  # the notebooks' own place in the artifact bucket
# CreateDomain / CreateUserProfile IdleSettings.IdleTimeoutInMinutes: 60 to 525600 (botocore
# 1.44.18 sagemaker shape IdleTimeoutInMinutes, read 2026-12-06).
IDLE_MINUTES = (60, 525600)


def instance_type(size: str, settings: Any) -> str:
    """A workspace size's Studio instance: the catalog's processing type of the same size class."""
    return catalog.instance_type(Compute.model_validate({"size": size}), "processing", settings)


def idle_minutes(seconds: int) -> int:
    return -(-int(seconds) // 60)


def check(spec: Any, settings: Any) -> list[Problem]:
    """Idle shutdowns Studio cannot set, and the default VPC a public network needs."""
    ws = spec.workspaces
    if ws is None:
        return []
    problems: list[Problem] = []
    low, high = IDLE_MINUTES
    if not low <= idle_minutes(ws.idle_shutdown) <= high:
        problems.append(BACKEND.gap("workspaces.idle_shutdown", ("workspaces", "idle_shutdown"),
                                    value=ws.idle_shutdown))
    if not spec.governance.network == "private":
        problems.append(finding(
            ("workspaces",),
            f"SageMaker Studio needs a VPC even for public notebooks: with governance.network: {spec.governance.network} "
            f"the domain uses the default VPC of {settings.region} and its default subnets",
            hint="keep the account's default VPC in that region (or set governance.network: private for notebooks "
            "without internet access in the stack's own VPC)",
            severity="warning",
        ))
    return problems


def workspace_grants(*, partition: str, data_buckets: list[str], artifacts: str, key_arn: str) -> dict[str, Any]:
    """The workspaces role's inline policy (see the module docstring)."""
    art = policies.bucket_arn(partition, artifacts)
    data = [policies.bucket_arn(partition, b) for b in sorted(data_buckets)]
    statements: list[dict[str, Any]] = []
    if data:
        statements += [
            {"Sid": "ListData", "Effect": "Allow", "Action": [*policies.S3_LIST_BUCKET, *policies.S3_LOCATE_BUCKET],
             "Resource": data},
            {"Sid": "ReadData", "Effect": "Allow", "Action": list(policies.S3_READ_OBJECT),
             "Resource": [f"{b}/*" for b in data]},
        ]
    statements += [
        {"Sid": "ListOwnPlace", "Effect": "Allow", "Action": list(policies.S3_LIST_BUCKET), "Resource": art,
         "Condition": {"StringLike": {"s3:prefix": [f"{PREFIX}*"]}}},
        {"Sid": "UseOwnPlace", "Effect": "Allow", "Action": [*policies.S3_READ_OBJECT, *policies.S3_WRITE_OBJECT],
         "Resource": f"{art}/{PREFIX}*"},
        policies.key_use_statement(key_arn),
    ]
    return policies.document(statements)


def jupyter_settings(*, instance: str, idle: int) -> dict[str, Any]:
    return {
        "default_resource_spec": {"instance_type": instance},
        "app_lifecycle_management": {"idle_settings": {
            "lifecycle_management": "ENABLED", "idle_timeout_in_minutes": idle, "max_idle_timeout_in_minutes": idle}},
    }


def build(ctx: StageContext) -> WorkspacesOutputs:
    import pulumi
    import pulumi_aws as aws

    spec, settings, region = ctx.spec, ctx.settings, ctx.settings.region
    ws = spec.workspaces
    if ws is None or not ctx.builds_stack:
        return WorkspacesOutputs(workspaces={})
    gov = ctx.upstream.of(GovernanceOutputs)
    network = ctx.upstream.find(PrivateNetwork)
    partition = policies.partition_of(region)
    low, high = IDLE_MINUTES
    idle = min(max(idle_minutes(ws.idle_shutdown), low), high)  # out of range is a validation error

    role = aws.iam.Role(
        ctx.logical("role"),
        name=role_name(ctx.namer, ROLE, region),
        description=f"mlops-infra {spec.project}/{spec.environment} workspaces: what SageMaker Studio notebooks run as",
        assume_role_policy=json.dumps(policies.trust_policy("jobs", account_id=settings.account_id)),
        max_session_duration=3600,
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    grant = aws.iam.RolePolicy(
        ctx.logical("grant"),
        name=inline_policy_name(ctx.namer, ROLE),
        role=role.id,
        policy=pulumi.Output.from_input(gov.key_id).apply(lambda key: json.dumps(workspace_grants(
            partition=partition, data_buckets=[bucket_name(ctx.namer, b.name) for b in spec.storage.buckets],
            artifacts=bucket_name(ctx.namer, ARTIFACTS), key_arn=key))),
        opts=ctx.opts(),
    )
    execution_role = pulumi.Output.all(role.arn, grant.id).apply(lambda values: values[0])

    if network is not None:
        vpc_id, subnets, groups, access = network.vpc_id, network.subnet_ids, network.security_group_ids, "VpcOnly"
    else:
        invoke = pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent)
        default = aws.ec2.get_vpc_output(default=True, opts=invoke)
        vpc_id = default.id
        subnets = aws.ec2.get_subnets_output(filters=[{"name": "vpc-id", "values": [default.id]},
                                                      {"name": "default-for-az", "values": ["true"]}],
                                             opts=invoke).ids
        groups, access = None, "PublicInternetOnly"

    domain = aws.sagemaker.Domain(
        ctx.logical("domain"),
        domain_name=domain_name(ctx.namer),
        auth_mode="IAM",
        vpc_id=vpc_id,
        subnet_ids=subnets,
        app_network_access_type=access,
        kms_key_id=gov.key_id,
        domain_settings={"security_group_ids": groups} if groups is not None else None,
        default_user_settings={
            "execution_role": execution_role,
            **({"security_groups": groups} if groups is not None else {}),
            "jupyter_lab_app_settings": jupyter_settings(instance=instance_type(ws.size, settings), idle=idle),
        },
        retention_policy={"home_efs_file_system": "Retain"},
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    profiles: dict[str, Any] = {}
    for user in ws.users:
        profile = aws.sagemaker.UserProfile(
            ctx.logical("user", user.name),
            domain_id=domain.id,
            user_profile_name=user_profile_name(ctx.namer, user.name),
            user_settings={
                "execution_role": execution_role,
                **({"security_groups": groups} if groups is not None else {}),
                "jupyter_lab_app_settings": jupyter_settings(instance=instance_type(user.size or ws.size, settings),
                                                             idle=idle),
            },
            tags=ctx.tags(),
            opts=ctx.opts(),
        )
        profiles[user.name] = profile.arn
    return WorkspacesOutputs(workspaces=profiles)
