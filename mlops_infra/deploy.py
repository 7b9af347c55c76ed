"""The deploy layer's interface: what the engine commands ask of an engine, and what they get back.

The CLI drives an `Engine`; the real one is the thin Automation API adapter in
mlops_infra/automation.py, tests drive a recording fake. Everything here is
plain data, so the command layer never touches Pulumi directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from mlops_infra.errors import ToolingMissing
from mlops_infra.layout import WHOLE, Part

OPERATIONS = ("preview", "up", "destroy", "refresh")
RESULT_FORMAT = "mlops-infra/result/v1"
STATE_DIR = ".mlops-infra/state"
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


@dataclass(frozen=True)
class Target:
    """One Pulumi stack: a spec stack on one cloud, with its state backend."""

    spec: Any
    cloud: str
    stack: str  # the spec's stack name (dev, prod)
    project_dir: Path
    backend_url: str | None = None
    part: Part = WHOLE  # a split spec has several Pulumi stacks (layout.py)

    @property
    def shared_stack(self) -> str:
        # One Pulumi stack per (spec stack, cloud): the same spec on two clouds never shares state.
        # A split spec's shared stack keeps that name; its model stacks add --<group>.
        return f"{self.stack}-{self.cloud}"

    @property
    def pulumi_stack(self) -> str:
        return self.part.pulumi_stack(self.shared_stack)

    @property
    def state_url(self) -> str:
        return self.backend_url or f"file://{(self.project_dir / STATE_DIR).resolve()}"

    @property
    def uses_pulumi_cloud(self) -> bool:
        return self.state_url.startswith(("https://", "http://"))


@dataclass(frozen=True)
class StepEvent:
    """One thing the engine reports while it works, in neutral words."""

    kind: str  # "start" (a resource step begins), "done", "failed", "diagnostic"
    name: str = ""
    type: str = ""
    stage: str | None = None
    op: str = ""  # create, update, delete, replace, same, refresh, read ...
    diffs: tuple[str, ...] = ()
    message: str = ""
    severity: str = ""


@dataclass
class DeployResult:
    operation: str
    target: Target
    steps: list[StepEvent] = field(default_factory=list)
    diagnostics: list[StepEvent] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)  # op -> count, from the engine
    kept: list[dict[str, str]] = field(default_factory=list)  # destroy: protected resources left in place
    outputs: dict[str, Any] = field(default_factory=dict)
    failed: bool = False
    # destroy --dry-run: nothing ran; these would be deleted (`kept` holds what would stay).
    dry_run: bool = False
    would_delete: list[dict[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(op not in ("same", "read") and count for op, count in self.summary.items())

    def to_dict(self) -> dict[str, Any]:
        target = self.target
        return {
            "format": RESULT_FORMAT,
            "operation": self.operation,
            "project": target.spec.project,
            "stack": target.stack,
            "cloud": target.cloud,
            "pulumi_stack": target.pulumi_stack,
            **({"part": target.part.name} if target.part.name else {}),
            "ok": not self.failed,
            "resources": [
                {
                    "name": s.name,
                    "type": s.type,
                    "stage": s.stage,
                    "op": s.op,
                    "status": s.kind,
                    "changed_properties": list(s.diffs),
                }
                for s in self.steps
            ],
            "diagnostics": [{"severity": d.severity, "resource": d.name or None, "message": d.message} for d in self.diagnostics],
            "kept": self.kept,
            **({"dry_run": True, "would_delete": self.would_delete} if self.dry_run else {}),
            "outputs": self.outputs,
            "summary": dict(sorted(self.summary.items())),
        }


OnEvent = Callable[[StepEvent], None]


class Engine(Protocol):
    def preflight(self, target: Target, *, credentials: bool = True) -> None:
        """Raise ToolingMissing when the CLI, the passphrase or (if asked) credentials are missing."""

    def run(self, operation: str, target: Target, *, on_event: OnEvent, delete_data: bool = False) -> DeployResult:
        """destroy with delete_data: an `up` in teardown mode (nothing protected, buckets and
        repositories force-deletable), then a destroy of everything."""

    def inventory(self, target: Target) -> list[dict[str, Any]]:
        """The stack's resources in its state: name, type, protect, and what each depends on."""

    def outputs(self, target: Target) -> dict[str, Any]: ...


def destroy_split(resources: list[dict[str, Any]], *, delete_data: bool) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(would delete, would keep) for a destroy of a stack whose state holds `resources`.

    A default destroy excludes protected resources and everything they need to stay managed
    (their parents, providers and dependencies), as Pulumi's --exclude-protected does;
    --delete-data deletes everything.
    """
    by_urn = {r["urn"]: r for r in resources}
    kept: set[str] = set()
    if not delete_data:
        pending = [r["urn"] for r in resources if r.get("protect")]
        while pending:
            urn = pending.pop()
            if urn in kept or urn not in by_urn:
                continue
            kept.add(urn)
            pending += by_urn[urn].get("needs", [])
    listed = [r for r in resources if r.get("custom", True) and not r["type"].startswith("pulumi:")]

    def entry(r: dict[str, Any]) -> dict[str, str]:
        return {"name": r["urn"].rsplit("::", 1)[-1], "type": r["type"]}

    return [entry(r) for r in listed if r["urn"] not in kept], [entry(r) for r in listed if r["urn"] in kept]


# --- prerequisites, checked before any engine work (pure: environment and files only) -----------


def require_passphrase(target: Target, env: Mapping[str, str]) -> None:
    """Self-managed backends encrypt secrets with a passphrase; without one Pulumi stops halfway."""
    if target.uses_pulumi_cloud or any(env.get(name) for name in PASSPHRASE_VARS):
        return
    raise ToolingMissing(
        "no passphrase for the stack's secrets: the local/self-managed state backend encrypts secrets with one",
        hint="export PULUMI_CONFIG_PASSPHRASE='...' (or PULUMI_CONFIG_PASSPHRASE_FILE=path); keep it in your "
        "secret store: it is needed for every later run",
    )


def require_credentials(target: Target, env: Mapping[str, str], home: Path) -> None:
    from mlops_infra.backends import get_backend

    backend = get_backend(target.cloud)
    if env.get("MLOPS_INFRA_AMBIENT_CREDENTIALS") == "1" or backend.has_credentials(env, home):
        return
    raise ToolingMissing(
        f"no {backend.display_name} credentials found for `{target.cloud}`",
        hint=backend.login_hint
        + "; on a machine with an instance role or managed identity, set MLOPS_INFRA_AMBIENT_CREDENTIALS=1",
    )


def current_env() -> dict[str, str]:
    return dict(os.environ)
