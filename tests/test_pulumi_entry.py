"""`pulumi up -s dev` runs mlops_infra.pulumi_main: the same program as `mlops-infra plan`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mlops_infra.backends import get_backend
from mlops_infra.plan import run_offline
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent


class EntryProgram:
    """Runs the Pulumi entry module the way the Python language host would."""

    def __init__(self, cloud: str, project_dir: Path, config: dict[str, str] | None = None) -> None:
        self.backend = get_backend(cloud)
        self.exports: dict[str, Any] = {}
        self.project_dir = project_dir
        self.config = config or {}

    def __call__(self) -> None:
        import pulumi

        from mlops_infra.pulumi_main import run

        pulumi.runtime.set_all_config({f"mlops-infra:{k}": v for k, v in self.config.items()})
        run(project_dir=self.project_dir)


def registered_types(run: Any) -> set[str]:
    return {r.type for r in run.registrations}


def test_repository_pulumi_yaml_points_at_the_entry_module() -> None:
    text = (ROOT / "Pulumi.yaml").read_text()
    assert "main: mlops_infra/pulumi_main/" in text
    assert (ROOT / "mlops_infra" / "pulumi_main" / "__main__.py").exists()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_entry_plans_the_stack_named_like_the_pulumi_stack(cloud: str) -> None:
    from mlops_infra import api
    from mlops_infra.plan import plan_document
    from mlops_infra.spec.validate import check_file

    run = run_offline(EntryProgram(cloud, ROOT, {"cloud": cloud}), project="churn", stack="dev")
    expected = plan_document(check_file(ROOT / "stacks" / "dev.yaml", clouds=[cloud]).spec, cloud, stack="dev")
    assert sorted(r.name for r in run.registrations) == [r["name"] for r in expected["resources"]]
    assert f"mlops-infra:{cloud}:Storage" in registered_types(run)
    assert api  # the CLI path and the entry path share build_program


def test_entry_uses_the_spec_default_cloud(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    run = run_offline(EntryProgram("aws", tmp_path), project="churn", stack="prod")
    assert "mlops-infra:aws:Governance" in registered_types(run)


def test_entry_refuses_an_invalid_spec_before_registering_anything(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text("apiVersion: mlops-infra/v1\nproject: Bad\nenvironment: dev\n")
    import pulumi

    with pytest.raises(pulumi.RunError, match="problem"):
        run_offline(EntryProgram("aws", tmp_path), project="churn", stack="dev")
