"""A thin Vertex AI REST client for the DeployedModel dynamic resource (deploy time only).

Plain REST calls (aiplatform v1) through google-auth's AuthorizedSession: the `gcp` extra
(google-auth, requests) is all it needs, instead of google-cloud-aiplatform (~300 MB). google-auth
is imported only in the constructor, and only when no session is given: planning never builds a
client, and tests pass a fake session (or replace the whole client, see deployed_model.py).

Methods and paths (cloud.google.com/vertex-ai/docs/reference/rest/v1):
  models.get / models.upload / models.patch / models.delete
  endpoints.get / endpoints.patch (trafficSplit) / endpoints.deployModel /
  endpoints.mutateDeployedModel / endpoints.undeployModel
  operations.get (every long-running call above returns an Operation, polled until done)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
POLL_SECONDS = 15
REQUEST_TIMEOUT = 60  # seconds per HTTP call
# How long a long-running operation may take: deploying starts VMs and pulls the image.
OPERATION_TIMEOUT = 2 * 3600


class VertexError(RuntimeError):
    """A Vertex AI call failed (HTTP error or a failed long-running operation)."""


class VertexClient:
    def __init__(
        self,
        region: str,
        *,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if session is None:
            import google.auth  # the `gcp` extra; deploy time only
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            session = AuthorizedSession(credentials)
        self._session = session
        self._base = f"https://{region}-aiplatform.googleapis.com/v1/"
        self._sleep = sleep
        self._clock = clock

    # --- plumbing -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        response = self._session.request(method, self._base + path, json=body, params=params, timeout=REQUEST_TIMEOUT)
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise VertexError(f"{method} {path}: HTTP {response.status_code}: {response.text[:1000]}")
        return response.json() if response.content else {}

    def _wait(self, operation: dict[str, Any], timeout: float = OPERATION_TIMEOUT) -> dict[str, Any]:
        """Poll a long-running operation until done; its response, or VertexError."""
        deadline = self._clock() + timeout
        while not operation.get("done"):
            if self._clock() > deadline:
                raise VertexError(f"operation {operation.get('name')} did not finish within {timeout:.0f} s")
            self._sleep(POLL_SECONDS)
            operation = self._call("GET", operation["name"]) or {}
        if "error" in operation:
            error = operation["error"]
            raise VertexError(f"operation {operation.get('name')} failed: {error.get('code')} {error.get('message')}")
        return operation.get("response", {})

    def sleep(self, seconds: float) -> None:
        """Bake time between traffic steps (a fake client in tests does not wait)."""
        if seconds > 0:
            self._sleep(seconds)

    # --- models ----------------------------------------------------------------------------
    def get_model(self, name: str) -> dict[str, Any] | None:
        """A model (or `name@alias` / `name@version`), None when it does not exist."""
        return self._call("GET", name, missing_ok=True)

    def upload_model(self, parent: str, *, model_id: str, model: dict[str, Any], service_account: str) -> dict[str, Any]:
        """models.upload: {"model": name, "modelVersionId": ...} once the upload is done."""
        body = {"modelId": model_id, "model": model, "serviceAccount": service_account}
        return self._wait(self._call("POST", f"{parent}/models:upload", body=body) or {})

    def patch_model_labels(self, name: str, labels: dict[str, str]) -> None:
        self._call("PATCH", name, body={"labels": labels}, params={"updateMask": "labels"})

    def delete_model(self, name: str) -> None:
        operation = self._call("DELETE", name, missing_ok=True)
        if operation is not None:
            self._wait(operation)

    # --- endpoints -------------------------------------------------------------------------
    def get_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._call("GET", name, missing_ok=True)

    def deploy_model(self, endpoint: str, deployed_model: dict[str, Any], traffic_split: dict[str, int]) -> dict[str, Any]:
        """endpoints.deployModel; traffic_split may name the new model "0". Returns the DeployedModel."""
        body = {"deployedModel": deployed_model, "trafficSplit": traffic_split}
        response = self._wait(self._call("POST", f"{endpoint}:deployModel", body=body) or {})
        return response.get("deployedModel", {})

    def mutate_deployed_model(self, endpoint: str, deployed_model: dict[str, Any], paths: list[str]) -> None:
        """endpoints.mutateDeployedModel: replica bounds and autoscaling targets, in place."""
        body = {"deployedModel": deployed_model, "updateMask": ",".join(paths)}
        self._wait(self._call("POST", f"{endpoint}:mutateDeployedModel", body=body) or {})

    def set_traffic(self, endpoint: str, traffic_split: dict[str, int]) -> None:
        self._call("PATCH", endpoint, body={"trafficSplit": traffic_split}, params={"updateMask": "trafficSplit"})

    def undeploy_model(self, endpoint: str, deployed_model_id: str, traffic_split: dict[str, int]) -> None:
        body = {"deployedModelId": deployed_model_id, "trafficSplit": traffic_split}
        self._wait(self._call("POST", f"{endpoint}:undeployModel", body=body) or {})
