"""Monitoring and retraining facts on GCP as pure functions (no cloud SDK): which models get drift
monitoring and which retraining triggers, the Cloud Monitoring filters of their alert policies,
the custom drift metric, and the translation of a neutral cron into Cloud Scheduler's format.
Shared by the stage checks, governance.py (which APIs to enable), monitoring.py and retraining.py.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron

if TYPE_CHECKING:
    from pulumi_gcp.cloudscheduler import JobHttpTargetArgsDict

# --- Vertex AI endpoint metrics (Cloud Monitoring, monitored resource aiplatform.googleapis.com/Endpoint,
# resource labels resource_container, location, endpoint_id; "aiplatform" section of the Google
# Cloud metrics list). prediction_latencies is a DELTA DISTRIBUTION in MILLISECONDS (the neutral
# latency_p99_ms needs no conversion, unlike SageMaker's microseconds); error_count and
# prediction_count are DELTA INT64 counts; replicas is a GAUGE of active replicas.
ENDPOINT_RESOURCE = "aiplatform.googleapis.com/Endpoint"
LATENCY_METRIC = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
ERROR_METRIC = "aiplatform.googleapis.com/prediction/online/error_count"
PREDICTION_METRIC = "aiplatform.googleapis.com/prediction/online/prediction_count"
REPLICAS_METRIC = "aiplatform.googleapis.com/prediction/online/replicas"
ALERT_WINDOW_SECONDS = 300  # latency and error conditions: 5-minute windows, held for 5 minutes
TRAFFIC_WINDOW_SECONDS = 3600  # min_invocations_per_hour: predictions counted per hour

# --- drift: a Population Stability Index per feature (the captured requests of the last schedule
# period against the baseline, ten baseline-decile bins per numeric feature, one bin per value for
# strings and booleans); the score is the largest. 0.25 is the customary "significant shift" line.
DRIFT_THRESHOLD = 0.25
DRIFT_WINDOW_HOURS = {"hourly": 1, "daily": 24, "weekly": 168}
DRIFT_ALIGNMENT_SECONDS = 600  # a drift run writes one point; it stays in view for 10 minutes
DRIFT_TIME_ZONE = "Etc/UTC"  # DRIFT_SCHEDULES are UTC times (Cloud Scheduler's default zone)
BASELINE_TABLE = "drift_baseline"  # the external table over the baseline, in the capture dataset
# Reads each baseline line whole: BigQuery splits CSV fields on the first byte of the delimiter
# encoded as ISO-8859-1, and 0xFE (þ) never occurs in UTF-8 text.
BASELINE_DELIMITER = "\u00fe"

# Vixie-cron time zone names Python's zoneinfo lists that are no tz database zone Cloud Scheduler
# takes: "localtime" is the host's own zone file.
NOT_TZ_DATABASE = ("localtime",)


def time_zone_problems(time_zone: str, path: tuple) -> list[Any]:
    """A zone Cloud Scheduler would refuse (retraining and batch schedules)."""
    from mlops_infra.stages.base import finding

    if time_zone not in NOT_TZ_DATABASE:
        return []
    return [
        finding(
            path,
            f"{time_zone!r} is this machine's zone file, not a tz database name Cloud Scheduler takes",
            hint="name the zone, e.g. Europe/Amsterdam or UTC",
            value=time_zone,
        )
    ]


def drift_models(spec: Any) -> list[Any]:
    """Models whose drift is monitored: drift needs an endpoint that captures requests (the neutral
    checks report the others; the stages skip them so an invalid spec still plans)."""
    return [
        m
        for m in spec.models
        if m.monitoring is not None
        and m.monitoring.drift is not None
        and m.serving is not None
        and m.serving.data_capture is not None
    ]


def alarm_models(spec: Any) -> list[Any]:
    """Served models with at least one endpoint threshold."""
    return [
        m
        for m in spec.models
        if m.serving is not None
        and m.monitoring is not None
        and (m.monitoring.latency_p99_ms or m.monitoring.error_rate_percent or m.monitoring.min_invocations_per_hour)
    ]


def retraining_models(spec: Any) -> list[Any]:
    """Models with retraining triggers and a training workflow to start."""
    return [m for m in spec.models if m.retraining is not None and m.training is not None]


def drift_retrained(spec: Any) -> list[Any]:
    """Models retrained when their drift alert opens (drift monitored and a workflow to start)."""
    drifting = {m.name for m in drift_models(spec)}
    return [m for m in retraining_models(spec) if m.retraining.on_drift and m.name in drifting]


def new_data_retrained(spec: Any) -> list[Any]:
    return [m for m in retraining_models(spec) if m.retraining.new_data_ref is not None]


def scheduled_retrained(spec: Any) -> list[Any]:
    return [m for m in retraining_models(spec) if m.retraining.schedule]


def batch_models(spec: Any) -> list[Any]:
    """Models scored in batch (their own workflow, backends/gcp/batch.py)."""
    return [m for m in spec.models if m.batch is not None]


def new_data_batched(spec: Any) -> list[Any]:
    return [m for m in batch_models(spec) if m.batch.on_new_data]


def scheduled_batched(spec: Any) -> list[Any]:
    return [m for m in batch_models(spec) if m.batch.schedule]


def uses_pubsub(spec: Any) -> bool:
    """Topics carry new-object notifications, drift alerts and (private networks) schedules to Eventarc."""
    return bool(
        new_data_retrained(spec) or drift_retrained(spec) or new_data_batched(spec) or schedules_through_pubsub(spec)
    )


def scheduled_prep(spec: Any) -> list[Any]:
    """Models whose data preparation runs on a schedule (data_prep.py)."""
    return [m for m in spec.models if m.data_prep is not None and m.data_prep.schedule]


def uses_scheduler(spec: Any) -> bool:
    return bool(drift_models(spec) or scheduled_retrained(spec) or scheduled_batched(spec) or scheduled_prep(spec))


def schedules_through_pubsub(spec: Any) -> bool:
    """With governance.network: private, Cloud Scheduler publishes to a topic that an Eventarc trigger
    turns into a workflow execution, instead of calling the Workflow Executions API itself: Pub/Sub
    in the same project is a target VPC Service Controls allows Cloud Scheduler
    (cloud.google.com/scheduler/docs/secure-with-vpcsc), and the rest of the path stays inside
    Google's services (scheduling.py)."""
    return spec.governance.network == "private" and uses_scheduler(spec)


def push_grant_in_governance(spec: Any) -> bool:
    """Whether the governance stage makes the Pub/Sub agent's token grant on the automation identity
    (Eventarc pushes to Workflows with its tokens): when private schedules need it, since drift
    schedules (monitoring) and retraining triggers both do; otherwise the retraining stage does."""
    return spec.governance.network == "private" and uses_pubsub(spec)


def starts_workflows(spec: Any) -> bool:
    """Something (a scheduler job or an Eventarc trigger) starts workflow executions."""
    return bool(
        drift_models(spec) or scheduled_retrained(spec) or scheduled_batched(spec) or scheduled_prep(spec)
        or uses_pubsub(spec)
    )


def retraining_pushes(spec: Any) -> bool:
    """Whether the retraining stage has Eventarc triggers (new data, drift) of its own."""
    return bool(new_data_retrained(spec) or drift_retrained(spec))


# --- starting a workflow: Workflow Executions v1 projects.locations.workflows.executions.create
# (POST .../workflows/W/executions, body Execution{argument: a JSON string the workflow receives as
# its params}); Cloud Scheduler calls it with an OAuth access token of the job's service account.
EXECUTIONS_API = "https://workflowexecutions.googleapis.com/v1"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Eventarc: a Pub/Sub trigger may name an existing topic as its transport (eventarc v1 Trigger
# transport.pubsub.topic); events reach the workflow as its argument, the CloudEvent.
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def executions_uri(workflow_path: str) -> str:
    return f"{EXECUTIONS_API}/{workflow_path}/executions"


def execution_body(argument: dict[str, Any]) -> str:
    """The base64 request body Cloud Scheduler sends (http_target.body is base64)."""
    body = json.dumps({"argument": json.dumps(argument, sort_keys=True)}, sort_keys=True)
    return base64.b64encode(body.encode()).decode()


def message_data(argument: dict[str, Any]) -> str:
    """The base64 Pub/Sub message a private schedule publishes (pubsub_target.data is base64); the
    workflow receives it inside the Eventarc CloudEvent."""
    return base64.b64encode(json.dumps(argument, sort_keys=True).encode()).decode()


def scheduler_target(
    workflow_path: str, *, service_account: str, argument: dict[str, Any]
) -> JobHttpTargetArgsDict:
    """A Cloud Scheduler http_target that starts one execution of `workflow_path` as `service_account`."""
    return {
        "uri": executions_uri(workflow_path),
        "http_method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": execution_body(argument),
        "oauth_token": {"service_account_email": service_account, "scope": CLOUD_PLATFORM_SCOPE},
    }


# --- Cloud Monitoring filters ---------------------------------------------------------------
def endpoint_filter(endpoint_id: str, metric: str) -> str:
    """The time series of one Vertex AI endpoint's `metric` (endpoint_id: the endpoint resource
    name's last part)."""
    return (
        f'resource.type = "{ENDPOINT_RESOURCE}" AND resource.labels.endpoint_id = "{endpoint_id}" '
        f'AND metric.type = "{metric}"'
    )


def endpoint_id_of(endpoint_path: str) -> str:
    """projects/P/locations/R/endpoints/ID -> ID."""
    return endpoint_path.rsplit("/", 1)[-1]


def drift_metric_type(project: str, environment: str) -> str:
    """The stack's custom drift metric (one descriptor per stack, so two stacks in one GCP project
    never declare the same type; relative names take letters, digits, '_' and '/')."""
    return f"custom.googleapis.com/mlops_infra/{project.replace('-', '_')}/{environment.replace('-', '_')}/drift"


def drift_filter(metric_type: str, model: str) -> str:
    return f'metric.type = "{metric_type}" AND resource.type = "global" AND metric.labels.model = "{model}"'


def drift_cron(schedule: str) -> str:
    return scheduler_cron(DRIFT_SCHEDULES[schedule])


# --- cron: neutral -> Cloud Scheduler (unix-cron) ----------------------------------------------
# Cloud Scheduler reads unix-cron (minute hour day-of-month month day-of-week, day-of-week 0-6
# or 7 for Sunday) in the job's time_zone (a tz database name), on wall-clock time; day-of-month
# and day-of-week combine with OR unless one of them is "*" (cloud.google.com/scheduler/docs/
# configuring/cron-job-schedules). Those are Vixie cron's rules, the neutral ones, so every cron
# translates. The translation writes each field out as the explicit numbers the neutral parser
# expanded (runs as ranges): no names, steps or 7, and "*" in a day field exactly when the
# neutral field was "*", so the OR rule applies to the same expressions on both sides.
_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def scheduler_cron(expression: str) -> str:
    cron = parse_cron(expression)
    values = (cron.minutes, cron.hours, cron.days, cron.months, cron.weekdays)
    # A day field is "*" exactly when the neutral one was; the others whenever they cover it all.
    unrestricted = (None, None, not cron.days_restricted, None, not cron.weekdays_restricted)
    fields = []
    for numbers, (low, high), free in zip(values, _FIELDS, unrestricted):
        everything = set(numbers) == set(range(low, high + 1))
        fields.append("*" if (free if free is not None else everything) else _runs(sorted(numbers)))
    return " ".join(fields)


def _runs(numbers: list[int]) -> str:
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ",".join(parts)
