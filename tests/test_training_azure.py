"""Azure training, tracking and registry: the ML workspace, compute clusters, components, jobs, models."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_infra import api
from mlops_infra.backends import registry
from mlops_infra.backends.azure import BACKEND, catalog
from mlops_infra.backends.azure.training import (
    TEMPLATE,
    asset_name,
    command,
    input_names,
)
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan
from mlops_infra.spec.models import Compute, DataRef
from mlops_infra.stages.training import checkpoint_prefix, output_prefix
from mlops_infra.templating import render, render_json
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

CLOUD = "azure"  # for the dev / prod fixtures in conftest.py

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
GRANT = "azure-native:authorization:RoleAssignment"
ML = "azure-native:machinelearningservices:"
ROLE = {
    "acr-pull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "metrics-writer": "635dd51f-9968-44d3-b7fb-6d9a6bd613ae",
    "blob-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "ai-administrator": "b78c5d69-af96-48a3-bf8d-a8b4d589de94",
    "secrets-officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "crypto-service": "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "network-approver": "b556d68e-0be0-4f35-a333-ad7ee1ce17ea",
}
# Roles that grant (nearly) everything: Owner, Contributor, User Access Administrator, AzureML Data Scientist.
BROAD = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-bdd0-40e5-a4ae-bfc1a6aa0d5b",
    "f6c7c914-8db3-469d-8ca1-694a8f32e121",
}


def spec_data(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with only the clouds registered right now (others' backends may be in progress)."""
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data.update(copy.deepcopy(changes))
    return data


CHURN = {
    "name": "churn",
    "training": {
        "image": "ghcr.io/acme/churn-train:1.4.0",
        "compute": {"size": "cpu-large"},
        "spot": True,
        "max_runtime": "4h",
        "hyperparameters": {"epochs": 20, "lr": 0.01, "note": "it's fine", "warm": True},
        "environment": {"MODE": "full"},
        "inputs": ["raw", {"bucket": "features", "prefix": "churn/"}],
        "run_on_deploy": True,
    },
    "registry": {"approval": "automatic"},
}
VISION = {
    "name": "vision",
    "training": {
        "image": "acme.azurecr.io/vision-train:2.0",
        "compute": {"size": "gpu-x4", "instance_count": 2},
        "inputs": ["features"],
        "run_on_deploy": True,
    },
}
RUN = spec_data(
    clouds={
        "azure": {
            "location": "westeurope",
            "subscription_id": SUBSCRIPTION,
            "overrides": {"models": {"vision": {"training_vm_size": "standard_nc96ads_a100_v4"}}},
        }
    },
    storage={"buckets": [{"name": "raw"}, {"name": "features"}]},
    tracking={"enabled": True},
    models=[CHURN, VISION],
    governance={"network": "private"},
)


def _changed(**training: Any) -> dict[str, Any]:
    data = copy.deepcopy(RUN)
    data["models"][0]["training"].update(training)
    return data





@pytest.fixture(scope="module")
def run() -> dict:
    return plan_for("azure", RUN)


@pytest.fixture(scope="module")
def grouped() -> dict:
    data = copy.deepcopy(RUN)
    for model in data["models"]:
        model["group"] = "team"
    return plan_for("azure", data)


@pytest.fixture(scope="module")
def run_changed() -> dict:
    return plan_for("azure", _changed(hyperparameters={**CHURN["training"]["hyperparameters"], "epochs": 21}))


@pytest.fixture(scope="module")
def run_retagged() -> dict:
    # Tags, and the order of models and inputs, are not part of what a job runs.
    data = copy.deepcopy(RUN)
    data["tags"] = {"owner": "ml-platform", "team": "churn"}
    data["models"].reverse()
    data["models"][1]["training"]["inputs"].reverse()
    return plan_for("azure", data)


@pytest.fixture(scope="module")
def tracking_only() -> dict:
    return plan_for("azure", spec_data(tracking={"enabled": True}))


def one(plan: dict, type_: str, name: str | None = None) -> dict:
    found = [r for r in resources_of(plan, type_) if name is None or r["name"] == name]
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]



def role_guid(grant: dict) -> str:
    return grant["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1]


def training_models(plan: dict) -> list[str]:
    return sorted(plan["outputs"]["training"]["pipelines"])


# --- resources per model and the workspace they live in ---------------------------------------


def test_every_trained_model_gets_cluster_environment_and_component(dev: dict, prod: dict) -> None:
    # service objects (Azure ML REST API 2024-10-01): workspaces/computes, environments/versions,
    # components/versions, models
    for plan, models in ((dev, ["churn-classifier"]), (prod, ["churn-classifier", "ltv-regressor"])):
        assert training_models(plan) == models
        for model in models:
            for kind, type_ in (
                ("compute", "Compute"),
                ("environment", "EnvironmentContainer"),
                ("envversion", "EnvironmentVersion"),
                ("component", "ComponentContainer"),
                ("compversion", "ComponentVersion"),
            ):
                assert by_name(plan, f"training-{kind}-{model}")["type"] == ML + type_
            assert by_name(plan, f"registry-model-{model}")["type"] == ML + "ModelContainer"
            assert plan["outputs"]["training"]["images"][model].startswith("ghcr.io/acme/")
        assert resources_of(plan, ML + "Job") == []  # no run_on_deploy in the examples
        # the stack's one workspace, and a feature store only where the spec declares one
        workspaces = {w["name"] for w in resources_of(plan, ML + "Workspace")}
        assert workspaces == ({"storage-workspace", "features-store"} if plan is prod else {"storage-workspace"})
        # The tracking stage adds no cloud resource on Azure (only its component): the workspace serves MLflow.
        assert "tracking" not in plan["summary"]["by_stage"]
        assert [r["custom"] for r in plan["resources"] if r["stage"] == "tracking"] == [False]


def test_workspace_is_wired_to_the_stack(dev: dict, run: dict) -> None:
    for plan, private in ((dev, False), (run, True)):
        workspace = one(plan, ML + "Workspace")
        inputs, deps = workspace["inputs"], workspace["dependencies"]
        assert workspace["name"] == "storage-workspace" and workspace["protect"]
        assert deps["storageAccount"] == ["storage-account"]
        assert deps["keyVault"] == ["governance-vault"]
        assert deps["applicationInsights"] == ["storage-insights"]
        assert deps["containerRegistry"] == ["storage-registry"]
        assert inputs["hbiWorkspace"] is True and inputs["v1LegacyMode"] is False
        assert inputs["systemDatastoresAuthMode"] == "Identity"  # the account refuses shared keys
        assert inputs["identity"]["type"] == "UserAssigned"
        assert "governance-identity-workspace" in deps["primaryUserAssignedIdentity"]
        assert inputs["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
        assert inputs["managedNetwork"]["isolationMode"] == ("AllowOnlyApprovedOutbound" if private else "Disabled")
        insights = one(plan, "azure-native:applicationinsights:Component")
        assert insights["inputs"]["ingestionMode"] == "LogAnalytics"
        assert insights["dependencies"]["workspaceResourceId"] == ["storage-logs"]
        acr = one(plan, "azure-native:containerregistry:Registry")["inputs"]
        assert acr["sku"] == {"name": "Premium"} and acr["adminUserEnabled"] is False
        assert acr["anonymousPullEnabled"] is False
        assert acr["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
        rules = name_rules()
        assert rules["azure.acr.registry"].accepts(acr["registryName"])
        assert rules["azure.ml.workspace"].accepts(inputs["workspaceName"])


def test_workspace_urn_does_not_depend_on_which_ml_stage_uses_it(dev: dict, tracking_only: dict) -> None:
    # Turning training and the registry off (tracking only) keeps the same workspace resource:
    # same logical name, same stage, same physical name; without any ML stage there is none.
    for plan in (dev, tracking_only):
        workspace = one(plan, ML + "Workspace")
        assert (workspace["name"], workspace["stage"], workspace["parent"]) == ("storage-workspace", "storage", "storage")
        assert workspace["inputs"]["workspaceName"] == "churn-dev"
    assert resources_of(tracking_only, ML + "Compute") == []
    assert resources_of(plan_for("azure", spec_data()), ML + "Workspace") == []


# --- wiring to the foundation: artifacts, key, identity -----------------------------------------


def test_training_output_lands_in_the_artifact_bucket(dev: dict, run: dict) -> None:
    for plan in (dev, run):
        artifacts = plan["outputs"]["storage"]["artifacts_uri"]
        for model in training_models(plan):
            assert plan["outputs"]["training"]["output_uris"][model] == f"{artifacts}/{output_prefix(model)}"
    datastore = one(run, ML + "Datastore")
    assert datastore["inputs"]["properties"]["containerName"] == by_name(run, "storage-bucket-artifacts")["inputs"]["containerName"]
    assert "storage-bucket-artifacts" in datastore["dependencies"]["properties"]
    assert datastore["inputs"]["properties"]["credentials"] == {"credentialsType": "None"}  # identities, no keys
    name = datastore["inputs"]["name"]
    for model in ("churn", "vision"):
        job = by_name(run, f"training-job-{model}")
        outputs = job["inputs"]["properties"]["outputs"]
        assert outputs["model"]["uri"] == f"azureml://datastores/{name}/paths/{output_prefix(model)}"
        assert outputs["model"]["mode"] == "Upload"
        assert "storage-datastore-artifacts" in job["dependencies"]["properties"]


def test_workspace_and_registry_use_the_governance_key(dev: dict, prod: dict) -> None:
    for plan in (dev, prod):
        key_id = plan["outputs"]["governance"]["key_id"]
        workspaces = resources_of(plan, ML + "Workspace")  # with the feature store in prod: every one
        assert "storage-workspace" in {w["name"] for w in workspaces}
        for workspace in workspaces:
            encryption = workspace["inputs"]["encryption"]
            assert encryption["status"] == "Enabled"
            assert encryption["keyVaultProperties"]["keyIdentifier"] == key_id  # versionless: follows rotation
            assert {"governance-key", "governance-vault", "governance-identity-workspace"} <= set(
                workspace["dependencies"]["encryption"]
            )
        workspace = one(plan, ML + "Workspace", "storage-workspace")
        acr = one(plan, "azure-native:containerregistry:Registry")
        assert acr["inputs"]["encryption"]["status"] == "enabled"
        assert acr["inputs"]["encryption"]["keyVaultProperties"]["keyIdentifier"] == key_id
        assert set(acr["dependencies"]["encryption"]) == {"governance-key", "governance-identity-workspace"}
        # the identity may wrap keys before the workspace and registry are created
        key_grant = "governance-grant-workspace-key-vault-crypto-service-encryption-user-key"
        assert role_guid(by_name(plan, key_grant)) == ROLE["crypto-service"]
        assert key_grant in acr["dependencies"]["identity"] and key_grant in workspace["dependencies"]["identity"]
        # not protected: a default destroy keeps it because the kept workspace and registry need it
        assert not by_name(plan, "governance-identity-workspace")["protect"]


def test_jobs_and_clusters_run_as_their_model_groups_identity(dev: dict, run: dict, grouped: dict) -> None:
    for plan in (dev, run):
        for model in training_models(plan):
            compute = by_name(plan, f"training-compute-{model}")
            # each model is its own group by default: its own identity, on its own cluster only
            assert compute["dependencies"]["identity"] == [f"governance-identity-data-{model}"]
            assert compute["inputs"]["identity"]["type"] == "UserAssigned"
            assert compute["inputs"]["properties"]["disableLocalAuth"] is True
    for model in ("churn", "vision"):
        job = by_name(run, f"training-job-{model}")
        assert job["inputs"]["properties"]["identity"]["identityType"] == "Managed"
        assert f"governance-identity-data-{model}" in job["dependencies"]["properties"]
    # a group's models share their group's identity (each still has a cluster of its own)
    for model in ("churn", "vision"):
        assert by_name(grouped, f"training-compute-{model}")["dependencies"]["identity"] == ["governance-identity-data-team"]
        assert by_name(grouped, f"training-job-{model}")["depends_on"] == ["governance-grant-data-team"]
    assert "governance-identity-data-churn" not in {r["name"] for r in grouped["resources"]}


# --- compute, spot, job ----------------------------------------------------------------------


def test_clusters_scale_to_zero_with_catalog_sizes_and_overrides(dev: dict, prod: dict, run: dict) -> None:
    expected = {
        (dev["project"], "churn-classifier"): ("Standard_D8s_v3", 1),
        ("prod", "churn-classifier"): ("Standard_D16s_v3", 1),
        ("prod", "ltv-regressor"): ("Standard_NC4as_T4_v3", 1),
        ("run", "churn"): ("Standard_D8s_v3", 1),
        ("run", "vision"): ("Standard_NC96ads_A100_v4", 2),  # the override, in the catalog's spelling
    }
    for label, plan in (("churn", dev), ("prod", prod), ("run", run)):
        for model in training_models(plan):
            compute = by_name(plan, f"training-compute-{model}")
            props = compute["inputs"]["properties"]["properties"]
            size, count = expected[(label, model)]
            assert props["vmSize"] == size
            assert props["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": count, "nodeIdleTimeBeforeScaleDown": "PT120S"}
            assert props["remoteLoginPortPublicAccess"] == "Disabled"
            assert props["enableNodePublicIp"] is (plan is not run)  # run is private
            assert name_rules()["azure.ml.compute_cluster"].accepts(compute["inputs"]["computeName"])


def test_spot_sets_low_priority_and_checkpoints(dev: dict, prod: dict, run: dict) -> None:
    spot = by_name(dev, "training-compute-churn-classifier")["inputs"]["properties"]["properties"]
    assert spot["vmPriority"] == "LowPriority"
    dedicated = by_name(prod, "training-compute-churn-classifier")["inputs"]["properties"]["properties"]
    assert dedicated["vmPriority"] == "Dedicated"
    component = by_name(dev, "training-compversion-churn-classifier")["inputs"]["properties"]["componentSpec"]
    assert component["outputs"]["checkpoints"]["mode"] == "rw_mount"
    assert "--checkpoint-dir ${{outputs.checkpoints}}" in component["command"]
    plain = by_name(prod, "training-compversion-churn-classifier")["inputs"]["properties"]["componentSpec"]
    assert "checkpoints" not in plain["outputs"] and "--checkpoint-dir" not in plain["command"]
    job = by_name(run, "training-job-churn")["inputs"]["properties"]
    datastore = one(run, ML + "Datastore")["inputs"]["name"]
    assert job["outputs"]["checkpoints"] == {
        "jobOutputType": "uri_folder",
        "mode": "ReadWriteMount",  # a resumed run sees what the preempted one wrote
        "uri": f"azureml://datastores/{datastore}/paths/{checkpoint_prefix('churn')}",
    }
    assert "checkpoints" not in by_name(run, "training-job-vision")["inputs"]["properties"]["outputs"]


def test_run_on_deploy_job_definition(run: dict) -> None:
    job = by_name(run, "training-job-churn")
    props = job["inputs"]["properties"]
    assert job["retain_on_delete"] is True  # a replaced job keeps its run history
    assert props["jobType"] == "Command" and props["experimentName"] == "churn"
    assert props["limits"] == {"jobLimitsType": "Command", "timeout": "PT14400S"}
    assert props["resources"]["instanceCount"] == 1 and "distribution" not in props
    assert props["environmentVariables"] == {"MODE": "full"}
    uris = run["outputs"]["storage"]["bucket_uris"]
    names = input_names([DataRef(bucket="raw"), DataRef(bucket="features", prefix="churn/")])
    assert set(props["inputs"]) == set(names)
    for name, ref in names.items():
        assert props["inputs"][name] == {
            "jobInputType": "uri_folder",
            "mode": "ReadOnlyMount",
            "uri": f"{uris[ref.bucket]}/{ref.prefix}",
        }
    assert props["command"] == by_name(run, "training-compversion-churn")["inputs"]["properties"]["componentSpec"]["command"]
    assert "--lr 0.01" in props["command"] and "--warm true" in props["command"] and "'it'\"'\"'s fine'" in props["command"]
    assert set(job["dependencies"]["properties"]) >= {
        "training-compute-churn",
        "training-envversion-churn",
        "governance-identity-data-churn",
    }
    # the job starts only once its group's identity can read, pull, log and write
    assert job["depends_on"] == ["governance-grant-data-churn"]
    vision = by_name(run, "training-job-vision")["inputs"]["properties"]
    assert vision["resources"]["instanceCount"] == 2
    assert vision["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 4}


def test_job_name_changes_with_its_definition_only(run: dict, run_changed: dict, run_retagged: dict, dev: dict) -> None:
    def names(plan: dict) -> dict[str, str]:
        return {m: by_name(plan, f"training-job-{m}")["inputs"]["id"] for m in ("churn", "vision")}

    first, changed, retagged = names(run), names(run_changed), names(run_retagged)
    assert all(re.fullmatch(rf"{m}-train-[0-9a-f]{{12}}", n) for m, n in first.items())
    assert changed["churn"] != first["churn"] and changed["vision"] == first["vision"]
    assert retagged == first
    version = lambda p: by_name(p, "training-compversion-churn")["inputs"]["version"]
    assert version(run_changed) != version(run) == version(run_retagged)
    assert resources_of(dev, ML + "Job") == []


# --- registry and tracking ---------------------------------------------------------------------


def test_registry_records_the_approval_mode(dev: dict, prod: dict, run: dict) -> None:
    expected = {
        "churn-classifier": "manual",
        "ltv-regressor": "automatic",
        "churn": "automatic",
    }
    for plan in (dev, prod, run):
        containers = resources_of(plan, ML + "ModelContainer")
        assert {c["inputs"]["name"] for c in containers} == set(plan["outputs"]["registry"]["registries"])
        for container in containers:
            approval = expected[container["inputs"]["name"]]
            props = container["inputs"]["properties"]
            assert props["tags"]["approval"] == approval and props["properties"] == {"approval": approval}
            assert props["tags"]["managed-by"] == "mlops-infra"
            assert container["protect"]
            assert container["dependencies"]["workspaceName"] == ["storage-workspace"]
    assert "vision" not in run["outputs"]["registry"]["registries"]  # no registry block


def test_tracking_uri_is_the_workspace_mlflow_endpoint(dev: dict, run: dict) -> None:
    assert run["outputs"]["tracking"]["tracking_uri"] == (
        f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/{SUBSCRIPTION}/resourceGroups/"
        "churn-dev-westeurope/providers/Microsoft.MachineLearningServices/workspaces/churn-dev"
    )
    uri = dev["outputs"]["tracking"]["tracking_uri"]
    # clouds.azure.subscription_id is required: the URI is known while planning
    assert uri.startswith("azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/")
    assert UNKNOWN not in uri and uri.endswith("/workspaces/churn-dev")


# --- least privilege ---------------------------------------------------------------------------


def test_a_group_identity_gets_only_what_its_jobs_need(run: dict, prod: dict) -> None:
    from mlops_infra.backends.azure import governance_access

    for plan in (run, prod):
        assert [g for g in resources_of(plan, GRANT) if g["stage"] == "training"] == []
        role = by_name(plan, "governance-role-model-data")
        (permissions,) = role["inputs"]["permissions"]
        # images, metrics, the key, and blobs (every blob action it holds is under the condition)
        assert sorted(permissions["actions"]) == sorted(governance_access.ROLE_ACTIONS)
        blob_actions = [a for a in permissions["dataActions"] if "/blobs/" in a]
        assert sorted(blob_actions) == sorted((governance_access.READ, *governance_access.WRITES))
        group_grants = [
            g for g in resources_of(plan, GRANT) if g["dependencies"]["principalId"][0].startswith("governance-identity-data-")
        ]
        for grant in group_grants:
            if grant["dependencies"]["roleDefinitionId"] != ["governance-role-model-data"]:
                # the lifecycle stages' workspace roles (batch invoker, feature reader): control-plane
                # actions only, on the one workspace their role may be assigned on, so nothing to condition
                role = by_name(plan, grant["dependencies"]["roleDefinitionId"][0])
                assert all(not p.get("dataActions") for p in role["inputs"]["permissions"]), role["name"]
                assert grant["dependencies"]["scope"] == role["dependencies"]["assignableScopes"], grant["name"]
                assert grant["dependencies"]["scope"][0] in {"storage-workspace", "features-store"}, grant["name"]
                continue
            condition = grant["inputs"]["condition"]
            assert all(f"ActionMatches{{'{action}'" in condition for action in blob_actions)
            # the workspace's system containers: run logs and the default datastore
            assert "StringEquals 'azureml'" in condition and "StringStartsWith 'azureml-blobstore-'" in condition
        lifecycle = sorted(g["name"] for g in group_grants if g["dependencies"]["roleDefinitionId"] != ["governance-role-model-data"])
        assert lifecycle == (
            ["batch-grant-churn-classifier-batch-invoker-workspace", "features-grant-churn-classifier-feature-reader-featurestore"]
            if plan is prod
            else []
        )
        workspace_grants = [g for g in resources_of(plan, GRANT) if "identity-workspace" in g["dependencies"]["principalId"][0]]
        assert sorted((role_guid(g), g["dependencies"]["scope"][0]) for g in workspace_grants) == sorted(
            [
                (ROLE["crypto-service"], "governance-key"),
                (ROLE["ai-administrator"], "governance-vault"),
                (ROLE["secrets-officer"], "governance-vault"),
                (ROLE["ai-administrator"], "storage-account"),
                (ROLE["ai-administrator"], "storage-registry"),
                (ROLE["ai-administrator"], "storage-insights"),
            ]
            # a private stack's managed network connects private endpoints to these three
            + [(ROLE["network-approver"], s) for s in ("governance-vault", "storage-account", "storage-registry")]
            * (plan is run)
        )
        assert not {role_guid(g) for g in resources_of(plan, GRANT)} & BROAD


# --- templates, catalog, validation, determinism -------------------------------------------------


def test_component_template_renders_valid_complete_json() -> None:
    # Required by the command component schema (reference-yaml-component-command): type, name,
    # command, environment; inputs/outputs need a type; distribution only for several nodes.
    values = {
        "component_name": "m_train",
        "version": "abc",
        "display_name": 'say "hi"',
        "description": "back\\slash\nnewline",
        "command": command(["raw"], {"q": 'a "b"'}, spot=True),
        "environment": "azureml:m_train_env:1",
        "environment_variables": {"K": "v"},
        "inputs": {"raw": "bucket raw", "features__abc123": "bucket features under x/"},
        "outputs": {"model": {"mode": "upload", "description": "d"}, "checkpoints": {"mode": "rw_mount", "description": "c"}},
        "instance_count": 1,
        "distribution": None,
    }
    spec = render_json(TEMPLATE, **values)
    assert spec["type"] == "command" and spec["name"] == "m_train" and spec["version"] == "abc"
    assert spec["environment"] == "azureml:m_train_env:1" and spec["display_name"] == 'say "hi"'
    assert spec["command"] == values["command"] and spec["description"] == values["description"]
    assert all(i["type"] == "uri_folder" and i["mode"] == "ro_mount" for i in spec["inputs"].values())
    assert {k: v["mode"] for k, v in spec["outputs"].items()} == {"model": "upload", "checkpoints": "rw_mount"}
    assert spec["resources"] == {"instance_count": 1} and "distribution" not in spec
    several = render_json(TEMPLATE, **{**values, "instance_count": 3, "inputs": {}, "distribution": {"type": "pytorch", "process_count_per_instance": 2}})
    assert several["distribution"] == {"type": "pytorch", "process_count_per_instance": 2} and several["inputs"] == {}
    assert "{#" not in render(TEMPLATE, **values)  # the comment header does not leak


def test_command_and_asset_names() -> None:
    assert command([], {}, spot=False) == "train --model-dir ${{outputs.model}}"
    line = command(["b", "a"], {"x y": 1, "flag": False}, spot=False)
    assert line.index("--a ${{inputs.a}}") < line.index("--b ${{inputs.b}}")
    assert "'--x y' 1" in line and "--flag false" in line
    assert asset_name("churn-classifier", "train") == "churn_classifier_train"
    names = input_names([DataRef(bucket="raw-data"), DataRef(bucket="raw-data", prefix="a/"), DataRef(bucket="raw", prefix="a/")])
    assert len(names) == 3 and all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


def test_overrides_and_catalog_misses() -> None:
    assert catalog.canonical("STANDARD_D8S_V3", "training") == "Standard_D8s_v3"
    with pytest.raises(CatalogMiss) as miss:
        catalog.instance_type(Compute(cpus=8, memory_gib=32, gpus=16), "training", None)
    assert "Azure" in miss.value.message and "16 gpus" in miss.value.message
    spec = spec_from(spec_data(models=[{"name": "big", "training": {"image": "r/t:1", "compute": {"cpus": 8, "memory_gib": 32, "gpus": 16}}}]))
    problems = BACKEND.check(spec, spec.settings_for("azure"))
    errors = [p for p in problems if p.severity == "error"]
    assert [p.path for p in errors] == [("models", 0, "training", "compute")] and "Azure" in errors[0].message


def test_examples_validate_with_honest_warnings() -> None:
    for stack, expect in (("dev", set()), ("prod", {("tracking", "size")})):
        result = api.validate(source=api.resolve_source(stack=stack, spec=None, root=ROOT), clouds=["azure"])
        assert result.valid and result.problems == []
        paths = {w.path for w in result.warnings}
        assert ("models", 0, "registry", "approval") in paths  # manual approval is not enforced by Azure
        assert expect <= paths
        assert not any("image" in str(w.path) for w in result.warnings)  # public ghcr.io images are fine
        assert not any(w.path in (("tracking",),) or w.path[-1:] in (("training",), ("registry",)) for w in result.warnings)


def test_plans_are_deterministic(run: dict) -> None:
    assert dump_plan(plan_for("azure", RUN)) == dump_plan(run)
