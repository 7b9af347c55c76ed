"""`check`: the built-in rules and the organization's rules on one plan, located on the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_infra.policy.facts import facts_for
from mlops_infra.policy.organization import Context, PolicyFile, organization_findings
from mlops_infra.policy.rules import MANDATORY, Finding, builtin_findings

CHECK_FORMAT = "mlops-infra/check/v1"


def plan_resources(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The cloud resources of a plan document (components are bookkeeping, not resources)."""
    return [r for r in document["resources"] if r.get("custom", True)]


def findings_for(
    *, spec: Any, cloud: str, resources: list[dict[str, Any]], policies: list[PolicyFile], estimate: Any = None
) -> list[Finding]:
    """Every finding of the built-in rules and of each policy, in a stable order."""
    facts = facts_for(cloud)
    found = builtin_findings(resources, facts)
    ctx = Context(spec=spec, cloud=cloud, resources=resources, facts=facts)
    for policy in policies:
        found += organization_findings(ctx, policy, estimate=estimate)
    return sorted(found, key=lambda f: (f.severity != MANDATORY, f.rule, f.resource or "", f.message))


def locate(findings: list[Finding], spec_file: Path) -> list[Finding]:
    """Give findings that come from the spec its file and line."""
    from mlops_infra.spec.validate import read_spec
    from mlops_infra.spec.yaml_loader import load_yaml

    doc = load_yaml(read_spec(spec_file), str(spec_file))
    return [f.located(str(spec_file), doc.line_for(f.path)) if f.path else f for f in findings]


def check_document(
    *, project: str, stack: str, cloud: str, findings: list[Finding], policy_files: list[str]
) -> dict[str, Any]:
    mandatory = sum(1 for f in findings if f.severity == MANDATORY)
    return {
        "format": CHECK_FORMAT,
        "project": project,
        "stack": stack,
        "cloud": cloud,
        "policies": policy_files,
        "passed": mandatory == 0,
        "findings": [f.to_dict() for f in findings],
        "summary": {"mandatory": mandatory, "advisory": len(findings) - mandatory},
    }
