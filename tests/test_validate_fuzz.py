"""Whatever a spec contains, validation ends in a result or SpecInvalid: never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "raw", "cpu-huge", "0 3 * * 1", "ml.t3.medium", "yes", "Churn", "a" * 100]),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


ALL_PATHS = [p for p in paths(EXAMPLE) if p]


def mutate(data: dict, path: tuple, value: object) -> dict:
    target = copy.deepcopy(data)
    node = target
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return target


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=VALUES)
def test_any_mutation_is_reported_cleanly(path: tuple, value: object) -> None:
    text = yaml.safe_dump(mutate(EXAMPLE, path, value), sort_keys=False)
    try:
        check_text(text, "fuzz.yaml")
    except SpecInvalid as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml" and problem.message
            assert problem.line is None or problem.line >= 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_reported_cleanly(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        check_text(text, "noise.yaml")
    except SpecInvalid as exc:
        assert exc.problems
