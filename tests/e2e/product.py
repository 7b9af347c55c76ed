"""The product's own CLI against the e2e cluster, as a user runs it, plus the harness-only changes.

`mlops-infra up/preview/destroy` run in-process (click's runner) with the real Automation API,
Pulumi CLI and pulumi-kubernetes provider. The harness changes two things, never the product:
- every Kubernetes object gets `pulumi.com/skipAwait` (no kubelet runs, nothing becomes ready);
- the policy pack is left out of preview/up: Pulumi runs Python policy packs through the
  `pulumi-language-python` plugin, which cannot be built here (the Go module proxy answers 403
  for github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 at every version tried),
  so the same rules run offline with `mlops-infra check` instead.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mlops_infra.cli import main

from tests.e2e.engine import Engine, with_skip_await
from tests.planning import ROOT

SPEC = ROOT / "stacks" / "dev.yaml"


@dataclass(frozen=True)
class Project:
    """A user's project folder with stacks/dev.yaml aimed at the e2e cluster."""

    path: Path
    prefix: str  # clouds.kubernetes.namespace_prefix: unique per run
    state_url: str

    @property
    def namespace(self) -> str:
        return f"{self.prefix}-churn-dev"

    def run(self, *args: str) -> tuple[int, Any, str]:
        """mlops-infra ARGS --json in the project: (exit code, the JSON document, stderr)."""
        cwd = os.getcwd()
        os.chdir(self.path)
        try:
            result = CliRunner().invoke(
                main,
                [*args, "--cloud", "kubernetes", *([] if args[0] == "plan" else ["--backend", self.state_url]), "--json"],
            )
        finally:
            os.chdir(cwd)
        document = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        return result.exit_code, document, result.stderr


def spec_for(context: str | None, prefix: str, **changes: Any) -> str:
    """The bundled dev example, on this cluster's context and a fresh namespace prefix."""
    data = yaml.safe_load(SPEC.read_text())
    settings = data["clouds"]["kubernetes"]
    settings["context"] = context or "e2e"
    settings["namespace_prefix"] = prefix
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def make_project(tmp: Path, context: str | None, **changes: Any) -> Project:
    prefix = f"e2e{secrets.token_hex(3)}"
    (tmp / "stacks").mkdir(parents=True)
    (tmp / "stacks" / "dev.yaml").write_text(spec_for(context, prefix, **changes))
    return Project(path=tmp, prefix=prefix, state_url=f"file://{tmp / 'state'}")


def harness(monkeypatch: pytest.MonkeyPatch, engine: Engine, kubeconfig: Path) -> None:
    """The process environment of a user with this cluster in KUBECONFIG, plus the harness's changes."""
    import mlops_infra.automation as automation
    import mlops_infra.program as program

    engine.prepare()
    for key, value in engine.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PULUMI_HOME", str(engine.pulumi_home))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    run = program.Program.__call__
    monkeypatch.setattr(program.Program, "__call__", lambda self: with_skip_await(lambda: run(self))())
    monkeypatch.setattr(automation.AutomationEngine, "_policy_packs", lambda self, target, stack: [])


def state(project: Project, pulumi_stack: str) -> list[dict[str, Any]]:
    """The stack's resources from its state file (the file backend's layout), without the engine."""
    root = Path(project.state_url.removeprefix("file://")) / ".pulumi" / "stacks" / "churn"
    found = json.loads((root / f"{pulumi_stack}.json").read_text())
    return list(found["checkpoint"]["latest"].get("resources") or [])


def declared(resources: list[dict[str, Any]]) -> set[tuple[str, str, str | None]]:
    """(name, type, parent name) of every resource but the stack itself and providers."""
    by_urn = {r["urn"]: r for r in resources}
    found = set()
    for r in resources:
        if r["type"] == "pulumi:pulumi:Stack" or r["type"].startswith("pulumi:providers:"):
            continue
        parent = by_urn.get(r.get("parent") or "")
        parent_name = None if parent is None or parent["type"] == "pulumi:pulumi:Stack" else _name(parent["urn"])
        found.add((_name(r["urn"]), r["type"], parent_name))
    return found


def planned(document: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(r["name"], r["type"], r.get("parent")) for r in document["resources"]
            if not r["type"].startswith("pulumi:providers:")}  # fmt: skip


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def api_path(kind: str, namespace: str, name: str) -> str:
    """Where an object of the platform lives in the API."""
    core = {"configmaps", "serviceaccounts", "persistentvolumeclaims", "services", "resourcequotas", "limitranges"}
    groups = {
        "deployments": "apis/apps/v1", "jobs": "apis/batch/v1", "cronjobs": "apis/batch/v1",
        "roles": "apis/rbac.authorization.k8s.io/v1", "rolebindings": "apis/rbac.authorization.k8s.io/v1",
        "networkpolicies": "apis/networking.k8s.io/v1", "inferenceservices": "apis/serving.kserve.io/v1beta1",
        "podmonitors": "apis/monitoring.coreos.com/v1", "prometheusrules": "apis/monitoring.coreos.com/v1",
        "alertmanagerconfigs": "apis/monitoring.coreos.com/v1alpha1",
    }  # fmt: skip
    base = "api/v1" if kind in core else groups[kind]
    return f"/{base}/namespaces/{namespace}/{kind}/{name}"


KINDS = {
    "ConfigMap": "configmaps", "ServiceAccount": "serviceaccounts", "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services", "ResourceQuota": "resourcequotas", "LimitRange": "limitranges",
    "Deployment": "deployments", "Job": "jobs", "CronJob": "cronjobs", "Role": "roles", "RoleBinding": "rolebindings",
    "NetworkPolicy": "networkpolicies", "InferenceService": "inferenceservices", "PodMonitor": "podmonitors",
    "PrometheusRule": "prometheusrules", "AlertmanagerConfig": "alertmanagerconfigs",
}  # fmt: skip


def object_paths(document: dict[str, Any]) -> dict[str, str]:
    """Logical name -> API path of every namespaced object the offline plan declares."""
    paths = {}
    for r in document["resources"]:
        kind = r["type"].rsplit(":", 1)[-1]
        if kind in KINDS:
            meta = r["inputs"]["metadata"]
            paths[r["name"]] = api_path(KINDS[kind], meta["namespace"], meta["name"])
    return paths


