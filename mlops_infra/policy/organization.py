"""An organization's rules, from a YAML policy file, evaluated on the plan and the spec.

    apiVersion: mlops-infra/policy/v1
    required_tags: [owner, cost-center]
    allowed_regions: {aws: [eu-west-1], gcp: [europe-west4], azure: [westeurope]}
    allowed_instance_types: {aws: [ml.m5.large, ml.m5.xlarge]}
    max_gpus: 4                 # per instance
    max_replicas: 10            # per endpoint
    max_monthly_cost: 5000      # the estimate's monthly_total, in its currency
    network: private
    advisory: [max_monthly_cost]   # these only print; every other finding makes check exit 1

The file is read with the project's safe YAML loader and validated like a spec: every
problem at once, with file, line and path (exit 2).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError

from mlops_infra.errors import SpecInvalid
from mlops_infra.policy.facts import CloudFacts
from mlops_infra.policy.rules import ADVISORY, MANDATORY, Finding
from mlops_infra.spec.models import Strict
from mlops_infra.tagging import TagKey

POLICY_VERSION = "mlops-infra/policy/v1"
RuleName = Literal[
    "required_tags",
    "allowed_regions",
    "allowed_instance_types",
    "max_gpus",
    "max_replicas",
    "max_monthly_cost",
    "network",
]


class PolicyFile(Strict):
    api_version: Literal["mlops-infra/policy/v1"] = Field(alias="apiVersion", description="policy file format")
    required_tags: list[TagKey] = Field(default_factory=list, description="tag keys every taggable resource carries")
    allowed_regions: dict[str, list[str]] = Field(default_factory=dict, description="per cloud: regions allowed")
    allowed_instance_types: dict[str, list[str]] = Field(
        default_factory=dict, description="per cloud: instance/machine types allowed for training and serving"
    )
    max_gpus: Optional[int] = Field(None, ge=0, description="most GPUs one training instance or replica may have")
    max_replicas: Optional[int] = Field(None, ge=1, description="most replicas an endpoint may scale to")
    max_monthly_cost: Optional[float] = Field(None, gt=0, description="most the monthly estimate may be")
    network: Optional[Literal["private"]] = Field(None, description="private: governance.network must be private")
    advisory: list[RuleName] = Field(default_factory=list, description="rules that only print")


class PolicyInvalid(SpecInvalid):
    def __init__(self, problems: list[Any], file: str) -> None:
        super().__init__(problems)
        count = len(problems)
        self.message = f"{count} problem{'s' if count != 1 else ''} in the policy file {file}"


def load_policy(path: Path) -> PolicyFile:
    """Read and validate a policy file; PolicyInvalid carries every problem with its line."""
    from mlops_infra.spec.problems import Problem, sort_problems
    from mlops_infra.spec.reading import read_regular_file
    from mlops_infra.spec.validate import MAX_SPEC_BYTES, _structural_problems
    from mlops_infra.spec.yaml_loader import YamlLoadError, load_yaml

    try:
        text = read_regular_file(
            path, limit=MAX_SPEC_BYTES, what="policy file", missing_hint="pass --policy PATH to an existing policy file"
        )
        doc = load_yaml(text, str(path))
    except YamlLoadError as exc:
        raise PolicyInvalid(exc.problems, str(path)) from None
    if not isinstance(doc.data, dict):
        problem = Problem(str(path), 1, (), "a policy file must be a mapping", hint=f"start with apiVersion: {POLICY_VERSION}")
        raise PolicyInvalid([problem], str(path))
    try:
        return PolicyFile.model_validate(doc.data)
    except ValidationError as exc:
        raise PolicyInvalid(sort_problems(_structural_problems(exc, doc, PolicyFile)), str(path)) from None


@dataclass
class Context:
    """What the organization's rules look at: the spec, the target cloud, the plan's resources."""

    spec: Any
    cloud: str
    resources: list[dict[str, Any]]
    facts: CloudFacts

    @property
    def settings(self) -> Any:
        return self.spec.settings_for(self.cloud)


def organization_findings(ctx: Context, policy: PolicyFile, *, estimate: Any = None) -> list[Finding]:
    found: list[Finding] = []
    found += _required_tags(ctx, policy)
    found += _allowed_regions(ctx, policy)
    found += _instance_types(ctx, policy)
    found += _max_replicas(ctx, policy)
    if policy.network and ctx.spec.governance.network != policy.network:
        found.append(
            Finding(
                "network",
                MANDATORY,
                f"the policy requires network: {policy.network}, the spec has {ctx.spec.governance.network}",
                hint=f"set governance.network: {policy.network}",
                path=("governance", "network"),
            )
        )
    if policy.max_monthly_cost is not None and estimate is not None:
        found += _max_cost(policy.max_monthly_cost, estimate)
    return [_severity(f, policy) for f in found]


def _severity(finding: Finding, policy: PolicyFile) -> Finding:
    from dataclasses import replace

    return replace(finding, severity=ADVISORY) if finding.rule in policy.advisory else finding


def _required_tags(ctx: Context, policy: PolicyFile) -> list[Finding]:
    found = []
    for key in policy.required_tags:
        missing = []
        for resource in ctx.resources:
            inputs = resource.get("inputs", {})
            field = ctx.facts.tag_fields.get(resource["type"], "tags" if "tags" in inputs else "labels")
            if field is None or field not in inputs:
                continue
            tags = inputs.get(field)
            if not isinstance(tags, dict) or key not in tags:
                missing.append(resource["name"])
        if missing:
            found.append(
                Finding(
                    "required_tags",
                    MANDATORY,
                    f"tag {key!r} is missing on {len(missing)} resource{'s' if len(missing) != 1 else ''} "
                    f"(e.g. {missing[0]})",
                    hint=f"add {key}: <value> under tags (it goes on every resource)",
                    path=("tags",),
                )
            )
    return found


def _allowed_regions(ctx: Context, policy: PolicyFile) -> list[Finding]:
    from mlops_infra.cost.prices import price_book

    allowed = policy.allowed_regions.get(ctx.cloud)
    if allowed is None:
        return []
    field = price_book(ctx.cloud).region_setting
    region = getattr(ctx.settings, field)
    if region in allowed:
        return []
    return [
        Finding(
            "allowed_regions",
            MANDATORY,
            f"{ctx.cloud} {field} {region!r} is not allowed",
            hint=f"use one of: {', '.join(allowed)}",
            path=("clouds", ctx.cloud, field),
        )
    ]


def _instance_types(ctx: Context, policy: PolicyFile) -> list[Finding]:
    allowed = policy.allowed_instance_types.get(ctx.cloud)
    if allowed is None and policy.max_gpus is None:
        return []
    pricing = importlib.import_module(f"mlops_infra.backends.{ctx.cloud}.pricing")
    found = []
    for i, model in enumerate(ctx.spec.models):
        for purpose in ("training", "serving"):
            if getattr(model, purpose) is None:
                continue
            skus = getattr(pricing, f"{purpose}_skus")(model=model, settings=ctx.settings)
            path: tuple[str | int, ...] = ("models", i, purpose, "compute")
            machine = skus[0][0]
            if allowed is not None and machine not in allowed:
                found.append(
                    Finding(
                        "allowed_instance_types",
                        MANDATORY,
                        f"{model.name} {purpose} runs on {machine}, which the policy does not allow",
                        hint=f"choose compute that maps to one of: {', '.join(allowed)} (or an override)",
                        path=path,
                    )
                )
            gpus = sum(ctx.facts.gpus.get(sku, 0) * count for sku, count in skus)
            if policy.max_gpus is not None and gpus > policy.max_gpus:
                found.append(
                    Finding(
                        "max_gpus",
                        MANDATORY,
                        f"{model.name} {purpose} has {gpus} GPUs per instance ({machine}); the policy allows "
                        f"{policy.max_gpus}",
                        hint="ask for fewer GPUs (compute.gpus or a smaller size class)",
                        path=path,
                    )
                )
    return found


def _max_replicas(ctx: Context, policy: PolicyFile) -> list[Finding]:
    from mlops_infra.cost.estimate import model_of, value_at

    if policy.max_replicas is None:
        return []
    models = sorted((m.name for m in ctx.spec.models), key=len, reverse=True)
    index = {m.name: i for i, m in enumerate(ctx.spec.models)}
    found = []
    for type_, path in ctx.facts.replica_limits:
        for resource in (r for r in ctx.resources if r["type"] == type_):
            value = value_at(resource.get("inputs", {}), path)
            count = int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None
            if count is None or count <= policy.max_replicas:
                continue
            model = model_of(resource["name"], resource.get("stage"), models)
            found.append(
                Finding(
                    "max_replicas",
                    MANDATORY,
                    f"scales to {count} replicas; the policy allows {policy.max_replicas}",
                    hint=f"lower max_replicas to {policy.max_replicas}",
                    resource=resource["name"],
                    path=("models", index[model], "serving", "autoscaling", "max_replicas") if model else (),
                )
            )
    return found


def _max_cost(limit: float, estimate: dict[str, Any]) -> list[Finding]:
    total = estimate["monthly_total"]
    unpriced = len(estimate["unpriced"])
    if total <= limit and not unpriced:
        return []
    currency = estimate["currency"]
    if total > limit:
        message = f"the estimate is {total} {currency}/month, above the policy's {limit}"
        hint = "see `mlops-infra cost` for where it goes (by_model, by_stage)"
        return [Finding("max_monthly_cost", MANDATORY, message, hint=hint)]
    # Within the limit, but not everything could be priced: say so without failing.
    message = f"the estimate is {total} {currency}/month, within {limit}, but {unpriced} item(s) are unpriced"
    return [Finding("max_monthly_cost", ADVISORY, message, hint="`mlops-infra cost` lists them")]
