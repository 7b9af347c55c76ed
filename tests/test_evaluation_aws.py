"""AWS evaluation gate: a Processing step and a Condition step in the training pipeline, so that
a version is registered only when its metric passes, and a failed gate notifies the stack.

Plans shared by the module: a spec with a gated model and an ungated one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import BACKEND, training
from mlops_infra.backends.aws import training_evaluation as evaluation
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, spec_from

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
TRAIN = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]}
SPEC: dict[str, Any] = {
    **copy.deepcopy(BASE_SPEC),
    "models": [
        {"name": "churn", "registry": {"approval": "automatic"},
         "training": {**TRAIN, "evaluation": {"metric": "auc", "threshold": 0.8, "compare_to_approved": True,
                                              "image": "ghcr.io/acme/eval:1.0", "command": ["python", "eval.py"]}}},
        {"name": "ltv", "registry": {"approval": "manual"},
         "training": {**TRAIN, "evaluation": {"metric": "rmse", "threshold": 3.5, "direction": "minimize"}}},
        {"name": "plain", "registry": {"approval": "manual"}, "training": TRAIN},
    ],
    "monitoring": {"notify": {"emails": ["ml@example.com"]}},
}


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", SPEC)



def gated_definition(name: str) -> dict[str, Any]:
    """The training pipeline of `name` as the training stage renders it, with stand-ins for ARNs."""
    spec = spec_from(SPEC)
    settings, model = spec.clouds.aws, spec.model(name)
    namer = BACKEND.namer(spec, settings)
    values = training._job_values(
        model, job_name="churn-dev-x", image="img", role_arn="ROLE", key_arn="KEY", artifacts="s3://art",
        buckets={"raw": "s3://raw"}, instance_type="ml.m5.large", tags={})
    registration = training._registration(namer, settings, model)(f"churn-dev-{name}")
    document = jobs.pipeline_definition(values, registration)

    class Ctx:  # what _gate_values reads from the stage context
        pass

    ctx: Any = Ctx()
    ctx.namer, ctx.settings, ctx.tags = namer, settings, lambda: {"owner": "x"}
    gate = training._gate_values(ctx, model, image="eval-img", role_arn="ROLE", key_arn="KEY", artifacts="s3://art",
                                 package_group=f"churn-dev-{name}", vpc=None)
    return evaluation.gated(document, gate, train_step=jobs.TRAIN_STEP, register_step=jobs.REGISTER_STEP)


def test_registration_runs_only_inside_the_passing_branch():
    doc = gated_definition("churn")
    assert [(s["Name"], s["Type"]) for s in doc["Steps"]] == [
        ("Train", "Training"), ("Evaluate", "Processing"), ("CheckEvaluation", "Condition")]
    condition = doc["Steps"][2]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["RegisterModel"]
    assert [(s["Name"], s["Type"]) for s in condition["ElseSteps"]] == [("EvaluationGateFailed", "Fail")]
    first, second = condition["Conditions"]
    assert first["Type"] == "ConditionGreaterThanOrEqualTo" and first["RightValue"] == 0.8
    assert first["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.auc"
    assert second["RightValue"]["Std:JsonGet"]["Path"] == "approved.auc"
    register = condition["IfSteps"][0]["Arguments"]
    assert register["ModelApprovalStatus"] == "Approved"
    assert "ModelMetrics" in register and "auc" in condition["ElseSteps"][0]["Arguments"]["ErrorMessage"]


def test_minimized_metrics_compare_the_other_way_and_stay_isolated():
    doc = gated_definition("ltv")
    (only,) = doc["Steps"][2]["Arguments"]["Conditions"]
    assert only["Type"] == "ConditionLessThanOrEqualTo" and only["RightValue"] == 3.5
    evaluate = doc["Steps"][1]
    assert evaluate["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert "MODEL_PACKAGE_GROUP" not in evaluate["Arguments"]["Environment"]


def test_the_evaluation_step_reads_the_trained_model_and_encrypts_its_report():
    evaluate = gated_definition("churn")["Steps"][1]
    args = evaluate["Arguments"]
    assert args["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "KEY"
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "KEY"
    assert args["AppSpecification"] == {"ImageUri": "eval-img", "ContainerEntrypoint": ["python", "eval.py"]}
    assert args["ProcessingJobName"] == "churn-dev-churn-eval" and args["RoleArn"] == "ROLE"
    assert args["Environment"] == {"MODEL_PACKAGE_GROUP": "churn-dev-churn"}
    assert evaluate["PropertyFiles"] == [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation",
                                          "FilePath": "evaluation.json"}]
    assert args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == (
        "s3://art/models/churn/evaluation")


def test_gated_models_get_a_scoped_grant_a_repository_and_a_failure_alarm(plan):
    assert by_name(plan, "training-evalgrant-churn")["dependencies"]["role"] == ["governance-group-churn"]
    assert "training-evalgrant-plain" not in {r["name"] for r in plan["resources"]}
    assert by_name(plan, "training-repository-churn-evaluation")["inputs"]["name"] == "churn-dev-churn-evaluation"
    pipeline = by_name(plan, "training-pipeline-churn")
    # The pipeline starts jobs as soon as it runs: it waits for the gate's grant and repository.
    assert {"training-evalgrant-churn", "training-repository-churn-evaluation"} <= set(pipeline["depends_on"])
    alarm = by_name(plan, "training-alarm-failed-churn")
    assert alarm["inputs"]["name"] == "churn-dev-churn-gate-failed"
    assert alarm["inputs"]["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:churn-dev-alerts"]
    assert by_name(plan, "training-failed-churn")["dependencies"]["eventPattern"] == ["training-pipeline-churn"]
    assert "training-alarm-failed-plain" not in {r["name"] for r in plan["resources"]}
    doc = evaluation.gate_grants(partition="aws", region="us-east-1", account_id="1", job_prefix="churn-dev-",
                                 key_arn="KEY", package_groups=["churn-dev-churn"], repository=None)
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["ReadApprovedVersions"]["Resource"] == ["arn:aws:sagemaker:us-east-1:1:model-package/churn-dev-churn/*"]
    assert sids["RunEvaluationJobs"]["Resource"] == "arn:aws:sagemaker:us-east-1:1:processing-job/churn-dev-*"
    assert [s["Action"] for s in doc["Statement"] if s["Resource"] == "*"] == [["sagemaker:ListModelPackages"]]


def test_a_gate_without_registry_is_a_located_error():
    data = copy.deepcopy(SPEC)
    del data["models"][1]["registry"]
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    problem = next(p for p in raised.value.problems if p.dotted_path == "models[1].training.evaluation")
    assert "no registry" in problem.message and problem.hint


def test_an_evaluation_image_in_another_region_is_refused():
    data = copy.deepcopy(SPEC)
    data["models"][0]["training"]["evaluation"]["image"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/eval:1"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    problem = next(p for p in raised.value.problems if p.dotted_path == "models[0].training.evaluation.image")
    assert "another region" in problem.message and problem.line is not None
