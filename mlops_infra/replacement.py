"""Will a change replace a resource? What the offline diff can know, from each cloud's facts.

Offline there is no provider schema, so each backend keeps, as data
(backends/<cloud>/resource-facts.json), per resource type:
- `identity`: the inputs that name or place the resource (its name, region,
  project, resource group, parent). The neutral rule: no cloud renames or moves
  a resource in place, so a change of one of them replaces it;
- `replace`: other inputs the cloud cannot change in place ("*": every input
  but the ones updated everywhere, such as tags);
- `in_place`: inputs its update operation takes;
and which types hold data. A change the facts do not cover is said to be
unknown (None), never guessed: `mlops-infra preview` asks the provider.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

FACTS_FILE = "resource-facts.json"
_TOP = re.compile(r"^inputs\.([^.\[<]+)")


@dataclass(frozen=True)
class TypeFacts:
    identity: frozenset[str] = frozenset()
    replace: tuple[str, ...] = ()  # input paths ("*": every input not updated everywhere)
    in_place: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ResourceFacts:
    types: dict[str, TypeFacts] = field(default_factory=dict)
    holds_data: dict[str, str] = field(default_factory=dict)  # type -> what it holds
    in_place_everywhere: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    replace: bool | None  # None: the facts do not say
    reason: str


@lru_cache(maxsize=None)
def load_facts(package: str) -> ResourceFacts:
    """A backend's facts; a backend without the file knows nothing (every change is unknown)."""
    source = resources.files(package).joinpath(FACTS_FILE)
    if not source.is_file():
        return ResourceFacts()
    raw = json.loads(source.read_text())
    types = {
        name: TypeFacts(
            identity=frozenset(entry.get("identity", ())),
            replace=tuple(entry.get("replace", ())),
            in_place=frozenset(entry.get("in_place", ())),
        )
        for name, entry in raw.get("types", {}).items()
    }
    return ResourceFacts(
        types=types,
        holds_data=dict(raw.get("holds_data", {})),
        in_place_everywhere=frozenset(raw.get("in_place_everywhere", ())),
    )


def judge(facts: ResourceFacts, resource_type: str, paths: list[str]) -> Verdict:
    """Whether changing `paths` ("inputs.x.y", "protect", "parent") of a resource replaces it."""
    known = facts.types.get(resource_type, TypeFacts())
    inputs = [p for p in paths if p.startswith("inputs.")]
    props = sorted({_top(p) for p in inputs})
    named = [p for p in props if p in known.identity]
    if named:
        return Verdict(True, f"{_list(named)} changed: that names or places the resource, and no cloud renames or "
                             "moves a resource in place")
    beyond_everywhere = [p for p in props if p not in facts.in_place_everywhere]
    if "*" in known.replace and beyond_everywhere:
        return Verdict(True, f"this type has no in-place update: changing {_list(beyond_everywhere)} replaces it")
    forced = sorted({rule for rule in known.replace if rule != "*" for p in inputs if _under(p, rule)})
    if forced:
        return Verdict(True, f"{_list(forced)} cannot change in place")
    if "parent" in paths:
        return Verdict(None, "its parent changed, which gives it a new URN: Pulumi replaces it unless an alias "
                             "carries the old one over")
    if "provider" in paths:
        return Verdict(None, "its provider changed: whether that replaces it depends on the provider's settings")
    unknown = [p for p in beyond_everywhere if p not in known.in_place]
    if unknown:
        return Verdict(None, f"offline, mlops-infra cannot tell whether {_list(unknown)} change{'s' if len(unknown) == 1 else ''} "
                             "in place; `mlops-infra preview` asks the provider")
    return Verdict(False, "updated in place")


def _top(path: str) -> str:
    match = _TOP.match(path)
    return match.group(1) if match else path


def _under(path: str, rule: str) -> bool:
    inner = path[len("inputs.") :]
    return inner == rule or inner.startswith((rule + ".", rule + "[", rule + "<"))


def _list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)
