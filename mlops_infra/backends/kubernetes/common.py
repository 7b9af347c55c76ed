"""What every Kubernetes stage module shares: the namespace, metadata, and the restricted pod shape.

Every pod mlops-infra declares passes the restricted Pod Security Standard (the namespace enforces
it): non-root, no privilege escalation, every capability dropped, the runtime's seccomp profile,
a read-only root file system with a writable /tmp, and requests equal to what the spec asks.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes.settings import KubernetesSettings

OBJECT = "kubernetes.object"
CRONJOB = "kubernetes.cronjob"
NONROOT_UID = 65532  # a fixed non-root user: runAsNonRoot needs a numeric user for images that name none
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PART_OF = "app.kubernetes.io/part-of"
KIND_LABEL = "mlops-infra/holds"  # "bucket", "volume", "tracking-store": what a kept object is


@dataclass(frozen=True)
class Cluster:
    """Governance hands this to every later stage: where the stack lives and who runs what."""

    namespace: Any  # the namespace's name (an Output, so everything waits for the namespace)
    service_accounts: dict[str, Any]  # identity role or "group-<g>" -> service account name
    store_endpoint: str  # the S3-compatible endpoint workloads use
    credentials_secret: str


def settings_of(ctx: StageContext) -> KubernetesSettings:
    settings: KubernetesSettings = ctx.settings
    return settings


def namespace_name(ctx: StageContext) -> str:
    return f"{settings_of(ctx).namespace_prefix}-{ctx.namer.name('kubernetes.namespace')}"


def name(ctx: StageContext, *parts: str) -> str:
    return ctx.namer.name(OBJECT, *parts)


def digest(value: Any) -> str:
    """Eight hex characters of a JSON value: names for immutable objects that change with it."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]


def labels(ctx: StageContext, **extra: str) -> dict[str, str]:
    """The stack's tags as labels (the ones Kubernetes accepts as label values), plus `extra`."""
    found = {k: v for k, v in ctx.tags().items() if LABEL_VALUE.match(v) and len(v) <= 63}
    found[PART_OF] = "mlops-infra"
    found.update(extra)
    return dict(sorted(found.items()))


def metadata(ctx: StageContext, object_name: str, namespace: Any, **extra_labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": object_name, "labels": labels(ctx, **extra_labels)}
    if namespace is not None:
        meta["namespace"] = namespace
    rest = {k: v for k, v in ctx.tags().items() if not (LABEL_VALUE.match(v) and len(v) <= 63)}
    if rest:
        meta["annotations"] = rest  # tags Kubernetes refuses as label values stay readable
    return meta


def cluster(ctx: StageContext) -> Cluster:
    return ctx.upstream.of(Cluster)


def resources(requirements: dict[str, int]) -> dict[str, Any]:
    """Requests and limits from the neutral compute: whole CPUs, GiB, GPUs (nvidia.com/gpu)."""
    wanted = {"cpu": str(requirements["cpus"]), "memory": f"{requirements['memory_gib']}Gi"}
    limits = {"memory": wanted["memory"]}  # no CPU limit: throttling hurts latency, the quota bounds the total
    if requirements.get("gpus"):
        wanted["nvidia.com/gpu"] = str(requirements["gpus"])
        limits["nvidia.com/gpu"] = str(requirements["gpus"])
    return {"requests": wanted, "limits": limits}


POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": NONROOT_UID,
    "runAsGroup": NONROOT_UID,
    "fsGroup": NONROOT_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
TMP = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def container(name_: str, image: Any, *, env: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A restricted container with a writable /tmp (add more volume mounts through `fields`)."""
    mounts = [TMP_MOUNT, *fields.pop("volumeMounts", [])]
    body: dict[str, Any] = {"name": name_, "image": image, "securityContext": CONTAINER_SECURITY, "volumeMounts": mounts}
    if env:
        body["env"] = env
    body.update(fields)
    return body


def pod_spec(service_account: Any, containers: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    volumes = [TMP, *fields.pop("volumes", [])]
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": fields.pop("automountServiceAccountToken", False),
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": volumes,
        **fields,
    }


def store_env(ctx: StageContext) -> list[dict[str, Any]]:
    """The object store's endpoint and credentials (from the user's Secret) as S3 clients read them."""
    found = cluster(ctx)
    secret = found.credentials_secret
    return [
        {"name": "AWS_ENDPOINT_URL", "value": found.store_endpoint},
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": found.store_endpoint},
        {"name": "AWS_DEFAULT_REGION", "value": settings_of(ctx).object_store.region},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_ACCESS_KEY_ID"}}},
        {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_SECRET_ACCESS_KEY"}},
        },
    ]


def env_list(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "value": str(v)} for k, v in sorted(values.items())]
