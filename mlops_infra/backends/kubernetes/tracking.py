"""Kubernetes tracking: an MLflow server (Deployment and Service), its backend store on a protected
volume (SQLite), artifacts proxied to the artifact bucket (clients need no store credentials)."""

from __future__ import annotations

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import container, metadata, name, pod_spec, settings_of
from mlops_infra.backends.kubernetes.governance import TRACKING_SIZES
from mlops_infra.backends.kubernetes.storage import claim
from mlops_infra.stages.storage import StorageOutputs
from mlops_infra.stages.tracking import TrackingOutputs

PORT = 5000
STORE_GIB = {"small": 10, "medium": 50, "large": 200}


def build(ctx: StageContext) -> TrackingOutputs:
    import pulumi
    import pulumi_kubernetes as k8s

    assert ctx.spec.tracking is not None
    size = ctx.spec.tracking.size
    settings, found = settings_of(ctx), common.cluster(ctx)
    ns = found.namespace
    artifacts = ctx.upstream.of(StorageOutputs).artifacts
    store = claim(ctx, ns, ("store", "mlflow"), STORE_GIB[size], "ReadWriteOnce", "tracking-store")
    selector = {"app.kubernetes.io/name": "mlflow"}
    server_name = name(ctx, "mlflow")
    need = TRACKING_SIZES[size]
    server = container(
        "mlflow", settings.images.mlflow,
        command=["mlflow", "server", "--host", "0.0.0.0", "--port", str(PORT),
                 "--backend-store-uri", "sqlite:////mlflow/mlflow.db",
                 "--artifacts-destination", pulumi.Output.concat(artifacts.uri, "/mlflow"), "--serve-artifacts"],
        env=[*common.store_env(ctx), {"name": "HOME", "value": "/tmp"}],
        ports=[{"name": "http", "containerPort": PORT}],
        volumeMounts=[{"name": "store", "mountPath": "/mlflow"}],
        readinessProbe={"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
        resources=common.resources({**need, "gpus": 0}),
    )  # fmt: skip
    k8s.apps.v1.Deployment(
        ctx.logical("mlflow"), metadata=metadata(ctx, server_name, ns),
        # One writer on a ReadWriteOnce SQLite volume: replace the pod, never run two.
        spec={"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": selector},
              "template": {"metadata": {"labels": common.labels(ctx, **selector)},
                           "spec": pod_spec(found.service_accounts["training"], [server],
                                            volumes=[{"name": "store", "persistentVolumeClaim": {
                                                "claimName": store.metadata.apply(lambda m: m.name)}}])}},
        opts=ctx.opts(),
    )  # fmt: skip
    service = k8s.core.v1.Service(
        ctx.logical("mlflow-service"), metadata=metadata(ctx, server_name, ns),
        spec={"type": "ClusterIP", "selector": selector, "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}, opts=ctx.opts(),
    )  # fmt: skip
    uri = pulumi.Output.all(service.metadata.apply(lambda m: m.name), ns).apply(
        lambda parts: f"http://{parts[0]}.{parts[1]}.svc:{PORT}"
    )
    return TrackingOutputs(tracking_uri=uri)
