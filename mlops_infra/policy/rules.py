"""The built-in rules: the project's security invariants, as plain functions over plan resources.

A resource here is what the plan document lists (name, type, inputs, protect); the Pulumi
policy pack hands the same shape over from a real preview (mlops_infra/policy/pack_adapter.py),
so `plan`, `check`, `preview` and `up` judge a stack by the same code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from mlops_infra.cost.estimate import value_at
from mlops_infra.policy.facts import CloudFacts, Companion, Require

MANDATORY = "mandatory"
ADVISORY = "advisory"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    hint: str | None = None
    resource: str | None = None
    path: tuple[str | int, ...] = ()  # where in the spec it comes from (empty: not the spec)
    file: str | None = None
    line: int | None = None

    def located(self, file: str, line: int | None) -> "Finding":
        return replace(self, file=file, line=line)

    def to_dict(self) -> dict[str, Any]:
        from mlops_infra.spec.problems import dotted

        return {
            "rule": self.rule,
            "severity": self.severity,
            "resource": self.resource,
            "path": dotted(self.path) if self.path else None,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
        }

    def render(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else (f"{self.file}: " if self.file else "")
        subject = self.resource or (self.to_dict()["path"] or "")
        text = f"{where}{self.severity}: [{self.rule}] {subject + ': ' if subject else ''}{self.message}"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


Resources = list[dict[str, Any]]
Rule = Callable[[Resources, CloudFacts], list[Finding]]


def encryption(resources: Resources, facts: CloudFacts) -> list[Finding]:
    """Stateful data and keys are encrypted with the stack's customer-managed key, keys rotate."""
    return _requirements(
        "encryption", resources, facts.encryption, hint="keep governance.encryption: customer-managed"
    )


def public_access(resources: Resources, facts: CloudFacts) -> list[Finding]:
    """Nothing is readable by anyone: buckets block public access, no grant names the public."""
    found = _requirements("no-public-access", resources, facts.public_access, hint="keep storage private")
    for resource in resources:
        strings = _strings(resource.get("inputs", {}))
        for principal in facts.public_principals:
            if principal in strings:
                found.append(_finding("no-public-access", resource, f"grants access to {principal}"))
        for statement in _allow_statements(strings):
            allowed = statement.get("Principal")
            values = [allowed] if isinstance(allowed, str) else _flat(allowed)
            if "*" in values:
                found.append(_finding("no-public-access", resource, "a policy allows the public principal '*'"))
    return found


def wildcard_grants(resources: Resources, facts: CloudFacts) -> list[Finding]:
    """Grants are least privilege: no wildcard actions, no NotAction/NotResource, no all-powerful roles."""
    found = []
    broad = [re.compile(p) for p in facts.broad_roles]
    for resource in resources:
        strings = _strings(resource.get("inputs", {}))
        for statement in _allow_statements(strings):
            actions = _flat(statement.get("Action"))
            wild = [a for a in actions if "*" in a]
            if wild:
                found.append(_finding("no-wildcard-grants", resource, f"allows wildcard actions {', '.join(wild)}"))
            if "NotAction" in statement or "NotResource" in statement:
                found.append(_finding("no-wildcard-grants", resource, "an Allow uses NotAction or NotResource"))
        for text in strings:
            if any(p.search(text) for p in broad):
                found.append(_finding("no-wildcard-grants", resource, f"grants the all-powerful role {text}"))
    return found


def protected_data(resources: Resources, facts: CloudFacts) -> list[Finding]:
    """Resources that hold data (buckets, keys, vaults) are protected from deletion."""
    return [
        _finding("protected-data", r, "holds data but is not protected (protect: false)")
        for r in resources
        if r["type"] in facts.stateful and not r.get("protect")
    ]


def audit_logging(resources: Resources, facts: CloudFacts) -> list[Finding]:
    """Data access and key use are audited: the stack has a working audit log."""
    if not facts.audit:
        return []  # the cloud has nothing a stack can turn on (Kubernetes: the API server's policy; validate warns)
    if any(rule.holds(value_at(r.get("inputs", {}), rule.path)) for rule in facts.audit for r in _of(resources, rule.type)):
        return []
    kinds = ", ".join(sorted({rule.type for rule in facts.audit}))
    return [
        Finding(
            rule="audit-logging",
            severity=MANDATORY,
            message=f"the stack records no audit log (expected an enabled {kinds})",
            hint="set governance.audit_logs: true",
            path=("governance", "audit_logs"),
        )
    ]


BUILTIN: dict[str, Rule] = {
    "encryption": encryption,
    "no-public-access": public_access,
    "no-wildcard-grants": wildcard_grants,
    "protected-data": protected_data,
    "audit-logging": audit_logging,
}


def builtin_findings(resources: Resources, facts: CloudFacts) -> list[Finding]:
    return [f for rule in BUILTIN.values() for f in rule(resources, facts)]


def _requirements(
    rule: str, resources: Resources, requirements: Iterable[Require | Companion], *, hint: str
) -> list[Finding]:
    found = []
    for requirement in requirements:
        if isinstance(requirement, Companion):
            keys = {value_at(r.get("inputs", {}), requirement.companion_key) for r in _of(resources, requirement.companion)}
            for resource in _of(resources, requirement.type):
                if value_at(resource.get("inputs", {}), requirement.key) not in keys:
                    found.append(_finding(rule, resource, requirement.why, hint=hint))
            continue
        for resource in _of(resources, requirement.type):
            value = value_at(resource.get("inputs", {}), requirement.path)
            if not requirement.holds(value):
                expected = "set" if not requirement.why else requirement.why
                found.append(_finding(rule, resource, f"{requirement.path} is {value!r} ({expected})", hint=hint))
    return found


def _finding(rule: str, resource: dict[str, Any], message: str, *, hint: str | None = None) -> Finding:
    return Finding(rule=rule, severity=MANDATORY, message=message, hint=hint, resource=resource["name"])


def _of(resources: Resources, type_: str) -> Resources:
    return [r for r in resources if r["type"] == type_]


def _allow_statements(strings: list[str]) -> list[dict[str, Any]]:
    statements = []
    for text in strings:
        if text.lstrip().startswith("{") and '"Statement"' in text:
            try:
                document = json.loads(text)
            except ValueError:
                continue
            statements += [s for s in _flat(document.get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"]
    return statements


def _flat(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [v for vs in value.values() for v in _flat(vs)]
    return value if isinstance(value, list) else [value]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
