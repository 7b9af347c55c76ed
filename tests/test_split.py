"""A split spec: a shared stack plus model stacks that together declare exactly the unsplit stack."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import pytest
import yaml

from mlops_infra.diff import diff_plans
from mlops_infra.plan import plan_document
from mlops_infra.spec.models import spec_model
from mlops_infra.stages import all_stages
from tests.planning import CLOUDS, ROOT

PER_PART = ("pulumi:providers:",)  # every Pulumi stack has its own provider


def _data(split: bool = True, change: Any = None) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    upsell = dict(copy.deepcopy(data["models"][1]), name="upsell", group="value")
    data["models"][1]["group"] = "value"
    data["models"].append(upsell)
    if split:
        data["split"] = {"enabled": True, "max_models_per_stack": 2}
    # Unsplit too, a group shares one identity (mlops_infra/access.py): the groups stay.
    if change is not None:
        change(data)
    return data


def _plan(data: dict[str, Any], cloud: str, part: str | None = None) -> dict[str, Any]:
    return plan_document(spec_model().model_validate(data), cloud, stack="prod", part=part)


@lru_cache(maxsize=None)
def _cached(cloud: str, split: bool) -> str:
    import json

    return json.dumps(_plan(_data(split), cloud))


def plans(cloud: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    return json.loads(_cached(cloud, False)), json.loads(_cached(cloud, True))


def _declared(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["custom"] and not r["type"].startswith(PER_PART)]


@pytest.fixture(params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    return request.param


def test_parts_together_declare_the_unsplit_stack(cloud: str) -> None:
    whole, split = plans(cloud)
    assert [p["part"] for p in split["split"]["parts"]] == ["shared", "churn-classifier", "value"]
    names = [r["name"] for r in _declared(split["resources"])]
    assert len(names) == len(set(names)), "a resource is declared in two stacks"
    before = {r["name"]: r for r in _declared(whole["resources"])}
    after = {r["name"]: r for r in _declared(split["resources"])}
    assert sorted(after) == sorted(before)
    for name, resource in after.items():
        old = before[name]
        for key in ("type", "stage", "parent", "protect", "inputs", "retain_on_delete"):
            assert resource.get(key) == old.get(key), (name, key)
        # A model stack cannot wait for the shared stack's resources: they exist before it runs.
        for wire, deps in resource.get("dependencies", {}).items():
            assert set(deps) <= set(old.get("dependencies", {}).get(wire, [])), (name, wire)
        assert set(resource.get("depends_on", [])) <= set(old.get("depends_on", [])), name


STACK_WIDE = {s.name for s in all_stages() if s.stack_wide}


def test_model_stacks_hold_only_their_models(cloud: str) -> None:
    _, split = plans(cloud)
    owners = {"churn-classifier": ["churn-classifier"], "value": ["ltv-regressor", "upsell"]}
    every = [m for models in owners.values() for m in models]
    for resource in _declared(split["resources"]):
        mentioned = [m for m in every if m in resource["name"]]
        if resource["part"] == "shared":
            # the shared stack holds each model group's identity and grants (named for the group) and the
            # stack-wide stages' per-prefix objects, never a model's own resources
            assert resource["stage"] in STACK_WIDE or set(mentioned) <= set(owners), (
                f"{resource['name']} is a model's resource in the shared stack"
            )
        else:
            assert mentioned and set(mentioned) <= set(owners[resource["part"]]), resource["name"]
    parts = {p["part"]: p for p in split["split"]["parts"]}
    assert parts["value"]["pulumi_stack"] == "prod-" + cloud + "--value"
    assert parts["shared"]["pulumi_stack"] == "prod-" + cloud
    assert all(split["summary"]["by_part"][part] for part in owners)


def test_one_models_change_touches_only_its_stack(cloud: str) -> None:
    _, split = plans(cloud)

    def more(data: dict) -> None:
        data["models"][0]["serving"]["autoscaling"]["max_replicas"] = 9

    changes = diff_plans(split, _plan(_data(change=more), cloud))
    assert changes.update and not changes.create and not changes.delete
    assert {u.part for u in changes.update} == {"churn-classifier"}


def test_adding_a_model_creates_only_its_stack(cloud: str) -> None:
    _, split = plans(cloud)

    def add(data: dict) -> None:
        data["models"].append(dict(copy.deepcopy(data["models"][0]), name="winback", group=None))

    changes = diff_plans(split, _plan(_data(change=add), cloud))
    assert changes.create and not changes.delete
    assert {c["part"] for c in changes.create} <= {"winback", "shared"}
    # The shared stack only widens what is stack-wide (the dashboard, grants) and holds the new
    # model's group identity and its grants, named for the group: nothing else is created there.
    assert all("winback" in c["name"] for c in changes.create if c["part"] == "shared")
    assert {u.part for u in changes.update} <= {"shared"}


def test_planning_one_part(cloud: str) -> None:
    one = _plan(_data(), cloud, part="upsell")  # a model name picks its group's stack
    assert {r["part"] for r in one["resources"]} == {"value"}
    assert [p["part"] for p in one["split"]["parts"]] == ["value"]


def test_byte_identical() -> None:
    from mlops_infra.plan import dump_plan

    assert dump_plan(_plan(_data(), "aws")) == dump_plan(_plan(_data(), "aws"))
