"""Fixtures of the e2e tests: the toolchain, a cluster, and the real Pulumi engine.

By default the cluster is a local control plane from the toolchain (toolchain/build.sh); the
tests skip, saying how to build it, when it is not built. To run the same tests against a real
cluster instead, point MLOPS_INFRA_E2E_KUBECONFIG at its kubeconfig (and optionally
MLOPS_INFRA_E2E_CONTEXT at a context); see toolchain/README.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import CRD_PATH, ExternalCluster, LocalCluster
from tests.e2e.engine import Engine
from tests.e2e.toolchain import Toolchain, locate, required

EXTERNAL_KUBECONFIG = "MLOPS_INFRA_E2E_KUBECONFIG"
EXTERNAL_CONTEXT = "MLOPS_INFRA_E2E_CONTEXT"
KEEP = "MLOPS_INFRA_E2E_KEEP"  # 1: keep the work directory (control-plane logs, Pulumi state) to debug
REQUIRED_CRDS = (
    "inferenceservices.serving.kserve.io",
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
)


@pytest.fixture(scope="session")
def toolchain() -> Toolchain | None:
    """The built toolchain; None when a real cluster is used with the user's own `pulumi`."""
    found, why_not = locate()
    if why_not is None:
        return found
    if os.environ.get(EXTERNAL_KUBECONFIG) and shutil.which("pulumi"):
        return None
    reason = f"{why_not}; it needs Go >= 1.26.6 and the Go module proxy"
    if required():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A private directory for the session, outside pytest's basetemp.

    pytest keeps only the newest three basetemp directories of a user, and other pytest runs of
    the same user delete older ones: a long e2e session there would lose etcd's data directory
    and its certificates under a running control plane.
    """
    path = Path(tempfile.mkdtemp(prefix="mlops-infra-e2e-"))
    yield path
    if os.environ.get(KEEP) == "1":
        print(f"\ne2e work directory kept: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(toolchain: Toolchain | None, workdir: Path) -> Iterator[LocalCluster | ExternalCluster]:
    external = os.environ.get(EXTERNAL_KUBECONFIG)
    if external:
        real = ExternalCluster(Path(external).expanduser(), os.environ.get(EXTERNAL_CONTEXT) or None)
        missing = [name for name in REQUIRED_CRDS if real.api.get(f"{CRD_PATH}/{name}") is None]
        if missing:
            pytest.fail(f"the cluster in {external} lacks the CRDs {missing}: install KServe and the Prometheus Operator")
        yield real
        return
    assert toolchain is not None
    local = LocalCluster(bin=toolchain.bin, workdir=workdir / "cluster")
    local.start()
    try:
        local.install_crds(toolchain.crds)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def engine(toolchain: Toolchain | None, workdir: Path) -> Engine:
    return Engine(toolchain=toolchain, workdir=workdir / "pulumi")
