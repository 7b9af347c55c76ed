"""Everything around the spec, as the CLI meets it: the path and file behind --spec, the file's
name, the --against document, --out, and stdout itself. Each case ends in exit 0 or 2 with a
located message, never in "internal error" or a traceback (issue 18)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.cli import main
from mlops_infra.plan import PLAN_FORMAT
from tests.test_cli import project, runner  # noqa: F401 - fixtures: a CliRunner, a copy of stacks/
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())


def clean(result: object) -> None:
    """No crash: the catch-all's message and Python tracebacks never reach the user."""
    text = getattr(result, "output", "") + getattr(result, "stderr", "")
    assert "internal error" not in text and "Traceback" not in text, text


def cli(*args: str, timeout: float = 60, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess:
    """The real command in its own process (for what a test runner cannot fake: pipes, devices)."""

    def limit_memory() -> None:  # reading /dev/zero without bound must not take the machine down
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    return subprocess.run(
        [sys.executable, "-c", "from mlops_infra.cli import main; main()", *args],
        stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout, preexec_fn=limit_memory,
    )


# --- --spec and --stack ----------------------------------------------------------------------
def test_a_named_pipe_is_refused_at_once(project: Path) -> None:
    fifo = project / "spec.yaml"
    os.mkfifo(fifo)
    result = cli("validate", "--spec", str(fifo), timeout=30)
    assert result.returncode == 2 and "named pipe" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_device_is_refused_instead_of_read_forever(project: Path) -> None:
    result = cli("validate", "--spec", "/dev/zero", timeout=30)
    assert result.returncode == 2 and "character device" in result.stderr and "regular file" in result.stderr


def test_an_overlong_file_name_is_a_usage_error(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["validate", "--spec", "a" * 300 + ".yaml"])
    assert result.exit_code == 2
    clean(result)


def test_an_overlong_path_component_is_a_usage_error(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["validate", "--spec", "x" * 300 + "/dev.yaml"])
    assert result.exit_code == 2 and "File name too long" in result.stderr
    clean(result)


def test_an_empty_spec_value_is_an_error_not_the_dev_stack(runner: CliRunner, project: Path) -> None:
    empty = runner.invoke(main, ["validate", "--spec", ""])
    assert empty.exit_code == 2 and "--spec is empty" in empty.stderr and "dev.yaml" not in empty.output
    both = runner.invoke(main, ["validate", "--spec", "", "--stack", "prod"])
    assert both.exit_code == 2 and "not both" in both.stderr
    no_stack = runner.invoke(main, ["validate", "--stack", ""])
    assert no_stack.exit_code == 2 and "--stack is empty" in no_stack.stderr


@pytest.mark.parametrize("name", ["a::b", "a b", "-dev", "dev$", "caf\u00e9"])
def test_a_stack_name_from_a_file_name_is_checked_like_stack(runner: CliRunner, project: Path, name: str) -> None:
    spec = project / f"{name}.yaml"
    shutil.copy(project / "stacks" / "dev.yaml", spec)
    result = runner.invoke(main, ["plan", "--spec", str(spec), "--cloud", "aws"])
    assert result.exit_code == 2, result.output
    assert "invalid stack name" in result.stderr and "rename the spec file" in result.stderr
    by_flag = runner.invoke(main, ["validate", "--stack", name])
    assert by_flag.exit_code == 2 and "invalid stack name" in by_flag.stderr


def test_a_stack_name_too_long_for_pulumi_is_refused(runner: CliRunner, project: Path) -> None:
    spec = project / f"{'s' * 95}.yaml"
    shutil.copy(project / "stacks" / "dev.yaml", spec)
    result = runner.invoke(main, ["validate", "--spec", str(spec)])
    # <stack>-<cloud> must fit Pulumi's 100 characters for the longest cloud name ("kubernetes": 89).
    assert result.exit_code == 2 and "at most 89 characters" in result.stderr


def test_dotted_file_names_are_valid_stack_names(runner: CliRunner, project: Path) -> None:
    shutil.copy(project / "stacks" / "dev.yaml", project / "dev.eu-west.yaml")
    result = runner.invoke(main, ["validate", "--spec", "dev.eu-west.yaml"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("encoding", "named"),
    [("utf-16", "UTF-16 (with a byte order mark)"), ("utf-32", "UTF-32 (with a byte order mark)"),
     ("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE"), ("utf-32-le", "UTF-32LE"), ("utf-32-be", "UTF-32BE")],
)
def test_a_wide_encoding_is_named_with_the_conversion(runner: CliRunner, project: Path, encoding: str, named: str) -> None:
    spec = project / "wide.yaml"
    spec.write_bytes((project / "stacks" / "dev.yaml").read_text().encode(encoding))
    result = runner.invoke(main, ["validate", "--spec", str(spec)])
    assert result.exit_code == 2
    assert f"wide.yaml:1: error: (top level): the file is {named} text, not UTF-8" in result.stderr
    assert f"iconv -f {named.split()[0]} -t UTF-8" in result.stderr


def test_a_latin1_spec_is_named_with_its_line_and_the_conversion(runner: CliRunner, project: Path) -> None:
    spec = project / "latin.yaml"
    text = (project / "stacks" / "dev.yaml").read_text().replace("owner: ml-platform", "owner: caf\u00e9")
    spec.write_bytes(text.encode("latin-1"))
    line = text.splitlines().index("  owner: caf\u00e9") + 1
    result = runner.invoke(main, ["validate", "--spec", str(spec)])
    assert result.exit_code == 2
    assert f"latin.yaml:{line}: error" in result.stderr and "Windows-1252 or Latin-1" in result.stderr
    assert "'\u00e9'" in result.stderr and "iconv -f WINDOWS-1252 -t UTF-8" in result.stderr


# --- validate and plan agree ------------------------------------------------------------------
def test_a_spec_with_no_cloud_is_invalid_for_validate_as_for_plan(runner: CliRunner, project: Path) -> None:
    data = {k: v for k, v in DEV.items() if k not in ("cloud", "clouds")}
    (project / "nocloud.yaml").write_text(yaml.safe_dump(data))
    checked = runner.invoke(main, ["validate", "--spec", "nocloud.yaml"])
    assert checked.exit_code == 2 and "nocloud.yaml:1: error: cloud: no target cloud" in checked.stderr
    assert "cloud: aws and clouds: {aws: {region: us-east-1, account_id: " in checked.stderr
    for cloud in CLOUDS:
        assert runner.invoke(main, ["plan", "--spec", "nocloud.yaml", "--cloud", cloud]).exit_code == 2


def test_validate_json_reports_problems_on_stderr_too(runner: CliRunner, project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text("apiVersion: mlops-infra/v1\nproject: churn\nenvironment: Dev\ncloud: aws\n")
    result = runner.invoke(main, ["validate", "--spec", str(bad), "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["format"] == "mlops-infra/validate/v1" and document["valid"] is False
    assert f"{bad}:3: error: environment:" in result.stderr
    assert f"error: 1 problem in {bad}" in result.stderr


# --- --against and --out ------------------------------------------------------------------------
def deep(levels: int) -> object:
    value: object = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": [{"x": 1}]}, "resources[0].name"),
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": [1]}, "resources[0]"),
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": "all"}, "resources"),
        ({"format": PLAN_FORMAT, "resources": []}, "cloud"),
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": [{"name": "a", "type": "t", "inputs": []}]},
         "resources[0].inputs"),
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": [{"name": "a", "type": "t", "protect": "yes"}]},
         "resources[0].protect"),
        ({"format": PLAN_FORMAT, "cloud": "aws", "resources": [{"name": "a", "type": "t", "parent": 3}]},
         "resources[0].parent"),
        ({"format": PLAN_FORMAT, "cloud": "aws",
          "resources": [{"name": "a", "type": "t", "inputs": {"x": deep(150)}}]}, "resources[0].inputs"),
        ({"format": PLAN_FORMAT, "cloud": "aws",
          "resources": [{"name": "a", "type": "t"}, {"name": "a", "type": "t"}]}, "resources[1]"),
    ],
)
def test_a_malformed_against_document_is_invalid_input(
    runner: CliRunner, project: Path, document: dict, where: str
) -> None:
    (project / "old.json").write_text(json.dumps(document))
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "old.json"])
    assert result.exit_code == 2, result.output
    assert f"old.json: error: {where}:" in result.stderr and "(--against)" in result.stderr
    clean(result)
    as_json = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "old.json", "--json"])
    error = json.loads(as_json.stdout)
    assert error["format"] == "mlops-infra/error/v1" and error["problems"][0]["path"] == where


def test_an_against_document_nested_past_the_parser_is_invalid_input(runner: CliRunner, project: Path) -> None:
    (project / "old.json").write_text(
        '{"format": "%s", "cloud": "aws", "resources": [{"name": "a", "type": "t", "inputs": {"x": %s}}]}'
        % (PLAN_FORMAT, "[" * 100_000 + "]" * 100_000)
    )
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "old.json"])
    assert result.exit_code == 2 and "nests too deeply" in result.stderr
    clean(result)


def test_many_problems_in_an_against_document_are_counted_not_all_listed(runner: CliRunner, project: Path) -> None:
    (project / "old.json").write_text(json.dumps({"format": PLAN_FORMAT, "cloud": "aws", "resources": [1] * 500}))
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "old.json"])
    assert result.exit_code == 2 and "500 problems in the plan document" in result.stderr
    assert "and 480 more problems" in result.stderr and result.stderr.count("must be a resource") == 20


def test_the_ci_stub_for_a_new_stack_is_a_valid_against_document(runner: CliRunner, project: Path) -> None:
    (project / "base.json").write_text(json.dumps({"format": PLAN_FORMAT, "cloud": "aws", "resources": []}))
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--against", "base.json"])
    assert result.exit_code == 0 and "to create" in result.stdout


def test_nothing_is_written_when_the_plan_fails(runner: CliRunner, project: Path) -> None:
    (project / "aws.json").write_text(json.dumps({"format": PLAN_FORMAT, "cloud": "aws", "resources": []}))
    other_cloud = runner.invoke(main, ["plan", "--cloud", "gcp", "--against", "aws.json", "--out", "gcp.json"])
    assert other_cloud.exit_code == 2 and "same cloud" in other_cloud.stderr
    assert not (project / "gcp.json").exists()
    (project / "kept.json").write_text("the previous plan\n")
    (project / "bad.yaml").write_text("apiVersion: mlops-infra/v1\nproject: Churn\nenvironment: dev\ncloud: aws\n")
    invalid = runner.invoke(main, ["plan", "--spec", "bad.yaml", "--out", "kept.json"])
    assert invalid.exit_code == 2 and (project / "kept.json").read_text() == "the previous plan\n"
    assert sorted(p.name for p in project.iterdir()) == ["aws.json", "bad.yaml", "kept.json", "stacks"]


def test_out_is_replaced_whole_and_keeps_the_usual_permissions(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(main, ["plan", "--cloud", "aws", "--out", "plans/dev.json"])
    assert result.exit_code == 0, result.output
    written = project / "plans" / "dev.json"
    assert json.loads(written.read_text())["format"] == PLAN_FORMAT
    assert written.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in written.parent.iterdir()] == ["dev.json"]  # no temporary file left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- stdout ---------------------------------------------------------------------------------------
def test_a_full_disk_on_stdout_is_one_clear_error(project: Path) -> None:
    with open("/dev/full", "w") as full:
        result = cli("validate", "--json", stdout=full)
    assert result.returncode == 1
    assert "error: cannot write the output: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_closed_pipe_on_stdout_is_one_clear_error(project: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = cli("validate", "--json", stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert "broken pipe" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --- the Python API -----------------------------------------------------------------------------
def test_planning_in_process_does_not_leak_file_descriptors() -> None:
    from mlops_infra import api

    source = api.resolve_source(stack="prod", spec=None, root=ROOT)

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    for cloud in ("aws", "gcp"):
        api.plan(source=source, cloud=cloud)
        before = open_descriptors()
        for _ in range(3):
            api.plan(source=source, cloud=cloud)
        assert open_descriptors() <= before, cloud
