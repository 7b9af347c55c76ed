"""A recording fake of the deploy layer's Engine, shared by the engine-command tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mlops_infra.deploy import DeployResult, StepEvent, Target


@dataclass
class FakeEngine:
    """Records what the commands ask; replays scripted events. Never pretends to be the cloud."""

    events: list[StepEvent] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)
    kept: list[dict[str, str]] = field(default_factory=list)
    fail: Exception | None = None
    missing: Exception | None = None  # raised by preflight: a missing CLI, passphrase or login
    state: list[dict[str, Any]] = field(default_factory=list)  # inventory(): the stack's state
    calls: list[tuple[str, Target, bool]] = field(default_factory=list)
    preflights: list[tuple[str, bool]] = field(default_factory=list)  # (pulumi stack, credentials checked)

    def preflight(self, target: Target, *, credentials: bool = True) -> None:
        self.preflights.append((target.pulumi_stack, credentials))
        if self.missing is not None:
            raise self.missing

    def inventory(self, target: Target) -> list[dict[str, Any]]:
        return list(self.state)
    policy_files: list[str] | None = None  # what the command handed make_engine (--policy)

    def configured(self, policy_files: list[str] | None = None) -> "FakeEngine":
        self.policy_files = policy_files
        return self

    def run(self, operation: str, target: Target, *, on_event: Any, delete_data: bool = False) -> DeployResult:
        self.calls.append((operation, target, delete_data))
        if self.fail is not None:
            raise self.fail
        result = DeployResult(operation=operation, target=target, summary=dict(self.summary))
        for event in self.events:
            on_event(event)
            if event.kind in ("done", "failed"):
                result.steps.append(event)
        result.kept = list(self.kept) if operation == "destroy" else []
        return result

    def outputs(self, target: Target) -> dict[str, Any]:
        self.calls.append(("outputs", target, False))
        return {"storage": {"artifacts_uri": "s3://x"}}


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    from mlops_infra.cli import engine_commands

    engine = FakeEngine()
    monkeypatch.setattr(engine_commands, "make_engine", engine.configured)
    return engine


