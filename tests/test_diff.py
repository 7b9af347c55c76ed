"""Credential-free CI diffs: plan --against an older plan document."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.cli import main
from mlops_infra.diff import diff_plans, render_changes
from tests.planning import CLOUDS, BASE_SPEC, lifecycle_edit, plan_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=CLOUDS)
def base(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param, plan_for(request.param)


def variant(**storage: object) -> dict:
    data = copy.deepcopy(BASE_SPEC)
    data["storage"] = {**data["storage"], **storage}
    return data


def test_unchanged_spec_has_no_changes(base: tuple[str, dict]) -> None:
    cloud, plan = base
    changes = diff_plans(plan, plan_for(cloud))
    assert changes.empty and render_changes(changes) == "No changes."


def test_lifecycle_change_is_only_updates_with_paths(base: tuple[str, dict]) -> None:
    cloud, plan = base
    field, _, new = lifecycle_edit(cloud)
    data = variant(buckets=[{"name": "raw", "archive_after_days": 90, "expire_after_days": 730, field: new}])
    changes = diff_plans(plan, plan_for(cloud, data))
    assert not changes.create and not changes.delete and changes.update
    for update in changes.update:
        assert update.paths and all(p.startswith("inputs.") for p in update.paths)
        assert any(str(new) in json.dumps(r["inputs"]) for r in plan_for(cloud, data)["resources"] if r["name"] == update.name)


def test_adding_a_bucket_only_creates(base: tuple[str, dict]) -> None:
    cloud, plan = base
    data = variant(buckets=[*BASE_SPEC["storage"]["buckets"], {"name": "features"}])
    changes = diff_plans(plan, plan_for(cloud, data))
    assert changes.create and not changes.delete
    assert all("features" in item["name"] for item in changes.create)
    # Stack-wide resources may list the new bucket (the AWS trail's data events, the Azure
    # account's lifecycle policy); the existing bucket's own resources never change.
    assert not [u.name for u in changes.update if "raw" in u.name]


def test_removing_a_bucket_only_deletes(base: tuple[str, dict]) -> None:
    cloud, plan = base
    data = variant(buckets=[*BASE_SPEC["storage"]["buckets"], {"name": "features"}])
    bigger = plan_for(cloud, data)
    changes = diff_plans(bigger, plan)
    assert changes.delete and not changes.create
    assert all("features" in item["name"] for item in changes.delete)
    assert not [u.name for u in changes.update if "raw" in u.name]


def test_type_change_is_delete_and_create() -> None:
    old = {"resources": [{"name": "a", "type": "t:1", "inputs": {}}]}
    new = {"resources": [{"name": "a", "type": "t:2", "inputs": {}}]}
    changes = diff_plans(old, new)
    assert [c["name"] for c in changes.create] == ["a"] and [c["name"] for c in changes.delete] == ["a"]


def test_json_strings_are_diffed_inside() -> None:
    policy = lambda action: json.dumps({"Statement": [{"Action": [action], "Effect": "Allow"}]})  # noqa: E731
    old = {"resources": [{"name": "p", "type": "t", "protect": False, "inputs": {"policy": policy("s3:GetObject")}}]}
    new = {"resources": [{"name": "p", "type": "t", "protect": True, "inputs": {"policy": policy("s3:PutObject")}}]}
    (update,) = diff_plans(old, new).update
    assert update.paths == ["protect", "inputs.policy<json>.Statement[0].Action[0]"]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_against_and_expect_no_changes(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["plan", "--cloud", "gcp", "--out", "base.json"]).exit_code == 0
    same = runner.invoke(main, ["plan", "--cloud", "gcp", "--against", "base.json", "--expect-no-changes"])
    assert same.exit_code == 0 and "No changes." in same.stdout
    spec = yaml.safe_load((project / "stacks" / "dev.yaml").read_text())
    spec["storage"]["buckets"].append({"name": "labels"})
    (project / "stacks" / "dev.yaml").write_text(yaml.safe_dump(spec))
    changed = runner.invoke(main, ["plan", "--cloud", "gcp", "--against", "base.json", "--json", "--expect-no-changes"])
    assert changed.exit_code == 1
    document = json.loads(changed.stdout)
    assert document["changes"]["summary"]["create"] > 0 and document["changes"]["summary"]["delete"] == 0
    assert "--expect-no-changes" in changed.stderr


def test_cli_against_errors(project: Path) -> None:
    runner = CliRunner()
    (project / "notplan.json").write_text('{"format": "other"}')
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "notplan.json"])
    assert result.exit_code == 2 and "not a plan document" in result.stderr
    missing = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "nope.json"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    runner.invoke(main, ["plan", "--cloud", "aws", "--out", "aws.json"])
    other = runner.invoke(main, ["plan", "--cloud", "gcp", "--against", "aws.json"])
    assert other.exit_code == 2 and "same cloud" in other.stderr
    lonely = runner.invoke(main, ["plan", "--expect-no-changes"])
    assert lonely.exit_code == 2 and "needs --against" in lonely.stderr


def _prod(cloud: str, change: Any = None) -> dict:
    from mlops_infra.plan import plan_document
    from mlops_infra.spec.models import spec_model

    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    if change is not None:
        change(data)
    return plan_document(spec_model().model_validate(data), cloud, stack="prod")


@pytest.fixture(scope="module", params=CLOUDS)
def prod_base(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param, _prod(request.param)


def _dashboards(changes: Any) -> set[str]:
    return {u.name for u in changes.update if "dashboard" in u.name or "workbook" in u.name}


def test_raising_max_replicas_updates_only_that_models_scaling(prod_base: tuple[str, dict]) -> None:
    cloud, base = prod_base

    def more(data: dict) -> None:
        data["models"][1]["serving"]["autoscaling"]["max_replicas"] = 9

    changes = diff_plans(base, _prod(cloud, more))
    assert changes.update and not changes.create and not changes.delete
    for update in changes.update:
        assert "ltv-regressor" in update.name and update.paths, update


def test_adding_a_model_creates_and_touches_only_the_dashboard(prod_base: tuple[str, dict]) -> None:
    cloud, base = prod_base

    def add(data: dict) -> None:
        data["models"].append(dict(copy.deepcopy(data["models"][1]), name="upsell"))

    changes = diff_plans(base, _prod(cloud, add))
    assert changes.create and not changes.delete
    assert all("upsell" in item["name"] or item["type"].endswith("Dashboard") for item in changes.create)
    assert {u.name for u in changes.update} == _dashboards(changes)


def test_removing_a_model_deletes_and_touches_only_the_dashboard(prod_base: tuple[str, dict]) -> None:
    cloud, base = prod_base

    def drop(data: dict) -> None:
        data["models"] = [m for m in data["models"] if m["name"] != "ltv-regressor"]

    changes = diff_plans(base, _prod(cloud, drop))
    assert changes.delete and not changes.create
    assert all("ltv-regressor" in item["name"] for item in changes.delete)
    # Besides the dashboard, at most stack-wide data grants narrow (the removed model read the
    # whole features bucket); where each model group has an identity of its own, its grants go
    # with it and nothing else changes.
    others = {u.name for u in changes.update} - _dashboards(changes)
    assert all(name.startswith("storage-grant") for name in others), others
