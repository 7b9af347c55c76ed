"""The policy rules as a Pulumi policy pack, so `preview` and `up` judge a real deployment too.

A thin adapter: each built-in rule becomes a stack validation policy that turns the engine's
resources into the plan's shape and calls the same plain function `check` calls; the
organization's rules run the same way. The pack runs in its own process, started by the
Pulumi CLI from mlops_infra/policy/pack/; it finds the spec, the cloud and the policy files
in a small context file named by MLOPS_INFRA_POLICY_CONTEXT (written by write_context).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from mlops_infra.policy.rules import ADVISORY, BUILTIN, MANDATORY, Finding

PACK_DIR = Path(__file__).resolve().parent / "pack"
PACK_NAME = "mlops-infra"
CONTEXT_VAR = "MLOPS_INFRA_POLICY_CONTEXT"
POLICY_FILES_VAR = "MLOPS_INFRA_POLICY"  # os.pathsep-separated policy files for preview/up


def write_context(*, spec: Any, cloud: str, policy_files: list[str], directory: Path) -> Path:
    """Write what the pack process needs (the spec as data, the cloud, the policy files)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"policy-context-{cloud}.json"
    payload = {"cloud": cloud, "policies": policy_files, "spec": spec.model_dump(mode="json", by_alias=True)}
    path.write_text(json.dumps(payload))
    return path


def policy_files_from_env(env: dict[str, str]) -> list[str]:
    return [p for p in env.get(POLICY_FILES_VAR, "").split(os.pathsep) if p]


def resources_from(args: Any, cloud: str) -> list[dict[str, Any]]:
    """The engine's resources (pulumi_policy PolicyResource) in the plan document's shape."""
    from mlops_infra.plan import stage_of

    return [
        {
            "name": r.name,
            "type": r.resource_type,
            "stage": stage_of(r.urn, r.resource_type, cloud),
            "protect": bool(r.opts.protect),
            "inputs": dict(r.props),
            "urn": r.urn,
        }
        for r in args.resources
        if not r.resource_type.startswith(("pulumi:providers:", "mlops-infra:", "pulumi:pulumi:"))
    ]


def build_policies(*, spec: Any, cloud: str, policies: list[Any]) -> list[Any]:
    """One stack validation policy per built-in rule, and the organization's rules by severity."""
    from pulumi_policy import EnforcementLevel, StackValidationPolicy

    from mlops_infra.policy.check import findings_for
    from mlops_infra.policy.facts import facts_for

    facts = facts_for(cloud)

    def builtin(rule: Callable[..., list[Finding]]) -> Callable[[Any, Callable[..., None]], None]:
        def validate(args: Any, report_violation: Callable[..., None]) -> None:
            resources = resources_from(args, cloud)
            for finding in rule(resources, facts):
                report_violation(_message(finding), _urn(resources, finding))

        return validate

    def organization(severity: str) -> Callable[[Any, Callable[..., None]], None]:
        def validate(args: Any, report_violation: Callable[..., None]) -> None:
            resources = resources_from(args, cloud)
            estimate = _estimate(spec, cloud, resources) if any(p.max_monthly_cost for p in policies) else None
            for finding in findings_for(spec=spec, cloud=cloud, resources=resources, policies=policies, estimate=estimate):
                if finding.rule not in BUILTIN and finding.severity == severity:
                    report_violation(_message(finding), _urn(resources, finding))

        return validate

    built = [
        StackValidationPolicy(
            name=name, description=(rule.__doc__ or name).strip(), validate=builtin(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, rule in BUILTIN.items()
    ]
    if policies:
        built += [
            StackValidationPolicy(
                name=f"organization-{severity}",
                description=f"the organization's {severity} rules (policy files)",
                validate=organization(severity),
                enforcement_level=EnforcementLevel.MANDATORY if severity == MANDATORY else EnforcementLevel.ADVISORY,
            )
            for severity in (MANDATORY, ADVISORY)
        ]
    return built


def load_context(path: Path) -> tuple[Any, str, list[Any]]:
    """The spec, cloud and policies a context file names (in the pack process)."""
    from mlops_infra.policy.organization import load_policy
    from mlops_infra.spec.models import spec_model

    payload = json.loads(path.read_text())
    spec = spec_model().model_validate(payload["spec"], strict=False)
    return spec, payload["cloud"], [load_policy(Path(p)) for p in payload["policies"]]


def _estimate(spec: Any, cloud: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    from mlops_infra.cost.estimate import estimate

    return estimate(spec=spec, cloud=cloud, document={"resources": resources}).to_dict(project=spec.project, stack="")


def _urn(resources: list[dict[str, Any]], finding: Finding) -> str | None:
    return next((r["urn"] for r in resources if r["name"] == finding.resource), None) if finding.resource else None


def _message(finding: Finding) -> str:
    return finding.message + (f" (hint: {finding.hint})" if finding.hint else "")
