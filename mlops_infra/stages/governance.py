"""Governance: the stack's encryption key, the workload identities and their grants.

Built first on every cloud: every other stage encrypts with its key and runs
as one of its identities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_infra.stages.base import Stage

# Workload identities every stack gets; later stages run as one of them.
# training: writes artifacts (stack-wide work). serving: reads artifacts.
# automation: starts pipelines and schedules (retraining, monitoring jobs).
# A model's own data is read by its group's reader identity (GovernanceOutputs.groups,
# mlops_infra/access.py), so no identity's grants grow with the fleet.
IDENTITIES = ("training", "serving", "automation")


@dataclass(frozen=True)
class Identity:
    role: str  # one of IDENTITIES
    id: Any  # what the cloud uses to refer to it: role name, service account email, identity id
    principal: Any  # what grants name: role ARN, "serviceAccount:...", principal id


@dataclass(frozen=True)
class GovernanceOutputs:
    key_id: Any  # key ARN / crypto key id / key vault key id (Output[str] or str)
    identities: dict[str, Identity]
    scope: Any = None  # where resources live when the cloud needs one (Azure resource group name)
    # Model group -> the identity that trains its models and reads their data (access.py).
    groups: dict[str, Identity] = field(default_factory=dict)

    def reader(self, model: Any) -> Identity:
        """The identity that runs `model`'s jobs and reads its data (its group's)."""
        from mlops_infra.layout import group_of

        return self.groups[group_of(model)]

    def exports(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "identities": {role: ident.principal for role, ident in sorted(self.identities.items())},
        }


STAGE = Stage(
    name="governance",
    title="Governance",
    requires=(),
    used_at=lambda spec: [("governance",)],
    always=True,
    stack_wide=True,
)
