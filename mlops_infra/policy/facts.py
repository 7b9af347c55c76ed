"""The shapes of what each cloud tells the policy rules (backends/<cloud>/policy_facts.py).

The rules are neutral functions over plan resources; which resource types hold data, which
input says a bucket is encrypted or private, and which roles are too broad are facts of each
cloud, kept as data in its backend folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

_PRESENT = object()


@dataclass(frozen=True)
class Require:
    """A resource of `type` must have `path` (a dotted input path) equal to `equals`, or set at all."""

    type: str
    path: str
    equals: object = _PRESENT
    why: str = ""

    def holds(self, value: object) -> bool:
        if self.equals is _PRESENT:
            return value not in (None, "", [], {})
        return value == self.equals


@dataclass(frozen=True)
class Companion:
    """Every resource of `type` needs a `companion` resource whose `companion_key` input equals its `key` input."""

    type: str
    key: str
    companion: str
    companion_key: str
    why: str = ""


@dataclass(frozen=True)
class CloudFacts:
    stateful: frozenset[str]  # resource types that hold data: must be protected from destroy
    encryption: tuple[Require | Companion, ...]
    public_access: tuple[Require | Companion, ...]
    public_principals: tuple[str, ...]  # member strings that mean "anyone"
    broad_roles: tuple[str, ...]  # regular expressions of roles that grant everything
    audit: tuple[Require, ...]  # at least one resource must satisfy one of these
    tag_fields: dict[str, str | None] = field(default_factory=dict)  # type -> its tag input (None: none)
    replica_limits: tuple[tuple[str, str], ...] = ()  # (type, input path of the replica maximum)
    gpus: dict[str, int] = field(default_factory=dict)  # instance type -> GPUs (from the catalog)


def facts_for(cloud: str) -> CloudFacts:
    module: ModuleType = importlib.import_module(f"mlops_infra.backends.{cloud}.policy_facts")
    return module.FACTS
