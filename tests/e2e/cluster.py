"""A throwaway Kubernetes control plane on loopback, or the user's own cluster, for the e2e tests.

`LocalCluster` runs etcd, kube-apiserver and kube-controller-manager from the toolchain
(toolchain/build.sh) on free loopback ports, the way controller-runtime's envtest runs an API
server: a CA and a serving certificate made with openssl, a generated service-account key pair,
static bearer tokens (an admin in system:masters, and the controller manager's own user under
RBAC), a kubeconfig, then the CRDs. No kubelet runs, so pods never start.

`ExternalCluster` is a real cluster (kind, k3d, a cloud's) named by the user's kubeconfig; it is
read through kubectl, and must already have the CRDs (KServe, Prometheus Operator) installed.
"""

from __future__ import annotations

import ctypes
import json
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

import yaml

T = TypeVar("T")

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
START_TIMEOUT = 180.0  # a cold API server on a busy 2-core machine takes a while
STOP_TIMEOUT = 20.0


class ClusterError(RuntimeError):
    """The control plane did not start, or an API call failed."""


class Api(Protocol):
    def get(self, path: str) -> dict[str, Any] | None: ...


def parse(text: str) -> dict[str, Any]:
    """A JSON object, or plain text (health endpoints answer `ok`) as {"message": text}."""
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {"message": text}
    return found if isinstance(found, dict) else {"message": text}


@dataclass(frozen=True)
class RestApi:
    """The few API calls the harness needs, over HTTPS with a bearer token."""

    server: str
    token: str
    ca_file: Path

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status, parse(response.read().decode(errors="replace"))
        except urllib.error.HTTPError as error:
            return error.code, parse(error.read().decode(errors="replace"))

    def get(self, path: str) -> dict[str, Any] | None:
        status, body = self.call("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ClusterError(f"GET {path}: {status} {body.get('message', body)}")
        return body

    def create(self, path: str, obj: dict[str, Any]) -> None:
        status, body = self.call("POST", path, obj)
        if status not in (200, 201, 409):  # 409: it already exists
            raise ClusterError(f"POST {path}: {status} {body.get('message', body)}")


@dataclass(frozen=True)
class KubectlApi:
    """Reads through the user's kubeconfig with kubectl, whatever authentication it uses."""

    kubeconfig: Path
    context: str | None

    def get(self, path: str) -> dict[str, Any] | None:
        command = ["kubectl", "--kubeconfig", str(self.kubeconfig), "get", "--raw", path]
        if self.context:
            command[3:3] = ["--context", self.context]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise ClusterError(f"kubectl get --raw {path}: {done.stderr.strip()}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result


@dataclass(frozen=True)
class ExternalCluster:
    kubeconfig: Path
    context: str | None

    @property
    def api(self) -> Api:
        return KubectlApi(self.kubeconfig, self.context)


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, log: Path | None = None) -> T:
    """Polls `probe` until it returns something; a timeout names what never came (and its log)."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, ClusterError) as error:  # not listening yet, or not ready
            last_error, value = str(error), None
        if value is not None:
            return value
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log and log.exists() else ""
    raise ClusterError(f"{what} not ready after {timeout:.0f}s ({last_error})\n{tail}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # If pytest is killed, the kernel stops the control plane too: nothing is left running.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)}: {done.stderr.strip()}")


def make_certificates(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 signed by it, and a service-account key pair."""
    pki.mkdir(parents=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=mlops-infra-e2e-ca", cwd=pki)  # fmt: skip
    openssl("req", *ec, "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver", cwd=pki)
    (pki / "serving.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "apiserver.crt", "-days", "2", "-extfile", "serving.ext", cwd=pki)  # fmt: skip
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key", cwd=pki)
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(*, server: str, ca_file: Path, user: str, token: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
            "current-context": "e2e",
        }
    )


@dataclass
class LocalCluster:
    bin: Path
    workdir: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    api_port: int = 0
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    controller_token: str = field(default_factory=lambda: secrets.token_hex(16))

    context: str | None = None  # the kubeconfig's current context is the cluster

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def api(self) -> RestApi:
        return RestApi(self.server, self.admin_token, self.pki / "ca.crt")

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def spawn(self, name: str, *args: str) -> None:
        with self.log(name).open("wb") as log:
            process = subprocess.Popen(
                [str(self.bin / name), *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, preexec_fn=_die_with_parent,
            )  # fmt: skip
        self.processes.append((name, process))

    def alive(self, name: str) -> None:
        for each, process in self.processes:
            if each == name and process.poll() is not None:
                raise ClusterError(f"{name} exited with {process.returncode}: see {self.log(name)}")

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        make_certificates(self.pki)
        try:
            self.start_etcd_and_apiserver()
            self.start_controller_manager()
        except BaseException:
            self.stop()
            raise

    def start_etcd_and_apiserver(self) -> None:
        client, peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client}"
        self.spawn(
            "etcd", "--name=e2e", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=e2e=http://127.0.0.1:{peer}", "--unsafe-no-fsync", "--log-level=warn",
        )  # fmt: skip

        def etcd_healthy() -> bool | None:
            self.alive("etcd")
            with urllib.request.urlopen(f"{etcd_url}/health", timeout=5) as response:
                return True if json.loads(response.read()).get("health") == "true" else None

        wait_for("etcd", etcd_healthy, timeout=START_TIMEOUT, log=self.log("etcd"))

        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},e2e-admin,e2e-admin,"system:masters"\n'
            f"{self.controller_token},system:kube-controller-manager,system:kube-controller-manager\n"
        )
        tokens.chmod(0o600)
        self.api_port = free_port()
        self.spawn(
            "kube-apiserver", f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--tls-cert-file={self.pki / 'apiserver.crt'}", f"--tls-private-key-file={self.pki / 'apiserver.key'}",
            f"--cert-dir={self.workdir / 'certs'}",
            f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/24",
            # Loopback is not a valid Endpoints address: keep the reconciler from logging that forever.
            "--endpoint-reconciler-type=none", "--profiling=false",
        )  # fmt: skip

        def apiserver_ready() -> bool | None:
            self.alive("kube-apiserver")
            status, _ = self.api.call("GET", "/readyz")
            return True if status == 200 else None

        wait_for("kube-apiserver", apiserver_ready, timeout=START_TIMEOUT, log=self.log("kube-apiserver"))
        self.kubeconfig.write_text(
            kubeconfig(server=self.server, ca_file=self.pki / "ca.crt", user="e2e-admin", token=self.admin_token)
        )
        self.kubeconfig.chmod(0o600)

    def start_controller_manager(self) -> None:
        config = self.workdir / "controller-manager.kubeconfig"
        config.write_text(
            kubeconfig(
                server=self.server, ca_file=self.pki / "ca.crt",
                user="system:kube-controller-manager", token=self.controller_token,
            )  # fmt: skip
        )
        config.chmod(0o600)
        self.spawn(
            "kube-controller-manager", f"--kubeconfig={config}",
            "--secure-port=0", "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki / 'sa.key'}", f"--root-ca-file={self.pki / 'ca.crt'}",
        )  # fmt: skip

        def default_service_account() -> dict[str, Any] | None:
            # The service-account controller creates it: proof that the controllers work.
            self.alive("kube-controller-manager")
            return self.api.get("/api/v1/namespaces/default/serviceaccounts/default")

        wait_for(
            "kube-controller-manager", default_service_account,
            timeout=START_TIMEOUT, log=self.log("kube-controller-manager"),
        )  # fmt: skip

    def install_crds(self, files: list[Path]) -> list[str]:
        names = []
        for path in files:
            for crd in yaml.load_all(path.read_text(), Loader=CrdLoader):
                if crd:
                    self.api.create(CRD_PATH, crd)
                    names.append(crd["metadata"]["name"])
        for name in names:
            wait_for(f"CRD {name}", lambda: established(self.api.get(f"{CRD_PATH}/{name}")), timeout=60)
        return names

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()


class CrdLoader(yaml.SafeLoader):
    """PyYAML reads a bare `=` as YAML 1.1's value tag, which it cannot build; CRDs mean the string."""


CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def established(crd: dict[str, Any] | None) -> bool | None:
    """True once the API server serves the CRD's resource."""
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    ok = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
    return True if ok else None
