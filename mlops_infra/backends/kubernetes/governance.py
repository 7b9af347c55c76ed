"""Kubernetes governance: the stack's namespace (restricted Pod Security), a service account per
identity, namespaced RBAC with explicit verbs, a resource quota sized from the spec, default
limits, and with network: private default-deny NetworkPolicies with the few flows the platform needs.

A cluster has no per-namespace encryption key or audit trail: validate warns where the spec asks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mlops_infra.backends.context import StageContext
from mlops_infra.backends.kubernetes import common
from mlops_infra.backends.kubernetes.common import Cluster, metadata, name, settings_of
from mlops_infra.backends.kubernetes.settings import KubernetesSettings
from mlops_infra.layout import groups
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import IDENTITIES, GovernanceOutputs, Identity

RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
# What the platform's own pods ask for, on top of the models (bucket jobs, request logger, MinIO).
PLATFORM = {"cpus": 4, "memory_gib": 8}
TRACKING_SIZES = {"small": {"cpus": 1, "memory_gib": 2}, "medium": {"cpus": 2, "memory_gib": 4},
                  "large": {"cpus": 4, "memory_gib": 8}}  # fmt: skip
# The automation identity starts training runs from their CronJob (kubectl create job --from=cronjob/...).
AUTOMATION_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list"]},
]
CUSTOMER_KEYS = (
    "a Kubernetes namespace cannot have its own encryption key: Secrets and ConfigMaps are encrypted at rest only by "
    "the API server's cluster-wide EncryptionConfiguration (a KMS provider set by the cluster's admin), and volumes by "
    "their storage class"
)
AUDIT = (
    "Kubernetes audit logging is the API server's cluster-wide audit policy, and object-store access logs are the "
    "store's: a namespace cannot turn either on"
)


def check(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    problems = [
        finding(("governance", "encryption"), CUSTOMER_KEYS, severity="warning", value=spec.governance.encryption,
                hint="ask the cluster admin for KMS encryption of Secrets and an encrypted storage class"),
    ]  # fmt: skip
    problems += _quota_problems(spec, settings)
    if spec.governance.audit_logs:
        problems.append(finding(("governance", "audit_logs"), AUDIT, severity="warning", value=True,
                                hint="enable the API server's audit policy and the object store's access log"))  # fmt: skip
    return problems


def _quota_problems(spec: Any, settings: KubernetesSettings) -> list[Problem]:
    """A fixed quota the spec's worst case does not fit (the cluster would refuse pods at run time);
    without one, split specs hear that every model change also updates the shared quota."""
    path = ("clouds", "kubernetes", "quota")
    if settings.quota is None:
        if spec.split is not None and spec.split.enabled and spec.models:
            return [finding(path, "without a fixed quota the namespace's ResourceQuota is sized from every model, "
                            "so each model's change also updates the shared stack", severity="warning",
                            hint="set clouds.kubernetes.quota: {cpus: N, memory_gib: N, gpus: N}")]  # fmt: skip
        return []
    need = dict(zip(("cpus", "memory_gib", "gpus"), worst_case(spec)))
    problems = []
    for field, wanted in need.items():
        allowed = getattr(settings.quota, field)
        if wanted > allowed:
            problems.append(finding(
                (*path, field),
                f"the spec may request {wanted:g} {field.replace('_gib', ' GiB')} at once (every model at max "
                f"replicas plus one training run each), more than the quota's {allowed:g}: pods beyond it are refused",
                hint=f"raise clouds.kubernetes.quota.{field} to at least {wanted:g}, or lower max_replicas",
                value=allowed,
            ))  # fmt: skip
    return problems


def worst_case(spec: Any) -> tuple[float, float, int]:
    """(CPUs, GiB, GPUs) the stack may request at once: the platform's own workloads, every model at
    max replicas, plus one training run each."""
    cpus, memory, gpus = PLATFORM["cpus"], PLATFORM["memory_gib"], 0
    if spec.tracking is not None and spec.tracking.enabled:
        cpus += TRACKING_SIZES[spec.tracking.size]["cpus"]
        memory += TRACKING_SIZES[spec.tracking.size]["memory_gib"]
    for model in spec.models:
        for section, count in ((model.training, 1), (model.serving, model.serving and model.serving.autoscaling.max_replicas)):
            if section is None:
                continue
            need = section.compute.requirements
            cpus += need["cpus"] * int(count or 0)
            memory += need["memory_gib"] * int(count or 0)
            gpus += need["gpus"] * int(count or 0)
    return cpus, memory, gpus


def quota(ctx: StageContext) -> dict[str, str]:
    """The namespace's hard limits: clouds.kubernetes.quota, else the spec's worst case."""
    fixed = settings_of(ctx).quota
    cpus, memory, gpus = (fixed.cpus, fixed.memory_gib, fixed.gpus) if fixed else worst_case(ctx.spec)
    hard = {"requests.cpu": f"{cpus:g}", "requests.memory": f"{memory:g}Gi", "limits.memory": f"{memory:g}Gi"}
    hard["requests.nvidia.com/gpu"] = str(gpus)
    hard["persistentvolumeclaims"] = str(4 + len(settings_of(ctx).volumes))
    return hard


def build(ctx: StageContext) -> GovernanceOutputs:
    import pulumi_kubernetes as k8s

    settings = settings_of(ctx)
    ns_name = common.namespace_name(ctx)
    ns_meta = metadata(ctx, ns_name, None)
    ns_meta["labels"] = {**ns_meta["labels"], **RESTRICTED}
    namespace = k8s.core.v1.Namespace(ctx.logical("namespace"), metadata=ns_meta, opts=ctx.opts())
    ns = namespace.metadata.apply(lambda m: m.name)

    accounts: dict[str, Any] = {}
    identities: dict[str, Identity] = {}

    def account(key: str) -> Identity:
        sa_name = name(ctx, key)
        made = k8s.core.v1.ServiceAccount(
            ctx.logical("identity", key), metadata=metadata(ctx, sa_name, ns),
            automount_service_account_token=False, opts=ctx.opts(),
        )  # fmt: skip
        accounts[key] = made.metadata.apply(lambda m: m.name)
        return Identity(role=key, id=accounts[key], principal=ns.apply(lambda n: f"system:serviceaccount:{n}:{sa_name}"))

    for role in IDENTITIES:
        identities[role] = account(role)
    group_identities = {group: account(f"group-{group}") for group in groups(ctx.spec)}

    automation = k8s.rbac.v1.Role(ctx.logical("role", "automation"), metadata=metadata(ctx, name(ctx, "automation"), ns),
                            rules=AUTOMATION_RULES, opts=ctx.opts())  # fmt: skip
    k8s.rbac.v1.RoleBinding(
        ctx.logical("binding", "automation"), metadata=metadata(ctx, name(ctx, "automation"), ns),
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                  "name": automation.metadata.apply(lambda m: m.name)},
        subjects=[{"kind": "ServiceAccount", "name": accounts["automation"], "namespace": ns}], opts=ctx.opts(),
    )  # fmt: skip
    k8s.core.v1.ResourceQuota(ctx.logical("quota"), metadata=metadata(ctx, name(ctx, "quota"), ns),
                              spec={"hard": quota(ctx)}, opts=ctx.opts())  # fmt: skip
    k8s.core.v1.LimitRange(
        ctx.logical("limits"), metadata=metadata(ctx, name(ctx, "limits"), ns),
        spec={"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                          "default": {"memory": "512Mi"}}]},
        opts=ctx.opts(),
    )  # fmt: skip
    network_policies(ctx, ns, settings, private=ctx.spec.governance.network == "private")

    endpoint = store_endpoint(ns_name, settings)
    ctx.share(Cluster(namespace=ns, service_accounts=accounts, store_endpoint=endpoint,
                      credentials_secret=settings.object_store.credentials_secret))  # fmt: skip
    return GovernanceOutputs(
        # No key: the cluster's encryption is its admin's (validate warns); this says so in outputs.
        key_id="cluster-managed (API server EncryptionConfiguration)",
        identities=identities,
        scope=ns,
        groups=group_identities,
    )


def store_endpoint(namespace: str, settings: KubernetesSettings) -> str:
    if settings.object_store.endpoint:
        return settings.object_store.endpoint.rstrip("/")
    return f"http://object-store.{namespace}.svc:9000"


def network_policies(ctx: StageContext, ns: Any, settings: KubernetesSettings, *, private: bool) -> None:
    """Ingress is always default-deny except from the namespace itself, the model gateway and Prometheus;
    network: private denies egress too, except inside the namespace, DNS and the object store."""
    import pulumi_kubernetes as k8s

    def namespaces(*names: str) -> list[dict[str, Any]]:
        return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}} for n in names]

    policies: dict[str, dict[str, Any]] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"] if private else ["Ingress"]},
        "same-namespace": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
        "model-gateway": {
            "podSelector": {"matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]},
            "policyTypes": ["Ingress"], "ingress": [{"from": namespaces(*settings.ingress_namespaces)}],
        },
        "prometheus": {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": namespaces(settings.monitoring_namespace)}],
        },
    }  # fmt: skip
    if private:
        policies["egress-same-namespace"] = {"podSelector": {}, "policyTypes": ["Egress"],
                                             "egress": [{"to": [{"podSelector": {}}]}]}  # fmt: skip
        policies["egress-dns"] = {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": namespaces("kube-system"),
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
        }  # fmt: skip
        if settings.object_store.endpoint:
            # NetworkPolicy cannot name a host: the store's port is open to any address (validate warns).
            store = urlparse(settings.object_store.endpoint)
            port = store.port or (443 if store.scheme == "https" else 80)
            policies["egress-object-store"] = {"podSelector": {}, "policyTypes": ["Egress"],
                                               "egress": [{"ports": [{"protocol": "TCP", "port": port}]}]}  # fmt: skip
    for key, spec in policies.items():
        k8s.networking.v1.NetworkPolicy(ctx.logical("network", key), metadata=metadata(ctx, name(ctx, key), ns),
                                        spec=spec, opts=ctx.opts())  # fmt: skip
