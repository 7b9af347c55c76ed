"""Azure serving: managed online endpoints, deployments, autoscale, data capture, traffic and rollout."""

from __future__ import annotations

import copy
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlops_infra import api
from mlops_infra.backends import registry
from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.serving_rules import iso_duration, model_source
from mlops_infra.backends.azure.naming import alarm_name
from mlops_infra.backends.azure.traffic import API_VERSION, ArmClient, EndpointTrafficProvider, plan_traffic
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.spec.validate import check_text
from mlops_infra.stages.training import output_prefix
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

CLOUD = "azure"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
ML = "azure-native:machinelearningservices:"
ENDPOINT, DEPLOYMENT = ML + "OnlineEndpoint", ML + "OnlineDeployment"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
TRAFFIC = "pulumi-python:dynamic/mlops-infra-azure:EndpointTraffic"
GRANT = "azure-native:authorization:RoleAssignment"
ROLE = {
    "acr-pull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "metrics-writer": "635dd51f-9968-44d3-b7fb-6d9a6bd613ae",
}
# Owner, Contributor, User Access Administrator, AzureML Data Scientist
BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-bdd0-40e5-a4ae-bfc1a6aa0d5b",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121",
}


def spec_data(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with only the clouds registered right now (others' backends may be in progress)."""
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data.update(copy.deepcopy(changes))
    return data


CLOUDS = {
    "azure": {
        "location": "westeurope",
        "subscription_id": SUBSCRIPTION,
        "overrides": {"models": {"churn": {"serving_instance_type": "standard_f8s_v2"}}},
    }
}
_namer = BACKEND.namer(spec_from(spec_data(clouds=CLOUDS)), spec_from(spec_data(clouds=CLOUDS)).settings_for("azure"))
ACCOUNT = _namer.name("azure.storage.account")
ARTIFACTS = _namer.name("azure.storage.container", "artifacts")
CHURN = {
    "name": "churn",
    "training": {"image": "ghcr.io/acme/churn-train:1.4.0", "compute": {"size": "cpu-large"}, "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "serving": {
        "image": "ghcr.io/acme/churn-serve:1.4.0",
        "compute": {"size": "cpu-small"},
        "environment": {"WORKERS": "2"},
        "autoscaling": {
            "min_replicas": 2,
            "max_replicas": 4,
            "target_requests_per_replica": 30,
            "scale_in_cooldown": "10m",
            "scale_out_cooldown": "2m",
        },
        "data_capture": {"sampling_percent": 25, "capture_responses": False},
        "rollout": {"mode": "canary", "canary_percent": 20, "wait": "5m"},
    },
}
LTV = {
    "name": "ltv",
    "serving": {
        "image": "ghcr.io/acme/ltv-serve:0.9.2",
        "model_uri": f"https://{ACCOUNT}.blob.core.windows.net/{ARTIFACTS}/models/ltv/v3/",
        "compute": {"cpus": 4, "memory_gib": 16},
        "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_cpu_percent": 60},
    },
}
SERVE = spec_data(clouds=CLOUDS, models=[CHURN, LTV], governance={"network": "private"})


def _variant(**serving: Any) -> dict[str, Any]:
    data = copy.deepcopy(SERVE)
    for key, value in serving.items():
        data["models"][0]["serving"][key] = value
    return data





@pytest.fixture(scope="module")
def serve() -> dict:
    return plan_for("azure", SERVE)


@pytest.fixture(scope="module")
def serve_more_replicas() -> dict:
    return plan_for("azure", _variant(autoscaling={**CHURN["serving"]["autoscaling"], "max_replicas": 8}))


@pytest.fixture(scope="module")
def serve_new_image() -> dict:
    return plan_for("azure", _variant(image="ghcr.io/acme/churn-serve:1.5.0"))


@pytest.fixture(scope="module")
def serve_added() -> dict:
    data = copy.deepcopy(SERVE)
    data["models"].append(
        {
            "name": "fraud",
            "training": {"image": "ghcr.io/acme/fraud-train:1.0", "compute": {"size": "cpu-small"}},
            "serving": {
                "image": "ghcr.io/acme/fraud-serve:1.0",
                "compute": {"size": "cpu-medium"},
                "data_capture": {"sampling_percent": 5},
            },
        }
    )
    return plan_for("azure", data)


def one(plan: dict, type_: str, name: str) -> dict:
    found = [r for r in resources_of(plan, type_) if r["name"] == name]
    assert len(found) == 1, [r["name"] for r in resources_of(plan, type_)]
    return found[0]



def served(plan: dict) -> list[str]:
    return sorted(plan["outputs"]["serving"]["endpoints"])


def datastore(plan: dict) -> str:
    return by_name(plan, "storage-datastore-artifacts")["inputs"]["name"]


# --- the examples: endpoint, autoscaling, capture and rollout per model ------------------------------


def test_examples_serve_every_model_with_autoscaling_capture_and_rollout(dev: dict, prod: dict) -> None:
    # service objects (Azure ML REST 2025-12-01): onlineEndpoints, onlineEndpoints/deployments;
    # Azure Monitor: autoscalesettings; the traffic split through the dynamic resource
    expected = {
        ("dev", "churn-classifier"): {"capture": 0.2, "traffic": 100, "capacity": ("1", "4"), "metric": "RequestsPerMinute"},
        ("prod", "churn-classifier"): {"capture": 0.1, "traffic": 10, "capacity": ("2", "10"), "metric": "RequestsPerMinute"},
        ("prod", "ltv-regressor"): {"capture": None, "traffic": 100, "capacity": ("1", "4"), "metric": "CpuUtilizationPercentage"},
    }
    for label, plan in (("dev", dev), ("prod", prod)):
        assert plan["summary"]["by_stage"]["serving"] > 1
        for model in served(plan):
            want = expected[(label, model)]
            endpoint = one(plan, ENDPOINT, f"serving-endpoint-{model}")
            deployment = one(plan, DEPLOYMENT, f"serving-deployment-{model}")
            assert deployment["inputs"]["endpointName"] == endpoint["inputs"]["endpointName"]
            assert deployment["dependencies"]["endpointName"] == [endpoint["name"]]
            autoscale = one(plan, AUTOSCALE, f"serving-autoscale-{model}")
            assert autoscale["dependencies"]["targetResourceUri"] == [deployment["name"]]
            profile = autoscale["inputs"]["profiles"][0]
            assert (profile["capacity"]["minimum"], profile["capacity"]["maximum"]) == want["capacity"]
            assert profile["capacity"]["default"] == profile["capacity"]["minimum"]
            assert deployment["inputs"]["sku"] == {"name": "Default", "capacity": int(want["capacity"][0])}
            assert {r["metricTrigger"]["metricName"] for r in profile["rules"]} == {want["metric"]}
            collector = deployment["inputs"]["properties"].get("dataCollector")
            if want["capture"] is None:
                assert collector is None
            else:
                assert {c["samplingRate"] for c in collector["collections"].values()} == {want["capture"]}
                assert set(collector["collections"]) == {"model_inputs", "model_outputs"}
            traffic = one(plan, TRAFFIC, f"serving-traffic-{model}")
            assert traffic["inputs"]["percent"] == want["traffic"]
            assert traffic["inputs"]["deployment"] == deployment["inputs"]["deploymentName"]


def test_the_model_artifact_is_the_training_output(dev: dict, prod: dict) -> None:
    for plan in (dev, prod):
        for model in served(plan):
            version = one(plan, ML + "ModelVersion", f"serving-modelversion-{model}")
            props = version["inputs"]["properties"]
            assert props["modelUri"] == f"azureml://datastores/{datastore(plan)}/paths/{output_prefix(model)}"
            assert props["properties"]["mlops-infra/artifact"] == plan["outputs"]["training"]["output_uris"][model]
            assert {"storage-datastore-artifacts", "storage-bucket-artifacts"} <= set(version["dependencies"]["properties"])
            # registered in the registry stage's model container (its name is known after apply)
            assert version["dependencies"]["name"] == [f"registry-model-{model}"]
            assert version["retain_on_delete"] is True
            deployment = by_name(plan, f"serving-deployment-{model}")
            assert {f"serving-modelversion-{model}", f"serving-envversion-{model}"} <= set(
                deployment["dependencies"]["properties"]
            )


def test_explicit_model_uri_in_the_artifact_bucket_uses_the_datastore(serve: dict) -> None:
    props = by_name(serve, "serving-modelversion-ltv")["inputs"]["properties"]
    assert props["modelUri"] == f"azureml://datastores/{datastore(serve)}/paths/models/ltv/v3/"
    assert props["properties"] == {
        "mlops-infra/source": "model_uri",
        # the registered version records what serves it: the serving image, never the training one
        # (on this private stack, its copy in the stack's registry)
        "mlops-infra/serving-image": f"{registry_name(serve)}.azurecr.io/ghcr.io/acme/ltv-serve:0.9.2",
        "mlops-infra/serving-environment": f"azureml:ltv_serve_env:{by_name(serve, 'serving-envversion-ltv')['inputs']['version']}",
    }
    # no registry block: a model container of its own
    container = one(serve, ML + "ModelContainer", "serving-model-ltv")
    assert container["inputs"]["name"] == "ltv_serving"
    assert by_name(serve, "serving-modelversion-ltv")["dependencies"]["name"] == ["serving-model-ltv"]


def test_capture_goes_to_the_artifact_bucket_under_data_capture(serve: dict, dev: dict) -> None:
    for plan, model, collections in ((serve, "churn", ["inputs"]), (dev, "churn-classifier", ["inputs", "outputs"])):
        deployment = by_name(plan, f"serving-deployment-{model}")
        collector = deployment["inputs"]["properties"]["dataCollector"]
        assert set(collector["collections"]) == {f"model_{c}" for c in collections}  # capture_responses
        assert collector["rollingRate"] == "Hour"
        for word in collections:
            version = by_name(plan, f"serving-captureversion-{word}-{model}")
            assert version["inputs"]["properties"]["dataUri"] == (
                f"azureml://datastores/{datastore(plan)}/paths/data-capture/{model}/model_{word}/"
            )
            assert version["inputs"]["properties"]["dataType"] == "uri_folder"
            assert "storage-datastore-artifacts" in version["dependencies"]["properties"]
            assert f"serving-captureversion-{word}-{model}" in deployment["dependencies"]["properties"]
            assert collector["collections"][f"model_{word}"]["dataCollectionMode"] == "Enabled"
    assert by_name(serve, "serving-deployment-churn")["inputs"]["properties"]["dataCollector"]["collections"][
        "model_inputs"
    ]["samplingRate"] == 0.25
    # the datastore is the artifact container of the CMK-encrypted account
    store = by_name(serve, "storage-datastore-artifacts")["inputs"]["properties"]
    assert store["containerName"] == ARTIFACTS and store["accountName"] == ACCOUNT
    assert "governance-key" in by_name(serve, "storage-account")["dependencies"]["encryption"]


# --- security: identity, key, auth, network ------------------------------------------------------------


def test_endpoints_run_as_the_serving_identity_with_token_auth(dev: dict, serve: dict) -> None:
    for plan, private in ((dev, False), (serve, True)):
        for model in served(plan):
            endpoint = by_name(plan, f"serving-endpoint-{model}")
            assert endpoint["inputs"]["identity"]["type"] == "UserAssigned"
            assert endpoint["dependencies"]["identity"] == ["governance-identity-serving"]
            props = endpoint["inputs"]["properties"]
            assert props["authMode"] == "AADToken" and "keys" not in props
            assert props["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
            assert "traffic" not in props  # set by EndpointTraffic once the deployment exists
            deployment = by_name(plan, f"serving-deployment-{model}")
            egress = deployment["inputs"]["properties"].get("egressPublicNetworkAccess")
            assert egress == (None if private else "Enabled")  # the managed network decides when private
            # the deployment waits for every grant it uses: key, blobs, registry, metrics
            waits = set(deployment["depends_on"])
            assert {
                "governance-grant-serving-key-vault-crypto-user-key",
                "storage-grant-serving-storage-blob-data-reader-bucket-artifacts",
                "storage-grant-serving-storage-blob-data-contributor-bucket-artifacts",
                "serving-grant-serving-acrpull-registry",
                "serving-grant-serving-azureml-metrics-writer-preview-workspace",
            } <= waits


def test_serving_grants_are_least_privilege_and_per_stack(serve: dict, serve_added: dict, prod: dict) -> None:
    for plan in (serve, serve_added, prod):
        grants = [g for g in resources_of(plan, GRANT) if g["stage"] == "serving"]
        assert sorted((g["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1], g["dependencies"]["scope"][0]) for g in grants) == [
            (ROLE["metrics-writer"], "storage-workspace"),
            (ROLE["acr-pull"], "storage-registry"),
        ]
        assert all(g["dependencies"]["principalId"] == ["governance-identity-serving"] for g in grants)
        assert not {g["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1] for g in resources_of(plan, GRANT)} & BROAD
    # the same grants whatever the number of models (but the new model's own group identity's one)
    names = lambda plan: sorted(g["name"] for g in resources_of(plan, GRANT) if "-grant-data-" not in g["name"])
    assert names(serve) == names(serve_added)


def registry_name(plan: dict) -> str:
    return by_name(plan, "storage-registry")["inputs"]["registryName"]


def test_deployments_use_catalog_sizes_overrides_and_the_container_contract(serve: dict, prod: dict) -> None:
    expected = {
        "churn": "Standard_F8s_v2",  # the override, in the catalog's spelling
        "ltv": "Standard_D4as_v4",  # 4 cpus / 16 GiB
        "churn-classifier": "Standard_D4as_v4",  # cpu-medium
        "ltv-regressor": "Standard_D4as_v4",
    }
    for plan in (serve, prod):
        for model in served(plan):
            props = by_name(plan, f"serving-deployment-{model}")["inputs"]["properties"]
            assert props["instanceType"] == expected[model]
            assert props["endpointComputeType"] == "Managed" and props["scaleSettings"] == {"scaleType": "Default"}
            assert props["modelMountPath"] == "/opt/ml/model" and props["appInsightsEnabled"] is True
            for probe in ("livenessProbe", "readinessProbe"):
                assert props[probe]["period"] == "PT10S" and props[probe]["failureThreshold"] == 30
            assert props["requestSettings"]["requestTimeout"] == "PT5S"
            env = by_name(plan, f"serving-envversion-{model}")
            config = env["inputs"]["properties"]["inferenceConfig"]
            assert config["scoringRoute"] == {"path": "/invocations", "port": 8080}
            assert config["livenessRoute"] == config["readinessRoute"] == {"path": "/ping", "port": 8080}
            # a private stack (serve) runs its copy of the image in the stack's registry (images.py)
            prefix = "ghcr.io/acme/" if plan is prod else f"{registry_name(plan)}.azurecr.io/ghcr.io/acme/"
            assert env["inputs"]["properties"]["image"].startswith(prefix)
    assert by_name(serve, "serving-deployment-churn")["inputs"]["properties"]["environmentVariables"] == {"WORKERS": "2"}
    assert by_name(serve, "serving-deployment-churn")["inputs"]["properties"]["requestSettings"][
        "maxConcurrentRequestsPerInstance"
    ] == 8  # one per vCPU of Standard_F8s_v2


def test_autoscale_rules_follow_the_target_and_cooldowns(serve: dict) -> None:
    churn = by_name(serve, "serving-autoscale-churn")
    deployment = by_name(serve, "serving-deployment-churn")["inputs"]["deploymentName"]
    assert churn["inputs"]["autoscaleSettingName"] == deployment and churn["inputs"]["enabled"] is True
    out, in_ = churn["inputs"]["profiles"][0]["rules"]
    for rule in (out, in_):
        trigger = rule["metricTrigger"]
        assert trigger["metricName"] == "RequestsPerMinute" and trigger["dividePerInstance"] is True
        assert trigger["dimensions"] == [{"dimensionName": "deployment", "operator": "Equals", "values": [deployment]}]
        assert (trigger["timeGrain"], trigger["timeWindow"]) == ("PT1M", "PT5M")
    assert churn["dependencies"]["profiles"] == ["serving-endpoint-churn"]  # an endpoint metric
    assert (out["metricTrigger"]["operator"], out["metricTrigger"]["threshold"]) == ("GreaterThan", 30)
    assert (in_["metricTrigger"]["operator"], in_["metricTrigger"]["threshold"]) == ("LessThan", 18)
    assert out["scaleAction"] == {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT2M"}
    assert in_["scaleAction"] == {"direction": "Decrease", "type": "ChangeCount", "value": "1", "cooldown": "PT10M"}
    ltv = by_name(serve, "serving-autoscale-ltv")
    rules = ltv["inputs"]["profiles"][0]["rules"]
    assert [r["metricTrigger"]["metricName"] for r in rules] == ["CpuUtilizationPercentage"] * 2
    assert [r["metricTrigger"]["threshold"] for r in rules] == [60, 36]
    assert ltv["dependencies"]["profiles"] == ["serving-deployment-ltv"]  # a deployment metric
    assert [iso_duration(s) for s in (0, 59, 60, 300, 3600, 3725)] == ["PT1M", "PT1M", "PT1M", "PT5M", "PT1H", "PT1H2M5S"]


def test_traffic_is_a_dynamic_resource_after_the_deployment(serve: dict) -> None:
    churn = one(serve, TRAFFIC, "serving-traffic-churn")
    assert churn["provider"] is None and churn["parent"] == "serving"  # Pulumi's Python provider
    assert churn["dependencies"] == {"deployment": ["serving-deployment-churn"], "endpoint_id": ["serving-endpoint-churn"]}
    assert churn["depends_on"] == ["serving-autoscale-churn"]
    assert churn["inputs"]["percent"] == 20 and churn["inputs"]["endpoint_id"] == UNKNOWN
    assert "__provider" not in churn["inputs"]
    assert by_name(serve, "serving-traffic-ltv")["inputs"]["percent"] == 100
    # Pulumi never deletes a deployment that may still take traffic: EndpointTraffic retires them
    assert all(d["retain_on_delete"] for d in resources_of(serve, DEPLOYMENT))
    assert not any(e.get("retain_on_delete") or e["protect"] for e in resources_of(serve, ENDPOINT))


def test_outputs_are_endpoint_names_and_scoring_urls(serve: dict, prod: dict) -> None:
    rules = name_rules()
    for plan in (serve, prod):
        outputs = plan["outputs"]["serving"]
        for model, name in outputs["endpoints"].items():
            assert by_name(plan, f"serving-endpoint-{model}")["inputs"]["endpointName"] == name
            assert outputs["urls"][model] == f"https://{name}.westeurope.inference.ml.azure.com/score"
            assert rules["azure.ml.online_endpoint"].accepts(name)
            deployment = by_name(plan, f"serving-deployment-{model}")["inputs"]["deploymentName"]
            assert rules["azure.ml.online_deployment"].accepts(deployment)
    assert outputs["endpoints"].keys() == {"churn-classifier", "ltv-regressor"}


# --- diffs ---------------------------------------------------------------------------------------------


def test_raising_max_replicas_changes_only_the_autoscale_setting(serve: dict, serve_more_replicas: dict) -> None:
    changes = diff_plans(serve, serve_more_replicas)
    assert changes.create == [] and changes.delete == []
    assert [(u.name, u.paths) for u in changes.update] == [
        ("serving-autoscale-churn", ["inputs.profiles[0].capacity.maximum"])
    ]


def test_a_new_image_is_a_new_deployment_on_the_same_endpoint(serve: dict, serve_new_image: dict) -> None:
    changes = diff_plans(serve, serve_new_image)
    assert changes.create == [] and changes.delete == []
    updated = {u.name: u.paths for u in changes.update}
    assert set(updated) == {
        "serving-envversion-churn",  # a new environment version (versions are immutable)
        "serving-modelversion-churn",  # a new registered version: the same model with the new image
        "serving-deployment-churn",  # a new deployment, by name (blue/green)
        "serving-autoscale-churn",  # follows the new deployment
        "serving-traffic-churn",  # routes to it
        "serving-image-churn",  # a private stack copies the new image into its registry
    }
    assert by_name(serve_new_image, "serving-image-churn")["inputs"]["source_image"] != by_name(
        serve, "serving-image-churn"
    )["inputs"]["source_image"]
    old, new = (by_name(p, "serving-deployment-churn")["inputs"]["deploymentName"] for p in (serve, serve_new_image))
    assert old != new and "inputs.deploymentName" in updated["serving-deployment-churn"]
    assert updated["serving-traffic-churn"] == ["inputs.deployment"]
    version = lambda p: by_name(p, "serving-envversion-churn")["inputs"]["version"]
    assert version(serve) != version(serve_new_image)
    model_version = lambda p: by_name(p, "serving-modelversion-churn")["inputs"]
    assert model_version(serve)["version"] != model_version(serve_new_image)["version"]
    assert model_version(serve)["properties"]["modelUri"] == model_version(serve_new_image)["properties"]["modelUri"]
    # the endpoint keeps its URN, name and inputs; other models are untouched
    assert by_name(serve, "serving-endpoint-churn") == by_name(serve_new_image, "serving-endpoint-churn")
    assert serve["outputs"]["serving"] == serve_new_image["outputs"]["serving"]


def test_the_registry_and_the_endpoint_agree_on_image_and_model_data(dev: dict, prod: dict, serve: dict) -> None:
    for plan in (dev, prod, serve):
        served = [r["name"].removeprefix("serving-deployment-") for r in resources_of(plan, ML + "OnlineDeployment")]
        assert served
        for model in served:
            deployment = by_name(plan, f"serving-deployment-{model}")
            version = by_name(plan, f"serving-modelversion-{model}")
            environment = by_name(plan, f"serving-envversion-{model}")
            # the deployment serves exactly this registered version, with exactly this environment
            assert {f"serving-modelversion-{model}", f"serving-envversion-{model}"} <= set(
                deployment["dependencies"]["properties"]
            )
            image = environment["inputs"]["properties"]["image"]
            recorded = version["inputs"]["properties"]["properties"]
            assert recorded["mlops-infra/serving-image"] == image
            assert recorded["mlops-infra/serving-environment"] == (
                f"azureml:{environment['inputs']['name']}:{environment['inputs']['version']}"
            )
            # the serving image, never the training image
            training = [r for r in plan["resources"] if r["name"] == f"training-envversion-{model}"]
            if training:
                assert recorded["mlops-infra/serving-image"] != training[0]["inputs"]["properties"]["image"]
            # and the model data the deployment mounts: the training output, or serving.model_uri
            uri = version["inputs"]["properties"]["modelUri"]
            assert uri.endswith(f"/paths/{output_prefix(model)}") or recorded["mlops-infra/source"] == "model_uri"
            if f"registry-model-{model}" in {r["name"] for r in plan["resources"]}:
                # registered in the model's registry container
                assert version["dependencies"]["name"] == [f"registry-model-{model}"]


def test_adding_a_model_only_creates(serve: dict, serve_added: dict) -> None:
    changes = diff_plans(serve, serve_added)
    assert changes.update == [] and changes.delete == []
    created = {c["name"] for c in changes.create}
    assert {
        "serving-endpoint-fraud",
        "serving-deployment-fraud",
        "serving-autoscale-fraud",
        "serving-traffic-fraud",
        "serving-modelversion-fraud",
        "serving-captureversion-inputs-fraud",
        "serving-captureversion-outputs-fraud",
    } <= created
    assert all(name.endswith("-fraud") for name in created)


def test_plans_are_deterministic(serve: dict) -> None:
    assert dump_plan(plan_for("azure", SERVE)) == dump_plan(serve)


# --- the dynamic provider, with a fake client ------------------------------------------------------------


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def set_traffic(self, endpoint_id: str, traffic: dict[str, int]) -> dict[str, int]:
        self.calls.append(("traffic", endpoint_id, dict(traffic)))
        return dict(traffic)

    def delete_deployment(self, endpoint_id: str, deployment: str) -> None:
        self.calls.append(("delete", endpoint_id, deployment))


EP = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/onlineEndpoints/e"


def props(deployment: str, percent: int = 100, **extra: Any) -> dict[str, Any]:
    return {"endpoint_id": EP, "deployment": deployment, "percent": percent, "revision": "r1", **extra}


def test_provider_create_routes_everything_to_the_first_deployment() -> None:
    client = FakeClient()
    result = EndpointTrafficProvider(client).create(props("blue", 20))
    assert result.id == f"{EP}/traffic"
    assert client.calls == [("traffic", EP, {"blue": 100})]  # nothing to split with yet
    assert result.outs["traffic"] == {"blue": 100} and result.outs["previous"] == ""


def test_provider_all_at_once_moves_traffic_then_retires_the_old_deployment() -> None:
    client = FakeClient()
    olds = {**props("blue"), "traffic": {"blue": 100}, "previous": ""}
    outs = EndpointTrafficProvider(client).update("id", olds, props("green")).outs
    assert client.calls == [("traffic", EP, {"green": 100}), ("delete", EP, "blue")]
    assert outs["previous"] == ""


def test_provider_canary_holds_the_split_and_retires_two_releases_back() -> None:
    client = FakeClient()
    provider = EndpointTrafficProvider(client)
    first = provider.update("id", {**props("blue", 10), "previous": ""}, props("green", 10)).outs
    assert client.calls == [("traffic", EP, {"green": 10, "blue": 90})] and first["previous"] == "blue"
    client.calls.clear()
    second = provider.update("id", first, props("red", 10)).outs
    assert client.calls == [("traffic", EP, {"red": 10, "green": 90}), ("delete", EP, "blue")]
    assert second["previous"] == "green"
    client.calls.clear()
    # promote: mode all-at-once on the same deployment
    promoted = provider.update("id", second, props("red", 100)).outs
    assert client.calls == [("traffic", EP, {"red": 100}), ("delete", EP, "green")] and promoted["previous"] == ""
    client.calls.clear()
    # an endpoint change (revision) writes the same traffic again and deletes nothing
    provider.update("id", promoted, props("red", 100, revision="r2"))
    assert client.calls == [("traffic", EP, {"red": 100})]


def test_plan_traffic_never_deletes_the_deployment_it_routes_to() -> None:
    # going back to the previous release during a canary keeps both
    assert plan_traffic(deployment="blue", percent=10, current="green", previous="blue") == (
        {"blue": 10, "green": 90},
        "green",
        [],
    )
    assert plan_traffic(deployment="blue", percent=100, current="blue", previous="") == ({"blue": 100}, "", [])


def test_provider_delete_leaves_the_endpoint_and_diff_names_replacements() -> None:
    client = FakeClient()
    provider = EndpointTrafficProvider(client)
    provider.delete("id", props("blue"))
    assert client.calls == []
    same = provider.diff("id", props("blue"), props("blue"))
    assert same.changes is False and same.replaces == []
    moved = provider.diff("id", props("blue"), props("green", 20))
    assert moved.changes is True and moved.replaces == []
    other = provider.diff("id", props("blue"), {**props("blue"), "endpoint_id": EP + "2"})
    assert other.changes is True and other.replaces == ["endpoint_id"] and other.delete_before_replace is False


def test_serialized_provider_is_small_and_loads_no_client_library() -> None:
    import base64

    import dill
    from pulumi.dynamic.dynamic import serialize_provider

    text = serialize_provider(EndpointTrafficProvider())
    assert len(text) < 1000  # pickled by reference to this module, no closures
    raw = base64.b64decode(text)
    assert b"mlops_infra.backends.azure.traffic" in raw and b"requests" not in raw
    restored = dill.loads(raw)
    assert type(restored) is EndpointTrafficProvider and restored._client is None  # the client is made at deploy time
    assert "azure.identity" not in sys.modules


# --- the ARM client, with a fake session and credential (no network, no azure-identity) ------------------


class Response:
    def __init__(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        self.status_code = status
        self._body = body
        self.headers = headers or {}
        self.content = b"" if body is None else json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self) -> Any:
        return self._body


class Session:
    def __init__(self, responses: list[Response]) -> None:
        self.responses = responses
        self.requests: list[tuple] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.requests.append((method, url, kwargs))
        return self.responses.pop(0)


class Credential:
    def get_token(self, scope: str) -> Any:
        assert scope == "https://management.azure.com/.default"
        return type("Token", (), {"token": "t0k"})()


LIVE = {
    "id": EP,
    "name": "e",
    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
    "location": "westeurope",
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/x": {}}},
    "tags": {"managed-by": "mlops-infra"},
    "systemData": {"createdBy": "me"},
    "properties": {
        "authMode": "AADToken",
        "publicNetworkAccess": "Enabled",
        "provisioningState": "Succeeded",
        "scoringUri": "https://e/score",
        "traffic": {"blue": 100},
    },
}


def test_arm_client_sets_traffic_by_reading_and_writing_the_endpoint() -> None:
    monitor = "https://management.azure.com/operations/1"
    after = copy.deepcopy(LIVE)
    after["properties"]["traffic"] = {"green": 20, "blue": 80}
    session = Session(
        [
            Response(200, LIVE),
            Response(201, LIVE, {"Azure-AsyncOperation": monitor}),
            Response(200, {"status": "InProgress"}, {"Retry-After": "3"}),
            Response(200, {"status": "Succeeded"}),
            Response(200, after),
        ]
    )
    slept: list[float] = []
    client = ArmClient(credential=Credential(), session=session, sleep=slept.append)
    assert client.set_traffic(EP, {"green": 20, "blue": 80}) == {"green": 20, "blue": 80}
    (get, put, poll1, poll2, reread) = session.requests
    assert get[0] == "GET" and get[1] == f"https://management.azure.com{EP}"
    assert get[2]["params"] == {"api-version": API_VERSION} and get[2]["headers"]["Authorization"] == "Bearer t0k"
    assert put[0] == "PUT"
    body = put[2]["json"]
    assert body["properties"] == {"authMode": "AADToken", "publicNetworkAccess": "Enabled", "traffic": {"green": 20, "blue": 80}}
    assert {"id", "name", "type", "systemData"}.isdisjoint(body) and body["identity"] == LIVE["identity"]
    assert body["tags"] == LIVE["tags"] and body["location"] == "westeurope"
    assert poll1[1] == poll2[1] == monitor and slept == [3.0]
    assert reread[0] == "GET"


def test_arm_client_deletes_deployments_and_reports_failures() -> None:
    gone = Session([Response(404, {"error": {"code": "NotFound"}})])
    ArmClient(credential=Credential(), session=gone, sleep=lambda _: None).delete_deployment(EP, "blue")
    assert gone.requests[0][0] == "DELETE" and gone.requests[0][1].endswith(f"{EP}/deployments/blue")
    waited = Session([Response(202, None, {"Location": "https://management.azure.com/op/2"}), Response(202), Response(200)])
    ArmClient(credential=Credential(), session=waited, sleep=lambda _: None).delete_deployment(EP, "blue")
    assert [r[0] for r in waited.requests] == ["DELETE", "GET", "GET"]
    failed = Session([Response(200, LIVE), Response(201, LIVE, {"Azure-AsyncOperation": "https://x/op"}), Response(200, {"status": "Failed"})])
    with pytest.raises(RuntimeError, match="failed"):
        ArmClient(credential=Credential(), session=failed, sleep=lambda _: None).set_traffic(EP, {"blue": 100})
    refused = Session([Response(403, {"error": {"code": "AuthorizationFailed"}})])
    with pytest.raises(RuntimeError, match="HTTP 403"):
        ArmClient(credential=Credential(), session=refused).set_traffic(EP, {"blue": 100})


# --- validation ------------------------------------------------------------------------------------------


def check(**changes: Any) -> list:
    spec = spec_from(spec_data(**changes))
    return BACKEND.check(spec, spec.settings_for("azure"))


def at(problems: list, severity: str = "error") -> set:
    # ("clouds", "azure"): every Azure spec is warned that names outlive --delete-data (test_teardown_azure.py)
    return {p.path for p in problems if p.severity == severity and p.path != ("clouds", "azure")}


SERVING = {"image": "ghcr.io/acme/s:1", "compute": {"size": "cpu-small"}, "autoscaling": {"max_replicas": 2}}
TRAINING = {"image": "ghcr.io/acme/t:1", "compute": {"size": "cpu-small"}}


def served_model(name: str = "mm", **serving: Any) -> dict[str, Any]:
    return {"name": name, "training": TRAINING, "serving": {**SERVING, **serving}}


def test_check_rollout_modes_azure_cannot_do() -> None:
    problems = check(
        models=[
            served_model("lin", rollout={"mode": "linear", "step_percent": 25}),
            served_model("can", rollout={"mode": "canary", "canary_percent": 12, "rollback_on_alarms": False}),
            served_model("ok"),
        ]
    )
    assert at(problems) == {("models", 0, "serving", "rollout", "mode")}
    linear = next(p for p in problems if p.path[-1] == "mode")
    assert "Azure" in linear.message and "canary_percent: 25" in (linear.hint or "")
    assert at(problems, "warning") == {("models", 1, "serving", "rollout", "wait")}


def test_check_rollback_on_alarms_is_reported_where_alarms_exist() -> None:
    monitoring = {"latency_p99_ms": 300, "error_rate_percent": 1}
    problems = check(
        models=[
            {**served_model("aa"), "monitoring": monitoring},
            {**served_model("bb", rollout={"rollback_on_alarms": False}), "monitoring": monitoring},
            served_model("cc"),  # no alarms: nothing to roll back on
        ]
    )
    assert at(problems) == set()
    assert at(problems, "warning") == {("models", 0, "serving", "rollout", "rollback_on_alarms")}
    message = next(p.message for p in problems if p.path[-1] == "rollback_on_alarms")
    namer = BACKEND.namer(spec_from(spec_data()), spec_from(spec_data()).settings_for("azure"))
    assert alarm_name(namer, "aa", "latency") in message and alarm_name(namer, "aa", "errors") in message
    assert alarm_name(namer, "aa", "latency") == "churn-dev-aa-latency"
    assert name_rules()["azure.monitor.metric_alert"].accepts(alarm_name(namer, "aa", "latency"))
    with pytest.raises(ValueError):
        alarm_name(namer, "aa", "drift")


def test_check_cooldowns_model_uris_and_tags() -> None:
    problems = check(
        models=[
            served_model("fast", autoscaling={"max_replicas": 2, "scale_in_cooldown": 30, "scale_out_cooldown": "1m"}),
            served_model("s3", model_uri="s3://bucket/model/"),
            served_model("ext", model_uri="azureml://registries/acme/models/x/versions/1"),
            served_model("odd", model_uri=f"https://{_namer.name('azure.storage.account')}.blob.core.windows.net/x/y/"),
        ],
        tags={f"t{i}": "v" for i in range(12)},
        governance={"network": "private"},
    )
    assert at(problems) == {("models", 1, "serving", "model_uri"), ("tags",)}
    assert at(problems, "warning") == {
        ("models", 0, "serving", "autoscaling", "scale_in_cooldown"),
        ("models", 2, "serving", "model_uri"),
        ("models", 3, "serving", "model_uri"),  # another account (another subscription in this spec: other hash)
    }  # network: private is real behaviour now (tests/test_network_azure.py): no warning
    tags = next(p for p in problems if p.path == ("tags",))
    assert "15 tags" in tags.message and "16" in tags.message


def test_model_sources() -> None:
    kw = {"account": "acct", "container": "art", "model": "m"}
    assert model_source(None, **kw).path == "models/m/"
    inside = model_source("https://acct.blob.core.windows.net/art/models/m/v2/", **kw)
    assert (inside.kind, inside.path) == ("artifacts", "models/m/v2/")
    assert model_source("https://acct.blob.core.windows.net/other/m/", **kw).kind == "external"
    assert model_source("gs://b/m/", **kw).kind == "unsupported"
    assert model_source("abfss://fs@acct.dfs.core.windows.net/m/", **kw).kind == "external"


def test_examples_validate_on_azure_with_honest_warnings() -> None:
    for stack in ("dev", "prod"):
        result = api.validate(source=api.resolve_source(stack=stack, spec=None, root=ROOT), clouds=["azure"])
        assert result.valid, [p.render() for p in result.problems]
        paths = {w.path for w in result.warnings}
        assert ("models", 0, "serving", "rollout", "rollback_on_alarms") in paths
        assert not any(w.path[-1:] == ("serving",) for w in result.warnings)  # serving is deployed
    prod = api.validate(source=api.resolve_source(stack="prod", spec=None, root=ROOT), clouds=["azure"])
    assert ("models", 0, "serving", "rollout", "wait") in {w.path for w in prod.warnings}


HEAD = """\
apiVersion: mlops-infra/v1
project: churn
environment: dev
cloud: azure
clouds:
  azure: {location: westeurope, subscription_id: 00000000-0000-0000-0000-000000000000}
models:
  - name: mm
    training: {image: ghcr.io/acme/t:1, compute: {size: cpu-small}}
    serving:
      image: ghcr.io/acme/s:1
      compute: {size: cpu-small}
"""


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("autoscaling: {min_replicas: 3, max_replicas: 2}", "models[0].serving.autoscaling"),
        ("autoscaling: {min_replicas: 0, max_replicas: 2}", "models[0].serving.autoscaling.min_replicas"),
        ("rollout: {mode: canary, canary_percent: 10}", "models[0].serving"),
        ("data_capture: {sampling_percent: 150}", "models[0].serving.data_capture.sampling_percent"),
        (
            "autoscaling: {max_replicas: 3}\nrollout: {mode: linear, step_percent: 10}",
            "models[0].serving.rollout.mode",
        ),
    ],
    ids=["min-above-max", "scale-to-zero", "canary-on-one-replica", "sampling-over-100", "linear"],
)
def test_invalid_combinations_are_errors_with_a_location(extra: str, path: str) -> None:
    with pytest.raises(SpecInvalid) as info:
        check_text(HEAD + textwrap.indent(extra, "      ") + "\n", "spec.yaml", clouds=["azure"])
    errors = {p.dotted_path: p for p in info.value.problems}
    assert path in errors, sorted(errors)
    assert errors[path].line is not None and errors[path].file == "spec.yaml"


def test_check_loads_no_sdk() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from mlops_infra.backends.azure import BACKEND\n"
        "from tests.planning import spec_from\n"
        f"spec = spec_from({SERVE!r})\n"
        "BACKEND.check(spec, spec.settings_for('azure'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pulumi_azure_native', 'azure.', 'requests'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert re.fullmatch(r"[a-z0-9]{3,24}", ACCOUNT)
