"""Compare two plan documents: what a change creates, updates (which properties) and deletes.

Credential-free: CI plans the base branch and the pull request offline and
diffs the two documents. A resource is the same resource when its logical
name and type match (that is its URN); a changed type is a delete and a create.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Fields of a plan resource besides its inputs whose change is an update.
_TRACKED = ("protect", "parent", "provider", "retain_on_delete")


@dataclass
class Update:
    name: str
    type: str
    stage: str | None
    paths: list[str]  # "inputs.tags.owner", "inputs.lifecycleRules[0].expiration", "protect"
    part: str | None = None  # split specs: the Pulumi stack it is in (layout.py)

    def to_dict(self) -> dict[str, Any]:
        found = {"name": self.name, "type": self.type, "stage": self.stage, "paths": self.paths}
        return found if self.part is None else {**found, "part": self.part}


@dataclass
class Changes:
    create: list[dict[str, Any]] = field(default_factory=list)  # {"name", "type", "stage"}
    update: list[Update] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)

    def to_dict(self) -> dict[str, Any]:
        return {
            "create": self.create,
            "update": [u.to_dict() for u in self.update],
            "delete": self.delete,
            "summary": {"create": len(self.create), "update": len(self.update), "delete": len(self.delete)},
        }


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    before = {_key(r): r for r in old["resources"]}
    after = {_key(r): r for r in new["resources"]}
    changes = Changes()
    for key in sorted(after.keys() - before.keys()):
        changes.create.append(_brief(after[key]))
    for key in sorted(before.keys() - after.keys()):
        changes.delete.append(_brief(before[key]))
    for key in sorted(before.keys() & after.keys()):
        paths = _changed_paths(before[key], after[key])
        if paths:
            resource = after[key]
            changes.update.append(
                Update(resource["name"], resource["type"], resource.get("stage"), paths, resource.get("part"))
            )
    return changes


def _key(resource: dict[str, Any]) -> tuple[str, str, str]:
    # Logical names are unique per Pulumi stack; a split plan has several (its resources' `part`).
    return resource.get("part") or "", resource["name"], resource["type"]


def _brief(resource: dict[str, Any]) -> dict[str, Any]:
    found = {"name": resource["name"], "type": resource["type"], "stage": resource.get("stage")}
    return found if "part" not in resource else {**found, "part": resource["part"]}


def _changed_paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    paths = [name for name in _TRACKED if old.get(name) != new.get(name)]
    paths += _walk(old.get("inputs", {}), new.get("inputs", {}), "inputs")
    return paths


def _walk(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}.{key}"
            if key not in old or key not in new:
                found.append(child)
            else:
                found += _walk(old[key], new[key], child)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in _walk(a, b, f"{path}[{i}]")]
    if isinstance(old, str) and isinstance(new, str) and old != new and _is_json(old) and _is_json(new):
        # Policies and pipeline definitions are JSON strings: name the part that changed.
        inner = _walk(json.loads(old), json.loads(new), path + "<json>")
        return inner or [path]
    return [] if old == new else [path]


def _is_json(text: str) -> bool:
    if not text[:1] in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def render_changes(changes: Changes) -> str:
    if changes.empty:
        return "No changes."
    lines = [
        f"Changes: {len(changes.create)} to create, {len(changes.update)} to update, {len(changes.delete)} to delete"
    ]
    for item in changes.create:
        lines.append(f"  + {_where(item.get('part'))}{item['name']}  {item['type']}")
    for update in changes.update:
        lines.append(f"  ~ {_where(update.part)}{update.name}  {update.type}")
        lines += [f"      {path}" for path in update.paths]
    for item in changes.delete:
        lines.append(f"  - {_where(item.get('part'))}{item['name']}  {item['type']}")
    return "\n".join(lines)


def _where(part: str | None) -> str:
    return f"[{part}] " if part else ""
