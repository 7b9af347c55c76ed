"""AWS data preparation: a scheduled SageMaker pipeline of one Processing step per model.

Plans shared by the module: a public spec and its private-network twin.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws import data_prep_jobs as prep
from mlops_infra.backends.aws.naming import prep_job_prefix, prep_pipeline_name
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"
RULE = "aws:cloudwatch/eventRule:EventRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

SPEC: dict[str, Any] = {
    **copy.deepcopy(BASE_SPEC),
    "storage": {"buckets": [{"name": "raw"}, {"name": "features"}]},
    "models": [{
        "name": "churn",
        "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"},
                     "inputs": [{"bucket": "features", "prefix": "prepared/"}]},
        "data_prep": {"image": "ghcr.io/acme/prep:1.0", "compute": {"size": "cpu-large"},
                      "inputs": [{"bucket": "raw", "prefix": "churn/"}],
                      "output": {"bucket": "features", "prefix": "prepared/"},
                      "schedule": "0 1 * * 0", "timezone": "Europe/Amsterdam", "on_new_data": True,
                      "environment": {"MODE": "full"}},
    }],
    "monitoring": {"notify": {"emails": ["ml@example.com"]}},
}


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", SPEC)


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data["governance"] = {"network": "private"}
    return plan_for("aws", data)



def namer() -> Any:
    spec = spec_from(SPEC)
    return BACKEND.namer(spec, spec.clouds.aws)


def values(**changes: Any) -> prep.PrepValues:
    base = dict(job_name="churn-dev-churn-prep", image="img", role_arn="ROLE", key_arn="KEY",
                instance_type="ml.m5.2xlarge", volume_encrypted=True, max_runtime=14400,
                inputs=("s3://raw/churn/",), output="s3://features/prepared/", environment=(("MODE", "full"),),
                tags=(("owner", "x"),))
    return prep.PrepValues(**{**base, **changes})


def test_each_model_gets_its_own_pipeline_not_the_training_one(plan):
    pipelines = {r["name"]: r for r in resources_of(plan, PIPELINE)}
    assert set(pipelines) == {"training-pipeline-churn", "data_prep-pipeline-churn"}
    prepare = pipelines["data_prep-pipeline-churn"]
    assert prepare["stage"] == "data_prep"
    assert prepare["inputs"]["pipelineName"] == prep_pipeline_name(namer(), "churn") == "churn-dev-churn-prep"
    # It runs as the model's group identity (its principal waits for the group's grants).
    assert prepare["dependencies"]["roleArn"] == ["governance-group-churn", "governance-groupattach-training-churn",
                                                  "governance-groupdata-churn"]
    assert "governance-key" in prepare["dependencies"]["pipelineDefinition"]


def test_the_processing_step_is_encrypted_isolated_and_writes_where_training_reads():
    doc = prep.pipeline_definition(values())
    (step,) = doc["Steps"]
    assert step["Type"] == "Processing"
    args = step["Arguments"]
    assert args["ProcessingJobName"] == "churn-dev-churn-prep"
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "KEY"
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "KEY"
    assert args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://features/prepared/"
    assert [i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]] == ["s3://raw/churn/"]
    assert args["NetworkConfig"] == {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}
    assert args["Environment"] == {"MODE": "full"} and args["RoleArn"] == "ROLE"
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}
    private = prep.processing_request(values(vpc={"subnets": ["s1"], "security_group_ids": ["g1"]}))
    assert private["NetworkConfig"]["VpcConfig"] == {"SecurityGroupIds": ["g1"], "Subnets": ["s1"]}


def test_the_processing_request_matches_sagemakers_model():
    botocore = pytest.importorskip("botocore.session")
    model = botocore.get_session().get_service_model("sagemaker")
    members = set(model.operation_model("CreateProcessingJob").input_shape.members)
    assert set(prep.processing_request(values())) <= members


def test_schedule_and_new_data_start_the_pipeline_as_automation(plan):
    (schedule,) = resources_of(plan, SCHEDULE)
    assert schedule["name"] == "data_prep-schedule-churn"
    inputs = schedule["inputs"]
    assert inputs["scheduleExpression"] == "cron(0 1 ? * 1 *)"
    assert inputs["scheduleExpressionTimezone"] == "Europe/Amsterdam"
    assert schedule["dependencies"]["target"] == ["data_prep-pipeline-churn", "governance-role-automation"]
    rule = by_name(plan, "data_prep-rule-prepdata-churn")
    assert rule["inputs"]["name"] == "churn-dev-churn-prepdata"
    target = by_name(plan, "data_prep-target-prepdata-churn")
    assert target["dependencies"]["arn"] == ["data_prep-pipeline-churn"]
    # The raw bucket sends its events to EventBridge so that the rule sees new objects.
    assert any(r["name"] == "storage-notification-raw" for r in plan["resources"])


def test_failed_runs_alarm_to_the_stack_topic(plan):
    failed = by_name(plan, "data_prep-failed-churn")
    assert failed["dependencies"]["eventPattern"] == ["data_prep-pipeline-churn"]
    alarm = by_name(plan, "data_prep-alarm-failed-churn")
    assert alarm["inputs"]["name"] == "churn-dev-churn-prep-failed"
    assert alarm["inputs"]["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:churn-dev-alerts"]
    assert alarm["inputs"]["dimensions"] == {"RuleName": "churn-dev-churn-prepfailed"}
    pattern = prep.failed_pattern("arn:p")
    assert pattern["detail"] == {"pipelineArn": ["arn:p"], "currentPipelineExecutionStatus": ["Failed"]}


def test_grants_are_scoped_to_the_stacks_jobs_and_the_output_prefix(plan):
    doc = prep.prep_grants(partition="aws", region="us-east-1", account_id="123456789012",
                           job_prefix="churn-dev-", key_arn="KEY", outputs=[("fb", "prepared/")],
                           repository="arn:aws:ecr:us-east-1:123456789012:repository/churn-dev-*-prep")
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["RunPreparationJobs"]["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:processing-job/churn-dev-*"
    assert sids["WritePreparedData"]["Resource"] == ["arn:aws:s3:::fb/prepared/*"]
    assert sids["UseStackKey"]["Resource"] == "KEY"
    star = [s for s in doc["Statement"] if s["Resource"] == "*"]
    assert [s["Action"] for s in star] == [["ecr:GetAuthorizationToken"]]
    automation = json.loads(by_name(plan, "data_prep-grant-automation")["inputs"]["policy"])
    assert automation["Statement"][0]["Action"] == ["sagemaker:StartPipelineExecution"]
    assert automation["Statement"][0]["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-dev-*-prep"
    assert by_name(plan, "data_prep-grant-churn")["dependencies"]["role"] == ["governance-group-churn"]


def test_private_network_puts_the_grant_in_the_vpc(private):
    grant = by_name(private, "data_prep-grant-churn")
    assert sorted(grant["dependencies"]["policy"]) == ["governance-key", "governance-vpc"]
    pipeline = by_name(private, "data_prep-pipeline-churn")
    assert any(d.startswith("governance-subnet") for d in pipeline["dependencies"]["pipelineDefinition"])


def test_job_names_fit_and_share_the_stacks_prefix():
    name = prep_job_prefix(namer(), "a" * 60)
    assert len(name) <= 40 and name.startswith("churn-dev-")


def test_validation_locates_image_and_schedule_problems():
    data = copy.deepcopy(SPEC)
    data["models"][0]["data_prep"]["image"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prep:1"
    data["models"][0]["data_prep"]["schedule"] = "0 1 1 * 0"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    found = {p.dotted_path: p for p in raised.value.problems if p.severity == "error"}
    assert "another region" in found["models[0].data_prep.image"].message
    assert found["models[0].data_prep.schedule"].hint and found["models[0].data_prep.schedule"].line is not None
    ok = check_text(yaml.safe_dump(SPEC, sort_keys=False), "spec.yaml", clouds=["aws"])
    warning = next(p for p in ok.warnings if p.dotted_path == "models[0].data_prep.image")
    assert "churn-dev-churn-prep:1.0" in warning.message


def test_validate_counts_the_lifecycle_grants_against_the_roles_inline_limit():
    from mlops_infra.backends.aws import governance_grants as grants
    from mlops_infra.backends.aws import lifecycle_grants, policies

    spec = spec_from(SPEC)
    settings = spec.clouds.aws
    key = policies.key_arn("aws", settings.region, settings.account_id, grants.KEY_ID_PLACEHOLDER)
    (group,) = grants.groups(spec, namer(), settings.region)
    docs = lifecycle_grants.group_documents(spec, namer(), settings, group.models, key)
    assert [s["Sid"] for d in docs for s in d["Statement"]][0] == "RunPreparationJobs"
    budget = next(b for b in grants.budgets(spec, namer(), settings) if b.role == group.role)
    data = policies.policy_size(grants.group_data(spec, namer(), settings, group))
    assert budget.inline == data + sum(policies.policy_size(d) for d in docs)
