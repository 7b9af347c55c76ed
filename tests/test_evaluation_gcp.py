"""GCP evaluation gate: the training workflow evaluates each run and registers only a passing model.

Three plans (module-scoped): a maximize gate comparing to the approved version with a stack
channel, a minimize gate with its own image and command and no channel, and the same model
without a gate. The workflow source is parsed and walked step by step.
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
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
TRAIN_IMAGE = "us-docker.pkg.dev/acme/ml/train:1.0"
AUTOMATION = "serviceAccount:churn-dev-automation@acme-ml-dev.iam.gserviceaccount.com"
GROUP = "serviceAccount:churn-dev-group-churn@acme-ml-dev.iam.gserviceaccount.com"


def _data(evaluation: dict[str, Any] | None, *, notify: bool = True) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    training: dict[str, Any] = {"image": TRAIN_IMAGE, "compute": {"size": "cpu-small"}, "inputs": ["raw"], "spot": True}
    if evaluation is not None:
        training["evaluation"] = evaluation
    data["models"] = [{"name": "churn", "training": training, "registry": {"approval": "automatic"}}]
    if notify:
        data["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}}
    return data


GATED = _data({"metric": "auc", "threshold": 0.8, "compare_to_approved": True})
OWN_IMAGE = _data(
    {"metric": "rmse", "threshold": 3.5, "direction": "minimize", "image": "us-docker.pkg.dev/acme/ml/eval:2.0",
     "command": ["python", "-m", "evaluate", "${not-an-expression}"]},
    notify=False,
)


@pytest.fixture(scope="module")
def gated() -> dict[str, Any]:
    return plan_for("gcp", GATED)


@pytest.fixture(scope="module")
def own_image() -> dict[str, Any]:
    return plan_for("gcp", OWN_IMAGE)


@pytest.fixture(scope="module")
def ungated() -> dict[str, Any]:
    return plan_for("gcp", _data(None))


def _steps(plan: dict[str, Any]) -> dict[str, Any]:
    (workflow,) = resources_of(plan, WORKFLOW)
    source = yaml.safe_load(workflow["inputs"]["sourceContents"])
    steps: dict[str, Any] = {}
    for step in source["main"]["steps"]:
        (name, body), = step.items()
        steps[name] = body
    return {"order": list(steps), **steps, "init": {k: v for a in steps["init"]["assign"] for k, v in a.items()}}


def test_the_gate_runs_between_training_and_registration(gated: dict[str, Any]) -> None:
    steps = _steps(gated)
    order = steps["order"]
    assert steps["check_job"]["switch"][0]["next"] == "submit_evaluation"
    assert order.index("submit_evaluation") < order.index("read_metrics") < order.index("gate_passed") < order.index("upload_version")
    assert steps["gate_passed"]["next"] == "find_model"
    # Nothing reaches the upload but the passing branch.
    nexts = [s.get("next") for name, s in steps.items() if isinstance(s, dict) and name not in ("gate_passed", "init")]
    assert "find_model" not in nexts and "upload_version" not in nexts
    failed = steps["gate_failed"]["steps"]
    assert failed[0]["log_gate_failure"]["args"]["severity"] == "ERROR"
    assert "raise" in failed[1]["stop"]
    assert "evaluation gate failed" in failed[1]["stop"]["raise"]


def test_the_threshold_and_the_approved_version_fail_the_gate(gated: dict[str, Any], own_image: dict[str, Any]) -> None:
    steps = _steps(gated)
    assert steps["init"]["gate_metric"] == "auc" and steps["init"]["gate_threshold"] == 0.8
    conditions = [c["condition"] for c in steps["require_score"]["switch"]]
    assert conditions == ["${score == null}", "${score < gate_threshold}"]
    assert steps["require_score"]["switch"][1]["next"] == "gate_failed"
    assert steps["require_score"]["next"] == "find_approved"
    assert steps["find_approved"]["try"]["args"]["name"] == '${model_name + "@approved"}'
    # No approved version yet (404), or one evaluated before the gate existed: the gate passes.
    assert steps["find_approved"]["except"]["steps"][0]["no_approved_version"]["switch"][0]["next"] == "gate_passed"
    assert steps["check_approved"]["switch"] == [
        {"condition": "${approved_score != null and not (score > approved_score)}", "next": "gate_failed"}
    ]
    minimize = _steps(own_image)
    assert [c["condition"] for c in minimize["require_score"]["switch"]][1] == "${score > gate_threshold}"
    assert "find_approved" not in minimize["order"] and minimize["require_score"]["next"] == "gate_passed"


def test_metrics_are_read_from_the_runs_own_output(gated: dict[str, Any]) -> None:
    steps = _steps(gated)
    init = steps["init"]
    assert init["metrics_bucket"].startswith("churn-dev-artifacts-")
    assert init["metrics_prefix"] == "models/churn/"
    assert init["metrics_object"] == '${metrics_prefix + run_id + "/evaluation/metrics.json"}'
    read = steps["read_metrics"]
    assert read["call"] == "googleapis.storage.v1.objects.get"
    assert read["args"] == {"bucket": "${metrics_bucket}", "object": "${text.url_encode(metrics_object)}", "alt": "media"}


def test_the_evaluation_job(gated: dict[str, Any], own_image: dict[str, Any]) -> None:
    job = _steps(gated)["init"]["evaluation_body"]
    (pool,) = job["jobSpec"]["workerPoolSpecs"]
    container = pool["containerSpec"]
    assert container["imageUri"] == TRAIN_IMAGE and "command" not in container and container["args"] == []
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLOPS_METRICS_URI"] == "${metrics_uri}" and env["MLOPS_METRIC"] == "auc"
    assert env["MLOPS_MODEL_DIR"] == "${model_dir}"
    assert pool["replicaCount"] == 1
    assert job["jobSpec"]["serviceAccount"] == GROUP.removeprefix("serviceAccount:")
    assert job["jobSpec"]["scheduling"]["strategy"] == "STANDARD"  # the training itself is spot
    assert job["encryptionSpec"]["kmsKeyName"].endswith("/cryptoKeys/churn-dev-key")
    assert job["displayName"] == '${job_display_name + "-evaluation"}'

    other = _steps(own_image)["init"]["evaluation_body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert other["imageUri"] == "us-docker.pkg.dev/acme/ml/eval:2.0"
    # A value that looks like a Workflows expression is passed as its own literal.
    assert other["command"] == ["python", "-m", "evaluate", '${"${not-an-expression}"}']


def test_least_privilege_read_of_the_metrics(gated: dict[str, Any], ungated: dict[str, Any]) -> None:
    reads = [r["inputs"] for r in resources_of(gated, FOLDER_MEMBER) if r["inputs"]["member"] == AUTOMATION]
    assert [(r["managedFolder"], r["role"]) for r in reads] == [("models/churn/", "roles/storage.objectViewer")]
    assert not [r for r in resources_of(ungated, FOLDER_MEMBER) if r["inputs"]["member"] == AUTOMATION]


def test_a_failed_gate_notifies_the_stacks_channels(gated: dict[str, Any], own_image: dict[str, Any]) -> None:
    (policy,) = [r for r in resources_of(gated, ALERT) if "failed" in r["name"]]
    assert policy["stage"] == "monitoring"
    inputs = policy["inputs"]
    assert inputs["notificationChannels"] and inputs["severity"] == "ERROR"
    log = inputs["conditions"][0]["conditionMatchedLog"]["filter"]
    assert 'resource.labels.workflow_id="churn-dev-churn"' in log and "severity>=ERROR" in log
    assert inputs["alertStrategy"]["notificationRateLimit"]["period"] == "3600s"
    assert not [r for r in resources_of(own_image, ALERT) if "failed" in r["name"]]  # no channel, no policy


def test_no_gate_no_gate_steps(ungated: dict[str, Any]) -> None:
    steps = _steps(ungated)
    assert "submit_evaluation" not in steps["order"] and steps["check_job"]["switch"][0]["next"] == "find_model"
    assert not [r for r in resources_of(ungated, ALERT) if "failed" in r["name"]]


def test_an_evaluation_image_vertex_cannot_pull_is_located() -> None:
    data = _data({"metric": "auc", "threshold": 0.8, "image": "ghcr.io/acme/eval:1.0"})
    data["cloud"] = "gcp"
    try:
        warnings = check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"]).warnings
    except SpecInvalid as exc:  # pragma: no cover - the message says what failed
        pytest.fail(str(exc.problems))
    (found,) = [w for w in warnings if w.path == ("models", 0, "training", "evaluation", "image")]
    assert "Artifact Registry" in found.message and "docker push" in (found.hint or "")


def test_changing_the_threshold_updates_only_the_workflow(gated: dict[str, Any]) -> None:
    from mlops_infra.diff import diff_plans

    stricter = copy.deepcopy(GATED)
    stricter["models"][0]["training"]["evaluation"]["threshold"] = 0.85
    changes = diff_plans(gated, plan_for("gcp", stricter))
    assert not changes.create and not changes.delete
    assert [u.name for u in changes.update] == ["training-workflow-churn"]
