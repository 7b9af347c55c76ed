"""Issue 3 across clouds: the same neutral outputs, the same artifact layout, the same identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_infra import api
from mlops_infra.stages.training import output_prefix
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=CLOUDS)
def prod(request: pytest.FixtureRequest) -> dict:
    source = api.resolve_source(stack="prod", spec=None, root=ROOT)
    return api.plan(source=source, cloud=request.param).document


def test_every_trained_model_has_a_pipeline_output_and_image(prod: dict) -> None:
    training = prod["outputs"]["training"]
    assert set(training["pipelines"]) == set(training["output_uris"]) == set(training["images"]) == {
        "churn-classifier",
        "ltv-regressor",
    }


def test_outputs_land_in_the_artifact_bucket(prod: dict) -> None:
    artifacts = prod["outputs"]["storage"]["artifacts_uri"]
    for model, uri in prod["outputs"]["training"]["output_uris"].items():
        if "(known after apply)" in artifacts:
            continue
        assert uri.rstrip("/") == f"{artifacts.rstrip('/')}/{output_prefix(model)}".rstrip("/"), model


def test_tracking_uri_is_a_stack_output(prod: dict) -> None:
    assert prod["outputs"]["tracking"]["tracking_uri"]


def test_no_training_stage_warning_remains(prod: dict) -> None:
    messages = " ".join(w["message"] for w in prod["warnings"])
    for stage in ("training", "tracking", "registry"):
        assert f"does not deploy {stage}" not in messages
