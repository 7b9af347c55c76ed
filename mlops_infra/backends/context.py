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
    # Grants and service enablements made by the foundation stages (governance, storage): pass
    # to depends_on where a resource acts when created (a job starts running, a model is
    # deployed) and must find its permissions in place. Bounded by identities and buckets,
    # never by models, so depending on it stays cheap at any stack size.
    prerequisites: list[Any] = field(default_factory=list)
    # Resources one stage hands to a later stage of the same backend, by key (e.g.
    # ("capture-dataset", model)), for the few cases where the later one names the resource
    # instead of taking one of its outputs and must still wait for it.
    handoff: dict[tuple[str, str], Any] = field(default_factory=dict)

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
