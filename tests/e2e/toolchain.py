"""Where the end-to-end toolchain lives, and whether it is built (toolchain/build.sh decides both)."""

from __future__ import annotations

import importlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "toolchain" / "build.sh"
REQUIRED = "MLOPS_INFRA_E2E_REQUIRED"  # toolchain/ci.sh: what would skip the e2e tests fails them


def required() -> bool:
    return os.environ.get(REQUIRED) == "1"


def pins() -> dict[str, str]:
    """toolchain/versions.env as a mapping (KEY=value lines; comments and blanks skipped)."""
    found: dict[str, str] = {}
    for line in (ROOT / "toolchain" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


@dataclass(frozen=True)
class Toolchain:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def crds(self) -> list[Path]:
        return sorted((self.root / "crds").glob("*.yaml"))


def locate() -> tuple[Toolchain, str | None]:
    """The toolchain, and why it cannot be used (None when it is fully built)."""
    where = subprocess.run(["bash", str(BUILD), "--print-dir"], capture_output=True, text=True, check=True)
    toolchain = Toolchain(Path(where.stdout.strip()))
    check = subprocess.run(["bash", str(BUILD), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        return toolchain, check.stderr.strip()
    return toolchain, None


def kubernetes_sdk() -> ModuleType:
    """pulumi_kubernetes, or a module-level skip naming the extra (a failure under toolchain/ci.sh)."""
    import pytest

    try:
        return importlib.import_module("pulumi_kubernetes")
    except ImportError:
        if required():
            raise
        pytest.skip("the Kubernetes SDK is the `kubernetes` extra: pip install '.[kubernetes]'", allow_module_level=True)
