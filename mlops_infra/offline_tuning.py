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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# The cyclic garbage collector is off for the run. A run makes millions of container objects
# (Outputs, futures, tasks, protobuf dicts) and nearly all of them live until it ends: every
# collection during the run scans them and frees almost nothing. Measured at 1,000 models
# (benchmarks/run.py's worker, CPU time): rare collections (thresholds 50_000, 20, 1_000) spent
# 40% of the plan in the collector; off, plan time fell 12% (GCP) and 16% (Azure) for 5-6%
# more peak memory (the cyclic garbage of one run, freed by the next collection after it).
COLLECT_DURING_RUN = False


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


def _by_identity(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`function` (a pure function of one type annotation) remembered per annotation object.

    pulumi._types.unwrap_type and unwrap_optional_type take apart Input[T], Output[T] and
    Optional[T] (typing.get_origin and get_args, recursively) for every property of every
    registration, though the annotations are the same few hundred objects, made once when the
    SDK's classes were defined. The key is the object itself, not its equality: typing says
    Union[A, B] == Union[B, A], and these functions look at the order of the arguments.
    """
    seen: dict[int, tuple[Any, Any]] = {}

    def remembered(annotation: Any) -> Any:
        hit = seen.get(id(annotation))
        if hit is not None and hit[0] is annotation:
            return hit[1]
        result = function(annotation)
        seen[id(annotation)] = (annotation, result)  # keeps `annotation` alive, so its id stays its own
        return result

    remembered.__wrapped__ = function  # type: ignore[attr-defined]
    return remembered


def _reachable(from_resource: Any, to_resource: Any) -> bool:
    """pulumi.runtime.resource_cycle_breaker._reachable without a generator per resource visited.

    The same walk (a resource's _direct_computed_dependencies, transitively, each resource
    once) with an explicit stack: Pulumi's recursive generators cost a frame per visited
    resource per dependency edge, and every edge between two resources is checked.
    """
    visited: set[Any] = set()
    pending = [from_resource]
    while pending:
        resource = pending.pop()
        if resource in visited:
            continue
        if resource == to_resource:
            return True
        visited.add(resource)
        pending.extend(getattr(resource, _DEPENDENCIES_PROPERTY, ()))
    return False


# The attribute pulumi.runtime.resource_cycle_breaker keeps a resource's dependencies in.
_DEPENDENCIES_PROPERTY = "_direct_computed_dependencies"

# Output properties a resource declared but was given no value for, made only when read.
_UNSET = "_mlops_infra_unset_outputs"


def _lean_transfer(original: Callable[..., Any]) -> Callable[..., Any]:
    """pulumi.runtime.rpc.transfer_properties, without an Output per property that has no value.

    Typed SDK classes declare every output property of a resource as None in its props (an S3
    Bucket has dozens), and the SDK makes an Output and four futures for each, which the mock
    monitor then resolves as unknown (a preview knows nothing it was not given). Most are never
    read. Offline, such a property is noted instead and made when read (_unset_output): the
    same unknown Output depending on the resource, so plans are unchanged (tested).
    """

    def transfer(res: Any, props: Any, custom: bool) -> Any:
        if not custom or not isinstance(props, dict):
            return original(res, props, custom)
        given = {name: value for name, value in props.items() if value is not None}
        unset = [name for name, value in props.items() if value is None and name not in ("id", "urn")]
        if unset:
            res.__dict__[_UNSET] = frozenset(unset)
        return original(res, given, custom)

    transfer.__wrapped__ = original  # type: ignore[attr-defined]
    return transfer


def _lazy_get(original: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """pulumi.get: an output property _lean_transfer left out is made on first read."""

    def get(self: Any, name: str) -> Any:
        value = original(self, name)
        if value is None and name in self.__dict__.get(_UNSET, ()):
            value = self.__dict__[name] = _unset_output(self)
        return value

    get.__wrapped__ = original  # type: ignore[attr-defined]
    return get


def _unset_output(resource: Any) -> Any:
    """What the SDK resolves a property the mock monitor did not return to, under preview."""
    return settled_output(None, known=False, resources={resource})


def settled_output(value: Any, *, known: bool, resources: set[Any] | None = None) -> Any:
    """An Output already resolved (in the running loop): `value`, or unknown; never secret."""
    import asyncio

    import pulumi

    loop = asyncio.get_event_loop()

    def done(result: Any) -> asyncio.Future:
        future = loop.create_future()
        future.set_result(result)
        return future

    return pulumi.Output(resources or set(), done(value), done(known), done(False))


def patches() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, offline replacement) for every Pulumi internal the offline engine replaces."""
    import pulumi
    from pulumi import _types
    from pulumi.runtime import resource as runtime_resource
    from pulumi.runtime import resource_cycle_breaker, rpc

    return [
        (rpc, "transfer_properties", _once(rpc, "transfer_properties", _lean_transfer)),
        (pulumi, "get", _once(pulumi, "get", _lazy_get)),
        (runtime_resource, "_get_stack_trace", _no_stack_trace),
        (_types, "unwrap_type", _remembered(_types, "unwrap_type")),
        (_types, "unwrap_optional_type", _remembered(_types, "unwrap_optional_type")),
        (resource_cycle_breaker, "_reachable", _reachable),
    ]


_REMEMBERED: dict[str, Callable[[Any], Any]] = {}
_WRAPPED: dict[str, Callable[..., Any]] = {}


def _once(owner: Any, name: str, wrap: Callable[[Any], Callable[..., Any]]) -> Callable[..., Any] | None:
    """One wrapper per function for the life of the process, never a wrapper of a wrapper."""
    function = getattr(owner, name, None)
    wrapper = _WRAPPED.get(name)
    if function is None or function is wrapper:
        return function
    if wrapper is None or wrapper.__wrapped__ is not function:  # type: ignore[attr-defined]
        wrapper = _WRAPPED[name] = wrap(function)
    return wrapper


def _remembered(owner: Any, name: str) -> Callable[[Any], Any] | None:
    """One remembering wrapper per function for the life of the process (annotations live as long)."""
    function = getattr(owner, name, None)
    wrapper = _REMEMBERED.get(name)
    if function is None or function is wrapper:  # gone (never applied), or already in place
        return function
    if wrapper is None or wrapper.__wrapped__ is not function:  # type: ignore[attr-defined]
        wrapper = _REMEMBERED[name] = _by_identity(function)
    return wrapper


@contextmanager
def offline_engine() -> Iterator[None]:
    """Apply the offline-only patches, pause the cyclic collector; restore both on the way out."""
    # A patch whose target is gone (a Pulumi upgrade renamed it) is skipped: planning stays
    # correct, only slower, and the test suite says which one stopped applying.
    applied = [(owner, name, new) for owner, name, new in patches() if new is not None and hasattr(owner, name)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in applied]
    collecting = gc.isenabled()
    gc.freeze()  # what exists before the run is not the run's garbage: leave it out of the scans
    try:
        for owner, name, replacement in applied:
            setattr(owner, name, replacement)
        if not COLLECT_DURING_RUN:
            gc.disable()
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        # The run pays for its own cyclic garbage here, instead of whatever code allocates next
        # (the plan document, the next run): timings stay each run's own, and a split plan's
        # many runs do not pile up garbage.
        gc.collect()
        gc.unfreeze()
        if collecting:
            gc.enable()
