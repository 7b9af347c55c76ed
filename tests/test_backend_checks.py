"""Rules every cloud applies with its own facts: the same spec mistake is caught on all three."""

from __future__ import annotations

import copy

import pytest

from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import semantic_problems
from mlops_infra.backends import registry
from tests.planning import CLOUDS, BASE_SPEC, spec_from

IMAGE = "ghcr.io/acme/m:1.0.0"
OVERRIDE_FIELD = {"aws": "serving_instance_type", "gcp": "serving_machine_type", "azure": "serving_instance_type"}
OVERRIDE_VALUE = {"aws": "ml.m5.large", "gcp": "n2-standard-4", "azure": "Standard_DS3_v2"}


def problems_for(cloud: str, data: dict) -> list:
    return list(semantic_problems(spec_from(data), [cloud]))


def with_serving(min_replicas: int) -> dict:
    data = copy.deepcopy(BASE_SPEC)
    data["models"] = [
        {
            "name": "churn",
            "serving": {
                "image": IMAGE,
                "model_uri": "models/churn/1/",
                "compute": {"size": "cpu-small"},
                "autoscaling": {"min_replicas": min_replicas, "max_replicas": 2},
            },
        }
    ]
    return data


@pytest.mark.parametrize("cloud", CLOUDS)
def test_scale_to_zero_is_refused_where_endpoints_keep_a_replica(cloud: str) -> None:
    found = [p for p in problems_for(cloud, with_serving(0)) if p.path[-1] == "min_replicas"]
    if registry()[cloud].scale_to_zero:
        assert not found  # its endpoints scale to zero (KServe on Kubernetes)
    else:
        assert found and found[0].severity == "error" and "cannot scale to zero" in found[0].message
    assert not [p for p in problems_for(cloud, with_serving(1)) if p.path[-1] == "min_replicas"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_early_deletion_after_archive_is_a_warning(cloud: str) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"]["buckets"] = [{"name": "raw", "archive_after_days": 30, "expire_after_days": 60}]
    found = [p for p in problems_for(cloud, data) if p.path == ("storage", "buckets", 0, "expire_after_days")]
    if not registry()[cloud].archive_minimum_days:
        assert not found  # no archive tier billed for a minimum stay
        return
    assert found and found[0].severity == "warning" and "bills" in found[0].message
    data["storage"]["buckets"] = [{"name": "raw", "archive_after_days": 30, "expire_after_days": 800}]
    assert not [p for p in problems_for(cloud, data) if p.path[-1] == "expire_after_days"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_override_for_unknown_model_has_did_you_mean(cloud: str) -> None:
    if registry()[cloud].override_field("serving") is None:
        pytest.skip(f"{cloud} has no catalog overrides")
    data = with_serving(1)
    data["clouds"][cloud]["overrides"] = {"models": {"chrun": {OVERRIDE_FIELD[cloud]: OVERRIDE_VALUE[cloud]}}}
    found = [p for p in problems_for(cloud, data) if p.path == ("clouds", cloud, "overrides", "models", "chrun")]
    assert len(found) == 1 and found[0].hint == "did you mean 'churn'?"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_invalid_override_value_is_an_error_at_its_path(cloud: str) -> None:
    if registry()[cloud].override_field("serving") is None:
        pytest.skip(f"{cloud} has no catalog overrides")
    data = with_serving(1)
    data["clouds"][cloud]["overrides"] = {"models": {"churn": {OVERRIDE_FIELD[cloud]: "no-such-type"}}}
    found = [p for p in problems_for(cloud, data) if p.path[-1] == OVERRIDE_FIELD[cloud]]
    assert found and found[0].severity == "error"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_private_network_is_never_silently_ignored(cloud: str) -> None:
    data = copy.deepcopy(BASE_SPEC)
    data["governance"] = {"network": "private"}
    found = [p for p in problems_for(cloud, data) if p.path == ("governance", "network")]
    if not found:
        # A cloud that acts on it must show it in the plan instead: its private plan is not its public one.
        from tests.planning import plan_for

        public = copy.deepcopy(data)
        public["governance"] = {"network": "public"}
        planned, unchanged = plan_for(cloud, data), plan_for(cloud, public)
        assert planned["resources"] != unchanged["resources"], f"{cloud} neither warns nor acts on network: private"


def test_validate_raises_with_every_cloud_problem_at_once() -> None:
    from mlops_infra.spec.validate import check_text
    import yaml

    data = with_serving(0)
    data["clouds"]["aws"]["overrides"] = {"models": {"chrun": {"serving_instance_type": "ml.m5.large"}}}
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "s.yaml", clouds=list(CLOUDS))
    paths = [p.dotted_path for p in info.value.problems]
    assert paths.count("models[0].serving.autoscaling.min_replicas") == 3
    assert "clouds.aws.overrides.models.chrun" in paths
