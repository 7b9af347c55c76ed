"""AWS serving: SageMaker models, endpoint configurations, endpoints, scaling, capture and rollout.

Plans are shared through module-scoped fixtures (8 plans in this file: the two examples, a
rich spec, four variants of it and a replan for determinism). Values only the cloud knows show
as "(known after apply)"; wiring is then asserted through `dependencies`. Changes are compared
with mlops_infra.diff.diff_plans, as `plan --against` does.

AWS needs no dynamic resource for serving (pulumi-aws covers models, configurations,
endpoints and scaling), so there is no provider to unit-test here.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws import serving_endpoints as endpoints
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.backends.aws.naming import (
    ALARM_KINDS,
    STYLES,
    alarm_name,
    bucket_name,
    content_name,
    stack_prefix,
)
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.naming import Namer, name_rules
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.validate import check_text
from mlops_infra.stages.storage import ARTIFACTS
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CLOUD = "aws"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
REPOSITORY = "aws:ecr/repository:Repository"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ltv-serve:2.0"
EXTERNAL_MODEL = "s3://acme-models/ltv/model.tar.gz"

ACCOUNT = "123456789012"
BASE = copy.deepcopy(BASE_SPEC)
BASE["clouds"] = {"aws": {**BASE["clouds"]["aws"], "account_id": ACCOUNT}}  # other backends may be mid-change
ARTIFACT_BUCKET = bucket_name(BACKEND.namer(spec_from(BASE), spec_from(BASE).clouds.aws), ARTIFACTS)

RICH: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "models": [
        {
            "name": "churn",
            "training": {"image": "ghcr.io/acme/churn-train:1.4.0", "compute": {"size": "cpu-small"},
                         "inputs": ["raw"]},
            "registry": {"approval": "manual"},
            "serving": {
                "image": "ghcr.io/acme/churn-serve:1.4.0",
                "compute": {"size": "cpu-small"},
                "environment": {"LOG_LEVEL": "info"},
                "autoscaling": {"min_replicas": 2, "max_replicas": 6, "target_requests_per_replica": 50,
                                "scale_in_cooldown": "10m", "scale_out_cooldown": "2m"},
                "data_capture": {"sampling_percent": 25},
                "rollout": {"mode": "canary", "canary_percent": 20, "wait": "5m"},
            },
            "monitoring": {"latency_p99_ms": 300, "error_rate_percent": 1},
        },
        {
            "name": "ltv",
            "serving": {
                "image": ECR_IMAGE,
                "model_uri": EXTERNAL_MODEL,
                "compute": {"size": "gpu-small"},
                "autoscaling": {"min_replicas": 2, "max_replicas": 4, "target_cpu_percent": 60},
                "data_capture": {"sampling_percent": 5, "capture_responses": False},
                "rollout": {"mode": "linear", "step_percent": 25, "wait": "2m", "rollback_on_alarms": False},
            },
            "monitoring": {"latency_p99_ms": 500},
        },
        {
            "name": "scorer",
            "serving": {
                "image": "ghcr.io/acme/scorer@sha256:" + "ab" * 32,
                "model_uri": f"s3://{ARTIFACT_BUCKET}/models/scorer/v3/",
                "compute": {"cpus": 2, "memory_gib": 4},
            },
            "monitoring": {"error_rate_percent": 2},
        },
    ],
}


def changed(model: int, **serving_changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RICH)
    for key, value in serving_changes.items():
        if isinstance(value, dict) and isinstance(data["models"][model]["serving"].get(key), dict):
            data["models"][model]["serving"][key].update(value)
        else:
            data["models"][model]["serving"][key] = value
    return data


# --- plans (8 in all) --------------------------------------------------------------------



@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return plan_for("aws", RICH)


@pytest.fixture(scope="module")
def more_replicas() -> dict[str, Any]:
    return plan_for("aws", changed(0, autoscaling={"max_replicas": 9}))


@pytest.fixture(scope="module")
def new_image() -> dict[str, Any]:
    return plan_for("aws", changed(0, image="ghcr.io/acme/churn-serve:1.5.0"))


@pytest.fixture(scope="module")
def added() -> dict[str, Any]:
    data = copy.deepcopy(RICH)
    data["models"].append({
        "name": "fresh",
        "training": {"image": "ghcr.io/acme/fresh-train:0.1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]},
        "registry": {},
        "serving": {"image": "ghcr.io/acme/fresh-serve:0.1.0", "compute": {"size": "cpu-small"},
                    "autoscaling": {"max_replicas": 3, "target_requests_per_replica": 20},
                    "data_capture": {"sampling_percent": 50}},
        "monitoring": {"latency_p99_ms": 200},
    })
    return plan_for("aws", data)


@pytest.fixture(scope="module")
def retagged() -> dict[str, Any]:
    return plan_for("aws", RICH, tags={"owner": "ml-platform", "team": "scoring"})


# --- helpers -------------------------------------------------------------------------------
def named(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def doc(resource: dict[str, Any]) -> dict[str, Any]:
    text = resource["inputs"]["policy"]
    assert text != UNKNOWN, f"{resource['name']}.policy should be known before deployment"
    return json.loads(text)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(document: dict[str, Any]) -> dict[str, set[str]]:
    """action -> resources of the Allow statements."""
    out: dict[str, set[str]] = {}
    for s in as_list(document["Statement"]):
        if s["Effect"] == "Allow":
            for action in as_list(s["Action"]):
                out.setdefault(action, set()).update(as_list(s["Resource"]))
    return out


def served(plan: dict[str, Any]) -> list[str]:
    return sorted(plan["outputs"]["serving"]["endpoints"])


def serving_of(stack: str) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())
    return {m["name"]: m for m in raw["models"] if m.get("serving")}


def namer_of(data: dict[str, Any]) -> Namer:
    spec = spec_from(data)
    return BACKEND.namer(spec, spec.clouds.aws)


# --- the examples: endpoint, scaling, capture, rollout, wired to artifact / key / identity --
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_examples_serve_every_model_wired_to_artifact_key_and_identity(stack, dev, prod):
    plan = {"dev": dev, "prod": prod}[stack]
    resources = named(plan)
    models = serving_of(stack)
    assert served(plan) == sorted(models)
    artifacts = plan["outputs"]["storage"]["artifacts_uri"]
    for name, model in models.items():
        sm_model = resources[f"serving-model-{name}"]
        config = resources[f"serving-config-{name}"]
        endpoint = resources[f"serving-endpoint-{name}"]
        target = resources[f"serving-scaling-{name}"]
        # The model: the training output as model data, the serving identity as execution role.
        container = sm_model["inputs"]["primaryContainer"]
        (source,) = container["modelDataSource"]["s3DataSources"]
        assert source == {"s3Uri": plan["outputs"]["training"]["output_uris"][name], "s3DataType": "S3Prefix",
                          "compressionType": "None"}
        assert source["s3Uri"] == f"{artifacts}/models/{name}/"
        assert "storage-bucket-artifacts" in sm_model["dependencies"]["primaryContainer"]
        assert sm_model["dependencies"]["executionRoleArn"] == ["governance-role-serving"]
        assert sm_model["inputs"]["enableNetworkIsolation"] is True
        # The image comes from the stack's serving repository (ghcr.io images), which the model waits for.
        region = "us-east-1" if stack == "dev" else "eu-west-1"
        tag = model["serving"]["image"].rsplit(":", 1)[1]
        assert container["image"] == f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/churn-{stack}-{name}-serving:{tag}"
        assert f"serving-repository-{name}" in sm_model["depends_on"]
        # The configuration: the model, the key, capture into the artifact bucket.
        (variant,) = config["inputs"]["productionVariants"]
        assert variant["modelName"] == sm_model["inputs"]["name"] and variant["variantName"] == endpoints.VARIANT
        assert config["dependencies"]["productionVariants"] == [f"serving-model-{name}"]
        assert config["inputs"]["kmsKeyArn"] == UNKNOWN and config["dependencies"]["kmsKeyArn"] == ["governance-key"]
        if "data_capture" in model["serving"]:
            capture = config["inputs"]["dataCaptureConfig"]
            assert capture["destinationS3Uri"] == f"{artifacts}/data-capture/{name}/"
            assert capture["initialSamplingPercentage"] == model["serving"]["data_capture"]["sampling_percent"]
            assert capture["enableCapture"] is True and capture["kmsKeyId"] == UNKNOWN
            assert config["dependencies"]["dataCaptureConfig"] == ["governance-key", "storage-bucket-artifacts"]
        # The endpoint: the configuration, the rollout, rollback on the monitoring stage's alarms.
        assert endpoint["inputs"]["endpointConfigName"] == config["inputs"]["name"]
        assert endpoint["dependencies"]["endpointConfigName"] == [f"serving-config-{name}"]
        rollout = model["serving"].get("rollout", {"mode": "all-at-once"})
        routing = endpoint["inputs"]["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert routing["type"] == endpoints.TRAFFIC[rollout["mode"]] and routing["waitIntervalInSeconds"] == 600
        if rollout["mode"] == "canary":
            assert routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": rollout["canary_percent"]}
        alarms = endpoint["inputs"]["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
        assert alarms == [{"alarmName": f"churn-{stack}-{name}-latency"}, {"alarmName": f"churn-{stack}-{name}-errors"}][
            : len(alarms)]
        assert {"serving-grant-serving", "storage-grant-serving", "governance-keygrant-serving"} <= set(
            endpoint["depends_on"])
        # Scaling on the variant.
        scaling = model["serving"]["autoscaling"]
        assert target["inputs"]["resourceId"] == f"endpoint/{endpoint['inputs']['name']}/variant/primary"
        assert target["dependencies"]["resourceId"] == [f"serving-endpoint-{name}"]
        assert (target["inputs"]["minCapacity"], target["inputs"]["maxCapacity"]) == (
            scaling["min_replicas"], scaling["max_replicas"])
        assert f"serving-scalingpolicy-{name}" in resources
        url = plan["outputs"]["serving"]["urls"][name]
        region = "us-east-1" if stack == "dev" else "eu-west-1"
        # An asynchronous endpoint is invoked at its own path (InvokeEndpointAsync).
        invoke = "async-invocations" if model["serving"].get("mode") == "async" else "invocations"
        runtime = f"https://runtime.sagemaker.{region}.amazonaws.com"
        assert url == f"{runtime}/endpoints/{endpoint['inputs']['name']}/{invoke}"
        assert plan["outputs"]["serving"]["endpoints"][name] == endpoint["inputs"]["name"]


def test_example_instance_types_and_rollback_alarms(prod):
    resources = named(prod)
    churn = resources["serving-config-churn-classifier"]["inputs"]["productionVariants"][0]
    assert (churn["instanceType"], churn["initialInstanceCount"]) == ("ml.c5.2xlarge", 2)  # the override
    ltv = resources["serving-config-ltv-regressor"]["inputs"]
    assert ltv["productionVariants"][0]["instanceType"] == "ml.m5.xlarge"  # 4 cpus / 16 GiB
    assert "dataCaptureConfig" not in ltv  # no data_capture block
    # ltv-regressor's monitoring sets a latency alarm only: that is the one it rolls back on.
    alarms = resources["serving-endpoint-ltv-regressor"]["inputs"]["deploymentConfig"]["autoRollbackConfiguration"]
    assert alarms == {"alarms": [{"alarmName": "churn-prod-ltv-regressor-latency"}]}


def test_examples_warn_with_the_serving_push_target(dev, prod):
    for plan, stack, region in ((dev, "dev", "us-east-1"), (prod, "prod", "eu-west-1")):
        warnings = {w["path"]: w for w in plan["warnings"] if w["path"].endswith("serving.image")}
        assert len(warnings) == len(serving_of(stack))
        for warning in warnings.values():
            assert warning["severity"] == "warning"
            assert re.search(rf"{ACCOUNT}\.dkr\.ecr\.{region}\.amazonaws\.com/churn-{stack}-[a-z-]+-serving:[0-9.]+",
                             warning["message"])


# --- scaling, capture, model data, encryption ----------------------------------------------
def test_scaling_targets_requests_or_cpu_with_the_spec_cooldowns(rich):
    resources = named(rich)
    churn = resources["serving-scalingpolicy-churn"]["inputs"]
    assert churn["policyType"] == "TargetTrackingScaling" and churn["name"] == "churn-dev-churn-invocations"
    assert churn["targetTrackingScalingPolicyConfiguration"] == {
        "targetValue": 50, "scaleInCooldown": 600, "scaleOutCooldown": 120,
        "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    assert (churn["resourceId"], churn["scalableDimension"], churn["serviceNamespace"]) == (
        "endpoint/churn-dev-churn/variant/primary", "sagemaker:variant:DesiredInstanceCount", "sagemaker")
    assert set(resources["serving-scalingpolicy-churn"]["dependencies"]) == {
        "resourceId", "scalableDimension", "serviceNamespace"}
    ltv = resources["serving-scalingpolicy-ltv"]["inputs"]["targetTrackingScalingPolicyConfiguration"]
    # CPUUtilization adds up the vCPUs: 60% of an ml.g4dn.xlarge's 4 vCPUs is 240.
    assert ltv["targetValue"] == 240 and ltv["scaleInCooldown"] == 300 and ltv["scaleOutCooldown"] == 60
    assert ltv["customizedMetricSpecification"] == {
        "metricName": "CPUUtilization", "namespace": "/aws/sagemaker/Endpoints", "statistic": "Average",
        "unit": "Percent", "dimensions": [{"name": "EndpointName", "value": "churn-dev-ltv"},
                                          {"name": "VariantName", "value": "primary"}]}
    # scorer keeps one instance: a scaling target with its bounds, no policy.
    assert "serving-scalingpolicy-scorer" not in resources
    assert (resources["serving-scaling-scorer"]["inputs"]["minCapacity"],
            resources["serving-scaling-scorer"]["inputs"]["maxCapacity"]) == (1, 1)


def test_capture_options_follow_the_spec_and_are_optional(rich):
    resources = named(rich)
    churn = resources["serving-config-churn"]["inputs"]["dataCaptureConfig"]
    assert churn["captureOptions"] == [{"captureMode": "Input"}, {"captureMode": "Output"}]
    ltv = resources["serving-config-ltv"]["inputs"]["dataCaptureConfig"]
    assert ltv["captureOptions"] == [{"captureMode": "Input"}] and ltv["initialSamplingPercentage"] == 5
    assert "dataCaptureConfig" not in resources["serving-config-scorer"]["inputs"]


def test_volumes_use_the_key_except_on_hardware_encrypted_local_storage(rich):
    resources = named(rich)
    assert resources["serving-config-churn"]["dependencies"]["kmsKeyArn"] == ["governance-key"]
    ltv = resources["serving-config-ltv"]
    assert ltv["inputs"]["productionVariants"][0]["instanceType"] == "ml.g4dn.xlarge"
    assert "kmsKeyArn" not in ltv["inputs"]  # SageMaker rejects a volume key on NVMe instance storage
    assert ltv["dependencies"]["dataCaptureConfig"] == ["governance-key", "storage-bucket-artifacts"]  # still encrypted
    assert resources["serving-config-scorer"]["inputs"]["productionVariants"][0]["instanceType"] == "ml.c5.large"


def test_model_data_from_model_uri_or_the_training_output(rich):
    resources = named(rich)
    ltv = resources["serving-model-ltv"]["inputs"]["primaryContainer"]
    assert ltv["modelDataUrl"] == EXTERNAL_MODEL and "modelDataSource" not in ltv  # a .tar.gz
    assert ltv["image"] == ECR_IMAGE  # a private ECR image of the region: as written
    (scorer,) = resources["serving-model-scorer"]["inputs"]["primaryContainer"]["modelDataSource"]["s3DataSources"]
    assert scorer == {"s3Uri": f"s3://{ARTIFACT_BUCKET}/models/scorer/v3/", "s3DataType": "S3Prefix",
                      "compressionType": "None"}
    churn = resources["serving-model-churn"]["inputs"]["primaryContainer"]
    assert churn["modelDataSource"]["s3DataSources"][0]["s3Uri"] == rich["outputs"]["training"]["output_uris"]["churn"]
    assert churn["environment"] == {"LOG_LEVEL": "info"}
    single = endpoints.container(image="i", data_uri="s3://b/m/model.pt", kind=endpoints.data_kind("s3://b/m/model.pt"),
                                 environment={})
    assert single["model_data_source"]["s3_data_sources"][0]["s3_data_type"] == "S3Object"


def test_serving_repositories_are_protected_and_the_stacks_own(rich):
    for name in ("churn", "ltv", "scorer"):
        repo = named(rich)[f"serving-repository-{name}"]
        assert repo["protect"] is True and repo["inputs"]["name"] == f"churn-dev-{name}-serving"
        assert repo["inputs"]["imageTagMutability"] == "IMMUTABLE" and repo["inputs"]["forceDelete"] is False
        assert repo["dependencies"]["encryptionConfigurations"] == ["governance-key"]


# --- diffs: scaling, image, additions, tags ----------------------------------------------------
def test_raising_max_replicas_changes_only_the_scaling_target(rich, more_replicas):
    changes = diff_plans(rich, more_replicas)
    assert changes.create == [] and changes.delete == []
    assert [(u.name, u.paths) for u in changes.update] == [("serving-scaling-churn", ["inputs.maxCapacity"])]


def test_a_new_image_replaces_model_and_configuration_and_updates_the_endpoint_in_place(rich, new_image):
    changes = diff_plans(rich, new_image)
    assert changes.create == [] and changes.delete == []  # same logical names (URNs)
    updates = {u.name: u.paths for u in changes.update}
    assert set(updates) == {"serving-model-churn", "serving-config-churn", "serving-endpoint-churn"}
    # New physical names for the immutable parts: Pulumi replaces them (create first, delete after).
    assert "inputs.name" in updates["serving-model-churn"] and "inputs.name" in updates["serving-config-churn"]
    assert "inputs.productionVariants[0].modelName" in updates["serving-config-churn"]
    # The endpoint keeps its name; only the configuration it points to changes.
    assert updates["serving-endpoint-churn"] == ["inputs.endpointConfigName"]
    before, after = named(rich), named(new_image)
    assert before["serving-endpoint-churn"]["inputs"]["name"] == after["serving-endpoint-churn"]["inputs"]["name"]
    for name in ("serving-model-churn", "serving-config-churn"):
        old, new = before[name]["inputs"]["name"], after[name]["inputs"]["name"]
        assert old != new and old.rsplit("-", 1)[0] == new.rsplit("-", 1)[0]  # same prefix, another hash


def test_adding_a_model_only_creates(rich, added):
    changes = diff_plans(rich, added)
    # The stack's dashboard has a row per served model: its body is the one thing that changes.
    assert [(u.name, u.paths) for u in changes.update] == [("monitoring-dashboard", ["inputs.dashboardBody<json>.widgets"])]
    assert changes.delete == []
    assert {c["name"] for c in changes.create} == {
        "governance-group-fresh", "governance-groupdata-fresh", "governance-groupattach-training-fresh",
        "training-repository-fresh", "training-pipeline-fresh", "registry-group-fresh",
        "serving-repository-fresh", "serving-model-fresh", "serving-config-fresh", "serving-endpoint-fresh",
        "serving-scaling-fresh", "serving-scalingpolicy-fresh", "monitoring-alarm-latency-fresh",
    }


def test_new_tags_keep_every_content_derived_name(rich, retagged):
    changes = diff_plans(rich, retagged)
    assert changes.create == [] and changes.delete == []
    serving = [u for u in changes.update if u.stage == "serving"]
    assert {u.name for u in serving} == {f"serving-{kind}-{m}" for kind in ("repository", "model", "config", "endpoint",
                                                                           "scaling") for m in ("churn", "ltv", "scorer")}
    assert all(all(p.startswith("inputs.tags.") for p in u.paths) for u in serving), serving


def test_content_names_fit_and_track_the_whole_definition():
    data = copy.deepcopy(RICH)
    data.update(project="a-very-long-project-name", environment="production-east1")
    data["models"][0]["name"] = "a-model-with-a-rather-long-name1"
    namer = namer_of(data)
    from mlops_infra.backends.aws.naming import endpoint_config_prefix, model_prefix

    for kind, prefix in (("aws.sagemaker.model", model_prefix(namer, data["models"][0]["name"])),
                         ("aws.sagemaker.endpoint_config", endpoint_config_prefix(namer, data["models"][0]["name"]))):
        name = content_name(prefix, {"a": 1})
        assert len(name) <= 63 and name_rules()[kind].accepts(name)
        assert content_name(prefix, {"a": 1}) == name != content_name(prefix, {"a": 2})
        assert content_name(prefix, {"a": 1, "b": [1, 2]}) == content_name(prefix, {"b": [1, 2], "a": 1})


# --- validation -------------------------------------------------------------------------------
HEAD = """\
apiVersion: mlops-infra/v1
project: churn
environment: dev
cloud: aws
clouds:
  aws: {region: us-east-1}
models:
  - name: m1
    serving:
      image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1.0
      model_uri: s3://acme-models/m1/model.tar.gz
      compute: {size: cpu-small}
"""


ONE_TO_FOUR = "autoscaling: {min_replicas: 1, max_replicas: 4, target_cpu_percent: 50}\n"
TWO_TO_FOUR = "autoscaling: {min_replicas: 2, max_replicas: 4, target_cpu_percent: 50}\n"


def errors_of(serving_yaml: str) -> dict[str, Any]:
    text = HEAD + textwrap.indent(textwrap.dedent(serving_yaml), " " * 6)
    try:
        checked = check_text(text, "spec.yaml", clouds=["aws"])
    except SpecInvalid as invalid:
        return {p.dotted_path: p for p in invalid.problems if p.severity == "error"}
    return {p.dotted_path: p for p in checked.warnings if p.severity == "error"}


@pytest.mark.parametrize(("serving", "path", "words"), [
    ("autoscaling: {min_replicas: 5, max_replicas: 2}", "models[0].serving.autoscaling", "greater than"),
    ("autoscaling: {min_replicas: 0, max_replicas: 2, target_requests_per_replica: 5}",
     "models[0].serving.autoscaling.min_replicas", "scale to zero"),
    ("rollout: {mode: canary, canary_percent: 10}", "models[0].serving", "max_replicas of at least 2"),
    ("data_capture: {sampling_percent: 150}", "models[0].serving.data_capture.sampling_percent", "100"),
    # What SageMaker itself would reject:
    (ONE_TO_FOUR + "rollout: {mode: canary, canary_percent: 10}", "models[0].serving.autoscaling.min_replicas",
     "whole fleet"),
    (TWO_TO_FOUR + "rollout: {mode: canary, canary_percent: 60}", "models[0].serving.rollout.canary_percent",
     "at most 50%"),
    (TWO_TO_FOUR + "rollout: {mode: linear, step_percent: 5}", "models[0].serving.rollout.step_percent", "10% to 50%"),
    (TWO_TO_FOUR + "rollout: {mode: linear, step_percent: 12.5}", "models[0].serving.rollout.step_percent",
     "whole percentage"),
    ("data_capture: {sampling_percent: 12.5}", "models[0].serving.data_capture.sampling_percent", "whole"),
    ("environment: {1BAD: x}", "models[0].serving.environment.1BAD", "environment variable"),
])
def test_invalid_combinations_are_errors_with_their_location(serving, path, words):
    found = errors_of(serving)
    assert path in found, found
    assert words in found[path].message, found[path].message
    assert found[path].line is not None


def test_model_and_image_locations_sagemaker_cannot_use_are_errors():
    base = spec_from(BASE, models=[{"name": "m1", "serving": {
        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve:1.0",  # another region
        "model_uri": "https://example.com/model.tar.gz", "compute": {"size": "cpu-small"}}}])
    found = {p.path: p for p in BACKEND.check(base, base.clouds.aws)}
    image = found[("models", 0, "serving", "image")]
    assert image.severity == "error" and "another region" in image.message and "eu-west-1" in image.value
    uri = found[("models", 0, "serving", "model_uri")]
    assert uri.severity == "error" and "S3 only" in uri.message
    audit = spec_from(BASE, models=[{"name": "m1", "serving": {
        "image": ECR_IMAGE, "model_uri": f"s3://{ARTIFACT_BUCKET}/audit-logs/x.tar.gz", "compute": {"size": "cpu-small"}}}])
    assert [p.severity for p in BACKEND.check(audit, audit.clouds.aws)] == ["error"]


def test_checks_warn_about_what_the_spec_cannot_get_on_aws():
    spec = spec_from(RICH, governance={"network": "private"})
    found = {p.path: p for p in BACKEND.check(spec, spec.clouds.aws)}
    assert ("governance", "network") not in found  # built (tests/test_network_aws.py), not warned about
    outside = found.pop(("models", 1, "serving", "model_uri"))  # s3://acme-models: not the stack's
    assert outside.severity == "warning" and "acme-models" in outside.message
    assert {p for p in found if p[-1] == "image"} == {("models", 0, "training", "image"),
                                                     ("models", 0, "serving", "image"),
                                                     ("models", 2, "serving", "image")}
    assert all(p.severity == "warning" for p in found.values())
    override = copy.deepcopy(RICH)
    override["clouds"]["aws"]["overrides"] = {"models": {"ltv": {"serving_instance_type": "ml.inf2.xlarge"}}}
    spec = spec_from(override)
    (cpu,) = [p for p in BACKEND.check(spec, spec.clouds.aws) if p.path[-1] == "target_cpu_percent"]
    assert cpu.severity == "warning" and "ml.inf2.xlarge" in cpu.message


# --- least privilege, scoped by the stack's prefix ---------------------------------------------
def test_serving_grant_is_least_privilege_and_scoped_to_the_stack(rich):
    resources = named(rich)
    grant = doc(resources["serving-grant-serving"])
    pairs = allowed(grant)
    account = ACCOUNT
    logs = f"arn:aws:logs:us-east-1:{account}:log-group:/aws/sagemaker/Endpoints/churn-dev-*"
    assert pairs == {
        **{a: {f"arn:aws:ecr:us-east-1:{account}:repository/churn-dev-*-serving"} for a in jobs.ECR_PULL},
        "ecr:GetAuthorizationToken": {"*"},  # no resource-level permission exists
        "logs:CreateLogGroup": {logs}, "logs:DescribeLogStreams": {logs},
        "logs:CreateLogStream": {f"{logs}:log-stream:*"}, "logs:PutLogEvents": {f"{logs}:log-stream:*"},
        "cloudwatch:DescribeAlarms": {f"arn:aws:cloudwatch:us-east-1:{account}:alarm:churn-dev-*"},
    }
    # The patterns cover this stack's repositories, endpoints' log groups and rollback alarms.
    repos = [r["inputs"]["name"] for r in resources_of(rich, REPOSITORY) if r["stage"] == "serving"]
    assert all(fnmatch.fnmatchcase(f"repository/{r}", "repository/churn-dev-*-serving") for r in repos)
    assert not any(fnmatch.fnmatchcase(r["inputs"]["name"], "churn-dev-*-serving")
                   for r in resources_of(rich, REPOSITORY) if r["stage"] == "training")
    for endpoint in resources_of(rich, ENDPOINT):
        name = endpoint["inputs"]["name"]
        assert fnmatch.fnmatchcase(f"/aws/sagemaker/Endpoints/{name}", "/aws/sagemaker/Endpoints/churn-dev-*")
        for alarm in endpoint["inputs"]["deploymentConfig"].get("autoRollbackConfiguration", {}).get("alarms", []):
            assert fnmatch.fnmatchcase(alarm["alarmName"], "churn-dev-*")
    # Per model, only what the prefix cannot name: ltv's ECR repository and its external model.
    assert allowed(doc(resources["serving-imagegrant-ltv"])) == {
        a: {"arn:aws:ecr:us-east-1:123456789012:repository/ltv-serve"} for a in jobs.ECR_PULL}
    assert allowed(doc(resources["serving-datagrant-ltv"])) == {
        "s3:GetObject": {"arn:aws:s3:::acme-models/ltv/model.tar.gz"}}
    assert {"serving-imagegrant-ltv", "serving-datagrant-ltv"} <= set(resources["serving-endpoint-ltv"]["depends_on"])
    grants = {r["name"] for r in resources_of(rich, ROLE_POLICY) if r["stage"] == "serving"}
    assert grants == {"serving-grant-serving", "serving-imagegrant-ltv", "serving-datagrant-ltv"}  # scorer: covered
    for r in resources_of(rich, ROLE_POLICY):
        if r["stage"] == "serving":
            assert r["inputs"]["role"] == resources["governance-role-serving"]["inputs"]["name"]


def test_a_model_prefix_outside_the_trained_models_gets_a_listing_grant():
    grant = endpoints.model_data_grant("aws", "s3://acme-models/ltv/v2/")
    (listing, read) = grant["Statement"]
    assert listing["Action"] == ["s3:ListBucket"] and listing["Resource"] == "arn:aws:s3:::acme-models"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["ltv/v2/", "ltv/v2/*"]}}
    assert read["Resource"] == "arn:aws:s3:::acme-models/ltv/v2/*"
    assert endpoints.covered_by_storage_grant(f"s3://{ARTIFACT_BUCKET}/models/x/", ARTIFACT_BUCKET)
    assert not endpoints.covered_by_storage_grant(f"s3://{ARTIFACT_BUCKET}/other/x/", ARTIFACT_BUCKET)


def test_stack_wide_grants_do_not_grow_with_models():
    few, many = (copy.deepcopy(RICH) for _ in range(2))
    many["models"] += [{"name": f"extra-{i:03d}", "serving": {"image": "ghcr.io/a/s:1", "compute": {"size": "cpu-small"},
                                                                "model_uri": f"s3://{ARTIFACT_BUCKET}/models/e{i}/"}}
                       for i in range(300)]
    grants = [endpoints.serving_grants(partition="aws", region="us-east-1", account_id="1",
                                       scope=endpoints.serving_scope(namer_of(d))) for d in (few, many)]
    assert grants[0] == grants[1]
    spec = spec_from(many)
    assert not [p for p in BACKEND.check(spec, spec.clouds.aws) if "IAM allows" in p.message]


def test_no_wildcard_action_and_star_only_for_the_ecr_login(dev, prod, rich):
    for plan in (dev, prod, rich):
        for r in resources_of(plan, ROLE_POLICY):
            text = r["inputs"]["policy"]
            if text == UNKNOWN:
                continue
            for s in as_list(json.loads(text)["Statement"]):
                if s["Effect"] != "Allow":
                    continue
                assert all("*" not in a for a in as_list(s["Action"])), (r["name"], s)
                if "*" in as_list(s["Resource"]):
                    assert as_list(s["Action"]) == ["ecr:GetAuthorizationToken"], (r["name"], s)


# --- names -------------------------------------------------------------------------------------
SLUG = st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,31}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(project=SLUG.filter(lambda s: len(s) <= 24), environment=SLUG.filter(lambda s: len(s) <= 16), model=SLUG)
def test_every_name_starts_with_its_stack_prefix(project, environment, model):
    namer = Namer(cloud="aws", project=project, environment=environment, styles=STYLES, scope="us-east-1")
    for kind in STYLES:
        if kind == "aws.kms.alias":
            continue
        prefix = stack_prefix(namer, kind)
        assert len(prefix) >= min(len(project) + len(environment) + 2, 20)
        for parts in ((model,), (model, "serving"), (model, "latency")):
            assert namer.name(kind, *parts).startswith(prefix), (kind, prefix, parts)


def test_alarm_names_are_the_monitoring_stages_and_fit():
    namer = namer_of(RICH)
    assert [alarm_name(namer, "churn", k) for k in ALARM_KINDS] == ["churn-dev-churn-latency", "churn-dev-churn-errors"]
    with pytest.raises(ValueError):
        alarm_name(namer, "churn", "cpu")
    rule = name_rules()["aws.cloudwatch.alarm"]
    assert all(rule.accepts(alarm_name(namer, "churn", k)) for k in ALARM_KINDS)


NAME_INPUTS = {MODEL: "aws.sagemaker.model", CONFIG: "aws.sagemaker.endpoint_config", ENDPOINT: "aws.sagemaker.endpoint",
               REPOSITORY: "aws.ecr.repository"}


def test_physical_names_keep_the_rules(dev, prod, rich):
    rules = name_rules()
    variant = rules["aws.sagemaker.variant"]
    for plan in (dev, prod, rich):
        for r in plan["resources"]:
            if r["stage"] == "serving" and r["type"] in NAME_INPUTS:
                assert rules[NAME_INPUTS[r["type"]]].accepts(r["inputs"]["name"]), r["inputs"]["name"]
            if r["type"] == CONFIG:
                assert variant.accepts(r["inputs"]["productionVariants"][0]["variantName"])
            if r["type"] == POLICY:
                assert 1 <= len(r["inputs"]["name"]) <= 255


# --- SDK facts, tags, provider, determinism --------------------------------------------------
SDK_CLASSES = {MODEL: "sagemaker.ModelArgs", CONFIG: "sagemaker.EndpointConfigurationArgs",
               ENDPOINT: "sagemaker.EndpointArgs", TARGET: "appautoscaling.TargetArgs", POLICY: "appautoscaling.PolicyArgs"}
USER_MAPS = {"environment", "tags"}


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def _check_args(cls: type, values: dict[str, Any], where: str) -> None:
    """Every (camelCase) input is a parameter of the SDK's Args class, recursively."""
    module = importlib.import_module(cls.__module__)
    inputs = importlib.import_module(module.__name__.rsplit(".", 1)[0] + "._inputs")
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in values.items():
        name = _snake(key)
        assert name in parameters, f"{where}: {cls.__name__} has no {name}"
        if key in USER_MAPS:
            continue
        nested = re.search(r"'(\w+Args)'", str(parameters[name].annotation))
        for item in as_list(value):
            if isinstance(item, dict):
                assert nested, f"{where}.{key}: a dict where {cls.__name__} takes a scalar"
                _check_args(getattr(inputs, nested.group(1)), item, f"{where}.{key}")


def test_inputs_follow_the_pulumi_aws_argument_names(prod, rich):
    import pulumi_aws as aws

    seen = set()
    for plan in (prod, rich):
        for r in plan["resources"]:
            if r["type"] in SDK_CLASSES:
                service, name = SDK_CLASSES[r["type"]].split(".")
                _check_args(getattr(getattr(aws, service), name), r["inputs"], r["name"])
                seen.add(r["type"])
    assert seen == set(SDK_CLASSES)


def test_serving_resources_are_tagged_use_the_provider_and_only_repositories_are_protected(rich):
    for r in rich["resources"]:
        if r["stage"] != "serving" or not r["custom"]:
            continue
        assert r["provider"] == "aws" and r["parent"] == "serving", r["name"]
        assert r["protect"] is (r["type"] == REPOSITORY), r["name"]
        if r["type"] not in (ROLE_POLICY, POLICY):  # neither takes tags
            assert r["inputs"]["tags"]["mlops-stage"] == "serving" and r["inputs"]["tags"]["owner"] == "ml-platform"


def test_the_same_spec_plans_to_the_same_document(rich):
    assert json.dumps(plan_for("aws", RICH), sort_keys=True) == json.dumps(rich, sort_keys=True)
