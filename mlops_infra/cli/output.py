"""Rendering results and errors: text for people, JSON (and only JSON) on stdout for machines."""

from __future__ import annotations

import errno
import json
import os
import sys
from itertools import groupby
from typing import Any

import click

# Write errors that say where the output goes is gone or full, not that mlops-infra is wrong.
_WRITE_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


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


def write_failure(exc: BaseException) -> tuple[str, str] | None:
    """(message, hint) when `exc` is a failed write (a closed pipe, a full disk); else None.

    Output written after that is pointless, and the interpreter's last flush of stdout would
    print a traceback at exit: stdout is pointed at /dev/null first.
    """
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRNOS:
        return None
    _silence_stdout()
    if exc.errno == errno.EPIPE:
        return "the output was closed before everything was written (broken pipe)", (
            "read the whole output, or redirect it to a file"
        )
    return f"cannot write the output: {exc.strerror}", "free space on the disk it goes to, or send it elsewhere"


def _silence_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError:
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (output captured in tests)
        pass
