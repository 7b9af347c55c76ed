"""Property-based fuzz of `validate` and `plan` through the real CLI (issue 18).

Specs come from two sources: the project's own JSON Schema (hypothesis-jsonschema generates a
section of the spec, put into an example that is otherwise valid, so that generated values
reach the cross-reference and cloud checks and the engine), and mutations of stacks/*.yaml (a
value anywhere replaced by a hostile one, or removed). Whatever the spec, for a cloud C:

- `validate --cloud C` and `plan --cloud C` exit 0 or 2, never "internal error";
- they agree: the spec plans on C exactly when it validates for C;
- `validate` without --cloud exits 0 or 2, and a valid spec names the clouds it is valid for.

The suite runs a few examples of each (seconds); `pytest tests/test_fuzz.py --fuzz 500` runs
500 of each, which is what to run before a release or in a nightly CI job.
"""

from __future__ import annotations

import copy
import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from mlops_infra import api
from mlops_infra.cli import main
from tests.test_validate_fuzz import mutate, paths
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "stacks").glob("*.yaml"))}
IN_SUITE_EXAMPLES = 5


def examples(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--fuzz") or IN_SUITE_EXAMPLES


def outcome(spec: Any, cloud: str) -> None:
    """Run validate and plan on `spec` (YAML text or data) and check the properties."""
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        checked = runner.invoke(main, ["validate", "--spec", str(path), "--cloud", cloud, "--json"])
        planned = runner.invoke(main, ["plan", "--spec", str(path), "--cloud", cloud, "--json"])
        default = runner.invoke(main, ["validate", "--spec", str(path), "--json"])
    for result in (checked, planned, default):
        assert result.exit_code in (0, 2), (result.exit_code, result.output, text)
        assert "internal error" not in result.output, (result.output, text)
        json.loads(result.stdout)  # --json: only JSON on stdout, whatever happened
    assert checked.exit_code == planned.exit_code, (
        f"validate --cloud {cloud} exits {checked.exit_code}, plan exits {planned.exit_code}",
        planned.output,
        text,
    )
    if default.exit_code == 0:
        assert json.loads(default.stdout)["clouds"], text
    # `pytest --hypothesis-show-statistics` shows how far the examples got.
    event("planned" if planned.exit_code == 0 else "invalid for the cloud")


# --- specs from the JSON Schema ---------------------------------------------------------------
SECTIONS = ["models", "storage", "monitoring", "governance", "tags", "tracking", "split", "clouds"]


@lru_cache(maxsize=None)
def section_strategy(section: str) -> st.SearchStrategy[Any]:
    schema = api.schema()
    part = copy.deepcopy(schema["properties"][section])
    if part.get("type") == "array":
        part["maxItems"] = 3  # the schema allows 5,000 models: a handful says as much here
    return from_schema({**part, "$defs": schema["$defs"]})


@st.composite
def schema_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    spec = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    section = draw(st.sampled_from(SECTIONS))
    spec[section] = draw(section_strategy(section))
    return spec, draw(st.sampled_from(CLOUDS))


def test_specs_generated_from_the_schema(request: pytest.FixtureRequest) -> None:
    @settings(max_examples=examples(request), deadline=None, derandomize=not request.config.getoption("--fuzz"),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(schema_specs())
    def check(case: tuple[dict[str, Any], str]) -> None:
        outcome(*case)

    check()


# --- mutations of the examples ------------------------------------------------------------------
ALL_PATHS = [(name, path) for name, data in EXAMPLES.items() for path in paths(data) if path]
REMOVE = object()

HOSTILE = st.one_of(
    st.sampled_from([
        REMOVE, None, True, 0, -1, 0.5, 12.5, 1e308, 2**63, "", "x" * 300, "m1\n", "a\x00b", "\u2028", "yes",
        "null", "${x}", "a'; --", "a::b", "../x", "Churn", "churn-", "0 3 * * *\n", "4h\n", [], {}, [None], {"": ""},
    ]),
    st.text(max_size=20),
    st.integers(min_value=-(2**33), max_value=2**33),
    st.floats(allow_nan=True, allow_infinity=True),
)


def mutated(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    if value is not REMOVE:
        return mutate(data, path, value)
    target = mutate(data, path, None)
    node = target
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return target


def test_mutations_of_the_examples(request: pytest.FixtureRequest) -> None:
    @settings(max_examples=examples(request), deadline=None, derandomize=not request.config.getoption("--fuzz"),
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(ALL_PATHS), HOSTILE, st.sampled_from(CLOUDS))
    def check(where: tuple[str, tuple], value: Any, cloud: str) -> None:
        name, path = where
        outcome(mutated(EXAMPLES[name], path, value), cloud)

    check()
