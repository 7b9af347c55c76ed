"""The richest example (stacks/prod.yaml) runs the whole lifecycle on every cloud: batch scoring,
feature store, data preparation, workspaces and explainability, with nothing left undeployed."""

from __future__ import annotations

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.spec.validate import check_file
from tests.planning import CLOUDS, ROOT, example_plan

LIFECYCLE = {"batch", "features", "data_prep", "workspaces", "explainability"}
PROD = ROOT / "stacks" / "prod.yaml"


def test_the_richest_example_uses_every_lifecycle_part() -> None:
    data = yaml.safe_load(PROD.read_text())
    models = {m["name"]: m for m in data["models"]}
    assert data["feature_store"]["groups"] and data["workspaces"]["users"]
    assert any("batch" in m for m in models.values()) and any("data_prep" in m for m in models.values())
    assert any(m.get("training", {}).get("evaluation") for m in models.values())
    assert {m.get("serving", {}).get("mode", "realtime") for m in models.values()} - {"realtime"}, "no other serving mode"
    monitored = [m.get("monitoring", {}) for m in models.values()]
    assert any({"explainability", "bias", "model_quality"} <= set(m) for m in monitored)


# The managed-ML clouds deploy every lifecycle stage (issues 15 and 16); a backend without managed
# services (kubernetes) declares what it leaves out, with the reason validate shows.
MANAGED = ("aws", "gcp", "azure")


def test_the_managed_clouds_leave_no_stage_out() -> None:
    assert {cloud: dict(registry()[cloud].unsupported) for cloud in MANAGED} == {cloud: {} for cloud in MANAGED}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_lifecycle_stage_is_planned_or_declared_left_out(cloud: str) -> None:
    left_out = set(registry()[cloud].unsupported)
    plan = example_plan("prod", cloud)
    planned = set(plan["summary"]["by_stage"])
    assert LIFECYCLE - left_out <= planned, sorted(LIFECYCLE - left_out - planned)
    assert not planned & left_out
    checked = check_file(PROD, clouds=[cloud])
    undeployed = {w.message.split(" does not deploy ")[1].split()[0] for w in checked.warnings if "does not deploy" in w.message}
    assert undeployed == left_out & LIFECYCLE
