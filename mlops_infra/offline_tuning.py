"""What the offline engine skips or does differently from a real Pulumi run, and why each is safe.

`run_offline` runs the real program under Pulumi's mock monitor. Some work the SDK does on
every registration only matters to the Pulumi engine, which is not there offline; this module
switches that work off for the duration of one offline run and restores it afterwards, so the
real engine path (preview, up, `pulumi up`) is untouched. Each patch names the Pulumi internal
it replaces; tests/test_offline_tuning.py fails if one stops applying (say after a Pulumi
upgrade), so a silent slowdown cannot hide behind a silently skipped patch.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Pulumi's registration makes hundreds of thousands of short-lived objects (Outputs,
# futures, tasks); with the default thresholds the cyclic collector rescans the old ones
# again and again and is half the run time at scale. Rarer collections keep memory flat
# (disabling it outright costs 1.7x the memory for the same speed; see benchmarks/).
GC_THRESHOLDS = (50_000, 20, 1_000)


def _no_stack_trace() -> Any:
    """Stands in for pulumi.runtime.resource._get_stack_trace offline.

    The SDK captures the Python stack of every registration (traceback.extract_stack, a
    linecache stat and a file URI per frame) so that the engine can point at the line that
    created a resource in its diagnostics. The mock monitor ignores the stack trace and the
    source position, and nothing in the plan document comes from them; an empty trace is
    what the SDK itself sends when it cannot find the caller.
    """
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def patches() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, offline replacement) for every Pulumi internal the offline engine replaces."""
    from pulumi.runtime import resource as runtime_resource

    return [(runtime_resource, "_get_stack_trace", _no_stack_trace)]


@contextmanager
def offline_engine() -> Iterator[None]:
    """Apply the offline-only patches and GC thresholds; restore both on the way out."""
    # A patch whose target is gone (a Pulumi upgrade renamed it) is skipped: planning stays
    # correct, only slower, and the test suite says which one stopped applying.
    applied = [(owner, name, new) for owner, name, new in patches() if hasattr(owner, name)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in applied]
    thresholds = gc.get_threshold()
    try:
        for owner, name, replacement in applied:
            setattr(owner, name, replacement)
        gc.set_threshold(*GC_THRESHOLDS)
        yield
    finally:
        gc.set_threshold(*thresholds)
        for owner, name, original in saved:
            setattr(owner, name, original)
