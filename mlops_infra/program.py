"""build_program(spec, cloud): the one Pulumi program behind plan, preview, up and `pulumi up`."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from mlops_infra.backends import get_backend
from mlops_infra.backends.base import Backend
from mlops_infra.stages import Stage, all_stages

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.spec.models import SpecBase


def stages_to_build(spec: "SpecBase", backend: Backend) -> list[Stage]:
    """Stages the spec uses and the backend implements, in dependency order."""
    return [s for s in all_stages() if s.used(spec) and backend.supports(s.name)]


class Program:
    """A callable Pulumi program; after it ran, `exports` holds the neutral stack outputs."""

    def __init__(self, spec: "SpecBase", cloud: str) -> None:
        self.spec = spec
        self.cloud = cloud
        self.backend = get_backend(cloud)
        self.exports: dict[str, Any] = {}

    def __call__(self) -> None:
        import pulumi

        from mlops_infra.backends.context import StageContext

        spec, backend = self.spec, self.backend
        settings = spec.settings_for(self.cloud)
        provider = backend.create_provider(spec, settings)
        namer = backend.namer(spec, settings)
        built: dict[str, Any] = {}
        prerequisites: list[Any] = []
        handoff: dict[tuple[str, str], Any] = {}
        for stage in stages_to_build(spec, backend):
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
                upstream=dict(built),
                prerequisites=prerequisites,
                handoff=handoff,
            )
            result = backend.stage_module(stage.name).build(ctx)
            exported = result.exports()
            component.register_outputs(exported)
            built[stage.name] = result
            if exported:
                self.exports[stage.name] = exported
                pulumi.export(stage.name, exported)


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


def build_program(spec: "SpecBase", cloud: str) -> Program:
    return Program(spec, cloud)
