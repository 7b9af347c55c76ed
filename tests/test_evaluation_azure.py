"""The Azure evaluation gate: retraining runs train -> evaluate -> gate -> register, registering only on a pass."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.governance_access import groups_access
from mlops_infra.backends.azure.training_evaluation import GATE_SCRIPT, approved_prefix, gate_command, metrics_prefix
from tests.azure_lifecycle import azure_spec, problems_at
from tests.planning import plan_for, resources_of, spec_from

ML = "azure-native:machinelearningservices:"
EVALUATION = {"metric": "auc", "threshold": 0.8, "compare_to_approved": True}
TRAINING = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"],
            "evaluation": EVALUATION}


def data(training: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    raw = azure_spec()
    raw["models"] = [{
        "name": "churn", "training": training or TRAINING, "registry": {"approval": "automatic"},
        "retraining": {"schedule": "0 2 * * 0", "on_new_data": {"bucket": "raw", "prefix": "new/"}},
    }]
    raw["monitoring"] = {"notify": {"emails": ["oncall@example.com"]}}
    raw.update(copy.deepcopy(changes))
    return raw


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("azure", data())


def retraining_schedule(plan: dict[str, Any]) -> dict[str, Any]:
    (schedule,) = [r for r in resources_of(plan, ML + "Schedule") if r["stage"] == "retraining"]
    return schedule["inputs"]["properties"]["action"]["jobDefinition"]


def test_retraining_runs_the_gated_pipeline(plan: dict[str, Any]) -> None:
    job = retraining_schedule(plan)
    assert job["jobType"] == "Pipeline"
    nodes = job["jobs"]
    assert sorted(nodes) == ["evaluate", "gate", "register", "train"]
    # each step consumes the one before: a failed gate leaves register without its input
    assert nodes["evaluate"]["inputs"]["model"]["value"] == "${{parent.jobs.train.outputs.model}}"
    assert nodes["gate"]["inputs"]["metrics"]["value"] == "${{parent.jobs.evaluate.outputs.metrics}}"
    assert nodes["register"]["inputs"]["approved"]["value"] == "${{parent.jobs.gate.outputs.approved}}"
    assert nodes["register"]["outputs"]["registered"] == {
        "asset_name": "churn", "job_output_type": "custom_model", "mode": "Upload"}
    assert job["settings"]["continue_on_step_failure"] is False
    # a failed gate fails the pipeline, which mails the stack's addresses
    assert job["notificationSetting"] == {"emailOn": ["JobFailed"], "emails": ["oncall@example.com"]}
    assert nodes["gate"]["outputs"]["approved"]["uri"].endswith("/paths/" + approved_prefix("churn"))
    assert nodes["evaluate"]["outputs"]["metrics"]["uri"].endswith("/paths/" + metrics_prefix("churn") + "${{name}}/")


def test_the_new_data_trigger_submits_the_same_pipeline(plan: dict[str, Any]) -> None:
    (workflow,) = resources_of(plan, "azure-native:logic:Workflow")
    body = workflow["inputs"]["parameters"]["job"]["value"]["properties"]
    assert body["jobType"] == "Pipeline" and sorted(body["jobs"]) == ["evaluate", "gate", "register", "train"]


def test_the_gate_components_are_declared(plan: dict[str, Any]) -> None:
    specs = {
        r["inputs"]["name"]: r["inputs"]["properties"]["componentSpec"]
        for r in resources_of(plan, ML + "ComponentVersion")
    }
    assert sorted(specs) == ["churn_evaluate", "churn_gate", "churn_register", "churn_train"]
    assert specs["churn_evaluate"]["command"].startswith("evaluate --model-dir ${{inputs.model}} --metrics-dir")
    assert specs["churn_evaluate"]["environment"] == specs["churn_train"]["environment"]  # the training image
    gate = specs["churn_gate"]["command"]
    assert "--metric auc --threshold 0.8 --direction maximize --compare-to-approved" in gate
    assert specs["churn_register"]["outputs"]["registered"]["type"] == "custom_model"


def test_an_evaluation_image_gets_its_own_environment() -> None:
    training = {**TRAINING, "evaluation": {**EVALUATION, "image": "ghcr.io/acme/eval:2.0", "command": ["python", "eval.py"]}}
    plan = plan_for("azure", data(training))
    images = sorted(r["inputs"]["properties"]["image"] for r in resources_of(plan, ML + "EnvironmentVersion"))
    assert "ghcr.io/acme/eval:2.0" in images
    (evaluate,) = [r for r in resources_of(plan, ML + "ComponentVersion") if r["inputs"]["name"] == "churn_evaluate"]
    assert evaluate["inputs"]["properties"]["componentSpec"]["command"].startswith("python eval.py --model-dir")


def test_models_without_a_gate_keep_the_training_job() -> None:
    training = {k: v for k, v in TRAINING.items() if k != "evaluation"}
    job = retraining_schedule(plan_for("azure", data(training)))
    assert job["jobType"] == "Command"


def test_the_group_identity_writes_the_gate_metrics_beside_the_model() -> None:
    spec = spec_from(data())
    (access,) = groups_access(spec, BACKEND.namer(spec, spec.settings_for("azure")))
    artifacts = BACKEND.namer(spec, spec.settings_for("azure")).name("azure.storage.container", "artifacts")
    (writes,) = [p for p in access.writes if p.container == artifacts]
    assert "evaluation/churn/" in writes.prefixes


def run_gate(tmp_path: Path, value: float, *, approved: float | None = None, direction: str = "maximize",
             compare: bool = True) -> subprocess.CompletedProcess[str]:
    metrics, kept = tmp_path / "metrics", tmp_path / "approved"
    metrics.mkdir(exist_ok=True)
    kept.mkdir(exist_ok=True)
    (metrics / "metrics.json").write_text(json.dumps({"auc": value}))
    if approved is not None:
        (kept / "metrics.json").write_text(json.dumps({"auc": approved}))
    args = [sys.executable, "-c", GATE_SCRIPT, "--metrics", str(metrics), "--approved", str(kept), "--metric", "auc",
            "--threshold", "0.8", "--direction", direction] + (["--compare-to-approved"] if compare else [])
    return subprocess.run(args, capture_output=True, text=True, check=False)


def test_the_gate_passes_and_records_the_approved_metric(tmp_path: Path) -> None:
    result = run_gate(tmp_path, 0.85, approved=0.82)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "approved" / "metrics.json").read_text()) == {"auc": 0.85}


@pytest.mark.parametrize(("value", "approved", "direction", "words"), [
    (0.7, None, "maximize", "the threshold"),
    (0.84, 0.9, "maximize", "the approved version"),
    (0.9, None, "minimize", "the threshold"),
])
def test_the_gate_fails_below_the_bar(tmp_path: Path, value: float, approved: float | None, direction: str,
                                      words: str) -> None:
    result = run_gate(tmp_path, value, approved=approved, direction=direction)
    assert result.returncode != 0 and "evaluation gate failed" in result.stderr and words in result.stderr
    if approved is not None:  # a failing version leaves the approved metric alone
        assert json.loads((tmp_path / "approved" / "metrics.json").read_text()) == {"auc": approved}


def test_without_compare_to_approved_only_the_threshold_counts(tmp_path: Path) -> None:
    assert run_gate(tmp_path, 0.81, approved=0.95, compare=False).returncode == 0


def test_the_gate_command_runs_in_a_shell_as_azure_ml_runs_it(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "approved").mkdir()
    (tmp_path / "metrics" / "metrics.json").write_text(json.dumps({"auc": 0.79}))
    command = gate_command(spec_from(data()).models[0])
    command = command.replace("${{inputs.metrics}}", str(tmp_path / "metrics"))
    command = command.replace("${{outputs.approved}}", str(tmp_path / "approved")).replace("python", sys.executable, 1)
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "auc 0.79 does not reach the threshold (0.8)" in result.stderr


def test_a_webhook_is_not_told_of_a_failed_gate() -> None:
    raw = data()
    raw["monitoring"]["notify"]["webhook"] = "https://hooks.example.com/x"
    (problem,) = problems_at(raw)["models[0].training.evaluation"]
    assert problem.severity == "warning" and "webhook" in problem.message


def test_a_gate_without_retraining_is_warned() -> None:
    raw = data()
    del raw["models"][0]["retraining"]
    (problem,) = problems_at(raw)["models[0].training.evaluation"]
    assert problem.severity == "warning" and "no retraining" in problem.message
