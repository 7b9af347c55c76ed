"""Teardown on every cloud: what a default destroy keeps, and the program `--delete-data` runs first."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_infra import api
from mlops_infra.backends import get_backend, registry
from mlops_infra.plan import plan_document
from mlops_infra.spec.validate import check_file
from tests.planning import ROOT, example_plan

CLOUDS = sorted(registry())
STACKS = ("dev", "prod")


def teardown_plan(stack: str, cloud: str) -> dict[str, Any]:
    source = api.resolve_source(stack=stack, spec=None, root=ROOT)
    return plan_document(check_file(source.path, clouds=[cloud]).spec, cloud, stack=stack, teardown=True)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_default_destroy_keeps_exactly_the_data_and_its_guards(cloud: str, stack: str) -> None:
    backend = get_backend(cloud)
    plan = example_plan(stack, cloud)
    kept = {r["name"] for r in plan["resources"] if backend.keeps(r["type"], r["inputs"])}
    unprotected = sorted(r["name"] for r in plan["resources"] if r["name"] in kept and not r["protect"])
    stray = sorted(r["name"] for r in plan["resources"] if r["protect"] and r["name"] not in kept)
    assert unprotected == [] and stray == []


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_teardown_program_protects_nothing_and_empties_what_it_deletes(cloud: str) -> None:
    force = get_backend(cloud).force_delete_inputs
    normal = example_plan("prod", cloud)
    teardown = teardown_plan("prod", cloud)
    assert any(r["protect"] for r in normal["resources"])
    assert [r["name"] for r in teardown["resources"] if r["protect"]] == []
    assert [r["name"] for r in teardown["resources"]] == [r["name"] for r in normal["resources"]]
    for before, after in zip(normal["resources"], teardown["resources"]):
        if before["type"] in force:
            key = force[before["type"]]
            assert before["inputs"].get(key) is False and after["inputs"].get(key) is True, before["name"]
        else:
            assert before["inputs"] == after["inputs"], before["name"]
