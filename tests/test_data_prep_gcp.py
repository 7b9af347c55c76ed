"""GCP data preparation: a Workflows workflow running a Vertex AI custom job on a Cloud Scheduler
schedule, as the model's group identity, writing only its output prefix.

Three plans (module-scoped): public network with a stack channel, private network, and a
prep-only model (no training) to check the launcher grants.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of

WORKFLOW = "gcp:workflows/workflow:Workflow"
SCHEDULER = "gcp:cloudscheduler/job:Job"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
TOPIC = "gcp:pubsub/topic:Topic"
KEY = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
GROUP_SA = "churn-dev-group-churn@acme-ml-dev.iam.gserviceaccount.com"
IMAGE = "us-docker.pkg.dev/acme/ml/prep:1.0"
PREP = {
    "image": IMAGE, "compute": {"size": "cpu-large"}, "inputs": [{"bucket": "raw", "prefix": "churn/"}],
    "output": {"bucket": "features", "prefix": "churn/prepared/"}, "schedule": "0 1 * * 0",
    "timezone": "Europe/Amsterdam", "environment": {"MODE": "full"},
}


def _data(*, train: bool = True, network: str = "public", prep: dict[str, Any] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"].append({"name": "features"})
    model: dict[str, Any] = {"name": "churn", "data_prep": prep or PREP}
    if train:
        model["training"] = {"image": "us-docker.pkg.dev/acme/ml/train:1.0", "compute": {"size": "cpu-small"},
                             "inputs": [{"bucket": "features", "prefix": "churn/prepared/"}]}
    data["models"] = [model]
    data["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}}
    data["governance"] = {"network": network}
    return data


@pytest.fixture(scope="module")
def public() -> dict[str, Any]:
    return plan_for("gcp", _data())


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    return plan_for("gcp", _data(network="private"))


@pytest.fixture(scope="module")
def prep_only() -> dict[str, Any]:
    return plan_for("gcp", _data(train=False))


def _prep_workflow(plan: dict[str, Any]) -> dict[str, Any]:
    (workflow,) = [r for r in resources_of(plan, WORKFLOW) if r["stage"] == "data_prep"]
    return workflow


def _job(plan: dict[str, Any]) -> dict[str, Any]:
    source = yaml.safe_load(_prep_workflow(plan)["inputs"]["sourceContents"])
    init = {k: v for a in source["main"]["steps"][0]["init"]["assign"] for k, v in a.items()}
    return init["job_body"]


def test_the_workflow_runs_the_job_as_the_group_encrypted(public: dict[str, Any]) -> None:
    workflow = _prep_workflow(public)["inputs"]
    assert workflow["name"] == "churn-dev-churn-prep" and workflow["cryptoKeyName"] == KEY
    assert workflow["serviceAccount"].startswith("churn-dev-automation@")
    job = _job(public)
    spec = job["jobSpec"]
    assert spec["serviceAccount"] == GROUP_SA and job["encryptionSpec"]["kmsKeyName"] == KEY
    assert spec["enableWebAccess"] is False and "network" not in spec
    (pool,) = spec["workerPoolSpecs"]
    assert pool["machineSpec"]["machineType"] and pool["containerSpec"]["imageUri"] == IMAGE
    env = {e["name"]: e["value"] for e in pool["containerSpec"]["env"]}
    assert env["MLOPS_OUTPUT_URI"].endswith("/churn/prepared/") and env["MLOPS_OUTPUT_URI"].startswith("gs://churn-dev-features-")
    assert env["MLOPS_INPUT_RAW"].endswith("/churn/") and env["MODE"] == "full"
    assert spec["scheduling"]["timeout"] == "14400s"


def test_the_schedule_starts_the_workflow(public: dict[str, Any]) -> None:
    (job,) = [r for r in resources_of(public, SCHEDULER) if r["stage"] == "data_prep"]
    assert job["inputs"]["schedule"] == "0 1 * * 0" and job["inputs"]["timeZone"] == "Europe/Amsterdam"
    assert "churn-dev-churn-prep" in job["inputs"]["httpTarget"]["uri"]


def test_private_network_peers_the_job_and_schedules_through_pubsub(private: dict[str, Any]) -> None:
    spec = _job(private)["jobSpec"]
    assert "GOOGLE_CLOUD_PROJECT_NUMBER" in spec["network"]
    (job,) = [r for r in resources_of(private, SCHEDULER) if r["stage"] == "data_prep"]
    assert "pubsubTarget" in job["inputs"] and "httpTarget" not in job["inputs"]
    (topic,) = [r for r in resources_of(private, TOPIC) if r["stage"] == "data_prep"]
    assert topic["inputs"]["kmsKeyName"] == KEY


def test_the_group_writes_its_output_prefix_only(public: dict[str, Any]) -> None:
    writes = [r["inputs"] for r in resources_of(public, FOLDER_MEMBER)
              if r["inputs"]["role"] == "roles/storage.objectUser" and r["inputs"]["bucket"].startswith("churn-dev-features-")]
    assert [(w["managedFolder"], w["member"]) for w in writes] == [("churn/prepared/", f"serviceAccount:{GROUP_SA}")]


def test_failed_runs_notify(public: dict[str, Any]) -> None:
    (policy,) = [r for r in resources_of(public, ALERT) if r["name"] == "monitoring-alert-failed-prep-churn"]
    assert 'workflow_id="churn-dev-churn-prep"' in policy["inputs"]["conditions"][0]["conditionMatchedLog"]["filter"]


def test_a_prep_only_group_gets_the_launcher_and_act_as(public: dict[str, Any], prep_only: dict[str, Any]) -> None:
    acts = [r for r in resources_of(prep_only, SA_MEMBER) if r["stage"] == "data_prep"]
    assert [r["inputs"]["role"] for r in acts] == ["roles/iam.serviceAccountUser"]
    assert GROUP_SA in acts[0]["inputs"]["serviceAccountId"]
    launchers = [r for r in resources_of(prep_only, PROJECT_MEMBER) if r["stage"] == "data_prep"]
    assert [r["inputs"]["role"] for r in launchers] == ["projects/acme-ml-dev/roles/churn_dev_training_launcher"]
    # With training, the training stage's grants serve both: none twice.
    assert not [r for r in public["resources"] if r["stage"] == "data_prep" and r["type"] in (SA_MEMBER, PROJECT_MEMBER)]


def test_new_data_runs_are_a_located_error() -> None:
    data = _data(prep={**PREP, "on_new_data": True})
    data["cloud"] = "gcp"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"])
    (problem,) = [p for p in raised.value.problems if p.path == ("models", 0, "data_prep", "on_new_data")]
    assert "gcloud workflows run churn-dev-churn-prep" in (problem.hint or "")
