"""GCP batch scoring: a workflow per model running a Vertex AI batch prediction job, its triggers,
failure alert, grants and validation.

Plans (module-scoped): BATCH (a trained, registered model scored on a schedule and on new data, and
a model without training scoring an artifact), BATCH_ONLY (nothing trains), BATCH_PRIVATE
(governance.network: private), BASE (no batch: what must not change), and BATCH with another
schedule (the diff).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.backends.gcp.batch import failure_filter
from mlops_infra.backends.gcp.naming import batch_workflow_name, topic_id, trigger_name
from mlops_infra.backends.gcp.roles import BATCH_LAUNCHER_PERMISSIONS
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

WORKFLOW = "gcp:workflows/workflow:Workflow"
JOB = "gcp:cloudscheduler/job:Job"
TRIGGER = "gcp:eventarc/trigger:Trigger"
TOPIC = "gcp:pubsub/topic:Topic"
NOTIFICATION = "gcp:storage/notification:Notification"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
FOLDER_GRANT = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SERVICE = "gcp:projects/service:Service"
KEY = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
CUSTOM_JOBS = ["aiplatform.customJobs.cancel", "aiplatform.customJobs.create", "aiplatform.customJobs.get"]
BATCH_JOBS = ["aiplatform.batchPredictionJobs.cancel", "aiplatform.batchPredictionJobs.create", "aiplatform.batchPredictionJobs.get"]

CHURN_BATCH = {
    "input": {"bucket": "raw", "prefix": "to-score/"},
    "output": {"bucket": "scores", "prefix": "churn/"},
    "schedule": "0 5 * * *",
    "timezone": "Europe/Amsterdam",
    "on_new_data": True,
    "compute": {"size": "cpu-large"},
    "instance_count": 2,
    "max_runtime": "2h",
}
SCORER = {
    "name": "scorer",
    "serving": {"image": "us-central1-docker.pkg.dev/acme-ml-dev/scorer/serve:1.0", "compute": {"size": "cpu-small"},
                "autoscaling": {"min_replicas": 1, "max_replicas": 2}},
    "batch": {"input": {"bucket": "raw", "prefix": "scorer/"}, "output": {"bucket": "scores", "prefix": "scorer/"},
              "schedule": "30 1 * * 1", "compute": {"size": "cpu-small"}, "model_uri": "gs://acme-models/scorer/v3/"},
}


def _spec(*models: dict[str, Any], network: str = "public") -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"].append({"name": "scores", "expire_after_days": 90})
    data["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}}
    data["governance"] = {"network": network}
    data["models"] = [copy.deepcopy(m) for m in models]
    return data


CHURN = {
    "name": "churn",
    "training": {"image": "us-central1-docker.pkg.dev/acme-ml-dev/churn/train:1.0", "compute": {"size": "cpu-large"},
                 "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "serving": {"image": "us-central1-docker.pkg.dev/acme-ml-dev/churn/serve:1.0", "compute": {"size": "cpu-small"},
                "autoscaling": {"min_replicas": 1, "max_replicas": 2}},
    "retraining": {"on_new_data": {"bucket": "raw", "prefix": "new/"}},
    "batch": CHURN_BATCH,
}
BATCH = _spec(CHURN, SCORER)
BATCH_ONLY = _spec(SCORER)
BATCH_PRIVATE = _spec(SCORER, network="private")
BASE = _spec({k: v for k, v in CHURN.items() if k != "batch"})


@pytest.fixture(scope="module")
def batch() -> dict[str, Any]:
    return plan_for("gcp", BATCH)


@pytest.fixture(scope="module")
def batch_only() -> dict[str, Any]:
    return plan_for("gcp", BATCH_ONLY)


def _named(plan: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in plan["resources"] if r["name"] == name]
    return found


def _source(plan: dict[str, Any], model: str) -> dict[str, Any]:
    return yaml.safe_load(_named(plan, f"batch-workflow-{model}")["inputs"]["sourceContents"])


def _job(plan: dict[str, Any], model: str) -> dict[str, Any]:
    steps = {k: v for step in _source(plan, model)["main"]["steps"] for k, v in step.items()}
    (body,) = [a["job_body"] for a in steps["build_job"]["assign"] if "job_body" in a]
    return body


def _namer(data: dict[str, Any]) -> Any:
    spec = spec_from(data)
    return BACKEND.namer(spec, spec.settings_for("gcp"))


# --- what each field produces ---------------------------------------------------------------------
def test_each_batch_model_gets_its_own_workflow_run_as_automation_with_the_key(batch: dict[str, Any]) -> None:
    workflows = {r["name"]: r for r in resources_of(batch, WORKFLOW) if r["stage"] == "batch"}
    assert set(workflows) == {"batch-workflow-churn", "batch-workflow-scorer"}
    namer = _namer(BATCH)
    churn = workflows["batch-workflow-churn"]["inputs"]
    assert churn["name"] == batch_workflow_name(namer, "churn") == "churn-dev-churn-batch"
    assert churn["serviceAccount"].startswith("churn-dev-automation@")
    assert churn["cryptoKeyName"] == KEY
    # Training's own workflow is untouched: batch scoring is not a step of it.
    training = _named(batch, "training-workflow-churn")["inputs"]["sourceContents"]
    assert "batchPredictionJobs" not in training


def test_registered_model_scores_the_approved_version_with_group_identity_key_and_machines(batch: dict[str, Any]) -> None:
    body = _job(batch, "churn")
    assert body["model"] == "projects/acme-ml-dev/locations/us-central1/models/churn-dev-churn@approved"
    assert "unmanagedContainerModel" not in body
    assert body["serviceAccount"].startswith("churn-dev-group-churn")
    assert body["encryptionSpec"] == {"kmsKeyName": KEY}
    assert body["dedicatedResources"] == {
        "machineSpec": {"machineType": "n2-standard-8"}, "startingReplicaCount": 2, "maxReplicaCount": 2,
    }
    assert body["inputConfig"] == {"instancesFormat": "jsonl", "gcsSource": {"uris": "${input_uris}"}}
    assert body["outputConfig"]["gcsDestination"] == {"outputUriPrefix": "${output_uri}"}
    init = {k: v for a in _source(batch, "churn")["main"]["steps"][0]["init"]["assign"] for k, v in a.items()}
    assert init["input_uris"][0].endswith("/to-score/*") and init["input_uris"][0].startswith("gs://churn-dev-raw-")
    assert init["output_root"].startswith("gs://churn-dev-scores-") and init["output_root"].endswith("/churn/")
    assert init["max_runtime_seconds"] == 7200


def test_model_uri_scores_the_artifact_in_the_serving_container(batch: dict[str, Any]) -> None:
    body = _job(batch, "scorer")
    assert "model" not in body
    assert body["unmanagedContainerModel"] == {
        "artifactUri": "gs://acme-models/scorer/v3/",
        "containerSpec": {"imageUri": SCORER["serving"]["image"]},
    }


def test_an_artifact_path_that_looks_like_an_expression_stays_a_literal() -> None:
    data = _spec(dict(copy.deepcopy(SCORER), batch={**SCORER["batch"], "model_uri": "gs://acme-models/${x}/"}))
    body = _job(plan_for("gcp", data), "scorer")
    assert body["unmanagedContainerModel"]["artifactUri"] == '${"gs://acme-models/${x}/"}'


def test_schedule_starts_the_batch_workflow_in_its_time_zone(batch: dict[str, Any]) -> None:
    job = _named(batch, "batch-schedule-churn")["inputs"]
    assert job["schedule"] == "0 5 * * *" and job["timeZone"] == "Europe/Amsterdam"
    assert job["httpTarget"]["uri"].endswith("/workflows/churn-dev-churn-batch/executions")
    assert job["httpTarget"]["oauthToken"]["serviceAccountEmail"].startswith("churn-dev-automation@")
    # The first run finds the group's read and write grants in place.
    waits = _named(batch, "batch-schedule-churn")["depends_on"]
    assert waits == ["storage-bucket-grant-raw/read-group-churn", "storage-folder-grant-scores/churn/write-group-churn"]
    assert _named(batch, "batch-batchinput-trigger-churn")["depends_on"][-2:] == waits


def test_on_new_data_uses_the_retraining_mechanism_on_the_input_prefix(batch: dict[str, Any]) -> None:
    namer = _namer(BATCH)
    notification = _named(batch, "batch-batchinput-notification-churn")["inputs"]
    assert notification["objectNamePrefix"] == "to-score/" and notification["eventTypes"] == ["OBJECT_FINALIZE"]
    topic = _named(batch, "batch-batchinput-topic-churn")["inputs"]
    assert topic["name"] == topic_id(namer, "churn", "batch-input") and topic["kmsKeyName"] == KEY
    trigger = _named(batch, "batch-batchinput-trigger-churn")["inputs"]
    assert trigger["name"] == trigger_name(namer, "churn", "batch-input")
    assert trigger["destination"]["workflow"].endswith("/workflows/churn-dev-churn-batch")
    # The retraining trigger of the same model stays its own (another topic, another workflow).
    assert _named(batch, "retraining-newdata-topic-churn")["inputs"]["name"] != topic["name"]
    # A single token grant for the Pub/Sub agent in the stack, whoever makes it.
    assert len([r for r in resources_of(batch, SA_MEMBER) if "token-creator" in r["name"]]) == 1
    # A run started by a new object scores that object alone.
    read_event = _source(batch, "churn")["main"]["steps"][1]["read_event"]["switch"][0]
    assert "objectId" in read_event["condition"]


def test_scorer_without_new_data_has_no_topic(batch: dict[str, Any]) -> None:
    assert not [r for r in batch["resources"] if r["stage"] == "batch" and r["name"].endswith("-scorer")
                and r["type"] in (TOPIC, TRIGGER, NOTIFICATION)]


def test_failed_runs_notify_the_monitoring_channels(batch: dict[str, Any]) -> None:
    policy = _named(batch, "batch-alert-failed-churn")["inputs"]
    (condition,) = policy["conditions"]
    assert condition["conditionThreshold"]["filter"] == failure_filter("churn-dev-churn-batch")
    assert 'metric.labels.status != "SUCCEEDED"' in condition["conditionThreshold"]["filter"]
    channels = [r for r in batch["resources"] if r["name"].startswith("monitoring-channel-email")]
    assert len(channels) == 1 and len(policy["notificationChannels"]) == 1


# --- least privilege ------------------------------------------------------------------------------
def test_group_writes_only_its_output_prefix_and_reads_its_input(batch: dict[str, Any]) -> None:
    grants = [r["inputs"] for r in resources_of(batch, FOLDER_GRANT)]
    writes = {(g["bucket"].split("-")[2], g["managedFolder"], g["member"].split("@")[0].split(":")[1])
              for g in grants if g["role"] == "roles/storage.objectUser" and "scores" in g["bucket"]}
    assert {(b, f) for b, f, _ in writes} == {("scores", "churn/"), ("scores", "scorer/")}
    for _, folder, member in writes:
        assert member.startswith(f"churn-dev-group-{folder.rstrip('/')}")
    reads = {g["managedFolder"] for g in grants if g["role"] == "roles/storage.objectViewer" and "raw" in g["bucket"]}
    assert "scorer/" in reads  # churn's training reads all of raw, which covers its batch input


def test_launcher_role_gains_exactly_the_batch_job_permissions(batch: dict[str, Any]) -> None:
    (launcher,) = [r["inputs"] for r in resources_of(batch, ROLE) if "launcher" in r["name"]]
    assert launcher["permissions"] == sorted(CUSTOM_JOBS + BATCH_JOBS)
    assert tuple(BATCH_JOBS) == BATCH_LAUNCHER_PERMISSIONS
    base = plan_for("gcp", BASE)
    (before,) = [r["inputs"] for r in resources_of(base, ROLE) if "launcher" in r["name"]]
    assert before["permissions"] == CUSTOM_JOBS


def test_act_as_only_on_batch_groups_training_does_not_cover(batch: dict[str, Any], batch_only: dict[str, Any]) -> None:
    acts = {r["name"] for r in resources_of(batch, SA_MEMBER) if "actas" in r["name"]}
    assert acts == {"training-actas-grant-automation-churn", "batch-actas-grant-automation-scorer"}
    scorer = _named(batch, "batch-actas-grant-automation-scorer")["inputs"]
    assert scorer["role"] == "roles/iam.serviceAccountUser"
    assert "group-scorer" in scorer["serviceAccountId"] and scorer["member"].startswith("serviceAccount:churn-dev-automation@")
    # The launcher and log grants are training's when a model trains, batch's otherwise, never both.
    assert not [r for r in resources_of(batch, PROJECT_MEMBER) if r["stage"] == "batch"]
    granted = {r["name"]: r["inputs"]["role"] for r in resources_of(batch_only, PROJECT_MEMBER) if r["stage"] == "batch"}
    assert set(granted) == {"batch-project-grant-launcher-automation", "batch-project-grant-logwriter-automation"}
    assert granted["batch-project-grant-logwriter-automation"] == "roles/logging.logWriter"
    assert granted["batch-project-grant-launcher-automation"].endswith("/roles/churn_dev_training_launcher")


def test_batch_alone_enables_the_apis_it_calls(batch_only: dict[str, Any]) -> None:
    services = {r["inputs"]["service"] for r in resources_of(batch_only, SERVICE)}
    assert {"aiplatform.googleapis.com", "workflows.googleapis.com", "cloudscheduler.googleapis.com",
            "workflowexecutions.googleapis.com"} <= services


def test_private_network_schedules_through_pubsub_and_says_the_job_runs_outside() -> None:
    plan = plan_for("gcp", BATCH_PRIVATE)
    job = _named(plan, "batch-schedule-scorer")["inputs"]
    assert "pubsubTarget" in job and "httpTarget" not in job
    problem = _problems(BATCH_PRIVATE)[("models", 0, "batch")]
    assert problem.severity == "warning" and "no network field" in problem.message


# --- validation -----------------------------------------------------------------------------------
def _problems(data: dict[str, Any]) -> dict[tuple, Any]:
    spec = spec_from(data)
    return {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}


def _errors(data: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data, sort_keys=False), "s.yaml", clouds=["gcp"])
    return {p.dotted_path: p for p in info.value.problems if p.severity == "error"}


def test_valid_batch_spec_has_no_errors() -> None:
    assert not [p for p in _problems(BATCH).values() if p.severity == "error"]


def test_every_batch_problem_is_reported_at_once_with_its_place() -> None:
    data = _spec(CHURN, SCORER)
    data["models"][0]["batch"]["compute"] = {"cpus": 192, "memory_gib": 2048}
    data["models"][0]["batch"]["timezone"] = "localtime"
    data["models"][1]["batch"]["model_uri"] = "s3://elsewhere/model/"
    data["models"].append(dict(copy.deepcopy(SCORER), name="nosrv", serving=None))
    data["models"][2].pop("serving")
    data["models"].append(dict(copy.deepcopy(CHURN), name="churn-batch"))
    data["models"][3].pop("batch")
    data["models"][3].pop("retraining")
    errors = _errors(data)
    compute = errors["models[0].batch.compute"]
    assert "cannot serve" in compute.message and compute.hint and compute.line
    assert "tz database" in errors["models[0].batch.timezone"].message
    assert "Cloud Storage only" in errors["models[1].batch.model_uri"].message
    assert "serving container" in errors["models[2].batch.model_uri"].message
    clash = errors["models[3].name"]
    assert "churn-dev-churn-batch" in clash.message and clash.hint == "rename one of the two models"


def test_artifact_the_group_cannot_read_is_a_warning_with_the_grant() -> None:
    problem = _problems(BATCH)[("models", 1, "batch", "model_uri")]
    assert problem.severity == "warning"
    assert "gs://acme-models/scorer/v3/" in problem.hint and "churn-dev-group-scorer" in problem.hint


def test_no_channel_is_a_warning() -> None:
    data = copy.deepcopy(BATCH_ONLY)
    del data["monitoring"]
    problem = _problems(data)[("models", 0, "batch")]
    assert problem.severity == "warning" and "notify nobody" in problem.message
    assert not resources_of(plan_for("gcp", data), POLICY)


# --- diff ---------------------------------------------------------------------------------------------
def test_changing_a_batch_schedule_updates_only_that_schedule(batch: dict[str, Any]) -> None:
    changed = copy.deepcopy(BATCH)
    changed["models"][0]["batch"]["schedule"] = "0 6 * * *"
    changes = diff_plans(batch, plan_for("gcp", changed))
    assert not changes.create and not changes.delete
    (update,) = changes.update
    assert update.name == "batch-schedule-churn"
    assert set(update.paths) == {"inputs.schedule", "inputs.description"}


def test_plans_are_deterministic(batch: dict[str, Any]) -> None:
    assert plan_for("gcp", BATCH) == batch


def test_split_spec_puts_the_workflow_in_the_model_stack_and_stack_wide_grants_in_the_shared_one() -> None:
    data = copy.deepcopy(BATCH)
    data["split"] = {"enabled": True}
    parts = {r["name"]: r.get("part") for r in plan_for("gcp", data)["resources"]}
    assert parts["batch-workflow-churn"] == "churn" and parts["batch-schedule-churn"] == "churn"
    assert parts["batch-workflow-scorer"] == "scorer" and parts["batch-alert-failed-scorer"] == "scorer"
    assert parts["batch-actas-grant-automation-scorer"] == "shared"
    assert [n for n in parts if "token-creator" in n] == ["retraining-token-creator-pubsub-agent"]
