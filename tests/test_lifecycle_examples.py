"""The richest example (stacks/prod.yaml) runs the whole lifecycle on every cloud: batch scoring,
feature store, data preparation, workspaces and explainability, with nothing left undeployed."""

from __future__ import annotations

import pytest
import yaml

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


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_lifecycle_stage_is_planned_without_a_not_deployed_warning(cloud: str) -> None:
    plan = example_plan("prod", cloud)
    assert LIFECYCLE <= set(plan["summary"]["by_stage"]), sorted(LIFECYCLE - set(plan["summary"]["by_stage"]))
    checked = check_file(PROD, clouds=[cloud])
    undeployed = [w.message for w in checked.warnings if "does not deploy" in w.message]
    assert not undeployed, undeployed
