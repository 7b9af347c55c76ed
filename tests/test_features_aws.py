"""AWS feature store: SageMaker Feature Store groups, their stores' encryption, and who may read them.

Two plans shared by the module (a spec with two groups read by one model, and the same spec with
a third group), planned offline through Pulumi's mocks.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws import features_sdk as sdk
from mlops_infra.backends.aws.naming import bucket_name, feature_group_name, role_name
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from mlops_infra.stages.storage import ARTIFACTS
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

FEATURES = [{"name": "customer-id", "type": "string"}, {"name": "event-time", "type": "timestamp"},
            {"name": "spend", "type": "float"}, {"name": "churned", "type": "boolean"}]
SPEC: dict[str, Any] = {
    **copy.deepcopy(BASE_SPEC),
    "storage": {"buckets": [{"name": "raw"}, {"name": "features"}]},
    "models": [{
        "name": "churn",
        "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
        "serving": {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"}},
        "features": ["customers", "orders"],
    }],
    "feature_store": {"groups": [
        {"name": "customers", "record_id": "customer-id", "event_time": "event-time", "online": True,
         "features": FEATURES},
        {"name": "orders", "record_id": "customer-id", "event_time": "event-time",
         "source": {"bucket": "features", "prefix": "orders/"}, "features": FEATURES},
    ]},
}


def with_third_group() -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data["feature_store"]["groups"].append({"name": "payments", "record_id": "customer-id",
                                            "event_time": "event-time", "features": FEATURES})
    return data


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", SPEC)


@pytest.fixture(scope="module")
def namer() -> Any:
    spec = spec_from(SPEC)
    return BACKEND.namer(spec, spec.clouds.aws)



def test_each_group_is_a_feature_group_with_its_definitions(plan, namer):
    groups = {r["name"]: r for r in resources_of(plan, GROUP)}
    assert set(groups) == {"features-group-customers", "features-group-orders"}
    customers = groups["features-group-customers"]
    assert customers["stage"] == "features" and customers["protect"] is True
    inputs = customers["inputs"]
    assert inputs["featureGroupName"] == feature_group_name(namer, "customers") == "churn-dev-customers"
    assert inputs["recordIdentifierFeatureName"] == "customer-id" and inputs["eventTimeFeatureName"] == "event-time"
    assert inputs["featureDefinitions"] == [
        {"featureName": "customer-id", "featureType": "String"}, {"featureName": "event-time", "featureType": "String"},
        {"featureName": "spend", "featureType": "Fractional"}, {"featureName": "churned", "featureType": "Integral"}]
    assert inputs["tags"]["mlops-stage"] == "features"


def test_stores_are_encrypted_with_the_stack_key_and_online_only_when_asked(plan, namer):
    groups = {r["name"]: r for r in resources_of(plan, GROUP)}
    for group in groups.values():
        offline = group["inputs"]["offlineStoreConfig"]
        assert offline["disableGlueTableCreation"] is True
        assert "governance-key" in group["dependencies"]["offlineStoreConfig"]
        assert group["dependencies"]["roleArn"] == [f"features-offline-{group['name'].split('-')[-1]}", "features-role"]
    customers, orders = groups["features-group-customers"], groups["features-group-orders"]
    assert customers["inputs"]["offlineStoreConfig"]["s3StorageConfig"]["s3Uri"] == (
        f"s3://{bucket_name(namer, ARTIFACTS)}/features/customers/")
    assert orders["inputs"]["offlineStoreConfig"]["s3StorageConfig"]["s3Uri"] == (
        f"s3://{bucket_name(namer, 'features')}/orders/")
    assert orders["dependencies"]["offlineStoreConfig"] == ["governance-key", "storage-bucket-features"]
    assert customers["inputs"]["onlineStoreConfig"]["enableOnlineStore"] is True
    assert customers["dependencies"]["onlineStoreConfig"] == ["governance-key"]
    assert "onlineStoreConfig" not in orders["inputs"]


def test_offline_store_places_follow_source_or_the_artifact_bucket(namer):
    spec = spec_from(SPEC)
    groups = {g.name: g for g in spec.feature_store.groups}
    artifacts = bucket_name(namer, ARTIFACTS)

    def physical(b: str) -> str:
        return bucket_name(namer, b)

    assert sdk.offline_place(groups["customers"], artifacts=artifacts, physical=physical) == (
        artifacts, "features/customers/")
    assert sdk.offline_place(groups["orders"], artifacts=artifacts, physical=physical) == (
        physical("features"), "orders/")


def test_readers_get_exactly_their_groups_and_prefixes(plan, namer):
    grant = by_name(plan, "features-grant-churn")
    assert grant["inputs"]["name"] == "churn-dev-features"
    policy = json.loads(grant["inputs"]["policy"])
    records = next(s for s in policy["Statement"] if s["Sid"] == "ReadFeatureGroups")
    assert sorted(records["Action"]) == ["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup",
                                         "sagemaker:GetRecord"]
    assert records["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:feature-group/churn-dev-customers",
        "arn:aws:sagemaker:us-east-1:123456789012:feature-group/churn-dev-orders"]
    reads = [s for s in policy["Statement"] if s["Sid"].startswith("ReadOfflineStores")]
    resources = sorted(r for s in reads for r in s["Resource"])
    assert resources == [f"arn:aws:s3:::{bucket_name(namer, ARTIFACTS)}/features/customers/*",
                         f"arn:aws:s3:::{bucket_name(namer, 'features')}/orders/*"]
    assert all(s["Resource"] != "*" for s in policy["Statement"])


def test_serving_reads_only_online_groups_records(plan):
    policy = json.loads(by_name(plan, "features-grant-serving")["inputs"]["policy"])
    assert policy["Statement"] == [{
        "Sid": "ReadOnlineFeatures", "Effect": "Allow", "Action": ["sagemaker:GetRecord", "sagemaker:BatchGetRecord"],
        "Resource": ["arn:aws:sagemaker:us-east-1:123456789012:feature-group/churn-dev-customers"]}]


def test_offline_writer_role_writes_only_the_offline_prefixes(plan, namer):
    role = by_name(plan, "features-role")["inputs"]
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    doc = sdk.offline_store_grant(partition="aws", places=[("b1", "features/x/"), ("b2", "y/")], key_arn="K")
    writes = next(s for s in doc["Statement"] if s["Sid"] == "WriteOfflineStores")
    assert writes["Resource"] == ["arn:aws:s3:::b1/features/x/*", "arn:aws:s3:::b2/y/*"]
    assert any(s["Sid"] == "UseStackKey" and s["Resource"] == "K" for s in doc["Statement"])


def test_adding_a_group_touches_only_its_own_resources(plan):
    changes = diff_plans(plan, plan_for("aws", with_third_group()))
    assert changes.delete == [] and changes.update == []
    assert {c["name"] for c in changes.create} == {"features-group-payments", "features-offline-payments"}


def test_types_feature_store_lacks_are_located_warnings():
    checked = check_text(yaml.safe_dump(SPEC, sort_keys=False), "spec.yaml", clouds=["aws"])
    paths = {p.dotted_path: p for p in checked.warnings}
    warning = paths["feature_store.groups[0].features[3].type"]
    assert "no boolean type" in warning.message and "Integral" in warning.message and warning.line is not None
    assert "feature_store.groups[0].features[1].type" in paths


def test_an_unknown_group_is_an_error_with_a_suggestion():
    data = copy.deepcopy(SPEC)
    data["models"][0]["features"] = ["customer"]
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    problem = next(p for p in raised.value.problems if p.dotted_path == "models[0].features[0]")
    assert "did you mean 'customers'" in (problem.hint or "")


def test_the_buckets_holding_offline_stores_let_exactly_the_features_role_in(plan, namer):
    spec = spec_from(SPEC)
    # Storage exempts this role from a private network's perimeter on these buckets only.
    assert sdk.offline_buckets(spec) == {ARTIFACTS, "features"}
    assert by_name(plan, "features-role")["inputs"]["name"] == role_name(namer, sdk.ROLE, "us-east-1")
    data = copy.deepcopy(SPEC)
    del data["feature_store"]["groups"][1]["source"]
    assert sdk.offline_buckets(spec_from(data)) == {ARTIFACTS}
