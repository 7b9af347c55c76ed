"""Workspaces: managed notebooks for users or teams, in the platform's network, with its keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.spec.models import SpecBase
from mlops_infra.stages.base import Stage, finding


@dataclass(frozen=True)
class WorkspacesOutputs:
    workspaces: dict[str, Any]  # user or team -> its notebook's id

    def exports(self) -> dict[str, Any]:
        return {"workspaces": dict(sorted(self.workspaces.items()))}


def _check(spec: SpecBase) -> list:
    if spec.workspaces is None:
        return []
    problems = []
    seen: dict[str, int] = {}
    for i, user in enumerate(spec.workspaces.users):
        if user.name in seen:
            problems.append(
                finding(("workspaces", "users", i, "name"), f"duplicate workspace user {user.name!r}",
                        hint=f"also workspaces.users[{seen[user.name]}]: one workspace per user or team",
                        value=user.name)
            )
        seen.setdefault(user.name, i)
    return problems


STAGE = Stage(
    name="workspaces",
    title="Workspaces",
    requires=("governance", "storage"),
    used_at=lambda spec: [("workspaces",)] if spec.workspaces else [],
    checks=(_check,),
    stack_wide=True,
)
