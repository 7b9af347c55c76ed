"""The CLI as users and CI scripts drive it: exit codes, JSON-only stdout, no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_infra import __version__
from mlops_infra.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_validate_examples_ok(runner: CliRunner, project: Path) -> None:
    for stack in ("dev", "prod"):
        result = runner.invoke(main, ["validate", "--stack", stack])
        assert result.exit_code == 0, result.output
        assert "valid for aws, azure, gcp" in result.output


def test_validate_invalid_exit_2_with_locations(runner: CliRunner, project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text("apiVersion: mlops-infra/v1\nproject: Churn\nenvironment: dev\nstorage: {bukets: []}\n")
    result = runner.invoke(main, ["validate", "--spec", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: error: project:" in result.stderr
    assert "did you mean 'buckets'" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_validate_json_is_only_json(runner: CliRunner, project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text("apiVersion: mlops-infra/v1\nproject: churn\nenvironment: dev\nmodels: [{name: m1, trainin: {}}]\n")
    result = runner.invoke(main, ["validate", "--spec", str(bad), "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["problems"][0]["path"] == "models[0].trainin"
    assert document["problems"][0]["line"] == 4


def test_plan_json_stdout_is_the_plan_document(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["plan", "--cloud", "gcp", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["cloud"] == "gcp" and document["stack"] == "dev"
    assert "warning" in result.stderr  # unsupported stages are said on stderr, not stdout


def test_plan_text_groups_by_stage_and_out_file(runner: CliRunner, project: Path) -> None:
    out = project / "plans" / "dev.json"
    result = runner.invoke(main, ["plan", "--stack", "dev", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "on aws:" in result.stdout and "\ngovernance (" in result.stdout and "\nstorage (" in result.stdout
    assert "[protected]" in result.stdout
    assert json.loads(out.read_text())["cloud"] == "aws"


def test_plan_invalid_spec_json_error_document(runner: CliRunner, project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text("apiVersion: mlops-infra/v1\nproject: churn\nenvironment: dev\ncloud: aws\n")
    result = runner.invoke(main, ["plan", "--spec", str(bad), "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["format"] == "mlops-infra/error/v1"
    assert document["problems"][0]["path"] == "clouds"


def test_missing_stack_is_usage_error(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["plan", "--stack", "nope"])
    assert result.exit_code == 2
    assert "no spec for stack 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_stack_and_spec_together_is_usage_error(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["validate", "--stack", "dev", "--spec", "stacks/dev.yaml"])
    assert result.exit_code == 2 and "not both" in result.stderr


def test_schema_is_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(main, ["schema"])
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert "models" in schema["properties"] and "clouds" in schema["properties"]


def test_init_writes_project_and_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = runner.invoke(main, ["init", str(target), "--cloud", "gcp", "--project", "demo", "--json"])
    assert result.exit_code == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert set(files) == {"stacks/dev.yaml", "Pulumi.yaml", "__main__.py", "README.md", ".gitignore",
                          ".github/workflows/mlops-infra.yml"}
    before = (target / "stacks/dev.yaml").read_text()
    again = runner.invoke(main, ["init", str(target), "--cloud", "aws", "--project", "other"])
    assert again.exit_code == 2 and "nothing was written" in again.stderr
    assert (target / "stacks/dev.yaml").read_text() == before


def test_init_rejects_bad_project_name(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", str(tmp_path / "x"), "--cloud", "aws", "--project", "Bad_Name"])
    assert result.exit_code == 2 and "invalid project name" in result.stderr
    assert not (tmp_path / "x").exists()


def test_internal_errors_have_no_traceback_unless_debug(runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_infra import api

    def boom(**_: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(api, "plan", boom)
    result = runner.invoke(main, ["plan"])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: kaboom" in result.stderr and "Traceback" not in result.stderr
    debug = runner.invoke(main, ["--debug", "plan"])
    assert isinstance(debug.exception, RuntimeError)


def test_every_command_has_json_output() -> None:
    import click as click_module

    for name, command in main.commands.items():
        flags = {opt for p in command.params if isinstance(p, click_module.Option) for opt in p.opts}
        assert "--json" in flags, f"`mlops-infra {name}` has no --json"
