"""Live progress from the engine's events: resources done / total, per-stage counts, failures at once."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Callable, TextIO

import click

VERBS = {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced", "same": "unchanged",
         "refresh": "refreshed", "read": "read", "create-replacement": "created", "delete-replaced": "deleted"}


class Progress:
    """Writes to stderr, so stdout stays the command's result (text or JSON)."""

    def __init__(self, *, total: int | Callable[[], int | None] | None, stream: TextIO | None = None) -> None:
        # A callable total is computed at the first event, after the engine's own checks passed.
        self._total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.done = 0
        self.by_stage: Counter[str] = Counter()

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            if self.live:
                self._line(f"  {self._count()} {event.op} {event.name} ...", transient=True)
            return
        if event.kind == "diagnostic":
            self._line(f"  {event.severity}: {event.name + ': ' if event.name else ''}{event.message}")
            return
        self.done += 1
        self.by_stage[event.stage or "other"] += 1
        if event.kind == "failed":
            self._line(f"  {self._count()} FAILED {event.op} {event.name} ({event.type})")
        elif event.op != "same" or not self.live:
            verb = VERBS.get(event.op, event.op)
            changed = f" [{', '.join(event.diffs)}]" if event.diffs else ""
            self._line(f"  {self._count()} {verb} {event.name}{changed}", transient=self.live and event.op == "same")

    def finish(self) -> None:
        if self.live:
            click.echo("\r\033[K", nl=False, file=self.stream)
        if self.by_stage:
            counts = ", ".join(f"{stage} {n}" for stage, n in sorted(self.by_stage.items()))
            click.echo(f"  by stage: {counts}", file=self.stream)

    @property
    def total(self) -> int | None:
        if callable(self._total):
            self._total = self._total()
        return self._total

    def _count(self) -> str:
        return f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"

    def _line(self, text: str, *, transient: bool = False) -> None:
        if self.live:
            click.echo("\r\033[K" + text, nl=not transient, file=self.stream)
        else:
            click.echo(text, file=self.stream)
