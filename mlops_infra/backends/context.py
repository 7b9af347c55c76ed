"""What a backend's stage module receives: the spec, its target and its upstream outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from mlops_infra.errors import InternalError
from mlops_infra.layout import WHOLE, Part
from mlops_infra.naming import Namer
from mlops_infra.tagging import stack_tags
from mlops_infra.wire import Handover

if TYPE_CHECKING:
    import pulumi

    from mlops_infra.spec.models import Model, SpecBase


T = TypeVar("T")


class Upstream:
    """What earlier stages handed on, found by type.

    Each stage's outputs are a dataclass of their own (StorageOutputs, ...), and a backend's
    stage may share typed values of its own with later stages of the same backend
    (`ctx.share`): later stages read either with `ctx.upstream.of(StorageOutputs)`, checked by
    mypy and never a string key.
    """

    def __init__(self) -> None:
        self._values: dict[type, Any] = {}

    def add(self, value: Any) -> None:
        kind = type(value)
        if kind in self._values:
            raise InternalError(f"two {kind.__name__} handed on: each type is handed on once")
        self._values[kind] = value

    def of(self, kind: type[T]) -> T:
        """The value of `kind` an earlier stage handed on; a missing one is a bug in stage order."""
        value = self.find(kind)
        if value is None:
            raise InternalError(f"no {kind.__name__} was handed on before this stage")
        return value

    def find(self, kind: type[T]) -> T | None:
        """Like `of`, for values handed on only when the spec asks for them."""
        value = self._values.get(kind)
        return value if isinstance(value, kind) else None



@dataclass
class StageContext:
    spec: "SpecBase"
    cloud: str
    stage: str
    settings: Any  # the validated clouds.<cloud> block
    namer: Namer
    parent: "pulumi.ComponentResource"
    provider: "pulumi.ProviderResource"
    upstream: Upstream = field(default_factory=Upstream)  # earlier stages' outputs and shared values
    stack_wide: bool = False  # the stage exists once per stack (its values cross to model stacks)
    # Grants and service enablements made by the foundation stages (governance, storage): pass
    # to depends_on where a resource acts when created (a job starts running, a model is
    # deployed) and must find its permissions in place. Bounded by identities and buckets,
    # never by models, so depending on it stays cheap at any stack size.
    prerequisites: list[Any] = field(default_factory=list)
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

    def share(self, value: T) -> T:
        """Hand a typed value (a dataclass of this backend's) to later stages of the same stack.

        Later stages read it with ctx.upstream.of(<its type>). A stack-wide stage's values also
        cross to the model stacks of a split spec, so they must be made of Outputs and
        constants, never resources.
        """
        self.upstream.add(value)
        if self.stack_wide and self.part.name:
            self.handover.record(self.stage, type(value).__name__, value)
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
