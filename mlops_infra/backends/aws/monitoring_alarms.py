"""CloudWatch alarms, the SNS channel, the dashboard and Model Monitor drift jobs as pure data.

No SDK here: the monitoring stage turns these into pulumi-aws arguments (snake_case dicts the
SDK accepts as its *Args), the stage's `check` validates what the services would reject and
measures the grants, and the tests read them. Facts, with their sources:

- Endpoint metrics (SageMaker developer guide, "Amazon SageMaker AI metrics in CloudWatch"):
  namespace AWS/SageMaker, dimensions EndpointName and VariantName; Invocations,
  Invocation4XXErrors and Invocation5XXErrors are counts (statistic Sum); ModelLatency is in
  MICROSECONDS (so a p99 of 300 ms is a threshold of 300000). Instance metrics
  (CPUUtilization...) are in /aws/sagemaker/Endpoints, one data point per instance and minute:
  their SampleCount per minute is the number of running instances (no metric counts them).
- Metric math in alarms (CloudWatch PutMetricAlarm Metrics): up to 10 metrics of one period;
  ids start with a lowercase letter; exactly one query returns data.
- Alarm actions: an SNS topic ARN. A topic encrypted with a customer managed key receives
  CloudWatch's notifications only if the key policy lets cloudwatch.amazonaws.com use it
  (policies.key_policy(alarms=...)) and the topic policy lets it publish (topic_policy).
- Dashboards (CloudWatch API, "Dashboard Body Structure and Syntax"): a JSON body with a
  "widgets" array of 0 to 500 widgets on a grid 24 units wide; metric widgets list metrics as
  [namespace, name, dimension, value, ..., {options}] or [{"expression": ...}].
- Model Monitor (CreateDataQualityJobDefinition, CreateMonitoringSchedule): the built-in
  analyzer image sagemaker-model-monitor-analyzer lives in an AWS account per region
  (ANALYZER_ACCOUNTS); the job compares the endpoint's captured requests with a baseline's
  statistics.json and constraints.json (written by a baselining job, e.g. the SageMaker Python
  SDK's DefaultModelMonitor.suggest_baseline); schedules accept only hourly
  "cron(0 * ? * * *)", daily "cron(0 H ? * * *)" or every-N-hours "cron(0 H/N ? * * *)" in UTC
  (ScheduleConfig.ScheduleExpression); job definitions cannot be updated (no Update call): the
  stage names them by content. A monitoring execution is a processing job; when the data
  breaks the baseline's constraints its ExitMessage starts "CompletedWithViolations" (the
  analyzer's /opt/ml/output/message) and SageMaker sends a "SageMaker Processing Job State
  Change" event whose detail is the DescribeProcessingJob response (MonitoringScheduleArn,
  ExitMessage). Per-feature drift metrics exist (feature_baseline_drift_<feature>) but name the
  data's features, which the spec does not know; so the drift signal is the number of events
  a rule matching those violations has matched (AWS/Events MatchedEvents, dimension RuleName),
  and the drift alarm watches it.
- Model Monitor availability: the SageMaker developer guide says Model Monitor "is no longer
  open to new customers"; accounts that never used it cannot create schedules
  (monitoring.check warns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from mlops_infra.backends.aws import catalog, policies
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.spec.models import Compute
from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
EVENTS_NAMESPACE = "AWS/Events"
MICROSECONDS_PER_MS = 1000  # ModelLatency's unit is the microsecond
SNS = "sns.amazonaws.com"

# Alarm windows. Latency and errors: 3 of the last 5 minutes breaching (a blip does not page,
# nor roll a deployment back; a sustained problem does within minutes). Traffic: one hour, as
# the spec says "per hour". Drift: one hour after a violating monitoring execution.
MINUTE = 60
HOUR = 3600
FAST_PERIODS, FAST_DATAPOINTS = 5, 3

# --- Model Monitor -------------------------------------------------------------------------
# Region -> AWS account serving the built-in analyzer image. Source: SageMaker Python SDK,
# src/sagemaker/image_uri_config/model-monitor.json (image_uris.retrieve("model-monitor")).
ANALYZER_ACCOUNTS = {
    "af-south-1": "875698925577",
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "eu-south-1": "933208885752",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
MONITORING_PREFIX = "monitoring/"  # + <model>/: the monitoring reports in the artifact bucket
MONITOR_SIZE: Final = "cpu-medium"  # the catalog's "processing" type for monitoring jobs (ml.m5.xlarge)
MONITOR_MAX_RUNTIME = 3600  # MonitoringStoppingCondition: at most 3600 s for hourly schedules
VIOLATIONS = "CompletedWithViolations"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"  # monitoring executions log here
CAPTURE_LOCAL_PATH = "/opt/ml/processing/input/endpoint"  # the SDK's EndpointInput destination
OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"
BASELINE_FILES = ("statistics.json", "constraints.json")

# --- dashboard -----------------------------------------------------------------------------
MAX_WIDGETS = 500  # DashboardBody: "an array of between 0 and 500 widget objects"
WIDGETS_PER_MODEL = 4  # invocations, latency, errors, instances
HEADER_WIDGETS = 1
MODELS_PER_DASHBOARD = (MAX_WIDGETS - HEADER_WIDGETS) // WIDGETS_PER_MODEL  # 124
GRID_WIDTH = 24
ROW_HEIGHT = 6
HEADER_HEIGHT = 2


# --- alarms --------------------------------------------------------------------------------
def endpoint_dimensions(endpoint: Any, variant: str) -> dict[str, Any]:
    return {"EndpointName": endpoint, "VariantName": variant}


def latency_alarm(*, endpoint: Any, variant: str, threshold_ms: int) -> dict[str, Any]:
    """p99 ModelLatency above the spec's milliseconds (converted to microseconds)."""
    return {
        "namespace": SAGEMAKER_NAMESPACE,
        "metric_name": "ModelLatency",
        "dimensions": endpoint_dimensions(endpoint, variant),
        "extended_statistic": "p99",
        "period": MINUTE,
        "evaluation_periods": FAST_PERIODS,
        "datapoints_to_alarm": FAST_DATAPOINTS,
        "threshold": float(threshold_ms * MICROSECONDS_PER_MS),
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",  # no requests, no latency
    }


def error_alarm(*, endpoint: Any, variant: str, percent: float) -> dict[str, Any]:
    """5xx responses as a share of invocations, in percent (metric math)."""
    def metric(name: str) -> dict[str, Any]:
        return {"namespace": SAGEMAKER_NAMESPACE, "metric_name": name, "period": MINUTE, "stat": "Sum",
                "dimensions": endpoint_dimensions(endpoint, variant)}

    return {
        "metric_queries": [
            {"id": "errors", "metric": metric("Invocation5XXErrors"), "return_data": False},
            {"id": "invocations", "metric": metric("Invocations"), "return_data": False},
            {"id": "error_rate", "expression": "100 * errors / invocations", "label": "5xx error rate (%)",
             "return_data": True},
        ],
        "evaluation_periods": FAST_PERIODS,
        "datapoints_to_alarm": FAST_DATAPOINTS,
        "threshold": float(percent),
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",  # no invocations: nothing failed
    }


def traffic_alarm(*, endpoint: Any, variant: str, minimum: int) -> dict[str, Any]:
    """Fewer invocations in an hour than the spec's floor; an hour without data counts as none."""
    return {
        "namespace": SAGEMAKER_NAMESPACE,
        "metric_name": "Invocations",
        "dimensions": endpoint_dimensions(endpoint, variant),
        "statistic": "Sum",
        "period": HOUR,
        "evaluation_periods": 1,
        "threshold": float(minimum),
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "breaching",
    }


def drift_alarm(*, rule: Any) -> dict[str, Any]:
    """At least one monitoring execution with violations (events matched by `rule`) in the hour."""
    return {
        "namespace": EVENTS_NAMESPACE,
        "metric_name": "MatchedEvents",
        "dimensions": {"RuleName": rule},
        "statistic": "Sum",
        "period": HOUR,
        "evaluation_periods": 1,
        "threshold": 0.0,
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }


# --- notification channel ------------------------------------------------------------------
def topic_arn(partition: str, region: str, account_id: str, topic: str) -> str:
    return f"arn:{partition}:sns:{region}:{account_id}:{topic}"


def topic_policy(*, topic: str, account_id: str, alarms: str) -> dict[str, Any]:
    """The topic's resource policy: CloudWatch may publish the stack's alarms (alarm ARN
    pattern `alarms`) on behalf of this account. The account's own principals need no
    statement (IAM policies suffice within an account); nobody else gets one."""
    return policies.document([{
        "Sid": "StackAlarmsPublish", "Effect": "Allow", "Principal": {"Service": policies.CLOUDWATCH},
        "Action": "sns:Publish", "Resource": topic,
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": alarms}},
    }])


# --- drift ---------------------------------------------------------------------------------
def monitor_cron(schedule: str) -> str | None:
    """The Model Monitor ScheduleExpression of a neutral drift schedule (DRIFT_SCHEDULES), or
    None when Model Monitor cannot run it (it takes hourly and daily crons only, in UTC)."""
    cron = parse_cron(DRIFT_SCHEDULES[schedule])
    every_day = not cron.days_restricted and not cron.weekdays_restricted and len(cron.months) == 12
    if cron.minutes != frozenset({0}) or not every_day:
        return None
    if len(cron.hours) == 24:
        return "cron(0 * ? * * *)"
    if len(cron.hours) == 1:
        return f"cron(0 {next(iter(cron.hours))} ? * * *)"
    return None


def analyzer_image(partition: str, region: str) -> str | None:
    """The built-in Model Monitor analyzer image of a region (None where the SDK knows none)."""
    account = ANALYZER_ACCOUNTS.get(region)
    if account is None:
        return None
    return f"{jobs.registry_host(partition, region, account)}/{ANALYZER_REPOSITORY}"


def baseline_uris(bucket: str, prefix: str) -> dict[str, str]:
    """Where the baseline's statistics and constraints are read: s3://<bucket>/<prefix><file>."""
    return {name.split(".")[0]: f"s3://{bucket}/{prefix}{name}" for name in BASELINE_FILES}


def monitoring_output(artifacts_uri: str, model: str) -> str:
    return f"{artifacts_uri}/{MONITORING_PREFIX}{model}/"


@dataclass(frozen=True)
class DriftJob:
    """Everything a model's data-quality job definition is made of."""

    image: Any
    endpoint: Any
    statistics: Any  # s3 URI of the baseline's statistics.json
    constraints: Any  # s3 URI of the baseline's constraints.json
    output: Any  # s3 URI under the artifact bucket
    key_arn: Any
    role_arn: Any
    instance_type: str
    volume_encrypted: bool
    vpc: dict[str, Any] | None = None  # a private network's VpcConfig (PrivateNetwork.vpc_config)


def data_quality_args(job: DriftJob) -> dict[str, Any]:
    """A DataQualityJobDefinition's arguments (everything but its name and tags): the built-in
    analyzer over the endpoint's captured requests against the baseline, reports to the
    artifact bucket encrypted with the key, network-isolated (in the stack's VPC when it has
    one), run as `role_arn`. CloudWatch
    metrics per feature stay off: the drift signal is the execution's outcome (see above), and
    publishing them would need cloudwatch:PutMetricData, which has no resource scope."""
    cluster: dict[str, Any] = {"instance_count": 1, "instance_type": job.instance_type,
                               "volume_size_in_gb": jobs.VOLUME_SIZE_GB}
    if job.volume_encrypted:
        cluster["volume_kms_key_id"] = job.key_arn
    network: dict[str, Any] = {"enable_network_isolation": True, "enable_inter_container_traffic_encryption": True}
    if job.vpc is not None:
        network["vpc_config"] = job.vpc
    return {
        "role_arn": job.role_arn,
        "data_quality_app_specification": {"image_uri": job.image,
                                           "environment": {"publish_cloudwatch_metrics": "Disabled"}},
        "data_quality_baseline_config": {"statistics_resource": {"s3_uri": job.statistics},
                                         "constraints_resource": {"s3_uri": job.constraints}},
        "data_quality_job_input": {"endpoint_input": {
            "endpoint_name": job.endpoint, "local_path": CAPTURE_LOCAL_PATH,
            "s3_data_distribution_type": "FullyReplicated", "s3_input_mode": "File"}},
        "data_quality_job_output_config": {"kms_key_id": job.key_arn, "monitoring_outputs": {"s3_output": {
            "s3_uri": job.output, "local_path": OUTPUT_LOCAL_PATH, "s3_upload_mode": "EndOfJob"}}},
        "job_resources": {"cluster_config": cluster},
        "network_config": network,
        "stopping_condition": {"max_runtime_in_seconds": MONITOR_MAX_RUNTIME},
    }


def violations_pattern(schedule: str) -> dict[str, Any]:
    """EventBridge pattern: an execution of monitoring schedule `schedule` found violations.
    The schedule's ARN ends with ":monitoring-schedule/<name>" (names are lower case)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {
            "MonitoringScheduleArn": [{"suffix": f":monitoring-schedule/{schedule.lower()}"}],
            "ExitMessage": [{"prefix": VIOLATIONS}],
        },
    }


def monitors_drift(model: Any, region: str) -> bool:
    """Whether the model gets drift monitoring (what validation rejects is left out).

    Decided from the spec alone (a served model has an endpoint in its own stack), so that the
    shared stack of a split knows whether any model drifts without seeing the endpoints."""
    mon = model.monitoring
    if mon is None or mon.drift is None or model.serving is None:
        return False
    if model.serving.data_capture is None:
        return False  # the neutral checks report it
    return monitor_cron(mon.drift.schedule) is not None and ANALYZER_ACCOUNTS.get(region) is not None


def monitor_instance_type(settings: Any) -> str:
    """The monitoring jobs' instance type: the catalog's "processing" type for MONITOR_SIZE."""
    return catalog.instance_type(Compute(size=MONITOR_SIZE), "processing", settings)


def monitoring_grants(*, partition: str, region: str, account_id: str) -> list[dict[str, Any]]:
    """The stack-wide statements of drift monitoring (in the stack's "monitoring" managed policy,
    which every group identity that monitors attaches): pull the analyzer image and write the
    processing job logs (executions are named by SageMaker, not by the stack, so the log streams
    cannot be narrowed further). The baselines, captured data and reports are per group
    (policies.group_data_grant)."""
    analyzer = jobs.repository_arn(partition, region, ANALYZER_ACCOUNTS.get(region, "<none>"), ANALYZER_REPOSITORY)
    group = f"arn:{partition}:logs:{region}:{account_id}:log-group:{PROCESSING_LOG_GROUP}"
    return [
        {"Sid": "PullModelMonitorImage", "Effect": "Allow", "Action": list(jobs.ECR_PULL), "Resource": analyzer},
        # ecr:GetAuthorizationToken supports no resource-level permission: "*" is the only form.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": list(jobs.ECR_LOGIN), "Resource": "*"},
        {"Sid": "UseProcessingLogGroup", "Effect": "Allow", "Action": list(jobs.LOGS_GROUP), "Resource": group},
        {"Sid": "WriteProcessingLogs", "Effect": "Allow", "Action": list(jobs.LOGS_STREAM),
         "Resource": f"{group}:log-stream:*"},
    ]


# --- dashboard -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    model: str
    endpoint: str
    latency_ms: int | None  # the alarm threshold, drawn as a line
    error_percent: float | None


def pages(models: list[str]) -> list[list[str]]:
    """Served models, by name, in pages of MODELS_PER_DASHBOARD (one dashboard each)."""
    ordered = sorted(models)
    return [ordered[i:i + MODELS_PER_DASHBOARD] for i in range(0, len(ordered), MODELS_PER_DASHBOARD)] or [[]]


def dashboard_body(*, region: str, title: str, rows: list[Row], variant: str) -> dict[str, Any]:
    """The dashboard body rendered from templates/aws/dashboard.json.j2 (parsed)."""
    from mlops_infra.templating import render_json

    values = [
        {"model": r.model, "endpoint": r.endpoint, "latency_ms": r.latency_ms, "error_percent": r.error_percent,
         "y": HEADER_HEIGHT + i * ROW_HEIGHT}
        for i, r in enumerate(rows)
    ]
    return render_json(
        "aws/dashboard.json.j2", region=region, title=title, rows=values, variant=variant,
        sagemaker=SAGEMAKER_NAMESPACE, instances=INSTANCE_NAMESPACE, width=GRID_WIDTH // WIDGETS_PER_MODEL,
        height=ROW_HEIGHT, header_height=HEADER_HEIGHT, grid=GRID_WIDTH,
    )
