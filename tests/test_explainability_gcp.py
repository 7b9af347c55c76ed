"""GCP explainability: an explanation spec on the served model, a Vertex AI model deployment
monitoring job on its endpoint, the baseline grant, and bias / model quality as located gaps.

Two plans (module-scoped): two served models without explainability, and the same with
explainability on one of them (the diff test). The provider is tested with a fake client.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp.explainability_job import PENDING_PREFIX, ExplainabilityMonitorProvider
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of

MONITOR = "pulumi-python:dynamic/mlops-infra-gcp:ExplainabilityMonitor"
DEPLOYED = "pulumi-python:dynamic/mlops-infra-gcp:DeployedModel"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
KEY = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
IMAGE = "us-docker.pkg.dev/acme/ml/serve:1.0"
BASELINE = {"bucket": "raw", "prefix": "churn/baseline/"}
EXPLAINABILITY = {"baseline": BASELINE, "schedule": "hourly", "max_attribution_drift": 0.2}


def _served(name: str) -> dict[str, Any]:
    return {
        "name": name, "features": ["customers"],
        "serving": {"image": IMAGE, "compute": {"size": "cpu-small"}, "model_uri": f"models/{name}/model.tar.gz",
                    "data_capture": {"sampling_percent": 25}},
        "monitoring": {"latency_p99_ms": 300},
    }


def _data(*, explained: bool, **monitoring: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["models"] = [_served("churn"), _served("ltv")]
    if explained:
        data["models"][0]["monitoring"].update(explainability=EXPLAINABILITY, **monitoring)
    data["feature_store"] = {"groups": [{
        "name": "customers", "record_id": "customer-id", "event_time": "event-time",
        "features": [
            {"name": "customer-id", "type": "string"}, {"name": "event-time", "type": "timestamp"},
            {"name": "tenure-months", "type": "integer"}, {"name": "age-band", "type": "string"},
            {"name": "churned", "type": "boolean"},
        ],
    }]}
    data["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}}
    data["governance"] = {"encryption": "customer-managed"}
    return data


@pytest.fixture(scope="module")
def plain() -> dict[str, Any]:
    return plan_for("gcp", _data(explained=False))


@pytest.fixture(scope="module")
def explained() -> dict[str, Any]:
    return plan_for("gcp", _data(explained=True))


def _by_name(plan: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources_of(plan, type_)}


def test_one_monitoring_job_on_the_explained_models_endpoint(explained: dict[str, Any]) -> None:
    (monitor,) = resources_of(explained, MONITOR)
    assert monitor["name"] == "explainability-monitor-churn" and monitor["stage"] == "explainability"
    props = monitor["inputs"]
    assert props["project"] == "acme-ml-dev" and props["region"] == "us-central1"
    assert props["endpoint"] == "projects/acme-ml-dev/locations/us-central1/endpoints/churn-dev-churn"
    assert props["monitorInterval"] == "3600s"  # hourly
    assert props["samplingRate"] == 0.25  # the endpoint's capture rate
    assert props["labels"]["mlops-model"] == "churn"
    objective = props["objective"]
    thresholds = {"tenure_months": {"value": 0.2}, "age_band": {"value": 0.2}, "churned": {"value": 0.2}}
    assert objective["explanationConfig"] == {"enableFeatureAttributes": True}
    assert objective["predictionDriftDetectionConfig"] == {"attributionScoreDriftThresholds": thresholds}
    assert objective["trainingPredictionSkewDetectionConfig"] == {"attributionScoreSkewThresholds": thresholds}
    (uri,) = objective["trainingDataset"]["gcsSource"]["uris"]
    assert uri.startswith("gs://") and uri.endswith("/churn/baseline/*")
    assert objective["trainingDataset"]["dataFormat"] == "csv"


def test_the_job_is_encrypted_with_the_stack_key_and_alerts_the_stacks_channels(explained: dict[str, Any]) -> None:
    (monitor,) = resources_of(explained, MONITOR)
    assert monitor["inputs"]["encryptionSpec"] == {"kmsKeyName": KEY}
    channels = sorted(r["name"] for r in resources_of(explained, CHANNEL))
    assert channels and len(monitor["inputs"]["notificationChannels"]) == len(channels)
    assert sorted(monitor["dependencies"]["notificationChannels"]) == channels


def test_the_served_model_carries_a_sampled_shapley_explanation_spec(explained: dict[str, Any]) -> None:
    deployed = _by_name(explained, DEPLOYED)
    spec = deployed["serving-deployed-model-churn"]["inputs"]["model"]["explanationSpec"]
    assert spec["parameters"] == {"sampledShapleyAttribution": {"pathCount": 10}}
    # Record id and event time are keys, not inputs; without bias no label is left out.
    assert sorted(spec["metadata"]["inputs"]) == ["age_band", "churned", "tenure_months"]
    assert spec["metadata"]["outputs"] == {"prediction": {}}
    assert "explanationSpec" not in deployed["serving-deployed-model-ltv"]["inputs"]["model"]
    (monitor,) = resources_of(explained, MONITOR)
    # The job configures the models it finds deployed: it waits for the deployment and the grant.
    assert set(monitor["depends_on"]) == {"serving-deployed-model-churn", "explainability-baseline-reader-churn"}


def test_the_vertex_agent_reads_only_the_baseline_folder(explained: dict[str, Any]) -> None:
    readers = [r for r in resources_of(explained, FOLDER_MEMBER) if r["stage"] == "explainability"]
    assert [r["name"] for r in readers] == ["explainability-baseline-reader-churn"]
    grant = readers[0]["inputs"]
    assert grant["managedFolder"] == "churn/baseline/" and grant["role"] == "roles/storage.objectViewer"
    assert readers[0]["dependencies"]["member"] == ["governance-service-agent-aiplatform"]
    # The storage stage's folder for the group, which reads the same baseline, exists first.
    assert readers[0]["depends_on"] == ["storage-folder-grant-raw/churn/baseline/read-group-churn"]
    assert not [r for r in resources_of(explained, BUCKET_MEMBER) if r["stage"] == "explainability"]


def test_adding_explainability_touches_only_that_models_resources(plain: dict[str, Any], explained: dict[str, Any]) -> None:
    changes = diff_plans(plain, explained)
    assert not changes.delete
    created = sorted(item["name"] for item in changes.create)
    assert {"explainability-baseline-reader-churn", "explainability-monitor-churn"} <= set(created)
    # Reading the baseline makes churn's group an identity with its grants (mlops_infra/access.py):
    # all of them churn's own; the stage's component resource is the only shared newcomer.
    assert all("churn" in name and "ltv" not in name for name in created if name != "explainability")
    # The churn model is uploaded again with its explanation spec; nothing of ltv changes.
    assert sorted(u.name for u in changes.update) == ["serving-deployed-model-churn"]


def _problems(data: dict[str, Any]) -> list[Any]:
    data["cloud"] = "gcp"
    try:
        return list(check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"]).warnings)
    except SpecInvalid as invalid:
        return list(invalid.problems)


def test_bias_and_model_quality_are_located_gaps_naming_the_objectives() -> None:
    monitoring = {
        "bias": {"facet": "age-band", "label": "churned", "baseline": BASELINE},
        "model_quality": {"ground_truth": BASELINE, "problem_type": "binary", "metric": "auc", "threshold": 0.7},
    }
    problems = _problems(_data(explained=True, **monitoring))
    for signal in ("bias", "model_quality"):
        (gap,) = [p for p in problems if p.path == ("models", 0, "monitoring", signal)]
        assert gap.severity == "warning" and "feature-attribution skew and drift" in gap.message
        assert "nothing is deployed" in gap.message and gap.hint
    deprecation = [p for p in problems if p.path == ("models", 0, "monitoring", "explainability")]
    assert deprecation and "2027-03-16" in deprecation[0].message


def test_the_bias_label_is_not_an_explained_input() -> None:
    monitoring = {"bias": {"facet": "age-band", "label": "churned", "baseline": BASELINE}}
    plan = plan_for("gcp", _data(explained=True, **monitoring))
    spec = _by_name(plan, DEPLOYED)["serving-deployed-model-churn"]["inputs"]["model"]["explanationSpec"]
    assert sorted(spec["metadata"]["inputs"]) == ["age_band", "tenure_months"]
    (monitor,) = resources_of(plan, MONITOR)
    assert monitor["inputs"]["objective"]["trainingDataset"]["targetField"] == "churned"


def test_a_model_without_feature_groups_is_an_error_with_a_hint() -> None:
    data = _data(explained=True)
    del data["models"][0]["features"]
    (problem,) = [p for p in _problems(data) if p.path == ("models", 0, "monitoring", "explainability") and p.severity == "error"]
    assert "input features" in problem.message and "features" in (problem.hint or "")


# --- the provider, with a fake Vertex AI client -------------------------------------------------
class FakeClient:
    def __init__(self, deployed: list[str]) -> None:
        self.deployed = deployed
        self.calls: list[tuple[str, Any]] = []

    def get_endpoint(self, name: str) -> dict[str, Any]:
        return {"name": name, "deployedModels": [{"id": d} for d in self.deployed]}

    def create_monitoring_job(self, parent: str, job: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", job))
        return {"name": f"{parent}/modelDeploymentMonitoringJobs/42"}

    def patch_monitoring_job(self, name: str, job: dict[str, Any], mask: list[str]) -> None:
        self.calls.append(("patch", mask))

    def delete_monitoring_job(self, name: str) -> None:
        self.calls.append(("delete", name))


PROPS = {
    "project": "p", "region": "us-central1", "endpoint": "projects/p/locations/us-central1/endpoints/e",
    "displayName": "churn attributions", "objective": {"explanationConfig": {"enableFeatureAttributes": True}},
    "monitorInterval": "86400s", "samplingRate": 0.1, "notificationChannels": ["projects/p/notificationChannels/1"],
    "encryptionSpec": {"kmsKeyName": KEY}, "labels": {},
}


def test_the_provider_configures_every_deployed_model_and_waits_for_one() -> None:
    waiting = FakeClient([])
    created = ExplainabilityMonitorProvider(lambda region: waiting).create(dict(PROPS))
    assert created.id.startswith(PENDING_PREFIX) and not waiting.calls
    client = FakeClient(["7", "3"])
    provider = ExplainabilityMonitorProvider(lambda region: client)
    assert provider.diff(created.id, created.outs, dict(PROPS)).replaces == ["endpoint"]
    result = provider.create(dict(PROPS))
    (call,) = client.calls
    job = call[1]
    assert [c["deployedModelId"] for c in job["modelDeploymentMonitoringObjectiveConfigs"]] == ["3", "7"]
    assert job["encryptionSpec"] == {"kmsKeyName": KEY}
    assert job["modelMonitoringAlertConfig"]["notificationChannels"] == ["projects/p/notificationChannels/1"]
    assert job["modelDeploymentMonitoringScheduleConfig"] == {"monitorInterval": "86400s"}
    # A new deployed model updates the objectives in place; a new key replaces the job.
    client.deployed = ["9"]
    diff = provider.diff(result.id, result.outs, dict(PROPS))
    assert diff.changes and not diff.replaces
    provider.update(result.id, result.outs, dict(PROPS))
    assert client.calls[-1] == ("patch", ["model_deployment_monitoring_objective_configs"])
    rekeyed = {**PROPS, "encryptionSpec": {"kmsKeyName": "other"}}
    assert provider.diff(result.id, {**result.outs, "deployedModelIds": ["9"]}, rekeyed).replaces == ["encryptionSpec"]
    provider.delete(result.id, result.outs)
    assert client.calls[-1] == ("delete", result.id)


def test_the_replacement_facts_match_the_provider() -> None:
    from mlops_infra.backends import registry
    from mlops_infra.backends.gcp import explainability_job

    facts = registry()["gcp"].resource_facts().types[MONITOR]
    assert facts.replace == explainability_job.REPLACE_KEYS
    assert facts.in_place == set(explainability_job.UPDATE_FIELDS)
