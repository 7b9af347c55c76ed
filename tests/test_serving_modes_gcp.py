"""GCP serving modes, shadow and auth: what Vertex AI endpoints cannot do is a located error with
the reason (or, with mode_elsewhere: realtime, a warning and the realtime endpoint it does build)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for

SERVED = {
    "name": "churn",
    "serving": {
        "image": "us-central1-docker.pkg.dev/acme-ml-dev/churn/serve:1.0",
        "model_uri": "models/churn/v1/",
        "compute": {"size": "cpu-small"},
        "autoscaling": {"min_replicas": 1, "max_replicas": 3},
    },
}


def _spec(**serving: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    model = copy.deepcopy(SERVED)
    model["serving"].update(serving)
    data["models"] = [model]
    return data


def _gcp_problems(data: dict[str, Any]) -> dict[str, Any]:
    """Every problem validate reports for GCP, by dotted path (errors raise SpecInvalid)."""
    try:
        checked = check_text(yaml.safe_dump(data, sort_keys=False), "s.yaml", clouds=["gcp"])
    except SpecInvalid as invalid:
        return {p.dotted_path: p for p in invalid.problems if p.cloud in (None, "gcp")}
    return {p.dotted_path: p for p in checked.warnings if p.cloud in (None, "gcp")}


@pytest.mark.parametrize(
    ("mode", "options", "reason"),
    [
        ("serverless", {"serverless": {"memory_gib": 4, "max_concurrency": 20}}, "minReplicaCount >= 1"),
        ("async", {"async": {"max_concurrent_per_instance": 2}}, "answer synchronously only"),
    ],
)
def test_modes_vertex_lacks_are_located_errors_with_the_reason(mode: str, options: dict, reason: str) -> None:
    problem = _gcp_problems(_spec(mode=mode, **options))["models[0].serving.mode"]
    assert problem.severity == "error" and problem.line
    assert f"GCP has no {mode} endpoints" in problem.message and reason in problem.message
    assert "cloud.google.com/vertex-ai/docs" in problem.message
    assert "mode_elsewhere: realtime" in problem.hint


@pytest.mark.parametrize("mode", ["serverless", "async"])
def test_mode_elsewhere_realtime_warns_and_builds_the_realtime_endpoint(mode: str) -> None:
    data = _spec(mode=mode, mode_elsewhere="realtime")
    problem = _gcp_problems(data)["models[0].serving.mode"]
    assert problem.severity == "warning" and "served realtime" in problem.message
    realtime = [r for r in plan_for("gcp", _spec())["resources"] if r["stage"] == "serving"]
    served = [r for r in plan_for("gcp", data)["resources"] if r["stage"] == "serving"]
    assert served == realtime


def test_shadow_is_an_error_that_says_what_vertex_can_do_instead() -> None:
    problem = _gcp_problems(_spec(shadow={"image": "us-central1-docker.pkg.dev/a/b/c:2", "traffic_percent": 10}))[
        "models[0].serving.shadow"
    ]
    assert problem.severity == "error" and problem.line
    assert "no shadow" in problem.message and "trafficSplit" in problem.message
    assert "canary" in problem.message and "models[].batch" in problem.message
    assert "canary" in problem.hint


def test_key_auth_is_an_error_with_the_reason() -> None:
    problems = _gcp_problems(_spec(auth="key"))
    problem = problems["models[0].serving.auth"]
    assert problem.severity == "error" and problem.value == "key"
    assert "OAuth 2.0 access token" in problem.message and "API keys" in problem.message
    assert "auth: iam" in problem.hint


def test_defaults_raise_nothing() -> None:
    spec_problems = BACKEND.check(*_parsed(_spec()))
    paths = {p.path for p in spec_problems}
    assert not {("models", 0, "serving", k) for k in ("mode", "shadow", "auth")} & paths


def test_all_three_are_reported_at_once() -> None:
    data = _spec(mode="async", auth="key", shadow={"model_uri": "models/churn/v2/", "traffic_percent": 5})
    problems = _gcp_problems(data)
    assert {"models[0].serving.mode", "models[0].serving.shadow", "models[0].serving.auth"} <= set(problems)


def _parsed(data: dict[str, Any]) -> tuple[Any, Any]:
    from tests.planning import spec_from

    spec = spec_from(data)
    return spec, spec.settings_for("gcp")
