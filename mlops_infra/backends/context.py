"""What a backend's stage module receives: the spec, its target and its upstream outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_infra.naming import Namer
from mlops_infra.tagging import stack_tags

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.spec.models import SpecBase


@dataclass
class StageContext:
    spec: "SpecBase"
    cloud: str
    stage: str
    settings: Any  # the validated clouds.<cloud> block
    namer: Namer
    parent: "pulumi.ComponentResource"
    provider: "pulumi.ProviderResource"
    upstream: dict[str, Any] = field(default_factory=dict)  # stage name -> its outputs
    # The components of the required stages: pass to depends_on where a resource acts at
    # creation time (a job that starts running) and must find upstream grants in place.
    upstream_components: list[Any] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        """The tag set for this stage's taggable resources (pass it explicitly to each)."""
        spec = self.spec
        return stack_tags(project=spec.project, environment=spec.environment, user=dict(spec.tags), stage=self.stage)

    def logical(self, *parts: str) -> str:
        """A stack-unique logical name: derived from spec names, never from list positions."""
        return "-".join((self.stage, *parts))

    def opts(self, *, protect: bool = False, **extra: Any) -> "pulumi.ResourceOptions":
        """Options for a child: parented to the stage, explicit provider; stateful ones protected."""
        import pulumi

        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider, protect=protect, **extra)
