"""Azure workspaces: one personal Azure ML compute instance per user, private and idle-stopped."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_infra.diff import diff_plans
from mlops_infra.naming import name_rules
from tests.azure_lifecycle import azure_spec, problems_at
from tests.planning import plan_for, resources_of

COMPUTE = "azure-native:machinelearningservices:Compute"
ALICE = "11111111-aaaa-bbbb-cccc-000000000001"
BOB = "11111111-aaaa-bbbb-cccc-000000000002"
TENANT = "22222222-aaaa-bbbb-cccc-000000000000"


def data(*, users: list[dict[str, Any]] | None = None, ids: dict[str, str] | None = None, **changes: Any) -> dict:
    raw = azure_spec()
    raw["clouds"]["azure"].update(tenant_id=TENANT, workspace_users=ids if ids is not None else {"alice": ALICE, "bob": BOB})
    raw["workspaces"] = {"size": "cpu-small", "idle_shutdown": "1h",
                         "users": users if users is not None else [{"name": "alice"}, {"name": "bob", "size": "gpu-small"}]}
    raw.update(changes)
    return raw


def instances(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["inputs"]["tags"]["mlops-infra/user"]: r
        for r in resources_of(plan, COMPUTE)
        if r["inputs"]["properties"]["computeType"] == "ComputeInstance"
    }


@pytest.fixture(scope="module")
def public() -> dict[str, Any]:
    return plan_for("azure", data())


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    return plan_for("azure", data(governance={"network": "private"}))


def test_each_user_gets_a_personal_instance_of_its_size(public: dict[str, Any]) -> None:
    found = instances(public)
    assert sorted(found) == ["alice", "bob"]
    alice, bob = (found[u]["inputs"] for u in ("alice", "bob"))
    assert alice["properties"]["properties"]["vmSize"] == "Standard_D2s_v3"  # workspaces.size cpu-small
    assert bob["properties"]["properties"]["vmSize"] == "Standard_NC4as_T4_v3"  # the user's gpu-small
    for user, inputs in (("alice", alice), ("bob", bob)):
        props = inputs["properties"]["properties"]
        assert props["personalComputeInstanceSettings"]["assignedUser"] == {
            "objectId": {"alice": ALICE, "bob": BOB}[user], "tenantId": TENANT}
        assert props["idleTimeBeforeShutdown"] == "PT60M"
        assert props["sshSettings"] == {"sshPublicAccess": "Disabled"}
        assert props["applicationSharingPolicy"] == "Personal"
        assert inputs["properties"]["disableLocalAuth"] is True
        assert found[user]["stage"] == "workspaces"
        assert name_rules()["azure.ml.compute_instance"].accepts(inputs["computeName"]), inputs["computeName"]


def test_instances_live_in_the_stack_workspace(public: dict[str, Any]) -> None:
    (workspace,) = resources_of(public, "azure-native:machinelearningservices:Workspace")
    for resource in instances(public).values():
        assert resource["inputs"]["workspaceName"] == workspace["inputs"]["workspaceName"]


def test_private_instances_have_no_public_ip(public: dict[str, Any], private: dict[str, Any]) -> None:
    assert all(r["inputs"]["properties"]["properties"]["enableNodePublicIp"] for r in instances(public).values())
    assert not any(r["inputs"]["properties"]["properties"]["enableNodePublicIp"] for r in instances(private).values())
    # the managed network places them: no subnet of ours (Azure rejects one there)
    assert all("subnet" not in r["inputs"]["properties"]["properties"] for r in instances(private).values())


def test_adding_a_user_touches_only_its_instance(public: dict[str, Any]) -> None:
    users = [{"name": "alice"}, {"name": "bob", "size": "gpu-small"}, {"name": "carol"}]
    ids = {"alice": ALICE, "bob": BOB, "carol": "11111111-aaaa-bbbb-cccc-000000000003"}
    after = plan_for("azure", data(users=users, ids=ids))
    changes = diff_plans(public, after)
    assert [c["name"] for c in changes.create] == ["workspaces-notebook-carol"]
    assert not changes.update and not changes.delete


def problems(raw: dict[str, Any]) -> dict[str, Any]:
    return {path: found[0] for path, found in problems_at(raw).items()}


def test_a_user_without_an_object_id_is_an_error_at_its_name() -> None:
    found = problems(data(ids={"alice": ALICE, "nobody": BOB}))
    missing = found["workspaces.users[1].name"]
    assert missing.severity == "error" and "object id" in missing.message and "workspace_users" in missing.hint
    stray = found["clouds.azure.workspace_users.nobody"]
    assert stray.severity == "warning"


@pytest.mark.parametrize("idle", ["10m", 0, "90s"])
def test_idle_shutdown_outside_azure_range_is_an_error(idle: str) -> None:
    found = problems(data(workspaces={"users": [{"name": "alice"}], "idle_shutdown": idle}))
    problem = found["workspaces.idle_shutdown"]
    assert problem.severity == "error" and "15 minutes" in problem.message


def test_a_valid_spec_has_no_workspaces_problem() -> None:
    assert not [p for p in problems(data()) if p.startswith(("workspaces", "clouds.azure.workspace_users"))]
