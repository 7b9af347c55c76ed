"""How a spec maps to Pulumi stacks: one, or a shared stack plus model stacks (`split`).

With `split.enabled`, the shared stack holds everything a stack has once (keys, identities,
buckets, tracking, grants, notification channels, dashboards) and each model group gets a stack
of its own holding only its models' resources, reading the shared values through a
StackReference. One model's change then previews, locks and deploys only its own stack.

A model's group is `models[].group`, or its own name: assignment never depends on list
positions or counts, so adding a model never moves another between stacks (Pulumi would delete
and re-create it). Parts are pure data, so the CLI can list them without importing Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

SHARED = "shared"
MODEL_STACK_SEPARATOR = "--"  # <stack>-<cloud>--<group>: never produced by a slug on its own
PULUMI_STACK_NAME_MAX = 100  # Pulumi stack names: letters, digits, - _ . ; at most 100 characters


@dataclass(frozen=True)
class Part:
    """What one Pulumi stack of a spec builds."""

    name: str  # "" (the whole spec, one stack), "shared", or a model group
    models: frozenset[str] | None  # the models whose own resources it builds; None: all of them
    builds_stack: bool  # whether it builds the stack-wide resources

    @property
    def is_model_stack(self) -> bool:
        return not self.builds_stack

    def builds(self, model: str) -> bool:
        return self.models is None or model in self.models

    def pulumi_stack(self, base: str) -> str:
        """The Pulumi stack name, from the unsplit one (<stack>-<cloud>)."""
        return f"{base}{MODEL_STACK_SEPARATOR}{self.name}" if self.is_model_stack else base


WHOLE = Part(name="", models=None, builds_stack=True)
SHARED_PART = Part(name=SHARED, models=frozenset(), builds_stack=True)


def group_of(model: object) -> str:
    return getattr(model, "group", None) or getattr(model, "name")


def groups(spec: "SpecBase") -> dict[str, list[str]]:
    """Model group -> its model names, sorted by group name."""
    found: dict[str, list[str]] = {}
    for model in spec.models:
        found.setdefault(group_of(model), []).append(model.name)
    return dict(sorted(found.items()))


def parts(spec: "SpecBase") -> list[Part]:
    """The spec's Pulumi stacks in deployment order: the shared one first."""
    if not spec.split.enabled:
        return [WHOLE]
    return [SHARED_PART] + [Part(name=g, models=frozenset(names), builds_stack=False) for g, names in groups(spec).items()]


def select(spec: "SpecBase", wanted: str | None) -> list[Part]:
    """The parts `--part NAME` names: `shared`, a model group, or a model (its group's stack)."""
    from mlops_infra.errors import UsageError

    every = parts(spec)
    if wanted is None:
        return every
    if not spec.split.enabled:
        raise UsageError(
            f"--part {wanted}: this spec deploys as one stack", hint="set split.enabled: true to split it"
        )
    by_name = {p.name: p for p in every}
    if wanted in by_name:
        return [by_name[wanted]]
    for model in spec.models:
        if model.name == wanted:
            return [by_name[group_of(model)]]
    raise UsageError(
        f"--part {wanted}: no such part",
        hint="parts: " + ", ".join(by_name) + " (or name a model to get its group's stack)",
    )


def problems(spec: "SpecBase") -> Iterable["Problem"]:
    """What the split settings get wrong, found before anything runs."""
    from mlops_infra.stages.base import finding

    names = {m.name: group_of(m) for m in spec.models}
    if not spec.split.enabled:
        return  # a group still shares one data-reading identity (mlops_infra/access.py)
    size: dict[str, int] = {}
    limit = spec.split.max_models_per_stack
    for i, model in enumerate(spec.models):
        group = group_of(model)
        size[group] = size.get(group, 0) + 1
        path = ("models", i, "group") if model.group else ("models", i, "name")
        if group == SHARED:
            yield finding(path, f"`{SHARED}` names the shared stack", hint="choose another group name", value=group)
        elif group in names and names[group] != group:
            yield finding(
                path,
                f"group {group!r} is also the name of a model in group {names[group]!r}",
                hint="`--part NAME` would be ambiguous: rename the group",
                value=group,
            )
        if size[group] == limit + 1:
            yield finding(
                path,
                f"model group {group!r} holds more than split.max_models_per_stack ({limit}) models",
                hint="put some of its models in another group, or raise split.max_models_per_stack",
                value=group,
            )
