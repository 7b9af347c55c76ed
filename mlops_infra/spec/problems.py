"""One problem found in a spec: where it is, what is wrong, how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

Path = tuple[str | int, ...]


def dotted(path: Path) -> str:
    """('models', 0, 'serving') -> 'models[0].serving' (the form users see)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), part)
            out += f".{part}" if out else part
    return out or "(top level)"


# A key holding a control character is shown escaped, so that reporting it cannot garble a terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: Path
    message: str
    hint: str | None = None
    value: Any = None
    has_value: bool = False
    severity: str = "error"  # "error" or "warning"
    cloud: str | None = None  # the target cloud a cloud's own check found it for

    @property
    def dotted_path(self) -> str:
        return dotted(self.path)

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.dotted_path}: {self.message}"
        if self.has_value:
            text += f" (got {_short(self.value)})"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "path": self.dotted_path,
            "message": self.message,
            "hint": self.hint,
        }
        if self.has_value:
            data["value"] = _jsonable(self.value)
        if self.cloud is not None:
            data["cloud"] = self.cloud
        return data


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    return _short(value, 200)


def errors_in(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Stable, file-order listing: by line, then path, then message."""
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.dotted_path, p.message))
