"""Facts and pure rules of Azure Monitor alerts and Azure ML model monitors (no SDK: tests and
the stage checks use them too). monitoring.py and retraining.py build resources from these.

Sources:
- online endpoint metrics (Azure Monitor supported metrics, Microsoft.MachineLearningServices/
  workspaces/onlineEndpoints): RequestLatency_P99 (Milliseconds, Average, dimension deployment),
  RequestsPerMinute (Count, Average; dimensions deployment, statusCode, statusCodeClass,
  modelStatusCode); deployments: DeploymentCapacity (Count, instances of the deployment);
- Azure Monitor metric alerts evaluate one metric per criterion with no arithmetic between
  metrics, so "errors as a percentage of requests" cannot be a metric alert. It is a log search
  alert (scheduled query rule) over the AmlOnlineEndpointTrafficLog table (one row per request,
  with ResponseCode and EndpointName), which a diagnostic setting on each endpoint sends to the
  workspace's Log Analytics workspace;
- model monitoring (Azure ML, "Monitor models in production"): a data drift signal compares the
  rolling production window with a fixed reference; the production data collected by an online
  deployment (uri_folder of JSONL) is read through the azureml registry's
  model_data_collector_preprocessor component; the lookback window must be at least one day;
  monitors run on serverless Spark (standard_e4s_v3 is the smallest allowed size);
- a signal whose thresholds are breached fails its run and tags it
  azureml_modelmonitor_threshold_breached with a message naming the signal; Event Grid delivers
  that as Microsoft.MachineLearningServices.RunStatusChanged, and Azure ML documents filtering it
  with StringContains on data.RunTags.azureml_modelmonitor_threshold_breached (the signal's name
  "<monitor name>_<signal description>" selects one monitor).
"""

from __future__ import annotations

from typing import Any

from mlops_infra.naming import stable_hash

# --- endpoint alarms ---------------------------------------------------------------------------
ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
LATENCY_METRIC = "RequestLatency_P99"  # milliseconds: the spec's latency_p99_ms as is
REQUESTS_METRIC = "RequestsPerMinute"
INSTANCES_METRIC = "DeploymentCapacity"
TRAFFIC_LOG = "AmlOnlineEndpointTrafficLog"  # diagnostic log category = Log Analytics table
TRAFFIC_SETTING_NAME = "mlops-infra-traffic"  # the endpoint's diagnostic setting (one per endpoint)
# Metric alerts: evaluate every minute over 5 minutes (latency); traffic over an hour.
FREQUENCY, WINDOW = "PT1M", "PT5M"
TRAFFIC_FREQUENCY, TRAFFIC_WINDOW = "PT5M", "PT1H"
# Log search alert on the error rate: every 5 minutes over the last 5 minutes.
ERRORS_FREQUENCY, ERRORS_WINDOW = "PT5M", "PT5M"
ERROR_COLUMN = "error_percent"
SEVERITY = {"errors": 1, "latency": 2, "traffic": 2, "drift": 2}  # 0 critical .. 4 verbose
# Action groups are global resources; so are metric alerts (log search alerts are regional).
GLOBAL = "global"
SHORT_NAME_MAX = 12  # action group short names (shown in SMS and email subjects)


def per_minute(invocations_per_hour: int) -> float:
    """The spec's minimum invocations per hour as the RequestsPerMinute average over an hour."""
    return round(invocations_per_hour / 60, 4)


def error_query(endpoint: str) -> str:
    """KQL: the share of server errors (HTTP 5xx) among one endpoint's requests, in percent.

    No requests, no row: an idle endpoint raises no error alarm (the traffic alarm covers that).
    """
    return (
        f"{TRAFFIC_LOG}\n"
        f'| where EndpointName == "{endpoint}"\n'
        "| summarize requests = count(), server_errors = countif(toint(ResponseCode) >= 500)\n"
        "| where requests > 0\n"
        f"| extend {ERROR_COLUMN} = 100.0 * server_errors / requests"
    )


def short_name(project: str, environment: str) -> str:
    """The action group's short name (at most 12 characters)."""
    text = f"{project}-{environment}"
    if len(text) <= SHORT_NAME_MAX:
        return text
    return f"{project[:5]}-{stable_hash(project, environment, length=SHORT_NAME_MAX - 6)}"


def receiver_name(kind: str, target: str) -> str:
    """A receiver's name in the action group: stable however the spec orders its emails."""
    return f"{kind}-{stable_hash(target, length=8)}"


# --- drift -------------------------------------------------------------------------------------
SPARK_INSTANCE_TYPE = "standard_e4s_v3"
SPARK_RUNTIME = "3.4"
# The preprocessing component of data collected by online deployments (azureml registry). A
# fixed version: the monitor's definition changes only when we change it.
MDC_PREPROCESSOR = "azureml://registries/azureml/components/model_data_collector_preprocessor/versions/0.4.31"
# Azure's default thresholds for data drift (what the studio proposes).
NUMERICAL_METRIC, NUMERICAL_THRESHOLD = "NormalizedWassersteinDistance", 0.1
CATEGORICAL_METRIC, CATEGORICAL_THRESHOLD = "JensenShannonDistance", 0.1
# Production window per neutral drift schedule: at least a day (Azure's minimum lookback); a
# weekly run looks at the week since the previous run.
LOOKBACK = {"hourly": "P1D", "daily": "P1D", "weekly": "P7D"}
BREACH_TAG = "data.RunTags.azureml_modelmonitor_threshold_breached"
BREACH_MESSAGE = "has failed due to one or more features violating metric thresholds"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


def monitor_name(model: str) -> str:
    """The drift monitor (an Azure ML schedule) of a model: a workspace asset name."""
    return f"{model.replace('-', '_')}_drift"


def signal_name(model: str) -> str:
    """The drift signal's name: "<monitor name>_<description>", unique as a substring.

    Event Grid selects a model's breaches with StringContains on this name, so no model's signal
    name may contain another's ("x_drift_data_drift" lies inside "ax_drift_data_drift"): the
    model's hash at the end makes every name end differently.
    """
    return f"{monitor_name(model)}_data_drift_{stable_hash(model)}"


def drift_filter(model: str) -> list[dict[str, Any]]:
    """Event Grid advanced filters (all must match) selecting the breaches of one model's signal."""
    return [{"key": BREACH_TAG, "values": [BREACH_MESSAGE]}, {"key": BREACH_TAG, "values": [signal_name(model)]}]


# --- dashboard (workbook) ----------------------------------------------------------------------
WORKBOOK_TEMPLATE = "azure/workbook.json.j2"
WORKBOOK_VERSION = "Notebook/1.0"
DAY_MS = 86_400_000
RANGES_MS = (3_600_000, 14_400_000, 43_200_000, DAY_MS, 7 * DAY_MS, 30 * DAY_MS)


def workbook_values(*, title: str, resource_group: str, workspace: str, logs: str) -> dict[str, Any]:
    """What templates/azure/workbook.json.j2 renders: stack facts only, never a list of models.

    The endpoints and deployments are found by Azure Resource Graph when the workbook opens
    (this stack's resource group and workspace), so the workbook stays the same as models come
    and go, and each grid shows a row per model endpoint.
    """
    in_workspace = f"resourceGroup =~ '{resource_group}' and id contains '/workspaces/{workspace}/'"
    return {
        "title": title,
        "resource_group": resource_group,
        "workspace": workspace,
        "default_range_ms": DAY_MS,
        "ranges_ms": list(RANGES_MS),
        "endpoint_namespace": ENDPOINT_TYPE.lower(),
        "deployment_namespace": DEPLOYMENT_TYPE.lower(),
        "requests_metric": REQUESTS_METRIC,
        "latency_metric": LATENCY_METRIC,
        "instances_metric": INSTANCES_METRIC,
        "endpoints_query": (
            f"resources\n| where type =~ '{ENDPOINT_TYPE.lower()}'\n| where {in_workspace}\n| order by name asc\n| project id"
        ),
        "deployments_query": (
            f"resources\n| where type =~ '{DEPLOYMENT_TYPE.lower()}'\n| where {in_workspace}\n| order by name asc\n| project id"
        ),
        "logs_query": (
            "resources\n| where type =~ 'microsoft.operationalinsights/workspaces'\n"
            f"| where resourceGroup =~ '{resource_group}' and name =~ '{logs}'\n| project id"
        ),
        "errors_query": (
            f"{TRAFFIC_LOG}\n"
            f"| where AzureMLWorkspaceName =~ '{workspace}'\n"
            "| summarize requests = count(), server_errors = countif(toint(ResponseCode) >= 500) by EndpointName\n"
            f"| extend {ERROR_COLUMN} = round(100.0 * server_errors / requests, 2)\n"
            "| order by EndpointName asc"
        ),
    }
