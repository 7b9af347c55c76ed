"""Azure teardown: what a default destroy keeps, and the names Azure keeps after --delete-data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.naming import vault_name, workspace_name
from mlops_infra.deploy import destroy_split
from mlops_infra.facts import fact
from tests.planning import example_plan, plan_for, resources_of, spec_from
from tests.test_fleet_azure import azure_fleet

DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"


def inventory(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan as destroy sees a stack's state: each resource with what it needs to stay managed."""
    found = []
    for r in plan["resources"]:
        needs = [r["parent"]] if r["parent"] else []
        needs += [name for names in r.get("dependencies", {}).values() for name in names]
        needs += r.get("depends_on", [])
        found.append({"urn": r["name"], "type": r["type"], "custom": r["custom"], "protect": r["protect"], "needs": needs})
    return found


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return example_plan("prod", "azure")


def test_audit_settings_are_kept_and_endpoint_telemetry_is_not(prod: dict[str, Any]) -> None:
    settings = {r["name"]: r for r in resources_of(prod, DIAGNOSTICS)}
    audit = {n for n, r in settings.items() if r["protect"]}
    assert audit == {"governance-vault-audit", "storage-blob-audit"}
    traffic = set(settings) - audit
    assert traffic and all(n.startswith("monitoring-trafficlogs-") for n in traffic)
    assert all(BACKEND.keeps(DIAGNOSTICS, settings[n]["inputs"]) for n in audit)
    assert not any(BACKEND.keeps(DIAGNOSTICS, settings[n]["inputs"]) for n in traffic)


def test_a_default_destroy_keeps_the_data_its_guards_and_what_they_need(prod: dict[str, Any]) -> None:
    deleted, kept = destroy_split(inventory(prod), delete_data=False)
    kept_names = {k["name"] for k in kept}
    # guards of the kept data
    assert {
        "storage-blob-service",  # versioning and soft delete
        "storage-lifecycle",
        "storage-blob-audit",
        "governance-vault-audit",
        "governance-activity-log",
        "governance-audit-workspace",
    } <= kept_names
    # what the kept account and workspace run as, with their key grants, though none is protected
    assert {
        "governance-identity-storage-cmk",
        "governance-grant-storage-cmk-key-vault-crypto-service-encryption-user-key",
        "governance-identity-workspace",
        "governance-grant-workspace-key-vault-crypto-service-encryption-user-key",
    } <= kept_names
    # what runs and what grants access goes: computes, endpoints, jobs, group identities and grants
    deleted_names = {d["name"] for d in deleted}
    for prefix in ("training-compute-", "serving-endpoint-", "monitoring-trafficlogs-", "governance-identity-data-"):
        assert any(n.startswith(prefix) for n in deleted_names), prefix
        assert not any(n.startswith(prefix) for n in kept_names), prefix
    assert not any(n.startswith("governance-grant-data-") for n in kept_names)
    # --delete-data deletes everything
    assert destroy_split(inventory(prod), delete_data=True)[1] == []


def test_azure_needs_no_force_to_delete_non_empty_storage_or_registries() -> None:
    # containers, accounts and container registries are deleted with what they hold
    assert BACKEND.force_delete_inputs == {}


def test_validate_warns_before_the_first_deploy_that_names_outlive_delete_data() -> None:
    spec = spec_from(azure_fleet(1))
    settings = spec.settings_for("azure")
    namer = BACKEND.namer(spec, settings)
    (warning,) = [p for p in BACKEND.check(spec, settings) if p.path == ("clouds", "azure")]
    assert warning.severity == "warning"
    retention = fact("azure", "reserved-names", "key-vault-retention-days")
    soft_delete = fact("azure", "reserved-names", "ml-workspace-soft-delete-days")
    assert f"key vault {vault_name(namer, settings)} for {retention.value} days" in warning.message
    assert f"workspace {workspace_name(namer, settings)} for {soft_delete.value} days" in warning.message
    assert retention.source in warning.message and "clouds.azure.generation: 1" in (warning.hint or "")
    # the vault's retention in the plan is the one the warning cites
    vault = resources_of(plan_for("azure", azure_fleet(0)), "azure-native:keyvault:Vault")[0]
    assert vault["inputs"]["properties"]["softDeleteRetentionInDays"] == retention.value
    assert vault["inputs"]["properties"]["enablePurgeProtection"] is True


def test_a_new_generation_renames_only_what_azure_reserves() -> None:
    first = plan_for("azure", azure_fleet(1))
    data = copy.deepcopy(azure_fleet(1))
    data["clouds"]["azure"]["generation"] = 1
    second = plan_for("azure", data)
    changed = {
        (a["type"], key)
        for a, b in zip(first["resources"], second["resources"])
        for key in BACKEND.physical_name_inputs
        if key in a["inputs"] and a["inputs"][key] != b["inputs"][key]
    }
    own = {(t, k) for t, k in changed if t in ("azure-native:keyvault:Vault", "azure-native:machinelearningservices:Workspace")}
    assert own == {
        ("azure-native:keyvault:Vault", "vaultName"),
        ("azure-native:machinelearningservices:Workspace", "workspaceName"),
    }
    # others change only where they name the vault or the workspace they live in
    assert {k for _, k in changed} == {"vaultName", "workspaceName"}
    assert [r["name"] for r in first["resources"]] == [r["name"] for r in second["resources"]]
