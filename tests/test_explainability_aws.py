"""AWS explainability: Clarify explainability and bias monitoring, model-quality monitoring.

Plans shared by the module: one model with all three signals, and its private-network twin.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import explainability_jobs as signals
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of

DEFINITION = "aws:cloudcontrol/resource:Resource"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

BASELINE = {"bucket": "features", "prefix": "churn/baseline/"}
SPEC: dict[str, Any] = {
    **copy.deepcopy(BASE_SPEC),
    "storage": {"buckets": [{"name": "raw"}, {"name": "features"}, {"name": "labels"}]},
    "models": [{
        "name": "churn",
        "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
        "serving": {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"},
                    "data_capture": {"sampling_percent": 10}},
        "monitoring": {
            "explainability": {"baseline": BASELINE, "schedule": "daily"},
            "bias": {"facet": "age-band", "label": "churned", "baseline": BASELINE, "schedule": "hourly"},
            "model_quality": {"ground_truth": {"bucket": "labels", "prefix": "truth/"}, "problem_type": "binary",
                              "metric": "auc", "threshold": 0.75},
        },
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



def job(signal: str, **changes: Any) -> signals.SignalJob:
    base: dict[str, Any] = dict(
        signal=signal, name="n", image="img", endpoint="ep", baseline="s3://b/base/", output="s3://a/out/",
        ground_truth="s3://l/truth/" if signal != "explainability" else None,
        problem_type="BinaryClassification" if signal == "model_quality" else None, key_arn="KEY", role_arn="ROLE",
        instance_type="ml.m5.xlarge", volume_encrypted=True)
    return signals.SignalJob(**{**base, **changes})


def test_each_signal_gets_a_definition_a_schedule_and_an_alarm(plan):
    definitions = {r["name"]: r for r in resources_of(plan, DEFINITION)}
    assert {d["inputs"]["typeName"] for d in definitions.values()} == {
        "AWS::SageMaker::ModelExplainabilityJobDefinition", "AWS::SageMaker::ModelBiasJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition"}
    schedules = {r["inputs"]["name"]: r["inputs"]["monitoringScheduleConfig"] for r in resources_of(plan, SCHEDULE)}
    assert schedules["churn-dev-churn-explainability"]["monitoringType"] == "ModelExplainability"
    assert schedules["churn-dev-churn-bias"]["monitoringType"] == "ModelBias"
    assert schedules["churn-dev-churn-model-quality"]["monitoringType"] == "ModelQuality"
    assert schedules["churn-dev-churn-bias"]["scheduleConfig"]["scheduleExpression"] == "cron(0 * ? * * *)"
    for signal in signals.SIGNALS:
        alarm = by_name(plan, f"explainability-alarm-{signal}-churn")
        assert alarm["dependencies"]["alarmActions"] == ["monitoring-topic"]
        assert alarm["dependencies"]["dimensions"] == [f"explainability-violations-{signal}-churn"]
        schedule = by_name(plan, f"explainability-schedule-{signal}-churn")
        assert schedule["dependencies"]["monitoringScheduleConfig"] == [f"explainability-definition-{signal}-churn"]


def test_definitions_read_captured_data_and_encrypt_with_the_stack_key(plan):
    definition = by_name(plan, "explainability-definition-bias-churn")
    deps = definition["dependencies"]["desiredState"]
    assert {"governance-key", "serving-endpoint-churn", "storage-bucket-labels", "storage-bucket-features"} <= set(deps)
    state = signals.definition(job("bias"))
    assert state["ModelBiasJobInput"]["EndpointInput"]["EndpointName"] == "ep"
    assert state["ModelBiasJobInput"]["GroundTruthS3Input"] == {"S3Uri": "s3://l/truth/"}
    assert state["ModelBiasJobOutputConfig"]["KmsKeyId"] == "KEY"
    assert state["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "KEY"
    assert state["ModelBiasAppSpecification"]["ConfigUri"] == "s3://b/base/analysis_config.json"
    assert state["ModelBiasBaselineConfig"]["ConstraintsResource"]["S3Uri"] == "s3://b/base/constraints.json"
    assert state["NetworkConfig"] == {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}
    quality = signals.definition(job("model_quality"))
    assert quality["ModelQualityAppSpecification"] == {"ImageUri": "img", "ProblemType": "BinaryClassification"}


@pytest.mark.parametrize("signal", signals.SIGNALS)
def test_definitions_hold_what_sagemakers_create_request_takes(signal):
    botocore = pytest.importorskip("botocore.session")
    model = botocore.get_session().get_service_model("sagemaker")
    prefix = signals.KINDS[signal][1]
    members = set(model.operation_model(f"Create{prefix}JobDefinition").input_shape.members)
    assert set(signals.definition(job(signal))) <= members


def test_clarify_images_come_from_the_sourced_facts():
    assert signals.clarify_image("aws", "eu-west-1") == (
        "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0")
    assert signals.clarify_image("aws", "ap-southeast-5") is None


def test_the_group_identity_gets_a_scoped_grant(plan):
    grant = by_name(plan, "explainability-grant-churn")
    assert grant["dependencies"]["role"] == ["governance-group-churn"]
    doc = signals.signal_grants(partition="aws", region="eu-west-1", account_id="123456789012", artifacts="art",
                                models=["churn"], key_arn="KEY")
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["ReadCapturedRequests"]["Resource"] == ["arn:aws:s3:::art/data-capture/churn/*"]
    assert sids["WriteReports"]["Resource"] == ["arn:aws:s3:::art/monitoring/churn/*"]
    assert "arn:aws:ecr:eu-west-1:131013547314:repository/sagemaker-clarify-processing" in sids["PullMonitorImages"][
        "Resource"]
    assert [s["Action"] for s in doc["Statement"] if s["Resource"] == "*"] == [["ecr:GetAuthorizationToken"]]


def test_private_network_runs_monitors_in_the_vpc(private):
    definition = by_name(private, "explainability-definition-explainability-churn")
    assert any(d.startswith("governance-subnet") for d in definition["dependencies"]["desiredState"])
    grant = by_name(private, "explainability-grant-churn")
    assert "governance-vpc" in grant["dependencies"]["policy"]
    state = signals.definition(job("explainability", vpc={"subnets": ["s"], "security_group_ids": ["g"]}))
    assert state["NetworkConfig"]["VpcConfig"] == {"SecurityGroupIds": ["g"], "Subnets": ["s"]}


def problems_of(data: dict[str, Any]) -> dict[str, Any]:
    try:
        checked = check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    except SpecInvalid as invalid:
        return {p.dotted_path: p for p in invalid.problems}
    return {p.dotted_path: p for p in checked.warnings}


def test_the_baselines_say_what_the_spec_asks_as_warnings():
    found = problems_of(SPEC)
    quality = found["models[0].monitoring.model_quality.metric"]
    assert quality.severity == "warning" and "auc" in quality.message and "0.75" in quality.message
    assert "'age-band'" in found["models[0].monitoring.bias.facet"].message
    assert "0.1" in found["models[0].monitoring.explainability.max_attribution_drift"].message


def test_what_sagemaker_cannot_monitor_is_a_located_error():
    data = copy.deepcopy(SPEC)
    data["models"][0]["monitoring"]["explainability"]["schedule"] = "weekly"
    del data["models"][0]["monitoring"]["model_quality"]
    found = problems_of(data)
    assert found["models[0].monitoring.explainability.schedule"].severity == "error"
    bias = found["models[0].monitoring.bias.label"]
    assert bias.severity == "error" and "ground truth" in bias.message and "model_quality" in bias.hint
    data = copy.deepcopy(SPEC)
    data["clouds"]["aws"]["region"] = "il-central-1"  # a region with no known Clarify image
    found = problems_of(data)
    missing = found["models[0].monitoring.explainability"]
    assert missing.severity == "error" and "Clarify" in missing.message and "clarify.json" in missing.hint
    assert "models[0].monitoring.bias" in found
