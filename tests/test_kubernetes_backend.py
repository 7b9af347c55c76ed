"""The Kubernetes backend offline: what each stage declares, its names, its security invariants,
its located validation problems, and byte-identical re-plans."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import pytest
import yaml

from mlops_infra.backends import get_backend
from mlops_infra.errors import SpecInvalid
from mlops_infra.naming import name_rules
from mlops_infra.diff import diff_plans
from mlops_infra.plan import dump_plan
from mlops_infra.spec.validate import check_text
from tests.planning import ROOT, example_plan, plan_for, resources_of, spec_from

CLOUD = "kubernetes"
SETTINGS: dict[str, Any] = {
    "context": "kind-mlops",
    "object_store": {"endpoint": "https://minio.example.com", "credentials_secret": "object-store"},
    "pushgateway": "http://pushgateway.monitoring.svc:9091",
    "images": {"drift": "ghcr.io/acme/drift:1.0"},
}
MODEL: dict[str, Any] = {
    "name": "churn",
    "training": {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-medium"}, "max_runtime": "2h",
                 "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "serving": {"image": "ghcr.io/acme/serve:1.0", "compute": {"size": "cpu-small"},
                "autoscaling": {"min_replicas": 0, "max_replicas": 3}, "data_capture": {"sampling_percent": 100}},
    "monitoring": {"latency_p99_ms": 200, "error_rate_percent": 1, "min_invocations_per_hour": 10,
                   "drift": {"baseline": "raw"}},
    "retraining": {"schedule": "0 3 * * 1", "timezone": "Europe/Amsterdam"},
}  # fmt: skip


def spec(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "mlops-infra/v1", "project": "churn", "environment": "dev", "cloud": CLOUD,
        "clouds": {CLOUD: copy.deepcopy(SETTINGS)}, "tags": {"owner": "ml-platform"},
        "storage": {"buckets": [{"name": "raw", "expire_after_days": 730}]},
        "tracking": {"enabled": True}, "models": [copy.deepcopy(MODEL)],
        "monitoring": {"notify": {"emails": ["oncall@example.com"], "webhook": "https://hooks.example.com/x"}},
    }  # fmt: skip
    data.update(changes)
    return data


def plan(**changes: Any) -> dict[str, Any]:
    return plan_for(CLOUD, spec(**changes))


def problems(data: dict[str, Any]) -> list[Any]:
    """Every problem and warning validate finds for Kubernetes."""
    try:
        checked = check_text(yaml.safe_dump(data, sort_keys=False), "stack.yaml", clouds=[CLOUD])
    except SpecInvalid as invalid:
        return [*invalid.problems, *invalid.warnings]
    return list(checked.warnings)


def at(found: list[Any], path: str) -> list[Any]:
    return [p for p in found if ".".join(str(x) for x in p.path).replace(".[", "[") == path or _dotted(p.path) == path]


def _dotted(path: tuple) -> str:
    return "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in path).lstrip(".")


def named(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in document["resources"] if r["name"] == name)


def pod_specs(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every pod spec a workload declares (Deployment, Job, CronJob, InferenceService predictor)."""
    spec_ = resource["inputs"].get("spec") or {}
    kind = resource["type"].rsplit(":", 1)[-1]
    if kind in ("Deployment", "Job"):
        yield spec_["template"]["spec"]
    elif kind == "CronJob":
        yield spec_["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "InferenceService":
        yield spec_["predictor"]


# --- what each stage declares ---------------------------------------------------------------------


def test_the_richest_example_has_every_kind_of_the_stage_mapping() -> None:
    types = {r["type"].rsplit(":", 1)[-1] for r in example_plan("prod", CLOUD)["resources"]}
    assert {"InferenceService", "PrometheusRule", "PodMonitor", "AlertmanagerConfig", "CronJob", "Job",
            "NetworkPolicy", "Namespace", "ServiceAccount", "Role", "RoleBinding", "ResourceQuota",
            "PersistentVolumeClaim", "Deployment", "Service", "ConfigMap"} <= types  # fmt: skip
    assert {r["stage"] for r in example_plan("dev", CLOUD)["resources"] if r["custom"]} >= {
        "governance", "storage", "tracking", "registry", "training", "serving", "monitoring", "retraining"}


def test_serving_is_a_kserve_inference_service_with_scaling_canary_and_request_logging() -> None:
    data = spec()
    data["models"][0]["serving"]["rollout"] = {"mode": "canary", "canary_percent": 10, "rollback_on_alarms": False}
    data["models"][0]["serving"]["autoscaling"]["target_requests_per_replica"] = 120
    document = plan_for(CLOUD, data)
    predictor = named(document, "serving-endpoint-churn")["inputs"]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)  # scale to zero is KServe's to allow
    assert (predictor["scaleMetric"], predictor["scaleTarget"], predictor["canaryTrafficPercent"]) == ("rps", 2, 10)
    assert predictor["logger"] == {"mode": "all", "url": "http://churn-dev-request-log.mlops-churn-dev.svc:8888/churn"}
    config = named(document, "serving-request-log-config")["inputs"]["data"]["fluent-bit.conf"]
    assert "bucket churn-dev-artifacts" in config and "s3_key_format /data-capture/$TAG/" in config
    assert "endpoint https://minio.example.com" in config


def test_monitoring_alerts_on_latency_errors_traffic_and_drift_and_notifies() -> None:
    document = plan()
    rules = named(document, "monitoring-alerts-churn")["inputs"]["spec"]["groups"][0]["rules"]
    exprs = {r["alert"]: r["expr"] for r in rules}
    assert exprs["ModelLatencyP99High"].startswith("histogram_quantile(0.99") and exprs["ModelLatencyP99High"].endswith("> 200")
    assert 'response_code_class="5xx"' in exprs["ModelErrorRateHigh"] and exprs["ModelErrorRateHigh"].endswith("> 1.0")
    assert exprs["ModelTrafficLow"].endswith("< 10")
    assert exprs["ModelDataDrift"] == 'max(mlops_infra_drift_detected{model="churn"}) > 0'
    receivers = named(document, "monitoring-alertmanager")["inputs"]["spec"]["receivers"][0]
    assert receivers["emailConfigs"][0]["to"] == "oncall@example.com"
    assert receivers["webhookConfigs"][0]["url"] == "https://hooks.example.com/x"
    dashboard = named(document, "monitoring-dashboard")["inputs"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert len(json.loads(dashboard["data"]["mlops-infra.json"])["panels"]) == 3
    drift = named(document, "monitoring-drift-churn")["inputs"]["spec"]
    env = {e["name"]: e.get("value") for e in drift["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["BASELINE_URI"], env["CAPTURE_URI"]) == ("s3://churn-dev-raw/", "s3://churn-dev-artifacts/data-capture/churn/")


def test_training_is_a_template_that_retraining_schedules_in_its_time_zone() -> None:
    document = plan()
    template = named(document, "training-template-churn")["inputs"]["spec"]
    assert template["suspend"] is True
    schedule = named(document, "retraining-schedule-churn")["inputs"]["spec"]
    assert (schedule["schedule"], schedule["timeZone"]) == ("0 3 * * 1", "Europe/Amsterdam")
    assert schedule["jobTemplate"] == template["jobTemplate"]
    job = template["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 7200
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "churn-dev-group-churn"  # the model group's identity reads its data
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://churn-dev-mlflow.mlops-churn-dev.svc:5000"
    assert env["INPUT_URIS"] == "s3://churn-dev-raw/" and env["MLFLOW_REGISTERED_MODEL"] == "churn-dev-churn"
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}


def test_a_run_on_deploy_job_is_named_after_its_training_so_a_change_runs_anew() -> None:
    data = spec()
    data["models"][0]["training"]["run_on_deploy"] = True
    first = resources_of(plan_for(CLOUD, data), "kubernetes:batch/v1:Job")
    data["models"][0]["training"]["image"] = "ghcr.io/acme/train:1.1"
    second = resources_of(plan_for(CLOUD, data), "kubernetes:batch/v1:Job")
    runs = [[r for r in found if r["name"] == "training-run-churn"][0]["inputs"]["metadata"]["name"] for found in (first, second)]
    assert runs[0] != runs[1] and all(r.startswith("churn-dev-train-churn-") for r in runs)


def test_storage_declares_buckets_volumes_and_an_in_cluster_store() -> None:
    settings = {**SETTINGS, "object_store": {"in_cluster": {"size_gib": 20}, "credentials_secret": "object-store"},
                "volumes": {"raw": {"size_gib": 5}}, "storage_class": "fast"}  # fmt: skip
    document = plan(clouds={CLOUD: settings})
    claims = {r["name"]: r["inputs"]["spec"] for r in resources_of(document, "kubernetes:core/v1:PersistentVolumeClaim")}
    assert claims["storage-volume-raw"]["resources"]["requests"]["storage"] == "5Gi"
    assert claims["storage-store-object-store"]["storageClassName"] == "fast"
    assert named(document, "storage-object-store")["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "server", "/data"]
    buckets = [r["name"] for r in resources_of(document, "kubernetes:core/v1:ConfigMap") if r["name"].startswith("storage-bucket")]
    assert buckets == ["storage-bucket-artifacts"]  # raw lives on its volume
    assert document["outputs"]["storage"]["bucket_uris"]["raw"].startswith("pvc://")


# --- security invariants ---------------------------------------------------------------------------

PLANS = [("example", "dev"), ("example", "prod"), ("private", "")]


def plan_of(kind: str, stack: str) -> dict[str, Any]:
    return example_plan(stack, CLOUD) if kind == "example" else plan(governance={"network": "private"})


@pytest.mark.parametrize(("kind", "stack"), PLANS)
def test_no_cluster_wide_grants_no_wildcards_explicit_verbs(kind: str, stack: str) -> None:
    document = plan_of(kind, stack)
    assert not [r for r in document["resources"] if r["type"].rsplit(":", 1)[-1] in ("ClusterRole", "ClusterRoleBinding")]
    for role in resources_of(document, "kubernetes:rbac.authorization.k8s.io/v1:Role"):
        for rule in role["inputs"]["rules"]:
            for field in ("verbs", "resources", "apiGroups"):
                assert rule[field] and "*" not in rule[field], (role["name"], field)
    for binding in resources_of(document, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"):
        assert binding["inputs"]["roleRef"]["kind"] == "Role" and "admin" not in binding["inputs"]["roleRef"]["name"]


@pytest.mark.parametrize(("kind", "stack"), PLANS)
def test_every_pod_is_restricted(kind: str, stack: str) -> None:
    document = plan_of(kind, stack)
    pods = [(r["name"], pod) for r in document["resources"] for pod in pod_specs(r)]
    assert len(pods) >= 6
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert (sc["privileged"], sc["allowPrivilegeEscalation"], sc["readOnlyRootFilesystem"]) == (False, False, True), name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert "hostPath" not in json.dumps(pod) and not pod.get("hostNetwork"), name
    namespace = resources_of(document, "kubernetes:core/v1:Namespace")[0]["inputs"]["metadata"]["labels"]
    assert {namespace[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "audit", "warn")} == {"restricted"}
    assert all(sa["inputs"]["automountServiceAccountToken"] is False
               for sa in resources_of(document, "kubernetes:core/v1:ServiceAccount"))  # fmt: skip
    assert resources_of(document, "kubernetes:core/v1:ResourceQuota")


def test_network_policies_deny_by_default_and_private_denies_egress_too() -> None:
    public = {r["name"]: r["inputs"]["spec"] for r in resources_of(plan(), "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert public["governance-network-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert not any("Egress" in p["policyTypes"] for p in public.values())
    private = {r["name"]: r["inputs"]["spec"] for r in resources_of(plan(governance={"network": "private"}),
                                                                     "kubernetes:networking.k8s.io/v1:NetworkPolicy")}  # fmt: skip
    assert private["governance-network-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    assert private["governance-network-egress-object-store"]["egress"] == [{"ports": [{"protocol": "TCP", "port": 443}]}]
    assert private["governance-network-egress-dns"]["egress"][0]["ports"][0] == {"protocol": "UDP", "port": 53}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_data_is_protected_and_nothing_else(stack: str) -> None:
    backend = get_backend(CLOUD)
    document = example_plan(stack, CLOUD)
    protected = sorted(r["name"] for r in document["resources"] if r["protect"])
    assert protected == sorted(r["name"] for r in document["resources"] if backend.keeps(r["type"], r["inputs"]))
    assert {r["type"] for r in document["resources"] if r["protect"]} == {
        "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:ConfigMap"}
    assert "tracking-store-mlflow" in protected and "storage-bucket-raw" in protected


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["churn", "a-very-long-project-name"])
def test_every_object_name_obeys_the_kubernetes_rules(project: str) -> None:
    document = plan(project=project, environment="staging-eu-west")
    rules = name_rules()
    for r in document["resources"]:
        meta = (r["inputs"] or {}).get("metadata")
        if not meta:
            continue
        kind = r["type"].rsplit(":", 1)[-1]
        rule = rules["kubernetes.namespace" if kind == "Namespace" else
                     "kubernetes.cronjob" if kind == "CronJob" else "kubernetes.object"]  # fmt: skip
        assert rule.accepts(meta["name"]), (r["name"], meta["name"])


def test_same_spec_same_bytes_and_a_change_touches_only_its_object() -> None:
    first, again = plan(), plan()
    assert dump_plan(first) == dump_plan(again)
    data = spec()
    data["models"][0]["serving"]["autoscaling"]["max_replicas"] = 5
    changed = diff_plans(first, plan_for(CLOUD, data))
    # The endpoint's bounds, and the namespace quota that holds every model at its maximum.
    assert [u.name for u in changed.update] == ["governance-quota", "serving-endpoint-churn"]
    assert not changed.create and not changed.delete


# --- validation ------------------------------------------------------------------------------------


def test_a_missing_block_shows_the_example() -> None:
    found = problems({**spec(), "clouds": {}})
    assert found and "clouds: {kubernetes:" in (found[0].hint or "")


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"object_store": {"credentials_secret": "s"}}, "clouds.kubernetes.object_store", "either endpoint"),
        ({"object_store": {"endpoint": "https://m.example.com", "in_cluster": {}, "credentials_secret": "s"}},
         "clouds.kubernetes.object_store", "not both"),
        ({"volumes": {"rwa": {"size_gib": 1}}}, "clouds.kubernetes.volumes.rwa", "unknown bucket 'rwa'"),
        ({"pushgateway": None}, "models[0].monitoring.drift", "Pushgateway"),
        ({"images": {}}, "models[0].monitoring.drift", "images.drift"),
        ({"namespace_prefix": "Bad_Prefix"}, "clouds.kubernetes.namespace_prefix", ""),
    ],
)  # fmt: skip
def test_settings_errors_are_located_with_hints(change: dict[str, Any], path: str, words: str) -> None:
    data = spec()
    data["clouds"][CLOUD].update(change)
    data["clouds"][CLOUD] = {k: v for k, v in data["clouds"][CLOUD].items() if v is not None}
    located = [p for p in problems(data) if _dotted(p.path) == path and p.severity == "error"]
    assert located and words in located[0].message and located[0].hint and located[0].line, [
        (_dotted(p.path), p.message) for p in problems(data)]


@pytest.mark.parametrize(
    ("serving", "path", "severity"),
    [
        ({"rollout": {"mode": "linear", "step_percent": 10}}, "models[0].serving.rollout.mode", "error"),
        ({"shadow": {"image": "ghcr.io/acme/serve:2.0", "traffic_percent": 10}}, "models[0].serving.shadow", "error"),
        ({"auth": "key"}, "models[0].serving.auth", "error"),
        ({"data_capture": {"sampling_percent": 20}}, "models[0].serving.data_capture.sampling_percent", "warning"),
        ({"rollout": {"mode": "canary", "canary_percent": 5}}, "models[0].serving.rollout.rollback_on_alarms", "warning"),
    ],
)  # fmt: skip
def test_what_kserve_cannot_do_is_located(serving: dict[str, Any], path: str, severity: str) -> None:
    data = spec()
    data["models"][0]["serving"].update(serving)
    found = [p for p in problems(data) if _dotted(p.path) == path]
    assert found and found[0].severity == severity and found[0].hint, [(_dotted(p.path), p.message) for p in problems(data)]


def test_cluster_limits_are_located_warnings_and_scale_to_zero_is_allowed() -> None:
    data = spec(governance={"encryption": "customer-managed", "audit_logs": True})
    data["models"][0]["retraining"].update(on_drift=True, on_new_data="raw")
    data["models"][0]["training"]["compute"]["instance_count"] = 2
    found = {(_dotted(p.path), p.severity) for p in problems(data)}
    assert ("governance.encryption", "warning") in found and ("governance.audit_logs", "warning") in found
    assert ("models[0].retraining.on_drift", "warning") in found
    assert ("models[0].retraining.on_new_data", "warning") in found
    assert ("models[0].training.compute.instance_count", "error") in found
    assert not any(path.endswith("min_replicas") for path, _ in found)


def test_the_bundled_examples_validate_on_kubernetes() -> None:
    for stack in ("dev", "prod"):
        checked = check_text((ROOT / "stacks" / f"{stack}.yaml").read_text(), f"{stack}.yaml", clouds=[CLOUD])
        assert checked.spec.settings_for(CLOUD).context  # valid: check_text raises on any error


# --- policy and cost ---------------------------------------------------------------------------------


def test_check_passes_on_the_examples_and_finds_a_wildcard_or_unprotected_volume() -> None:
    from click.testing import CliRunner

    from mlops_infra.cli import main
    from mlops_infra.policy.facts import facts_for
    from mlops_infra.policy.rules import protected_data, wildcard_grants

    for stack in ("dev", "prod"):
        result = CliRunner().invoke(main, ["check", "--spec", str(ROOT / "stacks" / f"{stack}.yaml"), "--cloud", CLOUD])
        assert result.exit_code == 0, result.output
    document = example_plan("dev", CLOUD)
    facts = facts_for(CLOUD)
    assert wildcard_grants(document["resources"], facts) == []
    role = resources_of(document, "kubernetes:rbac.authorization.k8s.io/v1:Role")[0]
    role["inputs"]["rules"][0]["verbs"] = ["*"]
    assert [f.rule for f in wildcard_grants([role], facts)] == ["no-wildcard-grants"]
    volume = resources_of(document, "kubernetes:core/v1:PersistentVolumeClaim")[0]
    assert protected_data([{**volume, "protect": False}], facts)


def test_cost_lists_the_cluster_capacity_as_unpriced_never_as_free() -> None:
    from mlops_infra.cost.estimate import estimate
    from tests.planning import spec_from

    data = spec()
    result = estimate(spec=spec_from(data), cloud=CLOUD, document=plan_for(CLOUD, data))
    assert result.items == []
    unpriced = {u.name for u in result.unpriced}
    assert {"serving-endpoint-churn", "tracking-mlflow", "training-runs-churn"} <= unpriced


def test_a_fixed_quota_is_the_namespaces_and_must_fit_the_spec() -> None:
    from mlops_infra.backends.kubernetes.governance import worst_case

    data = spec()
    data["clouds"][CLOUD]["quota"] = {"cpus": 1, "memory_gib": 1}
    errors = {_dotted(p.path): p for p in problems(data) if p.severity == "error"}
    need = worst_case(spec_from(data))
    assert f"may request {need[0]:g} cpus" in errors["clouds.kubernetes.quota.cpus"].message
    assert "memory_gib" in errors["clouds.kubernetes.quota.memory_gib"].hint
    data["clouds"][CLOUD]["quota"] = {"cpus": need[0], "memory_gib": need[1], "gpus": need[2]}
    assert not [p for p in problems(data) if _dotted(p.path).startswith("clouds.kubernetes.quota")]
    (quota,) = [r for r in plan_for(CLOUD, data)["resources"] if r["type"] == "kubernetes:core/v1:ResourceQuota"]
    assert quota["inputs"]["spec"]["hard"]["requests.cpu"] == f"{need[0]:g}"


def test_a_split_without_a_fixed_quota_is_told_what_each_model_change_touches() -> None:
    data = spec()
    data["clouds"][CLOUD].pop("quota", None)
    data["split"] = {"enabled": True}
    found = [p for p in problems(data) if _dotted(p.path) == "clouds.kubernetes.quota"]
    assert found and found[0].severity == "warning" and "quota" in (found[0].hint or "")
