"""Start-up stays light: the CLI loads no cloud SDK; planning one cloud loads only its SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_infra.backends import get_backend, registry
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
SDKS = tuple(sorted(backend.sdk_package for backend in registry().values()))


def loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_cli_import_and_help_load_no_cloud_sdk() -> None:
    modules = loaded_after("import mlops_infra.cli")
    assert not {m for m in modules if m.split(".")[0] in SDKS}
    assert "pulumi" not in modules, "the Pulumi SDK itself is not needed for --help"
    assert "pydantic" not in modules
    help_run = subprocess.run(
        [sys.executable, "-c", "from mlops_infra.cli import main; main()", "--help"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert help_run.returncode == 0 and "plan" in help_run.stdout


def test_validate_loads_no_cloud_sdk() -> None:
    modules = loaded_after(
        "from mlops_infra.spec.validate import check_file; check_file('stacks/prod.yaml')"
    )
    assert not {m for m in modules if m.split(".")[0] in SDKS}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_planning_one_cloud_imports_only_its_sdk(cloud: str) -> None:
    modules = loaded_after(
        "from mlops_infra import api\n"
        f"api.plan(source=api.resolve_source(stack='dev', spec=None), cloud='{cloud}')"
    )
    roots = {m.split(".")[0] for m in modules}
    mine = get_backend(cloud).sdk_package
    assert mine in roots
    assert not (roots & set(SDKS)) - {mine}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_missing_cloud_sdk_is_exit_3_naming_its_extra(cloud: str, tmp_path: Path) -> None:
    """As after `pip install 'mlops-infra[aws]'`: the other clouds' SDKs cannot be imported."""

    sdk = get_backend(cloud).sdk_package
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {sdk!r} or name.startswith({sdk!r} + '.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    run = subprocess.run(
        [sys.executable, "-c", "from mlops_infra.cli import main; main()", "plan", "--stack", "dev", "--cloud", cloud],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    assert run.returncode == 3, run.stderr
    assert f"pip install 'mlops-infra[{cloud}]'" in run.stderr and "Traceback" not in run.stderr
