"""Kubernetes: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from mlops_infra.backends.base import Backend, Gap
from mlops_infra.backends.kubernetes.common import KIND_LABEL
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.naming import NameStyle

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
NO_EVENTS = (
    "Kubernetes has no event source for {what}: {source} would have to call a receiver that creates the training Job, "
    "and mlops-infra deploys none; the retraining schedule still runs"
)

GAPS: dict[str, Gap] = {
    "models[].serving.mode.serverless": Gap(
        "KServe scales a realtime InferenceService to zero already (min_replicas: 0); there is no separate serverless "
        "mode with memory and concurrency settings",
        hint="use mode: realtime with autoscaling.min_replicas: 0",
    ),
    "models[].serving.mode.async": Gap(
        "KServe has no asynchronous inference with a queue and result bucket",
        hint="use mode: realtime, or a batch job",
    ),
    "models[].serving.shadow": Gap(
        "a KServe InferenceService has no shadow (mirrored) traffic: a canary takes a share of real requests",
        hint="use rollout: {mode: canary, canary_percent: N}, or mirror traffic in your service mesh",
    ),
    "models[].serving.auth.key": Gap(
        "KServe has no API keys: requests are authorized by the cluster's ingress or service mesh",
        hint="use auth: iam and put an authorization policy on the gateway (Istio AuthorizationPolicy)",
    ),
    "models[].serving.rollout.linear": Gap(
        "KServe rolls out by one canary share (canaryTrafficPercent), not in linear steps",
        hint="use rollout: {mode: canary, canary_percent: N} and raise it by hand",
    ),
    "models[].serving.rollout.rollback_on_alarms": Gap(
        "KServe does not watch alerts during a canary: the PrometheusRule fires, but nothing rolls back on its own",
        hint="roll back by setting canary_percent: 0 (or the previous image); set rollback_on_alarms: false to acknowledge",
        severity="warning",
    ),
    "models[].serving.data_capture.sampling_percent": Gap(
        "KServe's request logger sends every request: sampling_percent has no effect on Kubernetes",
        hint="remove it, or keep it for the clouds where it samples",
        severity="warning",
    ),
    "models[].serving.autoscaling.scale_in_cooldown": Gap(
        "has no effect on Kubernetes: Knative's autoscaler windows are set cluster-wide (config-autoscaler)",
        hint="remove it, or keep it for the clouds where it sets the cool-down",
        severity="warning",
    ),
    "models[].serving.autoscaling.scale_out_cooldown": Gap(
        "has no effect on Kubernetes: Knative's autoscaler windows are set cluster-wide (config-autoscaler)",
        hint="remove it, or keep it for the clouds where it sets the cool-down",
        severity="warning",
    ),
    "models[].training.spot": Gap(
        "a Kubernetes cluster has no common label for spot nodes: the training Job runs wherever it is scheduled",
        hint="remove it, or keep it for the clouds where it buys spot capacity",
        severity="warning",
    ),
    "models[].training.max_wait": Gap(
        "has no effect on Kubernetes: a Job waits for capacity without a limit (only max_runtime bounds it)",
        hint="remove it, or keep it for the clouds where it bounds the wait for spot capacity",
        severity="warning",
    ),
    "models[].retraining.on_new_data": Gap(
        NO_EVENTS.format(what="new objects", source="the object store's bucket notifications (MinIO: mc event add)"),
        hint="rely on retraining.schedule, or start `kubectl create job --from=cronjob/NAME` from your store's webhook",
        severity="warning",
    ),
    "models[].retraining.on_drift": Gap(
        NO_EVENTS.format(what="alerts", source="an Alertmanager webhook receiver"),
        hint="the ModelDataDrift alert still reaches monitoring.notify; start the retraining CronJob's Job from it",
        severity="warning",
    ),
    "storage.buckets[].archive_after_days": Gap(
        "S3-compatible stores have no archive tier mlops-infra can set: objects stay in the store's only class",
        hint="remove it, or keep it for the clouds where it archives",
        severity="warning",
    ),
}


class KubernetesBackend(Backend):
    name = "kubernetes"
    display_name = "Kubernetes"
    sdk_package = "pulumi_kubernetes"
    settings_model = KubernetesSettings
    naming_styles: ClassVar[Mapping[str, NameStyle]] = {
        "kubernetes.namespace": NameStyle(max_length=46),  # PREFIX- (up to 17) goes in front
        "kubernetes.object": NameStyle(letter_first=True),
        "kubernetes.cronjob": NameStyle(letter_first=True),
        "kubernetes.bucket": NameStyle(),
    }
    settings_example = (
        "clouds: {kubernetes: {context: my-cluster, object_store: {endpoint: https://minio.example.com, "
        "credentials_secret: object-store}}}"
    )
    unsupported: ClassVar[dict[str, str]] = {
        stage: "not implemented on Kubernetes yet (this round's lifecycle stages land one cloud at a time)"
        for stage in ("batch", "data_prep", "features", "workspaces", "explainability")
    }
    gaps: ClassVar[dict[str, Gap]] = GAPS
    scale_to_zero = True  # KServe (Knative) scales an InferenceService to zero
    endpoint_service = "KServe InferenceServices"
    storage_service = "the object store"

    # A default destroy keeps the data: bucket declarations (ConfigMaps labelled as buckets), the
    # volumes (data buckets on PVCs, MLflow's store, the in-cluster object store's volume).
    kept_types = frozenset({PVC, CONFIGMAP})
    physical_name_inputs = frozenset({"metadata"})

    def keeps(self, resource_type: str, inputs: Mapping[str, Any]) -> bool:
        if resource_type == PVC:
            return True
        if resource_type == CONFIGMAP:
            labels = ((inputs.get("metadata") or {}).get("labels") or {}) if isinstance(inputs, Mapping) else {}
            return labels.get(KIND_LABEL) == "bucket"
        return False

    def check_cloud(self, spec: Any, settings: KubernetesSettings) -> list[Any]:
        from mlops_infra.stages.base import finding

        problems = []
        for i, bucket in enumerate(spec.storage.buckets):
            if bucket.archive_after_days is not None:
                problems.append(self.gap("storage.buckets[].archive_after_days",
                                         ("storage", "buckets", i, "archive_after_days"), value=bucket.archive_after_days))  # fmt: skip
        if spec.storage.artifacts.archive_after_days is not None:
            problems.append(self.gap("storage.buckets[].archive_after_days", ("storage", "artifacts", "archive_after_days"),
                                     value=spec.storage.artifacts.archive_after_days))  # fmt: skip
        if spec.governance.network == "private" and settings.object_store.endpoint:
            problems.append(finding(
                ("clouds", "kubernetes", "object_store", "endpoint"),
                "with network: private the namespace may reach the object store's port on any address: a "
                "NetworkPolicy cannot name a host",
                hint="use in_cluster object storage, or an egress gateway of your service mesh", severity="warning",
                value=settings.object_store.endpoint,
            ))  # fmt: skip
        return problems

    def name_scope(self, settings: KubernetesSettings) -> str:
        return settings.context

    def create_provider(self, spec: Any, settings: KubernetesSettings) -> Any:
        import pulumi_kubernetes as k8s

        # The kubeconfig is the user's (KUBECONFIG or ~/.kube/config); only the context is in the spec.
        return k8s.Provider("kubernetes", context=settings.context)
