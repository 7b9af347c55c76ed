"""Azure fleets: least privilege inside Azure's RBAC limits at 1,000 models, several stacks in one
subscription, and names unique across organizations (issue 11)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.access import reader_groups
from mlops_infra.backends.azure import BACKEND, governance_access
from mlops_infra.errors import SpecInvalid
from mlops_infra.facts import fact
from mlops_infra.plan import plan_document
from mlops_infra.spec.validate import check_file, check_text
from tests.fleet import fleet_spec
from tests.planning import resources_of, spec_from

GRANT = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
OTHER_SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"
CONDITION_LIMIT = fact("azure", "iam-limits", "condition-length").value
ASSIGNMENT_LIMIT = fact("azure", "iam-limits", "role-assignments-per-subscription").value
# Planning costs about 0.2 s per fleet model on Azure: the suite plans this many, and proves the
# 1,000-model bound from validate and per-group sizes (benchmarks/run.py plans 1,000).
PLANNED = 20


def azure_fleet(models: int, **options: Any) -> dict[str, Any]:
    data = fleet_spec(models, **options)
    data["clouds"] = {"azure": {"location": "westeurope", "subscription_id": SUBSCRIPTION}}
    data["cloud"] = "azure"
    return data


def validate(data: dict[str, Any]) -> Any:
    return check_text(yaml.safe_dump(data, sort_keys=False), "fleet.yaml", clouds=["azure"])


def plan(data: dict[str, Any], stack: str = "prod") -> dict[str, Any]:
    return plan_document(spec_from(data), "azure", stack=stack)


def group_grants(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Group identity (logical name) -> its role assignments."""
    found: dict[str, list[dict[str, Any]]] = {}
    for grant in resources_of(document, GRANT):
        (principal,) = grant["dependencies"]["principalId"]
        found.setdefault(principal, []).append(grant)
    return {p: g for p, g in found.items() if p.startswith("governance-identity-data-")}  # type: ignore[misc]


@pytest.fixture(scope="module")
def fleet() -> dict[str, Any]:
    return plan(azure_fleet(PLANNED))


# --- least privilege that scales ------------------------------------------------------------------


def test_a_fleet_of_1000_models_validates_inside_azure_rbac_limits() -> None:
    data = azure_fleet(1000)
    checked = validate(data)  # raises on any error
    # warnings: Azure ML's raisable quotas and reserved names, never an IAM limit
    assert {w.path for w in checked.warnings if "role assignment" in w.message or "condition" in w.message} == set()
    spec = checked.spec
    accesses = governance_access.groups_access(spec, BACKEND.namer(spec, spec.settings_for("azure")))
    assert len(accesses) == 1000  # one identity per model (each model is its own group)
    lengths = {len(a.condition) for a in accesses}
    # flat: every model's condition is as long as any other's (names of equal length), far below the limit
    assert len(lengths) == 1 and max(lengths) < CONDITION_LIMIT / 2
    count = governance_access.role_assignments(spec)
    assert count == 999 + governance_access.role_assignments(spec_from(azure_fleet(1)))  # one more per model
    assert count * 3 <= ASSIGNMENT_LIMIT  # dev, staging and prod of it fit one subscription


def test_every_identitys_grants_in_a_planned_fleet_are_inside_the_limits(fleet: dict[str, Any]) -> None:
    spec = spec_from(azure_fleet(PLANNED))
    grants = resources_of(fleet, GRANT)
    assert len(grants) == governance_access.role_assignments(spec) <= ASSIGNMENT_LIMIT
    # Azure refuses a second assignment of one role to one principal on one scope
    keys = [
        (g["dependencies"]["principalId"][0], g["inputs"]["roleDefinitionId"], str(g["dependencies"]["scope"]))
        for g in grants
    ]
    assert len(set(keys)) == len(keys)
    assert all(len(g["inputs"].get("condition", "")) <= CONDITION_LIMIT for g in grants)
    by_group = group_grants(fleet)
    assert len(by_group) == PLANNED and all(len(g) == 1 for g in by_group.values())
    namer = BACKEND.namer(spec, spec.settings_for("azure"))
    measured = {a.group: a.condition for a in governance_access.groups_access(spec, namer)}
    for principal, (grant,) in by_group.items():
        model = principal.removeprefix("governance-identity-data-")
        condition = grant["inputs"]["condition"]
        assert condition == measured[model]  # validate measured what the plan assigns
        others = {f"m{i:04d}/" for i in range(PLANNED)} - {f"{model}/"}
        assert f"'{model}/'" in condition and f"'{model}/baseline/'" in condition
        assert not any(other in condition for other in others), model


def test_cost_per_model_is_flat(fleet: dict[str, Any]) -> None:
    small, medium = plan(azure_fleet(5)), plan(azure_fleet(10))
    per_model = [
        (b["summary"]["total"] - a["summary"]["total"]) / (m - n)
        for (a, n), (b, m) in itertools.pairwise(((small, 5), (medium, 10), (fleet, PLANNED)))
    ]
    assert per_model[0] == per_model[1]
    grants = [len(resources_of(p, GRANT)) for p in (small, medium, fleet)]
    assert grants[1] - grants[0] == 5 and grants[2] - grants[1] == PLANNED - 10  # one per model


def test_models_of_a_group_share_one_identity_and_one_assignment() -> None:
    document = plan(azure_fleet(12, group_size=4))
    by_group = group_grants(document)
    assert sorted(by_group) == [f"governance-identity-data-team{i:03d}" for i in range(3)]
    identities = {r["inputs"]["resourceName"] for r in resources_of(document, IDENTITY)}
    assert {f"churn-prod-data-team{i:03d}" for i in range(3)} <= identities
    (grant,) = by_group["governance-identity-data-team001"]
    condition = grant["inputs"]["condition"]
    assert len(condition) <= CONDITION_LIMIT
    assert all(f"'m{i:04d}/'" in condition for i in range(4, 8))
    assert not any(f"'m{i:04d}/'" in condition for i in (*range(4), *range(8, 12)))
    for i in range(4, 8):
        assert by_name(document, f"training-compute-m{i:04d}")["dependencies"]["identity"] == [
            "governance-identity-data-team001"
        ]


def by_name(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in document["resources"] if r["name"] == name)


def test_a_group_whose_condition_would_overflow_is_an_error_naming_the_identity() -> None:
    with pytest.raises(SpecInvalid) as caught:
        validate(azure_fleet(10, group_size=10))
    (problem,) = caught.value.problems
    assert problem.path == ("models", 0, "group") and problem.line is not None
    assert "churn-prod-data-team000" in problem.message and f"{CONDITION_LIMIT} characters" in problem.message
    length = int(problem.message.split(" characters long")[0].rsplit(" ", 1)[1])
    assert length > CONDITION_LIMIT
    assert "models[].group" in (problem.hint or "")
    validate(azure_fleet(8, group_size=4))  # groups of four fit


def test_role_assignments_per_subscription_are_checked() -> None:
    def problems(models: int) -> list[Any]:
        spec = spec_from(azure_fleet(models))
        return [p for p in BACKEND.check(spec, spec.settings_for("azure")) if "role assignments" in p.message]

    (error,) = problems(ASSIGNMENT_LIMIT)
    assert error.severity == "error" and error.path == ("models",)
    assert f"{ASSIGNMENT_LIMIT} role assignments" in error.message and "models[].group" in (error.hint or "")
    # a third of the limit: dev, staging and prod like it would not fit one subscription
    (warning,) = problems(ASSIGNMENT_LIMIT // 3)
    assert warning.severity == "warning" and "dev, staging and prod" in warning.message
    assert problems(100) == []


def test_azure_ml_quotas_are_warnings_up_to_their_maximum() -> None:
    spec = spec_from(azure_fleet(300))
    warnings = {p.message.split(",")[0] for p in BACKEND.check(spec, spec.settings_for("azure")) if p.path == ("models",)}
    assert warnings == {
        "this stack runs 600 Azure ML computes in westeurope (300 compute clusters",
        "this stack serves from 300 online endpoints in westeurope",
    }
    spec = spec_from(azure_fleet(1300))
    (error,) = [p for p in BACKEND.check(spec, spec.settings_for("azure")) if p.severity == "error"]
    assert "2600 Azure ML computes" in error.message and "2500" in error.message


# --- several stacks in one subscription -------------------------------------------------------------


def write_environments(folder: Path, owners: dict[str, str]) -> None:
    for environment, singletons in owners.items():
        data = azure_fleet(2, environment=environment)
        data["governance"] = {"singletons": singletons}
        (folder / f"{environment}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_dev_staging_and_prod_share_a_subscription_without_sharing_anything(tmp_path: Path) -> None:
    write_environments(tmp_path, {"dev": "external", "staging": "external", "prod": "owned"})
    names: dict[str, set[str]] = {}
    exports: dict[str, list[str]] = {}
    for environment in ("dev", "staging", "prod"):
        checked = check_file(tmp_path / f"{environment}.yaml", clouds=["azure"])
        assert not [w for w in checked.warnings if w.path == ("governance", "singletons")]
        document = plan_document(checked.spec, "azure", stack=environment)
        names[environment] = {
            str(value)
            for r in document["resources"]
            for key, value in r["inputs"].items()
            if key in BACKEND.physical_name_inputs
        }
        exports[environment] = [
            r["name"] for r in resources_of(document, "azure-native:monitor:SubscriptionDiagnosticSetting")
        ]
    for one, other in itertools.combinations(names, 2):
        assert names[one] and not names[one] & names[other], (one, other, names[one] & names[other])
    # only the owner exports the subscription's activity log
    assert exports == {"dev": [], "staging": [], "prod": ["governance-activity-log"]}
    (singleton,) = BACKEND.singletons(checked.spec, checked.spec.settings_for("azure"))
    assert singleton.key == f"azure/subscription/{SUBSCRIPTION}/activity-log-export"


def test_two_owners_of_the_subscriptions_activity_log_export_are_refused(tmp_path: Path) -> None:
    write_environments(tmp_path, {"dev": "owned", "prod": "owned"})
    with pytest.raises(SpecInvalid) as caught:
        check_file(tmp_path / "dev.yaml", clouds=["azure"])
    (problem,) = caught.value.problems
    assert problem.path == ("governance", "singletons") and "activity log" in problem.message


def test_a_stack_without_audit_logs_owns_nothing_in_the_subscription() -> None:
    data = azure_fleet(1)
    data["governance"] = {"audit_logs": False}
    spec = spec_from(data)
    assert BACKEND.singletons(spec, spec.settings_for("azure")) == []


# --- names unique across organizations --------------------------------------------------------------

GLOBAL_NAMES = {
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:machinelearningservices:OnlineEndpoint": "endpointName",
}


def test_two_organizations_with_the_same_project_get_different_global_names() -> None:
    ours = azure_fleet(1)
    theirs = copy.deepcopy(ours)
    theirs["clouds"]["azure"]["subscription_id"] = OTHER_SUBSCRIPTION
    plans = [plan(ours), plan(theirs)]
    for type_, key in GLOBAL_NAMES.items():
        (a,), (b,) = (resources_of(p, type_) for p in plans)
        assert a["inputs"][key] != b["inputs"][key], type_
    # and the same subscription always gives the same names
    assert resources_of(plan(ours), "azure-native:keyvault:Vault") == resources_of(plans[0], "azure-native:keyvault:Vault")


def test_a_missing_subscription_is_a_located_error_with_a_hint() -> None:
    data = azure_fleet(1)
    del data["clouds"]["azure"]["subscription_id"]
    with pytest.raises(SpecInvalid) as caught:
        validate(data)
    (problem,) = caught.value.problems
    assert problem.path == ("clouds", "azure", "subscription_id") and problem.line is not None
    assert "az account show" in (problem.hint or "")


def test_groups_are_decided_from_the_whole_spec() -> None:
    spec = spec_from(azure_fleet(6, group_size=2))
    assert list(reader_groups(spec)) == ["team000", "team001", "team002"]
