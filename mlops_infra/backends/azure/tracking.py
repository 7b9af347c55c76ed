"""Azure tracking: the stack's Azure ML workspace is the MLflow tracking server.

No resource of its own: the workspace (storage_workspace.py, declared by the storage stage so that
it outlives any one of the stages that use it) serves the MLflow API. The tracking URI is built
from names we chose and clouds.azure.subscription_id (required), so it is known while planning:
azureml://<location>.api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/
providers/Microsoft.MachineLearningServices/workspaces/<name>, the value of the workspace's
mlFlowTrackingUri once deployed. Clients authenticate with Microsoft Entra ID (azureml-mlflow).

Checked here (validate): tracking.size has no effect on Azure, where the workspace's MLflow
server is not sized (a gap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_infra.backends.azure.storage_workspace import WorkspaceRef
from mlops_infra.stages.tracking import TrackingOutputs

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    tracking = spec.tracking
    if tracking is None or not tracking.enabled or "size" not in tracking.model_fields_set:
        return []
    return [BACKEND.gap("tracking.size", ("tracking", "size"), value=tracking.size)]


def build(ctx: StageContext) -> TrackingOutputs:
    return TrackingOutputs(tracking_uri=ctx.upstream.of(WorkspaceRef).tracking_uri)
