"""AWS serving modes: serverless and async endpoints, shadow variants, and auth (a gap).

Plans are shared through module-scoped fixtures (three plans: a spec with one model per mode,
the same with more serverless memory, and a private-network variant). Validation is checked on
the spec alone (every problem located, with its hint).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws import serving_modes as modes
from mlops_infra.backends.aws.governance_grants import budgets
from mlops_infra.diff import diff_plans
from mlops_infra.plan import UNKNOWN
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"
SCORES = "churn-dev-scores-123456789012-us-east-1-an"
ARTIFACTS = "churn-dev-artifacts-123456789012-us-east-1-an"

TRAIN = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]}
SERVE = {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"}}


def modes_spec() -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"].append({"name": "scores", "expire_after_days": 90})
    data["monitoring"] = {"notify": {"emails": ["oncall@example.com"]}}
    data["models"] = [
        {"name": "sless", "training": TRAIN,
         "serving": {**SERVE, "mode": "serverless", "serverless": {"memory_gib": 4, "max_concurrency": 20}},
         "monitoring": {"latency_p99_ms": 300, "error_rate_percent": 1}},
        {"name": "asy", "training": TRAIN,
         "serving": {**SERVE, "mode": "async", "async": {"output": {"bucket": "scores", "prefix": "asy/"},
                                                         "max_concurrent_per_instance": 3},
                     "autoscaling": {"min_replicas": 1, "max_replicas": 4, "target_requests_per_replica": 5}},
         "monitoring": {"latency_p99_ms": 900}},
        {"name": "plain", "training": TRAIN, "serving": {**SERVE, "mode": "async"}},
        {"name": "shad", "training": TRAIN,
         "serving": {**SERVE, "data_capture": {"sampling_percent": 50},
                     "shadow": {"image": "ghcr.io/acme/serve:2.0", "traffic_percent": 20}}},
    ]
    return data


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", modes_spec())


def named(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def problems(data: dict[str, Any]) -> list[Any]:
    spec = spec_from(data)
    return BACKEND.check(spec, spec.clouds.aws)


def at(found: list[Any], path: str) -> list[Any]:
    return [p for p in found if p.dotted_path == path]


# --- serverless --------------------------------------------------------------------------------
def test_serverless_variant_has_memory_and_concurrency_and_no_instances(plan):
    config = named(plan)["serving-config-sless"]["inputs"]
    (variant,) = config["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 4096, "maxConcurrency": 20}
    assert "instanceType" not in variant and "initialInstanceCount" not in variant
    assert "kmsKeyArn" not in config  # no instance volumes to encrypt
    assert "asyncInferenceConfig" not in config and "shadowProductionVariants" not in config


def test_serverless_endpoints_get_no_scaling_and_no_network_isolation(plan):
    resources = named(plan)
    assert "serving-scaling-sless" not in resources and "serving-scalingpolicy-sless" not in resources
    assert resources["serving-model-sless"]["inputs"]["enableNetworkIsolation"] is False
    # The other modes keep the container isolated.
    assert all(resources[f"serving-model-{m}"]["inputs"]["enableNetworkIsolation"] is True for m in ("asy", "shad"))


def test_serverless_keeps_the_endpoint_alarms(plan):
    alarms = {r["name"] for r in resources_of(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {"monitoring-alarm-latency-sless", "monitoring-alarm-errors-sless"} <= alarms


# --- async -----------------------------------------------------------------------------------
def test_async_responses_go_to_the_spec_output_encrypted_with_the_stack_key(plan):
    config = named(plan)["serving-config-asy"]
    output = config["inputs"]["asyncInferenceConfig"]["outputConfig"]
    assert output["s3OutputPath"] == f"s3://{SCORES}/asy/"
    assert output["s3FailurePath"] == f"s3://{SCORES}/asy/failures/"
    assert output["kmsKeyId"] == UNKNOWN and "governance-key" in config["dependencies"]["asyncInferenceConfig"]
    client = config["inputs"]["asyncInferenceConfig"]["clientConfig"]
    assert client == {"maxConcurrentInvocationsPerInstance": 3}
    assert config["inputs"]["productionVariants"][0]["instanceType"] == "ml.m5.large"


def test_async_without_output_writes_under_the_artifact_bucket(plan):
    output = named(plan)["serving-config-plain"]["inputs"]["asyncInferenceConfig"]["outputConfig"]
    assert output["s3OutputPath"] == f"s3://{ARTIFACTS}/async-inference/plain/"


def test_the_serving_identity_may_write_exactly_the_async_output(plan):
    grant = named(plan)["serving-asyncgrant-asy"]
    assert grant["inputs"]["role"] == "churn-dev-serving-us-east-1"
    (statement,) = json.loads(grant["inputs"]["policy"])["Statement"]
    assert statement["Action"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert statement["Resource"] == f"arn:aws:s3:::{SCORES}/asy/*"
    # The endpoint starts only once the grant exists.
    assert "serving-asyncgrant-asy" in named(plan)["serving-endpoint-asy"]["depends_on"]


def test_async_scales_on_the_backlog_per_instance(plan):
    policy = named(plan)["serving-scalingpolicy-asy"]["inputs"]
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert policy["name"] == "churn-dev-asy-backlog"
    assert tracking["customizedMetricSpecification"]["metricName"] == "ApproximateBacklogSizePerInstance"
    assert tracking["customizedMetricSpecification"]["dimensions"] == [{"name": "EndpointName", "value": "churn-dev-asy"}]
    assert tracking["targetValue"] == 5
    assert named(plan)["serving-scaling-asy"]["inputs"]["maxCapacity"] == 4


def test_async_urls_use_the_async_invocation_path():
    assert modes.invocation_url("async", "aws", "us-east-1", "e").endswith("/endpoints/e/async-invocations")
    assert modes.invocation_url("realtime", "aws", "us-east-1", "e").endswith("/endpoints/e/invocations")


# --- shadow ----------------------------------------------------------------------------------
def test_shadow_variant_gets_its_share_of_the_traffic_and_its_own_model(plan):
    resources = named(plan)
    config = resources["serving-config-shad"]["inputs"]
    (shadow,) = config["shadowProductionVariants"]
    challenger = resources["serving-shadowmodel-shad"]["inputs"]
    assert shadow["variantName"] == "shadow" and shadow["initialVariantWeight"] == 0.2
    assert shadow["modelName"] == challenger["name"] and challenger["name"].startswith("churn-dev-shad-shadow-")
    assert shadow["instanceType"] == config["productionVariants"][0]["instanceType"]
    assert challenger["primaryContainer"]["image"].endswith("/churn-dev-shad-serving:2.0")
    assert resources["serving-model-shad"]["inputs"]["primaryContainer"]["image"].endswith("/churn-dev-shad-serving:1.0")
    # The challenger's responses are kept by the endpoint's capture.
    assert config["dataCaptureConfig"]["captureOptions"] == [{"captureMode": "Input"}, {"captureMode": "Output"}]


def test_a_shadow_from_another_ecr_repository_gets_a_pull_grant():
    data = modes_spec()
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/challenger:3"
    data["models"] = [data["models"][3]]
    data["models"][0]["serving"]["shadow"] = {"image": image, "traffic_percent": 5}
    resources = named(plan_for("aws", data))
    statement = json.loads(resources["serving-shadowimagegrant-shad"]["inputs"]["policy"])["Statement"][0]
    assert statement["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/challenger"
    assert resources["serving-shadowmodel-shad"]["inputs"]["primaryContainer"]["image"] == image


# --- validation ------------------------------------------------------------------------------
def change(index: int, **serving: Any) -> dict[str, Any]:
    data = modes_spec()
    data["models"][index]["serving"].update(serving)
    return data


@pytest.mark.parametrize(("data", "path", "words"), [
    (change(0, serverless={"memory_gib": 8}), "models[0].serving.serverless.memory_gib", "1 to 6 GiB"),
    (change(0, serverless={"max_concurrency": 500}), "models[0].serving.serverless.max_concurrency", "at most 200"),
    (change(0, compute={"size": "gpu-small"}), "models[0].serving.compute", "exclude GPUs"),
    (change(0, data_capture={"sampling_percent": 10}), "models[0].serving.data_capture", "exclude data capture"),
    (change(0, autoscaling={"max_replicas": 3}, rollout={"mode": "canary", "canary_percent": 10}),
     "models[0].serving.rollout.mode", "canary or linear"),
    (change(0, shadow={"image": "ghcr.io/acme/serve:2.0", "traffic_percent": 5}), "models[0].serving.shadow",
     "cannot have shadow variants"),
    (change(1, shadow={"image": "ghcr.io/acme/serve:2.0", "traffic_percent": 5}), "models[1].serving.shadow",
     "cannot have shadow variants"),
    (change(3, data_capture=None), "models[3].serving.shadow", "data capture"),
    (change(3, auth="key"), "models[3].serving.auth", "no API keys"),
    (change(3, shadow={"image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1", "traffic_percent": 5}),
     "models[3].serving.shadow.image", "another region"),
])
def test_what_a_mode_excludes_is_a_located_error_with_a_hint(data, path, words):
    found = [p for p in at(problems(data), path) if p.severity == "error"]
    assert found and words in found[0].message and found[0].hint


def test_serverless_in_a_private_network_is_an_error():
    data = modes_spec()
    data["governance"] = {"network": "private"}
    found = at(problems(data), "models[0].serving.mode")
    assert any(p.severity == "error" and "VPC configuration" in p.message for p in found)


def test_async_endpoints_cannot_have_invocation_count_alarms():
    data = modes_spec()
    data["models"][1]["monitoring"] = {"latency_p99_ms": 900, "error_rate_percent": 1, "min_invocations_per_hour": 5}
    found = problems(data)
    for field in ("error_rate_percent", "min_invocations_per_hour"):
        (problem,) = at(found, f"models[1].monitoring.{field}")
        assert problem.severity == "error" and "Invocations" in problem.message
    assert not at(found, "models[1].monitoring.latency_p99_ms")


def test_what_a_mode_does_differently_is_a_warning():
    found = problems(change(0, autoscaling={"max_replicas": 2}))
    (scaling,) = at(found, "models[0].serving.autoscaling")
    assert scaling.severity == "warning" and "no effect" in scaling.message
    assert any(p.severity == "warning" and "isolate" in p.message for p in at(found, "models[0].serving.mode"))
    (backlog,) = at(found, "models[1].serving.autoscaling.target_requests_per_replica")
    assert backlog.severity == "warning" and "queued requests per instance" in backlog.message


def test_the_valid_modes_spec_has_no_error():
    assert [p for p in problems(modes_spec()) if p.severity == "error"] == []


def test_aws_offers_every_mode():
    assert BACKEND.serving_modes == {"realtime", "serverless", "async"}


def test_the_serving_identity_budget_counts_the_mode_grants():
    without = copy.deepcopy(modes_spec())
    without["models"][1]["serving"].pop("async")
    without["models"][1]["serving"]["mode"] = "realtime"

    def serving(data: Any) -> int:
        spec = spec_from(data)
        namer = BACKEND.namer(spec, spec.clouds.aws)
        return next(b.inline for b in budgets(spec, namer, spec.clouds.aws) if b.what == "the serving identity")

    assert serving(modes_spec()) > serving(without)


# --- diffs -----------------------------------------------------------------------------------
def test_more_serverless_memory_replaces_only_that_configuration(plan):
    changed = plan_for("aws", change(0, serverless={"memory_gib": 6, "max_concurrency": 20}))
    changes = diff_plans(plan, changed)
    assert changes.create == [] and changes.delete == []
    updates = {u.name: u.paths for u in changes.update}
    assert set(updates) == {"serving-config-sless", "serving-endpoint-sless"}
    assert "inputs.productionVariants[0].serverlessConfig.memorySizeInMb" in updates["serving-config-sless"]
    assert updates["serving-endpoint-sless"] == ["inputs.endpointConfigName"]


def test_the_cost_counts_the_shadow_variants_instances(plan):
    from mlops_infra.cost.estimate import estimate

    result = estimate(spec=spec_from(modes_spec()), cloud="aws", document=plan)
    shadow = [i for i in result.items if i.name == "serving-config-shad"]
    assert [(i.sku, int(i.quantity)) for i in shadow] == [("ml.m5.large", 1), ("ml.m5.large", 1)]
