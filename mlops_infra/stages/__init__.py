"""Neutral stages, discovered by convention: every module here with a STAGE is one.

The build order follows `requires`; ties are broken by name so the order is
stable no matter how modules are listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from mlops_infra.stages.base import Stage

__all__ = ["Stage", "all_stages", "stage"]


@lru_cache(maxsize=1)
def all_stages() -> tuple[Stage, ...]:
    found: dict[str, Stage] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        declared = getattr(module, "STAGE", None)
        if isinstance(declared, Stage):
            found[declared.name] = declared
    return tuple(_ordered(found))


def stage(name: str) -> Stage:
    for s in all_stages():
        if s.name == name:
            return s
    raise KeyError(name)


def _ordered(stages: dict[str, Stage]) -> list[Stage]:
    done: list[Stage] = []
    placed: set[str] = set()
    pending = dict(sorted(stages.items()))
    while pending:
        ready = [s for s in pending.values() if set(s.requires) <= placed]
        if not ready:
            raise RuntimeError(f"stage requirements form a cycle: {sorted(pending)}")
        first = ready[0]
        done.append(first)
        placed.add(first.name)
        del pending[first.name]
    return done
