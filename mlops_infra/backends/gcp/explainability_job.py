"""ExplainabilityMonitor: a Vertex AI model deployment monitoring job, as a Pulumi dynamic resource.

pulumi-gcp has no resource for modelDeploymentMonitoringJobs (aiplatform v1), so this small
provider creates, patches and deletes one per monitored endpoint over the REST API
(vertex_client.py's plumbing; the methods below are aiplatform v1
projects.locations.modelDeploymentMonitoringJobs.create / get / patch / delete).

The job needs one objective config per model deployed on the endpoint (its deployedModelId),
which only the endpoint knows once the DeployedModel is up: the provider reads the endpoint at
create and diff time. An endpoint with nothing deployed yet (a registry model waiting for its
first approved version) gets a waiting placeholder; the next `up` after a deployment replaces
it with the job. A new deployed model (new version, new image) updates the job's objectives.

create   the job: the objectives for each deployed model, the schedule, the sampling rate of
         the logged requests, the alert config (the stack's notification channels, anomalies to
         Cloud Logging), the stack key (CMEK, set at creation only) and labels.
update   in place (patch with an update mask): objectives, schedule, sampling, alerts, labels.
delete   delete the job (a missing one is fine).
diff     REPLACE_KEYS force a new job (Vertex AI cannot change them); a pending placeholder is
         replaced as soon as the endpoint serves a model.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, UpdateResult

from mlops_infra.backends.dynamic import DynamicResource
from mlops_infra.backends.gcp.deployed_model import MODULE, VertexProvider, _known
from mlops_infra.backends.gcp.vertex_client import VertexClient

PENDING_PREFIX = "pending-"
REPLACE_KEYS = ("project", "region", "endpoint", "encryptionSpec")
# Input -> the job field its change patches.
UPDATE_FIELDS = {
    "objective": "model_deployment_monitoring_objective_configs",
    "monitorInterval": "model_deployment_monitoring_schedule_config",
    "samplingRate": "logging_sampling_strategy",
    "notificationChannels": "model_monitoring_alert_config",
    "labels": "labels",
    "displayName": "display_name",
}


class MonitoringJobClient(VertexClient):
    """VertexClient with the model deployment monitoring job calls."""

    def create_monitoring_job(self, parent: str, job: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{parent}/modelDeploymentMonitoringJobs", body=job) or {}

    def patch_monitoring_job(self, name: str, job: dict[str, Any], mask: list[str]) -> None:
        self._wait(self._call("PATCH", name, body=job, params={"updateMask": ",".join(mask)}) or {})

    def delete_monitoring_job(self, name: str) -> None:
        operation = self._call("DELETE", name, missing_ok=True)
        if operation is not None:
            self._wait(operation)


def deployed_ids(endpoint: dict[str, Any] | None) -> list[str]:
    """The ids of the models deployed on an endpoint, sorted."""
    return sorted(str(m["id"]) for m in (endpoint or {}).get("deployedModels", []) if m.get("id"))


def job_body(props: dict[str, Any], deployed: list[str]) -> dict[str, Any]:
    """The ModelDeploymentMonitoringJob (aiplatform v1) for the models `deployed` on the endpoint."""
    return {
        "displayName": props["displayName"],
        "endpoint": props["endpoint"],
        "modelDeploymentMonitoringObjectiveConfigs": [
            {"deployedModelId": model_id, "objectiveConfig": props["objective"]} for model_id in deployed
        ],
        "modelDeploymentMonitoringScheduleConfig": {"monitorInterval": props["monitorInterval"]},
        "loggingSamplingStrategy": {"randomSampleConfig": {"sampleRate": props["samplingRate"]}},
        "modelMonitoringAlertConfig": {"enableLogging": True, "notificationChannels": list(props["notificationChannels"])},
        "encryptionSpec": props["encryptionSpec"],
        "labels": dict(props.get("labels") or {}),
    }


class ExplainabilityMonitorProvider(VertexProvider):
    def _make_client(self, region: str) -> Any:
        return MonitoringJobClient(region)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_KEYS if olds.get(key) != news.get(key)]
        updates = [key for key in UPDATE_FIELDS if olds.get(key) != news.get(key)]
        if not replaces and _known(news.get("endpoint"), news.get("region")):
            live = deployed_ids(self._client(news).get_endpoint(news["endpoint"]))
            if id_.startswith(PENDING_PREFIX) and live:
                replaces.append("endpoint")  # the endpoint serves a model now: create the job
            elif live != olds.get("deployedModelIds"):
                updates.append("deployedModelIds")
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            stables=[key for key in REPLACE_KEYS if key not in replaces],
            delete_before_replace=True,  # one monitoring job per endpoint
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        deployed = deployed_ids(client.get_endpoint(props["endpoint"]))
        if not deployed:
            return CreateResult(PENDING_PREFIX + props["displayName"], {**props, "deployedModelIds": [], "state": "waiting-for-deployment"})
        parent = f"projects/{props['project']}/locations/{props['region']}"
        job = client.create_monitoring_job(parent, job_body(props, deployed))
        return CreateResult(job["name"], {**props, "deployedModelIds": deployed, "state": "created"})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if id_.startswith(PENDING_PREFIX):
            return UpdateResult({**news, "deployedModelIds": [], "state": olds.get("state")})
        client = self._client(news)
        deployed = deployed_ids(client.get_endpoint(news["endpoint"]))
        mask = sorted({field for key, field in UPDATE_FIELDS.items() if olds.get(key) != news.get(key)})
        if deployed != olds.get("deployedModelIds"):
            mask = sorted({*mask, UPDATE_FIELDS["objective"]})
        if mask:
            client.patch_monitoring_job(id_, job_body(news, deployed), mask)
        return UpdateResult({**news, "deployedModelIds": deployed, "state": olds.get("state")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if not id_.startswith(PENDING_PREFIX):
            self._client(props).delete_monitoring_job(id_)


class ExplainabilityMonitor(DynamicResource, module=MODULE, name="ExplainabilityMonitor"):
    """Feature-attribution monitoring of one endpoint (pulumi-python:dynamic/mlops-infra-gcp:ExplainabilityMonitor)."""

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ExplainabilityMonitorProvider(), name, props, opts)
