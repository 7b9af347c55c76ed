"""Rendering results and errors: text for people, JSON (and only JSON) on stdout for machines."""

from __future__ import annotations

import json
import sys
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


def render_problems(problems: list[Any], *, stream_err: bool = True) -> None:
    for problem in problems:
        click.echo(problem.render(), err=stream_err)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
