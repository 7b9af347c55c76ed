"""Cloud facts kept as reference data: limits, quotas, reserved names, each with its source.

A backend keeps its facts in backends/<cloud>/facts/<topic>.json:

    {"about": "what these facts are",
     "facts": {"<key>": {"value": 10240, "unit": "characters", "source": "https://...",
                         "as_of": "2026-12-05", "note": "optional: how the figure applies"}}}

Every entry names the page it was read from and the day it was read. Code asks for a fact by
key and cites it in messages; a key that is not in the file is a bug (InternalError), never a
guess. validate checks the spec against these figures before any engine runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from mlops_infra.errors import InternalError


@dataclass(frozen=True)
class Fact:
    key: str
    value: Any
    source: str  # the URL the figure was read from
    as_of: str  # the day it was read (YYYY-MM-DD)
    unit: str = ""
    note: str = ""

    def cite(self) -> str:
        """'10240 characters (https://..., as of 2026-12-05)', for messages and docs."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.value}{unit} ({self.source}, as of {self.as_of})"


@lru_cache(maxsize=None)
def topic(cloud: str, name: str) -> dict[str, Fact]:
    """All facts of one topic of one backend (backends/<cloud>/facts/<name>.json)."""
    path = resources.files(f"mlops_infra.backends.{cloud}").joinpath("facts", f"{name}.json")
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InternalError(f"no fact file {name}.json for {cloud}") from None
    found: dict[str, Fact] = {}
    for key, entry in raw["facts"].items():
        missing = {"value", "source", "as_of"} - set(entry)
        if missing:
            raise InternalError(f"fact {cloud}/{name}/{key} lacks {', '.join(sorted(missing))}")
        found[key] = Fact(key=key, value=entry["value"], source=entry["source"], as_of=entry["as_of"],
                          unit=entry.get("unit", ""), note=entry.get("note", ""))
    return found


def fact(cloud: str, name: str, key: str) -> Fact:
    facts = topic(cloud, name)
    if key not in facts:
        raise InternalError(f"no fact {key!r} in {cloud}/facts/{name}.json")
    return facts[key]
