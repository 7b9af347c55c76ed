"""The real engine path on Kubernetes: up, read back, no-change preview, StackReference, destroy.

A tiny pulumi-kubernetes program (not the product's: the Kubernetes backend comes later) goes
through the real Pulumi CLI and provider built by toolchain/build.sh, against a real API server.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable

import pulumi
import pytest

from tests.e2e.cluster import Api, ExternalCluster, LocalCluster
from tests.e2e.engine import SKIP_AWAIT, Engine, resource_types
from tests.e2e.toolchain import kubernetes_sdk

pytestmark = pytest.mark.e2e
k8s = kubernetes_sdk()

PROJECT = "mlops-e2e"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def provider(cluster: LocalCluster | ExternalCluster) -> Any:
    return k8s.Provider("cluster", kubeconfig=str(cluster.kubeconfig), context=cluster.context)


def platform(cluster: LocalCluster | ExternalCluster, namespace: str, *, protect: bool) -> Callable[[], None]:
    """A namespace, a service account, a protected ConfigMap standing in for data, and a model."""

    def program() -> None:
        opts = pulumi.ResourceOptions(provider=provider(cluster))
        ns = k8s.core.v1.Namespace("namespace", metadata={"name": namespace, "labels": RESTRICTED}, opts=opts)
        name = ns.metadata.apply(lambda m: m.name)
        sa = k8s.core.v1.ServiceAccount(
            "serving",
            metadata={"name": "serving", "namespace": name},
            automount_service_account_token=False,
            opts=opts,
        )
        data = k8s.core.v1.ConfigMap(
            "data",
            metadata={"name": "data", "namespace": name},
            data={"bucket": "raw"},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
        )
        k8s.apiextensions.CustomResource(
            "model",
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata={"name": "churn", "namespace": name},
            spec={
                "predictor": {
                    "minReplicas": 0,
                    "maxReplicas": 2,
                    "serviceAccountName": sa.metadata.apply(lambda m: m.name),
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/churn"},
                }
            },
            opts=opts,
        )
        pulumi.export("namespace", name)
        pulumi.export("data", data.metadata.apply(lambda m: m.name))

    return program


def consumer(cluster: LocalCluster | ExternalCluster, producer: str) -> Callable[[], None]:
    """A second stack that finds the first one's namespace through a StackReference."""

    def program() -> None:
        ref = pulumi.StackReference(f"organization/{PROJECT}/{producer}")
        namespace = ref.get_output("namespace")
        k8s.core.v1.ConfigMap(
            "from-reference",
            metadata={"name": "from-reference", "namespace": namespace},
            data={"data": ref.get_output("data")},
            opts=pulumi.ResourceOptions(provider=provider(cluster)),
        )
        pulumi.export("namespace", namespace)

    return program


def gone(api: Api, path: str) -> None:
    # skipAwait means the provider does not wait for deletions either: the API server may lag.
    deadline = time.monotonic() + 60
    while api.get(path) is not None:
        assert time.monotonic() < deadline, f"{path} still exists a minute after destroy"
        time.sleep(0.5)


def test_up_preview_reference_destroy(cluster: LocalCluster | ExternalCluster, engine: Engine) -> None:
    api = cluster.api
    namespace = f"mlops-e2e-{secrets.token_hex(3)}"
    ns_path = f"/api/v1/namespaces/{namespace}"
    paths = {
        "namespace": ns_path,
        "serving": f"{ns_path}/serviceaccounts/serving",
        "data": f"{ns_path}/configmaps/data",
        "model": f"/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/churn",
    }
    first = engine.stack(project=PROJECT, stack="platform", program=platform(cluster, namespace, protect=True))
    second = engine.stack(project=PROJECT, stack="consumer", program=consumer(cluster, "platform"))
    try:
        up = first.up()
        assert up.summary.result == "succeeded"
        # The stack, the provider and the four objects.
        assert up.summary.resource_changes == {"create": 6}
        assert up.outputs["namespace"].value == namespace

        read: dict[str, dict[str, Any]] = {}
        for name, path in paths.items():
            found = api.get(path)
            assert found is not None, f"{name} was not created ({path})"
            assert found["metadata"]["annotations"][SKIP_AWAIT] == "true"
            read[name] = found
        assert RESTRICTED.items() <= read["namespace"]["metadata"]["labels"].items()
        assert read["serving"]["automountServiceAccountToken"] is False
        assert read["data"]["data"] == {"bucket": "raw"}
        predictor = read["model"]["spec"]["predictor"]
        assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["serviceAccountName"]) == (0, 2, "serving")

        preview = first.preview(expect_no_changes=True)
        assert preview.change_summary == {"same": 6}

        referenced = second.up()
        assert referenced.outputs["namespace"].value == namespace
        made = api.get(f"{ns_path}/configmaps/from-reference")
        assert made is not None and made["data"] == {"data": "data"}
        second.destroy()
        gone(api, f"{ns_path}/configmaps/from-reference")

        # Pulumi keeps the protected ConfigMap and everything it transitively depends on: its
        # parent (the stack), its provider, and the Namespace its metadata.namespace came from.
        # The ServiceAccount and the InferenceService are not among them, so they go.
        first.destroy(exclude_protected=True)
        assert resource_types(first) == {
            f"{PROJECT}-platform": "pulumi:pulumi:Stack",
            "cluster": "pulumi:providers:kubernetes",
            "namespace": "kubernetes:core/v1:Namespace",
            "data": "kubernetes:core/v1:ConfigMap",
        }
        for name in ("serving", "model"):
            gone(api, paths[name])
        for name in ("namespace", "data"):
            assert api.get(paths[name]) is not None, f"destroy --exclude-protected deleted {name}"
    finally:
        # Unprotect, then delete everything (a real cluster must be left as it was found).
        second.destroy()
        unprotected = engine.stack(project=PROJECT, stack="platform", program=platform(cluster, namespace, protect=False))
        unprotected.up()
        unprotected.destroy()
        for stack in (second, first):
            stack.workspace.remove_stack(stack.name)
    assert first.workspace.list_stacks() == []
    gone(api, paths["data"])
    gone(api, ns_path)  # the namespace controller finalizes it: the controller manager works
