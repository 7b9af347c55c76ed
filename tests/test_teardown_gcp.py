"""GCP teardown: what a default destroy keeps, what `--delete-data` empties, and redeploying after it.

tests/test_teardown.py checks the rules every cloud shares (protected exactly kept_types, the
teardown program flips only the force inputs); these are GCP's own consequences of them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.deploy import destroy_split
from mlops_infra.plan import plan_document
from tests.planning import example_plan, spec_from
from tests.test_tenancy_gcp import _stack

KEPT_DATA = {
    "gcp:storage/bucket:Bucket", "gcp:bigquery/dataset:Dataset", "gcp:artifactregistry/repository:Repository",
    "gcp:vertex/aiMetadataStore:AiMetadataStore", "gcp:vertex/aiTensorboard:AiTensorboard",
}


def inventory(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's resources as a destroy sees them in the state (deploy.destroy_split's input)."""
    entries = []
    for r in plan["resources"]:
        needs = [r["parent"]] if r["parent"] else []
        needs += [d for deps in r.get("dependencies", {}).values() for d in deps] + r.get("depends_on", [])
        if r.get("provider"):
            needs.append(r["provider"])
        entries.append({"urn": r["name"], "type": r["type"], "custom": r["custom"], "protect": r["protect"], "needs": needs})
    return entries


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return example_plan("prod", "gcp")


def test_a_default_destroy_keeps_the_data_the_key_and_what_keeps_them_readable(prod: dict) -> None:
    deleted, kept = destroy_split(inventory(prod), delete_data=False)
    kept_types = {k["type"] for k in kept}
    assert KEPT_DATA <= kept_types
    assert {"gcp:kms/keyRing:KeyRing", "gcp:kms/cryptoKey:CryptoKey", "gcp:projects/iAMAuditConfig:IAMAuditConfig"} <= kept_types
    # The service agents' key grants stay, or kept buckets and datasets could not be read; with
    # them the agents and the APIs they need.
    kept_names = {k["name"] for k in kept}
    assert {"governance-key-grant-storage-agent", "governance-key-grant-bigquery-agent",
            "governance-key-grant-aiplatform-agent", "governance-key-grant-artifactregistry-agent"} <= kept_names
    assert "governance-service-agent-aiplatform" in kept_names and "governance-api-aiplatform" in kept_names
    # Custom roles stay: a deleted one's id is held for up to 37 days.
    assert {k["name"] for k in kept if k["type"].endswith("iAMCustomRole:IAMCustomRole")} == {
        n["name"] for n in prod["resources"] if n["type"].endswith("iAMCustomRole:IAMCustomRole")
    }
    # Access goes: identities, grants, managed folders (their objects stay), endpoints, workflows.
    deleted_types = {d["type"] for d in deleted}
    assert {"gcp:serviceaccount/account:Account", "gcp:storage/managedFolder:ManagedFolder",
            "gcp:storage/managedFolderIamMember:ManagedFolderIamMember", "gcp:projects/iAMMember:IAMMember",
            "gcp:vertex/aiEndpoint:AiEndpoint", "gcp:workflows/workflow:Workflow"} <= deleted_types
    assert not deleted_types & (KEPT_DATA | set(BACKEND.kept_types))


def test_delete_data_empties_buckets_and_datasets_and_leaves_the_audit_configuration() -> None:
    spec = spec_from(_stack("prod", "owned"))
    normal = plan_document(spec, "gcp", stack="prod")
    teardown = plan_document(spec, "gcp", stack="prod", teardown=True)
    for plan, force in ((normal, False), (teardown, True)):
        for r in plan["resources"]:
            if r["type"] == "gcp:storage/bucket:Bucket":
                assert r["inputs"]["forceDestroy"] is force, r["name"]
            if r["type"] == "gcp:bigquery/dataset:Dataset":
                assert r["inputs"]["deleteContentsOnDestroy"] is force, r["name"]
            if r["type"] == "gcp:storage/managedFolder:ManagedFolder":
                assert r["inputs"]["forceDestroy"] is True, r["name"]  # deleting a folder keeps its objects
            if r["type"] == "gcp:projects/iAMAuditConfig:IAMAuditConfig":
                # Unprotected for the delete, yet left in the project for the stacks sharing it.
                assert r["retain_on_delete"] is True and r["protect"] is not force, r["name"]
    # Artifact Registry deletes a repository's images with it: there is nothing to force.
    assert "gcp:artifactregistry/repository:Repository" not in BACKEND.force_delete_inputs


def _physical(plan: dict[str, Any]) -> dict[str, str]:
    keys = ("name", "roleId", "accountId", "repositoryId", "datasetId")
    return {r["name"]: r["inputs"][k] for r in plan["resources"] for k in keys if isinstance(r["inputs"].get(k), str)}


def test_a_new_name_generation_gives_new_names_to_exactly_what_gcp_reserves() -> None:
    first = _stack("dev", "owned")
    second = copy.deepcopy(first)
    second["clouds"]["gcp"]["name_generation"] = 2
    before = _physical(plan_document(spec_from(first), "gcp", stack="dev"))
    after = _physical(plan_document(spec_from(second), "gcp", stack="dev"))
    changed = {name for name in before if before[name] != after[name]}
    assert after["governance-key-ring"] == before["governance-key-ring"] + "-g2"
    assert changed == {"governance-key-ring"} | {n for n in before if "-role-" in n}
    assert all(after[n].endswith("_g2") for n in changed - {"governance-key-ring"})
    assert after["governance-key"] == before["governance-key"]  # a new ring holds a new key of the same name


def test_validate_warns_before_the_first_deploy_until_the_generation_is_stated() -> None:
    data = _stack("dev", "owned")
    del data["clouds"]["gcp"]["name_generation"]
    spec = spec_from(data)
    [warning] = [p for p in BACKEND.check(spec, spec.settings_for("gcp")) if p.path == ("clouds", "gcp")]
    assert warning.severity == "warning" and "churn-dev-keyring" in warning.message and "37 days" in warning.message
    assert "name_generation: 1" in (warning.hint or "") and "raise it by one" in (warning.hint or "")
    stated = spec_from(_stack("dev", "owned"))
    assert not [p for p in BACKEND.check(stated, stated.settings_for("gcp")) if p.path == ("clouds", "gcp")]


def test_every_stack_has_the_same_custom_roles_so_no_model_change_deletes_one(
    prod: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protected roles could not be deleted by an `up`; deleted ones would hold their ids for weeks."""
    import mlops_infra.plan as planning
    from mlops_infra.program import build_program

    aliases: dict[str, list[str]] = {}
    capturing = planning._make_monitor

    def monitor(mocks: Any) -> Any:
        made = capturing(mocks)
        register = type(made).RegisterResource

        def record(self: Any, request: Any) -> Any:
            if request.type.endswith("iAMCustomRole:IAMCustomRole"):
                aliases[request.name] = [f"{a.spec.parentUrn}::{a.spec.name}" for a in request.aliases]
            return register(self, request)

        monkeypatch.setattr(type(made), "RegisterResource", record)
        return made

    monkeypatch.setattr(planning, "_make_monitor", monitor)
    no_models = spec_from(_stack("dev", "owned") | {"models": []})
    run = planning.run_offline(build_program(no_models, "gcp"), project="churn", stack="dev")
    roles = {r.name for r in run.registrations if r.type.endswith("iAMCustomRole:IAMCustomRole")}
    assert roles == {r["name"] for r in prod["resources"] if r["type"].endswith("iAMCustomRole:IAMCustomRole")}
    assert roles == {f"governance-role-{n}" for n in
                     ("workflow-starter", "training-launcher", "model-registrar", "model-worker", "drift-worker")}
    assert all(r.protect for r in run.registrations if r.name in roles)
    # Moved from the stages that made them before: aliases keep the live roles (and their ids).
    assert aliases["governance-role-training-launcher"] == [
        "urn:pulumi:dev::churn::mlops-infra:gcp:Training::training::training-role-launcher"
    ]
    assert aliases["governance-role-model-registrar"] == [
        "urn:pulumi:dev::churn::mlops-infra:gcp:Registry::registry::registry-role-registrar"
    ]
