"""The CI workflow `init` writes: valid YAML, credential-free plan diff, the README's commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from mlops_infra.scaffold import init_project

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module", params=["aws", "gcp", "azure"])
def workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    target = tmp_path_factory.mktemp(request.param)
    init_project(directory=target, cloud=request.param, project="demo")
    text = (target / ".github" / "workflows" / "mlops-infra.yml").read_text()
    return request.param, yaml.safe_load(text), text


def commands(document: dict) -> list[list[str]]:
    found = []
    for job in document["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                line = line.strip().lstrip("(").split("&&")[-1].strip()
                if line.startswith("mlops-infra "):
                    found.append(shlex.split(line.split(">")[0]))
    return found


def test_workflow_is_valid_and_plans_without_credentials(workflow: tuple[str, dict, str]) -> None:
    cloud, document, _ = workflow
    assert document["env"]["CLOUD"] == cloud
    plan_job = document["jobs"]["plan"]
    assert "id-token" not in document["permissions"], "the plan job needs no cloud credentials"
    names = [s.get("name", "") for s in plan_job["steps"]]
    assert "Plan the base branch" in names and "Plan this pull request against the base" in names
    preview = document["jobs"]["preview"]
    assert preview["needs"] == "plan" and "MLOPS_INFRA_PREVIEW" in preview["if"]
    assert preview["permissions"]["id-token"] == "write"


def test_preview_logs_in_to_the_right_cloud(workflow: tuple[str, dict, str]) -> None:
    cloud, document, _ = workflow
    uses = [s.get("uses", "") for s in document["jobs"]["preview"]["steps"]]
    expected = {"aws": "aws-actions/configure-aws-credentials", "gcp": "google-github-actions/auth", "azure": "azure/login"}
    assert any(u.startswith(expected[cloud]) for u in uses)


def test_workflow_commands_are_the_documented_ones(workflow: tuple[str, dict, str]) -> None:
    _, document, _ = workflow
    found = commands(document)
    assert {c[1] for c in found} == {"plan", "preview", "install-cli"}
    section = README.split("## Pull requests and CI", 1)[1].split("\n## ", 1)[0]
    for command in found:
        flags = [word for word in command if word.startswith("--")]
        documented = [line for line in section.splitlines() if line.strip().startswith(f"mlops-infra {command[1]}")]
        assert any(all(flag in line for flag in flags) for line in documented), (
            f"README's CI section does not show `mlops-infra {command[1]} {' '.join(flags)}`"
        )


def test_github_expressions_survive_templating(workflow: tuple[str, dict, str]) -> None:
    _, _, text = workflow
    assert "${{ github.base_ref }}" in text and "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}" in text
    assert not re.search(r"\{%|\{#", text)
