"""Azure monitoring and retraining: action group, endpoint alerts, workbook, drift monitors,
schedules and event triggers (Event Grid -> Logic App -> Azure ML job)."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure import monitoring_rules as rules
from mlops_infra.backends.azure.naming import alarm_name, alert_name
from mlops_infra.backends.azure.retraining import (
    JOB_SUBMITTER_ACTIONS,
    WORKFLOW_TEMPLATE,
)
from mlops_infra.backends.azure.schedules import WINDOWS_ZONES, Untranslatable, ncrontab
from mlops_infra.diff import diff_plans
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron
from mlops_infra.stages.storage import capture_prefix
from mlops_infra.templating import render_json
from tests.planning import plan_for, resources_of, spec_from

CLOUD = "azure"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
ML = "azure-native:machinelearningservices:"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
WORKBOOK = "azure-native:applicationinsights:Workbook"
SCHEDULE = ML + "Schedule"
WORKFLOW = "azure-native:logic:Workflow"
TOPIC = "azure-native:eventgrid:SystemTopic"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
GRANT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
# Owner, Contributor, User Access Administrator, AzureML Data Scientist, AzureML Compute Operator
BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-bdd0-40e5-a4ae-bfc1a6aa0d5b",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
}
# Each Windows zone's reference IANA zone (Unicode CLDR windowsZones.xml, territory "001").
CLDR_REFERENCE = {
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "Central Europe Standard Time": "Europe/Budapest",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Turkey Standard Time": "Europe/Istanbul",
    "Russian Standard Time": "Europe/Moscow",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Manitoba Standard Time": "America/Winnipeg",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "SA Pacific Standard Time": "America/Bogota",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Pacific SA Standard Time": "America/Santiago",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "China Standard Time": "Asia/Shanghai",
    "Taipei Standard Time": "Asia/Taipei",
    "Singapore Standard Time": "Asia/Singapore",
    "SE Asia Standard Time": "Asia/Bangkok",
    "India Standard Time": "Asia/Calcutta",
    "Pakistan Standard Time": "Asia/Karachi",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Arabian Standard Time": "Asia/Dubai",
    "Arab Standard Time": "Asia/Riyadh",
    "Israel Standard Time": "Asia/Jerusalem",
    "Iran Standard Time": "Asia/Tehran",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Tasmania Standard Time": "Australia/Hobart",
    "E. Australia Standard Time": "Australia/Brisbane",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "W. Australia Standard Time": "Australia/Perth",
    "New Zealand Standard Time": "Pacific/Auckland",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Egypt Standard Time": "Africa/Cairo",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Morocco Standard Time": "Africa/Casablanca",
}


def _stack(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())



def _only_azure(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["clouds"] = {"azure": data["clouds"]["azure"]}
    data["cloud"] = "azure"
    return data


# A stack with what the examples lack: a traffic alarm, no dashboard, a Tokyo schedule, a weekly
# drift monitor on a whole bucket, new data under a prefix, and a model served without monitoring.
VARIANT = _only_azure(_stack("dev"))
VARIANT["monitoring"] = {"notify": {"emails": ["b@example.com", "a@example.com"]}, "dashboard": False}
VARIANT["models"][0]["monitoring"] = {
    "latency_p99_ms": 120,
    "min_invocations_per_hour": 90,
    "drift": {"baseline": "raw", "schedule": "weekly"},
}
VARIANT["models"][0]["retraining"] = {
    "schedule": "*/30 9-17 * * mon-fri",
    "timezone": "Asia/Tokyo",
    "on_new_data": {"bucket": "raw", "prefix": "incoming/churn/"},
    "on_drift": True,
}
VARIANT["models"].append(
    {"name": "quiet", "serving": {"image": "ghcr.io/acme/quiet:1.0", "compute": {"size": "cpu-small"}, "model_uri": "azureml://models/quiet/1"}}
)


def _added(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["models"].append(
        {
            "name": "fraud",
            "training": {"image": "ghcr.io/acme/fraud-train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
            "serving": {
                "image": "ghcr.io/acme/fraud-serve:1.0",
                "compute": {"size": "cpu-small"},
                "data_capture": {"sampling_percent": 5},
            },
            "monitoring": {
                "latency_p99_ms": 80,
                "error_rate_percent": 2,
                "min_invocations_per_hour": 10,
                "drift": {"baseline": {"bucket": "features", "prefix": "fraud/"}, "schedule": "hourly"},
            },
            "retraining": {"schedule": "0 4 * * *", "on_new_data": {"bucket": "raw", "prefix": "fraud/"}, "on_drift": True},
        }
    )
    return data




@pytest.fixture(scope="module")
def variant() -> dict:
    return plan_for("azure", VARIANT)


@pytest.fixture(scope="module")
def prod_added() -> dict:
    return plan_for("azure", _added(_only_azure(_stack("prod"))))


@pytest.fixture(scope="module")
def prod_again() -> dict:
    return plan_for("azure", _only_azure(_stack("prod")))


def by_name(plan: dict, name: str) -> dict:
    (found,) = [r for r in plan["resources"] if r["name"] == name]
    return found


def names(plan: dict, type_: str) -> set[str]:
    return {r["name"] for r in resources_of(plan, type_)}


def namer(data: dict[str, Any]) -> Any:
    spec = spec_from(data)
    return BACKEND.namer(spec, spec.settings_for("azure"))


# --- the examples -----------------------------------------------------------------------------
def test_examples_declare_notifications_alarms_dashboard_drift_and_every_trigger(dev: dict, prod: dict) -> None:
    for plan, models in ((dev, ["churn-classifier"]), (prod, ["churn-classifier", "ltv-regressor"])):
        assert names(plan, ACTION_GROUP) == {"monitoring-channel"}
        assert names(plan, WORKBOOK) == {"monitoring-dashboard"}
        assert {f"monitoring-alarm-latency-{m}" for m in models} <= names(plan, METRIC_ALERT)
        assert "monitoring-logalarm-errors-churn-classifier" in names(plan, LOG_ALERT)
        # drift: the monitor, and (on_drift) its events and alert
        assert "monitoring-drift-churn-classifier" in names(plan, SCHEDULE)
        assert "retraining-alarm-drift-churn-classifier" in names(plan, METRIC_ALERT)
        # the three kinds of trigger
        assert {f"retraining-schedule-{m}" for m in models} <= names(plan, SCHEDULE)
        # the event triggers' Logic App; prod's batch schedule has one of its own (tests/test_batch_azure.py)
        batch = {f"batch-workflow-{m['name']}" for m in _stack(plan["stack"])["models"] if m.get("batch", {}).get("schedule")}
        assert names(plan, WORKFLOW) == {"retraining-workflow-churn-classifier"} | batch
        assert batch == ({"batch-workflow-churn-classifier"} if plan is prod else set())
        assert names(plan, SUBSCRIPTION) == {
            "retraining-newdata-churn-classifier",
            "retraining-driftevents-churn-classifier",
        }
        assert names(plan, TOPIC) == {"retraining-events-storage", "retraining-events-ml"}
        assert plan["outputs"]["monitoring"]["notification_channel"] == UNKNOWN


def test_alarm_names_are_the_ones_the_serving_rollout_cites(dev: dict, prod: dict) -> None:
    for stack, plan in (("dev", dev), ("prod", prod)):
        data = _only_azure(_stack(stack))
        spec = spec_from(data)
        stack_namer = namer(data)
        warned = {
            p.path[1]: p.message
            for p in BACKEND.check(spec, spec.settings_for("azure"))
            if p.path[2:] == ("serving", "rollout", "rollback_on_alarms")
        }
        assert warned
        for index, message in warned.items():
            model = spec.models[index]
            cited = set(re.findall(r"churn-\w+-[\w-]+?-(?:latency|errors)\b", message))
            planned = {
                r["inputs"]["ruleName"]
                for r in resources_of(plan, METRIC_ALERT) + resources_of(plan, LOG_ALERT)
                if r["name"].endswith(f"-latency-{model.name}") or r["name"].endswith(f"-errors-{model.name}")
            }
            assert cited == planned
            assert planned == {
                alarm_name(stack_namer, model.name, kind)
                for kind, threshold in (
                    ("latency", model.monitoring.latency_p99_ms),
                    ("errors", model.monitoring.error_rate_percent),
                )
                if threshold is not None
            }


def test_each_alarm_watches_its_models_endpoint_in_the_right_unit(prod: dict) -> None:
    spec = spec_from(_only_azure(_stack("prod")))
    for model in spec.models:
        endpoint = by_name(prod, f"serving-endpoint-{model.name}")
        latency = by_name(prod, f"monitoring-alarm-latency-{model.name}")
        assert set(latency["dependencies"]["scopes"]) == {f"serving-endpoint-{model.name}", "storage-workspace"}
        (criterion,) = latency["inputs"]["criteria"]["allOf"]
        assert criterion["metricName"] == rules.LATENCY_METRIC == "RequestLatency_P99"
        assert criterion["metricNamespace"] == rules.ENDPOINT_TYPE
        assert criterion["threshold"] == model.monitoring.latency_p99_ms  # milliseconds on both sides
        assert (criterion["operator"], criterion["timeAggregation"]) == ("GreaterThan", "Average")
        assert latency["inputs"]["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
        assert latency["dependencies"]["actions"] == ["monitoring-channel"]
        assert latency["inputs"]["location"] == "global"
        assert latency["inputs"]["targetResourceType"] == rules.ENDPOINT_TYPE
        if model.monitoring.error_rate_percent is None:
            assert f"monitoring-logalarm-errors-{model.name}" not in names(prod, LOG_ALERT)
            continue
        errors = by_name(prod, f"monitoring-logalarm-errors-{model.name}")
        (condition,) = errors["inputs"]["criteria"]["allOf"]
        assert f'EndpointName == "{endpoint["inputs"]["endpointName"]}"' in condition["query"]
        assert errors["dependencies"]["criteria"] == [f"serving-endpoint-{model.name}"]
        assert condition["threshold"] == model.monitoring.error_rate_percent  # percent on both sides
        assert condition["metricMeasureColumn"] == rules.ERROR_COLUMN
        assert f"extend {rules.ERROR_COLUMN} = 100.0 * server_errors / requests" in condition["query"]
        assert condition["operator"] == "GreaterThan"
        assert errors["inputs"]["kind"] == "LogAlert"
        assert errors["dependencies"]["scopes"] == ["storage-logs"]
        assert errors["dependencies"]["actions"] == ["monitoring-channel"]
        # the endpoint sends the traffic log the query reads to that Log Analytics workspace
        logs = by_name(prod, f"monitoring-trafficlogs-{model.name}")
        assert errors["depends_on"] == [logs["name"]]
        assert set(logs["dependencies"]["resourceUri"]) == {f"serving-endpoint-{model.name}", "storage-workspace"}
        assert logs["dependencies"]["workspaceId"] == ["storage-logs"]
        assert logs["inputs"]["logs"] == [{"category": rules.TRAFFIC_LOG, "enabled": True}]


def test_traffic_alarm_counts_requests_per_hour(variant: dict) -> None:
    alarm = by_name(variant, "monitoring-alarm-traffic-churn-classifier")
    assert alarm["inputs"]["ruleName"] == alert_name(namer(VARIANT), "churn-classifier", "traffic")
    (criterion,) = alarm["inputs"]["criteria"]["allOf"]
    assert criterion["metricName"] == "RequestsPerMinute"
    assert criterion["operator"] == "LessThan" and criterion["timeAggregation"] == "Average"
    assert criterion["threshold"] == 1.5  # 90 requests an hour = 1.5 a minute, averaged over the hour
    assert alarm["inputs"]["windowSize"] == "PT1H"
    # no errors alarm asked for, none made; a served model without monitoring gets no alarm
    assert not resources_of(variant, LOG_ALERT)
    assert not [r for r in resources_of(variant, METRIC_ALERT) if r["name"].endswith("-quiet")]


def test_the_action_group_holds_every_address_once(prod: dict, variant: dict) -> None:
    group = by_name(prod, "monitoring-channel")["inputs"]
    assert sorted(r["emailAddress"] for r in group["emailReceivers"]) == [
        "data-platform@example.com",
        "ml-oncall@example.com",
    ]
    (hook,) = group["webhookReceivers"]
    assert hook["serviceUri"] == "https://hooks.example.com/mlops" and hook["useCommonAlertSchema"] is True
    assert len(group["groupShortName"]) <= rules.SHORT_NAME_MAX and group["location"] == "global"
    receivers = [r["name"] for r in group["emailReceivers"] + group["webhookReceivers"]]
    assert len(set(receivers)) == len(receivers)
    # reordering the spec's emails changes nothing
    other = by_name(variant, "monitoring-channel")["inputs"]
    assert [r["emailAddress"] for r in other["emailReceivers"]] == ["a@example.com", "b@example.com"]
    assert other["webhookReceivers"] == []
    assert len(rules.short_name("a-very-long-project", "production")) <= rules.SHORT_NAME_MAX
    assert name_rules()["azure.monitor.action_group"].accepts(group["actionGroupName"])


# --- dashboard ----------------------------------------------------------------------------------
def _check_workbook(content: dict[str, Any]) -> None:
    """Notebook/1.0: version and items; each item a numeric type, a content and a unique name;
    parameters an item references are declared; metric ids "<namespace>--<metric>"."""
    assert content["version"] == rules.WORKBOOK_VERSION
    items = content["items"]
    item_names = [item["name"] for item in items]
    assert len(set(item_names)) == len(item_names)
    assert all(isinstance(item["type"], int) and isinstance(item["content"], dict) for item in items)
    (params,) = [item["content"]["parameters"] for item in items if item["type"] == 9]
    declared = {p["name"] for p in params}
    assert len({p["id"] for p in params}) == len(params)
    for item in items:
        text = json.dumps(item["content"])
        assert set(re.findall(r"\{(\w+)\}", text)) <= declared, item["name"]
        for metric in item["content"].get("metrics", []):
            assert metric["metric"] == f"{metric['namespace']}--{metric['metric'].split('--', 1)[1]}"
            assert metric["namespace"] == item["content"]["resourceType"]
            assert metric["aggregation"] in (1, 3, 4)
        if item["type"] == 10:
            assert item["content"]["resourceParameter"] in declared
            assert item["content"]["chartType"] == 0 and item["content"]["visualization"] == "table"


def test_workbook_template_renders_a_valid_workbook_without_naming_models() -> None:
    values = rules.workbook_values(title="t", resource_group="rg-x", workspace="ws-y", logs="logs-z")
    content = render_json(rules.WORKBOOK_TEMPLATE, **values)
    _check_workbook(content)
    grids = {item["name"]: item["content"] for item in content["items"]}
    metrics = {m["metric"].split("--")[1] for name in ("endpoints", "instances") for m in grids[name]["metrics"]}
    assert metrics == {"RequestsPerMinute", "RequestLatency_P99", "DeploymentCapacity"}
    assert "countif(toint(ResponseCode) >= 500)" in grids["errors"]["query"]
    params = {p["name"]: p for p in grids["parameters"]["parameters"]}
    assert "resourceGroup =~ 'rg-x'" in params["Endpoints"]["query"] and "/workspaces/ws-y/" in params["Endpoints"]["query"]
    assert "onlineendpoints/deployments" in params["Deployments"]["query"]
    assert "name =~ 'logs-z'" in params["Logs"]["query"]
    assert grids["errors"]["crossComponentResources"] == ["{Logs}"]
    # strings are embedded as JSON: quotes and backslashes in names cannot break it
    _check_workbook(render_json(rules.WORKBOOK_TEMPLATE, **{**values, "title": 'a "quoted" \\ title'}))


def test_the_planned_workbook_is_the_rendered_template(dev: dict, prod: dict, variant: dict) -> None:
    workbook = by_name(prod, "monitoring-dashboard")
    content = json.loads(workbook["inputs"]["serializedData"])
    _check_workbook(content)
    stack_namer = namer(_only_azure(_stack("prod")))
    assert content == render_json(
        rules.WORKBOOK_TEMPLATE,
        **rules.workbook_values(
            title="churn prod: models",
            resource_group=stack_namer.name("azure.resource_group", "westeurope"),
            workspace=stack_namer.name("azure.ml.workspace"),
            logs=by_name(prod, "storage-logs")["inputs"]["workspaceName"],
        ),
    )
    assert "churn-classifier" not in workbook["inputs"]["serializedData"]  # rows come from the workspace
    assert uuid.UUID(workbook["inputs"]["resourceName"]).version == 5
    assert (workbook["inputs"]["kind"], workbook["inputs"]["category"]) == ("shared", "workbook")
    assert workbook["dependencies"]["sourceId"] == ["storage-insights"]
    assert by_name(dev, "monitoring-dashboard")["inputs"]["resourceName"] != workbook["inputs"]["resourceName"]
    assert not resources_of(variant, WORKBOOK)  # monitoring.dashboard: false


# --- drift ----------------------------------------------------------------------------------------
def test_drift_monitor_compares_captured_inputs_with_the_baseline(prod: dict, variant: dict) -> None:
    monitor = by_name(prod, "monitoring-drift-churn-classifier")
    properties = monitor["inputs"]["properties"]
    assert properties["trigger"] == {"triggerType": "Cron", "expression": "0 2 * * *", "timeZone": "UTC"}
    assert properties["trigger"]["expression"] == ncrontab(DRIFT_SCHEDULES["daily"])
    definition = properties["action"]["monitorDefinition"]
    assert properties["action"]["actionType"] == "CreateMonitor"
    (signal_name,) = definition["signals"]
    assert signal_name == rules.signal_name("churn-classifier") and signal_name.startswith(monitor["inputs"]["name"] + "_")
    signal = definition["signals"][signal_name]
    assert signal["signalType"] == "DataDrift"
    # production: the data asset serving's data collector writes model_inputs to
    captured = by_name(prod, "serving-capture-inputs-churn-classifier")["inputs"]["name"]
    production = signal["productionData"]
    assert production["uri"] == f"azureml:{captured}:1"
    version = by_name(prod, "serving-captureversion-inputs-churn-classifier")["inputs"]
    assert version["version"] == "1" and capture_prefix("churn-classifier") in version["properties"]["dataUri"]
    assert (production["inputDataType"], production["jobInputType"], production["dataContext"]) == (
        "Rolling",
        "uri_folder",
        "model_inputs",
    )
    assert production["preprocessingComponentId"] == rules.MDC_PREPROCESSOR
    assert production["windowSize"] == "P1D"
    assert "serving" in {n.split("-")[0] for n in monitor["depends_on"]}  # waits for the capture asset
    # reference: the baseline bucket + prefix of the spec, as an MLTable
    reference = signal["referenceData"]
    account = by_name(prod, "storage-account")["inputs"]["accountName"]
    container = by_name(prod, "storage-bucket-features")["inputs"]["containerName"]
    assert reference["uri"] == f"https://{account}.blob.core.windows.net/{container}/churn/baseline/"
    assert (reference["inputDataType"], reference["jobInputType"]) == ("Fixed", "mltable")
    assert "storage-bucket-features" in monitor["dependencies"]["properties"]
    # the same channel's addresses, on serverless Spark
    assert definition["alertNotificationSettings"]["emailNotificationSettings"]["emails"] == [
        "data-platform@example.com",
        "ml-oncall@example.com",
    ]
    assert definition["computeConfiguration"]["computeType"] == "ServerlessSpark"
    # the monitor runs as the model's group identity, which reads the baseline and captured data
    assert "governance-identity-data-churn-classifier" in monitor["dependencies"]["properties"]
    # weekly on a whole bucket
    weekly = by_name(variant, "monitoring-drift-churn-classifier")["inputs"]["properties"]
    assert weekly["trigger"]["expression"] == ncrontab(DRIFT_SCHEDULES["weekly"]) == "0 2 * * 0"
    (weekly_signal,) = weekly["action"]["monitorDefinition"]["signals"].values()
    assert weekly_signal["productionData"]["windowSize"] == "P7D"
    assert weekly_signal["referenceData"]["uri"].endswith("/churn-dev-raw/")


def test_drift_signal_names_select_one_model_each() -> None:
    models = ["x", "ax", "x-drift", "churn", "churn-v2", "a-b", "a"]
    signals = {m: rules.signal_name(m) for m in models}
    for model, signal in signals.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", signal)
        others = [s for m, s in signals.items() if m != model]
        assert not any(signal in other for other in others), model  # StringContains picks one model


# --- retraining -----------------------------------------------------------------------------------
def test_every_trigger_starts_its_models_training_job(prod: dict, variant: dict) -> None:
    spec = spec_from(_only_azure(_stack("prod")))
    for model in (m for m in spec.models if m.retraining is not None):
        schedule = by_name(prod, f"retraining-schedule-{model.name}")
        job = schedule["inputs"]["properties"]["action"]["jobDefinition"]
        assert schedule["inputs"]["properties"]["action"]["actionType"] == "CreateJob"
        assert {f"training-compversion-{model.name}", f"training-compute-{model.name}", f"governance-identity-data-{model.name}"} <= set(
            schedule["dependencies"]["properties"]
        )
        assert job["experimentName"] == model.name
        if model.training.evaluation is None:
            assert job["jobType"] == "Command"
            assert job["outputs"]["model"]["uri"].endswith(f"/paths/models/{model.name}/")
        else:  # the evaluation gate: the pipeline's first node trains (tests/test_evaluation_azure.py)
            assert job["jobType"] == "Pipeline" and set(job["jobs"]) == {"train", "evaluate", "gate", "register"}
            assert job["jobs"]["train"]["outputs"]["model"]["uri"].endswith(f"/paths/models/{model.name}/")
        trigger = schedule["inputs"]["properties"]["trigger"]
        assert trigger["expression"] == ncrontab(model.retraining.schedule)
        assert trigger["timeZone"] == WINDOWS_ZONES[model.retraining.timezone]
    assert by_name(prod, "retraining-schedule-churn-classifier")["inputs"]["properties"]["trigger"]["timeZone"] == (
        "W. Europe Standard Time"
    )
    # the event target: the model's Logic App, sending the same job
    workflow = by_name(prod, "retraining-workflow-churn-classifier")
    body = workflow["inputs"]["parameters"]["job"]["value"]["properties"]
    scheduled = by_name(prod, "retraining-schedule-churn-classifier")["inputs"]["properties"]["action"]["jobDefinition"]
    assert body["jobType"] == scheduled["jobType"] == "Pipeline"  # churn-classifier has the evaluation gate
    # the same job but for what names its trigger
    assert {key for key in body if body[key] != scheduled.get(key)} == {"displayName", "description", "tags"}
    assert {"training-compversion-churn-classifier", "training-compute-churn-classifier"} <= set(
        workflow["dependencies"]["parameters"]
    )
    assert workflow["inputs"]["parameters"]["jobPrefix"]["value"] == "churn-classifier-retrain-"
    for subscription in ("retraining-newdata-churn-classifier", "retraining-driftevents-churn-classifier"):
        sub = by_name(prod, subscription)
        assert sub["depends_on"] == ["retraining-workflow-churn-classifier"]
        assert sub["inputs"]["destination"]["endpointType"] == "WebHook"
        assert sub["inputs"]["destination"]["endpointUrl"] == "[secret]"  # the signed callback URL
        assert sub["inputs"]["destination"]["maxEventsPerBatch"] == 1
    # new data: blobs created under the model's prefix of its bucket
    new_data = by_name(variant, "retraining-newdata-churn-classifier")["inputs"]
    raw = by_name(variant, "storage-bucket-raw")["inputs"]["containerName"]
    assert new_data["filter"] == {
        "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
        "subjectBeginsWith": f"/blobServices/default/containers/{raw}/blobs/incoming/churn/",
        "isSubjectCaseSensitive": True,
    }
    storage_topic = by_name(variant, "retraining-events-storage")
    assert storage_topic["inputs"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert storage_topic["dependencies"]["source"] == ["storage-account"]
    # drift: the breach event of this model's signal, on the workspace's topic
    drift = by_name(prod, "retraining-driftevents-churn-classifier")["inputs"]
    assert drift["filter"]["includedEventTypes"] == [rules.RUN_STATUS_CHANGED]
    assert [(f["key"], f["operatorType"], f["values"]) for f in drift["filter"]["advancedFilters"]] == [
        (rules.BREACH_TAG, "StringContains", [rules.BREACH_MESSAGE]),
        (rules.BREACH_TAG, "StringContains", [rules.signal_name("churn-classifier")]),
    ]
    ml_topic = by_name(prod, "retraining-events-ml")
    assert ml_topic["inputs"]["topicType"] == "Microsoft.MachineLearningServices.Workspaces"
    assert ml_topic["dependencies"]["source"] == ["storage-workspace"]
    # ... and the drift alert tells the channel
    alarm = by_name(prod, "retraining-alarm-drift-churn-classifier")
    (criterion,) = alarm["inputs"]["criteria"]["allOf"]
    assert criterion["metricName"] == "MatchedEventCount"
    assert criterion["dimensions"][0]["values"] == [drift["eventSubscriptionName"].upper()]
    assert alarm["dependencies"]["scopes"] == ["retraining-events-ml"]
    assert alarm["dependencies"]["actions"] == ["monitoring-channel"]
    # the Tokyo schedule of the variant
    tokyo = by_name(variant, "retraining-schedule-churn-classifier")["inputs"]["properties"]["trigger"]
    assert tokyo == {"triggerType": "Cron", "expression": "0,30 9-17 * * 1-5", "timeZone": "Tokyo Standard Time"}


def test_the_workflow_template_is_a_complete_event_grid_handler(prod: dict) -> None:
    workflow = by_name(prod, "retraining-workflow-churn-classifier")
    definition = workflow["inputs"]["definition"]
    assert definition == render_json(
        WORKFLOW_TEMPLATE, model="churn-classifier", arm="https://management.azure.com", api_version="2025-12-01"
    )
    assert definition["$schema"].endswith("/2016-06-01/workflowdefinition.json#")
    assert {"contentVersion", "parameters", "triggers", "actions", "outputs"} <= set(definition)
    # every parameter it uses is declared, and the resource passes each one
    used = set(re.findall(r"parameters\('(\w+)'\)", json.dumps(definition)))
    assert used == set(definition["parameters"]) == set(workflow["inputs"]["parameters"])
    for name, declared in definition["parameters"].items():
        assert workflow["inputs"]["parameters"][name]["type"] == declared["type"]
    (trigger,) = definition["triggers"].values()
    assert (trigger["type"], trigger["kind"]) == ("Request", "Http")
    route = definition["actions"]["route"]
    # Event Grid's validation handshake, then the job
    assert "Microsoft.EventGrid.SubscriptionValidationEvent" in json.dumps(route["expression"])
    assert route["actions"]["validate"]["inputs"]["body"]["validationResponse"].endswith("['validationCode']")
    start = route["else"]["actions"]["start_training"]["inputs"]
    assert start["method"] == "PUT" and "/jobs/" in start["uri"] and "api-version=2025-12-01" in start["uri"]
    assert start["body"] == "@parameters('job')"
    assert start["authentication"] == {
        "type": "ManagedServiceIdentity",
        "identity": "@parameters('automationIdentity')",
        "audience": "https://management.azure.com/",
    }
    assert workflow["dependencies"]["identity"] == ["governance-identity-automation"]
    assert workflow["dependencies"]["parameters"]  # the job's ids and the identity, known after apply
    assert workflow["depends_on"] == ["retraining-grant-automation-job-submitter-workspace"]


def test_automation_may_only_submit_this_stacks_jobs(dev: dict, prod: dict) -> None:
    for plan in (dev, prod):
        role = by_name(plan, "retraining-role-job-submitter")
        (permission,) = role["inputs"]["permissions"]
        assert permission["actions"] == list(JOB_SUBMITTER_ACTIONS)
        assert all(a.startswith("Microsoft.MachineLearningServices/workspaces/") and "*" not in a for a in permission["actions"])
        assert not any(a.endswith("/delete") or "listsecrets" in a.lower() or "listkeys" in a.lower() for a in permission["actions"])
        assert "Microsoft.MachineLearningServices/workspaces/jobs/write" in permission["actions"]
        assert role["dependencies"]["assignableScopes"] == ["storage-workspace"]
        automation = [g for g in resources_of(plan, GRANT) if g["dependencies"]["principalId"] == ["governance-identity-automation"]]
        assert [g["name"] for g in automation] == ["retraining-grant-automation-job-submitter-workspace"]
        (grant,) = automation
        assert grant["dependencies"]["scope"] == ["storage-workspace"]
        assert grant["inputs"]["roleDefinitionId"].endswith("/" + role["inputs"]["roleDefinitionId"])
        assert not {g["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1] for g in resources_of(plan, GRANT)} & BROAD
        # jobs run as the training identity, never as automation
        for schedule in resources_of(plan, SCHEDULE):
            assert "governance-identity-automation" not in schedule["dependencies"].get("properties", [])


# --- cron and time zones ------------------------------------------------------------------------
def _ncrontab_field(text: str, low: int, high: int, names: list[str]) -> set[int]:
    """NCronTab's field grammar (CrontabFieldImpl): lists, ranges, steps, name prefixes; no 7."""
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")

            def value(word: str) -> int:
                if word.isdigit():
                    return int(word)
                (index,) = [i for i, n in enumerate(names) if n.lower().startswith(word.lower())]
                return index + low

            first = value(start)
            last = value(end) if dash else (high if step_text else first)
        assert low <= first <= last <= high, f"{item!r} is outside {low}-{high}"
        values.update(range(first, last + 1, step))
    return values


def ncrontab_schedule(expression: str) -> Any:
    """When an NCronTab schedule fires: every field must match, day-of-month AND day-of-week."""
    days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    fields = expression.split()
    assert len(fields) == 5
    minute, hour, day, month, weekday = (
        _ncrontab_field(fields[0], 0, 59, []),
        _ncrontab_field(fields[1], 0, 23, []),
        _ncrontab_field(fields[2], 1, 31, []),
        _ncrontab_field(fields[3], 1, 12, months),
        _ncrontab_field(fields[4], 0, 6, days),
    )

    def fires(moment: datetime) -> bool:
        return (
            moment.minute in minute
            and moment.hour in hour
            and moment.day in day
            and moment.month in month
            and (moment.weekday() + 1) % 7 in weekday
        )

    return fires


CRONS = [
    "0 3 * * 1",
    "0 2 * * 0",
    "30 4 1 * *",
    "*/15 9-17 * * mon-fri",
    "0 0 1,15 * *",
    "5 4 * jan,feb,mar sun",
    "0 12 * * 7",
    "0 6 * * 0-7",
    "0 0 1-31 * 2",
    "59 23 28-31 * *",
    "0 */6 * * *",
    "10-40/10 8 * * 6",
    "0 0 29 2 *",
    "15 1 1-7 * *",
]


def test_schedules_fire_at_the_same_minutes_as_the_neutral_cron() -> None:
    start = datetime(2028, 2, 10)  # six weeks over a leap day and two month ends
    minutes = [start + timedelta(minutes=m) for m in range(6 * 7 * 1440)]
    for expression in CRONS + list(DRIFT_SCHEDULES.values()):
        neutral, translated = parse_cron(expression), ncrontab(expression)
        assert "7" not in translated.split()[4].split(",")
        fired = [m for m in minutes if neutral.fires(m)]
        assert fired, expression  # a test that could not fail proves nothing
        azure = ncrontab_schedule(translated)
        assert fired == [m for m in minutes if azure(m)], (expression, translated)


def test_crons_restricting_both_day_fields_are_refused() -> None:
    for expression in ("0 0 1 * 1", "0 0 */2 * 1-5", "0 0 13 * fri"):
        with pytest.raises(Untranslatable):
            ncrontab(expression)
        # the refusal is right: NCronTab would fire on fewer days than cron
        start = datetime(2028, 1, 1)
        minutes = [start + timedelta(minutes=m) for m in range(0, 60 * 24 * 62, 60)]
        azure = ncrontab_schedule(_numeric(expression))  # the cron as it stands, read by NCronTab
        assert [m for m in minutes if parse_cron(expression).fires(m)] != [m for m in minutes if azure(m)]


def _numeric(expression: str) -> str:
    names = dict(zip(["sun", "mon", "tue", "wed", "thu", "fri", "sat"], range(7)))
    fields = expression.split()
    fields[4] = re.sub(r"[a-z]+", lambda m: str(names[m.group(0)]), fields[4])
    return " ".join(fields)


def test_windows_zones_keep_the_utc_offsets_of_their_iana_zones() -> None:
    assert set(WINDOWS_ZONES.values()) <= set(CLDR_REFERENCE)
    hours = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(3 * 8760)]
    for iana, windows in WINDOWS_ZONES.items():
        reference = CLDR_REFERENCE[windows]
        if reference == iana:
            continue
        mine, theirs = ZoneInfo(iana), ZoneInfo(reference)
        assert all(t.astimezone(mine).utcoffset() == t.astimezone(theirs).utcoffset() for t in hours), iana
    # and the check can fail: London is not W. Europe time
    london, berlin = ZoneInfo("Europe/London"), ZoneInfo(CLDR_REFERENCE["W. Europe Standard Time"])
    assert any(t.astimezone(london).utcoffset() != t.astimezone(berlin).utcoffset() for t in hours)


def test_check_reports_what_azure_schedules_cannot_express() -> None:
    data = _only_azure(_stack("prod"))
    data["models"][0]["retraining"]["schedule"] = "0 0 1 * mon"
    data["models"][1]["retraining"]["timezone"] = "America/Caracas"
    spec = spec_from(data)
    problems = BACKEND.check(spec, spec.settings_for("azure"))
    errors = {p.path: p for p in problems if p.severity == "error"}
    assert set(errors) == {("models", 0, "retraining", "schedule"), ("models", 1, "retraining", "timezone")}
    assert "NCronTab" in errors[("models", 0, "retraining", "schedule")].message
    assert "Windows time zone" in errors[("models", 1, "retraining", "timezone")].message
    # the examples pass; drift without on_drift while a webhook is set is a warning
    for stack in ("dev", "prod"):
        spec = spec_from(_only_azure(_stack(stack)))
        assert not [p for p in BACKEND.check(spec, spec.settings_for("azure")) if p.severity == "error"]
    data = _only_azure(_stack("prod"))
    data["models"][0]["retraining"]["on_drift"] = False
    spec = spec_from(data)
    warned = {p.path for p in BACKEND.check(spec, spec.settings_for("azure")) if p.severity == "warning"}
    assert ("models", 0, "monitoring", "drift") in warned
    assert ("models", 0, "monitoring", "drift", "baseline") in warned  # the MLTable the monitor reads


# --- scale, names, determinism ------------------------------------------------------------------
def test_adding_a_model_shows_only_creates(prod_again: dict, prod_added: dict) -> None:
    changes = diff_plans(prod_again, prod_added)
    assert not changes.update and not changes.delete, [u.to_dict() for u in changes.update]
    created = {c["name"] for c in changes.create}
    assert {
        "monitoring-alarm-latency-fraud",
        "monitoring-logalarm-errors-fraud",
        "monitoring-alarm-traffic-fraud",
        "monitoring-drift-fraud",
        "retraining-schedule-fraud",
        "retraining-workflow-fraud",
        "retraining-newdata-fraud",
        "retraining-driftevents-fraud",
        "retraining-alarm-drift-fraud",
    } <= created


def test_new_names_fit_their_rules(prod_added: dict) -> None:
    rule = name_rules()
    checks = {
        METRIC_ALERT: ("ruleName", "azure.monitor.metric_alert"),
        LOG_ALERT: ("ruleName", "azure.monitor.metric_alert"),
        ACTION_GROUP: ("actionGroupName", "azure.monitor.action_group"),
        WORKFLOW: ("workflowName", "azure.logic.workflow"),
        SUBSCRIPTION: ("eventSubscriptionName", "azure.eventgrid.subscription"),
        TOPIC: ("systemTopicName", "azure.eventgrid.subscription"),
    }
    for type_, (field, kind) in checks.items():
        found = [r["inputs"][field] for r in resources_of(prod_added, type_)]
        assert found and all(rule[kind].accepts(n) for n in found), type_
        assert len(set(found)) == len(found)
    schedules = [r["inputs"]["name"] for r in resources_of(prod_added, SCHEDULE)]
    assert len(set(schedules)) == len(schedules)
    assert all(re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,254}", n) for n in schedules)


def test_planning_is_deterministic(prod: dict, prod_again: dict) -> None:
    # the same spec (once through the CLI's loader, once as data) gives the same document
    same = {**prod_again, "stack": prod["stack"], "warnings": prod["warnings"]}
    assert dump_plan(prod) == dump_plan(same)


def test_mock_call_answers_the_logic_app_callback_with_unknowns() -> None:
    answer = BACKEND.mock_call("azure-native:logic:listWorkflowTriggerCallbackUrl", {})
    assert answer["value"] == UNKNOWN
