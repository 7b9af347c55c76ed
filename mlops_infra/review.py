"""What `cost` and `check` do, as plain keyword-only functions returning result objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_infra.errors import UsageError


@dataclass
class CostResult:
    document: dict[str, Any]
    delta: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.document if self.delta is None else {**self.document, "delta": self.delta}


@dataclass
class CheckResult:
    document: dict[str, Any]
    findings: list[Any]

    @property
    def passed(self) -> bool:
        return bool(self.document["passed"])


def _planned(source: Any, cloud: str | None) -> tuple[Any, dict[str, Any], list[Any]]:
    """The validated spec and its plan document on the target cloud."""
    from mlops_infra import api
    from mlops_infra.spec.validate import check_file

    planned = api.plan(source=source, cloud=cloud)
    spec = check_file(source.path, clouds=[planned.document["cloud"]]).spec
    return spec, planned.document, planned.warnings


def cost(*, source: Any, cloud: str | None, against: Path | None = None) -> tuple[CostResult, list[Any]]:
    from mlops_infra.cost.delta import cost_delta, load_estimate
    from mlops_infra.cost.estimate import estimate

    old = load_estimate(against) if against is not None else None
    spec, document, warnings = _planned(source, cloud)
    result = estimate(spec=spec, cloud=document["cloud"], document=document)
    current = result.to_dict(project=spec.project, stack=source.stack)
    if old is not None and old.get("cloud") != current["cloud"]:
        raise UsageError(
            f"--against: {against} estimates {old.get('cloud')}, this estimate is for {current['cloud']}",
            hint="compare estimates of the same cloud",
        )
    return CostResult(document=current, delta=cost_delta(old, current) if old is not None else None), warnings


def cost_of_plan(*, source: Any, document: dict[str, Any], against: Path) -> tuple[str, str]:
    """The cost section of a plan's pull-request comment: this plan's estimate against an older
    `cost --json` (title, Markdown body)."""
    from mlops_infra.cost.delta import cost_delta, load_estimate, markdown_section
    from mlops_infra.cost.estimate import estimate
    from mlops_infra.spec.validate import check_file

    old = load_estimate(against)
    spec = check_file(source.path, clouds=[document["cloud"]]).spec
    current = estimate(spec=spec, cloud=document["cloud"], document=document).to_dict(
        project=spec.project, stack=source.stack
    )
    if old.get("cloud") != current["cloud"]:
        raise UsageError(
            f"--cost-against: {against} estimates {old.get('cloud')}, this plan is for {current['cloud']}",
            hint="compare estimates of the same cloud",
        )
    return markdown_section(old=old, new=current, delta=cost_delta(old, current))


def check(*, source: Any, cloud: str | None, policy_files: list[Path]) -> tuple[CheckResult, list[Any]]:
    from mlops_infra.cost.estimate import estimate
    from mlops_infra.policy.check import check_document, findings_for, locate, plan_resources
    from mlops_infra.policy.organization import load_policy

    policies = [load_policy(path) for path in policy_files]
    spec, document, warnings = _planned(source, cloud)
    target = document["cloud"]
    needs_cost = any(p.max_monthly_cost is not None for p in policies)
    priced = (
        estimate(spec=spec, cloud=target, document=document).to_dict(project=spec.project, stack=source.stack)
        if needs_cost
        else None
    )
    found = findings_for(spec=spec, cloud=target, resources=plan_resources(document), policies=policies, estimate=priced)
    found = locate(found, source.path)
    doc = check_document(
        project=spec.project, stack=source.stack, cloud=target, findings=found, policy_files=[str(p) for p in policy_files]
    )
    return CheckResult(document=doc, findings=found), warnings
