"""AWS batch scoring: a scheduled SageMaker pipeline per model running Batch Transform.

Plans are shared through module-scoped fixtures (four plans: a batch spec, the same with another
schedule, a private-network variant and a split variant). The pipeline definition and the group
grant hold the key's ARN, which is known only after deployment: their content is tested through
the pure functions the stage calls (batch_jobs), their wiring through the plan.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws import batch_jobs
from mlops_infra.backends.aws.governance_grants import budgets
from mlops_infra.backends.aws.naming import stack_prefix
from mlops_infra.diff import diff_plans
from tests.planning import BASE_SPEC, plan_for, spec_from
from tests.test_serving_modes_aws import at, named, problems

ACCOUNT = "123456789012"
RAW = "churn-dev-raw-123456789012-us-east-1-an"
SCORES = "churn-dev-scores-123456789012-us-east-1-an"
ARTIFACTS = "churn-dev-artifacts-123456789012-us-east-1-an"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{'0' * 36}"

BATCH = {"input": {"bucket": "raw", "prefix": "to-score/"}, "output": {"bucket": "scores", "prefix": "churn/"},
         "schedule": "0 5 * * *", "timezone": "Europe/Amsterdam", "on_new_data": True,
         "compute": {"size": "cpu-large"}, "instance_count": 2}


def batch_spec() -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"].append({"name": "scores", "expire_after_days": 90})
    data["monitoring"] = {"notify": {"emails": ["oncall@example.com"]}}
    data["models"] = [{
        "name": "churn",
        "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
        "registry": {"approval": "automatic"},
        "serving": {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"}},
        "batch": copy.deepcopy(BATCH),
    }]
    return data


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", batch_spec())


@pytest.fixture(scope="module")
def private_plan() -> dict[str, Any]:
    data = batch_spec()
    data["governance"] = {"network": "private"}
    return plan_for("aws", data)


# --- what each field produces ------------------------------------------------------------------
def test_each_batch_model_gets_its_stage_resources(plan):
    batch = sorted((r["name"], r["type"]) for r in plan["resources"] if r["stage"] == "batch" and r["custom"])
    assert batch == [
        ("batch-alarm-churn", "aws:cloudwatch/metricAlarm:MetricAlarm"),
        ("batch-grant-automation", "aws:iam/rolePolicy:RolePolicy"),
        ("batch-groupgrant-churn", "aws:iam/rolePolicy:RolePolicy"),
        ("batch-model-churn", "aws:sagemaker/model:Model"),
        ("batch-pipeline-churn", "aws:sagemaker/pipeline:Pipeline"),
        ("batch-rule-batchdata-churn", "aws:cloudwatch/eventRule:EventRule"),
        ("batch-rule-failed-churn", "aws:cloudwatch/eventRule:EventRule"),
        ("batch-schedule-churn", "aws:scheduler/schedule:Schedule"),
        ("batch-target-batchdata-churn", "aws:cloudwatch/eventTarget:EventTarget"),
    ]


def test_the_batch_model_runs_the_serving_image_on_the_trained_model_as_the_group_identity(plan):
    model = named(plan)["batch-model-churn"]
    inputs = model["inputs"]
    assert inputs["name"].startswith("churn-dev-churn-batch-")
    assert inputs["primaryContainer"]["image"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/churn-dev-churn-serving:1.0"
    source = inputs["primaryContainer"]["modelDataSource"]["s3DataSources"][0]
    assert source["s3Uri"] == f"s3://{ARTIFACTS}/models/churn/" and source["s3DataType"] == "S3Prefix"
    assert inputs["enableNetworkIsolation"] is True and "vpcConfig" not in inputs
    assert "governance-group-churn" in model["dependencies"]["executionRoleArn"]
    assert "batch-groupgrant-churn" in model["depends_on"]


def test_the_pipeline_runs_as_the_group_identity_and_scores_with_the_batch_model(plan):
    pipeline = named(plan)["batch-pipeline-churn"]
    assert pipeline["inputs"]["pipelineName"] == "churn-dev-churn-batch"
    assert "governance-group-churn" in pipeline["dependencies"]["roleArn"]
    assert set(pipeline["dependencies"]["pipelineDefinition"]) >= {"batch-model-churn", "governance-key"}


def test_the_transform_step_reads_the_input_and_writes_encrypted_predictions_per_run():
    job = batch_jobs.TransformValues(
        job_name="churn-dev-churn", model_name="m", input_uri=f"s3://{RAW}/to-score/",
        output_uri=f"s3://{SCORES}/churn/", key_arn=KEY, instance_type="ml.m5.2xlarge", instance_count=2,
        volume_encrypted=True, tags=(("owner", "ml-platform"),))
    (step,) = batch_jobs.pipeline_definition(job)["Steps"]
    args = step["Arguments"]
    assert step["Type"] == "Transform" and args["ModelName"] == "m"
    assert args["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix",
                                                                    "S3Uri": f"s3://{RAW}/to-score/"}
    output = args["TransformOutput"]
    assert output["KmsKeyId"] == KEY
    assert output["S3OutputPath"]["Std:Join"]["Values"] == [f"s3://{SCORES}/churn/",
                                                            {"Get": "Execution.PipelineExecutionId"}, "/"]
    assert args["TransformResources"] == {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 2, "VolumeKmsKeyId": KEY}
    local = batch_jobs.pipeline_definition(batch_jobs.TransformValues(**{**job.__dict__, "volume_encrypted": False}))
    assert "VolumeKmsKeyId" not in local["Steps"][0]["Arguments"]["TransformResources"]


def test_the_schedule_starts_the_batch_pipeline_in_its_time_zone(plan):
    schedule = named(plan)["batch-schedule-churn"]
    inputs = schedule["inputs"]
    assert inputs["name"] == "churn-dev-churn-batch"
    assert inputs["scheduleExpression"] == "cron(0 5 * * ? *)"
    assert inputs["scheduleExpressionTimezone"] == "Europe/Amsterdam"
    assert schedule["dependencies"]["target"] == ["batch-pipeline-churn", "governance-role-automation"]
    assert "batch-grant-automation" in schedule["depends_on"]


def test_new_input_objects_start_the_pipeline(plan):
    resources = named(plan)
    pattern = json.loads(resources["batch-rule-batchdata-churn"]["inputs"]["eventPattern"])
    assert pattern["detail"] == {"bucket": {"name": [RAW]}, "object": {"key": [{"prefix": "to-score/"}]}}
    assert resources["batch-target-batchdata-churn"]["dependencies"]["arn"] == ["batch-pipeline-churn"]
    # The storage stage sends the input bucket's events to EventBridge.
    assert resources["storage-notification-raw"]["inputs"]["eventbridge"] is True


def test_a_failed_run_alarms_on_the_monitoring_topic(plan):
    resources = named(plan)
    pattern = json.loads(resources["batch-rule-failed-churn"]["inputs"]["eventPattern"])
    assert pattern["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert pattern["detail"] == {
        "pipelineArn": [f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/churn-dev-churn-batch"],
        "currentPipelineExecutionStatus": ["Failed"]}
    alarm = resources["batch-alarm-churn"]
    assert alarm["inputs"]["name"] == "churn-dev-churn-batch"
    assert alarm["inputs"]["dimensions"] == {"RuleName": "churn-dev-churn-batchfailed"}
    assert alarm["dependencies"]["alarmActions"] == ["monitoring-topic"]
    # The key and topic policies let the stack's alarms (by name prefix) publish: this one has it.
    assert alarm["inputs"]["name"].startswith(stack_prefix(BACKEND.namer(spec_from(batch_spec()),
                                                                         spec_from(batch_spec()).clouds.aws),
                                                           "aws.cloudwatch.alarm"))


def test_the_batch_never_touches_the_training_pipeline(plan):
    without = batch_spec()
    del without["models"][0]["batch"]
    before = named(plan_for("aws", without))["training-pipeline-churn"]
    assert named(plan)["training-pipeline-churn"] == before


# --- least privilege ---------------------------------------------------------------------------
def group_grant(**overrides: Any) -> dict[str, Any]:
    spec = spec_from(batch_spec())
    namer = BACKEND.namer(spec, spec.clouds.aws)
    args = dict(partition="aws", region="us-east-1", account_id=ACCOUNT, namer=namer, models=list(spec.models),
                key_arn=KEY, physical={"raw": RAW, "scores": SCORES}, artifacts=ARTIFACTS)
    return batch_jobs.group_grant(**{**args, **overrides})


def test_the_group_identity_runs_only_the_stacks_transform_jobs_and_writes_only_its_outputs():
    statements = {s["Sid"]: s for s in group_grant()["Statement"]}
    assert statements["RunTransformJobs"]["Action"] == ["sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                                                        "sagemaker:StopTransformJob", "sagemaker:AddTags"]
    assert statements["RunTransformJobs"]["Resource"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:transform-job/churn-dev-*"
    assert statements["WritePredictions"] == {"Sid": "WritePredictions", "Effect": "Allow",
                                              "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                                              "Resource": [f"arn:aws:s3:::{SCORES}/churn/*"]}
    assert statements["UseStackKey"]["Resource"] == KEY
    assert statements["PullScoringImages"]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/churn-dev-*-serving",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/churn-dev-*-training"]
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a.endswith("*") for a in actions)
        if statement["Resource"] == "*":  # only what IAM cannot scope
            assert statement["Sid"] in {"LogInToEcr", "DescribeNetwork"}


def test_the_group_identity_reads_the_batch_input_through_its_data_policy(plan):
    data = json.loads(named(plan)["governance-groupdata-churn"]["inputs"]["policy"])
    reads = next(s for s in data["Statement"] if s.get("Sid") == "ReadData")["Resource"]
    assert f"arn:aws:s3:::{RAW}/*" in reads or f"arn:aws:s3:::{RAW}/to-score/*" in reads
    assert not any(SCORES in r for s in data["Statement"] for r in (s["Resource"] if isinstance(s["Resource"], list)
                                                                    else [s["Resource"]]))


def test_the_automation_identity_only_starts_batch_pipelines(plan):
    grant = named(plan)["batch-grant-automation"]["inputs"]
    assert grant["role"] == "churn-dev-automation-us-east-1"
    assert json.loads(grant["policy"])["Statement"] == [{
        "Sid": "StartStackBatchPipelines", "Effect": "Allow", "Action": ["sagemaker:StartPipelineExecution"],
        "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:pipeline/churn-dev-*-batch"}]


def test_a_model_uri_outside_the_stack_is_readable_and_counted_in_the_budget():
    spec = spec_from(batch_spec())
    uri = "s3://acme-models/churn/model.tar.gz"
    model = spec.models[0].model_copy(update={"batch": spec.models[0].batch.model_copy(update={"model_uri": uri})})
    statements = group_grant(models=[model])["Statement"]
    assert {"Sid": "ReadModel0", "Effect": "Allow", "Action": ["s3:GetObject"],
            "Resource": "arn:aws:s3:::acme-models/churn/model.tar.gz"} in statements
    without = batch_spec()
    del without["models"][0]["batch"]

    def group_inline(data: dict[str, Any]) -> int:
        spec = spec_from(data)
        return next(b.inline for b in budgets(spec, BACKEND.namer(spec, spec.clouds.aws), spec.clouds.aws) if b.models)

    assert group_inline(batch_spec()) > group_inline(without)


# --- private network -----------------------------------------------------------------------
def test_in_a_private_network_the_batch_model_runs_in_the_stacks_vpc(private_plan):
    model = named(private_plan)["batch-model-churn"]
    assert set(model["inputs"]["vpcConfig"]) == {"securityGroupIds", "subnets"}
    assert model["dependencies"]["vpcConfig"]
    vpc = "vpc-0123456789abcdef0"
    sids = {s["Sid"] for s in group_grant(vpc_id=vpc)["Statement"]}
    assert "DescribeNetwork" in sids
    assert not {"DescribeNetwork"} & {s["Sid"] for s in group_grant()["Statement"]}
    assert "batch-groupgrant-churn" in named(private_plan)


# --- validation ------------------------------------------------------------------------------
def with_batch(**changes: Any) -> dict[str, Any]:
    data = batch_spec()
    data["models"][0]["batch"].update(changes)
    return data


@pytest.mark.parametrize(("data", "path", "severity", "words"), [
    (with_batch(schedule="0 5 1 * 1"), "models[0].batch.schedule", "error", "day of the month OR a day of the week"),
    (with_batch(model_uri="https://example.com/m.tar.gz"), "models[0].batch.model_uri", "error", "S3 only"),
    (with_batch(model_uri=f"s3://{ARTIFACTS}/data-capture/churn/x"), "models[0].batch.model_uri", "error",
     "outside the trained models"),
    (with_batch(compute={"cpus": 192, "memory_gib": 2048}), "models[0].batch.compute", "error", "no transform"),
    (with_batch(max_runtime="2h"), "models[0].batch.max_runtime", "warning", "no time limit"),
    (batch_spec(), "models[0].batch.model_uri", "warning", "latest approved version"),
])
def test_what_batch_transform_cannot_do_is_located(data, path, severity, words):
    found = [p for p in at(problems(data), path) if p.severity == severity]
    assert found and words in found[0].message and found[0].hint


def test_a_batch_without_any_image_is_an_error():
    data = batch_spec()
    model = data["models"][0]
    del model["serving"], model["training"], model["registry"]
    model["batch"]["model_uri"] = f"s3://{ARTIFACTS}/models/churn/model.tar.gz"
    (problem,) = [p for p in at(problems(data), "models[0].batch") if p.severity == "error"]
    assert "inference image" in problem.message and "serving" in problem.hint


def test_without_a_channel_validate_warns_that_failures_notify_nobody():
    data = batch_spec()
    del data["monitoring"]
    (problem,) = at(problems(data), "monitoring")
    assert problem.severity == "warning" and "nobody is told" in problem.message
    assert not [r for r in plan_for("aws", data)["resources"] if r["name"] == "batch-alarm-churn"]


def test_an_explicit_max_runtime_only_warns():
    assert not at(problems(batch_spec()), "models[0].batch.max_runtime")


# --- diffs -----------------------------------------------------------------------------------
def test_changing_a_batch_schedule_updates_only_that_schedule(plan):
    changed = plan_for("aws", with_batch(schedule="30 6 * * 1"))
    changes = diff_plans(plan, changed)
    assert changes.create == [] and changes.delete == []
    assert [(u.name, sorted(u.paths)) for u in changes.update] == [
        ("batch-schedule-churn", ["inputs.description", "inputs.scheduleExpression"])]


def test_in_a_split_spec_the_model_stack_holds_the_batch_and_the_shared_stack_the_automation_grant():
    data = batch_spec()
    data["split"] = {"enabled": True}
    document = plan_for("aws", data)
    where = {r["name"]: r["part"] for r in document["resources"] if r["stage"] == "batch" and r["custom"]}
    assert where["batch-grant-automation"] == "shared"
    assert {where[n] for n in ("batch-pipeline-churn", "batch-schedule-churn", "batch-groupgrant-churn",
                               "batch-alarm-churn")} == {"churn"}
