"""What one stack claims in its GCP project, checked before any engine runs (no SDK).

- IAM limits: every allow policy the stack writes into, as backends/gcp/grants.py decides it,
  against the documented limits (facts/iam-limits.json): principals per policy, logical
  operators per condition, conditional bindings per role and principal; the service accounts
  it makes against the project's quota; managed folder names GCS would refuse.
- Singletons: the project-wide objects a stack would own (GcpBackend.singletons), and what a
  stack that leaves them to another one (governance.singletons: external) gives up.
- Reserved names: what GCP never frees after `destroy --delete-data` (facts/reserved-names.json).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from mlops_infra.access import reader_groups
from mlops_infra.backends.base import Singleton
from mlops_infra.backends.gcp import governance_network, grants
from mlops_infra.backends.gcp.naming import key_ring_name
from mlops_infra.facts import Fact, fact
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS

# The stack-wide identities; "training" is per model group on GCP (GovernanceOutputs.groups).
STACK_IDENTITIES = ("serving", "automation")
GROUP_HINT = "group models with models[].group: the models of one group share one identity"
# Data Access audit logs: who read and wrote which object. For Cloud KMS, ADMIN_READ records who
# read key metadata and IAM policies (key changes are Admin Activity logs, always on); KMS
# DATA_READ/DATA_WRITE would log every encrypt/decrypt the Cloud Storage agent makes, a volume
# out of proportion with what storage DATA_READ/DATA_WRITE already tells.
AUDITED_SERVICES = {
    "storage.googleapis.com": ("DATA_READ", "DATA_WRITE"),
    "cloudkms.googleapis.com": ("ADMIN_READ",),
}


def _limit(key: str) -> Fact:
    return fact("gcp", "iam-limits", key)


# --- singletons ---------------------------------------------------------------------------------
def singletons(spec: Any, settings: Any) -> list[Singleton]:
    """The project's Data Access audit configuration (one per service) when the stack records
    audit logs, the region's Vertex AI `default` metadata store when it tracks experiments, and the
    network Vertex AI peers with when it creates one for training (governance_network.py)."""
    project, region = settings.project, settings.region
    found = []
    if spec.governance.audit_logs:
        found += [
            Singleton(key=f"gcp/project/{project}/audit-config/{service}",
                      what=f"project {project}'s Data Access audit configuration of {service}")
            for service in AUDITED_SERVICES
        ]
    if spec.tracking is not None and spec.tracking.enabled:
        found.append(
            Singleton(key=f"gcp/project/{project}/{region}/metadata-store-default",
                      what=f"Vertex AI's `default` metadata store of project {project} in {region}")
        )
    if governance_network.peers(spec, settings):
        found.append(
            Singleton(key=governance_network.peered_network_key(settings),
                      what=f"the network Vertex AI peers custom jobs with in project {project} and {region}")
        )
    return found


def external_problems(spec: Any, settings: Any) -> list[Problem]:
    """What a stack leaving the project's singletons to their owner records where, and how."""
    if spec.governance.singletons != "external":
        return []
    left = []
    if spec.governance.audit_logs:
        left.append("the Data Access audit configuration (data reads and writes are logged as the owner's spec says)")
    if spec.tracking is not None and spec.tracking.enabled:
        left.append(f"Vertex AI's `default` metadata store in {settings.region} (this stack's experiments are "
                    "recorded there, encrypted with the owner's key)")
    if not left:
        return []
    return [
        finding(
            ("governance", "singletons"),
            f"on GCP this stack leaves to the stack that owns project {settings.project}'s singletons: "
            + "; ".join(left),
            hint="keep audit_logs and tracking on in the owner's spec, and deploy the owner first; destroying this "
            "stack leaves them in place",
            value="external",
            severity="warning",
        )
    ]


# --- IAM limits ---------------------------------------------------------------------------------
def access_problems(spec: Any, settings: Any, namer: Any) -> list[Problem]:
    served_paths = grants.served_paths(spec, namer)
    access = grants.storage_access(spec, served_paths=served_paths)
    physical = {b.name: namer.name("gcp.storage.bucket", b.name) for b in spec.storage.buckets}
    physical[ARTIFACTS] = namer.name("gcp.storage.bucket", ARTIFACTS)
    problems: list[Problem] = []
    for policy in grants.policies(spec, project=settings.project, physical=physical, access=access):
        problems += policy_problems(policy)
    problems += _account_quota(spec, settings)
    problems += _folder_names(spec, served_paths)
    return problems


def policy_problems(policy: grants.Policy) -> list[Problem]:
    """One allow policy against IAM's limits (each figure cited from facts/iam-limits.json)."""
    problems: list[Problem] = []
    most = _limit("principals_per_allow_policy")
    if policy.principals > most.value:
        groups = sum(1 for b in policy.bindings if b.principal.startswith(grants.GROUP))
        problems.append(
            finding(
                policy.path,
                f"this stack alone would put {policy.principals} principals into the allow policy of "
                f"{policy.resource} ({groups} of them model-group identities); GCP allows {most.cite()}",
                hint=GROUP_HINT + (" (and other stacks' grants in the project count too)" if "project" in policy.resource
                                   else ", or give models prefixes of the bucket to read instead of all of it"),
            )
        )
    operators = _limit("logical_operators_per_condition")
    conditional: Counter[tuple[str, str]] = Counter()
    for binding in policy.bindings:
        if binding.condition is None:
            continue
        conditional[(binding.role, binding.principal)] += 1
        count = grants.logical_operators(binding.condition)
        if count > operators.value:
            problems.append(
                finding(
                    policy.path,
                    f"{_who(binding.principal)}'s {binding.role} condition on {policy.resource} would have {count} "
                    f"logical operators; GCP allows {operators.cite()}",
                    hint=GROUP_HINT,
                )
            )
    bindings = _limit("conditional_bindings_per_role_and_principal")
    for (role, principal), count in sorted(conditional.items()):
        if count > bindings.value:
            problems.append(
                finding(
                    policy.path,
                    f"{_who(principal)} would hold {count} conditional bindings of {role} on {policy.resource}; GCP "
                    f"allows {bindings.cite()}",
                    hint=GROUP_HINT,
                )
            )
    return problems


def _who(principal: str) -> str:
    if principal.startswith(grants.GROUP):
        return f"the identity of model group {principal.removeprefix(grants.GROUP)!r}"
    return f"the {principal} identity"


def _account_quota(spec: Any, settings: Any) -> list[Problem]:
    groups = len(reader_groups(spec))
    accounts = len(STACK_IDENTITIES) + groups
    quota = _limit("service_accounts_per_project")
    if accounts <= quota.value:
        return []
    return [
        finding(
            ("models",),
            f"this stack makes {accounts} service accounts in project {settings.project} (one per model group: "
            f"{groups}, and {len(STACK_IDENTITIES)} stack-wide), above GCP's default quota 'Number of service accounts' of "
            f"{quota.cite()}, which other service accounts in the project share",
            hint=f"request a quota increase for 'Number of service accounts' (IAM) in project {settings.project} "
            f"before `up`, or {GROUP_HINT}",
            severity="warning",
        )
    ]


def _folder_names(spec: Any, served_paths: dict[str, str]) -> list[Problem]:
    depth = _limit("managed_folder_depth")
    problems = []
    for path, prefix in _prefixes(spec, served_paths):
        reason = grants.folder_name_problem(prefix, depth=depth.value)
        if reason:
            problems.append(
                finding(
                    path,
                    f"on GCP each prefix a model reads is a Cloud Storage managed folder, and {reason} "
                    f"({depth.source})",
                    hint="choose a prefix GCS accepts as a managed folder name",
                    value=prefix,
                )
            )
    return problems


def _prefixes(spec: Any, served_paths: dict[str, str]) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """Every prefix that becomes a managed folder, with the spec path that names it."""
    for i, model in enumerate(spec.models):
        if model.training is not None:
            for j, ref in enumerate(model.training.input_refs):
                yield ("models", i, "training", "inputs", j), ref.prefix
        if model.monitoring is not None and model.monitoring.drift is not None:
            yield ("models", i, "monitoring", "drift", "baseline"), model.monitoring.drift.baseline_ref.prefix
        if model.retraining is not None and model.retraining.new_data_ref is not None:
            yield ("models", i, "retraining", "on_new_data"), model.retraining.new_data_ref.prefix
        if model.name in served_paths:
            yield ("models", i, "serving", "model_uri"), grants.folder_name(served_paths[model.name])


# --- reserved names -----------------------------------------------------------------------------
def reserved_name_problems(spec: Any, settings: Any, namer: Any) -> list[Problem]:
    """Warn before the first deployment that `destroy --delete-data` leaves names GCP never frees,
    until the spec states clouds.gcp.name_generation (which also gives the way out)."""
    if "name_generation" in settings.model_fields_set:
        return []
    roles = fact("gcp", "reserved-names", "custom_role_id_reserved_days")
    ring = fact("gcp", "reserved-names", "kms_key_ring_deleted_by_destroy")
    return [
        finding(
            ("clouds", "gcp"),
            f"GCP never deletes Cloud KMS key rings or frees key names ({ring.source}), and holds a deleted custom "
            f"role's id for up to {roles.value} days: after `destroy --delete-data`, deploying this stack again "
            f"would fail on key ring {key_ring_name(namer, settings)} in {settings.region}",
            hint="set clouds.gcp.name_generation: 1 to acknowledge; after a `destroy --delete-data`, raise it by one "
            "before the next `up` (the key ring, its key and the stack's custom roles then take new names)",
            severity="warning",
        )
    ]
