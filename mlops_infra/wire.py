"""The handover between a split spec's shared stack and its model stacks.

The shared stack records what model stacks need from it: the outputs of the stack-wide stages
(governance, storage, tracking) and the values stage modules pass through `ctx.shared`. Those
are Python structures (dataclasses, dicts, lists) whose leaves are Pulumi Outputs or constants.

It exports only the Output leaves, as one flat stack output `handover` keyed by dotted path.
A model stack rebuilds the same structure from its *shape*: constants are copied, and each
Output leaf becomes that path of the shared stack's `handover`, read through a StackReference.
The shape comes from planning the shared part offline with the same spec (deterministic), so a
model stack can be built before the shared stack's values are known, as Pulumi needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from mlops_infra.errors import InternalError

HANDOVER_OUTPUT = "handover"


@dataclass(frozen=True)
class Leaf:
    path: str  # where the value is in the exported handover


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Struct:
    cls: type | None  # a dataclass, or None for a dict
    fields: dict[str, Any]  # name -> shape


@dataclass(frozen=True)
class Seq:
    items: tuple[Any, ...]


def shape_of(value: Any, path: str) -> Any:
    """The shape of a handed-over value: which parts are constants and which are Outputs."""
    import pulumi

    if isinstance(value, pulumi.Output):
        return Leaf(path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return Struct(
            type(value), {f.name: shape_of(getattr(value, f.name), f"{path}.{f.name}") for f in dataclasses.fields(value)}
        )
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InternalError(f"handover {path}: only string keys cross stacks")
        return Struct(None, {k: shape_of(v, f"{path}.{k}") for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return Seq(tuple(shape_of(v, f"{path}.{i}") for i, v in enumerate(value)))
    if value is None or isinstance(value, (str, int, float, bool)):
        return Const(value)
    if isinstance(value, pulumi.Resource):
        raise InternalError(f"handover {path}: a resource cannot cross stacks; hand over its outputs")
    raise InternalError(f"handover {path}: cannot hand over a {type(value).__name__}")


def leaves(value: Any, shape: Any) -> dict[str, Any]:
    """The Output leaves of `value` by path: what the shared stack exports."""
    if isinstance(shape, Leaf):
        return {shape.path: value}
    if isinstance(shape, Struct):
        out: dict[str, Any] = {}
        for name, sub in shape.fields.items():
            out.update(leaves(value[name] if shape.cls is None else getattr(value, name), sub))
        return out
    if isinstance(shape, Seq):
        out = {}
        for item, sub in zip(value, shape.items):
            out.update(leaves(item, sub))
        return out
    return {}


def rebuild(shape: Any, read: Callable[[str], Any]) -> Any:
    """The handed-over structure again, each Output leaf from `read(path)`."""
    if isinstance(shape, Leaf):
        return read(shape.path)
    if isinstance(shape, Const):
        return shape.value
    if isinstance(shape, Seq):
        return [rebuild(s, read) for s in shape.items]
    built = {name: rebuild(sub, read) for name, sub in shape.fields.items()}
    return built if shape.cls is None else shape.cls(**built)


@dataclass
class Handover:
    """Recorded by the shared part (values) or read by a model part (shapes + a reader)."""

    values: dict[str, Any] = field(default_factory=dict)  # "stage.key" -> Python value (shared part)
    shapes: dict[str, Any] = field(default_factory=dict)  # "stage.key" -> shape (model parts)
    read: Callable[[str], Any] | None = None  # path -> Output (model parts)

    def record(self, stage: str, key: str, value: Any) -> None:
        name = _key(stage, key)
        if name in self.values:
            raise InternalError(f"handover {name} recorded twice")
        self.values[name] = value

    def fetch(self, stage: str, key: str) -> Any:
        name = _key(stage, key)
        if name not in self.shapes or self.read is None:
            raise InternalError(
                f"the shared stack hands over no {name!r}: the stage builds it only under conditions the "
                "shared part does not meet"
            )
        return rebuild(self.shapes[name], self.read)

    def keys_of(self, stage: str) -> list[str]:
        """The keys a stage recorded besides its outputs, as a model stack knows them (sorted)."""
        prefix = f"{stage}."
        return sorted(name[len(prefix):] for name in self.shapes if name.startswith(prefix))

    def recorded_shapes(self) -> dict[str, Any]:
        return {name: shape_of(value, name) for name, value in self.values.items()}

    def exported(self) -> dict[str, Any]:
        """The flat `handover` stack output: every Output leaf by path."""
        out: dict[str, Any] = {}
        for name, shape in self.recorded_shapes().items():
            out.update(leaves(self.values[name], shape))
        return dict(sorted(out.items()))


def _key(stage: str, key: str) -> str:
    return f"{stage}.{key}" if key else stage
