"""Azure features: a managed feature store (workspace of kind FeatureStore), an entity and feature set per group."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.features import FEATURE_READER_ACTIONS
from mlops_infra.backends.azure.governance_access import groups_access, role_assignments
from mlops_infra.diff import diff_plans
from tests.azure_lifecycle import azure_spec, problems_at
from tests.planning import plan_for, resources_of, spec_from

ML = "azure-native:machinelearningservices:"
GRANT = "azure-native:authorization:RoleAssignment"
ROLE = "azure-native:authorization:RoleDefinition"
CUSTOMERS = {
    "name": "customers", "record_id": "customer-id", "event_time": "event-time", "online": False,
    "source": {"bucket": "features", "prefix": "customers/"},
    "features": [{"name": "customer-id", "type": "string"}, {"name": "event-time", "type": "timestamp"},
                 {"name": "tenure-months", "type": "integer"}],
}
ORDERS = {"name": "orders", "record_id": "order-id", "event_time": "ts",
          "features": [{"name": "order-id", "type": "integer"}, {"name": "ts", "type": "timestamp"}]}
TRAINING = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]}


def data(groups: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    raw = azure_spec()
    raw["storage"] = {"buckets": [{"name": "raw"}, {"name": "features"}]}
    raw["models"] = [
        {"name": "churn", "training": TRAINING, "features": ["customers"]},
        {"name": "ltv", "training": TRAINING},
    ]
    raw["feature_store"] = {"groups": groups if groups is not None else [CUSTOMERS]}
    raw.update(copy.deepcopy(changes))
    return raw


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("azure", data())


def staged(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources_of(plan, type_) if r["stage"] == "features"]


def test_the_store_is_a_feature_store_workspace_with_the_stack_key(plan: dict[str, Any]) -> None:
    (store,) = staged(plan, ML + "Workspace")
    (main,) = [r for r in resources_of(plan, ML + "Workspace") if r["stage"] == "storage"]
    inputs = store["inputs"]
    assert inputs["kind"] == "FeatureStore" and store["protect"] is True
    assert inputs["workspaceName"] != main["inputs"]["workspaceName"]
    # the stack's associated resources and customer-managed key, as the stack's workspace has them
    for key in ("storageAccount", "keyVault", "applicationInsights", "containerRegistry", "encryption",
                "primaryUserAssignedIdentity", "systemDatastoresAuthMode"):
        assert inputs[key] == main["inputs"][key], key
    assert inputs["encryption"]["status"] == "Enabled"
    assert inputs["hbiWorkspace"] is True
    assert inputs["featureStoreSettings"] == {"computeRuntime": {"sparkRuntimeVersion": "3.4"}}
    assert inputs["publicNetworkAccess"] == "Enabled"


def test_each_group_has_an_entity_and_a_feature_set(plan: dict[str, Any]) -> None:
    (store,) = staged(plan, ML + "Workspace")
    (entity,) = staged(plan, ML + "FeaturestoreEntityContainerEntity")
    (version,) = staged(plan, ML + "FeaturestoreEntityVersion")
    (featureset,) = staged(plan, ML + "FeaturesetContainerEntity")
    assert entity["inputs"]["name"] == "customers_entity" and featureset["inputs"]["name"] == "customers_features"
    assert version["inputs"]["properties"]["indexColumns"] == [{"columnName": "customer-id", "dataType": "String"}]
    for resource in (entity, version, featureset):
        assert resource["inputs"]["workspaceName"] == store["inputs"]["workspaceName"]


def test_only_the_models_naming_a_group_read_the_store(plan: dict[str, Any]) -> None:
    (role,) = staged(plan, ROLE)
    (permission,) = role["inputs"]["permissions"]
    assert sorted(permission["actions"]) == sorted(FEATURE_READER_ACTIONS)
    assert not any("*" in action for action in permission["actions"])
    assert not permission.get("dataActions")
    (grant,) = staged(plan, GRANT)  # churn's group only: ltv names no feature group
    assert grant["name"] == "features-grant-churn-feature-reader-featurestore"


def test_the_reader_group_reads_the_source_of_its_feature_groups_only() -> None:
    spec = spec_from(data())
    namer = BACKEND.namer(spec, spec.settings_for("azure"))
    features = namer.name("azure.storage.container", "features")
    reads = {a.group: {p.container: p.prefixes for p in a.reads} for a in groups_access(spec, namer)}
    assert reads["churn"][features] == ("customers/",)
    assert features not in reads["ltv"]


def test_role_assignments_count_the_feature_readers(plan: dict[str, Any]) -> None:
    assert len(resources_of(plan, GRANT)) == role_assignments(spec_from(data()))


def test_a_private_store_is_closed_and_reached_through_a_private_endpoint() -> None:
    plan = plan_for("azure", data(governance={"network": "private"}))
    (store,) = staged(plan, ML + "Workspace")
    assert store["inputs"]["publicNetworkAccess"] == "Disabled"
    assert store["inputs"]["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    endpoints = staged(plan, "azure-native:network:PrivateEndpoint")
    (endpoint,) = endpoints
    (connection,) = endpoint["inputs"]["privateLinkServiceConnections"]
    assert connection["groupIds"] == ["amlworkspace"]


def test_adding_a_group_touches_only_its_own_resources(plan: dict[str, Any]) -> None:
    after = plan_for("azure", data([CUSTOMERS, ORDERS]))
    changes = diff_plans(plan, after)
    assert sorted(c["name"] for c in changes.create) == [
        "features-entity-orders", "features-entityversion-orders", "features-featureset-orders"]
    assert not changes.update and not changes.delete


def problems(raw: dict[str, Any]) -> dict[str, Any]:
    return {path: found[0] for path, found in problems_at(raw).items()}


def test_what_azure_does_not_build_is_warned_at_the_group() -> None:
    found = problems(data([{**CUSTOMERS, "online": True}]))
    assert found["feature_store.groups[0].online"].severity == "warning"
    versions = found["feature_store.groups[0]"]
    assert versions.severity == "warning" and "FeaturesetSpec.yaml" in versions.message
