"""build_program(spec, cloud): the one Pulumi program behind plan, preview, up and `pulumi up`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends import get_backend
from mlops_infra.backends.base import Backend
from mlops_infra.stages import Stage, all_stages

if TYPE_CHECKING:
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
        components: dict[str, Any] = {}
        for stage in stages_to_build(spec, backend):
            # A stage waits for the stages it requires: their grants and keys exist before its
            # resources (a one-off training job, say) start using them.
            upstream = [components[name] for name in stage.requires if name in components]
            component = pulumi.ComponentResource(
                f"mlops-infra:{self.cloud}:{stage.title}",
                stage.name,
                None,
                pulumi.ResourceOptions(depends_on=upstream) if upstream else None,
            )
            components[stage.name] = component
            ctx = StageContext(
                spec=spec,
                cloud=self.cloud,
                stage=stage.name,
                settings=settings,
                namer=namer,
                parent=component,
                provider=provider,
                upstream=dict(built),
                upstream_components=upstream,
            )
            result = backend.stage_module(stage.name).build(ctx)
            exported = result.exports()
            component.register_outputs(exported)
            built[stage.name] = result
            if exported:
                self.exports[stage.name] = exported
                pulumi.export(stage.name, exported)


def build_program(spec: "SpecBase", cloud: str) -> Program:
    return Program(spec, cloud)
