"""Pure rules of the stack's Azure ML workspace (no SDK: validate uses them): whether the stack has
one, and how much of Azure ML's per-region quotas its models take (facts/ml-quotas.json).

Every trained model has a compute cluster of its own, running as its group's identity: a node
can get a token for every identity attached to its cluster, so clusters are never shared across
groups, and one per model keeps each model's VM size and node count its own. Clusters scale to
zero, so they cost nothing idle; what they do take is Azure ML's total compute limit per region
(clusters, compute instances and online deployments together), which validate checks here with
the endpoint and deployment limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.facts import fact
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

CLOUD = "azure"
ML_STAGES = ("tracking", "training", "registry", "serving")  # stages that live in the workspace


def uses_workspace(spec: "SpecBase") -> bool:
    """True when the spec uses a stage that lives in the Azure ML workspace."""
    from mlops_infra.stages import all_stages

    return any(stage.used(spec) for stage in all_stages() if stage.name in ML_STAGES)


@dataclass(frozen=True)
class MlUsage:
    clusters: int  # one compute cluster per trained model
    endpoints: int  # one online endpoint per served model
    deployments: int  # one deployment per served model (two while a canary or a new release rolls out)

    @property
    def computes(self) -> int:
        return self.clusters + self.deployments


def ml_usage(spec: "SpecBase") -> MlUsage:
    served = sum(1 for m in spec.models if m.serving is not None)
    return MlUsage(clusters=sum(1 for m in spec.models if m.training is not None), endpoints=served, deployments=served)


def quota_problems(spec: "SpecBase", settings: Any) -> list["Problem"]:
    usage = ml_usage(spec)
    where = f"in {settings.location}"
    found = []
    default = fact(CLOUD, "ml-quotas", "computes-per-region")
    most = fact(CLOUD, "ml-quotas", "computes-per-region-max")
    computes = (
        f"this stack runs {usage.computes} Azure ML computes {where} ({usage.clusters} training clusters, "
        f"{usage.deployments} online deployments, more while a release rolls out)"
    )
    if usage.computes > most.value:
        found.append(
            finding(
                ("models",),
                f"{computes}, and Azure allows at most {most.cite()}",
                hint="spread the models over stacks in several regions or subscriptions",
                value=usage.computes,
            )
        )
    elif usage.computes > default.value:
        found.append(
            finding(
                ("models",),
                f"{computes}, above Azure's default total compute limit per region, {default.cite()}",
                hint=f"request an increase of the Azure Machine Learning total compute limit {where} (up to "
                f"{most.value}) before deploying",
                value=usage.computes,
                severity="warning",
            )
        )
    for key, count, what in (
        ("endpoints-per-region", usage.endpoints, "online endpoints"),
        ("deployments-per-region", usage.deployments, "online deployments"),
    ):
        limit = fact(CLOUD, "ml-quotas", key)
        if count > limit.value:
            found.append(
                finding(
                    ("models",),
                    f"this stack serves from {count} {what} {where}, above Azure's default of {limit.cite()}",
                    hint="request an exception (quota type Machine Learning Service: Endpoint Limits) before "
                    "deploying",
                    value=count,
                    severity="warning",
                )
            )
    return found
