"""Every cloud x every stage: implemented, or declared unsupported with a human reason."""

from __future__ import annotations

import importlib
import inspect

import pytest

from mlops_infra.backends import registry
from mlops_infra.stages import all_stages

CASES = [(cloud, stage.name) for cloud in registry() for stage in all_stages()]


def test_three_clouds_are_discovered() -> None:
    assert {"aws", "gcp", "azure"} <= set(registry())


def test_stage_order_follows_requirements() -> None:
    seen: set[str] = set()
    for stage in all_stages():
        assert set(stage.requires) <= seen, f"{stage.name} is ordered before what it requires"
        seen.add(stage.name)


@pytest.mark.parametrize(("cloud", "stage"), CASES)
def test_stage_is_implemented_or_declared_unsupported(cloud: str, stage: str) -> None:
    backend = registry()[cloud]
    if backend.supports(stage):
        assert stage not in backend.unsupported, f"{cloud}.{stage} is implemented but also declared unsupported"
        module = backend.stage_module(stage)
        build = getattr(module, "build", None)
        assert callable(build), f"{module.__name__} has no build(ctx)"
        assert list(inspect.signature(build).parameters) == ["ctx"]
    else:
        reason = backend.unsupported.get(stage, "")
        assert len(reason) > 20, f"{cloud} neither implements {stage} nor says why"


@pytest.mark.parametrize("cloud", sorted(registry()))
def test_backend_package_is_light(cloud: str) -> None:
    backend = registry()[cloud]
    module = importlib.import_module(f"mlops_infra.backends.{cloud}")
    assert backend.sdk_package.startswith("pulumi_")
    assert backend.settings_model.model_config.get("extra") == "forbid"
    assert module.BACKEND is backend


@pytest.mark.parametrize("cloud", sorted(registry()))
def test_governance_and_storage_are_implemented_everywhere(cloud: str) -> None:
    backend = registry()[cloud]
    assert backend.supports("governance") and backend.supports("storage")


@pytest.mark.parametrize("cloud", sorted(registry()))
def test_backend_gives_the_facts_the_shared_rules_need(cloud: str) -> None:
    from mlops_infra.spec.models import Compute
    from tests.planning import spec_from

    backend = registry()[cloud]
    settings = spec_from().settings_for(cloud)
    if backend.override_field("training") is None:
        # No catalog (Kubernetes): workloads request the cpus, memory and GPUs the spec names.
        assert not hasattr(settings, "overrides")
        assert backend.resolve_compute(Compute(size="cpu-small"), "serving", settings) is None
    else:
        override_model = type(settings.overrides).model_fields["models"].annotation.__args__[1]
        for purpose in ("training", "serving"):
            assert backend.override_field(purpose) in override_model.model_fields
            assert backend.resolve_compute(Compute(size="cpu-small"), purpose, settings)
    assert backend.endpoint_service and backend.storage_service
    # An archive tier with a minimum billed duration, or none at all (said as a gap).
    assert backend.archive_minimum_days > 0 or "storage.buckets[].archive_after_days" in backend.gaps
