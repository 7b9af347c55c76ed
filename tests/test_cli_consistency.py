"""The CLI never surprises: bad --backend, a broken pulumi, subdirectories, counts, warnings and --quiet."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_infra.cli import main
from tests.fakes import FakeEngine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("", "--backend is empty"),
        ("   ", "--backend is empty"),
        ("s3://", "malformed --backend 's3://'"),
        ("file://", "malformed --backend"),
        ("https://", "malformed --backend"),
        ("gs://my bucket", "malformed --backend"),
        ("ftp://x", "unsupported --backend"),
    ],
)
def test_empty_or_malformed_backend_is_exit_2(project: Path, fake: FakeEngine, url: str, said: str) -> None:
    result = CliRunner().invoke(main, ["preview", "--backend", url])
    assert result.exit_code == 2, result.stderr
    assert said in result.stderr and "hint:" in result.stderr and not fake.calls


def test_a_good_backend_reaches_the_engine(project: Path, fake: FakeEngine) -> None:
    result = CliRunner().invoke(main, ["preview", "--backend", "gs://state-bucket/team"])
    assert result.exit_code == 0, result.stderr
    assert fake.calls[0][1].state_url == "gs://state-bucket/team"


@pytest.fixture()
def broken_pulumi(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "pulumi"
    script.write_text("#!/bin/sh\necho 'error: failed to load language plugin python' >&2\nexit 255\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    monkeypatch.setenv("MLOPS_INFRA_AMBIENT_CREDENTIALS", "1")
    return script


def test_a_pulumi_that_cannot_run_is_exit_3_with_its_output(broken_pulumi: Path) -> None:
    result = CliRunner().invoke(main, ["preview", "--json"])
    assert result.exit_code == 3, result.stderr
    error = json.loads(result.stdout)
    assert "cannot run" in error["error"] and str(broken_pulumi) in error["error"]
    assert "exited with 255" in error["error"] and "failed to load language plugin python" in error["error"]
    assert "install-cli" in error["hint"] and "internal error" not in result.stderr


def test_a_pulumi_that_is_not_executable_is_exit_3(broken_pulumi: Path) -> None:
    broken_pulumi.write_bytes(b"\x7fELF garbage")
    result = CliRunner().invoke(main, ["refresh"])
    assert result.exit_code == 3 and "cannot run" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["stacks", "notebooks/deep/er"])
def test_the_project_is_found_from_any_subdirectory(project: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    (project / where).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(project / where)
    result = CliRunner().invoke(main, ["validate", "-q"])
    assert result.exit_code == 0, result.stderr
    assert f"{project / 'stacks' / 'dev.yaml'}: valid" in result.stdout


def test_outside_any_project_the_error_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["plan"])
    assert result.exit_code == 2 and str(tmp_path / "stacks" / "dev.yaml") in result.stderr


def test_engine_state_lives_in_the_project_found_from_a_subdirectory(
    project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "stacks")
    assert CliRunner().invoke(main, ["preview"]).exit_code == 0
    assert fake.calls[0][1].state_url == f"file://{(project / '.mlops-infra' / 'state').resolve()}"


@pytest.mark.parametrize(("stack", "cloud"), [("dev", "aws"), ("prod", "gcp"), ("dev", "azure")])
def test_counts_agree_between_text_json_and_summary(project: Path, stack: str, cloud: str) -> None:
    runner = CliRunner()
    document = json.loads(runner.invoke(main, ["plan", "--stack", stack, "--cloud", cloud, "--json", "-q"]).stdout)
    text = runner.invoke(main, ["plan", "--stack", stack, "--cloud", cloud, "-q"]).stdout
    summary = document["summary"]
    header = re.search(r": (\d+) cloud resources in (\d+) stages$", text.splitlines()[0])
    assert header and int(header.group(1)) == summary["total"] and int(header.group(2)) == len(summary["by_stage"])
    groups = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+) \((\d+)\)$", text, re.M)}
    assert groups == summary["by_stage"]
    listed = [line for line in text.splitlines() if line.startswith("  + ")]
    assert len(listed) == summary["total"]


def test_split_plan_counts_add_up(project: Path) -> None:
    import yaml

    spec = yaml.safe_load((project / "stacks" / "prod.yaml").read_text())
    spec["split"] = {"enabled": True, "max_models_per_stack": 1}
    (project / "stacks" / "prod.yaml").write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    document = json.loads(runner.invoke(main, ["plan", "--stack", "prod", "--cloud", "aws", "--json", "-q"]).stdout)
    text = runner.invoke(main, ["plan", "--stack", "prod", "--cloud", "aws", "-q"]).stdout
    parts = {p: int(n) for p, n in re.findall(r"^== Pulumi stack \S+ \(([\w-]+).*, (\d+) cloud resources$", text, re.M)}
    assert parts == document["summary"]["by_part"] and len(parts) == 3
    parts = list(parts.values())
    assert sum(parts) == document["summary"]["total"] == sum(document["summary"]["by_stage"].values())


WITH_WARNINGS_AND_ERRORS = """\
apiVersion: mlops-infra/v1
project: churn
environment: dev
cloud: azure
clouds:
  azure: {location: westeurope, subscription_id: "00000000-0000-0000-0000-000000000000"}
storage:
  buckets: [{name: raw, versioning: false}]
models:
  - name: m1
    training: {image: 'ghcr.io/acme/t:1', compute: {size: cpu-small}, spot: true, max_wait: 2h, max_runtime: 1h}
    registry: {approval: manual}
    serving: {image: 'ghcr.io/acme/s:1', compute: {size: cpu-small}, rollout: {mode: linear, step_percent: 20},
              autoscaling: {min_replicas: 1, max_replicas: 2}}
"""


def test_warnings_are_counted_and_grouped_and_errors_come_last(project: Path) -> None:
    (project / "mixed.yaml").write_text(WITH_WARNINGS_AND_ERRORS)
    result = CliRunner().invoke(main, ["validate", "--spec", "mixed.yaml"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    counted = next(i for i, line in enumerate(lines) if re.match(r"^\d+ warnings? \(--quiet hides them\):$", line))
    warnings = int(lines[counted].split()[0])
    assert warnings == sum(1 for line in lines if ": warning: " in line) >= 2
    errors_at = [i for i, line in enumerate(lines) if ": error: " in line]
    last_warning = max(i for i, line in enumerate(lines) if ": warning: " in line)
    assert errors_at and min(errors_at) > last_warning, "errors must come after every warning"
    assert re.fullmatch(rf"error: {len(errors_at)} problems? in mixed.yaml \({warnings} warnings? listed above\)", lines[-1])


def test_quiet_hides_warnings_but_never_errors_or_json(project: Path) -> None:
    (project / "mixed.yaml").write_text(WITH_WARNINGS_AND_ERRORS)
    runner = CliRunner()
    for args in (["--quiet", "validate", "--spec", "mixed.yaml"], ["validate", "--spec", "mixed.yaml", "-q"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and ": warning: " not in result.stderr and ": error: " in result.stderr
        assert "hidden by --quiet" in result.stderr.splitlines()[-1]
    as_json = runner.invoke(main, ["validate", "--spec", "mixed.yaml", "-q", "--json"])
    assert json.loads(as_json.stdout)["warnings"]
    plan = runner.invoke(main, ["plan", "--cloud", "gcp", "-q"])
    assert plan.exit_code == 0 and plan.stderr == ""


def test_init_help_names_every_file_init_writes(tmp_path: Path) -> None:
    from mlops_infra.scaffold import FILES

    text = " ".join(CliRunner().invoke(main, ["init", "--help"], terminal_width=300).stdout.split())
    for written in FILES.values():
        assert written in text, f"`init --help` does not mention {written}"
    for option in ("--install-from", "--cloud", "--project", "--force"):
        assert option in text


def test_the_scaffolded_comments_match_what_the_tools_do(tmp_path: Path) -> None:
    """Every `mlops-infra ...` command the scaffolded spec and README suggest runs in the new project."""
    import shlex

    project = tmp_path / "demo"
    assert CliRunner().invoke(main, ["init", str(project), "--cloud", "aws", "--project", "demo", "--install-from", "index"]).exit_code == 0
    suggested: list[str] = []
    for name in ("stacks/dev.yaml", "README.md", "Pulumi.yaml"):
        for found in re.finditer(r"(?:^|[\s`])mlops-infra ((?:%s)\b[^`#>\n]*)" % "|".join(main.commands), (project / name).read_text()):
            command = found.group(1).strip()
            offline = command.split()[0] in ("validate", "plan", "schema")  # the engine commands need a cloud
            if offline and command not in suggested:
                suggested.append(command)
    assert {c.split()[0] for c in suggested} >= {"validate", "plan"}
    cwd = os.getcwd()
    os.chdir(project / "stacks")  # the comment says: from any folder of the project
    try:
        runner = CliRunner()
        for command in suggested:  # in the order a reader meets them
            result = runner.invoke(main, ["--quiet", *shlex.split(command)])
            assert result.exit_code == 0, (command, result.stderr)
    finally:
        os.chdir(cwd)
