"""The registry and the endpoint agree: what the pipeline registers is what an endpoint serves.

A pipeline's definition holds values only the cloud knows (the identity's and the key's ARNs), so
a plain plan shows it as "(known after apply)". These tests plan as if the resources existed: the
mocks answer every resource with an ARN and an id, and the definition resolves.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra import plan as plan_module
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.plan import plan_document
from mlops_infra.spec.models import spec_model
from tests.planning import ROOT

ACCOUNT = "123456789012"


@pytest.fixture()
def deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mocks that give every resource an id and an ARN, as a deployed stack would have.

    The offline engine's shortcuts are off: one of them resolves every output a resource was not
    given as unknown without asking the mocks (mlops_infra/offline_tuning.py)."""
    from mlops_infra import offline_tuning

    monkeypatch.setattr(offline_tuning, "offline_engine", contextlib.nullcontext)
    plain = plan_module._make_mocks

    def make(backend: Any) -> Any:
        mocks = plain(backend)
        new_resource = mocks.new_resource

        def with_arn(args: Any) -> tuple[str, dict]:
            _, state = new_resource(args)
            return args.name, {**state, "arn": f"arn:aws:test:{ACCOUNT}:{args.name}"}

        mocks.new_resource = with_arn
        return mocks

    monkeypatch.setattr(plan_module, "_make_mocks", make)


def example(stack: str, change: Any = None) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())
    data["clouds"] = {"aws": {**data["clouds"]["aws"], "account_id": ACCOUNT}}
    if change is not None:
        change(data)
    return plan_document(spec_model().model_validate(data), "aws", stack=stack)


def pipeline_of(plan: dict[str, Any], model: str) -> dict[str, Any]:
    (pipeline,) = [r for r in plan["resources"] if r["name"] == f"training-pipeline-{model}"]
    return json.loads(pipeline["inputs"]["pipelineDefinition"])


def train_and_register(steps: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training step and the one step registering its model: right after training, or behind
    the evaluation gate (a Condition step registering only if the metric passes, else failing)."""
    train, *rest = steps
    assert train["Type"] == "Training"
    if rest and rest[-1]["Type"] == "Condition":
        gate = rest[-1]["Arguments"]
        assert [s["Type"] for s in rest] == ["Processing", "Condition"]
        assert [s["Type"] for s in gate["ElseSteps"]] == ["Fail"]
        rest = gate["IfSteps"]
    (register,) = rest
    assert register["Type"] == "RegisterModel"
    return train, register


def served_by(plan: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The endpoint's model container and its production variant."""
    named = {r["name"]: r for r in plan["resources"]}
    (variant,) = named[f"serving-config-{model}"]["inputs"]["productionVariants"]
    return named[f"serving-model-{model}"]["inputs"]["primaryContainer"], variant


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_registered_version_is_what_the_endpoint_serves(stack: str, deployed: None) -> None:
    plan = example(stack)
    models = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())["models"]
    for model in (m["name"] for m in models if m.get("registry") and m.get("serving")):
        train, register = train_and_register(pipeline_of(plan, model)["Steps"])
        (registered,) = register["Arguments"]["InferenceSpecification"]["Containers"]
        container, variant = served_by(plan, model)
        # The serving image as the endpoint pulls it, never the training image.
        assert registered["Image"] == container["image"]
        assert registered["Image"] != train["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
        assert registered["Environment"] == container["environment"]
        assert register["Arguments"]["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == [
            variant["instanceType"]]
        # The model data: this run's artifact, written under the output prefix the endpoint serves.
        assert registered["ModelDataUrl"] == {"Get": f"Steps.{jobs.TRAIN_STEP}.ModelArtifacts.S3ModelArtifacts"}
        (source,) = container["modelDataSource"]["s3DataSources"]
        assert train["Arguments"]["OutputDataConfig"]["S3OutputPath"] == source["s3Uri"]


def test_an_endpoint_pinned_to_a_run_loads_it_as_the_registry_holds_it(deployed: None) -> None:
    """serving.model_uri naming one run's model.tar.gz: the endpoint and the registered version load
    the same kind of data (a compressed archive, ModelDataUrl) from under the same output prefix."""
    plan = example("dev")
    output = pipeline_of(plan, "churn-classifier")["Steps"][0]["Arguments"]["OutputDataConfig"]["S3OutputPath"]

    def pin(data: dict[str, Any]) -> None:
        data["models"][0]["serving"]["model_uri"] = f"{output}churn-dev-churn-classifier-1a2b/output/model.tar.gz"
        data["models"][0]["serving"]["environment"] = {"MODEL_SERVER_WORKERS": "2"}

    pinned = example("dev", pin)
    train, register = pipeline_of(pinned, "churn-classifier")["Steps"]
    (registered,) = register["Arguments"]["InferenceSpecification"]["Containers"]
    container, _ = served_by(pinned, "churn-classifier")
    assert registered["Image"] == container["image"]
    assert registered["Environment"] == container["environment"] == {"MODEL_SERVER_WORKERS": "2"}
    assert "ModelDataUrl" in registered and container["modelDataUrl"].startswith(
        train["Arguments"]["OutputDataConfig"]["S3OutputPath"])


def test_a_model_without_serving_registers_its_training_image_and_validate_says_so(deployed: None) -> None:
    from mlops_infra.backends.aws import BACKEND

    def unserved(data: dict[str, Any]) -> None:
        for key in ("serving", "monitoring"):
            data["models"][0].pop(key)
        data["models"][0]["retraining"].pop("on_drift")

    plan = example("dev", unserved)
    train, register = pipeline_of(plan, "churn-classifier")["Steps"]
    (registered,) = register["Arguments"]["InferenceSpecification"]["Containers"]
    assert registered["Image"] == train["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert "SupportedRealtimeInferenceInstanceTypes" not in register["Arguments"]["InferenceSpecification"]
    data = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())
    data["clouds"]["aws"]["account_id"] = ACCOUNT
    unserved(data)
    spec = spec_model().model_validate(copy.deepcopy(data))
    (warning,) = [p for p in BACKEND.check(spec, spec.clouds.aws) if p.path == ("models", 0, "registry")]
    assert warning.severity == "warning" and "training image" in warning.message
