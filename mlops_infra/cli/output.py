"""Rendering results and errors: text for people, JSON (and only JSON) on stdout for machines."""

from __future__ import annotations

import errno
import json
import os
import sys
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


def render_problems(problems: list[Any], *, stream_err: bool = True) -> None:
    for problem in problems:
        click.echo(problem.render(), err=stream_err)


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
