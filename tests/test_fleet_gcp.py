"""A real organization's fleet on GCP: every model reads only its group's data, inside IAM's limits.

Validate runs on 1,000 models; the plan runs on PLANNED models (a 1,000-model plan takes minutes on
these machines: benchmarks/run.py measures it). The plan's policies are measured against the
documented limits and shown equal to what validate computes (backends/gcp/grants.py), so the
1,000- and 5,000-model figures validate computes are the plan's too: every policy but the
project's holds the same few principals whatever the fleet's size.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest
import yaml

from mlops_infra.access import reader_groups
from mlops_infra.backends.gcp import BACKEND, fleet, grants
from mlops_infra.errors import SpecInvalid
from mlops_infra.facts import fact
from mlops_infra.plan import plan_document
from mlops_infra.spec.validate import check_text
from tests.fleet import fleet_spec
from tests.planning import spec_from

PLANNED = 24
PRINCIPALS = fact("gcp", "iam-limits", "principals_per_allow_policy").value
OPERATORS = fact("gcp", "iam-limits", "logical_operators_per_condition").value
CONDITIONAL = fact("gcp", "iam-limits", "conditional_bindings_per_role_and_principal").value
# Every IAM member resource type GCP plans, and the inputs that name the policy it writes into.
POLICY_OF = {
    "gcp:storage/bucketIAMMember:BucketIAMMember": ("bucket",),
    "gcp:storage/managedFolderIamMember:ManagedFolderIamMember": ("bucket", "managedFolder"),
    "gcp:projects/iAMMember:IAMMember": ("project",),
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": ("cryptoKeyId",),
    "gcp:serviceaccount/iAMMember:IAMMember": ("serviceAccountId",),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": ("repository",),
    "gcp:bigquery/datasetIamMember:DatasetIamMember": ("datasetId",),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": ("topic",),
}


def _gcp_fleet(models: int, **options: Any) -> dict[str, Any]:
    data = fleet_spec(models, **options)
    data["clouds"]["gcp"]["name_generation"] = 1
    return data


@pytest.fixture(scope="module")
def planned() -> tuple[Any, dict[str, Any]]:
    spec = spec_from(_gcp_fleet(PLANNED))
    return spec, plan_document(spec, "gcp", stack="prod")


@pytest.fixture(scope="module")
def half() -> dict[str, Any]:
    return plan_document(spec_from(_gcp_fleet(PLANNED // 2)), "gcp", stack="prod")


def plan_policies(plan: dict[str, Any]) -> dict[tuple, list[dict[str, Any]]]:
    """Allow policy (type family and target) -> the bindings the plan adds to it."""
    found: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in plan["resources"]:
        if r["type"] in POLICY_OF:
            target = tuple(r["inputs"][key] for key in POLICY_OF[r["type"]])
            found[(r["type"].split("/")[0], *target)].append(r["inputs"])
    return found


def _access(spec: Any) -> list[grants.Policy]:
    settings = spec.settings_for("gcp")
    namer = BACKEND.namer(spec, settings)
    physical = {b.name: namer.name("gcp.storage.bucket", b.name) for b in spec.storage.buckets}
    physical["artifacts"] = namer.name("gcp.storage.bucket", "artifacts")
    access = grants.storage_access(spec, served_paths=grants.served_paths(spec, namer))
    return grants.policies(spec, project=settings.project, physical=physical, access=access)


# --- the plan is inside every limit, and validate measures exactly the plan ------------------------
def test_every_identitys_grants_in_the_plan_are_inside_the_documented_limits(planned: tuple) -> None:
    _, plan = planned
    policies = plan_policies(plan)
    assert len(policies) > 5 * PLANNED  # one folder policy per data and artifact prefix
    for target, bindings in policies.items():
        assert len(bindings) <= PRINCIPALS, target
        conditional = Counter((b["role"], b["member"]) for b in bindings if "condition" in b)
        assert all(count <= CONDITIONAL for count in conditional.values()), target
        for b in bindings:
            if "condition" in b:
                assert grants.logical_operators(b["condition"]["expression"]) <= OPERATORS, target
        if target[0] == "gcp:storage":  # no conditions at all: prefixes are managed folders
            assert not conditional, target


def test_validate_computes_the_policies_the_plan_writes(planned: tuple) -> None:
    spec, plan = planned
    policies = plan_policies(plan)
    computed = {p.resource: p.principals for p in _access(spec)}
    project = spec.settings_for("gcp").project
    assert computed.pop(f"project {project}") == len(policies[("gcp:projects", project)]) == PLANNED + 5
    from_plan = {}
    for target, bindings in policies.items():
        if target[0] == "gcp:storage":
            where = f"bucket gs://{target[1]}" if len(target) == 2 else f"managed folder gs://{target[1]}/{target[2]}"
            from_plan[where] = len(bindings)
    assert from_plan == computed


def test_each_model_reads_only_its_own_prefixes_and_writes_only_its_own_folders(planned: tuple) -> None:
    spec, plan = planned
    by_member: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for r in plan["resources"]:
        if r["type"].endswith("ManagedFolderIamMember"):
            i = r["inputs"]
            by_member[i["member"]].add((i["bucket"].split("-")[2], i["managedFolder"], i["role"].rsplit(".", 1)[-1]))
    for model in ("m0000", f"m{PLANNED - 1:04d}"):
        [member] = [m for m in by_member if f"-group-{model}@" in m]
        assert by_member[member] == {
            ("raw", f"{model}/", "objectViewer"),
            ("features", f"{model}/baseline/", "objectViewer"),
            ("labels", f"{model}/", "objectViewer"),
            ("artifacts", f"models/{model}/", "objectUser"),
            ("artifacts", f"checkpoints/{model}/", "objectUser"),
        }
    serving = [m for m in by_member if "-serving@" in m]
    assert serving and all(folder[1].startswith("models/") for m in serving for folder in by_member[m])


def test_the_cost_per_model_is_flat(planned: tuple, half: dict) -> None:
    spec, plan = planned
    smaller = half
    per_model = (len(plan["resources"]) - len(smaller["resources"])) / (PLANNED - PLANNED // 2)
    stack_wide = len(plan["resources"]) - per_model * PLANNED
    assert per_model == int(per_model) and stack_wide > 0
    # The largest policy (the project's) grows by one principal per model group, nothing else does.
    growth = {p.resource: p.principals for p in _access(spec)}
    halved = {p.resource: p.principals for p in _access(spec_from(_gcp_fleet(PLANNED // 2)))}
    assert max(growth.values()) - max(halved.values()) == PLANNED - PLANNED // 2
    assert max(v for k, v in growth.items() if not k.startswith("project")) == 2  # models/<m>/: its group, serving


# --- 1,000 and 5,000 models -------------------------------------------------------------------------
def test_a_thousand_models_validate_inside_every_limit() -> None:
    data = _gcp_fleet(1000)
    checked = check_text(yaml.safe_dump(data, sort_keys=False), "fleet.yaml", clouds=["gcp"])
    policies = _access(checked.spec)
    assert max(p.principals for p in policies) == 1000 + 5 <= PRINCIPALS  # the project's
    assert sorted({p.principals for p in policies if not p.resource.startswith("project")}) == [1, 2]
    assert not any(b.condition for p in policies for b in p.bindings)
    # 1,002 service accounts: above the default quota, which can be raised: a warning naming it.
    [quota] = [w for w in checked.warnings if w.path == ("models",)]
    assert "1002 service accounts" in quota.message and "'Number of service accounts'" in quota.message
    assert "quota increase" in (quota.hint or "") and "models[].group" in (quota.hint or "")


def test_five_thousand_models_in_groups_fit_and_one_identity_each_does_not() -> None:
    grouped = spec_from(_gcp_fleet(5000, group_size=5))
    settings = grouped.settings_for("gcp")
    problems = fleet.access_problems(grouped, settings, BACKEND.namer(grouped, settings))
    assert [(p.severity, p.path) for p in problems] == [("warning", ("models",))]  # 1,002 accounts
    alone = spec_from(_gcp_fleet(1500))  # 1,500 groups + 5 stack-wide grants on the project
    settings = alone.settings_for("gcp")
    [error] = [p for p in fleet.access_problems(alone, settings, BACKEND.namer(alone, settings)) if p.severity == "error"]
    assert "1505 principals" in error.message and "project acme-ml-dev" in error.message
    assert "1500 of them model-group identities" in error.message and "1500 principals" in error.message
    assert "models[].group" in (error.hint or "") and error.path == ("models",)


def test_too_many_identities_reading_a_whole_bucket_is_an_error_at_the_bucket() -> None:
    data = _gcp_fleet(2)
    for i, model in enumerate(data["models"]):
        model["training"]["inputs"] = ["raw"]
    spec = spec_from(data)
    # Instead of 1,500 models: the same policy, measured directly.
    [policy] = [p for p in _access(spec) if p.resource.startswith("bucket") and "raw" in p.resource]
    assert policy.principals == 2 and policy.path == ("storage", "buckets", 0, "name")
    policy.bindings *= 800
    [error] = fleet.policy_problems(policy)
    assert "1600 principals" in error.message and "1600 of them model-group identities" in error.message
    assert "prefixes of the bucket" in (error.hint or "")


def test_conditions_are_measured_against_both_condition_limits() -> None:
    long = " || ".join(f'resource.name.startsWith("p{i}/")' for i in range(14))  # 13 operators
    policy = grants.Policy(
        "bucket gs://b",
        [grants.Binding("roles/storage.objectViewer", "group:a", long)]
        + [grants.Binding("roles/storage.objectViewer", "group:b", f'resource.name.startsWith("q{i}/")') for i in range(21)],
        ("storage", "buckets", 0, "name"),
    )
    problems = fleet.policy_problems(policy)
    assert [p.message.split(" would ")[0] for p in problems] == [
        "the identity of model group 'a''s roles/storage.objectViewer condition on bucket gs://b",
        "the identity of model group 'b'",
    ]
    assert "13 logical operators" in problems[0].message and "allows 12" in problems[0].message
    assert "21 conditional bindings" in problems[1].message and "allows 20" in problems[1].message
    assert grants.logical_operators('a && !b || c != "x && y"') == 3


def test_groups_share_one_identity_and_one_grant_per_prefix() -> None:
    spec = spec_from(_gcp_fleet(6, group_size=3))
    assert [g.models for g in reader_groups(spec).values()] == [("m0000", "m0001", "m0002"), ("m0003", "m0004", "m0005")]
    plan = plan_document(spec, "gcp", stack="prod")
    accounts = [r["inputs"]["accountId"] for r in plan["resources"] if r["type"].endswith("account:Account")]
    assert sorted(a.split("-group-")[-1] for a in accounts if "-group-" in a) == ["team000", "team001"]
    workers = [r for r in plan["resources"] if r["name"].startswith("governance-project-grant-worker-")]
    assert len(workers) == 2
    reads = [r["inputs"] for r in plan["resources"] if r["type"].endswith("ManagedFolderIamMember")
             and r["inputs"]["managedFolder"] == "m0004/" and "-raw-" in r["inputs"]["bucket"]]
    assert [r["member"].split("@")[0].split("-")[-1] for r in reads] == ["team001"]


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [("a/./", "'.' or '..'"), ("../x/", "'.' or '..'"), (".well-known/acme-challenge/", "may not start with"),
     ("/".join("abcdefghijklmnop") + "/", "at most 15 levels")],
)
def test_prefixes_gcs_refuses_as_managed_folders_are_located_errors(prefix: str, reason: str) -> None:
    data = _gcp_fleet(1)
    data["models"][0]["training"]["inputs"] = ["features", {"bucket": "raw", "prefix": prefix}]
    with pytest.raises(SpecInvalid) as caught:
        check_text(yaml.safe_dump(data, sort_keys=False), "fleet.yaml", clouds=["gcp"])
    [problem] = [p for p in caught.value.problems if p.path == ("models", 0, "training", "inputs", 1)]
    assert reason in problem.message and problem.line is not None and problem.value == prefix


def test_the_service_account_quota_warning_starts_above_the_quota() -> None:
    def quota_warnings(models: int) -> list:
        spec = spec_from(_gcp_fleet(models))
        settings = spec.settings_for("gcp")
        return [p for p in fleet.access_problems(spec, settings, BACKEND.namer(spec, settings)) if p.path == ("models",)]

    assert quota_warnings(98) == []  # 98 groups + 2 stack-wide = 100, the quota
    [warning] = quota_warnings(99)
    assert warning.severity == "warning" and "101 service accounts" in warning.message


def test_fleet_plans_are_byte_identical(half: dict) -> None:
    from mlops_infra.plan import dump_plan

    again = plan_document(spec_from(_gcp_fleet(PLANNED // 2)), "gcp", stack="prod")
    assert dump_plan(again) == dump_plan(half)
