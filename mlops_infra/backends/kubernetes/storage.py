"""Kubernetes storage: buckets on the object store (or MinIO in the namespace), or volumes.

Each bucket is declared by a protected ConfigMap (its name, versioning and lifecycle rules) that a
Job applies to the store with the MinIO client: a Kubernetes API has no bucket object, and the
ConfigMap is what `destroy` keeps and lists. Buckets named in clouds.kubernetes.volumes are
PersistentVolumeClaims instead (protected). Neither `destroy` nor `destroy --delete-data` empties
a bucket on an external store: mlops-infra never deletes data it cannot see (docs/kubernetes.md).
"""

from __future__ import annotations

import json
from typing import Any

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import KIND_LABEL, container, metadata, name, pod_spec, settings_of
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS, BucketRef, StorageOutputs

BUCKET_FILE = "bucket.json"
APPLIES = "mlops-infra/applies"  # the Job's annotation: every bucket declaration it applies


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    known = sorted(b.name for b in spec.storage.buckets)
    return [
        finding(("clouds", "kubernetes", "volumes", bucket), f"volumes name an unknown bucket {bucket!r}",
                hint=f"name one of storage.buckets: {', '.join(known) or 'none'}", value=bucket)
        for bucket in sorted(settings.volumes) if bucket not in known
    ]  # fmt: skip


def rules(versioning: bool, lifecycle: Any) -> dict[str, Any]:
    """A bucket's declared configuration, as the setup Job applies it (mc version / mc ilm)."""
    return {
        "versioning": versioning,
        "expire_after_days": lifecycle.expire_after_days,
        "noncurrent_expire_after_days": lifecycle.noncurrent_expire_after_days,
        # Object stores have no archive tier of their own: archive_after_days is a validate warning.
    }


SETUP = """set -eu
mc alias set store "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null
for dir in /buckets/*/; do
  file="$dir/bucket.json"; bucket=$(sed -n 's/.*"name": "\\([^"]*\\)".*/\\1/p' "$file")
  mc mb --ignore-existing "store/$bucket"
  if grep -q '"versioning": true' "$file"; then mc version enable "store/$bucket"; fi
  days=$(sed -n 's/.*"expire_after_days": \\([0-9]*\\).*/\\1/p' "$file")
  if [ -n "$days" ]; then mc ilm rule add --expire-days "$days" "store/$bucket" || true; fi
  old=$(sed -n 's/.*"noncurrent_expire_after_days": \\([0-9]*\\).*/\\1/p' "$file")
  if [ -n "$old" ]; then mc ilm rule add --noncurrent-expire-days "$old" "store/$bucket" || true; fi
done
"""


def build(ctx: StageContext) -> StorageOutputs:
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    ns = common.cluster(ctx).namespace
    if settings.object_store.in_cluster is not None:
        in_cluster_store(ctx, ns, settings)

    claims: dict[str, Any] = {}
    declared: dict[str, Any] = {}

    def bucket(logical: str, versioning: bool, lifecycle: Any) -> BucketRef:
        if logical in settings.volumes:
            return volume(ctx, ns, logical, settings)
        physical = ctx.namer.name("kubernetes.bucket", logical)
        body = {"name": physical, **rules(versioning, lifecycle)}
        declared[logical] = body
        made = k8s.core.v1.ConfigMap(
            ctx.logical("bucket", logical), metadata=metadata(ctx, name(ctx, "bucket", logical), ns, **{KIND_LABEL: "bucket"}),
            data={BUCKET_FILE: json.dumps(body, indent=1, sort_keys=True)}, opts=ctx.opts(protect=True),
        )  # fmt: skip
        claims[logical] = made
        return BucketRef(name=logical, physical=physical, uri=f"s3://{physical}")

    buckets = {b.name: bucket(b.name, b.versioning, b) for b in ctx.spec.storage.buckets}
    artifacts = bucket(ARTIFACTS, True, ctx.spec.storage.artifacts)
    if claims:
        # mounted in logical-name order: the spec's list order must not change the Job
        setup_job(ctx, ns, [claims[k] for k in sorted(claims)], declared)
    return StorageOutputs(buckets=buckets, artifacts=artifacts)


def setup_job(ctx: StageContext, ns: Any, claims: list[Any], declared: dict[str, Any]) -> None:
    """One Job that creates every bucket; named after what it applies (a Job's pods are immutable)."""
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    volumes = [{"name": f"bucket-{i}", "configMap": {"name": c.metadata.apply(lambda m: m.name)}}
               for i, c in enumerate(claims)]  # fmt: skip
    mounts = [{"name": v["name"], "mountPath": f"/buckets/{i}", "readOnly": True} for i, v in enumerate(volumes)]
    job_name = name(ctx, "bucket-setup", common.digest(declared))
    setup = container(
        "setup", settings.images.object_store_client, command=["/bin/sh", "-c", SETUP],
        env=[*common.store_env(ctx), {"name": "MC_CONFIG_DIR", "value": "/tmp/mc"}], volumeMounts=mounts,
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    )  # fmt: skip
    meta = metadata(ctx, job_name, ns)
    # What the Job applies, readable on the Job itself (kubectl describe) and in a plan's diff.
    meta["annotations"] = {**meta.get("annotations", {}), APPLIES: json.dumps(declared, sort_keys=True)}
    k8s.batch.v1.Job(
        ctx.logical("bucket-setup"), metadata=meta,
        spec={"backoffLimit": 6, "ttlSecondsAfterFinished": 86400,
              "template": {"metadata": {"labels": common.labels(ctx)},
                           "spec": pod_spec(common.cluster(ctx).service_accounts["automation"], [setup],
                                            volumes=volumes, restartPolicy="OnFailure")}},
        opts=ctx.opts(delete_before_replace=False),
    )  # fmt: skip


def claim(ctx: StageContext, ns: Any, logical: tuple[str, ...], size_gib: int, mode: str, holds: str) -> Any:
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    spec: dict[str, Any] = {"accessModes": [mode], "resources": {"requests": {"storage": f"{size_gib}Gi"}}}
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return k8s.core.v1.PersistentVolumeClaim(
        ctx.logical(*logical), metadata=metadata(ctx, name(ctx, *logical[1:]), ns, **{KIND_LABEL: holds}),
        spec=spec, opts=ctx.opts(protect=True),
    )  # fmt: skip


def volume(ctx: StageContext, ns: Any, logical: str, settings: KubernetesSettings) -> BucketRef:
    wanted = settings.volumes[logical]
    made = claim(ctx, ns, ("volume", logical), wanted.size_gib, wanted.access_mode, "volume")
    physical = made.metadata.apply(lambda m: m.name)
    return BucketRef(name=logical, physical=physical, uri=physical.apply(lambda n: f"pvc://{n}"))


def in_cluster_store(ctx: StageContext, ns: Any, settings: KubernetesSettings) -> None:
    """MinIO on a protected volume, reachable inside the cluster as object-store:9000."""
    import pulumi_kubernetes as k8s

    store = settings.object_store.in_cluster
    assert store is not None
    data = claim(ctx, ns, ("store", "object-store"), store.size_gib, "ReadWriteOnce", "object-store")
    secret = settings.object_store.credentials_secret
    env = [
        {"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_ACCESS_KEY_ID"}}},
        {"name": "MINIO_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_SECRET_ACCESS_KEY"}}},
    ]
    selector = {"app.kubernetes.io/name": "object-store"}
    server = container(
        "minio", store.image, args=["server", "/data"], env=env, ports=[{"name": "s3", "containerPort": 9000}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    )  # fmt: skip
    k8s.apps.v1.Deployment(
        ctx.logical("object-store"), metadata=metadata(ctx, "object-store", ns),
        spec={"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": selector},
              "template": {"metadata": {"labels": common.labels(ctx, **selector)},
                           "spec": pod_spec(common.cluster(ctx).service_accounts["automation"], [server],
                                            volumes=[{"name": "data", "persistentVolumeClaim": {
                                                "claimName": data.metadata.apply(lambda m: m.name)}}])}},
        opts=ctx.opts(),
    )  # fmt: skip
    k8s.core.v1.Service(
        ctx.logical("object-store-service"), metadata=metadata(ctx, "object-store", ns),
        spec={"type": "ClusterIP", "selector": selector, "ports": [{"name": "s3", "port": 9000, "targetPort": "s3"}]}, opts=ctx.opts(),
    )  # fmt: skip
