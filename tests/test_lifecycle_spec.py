"""The neutral spec of this round's lifecycle parts: batch, serving modes, features, data
preparation, workspaces, explainability and the evaluation gate, with located errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC

TRAINING = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"}, "inputs": ["raw"]}
SERVING = {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"}, "data_capture": {"sampling_percent": 10}}


def spec(**model: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["cloud"] = "aws"
    data["storage"] = {"buckets": [{"name": "raw"}, {"name": "scored"}]}
    data["models"] = [{"name": "churn", "training": TRAINING, "registry": {"approval": "manual"}, **model}]
    return data


def problems(data: dict[str, Any]) -> list:
    try:
        checked = check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    except SpecInvalid as exc:
        return [p for p in exc.problems if p.severity == "error"] + exc.warnings
    return checked.warnings


def located(data: dict[str, Any]) -> dict[str, Any]:
    """Dotted path -> the problem there (this round's stages also warn that a cloud lacks them yet)."""
    found: dict[str, Any] = {}
    for problem in problems(data):
        if "does not deploy" not in problem.message:
            found.setdefault(problem.dotted_path, problem)
    return found


BATCH = {"input": {"bucket": "raw", "prefix": "to-score/"}, "output": {"bucket": "scored", "prefix": "churn/"},
         "schedule": "0 2 * * *", "compute": {"size": "cpu-small"}}


def test_a_valid_batch_has_no_neutral_problem() -> None:
    assert not [p for p in problems(spec(batch=BATCH)) if "batch" in p.dotted_path and p.severity == "error"]


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"schedule": None}, "models[0].batch", "needs a trigger"),
    ({"output": {"bucket": "raw", "prefix": "to-score/out/"}}, "models[0].batch", "overlaps its input"),
    ({"input": {"bucket": "rawx", "prefix": ""}}, "models[0].batch.input.bucket", "unknown bucket"),
])
def test_batch_errors_are_located(change: dict, path: str, words: str) -> None:
    found = located(spec(batch={**BATCH, **change}))
    assert path in found and words in found[path].message


def test_batch_needs_a_version_to_score() -> None:
    data = spec(batch=BATCH)
    del data["models"][0]["registry"]
    found = located(data)
    assert "latest approved version" in found["models[0].batch"].message
    data["models"][0]["batch"] = {**BATCH, "model_uri": "s3://bucket/model.tar.gz"}
    assert "models[0].batch" not in located(data)


def test_serving_mode_options_must_match_the_mode() -> None:
    found = located(spec(serving={**SERVING, "serverless": {"memory_gib": 4}}))
    assert "serverless: options apply to mode: serverless only" in found["models[0].serving"].message
    found = located(spec(serving={**SERVING, "mode": "serverless", "async": {"max_concurrent_per_instance": 2}}))
    assert "async: options apply to mode: async only" in found["models[0].serving"].message


def test_a_shadow_needs_a_challenger_and_a_whole_share() -> None:
    found = located(spec(serving={**SERVING, "shadow": {"traffic_percent": 10}}))
    assert "needs a challenger" in found["models[0].serving.shadow"].message
    found = located(spec(serving={**SERVING, "shadow": {"image": "ghcr.io/acme/serve:2.0", "traffic_percent": 2.5}}))
    assert "models[0].serving.shadow.traffic_percent" in found


GROUP = {"name": "customers", "record_id": "customer-id", "event_time": "ts",
         "features": [{"name": "customer-id", "type": "string"}, {"name": "ts", "type": "timestamp"}]}


def test_feature_groups_and_their_readers_are_checked() -> None:
    data = spec(features=["customerz"])
    data["feature_store"] = {"groups": [GROUP, {**GROUP}]}
    found = located(data)
    assert "did you mean 'customers'" in (found["models[0].features[0]"].hint or "")
    assert "duplicate feature group" in found["feature_store.groups[1].name"].message
    data["feature_store"] = {"groups": [{**GROUP, "record_id": "missing"}]}
    assert "must be one of the group's features" in located(data)["feature_store.groups[0]"].message


def test_data_prep_writes_what_training_reads() -> None:
    prep = {"image": "ghcr.io/acme/prep:1.0", "compute": {"size": "cpu-small"}, "schedule": "0 1 * * *",
            "inputs": [{"bucket": "raw", "prefix": "landing/"}], "output": {"bucket": "scored", "prefix": "prepared/"}}
    found = located(spec(data_prep=prep))
    warning = found["models[0].data_prep.output"]
    assert warning.severity == "warning" and "does not read what the preparation job writes" in warning.message
    covered = spec(data_prep=prep)
    covered["models"][0]["training"] = {**TRAINING, "inputs": [{"bucket": "scored", "prefix": "prepared/"}]}
    assert "models[0].data_prep.output" not in located(covered)
    loop = spec(data_prep={**prep, "inputs": [{"bucket": "scored", "prefix": "prepared/x/"}]})
    assert "would read what it writes" in located(loop)["models[0].data_prep.output"].message


def test_workspace_users_are_unique() -> None:
    data = spec()
    data["workspaces"] = {"users": [{"name": "team-a"}, {"name": "team-a"}]}
    assert "duplicate workspace user" in located(data)["workspaces.users[1].name"].message


def test_explainability_needs_captured_requests() -> None:
    serving = {k: v for k, v in SERVING.items() if k != "data_capture"}
    data = spec(serving=serving, monitoring={
        "explainability": {"baseline": {"bucket": "raw", "prefix": "baseline/"}},
        "model_quality": {"ground_truth": {"bucket": "nowhere"}, "problem_type": "binary", "metric": "auc",
                          "threshold": 0.8},
    })
    found = located(data)
    assert "captures none" in found["models[0].monitoring.explainability"].message
    assert "unknown bucket" in found["models[0].monitoring.model_quality.ground_truth.bucket"].message


def test_the_evaluation_gate_needs_a_registry() -> None:
    data = spec()
    data["models"][0]["training"] = {**TRAINING, "evaluation": {"metric": "auc", "threshold": 0.8}}
    del data["models"][0]["registry"]
    assert "has no registry" in located(data)["models[0].training.evaluation"].message


def test_the_new_reads_and_writes_belong_to_the_models_group_identity() -> None:
    from mlops_infra.access import reader_groups
    from tests.planning import spec_from

    group = reader_groups(spec_from(spec(batch=BATCH)))["churn"]
    assert group.reads["raw"] == [""] and group.writes == {"scored": ["churn/"]}


@pytest.mark.parametrize(
    "elsewhere, severity, words",
    [("error", "error", "has no async endpoints: queues are absent"), ("realtime", "warning", "served realtime there")],
)
def test_a_mode_a_cloud_lacks_is_refused_or_served_realtime(elsewhere: str, severity: str, words: str) -> None:
    from mlops_infra.backends import checks
    from mlops_infra.spec.models import spec_model

    serving = {**SERVING, "mode": "async", "async": {"output": {"bucket": "scored"}}, "mode_elsewhere": elsewhere}
    parsed = spec_model().model_validate(spec(serving=serving))
    found = checks.serving_modes(parsed, offered=frozenset({"realtime"}), cloud="Elsewhere", reason=lambda mode: "queues are absent")
    assert [(p.path, p.severity) for p in found] == [(("models", 0, "serving", "mode"), severity)]
    assert words in found[0].message
    assert checks.serving_modes(parsed, offered=frozenset({"realtime", "async"}), cloud="Here", reason=str) == []


def test_an_async_output_names_a_bucket_of_the_spec() -> None:
    serving = {**SERVING, "mode": "async", "async": {"output": {"bucket": "scorez", "prefix": "x/"}},
               "mode_elsewhere": "realtime"}
    found = located(spec(serving=serving))
    assert "unknown bucket" in found["models[0].serving.async.output.bucket"].message
