"""The spec's clouds.kubernetes block: which cluster, which namespace, where objects and volumes live."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from mlops_infra.spec.models import Strict
from mlops_infra.spec.types import HintedValueError

# A Kubernetes object name (RFC 1123 label); Secrets and storage classes are subdomains, but a
# label is what users write for them in practice and keeps every message simple.
K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
IMAGE = r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$"


class InCluster(Strict):
    """Object storage run by the stack itself: MinIO on a protected volume."""

    size_gib: int = Field(100, ge=1, le=65536, description="the object store's volume")
    image: str = Field(
        "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z", pattern=IMAGE, description="the MinIO server image"
    )


class ObjectStore(Strict):
    """Where buckets live: an S3-compatible endpoint, or object storage inside the cluster."""

    endpoint: Optional[str] = Field(
        None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$",
        description="an S3-compatible endpoint (https://minio.example.com, https://s3.eu-west-1.amazonaws.com)",
    )
    region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{2,32}$", description="the region the endpoint signs for")
    in_cluster: Optional[InCluster] = Field(None, description="run MinIO in the stack's namespace instead")
    credentials_secret: str = Field(
        pattern=K8S_NAME,
        description="a Secret in the stack's namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, created by "
        "you (never by the spec): workloads wait for it",
    )

    @model_validator(mode="after")
    def _one_store(self) -> "ObjectStore":
        if (self.endpoint is None) == (self.in_cluster is None):
            raise HintedValueError(
                "give either endpoint (an S3-compatible store) or in_cluster (MinIO in the namespace), not both",
                hint="object_store: {endpoint: https://minio.example.com, credentials_secret: object-store} or "
                "object_store: {in_cluster: {size_gib: 100}, credentials_secret: object-store}",
            )
        return self


class Volume(Strict):
    size_gib: int = Field(ge=1, le=65536, description="the PersistentVolumeClaim's requested size")
    access_mode: str = Field(
        "ReadWriteOnce", pattern=r"^(ReadWriteOnce|ReadWriteMany|ReadWriteOncePod)$", description="the claim's mode"
    )


class Quota(Strict):
    """The namespace's ResourceQuota, fixed by the platform team (validate checks the spec fits)."""

    cpus: float = Field(gt=0, le=100000, description="CPU requests the namespace may hold")
    memory_gib: float = Field(gt=0, le=10000000, description="memory requests (and limits) in GiB")
    gpus: int = Field(0, ge=0, le=100000, description="nvidia.com/gpu requests")


class Images(Strict):
    """The images of the platform's own workloads (pinned; mirror them for air-gapped clusters)."""

    mlflow: str = Field("ghcr.io/mlflow/mlflow:v2.22.0", pattern=IMAGE, description="the MLflow tracking server")
    object_store_client: str = Field(
        "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z", pattern=IMAGE, description="creates buckets (MinIO client)"
    )
    request_logger: str = Field(
        "cr.fluentbit.io/fluent/fluent-bit:3.2.10", pattern=IMAGE, description="writes KServe request logs to buckets"
    )
    drift: Optional[str] = Field(
        None, pattern=IMAGE, description="the Evidently drift job (your image: it reads the baseline and captured "
        "requests and pushes mlops_infra_drift_detected to the Pushgateway); needed with monitoring.drift"
    )


class KubernetesSettings(Strict):
    context: str = Field(
        min_length=1, max_length=253, pattern=r"^[^\s]+$", description="the kubeconfig context of the cluster"
    )
    namespace_prefix: str = Field(
        "mlops", pattern=r"^[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?$", description="namespaces are PREFIX-PROJECT-ENV"
    )
    storage_class: Optional[str] = Field(None, pattern=K8S_NAME, description="for every volume; default: the cluster's")
    object_store: ObjectStore = Field(description="where the spec's buckets live")
    volumes: dict[str, Volume] = Field(
        default_factory=dict, description="buckets (by storage.buckets name) kept on a PersistentVolumeClaim instead"
    )
    pushgateway: Optional[str] = Field(
        None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$",
        description="the Prometheus Pushgateway drift jobs push to (needed with monitoring.drift)",
    )
    ingress_namespaces: list[str] = Field(
        default_factory=lambda: ["istio-system", "knative-serving"],
        description="with network: private, namespaces allowed to reach the models (the KServe gateway's)",
    )
    monitoring_namespace: str = Field(
        "monitoring", pattern=K8S_NAME, description="with network: private, where Prometheus scrapes from"
    )
    images: Images = Field(default_factory=Images)
    quota: Optional[Quota] = Field(
        None,
        description="the namespace's resource quota; default: sized from the spec (every model at max replicas "
        "plus one training run each), which then changes with every model",
    )
