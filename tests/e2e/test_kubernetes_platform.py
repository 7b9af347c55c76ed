"""The Kubernetes backend deployed for real: the bundled example goes up on the e2e cluster through
the product's CLI, is read back through the API, previews with no change, matches its offline plan,
and goes down keeping its data, then with --delete-data; a split spec goes up and down through a
real StackReference. See tests/e2e/product.py for the two things the harness changes."""

from __future__ import annotations

import time
from pathlib import Path
import pytest

from tests.e2e.cluster import Api, ExternalCluster, LocalCluster
from tests.e2e.engine import SKIP_AWAIT, Engine
from tests.e2e.product import Project, declared, harness, make_project, object_paths, planned, state
from tests.e2e.toolchain import kubernetes_sdk

pytestmark = pytest.mark.e2e
kubernetes_sdk()

Cluster = LocalCluster | ExternalCluster
KEPT_TYPES = {"kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Namespace"}


@pytest.fixture()
def project(cluster: Cluster, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    harness(monkeypatch, engine, cluster.kubeconfig)
    return make_project(engine.workdir / f"project-{tmp_path.name}", cluster.context)


def gone(api: Api, path: str) -> None:
    deadline = time.monotonic() + 90
    while api.get(path) is not None:
        assert time.monotonic() < deadline, f"{path} still exists 90 s after destroy"
        time.sleep(0.5)


def test_the_example_goes_up_matches_its_plan_and_comes_down_keeping_data(cluster: Cluster, project: Project) -> None:
    api = cluster.api
    code, plan, err = project.run("plan")
    assert code == 0, err
    paths = object_paths(plan)
    namespace_path = f"/api/v1/namespaces/{project.namespace}"
    try:
        code, up, err = project.run("up", "--yes")
        assert code == 0 and up["ok"], err
        # Every planned object was created, and the offline plan is exactly what the engine made.
        assert up["summary"] == {"create": len(plan["resources"]) + 1}  # + the stack
        reported = {(r["name"], r["type"]) for r in up["resources"] if r["op"] == "create"}
        assert {(n, t) for n, t, _ in planned(plan)} == reported - {("kubernetes", "pulumi:providers:kubernetes")} - {
            (n, t) for n, t in reported if t == "pulumi:pulumi:Stack"
        }
        assert planned(plan) == declared(state(project, up["pulumi_stack"]))

        # Read back through the API.
        namespace = api.get(namespace_path)
        assert namespace is not None
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        read = {name: api.get(path) for name, path in paths.items()}
        assert [name for name, found in read.items() if found is None] == []
        assert all(found["metadata"]["annotations"][SKIP_AWAIT] == "true" for found in read.values() if found)
        isvc = read["serving-endpoint-churn-classifier"]["spec"]["predictor"]  # type: ignore[index]
        assert (isvc["minReplicas"], isvc["maxReplicas"]) == (1, 4)
        assert isvc["logger"]["url"].endswith("/churn-classifier")
        assert isvc["containers"][0]["securityContext"]["runAsNonRoot"] is True
        rule = read["governance-role-automation"]["rules"]  # type: ignore[index]
        assert all("*" not in verb for r in rule for verb in r["verbs"])
        alerts = read["monitoring-alerts-churn-classifier"]["spec"]["groups"][0]["rules"]  # type: ignore[index]
        assert {a["alert"] for a in alerts} == {"ModelLatencyP99High", "ModelErrorRateHigh", "ModelDataDrift"}
        assert read["governance-network-default-deny"]["spec"]["podSelector"] == {}  # type: ignore[index]
        assert read["retraining-schedule-churn-classifier"]["spec"]["schedule"] == "0 3 * * 1"  # type: ignore[index]

        code, preview, err = project.run("preview", "--expect-no-changes")
        assert code == 0, err
        assert set(preview["summary"]) == {"same"} and preview["summary"]["same"] == len(plan["resources"]) + 1

        # A default destroy keeps the data (bucket declarations, volumes) and the namespace they live in.
        code, down, err = project.run("destroy", "--yes")
        assert code == 0, err
        kept = {(k["name"], k["type"]) for k in down["kept"]}
        assert {t for _, t in kept} == KEPT_TYPES
        protected = {r["name"] for r in plan["resources"] if r["protect"]}
        assert {n for n, _ in kept} == protected | {"governance-namespace"}
        for name, path in paths.items():
            if name in protected:
                assert api.get(path) is not None, f"destroy deleted the protected {name}"
            else:
                gone(api, path)

        code, wiped, err = project.run("destroy", "--delete-data", "--confirm", "dev-kubernetes", "--yes")
        assert code == 0, err
        assert wiped["kept"] == []
        for path in paths.values():
            gone(api, path)
        gone(api, namespace_path)
    finally:
        project.run("destroy", "--delete-data", "--confirm", "dev-kubernetes", "--yes")


def test_a_split_spec_goes_up_and_down_through_a_stack_reference(cluster: Cluster, engine: Engine,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    harness(monkeypatch, engine, cluster.kubeconfig)
    project = make_project(engine.workdir / f"split-{tmp_path.name}", cluster.context, split={"enabled": True})
    api = cluster.api
    try:
        code, up, err = project.run("up", "--yes")
        assert code == 0 and up["ok"], err
        shared, model = up["parts"]
        assert (shared["part"], model["part"]) == ("shared", "churn-classifier")
        # The model stack read the namespace and the shared values through a real StackReference.
        model_state = state(project, model["pulumi_stack"])
        assert any(r["type"] == "pulumi:pulumi:StackReference" for r in model_state)
        isvc = api.get(f"/apis/serving.kserve.io/v1beta1/namespaces/{project.namespace}/inferenceservices/"
                       "churn-dev-churn-classifier")  # fmt: skip
        assert isvc is not None and isvc["metadata"]["namespace"] == project.namespace
        code, preview, err = project.run("preview", "--expect-no-changes")
        assert code == 0, err
        code, down, err = project.run("destroy", "--delete-data", "--confirm", "dev-kubernetes", "--yes")
        assert code == 0, err
        gone(api, f"/api/v1/namespaces/{project.namespace}")
    finally:
        project.run("destroy", "--delete-data", "--confirm", "dev-kubernetes", "--yes")
