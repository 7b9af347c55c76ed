"""GCP training, tracking and registry: Cloud Workflows + Vertex AI, checked from the plan document.

Five plans in all (module-scoped fixtures): stacks/dev.yaml, stacks/prod.yaml, VARIANT twice
(determinism) and a tracking-only spec. The workflow source is parsed with yaml.safe_load and
checked against the fields the services require; the template is also rendered directly with
representative values (GPU, several instances, no serving section, values that look like
Workflows expressions).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_infra import api
from mlops_infra.backends import registry
from mlops_infra.backends.context import StageContext
from mlops_infra.backends.gcp import BACKEND, training
from mlops_infra.backends.gcp.naming import (
    image_source,
    model_id,
    physical_name,
    repository_id,
    workflow_name,
)
from mlops_infra.backends.gcp.registry import REGISTRAR_PERMISSIONS
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.stages.training import checkpoint_prefix, output_prefix
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "gcp"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = "gcp:workflows/workflow:Workflow"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPO_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
SERVICE = "gcp:projects/service:Service"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
METADATA_STORE = "gcp:vertex/aiMetadataStore:AiMetadataStore"
TENSORBOARD = "gcp:vertex/aiTensorboard:AiTensorboard"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
EXPRESSION = re.compile(r"^\$\{.*\}$", re.DOTALL)


def _data(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with only the registered clouds (other backends may be mid-change), the names GCP
    reserves acknowledged (tests/test_backend_gcp.py checks that warning)."""
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data["clouds"]["gcp"]["name_generation"] = 1
    data.update(copy.deepcopy(changes))
    return data


def _gcp(**settings_: Any) -> dict[str, Any]:
    return {**_data()["clouds"], "gcp": {"project": "acme-ml-dev", "region": "us-central1", "name_generation": 1, **settings_}}


VARIANT = _data(
    storage={"buckets": [{"name": "raw"}, {"name": "features"}, {"name": "scratch"}]},
    models=[
        {
            "name": "vision",
            "training": {
                "image": "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",  # Docker Hub: Vertex training pulls it
                "compute": {"size": "gpu-small", "instance_count": 3},
                "spot": True,
                "max_runtime": "2h",  # no max_wait: the workflow allows twice that
                "hyperparameters": {"epochs": 5, "augment": True, "lr": 0.1, "note": "${not_an_expression}"},
                "environment": {"MODE": "${x}", "MLOPS_MODEL": "mine"},
                "inputs": [{"bucket": "raw", "prefix": "images/"}, "features"],
                "run_on_deploy": True,
            },
            "registry": {"approval": "automatic"},  # no serving: the image comes per run
        },
        {
            "name": "ranker",
            "training": {"image": "europe-docker.pkg.dev/acme/ml/ranker:2.0", "compute": {"cpus": 3, "memory_gib": 10}},
        },
    ],
    clouds=_gcp(
        overrides={
            "models": {
                "vision": {
                    "training_machine_type": "n1-standard-8",
                    "training_accelerator_type": "NVIDIA_TESLA_T4",
                    "training_accelerator_count": 2,
                }
            }
        }
    ),
)
TRACKING_ONLY = _data(tracking={"enabled": True})





@pytest.fixture(scope="module")
def variant() -> dict:
    return plan_for("gcp", VARIANT)


@pytest.fixture(scope="module")
def tracking_only() -> dict:
    return plan_for("gcp", TRACKING_ONLY)


@pytest.fixture(scope="module")
def plans(dev: dict, prod: dict, variant: dict) -> list[dict]:
    return [dev, prod, variant]


def by_name(plan: dict) -> dict[str, dict]:
    return {r["name"]: r for r in plan["resources"]}


def group_email(plan: dict, group: str) -> str:
    """The service account of a model group (in these specs each model is its own group)."""
    account = by_name(plan)[f"governance-identity-group-{group}"]["inputs"]
    return f"{account['accountId']}@{account['project']}.iam.gserviceaccount.com"


def workflows(plan: dict) -> dict[str, dict]:
    """Model name -> its parsed workflow source."""
    return {
        r["name"].removeprefix("training-workflow-"): yaml.safe_load(r["inputs"]["sourceContents"])
        for r in resources_of(plan, WORKFLOW)
        if r["stage"] == "training"  # (drift workflows: tests/test_monitoring_gcp.py)
    }


def steps(source: dict) -> dict[str, dict]:
    """Every named step, nested ones included."""
    found: dict[str, dict] = {}

    def walk(items: list) -> None:
        for item in items:
            for name, body in item.items():
                found[name] = body
                if isinstance(body, dict):
                    walk(body.get("steps", []))
                    for branch in ("try", "except"):
                        if isinstance(body.get(branch), dict):
                            walk(body[branch].get("steps", []))

    walk(source["main"]["steps"])
    return found


def assigned(source: dict) -> dict[str, Any]:
    return {k: v for item in steps(source)["init"]["assign"] for k, v in item.items()}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _ctx(data: dict) -> StageContext:
    spec = spec_from(data)
    gcp_settings = spec.settings_for("gcp")
    return StageContext(
        spec=spec, cloud="gcp", stage="training", settings=gcp_settings,
        namer=BACKEND.namer(spec, gcp_settings), parent=None, provider=None,  # type: ignore[arg-type]
    )


# --- resources per model and their wiring --------------------------------------------------
def test_examples_declare_training_tracking_and_registry_per_model(dev: dict, prod: dict) -> None:
    for plan, models in ((dev, {"churn-classifier"}), (prod, {"churn-classifier", "ltv-regressor"})):
        res = by_name(plan)
        assert set(workflows(plan)) == models
        for model in models:
            assert res[f"training-repository-{model}"]["type"] == REPOSITORY
            assert res[f"training-repository-{model}"]["protect"] is True
            assert res[f"training-workflow-{model}"]["protect"] is False  # a definition, not data
            assert res[f"training-workflow-{model}"]["inputs"]["deletionProtection"] is False
        assert {r["type"] for r in plan["resources"] if r["stage"] == "tracking" and r["custom"]} == {METADATA_STORE, TENSORBOARD}
        assert set(plan["outputs"]["training"]["pipelines"]) == models == set(plan["outputs"]["registry"]["registries"])
        settings_ = spec_from(yaml.safe_load((ROOT / "stacks" / f"{plan['stack']}.yaml").read_text())).settings_for("gcp")
        for model, pipeline in plan["outputs"]["training"]["pipelines"].items():
            name = res[f"training-workflow-{model}"]["inputs"]["name"]
            assert pipeline == f"projects/{settings_.project}/locations/{settings_.region}/workflows/{name}"
            assert name_rules()["gcp.workflows.workflow"].accepts(name)


def test_training_output_is_the_models_prefix_in_the_artifact_bucket(plans: list[dict]) -> None:
    for plan in plans:
        artifacts = plan["outputs"]["storage"]["artifacts_uri"]
        assert artifacts.startswith("gs://")
        for model, source in workflows(plan).items():
            assert plan["outputs"]["training"]["output_uris"][model] == f"{artifacts}/{output_prefix(model)}"
            values = assigned(source)
            assert values["output_root"] == f"{artifacts}/{output_prefix(model)}"
            assert values["checkpoint_root"] == f"{artifacts}/{checkpoint_prefix(model)}"
            # Each run writes under its own prefix below the model's, and Vertex AI is told so.
            assert values["base_output"] == '${output_root + run_id + "/"}'
            assert values["job_body"]["jobSpec"]["baseOutputDirectory"] == {"outputUriPrefix": "${base_output}"}
            # The URI comes from the artifact bucket resource itself.
            assert "storage-bucket-artifacts" in by_name(plan)[f"training-workflow-{model}"]["dependencies"]["sourceContents"]


def test_everything_is_encrypted_with_the_governance_key_after_its_agent_may_use_it(plans: list[dict]) -> None:
    for plan in plans:
        key = plan["outputs"]["governance"]["key_id"]
        res = by_name(plan)
        for model, source in workflows(plan).items():
            values = assigned(source)
            assert values["job_body"]["encryptionSpec"] == {"kmsKeyName": key}
            if "model_body" in values:
                assert values["model_body"]["encryptionSpec"] == {"kmsKeyName": key}
            workflow = res[f"training-workflow-{model}"]
            assert workflow["inputs"]["cryptoKeyName"] == key
            assert "governance-key-grant-workflows-agent" in workflow["dependencies"]["cryptoKeyName"]
            assert "governance-key-grant-aiplatform-agent" in workflow["dependencies"]["sourceContents"]
            repo = res[f"training-repository-{model}"]
            assert repo["inputs"]["kmsKeyName"] == key
            assert "governance-key-grant-artifactregistry-agent" in repo["dependencies"]["kmsKeyName"]
        for kind in (METADATA_STORE, TENSORBOARD):
            for r in resources_of(plan, kind):
                assert r["inputs"]["encryptionSpec"] == {"kmsKeyName": key} and r["protect"] is True
                assert "governance-key-grant-aiplatform-agent" in r["dependencies"]["encryptionSpec"]


def test_each_ml_api_is_enabled_and_its_service_agent_may_use_the_key(dev: dict, tracking_only: dict) -> None:
    apis = {r["inputs"]["service"]: r for r in resources_of(dev, SERVICE)}
    # (+ BigQuery: dev's endpoint captures requests there, see tests/test_serving_gcp.py; + Pub/Sub,
    # Cloud Monitoring, Cloud Scheduler, Eventarc and Workflow Executions: dev monitors and retrains,
    # see tests/test_monitoring_gcp.py)
    assert set(apis) == {"aiplatform.googleapis.com", "artifactregistry.googleapis.com", "workflows.googleapis.com",
                         "bigquery.googleapis.com", "pubsub.googleapis.com", "monitoring.googleapis.com",
                         "cloudscheduler.googleapis.com", "eventarc.googleapis.com", "workflowexecutions.googleapis.com"}
    assert all(r["inputs"]["disableOnDestroy"] is False for r in apis.values())
    grants = {r["name"]: r for r in resources_of(dev, KEY_MEMBER)}
    for api_name in ("aiplatform", "artifactregistry", "workflows"):
        grant = grants[f"governance-key-grant-{api_name}-agent"]
        assert grant["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant["dependencies"]["member"] == [f"governance-service-agent-{api_name}"]
        assert by_name(dev)[f"governance-service-agent-{api_name}"]["dependencies"]["service"] == [f"governance-api-{api_name}"]
    # Tracking alone needs Vertex AI only; no training resources at all.
    assert {r["inputs"]["service"] for r in resources_of(tracking_only, SERVICE)} == {"aiplatform.googleapis.com"}
    assert not [r for r in tracking_only["resources"] if r["stage"] in ("training", "registry")]
    # A spec without ML stages enables nothing (tests/test_backend_gcp.py plans those).


def test_jobs_run_as_their_groups_identity_and_workflows_as_automation(plans: list[dict]) -> None:
    for plan in plans:
        identities = plan["outputs"]["governance"]["identities"]
        automation_email = identities["automation"].removeprefix("serviceAccount:")
        res = by_name(plan)
        for model, source in workflows(plan).items():
            training_email = group_email(plan, model)
            values = assigned(source)
            assert values["job_body"]["jobSpec"]["serviceAccount"] == training_email
            assert values["job_body"]["jobSpec"]["enableWebAccess"] is False
            for step in ("upload_version", "upload_first_version"):
                if step in steps(source):
                    assert steps(source)[step]["args"]["body"]["serviceAccount"] == training_email
            workflow = res[f"training-workflow-{model}"]
            assert workflow["inputs"]["serviceAccount"] == automation_email
            assert workflow["dependencies"]["serviceAccount"] == ["governance-identity-automation"]
            assert f"governance-identity-group-{model}" in workflow["dependencies"]["sourceContents"]


# --- spot, runtime, compute ----------------------------------------------------------------
def test_spot_sets_strategy_deadline_cancellation_and_checkpoints(dev: dict, prod: dict, variant: dict) -> None:
    dev_source = workflows(dev)["churn-classifier"]  # spot, max_runtime 4h, max_wait 8h
    scheduling = assigned(dev_source)["job_body"]["jobSpec"]["scheduling"]
    assert scheduling == {"timeout": f"{4 * 3600}s", "strategy": "SPOT"}
    assert assigned(dev_source)["max_wait_seconds"] == 8 * 3600
    assert assigned(dev_source)["failed_states"] == ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"]
    assert assigned(dev_source)["deadline"] == "${sys.now() + max_wait_seconds}"
    dev_steps = steps(dev_source)
    assert {"condition": "${job.state in failed_states}", "raise": '${"training job " + job.name + " ended in " + job.state}'} in dev_steps["check_job"]["switch"]
    assert {"condition": "${sys.now() > deadline}", "next": "give_up"} in dev_steps["check_job"]["switch"]
    assert dev_steps["cancel_job"]["call"] == "googleapis.aiplatform.v1.projects.locations.customJobs.cancel"
    env = {e["name"]: e["value"] for e in assigned(dev_source)["job_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert env["MLOPS_CHECKPOINT_URI"] == "${checkpoint_dir}"
    assert assigned(dev_source)["checkpoint_dir"] == '${checkpoint_root + run_id + "/"}'
    # Spot without max_wait: twice max_runtime.
    assert assigned(workflows(variant)["vision"])["max_wait_seconds"] == 2 * 2 * 3600
    # On demand: STANDARD, max_runtime as the timeout, no deadline.
    prod_source = workflows(prod)["churn-classifier"]
    assert assigned(prod_source)["job_body"]["jobSpec"]["scheduling"] == {"timeout": f"{8 * 3600}s", "strategy": "STANDARD"}
    assert "deadline" not in assigned(prod_source) and "give_up" not in steps(prod_source)


def test_compute_comes_from_the_catalog_and_overrides(dev: dict, prod: dict, variant: dict) -> None:
    def pools(plan: dict, model: str) -> list[dict]:
        return assigned(workflows(plan)[model])["job_body"]["jobSpec"]["workerPoolSpecs"]

    assert pools(dev, "churn-classifier")[0]["machineSpec"] == {"machineType": "n2-standard-8"}  # cpu-large
    assert pools(prod, "ltv-regressor")[0]["machineSpec"] == {  # gpu-small: G2 comes with its L4
        "machineType": "g2-standard-4", "acceleratorType": "NVIDIA_L4", "acceleratorCount": 1,
    }
    vision = pools(variant, "vision")  # override: n1-standard-8 with 2 x T4; 3 instances
    assert [p["replicaCount"] for p in vision] == [1, 2]
    assert all(p["machineSpec"] == {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4", "acceleratorCount": 2} for p in vision)
    assert vision[0]["containerSpec"] == vision[1]["containerSpec"]
    assert pools(variant, "ranker") == [
        {**pools(variant, "ranker")[0], "machineSpec": {"machineType": "n2-standard-4"}, "replicaCount": 1}
    ]


def test_catalog_misses_and_bad_overrides_are_validation_errors() -> None:
    spec = spec_from(_data(models=[{"name": "big", "training": {"image": "a/b:1", "compute": {"cpus": 8, "memory_gib": 64, "gpus": 16}}}]))
    gpu_ok = BACKEND.check(spec, spec.settings_for("gcp"))  # a2-megagpu-16g trains with 16 GPUs
    assert not [p for p in gpu_ok if p.severity == "error"]
    spec = spec_from(_data(models=[{"name": "big", "training": {"image": "a/b:1", "compute": {"cpus": 192, "memory_gib": 100}}}]))
    [miss] = [p for p in BACKEND.check(spec, spec.settings_for("gcp")) if p.severity == "error"]
    assert miss.path == ("models", 0, "training", "compute") and "GCP" in miss.message and "192 cpus / 100 GiB" in miss.message
    data = copy.deepcopy(VARIANT)
    data["clouds"]["gcp"]["overrides"]["models"]["vision"]["training_accelerator_type"] = "NVIDIA_L4"
    spec = spec_from(data)
    errors = [p for p in BACKEND.check(spec, spec.settings_for("gcp")) if p.severity == "error"]
    assert [p.path[-1] for p in errors] == ["training_accelerator_type"] and "N1" in errors[0].message


# --- job contents -----------------------------------------------------------------------------
def test_container_gets_hyperparameters_inputs_environment_and_tracking(dev: dict, variant: dict) -> None:
    artifacts_raw = dev["outputs"]["storage"]["bucket_uris"]["raw"]
    container = assigned(workflows(dev)["churn-classifier"])["job_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["args"] == ["--epochs=20", "--learning_rate=0.01"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLOPS_INPUT_RAW"] == env["MLOPS_INPUTS"] == f"{artifacts_raw}/"
    assert env["MLOPS_TRACKING_URI"] == dev["outputs"]["tracking"]["tracking_uri"]
    assert env["MLOPS_MODEL"] == "churn-classifier" and env["MLOPS_MODEL_DIR"] == "${model_dir}"
    # Variant: prefixes, several buckets, values that look like expressions, reserved names.
    container = assigned(workflows(variant)["vision"])["job_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    uris = variant["outputs"]["storage"]["bucket_uris"]
    assert container["args"] == ["--augment=true", "--epochs=5", "--lr=0.1", '${"--note=${not_an_expression}"}']
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLOPS_INPUT_RAW"] == f"{uris['raw']}/images/" and env["MLOPS_INPUT_FEATURES"] == f"{uris['features']}/"
    assert env["MLOPS_INPUTS"] == f"{uris['raw']}/images/,{uris['features']}/"
    assert env["MODE"] == '${"${x}"}'  # a literal, not an expression
    assert env["MLOPS_MODEL"] == "vision"  # the stack's value wins (backend.check warns)
    assert "MLOPS_TRACKING_URI" not in env  # no tracking in this spec
    assert "scratch" not in json.dumps(container)  # a bucket the model does not read


def test_registry_versions_follow_the_approval_mode(dev: dict, prod: dict, variant: dict) -> None:
    # "approved" is what endpoints serve (tests/test_serving_gcp.py); a person gives it on manual approval.
    cases = ((dev, "churn-classifier", "manual", ["candidate"]), (prod, "ltv-regressor", "automatic", ["default", "approved"]),
             (variant, "vision", "automatic", ["default", "approved"]))
    for plan, model, approval, aliases in cases:
        source = workflows(plan)[model]
        values = assigned(source)
        assert values["model_body"]["versionAliases"] == aliases
        assert values["model_body"]["labels"]["mlops-approval"] == approval
        assert values["model_body"]["artifactUri"] == "${model_dir}"
        assert values["model_name"] == plan["outputs"]["registry"]["registries"][model]
        model_path = values["model_name"].rsplit("/", 1)[-1]
        assert steps(source)["upload_first_version"]["args"]["body"]["modelId"] == model_path
        assert steps(source)["upload_version"]["args"]["body"]["parentModel"] == "${model_name}"
        assert name_rules()["gcp.vertex.model_id"].accepts(model_path)
    # ranker has no registry block: its workflow trains only.
    ranker = workflows(variant)["ranker"]
    assert "model_body" not in assigned(ranker) and "find_model" not in steps(ranker)
    assert {"condition": '${job.state == "JOB_STATE_SUCCEEDED"}', "next": "finish"} in steps(ranker)["check_job"]["switch"]
    assert set(variant["outputs"]["registry"]["registries"]) == {"vision"}


def test_the_registry_registers_what_the_endpoint_serves(dev: dict, prod: dict) -> None:
    """Each trained version is registered with the serving image and environment the endpoint
    deploys, and the endpoint deploys the registry's approved version, read from the folder the
    training run wrote it to and the serving identity may read."""
    served = 0
    for plan in (dev, prod):
        res = by_name(plan)
        artifacts = plan["outputs"]["storage"]["artifacts_uri"]
        for model, source in workflows(plan).items():
            if f"serving-deployed-model-{model}" not in res:
                continue
            served += 1
            values = assigned(source)
            deployed = res[f"serving-deployed-model-{model}"]["inputs"]["model"]
            # Image and environment: the serving ones, identical on both sides (not the training image).
            assert values["serving_image"] == deployed["containerSpec"]["imageUri"]
            assert values["serving_image"] != values["job_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"]
            assert values["model_body"]["containerSpec"]["imageUri"] == "${serving_image}"
            assert values["model_body"]["containerSpec"].get("env") == deployed["containerSpec"].get("env")
            assert values["model_body"]["encryptionSpec"] == deployed["encryptionSpec"]
            # Model data: the endpoint follows the registry model the workflow uploads to...
            assert deployed["source"] == "registry" and deployed["registryModel"] == values["model_name"]
            # ... whose versions are this model's runs, under models/<model>/ in the artifact bucket ...
            assert values["output_root"] == f"{artifacts}/{output_prefix(model)}"
            assert values["model_dir"] == '${base_output + "model/"}' and values["base_output"].startswith("${output_root")
            # ... which the serving identity reads, before the deployment uploads it.
            reader = res[f"storage-folder-grant-artifacts/{output_prefix(model)}read-serving"]
            assert reader["inputs"]["member"] == plan["outputs"]["governance"]["identities"]["serving"]
            assert reader["name"] in res[f"serving-deployed-model-{model}"]["depends_on"]
    assert served == 3


def test_a_pinned_model_uri_beside_a_registry_is_a_warning() -> None:
    data = _data(
        storage={"buckets": [{"name": "raw"}]},
        models=[{
            "name": "churn",
            "training": {"image": "europe-docker.pkg.dev/acme/ml/churn:1", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
            "registry": {"approval": "automatic"},
            "serving": {"image": "europe-docker.pkg.dev/acme/ml/serve:1", "compute": {"size": "cpu-small"},
                        "model_uri": "models/churn/pinned/"},
        }],
    )
    spec = spec_from(data)
    [problem] = [p for p in BACKEND.check(spec, spec.settings_for("gcp")) if p.path == ("models", 0, "serving", "model_uri")]
    assert problem.severity == "warning" and "registry and endpoint would disagree" in problem.message


def test_tracking_output_is_the_default_metadata_store(dev: dict, tracking_only: dict) -> None:
    for plan, project in ((dev, "acme-churn-dev"), (tracking_only, "acme-ml-dev")):
        store = resources_of(plan, METADATA_STORE)
        assert len(store) == 1 and store[0]["inputs"]["name"] == "default"
        assert plan["outputs"]["tracking"]["tracking_uri"] == f"projects/{project}/locations/us-central1/metadataStores/default"
        [board] = resources_of(plan, TENSORBOARD)
        assert board["inputs"]["labels"]["mlops-stage"] == "tracking"


# --- least privilege --------------------------------------------------------------------------
def test_training_and_registry_grants_are_least_privilege(plans: list[dict]) -> None:
    for plan in plans:
        res = by_name(plan)
        identities = plan["outputs"]["governance"]["identities"]
        # Every stack has the same custom roles, made by governance (tests/test_teardown_gcp.py);
        # the workflow starter belongs to monitoring and retraining (tests/test_monitoring_gcp.py).
        roles = {r["name"]: r["inputs"] for r in resources_of(plan, CUSTOM_ROLE)
                 if r["name"] in ("governance-role-training-launcher", "governance-role-model-registrar")}
        # The launcher also starts batch prediction jobs, exactly when the stack scores in batch.
        batch = ["aiplatform.batchPredictionJobs.cancel", "aiplatform.batchPredictionJobs.create",
                 "aiplatform.batchPredictionJobs.get"]
        scores_in_batch = any(r["stage"] == "batch" for r in plan["resources"])
        assert roles["governance-role-training-launcher"]["permissions"] == (batch if scores_in_batch else []) + [
            "aiplatform.customJobs.cancel", "aiplatform.customJobs.create", "aiplatform.customJobs.get",
        ]
        assert roles["governance-role-model-registrar"]["permissions"] == list(REGISTRAR_PERMISSIONS)
        for role in roles.values():
            assert all("*" not in p and p.startswith("aiplatform.") for p in role["permissions"])
            assert name_rules()["gcp.iam.custom_role_id"].accepts(role["roleId"])
        # (the serving stage's grants are checked in tests/test_serving_gcp.py)
        project_grants = {
            r["name"]: r["inputs"] for r in resources_of(plan, PROJECT_MEMBER) if r["stage"] in ("training", "registry")
        }
        assert project_grants == {
            "training-project-grant-logwriter-automation": {**project_grants["training-project-grant-logwriter-automation"],
                                                            "role": "roles/logging.logWriter", "member": identities["automation"]},
            "training-project-grant-launcher-automation": {**project_grants["training-project-grant-launcher-automation"],
                                                           "member": identities["automation"]},
            "registry-project-grant-registrar-automation": {**project_grants["registry-project-grant-registrar-automation"],
                                                            "member": identities["automation"]},
        }
        assert res["training-project-grant-launcher-automation"]["dependencies"]["role"] == ["governance-role-training-launcher"]
        assert res["registry-project-grant-registrar-automation"]["dependencies"]["role"] == ["governance-role-model-registrar"]
        # Group identities write their jobs' logs through their worker role, nothing more.
        for name in workflows(plan):
            worker = res[f"governance-project-grant-worker-{name}"]["inputs"]
            assert worker["member"] == f"serviceAccount:{group_email(plan, name)}"
            role = res[f"governance-role-{worker['role'].rsplit('_', 2)[-2]}-worker"]["inputs"]
            assert "logging.logEntries.create" in role["permissions"] and len(role["permissions"]) <= 3
        # actAs: automation on each training group's service account, nothing else.
        act_as = {r["inputs"]["serviceAccountId"].rsplit("/", 1)[-1]: r["inputs"] for r in resources_of(plan, SA_MEMBER) if r["stage"] == "training"}
        assert set(act_as) == {group_email(plan, name) for name in workflows(plan)}
        assert all(a["role"] == "roles/iam.serviceAccountUser" and a["member"] == identities["automation"] for a in act_as.values())
        # Repository readers: the group identity (model upload) and the Vertex AI agent (image pulls).
        training_readers = [r for r in resources_of(plan, REPO_MEMBER) if r["stage"] == "training"]
        for r in training_readers:
            assert r["inputs"]["role"] == "roles/artifactregistry.reader"
            model = r["dependencies"]["repository"][0].removeprefix("training-repository-")
            assert r["name"] in (f"training-repo-reader-training-{model}", f"training-repo-reader-vertex-agent-{model}")
            assert r["inputs"]["member"] in (f"serviceAccount:{group_email(plan, model)}", UNKNOWN)
        assert len(training_readers) == 2 * len(workflows(plan))
        # A group writes only its models' outputs and checkpoints in the artifact bucket.
        artifacts = res["storage-bucket-artifacts"]["inputs"]["name"]
        writes = {(r["inputs"]["managedFolder"], r["inputs"]["member"]) for r in resources_of(plan, FOLDER_MEMBER)
                  if r["inputs"]["bucket"] == artifacts and r["inputs"]["role"] == "roles/storage.objectUser"}
        assert writes == {
            (prefix(name), f"serviceAccount:{group_email(plan, name)}")
            for name in workflows(plan) for prefix in (output_prefix, checkpoint_prefix)
        }
        # The automation identity gets no data or key access from these stages, but for reading
        # the evaluation gate's metrics: the output folder of each gated model, nothing else.
        gated = {name for name, source in workflows(plan).items() if "submit_evaluation" in steps(source)}
        automation_reads = set()
        for r in plan["resources"]:
            if r["type"] in (BUCKET_MEMBER, FOLDER_MEMBER, KEY_MEMBER) and r["inputs"]["member"] == identities["automation"]:
                assert r["type"] == FOLDER_MEMBER and r["inputs"]["bucket"] == artifacts, r["name"]
                assert r["inputs"]["role"] == "roles/storage.objectViewer" and "condition" not in r["inputs"], r["name"]
                automation_reads.add(r["inputs"]["managedFolder"])
        assert automation_reads == {output_prefix(name) for name in gated}
        assert not re.search(r"roles/(owner|editor|aiplatform\.(admin|user))\b", json.dumps(plan["resources"]))


# --- the rendered template --------------------------------------------------------------------
CONNECTORS = {
    "googleapis.aiplatform.v1.projects.locations.customJobs.create",
    "googleapis.aiplatform.v1.projects.locations.customJobs.get",
    "googleapis.aiplatform.v1.projects.locations.customJobs.cancel",
    "googleapis.aiplatform.v1.projects.locations.models.get",
    "googleapis.aiplatform.v1.projects.locations.models.upload",
    "sys.log",
    "sys.sleep",
}
READ_OBJECT = "googleapis.storage.v1.objects.get"


def _check_workflow(source: dict) -> None:
    """Structure Cloud Workflows requires, and the fields of the Vertex AI calls.

    CustomJob (aiplatform v1 customJobs.create): displayName, jobSpec.workerPoolSpecs[] with
    machineSpec.machineType, replicaCount and containerSpec.imageUri; the first pool has one
    replica. models.upload: parent, model.displayName, model.containerSpec.imageUri (the
    artifactUri for custom-trained models), and modelId or parentModel.
    """
    assert list(source) == ["main"] and source["main"]["params"] == ["args"]
    named = steps(source)
    # A gated workflow also reads its metrics objects (tests/test_evaluation_gcp.py checks which).
    allowed = CONNECTORS | ({READ_OBJECT} if "submit_evaluation" in named else set())
    for name, body in named.items():
        if "call" in body:
            assert body["call"] in allowed, name
            if body["call"] == READ_OBJECT:
                assert body["args"]["bucket"] == "${metrics_bucket}", name
        targets = [body.get("next")] + [c.get("next") for c in body.get("switch", [])]
        for target in filter(None, targets):
            assert target in named, f"{name} jumps to a missing step {target}"
    for text in _strings(source):
        if "${" in text:
            assert EXPRESSION.match(text), text  # expressions are whole values
    values = assigned(source)
    job = values["job_body"]
    assert job["displayName"] and job["encryptionSpec"]["kmsKeyName"]
    pools = job["jobSpec"]["workerPoolSpecs"]
    assert pools and pools[0]["replicaCount"] == 1
    for pool in pools:
        assert pool["machineSpec"]["machineType"] and pool["containerSpec"]["imageUri"] and pool["replicaCount"] >= 1
        assert ("acceleratorType" in pool["machineSpec"]) == ("acceleratorCount" in pool["machineSpec"])
    assert named["submit_job"]["args"] == {"parent": "${parent}", "region": "${region}", "body": "${job_body}"}
    if "model_body" in values:
        model = values["model_body"]
        assert model["displayName"] and model["artifactUri"] and model["containerSpec"]["imageUri"]
        assert named["upload_first_version"]["args"]["body"]["modelId"]
        assert named["upload_version"]["args"]["body"]["parentModel"]
        for step in ("upload_first_version", "upload_version"):
            assert named[step]["args"]["parent"] == "${parent}" and named[step]["args"]["body"]["model"] == "${model_body}"


def test_every_planned_workflow_is_valid_and_complete(plans: list[dict]) -> None:
    for plan in plans:
        for model, source in workflows(plan).items():
            _check_workflow(source)
            assert len(by_name(plan)[f"training-workflow-{model}"]["inputs"]["sourceContents"].encode()) < 128 * 1024


@pytest.mark.parametrize("variant_name", ["gpu-multi-no-serving", "cpu-serving"])
def test_template_renders_representative_values(variant_name: str) -> None:
    data = copy.deepcopy(VARIANT)
    if variant_name == "cpu-serving":
        data["models"][0]["serving"] = {"image": "ghcr.io/acme/vision-serve:1.0", "compute": {"size": "cpu-small"},
                                        "environment": {"WORKERS": "4"}}
        data["tracking"] = {"enabled": True}
    ctx = _ctx(data)
    model = ctx.spec.model("vision")
    values = {
        "artifacts_uri": "gs://artifacts-bucket",
        "key": "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k",
        "training_email": "t@p.iam.gserviceaccount.com",
        "buckets": {"raw": "gs://raw-bucket", "features": "gs://features-bucket"},
        "model_name": "projects/p/locations/us-central1/models/m",
        "tracking_uri": "projects/p/locations/us-central1/metadataStores/default",
    }
    repo = repository_id(ctx.namer, "vision")
    text = training.workflow_source(ctx, model, workflow="wf", image="pytorch/pytorch:2.3.0", repository=repo, values=values)
    source = yaml.safe_load(text)
    _check_workflow(source)
    named, assigned_ = steps(source), assigned(source)
    if variant_name == "gpu-multi-no-serving":
        # The upload needs a serving container: taken from the run's arguments, checked first.
        assert assigned_["serving_image"] == '${map.get(run_args, "serving_image")}'
        assert named["require_serving_image"]["switch"][0]["condition"] == "${serving_image == null}"
        order = [next(iter(step)) for step in source["main"]["steps"]]
        assert order.index("require_serving_image") < order.index("submit_job")
    else:
        assert assigned_["serving_image"] == f"us-central1-docker.pkg.dev/acme-ml-dev/{repo}/vision-serve:1.0"
        assert assigned_["model_body"]["containerSpec"]["env"] == [{"name": "WORKERS", "value": "4"}]
        assert "require_serving_image" not in named
    # Rendering is a pure function of its inputs.
    assert text == training.workflow_source(ctx, model, workflow="wf", image="pytorch/pytorch:2.3.0", repository=repo, values=values)


# --- images, run_on_deploy and other validation findings ------------------------------------
def test_images_vertex_cannot_pull_are_mirrored_with_a_warning(dev: dict) -> None:
    result = api.validate(source=api.resolve_source(stack="dev", spec=None, root=ROOT), clouds=["gcp"])
    assert result.valid  # the bundled examples still validate (and plan: the fixtures)
    warnings = {p.path: p for p in result.warnings}
    train = warnings[("models", 0, "training", "image")]
    target = dev["outputs"]["training"]["images"]["churn-classifier"]
    assert train.severity == "warning" and target in train.message and f"docker push {target}" in train.hint
    assert target.startswith("us-central1-docker.pkg.dev/acme-churn-dev/churn-dev-churn-classifier/")
    assert assigned(workflows(dev)["churn-classifier"])["job_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == target
    serve = warnings[("models", 0, "serving", "image")]
    assert assigned(workflows(dev)["churn-classifier"])["serving_image"] in serve.message


def test_image_sources() -> None:
    assert image_source("ghcr.io/acme/t:1") == "other"
    assert image_source("quay.io/acme/t:1") == "other"
    assert image_source("123.dkr.ecr.us-east-1.amazonaws.com/t:1") == "other"
    assert image_source("pytorch/pytorch:2.3.0") == "docker-hub"
    assert image_source("python:3.11") == "docker-hub"
    assert image_source("docker.io/library/python:3.11") == "docker-hub"
    assert image_source("localhost:5000/t:1") == "other"
    assert image_source("europe-docker.pkg.dev/p/r/t:1") == "artifact-registry"
    assert image_source("us-central1-docker.pkg.dev/p/r/t@sha256:" + "a" * 64) == "artifact-registry"
    assert image_source("eu.gcr.io/p/t:1") == image_source("gcr.io/p/t:1") == "container-registry"


def test_variant_findings(variant: dict) -> None:
    spec = spec_from(VARIANT)
    problems = {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}
    assert all(p.severity == "warning" for p in problems.values())
    # Docker Hub and Artifact Registry images are pulled as they are: no image finding.
    assert ("models", 0, "training", "image") not in problems and ("models", 1, "training", "image") not in problems
    assert variant["outputs"]["training"]["images"] == {
        "vision": "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime", "ranker": "europe-docker.pkg.dev/acme/ml/ranker:2.0",
    }
    run = problems[("models", 0, "training", "run_on_deploy")]
    name = by_name(variant)["training-workflow-vision"]["inputs"]["name"]
    assert "no effect on GCP" in run.message and f"gcloud workflows run {name} --project=acme-ml-dev --location=us-central1" in run.hint
    assert "serving_image" in problems[("models", 0, "registry")].message
    assert problems[("models", 0, "training", "environment", "MLOPS_MODEL")].value == "MLOPS_MODEL"
    assert set(problems) == {
        ("models", 0, "training", "run_on_deploy"), ("models", 0, "registry"),
        ("models", 0, "training", "environment", "MLOPS_MODEL"),
    }
    # run_on_deploy declares no one-off job: the training stage holds the same kinds as without it.
    kinds = {r["type"] for r in variant["resources"] if r["stage"] == "training" and r["custom"]}
    assert kinds == {WORKFLOW, REPOSITORY, REPO_MEMBER, PROJECT_MEMBER, SA_MEMBER}


def test_registry_without_training_and_tracking_size_warn() -> None:
    data = _data(
        tracking={"enabled": True, "size": "large"},
        models=[{"name": "imported", "registry": {}, "serving": {"image": "gcr.io/p/s:1", "model_uri": "gs://b/m/",
                                                                "compute": {"size": "cpu-small"}}}],
    )
    spec = spec_from(data)
    problems = {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}
    assert problems[("models", 0, "registry")].severity == "warning"
    assert "training workflow" in problems[("models", 0, "registry")].message
    assert problems[("tracking", "size")].severity == "warning"
    assert not [p for p in problems.values() if p.severity == "error"]


# --- names and determinism --------------------------------------------------------------------
def test_the_same_spec_plans_to_the_same_bytes(variant: dict) -> None:
    assert dump_plan(plan_for("gcp", VARIANT)) == dump_plan(variant)


@settings(max_examples=60, deadline=None)
@given(
    project=st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,23}", fullmatch=True),
    environment=st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,15}", fullmatch=True),
    model=st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,31}", fullmatch=True),
)
def test_generated_names_fit_their_rules(project: str, environment: str, model: str) -> None:
    spec = spec_from(_data(project=project, environment=environment))
    namer = BACKEND.namer(spec, spec.settings_for("gcp"))
    assert name_rules()["gcp.workflows.workflow"].accepts(workflow_name(namer, model))
    assert name_rules()["gcp.artifactregistry.repository"].accepts(repository_id(namer, model))
    assert name_rules()["gcp.vertex.model_id"].accepts(model_id(namer, model))
    assert name_rules()["gcp.iam.custom_role_id"].accepts(physical_name(namer, "gcp.iam.custom_role_id", "training", "launcher"))
    assert repository_id(namer, model) == repository_id(BACKEND.namer(spec, spec.settings_for("gcp")), model)


def test_digest_images_are_copied_with_their_digest() -> None:
    image = "ghcr.io/acme/train@sha256:" + "a" * 64
    spec = spec_from(_data(models=[{"name": "mm", "training": {"image": image, "compute": {"size": "cpu-small"}}}]))
    [problem] = BACKEND.check(spec, spec.settings_for("gcp"))  # (the spec acknowledges name_generation)
    target = "us-central1-docker.pkg.dev/acme-ml-dev/churn-dev-mm/train"
    assert f"{target}@sha256:{'a' * 64}" in problem.message
    assert problem.hint.endswith(f"crane copy {image} {target}:<tag>") and "docker tag" not in problem.hint
