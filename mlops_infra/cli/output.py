"""Rendering results and errors: text for people, JSON (and only JSON) on stdout for machines."""

from __future__ import annotations

import json
import sys
from itertools import groupby
from typing import Any

import click


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def error_text(message: str, hint: str | None = None) -> str:
    text = f"error: {message}"
    if hint:
        text += f"\n  hint: {hint}"
    return text


def echo_err(text: str) -> None:
    click.echo(text, err=True)


def quiet() -> bool:
    """--quiet: warnings are not printed (they stay in every JSON document)."""
    context = click.get_current_context(silent=True)
    return bool(context and context.meta.get("quiet"))


def render_problems(problems: list[Any], *, stream_err: bool = True) -> None:
    """Warnings first, counted and grouped by the cloud they are about; errors last.

    The errors are what must be fixed, so they end the output, next to the summary line,
    however many warnings come before them; --quiet leaves the warnings out.
    """
    warnings = [p for p in problems if p.severity != "error"]
    errors = [p for p in problems if p.severity == "error"]
    if warnings and not quiet():
        click.echo(f"{_count(len(warnings), 'warning')} (--quiet hides them):", err=stream_err)
        ordered = sorted(warnings, key=lambda p: (p.cloud or "", _place(p)))
        groups = [(cloud, list(members)) for cloud, members in groupby(ordered, key=lambda p: p.cloud)]
        for cloud, members in groups:
            if len(groups) > 1:
                about = f"on {cloud}" if cloud else "on every cloud"
                click.echo(f"{about}, {_count(len(members), 'warning')}:", err=stream_err)
            for problem in members:
                click.echo(_indent(problem.render(), "  " if len(groups) > 1 else ""), err=stream_err)
        if errors:
            click.echo(f"{_count(len(errors), 'error')}:", err=stream_err)
    for problem in errors:
        click.echo(problem.render(), err=stream_err)


def problems_summary(problems: int, warnings: int, where: str) -> str:
    """The last line after a failed check: how many errors, and the warnings listed (or hidden) above."""
    text = f"{_count(problems, 'problem')} in {where}"
    if warnings:
        text += f" ({_count(warnings, 'warning')} {'hidden by --quiet' if quiet() else 'listed above'})"
    return text


def _place(problem: Any) -> tuple[str, int, str]:
    return problem.file, problem.line or 0, problem.dotted_path


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
