"""The CI workflow `init` writes: actionlint-clean for every cloud and install source, current
actions, a credential-free plan job that comments even on invalid specs, an OIDC preview, the
README's commands, and an install step that installs this repository on a fresh machine."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_infra.scaffold import init_project
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
CI_DOC = (ROOT / "docs" / "ci.md").read_text()
BIN = Path(sys.executable).parent
ACTIONLINT, SHELLCHECK = BIN / "actionlint", BIN / "shellcheck"
SOURCES = {
    "git-ref": "git+https://github.com/acme/mlops-infra@v0.1.0",
    "path": "vendor/mlops-infra",
    "wheel": "dist/mlops_infra-0.1.0-py3-none-any.whl",
    "index": "index",
}
# The preview job's login: (the action, its OIDC input), or (None, what the run step reads) where no action
# logs in (a cluster: the job hands its own GitHub OIDC token to the API server).
LOGIN = {
    "aws": ("aws-actions/configure-aws-credentials", "role-to-assume"),
    "gcp": ("google-github-actions/auth", "workload_identity_provider"),
    "azure": ("azure/login", "client-id"),
    "kubernetes": (None, "$ACTIONS_ID_TOKEN_REQUEST_URL&audience="),
}


def scaffold(target: Path, cloud: str, source: str | None) -> tuple[dict, str]:
    init_project(directory=target, cloud=cloud, project="demo", install_from=source)
    text = (target / ".github" / "workflows" / "mlops-infra.yml").read_text()
    return yaml.safe_load(text), text


@pytest.fixture(scope="module", params=CLOUDS)
def workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    document, text = scaffold(tmp_path_factory.mktemp(request.param), request.param, SOURCES["git-ref"])
    return request.param, document, text


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists() and SHELLCHECK.exists(), "pip install '.[test]' brings actionlint and shellcheck"
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", "-shellcheck", str(SHELLCHECK), str(path)],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("source", [*SOURCES, "unknown"])
def test_actionlint_passes_for_every_cloud_and_install_source(tmp_path: Path, cloud: str, source: str) -> None:
    # "unknown": a copy installed from a folder without a git remote (like this test's).
    scaffold(tmp_path, cloud, SOURCES.get(source))
    result = actionlint(tmp_path / ".github" / "workflows" / "mlops-infra.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_knows_every_action_the_workflow_uses(workflow: tuple[str, dict, str], tmp_path: Path) -> None:
    """actionlint checks runtimes (node20 is gone) only for action versions it knows: make sure it knows ours."""
    cloud, document, _ = workflow
    uses = {s["uses"] for job in document["jobs"].values() for s in job["steps"] if "uses" in s}
    action, _ = LOGIN[cloud]
    assert action is None or any(u.startswith(action) for u in uses)
    for action in sorted(uses):
        probe = tmp_path / "probe.yml"
        probe.write_text(
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
            f"      - uses: {action}\n        with:\n          not-an-input: x\n"
        )
        said = actionlint(probe).stdout
        assert f'"{action}"' in said and ("is not defined in action" in said or "missing input" in said), said


def test_old_node20_majors_are_what_actionlint_rejects(tmp_path: Path) -> None:
    """The check above means something: actionlint flags the majors the old workflow used."""
    probe = tmp_path / "old.yml"
    probe.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
    assert 'runtime "node20"' in actionlint(probe).stdout


def test_plan_job_needs_no_credentials_and_comments_on_invalid_specs(workflow: tuple[str, dict, str]) -> None:
    cloud, document, _ = workflow
    assert document["env"]["CLOUD"] == cloud and document["permissions"] == {"contents": "read"}
    plan = document["jobs"]["plan"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}, "no id-token: offline"
    steps = {s.get("name", s.get("uses")): s for s in plan["steps"]}
    validate = steps["Check the spec"]
    assert "set +e" in validate["run"] and "status=$?" in validate["run"]
    comment = steps["Comment on the pull request"]
    assert comment["uses"].startswith("actions/github-script@")
    assert "always()" in comment["if"] and "head.repo.full_name == github.repository" in comment["if"]
    assert "is invalid" in comment["with"]["script"] and "problems.txt" in comment["with"]["script"]
    assert "always()" in steps["Write the run's summary"]["if"]
    assert "status != '0'" in steps["Fail on an invalid spec"]["if"]


def test_install_is_one_variable_with_the_clouds_extra_and_a_pip_cache(workflow: tuple[str, dict, str]) -> None:
    cloud, document, text = workflow
    expected = f"mlops-infra[{cloud}] @ git+https://github.com/acme/mlops-infra@v0.1.0"
    assert document["env"]["MLOPS_INFRA_INSTALL"] == f"${{{{ vars.MLOPS_INFRA_INSTALL || '{expected}' }}}}"
    assert "mlops-infra==" not in text.replace(f"mlops-infra[{cloud}]", "")
    for job in document["jobs"].values():
        setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"].endswith("mlops-infra.yml")
        assert any('pip install "$MLOPS_INFRA_INSTALL"' in s.get("run", "") for s in job["steps"])


@pytest.mark.parametrize(
    ("source", "requirement"),
    [
        ("vendor/mlops-infra", "./vendor/mlops-infra[aws]"),
        ("./dist/mlops_infra-0.1.0-py3-none-any.whl", "./dist/mlops_infra-0.1.0-py3-none-any.whl[aws]"),
        ("index", "mlops-infra[aws]==0.1.0"),
    ],
)
def test_install_sources(tmp_path: Path, source: str, requirement: str) -> None:
    document, _ = scaffold(tmp_path, "aws", source)
    assert f"'{requirement}'" in document["env"]["MLOPS_INFRA_INSTALL"]


@pytest.mark.parametrize("source", ["git+https://github.com/acme/mlops-infra", "/abs/path", "pip install x", "http://x"])
def test_unpinned_or_unusable_sources_are_refused(tmp_path: Path, source: str) -> None:
    from mlops_infra.errors import UsageError

    with pytest.raises(UsageError):
        scaffold(tmp_path, "aws", source)
    assert not (tmp_path / ".github").exists()


def test_forks_are_described_truthfully(workflow: tuple[str, dict, str]) -> None:
    _, document, text = workflow
    header = text.split("\nname:", 1)[0]
    assert "read-only token, no secrets and no\n# OIDC token" in header and "cannot comment" in header
    assert "summary page" in header and "first-time contributors" in header
    assert "forks work" not in text
    assert "head.repo.full_name == github.repository" in document["jobs"]["preview"]["if"]


def test_preview_uses_oidc_and_no_long_lived_cloud_secrets(workflow: tuple[str, dict, str]) -> None:
    cloud, document, text = workflow
    preview = document["jobs"]["preview"]
    assert preview["needs"] == "plan" and "vars.MLOPS_INFRA_PREVIEW == 'true'" in preview["if"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    action, oidc = LOGIN[cloud]
    if action:
        login = next(s for s in preview["steps"] if s.get("uses", "").startswith(action))
        assert oidc in login["with"] and "secrets." not in str(login["with"])
    else:
        login = next(s for s in preview["steps"] if s.get("name", "").startswith("Log in to"))
        assert oidc in login["run"] and "secrets." not in str(login)
    assert re.findall(r"secrets\.(\w+)", text) == ["PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"]
    cache = next(s for s in preview["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.pulumi/versions" and "steps.install.outputs.pulumi" in cache["with"]["key"]


def commands(document: dict) -> list[list[str]]:
    found = []
    for job in document["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if "mlops-infra " in line and not line.strip().startswith(("echo", "{")):
                    command = "mlops-infra " + line.split("mlops-infra ", 1)[1]
                    found.append(shlex.split(re.split(r" [|>;]|\s2>|\)", command)[0]))
    return found


def test_workflow_commands_are_the_documented_ones(workflow: tuple[str, dict, str]) -> None:
    _, document, _ = workflow
    found = commands(document)
    assert {c[1] for c in found} == {"validate", "plan", "cost", "preview", "install-cli"}
    section = CI_DOC
    for command in found:
        flags = [word for word in command if word.startswith("--")]
        documented = [line for line in section.splitlines() if line.strip().startswith(f"mlops-infra {command[1]}")]
        assert any(all(flag in line for flag in flags) for line in documented), (
            f"docs/ci.md does not show `mlops-infra {command[1]} {' '.join(flags)}`"
        )


def test_github_expressions_survive_templating(workflow: tuple[str, dict, str]) -> None:
    _, _, text = workflow
    assert "${{ github.base_ref }}" in text and "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}" in text
    assert not re.search(r"\{%|\{#", text)


# --- the install step, run for real on a fresh virtual environment ------------------------------


def _source_tree(into: Path) -> None:
    """This repository's files as a fresh clone would have them (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)


def _fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    site = next((where / "lib").glob("python3*/site-packages"))
    # Offline: the runtime dependencies and the build backend come from this test environment
    # (pip itself too), never from an index; mlops_infra itself never does: the test env's
    # packages are seen through a folder of links that leaves it out (CI installs it there
    # non-editable, and pip would take it for already installed).
    ours = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p, "pip").exists())
    deps = where / "deps"
    deps.mkdir()
    for entry in ours.iterdir():
        if not entry.name.replace("-", "_").startswith("mlops_infra"):
            (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    return where


def _install_step(document: dict) -> tuple[str, str]:
    script = next(s["run"] for s in document["jobs"]["plan"]["steps"] if s.get("name") == "Install mlops-infra")
    requirement = re.fullmatch(r"\$\{\{ vars\.MLOPS_INFRA_INSTALL \|\| '(.*)' \}\}", document["env"]["MLOPS_INFRA_INSTALL"])
    assert requirement is not None
    return script, requirement.group(1).replace("''", "'")


def _run_install(project: Path, venv: Path, script: str, requirement: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(project),
        "MLOPS_INFRA_INSTALL": requirement,
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads "0" as --no-build-isolation (a store_false flag)
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(["bash", "-e", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def _works(project: Path, venv: Path, cloud: str) -> None:
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlops_infra; print(mlops_infra.__file__)"],
        capture_output=True, text=True, cwd=project,
    )
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the installed copy, not the source
    planned = subprocess.run(
        [str(venv / "bin" / "mlops-infra"), "plan", "--cloud", cloud, "--quiet"],
        capture_output=True, text=True, cwd=project, env={"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin", "HOME": str(project)},
        timeout=300,
    )
    assert planned.returncode == 0 and "cloud resources in" in planned.stdout, planned.stderr


def test_the_install_step_builds_this_repository_in_the_job(tmp_path: Path) -> None:
    """--install-from a path in the project (a vendored checkout): pip builds the wheel in the job."""
    project = tmp_path / "project"
    _source_tree(project / "vendor" / "mlops-infra")
    document, _ = scaffold(project, "gcp", "vendor/mlops-infra")
    script, requirement = _install_step(document)
    venv = _fresh_venv(tmp_path / "fresh")
    done = _run_install(project, venv, script, requirement)
    assert done.returncode == 0, done.stdout + done.stderr
    _works(project, venv, "gcp")


def test_the_install_step_installs_a_pinned_git_ref_of_this_repository(tmp_path: Path) -> None:
    """--install-from git+...@COMMIT: a clone of this repository, as pip fetches it in the job."""
    clone = tmp_path / "mlops-infra"
    _source_tree(clone)
    git = lambda *args: subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True, check=True)  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "snapshot")
    commit = git("rev-parse", "HEAD").stdout.strip()
    project = tmp_path / "project"
    document, _ = scaffold(project, "azure", f"git+file://localhost{clone}@{commit}")
    script, requirement = _install_step(document)
    assert requirement == f"mlops-infra[azure] @ git+file://localhost{clone}@{commit}"
    venv = _fresh_venv(tmp_path / "fresh")
    done = _run_install(project, venv, script, requirement)
    assert done.returncode == 0, done.stdout + done.stderr
    _works(project, venv, "azure")


def test_an_unknown_source_stops_the_install_step_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_infra import scaffold as scaffold_module
    from mlops_infra.install_source import InstallSource

    unknown = InstallSource("", "unknown: this copy was installed from a folder with no git remote")
    monkeypatch.setattr(scaffold_module, "installed_source", lambda **_: unknown)
    document, text = scaffold(tmp_path, "aws", None)
    script, requirement = _install_step(document)
    assert requirement == "" and "installed from unknown" in text
    done = subprocess.run(["bash", "-e", "-c", script], env={"MLOPS_INFRA_INSTALL": "", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert done.returncode == 1 and "::error title=mlops-infra::no install source" in done.stdout
    assert "MLOPS_INFRA_INSTALL" in done.stdout


def test_readme_lists_exactly_the_actions_the_workflows_use(tmp_path: Path) -> None:
    used = set()
    for cloud in CLOUDS:
        document, _ = scaffold(tmp_path / cloud, cloud, "index")
        used |= {s["uses"] for job in document["jobs"].values() for s in job["steps"] if "uses" in s}
    section = CI_DOC
    documented = set(re.findall(r"^\| `([\w./-]+@v\d+)` \| node24 \|$", section, re.M))
    assert documented == used


class _Dist:
    def __init__(self, direct: str | None) -> None:
        self.direct = direct

    def read_text(self, name: str) -> str | None:
        return self.direct if name == "direct_url.json" else None


@pytest.mark.parametrize(
    ("direct", "requirement"),
    [
        (None, "mlops-infra[gcp]==0.1.0"),
        ('{"url": "https://github.com/acme/mlops-infra", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}',
         "mlops-infra[gcp] @ git+https://github.com/acme/mlops-infra@abc123"),
        ('{"url": "file:///nowhere/at/all", "dir_info": {"editable": true}}', ""),
    ],
)
def test_the_default_source_is_where_this_copy_came_from(
    monkeypatch: pytest.MonkeyPatch, direct: str | None, requirement: str
) -> None:
    from mlops_infra import install_source

    monkeypatch.setattr(install_source.metadata, "distribution", lambda _name: _Dist(direct))
    assert install_source.installed_source(extra="gcp", version="0.1.0").requirement == requirement


def test_a_checkout_with_an_origin_is_pinned_to_its_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_infra import install_source

    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    git("remote", "add", "origin", "git@github.com:acme/mlops-infra.git")
    commit = git("rev-parse", "HEAD").stdout.strip()
    direct = '{"url": "file://%s", "dir_info": {}}' % tmp_path
    monkeypatch.setattr(install_source.metadata, "distribution", lambda _name: _Dist(direct))
    found = install_source.installed_source(extra="aws", version="0.1.0")
    assert found.requirement == f"mlops-infra[aws] @ git+ssh://git@github.com/acme/mlops-infra.git@{commit}"
    assert "push that commit" in found.origin


@pytest.mark.parametrize(
    ("source", "pinned"),
    [
        ("git+https://github.com/acme/mlops-infra@v0.1.0", True),
        ("git+ssh://git@github.com/acme/mlops-infra.git@0123abc", True),
        ("git+https://github.com/acme/mlops-infra", False),
        ("git+ssh://git@github.com/acme/mlops-infra.git", False),
    ],
)
def test_git_sources_must_name_a_ref(tmp_path: Path, source: str, pinned: bool) -> None:
    from mlops_infra.errors import UsageError
    from mlops_infra.install_source import requirement_for

    if pinned:
        assert requirement_for(source, extra="aws", version="0.1.0").requirement == f"mlops-infra[aws] @ {source}"
    else:
        with pytest.raises(UsageError, match="not a pinned git ref"):
            requirement_for(source, extra="aws", version="0.1.0")
