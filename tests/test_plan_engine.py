"""The offline engine and the plan document: deterministic, sorted, complete."""

from __future__ import annotations

import copy
from pathlib import Path
import json

import pytest

from mlops_infra.backends import registry
from mlops_infra.plan import PLAN_FORMAT, UNKNOWN, dump_plan, plan_document
from tests.planning import CLOUDS, BASE_SPEC, plan_for



@pytest.fixture(scope="module", params=CLOUDS)
def cloud_plan(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param, plan_for(request.param)


def test_document_shape(cloud_plan: tuple[str, dict]) -> None:
    cloud, plan = cloud_plan
    assert plan["format"] == PLAN_FORMAT and plan["cloud"] == cloud and plan["project"] == "churn"
    # The summary counts cloud resources: no stage components, no providers.
    cloud_resources = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    assert plan["summary"]["total"] == len(cloud_resources) > 5
    assert sum(plan["summary"]["by_stage"].values()) == plan["summary"]["total"]
    assert "provider" not in plan["summary"]["by_stage"]
    names = [r["name"] for r in plan["resources"]]
    assert names == sorted(names) and len(set(names)) == len(names)
    for resource in plan["resources"]:
        assert set(resource) >= {"name", "type", "stage", "parent", "protect", "inputs"}
        assert resource["stage"] in {"provider", "governance", "storage"}
    json.dumps(plan)  # JSON-serializable, no Output objects leak


def test_every_resource_belongs_to_a_stage_component(cloud_plan: tuple[str, dict]) -> None:
    cloud, plan = cloud_plan
    components = {r["name"]: r for r in plan["resources"] if not r["custom"]}
    assert {c["type"] for c in components.values()} >= {
        f"mlops-infra:{cloud}:Governance",
        f"mlops-infra:{cloud}:Storage",
    }
    for resource in plan["resources"]:
        if resource["custom"] and resource["stage"] != "provider":
            assert resource["parent"] in components, f"{resource['name']} is not inside a stage component"
            assert resource["provider"] is not None, f"{resource['name']} misses the explicit provider"


def test_same_spec_same_bytes(cloud_plan: tuple[str, dict]) -> None:
    cloud, plan = cloud_plan
    assert dump_plan(plan_for(cloud)) == dump_plan(plan)


def test_list_order_does_not_change_logical_names(cloud_plan: tuple[str, dict]) -> None:
    cloud, _ = cloud_plan
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"] = [{"name": "alpha"}, {"name": "beta"}]
    first = plan_for(cloud, data)
    data["storage"]["buckets"].reverse()
    second = plan_for(cloud, data)
    assert dump_plan(first) == dump_plan(second)


# Backends whose every input is set by the program before apply (a Kubernetes object names its
# namespace and peers by name), so their plans have nothing to mark as unknown.
ALL_INPUTS_KNOWN = {"kubernetes"}


def test_unknown_values_are_marked(cloud_plan: tuple[str, dict]) -> None:
    cloud, plan = cloud_plan
    text = dump_plan(plan)
    assert (UNKNOWN in text) is (cloud not in ALL_INPUTS_KNOWN)
    assert "04da6b54-80e4-46f7-96ec-b56ff0331ba9" not in text  # the mock's raw sentinel never leaks


def test_outputs_are_neutral(cloud_plan: tuple[str, dict]) -> None:
    _, plan = cloud_plan
    assert set(plan["outputs"]) >= {"governance", "storage"}
    assert set(plan["outputs"]["storage"]["bucket_uris"]) == {"raw"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_adversarial_names_keep_logical_names_unique(cloud: str) -> None:
    # Spec names that extend each other with the words backends use in logical
    # names: any ambiguity in the naming scheme makes two resources collide.
    names = ["raw", "raw-training", "raw-training-read", "policy-raw", "grant-raw", "read-raw", "bucket-raw", "key"]
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"] = [{"name": n} for n in names]
    data["models"] = [
        {"name": "m1", "training": {"image": "r/t:1", "compute": {"size": "cpu-small"}, "inputs": names}}
    ]
    plan = plan_for(cloud, data)  # raises InternalError on a duplicate logical name
    assert len(plan["outputs"]["storage"]["bucket_uris"]) == len(names)


PHYSICAL_KEYS = ("name", "roleId", "bucket", "accountName", "vaultName", "keyName", "containerName", "accountId", "keyRing",
                 "resourceGroupName", "role", "roleAssignmentName", "workspaceName", "resourceName",
                 "service", "resourceUri", "scope", "member", "cryptoKeyId")  # the name and what scopes it


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize(
    ("project", "environment", "bucket"),
    [
        ("a-b-c-d-e-f-g-h-i-j-k-lm", "p-r-o-d-u-c-t-io", "x-y-z-0-1-2-3-4-5-6-7-8-9-a-b-cd"),
        ("ab", "qa", "xy"),
        ("averyveryverylongproject", "environmentnamex", "bucketnamethatisthirtytwochars01"),
    ],
    ids=["hyphen-heavy", "short", "long"],
)
def test_extreme_names_plan_within_limits_and_unique(cloud: str, project: str, environment: str, bucket: str) -> None:
    # The namer checks every generated name against the cloud's rule and raises
    # on a miss, so planning at all proves the limits; here we also check that
    # physical names do not collide within the plan.
    data = copy.deepcopy(BASE_SPEC)
    data.update(project=project, environment=environment)
    data["clouds"]["gcp"]["project"] = "acme-ml-dev"
    data["storage"]["buckets"] = [{"name": bucket}, {"name": bucket[:-1] + "z"}]
    plan = plan_for(cloud, data)
    keys = PHYSICAL_KEYS + tuple(sorted(registry()[cloud].physical_name_inputs - set(PHYSICAL_KEYS)))
    seen: dict[tuple, str] = {}
    for resource in plan["resources"]:
        if not resource["custom"]:
            continue
        identity = (resource["type"],) + tuple(
            json.dumps([resource["inputs"].get(k), resource.get("dependencies", {}).get(k)], sort_keys=True)
            for k in keys
        )
        assert identity not in seen, f"{resource['name']} and {seen[identity]} share a physical name"
        seen[identity] = resource["name"]


def test_dynamic_resources_have_a_readable_type_and_no_serialized_provider() -> None:
    import pulumi
    from pulumi.dynamic import CreateResult, Resource, ResourceProvider

    from mlops_infra.backends import get_backend
    from mlops_infra.plan import DYNAMIC_PREFIX, _plain, run_offline

    class Echo(ResourceProvider):
        def create(self, props: dict) -> CreateResult:  # never called offline
            raise AssertionError("the offline engine must not run dynamic providers")

    class Deployment(Resource, module="mlops-infra-test", name="Deployment"):
        pass

    class Program:
        backend = get_backend("aws")
        exports: dict = {}

        def __call__(self) -> None:
            Deployment(Echo(), "deploy-churn", {"replicas": 2}, pulumi.ResourceOptions())

    run = run_offline(Program(), project="p", stack="s")
    (reg,) = run.registrations
    assert reg.type == f"{DYNAMIC_PREFIX}/mlops-infra-test:Deployment" and "__provider" in reg.inputs
    assert {k: _plain(v) for k, v in reg.inputs.items() if not k.startswith("__")} == {"replicas": 2}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_dependencies_per_resource_do_not_grow_with_models(cloud: str) -> None:
    # A resource that waited for whole upstream stages would depend on every model's resources:
    # quadratic registration (Pulumi checks each edge for cycles) and diffs that touch everything.
    import yaml

    from mlops_infra.spec.models import spec_model

    prod = yaml.safe_load((Path(__file__).resolve().parent.parent / "stacks" / "prod.yaml").read_text())
    for settings in prod["clouds"].values():
        settings.pop("overrides", None)

    def widest(count: int) -> int:
        data = copy.deepcopy(prod)
        data["models"] = [dict(copy.deepcopy(prod["models"][i % 2]), name=f"m{i}-{prod['models'][i % 2]['name'][:10]}")
                          for i in range(count)]
        plan = plan_document(spec_model().model_validate(data), cloud, stack="s")
        return max(len(r.get("depends_on", [])) + sum(len(v) for v in r.get("dependencies", {}).values())
                   for r in plan["resources"])

    assert widest(2) == widest(6)


def test_more_than_a_thousand_dynamic_resources_in_one_program() -> None:
    # pulumi 3.272's provider serializer stacks a pickle wrapper per dynamic resource; without
    # DynamicResource's restore the 1,000th dies with RecursionError (a 1,000-model GCP stack).
    import pickle

    import pulumi
    from pulumi.dynamic import CreateResult, ResourceProvider

    from mlops_infra.backends import get_backend
    from mlops_infra.backends.dynamic import DynamicResource
    from mlops_infra.plan import run_offline

    class Noop(ResourceProvider):
        def create(self, props: dict) -> CreateResult:
            raise AssertionError("not called offline")

    class Thing(DynamicResource, module="mlops-infra-test", name="Thing"):
        pass

    before = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]

    class Program:
        backend = get_backend("gcp")
        exports: dict = {}

        def __call__(self) -> None:
            provider = Noop()
            for i in range(1100):
                Thing(provider, f"thing-{i}", {"i": i}, pulumi.ResourceOptions())

    run = run_offline(Program(), project="p", stack="s")
    assert len(run.registrations) == 1100
    assert pickle._Pickler._batch_setitems is before  # type: ignore[attr-defined]
