"""Cloud backends, discovered by convention: each sub-package defines BACKEND."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from mlops_infra.backends.base import Backend
from mlops_infra.errors import UsageError


@lru_cache(maxsize=1)
def registry() -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        backend = getattr(module, "BACKEND", None)
        if isinstance(backend, Backend):
            found[backend.name] = backend
    return dict(sorted(found.items()))


def get_backend(name: str) -> Backend:
    backends = registry()
    if name not in backends:
        raise UsageError(f"unknown cloud {name!r}", hint=f"choose one of: {', '.join(backends)}")
    return backends[name]
