"""Real-cloud smoke test: deploy stacks/dev.yaml, read its outputs, destroy everything.

Opt-in and skipped by default: it needs the Pulumi CLI, credentials for the cloud,
PULUMI_CONFIG_PASSPHRASE, and it creates (then deletes) billable resources.
Run:  MLOPS_INFRA_CLOUD_TESTS=aws python -m pytest -m cloud tests/test_real_cloud.py
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.planning import CLOUDS

ROOT = Path(__file__).resolve().parent.parent
WANTED = {c.strip() for c in os.environ.get("MLOPS_INFRA_CLOUD_TESTS", "").split(",") if c.strip()}
CLI = [sys.executable, "-c", "from mlops_infra.cli import main; main()"]


@pytest.mark.cloud
@pytest.mark.parametrize("cloud", CLOUDS)
def test_deploy_outputs_destroy(cloud: str, tmp_path: Path) -> None:
    if cloud not in WANTED:
        pytest.skip(f"real-cloud test for {cloud} is opt-in: set MLOPS_INFRA_CLOUD_TESTS={cloud}")
    (tmp_path / "stacks").mkdir()
    spec = yaml.safe_load((ROOT / "stacks" / "dev.yaml").read_text())
    spec["project"] = f"smoke-{secrets.token_hex(3)}"  # a fresh name: no clash with real stacks
    (tmp_path / "stacks" / "dev.yaml").write_text(yaml.safe_dump(spec))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--cloud", cloud], cwd=tmp_path, capture_output=True, text=True)

    try:
        up = run("up", "--yes", "--json")
        assert up.returncode == 0, up.stderr
        assert json.loads(up.stdout)["ok"] is True
        outputs = json.loads(run("outputs", "--json").stdout)["outputs"]
        assert outputs["storage"]["artifacts_uri"] and outputs["governance"]["key_id"]
    finally:
        down = run("destroy", "--delete-data", "--confirm", f"dev-{cloud}", "--json")
        shutil.rmtree(tmp_path / ".mlops-infra", ignore_errors=True)
    assert down.returncode == 0, down.stderr
