"""Spec values that used to slip through validation and crash a plan (issue 18): fractional
traffic percentages, names ending in a line break, control characters anywhere."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.cli import main
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.problems import dotted
from mlops_infra.spec.validate import check_text
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())


def with_change(path: tuple, value: Any, data: dict | None = None) -> dict:
    changed = copy.deepcopy(data or DEV)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def problems(data: dict, clouds: list[str] | None = None) -> dict[str, Any]:
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=clouds)
    return {p.dotted_path: p for p in info.value.problems}


# --- traffic percentages are whole ---------------------------------------------------------------
LINEAR = {"mode": "linear", "step_percent": 0.5}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_fractional_traffic_step_is_a_located_error_on_every_cloud(cloud: str) -> None:
    data = with_change(("models", 0, "serving", "rollout"), LINEAR)
    found = problems(data, clouds=[cloud])
    problem = found["models[0].serving.rollout.step_percent"]
    assert "whole percentage, not 0.5" in problem.message and problem.line is not None
    assert problem.hint == "a whole number of percent, e.g. step_percent: 25"


def test_a_fractional_canary_is_a_located_error() -> None:
    data = with_change(("models", 0, "serving", "rollout"), {"mode": "canary", "canary_percent": 12.5})
    assert "whole percentage" in problems(data)["models[0].serving.rollout.canary_percent"].message


def test_the_schema_says_traffic_shares_are_whole_numbers() -> None:
    from mlops_infra import api

    rollout = api.schema()["$defs"]["Rollout"]["properties"]
    for field in ("canary_percent", "step_percent"):
        integer = next(option for option in rollout[field]["anyOf"] if option.get("type") != "null")
        assert integer == {"type": "integer", "minimum": 1, "maximum": 100}


def test_a_fractional_linear_step_exits_2_through_the_cli(tmp_path: Path) -> None:
    spec = tmp_path / "linear.yaml"
    spec.write_text(yaml.safe_dump(with_change(("models", 0, "serving", "rollout"), LINEAR)))
    runner = CliRunner()
    assert runner.invoke(main, ["validate", "--spec", str(spec)]).exit_code == 2
    planned = runner.invoke(main, ["plan", "--spec", str(spec), "--cloud", "gcp"])
    assert planned.exit_code == 2 and "internal error" not in planned.stderr


# --- no line breaks or control characters in values ------------------------------------------------
@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("models", 0, "name"), "m1\n"),
        (("project",), "churn\n"),
        (("environment",), "dev\n"),
        (("storage", "buckets", 0, "name"), "raw\n"),
        (("models", 0, "training", "image"), "ghcr.io/acme/churn-train:1.4.0\n"),
        (("monitoring", "notify", "emails", 0), "ml-oncall@example.com\n"),
        (("monitoring", "notify", "webhook"), "https://hooks.example.com/mlops\n"),
        (("tags", "owner"), "ml-platform\n"),
        (("clouds", "aws", "region"), "us-east-1\n"),
        (("clouds", "gcp", "project"), "acme-churn-dev\n"),
        (("models", 0, "retraining", "schedule"), "0 3 * * 1\n"),
        (("models", 0, "training", "max_runtime"), "4h\n"),
        (("models", 0, "training", "environment"), {"LOG_LEVEL": "in\x00fo"}),
        (("models", 0, "training", "hyperparameters", "epochs"), "20\x1b[0m"),
        (("models", 0, "serving", "model_uri"), "s3://bucket/model/\u2028"),
    ],
)
def test_a_value_with_a_control_character_is_located(path: tuple, value: Any) -> None:
    found = problems(with_change(path, value))
    where = dotted((*path, "LOG_LEVEL") if isinstance(value, dict) else path)
    assert where in found, sorted(found)
    assert "contains" in found[where].message and found[where].line is not None
    assert len(found) == 1, sorted(found)  # said once, not again by the type check


def test_a_key_with_a_control_character_is_located_and_shown_escaped() -> None:
    found = problems(with_change(("tags", "k\x00"), "v"))
    assert "tags.k\\x00" in found and "the key contains NUL" in found["tags.k\\x00"].message


def test_environment_values_may_span_lines() -> None:
    data = with_change(("models", 0, "training", "environment"), {"CERT": "-----BEGIN-----\nabc\n\tdef\n"})
    check_text(yaml.safe_dump(data), "spec.yaml", clouds=["aws"])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_name_ending_in_a_line_break_no_longer_reaches_the_plan(tmp_path: Path, cloud: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(with_change(("models", 0, "name"), "m1\n")))
    runner = CliRunner()
    result = runner.invoke(main, ["plan", "--spec", str(spec), "--cloud", cloud])
    assert result.exit_code == 2 and "models[0].name: the value contains a line break" in result.stderr


def test_slug_and_tag_patterns_match_whole_values() -> None:
    from mlops_infra.spec.types import check_email, check_https_url, check_image, parse_duration
    from mlops_infra.tagging import check_tag_key, check_tag_value

    for check, value in [
        (check_tag_key, "owner\n"), (check_tag_value, "x\n"), (check_email, "a@b.io\n"),
        (check_https_url, "https://a.io/\n"), (check_image, "r/i:1\n"), (parse_duration, "4h\n"),
    ]:
        with pytest.raises(ValueError):
            check(value)  # type: ignore[operator]


# --- one stack too big to plan comfortably ------------------------------------------------------------
def many_models(count: int, **split: Any) -> str:
    spec = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    models = spec["models"]
    spec["models"] = [{**copy.deepcopy(models[i % len(models)]), "name": f"m-{i}"} for i in range(count)]
    # The stack-size limits were measured on realtime endpoints; on AWS each async endpoint adds a
    # serving-role policy of its own, which IAM's inline-policy limit caps long before these sizes
    # (validate reports that at `models`; test_serving_modes_aws covers it).
    for model in spec["models"]:
        for key in ("mode", "async", "mode_elsewhere"):
            model.get("serving", {}).pop(key, None)
    for settings in spec["clouds"].values():
        settings.pop("overrides", None)
    if split:
        spec["split"] = split
    return yaml.safe_dump(spec, sort_keys=False)


def size_warnings(text: str, cloud: str) -> list:
    checked = check_text(text, "big.yaml", clouds=[cloud])
    return [w for w in checked.warnings if w.path == ("models",) and "in one Pulumi stack" in w.message]


def test_every_cloud_has_measured_stack_limits() -> None:
    from mlops_infra.backends import registry
    from mlops_infra.stack_size import models_per_stack_limit

    limits = {cloud: models_per_stack_limit(cloud) for cloud in registry()}
    # Kubernetes is not measured yet (benchmarks/): no limit, so validate does not warn there.
    assert limits == {"aws": 1500, "azure": 900, "gcp": 1100, "kubernetes": None}


def test_a_stack_past_the_measured_limit_warns_and_points_to_split() -> None:
    text = many_models(950)
    (warning,) = size_warnings(text, "azure")
    assert warning.severity == "warning" and warning.line is not None
    assert "950 models in one Pulumi stack" in warning.message and "azure (above 900 models)" in warning.message
    assert "split: {enabled: true}" in (warning.hint or "")
    assert size_warnings(text, "aws") == []  # AWS plans 950 models within the limits


def test_a_split_spec_does_not_warn_however_many_models() -> None:
    assert size_warnings(many_models(950, enabled=True), "azure") == []
