"""GCP features: Vertex AI Feature Store over BigQuery (offline tables), an optional online store.

Three plans (module-scoped): two groups (one online) read by a trained and served model, the
same spec with one more group, and a spec whose group names a source bucket (a located gap).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.backends.gcp.features import TIMESTAMP_COLUMN
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of

DATASET = "gcp:bigquery/dataset:Dataset"
TABLE = "gcp:bigquery/table:Table"
TABLE_MEMBER = "gcp:bigquery/iamMember:IamMember"
GROUP = "gcp:vertex/aiFeatureGroup:AiFeatureGroup"
FEATURE = "gcp:vertex/aiFeatureGroupFeature:AiFeatureGroupFeature"
GROUP_MEMBER = "gcp:vertex/aiFeatureGroupIamMember:AiFeatureGroupIamMember"
STORE = "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore"
VIEW = "gcp:vertex/aiFeatureOnlineStoreFeatureview:AiFeatureOnlineStoreFeatureview"
VIEW_MEMBER = "gcp:vertex/aiFeatureOnlineStoreFeatureviewIamMember:AiFeatureOnlineStoreFeatureviewIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
KEY = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
GROUP_SA = "serviceAccount:churn-dev-group-{}@acme-ml-dev.iam.gserviceaccount.com"
SERVING_SA = "serviceAccount:churn-dev-serving@acme-ml-dev.iam.gserviceaccount.com"
IMAGE = "us-docker.pkg.dev/acme/ml/train:1.0"


def _group(name: str, *, online: bool = False) -> dict[str, Any]:
    return {
        "name": name, "record_id": "customer-id", "event_time": "event-time", "online": online,
        "features": [
            {"name": "customer-id", "type": "string"}, {"name": "event-time", "type": "timestamp"},
            {"name": "tenure-months", "type": "integer"}, {"name": "monthly-spend", "type": "float"},
        ],
    }


def _data(*groups: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["models"] = [
        {"name": "churn", "features": ["customers"], "registry": {"approval": "automatic"},
         "training": {"image": IMAGE, "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
         "serving": {"image": IMAGE, "compute": {"size": "cpu-small"}}},
        {"name": "ltv", "features": ["orders"], "training": {"image": IMAGE, "compute": {"size": "cpu-small"}, "inputs": ["raw"]}},
        {"name": "other", "training": {"image": IMAGE, "compute": {"size": "cpu-small"}, "inputs": ["raw"]}},
    ]
    data["feature_store"] = {"groups": list(groups)}
    return data


TWO = _data(_group("customers", online=True), _group("orders"))
THREE = _data(_group("customers", online=True), _group("orders"), _group("payments"))


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("gcp", TWO)


@pytest.fixture(scope="module")
def bigger() -> dict[str, Any]:
    return plan_for("gcp", THREE)


def _by_name(plan: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources_of(plan, type_)}


def test_offline_store_is_an_encrypted_protected_bigquery_table_per_group(plan: dict[str, Any]) -> None:
    (dataset,) = [r for r in resources_of(plan, DATASET) if r["stage"] == "features"]
    assert dataset["protect"] and dataset["inputs"]["defaultEncryptionConfiguration"]["kmsKeyName"] == KEY
    assert dataset["inputs"]["location"] == "us-central1" and dataset["inputs"]["deleteContentsOnDestroy"] is False
    tables = _by_name(plan, TABLE)
    assert set(tables) == {"features-table-customers", "features-table-orders"}
    table = tables["features-table-customers"]
    assert table["protect"] and table["inputs"]["encryptionConfiguration"]["kmsKeyName"] == KEY
    assert BACKEND.keeps(TABLE, table["inputs"])
    columns = json.loads(table["inputs"]["schema"])
    assert columns == [
        {"name": "customer_id", "type": "STRING", "mode": "REQUIRED"},
        {"name": TIMESTAMP_COLUMN, "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "tenure_months", "type": "INT64", "mode": "NULLABLE"},
        {"name": "monthly_spend", "type": "FLOAT64", "mode": "NULLABLE"},
    ]
    assert table["inputs"]["timePartitioning"] == {"type": "DAY", "field": TIMESTAMP_COLUMN}


def test_feature_groups_read_their_tables(plan: dict[str, Any]) -> None:
    group = _by_name(plan, GROUP)["features-group-customers"]["inputs"]
    assert group["name"] == "churn_dev_customers"
    assert group["bigQuery"] == {
        "bigQuerySource": {"inputUri": "bq://acme-ml-dev.churn_dev_features.churn_dev_customers"},
        "entityIdColumns": ["customer_id"],
    }
    features = sorted(r["inputs"]["name"] for r in resources_of(plan, FEATURE) if "customers" in r["name"])
    assert features == ["monthly_spend", "tenure_months"]  # the record id and the time are no features


def test_online_store_only_for_online_groups(plan: dict[str, Any]) -> None:
    (store,) = resources_of(plan, STORE)
    assert store["inputs"]["encryptionSpec"]["kmsKeyName"] == KEY
    assert store["inputs"]["bigtable"]["autoScaling"]["minNodeCount"] == 1
    (view,) = resources_of(plan, VIEW)
    assert view["name"] == "features-view-customers"
    assert view["inputs"]["featureRegistrySource"]["featureGroups"] == [
        {"featureGroupId": "churn_dev_customers", "featureIds": ["tenure_months", "monthly_spend"]}
    ]
    assert view["inputs"]["syncConfig"]["cron"]
    no_online = plan_for("gcp", _data(_group("customers"), _group("orders")))
    assert not resources_of(no_online, STORE) and not resources_of(no_online, VIEW)


def test_grants_go_to_the_models_naming_the_group_only(plan: dict[str, Any]) -> None:
    table_grants = {(r["inputs"]["tableId"], r["inputs"]["member"], r["inputs"]["role"]) for r in resources_of(plan, TABLE_MEMBER)}
    assert table_grants == {
        ("churn_dev_customers", GROUP_SA.format("churn"), "roles/bigquery.dataViewer"),
        ("churn_dev_orders", GROUP_SA.format("ltv"), "roles/bigquery.dataViewer"),
    }
    group_grants = {(r["inputs"]["featureGroup"], r["inputs"]["member"]) for r in resources_of(plan, GROUP_MEMBER)}
    assert group_grants == {("churn_dev_customers", GROUP_SA.format("churn")), ("churn_dev_orders", GROUP_SA.format("ltv"))}
    assert {r["inputs"]["role"] for r in resources_of(plan, GROUP_MEMBER)} == {"roles/aiplatform.featurestoreDataViewer"}
    (view_grant,) = resources_of(plan, VIEW_MEMBER)
    assert view_grant["inputs"]["member"] == SERVING_SA and view_grant["inputs"]["featureView"] == "churn_dev_customers"
    # Querying BigQuery: the readers' worker role holds bigquery.jobs.create; the model without features keeps the log-only one.
    roles = {r["inputs"]["member"]: r["inputs"]["role"] for r in resources_of(plan, PROJECT_MEMBER) if "group-" in r["inputs"]["member"]}
    assert roles[GROUP_SA.format("churn")].endswith("drift_worker") and roles[GROUP_SA.format("other")].endswith("model_worker")


def test_adding_a_group_touches_only_its_own_resources(plan: dict[str, Any], bigger: dict[str, Any]) -> None:
    changes = diff_plans(plan, bigger)
    assert not changes.delete and not changes.update
    assert changes.create and all("payments" in item["name"] for item in changes.create)


def test_a_source_bucket_is_a_located_gap() -> None:
    data = _data({**_group("customers"), "source": {"bucket": "raw", "prefix": "features/"}}, _group("orders"))
    data["cloud"] = "gcp"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"])
    (problem,) = [p for p in raised.value.problems if p.path == ("feature_store", "groups", 0, "source")]
    assert "BigQuery" in problem.message and problem.hint
