"""As a new user: the installed `mlops-infra` scaffolds a project that plans on every cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.planning import CLOUDS

SCRIPT = Path(sys.executable).with_name("mlops-infra")


@pytest.mark.skipif(not SCRIPT.exists(), reason="mlops-infra is not installed in this environment")
def test_init_then_plan_on_every_cloud(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = lambda *args, cwd: subprocess.run(  # noqa: E731
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )
    created = run("init", "demo", "--cloud", "aws", "--project", "demo", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "demo"
    assert (project / "stacks" / "dev.yaml").exists() and (project / "Pulumi.yaml").exists()
    for cloud in CLOUDS:
        planned = run("plan", "--cloud", cloud, "--json", cwd=project)
        assert planned.returncode == 0, planned.stderr
        document = json.loads(planned.stdout)
        assert document["cloud"] == cloud and document["project"] == "demo"
        assert document["summary"]["by_stage"]["storage"] > 0
