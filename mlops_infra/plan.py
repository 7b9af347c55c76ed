"""The offline engine: run the real program against Pulumi's mock monitor, no cloud, no CLI.

The plain mocks see only type, name and inputs; a subclass of the mock
monitor captures the whole registration request (parent, protect, provider,
property dependencies), which is what the plan document is made of.
Registrations arrive in no fixed order, so the document is sorted; the same
spec always yields the same bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_infra.errors import InternalError

if TYPE_CHECKING:
    from mlops_infra.spec.models import SpecBase

PLAN_FORMAT = "mlops-infra/plan/v1"
UNKNOWN = "(known after apply)"
SECRET = "[secret]"

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_ASSET_SIGS = {"c44067f5952c0a294b673a41bacd8c17": "[asset]", "0def7320c3a5731c473e5ecbe6d01bc7": "[archive]"}
_UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Dynamic resources subclass pulumi.dynamic.Resource with module= and name=, which gives
# them a readable type token: pulumi-python:dynamic/<module>:<name>.
DYNAMIC_PREFIX = "pulumi-python:dynamic"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent_urn: str
    custom: bool
    protect: bool
    retain_on_delete: bool
    provider_ref: str
    inputs: dict[str, Any]
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """A protobuf Struct value (as MessageToDict gives it) -> plan-document JSON."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return SECRET
        if sig == _RESOURCE_SIG:
            return {"resource": _urn_name(value.get("urn", ""))}
        if sig == _OUTPUT_SIG:
            if value.get("secret"):
                return SECRET
            return _plain(value["value"]) if "value" in value else UNKNOWN
        if sig in _ASSET_SIGS:
            return _ASSET_SIGS[sig]
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == _UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def _urn_types(urn: str) -> list[str]:
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def stage_of(urn: str, resource_type: str, cloud: str) -> str | None:
    """The stage a resource belongs to: its nearest mlops-infra:<cloud>:<Stage> component."""
    from mlops_infra.stages import all_stages

    titles = {f"mlops-infra:{cloud}:{s.title}": s.name for s in all_stages()}
    stage = next((titles[t] for t in _urn_types(urn) if t in titles), None)
    if stage is None and resource_type.startswith("pulumi:providers:"):
        return "provider"
    return stage


def _make_monitor(mocks: Any) -> Any:
    from google.protobuf import json_format
    from pulumi.runtime.mocks import MockMonitor

    class CapturingMonitor(MockMonitor):
        def __init__(self, mocks: Any) -> None:
            super().__init__(mocks)
            self.captured: list[Registration] = []

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                inputs = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
                self.captured.append(
                    Registration(
                        urn=response.urn,
                        type=request.type,
                        name=request.name,
                        parent_urn=request.parent,
                        custom=bool(request.custom),
                        protect=bool(request.protect),
                        retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                        provider_ref=request.provider,
                        inputs=inputs,
                        property_dependencies={
                            key: sorted(deps.urns) for key, deps in request.propertyDependencies.items()
                        },
                        dependencies=sorted(request.dependencies),
                    )
                )
            return response

    return CapturingMonitor(mocks)


def _make_mocks(backend: Any) -> Any:
    import pulumi

    class OfflineMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict]:
            # No id and no computed outputs: under preview they stay unknown, as
            # they would before a real deployment; inputs read back as given.
            return "", dict(args.inputs)

        def call(self, args: Any) -> tuple[dict, list[tuple[str, str]] | None]:
            # No check failures (an empty list: the monitor iterates it when the result is a tuple).
            return backend.mock_call(args.token, dict(args.args)), []

    return OfflineMocks()


@dataclass
class OfflineRun:
    registrations: list[Registration]
    exports: dict[str, Any]


def run_offline(program: Any, *, project: str, stack: str) -> OfflineRun:
    """Run `program` (a Program) under the mock monitor in a fresh loop and fresh settings."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func

    from mlops_infra.offline_tuning import offline_engine

    mocks = _make_mocks(program.backend)
    monitor = _make_monitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Offline-only shortcuts and the collector's schedule (mlops_infra/offline_tuning.py); it
    # collects the run's garbage on the way out, after the runtime let go of it.
    with offline_engine(), _worker_loops() as worker_loops:
        try:
            pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=True, monitor=monitor)
            loop.run_until_complete(run_pulumi_func(program))
            exports = loop.run_until_complete(_resolve(program.exports))
        finally:
            reset_runtime(loop, worker_loops=worker_loops)
    return OfflineRun(registrations=monitor.captured, exports=exports)


@contextmanager
def _worker_loops() -> Iterator[list[asyncio.AbstractEventLoop]]:
    """The event loops the mock monitor makes on executor threads during a run, for reset_runtime.

    Registrations reach the monitor on the run loop's executor threads, and the monitor gives each
    thread an event loop (pulumi.runtime.mocks._ensure_event_loop) that nothing closes: each holds
    an epoll descriptor and a socket pair, so a caller planning in-process ran out of file
    descriptors after about a thousand plans.
    """
    from pulumi.runtime import mocks as pulumi_mocks

    made: list[asyncio.AbstractEventLoop] = []
    original = getattr(pulumi_mocks, "_ensure_event_loop", None)
    if original is None:  # a Pulumi that no longer makes them (tests/test_cli_hardening.py checks)
        yield made
        return

    def recorded() -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = original()
        if all(loop is not known for known in made):
            made.append(loop)
        return loop

    pulumi_mocks._ensure_event_loop = recorded
    try:
        yield made
    finally:
        pulumi_mocks._ensure_event_loop = original


def reset_runtime(loop: asyncio.AbstractEventLoop, *, worker_loops: Sequence[asyncio.AbstractEventLoop] = ()) -> None:
    """Forget a mock run: Pulumi's global settings, its pending RPCs and Outputs, the loops it used."""
    from pulumi.runtime import settings as pulumi_settings

    pulumi_settings.reset_options()
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    # Join the executor's threads first: then no thread uses its loop any more.
    loop.run_until_complete(loop.shutdown_default_executor())
    for each in worker_loops:
        if each is not loop:
            each.close()
    loop.close()
    asyncio.set_event_loop(None)


async def _resolve(value: Any) -> Any:
    import pulumi

    if isinstance(value, pulumi.Output):
        if not await value.is_known():
            return UNKNOWN
        if await value.is_secret():
            return SECRET
        return await _resolve(await value.future())
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v) for v in value]
    return value


def plan_document(
    spec: "SpecBase",
    cloud: str,
    *,
    stack: str,
    warnings: list[dict] | None = None,
    part: str | None = None,
    teardown: bool = False,
) -> dict:
    """Plan `spec` on `cloud` offline and return the plan document (section 6 of DESIGN.md).

    A split spec (layout.py) plans each of its Pulumi stacks, or only `part`: every resource
    then names its part, and model stacks read what the planned shared stack hands over.
    `teardown`: the program `destroy --delete-data` runs first (StageContext.teardown).
    """
    from mlops_infra.layout import select

    chosen = select(spec, part)
    if not spec.split.enabled:
        run, _ = _run_part(spec, cloud, chosen[0], stack, teardown=teardown)
        resources = _with_models(_entries(run, cloud, None), spec)
        return _document(spec, cloud, stack, resources, run.exports, warnings)
    shared_run, shared_program = _run_part(spec, cloud, _shared(), stack, teardown=teardown)
    shapes = shared_program.handover.recorded_shapes()
    handed = _wire_values(shared_run.exports.get("handover", {}))
    resources, outputs, stacks = [], {}, []
    for each in chosen:
        base = f"{stack}-{cloud}"
        stacks.append(
            {"part": each.name, "pulumi_stack": each.pulumi_stack(base), "models": sorted(each.models or ())}
        )
        if each.builds_stack:
            run = shared_run
        else:
            run, _ = _run_part(
                spec, cloud, each, stack, shapes=shapes, handed=handed, shared_stack=base, teardown=teardown
            )
        resources += _with_models(_entries(run, cloud, each.name), spec)
        outputs[each.name] = run.exports
    document = _document(spec, cloud, stack, resources, outputs, warnings)
    document["split"] = {"parts": stacks}
    by_part: dict[str, int] = {}
    for entry in filter(is_cloud_resource, resources):
        by_part[entry["part"]] = by_part.get(entry["part"], 0) + 1
    document["summary"]["by_part"] = dict(sorted(by_part.items()))
    return document


def handover_shapes(spec: "SpecBase", cloud: str, *, stack: str) -> dict[str, Any]:
    """The shapes of what a split spec's shared stack hands over (model stacks are built from them)."""
    _, program = _run_part(spec, cloud, _shared(), stack)
    return program.handover.recorded_shapes()


def _shared() -> Any:
    from mlops_infra.layout import SHARED_PART

    return SHARED_PART


def _run_part(spec: "SpecBase", cloud: str, part: Any, stack: str, **program_args: Any) -> tuple[OfflineRun, Any]:
    from mlops_infra.program import build_program

    program = build_program(spec, cloud, part, **program_args)
    return run_offline(program, project=spec.project, stack=stack), program


def _wire_values(value: Any) -> Any:
    """Resolved exports -> what a model stack reads offline: not-yet-known values stay unknown."""
    from mlops_infra.program import UNKNOWN_VALUE

    if value == UNKNOWN:
        return UNKNOWN_VALUE
    if isinstance(value, dict):
        return {k: _wire_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_values(v) for v in value]
    return value


def _entries(run: OfflineRun, cloud: str, part: str | None) -> list[dict[str, Any]]:
    by_urn = {r.urn: r for r in run.registrations}
    names = [r.name for r in run.registrations]
    duplicates = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if duplicates:
        raise InternalError(f"logical names are not unique in the plan: {', '.join(duplicates)}")
    resources = []
    for reg in sorted(run.registrations, key=lambda r: r.name):
        stage = stage_of(reg.urn, reg.type, cloud)
        parent = by_urn.get(reg.parent_urn)
        provider_urn = reg.provider_ref.rsplit("::", 1)[0] if reg.provider_ref else ""
        provider = by_urn.get(provider_urn)
        inputs = {k: _plain(v) for k, v in sorted(reg.inputs.items()) if not k.startswith("__")}
        entry: dict[str, Any] = {
            "name": reg.name,
            "type": reg.type,
            "stage": stage,
            "parent": parent.name if parent else None,
            "protect": reg.protect,
            "custom": reg.custom,
            "provider": provider.name if provider else None,
            "inputs": inputs,
        }
        if part is not None:
            entry["part"] = part
        if reg.retain_on_delete:
            entry["retain_on_delete"] = True
        deps = {
            key: sorted({by_urn[u].name for u in urns if u in by_urn})
            for key, urns in sorted(reg.property_dependencies.items())
            if urns
        }
        if deps:
            entry["dependencies"] = deps
        via_inputs = {u for urns in reg.property_dependencies.values() for u in urns}
        explicit = sorted({by_urn[u].name for u in reg.dependencies if u in by_urn and u not in via_inputs})
        if explicit:
            entry["depends_on"] = explicit  # ordering only (depends_on), not wiring
        resources.append(entry)
    return resources


def _with_models(resources: list[dict[str, Any]], spec: "SpecBase") -> list[dict[str, Any]]:
    """Name the model a resource belongs to: logical names of per-model resources end with it."""
    from mlops_infra.stages import all_stages

    per_model = {s.name for s in all_stages() if not s.stack_wide}
    names = sorted((m.name for m in spec.models), key=len, reverse=True)
    for entry in resources:
        if entry["custom"] and entry["stage"] in per_model:
            owner = next((n for n in names if entry["name"].endswith("-" + n)), None)
            if owner is not None:
                entry["model"] = owner
    return resources


def is_cloud_resource(entry: dict[str, Any]) -> bool:
    """What a plan counts: resources in the cloud, not the stage components or the providers."""
    return bool(entry.get("custom", True)) and not str(entry.get("type", "")).startswith("pulumi:providers:")


def count_line(summary: dict[str, Any]) -> str:
    """"N cloud resources in M stages": the words every output uses for a plan's summary."""
    total, stages = summary["total"], len(summary["by_stage"])
    return f"{total} cloud resource{'s' if total != 1 else ''} in {stages} stage{'s' if stages != 1 else ''}"


def _document(
    spec: "SpecBase", cloud: str, stack: str, resources: list[dict], outputs: Any, warnings: list[dict] | None
) -> dict:
    by_stage: dict[str, int] = {}
    for entry in filter(is_cloud_resource, resources):
        by_stage[entry["stage"] or "other"] = by_stage.get(entry["stage"] or "other", 0) + 1
    return {
        "format": PLAN_FORMAT,
        "project": spec.project,
        "stack": stack,
        "cloud": cloud,
        "resources": resources,
        "outputs": outputs,
        "warnings": warnings or [],
        # Cloud resources only: what `plan` says ("N cloud resources in M stages") and what a bill lists.
        "summary": {"total": sum(by_stage.values()), "by_stage": dict(sorted(by_stage.items()))},
    }


def dump_plan(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
