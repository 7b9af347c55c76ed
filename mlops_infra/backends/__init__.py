"""Cloud backends, discovered by convention: each sub-package defines BACKEND.

The registry is the one list of clouds. `names()` lists them from the folders alone, without
importing any backend (the CLI's choices, at start-up); `registry()` imports each backend's
light package (no SDK) and keeps those that define BACKEND.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_infra.backends.base import Backend


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """Every backend folder's name, sorted: what --cloud accepts."""
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg))


@lru_cache(maxsize=1)
def registry() -> dict[str, "Backend"]:
    from mlops_infra.backends.base import Backend

    found: dict[str, Backend] = {}
    for name in names():
        module = importlib.import_module(f"{__name__}.{name}")
        backend = getattr(module, "BACKEND", None)
        if isinstance(backend, Backend):
            found[backend.name] = backend
    return dict(sorted(found.items()))


def get_backend(name: str) -> "Backend":
    from mlops_infra.errors import UsageError

    backends = registry()
    if name not in backends:
        raise UsageError(f"unknown cloud {name!r}", hint=f"choose one of: {', '.join(backends)}")
    return backends[name]
