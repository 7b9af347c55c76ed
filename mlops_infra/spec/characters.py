"""No control characters in a spec: every key and string value is checked, wherever it is.

YAML escapes ("\\0", "\\n", "\\x1b") put characters into values that no cloud name, tag, image
or URL may hold and that a template would have to carry through JSON, YAML and SQL. One rule
for the whole document catches them all, located, before the typed validation runs. The one
exception: container environment values may hold tabs and line breaks (a certificate, a
multi-line setting), which every cloud passes to the container as they are.
"""

from __future__ import annotations

import re
from typing import Any

from mlops_infra.spec.problems import Path, Problem

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators (which YAML
# 1.1 readers, PyYAML included, treat as line breaks).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FORBIDDEN_IN_ENVIRONMENT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

_NAMES = {"\x00": "NUL", "\t": "a tab", "\n": "a line break", "\r": "a carriage return", "\x1b": "ESC"}
_HINT = "remove it (YAML escapes such as \\0 or \\n in double quotes produce these characters)"
_NEWLINE_HINT = "remove it: a YAML block scalar (| or >) ends with a line break unless written |- or >-"


def control_character_problems(data: Any, filename: str, line_for: Any) -> list[Problem]:
    """Every key and string value in `data` holding a control character, at its path."""
    problems: list[Problem] = []
    pending: list[tuple[Path, Any]] = [((), data)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                child = (*path, key)
                if isinstance(key, str):
                    found = _FORBIDDEN.search(key)
                    if found:
                        problems.append(_problem(child, "the key", key, found.start(), filename, line_for))
                pending.append((child, value))
        elif isinstance(node, list):
            pending.extend(((*path, i), value) for i, value in enumerate(node))
        elif isinstance(node, str):
            rule = _FORBIDDEN_IN_ENVIRONMENT if _is_environment_value(path) else _FORBIDDEN
            found = rule.search(node)
            if found:
                problems.append(_problem(path, "the value", node, found.start(), filename, line_for))
    return problems


def _is_environment_value(path: Path) -> bool:
    # models[i].training.environment.NAME and models[i].serving.environment.NAME
    return len(path) >= 3 and path[-2] == "environment" and path[-3] in ("training", "serving")


def _problem(path: Path, what: str, text: str, offset: int, filename: str, line_for: Any) -> Problem:
    char = text[offset]
    name = _NAMES.get(char, "a control character")
    return Problem(
        file=filename,
        line=line_for(path),
        path=path,
        message=f"{what} contains {name} (U+{ord(char):04X}) at position {offset + 1}",
        hint=_NEWLINE_HINT if char == "\n" and offset == len(text) - 1 else _HINT,
        value=text,
        has_value=True,
    )
