"""Compare two plan documents: what a change creates, updates (which values) and deletes.

Credential-free: CI plans the base branch and the pull request offline and
diffs the two documents. A resource is the same resource when its logical
name and type match (that is its URN); a changed type is a delete and a create.
Each change says whether the resource is protected or holds data, each update
whether it replaces the resource (from the cloud's facts, mlops_infra/replacement.py),
and a delete or replacement of a protected resource is blocked: `up` refuses it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mlops_infra.replacement import ResourceFacts, Verdict, judge

# Fields of a plan resource besides its inputs whose change is an update.
_TRACKED = ("protect", "parent", "provider", "retain_on_delete")
SECRET = "[secret]"
# Keys whose values are masked in a diff even when the plan shows them (environment variables, settings).
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|credential|api[_-]?key|private[_-]?key|connection[_-]?string|sas$)")
UNPROTECT_HINT = (
    "keep it in the spec, or lift its protection first (`pulumi state unprotect` with its URN, listed by "
    "`pulumi stack --show-urns`); `mlops-infra destroy --delete-data` deletes the whole stack with its data"
)


class _Absent:
    """A side of a change where the value does not exist (a key added or removed)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


@dataclass(frozen=True)
class ValueChange:
    path: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"path": self.path}
        if self.old is not ABSENT:
            found["old"] = self.old
        if self.new is not ABSENT:
            found["new"] = self.new
        return found


@dataclass
class Update:
    name: str
    type: str
    stage: str | None
    paths: list[str]  # "inputs.tags.owner", "inputs.lifecycleRules[0].expiration", "protect"
    part: str | None = None  # split specs: the Pulumi stack it is in (layout.py)
    values: list[ValueChange] = field(default_factory=list)  # old and new value per path (secrets masked)
    verdict: Verdict = Verdict(None, "")
    protected: bool = False
    holds: str | None = None  # what it holds when it holds data ("objects")
    model: str | None = None

    @property
    def replace(self) -> bool | None:
        return self.verdict.replace

    @property
    def blocked(self) -> bool | None:
        """Pulumi refuses to replace a protected resource, as it refuses to delete one."""
        return _if_replaced(self.replace, self.protected)

    @property
    def data_loss(self) -> bool | None:
        return _if_replaced(self.replace, self.holds is not None)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "type": self.type, "stage": self.stage}
        if self.model is not None:
            found["model"] = self.model
        if self.part is not None:
            found["part"] = self.part
        found.update(
            {
                "paths": self.paths,
                "values": [v.to_dict() for v in self.values],
                "replace": self.replace,
                "replace_reason": self.verdict.reason,
                **_flags(self.protected, self.holds),
                "blocked": self.blocked,
                "data_loss": self.data_loss,
            }
        )
        return found


def _if_replaced(replace: bool | None, flag: bool) -> bool | None:
    if not flag or replace is False:
        return False
    return replace  # True, or None when the facts do not say


def _flags(protected: bool, holds: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"protected": protected, "holds_data": holds is not None}
    return {**found, "holds": holds} if holds else found


@dataclass
class Changes:
    # create / delete entries: {"name", "type", "stage", "model"?, "part"?, "protected", "holds_data", ...}
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[Update] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)

    def counts(self) -> dict[str, int]:
        return {
            "create": len(self.create),
            "update": len(self.update),
            "delete": len(self.delete),
            "replace": sum(1 for u in self.update if u.replace),
            "replace_unknown": sum(1 for u in self.update if u.replace is None),
            "blocked": sum(1 for d in self.delete if d["blocked"]) + sum(1 for u in self.update if u.blocked),
            "data_loss": sum(1 for d in self.delete if d["data_loss"]) + sum(1 for u in self.update if u.data_loss),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "create": self.create,
            "update": [u.to_dict() for u in self.update],
            "delete": self.delete,
            "summary": self.counts(),
        }


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    facts = _facts(new.get("cloud") or old.get("cloud"))
    before = {_key(r): r for r in old["resources"]}
    after = {_key(r): r for r in new["resources"]}
    changes = Changes()
    for key in sorted(after.keys() - before.keys()):
        changes.create.append(_brief(after[key], facts, deleted=False))
    for key in sorted(before.keys() - after.keys()):
        changes.delete.append(_brief(before[key], facts, deleted=True))
    for key in sorted(before.keys() & after.keys()):
        values = _changed_values(before[key], after[key])
        if values:
            resource = after[key]
            paths = [v.path for v in values]
            changes.update.append(
                Update(
                    name=resource["name"],
                    type=resource["type"],
                    stage=resource.get("stage"),
                    paths=paths,
                    part=resource.get("part"),
                    values=values,
                    verdict=judge(facts, resource["type"], paths),
                    # Protection in the state is the old one until `up` applies the new plan.
                    protected=bool(before[key].get("protect")),
                    holds=facts.holds_data.get(resource["type"]),
                    model=resource.get("model"),
                )
            )
    return changes


def _facts(cloud: Any) -> ResourceFacts:
    from mlops_infra.backends import registry

    backend = registry().get(cloud) if isinstance(cloud, str) else None
    return backend.resource_facts() if backend is not None else ResourceFacts()


def _key(resource: dict[str, Any]) -> tuple[str, str, str]:
    # Logical names are unique per Pulumi stack; a split plan has several (its resources' `part`).
    return resource.get("part") or "", resource["name"], resource["type"]


def _brief(resource: dict[str, Any], facts: ResourceFacts, *, deleted: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"name": resource["name"], "type": resource["type"], "stage": resource.get("stage")}
    for key in ("model", "part"):
        if key in resource:
            found[key] = resource[key]
    protected = bool(resource.get("protect"))
    holds = facts.holds_data.get(resource["type"])
    found.update(_flags(protected, holds))
    if deleted:
        found["blocked"] = protected
        found["data_loss"] = holds is not None
        if protected:
            found["blocked_reason"] = "`up` refuses to delete a protected resource: " + UNPROTECT_HINT
    return found


def _changed_values(old: dict[str, Any], new: dict[str, Any]) -> list[ValueChange]:
    values = [
        ValueChange(name, old.get(name, ABSENT), new.get(name, ABSENT)) for name in _TRACKED if old.get(name) != new.get(name)
    ]
    values += _walk(old.get("inputs", {}), new.get("inputs", {}), "inputs")
    return [_masked(v) for v in values]


def _walk(old: Any, new: Any, path: str) -> list[ValueChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[ValueChange] = []
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}.{key}"
            if key not in old or key not in new:
                found.append(ValueChange(child, old.get(key, ABSENT), new.get(key, ABSENT)))
            else:
                found += _walk(old[key], new[key], child)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in _walk(a, b, f"{path}[{i}]")]
    if isinstance(old, str) and isinstance(new, str) and old != new and _is_json(old) and _is_json(new):
        # Policies and pipeline definitions are JSON strings: name the part that changed.
        inner = _walk(json.loads(old), json.loads(new), path + "<json>")
        return inner or [ValueChange(path, old, new)]
    return [] if old == new else [ValueChange(path, old, new)]


def _masked(change: ValueChange) -> ValueChange:
    last = re.split(r"[.\[<]", change.path)[-1]
    if not _SECRET_KEY.search(last):
        return change
    hide = lambda value: value if value is ABSENT or value is None else SECRET  # noqa: E731
    return ValueChange(change.path, hide(change.old), hide(change.new))


def _is_json(text: str) -> bool:
    if not text[:1] in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- text ------------------------------------------------------------------------------------


def render_changes(changes: Changes, *, width: int = 100) -> str:
    """The diff for a terminal or a log: blocked and data-losing changes first, values shortened."""
    if changes.empty:
        return "No changes."
    counts = changes.counts()
    lines = [summary_line(counts)]
    if counts["blocked"]:
        lines.append(f"  BLOCKED: `up` refuses to delete or replace a protected resource: {UNPROTECT_HINT}")
    for item in ordered_deletes(changes):
        lines.append(f"  - {_where(item.get('part'))}{item['name']}  {item['type']}{_marks(item, deleted=True)}")
    for update in ordered_updates(changes):
        lines.append(f"  ~ {_where(update.part)}{update.name}  {update.type}{_update_marks(update)}")
        if update.replace is not False:
            lines.append(f"      {'replaced' if update.replace else 'replaced?'}: {update.verdict.reason}")
        for value in update.values:
            old, new = shorten_pair(value.old, value.new, width)
            lines.append(f"      {value.path}: {old} -> {new}")
    for item in changes.create:
        lines.append(f"  + {_where(item.get('part'))}{item['name']}  {item['type']}{_marks(item, deleted=False)}")
    return "\n".join(lines)


def summary_line(counts: dict[str, int]) -> str:
    text = (
        f"Changes: {counts['create']} to create, {counts['update']} to update "
        f"({counts['replace']} replaced, {counts['replace_unknown']} unknown), {counts['delete']} to delete"
    )
    if counts["blocked"] or counts["data_loss"]:
        text += f"; {counts['blocked']} blocked, {counts['data_loss']} deleting data"
    return text


def _rank(blocked: bool | None, data_loss: bool | None) -> int:
    return 0 if blocked else 1 if data_loss else 2 if blocked is None or data_loss is None else 3


def ordered_deletes(changes: Changes) -> list[dict[str, Any]]:
    return sorted(changes.delete, key=lambda d: _rank(d["blocked"], d["data_loss"]))


def ordered_updates(changes: Changes) -> list[Update]:
    return sorted(changes.update, key=lambda u: (_rank(u.blocked, u.data_loss), u.replace is False))


def _marks(item: dict[str, Any], *, deleted: bool) -> str:
    marks = (["BLOCKED"] if deleted and item["blocked"] else []) + (["protected"] if item["protected"] else [])
    if item["holds_data"]:
        marks.append(f"{'deletes' if deleted else 'holds'} {item['holds']}")
    return f"  [{', '.join(marks)}]" if marks else ""


def _update_marks(update: Update) -> str:
    marks = ["BLOCKED"] if update.blocked else []
    marks.append({True: "replace", False: "in place", None: "replace?"}[update.replace])
    if update.protected:
        marks.append("protected")
    if update.holds:
        marks.append(f"{'deletes' if update.replace else 'holds'} {update.holds}")
    return f"  [{', '.join(marks)}]"


def shorten(value: Any, width: int) -> str:
    """A value as one line of at most `width` characters (the JSON document keeps it whole)."""
    return shorten_pair(value, value, width)[0]


def shorten_pair(old: Any, new: Any, width: int) -> tuple[str, str]:
    """Old and new as lines of about `width` characters, both cut around their first difference."""
    texts = [repr(v) if v is ABSENT else json.dumps(v, ensure_ascii=False, sort_keys=True) for v in (old, new)]
    if all(len(text) <= width for text in texts):
        return texts[0], texts[1]
    first = next((i for i, (a, b) in enumerate(zip(*texts)) if a != b), min(map(len, texts)))
    span = max(width - 24, 16)  # room for the marks and the length
    start = max(0, min(first - span // 3, max(map(len, texts)) - span))
    return _window(texts[0], start, width, span), _window(texts[1], start, width, span)


def _window(text: str, start: int, width: int, span: int) -> str:
    if len(text) <= width:
        return text
    begin = min(start, max(0, len(text) - span))
    cut = text[begin : begin + span]
    return ("..." if begin else "") + cut + ("..." if begin + len(cut) < len(text) else "") + f" ({len(text)} chars)"


def _where(part: str | None) -> str:
    return f"[{part}] " if part else ""
