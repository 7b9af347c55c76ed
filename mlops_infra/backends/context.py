"""What a backend's stage module receives: the spec, its target and its upstream outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from mlops_infra.layout import WHOLE, Part
from mlops_infra.naming import Namer
from mlops_infra.tagging import stack_tags
from mlops_infra.wire import Handover

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.spec.models import Model, SpecBase


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
    # Which Pulumi stack of a split spec is being built (mlops_infra/layout.py), and the values
    # its stack-wide resources hand to model stacks. Unsplit: WHOLE, everything in one stack.
    part: Part = WHOLE
    handover: Handover = field(default_factory=Handover)
    # `destroy --delete-data` first runs `up` with teardown on: nothing is protected, and buckets
    # and repositories are marked force-deletable (emptied on delete), so the destroy succeeds.
    teardown: bool = False

    def models(self) -> list["Model"]:
        """The models whose own resources this stack builds (all of them unless split).

        Decide per-model resources from this; decide stack-wide ones (grants, dashboards, the
        rows of a shared policy) from ctx.spec.models, so every stack of a split agrees.
        """
        return [m for m in self.spec.models if self.part.builds(m.name)]

    @property
    def builds_stack(self) -> bool:
        """Whether this stack builds the stage's stack-wide resources (false in model stacks)."""
        return self.part.builds_stack

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """A stack-wide value that model resources use, e.g. the alert topic's ARN.

        Built by `make` where stack-wide resources are built; in a model stack of a split spec
        read from the shared stack instead. It must be made of Outputs and constants (dicts,
        lists, dataclasses), never resources: only values cross stacks.
        """
        if not self.part.builds_stack:
            return self.handover.fetch(self.stage, key)
        value = make()
        if self.part.name:  # the shared stack of a split spec
            self.handover.record(self.stage, key, value)
        return value

    @staticmethod
    def waits(*resources: Any) -> list[Any]:
        """depends_on from resources that may not exist here (None: built in another stack)."""
        found: list[Any] = []
        for item in resources:
            if isinstance(item, (list, tuple)):
                found += [r for r in item if r is not None]
            elif item is not None:
                found.append(item)
        return found

    def tags(self) -> dict[str, str]:
        """The tag set for this stage's taggable resources (pass it explicitly to each)."""
        spec = self.spec
        return stack_tags(project=spec.project, environment=spec.environment, user=dict(spec.tags), stage=self.stage)

    def logical(self, *parts: str) -> str:
        """A stack-unique logical name: derived from spec names, never from list positions."""
        return "-".join((self.stage, *parts))

    def opts(self, *, protect: bool = False, **extra: Any) -> "pulumi.ResourceOptions":
        """Options for a child: parented to the stage, explicit provider.

        protect=True for what a default `destroy` must keep: data, keys, registries, and what
        guards kept data (audit trails and their storage, encryption, versioning, public-access
        blocks, TLS-only policies, lifecycle rules, access diagnostics). Teardown lifts it.
        """
        import pulumi

        return pulumi.ResourceOptions(
            parent=self.parent, provider=self.provider, protect=protect and not self.teardown, **extra
        )
