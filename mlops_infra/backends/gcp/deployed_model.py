"""DeployedModel: "endpoint X serves model Y with these replicas", as a Pulumi dynamic resource.

Pulumi has no resource that uploads a Vertex AI model or deploys it to an endpoint (a deployment
is an operation on the endpoint, not an object of its own). This resource closes the gap with a
small provider over the Vertex AI REST API (vertex_client.py):

create   resolve the artifact (the explicit URI, or the artifact of the registry version the
         alias names: the approved one), upload it as a Vertex AI model with the serving
         container (content-derived id, CMEK, uploaded as the serving identity), deploy it to
         the endpoint with its machine, replica bounds, autoscaling targets and service account,
         and shift traffic to it per the rollout: at once, or canary/linear steps with a bake
         time between them. A failing step restores the previous split, undeploys the new model
         and deletes its upload, so the endpoint keeps serving what it served before. Nothing
         watches alarms during the bake time: Vertex AI has no automatic rollback (serving.check
         says so). A registry model without a version yet creates a waiting placeholder.
update   in place: replica bounds and autoscaling targets (mutateDeployedModel), labels of the
         uploaded model (models.patch); the rollout settings apply to the next new deployment.
delete   undeploy (the remaining deployed models keep their share, scaled to 100) and delete
         the uploaded model.
diff     which inputs force a new deployed model (REPLACE_KEYS: endpoint, model, modelId,
         machine, service account) and which are in place (UPDATE_KEYS); for a registry source
         it also asks Vertex AI which version the alias names now, so approving a new version
         rolls it out on the next `up` (create before delete: the new model takes traffic
         before the old one is undeployed).

The provider holds no state and no client (it is pickled into the plan's `__provider` input by
reference to this module); the client is built in each call, or by `client_factory` in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from mlops_infra.backends.dynamic import DynamicResource
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ResourceProvider,
    UpdateResult,
)

MODULE = "mlops-infra-gcp"
NEW_MODEL_KEY = "0"  # deployModel's trafficSplit names the model being deployed "0"
PENDING_PREFIX = "pending-"
# Inputs whose change needs a new deployed model (Vertex AI cannot change them in place).
REPLACE_KEYS = ("project", "region", "endpoint", "modelId", "model", "machineSpec", "serviceAccount")
# Inputs updated in place (mutateDeployedModel / models.patch) or only stored (rollout).
UPDATE_KEYS = ("replicas", "autoscalingMetricSpecs", "labels", "rollout")
SCALING_PATHS = (
    "dedicatedResources.minReplicaCount",
    "dedicatedResources.maxReplicaCount",
    "dedicatedResources.autoscalingMetricSpecs",
)
MODEL_ID_MAX = 63  # UploadModelRequest.modelId (data/cloud-name-rules.json gcp.vertex.model_id)


# --- pure helpers (rollout arithmetic) ---------------------------------------------------------
def rollout_steps(rollout: dict[str, Any], *, serving_now: bool) -> list[int]:
    """Traffic percentages the new model gets, step by step; the last is always 100.

    The first deployment on an endpoint (nothing serving yet) takes all traffic at once."""
    mode = rollout.get("mode", "all-at-once")
    if not serving_now or mode == "all-at-once":
        return [100]
    if mode == "canary":
        first = int(rollout["canaryPercent"])
        return [first, 100] if first < 100 else [100]
    step = int(rollout["stepPercent"])
    return [*range(step, 100, step), 100]


def scaled_split(before: dict[str, int], new_key: str, percent: int) -> dict[str, int]:
    """The split with `percent` for the new model and the rest shared by the models serving
    `before` in proportion (largest remainder, so the shares are whole and sum to 100)."""
    rest = 100 - percent
    total = sum(before.values())
    split = {new_key: percent} if percent else {}
    if rest <= 0 or total <= 0:
        return split if split else {}
    exact = {key: share * rest / total for key, share in sorted(before.items())}
    whole = {key: int(value) for key, value in exact.items()}
    left = rest - sum(whole.values())
    for key in sorted(exact, key=lambda k: (whole[k] - exact[k], k))[:left]:
        whole[key] += 1
    split.update({key: value for key, value in whole.items() if value})
    return split


def live_split(endpoint: dict[str, Any] | None) -> dict[str, int]:
    """The endpoint's current traffic shares above zero."""
    split = (endpoint or {}).get("trafficSplit") or {}
    return {key: int(value) for key, value in split.items() if int(value) > 0}


def deployed_model_body(props: dict[str, Any], served_model: str) -> dict[str, Any]:
    """The DeployedModel of endpoints.deployModel (aiplatform v1)."""
    resources: dict[str, Any] = {
        "machineSpec": props["machineSpec"],
        "minReplicaCount": props["replicas"]["min"],
        "maxReplicaCount": props["replicas"]["max"],
    }
    if props.get("autoscalingMetricSpecs"):
        resources["autoscalingMetricSpecs"] = props["autoscalingMetricSpecs"]
    return {
        "model": served_model,
        "displayName": props["modelId"],
        "serviceAccount": props["serviceAccount"],
        "dedicatedResources": resources,
    }


def _known(*values: Any) -> bool:
    from pulumi.runtime.rpc import (
        UNKNOWN,  # the sentinel a preview passes for unknown inputs
    )

    return all(value != UNKNOWN and value is not None for value in values)


def _served_model_id(base: str, version: str | None) -> str:
    if not version:
        return base
    suffix = f"-v{version}"
    return base[: MODEL_ID_MAX - len(suffix)].rstrip("-_") + suffix


# --- the provider --------------------------------------------------------------------------------
class VertexProvider(ResourceProvider):
    """A dynamic provider calling Vertex AI in its resource's region (props["region"])."""

    def __init__(self, client_factory: Callable[[str], Any] | None = None) -> None:
        super().__init__()
        self._client_factory = client_factory  # tests inject a fake client here; None in plans

    def _client(self, props: dict[str, Any]) -> Any:
        if self._client_factory is not None:
            return self._client_factory(props["region"])
        return self._make_client(props["region"])

    def _make_client(self, region: str) -> Any:
        from mlops_infra.backends.gcp.vertex_client import VertexClient

        return VertexClient(region)


class DeployedModelProvider(VertexProvider):

    # diff ---------------------------------------------------------------------------------
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_KEYS if olds.get(key) != news.get(key)]
        updates = [key for key in UPDATE_KEYS if olds.get(key) != news.get(key)]
        model = news.get("model") or {}
        if not replaces and model.get("source") == "registry" and _known(model.get("registryModel"), news.get("region")):
            version = self._client(news).get_model(f"{model['registryModel']}@{model['alias']}")
            current = _version_name(version) if version else None
            if current is not None and current != olds.get("sourceVersion"):
                replaces.append("model")  # a new version holds the alias: deploy it
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            stables=[key for key in REPLACE_KEYS if key not in replaces],
            delete_before_replace=False,
        )

    # create -------------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        served = self._ensure_model(client, props)
        if served is None:
            return CreateResult(PENDING_PREFIX + props["modelId"], {**props, **_outs(state="waiting-for-model")})
        endpoint = props["endpoint"]
        before = live_split(client.get_endpoint(endpoint))
        steps = rollout_steps(props.get("rollout") or {}, serving_now=bool(before))
        try:
            deployed = client.deploy_model(
                endpoint, deployed_model_body(props, served["name"]), scaled_split(before, NEW_MODEL_KEY, steps[0])
            )
        except Exception:
            _quietly(client.delete_model, served["name"])
            raise
        new_id = str(deployed["id"])
        try:
            for percent in steps[1:]:
                client.sleep(int((props.get("rollout") or {}).get("waitSeconds", 0)))
                client.set_traffic(endpoint, scaled_split(before, new_id, percent))
        except Exception:
            # Back to what served before; the new model leaves the endpoint.
            _quietly(client.set_traffic, endpoint, before)
            _quietly(client.undeploy_model, endpoint, new_id, before)
            _quietly(client.delete_model, served["name"])
            raise
        outs = _outs(state="deployed", deployed_model_id=new_id, served_model=served["name"], source_version=served["source"])
        return CreateResult(new_id, {**props, **outs})

    def _ensure_model(self, client: Any, props: dict[str, Any]) -> dict[str, Any] | None:
        """Upload the model this deployment serves (or find it from an earlier attempt)."""
        spec = props["model"]
        parent = f"projects/{props['project']}/locations/{props['region']}"
        source = None
        if spec["source"] == "registry":
            version = client.get_model(f"{spec['registryModel']}@{spec['alias']}")
            if version is None:
                return None  # nothing trained and approved yet
            artifact = version["artifactUri"]
            source = _version_name(version)
            model_id = _served_model_id(props["modelId"], str(version.get("versionId", "")))
        else:
            artifact = spec["artifactUri"]
            model_id = props["modelId"]
        name = f"{parent}/models/{model_id}"
        if client.get_model(name) is None:
            labels = dict(props.get("labels") or {})
            body = {
                "displayName": model_id,
                "description": f"served by mlops-infra from {artifact}" + (f" ({source})" if source else ""),
                "artifactUri": artifact,
                "containerSpec": spec["containerSpec"],
                "encryptionSpec": spec["encryptionSpec"],
                "labels": labels,
            }
            if spec.get("explanationSpec"):  # explainability monitoring attributes its predictions
                body["explanationSpec"] = spec["explanationSpec"]
            client.upload_model(parent, model_id=model_id, model=body, service_account=props["serviceAccount"])
        return {"name": name, "source": source}

    # update -------------------------------------------------------------------------------
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        carried = {key: olds.get(key) for key in ("state", "deployedModelId", "servedModel", "sourceVersion")}
        if id_.startswith(PENDING_PREFIX):
            return UpdateResult({**news, **carried})
        client = self._client(news)
        if any(olds.get(key) != news.get(key) for key in ("replicas", "autoscalingMetricSpecs")):
            resources = {
                "minReplicaCount": news["replicas"]["min"],
                "maxReplicaCount": news["replicas"]["max"],
                "autoscalingMetricSpecs": news.get("autoscalingMetricSpecs") or [],
            }
            client.mutate_deployed_model(news["endpoint"], {"id": id_, "dedicatedResources": resources}, list(SCALING_PATHS))
        if olds.get("labels") != news.get("labels") and olds.get("servedModel"):
            client.patch_model_labels(olds["servedModel"], dict(news.get("labels") or {}))
        return UpdateResult({**news, **carried})

    # delete -------------------------------------------------------------------------------
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if id_.startswith(PENDING_PREFIX):
            return
        client = self._client(props)
        endpoint = client.get_endpoint(props["endpoint"])
        deployed = {str(m.get("id")) for m in (endpoint or {}).get("deployedModels", [])}
        if id_ in deployed:
            remaining = {key: value for key, value in live_split(endpoint).items() if key != id_}
            client.undeploy_model(props["endpoint"], id_, scaled_split(remaining, "", 0))
        if props.get("servedModel"):
            client.delete_model(props["servedModel"])


def _version_name(version: dict[str, Any]) -> str:
    return f"{version['name']}@{version.get('versionId', '')}"


def _outs(*, state: str, deployed_model_id: str = "", served_model: str = "", source_version: str | None = None) -> dict[str, Any]:
    return {"state": state, "deployedModelId": deployed_model_id, "servedModel": served_model, "sourceVersion": source_version}


def _quietly(call: Callable[..., Any], *args: Any) -> None:
    """Best-effort clean-up while another error is on its way up."""
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 - the original error matters more
        pulumi.log.warn(f"clean-up after a failed deployment step failed too: {exc}")


class DeployedModel(DynamicResource, module=MODULE, name="DeployedModel"):
    """A model deployed to a Vertex AI endpoint (type pulumi-python:dynamic/mlops-infra-gcp:DeployedModel)."""

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DeployedModelProvider(), name, props, opts)
