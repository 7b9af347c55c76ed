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

The HTTP session is arm.py's (azure-identity and requests, imported only at deploy time); tests
inject a fake client. This module's name is part of deployed state (the provider is pickled by
reference into each stack), so it keeps it.
"""

from __future__ import annotations

from typing import Any

import pulumi

from mlops_infra.backends.azure.arm import ArmSession
from mlops_infra.backends.dynamic import DynamicResource
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

API_VERSION = "2025-12-01"  # the Azure ML API version pulumi-azure-native 3.x uses for endpoints
# Endpoint fields the service sets; a PUT must not echo them back.
_READ_ONLY = ("id", "name", "type", "systemData")
_READ_ONLY_PROPERTIES = ("provisioningState", "scoringUri", "swaggerUri", "keys")
# Inputs naming the endpoint: a change means another endpoint, so a new resource.
REPLACE_ON = ("endpoint_id",)
UPDATE_ON = ("endpoint_id", "deployment", "percent", "revision", "mirror")


class ArmClient(ArmSession):
    """ARM calls for endpoint traffic (the session in arm.py, at the endpoints' API version)."""

    def set_traffic(
        self, endpoint_id: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> dict[str, int]:
        """Route `traffic` ({deployment: percent}) on the endpoint and copy `mirror` ({shadow
        deployment: percent}) to shadows, none when empty; returns the live traffic Azure now holds."""
        endpoint = self.call("GET", endpoint_id, api_version=API_VERSION).json()
        body = {k: v for k, v in endpoint.items() if k not in _READ_ONLY}
        properties = {k: v for k, v in body.get("properties", {}).items() if k not in _READ_ONLY_PROPERTIES}
        properties["traffic"] = dict(traffic)
        if mirror is not None:  # {} stops the copies (a shadow left the spec); None: as it is
            properties["mirrorTraffic"] = dict(mirror)
        body["properties"] = properties
        self.wait(self.call("PUT", endpoint_id, body, api_version=API_VERSION))
        return dict(self.call("GET", endpoint_id, api_version=API_VERSION).json().get("properties", {}).get("traffic") or {})

    def delete_deployment(self, endpoint_id: str, deployment: str) -> None:
        """Delete one deployment of the endpoint (already gone is fine)."""
        response = self.call(
            "DELETE", f"{endpoint_id}/deployments/{deployment}", ok=(200, 202, 204, 404), api_version=API_VERSION
        )
        if response.status_code == 202:
            self.wait(response)


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

    def _apply(
        self, props: dict[str, Any], current: str | None, previous: str | None, mirrored: bool = False
    ) -> dict[str, Any]:
        traffic, kept, retire = plan_traffic(
            deployment=props["deployment"], percent=int(props["percent"]), current=current, previous=previous
        )
        client = self._arm()
        # A shadow that left the spec stops receiving copies before Pulumi deletes its deployment.
        wanted = props.get("mirror") if props.get("mirror") is not None else ({} if mirrored else None)
        mirror = {"mirror": wanted} if wanted is not None else {}
        held = client.set_traffic(props["endpoint_id"], traffic, **mirror)
        for name in retire:
            client.delete_deployment(props["endpoint_id"], name)
        return {**props, "traffic": held or traffic, "previous": kept}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props, None, None)
        return CreateResult(f"{props['endpoint_id']}/traffic", outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if olds.get("endpoint_id") != news.get("endpoint_id"):
            return UpdateResult(self._apply(news, None, None))  # not reached: diff replaces
        return UpdateResult(
            self._apply(news, olds.get("deployment"), olds.get("previous") or None, mirrored=bool(olds.get("mirror")))
        )

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
        mirror: pulumi.Input[dict] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        provider: ResourceProvider | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "endpoint_id": endpoint_id,
            "deployment": deployment,
            "percent": percent,
            "revision": revision,
            "traffic": None,
            "previous": None,
        }
        if mirror is not None:  # only with a shadow: endpoints without one keep their inputs
            props["mirror"] = mirror
        super().__init__(provider or EndpointTrafficProvider(), resource_name, props, opts)
