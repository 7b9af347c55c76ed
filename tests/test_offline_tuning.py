"""The offline engine's shortcuts (mlops_infra/offline_tuning.py): they apply, they are undone, they change nothing.

If one of these fails after a Pulumi upgrade, a patched internal moved: planning still works
(a patch whose target is gone is skipped) but is slower until the patch follows it.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_infra import offline_tuning
from mlops_infra.plan import dump_plan, run_offline
from tests.planning import CLOUDS, ROOT


def _plan(stack: str, cloud: str) -> dict[str, Any]:
    from mlops_infra import api

    return api.plan(source=api.resolve_source(stack=stack, spec=None, root=ROOT), cloud=cloud).document


class OneBucket:
    def __init__(self) -> None:
        from mlops_infra.backends import get_backend

        self.backend = get_backend("aws")
        self.exports: dict[str, Any] = {}

    def __call__(self) -> None:
        import pulumi

        class Thing(pulumi.CustomResource):
            def __init__(self, name: str) -> None:
                super().__init__("test:index:Thing", name, {"size": 1}, None)

        class Group(pulumi.ComponentResource):
            def __init__(self, name: str) -> None:
                super().__init__("test:index:Group", name, None, None)
                Thing(f"{name}-thing")  # three __init__ frames deep: Pulumi would capture a stack trace

        Group("group")


DIFFERENT_ON_PURPOSE = ("_get_stack_trace", "transfer_properties", "get")


def test_every_patch_target_exists_in_this_pulumi() -> None:
    for owner, name, replacement in offline_tuning.patches():
        assert hasattr(owner, name), f"{owner.__name__}.{name} is gone: move the offline patch (Pulumi upgrade?)"
        assert callable(getattr(owner, name)) and callable(replacement)


def test_patches_are_used_while_planning_and_undone_after(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi.runtime import resource as runtime_resource

    original = runtime_resource._get_stack_trace
    calls: list[int] = []
    collecting: list[bool] = []
    stand_in = offline_tuning._no_stack_trace

    def counted() -> Any:
        calls.append(1)
        collecting.append(gc.isenabled())
        return stand_in()

    monkeypatch.setattr(offline_tuning, "_no_stack_trace", counted)
    assert gc.isenabled()
    run = run_offline(OneBucket(), project="p", stack="s")
    assert len(run.registrations) == 2
    assert len(calls) == 3, "Pulumi no longer calls runtime.resource._get_stack_trace per registration (2 + the stack)"
    assert runtime_resource._get_stack_trace is original
    assert collecting == [False] * 3, "the cyclic collector runs during the offline run"
    assert gc.isenabled()


def test_every_patch_is_used_by_a_real_plan_and_answers_like_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    # A patch Pulumi no longer calls is dead weight: after an upgrade, move it or drop it.
    real = offline_tuning.patches()
    calls = {name: 0 for _, name, _ in real}

    def checked(owner: Any, name: str, replacement: Any) -> Any:
        original = getattr(owner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            result = replacement(*args, **kwargs)
            # These answer differently on purpose (an empty trace; fewer Outputs, made when read):
            # the whole plan staying identical without them is tested below.
            if name not in DIFFERENT_ON_PURPOSE:
                expected = original(*args, **kwargs)
                assert result is expected or result == expected, f"{name}{args} differs from Pulumi's"
            return result

        return call

    monkeypatch.setattr(offline_tuning, "patches", lambda: [(o, n, checked(o, n, r)) for o, n, r in real])
    _plan("dev", "gcp")
    assert all(calls.values()), f"Pulumi no longer calls {[n for n, c in calls.items() if not c]} while planning"


@settings(max_examples=200, deadline=None)
@given(edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20), a=st.integers(0, 7), b=st.integers(0, 7))
def test_reachable_walks_the_dependency_graph_like_pulumi(edges: list[tuple[int, int]], a: int, b: int) -> None:
    from pulumi.runtime import resource_cycle_breaker

    class Node:
        pass

    nodes = [Node() for _ in range(8)]
    for source, target in edges:
        resource_cycle_breaker._add_dep(nodes[source], nodes[target])
    assert offline_tuning._reachable(nodes[a], nodes[b]) == resource_cycle_breaker._reachable(nodes[a], nodes[b])
    assert offline_tuning._DEPENDENCIES_PROPERTY == resource_cycle_breaker._DEPENDENCIES_PROPERTY


def test_annotations_are_remembered_by_identity_not_equality() -> None:
    from typing import Union

    from pulumi import _types

    unwrap = offline_tuning._by_identity(_types.unwrap_type)
    first, second = Union[int, str], Union[str, int]  # noqa: UP007 - equal to typing, different to Pulumi
    assert first == second
    assert unwrap(first) is _types.unwrap_type(first) and unwrap(second) is _types.unwrap_type(second)
    assert unwrap(first) is unwrap(first)


def test_the_stack_trace_stand_in_is_what_pulumi_sends_without_a_caller() -> None:
    from pulumi.runtime import resource as runtime_resource

    empty = offline_tuning._no_stack_trace()
    assert type(empty) is type(runtime_resource._get_stack_trace()) and not empty.frames
    assert runtime_resource._get_source_position(empty) is None


@pytest.mark.parametrize("cloud", CLOUDS)
def test_plans_are_identical_without_the_shortcuts(cloud: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tuned = dump_plan(_plan("prod", cloud))
    monkeypatch.setattr(offline_tuning, "patches", list)  # no shortcuts
    assert dump_plan(_plan("prod", cloud)) == tuned


def test_an_output_property_without_a_value_is_made_when_read() -> None:
    """The lean transfer: a declared output with no value costs nothing until read, then is unknown."""
    import pulumi

    seen: dict[str, Any] = {}

    class Program(OneBucket):
        def __call__(self) -> None:
            class Thing(pulumi.CustomResource):
                def __init__(self, name: str) -> None:
                    super().__init__("test:index:Thing", name, {"size": 1, "arn": None, "tags": None}, None)

                @property
                def tags(self) -> Any:
                    return pulumi.get(self, "tags")

            thing = Thing("thing")
            seen["dict"] = dict(thing.__dict__)
            tags = thing.tags
            seen["output"] = isinstance(tags, pulumi.Output)
            seen["same"] = thing.tags is tags
            seen["after"] = dict(thing.__dict__)

    run_offline(Program(), project="p", stack="s")
    assert "size" in seen["dict"] and "arn" not in seen["dict"] and "tags" not in seen["dict"]
    assert seen["output"] and seen["same"], "read twice, made once"
    assert "tags" in seen["after"] and "arn" not in seen["after"]


def test_the_run_collects_its_own_garbage() -> None:
    class Cycle:
        pass

    class Program(OneBucket):
        def __call__(self) -> None:
            a, b = Cycle(), Cycle()
            a.other, b.other = b, a  # type: ignore[attr-defined]

    before = gc.get_count()
    run_offline(Program(), project="p", stack="s")
    assert not [o for o in gc.get_objects() if isinstance(o, Cycle)], "the run's cyclic garbage outlived it"
    assert gc.isenabled() and before is not None
