"""build_program(spec, cloud): the one Pulumi program behind plan, preview, up and `pulumi up`."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from mlops_infra.backends import get_backend
from mlops_infra.backends.base import Backend
from mlops_infra.layout import WHOLE, Part
from mlops_infra.stages import Stage, all_stages
from mlops_infra.wire import HANDOVER_OUTPUT, Handover

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.spec.models import SpecBase


def stages_to_build(spec: "SpecBase", backend: Backend) -> list[Stage]:
    """Stages the spec uses and the backend implements, in dependency order."""
    return [s for s in all_stages() if s.used(spec) and backend.supports(s.name)]


class Program:
    """A callable Pulumi program; after it ran, `exports` holds the neutral stack outputs.

    `part` picks one stack of a split spec (mlops_infra/layout.py). A model stack needs the
    shared stack's handover shapes (`shapes`, from planning the shared part) and the shared
    stack's name to reference (`shared_stack`; same project and backend, so the short name).
    """

    def __init__(
        self,
        spec: "SpecBase",
        cloud: str,
        part: Part = WHOLE,
        *,
        shapes: dict[str, Any] | None = None,
        shared_stack: str = "",
        handed: dict[str, Any] | None = None,
        teardown: bool = False,
    ) -> None:
        self.spec = spec
        self.cloud = cloud
        self.part = part
        self.backend = get_backend(cloud)
        self.backend.require_sdk()  # before any engine work: a missing extra is one clear message
        self.exports: dict[str, Any] = {}
        self.handover = Handover(shapes=dict(shapes or {}))
        self.shared_stack = shared_stack
        # Offline only: the shared part's planned handover (path -> value, or UNKNOWN_VALUE),
        # read in place of the StackReference's outputs, which the mock monitor cannot give
        # partly known (one unknown leaf would make every value unknown).
        self.handed = handed
        # The last `up` before `destroy --delete-data` (StageContext.teardown).
        self.teardown = teardown

    def __call__(self) -> None:
        import pulumi

        from mlops_infra.backends.context import StageContext, Upstream

        spec, backend = self.spec, self.backend
        settings = spec.settings_for(self.cloud)
        provider = backend.create_provider(spec, settings)
        namer = backend.namer(spec, settings)
        upstream = Upstream()
        prerequisites: list[Any] = []
        part, handover = self.part, self.handover
        if part.is_model_stack:
            handover.read = _reader(part, self.shared_stack, self.handed)
        for stage in stages_to_build(spec, backend):
            if stage.stack_wide and part.is_model_stack:
                upstream.add(handover.fetch(stage.name, ""))
                for key in handover.keys_of(stage.name):  # what the stage shared (ctx.share)
                    upstream.add(handover.fetch(stage.name, key))
                continue
            # Stages never depend on whole upstream stages: a dependency on a component reaches
            # all its children, and Pulumi's cycle check walks them for every edge, which is
            # quadratic in the stack's size. Acting resources wait for ctx.prerequisites instead.
            transformations: list[pulumi.ResourceTransformation] = [drop_api_version_aliases]  # children inherit them
            if stage.always:
                transformations.append(_recorder(prerequisites, backend.prerequisite_types))
            component = pulumi.ComponentResource(
                f"mlops-infra:{self.cloud}:{stage.title}",
                stage.name,
                None,
                pulumi.ResourceOptions(transformations=transformations),
            )
            ctx = StageContext(
                spec=spec,
                cloud=self.cloud,
                stage=stage.name,
                settings=settings,
                namer=namer,
                parent=component,
                provider=provider,
                upstream=upstream,
                stack_wide=stage.stack_wide,
                prerequisites=prerequisites,
                part=part,
                handover=handover,
                teardown=self.teardown,
            )
            result = backend.stage_module(stage.name).build(ctx)
            if stage.stack_wide and part.name:
                handover.record(stage.name, "", result)
            exported = result.exports()
            component.register_outputs(exported)
            upstream.add(result)
            if exported:
                self.exports[stage.name] = exported
                pulumi.export(stage.name, exported)
        if part.name and part.builds_stack:
            self.exports[HANDOVER_OUTPUT] = handover.exported()
            pulumi.export(HANDOVER_OUTPUT, self.exports[HANDOVER_OUTPUT])


UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's wire sentinel for "not known yet"


def _reader(part: Part, shared_stack: str, planned: dict[str, Any] | None) -> Any:
    """path -> that entry of the shared stack's handover, through one StackReference."""
    import pulumi

    reference = pulumi.StackReference(f"stackref-{part.name}", stack_name=shared_stack)
    if planned is not None:
        return lambda path: _planned_value(planned, path)
    handed = reference.get_output(HANDOVER_OUTPUT)

    def read(path: str) -> Any:
        return handed.apply(lambda values: (values or {}).get(path))

    return read


def _planned_value(planned: dict[str, Any], path: str) -> Any:
    from mlops_infra.offline_tuning import settled_output

    value = planned.get(path)
    known = value != UNKNOWN_VALUE
    return settled_output(value if known else None, known=known)


def _recorder(found: list[Any], types: frozenset[str]) -> pulumi.ResourceTransformation:
    """A transformation that notes every resource of `types` as it is constructed."""

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        if args.type_ in types:
            found.append(args.resource)
        return None

    return record


def drop_api_version_aliases(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """Drop aliases to API-versioned type tokens (azure-native:<module>/v20230401:Thing).

    Providers add dozens per resource so that stacks created with a versioned token can move
    to the default one; resources made by mlops-infra never used those tokens, so the aliases
    match nothing, yet resolving them is 80% of registration time (5x, see benchmarks/).
    """
    import pulumi

    aliases = args.opts.aliases
    if not aliases:
        return None
    kept = [a for a in aliases if not _api_versioned(a)]
    if len(kept) == len(aliases):
        return None
    opts = copy.copy(args.opts)
    opts.aliases = kept
    return pulumi.ResourceTransformationResult(args.props, opts)


def _api_versioned(alias: Any) -> bool:
    type_ = getattr(alias, "type_", None)
    if not isinstance(type_, str):
        return False
    parts = type_.split(":")
    return len(parts) == 3 and "/v" in parts[1]


def build_program(spec: "SpecBase", cloud: str, part: Part = WHOLE, **options: Any) -> Program:
    """The program for one Pulumi stack of `spec` on `cloud` (options: see Program)."""
    return Program(spec, cloud, part, **options)
