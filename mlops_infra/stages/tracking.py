"""Experiment tracking: a managed MLflow-compatible server per stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_infra.stages.base import Stage


@dataclass(frozen=True)
class TrackingOutputs:
    tracking_uri: Any

    def exports(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri}


STAGE = Stage(
    name="tracking",
    title="Tracking",
    requires=("governance", "storage"),
    used_at=lambda spec: [("tracking",)] if spec.tracking is not None and spec.tracking.enabled else [],
    stack_wide=True,
)
