"""AWS monitoring and retraining: SNS, CloudWatch alarms and dashboard, Model Monitor, EventBridge.

Plans are shared through module-scoped fixtures (6 plans in this file: the two examples, a
rich spec, a variant adding a model, a variant without dashboard or notifications, and a replan
for determinism). Values only the cloud knows show as "(known after apply)"; wiring is then
asserted through `dependencies`. The cron translation is checked by parsing the EventBridge
Scheduler expression back (a small parser of that format below) and comparing the minutes it
fires at with the neutral cron's, minute by minute over six weeks.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import inspect
import json
import re
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import governance_grants as grants
from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import retraining_triggers as triggers
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    AwsNamer,
    MONITOR_ALARM_KINDS,
    STYLES,
    alarm_name,
    bucket_name,
    pipeline_name,
    stack_prefix,
)
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.naming import Namer, name_rules
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.validate import check_text
from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron
from mlops_infra.stages.storage import ARTIFACTS
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "aws"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
JOB_DEFINITION = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
MONITORING_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"

ACCOUNT = "123456789012"
BASE = copy.deepcopy(BASE_SPEC)
BASE["clouds"] = {"aws": {**BASE["clouds"]["aws"], "account_id": ACCOUNT}}  # other backends may be mid-change
TRAIN = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}}
SERVE = {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"}}
ARTIFACT_BUCKET = bucket_name(BACKEND.namer(spec_from(BASE), spec_from(BASE).clouds.aws), ARTIFACTS)

RICH: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "storage": {"buckets": [{"name": "raw"}, {"name": "features"}, {"name": "labels"}, {"name": "scratch"}]},
    "models": [
        {
            "name": "churn",
            "training": {**TRAIN, "inputs": ["raw"]},
            "serving": {**SERVE, "data_capture": {"sampling_percent": 20}},
            "monitoring": {"latency_p99_ms": 300, "error_rate_percent": 1.5, "min_invocations_per_hour": 100,
                           "drift": {"baseline": {"bucket": "features", "prefix": "churn/baseline/"},
                                     "schedule": "hourly"}},
            "retraining": {"schedule": "15 6 * * 1-5", "timezone": "America/New_York",
                           "on_new_data": {"bucket": "raw", "prefix": "churn/"}, "on_drift": True},
        },
        {
            "name": "ltv",
            "training": {**TRAIN, "inputs": ["features"]},
            "serving": SERVE,
            "monitoring": {"latency_p99_ms": 500},
            "retraining": {"on_new_data": "labels"},
        },
        {   # served, not monitored: a dashboard row, no alarm
            "name": "scorer",
            "serving": {**SERVE, "model_uri": f"s3://{ARTIFACT_BUCKET}/models/scorer/v1/"},
        },
        {   # trained, not served: retrains monthly
            "name": "batch",
            "training": {**TRAIN, "inputs": ["raw"]},
            "retraining": {"schedule": "0 0 1 * *"},
        },
    ],
    "monitoring": {"notify": {"emails": ["ml-oncall@example.com", "data@example.com", "ml-oncall@example.com"],
                              "webhook": "https://hooks.example.com/alerts"}},
}


# --- plans (6 in all) --------------------------------------------------------------------



@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return plan_for("aws", RICH)


@pytest.fixture(scope="module")
def added() -> dict[str, Any]:
    data = copy.deepcopy(RICH)
    data["models"].append({
        "name": "fresh",
        "training": {**TRAIN, "inputs": ["raw"]},
        "serving": {**SERVE, "data_capture": {"sampling_percent": 50}},
        "monitoring": {"latency_p99_ms": 200, "error_rate_percent": 2,
                       "drift": {"baseline": {"bucket": "features", "prefix": "fresh/"}}},
        "retraining": {"schedule": "0 4 * * 0", "on_new_data": {"bucket": "raw", "prefix": "fresh/"},
                       "on_drift": True},
    })
    return plan_for("aws", data)


@pytest.fixture(scope="module")
def quiet() -> dict[str, Any]:
    data = copy.deepcopy(RICH)
    data["monitoring"] = {"dashboard": False}
    return plan_for("aws", data)


# --- helpers -------------------------------------------------------------------------------
def named(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def stage_types(plan: dict[str, Any], stage: str) -> set[str]:
    return {r["type"] for r in plan["resources"] if r["stage"] == stage and r["custom"]}


def models_of(stack: str) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())
    return {m["name"]: m for m in raw["models"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def doc(resource: dict[str, Any], field: str = "policy") -> dict[str, Any]:
    text = resource["inputs"][field]
    assert text != UNKNOWN, f"{resource['name']}.{field} should be known before deployment"
    return json.loads(text)


def allowed(document: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in as_list(document["Statement"]):
        if s["Effect"] == "Allow":
            for action in as_list(s["Action"]):
                out.setdefault(action, set()).update(as_list(s["Resource"]))
    return out


def alarms_of(plan: dict[str, Any], model: str) -> dict[str, dict[str, Any]]:
    """kind -> the model's alarm resource."""
    found = {}
    for kind in MONITOR_ALARM_KINDS:
        resource = named(plan).get(f"monitoring-alarm-{kind}-{model}")
        if resource is not None:
            found[kind] = resource
    return found


# --- the examples: every kind of resource, wired ------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_examples_have_notifications_alarms_dashboard_drift_and_three_triggers(stack, dev, prod):
    plan = {"dev": dev, "prod": prod}[stack]
    # (The drift jobs' grants are their group identity's, made by governance.)
    assert stage_types(plan, "monitoring") == {TOPIC, TOPIC_POLICY, SUBSCRIPTION, ALARM, DASHBOARD, JOB_DEFINITION,
                                               MONITORING_SCHEDULE, RULE}
    assert stage_types(plan, "retraining") == {ROLE_POLICY, SCHEDULE, RULE, TARGET}
    resources = named(plan)
    for name, model in models_of(stack).items():
        retrain = model.get("retraining", {})
        assert (f"retraining-schedule-{name}" in resources) == bool(retrain.get("schedule"))
        assert (f"retraining-rule-newdata-{name}" in resources) == bool(retrain.get("on_new_data"))
        assert (f"retraining-rule-drift-{name}" in resources) == bool(retrain.get("on_drift"))
        assert (f"monitoring-schedule-{name}" in resources) == bool(model.get("monitoring", {}).get("drift"))
    emails = {r["inputs"]["endpoint"] for r in resources_of(plan, SUBSCRIPTION) if r["inputs"]["protocol"] == "email"}
    notify = {"dev": ["ml-oncall@example.com"], "prod": ["ml-oncall@example.com", "data-platform@example.com"]}
    assert emails == set(notify[stack])
    assert plan["outputs"]["monitoring"]["notification_channel"] == UNKNOWN  # the topic's ARN


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_alarm_watches_its_models_endpoint_and_notifies_the_channel(stack, dev, prod):
    plan = {"dev": dev, "prod": prod}[stack]
    resources = named(plan)
    seen = 0
    for name in models_of(stack):
        for kind, alarm in alarms_of(plan, name).items():
            inputs, deps = alarm["inputs"], alarm["dependencies"]
            assert inputs["name"] == alarm_name(namer_of(stack), name, kind)
            assert deps["alarmActions"] == ["monitoring-topic"]
            if kind == "drift":
                # The drift alarm counts the violations its model's monitoring schedule reports.
                assert inputs["dimensions"] == {"RuleName": resources[f"monitoring-violations-{name}"]["inputs"]["name"]}
                assert deps["dimensions"] == [f"monitoring-violations-{name}"]
                continue
            seen += 1
            endpoint = resources[f"serving-endpoint-{name}"]["inputs"]["name"]
            queries = inputs.get("metricQueries") or [{"metric": inputs}]
            for query in queries:
                if "metric" in query:
                    assert query["metric"]["dimensions"] == {"EndpointName": endpoint, "VariantName": endpoints.VARIANT}
            field = "metricQueries" if "metricQueries" in inputs else "dimensions"
            assert deps[field] == [f"serving-endpoint-{name}"]
            assert deps["okActions"] == ["monitoring-topic"]
    assert seen == sum(len([k for k in ("latency_p99_ms", "error_rate_percent", "min_invocations_per_hour")
                            if k in m.get("monitoring", {})]) for m in models_of(stack).values())


def namer_of(stack_or_data: str | dict[str, Any]) -> Namer:
    if isinstance(stack_or_data, str):
        import yaml

        raw = yaml.safe_load((ROOT / "stacks" / f"{stack_or_data}.yaml").read_text())
        return AwsNamer(account_id=raw["clouds"]["aws"]["account_id"], region=raw["clouds"]["aws"]["region"],
                        cloud="aws", project=raw["project"], environment=raw["environment"], styles=STYLES,
                        scope=raw["clouds"]["aws"]["region"])
    parsed = spec_from(stack_or_data)
    return BACKEND.namer(parsed, parsed.clouds.aws)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_serving_rolls_back_on_exactly_the_monitoring_alarms(stack, dev, prod):
    plan = {"dev": dev, "prod": prod}[stack]
    for endpoint in resources_of(plan, ENDPOINT):
        model = endpoint["name"].removeprefix("serving-endpoint-")
        rollback = {a["alarmName"] for a in endpoint["inputs"]["deploymentConfig"]
                    .get("autoRollbackConfiguration", {}).get("alarms", [])}
        created = {a["inputs"]["name"] for kind, a in alarms_of(plan, model).items() if kind in ("latency", "errors")}
        assert rollback == created and rollback


def test_latency_thresholds_are_in_microseconds(dev, prod, rich):
    for plan, model, ms in ((dev, "churn-classifier", 300), (prod, "churn-classifier", 250),
                            (prod, "ltv-regressor", 500), (rich, "churn", 300), (rich, "ltv", 500)):
        latency = alarms_of(plan, model)["latency"]["inputs"]
        assert (latency["namespace"], latency["metricName"], latency["extendedStatistic"]) == (
            "AWS/SageMaker", "ModelLatency", "p99")
        assert latency["threshold"] == ms * 1000  # ModelLatency is reported in microseconds
        assert latency["comparisonOperator"] == "GreaterThanThreshold"


def test_error_rate_is_metric_math_in_percent_and_traffic_a_floor(rich):
    errors = alarms_of(rich, "churn")["errors"]["inputs"]
    queries = {q["id"]: q for q in errors["metricQueries"]}
    assert queries["error_rate"] == {"id": "error_rate", "expression": "100 * errors / invocations",
                                     "label": "5xx error rate (%)", "returnData": True}
    assert queries["errors"]["metric"]["metricName"] == "Invocation5XXErrors"
    assert queries["invocations"]["metric"]["metricName"] == "Invocations"
    assert all(q["metric"]["stat"] == "Sum" and q["returnData"] is False for q in (queries["errors"],
                                                                                    queries["invocations"]))
    assert errors["threshold"] == 1.5 and "namespace" not in errors  # the math is the metric
    traffic = alarms_of(rich, "churn")["traffic"]["inputs"]
    assert (traffic["metricName"], traffic["statistic"], traffic["period"]) == ("Invocations", "Sum", 3600)
    assert traffic["comparisonOperator"] == "LessThanThreshold" and traffic["threshold"] == 100
    assert traffic["treatMissingData"] == "breaching"  # an hour without requests is an hour below the floor
    assert set(alarms_of(rich, "ltv")) == {"latency"} and alarms_of(rich, "scorer") == {}


# --- the channel: encrypted, publishable by the stack's alarms only ----------------------------
def test_topic_is_encrypted_with_the_governance_key_and_subscribed(rich):
    resources = named(rich)
    topic = resources["monitoring-topic"]
    assert topic["dependencies"]["kmsMasterKeyId"] == ["governance-key"] and topic["inputs"]["name"] == "churn-dev-alerts"
    subscriptions = {(r["inputs"]["protocol"], r["inputs"]["endpoint"]) for r in resources_of(rich, SUBSCRIPTION)}
    assert subscriptions == {("email", "ml-oncall@example.com"), ("email", "data@example.com"),  # deduplicated
                             ("https", "https://hooks.example.com/alerts")}
    assert all(r["dependencies"]["topic"] == ["monitoring-topic"] for r in resources_of(rich, SUBSCRIPTION))


def test_only_the_stacks_alarms_may_publish_and_use_the_key(rich):
    resources = named(rich)
    prefix = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:churn-dev-*"
    (statement,) = doc(resources["monitoring-topicpolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and statement["Action"] == "sns:Publish"
    assert statement["Resource"] == f"arn:aws:sns:us-east-1:{ACCOUNT}:churn-dev-alerts"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": prefix}}
    key = doc(resources["governance-key"])
    (publish,) = [s for s in key["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert publish["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert publish["Condition"]["ArnLike"] == {"aws:SourceArn": prefix}
    for alarm in resources_of(rich, ALARM):
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm['inputs']['name']}", prefix)
    # Without a monitoring stage, CloudWatch gets nothing on the key.
    bare = plan_for("aws", BASE)
    assert not [s for s in doc(named(bare)["governance-key"])["Statement"] if "cloudwatch" in json.dumps(s)]


# --- dashboard ---------------------------------------------------------------------------------
def check_dashboard(body: dict[str, Any], region: str) -> list[dict[str, Any]]:
    """The structure PutDashboard requires (CloudWatch API, Dashboard Body Structure and Syntax):
    a widgets array of at most 500 widgets on a 24-unit grid; metric widgets with a region and
    metrics as [namespace, name, dimension, value, ..., {options}] or [{expression}]."""
    assert set(body) <= {"start", "end", "periodOverride", "widgets", "variables"}
    widgets = body["widgets"]
    assert isinstance(widgets, list) and len(widgets) <= alarms.MAX_WIDGETS
    cells: set[tuple[int, int]] = set()
    for w in widgets:
        assert w["type"] in ("metric", "text") and set(w) == {"type", "x", "y", "width", "height", "properties"}
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24 and 1 <= w["height"] <= 1000 and w["y"] >= 0
        covered = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not covered & cells, f"widget overlaps another: {w}"
        cells |= covered
        if w["type"] == "text":
            assert isinstance(w["properties"]["markdown"], str)
            continue
        props = w["properties"]
        assert props["region"] == region and props["view"] == "timeSeries" and props["title"]
        ids = set()
        for metric in props["metrics"]:
            assert isinstance(metric, list) and metric
            options = metric[-1] if isinstance(metric[-1], dict) else {}
            if "expression" in options:
                assert len(metric) == 1 and re.fullmatch(r"[a-z][A-Za-z0-9_]*", options["id"])
                ids.add(options["id"])
                continue
            names = metric[:-1] if options else metric
            assert len(names) % 2 == 0 and names[0].startswith(("AWS/", "/aws/")), metric
            assert all(isinstance(v, str) and v for v in names)
        for metric in props["metrics"]:
            if "expression" in metric[-1]:
                refs = set(re.findall(r"[a-z][A-Za-z0-9_]*", metric[-1]["expression"]))
                assert refs <= {m[-1].get("id") for m in props["metrics"] if isinstance(m[-1], dict)}
    return widgets


def test_dashboard_has_a_valid_row_per_served_model(rich, dev, prod):
    for plan, region in ((rich, "us-east-1"), (dev, "us-east-1"), (prod, "eu-west-1")):
        (dashboard,) = resources_of(plan, DASHBOARD)
        assert dashboard["inputs"]["dashboardName"] == f"churn-{plan['stack']}-models"
        widgets = check_dashboard(doc(dashboard, "dashboardBody"), region)
        served = sorted(r["name"].removeprefix("serving-endpoint-") for r in resources_of(plan, ENDPOINT))
        assert len(widgets) == 1 + 4 * len(served)
        assert sorted(dashboard["dependencies"]["dashboardBody"]) == [f"serving-endpoint-{m}" for m in served]
        rows: dict[int, list[dict[str, Any]]] = {}
        for w in widgets[1:]:
            rows.setdefault(w["y"], []).append(w)
        assert len(rows) == len(served)
        for model, (_, row) in zip(served, sorted(rows.items())):
            endpoint = named(plan)[f"serving-endpoint-{model}"]["inputs"]["name"]
            titles = [w["properties"]["title"] for w in row]
            assert titles == [f"{model}: invocations", f"{model}: p99 model latency (ms)", f"{model}: errors",
                              f"{model}: instances"]
            assert all(endpoint in json.dumps(w["properties"]["metrics"]) for w in row)
    latency = next(w for w in check_dashboard(doc(resources_of(rich, DASHBOARD)[0], "dashboardBody"), "us-east-1")
                   if w["properties"].get("title") == "churn: p99 model latency (ms)")["properties"]
    assert latency["metrics"][0] == [{"expression": "p99 / 1000", "label": "p99 latency (ms)", "id": "ms"}]
    assert latency["annotations"] == {"horizontal": [{"label": "latency alarm", "value": 300}]}


def test_dashboards_page_at_the_widget_limit_and_can_be_turned_off(quiet):
    many = [f"model-{i:04d}" for i in range(alarms.MODELS_PER_DASHBOARD * 2 + 1)]
    pages = alarms.pages(list(reversed(many)))
    assert [len(p) for p in pages] == [124, 124, 1] and pages[0][0] == "model-0000"
    full = alarms.dashboard_body(region="us-east-1", title="t", variant="primary",
                                 rows=[alarms.Row(m, f"e-{m}", None, None) for m in pages[0]])
    assert len(check_dashboard(full, "us-east-1")) == 497 <= alarms.MAX_WIDGETS
    spec = spec_from(RICH, models=[{"name": m, "serving": {**SERVE, "model_uri": "s3://b/m.tar.gz"}} for m in many])
    (note,) = [p for p in BACKEND.check(spec, spec.clouds.aws) if p.path == ("monitoring", "dashboard")]
    assert note.severity == "warning" and "3 dashboards" in note.message
    assert resources_of(quiet, DASHBOARD) == []
    assert resources_of(quiet, SUBSCRIPTION) == [] and len(resources_of(quiet, TOPIC)) == 1  # alarms still notify it


# --- drift -----------------------------------------------------------------------------------
def test_drift_job_reads_capture_and_baseline_and_writes_encrypted_reports(rich, prod):
    for plan, model, bucket, prefix, cron, region in (
        (rich, "churn", "features", "churn/baseline/", "cron(0 * ? * * *)", "us-east-1"),
        (prod, "churn-classifier", "features", "churn/baseline/", "cron(0 2 ? * * *)", "eu-west-1"),
    ):
        resources = named(plan)
        job = resources[f"monitoring-drift-{model}"]
        inputs, deps = job["inputs"], job["dependencies"]
        physical = resources[f"storage-bucket-{bucket}"]["inputs"]["bucket"]
        assert inputs["dataQualityBaselineConfig"] == {
            "statisticsResource": {"s3Uri": f"s3://{physical}/{prefix}statistics.json"},
            "constraintsResource": {"s3Uri": f"s3://{physical}/{prefix}constraints.json"}}
        assert deps["dataQualityBaselineConfig"] == [f"storage-bucket-{bucket}"]
        # The endpoint's captured requests (SageMaker reads them from the endpoint's capture destination).
        endpoint = resources[f"serving-endpoint-{model}"]
        assert inputs["dataQualityJobInput"]["endpointInput"]["endpointName"] == endpoint["inputs"]["name"]
        assert deps["dataQualityJobInput"] == [f"serving-endpoint-{model}"]
        capture = resources[f"serving-config-{model}"]["inputs"]["dataCaptureConfig"]
        assert capture["destinationS3Uri"].endswith(f"/data-capture/{model}/")
        output = inputs["dataQualityJobOutputConfig"]
        artifacts = plan["outputs"]["storage"]["artifacts_uri"]
        assert output["monitoringOutputs"]["s3Output"]["s3Uri"] == f"{artifacts}/monitoring/{model}/"
        assert deps["dataQualityJobOutputConfig"] == ["governance-key", "storage-bucket-artifacts"]
        assert deps["jobResources"] == ["governance-key"]  # the volume key
        assert inputs["networkConfig"] == {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True}
        # The model's group identity, once it holds its grants (monitoring: the stack's policy attached).
        assert {f"governance-group-{model}", f"governance-groupdata-{model}",
                f"governance-groupattach-monitoring-{model}"} <= set(deps["roleArn"])
        account = alarms.ANALYZER_ACCOUNTS[region]
        assert inputs["dataQualityAppSpecification"]["imageUri"] == (
            f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer")
        schedule = resources[f"monitoring-schedule-{model}"]["inputs"]
        assert schedule["monitoringScheduleConfig"] == {
            "monitoringType": "DataQuality", "monitoringJobDefinitionName": inputs["name"],
            "scheduleConfig": {"scheduleExpression": cron}}
        rule = resources[f"monitoring-violations-{model}"]["inputs"]
        assert json.loads(rule["eventPattern"]) == {
            "source": ["aws.sagemaker"], "detail-type": ["SageMaker Processing Job State Change"],
            "detail": {"MonitoringScheduleArn": [{"suffix": f":monitoring-schedule/{schedule['name']}"}],
                       "ExitMessage": [{"prefix": "CompletedWithViolations"}]}}
    # A model served without data capture gets no drift job (validation reports it).
    assert "monitoring-drift-ltv" not in named(rich)


def test_drift_job_definitions_are_named_by_content(rich, added):
    old, new = named(rich)["monitoring-drift-churn"], named(added)["monitoring-drift-churn"]
    assert old["inputs"]["name"] == new["inputs"]["name"]  # adding a model changes no definition
    assert re.fullmatch(r"churn-dev-churn-[0-9a-f]{12}", old["inputs"]["name"])
    changed = copy.deepcopy(RICH)
    changed["models"][0]["monitoring"]["drift"]["baseline"]["prefix"] = "churn/baseline-v2/"
    moved = named(plan_for("aws", changed))
    assert moved["monitoring-drift-churn"]["inputs"]["name"] != old["inputs"]["name"]
    assert moved["monitoring-schedule-churn"]["inputs"]["name"] == named(rich)["monitoring-schedule-churn"]["inputs"]["name"]


@pytest.mark.parametrize("schedule", ["hourly", "daily"])
def test_model_monitor_cron_fires_like_the_neutral_drift_schedule(schedule):
    expression = alarms.monitor_cron(schedule)
    assert fired(aws_cron(expression), START, 9) == fired(
        parse_cron(DRIFT_SCHEDULES[schedule]).fires, START, 9)
    assert alarms.monitor_cron("weekly") is None  # Model Monitor takes hourly and daily crons only


# --- retraining ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_trigger_starts_its_models_pipeline_as_automation(stack, dev, prod):
    plan = {"dev": dev, "prod": prod}[stack]
    resources = named(plan)
    triggered = 0
    # Batch scoring and data preparation have schedules of their own (tests/test_batch_aws.py,
    # tests/test_data_prep_aws.py): these are the retraining ones.
    for r in (r for r in resources_of(plan, SCHEDULE) if r["stage"] == "retraining"):
        model = r["name"].removeprefix("retraining-schedule-")
        assert sorted(r["dependencies"]["target"]) == ["governance-role-automation", f"training-pipeline-{model}"]
        assert r["depends_on"] == ["retraining-grant-automation"]
        assert r["inputs"]["flexibleTimeWindow"] == {"mode": "OFF"} and r["inputs"]["state"] == "ENABLED"
        triggered += 1
    for r in resources_of(plan, TARGET):
        purpose, model = re.fullmatch(r"retraining-target-(newdata|drift)-(.+)", r["name"]).groups()
        assert r["dependencies"] == {"arn": [f"training-pipeline-{model}"], "roleArn": ["governance-role-automation"],
                                     "rule": [f"retraining-rule-{purpose}-{model}"]}
        assert r["inputs"]["rule"] == resources[f"retraining-rule-{purpose}-{model}"]["inputs"]["name"]
        triggered += 1
    expected = sum(bool(m["retraining"].get(k)) for m in models_of(stack).values() if "retraining" in m
                   for k in ("schedule", "on_new_data", "on_drift"))
    assert triggered == expected


def test_new_data_and_drift_rules_match_the_right_events(rich, prod):
    resources = named(rich)
    raw = resources["storage-bucket-raw"]["inputs"]["bucket"]
    newdata = resources["retraining-rule-newdata-churn"]
    assert json.loads(newdata["inputs"]["eventPattern"]) == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [raw]}, "object": {"key": [{"prefix": "churn/"}]}}}
    assert newdata["dependencies"]["eventPattern"] == ["storage-bucket-raw"]
    whole = json.loads(resources["retraining-rule-newdata-ltv"]["inputs"]["eventPattern"])
    assert whole["detail"] == {"bucket": {"name": [resources["storage-bucket-labels"]["inputs"]["bucket"]]}}
    for plan, model in ((rich, "churn"), (prod, "churn-classifier")):
        drift = json.loads(named(plan)[f"retraining-rule-drift-{model}"]["inputs"]["eventPattern"])
        assert drift == {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                         "detail": {"alarmName": [named(plan)[f"monitoring-alarm-drift-{model}"]["inputs"]["name"]],
                                    "state": {"value": ["ALARM"]}}}
    assert "retraining-rule-drift-ltv" not in resources and "retraining-schedule-ltv" not in resources


def test_buckets_send_events_to_eventbridge_only_where_a_model_retrains_on_them(rich, prod):
    for plan, buckets in ((rich, {"raw", "labels"}), (prod, {"raw"})):
        notifications = resources_of(plan, NOTIFICATION)
        assert {r["name"].removeprefix("storage-notification-") for r in notifications} == buckets
        for r in notifications:
            bucket = r["name"].removeprefix("storage-notification-")
            assert r["inputs"] == {"bucket": named(plan)[f"storage-bucket-{bucket}"]["inputs"]["bucket"],
                                   "eventbridge": True}
            assert r["dependencies"]["bucket"] == [f"storage-bucket-{bucket}"] and r["protect"] is False


def test_schedules_carry_the_translated_cron_and_the_time_zone(rich, prod):
    cases = ((rich, "churn", "15 6 * * 1-5", "America/New_York", "cron(15 6 ? * 2-6 *)"),
             (rich, "batch", "0 0 1 * *", "UTC", "cron(0 0 1 * ? *)"),
             (prod, "churn-classifier", "0 2 * * 0", "Europe/Amsterdam", "cron(0 2 ? * 1 *)"),
             (prod, "ltv-regressor", "30 4 1 * *", "UTC", "cron(30 4 1 * ? *)"))
    for plan, model, neutral, zone, expected in cases:
        inputs = named(plan)[f"retraining-schedule-{model}"]["inputs"]
        assert (inputs["scheduleExpression"], inputs["scheduleExpressionTimezone"]) == (expected, zone)
        assert fired(aws_cron(expected), START, 42) == fired(parse_cron(neutral).fires, START, 42)


# --- the cron translation, parsed back ------------------------------------------------------------
START = datetime(2026, 6, 15)  # six weeks from here cross June/July and every weekday six times
_NAMES = {**{m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())},
          **{d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}}


def _aws_values(text: str, low: int, high: int) -> set[int]:
    if text == "*":
        return set(range(low, high + 1))
    out: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = int(_NAMES.get(start.upper(), start))
            last = int(_NAMES.get(end.upper(), end)) if dash else (high if step else first)
        assert low <= first <= last <= high, item
        out.update(range(first, last + 1, int(step) if step else 1))
    return out


def aws_cron(expression: str) -> Any:
    """A `fires(moment)` for an EventBridge Scheduler cron(minutes hours day-of-month month
    day-of-week year), as its user guide defines it: day-of-week 1-7 = SUN-SAT, exactly one of
    the two day fields is '?'."""
    match = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    assert match, expression
    minute, hour, day, month, weekday, year = match.groups()
    assert (day == "?") != (weekday == "?"), expression
    assert year == "*" and "?" not in (minute, hour, month)
    minutes, hours, months = _aws_values(minute, 0, 59), _aws_values(hour, 0, 23), _aws_values(month, 1, 12)
    days = _aws_values(day, 1, 31) if day != "?" else None
    weekdays = _aws_values(weekday, 1, 7) if weekday != "?" else None

    def fires(moment: datetime) -> bool:
        if moment.minute not in minutes or moment.hour not in hours or moment.month not in months:
            return False
        if days is not None:
            return moment.day in days
        return moment.isoweekday() % 7 + 1 in weekdays  # ISO Sunday = 7 -> 1

    return fires


def fired(fires: Any, start: datetime, days: int) -> list[datetime]:
    return [m for m in (start + timedelta(minutes=i) for i in range(days * 24 * 60)) if fires(m)]


CRONS = [
    "0 3 * * 1", "0 2 * * 0", "0 0 * * 7", "30 4 1 * *", "*/15 9-17 * * mon-fri", "0 0 1,15 * *",
    "5 */6 * * *", "0 12 * jan,jul *", "0 3 1-7 * *", "0 3 * * sat,sun", "0 8 1 */3 *", "59 23 30 * *",
    "0 3 */1 * mon",  # both day fields restricted, but every day of the month matches: every day
    "0,30 0-5,22-23 * * 2,4,6",
]


@pytest.mark.parametrize("expression", CRONS)
def test_scheduler_cron_fires_at_the_same_minutes_as_the_neutral_cron(expression):
    translated = triggers.scheduler_cron(expression)
    neutral = fired(parse_cron(expression).fires, START, 42)
    assert neutral, f"{expression} never fires in the window: pick another window"
    assert fired(aws_cron(translated), START, 42) == neutral, translated


def test_scheduler_cron_numbers_weekdays_from_sunday_and_uses_question_marks():
    assert triggers.scheduler_cron("0 3 * * 1") == "cron(0 3 ? * 2 *)"
    assert triggers.scheduler_cron("0 3 * * 0") == triggers.scheduler_cron("0 3 * * 7") == "cron(0 3 ? * 1 *)"
    assert triggers.scheduler_cron("*/20 * * * *") == "cron(0,20,40 * * * ? *)"
    assert triggers.scheduler_cron("0 0 1 jan *") == "cron(0 0 1 1 ? *)"
    with pytest.raises(triggers.UntranslatableCron, match="OR a day of the week"):
        triggers.scheduler_cron("30 4 1 * mon")


# --- validation ------------------------------------------------------------------------------------
HEAD = """\
apiVersion: mlops-infra/v1
project: churn
environment: dev
cloud: aws
clouds:
  aws: {region: REGION, account_id: "123456789012"}
storage:
  buckets: [{name: raw}]
models:
  - name: m1
    training: {image: ghcr.io/a/t:1, compute: {size: cpu-small}}
    serving:
      image: ghcr.io/a/s:1
      compute: {size: cpu-small}
      data_capture: {sampling_percent: 10}
"""


def problems_of(model_yaml: str, region: str = "us-east-1") -> dict[str, Any]:
    text = HEAD.replace("REGION", region) + textwrap.indent(textwrap.dedent(model_yaml), " " * 4)
    try:
        checked = check_text(text, "spec.yaml", clouds=["aws"])
    except SpecInvalid as invalid:
        return {p.dotted_path: p for p in invalid.problems}
    return {p.dotted_path: p for p in checked.warnings}


@pytest.mark.parametrize(("model", "region", "path", "words"), [
    ('retraining: {schedule: "30 4 1 * mon"}', "us-east-1", "models[0].retraining.schedule", "OR a day of the week"),
    ("monitoring: {drift: {baseline: raw, schedule: weekly}}", "us-east-1", "models[0].monitoring.drift.schedule",
     "hourly or daily"),
    ("monitoring: {drift: {baseline: raw}}", "eu-central-2", "models[0].monitoring.drift", "analyzer image"),
])
def test_what_aws_cannot_do_is_an_error_with_its_location(model, region, path, words):
    found = problems_of(model, region)
    assert path in found, found
    assert found[path].severity == "error" and words in found[path].message
    assert found[path].line is not None


def test_drift_notes_where_the_baseline_files_are_read():
    found = problems_of("monitoring: {drift: {baseline: {bucket: raw, prefix: base/}}}")
    note = found["models[0].monitoring.drift.baseline"]
    physical = bucket_name(namer_of(BASE | {"storage": {"buckets": [{"name": "raw"}]}}), "raw")
    assert note.severity == "warning"
    assert f"s3://{physical}/base/statistics.json" in note.message and "constraints.json" in note.message
    assert "closed to new" in note.hint
    # The neutral rules still hold: drift needs capture, retraining needs training.
    neutral = problems_of("retraining: {on_drift: true}")
    assert "models[0].retraining.on_drift" in neutral and neutral["models[0].retraining.on_drift"].severity == "error"


# --- least privilege ------------------------------------------------------------------------------
def test_automation_may_only_start_the_stacks_training_pipelines(rich, prod):
    for plan, stack in ((rich, "dev"), (prod, "prod")):
        resources = named(plan)
        grant = resources["retraining-grant-automation"]
        assert grant["inputs"]["role"] == resources["governance-role-automation"]["inputs"]["name"]
        region = "us-east-1" if plan is rich else "eu-west-1"
        pattern = f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/churn-{stack}-*-training"
        assert allowed(doc(grant)) == {"sagemaker:StartPipelineExecution": {pattern}}
        automation = [r for r in resources_of(plan, ROLE_POLICY) if r["inputs"]["role"] ==
                      resources["governance-role-automation"]["inputs"]["name"]]
        # Batch scoring and data preparation (prod) start their own pipelines the same way, each
        # stage's grant on its own suffix only; nothing else, and no key grant.
        suffixes = {"retraining": "training", "batch": "batch", "data_prep": "prep"}
        stages = ["retraining"] + [s for s in ("batch", "data_prep") if any(r["stage"] == s for r in plan["resources"])]
        assert sorted(r["name"] for r in automation) == sorted(f"{s}-grant-automation" for s in stages)
        patterns = {}
        for r in automation:
            (action, resource), = allowed(doc(r)).items()
            assert action == "sagemaker:StartPipelineExecution"
            patterns[r["stage"]] = resource.pop()
            assert not resource
        assert patterns == {s: f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/churn-{stack}-*-{suffixes[s]}"
                            for s in stages} and patterns["retraining"] == pattern
        pipelines = resources_of(plan, PIPELINE)
        assert {p["stage"] for p in pipelines} == {"training", *stages[1:]}
        for pipeline in pipelines:
            arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/{pipeline['inputs']['pipelineName']}"
            stage = "retraining" if pipeline["stage"] == "training" else pipeline["stage"]
            assert [s for s, p in patterns.items() if fnmatch.fnmatchcase(arn, p)] == [stage], arn
        assert not fnmatch.fnmatchcase(f"arn:aws:sagemaker:{region}:{ACCOUNT}:pipeline/churn-{stack}-x-other", pattern)


def test_validate_measures_every_policy_the_automation_identity_holds(rich, prod):
    """The automation role's budget counts retraining's, batch scoring's and data preparation's
    grants: exactly the inline policies the plan puts on that role."""
    for plan, data in ((rich, RICH), (prod, None)):
        spec = spec_from(data) if data is not None else prod_spec()
        settings = spec.clouds.aws
        namer = BACKEND.namer(spec, settings)
        role = named(plan)["governance-role-automation"]["inputs"]["name"]
        held = [json.loads(r["inputs"]["policy"]) for r in resources_of(plan, ROLE_POLICY)
                if r["inputs"]["role"] == role]
        (budget,) = [b for b in grants.budgets(spec, namer, settings) if b.role == role]
        assert len(held) == (1 if data is not None else 3)
        assert budget.inline == sum(policies.policy_size(d) for d in held)


def prod_spec() -> Any:
    """stacks/prod.yaml as validated (the prod fixture plans it)."""
    import yaml

    from mlops_infra.spec.models import spec_model

    return spec_model().model_validate(yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text()))


def test_monitoring_runs_as_the_group_identity_with_the_stacks_monitoring_policy(rich):
    resources = named(rich)
    policy = resources["governance-policy-monitoring"]
    assert policy["dependencies"]["policy"] == ["governance-key"]  # the key's ARN is known after deployment
    attached = [r for r in resources_of(rich, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if r["dependencies"]["policyArn"] == ["governance-policy-monitoring"]]
    # Only churn monitors drift (ltv captures no data): only its group attaches the policy.
    assert [r["name"] for r in attached] == ["governance-groupattach-monitoring-churn"]
    spec = spec_from(RICH)
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    document = grants.managed(spec, BACKEND.namer(spec, spec.clouds.aws), spec.clouds.aws, key, ["monitoring"])
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/ProcessingJobs"
    analyzer = "arn:aws:ecr:us-east-1:156813124566:repository/sagemaker-model-monitor-analyzer"
    assert allowed(document["monitoring"]) == {
        **{a: {analyzer} for a in jobs.ECR_PULL},
        "ecr:GetAuthorizationToken": {"*"},  # no resource-level permission exists
        "logs:CreateLogGroup": {group}, "logs:DescribeLogStreams": {group},
        "logs:CreateLogStream": {f"{group}:log-stream:*"}, "logs:PutLogEvents": {f"{group}:log-stream:*"},
        **{a: {key} for a in policies.KMS_USE_ACTIONS}, "kms:CreateGrant": {key},  # ml.m5.xlarge: EBS volumes
    }
    # The group's own policy: its baseline, exactly its model's captured requests and reports.
    own = allowed(doc(resources["governance-groupdata-churn"]))
    features = resources["storage-bucket-features"]["inputs"]["bucket"]
    art = f"arn:aws:s3:::{ARTIFACT_BUCKET}"
    assert f"arn:aws:s3:::{features}/churn/baseline/*" in own["s3:GetObject"]
    assert f"arn:aws:s3:::{features}/*" not in own["s3:GetObject"]  # ltv reads features whole, not churn
    assert {f"{art}/data-capture/churn/*", f"{art}/monitoring/churn/*"} <= own["s3:GetObject"]
    assert own["s3:PutObject"] == {f"{art}/models/churn/*", f"{art}/monitoring/churn/*"}


def test_no_wildcard_action_and_no_public_principal(dev, prod, rich):
    for plan in (dev, prod, rich):
        for r in plan["resources"]:
            for field in ("policy",):
                text = r["inputs"].get(field)
                if not isinstance(text, str) or text == UNKNOWN or r["stage"] not in ("monitoring", "retraining",
                                                                                        "governance"):
                    continue
                for s in as_list(json.loads(text)["Statement"]):
                    if s["Effect"] != "Allow":
                        continue
                    assert all("*" not in a for a in as_list(s["Action"])), (r["name"], s)
                    assert s.get("Principal") not in ("*", {"AWS": "*"}), (r["name"], s)
                    if "*" in as_list(s["Resource"]) and "Principal" not in s:
                        assert as_list(s["Action"]) == ["ecr:GetAuthorizationToken"], (r["name"], s)


def test_stack_wide_grants_do_not_grow_with_models():
    few = spec_from(RICH)
    many = spec_from(RICH, models=[*RICH["models"], *[
        {"name": f"extra-{i:03d}", "training": {**TRAIN, "inputs": ["raw"]}, "retraining": {"schedule": "0 1 * * *"}}
        for i in range(200)]])
    documents = [triggers.automation_grants(partition="aws", region="us-east-1", account_id="1",
                                            pipelines=stack_prefix(BACKEND.namer(s, s.clouds.aws),
                                                                   "aws.sagemaker.pipeline")) for s in (few, many)]
    assert documents[0] == documents[1]
    assert pipeline_name(BACKEND.namer(many, many.clouds.aws), "extra-199").endswith("-training")


# --- diffs, names, SDK facts, determinism ----------------------------------------------------------
def test_adding_a_model_only_creates_besides_the_dashboard_row(rich, added):
    changes = diff_plans(rich, added)
    assert changes.delete == []
    assert [(u.name, u.paths) for u in changes.update] == [("monitoring-dashboard", ["inputs.dashboardBody<json>.widgets"])]
    created = {c["name"] for c in changes.create}
    assert {c for c in created if c.startswith(("monitoring-", "retraining-", "storage-"))} == {
        "monitoring-alarm-latency-fresh", "monitoring-alarm-errors-fresh", "monitoring-alarm-drift-fresh",
        "monitoring-drift-fresh", "monitoring-schedule-fresh", "monitoring-violations-fresh",
        "retraining-schedule-fresh", "retraining-rule-newdata-fresh", "retraining-target-newdata-fresh",
        "retraining-rule-drift-fresh", "retraining-target-drift-fresh",
    }
    assert all(c.endswith("-fresh") for c in created)


NAME_INPUTS = {  # type -> (input holding the physical name, name rule kind)
    TOPIC: ("name", "aws.sns.topic"), ALARM: ("name", "aws.cloudwatch.alarm"),
    DASHBOARD: ("dashboardName", "aws.cloudwatch.dashboard"),
    JOB_DEFINITION: ("name", "aws.sagemaker.monitoring_job_definition"),
    MONITORING_SCHEDULE: ("name", "aws.sagemaker.monitoring_schedule"), RULE: ("name", "aws.events.rule"),
    SCHEDULE: ("name", "aws.scheduler.schedule"), ROLE_POLICY: ("name", "aws.iam.policy"),
}


def test_physical_names_keep_the_rules_and_long_names_fit():
    long = copy.deepcopy(RICH)
    long.update(project="a-very-long-project-name", environment="production-east1")
    long["models"][0]["name"] = "a-model-with-a-rather-long-name1"
    long["models"][0]["retraining"]["on_new_data"] = "raw"
    plan = plan_for("aws", long)
    rules = name_rules()
    seen = set()
    for r in plan["resources"]:
        if r["stage"] in ("monitoring", "retraining") and r["type"] in NAME_INPUTS:
            field, kind = NAME_INPUTS[r["type"]]
            assert rules[kind].accepts(r["inputs"][field]), (r["name"], r["inputs"][field])
            seen.add(r["type"])
    assert seen == set(NAME_INPUTS)
    target_ids = {r["inputs"]["targetId"] for r in resources_of(plan, TARGET)}
    assert target_ids == {"pipeline"}


SDK_CLASSES = {TOPIC: "sns.TopicArgs", SUBSCRIPTION: "sns.TopicSubscriptionArgs", TOPIC_POLICY: "sns.TopicPolicyArgs",
               ALARM: "cloudwatch.MetricAlarmArgs", DASHBOARD: "cloudwatch.DashboardArgs",
               JOB_DEFINITION: "sagemaker.DataQualityJobDefinitionArgs",
               MONITORING_SCHEDULE: "sagemaker.MonitoringScheduleArgs", RULE: "cloudwatch.EventRuleArgs",
               TARGET: "cloudwatch.EventTargetArgs", SCHEDULE: "scheduler.ScheduleArgs",
               NOTIFICATION: "s3.BucketNotificationArgs"}
USER_MAPS = {"environment", "tags", "dimensions"}


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def _check_args(cls: type, values: dict[str, Any], where: str) -> None:
    """Every (camelCase) input is a parameter of the SDK's Args class, recursively."""
    module = importlib.import_module(cls.__module__)
    inputs = importlib.import_module(module.__name__.rsplit(".", 1)[0] + "._inputs")
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in values.items():
        name = _snake(key)
        assert name in parameters, f"{where}: {cls.__name__} has no {name}"
        if key in USER_MAPS:
            continue
        nested = re.search(r"'(\w+Args)'", str(parameters[name].annotation))
        for item in as_list(value):
            if isinstance(item, dict):
                assert nested, f"{where}.{key}: a dict where {cls.__name__} takes a scalar"
                _check_args(getattr(inputs, nested.group(1)), item, f"{where}.{key}")


def test_inputs_follow_the_pulumi_aws_argument_names(rich):
    import pulumi_aws as aws

    seen = set()
    for r in rich["resources"]:
        if r["type"] in SDK_CLASSES:
            service, name = SDK_CLASSES[r["type"]].split(".")
            _check_args(getattr(getattr(aws, service), name), r["inputs"], r["name"])
            seen.add(r["type"])
    assert seen == set(SDK_CLASSES)


def test_resources_are_tagged_use_the_provider_and_none_is_protected(rich):
    for r in rich["resources"]:
        if r["stage"] not in ("monitoring", "retraining") or not r["custom"]:
            continue
        assert r["provider"] == "aws" and r["parent"] == r["stage"] and r["protect"] is False, r["name"]
        _, path, name = r["type"].split(":")
        cls = getattr(importlib.import_module(f"pulumi_aws.{path.split('/')[0]}"), name)
        if "tags" in inspect.signature(cls._internal_init).parameters:
            assert r["inputs"]["tags"]["mlops-stage"] == r["stage"] and r["inputs"]["tags"]["owner"] == "ml-platform"


def test_the_same_spec_plans_to_the_same_document(rich):
    assert json.dumps(plan_for("aws", RICH), sort_keys=True) == json.dumps(rich, sort_keys=True)
