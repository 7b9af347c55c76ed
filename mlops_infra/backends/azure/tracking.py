"""Azure tracking: the stack's Azure ML workspace is the MLflow tracking server.

No resource of its own: the workspace (workspace.py, declared by the storage stage so that it
outlives any one of the stages that use it) serves the MLflow API. The tracking URI is built
from names we chose and clouds.azure.subscription_id (required), so it is known while planning:
azureml://<location>.api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/
providers/Microsoft.MachineLearningServices/workspaces/<name>, the value of the workspace's
mlFlowTrackingUri once deployed. Clients authenticate with Microsoft Entra ID (azureml-mlflow).
tracking.size has no effect on Azure: the workspace's MLflow server is not sized.
"""

from __future__ import annotations

from mlops_infra.backends.context import StageContext
from mlops_infra.stages.tracking import TrackingOutputs


def build(ctx: StageContext) -> TrackingOutputs:
    return TrackingOutputs(tracking_uri=ctx.upstream["storage"].workspace.tracking_uri)
