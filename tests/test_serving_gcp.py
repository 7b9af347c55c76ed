"""GCP serving: Vertex AI endpoints, BigQuery capture and the DeployedModel dynamic resource.

Seven plans in all (module-scoped fixtures): stacks/dev.yaml, stacks/prod.yaml, VARIANT (models
served from explicit URIs, GPU, linear rollout, private network), and four variants of dev for
the diffs (the same spec again, max_replicas raised, serving image changed, a model added).
The DeployedModel provider runs against a fake Vertex AI client (no network, no google-auth),
fed with the inputs the plans declare; the REST client runs against a fake HTTP session.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.backends.gcp import BACKEND
from mlops_infra.backends.gcp.backend import BIGQUERY_AGENT_INVOKE
from mlops_infra.backends.gcp.deployed_model import (
    PENDING_PREFIX,
    DeployedModelProvider,
    rollout_steps,
    scaled_split,
)
from mlops_infra.backends.gcp.serving_endpoints import CPU_METRIC, REQUEST_METRIC
from mlops_infra.backends.gcp.naming import capture_dataset_id, repository_id
from mlops_infra.backends.gcp.vertex_client import VertexClient, VertexError
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "gcp"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
DEPLOYED = "pulumi-python:dynamic/mlops-infra-gcp:DeployedModel"
DATASET = "gcp:bigquery/dataset:Dataset"
DATASET_MEMBER = "gcp:bigquery/datasetIamMember:DatasetIamMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
REPO_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
VIEW_MEMBER = "gcp:vertex/aiFeatureOnlineStoreFeatureviewIamMember:AiFeatureOnlineStoreFeatureviewIamMember"


def _clouds(data: dict) -> dict:
    """Keep only the registered clouds' blocks (other backends may be mid-change); acknowledge
    the names GCP reserves (tests/test_backend_gcp.py checks that warning)."""
    data = copy.deepcopy(data)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data["clouds"]["gcp"]["name_generation"] = 1
    return data


DEV = _clouds(yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text()))
VARIANT = _clouds(
    {
        **copy.deepcopy(BASE_SPEC),
        "governance": {"network": "private"},
        "models": [
            {
                "name": "ranker",
                "serving": {
                    "image": "pytorch/torchserve:0.11.0-gpu",  # Docker Hub: mirrored for the upload
                    "model_uri": "models/ranker/v3/",  # a path in the artifact bucket
                    "compute": {"size": "gpu-small"},
                    "environment": {"WORKERS": "2"},
                    "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_cpu_percent": 70},
                    "data_capture": {"sampling_percent": 5},
                    "rollout": {"mode": "linear", "step_percent": 25, "wait": "5m"},
                },
            },
            {
                "name": "scorer",
                "serving": {
                    "image": "us-docker.pkg.dev/acme/serve/scorer:1.0",
                    "model_uri": "gs://partner-models/scorer/1/",  # a bucket the stack does not own
                    "compute": {"size": "cpu-small"},
                },
            },
        ],
    }
)


def _dev(**serving_changes: Any) -> dict:
    data = copy.deepcopy(DEV)
    data["models"][0]["serving"].update(serving_changes)
    return data





@pytest.fixture(scope="module")
def variant() -> dict:
    return plan_for("gcp", VARIANT)


@pytest.fixture(scope="module")
def dev_again() -> dict:
    return plan_for("gcp", DEV)


@pytest.fixture(scope="module")
def dev_bigger() -> dict:
    return plan_for("gcp", _dev(autoscaling={**DEV["models"][0]["serving"]["autoscaling"], "max_replicas": 8}))


@pytest.fixture(scope="module")
def dev_new_image() -> dict:
    return plan_for("gcp", _dev(image="ghcr.io/acme/churn-serve:1.5.0"))


@pytest.fixture(scope="module")
def dev_two_models() -> dict:
    data = copy.deepcopy(DEV)
    data["models"].append(
        {"name": "upsell", "serving": {"image": "gcr.io/acme/upsell:2.0", "model_uri": "models/upsell/2/",
                                       "compute": {"size": "cpu-small"}, "data_capture": {"sampling_percent": 50}}}
    )
    return plan_for("gcp", data)


def by_name(plan: dict) -> dict[str, dict]:
    return {r["name"]: r for r in plan["resources"]}


def identities(plan: dict) -> dict[str, str]:
    return plan["outputs"]["governance"]["identities"]


# --- the endpoint, its capture and its deployment, wired to artifact, key and identity -------
def test_every_served_model_gets_an_endpoint_a_deployment_and_outputs(dev: dict, prod: dict) -> None:
    for plan, project, region, models in (
        (dev, "acme-churn-dev", "us-central1", ["churn-classifier"]),
        (prod, "acme-churn-prod", "europe-west4", ["churn-classifier", "ltv-regressor"]),
    ):
        res = by_name(plan)
        key = plan["outputs"]["governance"]["key_id"]
        assert sorted(plan["outputs"]["serving"]["endpoints"]) == models
        for model in models:
            endpoint = res[f"serving-endpoint-{model}"]
            assert endpoint["type"] == ENDPOINT and endpoint["provider"] == "gcp" and endpoint["protect"] is False
            endpoint_id = endpoint["inputs"]["name"]
            assert name_rules()["gcp.vertex.endpoint_id_alpha"].accepts(endpoint_id)
            assert endpoint["inputs"]["encryptionSpec"] == {"kmsKeyName": key}
            assert "governance-key-grant-aiplatform-agent" in endpoint["dependencies"]["encryptionSpec"]
            assert endpoint["inputs"]["labels"]["mlops-model"] == model
            assert "trafficSplit" not in endpoint["inputs"]  # the DeployedModel owns the traffic
            path = f"projects/{project}/locations/{region}/endpoints/{endpoint_id}"
            assert plan["outputs"]["serving"]["endpoints"][model] == path
            assert plan["outputs"]["serving"]["urls"][model] == (
                f"https://{region}-aiplatform.googleapis.com/v1/{path}:predict"
            )
            deployed = res[f"serving-deployed-model-{model}"]
            assert deployed["type"] == DEPLOYED and deployed["inputs"]["endpoint"] == path
            assert deployed["dependencies"]["endpoint"] == [f"serving-endpoint-{model}"]
            assert "__provider" not in deployed["inputs"]


def test_deployments_follow_the_registry_with_key_identity_and_catalog(dev: dict, prod: dict) -> None:
    for plan, model, machine, replicas, target, rollout in (
        (dev, "churn-classifier", "n2-standard-2", {"min": 1, "max": 4}, (REQUEST_METRIC, 50),
         {"mode": "all-at-once", "waitSeconds": 600}),
        (prod, "churn-classifier", "n2-standard-4", {"min": 2, "max": 10}, (REQUEST_METRIC, 100),
         {"mode": "canary", "canaryPercent": 10, "waitSeconds": 600}),
        (prod, "ltv-regressor", "n2-standard-4", {"min": 1, "max": 4}, (CPU_METRIC, 70),
         {"mode": "all-at-once", "waitSeconds": 600}),
    ):
        deployed = by_name(plan)[f"serving-deployed-model-{model}"]
        inputs = deployed["inputs"]
        spec = inputs["model"]
        assert spec["source"] == "registry" and spec["alias"] == "approved"
        assert spec["registryModel"] == plan["outputs"]["registry"]["registries"][model]
        # The serving image, mirrored into the model's repository (ghcr.io cannot be uploaded).
        stack = spec_from(_clouds(yaml.safe_load((ROOT / "stacks" / f"{plan['stack']}.yaml").read_text())))
        settings_ = stack.settings_for("gcp")
        repo = repository_id(BACKEND.namer(stack, settings_), model)
        image = stack.model(model).serving.image.rsplit("/", 1)[-1]
        assert spec["containerSpec"]["imageUri"] == f"{settings_.region}-docker.pkg.dev/{settings_.project}/{repo}/{image}"
        assert spec["encryptionSpec"] == {"kmsKeyName": plan["outputs"]["governance"]["key_id"]}
        assert "governance-key-grant-aiplatform-agent" in deployed["dependencies"]["model"]
        assert inputs["serviceAccount"] == identities(plan)["serving"].removeprefix("serviceAccount:")
        assert deployed["dependencies"]["serviceAccount"] == ["governance-identity-serving"]
        assert inputs["machineSpec"] == {"machineType": machine}
        assert inputs["replicas"] == replicas
        assert inputs["autoscalingMetricSpecs"] == [{"metricName": target[0], "target": target[1]}]
        assert inputs["rollout"] == rollout
        assert name_rules()["gcp.vertex.model_id"].accepts(inputs["modelId"])
        # Its grants exist before it uploads and deploys as the serving identity: the read of its
        # model's artifact folder (the storage stage's) and of its repository.
        reader = f"storage-folder-grant-artifacts/models/{model}/read-serving"
        assert {reader, f"serving-repo-reader-serving-{model}"} <= set(deployed["depends_on"])


def test_request_response_capture_goes_to_an_encrypted_bigquery_dataset(dev: dict, prod: dict) -> None:
    res = by_name(dev)
    key = dev["outputs"]["governance"]["key_id"]
    dataset = res["serving-capture-dataset-churn-classifier"]
    assert dataset["type"] == DATASET and dataset["protect"] is True
    assert dataset["inputs"]["defaultEncryptionConfiguration"] == {"kmsKeyName": key}
    # The key is handed out once BigQuery's encryption account may use it.
    assert "governance-key-grant-bigquery-agent" in dataset["dependencies"]["defaultEncryptionConfiguration"]
    # Only the teardown before `destroy --delete-data` deletes the tables with it (tests/test_teardown.py).
    assert dataset["inputs"]["location"] == "us-central1" and dataset["inputs"]["deleteContentsOnDestroy"] is False
    assert dataset["inputs"]["labels"]["managed-by"] == "mlops-infra"
    dataset_id = dataset["inputs"]["datasetId"]
    assert dataset_id == capture_dataset_id(BACKEND.namer(spec_from(DEV), spec_from(DEV).settings_for("gcp")), "churn-classifier")
    logging = res["serving-endpoint-churn-classifier"]["inputs"]["predictRequestResponseLoggingConfig"]
    assert logging == {
        "enabled": True,
        "samplingRate": 0.2,  # sampling_percent: 20
        "bigqueryDestination": {"outputUri": f"bq://acme-churn-dev.{dataset_id}.request_response_logging"},
    }
    endpoint = res["serving-endpoint-churn-classifier"]
    assert endpoint["dependencies"]["predictRequestResponseLoggingConfig"] == ["serving-capture-dataset-churn-classifier"]
    # (the drift workflow's reader of this dataset: tests/test_monitoring_gcp.py)
    writers = {r["name"]: r for r in resources_of(dev, DATASET_MEMBER) if r["stage"] == "serving"}
    assert set(writers) == {"serving-capture-writer-serving-churn-classifier", "serving-capture-writer-vertex-agent-churn-classifier"}
    assert set(endpoint["depends_on"]) == set(writers)  # Vertex AI creates the table as its agent
    for writer in writers.values():
        assert writer["inputs"]["role"] == "roles/bigquery.dataEditor"
        assert writer["dependencies"]["datasetId"] == ["serving-capture-dataset-churn-classifier"]
    assert writers["serving-capture-writer-serving-churn-classifier"]["inputs"]["member"] == identities(dev)["serving"]
    assert writers["serving-capture-writer-vertex-agent-churn-classifier"]["dependencies"]["member"] == [
        "governance-service-agent-aiplatform"
    ]
    # BigQuery's encryption account is asked for once the BigQuery API is on, so a first plan
    # cannot know it; offline the invoke is answered with a placeholder of the right shape.
    bq_grant = res["governance-key-grant-bigquery-agent"]
    assert bq_grant["inputs"]["member"] == UNKNOWN
    assert bq_grant["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert res["governance-api-bigquery"]["inputs"]["service"] == "bigquery.googleapis.com"
    answer = BACKEND.mock_call(BIGQUERY_AGENT_INVOKE, {"project": "acme-churn-dev"})
    assert answer["member"] == f"serviceAccount:{answer['email']}" and answer["email"].endswith("@bigquery-encryption.iam.gserviceaccount.com")
    # prod's ltv-regressor captures nothing: no dataset, no logging config.
    prod_res = by_name(prod)
    assert "serving-capture-dataset-ltv-regressor" not in prod_res
    assert "predictRequestResponseLoggingConfig" not in prod_res["serving-endpoint-ltv-regressor"]["inputs"]
    assert prod_res["serving-endpoint-churn-classifier"]["inputs"]["predictRequestResponseLoggingConfig"]["samplingRate"] == 0.1


def test_models_served_from_explicit_uris_gpu_and_private_network(variant: dict) -> None:
    res = by_name(variant)
    artifacts = variant["outputs"]["storage"]["artifacts_uri"]
    ranker = res["serving-deployed-model-ranker"]["inputs"]
    assert ranker["model"]["source"] == "upload"
    assert ranker["model"]["artifactUri"] == f"{artifacts}/models/ranker/v3/"
    assert "storage-bucket-artifacts" in res["serving-deployed-model-ranker"]["dependencies"]["model"]
    assert ranker["machineSpec"] == {"machineType": "g2-standard-4", "acceleratorType": "NVIDIA_L4", "acceleratorCount": 1}
    assert ranker["model"]["containerSpec"]["env"] == [{"name": "WORKERS", "value": "2"}]
    assert ranker["autoscalingMetricSpecs"] == [{"metricName": CPU_METRIC, "target": 70}]
    assert ranker["rollout"] == {"mode": "linear", "stepPercent": 25, "waitSeconds": 300}
    # A model without training gets its own repository (CMEK, protected) to pull from.
    namer = BACKEND.namer(spec_from(VARIANT), spec_from(VARIANT).settings_for("gcp"))
    repo = res["serving-repository-ranker"]
    assert repo["type"] == REPOSITORY and repo["protect"] is True and repo["inputs"]["repositoryId"] == repository_id(namer, "ranker")
    assert "governance-key-grant-artifactregistry-agent" in repo["dependencies"]["kmsKeyName"]
    assert ranker["model"]["containerSpec"]["imageUri"] == (
        f"us-central1-docker.pkg.dev/acme-ml-dev/{repository_id(namer, 'ranker')}/torchserve:0.11.0-gpu"
    )
    assert {"serving-repo-reader-serving-ranker", "serving-repo-reader-vertex-agent-ranker"} <= set(res)
    # The artifact read is limited to the model's folder; a foreign bucket gets no grant.
    folder = res["storage-folder-artifacts/models/ranker/v3/"]["inputs"]
    assert folder["name"] == "models/ranker/v3/" and folder["bucket"] == artifacts.removeprefix("gs://")
    reader = res["storage-folder-grant-artifacts/models/ranker/v3/read-serving"]
    assert reader["inputs"]["role"] == "roles/storage.objectViewer" and reader["inputs"]["member"] == identities(variant)["serving"]
    assert reader["inputs"]["managedFolder"] == "models/ranker/v3/" and reader["name"] in res["serving-deployed-model-ranker"]["depends_on"]
    scorer = res["serving-deployed-model-scorer"]["inputs"]
    assert scorer["model"]["artifactUri"] == "gs://partner-models/scorer/1/"
    assert scorer["model"]["containerSpec"]["imageUri"] == "us-docker.pkg.dev/acme/serve/scorer:1.0"  # pulled as it is
    assert [r["name"] for r in resources_of(variant, FOLDER_MEMBER)] == [reader["name"]]
    # network: private -> Private Service Connect, this project only, its address made by Vertex AI
    # in the stack's network; the URL needs the deployment.
    network = res["governance-network"]["inputs"]["name"]
    for model in ("ranker", "scorer"):
        psc = res[f"serving-endpoint-{model}"]["inputs"]["privateServiceConnectConfig"]
        assert psc == {
            "enablePrivateServiceConnect": True,
            "projectAllowlists": ["acme-ml-dev"],
            "pscAutomationConfigs": [{"projectId": "acme-ml-dev", "network": f"projects/acme-ml-dev/global/networks/{network}"}],
        }
        assert "network" not in res[f"serving-endpoint-{model}"]["inputs"]  # PSC, not VPC peering
        assert "governance-network" in res[f"serving-endpoint-{model}"]["dependencies"]["privateServiceConnectConfig"]
        assert variant["outputs"]["serving"]["urls"][model] == UNKNOWN


def _online_groups_of_served_models(data: dict) -> list[str]:
    online = {g["name"] for g in (data.get("feature_store") or {}).get("groups", []) if g.get("online")}
    return sorted({f for m in data["models"] if m.get("serving") for f in m.get("features", [])} & online)


def test_serving_grants_are_least_privilege_and_per_model(dev: dict, prod: dict, variant: dict) -> None:
    allowed = {
        REPO_MEMBER: {"roles/artifactregistry.reader"},
        DATASET_MEMBER: {"roles/bigquery.dataEditor"},
        PROJECT_MEMBER: {"roles/logging.logWriter"},
    }
    prod_data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    for plan, data in ((dev, DEV), (prod, prod_data), (variant, VARIANT)):
        served = set(plan["outputs"]["serving"]["endpoints"])
        serving_identity = identities(plan)["serving"]
        grants = [r for r in plan["resources"] if r["stage"] == "serving" and r["type"] in allowed]
        assert grants
        for grant in grants:
            inputs = grant["inputs"]
            assert inputs["role"] in allowed[grant["type"]], grant["name"]
            assert inputs["member"] in (serving_identity, UNKNOWN), grant["name"]  # UNKNOWN: the Vertex AI agent
            if grant["type"] == PROJECT_MEMBER:
                assert grant["name"] == "serving-project-grant-logwriter-serving"  # the only stack-wide one
            else:
                assert any(grant["name"].endswith(f"-{m}") for m in served), f"{grant['name']} is not per model"
        # Outside serving, the serving identity only reads the artifact folders of served models
        # and the feature views of the online feature groups they name.
        elsewhere = [r for r in plan["resources"] if r["stage"] != "serving" and r["inputs"].get("member") == serving_identity]
        folders = [r for r in elsewhere if r["type"] == FOLDER_MEMBER]
        views = [r for r in elsewhere if r["type"] == VIEW_MEMBER]
        assert folders and len(folders) + len(views) == len(elsewhere)
        assert all(r["inputs"]["role"] == "roles/storage.objectViewer" and "condition" not in r["inputs"] for r in folders)
        assert all(r["dependencies"]["bucket"] == ["storage-folder-artifacts/" + r["inputs"]["managedFolder"]] for r in folders)
        assert sorted(r["dependencies"]["featureView"][0] for r in views) == [
            f"features-view-{group}" for group in _online_groups_of_served_models(data)
        ]
        assert all(r["inputs"]["role"] == "roles/aiplatform.featurestoreDataViewer" and "condition" not in r["inputs"]
                   for r in views)
        assert "*" not in json.dumps([g["inputs"]["role"] for g in grants])


# --- diffs -----------------------------------------------------------------------------------
def test_the_same_spec_plans_to_the_same_bytes(dev: dict, dev_again: dict) -> None:
    assert dump_plan({**dev_again, "warnings": dev["warnings"]}) == dump_plan(dev)
    assert diff_plans(dev, dev_again).empty


def test_raising_max_replicas_changes_only_the_deployed_model_in_place(dev: dict, dev_bigger: dict) -> None:
    changes = diff_plans(dev, dev_bigger)
    assert not changes.create and not changes.delete
    assert [(u.name, u.paths) for u in changes.update] == [("serving-deployed-model-churn-classifier", ["inputs.replicas.max"])]
    # The provider updates it in place (mutateDeployedModel), no new deployed model.
    old, new = (by_name(p)["serving-deployed-model-churn-classifier"]["inputs"] for p in (dev, dev_bigger))
    result = DeployedModelProvider(client_factory=lambda region: FakeVertex()).diff("123", _state(old), new)
    assert result.changes and result.replaces == []


def test_a_new_serving_image_replaces_the_deployed_model_not_the_endpoint(dev: dict, dev_new_image: dict) -> None:
    changes = diff_plans(dev, dev_new_image)
    assert not changes.create and not changes.delete
    updates = {u.name: u.paths for u in changes.update}
    deployed = updates.pop("serving-deployed-model-churn-classifier")
    assert set(deployed) == {"inputs.model.containerSpec.imageUri", "inputs.modelId"}  # a new physical name
    # Later training runs register versions with the new serving container too; nothing else moves.
    assert set(updates) <= {"training-workflow-churn-classifier"}
    res_old, res_new = by_name(dev), by_name(dev_new_image)
    assert res_old["serving-endpoint-churn-classifier"] == res_new["serving-endpoint-churn-classifier"]
    old, new = (r["serving-deployed-model-churn-classifier"]["inputs"] for r in (res_old, res_new))
    assert old["modelId"] != new["modelId"]
    result = DeployedModelProvider(client_factory=lambda region: FakeVertex()).diff("123", _state(old), new)
    assert set(result.replaces) == {"model", "modelId"} and result.delete_before_replace is False


def test_adding_a_model_shows_only_creates(dev: dict, dev_two_models: dict) -> None:
    changes = diff_plans(dev, dev_two_models)
    # The stack's dashboard has a row per served model: the one resource that lists them all
    # (tests/test_monitoring_gcp.py).
    assert [(u.name, u.paths) for u in changes.update] == [
        ("monitoring-dashboard", ["inputs.dashboardJson<json>.mosaicLayout.tiles"])
    ]
    assert not changes.delete
    created = {c["name"] for c in changes.create}
    assert created >= {
        "serving-endpoint-upsell", "serving-deployed-model-upsell", "serving-capture-dataset-upsell",
        "storage-folder-grant-artifacts/models/upsell/2/read-serving", "serving-repository-upsell",
    }
    assert all("upsell" in name for name in created)


# --- validation --------------------------------------------------------------------------------
def _problems(data: dict) -> dict[tuple, Any]:
    spec = spec_from(data)
    return {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}


def _invalid(data: dict) -> dict[str, Any]:
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "s.yaml", clouds=["gcp"])
    return {p.dotted_path: p for p in info.value.problems if p.severity == "error"}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"autoscaling": {"min_replicas": 5, "max_replicas": 2}}, "models[0].serving.autoscaling"),
        ({"autoscaling": {"min_replicas": 0, "max_replicas": 2}}, "models[0].serving.autoscaling.min_replicas"),
        ({"autoscaling": {"min_replicas": 1, "max_replicas": 1},
          "rollout": {"mode": "canary", "canary_percent": 10}}, "models[0].serving"),
        ({"data_capture": {"sampling_percent": 150}}, "models[0].serving.data_capture.sampling_percent"),
        ({"data_capture": {"capture_responses": False}}, "models[0].serving.data_capture.capture_responses"),
        ({"rollout": {"mode": "canary", "canary_percent": 12.5}}, "models[0].serving.rollout.canary_percent"),
        ({"model_uri": "s3://elsewhere/model/"}, "models[0].serving.model_uri"),
    ],
)
def test_invalid_combinations_are_errors_with_locations(changes: dict, path: str) -> None:
    errors = _invalid(_dev(**changes))
    assert path in errors, sorted(errors)
    assert errors[path].line is not None


def test_a_trained_model_without_registry_or_uri_cannot_be_served_on_gcp() -> None:
    data = copy.deepcopy(DEV)
    del data["models"][0]["registry"]
    problem = _problems(data)[("models", 0, "serving")]
    assert problem.severity == "error" and "registry" in problem.hint and "model_uri" in problem.hint
    data["models"][0]["serving"]["model_uri"] = "models/churn-classifier/pinned/"
    assert ("models", 0, "serving") not in _problems(data)


def test_rollout_approval_cooldown_and_foreign_bucket_findings(dev: dict, prod: dict) -> None:
    # Manual approval: the endpoint waits for a person to call a version "approved".
    approval = {w["path"]: w for w in dev["warnings"]}["models[0].registry.approval"]
    assert approval["severity"] == "warning" and "--version-aliases=approved" in approval["hint"]
    prod_problems = {w["path"]: w for w in prod["warnings"]}
    assert "models[1].registry.approval" not in prod_problems  # automatic: every run is approved
    rollback = prod_problems["models[0].serving.rollout.rollback_on_alarms"]
    assert rollback["severity"] == "warning" and "no automatic rollback" in rollback["message"]
    assert "--traffic-split" in rollback["hint"]
    assert "models[1].serving.rollout.rollback_on_alarms" not in prod_problems  # all-at-once
    acknowledged = _problems(_dev(rollout={"mode": "canary", "canary_percent": 10, "rollback_on_alarms": False},
                                  autoscaling={"min_replicas": 1, "max_replicas": 2, "scale_in_cooldown": "10m"}))
    assert ("models", 0, "serving", "rollout", "rollback_on_alarms") not in acknowledged
    cooldown = acknowledged[("models", 0, "serving", "autoscaling", "scale_in_cooldown")]
    assert cooldown.severity == "warning" and "no effect on GCP" in cooldown.message
    assert ("models", 0, "serving", "autoscaling", "scale_out_cooldown") not in acknowledged  # left at its default
    variant_problems = _problems(VARIANT)
    foreign = variant_problems[("models", 1, "serving", "model_uri")]
    assert foreign.severity == "warning" and "gs://partner-models" in foreign.hint
    assert ("governance", "network") not in variant_problems  # private networking is real behaviour now
    assert variant_problems[("clouds", "gcp", "network", "service_perimeter")].severity == "warning"
    assert variant_problems[("models", 0, "serving", "image")].severity == "warning"
    assert not [p for p in variant_problems.values() if p.severity == "error"]


# --- the DeployedModel provider against a fake Vertex AI ------------------------------------------
class FakeVertex:
    """Stands in for VertexClient: records calls, keeps an endpoint and models in memory."""

    def __init__(self, *, serving: dict[str, int] | None = None, models: dict | None = None, fail: dict | None = None) -> None:
        self.calls: list[tuple] = []
        self.endpoint = {
            "deployedModels": [{"id": k} for k in (serving or {})],
            "trafficSplit": dict(serving or {}),
        }
        self.models = dict(models or {})
        self.fail = dict(fail or {})  # method -> the call number that fails (1 = first)
        self.counts: dict[str, int] = {}
        self.next_id = 900

    def _record(self, method: str, *args: Any) -> None:
        self.calls.append((method, *args))
        self.counts[method] = self.counts.get(method, 0) + 1
        if self.fail.get(method) == self.counts[method]:
            raise VertexError(f"{method} failed")

    def get_model(self, name: str) -> dict | None:
        self._record("get_model", name)
        return copy.deepcopy(self.models.get(name))

    def upload_model(self, parent: str, *, model_id: str, model: dict, service_account: str) -> dict:
        self._record("upload_model", parent, model_id, model, service_account)
        self.models[f"{parent}/models/{model_id}"] = model
        return {"model": f"{parent}/models/{model_id}", "modelVersionId": "1"}

    def delete_model(self, name: str) -> None:
        self._record("delete_model", name)
        self.models.pop(name, None)

    def patch_model_labels(self, name: str, labels: dict) -> None:
        self._record("patch_model_labels", name, labels)

    def get_endpoint(self, name: str) -> dict:
        self._record("get_endpoint", name)
        return copy.deepcopy(self.endpoint)

    def deploy_model(self, endpoint: str, deployed_model: dict, traffic_split: dict) -> dict:
        self._record("deploy_model", endpoint, deployed_model, traffic_split)
        self.next_id += 1
        new_id = str(self.next_id)
        self.endpoint["deployedModels"].append({"id": new_id})
        self.endpoint["trafficSplit"] = {new_id if k == "0" else k: v for k, v in traffic_split.items()}
        return {**deployed_model, "id": new_id}

    def set_traffic(self, endpoint: str, traffic_split: dict) -> None:
        self._record("set_traffic", endpoint, traffic_split)
        self.endpoint["trafficSplit"] = dict(traffic_split)

    def undeploy_model(self, endpoint: str, deployed_model_id: str, traffic_split: dict) -> None:
        self._record("undeploy_model", endpoint, deployed_model_id, traffic_split)
        self.endpoint["deployedModels"] = [m for m in self.endpoint["deployedModels"] if m["id"] != deployed_model_id]
        self.endpoint["trafficSplit"] = dict(traffic_split)

    def mutate_deployed_model(self, endpoint: str, deployed_model: dict, paths: list) -> None:
        self._record("mutate_deployed_model", endpoint, deployed_model, paths)

    def sleep(self, seconds: float) -> None:
        self._record("sleep", seconds)

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]


def _state(inputs: dict, **outs: Any) -> dict:
    """What Pulumi keeps for a deployed model: its inputs plus the provider's outputs."""
    return {**inputs, "state": "deployed", "deployedModelId": "123", "servedModel": "m", "sourceVersion": None, **outs}


def _provider(fake: FakeVertex) -> DeployedModelProvider:
    return DeployedModelProvider(client_factory=lambda region: fake)


@pytest.fixture(scope="module")
def upload_props(variant: dict) -> dict:
    return by_name(variant)["serving-deployed-model-ranker"]["inputs"]  # linear 25%, explicit URI


@pytest.fixture(scope="module")
def registry_props(prod: dict) -> dict:
    return by_name(prod)["serving-deployed-model-churn-classifier"]["inputs"]  # canary 10%, registry


def test_first_deployment_uploads_and_takes_all_traffic(upload_props: dict) -> None:
    fake = FakeVertex()
    result = _provider(fake).create(copy.deepcopy(upload_props))
    parent = "projects/acme-ml-dev/locations/us-central1"
    upload = next(c for c in fake.calls if c[0] == "upload_model")
    assert upload[1] == parent and upload[2] == upload_props["modelId"]
    body = upload[3]
    assert body["artifactUri"] == upload_props["model"]["artifactUri"]
    assert body["containerSpec"] == upload_props["model"]["containerSpec"]
    assert body["encryptionSpec"] == upload_props["model"]["encryptionSpec"] and body["labels"] == upload_props["labels"]
    assert upload[4] == upload_props["serviceAccount"]
    deploy = next(c for c in fake.calls if c[0] == "deploy_model")
    assert deploy[1] == upload_props["endpoint"] and deploy[3] == {"0": 100}  # nothing served before: no steps
    resources = deploy[2]["dedicatedResources"]
    assert resources == {"machineSpec": upload_props["machineSpec"], "minReplicaCount": 1, "maxReplicaCount": 3,
                         "autoscalingMetricSpecs": upload_props["autoscalingMetricSpecs"]}
    assert deploy[2]["serviceAccount"] == upload_props["serviceAccount"]
    assert deploy[2]["model"] == f"{parent}/models/{upload_props['modelId']}"
    assert "sleep" not in fake.methods() and "set_traffic" not in fake.methods()
    assert result.id == "901" and result.outs["deployedModelId"] == "901" and result.outs["state"] == "deployed"
    # A retry after a failed deploy finds the uploaded model and does not upload again.
    again = FakeVertex(models={deploy[2]["model"]: body})
    _provider(again).create(copy.deepcopy(upload_props))
    assert "upload_model" not in again.methods()


def test_linear_and_canary_rollouts_shift_traffic_in_steps(upload_props: dict, registry_props: dict) -> None:
    fake = FakeVertex(serving={"500": 100})
    _provider(fake).create(copy.deepcopy(upload_props))
    deploy = next(c for c in fake.calls if c[0] == "deploy_model")
    assert deploy[3] == {"0": 25, "500": 75}
    shifts = [c[2] for c in fake.calls if c[0] == "set_traffic"]
    assert shifts == [{"901": 50, "500": 50}, {"901": 75, "500": 25}, {"901": 100}]
    assert [c[1] for c in fake.calls if c[0] == "sleep"] == [300, 300, 300]
    # Canary from the registry: the approved version's artifact, 10% then 100% after 600 s.
    version = {"name": registry_props["model"]["registryModel"], "versionId": "7", "artifactUri": "gs://a/models/churn/run-7/model/"}
    fake = FakeVertex(serving={"500": 60, "501": 40}, models={f"{registry_props['model']['registryModel']}@approved": version})
    result = _provider(fake).create(copy.deepcopy(registry_props))
    upload = next(c for c in fake.calls if c[0] == "upload_model")
    assert upload[2] == f"{registry_props['modelId']}-v7" and upload[3]["artifactUri"] == version["artifactUri"]
    deploy = next(c for c in fake.calls if c[0] == "deploy_model")
    assert deploy[3] == {"0": 10, "500": 54, "501": 36}
    assert [c[2] for c in fake.calls if c[0] == "set_traffic"] == [{"901": 100}]
    assert [c[1] for c in fake.calls if c[0] == "sleep"] == [600]
    assert result.outs["sourceVersion"] == f"{version['name']}@7"


def test_a_failing_step_restores_the_old_split_and_cleans_up(upload_props: dict) -> None:
    fake = FakeVertex(serving={"500": 100}, fail={"set_traffic": 2})
    with pytest.raises(VertexError):
        _provider(fake).create(copy.deepcopy(upload_props))
    assert fake.endpoint["trafficSplit"] == {"500": 100}
    assert ("undeploy_model", upload_props["endpoint"], "901", {"500": 100}) in fake.calls
    assert fake.methods()[-1] == "delete_model" and not fake.models
    # A deployment Vertex AI refuses leaves no uploaded model behind.
    fake = FakeVertex(serving={"500": 100}, fail={"deploy_model": 1})
    with pytest.raises(VertexError):
        _provider(fake).create(copy.deepcopy(upload_props))
    assert fake.methods()[-1] == "delete_model" and not fake.models and fake.endpoint["trafficSplit"] == {"500": 100}


def test_a_registry_model_without_versions_waits_and_is_deployed_once_approved(registry_props: dict) -> None:
    fake = FakeVertex()
    result = _provider(fake).create(copy.deepcopy(registry_props))
    assert result.id.startswith(PENDING_PREFIX) and result.outs["state"] == "waiting-for-model"
    assert "deploy_model" not in fake.methods()
    state = {**registry_props, **result.outs}
    assert not _provider(fake).diff(result.id, state, copy.deepcopy(registry_props)).changes
    alias = f"{registry_props['model']['registryModel']}@approved"
    fake.models[alias] = {"name": registry_props["model"]["registryModel"], "versionId": "1", "artifactUri": "gs://a/m/"}
    diff = _provider(fake).diff(result.id, state, copy.deepcopy(registry_props))
    assert diff.changes and diff.replaces == ["model"]  # the next `up` deploys it
    _provider(fake).delete(result.id, state)  # nothing deployed: nothing to undeploy
    assert "undeploy_model" not in fake.methods()
    # Once deployed, the same version means no change; a newly approved one is a new deployment.
    deployed_state = _state(registry_props, sourceVersion=f"{registry_props['model']['registryModel']}@1")
    assert not _provider(fake).diff("901", deployed_state, copy.deepcopy(registry_props)).changes
    fake.models[alias] = {**fake.models[alias], "versionId": "2"}
    assert _provider(fake).diff("901", deployed_state, copy.deepcopy(registry_props)).replaces == ["model"]


def test_update_scales_in_place_and_delete_undeploys(upload_props: dict) -> None:
    fake = FakeVertex(serving={"123": 100})
    new = {**copy.deepcopy(upload_props), "replicas": {"min": 2, "max": 6}, "labels": {**upload_props["labels"], "team": "x"}}
    result = _provider(fake).update("123", _state(upload_props), new)
    mutate = next(c for c in fake.calls if c[0] == "mutate_deployed_model")
    assert mutate[1] == upload_props["endpoint"]
    assert mutate[2] == {"id": "123", "dedicatedResources": {"minReplicaCount": 2, "maxReplicaCount": 6,
                                                             "autoscalingMetricSpecs": upload_props["autoscalingMetricSpecs"]}}
    assert mutate[3] == ["dedicatedResources.minReplicaCount", "dedicatedResources.maxReplicaCount",
                         "dedicatedResources.autoscalingMetricSpecs"]
    assert ("patch_model_labels", "m", new["labels"]) in fake.calls
    assert result.outs["deployedModelId"] == "123" and result.outs["replicas"] == {"min": 2, "max": 6}
    # A rollout change alone touches nothing in Vertex AI (it applies to the next deployment).
    quiet = FakeVertex()
    _provider(quiet).update("123", _state(upload_props), {**copy.deepcopy(upload_props), "rollout": {"mode": "all-at-once", "waitSeconds": 0}})
    assert quiet.calls == []
    # Delete: the others keep their share, scaled to 100, then the uploaded model goes.
    fake = FakeVertex(serving={"123": 20, "124": 40, "125": 40})
    _provider(fake).delete("123", _state(upload_props))
    assert ("undeploy_model", upload_props["endpoint"], "123", {"124": 50, "125": 50}) in fake.calls
    assert fake.methods()[-1] == "delete_model" and fake.calls[-1][1] == "m"


def test_rollout_arithmetic() -> None:
    assert rollout_steps({"mode": "canary", "canaryPercent": 10}, serving_now=True) == [10, 100]
    assert rollout_steps({"mode": "canary", "canaryPercent": 10}, serving_now=False) == [100]
    assert rollout_steps({"mode": "linear", "stepPercent": 30}, serving_now=True) == [30, 60, 90, 100]
    assert rollout_steps({"mode": "all-at-once"}, serving_now=True) == [100]
    for before in ({"a": 100}, {"a": 33, "b": 67}, {"a": 1, "b": 1, "c": 98}, {"a": 50, "b": 50}):
        for percent in (0, 1, 10, 25, 99, 100):
            split = scaled_split(before, "new", percent)
            assert sum(split.values()) == 100 and split.get("new", 0) == percent
            assert all(v > 0 for v in split.values())


def test_the_provider_pickles_small_and_loads_no_auth_library() -> None:
    from pulumi.dynamic.dynamic import serialize_provider

    assert len(serialize_provider(DeployedModelProvider())) < 1024  # the class by reference, no closures
    code = (
        "import sys, mlops_infra.backends.gcp.deployed_model, mlops_infra.backends.gcp.vertex_client;"
        "assert not [m for m in sys.modules if m.startswith(('google.auth', 'google.cloud', 'requests'))], 'auth loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))


# --- the REST client against a fake HTTP session ----------------------------------------------------
class FakeResponse:
    def __init__(self, status: int, body: dict | None = None) -> None:
        self.status_code = status
        self._body = body
        self.content = b"" if body is None else json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self) -> dict:
        return self._body or {}


class FakeSession:
    def __init__(self, *responses: FakeResponse) -> None:
        self.responses = list(responses)
        self.requests: list[tuple] = []

    def request(self, method: str, url: str, *, json: Any = None, params: Any = None, timeout: Any = None) -> FakeResponse:
        self.requests.append((method, url, json, params))
        return self.responses.pop(0)


def test_rest_calls_paths_bodies_and_operations() -> None:
    base = "https://europe-west4-aiplatform.googleapis.com/v1/"
    endpoint = "projects/p/locations/europe-west4/endpoints/e"
    session = FakeSession(
        FakeResponse(200, {"name": "projects/p/locations/europe-west4/operations/1", "done": False}),
        FakeResponse(200, {"name": "projects/p/locations/europe-west4/operations/1", "done": True,
                           "response": {"deployedModel": {"id": "42"}}}),
        FakeResponse(200, {"name": endpoint}),
        FakeResponse(404, {"error": {"code": 404}}),
        FakeResponse(200, {"name": "op/2", "done": True, "error": {"code": 9, "message": "quota"}}),
    )
    slept: list[float] = []
    client = VertexClient("europe-west4", session=session, sleep=slept.append)
    assert client.deploy_model(endpoint, {"model": "m"}, {"0": 100}) == {"id": "42"}
    method, url, body, _ = session.requests[0]
    assert (method, url) == ("POST", f"{base}{endpoint}:deployModel")
    assert body == {"deployedModel": {"model": "m"}, "trafficSplit": {"0": 100}}
    assert session.requests[1][:2] == ("GET", f"{base}projects/p/locations/europe-west4/operations/1") and slept == [15]
    client.set_traffic(endpoint, {"42": 100})
    assert session.requests[2] == ("PATCH", f"{base}{endpoint}", {"trafficSplit": {"42": 100}}, {"updateMask": "trafficSplit"})
    assert client.get_model("projects/p/locations/europe-west4/models/x@default") is None
    with pytest.raises(VertexError, match="quota"):
        client.mutate_deployed_model(endpoint, {"id": "42"}, ["dedicatedResources.maxReplicaCount"])
    assert session.requests[4][2] == {"deployedModel": {"id": "42"}, "updateMask": "dedicatedResources.maxReplicaCount"}
    with pytest.raises(VertexError, match="HTTP 403"):
        VertexClient("europe-west4", session=FakeSession(FakeResponse(403, {"error": "denied"}))).get_endpoint(endpoint)
