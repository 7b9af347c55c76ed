"""Deterministic physical names within each cloud's rules.

Scheme (the same on every cloud): the words project, environment and the
resource's own parts are sanitized for the target kind and joined with the
kind's separator. When that is too long, when sanitizing lost information, or
when the kind is globally unique, a 6-hex-digit hash of the unsanitized
identity is appended (after truncating), so names never change between runs,
never exceed the limit and rarely collide. Every generated name is checked
against the reference rule (data/cloud-name-rules.json); a miss is a bug.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, Sequence

from mlops_infra.errors import InternalError

HASH_LENGTH = 6


@dataclass(frozen=True)
class NameRule:
    kind: str
    min: int
    max: int
    regex: str

    def accepts(self, name: str) -> bool:
        return self.min <= len(name) <= self.max and re.fullmatch(self.regex, name) is not None


@dataclass(frozen=True)
class NameStyle:
    """How to build a name for one kind: which characters, which separator."""

    separator: str = "-"  # "" for kinds that allow only letters and digits
    lowercase: bool = True
    global_unique: bool = False  # unique across all customers: always add the hash
    prefix: str = ""  # a fixed prefix required by the cloud (e.g. "alias/")
    max_length: int | None = None  # stricter than the rule (e.g. a prefix-based name)
    letter_first: bool = False  # the kind must start with a letter


@lru_cache(maxsize=1)
def name_rules() -> dict[str, NameRule]:
    """Every naming rule: the shared table (data/cloud-name-rules.json) and each backend's own
    (backends/<cloud>/facts/name-rules.json, kinds prefixed with the cloud's name)."""
    from mlops_infra.backends import names

    raw = json.loads(resources.files("mlops_infra.data").joinpath("cloud-name-rules.json").read_text())
    tables = [("", raw)]
    for cloud in names():
        own = resources.files(f"mlops_infra.backends.{cloud}").joinpath("facts", "name-rules.json")
        if own.is_file():
            tables.append((f"{cloud}.", json.loads(own.read_text())))
    rules: dict[str, NameRule] = {}
    for prefix, table in tables:
        for kind, r in table.items():
            if kind.startswith("_"):
                continue
            if not kind.startswith(prefix) or kind in rules:
                raise InternalError(f"naming rule {kind!r} is outside its backend or defined twice")
            rules[kind] = NameRule(kind=kind, min=r["min"], max=r["max"], regex=r["regex"])
    return rules


@lru_cache(maxsize=1)
def tag_limits() -> dict[str, Any]:
    raw = json.loads(resources.files("mlops_infra.data").joinpath("cloud-name-rules.json").read_text())
    return dict(raw["_tag_limits"])


def stable_hash(*words: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256("\x1f".join(words).encode()).hexdigest()[:length]


def _sanitize(word: str, style: NameStyle) -> str:
    text = word.lower() if style.lowercase else word
    if style.separator:
        sep = re.escape(style.separator)
        text = re.sub(r"[^A-Za-z0-9]+", style.separator, text)
        text = re.sub(f"{sep}+", style.separator, text).strip(style.separator)
    else:
        text = re.sub(r"[^A-Za-z0-9]", "", text)
    return text


class Namer:
    """Physical names for one (cloud, project, environment, scope).

    `scope` names where global uniqueness is judged (the GCP project, say) and
    feeds the hash of globally unique kinds, so two stacks that differ only in
    scope do not collide.
    """

    def __init__(
        self,
        *,
        cloud: str,
        project: str,
        environment: str,
        styles: Mapping[str, NameStyle],
        scope: str = "",
    ) -> None:
        self.cloud = cloud
        self.project = project
        self.environment = environment
        self.styles = styles
        self.scope = scope
        self._rules = name_rules()

    def name(self, kind: str, *parts: str) -> str:
        """The physical name of a resource of `kind` ('aws.s3.bucket') for `parts`."""
        try:
            style = self.styles[kind]
            rule = self._rules[kind]
        except KeyError:
            raise InternalError(f"no naming rule for {kind!r} on {self.cloud}") from None
        words = [self.project, self.environment, *parts]
        name = make_name(words, style=style, rule=rule, seed=(kind, self.scope))
        if not rule.accepts(name):
            raise InternalError(f"generated {kind} name {name!r} breaks the cloud's rule {rule.regex}")
        return name


def make_name(words: Sequence[str], *, style: NameStyle, rule: NameRule, seed: Sequence[str]) -> str:
    limit = min(rule.max, style.max_length or rule.max) - len(style.prefix)
    cleaned = [w for w in (_sanitize(word, style) for word in words) if w]
    body = style.separator.join(cleaned)
    plain = style.separator.join(words)
    lossy = body != plain
    digest = stable_hash(*seed, *words)
    if style.global_unique or lossy or len(body) > limit or len(body) + len(style.prefix) < rule.min:
        room = limit - len(digest) - len(style.separator)
        body = body[: max(room, 0)].rstrip(style.separator or "-")
        body = f"{body}{style.separator}{digest}" if body else digest
    if style.letter_first and not body[:1].isalpha():
        body = ("n" + body)[:limit]
    return style.prefix + body
