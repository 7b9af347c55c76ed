"""Azure serving modes, shadow (mirror traffic) and auth (Entra tokens or keys in the stack's vault)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.azure.serving_shadow import MAX_MIRROR_PERCENT
from mlops_infra.backends.azure.traffic import EndpointTrafficProvider
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.plan import dump_plan
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of

ML = "azure-native:machinelearningservices:"
SECRET = "azure-native:keyvault:Secret"
TRAFFIC = "pulumi-python:dynamic/mlops-infra-azure:EndpointTraffic"

CHURN = {
    "name": "churn",
    "training": {"image": "ghcr.io/acme/churn-train:1.4.0", "compute": {"size": "cpu-large"}, "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "serving": {
        "image": "ghcr.io/acme/churn-serve:1.4.0",
        "compute": {"size": "cpu-small"},
        "autoscaling": {"min_replicas": 4, "max_replicas": 8},
        "shadow": {"image": "ghcr.io/acme/churn-serve:1.5.0", "traffic_percent": 20},
        "auth": "key",
    },
}


def spec_data(serving: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {"azure": data["clouds"]["azure"]}
    model = copy.deepcopy(CHURN)
    model["serving"].update(copy.deepcopy(serving or {}))
    data["models"] = [model]
    data.update(copy.deepcopy(changes))
    return data


@pytest.fixture(scope="module")
def plan() -> dict:
    return plan_for("azure", spec_data())


@pytest.fixture(scope="module")
def plain() -> dict:
    """The same model without shadow and with Entra tokens (the defaults)."""
    data = spec_data()
    del data["models"][0]["serving"]["shadow"]
    del data["models"][0]["serving"]["auth"]
    return plan_for("azure", data)



# --- shadow ----------------------------------------------------------------------------------------
def test_the_challenger_is_a_second_deployment_that_gets_a_mirror_and_no_live_traffic(plan: dict) -> None:
    live = by_name(plan, "serving-deployment-churn")["inputs"]
    shadow = by_name(plan, "serving-deployment-churn-shadow")["inputs"]
    assert shadow["endpointName"] == live["endpointName"]
    assert shadow["deploymentName"] != live["deploymentName"] and "shadow" in shadow["deploymentName"]
    assert shadow["properties"]["instanceType"] == live["properties"]["instanceType"]
    assert shadow["sku"]["capacity"] == 1  # 20 % of min_replicas 4, rounded up
    traffic = by_name(plan, "serving-traffic-churn")["inputs"]
    assert traffic["mirror"] == {shadow["deploymentName"]: 20}
    assert traffic["deployment"] == live["deploymentName"] and traffic["percent"] == 100
    # The challenger runs the shadow's image, in its own environment and model containers.
    env = by_name(plan, "serving-envversion-churn-shadow")["inputs"]
    assert env["properties"]["image"] == "ghcr.io/acme/churn-serve:1.5.0"
    assert by_name(plan, "serving-model-churn-shadow")["inputs"]["name"] == "churn_shadow"
    assert by_name(plan, "serving-envversion-churn")["inputs"]["properties"]["image"] == "ghcr.io/acme/churn-serve:1.4.0"


def test_the_challengers_requests_and_responses_are_captured_apart(plan: dict) -> None:
    shadow = by_name(plan, "serving-deployment-churn-shadow")["inputs"]
    collections = shadow["properties"]["dataCollector"]["collections"]
    assert set(collections) == {"model_inputs", "model_outputs"}
    assert {c["samplingRate"] for c in collections.values()} == {1.0}
    outputs = by_name(plan, "serving-captureversion-outputs-churn-shadow")["inputs"]["properties"]
    assert outputs["dataUri"].endswith("/paths/data-capture/churn/shadow/model_outputs/")


def test_without_a_shadow_nothing_is_mirrored(plain: dict) -> None:
    assert "mirror" not in by_name(plain, "serving-traffic-churn")["inputs"]
    assert not [r for r in plain["resources"] if r["name"].endswith("-shadow")]


def test_a_new_challenger_moves_the_mirror_and_leaves_the_live_deployment(plan: dict) -> None:
    newer = plan_for("azure", spec_data({"shadow": {"image": "ghcr.io/acme/churn-serve:1.6.0", "traffic_percent": 20}}))
    changes = diff_plans(plan, newer)
    updated = {u.name for u in changes.update}
    assert "serving-deployment-churn" not in updated and "serving-endpoint-churn" not in updated
    assert {"serving-deployment-churn-shadow", "serving-traffic-churn"} <= updated


def test_the_provider_writes_the_mirror_and_clears_it_when_the_shadow_goes() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def set_traffic(self, endpoint_id: str, traffic: dict, mirror: dict | None = None) -> dict:
            self.calls.append((dict(traffic), mirror))
            return dict(traffic)

        def delete_deployment(self, endpoint_id: str, deployment: str) -> None:
            self.calls.append(("delete", deployment))

    client = Client()
    provider = EndpointTrafficProvider(client)
    props = {"endpoint_id": "/e", "deployment": "blue", "percent": 100, "revision": "r", "mirror": {"sh": 10}}
    provider.create(props)
    assert client.calls[-1] == ({"blue": 100}, {"sh": 10})
    without = {k: v for k, v in props.items() if k != "mirror"}
    provider.update("/e/traffic", {**props, "previous": ""}, without)
    assert client.calls[-1] == ({"blue": 100}, {})  # the copies stop before the shadow is deleted
    assert provider.diff("/e/traffic", props, {**props, "mirror": {"sh": 20}}).changes


def test_a_mirror_above_fifty_percent_is_a_located_error() -> None:
    errors = _errors(spec_data({"shadow": {"image": "ghcr.io/acme/churn-serve:1.5.0", "traffic_percent": 60}}))
    problem = errors["models[0].serving.shadow.traffic_percent"]
    assert str(MAX_MIRROR_PERCENT) in problem.message and problem.hint and problem.line is not None


def test_a_challenger_artifact_azure_cannot_read_is_a_located_error() -> None:
    errors = _errors(spec_data({"shadow": {"model_uri": "s3://acme/churn/v2/", "traffic_percent": 10}}))
    assert "models[0].serving.shadow.model_uri" in errors


# --- auth --------------------------------------------------------------------------------------------
def test_key_auth_sets_key_mode_and_keeps_both_keys_in_the_stack_vault(plan: dict) -> None:
    endpoint = by_name(plan, "serving-endpoint-churn")["inputs"]
    assert endpoint["properties"]["authMode"] == "Key"
    vault = next(r for r in plan["resources"] if r["type"] == "azure-native:keyvault:Vault")["inputs"]["vaultName"]
    secrets = {r["name"]: r["inputs"] for r in resources_of(plan, SECRET)}
    assert set(secrets) == {"serving-key-primary-churn", "serving-key-secondary-churn"}
    for which, secret in (("primary", secrets["serving-key-primary-churn"]), ("secondary", secrets["serving-key-secondary-churn"])):
        assert secret["vaultName"] == vault
        assert secret["secretName"] == f"{endpoint['endpointName']}-{which}-key"
        assert secret["properties"]["value"] == "[secret]"  # never the key itself


def test_no_key_material_reaches_the_plan_document(plan: dict) -> None:
    text = dump_plan(plan)
    assert "primaryKey" not in text and "secondaryKey" not in text


def test_iam_auth_is_entra_tokens_and_keeps_no_secret(plain: dict) -> None:
    assert by_name(plain, "serving-endpoint-churn")["inputs"]["properties"]["authMode"] == "AADToken"
    assert resources_of(plain, SECRET) == []


def test_switching_auth_updates_the_endpoint_in_place(plan: dict) -> None:
    data = spec_data({"auth": "iam"})
    changes = diff_plans(plan, plan_for("azure", data))
    assert "serving-endpoint-churn" in {u.name for u in changes.update}
    assert {d["name"] for d in changes.delete} == {"serving-key-primary-churn", "serving-key-secondary-churn"}


# --- modes -------------------------------------------------------------------------------------------
def _errors(data: dict) -> dict[str, Any]:
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["azure"])
    return {p.dotted_path: p for p in info.value.problems if p.severity == "error"}


@pytest.mark.parametrize(
    ("mode", "options", "reason"),
    [
        ("serverless", {"serverless": {"memory_gib": 4}}, "model catalog"),
        ("async", {"async": {"max_concurrent_per_instance": 2}}, "batch endpoints"),
    ],
)
def test_modes_azure_lacks_are_errors_with_the_reason(mode: str, options: dict, reason: str) -> None:
    serving = {"mode": mode, **options}
    data = spec_data(serving)
    del data["models"][0]["serving"]["shadow"]
    problem = _errors(data)["models[0].serving.mode"]
    assert reason in problem.message and problem.hint and problem.line is not None


def test_mode_elsewhere_realtime_serves_realtime_with_a_warning() -> None:
    data = spec_data({"mode": "async", "mode_elsewhere": "realtime"})
    del data["models"][0]["serving"]["shadow"]
    checked = check_text(yaml.safe_dump(data), "spec.yaml", clouds=["azure"])
    assert "models[0].serving.mode" in {p.dotted_path for p in checked.warnings}
    plan = plan_for("azure", data)
    assert resources_of(plan, ML + "OnlineDeployment")
