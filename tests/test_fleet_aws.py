"""AWS fleets: up to thousands of models, each reading only its own prefixes, inside IAM's limits.

Every model is its own group by default, so every group identity holds the same grants whatever
the fleet's size. The suite plans a fleet of 40 and checks that what validate measures is exactly
what the plan holds, role by role; validate then measures the fleet of 1,000 (planning it takes
minutes: see benchmarks/run.py), whose group grants are the same size as the 40's.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.facts import fact
from mlops_infra.plan import UNKNOWN, plan_document
from mlops_infra.spec.validate import check_text
from tests.fleet import fleet_spec

ACCOUNT = "123456789012"
ROLE = "aws:iam/role:Role"
INLINE = "aws:iam/rolePolicy:RolePolicy"
MANAGED = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def aws_fleet(models: int, **options: Any) -> dict[str, Any]:
    data = fleet_spec(models, **options)
    data["clouds"] = {"aws": {**data["clouds"]["aws"], "account_id": ACCOUNT}}
    return data


def checked(data: dict[str, Any]) -> Any:
    # JSON is YAML, and much faster to write than PyYAML's pure-Python dump of a thousand models.
    return check_text(json.dumps(data, indent=1), "fleet.yaml", clouds=["aws"])


def budgets_of(spec: Any) -> dict[str, grants.Budget]:
    settings = spec.clouds.aws
    return {b.role: b for b in grants.budgets(spec, BACKEND.namer(spec, settings), settings)}


def limit(key: str) -> int:
    return fact("aws", "iam-limits", key).value


@pytest.fixture(scope="module")
def thousand() -> Any:
    """A fleet of 1,000 models, validated (validate raises on any error)."""
    return checked(aws_fleet(1000))


@pytest.fixture(scope="module")
def fleet() -> tuple[Any, dict[str, Any]]:
    spec = checked(aws_fleet(40)).spec
    return spec, plan_document(spec, "aws", stack="prod")


def measured(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Role name -> the sizes of the policies it holds in the plan (IAM's count: no whitespace).

    The policies naming the stack key are "(known after apply)" (the key's ARN): they are rebuilt
    with a key ARN of the real length (key ids are UUIDs), the only unknown part.
    """
    named = {r["name"]: r for r in plan["resources"]}
    key_arn = policies.key_arn("aws", "us-east-1", ACCOUNT, grants.KEY_ID_PLACEHOLDER)
    roles: dict[str, dict[str, Any]] = {r["inputs"]["name"]: {"inline": 0, "managed": []}
                                        for r in plan["resources"] if r["type"] == ROLE}
    for r in plan["resources"]:
        if r["type"] == INLINE:
            text = r["inputs"]["policy"]
            if text == UNKNOWN:
                assert r["dependencies"]["policy"] == ["governance-key"], r["name"]
                assert r["name"].endswith("keygrant-serving") or r["name"] == "tracking-keygrant-mlflow", r["name"]
                text = json.dumps(_key_grant(r["name"], key_arn))
            roles[r["inputs"]["role"]]["inline"] += policies.policy_size(json.loads(text))
        elif r["type"] == ATTACHMENT:
            (policy,) = r["dependencies"]["policyArn"]
            roles[r["inputs"]["role"]]["managed"].append(named[policy]["name"])
    return roles


def _key_grant(name: str, key_arn: str) -> dict[str, Any]:
    from mlops_infra.backends.aws import training_jobs as jobs

    return jobs.tracking_key_grant(key_arn) if "mlflow" in name else policies.key_use_policy(key_arn)


def test_a_fleet_of_a_thousand_validates_and_every_role_fits_iam(thousand: Any) -> None:
    result = thousand
    roles = [w for w in result.warnings if "IAM roles" in w.message]
    (warning,) = roles  # 1,000 group roles and the stack's two: over the default account quota, a warning
    assert warning.path == ("models",) and "1002 IAM roles" in warning.message
    assert "Roles per account" in warning.hint and "models[].group" in warning.hint
    budgets = budgets_of(result.spec)
    groups = [b for b in budgets.values() if b.models]
    assert len(groups) == 1000
    # Flat: every model's identity holds grants of the same size, well inside the limit.
    assert len({b.inline for b in groups}) == 1
    assert max(b.inline for b in budgets.values()) <= limit("role_inline_policies_size")
    assert all(size <= limit("managed_policy_size") for b in budgets.values() for _, size in b.managed)
    assert all(len(b.managed) <= limit("managed_policies_per_role") for b in budgets.values())
    # The same models in teams of ten: a hundred roles, no quota to raise.
    teams = checked(aws_fleet(1000, group_size=10))
    assert not [w for w in teams.warnings if "IAM roles" in w.message]
    team_budgets = [b for b in budgets_of(teams.spec).values() if b.models]
    assert len(team_budgets) == 100 and max(b.inline for b in team_budgets) <= limit("role_inline_policies_size")


def test_what_validate_measures_is_what_the_plan_holds(fleet: tuple[Any, dict[str, Any]]) -> None:
    spec, plan = fleet
    roles = measured(plan)
    budgets = budgets_of(spec)
    key_arn = policies.key_arn("aws", "us-east-1", ACCOUNT, grants.KEY_ID_PLACEHOLDER)
    settings = spec.clouds.aws
    managed = {name: policies.policy_size(doc) for name, doc in grants.managed(
        spec, BACKEND.namer(spec, settings), settings, key_arn, grants.PURPOSES).items()}
    policy_names = {r["name"]: r["name"].removeprefix("governance-policy-")
                    for r in plan["resources"] if r["type"] == MANAGED}
    for role, budget in budgets.items():
        held = roles.pop(role)
        assert held["inline"] == budget.inline, role
        assert sorted((policy_names[p], managed[policy_names[p]]) for p in held["managed"]) == sorted(budget.managed)
    assert roles == {}  # every role of the plan is measured by validate (the fleet tracks nothing: no MLflow role)


def test_every_role_of_the_planned_fleet_is_inside_iam_limits(
    fleet: tuple[Any, dict[str, Any]], thousand: Any
) -> None:
    spec, plan = fleet
    roles = measured(plan)
    assert len(roles) == 40 + 2  # a group identity per model, serving, automation
    assert all(held["inline"] <= limit("role_inline_policies_size") for held in roles.values())
    assert all(len(held["managed"]) <= limit("managed_policies_per_role") for held in roles.values())
    # The group identities of a planned fleet of 40 hold what those of the fleet of 1,000 hold.
    sizes = {b.inline for b in budgets_of(thousand.spec).values() if b.models}
    assert {held["inline"] for role, held in roles.items() if role.endswith("-jobs-us-east-1")} == sizes


def test_each_model_reads_only_its_own_prefixes(fleet: tuple[Any, dict[str, Any]]) -> None:
    _, plan = fleet
    named = {r["name"]: r for r in plan["resources"]}
    buckets = {b: named[f"storage-bucket-{b}"]["inputs"]["bucket"] for b in ("raw", "features", "labels")}
    for index in (0, 17, 39):
        model = f"m{index:04d}"
        doc = json.loads(named[f"governance-groupdata-{model}"]["inputs"]["policy"])
        (read,) = [s for s in doc["Statement"] if s.get("Sid") == "ReadData"]
        assert sorted(read["Resource"]) == sorted([
            f"arn:aws:s3:::{buckets['features']}/{model}/baseline/*",
            f"arn:aws:s3:::{buckets['labels']}/{model}/*",
            f"arn:aws:s3:::{buckets['raw']}/{model}/*",
        ])
        others = json.dumps(doc).replace(model, "")
        assert "/m00" not in others, model  # no other model's prefix anywhere in its policy


def test_a_group_too_big_for_one_role_is_refused_with_the_numbers() -> None:
    data = aws_fleet(40, group_size=40)  # one group "team000" of 40 models
    with pytest.raises(Exception) as refused:
        checked(data)
    (problem,) = [p for p in refused.value.problems if "inline policies" in p.message]
    assert problem.path == ("models", 0, "group") and problem.line is not None
    assert "model group 'team000'" in problem.message and "churn-prod-team000-jobs-us-east-1" in problem.message
    size = int(problem.message.split(" would hold ")[1].split(" ")[0])
    assert size > limit("role_inline_policies_size")
    assert "40 models" in problem.hint
    smaller = copy.deepcopy(data)
    for i, model in enumerate(smaller["models"]):
        model["group"] = f"team{i // 10:03d}"
    checked(smaller)  # four teams of ten fit
