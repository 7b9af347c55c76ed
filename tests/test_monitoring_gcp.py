"""GCP monitoring and retraining: Cloud Monitoring, drift workflows, Cloud Scheduler and Eventarc.

Seven plans in all (module-scoped fixtures): stacks/dev.yaml, stacks/prod.yaml, VARIANT (a
duplicate email and a webhook, no dashboard, traffic alarm, hourly drift on a model without
training, a prefixed new-data trigger and a busy cron in a DST time zone), its drift model alone
(no training stage), a notify-only spec, dev again (determinism) and dev with a second fully
monitored and retrained model (the diff). The cron translation is checked by
parsing the Cloud Scheduler expression back with an independent unix-cron reader (below) and
comparing the minutes it fires at with the neutral model's.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.backends.gcp import BACKEND, automation
from mlops_infra.backends.gcp.backend import STORAGE_AGENT_PLACEHOLDER
from mlops_infra.backends.gcp.monitoring import (
    dashboard_json,
    drift_query,
    drift_source,
)
from mlops_infra.backends.gcp.naming import (

    capture_dataset_id,
    drift_workflow_name,
    topic_id,
    workflow_name,
)
from mlops_infra.diff import diff_plans
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron
from mlops_infra.templating import render_json
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "gcp"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
DESCRIPTOR = "gcp:monitoring/metricDescriptor:MetricDescriptor"
WORKFLOW = "gcp:workflows/workflow:Workflow"
JOB = "gcp:cloudscheduler/job:Job"
TRIGGER = "gcp:eventarc/trigger:Trigger"
TOPIC = "gcp:pubsub/topic:Topic"
TOPIC_MEMBER = "gcp:pubsub/topicIAMMember:TopicIAMMember"
NOTIFICATION = "gcp:storage/notification:Notification"
TABLE = "gcp:bigquery/table:Table"
DATASET_MEMBER = "gcp:bigquery/datasetIamMember:DatasetIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
SERVICE = "gcp:projects/service:Service"
IAM_TYPES = (PROJECT_MEMBER, SA_MEMBER, TOPIC_MEMBER, DATASET_MEMBER)
AUTOMATION_STAGES = ("monitoring", "retraining")
EXPRESSION = re.compile(r"^\$\{.*\}$", re.DOTALL)
# Workflows standard library and connectors the drift workflow may call.
DRIFT_CALLS = {"googleapis.bigquery.v2.jobs.insert", "googleapis.bigquery.v2.jobs.getQueryResults", "http.post"}


def _clouds(data: dict) -> dict:
    """Keep only the registered clouds' blocks (other backends may be mid-change); acknowledge
    the names GCP reserves (tests/test_backend_gcp.py checks that warning)."""
    data = copy.deepcopy(data)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data["clouds"]["gcp"]["name_generation"] = 1
    return data


def _stack(name: str) -> dict:
    return _clouds(yaml.safe_load((ROOT / "stacks" / f"{name}.yaml").read_text()))


DEV = _stack("dev")
PROD = _stack("prod")
VARIANT = _clouds(
    {
        **copy.deepcopy(BASE_SPEC),
        "storage": {"buckets": [{"name": "raw"}, {"name": "features"}]},
        "models": [
            {
                # Served from an explicit artifact, no training: drift only, hourly.
                "name": "ranker",
                "serving": {
                    "image": "gcr.io/acme/ranker:1.0",
                    "model_uri": "models/ranker/1/",
                    "compute": {"size": "cpu-small"},
                    "data_capture": {"sampling_percent": 50},
                },
                "monitoring": {
                    "min_invocations_per_hour": 120,
                    "drift": {"baseline": {"bucket": "features", "prefix": "ranker/baseline/"}, "schedule": "hourly"},
                },
            },
            {
                "name": "scorer",
                "training": {"image": "us-docker.pkg.dev/acme/t/scorer:2", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
                "registry": {"approval": "automatic"},
                "serving": {"image": "us-docker.pkg.dev/acme/s/scorer:2", "compute": {"size": "cpu-small"}},
                "monitoring": {"error_rate_percent": 2.5},
                "retraining": {
                    "schedule": "*/30 9-17 1,15 * mon-fri",
                    "timezone": "America/New_York",
                    "on_new_data": {"bucket": "raw", "prefix": "scorer/incoming/"},
                },
            },
        ],
        "monitoring": {
            "notify": {"emails": ["oncall@example.com", "oncall@example.com"], "webhook": "https://hooks.example.com/a?auth_token=t"},
            "dashboard": False,
        },
    }
)
NOTIFY_ONLY = _clouds({**copy.deepcopy(BASE_SPEC), "monitoring": {"notify": {"emails": ["team@example.com"]}}})
UPSELL = {
    "name": "upsell",
    "training": {"image": "us-docker.pkg.dev/acme/t/upsell:1", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "serving": {"image": "us-docker.pkg.dev/acme/s/upsell:1", "compute": {"size": "cpu-small"},
                "data_capture": {"sampling_percent": 10}},
    "monitoring": {"latency_p99_ms": 150, "error_rate_percent": 1, "min_invocations_per_hour": 10,
                   "drift": {"baseline": {"bucket": "raw", "prefix": "upsell/"}, "schedule": "weekly"}},
    "retraining": {"schedule": "0 4 * * 2", "on_new_data": {"bucket": "raw", "prefix": "upsell/new/"}, "on_drift": True},
}




@pytest.fixture(scope="module")
def variant() -> dict:
    return plan_for("gcp", VARIANT)


@pytest.fixture(scope="module")
def notify_only() -> dict:
    return plan_for("gcp", NOTIFY_ONLY)


@pytest.fixture(scope="module")
def drift_only() -> dict:
    data = copy.deepcopy(VARIANT)
    data["models"] = data["models"][:1]
    return plan_for("gcp", data)


@pytest.fixture(scope="module")
def dev_again() -> dict:
    return plan_for("gcp", DEV)


@pytest.fixture(scope="module")
def dev_two_models() -> dict:
    data = copy.deepcopy(DEV)
    data["models"].append(copy.deepcopy(UPSELL))
    return plan_for("gcp", data)


@pytest.fixture(scope="module")
def examples(dev: dict, prod: dict) -> list[tuple[dict, dict]]:
    return [(dev, DEV), (prod, PROD)]


def by_name(plan: dict) -> dict[str, dict]:
    return {r["name"]: r for r in plan["resources"]}


def _namer(data: dict) -> Any:
    spec = spec_from(data)
    return BACKEND.namer(spec, spec.settings_for("gcp"))


def identities(plan: dict) -> dict[str, str]:
    return plan["outputs"]["governance"]["identities"]


def _email(principal: str) -> str:
    return principal.removeprefix("serviceAccount:")


def group_principal(plan: dict, group: str) -> str:
    """The service account of a model group (in these specs each model is its own group)."""
    account = by_name(plan)[f"governance-identity-group-{group}"]["inputs"]
    return f"serviceAccount:{account['accountId']}@{account['project']}.iam.gserviceaccount.com"


def _body(job: dict) -> dict:
    """The Workflow Executions request a scheduler job sends, its argument parsed too."""
    body = json.loads(base64.b64decode(job["inputs"]["httpTarget"]["body"]))
    return {**body, "argument": json.loads(body["argument"])}


# --- the examples contain every kind of resource the issue asks for ---------------------------
def test_examples_have_notifications_alarms_dashboard_drift_and_three_triggers(examples: list) -> None:
    for plan, data in examples:
        res = by_name(plan)
        models = {m["name"]: m for m in data["models"]}
        emails = data["monitoring"]["notify"]["emails"]
        assert {r["name"] for r in resources_of(plan, CHANNEL) if r["inputs"]["type"] == "email"} == {
            f"monitoring-channel-email-{e}" for e in emails
        }
        assert len(resources_of(plan, DASHBOARD)) == 1
        for name, model in models.items():
            monitoring, retraining = model.get("monitoring", {}), model.get("retraining", {})
            if "latency_p99_ms" in monitoring:
                assert res[f"monitoring-alert-latency-{name}"]["type"] == POLICY
            if "error_rate_percent" in monitoring:
                assert res[f"monitoring-alert-errors-{name}"]["type"] == POLICY
            drift = "drift" in monitoring
            for kind in ("drift-baseline", "drift-workflow", "drift-schedule", "alert-drift"):
                assert (f"monitoring-{kind}-{name}" in res) is drift, (kind, name)
            assert (f"retraining-schedule-{name}" in res) is ("schedule" in retraining)
            assert (f"retraining-newdata-trigger-{name}" in res) is ("on_new_data" in retraining)
            assert (f"retraining-drift-trigger-{name}" in res) is bool(retraining.get("on_drift"))
        # All three kinds of trigger appear in each example (churn-classifier has them all).
        kinds = {r["type"] for r in plan["resources"] if r["stage"] == "retraining"}
        assert {JOB, TRIGGER, NOTIFICATION} <= kinds
    # prod also has a webhook.
    [webhook] = [r for r in resources_of(examples[1][0], CHANNEL) if r["inputs"]["type"] == "webhook_tokenauth"]
    assert webhook["inputs"]["labels"] == {"url": "https://hooks.example.com/mlops"}


def test_notification_channels_one_set_per_stack(variant: dict, notify_only: dict, dev: dict) -> None:
    channels = resources_of(variant, CHANNEL)
    # The duplicate address is one channel; the webhook posts to its URL (token in the URL).
    assert sorted((c["name"], c["inputs"]["type"]) for c in channels) == [
        ("monitoring-channel-email-oncall@example.com", "email"),
        ("monitoring-channel-webhook", "webhook_tokenauth"),
    ]
    email = by_name(variant)["monitoring-channel-email-oncall@example.com"]["inputs"]
    assert email["labels"] == {"email_address": "oncall@example.com"}
    for channel in channels + resources_of(dev, CHANNEL):
        assert channel["inputs"]["userLabels"]["managed-by"] == "mlops-infra" and channel["provider"] == "gcp"
    # A spec that only notifies: the channel and the Monitoring API, nothing else of the stage.
    assert {r["type"] for r in notify_only["resources"] if r["stage"] == "monitoring" and r["custom"]} == {CHANNEL}
    assert {r["inputs"]["service"] for r in resources_of(notify_only, SERVICE)} == {"monitoring.googleapis.com"}
    assert notify_only["outputs"]["monitoring"] == {"notification_channel": [UNKNOWN]}  # ids come from the cloud
    assert len(variant["outputs"]["monitoring"]["notification_channel"]) == 2


# --- endpoint alarms ---------------------------------------------------------------------------
def _condition(policy: dict) -> dict:
    [condition] = policy["inputs"]["conditions"]
    return condition["conditionThreshold"]


def test_endpoint_alarms_watch_their_models_endpoint_in_the_right_units(examples: list, variant: dict) -> None:
    checked = 0
    for plan, data in [*examples, (variant, VARIANT)]:
        res = by_name(plan)
        channels = sorted(r["name"] for r in resources_of(plan, CHANNEL) if not r["name"].startswith("monitoring-channel-retrain-"))
        for model in data["models"]:
            name, monitoring = model["name"], model.get("monitoring", {})
            endpoint = res[f"serving-endpoint-{name}"]["inputs"]["name"]
            endpoint_filter = f'resource.type = "aiplatform.googleapis.com/Endpoint" AND resource.labels.endpoint_id = "{endpoint}"'
            expected = {
                "latency": ("latency_p99_ms", "prediction_latencies", lambda v: float(v)),  # Vertex AI reports ms
                "errors": ("error_rate_percent", "error_count", lambda v: v / 100),  # a ratio of predictions
                "traffic": ("min_invocations_per_hour", "prediction_count", lambda v: float(v)),
            }
            for kind, (field, metric, threshold) in expected.items():
                policy = res.get(f"monitoring-alert-{kind}-{name}")
                assert (policy is not None) is (field in monitoring), (kind, name)
                if policy is None:
                    continue
                checked += 1
                condition = _condition(policy)
                assert condition["filter"] == f'{endpoint_filter} AND metric.type = "aiplatform.googleapis.com/prediction/online/{metric}"'
                assert condition["thresholdValue"] == pytest.approx(threshold(monitoring[field]))
                # It watches this model's endpoint resource, and notifies the stack's channels.
                assert policy["dependencies"]["conditions"] == [f"serving-endpoint-{name}"]
                assert sorted(policy["dependencies"].get("notificationChannels", [])) == channels
                assert len(policy["inputs"]["notificationChannels"]) == len(channels)
                assert policy["inputs"]["userLabels"]["mlops-model"] == name
                if kind == "latency":
                    [agg] = condition["aggregations"]
                    assert agg["perSeriesAligner"] == "ALIGN_PERCENTILE_99" and agg["alignmentPeriod"] == "300s"
                    assert condition["comparison"] == "COMPARISON_GT"
                if kind == "errors":
                    assert condition["denominatorFilter"].endswith('"aiplatform.googleapis.com/prediction/online/prediction_count"')
                    assert condition["denominatorAggregations"] == condition["aggregations"]
                if kind == "traffic":
                    assert condition["comparison"] == "COMPARISON_LT" and condition["aggregations"][0]["alignmentPeriod"] == "3600s"
                    assert condition["evaluationMissingData"] == "EVALUATION_MISSING_DATA_ACTIVE"  # idle is below too
    assert checked == 7  # every threshold of the three specs: dev 2, prod 3, variant 2
    # dev: 300 ms stays 300 (no microseconds on GCP), 1% becomes 0.01.
    assert _condition(by_name(examples[0][0])["monitoring-alert-latency-churn-classifier"])["thresholdValue"] == 300
    assert _condition(by_name(examples[0][0])["monitoring-alert-errors-churn-classifier"])["thresholdValue"] == 0.01


# --- dashboard ----------------------------------------------------------------------------------
def _tiles_fit(dashboard: dict) -> None:
    layout = dashboard["mosaicLayout"]
    cells: set[tuple[int, int]] = set()
    for tile in layout["tiles"]:
        assert 0 <= tile["xPos"] and tile["xPos"] + tile["width"] <= layout["columns"]
        covered = {(x, y) for x in range(tile["xPos"], tile["xPos"] + tile["width"])
                   for y in range(tile["yPos"], tile["yPos"] + tile["height"])}
        assert not covered & cells, "tiles overlap"
        cells |= covered


def test_the_dashboard_has_a_row_per_served_model(examples: list, variant: dict) -> None:
    for plan, data in examples:
        [resource] = resources_of(plan, DASHBOARD)
        assert resource["provider"] == "gcp" and resource["stage"] == "monitoring"
        dashboard = json.loads(resource["inputs"]["dashboardJson"])
        assert dashboard["displayName"] == f"mlops-infra churn/{data['environment']}"
        assert dashboard["labels"]["managed-by"] == "mlops-infra"
        assert all(name_rules()["gcp.label.key"].accepts(k) and name_rules()["gcp.label.value"].accepts(v)
                   for k, v in dashboard["labels"].items())
        served = sorted(m["name"] for m in data["models"] if "serving" in m)
        tiles = dashboard["mosaicLayout"]["tiles"]
        assert len(tiles) == 4 * len(served)
        _tiles_fit(dashboard)
        res = by_name(plan)
        for row, model in enumerate(served):
            endpoint = res[f"serving-endpoint-{model}"]["inputs"]["name"]
            row_tiles = sorted((t for t in tiles if t["yPos"] == row * 16), key=lambda t: t["xPos"])
            metrics = []
            for tile in row_tiles:
                widget = tile["widget"]
                assert widget["title"].startswith(f"{model}: ")
                [data_set] = widget["xyChart"]["dataSets"]
                query = data_set["timeSeriesQuery"]["timeSeriesFilter"]
                assert f'resource.labels.endpoint_id = "{endpoint}"' in query["filter"]
                assert query["aggregation"]["alignmentPeriod"] == "60s" and query["aggregation"]["perSeriesAligner"].startswith("ALIGN_")
                metrics.append(query["filter"].rsplit("/", 1)[-1].rstrip('"'))
            # invocations, latency, errors, instance count
            assert metrics == ["prediction_count", "prediction_latencies", "error_count", "replicas"]
        assert resource["dependencies"]["dashboardJson"] == [f"serving-endpoint-{m}" for m in served]
    assert not resources_of(variant, DASHBOARD)  # dashboard: false


def test_the_dashboard_template_renders_valid_json_for_many_models() -> None:
    endpoints = {f"m{i}": f"stack-m{i}-endpoint" for i in range(7)}
    text = dashboard_json(display_name='a "quoted" stack', labels={"owner": "x"}, endpoint_ids=endpoints)
    dashboard = json.loads(text)
    assert dashboard["displayName"] == 'a "quoted" stack'
    assert len(dashboard["mosaicLayout"]["tiles"]) == 28
    _tiles_fit(dashboard)
    assert render_json("gcp/dashboard.json.j2", display_name="x", labels={}, columns=48, tile_width=12,
                       tile_height=16, rows=[])["mosaicLayout"]["tiles"] == []


# --- drift monitoring ------------------------------------------------------------------------------
def test_drift_runs_on_schedule_over_captured_requests_and_the_baseline(examples: list, variant: dict) -> None:
    for plan, data in [*examples, (variant, VARIANT)]:
        res = by_name(plan)
        namer = _namer(data)
        spec = spec_from(data)
        ids = identities(plan)
        key = plan["outputs"]["governance"]["key_id"]
        metric_type = f"custom.googleapis.com/mlops_infra/churn/{data['environment'].replace('-', '_')}/drift"
        [descriptor] = resources_of(plan, DESCRIPTOR)
        assert descriptor["inputs"]["type"] == metric_type and descriptor["inputs"]["metricKind"] == "GAUGE"
        assert descriptor["inputs"]["labels"] == [{"description": "the model's name in the mlops-infra spec", "key": "model", "valueType": "STRING"}]
        for model in [m for m in spec.models if m.monitoring and m.monitoring.drift]:
            name, drift = model.name, model.monitoring.drift
            dataset = capture_dataset_id(namer, name)
            baseline = res[f"monitoring-drift-baseline-{name}"]
            config = baseline["inputs"]["externalDataConfiguration"]
            bucket = res[f"storage-bucket-{drift.baseline_ref.bucket}"]["inputs"]["name"]
            assert config["sourceUris"] == [f"gs://{bucket}/{drift.baseline_ref.prefix}*"]
            assert baseline["dependencies"]["externalDataConfiguration"] == [f"storage-bucket-{drift.baseline_ref.bucket}"]
            assert baseline["inputs"]["datasetId"] == dataset and baseline["inputs"]["tableId"] == "drift_baseline"
            assert "serving-capture-dataset-" + name in baseline["depends_on"]  # the serving stage's dataset first
            assert config["csvOptions"] == {"fieldDelimiter": "\u00fe", "quote": ""} and config["autodetect"] is False
            runner = group_principal(plan, name)
            reader = res[f"monitoring-drift-reader-{name}"]["inputs"]
            assert (reader["datasetId"], reader["role"], reader["member"]) == (dataset, "roles/bigquery.dataViewer", runner)
            # The workflow runs as the model's group identity (it reads the baseline), with the key.
            workflow = res[f"monitoring-drift-workflow-{name}"]
            inputs = workflow["inputs"]
            assert inputs["name"] == drift_workflow_name(namer, name)
            assert inputs["serviceAccount"] == _email(runner)
            assert inputs["cryptoKeyName"] == key and "governance-key-grant-workflows-agent" in workflow["dependencies"]["cryptoKeyName"]
            source = yaml.safe_load(inputs["sourceContents"])
            init = {k: v for item in source["main"]["steps"][0]["init"]["assign"] for k, v in item.items()}
            assert init["metric"] == {"type": metric_type, "labels": {"model": name}}
            project = data["clouds"]["gcp"]["project"]
            assert f"`{project}.{dataset}.request_response_logging`" in init["query"]
            assert f"`{project}.{dataset}.drift_baseline`" in init["query"]
            assert f"INTERVAL {automation.DRIFT_WINDOW_HOURS[drift.schedule]} HOUR" in init["query"]
            # Cloud Scheduler starts it on DRIFT_SCHEDULES (UTC), as the automation identity.
            job = res[f"monitoring-drift-schedule-{name}"]
            assert job["inputs"]["schedule"] == DRIFT_SCHEDULES[drift.schedule] and job["inputs"]["timeZone"] == "Etc/UTC"
            target = job["inputs"]["httpTarget"]
            region = data["clouds"]["gcp"]["region"]
            assert target["uri"] == (
                f"https://workflowexecutions.googleapis.com/v1/projects/{project}/locations/{region}/workflows/{inputs['name']}/executions"
            )
            assert f"monitoring-drift-workflow-{name}" in job["dependencies"]["httpTarget"]
            assert target["oauthToken"]["serviceAccountEmail"] == _email(ids["automation"]) and target["httpMethod"] == "POST"
            assert _body(job)["argument"] == {"model": name, "trigger": "schedule"}
            # Its first run finds the dataset read and the group's worker role (jobs, metric, logs) in place.
            assert {f"monitoring-drift-reader-{name}", f"governance-project-grant-worker-{name}"} <= set(job["depends_on"])
            worker = res[f"governance-project-grant-worker-{name}"]["inputs"]
            assert worker["member"] == runner and worker["role"].endswith("_drift_worker")
            # The alert watches this model's drift series and notifies the stack's channels.
            policy = res[f"monitoring-alert-drift-{name}"]
            condition = _condition(policy)
            assert condition["filter"] == f'metric.type = "{metric_type}" AND resource.type = "global" AND metric.labels.model = "{name}"'
            assert condition["thresholdValue"] == automation.DRIFT_THRESHOLD and condition["comparison"] == "COMPARISON_GT"
            assert policy["dependencies"]["conditions"] == ["monitoring-metric-drift"]
            assert policy["inputs"]["alertStrategy"]["notificationPrompts"] == ["OPENED"]
            retrains = bool(model.retraining and model.retraining.on_drift)
            assert (f"monitoring-channel-retrain-{name}" in policy["dependencies"]["notificationChannels"]) is retrains


def test_drift_alerts_reach_a_topic_only_the_monitoring_agent_may_publish_to(dev: dict) -> None:
    res = by_name(dev)
    key = dev["outputs"]["governance"]["key_id"]
    namer = _namer(DEV)
    topic = res["monitoring-drift-topic-churn-classifier"]
    assert topic["inputs"]["name"] == topic_id(namer, "churn-classifier", "drift")
    assert topic["inputs"]["kmsKeyName"] == key and "governance-key-grant-pubsub-agent" in topic["dependencies"]["kmsKeyName"]
    assert topic["inputs"]["messageStoragePolicy"] == {"allowedPersistenceRegions": ["us-central1"]}
    channel = res["monitoring-channel-retrain-churn-classifier"]
    assert channel["inputs"]["type"] == "pubsub"
    assert channel["inputs"]["labels"] == {"topic": f"projects/acme-churn-dev/topics/{topic['inputs']['name']}"}
    assert channel["depends_on"] == ["monitoring-drift-publisher-churn-classifier"]
    publisher = res["monitoring-drift-publisher-churn-classifier"]
    assert publisher["inputs"]["role"] == "roles/pubsub.publisher"
    assert publisher["dependencies"]["member"] == ["governance-service-agent-monitoring"]
    assert publisher["dependencies"]["topic"] == ["monitoring-drift-topic-churn-classifier"]
    assert res["governance-service-agent-monitoring"]["inputs"]["service"] == "monitoring.googleapis.com"


def test_the_drift_workflow_template_is_valid_for_every_schedule(variant: dict) -> None:
    """Workflows syntax: main(params) with named steps; every call a known connector or function;
    every jump to an existing step; every "${" string a whole expression. BigQuery jobs.insert
    body: configuration.query.query + useLegacySql; Monitoring timeSeries.create: timeSeries[]
    with metric.type, resource.type and points[].interval.endTime + value."""
    spec = spec_from(VARIANT)
    settings_ = spec.settings_for("gcp")
    from mlops_infra.backends.context import StageContext

    for schedule in ("hourly", "daily", "weekly"):
        data = copy.deepcopy(VARIANT)
        data["models"][0]["monitoring"]["drift"]["schedule"] = schedule
        spec = spec_from(data)
        ctx = StageContext(spec=spec, cloud="gcp", stage="monitoring", settings=settings_,
                           namer=BACKEND.namer(spec, settings_), parent=None, provider=None)  # type: ignore[arg-type]
        model = spec.model("ranker")
        source = yaml.safe_load(drift_source(ctx, model, metric_type="custom.googleapis.com/x/drift"))
        assert list(source) == ["main"] and source["main"]["params"] == ["args"]
        named = {name: body for step in source["main"]["steps"] for name, body in step.items()}
        assert list(named) == ["init", "run_query", "read_score", "check_score", "no_score", "write_score", "finish"]
        for name, body in named.items():
            if "call" in body:
                assert body["call"] in DRIFT_CALLS, name
            for target in filter(None, [body.get("next")] + [c.get("next") for c in body.get("switch", [])]):
                assert target in named, f"{name} jumps to a missing step {target}"
        for text in _strings(source):
            if "${" in text:
                assert EXPRESSION.match(text), text
        query = named["run_query"]["args"]["body"]["configuration"]["query"]
        assert query == {"query": "${query}", "useLegacySql": False}
        [series] = named["write_score"]["args"]["body"]["timeSeries"]
        assert series["resource"]["type"] == "global" and series["points"][0]["interval"]["endTime"].startswith("${")
        assert named["write_score"]["args"]["auth"] == {"type": "OAuth2"}
        sql = drift_query(ctx, model)
        assert f"INTERVAL {automation.DRIFT_WINDOW_HOURS[schedule]} HOUR" in sql
        assert sql.count("(") == sql.count(")") and "${" not in sql  # no Workflows expression inside


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- retraining ------------------------------------------------------------------------------------
def test_every_trigger_starts_its_models_training_workflow(examples: list, variant: dict) -> None:
    for plan, data in [*examples, (variant, VARIANT)]:
        res = by_name(plan)
        namer = _namer(data)
        spec = spec_from(data)
        ids = identities(plan)
        project, region = data["clouds"]["gcp"]["project"], data["clouds"]["gcp"]["region"]
        for model in [m for m in spec.models if m.retraining]:
            name, retraining = model.name, model.retraining
            workflow = f"projects/{project}/locations/{region}/workflows/{workflow_name(namer, name)}"
            assert plan["outputs"]["training"]["pipelines"][name] == workflow
            if retraining.schedule:
                job = res[f"retraining-schedule-{name}"]
                assert job["inputs"]["httpTarget"]["uri"] == f"https://workflowexecutions.googleapis.com/v1/{workflow}/executions"
                assert job["dependencies"]["httpTarget"] == ["governance-identity-automation", f"training-workflow-{name}"]
                assert job["inputs"]["httpTarget"]["oauthToken"]["serviceAccountEmail"] == _email(ids["automation"])
                assert job["inputs"]["schedule"] == automation.scheduler_cron(retraining.schedule)
                assert job["inputs"]["timeZone"] == retraining.timezone
                assert name_rules()["gcp.cloudscheduler.job"].accepts(job["inputs"]["name"])
            triggers = {kind: res.get(f"retraining-{kind}-trigger-{name}") for kind in ("newdata", "drift")}
            for trigger in triggers.values():
                if trigger is None:
                    continue
                inputs = trigger["inputs"]
                assert inputs["destination"] == {"workflow": workflow}
                assert trigger["dependencies"]["destination"] == [f"training-workflow-{name}"]
                assert inputs["serviceAccount"] == _email(ids["automation"])
                assert inputs["matchingCriterias"] == [{"attribute": "type", "value": "google.cloud.pubsub.topic.v1.messagePublished"}]
                assert inputs["location"] == region and inputs["labels"]["mlops-model"] == name
                assert name_rules()["gcp.eventarc.trigger"].accepts(inputs["name"])
                assert "retraining-token-creator-pubsub-agent" in trigger["depends_on"]
            new_data = retraining.new_data_ref
            assert (triggers["newdata"] is not None) is (new_data is not None)
            if new_data is not None:
                topic = res[f"retraining-newdata-topic-{name}"]
                path = f"projects/{project}/topics/{topic['inputs']['name']}"
                assert triggers["newdata"]["inputs"]["transport"] == {"pubsub": {"topic": path}}
                notification = res[f"retraining-newdata-notification-{name}"]
                assert notification["inputs"]["topic"] == path
                assert notification["inputs"]["bucket"] == res[f"storage-bucket-{new_data.bucket}"]["inputs"]["name"]
                assert notification["dependencies"]["bucket"] == [f"storage-bucket-{new_data.bucket}"]
                assert notification["inputs"].get("objectNamePrefix") == (new_data.prefix or None)
                assert notification["inputs"]["eventTypes"] == ["OBJECT_FINALIZE"]
                assert notification["depends_on"] == [f"retraining-newdata-publisher-{name}"]
            if retraining.on_drift:
                drift_topic = res[f"monitoring-drift-topic-{name}"]["inputs"]["name"]
                assert triggers["drift"]["inputs"]["transport"] == {"pubsub": {"topic": f"projects/{project}/topics/{drift_topic}"}}
                assert f"monitoring-drift-topic-{name}" in triggers["drift"]["depends_on"]  # the monitoring stage first
    # prod's ltv-regressor retrains on its schedule alone.
    res = by_name(examples[1][0])
    assert "retraining-schedule-ltv-regressor" in res
    assert not {"retraining-newdata-trigger-ltv-regressor", "retraining-drift-trigger-ltv-regressor"} & set(res)
    # The variant's prefix: only objects under scorer/incoming/ start it.
    assert by_name(variant)["retraining-newdata-notification-scorer"]["inputs"]["objectNamePrefix"] == "scorer/incoming/"


# Cloud Scheduler reads unix-cron (cloud.google.com/scheduler/docs/configuring/cron-job-schedules):
# fields minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-6 or
# SUN-SAT or 7 for Sunday; "*", ranges a-b, "/N" steps after a range or "*", comma lists; the two
# day fields OR together unless one of them is "*". An independent reader of that format:
_MONTHS = {m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_UNIX_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS))


def _unix_number(text: str, names: dict[str, int]) -> int:
    return int(text) if text.isdigit() else names[text.upper()]


def _unix_values(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-")
            first, last = _unix_number(a, names), _unix_number(b, names)
        else:
            assert not step, f"a step needs a range or '*': {item}"
            first = last = _unix_number(span, names)
        assert low <= first <= last <= high, item
        values.update(range(first, last + 1, int(step) if step else 1))
    return values


def scheduler_fires(expression: str) -> Any:
    fields = expression.split()
    assert len(fields) == 5
    minutes, hours, days, months, weekdays = (_unix_values(t, *f) for t, f in zip(fields, _UNIX_FIELDS))
    weekdays = {d % 7 for d in weekdays}
    either = fields[2] != "*" and fields[4] != "*"

    def fires(moment: datetime) -> bool:
        if moment.minute not in minutes or moment.hour not in hours or moment.month not in months:
            return False
        day, weekday = moment.day in days, (moment.isoweekday() % 7) in weekdays
        return (day or weekday) if either else (day and weekday)

    return fires


CRONS = [
    "0 3 * * 1", "0 2 * * 0", "30 4 1 * *", "*/15 9-17 * * 1-5", "0 0 1,15 * fri", "0 12 * jan,jul sun",
    "0 0 */2 * *", "0 6 * * 7", "0 0 1 * 0-7", "5/20 1-23/4 3-31/7 2/5 1-5/2", "59 23 31 12 *", "0 0 29 2 *",
    "*/7 */5 * * *", "0 0 1-7 * mon", "*/30 9-17 1,15 * mon-fri", *DRIFT_SCHEDULES.values(),
]


@pytest.mark.parametrize("expression", CRONS)
def test_cloud_scheduler_cron_fires_at_the_same_minutes(expression: str) -> None:
    translated = automation.scheduler_cron(expression)
    cloud, neutral = scheduler_fires(translated), parse_cron(expression).fires
    # Every minute of four weeks across a month end...
    start = datetime(2026, 2, 16)
    for i in range(4 * 7 * 24 * 60):
        moment = start + timedelta(minutes=i)
        assert cloud(moment) == neutral(moment), (translated, moment)
    # ...and every day of four years (a leap day included) at each hour:minute the cron names.
    cron = parse_cron(expression)
    times = [(h, m) for h in sorted(cron.hours)[:3] for m in sorted(cron.minutes)[:3]]
    day = datetime(2026, 1, 1)
    fired = 0
    while day.year < 2030:
        for hour, minute in times:
            moment = day.replace(hour=hour, minute=minute)
            assert cloud(moment) == neutral(moment), (translated, moment)
            fired += neutral(moment)
        day += timedelta(days=1)
    assert fired, "the comparison saw the cron fire"


def test_translation_uses_only_what_cloud_scheduler_documents() -> None:
    for expression in CRONS:
        translated = automation.scheduler_cron(expression)
        assert re.fullmatch(r"(\*|\d+(-\d+)?(,\d+(-\d+)?)*)( (\*|\d+(-\d+)?(,\d+(-\d+)?)*)){4}", translated), translated
        weekdays = translated.split()[4]
        assert "7" not in weekdays.split(",") and not re.search(r"-7\b", weekdays)  # 0-6 only
    assert automation.scheduler_cron("0 3 * * 1") == "0 3 * * 1"
    assert automation.scheduler_cron("*/15 9-17 * * mon-fri") == "0,15,30,45 9-17 * * 1-5"
    assert automation.scheduler_cron("0 6 * * 7") == "0 6 * * 0"
    assert automation.scheduler_cron("0 0 1 * 0-7") == "0 0 1 * 0-6"  # still restricted: day-of-month ORs with it


# --- least privilege ------------------------------------------------------------------------------
def test_triggers_may_start_workflows_and_nothing_more(examples: list, variant: dict) -> None:
    allowed = {
        DATASET_MEMBER: {"roles/bigquery.dataViewer"},
        TOPIC_MEMBER: {"roles/pubsub.publisher"},
        SA_MEMBER: {"roles/iam.serviceAccountTokenCreator"},
    }
    for plan, _ in [*examples, (variant, VARIANT)]:
        res = by_name(plan)
        ids = identities(plan)
        [starter_role] = [r for r in resources_of(plan, CUSTOM_ROLE) if r["name"] == "governance-role-workflow-starter"]
        assert starter_role["inputs"]["permissions"] == ["workflows.executions.create"]
        starter = res["governance-project-grant-workflow-starter-automation"]
        assert starter["inputs"]["member"] == ids["automation"]
        assert starter["dependencies"]["role"] == ["governance-role-workflow-starter"]
        grants = [r for r in plan["resources"] if r["stage"] in AUTOMATION_STAGES and r["type"] in IAM_TYPES]
        assert grants
        # What drift workflows need on the project is their group's worker role, nothing else.
        drift_role = res["governance-role-drift-worker"]["inputs"]
        assert drift_role["permissions"] == ["bigquery.jobs.create", "logging.logEntries.create", "monitoring.timeSeries.create"]
        groups = {group_principal(plan, n.removeprefix("governance-identity-group-")) for n in res
                  if n.startswith("governance-identity-group-")}
        for grant in grants:
            inputs = grant["inputs"]
            assert inputs["role"] in allowed[grant["type"]], grant["name"]
            assert "*" not in inputs["role"] and "admin" not in inputs["role"].lower()
            if inputs["member"] == UNKNOWN:  # a service agent (its email holds the project number)
                assert grant["dependencies"]["member"][0].startswith("governance-service-agent-"), grant["name"]
            else:  # a group identity (drift workflows), or Cloud Storage's agent (asked by invoke)
                assert inputs["member"] in (*groups, f"serviceAccount:{STORAGE_AGENT_PLACEHOLDER}"), grant["name"]
            if grant["type"] == TOPIC_MEMBER:  # publish to one topic, per model
                assert grant["dependencies"]["topic"] == [grant["name"].replace("-publisher-", "-topic-")]
            if grant["type"] == SA_MEMBER:  # Pub/Sub may mint tokens for the automation account only
                assert inputs["serviceAccountId"].endswith(f"/serviceAccounts/{_email(ids['automation'])}")
                assert grant["dependencies"]["member"] == ["governance-service-agent-pubsub"]
        # Schedulers and triggers act as the automation identity, which holds no other role here.
        acting = [r for r in plan["resources"] if r["type"] in (JOB, TRIGGER)]
        for r in acting:
            who = r["inputs"].get("serviceAccount") or r["inputs"]["httpTarget"]["oauthToken"]["serviceAccountEmail"]
            assert who == _email(ids["automation"]), r["name"]
        assert not [g for g in grants if g["inputs"]["member"] == ids["automation"]]
    # The Cloud Storage agent publishes new-object notices to the model's topic.
    publisher = by_name(variant)["retraining-newdata-publisher-scorer"]
    assert publisher["inputs"]["member"] == f"serviceAccount:{STORAGE_AGENT_PLACEHOLDER}"
    assert publisher["inputs"]["role"] == "roles/pubsub.publisher"


def test_apis_are_enabled_only_when_used(dev: dict, variant: dict, notify_only: dict, drift_only: dict) -> None:
    def services(plan: dict) -> set[str]:
        return {r["inputs"]["service"].split(".")[0] for r in resources_of(plan, SERVICE)}

    automation_apis = {"monitoring", "cloudscheduler", "eventarc", "pubsub", "workflowexecutions"}
    assert automation_apis <= services(dev)
    # variant: drift on ranker (scheduler), new data on scorer (Pub/Sub, Eventarc).
    assert automation_apis <= services(variant)
    assert services(notify_only) == {"monitoring"}
    for plan in (dev, variant, notify_only):
        for r in resources_of(plan, SERVICE):
            assert r["inputs"]["disableOnDestroy"] is False, r["name"]
    # Topics are encrypted: the Pub/Sub agent may use the key.
    assert by_name(variant)["governance-key-grant-pubsub-agent"]["dependencies"]["member"] == ["governance-service-agent-pubsub"]
    # Without a training stage the drift workflow's group identity still writes its logs, through
    # its worker role (one project grant per group, whatever it runs).
    [(name, grant)] = [(r["name"], r["inputs"]) for r in resources_of(drift_only, PROJECT_MEMBER) if "worker" in r["name"]]
    role = by_name(drift_only)["governance-role-drift-worker"]["inputs"]
    assert "logging.logEntries.create" in role["permissions"] and grant["role"].endswith(role["roleId"])
    assert grant["member"] == group_principal(drift_only, name.removeprefix("governance-project-grant-worker-"))
    assert {r["stage"] for r in drift_only["resources"]} >= {"monitoring"} and "training" not in {r["stage"] for r in drift_only["resources"]}
    assert "workflows" in services(drift_only)  # the drift workflow needs it even without training


# --- names, diffs, determinism ------------------------------------------------------------------------
def test_physical_names_follow_the_rules(examples: list, variant: dict) -> None:
    rules = name_rules()
    kinds = {TOPIC: "gcp.pubsub.topic", JOB: "gcp.cloudscheduler.job", WORKFLOW: "gcp.workflows.workflow"}
    for plan, _ in [*examples, (variant, VARIANT)]:
        for r in plan["resources"]:
            if r["type"] in kinds:
                assert rules[kinds[r["type"]]].accepts(r["inputs"]["name"]), r["name"]
            if r["type"] == TRIGGER:
                assert name_rules()["gcp.eventarc.trigger"].accepts(r["inputs"]["name"]), r["name"]
            if r["type"] == DESCRIPTOR:
                relative = r["inputs"]["type"].removeprefix("custom.googleapis.com/")
                assert re.fullmatch(r"[A-Za-z0-9_/]{1,100}", relative)
    long = _namer({**DEV, "project": "a-b-c-d-e-f-g-h-i-j-k-lm", "environment": "stage-eu-west-1x"})
    from mlops_infra.backends.gcp.naming import trigger_name

    assert name_rules()["gcp.eventarc.trigger"].accepts(trigger_name(long, "m" * 40, "new-data"))
    assert len(automation.drift_metric_type("a-b-c-d-e-f-g-h-i-j-k-lm", "stage-eu-west-1x")) <= len("custom.googleapis.com/") + 100


def test_adding_a_model_shows_only_creates(dev: dict, dev_two_models: dict) -> None:
    changes = diff_plans(dev, dev_two_models)
    assert not changes.delete
    # The dashboard gets the new model's row: the one resource that lists every served model.
    assert [(u.name, u.paths) for u in changes.update] == [("monitoring-dashboard", ["inputs.dashboardJson<json>.mosaicLayout.tiles"])]
    created = {c["name"] for c in changes.create}
    assert all("upsell" in name for name in created), sorted(n for n in created if "upsell" not in n)
    assert {
        "monitoring-alert-latency-upsell", "monitoring-alert-errors-upsell", "monitoring-alert-traffic-upsell",
        "monitoring-drift-workflow-upsell", "monitoring-drift-schedule-upsell", "monitoring-alert-drift-upsell",
        "monitoring-channel-retrain-upsell", "retraining-schedule-upsell", "retraining-newdata-trigger-upsell",
        "retraining-drift-trigger-upsell", "retraining-newdata-notification-upsell",
    } <= created


def test_the_same_spec_plans_to_the_same_bytes(dev: dict, dev_again: dict) -> None:
    assert dump_plan({**dev_again, "warnings": dev["warnings"]}) == dump_plan(dev)
    assert diff_plans(dev, dev_again).empty


# --- validation ----------------------------------------------------------------------------------------
def _problems(data: dict) -> dict[tuple, Any]:
    spec = spec_from(data)
    return {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}


def test_checks_for_what_gcp_cannot_do(variant: dict) -> None:
    # A drift workflow named like another model's training workflow.
    data = copy.deepcopy(VARIANT)
    data["models"].append({**copy.deepcopy(data["models"][1]), "name": "ranker-drift"})
    data["models"][-1].pop("retraining")
    clash = _problems(data)[("models", 2, "name")]
    assert clash.severity == "error" and "ranker-drift" in clash.message
    # Retraining a registered model without serving: runs would lack their serving image.
    data = copy.deepcopy(VARIANT)
    data["models"][1].pop("serving")
    data["models"][1].pop("monitoring")
    assert _problems(data)[("models", 1, "retraining")].severity == "error"
    # The host's zone file is no tz database name.
    data = copy.deepcopy(VARIANT)
    data["models"][1]["retraining"]["timezone"] = "localtime"
    problems = _problems(data)
    if ("models", 1, "retraining", "timezone") in problems:  # only where this host lists "localtime"
        assert problems[("models", 1, "retraining", "timezone")].severity == "error"
    # Starting workflows is a project-wide grant on GCP: a standing fact docs/clouds.md states, not a
    # warning every run repeats (no spec change can act on it).
    assert not [p for p in _problems(VARIANT).values() if "workflow" in p.message and p.severity == "warning"]
    assert "`workflows.executions.create` on the project" in (ROOT / "docs" / "clouds.md").read_text().replace("\n", " ")
    assert not [p for p in _problems(VARIANT).values() if p.severity == "error"]
    assert not [p for p in _problems(DEV).values() if p.severity == "error"]
    assert not [p for p in _problems(PROD).values() if p.severity == "error"]
