"""What every stage declares: its name, what it needs, when the spec uses it, its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from mlops_infra.spec.problems import Path, Problem

if TYPE_CHECKING:
    from mlops_infra.spec.models import SpecBase

_MISSING = object()


@dataclass(frozen=True)
class Stage:
    name: str  # "storage": the module name, the plan's stage label
    title: str  # "Storage": the component type token's last part
    requires: tuple[str, ...]  # stages whose outputs this one consumes
    # Spec paths that ask for this stage; empty means the spec does not use it.
    used_at: Callable[["SpecBase"], list[Path]]
    checks: tuple[Callable[["SpecBase"], list[Problem]], ...] = field(default=())
    always: bool = False  # built for every spec (governance, storage)
    # Everything it builds exists once per stack: with a split spec it is built in the shared
    # stack only, and model stacks get its outputs through the handover (see mlops_infra/wire.py).
    stack_wide: bool = False

    def used(self, spec: "SpecBase") -> bool:
        return self.always or bool(self.used_at(spec))


def finding(
    path: Path, message: str, *, hint: str | None = None, value: Any = _MISSING, severity: str = "error"
) -> Problem:
    """A problem whose file and line the validator fills in from the loaded document."""
    return Problem(
        file="",
        line=None,
        path=path,
        message=message,
        hint=hint,
        value=None if value is _MISSING else value,
        has_value=value is not _MISSING,
        severity=severity,
    )


def model_paths(spec: "SpecBase", part: str) -> list[Path]:
    return [("models", i, part) for i, m in enumerate(spec.models) if getattr(m, part) is not None]
