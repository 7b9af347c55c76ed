"""EndpointTraffic: the traffic split of an Azure ML online endpoint, as a Pulumi dynamic resource.

Why it exists: an endpoint's `traffic` may only name deployments that already exist, and a
deployment needs its endpoint first, so traffic cannot be an input of the endpoint (a cycle).
serving.py creates the endpoint without traffic, then its deployment, then this resource, which
sets the split through the ARM REST API.

The split it holds (rollout, serving.py): the current deployment gets `percent`, the deployment
it replaced (`previous`, remembered in this resource's state) the rest. With 100 the previous
one gets nothing. Deployments are declared with retain_on_delete, so Pulumi never deletes one
that may still take traffic; this resource deletes a deployment once it no longer routes to it:
the previous one at 100 %, and the one before the previous when a newer release arrives.
Deleting this resource leaves the endpoint as it is (deleting the endpoint removes its
deployments).

The ARM API has no PATCH for traffic (OnlineEndpoints_Update takes identity and tags only), so
the client reads the endpoint and writes it back with the new traffic (GET, then PUT), and
waits for Azure's asynchronous operation to finish.

Deploy-time dependencies (pyproject extra `azure`): azure-identity for the token and requests
for HTTP, imported only inside ArmClient; planning never loads them. Tests inject a fake client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi

from mlops_infra.backends.dynamic import DynamicResource
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

ARM = "https://management.azure.com"  # Azure public cloud
API_VERSION = "2025-12-01"  # the Azure ML API version pulumi-azure-native 3.x uses for endpoints
SCOPE = f"{ARM}/.default"
POLL_SECONDS = 10
TIMEOUT_SECONDS = 3600
# Endpoint fields the service sets; a PUT must not echo them back.
_READ_ONLY = ("id", "name", "type", "systemData")
_READ_ONLY_PROPERTIES = ("provisioningState", "scoringUri", "swaggerUri", "keys")
# Inputs naming the endpoint: a change means another endpoint, so a new resource.
REPLACE_ON = ("endpoint_id",)
UPDATE_ON = ("endpoint_id", "deployment", "percent", "revision")


class ArmClient:
    """Thin ARM REST calls for endpoint traffic; credential and session injectable for tests."""

    def __init__(
        self,
        credential: Any = None,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        if session is None:
            import requests

            session = requests.Session()
        self._credential = credential
        self._session = session
        self._sleep = sleep
        self._clock = clock

    # --- what the provider needs -------------------------------------------------------------
    def set_traffic(self, endpoint_id: str, traffic: dict[str, int]) -> dict[str, int]:
        """Route `traffic` ({deployment: percent}) on the endpoint; returns what Azure now holds."""
        endpoint = self._call("GET", endpoint_id).json()
        body = {k: v for k, v in endpoint.items() if k not in _READ_ONLY}
        properties = {k: v for k, v in body.get("properties", {}).items() if k not in _READ_ONLY_PROPERTIES}
        properties["traffic"] = dict(traffic)
        body["properties"] = properties
        self._wait(self._call("PUT", endpoint_id, body))
        return dict(self._call("GET", endpoint_id).json().get("properties", {}).get("traffic") or {})

    def delete_deployment(self, endpoint_id: str, deployment: str) -> None:
        """Delete one deployment of the endpoint (already gone is fine)."""
        response = self._call("DELETE", f"{endpoint_id}/deployments/{deployment}", ok=(200, 202, 204, 404))
        if response.status_code == 202:
            self._wait(response)

    # --- HTTP --------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = self._credential.get_token(SCOPE).token
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        url = path if path.startswith("https://") else f"{ARM}{path}"
        response = self._session.request(
            method, url, params={"api-version": API_VERSION}, json=body, headers=self._headers(), timeout=60
        )
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {path} failed: HTTP {response.status_code}: {response.text[:500]}")
        return response

    def _wait(self, response: Any) -> None:
        """Follow Azure's asynchronous operation (Azure-AsyncOperation, else Location) to its end."""
        monitor = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        if not monitor:
            return
        deadline = self._clock() + TIMEOUT_SECONDS
        while True:
            polled = self._session.request("GET", monitor, headers=self._headers(), timeout=60)
            if polled.status_code == 202:
                status = "InProgress"
            elif polled.status_code in (200, 204):
                status = (polled.json().get("status") if polled.content else None) or "Succeeded"
            else:
                raise RuntimeError(f"polling {monitor} failed: HTTP {polled.status_code}: {polled.text[:500]}")
            if status == "Succeeded":
                return
            if status in ("Failed", "Canceled"):
                raise RuntimeError(f"Azure operation {status.lower()}: {polled.text[:500]}")
            if self._clock() > deadline:
                raise TimeoutError(f"Azure operation still running after {TIMEOUT_SECONDS} s: {monitor}")
            self._sleep(float(polled.headers.get("Retry-After") or POLL_SECONDS))


def plan_traffic(
    *, deployment: str, percent: int, current: str | None, previous: str | None
) -> tuple[dict[str, int], str, list[str]]:
    """(traffic, new previous, deployments to delete) for moving to `deployment` at `percent`.

    `current` and `previous` are what the endpoint routed to before (None on creation).
    """
    retire: list[str] = []
    if current and current != deployment:
        candidate = current  # the release being replaced keeps the rest of the traffic
        if previous and previous not in (deployment, current):
            retire.append(previous)  # two releases back: no traffic any more
    else:
        candidate = previous or ""
    if candidate == deployment:
        candidate = ""
    if percent >= 100 or not candidate:
        if candidate:
            retire.append(candidate)
        return {deployment: 100}, "", retire
    return {deployment: percent, candidate: 100 - percent}, candidate, retire


class EndpointTrafficProvider(ResourceProvider):
    """create / update / delete / diff of EndpointTraffic (small: pickled into the plan by reference)."""

    serialize_as_secret_always = False

    def __init__(self, client: Any = None) -> None:
        super().__init__()
        self._client = client

    def _arm(self) -> Any:
        if self._client is None:
            self._client = ArmClient()
        return self._client

    def _apply(self, props: dict[str, Any], current: str | None, previous: str | None) -> dict[str, Any]:
        traffic, kept, retire = plan_traffic(
            deployment=props["deployment"], percent=int(props["percent"]), current=current, previous=previous
        )
        client = self._arm()
        held = client.set_traffic(props["endpoint_id"], traffic)
        for name in retire:
            client.delete_deployment(props["endpoint_id"], name)
        return {**props, "traffic": held or traffic, "previous": kept}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props, None, None)
        return CreateResult(f"{props['endpoint_id']}/traffic", outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if olds.get("endpoint_id") != news.get("endpoint_id"):
            return UpdateResult(self._apply(news, None, None))  # not reached: diff replaces
        return UpdateResult(self._apply(news, olds.get("deployment"), olds.get("previous") or None))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Leave the endpoint as it is: its traffic goes with it when the endpoint is deleted."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in UPDATE_ON if olds.get(key) != news.get(key)]
        replaces = [key for key in REPLACE_ON if key in changed]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)


class EndpointTraffic(DynamicResource, module="mlops-infra-azure", name="EndpointTraffic"):
    """Traffic of one online endpoint: `deployment` gets `percent`, the one it replaced the rest."""

    traffic: pulumi.Output[dict]
    previous: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        endpoint_id: pulumi.Input[str],
        deployment: pulumi.Input[str],
        percent: int,
        revision: str,
        opts: pulumi.ResourceOptions | None = None,
        provider: ResourceProvider | None = None,
    ) -> None:
        props = {
            "endpoint_id": endpoint_id,
            "deployment": deployment,
            "percent": percent,
            "revision": revision,
            "traffic": None,
            "previous": None,
        }
        super().__init__(provider or EndpointTrafficProvider(), resource_name, props, opts)
