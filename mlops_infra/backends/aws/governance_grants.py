"""Every AWS identity's IAM policies as data, and IAM's limits on them.

The stages build their policies from these functions and `validate` measures the same
documents, so a spec that validates fits IAM. No SDK here.

Identities:
- one role per model group (mlops_infra/access.py: models[].group, default the model's own
  name), "<stack>-<group>-jobs-<region>", assumed by SageMaker: the group's training pipelines,
  one-off jobs and monitoring executions run as it. Inline policy "data" (group_data): its
  models' data prefixes, its models' artifact prefixes (models/, checkpoints/, monitoring/ and
  the captured requests under data-capture/), passing only itself to SageMaker, registering only
  into its models' package groups; plus one pull grant per model whose image is in another ECR
  repository (the training stage builds those). Attached: the stack's "training" managed policy
  when one of its models trains, "monitoring" when one monitors drift. Their size depends on
  the group alone, never on the fleet.
- serving (every endpoint's execution role) and automation (EventBridge starting pipelines): one
  each per stack, their grants named by the stack's prefixes; serving also gets a grant per model
  whose image or model data lies outside the stack.
- stack-wide managed policies "training" and "monitoring": what every group identity needs for
  that purpose, named by the stack's prefixes (images, logs, job names) and the stack key. One
  document each: adding a model changes none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from mlops_infra.access import reader_groups, reads_of
from mlops_infra.backends.aws import catalog, policies
from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws import lifecycle_grants
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import serving_modes as modes
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    bucket_name,
    group_role_name,
    model_package_group_name,
    role_name,
    stack_prefix,
)
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.facts import Fact, fact
from mlops_infra.naming import Namer
from mlops_infra.spec.problems import Problem
from mlops_infra.stages import tracking
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS, capture_prefix
from mlops_infra.stages.training import checkpoint_prefix, output_prefix

PURPOSES = ("training", "monitoring")  # the stack-wide managed policies a group identity may attach
# Stands for the key's ARN before deployment: KMS key ids are UUIDs, so the length is exact.
KEY_ID_PLACEHOLDER = "0" * 36


def limit(key: str) -> Fact:
    return fact("aws", "iam-limits", key)


# --- who -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """One model group's identity: its role, its models, the managed policies it attaches."""

    name: str
    role: str
    models: tuple[Any, ...]
    purposes: tuple[str, ...]


def groups(spec: Any, namer: Namer, region: str) -> list[Group]:
    """Every group identity of the stack, by group name (decided from the whole spec)."""
    by_name = {m.name: m for m in spec.models}
    out = []
    for name, reader in reader_groups(spec).items():
        models = tuple(by_name[m] for m in reader.models)
        used = {"training": any(m.training is not None for m in models),
                "monitoring": any(alarms.monitors_drift(m, region) for m in models)}
        out.append(Group(name=name, role=group_role_name(namer, name, region), models=models,
                         purposes=tuple(p for p in PURPOSES if used[p])))
    return out


def stack_roles(spec: Any) -> int:
    """The roles every stack has besides its groups': serving, automation, and MLflow's."""
    return 2 + (1 if tracking.STAGE.used(spec) else 0)


# --- what --------------------------------------------------------------------------------
def group_data(spec: Any, namer: Namer, settings: Any, group: Group) -> dict[str, Any]:
    """The group identity's inline "data" policy (policies.group_data_grant)."""
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    known = {b.name for b in spec.storage.buckets}
    reads = {b: prefixes for b, prefixes in reads_of(group.models).items() if b in known}
    writes: list[str] = []
    captured: list[str] = []
    for model in group.models:
        if model.training is not None:
            writes.append(output_prefix(model.name))
            if model.training.spot:
                writes.append(checkpoint_prefix(model.name))
        if alarms.monitors_drift(model, region):
            writes.append(f"{alarms.MONITORING_PREFIX}{model.name}/")
            captured.append(capture_prefix(model.name))
    packages = [model_package_group_name(namer, m.name) for m in group.models
                if m.training is not None and m.registry is not None]
    return policies.group_data_grant(
        partition=partition,
        artifacts=bucket_name(namer, ARTIFACTS),
        reads=reads,
        physical={b: bucket_name(namer, b) for b in reads},
        writes=writes,
        captured=captured,
        role_arn=policies.role_arn(partition, account, group.role),
        package_groups=packages,
        package_arn=f"arn:{partition}:sagemaker:{region}:{account}",
    )


def managed(
    spec: Any, namer: Namer, settings: Any, key_arn: str, purposes: Iterable[str], *, vpc_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """purpose -> the stack's managed policy document for it (training, monitoring). In a private
    network both may attach their jobs to the stack's VPC `vpc_id` (validate measures them with a
    stand-in of the longest id)."""
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    common = [policies.key_use_statement(key_arn)]
    if network.private(spec):
        common += network.network_grants(partition=partition, region=region, account_id=account,
                                         vpc_id=vpc_id or network.measured_vpc(settings))
    out: dict[str, dict[str, Any]] = {}
    for purpose in purposes:
        if purpose == "training":
            trained = [m for m in spec.models if m.training is not None]
            statements = jobs.training_grants(partition=partition, region=region, account_id=account,
                                              scope=jobs.training_scope(namer))
            volumes = any(_needs_volume_key(lambda m=m: catalog.model_instance_type(m, "training", settings))
                          for m in trained)
        else:
            statements = alarms.monitoring_grants(partition=partition, region=region, account_id=account)
            volumes = _needs_volume_key(lambda: alarms.monitor_instance_type(settings))
        out[purpose] = policies.document([*statements, *common, *([jobs.volume_key_grant(key_arn)] if volumes else [])])
    return out


def _needs_volume_key(instance_type: Any) -> bool:
    """Whether jobs on this instance type get EBS volumes to encrypt with the key (a type the
    catalog cannot resolve is a validation error; measured as needing it, the larger policy)."""
    try:
        return not catalog.has_instance_storage(instance_type())
    except CatalogMiss:
        return True


def used_purposes(spec_groups: Iterable[Group]) -> list[str]:
    used = {p for g in spec_groups for p in g.purposes}
    return [p for p in PURPOSES if p in used]


def image_pulls(model: Any, purpose: str, region: str) -> dict[str, Any] | None:
    """The pull grant a model needs when its training or serving image is in another ECR repository."""
    stage = getattr(model, purpose)
    if stage is None:
        return None
    repository = jobs.spec_repository_arn(policies.partition_of(region), jobs.image_source(stage.image, region))
    sid = "PullTrainingImage" if purpose == "training" else "PullServingImage"
    return None if repository is None else jobs.image_pull_grant(repository, sid)


# --- how big -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """What one role holds, in the characters IAM counts."""

    role: str
    what: str  # "the identity of model group 'x'", for messages
    path: tuple[Any, ...]  # where in the spec to point
    inline: int
    managed: tuple[tuple[str, int], ...]  # (managed policy, size) attached
    models: int = 0  # for groups: how many models share the role


def budgets(spec: Any, namer: Namer, settings: Any) -> list[Budget]:
    """Every workload role of the stack and the size of its policies (key ARNs at full length)."""
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    key_arn = policies.key_arn(partition, region, account, KEY_ID_PLACEHOLDER)
    size = policies.policy_size
    spec_groups = groups(spec, namer, region)
    shared = {p: size(doc) for p, doc in managed(spec, namer, settings, key_arn, used_purposes(spec_groups)).items()}
    index = {m.name: i for i, m in enumerate(spec.models)}
    out = []
    for group in spec_groups:
        pulls = [image_pulls(m, "training", region) for m in group.models]
        first = index[group.models[0].name]
        out.append(Budget(
            role=group.role,
            what=f"the identity of model group {group.name!r}",
            path=("models", first, "group") if group.models[0].group is not None else ("models", first),
            inline=size(group_data(spec, namer, settings, group)) + sum(size(d) for d in pulls if d is not None)
            + batch_grant_size(spec, namer, settings, list(group.models))
            + sum(size(d) for d in lifecycle_grants.group_documents(spec, namer, settings, group.models, key_arn)),
            managed=tuple((p, shared[p]) for p in group.purposes),
            models=len(group.models),
        ))
    out.append(_serving(spec, namer, settings, key_arn))
    retrained = any(m.retraining is not None and m.training is not None for m in spec.models)
    started = lifecycle_grants.automation_documents(spec, namer, settings)
    if retrained or started:
        retraining = [triggers.automation_grants(partition=partition, region=region, account_id=account,
                                                 pipelines=stack_prefix(namer, "aws.sagemaker.pipeline"))]
        out.append(Budget(
            role=role_name(namer, "automation", region), what="the automation identity", path=("models",),
            inline=sum(size(d) for d in [*(retraining if retrained else []), *started]),
            managed=(),
        ))
    return out


def batch_grant_size(spec: Any, namer: Namer, settings: Any, models: list[Any]) -> int:
    from mlops_infra.backends.aws.batch import grant_size  # the batch stage's module imports this one

    return grant_size(spec, namer, settings, models)


def _serving(spec: Any, namer: Namer, settings: Any, key_arn: str) -> Budget:
    region, account = settings.region, settings.account_id
    partition = policies.partition_of(region)
    size = policies.policy_size
    artifacts = bucket_name(namer, ARTIFACTS)
    inline = size(policies.key_use_policy(key_arn)) + size(policies.serving_storage_grant(
        partition=partition, artifacts=artifacts))
    served = [m for m in spec.models if m.serving is not None]
    if served:
        vpc = network.measured_vpc(settings) if network.private(spec) else None
        inline += size(endpoints.serving_grants(partition=partition, region=region, account_id=account,
                                                scope=endpoints.serving_scope(namer), vpc_id=vpc))
    for model in served:
        pull = image_pulls(model, "serving", region)
        inline += size(pull) if pull is not None else 0
        uri = model.serving.model_uri
        if uri and endpoints.parse_s3(uri) and not endpoints.covered_by_storage_grant(uri, artifacts):
            inline += size(endpoints.model_data_grant(partition, uri))
        inline += sum(size(doc) for doc in modes.serving_mode_grants(spec, namer, model, partition))
    return Budget(role=role_name(namer, "serving", region), what="the serving identity", path=("models",),
                  inline=inline, managed=())


# --- validate ----------------------------------------------------------------------------
def problems(spec: Any, namer: Namer, settings: Any) -> list[Problem]:
    """Each role inside IAM's documented limits; the roles of the stack inside the account's quota."""
    found: list[Problem] = []
    inline_limit, managed_limit = limit("role_inline_policies_size"), limit("managed_policy_size")
    attach_quota, attach_max = limit("managed_policies_per_role"), limit("managed_policies_per_role_max")
    spec_budgets = budgets(spec, namer, settings)
    for budget in spec_budgets:
        if budget.inline > inline_limit.value:
            found.append(finding(
                budget.path,
                f"{budget.what} (IAM role {budget.role}) would hold {budget.inline} characters of inline policies; "
                f"IAM allows {inline_limit.cite()} per role",
                hint=_inline_hint(budget),
            ))
        for name, size in budget.managed:
            if size > managed_limit.value:
                found.append(finding(
                    budget.path, f"the stack's {name!r} managed policy would be {size} characters; IAM allows "
                    f"{managed_limit.cite()}", hint="report this: its size does not depend on the spec's models",
                ))
        attached = len(budget.managed)
        if attached > attach_quota.value:
            found.append(finding(
                budget.path,
                f"{budget.what} (IAM role {budget.role}) would attach {attached} managed policies; "
                f"the default quota is {attach_quota.cite()}",
                hint=f"raise 'Managed policies per role' in Service Quotas (IAM), up to {attach_max.value}",
                severity="error" if attached > attach_max.value else "warning",
            ))
    found += _role_count(spec, sum(1 for b in spec_budgets if b.models))
    return found


def _inline_hint(budget: Budget) -> str:
    if budget.models:
        share = budget.inline // budget.models
        return (f"give some of its {budget.models} models another models[].group (each adds about {share} characters "
                "here: its data and artifact prefixes); models of one group share this role and read each "
                "other's data")
    return ("each model whose serving.image or serving.model_uri names a location outside the stack's own adds a "
            "grant here: push images to the stack's repositories and keep models under the artifact bucket's "
            "models/, or split the models over several stacks")


def _role_count(spec: Any, group_roles: int) -> list[Problem]:
    roles = group_roles + stack_roles(spec)
    quota, maximum = limit("roles_per_account"), limit("roles_per_account_max")
    if roles <= quota.value:
        return []
    over_max = roles > maximum.value
    return [finding(
        ("models",),
        f"this stack creates {roles} IAM roles ({group_roles} model groups, one role each, and {stack_roles(spec)} "
        f"for the stack); IAM allows {(maximum if over_max else quota).cite()} per account"
        + ("" if over_max else " by default") + ", shared with every other stack and role of the account",
        hint=("group models with models[].group: the models of one group share one role" if over_max else
              f"request more 'Roles per account' in Service Quotas (IAM, up to {maximum.value}), or group models "
              "with models[].group: the models of one group share one role"),
        severity="error" if over_max else "warning",
    )]
