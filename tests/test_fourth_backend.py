"""Adding a cloud is one folder: a fourth backend from tests/plugins/, registered the way the
real ones are (a folder on mlops_infra.backends' path), goes through validate, plan and diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.cli import main

PLUGINS = Path(__file__).resolve().parent / "plugins"
SPEC: dict[str, Any] = {
    "apiVersion": "mlops-infra/v1",
    "project": "churn",
    "environment": "dev",
    "cloud": "fakecloud",
    "clouds": {"fakecloud": {"region": "north-1", "tenant": "abc123"}},
    "tags": {"owner": "ml-platform"},
    "storage": {"buckets": [{"name": "raw", "expire_after_days": 30}]},
}


def _caches() -> list[Any]:
    import mlops_infra.backends as backends
    from mlops_infra.naming import name_rules
    from mlops_infra.spec.models import spec_model

    return [backends.names, backends.registry, name_rules, spec_model]


@pytest.fixture()
def fakecloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The fourth backend registered, and a project folder whose stacks/dev.yaml targets it."""
    import mlops_infra.backends as backends

    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(PLUGINS)])
    for cache in _caches():
        cache.cache_clear()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    monkeypatch.undo()
    for cache in _caches():
        cache.cache_clear()


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    return result


def test_the_registry_lists_it_and_the_cli_accepts_it(fakecloud: Path) -> None:
    from mlops_infra.backends import registry

    assert "fakecloud" in registry()
    assert "fakecloud" in run("plan", "--help").stdout
    assert run("validate", "--cloud", "fakecloud").exit_code == 0


def test_validate_explains_what_it_cannot_do_and_what_is_missing(fakecloud: Path) -> None:
    spec = dict(SPEC, models=[{"name": "churn", "serving": {
        "image": "ghcr.io/acme/serve:1.0", "model_uri": "fake://models/churn.tar.gz", "compute": {"size": "cpu-small"},
        "autoscaling": {"min_replicas": 0, "max_replicas": 2}}}])
    (fakecloud / "stacks" / "dev.yaml").write_text(yaml.safe_dump(spec))
    checked = json.loads(run("validate", "--json").stdout)
    assert checked["valid"] and checked["stages"]["fakecloud"]["serving"].startswith("FakeCloud has only")
    assert any("does not deploy serving" in w["message"] for w in checked["warnings"])
    # min_replicas: 0 is this cloud's to allow: no managed-service rule applies
    assert not any("scale to zero" in w["message"] for w in checked["problems"] + checked["warnings"])
    (fakecloud / "stacks" / "dev.yaml").write_text(yaml.safe_dump(dict(SPEC, clouds={})))
    missing = json.loads(run("validate", "--json").stdout)
    assert not missing["valid"] and "clouds: {fakecloud:" in missing["problems"][0]["hint"]


def test_plan_builds_its_stages_with_its_names_and_keeps_data_protected(fakecloud: Path) -> None:
    from mlops_infra.backends import get_backend
    from mlops_infra.naming import name_rules

    first = run("plan", "--json")
    assert first.exit_code == 0, first.stderr
    plan = json.loads(first.stdout)
    assert plan["cloud"] == "fakecloud" and plan["summary"]["by_stage"] == {"governance": 4, "storage": 2}
    buckets = [r for r in plan["resources"] if r["type"] == "fakecloud:index:Bucket"]
    assert {b["name"] for b in buckets} == {"storage-bucket-raw", "storage-bucket-artifacts"}
    rule = name_rules()["fakecloud.bucket"]
    assert all(rule.accepts(b["inputs"]["name"]) for b in buckets)
    kept = get_backend("fakecloud").kept_types
    assert all(r["protect"] == (r["type"] in kept) for r in plan["resources"])
    assert all(b["inputs"]["encryptionKey"].endswith("fakecloud:index:Key::governance-key") for b in buckets)
    assert run("plan", "--json").stdout == first.stdout  # deterministic


def test_diff_names_the_one_changed_bucket(fakecloud: Path) -> None:
    assert run("plan", "--out", "old.json").exit_code == 0
    spec = dict(SPEC, storage={"buckets": [{"name": "raw", "expire_after_days": 60}, {"name": "labels"}]})
    (fakecloud / "stacks" / "dev.yaml").write_text(yaml.safe_dump(spec))
    changed = json.loads(run("plan", "--against", "old.json", "--json").stdout)["changes"]
    assert [c["name"] for c in changed["create"]] == ["storage-bucket-labels"]
    assert [(u["name"], u["paths"]) for u in changed["update"]] == [("storage-bucket-raw", ["inputs.expireAfterDays"])]
    assert changed["delete"] == []
