"""Azure batch scoring: batch endpoint, deployment, compute, schedule, grants, alerts and checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.batch import INVOKER_ACTIONS
from mlops_infra.backends.azure.batch_schedule import recurrence
from mlops_infra.backends.azure.schedules import Untranslatable
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

ML = "azure-native:machinelearningservices:"
GRANT = "azure-native:authorization:RoleAssignment"
ROLE_DEF = "azure-native:authorization:RoleDefinition"
WORKFLOW = "azure-native:logic:Workflow"
ALERT = "azure-native:monitor:MetricAlert"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

CHURN = {
    "name": "churn",
    "group": "retention",
    "training": {"image": "ghcr.io/acme/churn-train:1.4.0", "compute": {"size": "cpu-large"}, "inputs": ["raw"]},
    "registry": {"approval": "automatic"},
    "batch": {
        "input": {"bucket": "raw", "prefix": "churn/to-score/"},
        "output": {"bucket": "scores", "prefix": "churn/"},
        "schedule": "0 5 * * 1-5",
        "timezone": "Europe/Amsterdam",
        "compute": {"size": "cpu-large"},
        "instance_count": 3,
        "max_runtime": "2h",
    },
}
LTV = {
    "name": "ltv",
    "batch": {
        "input": {"bucket": "raw", "prefix": "ltv/"},
        "output": {"bucket": "scores", "prefix": "ltv/"},
        "schedule": "30 1 * * *",
        "compute": {"cpus": 4, "memory_gib": 16},
        "model_uri": "azureml://registries/acme/models/ltv/versions/3",
    },
}


def spec_data(models: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {"azure": data["clouds"]["azure"]}
    data["storage"] = {"buckets": [{"name": "raw"}, {"name": "scores", "expire_after_days": 90}]}
    data["monitoring"] = {"notify": {"emails": ["ml-oncall@example.com"]}}
    data["models"] = copy.deepcopy(models)
    data.update(copy.deepcopy(changes))
    return data


BATCH = spec_data([CHURN, LTV])


@pytest.fixture(scope="module")
def plan() -> dict:
    return plan_for("azure", BATCH)


@pytest.fixture(scope="module")
def plan_new_schedule() -> dict:
    data = copy.deepcopy(BATCH)
    data["models"][0]["batch"]["schedule"] = "15 6 * * 1-5"
    return plan_for("azure", data)



def namer() -> Any:
    spec = spec_from(BATCH)
    return BACKEND.namer(spec, spec.settings_for("azure"))


def test_each_model_gets_an_endpoint_a_deployment_a_cluster_and_a_schedule(plan: dict) -> None:
    batch = {r["name"]: r["type"] for r in plan["resources"] if r["stage"] == "batch"}
    for model in ("churn", "ltv"):
        assert batch[f"batch-endpoint-{model}"] == ML + "BatchEndpoint"
        assert batch[f"batch-deployment-{model}"] == ML + "BatchDeployment"
        assert batch[f"batch-compute-{model}"] == ML + "Compute"
        assert batch[f"batch-workflow-{model}"] == WORKFLOW
        assert batch[f"batch-modelversion-{model}"] == ML + "ModelVersion"
    endpoint = by_name(plan, "batch-endpoint-churn")["inputs"]
    assert endpoint["properties"]["authMode"] == "AADToken"
    assert endpoint["endpointName"] == namer().name("azure.ml.online_endpoint", "churn", "batch")
    assert len(endpoint["endpointName"]) <= 32 and endpoint["endpointName"][0].isalpha()


def test_the_deployment_runs_the_registered_version_on_the_catalog_cluster(plan: dict) -> None:
    deployment = by_name(plan, "batch-deployment-churn")["inputs"]
    props = deployment["properties"]
    assert props["resources"] == {"instanceCount": 3}
    assert props["retrySettings"] == {"maxRetries": 3, "timeout": "PT7200S"}
    assert props["model"]["referenceType"] == "Id" and props["outputAction"] == "AppendRow"
    compute = by_name(plan, "batch-compute-churn")["inputs"]["properties"]
    assert compute["properties"]["vmSize"] == "Standard_D8s_v3"  # cpu-large, processing purpose
    assert compute["properties"]["scaleSettings"]["maxNodeCount"] == 3
    assert compute["properties"]["scaleSettings"]["minNodeCount"] == 0
    assert compute["properties"]["enableNodePublicIp"] is True
    # churn has a registry: its version goes into the registry's container (no container of its own).
    version = by_name(plan, "batch-modelversion-churn")["inputs"]
    assert version["properties"]["modelType"] == "mlflow_model"
    assert not any(r["name"] == "batch-model-churn" for r in plan["resources"])
    assert version["properties"]["modelUri"].endswith("/paths/models/churn/")
    # ltv has none: a protected container of its own, and its model_uri as is.
    ltv = by_name(plan, "batch-modelversion-ltv")["inputs"]
    assert ltv["properties"]["modelUri"] == LTV["batch"]["model_uri"]
    container = by_name(plan, "batch-model-ltv")
    assert container["protect"] is True and container["inputs"]["name"] == "ltv_batch"


def test_the_cluster_and_the_schedule_run_as_a_user_assigned_identity_per_model(plan: dict) -> None:
    identities = {r["name"] for r in plan["resources"] if r["type"].endswith("UserAssignedIdentity")}
    assert any("retention" in name for name in identities)  # churn's group has its identity
    compute = by_name(plan, "batch-compute-churn")
    workflow = by_name(plan, "batch-workflow-churn")
    # The identity ids are known after apply: both name exactly one user-assigned identity.
    assert compute["inputs"]["identity"]["type"] == "UserAssigned"
    assert workflow["inputs"]["identity"]["type"] == "UserAssigned"
    churn_cluster = by_name(plan, "batch-compute-churn")["inputs"]["computeName"]
    ltv_cluster = by_name(plan, "batch-compute-ltv")["inputs"]["computeName"]
    assert churn_cluster != ltv_cluster


def test_invoking_is_granted_with_the_documented_actions_on_the_workspace_only(plan: dict) -> None:
    (role,) = [r for r in resources_of(plan, ROLE_DEF) if r["stage"] == "batch"]
    actions = role["inputs"]["permissions"][0]["actions"]
    assert actions == list(INVOKER_ACTIONS)
    assert all("*" not in action for action in actions)
    assert all(action.startswith("Microsoft.MachineLearningServices/workspaces/") for action in actions)
    assert len(role["inputs"]["assignableScopes"]) == 1
    grants = [r for r in resources_of(plan, GRANT) if r["stage"] == "batch"]
    # One per model group that scores in batch (retention for churn, ltv's own group), on the workspace.
    assert sorted(g["name"] for g in grants) == [
        "batch-grant-ltv-batch-invoker-workspace",
        "batch-grant-retention-batch-invoker-workspace",
    ]
    assert {g["inputs"]["principalType"] for g in grants} == {"ServicePrincipal"}


def test_the_schedule_posts_a_job_for_the_input_and_output(plan: dict) -> None:
    workflow = by_name(plan, "batch-workflow-churn")["inputs"]
    trigger = workflow["definition"]["triggers"]["schedule"]
    assert trigger["type"] == "Recurrence"
    assert trigger["recurrence"]["frequency"] == "Week"
    assert trigger["recurrence"]["schedule"] == {
        "hours": [5], "minutes": [0], "weekDays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    }
    assert trigger["recurrence"]["timeZone"] == "W. Europe Standard Time"
    score = workflow["definition"]["actions"]["score"]["inputs"]
    assert score["method"] == "POST" and score["authentication"]["audience"] == "https://ml.azure.com"
    params = {k: v["value"] for k, v in workflow["parameters"].items()}
    endpoint = namer().name("azure.ml.online_endpoint", "churn", "batch")
    assert params["invocationUri"] == f"https://{endpoint}.westeurope.inference.ml.azure.com/jobs"
    assert params["inputUri"].endswith("/churn/to-score/")
    datastore = by_name(plan, "batch-datastore-scores")["inputs"]
    assert params["outputUri"] == f"azureml://datastores/{datastore['name']}/paths/churn/"
    assert datastore["properties"]["credentials"] == {"credentialsType": "None"}
    daily = by_name(plan, "batch-workflow-ltv")["inputs"]["definition"]["triggers"]["schedule"]["recurrence"]
    assert daily["frequency"] == "Day" and daily["schedule"] == {"hours": [1], "minutes": [30]}
    assert daily["timeZone"] == "UTC"


def test_failed_runs_notify_the_monitoring_action_group(plan: dict) -> None:
    group = next(r for r in plan["resources"] if r["type"] == "azure-native:monitor:ActionGroup")
    alerts = {r["name"]: r["inputs"] for r in resources_of(plan, ALERT) if r["stage"] == "batch"}
    assert set(alerts) == {f"batch-alarm-{k}-{m}" for k in ("start", "failed") for m in ("churn", "ltv")}
    failed = alerts["batch-alarm-failed-churn"]["criteria"]["allOf"][0]
    assert failed["metricName"] == "Failed Runs"
    assert failed["dimensions"][0]["values"] == [namer().name("azure.ml.online_endpoint", "churn", "batch")]
    assert alerts["batch-alarm-start-churn"]["criteria"]["allOf"][0]["metricName"] == "RunsFailed"
    assert group["stage"] == "monitoring"
    assert all(len(a["actions"]) == 1 for a in alerts.values())


def test_a_private_network_keeps_batch_nodes_off_public_ips() -> None:
    data = spec_data([{**CHURN, "batch": {k: v for k, v in CHURN["batch"].items() if k not in ("schedule", "timezone")}
                       | {"schedule": "0 5 * * *"}}], governance={"network": "private"})
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["azure"])
    errors = {p.dotted_path: p.message for p in info.value.problems if p.severity == "error"}
    assert "models[0].batch.schedule" in errors and "private endpoint" in errors["models[0].batch.schedule"]
    plan = plan_for("azure", data)  # what a forced plan would hold
    compute = by_name(plan, "batch-compute-churn")["inputs"]["properties"]["properties"]
    assert compute["enableNodePublicIp"] is False


def test_changing_a_batch_schedule_updates_only_that_schedule(plan: dict, plan_new_schedule: dict) -> None:
    changes = diff_plans(plan, plan_new_schedule)
    assert changes.create == [] and changes.delete == []
    assert [u.name for u in changes.update] == ["batch-workflow-churn"]
    assert all(path.startswith("inputs.definition.triggers.schedule") for path in changes.update[0].paths)


def test_a_plan_of_the_same_spec_is_byte_identical(plan: dict) -> None:
    assert plan == plan_for("azure", BATCH)


def _errors(data: dict) -> dict[str, Any]:
    with pytest.raises(SpecInvalid) as info:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["azure"])
    return {p.dotted_path: p for p in info.value.problems if p.severity == "error"}


def test_what_azure_cannot_do_is_a_located_error_with_a_hint() -> None:
    data = copy.deepcopy(BATCH)
    data["models"][0]["batch"]["on_new_data"] = True
    data["models"][0]["batch"]["schedule"] = "0 5 1 * *"  # first of the month
    data["models"][1]["batch"]["timezone"] = "Asia/Kathmandu"  # a real zone without a Windows mapping here
    data["models"][1]["batch"]["model_uri"] = "s3://acme/ltv/"
    data["models"][1]["batch"]["compute"] = {"cpus": 4, "memory_gib": 2000}
    errors = _errors(data)
    assert {
        "models[0].batch.on_new_data",
        "models[0].batch.schedule",
        "models[1].batch.timezone",
        "models[1].batch.model_uri",
        "models[1].batch.compute",
    } <= set(errors)
    assert all(p.hint and p.line is not None for p in errors.values())
    assert "WINDOWS_ZONES" in (errors["models[1].batch.timezone"].hint or "")


def test_validate_warns_about_mlflow_models_and_the_run_limit() -> None:
    checked = check_text(yaml.safe_dump(BATCH), "spec.yaml", clouds=["azure"])
    warned = {p.dotted_path for p in checked.warnings}
    assert {"models[0].batch", "models[0].batch.max_runtime"} <= warned


@pytest.mark.parametrize(
    ("cron", "frequency", "schedule"),
    [
        ("*/30 * * * *", "Day", {"hours": list(range(24)), "minutes": [0, 30]}),
        ("0 2 * * 0", "Week", {"hours": [2], "minutes": [0], "weekDays": ["Sunday"]}),
        ("0 2 * * *", "Day", {"hours": [2], "minutes": [0]}),
    ],
)
def test_recurrence_fires_at_the_crons_minutes(cron: str, frequency: str, schedule: dict) -> None:
    found = recurrence(cron, "UTC")
    assert found["frequency"] == frequency and found["schedule"] == schedule and found["interval"] == 1


@pytest.mark.parametrize("cron", ["0 2 1 * *", "0 2 * 1-6 *", "0 2 1 * 1"])
def test_recurrence_refuses_day_of_month_and_month_restrictions(cron: str) -> None:
    with pytest.raises(Untranslatable):
        recurrence(cron, "UTC")


def test_the_group_identity_writes_its_batch_output_prefix_and_no_other(plan: dict) -> None:
    from mlops_infra.backends.azure.governance_access import group_access
    from mlops_infra.access import reader_groups

    spec = spec_from(BATCH)
    names = namer()
    containers = {b: names.name("azure.storage.container", b) for b in ("raw", "scores", "artifacts")}
    access = group_access(reader_groups(spec)["retention"], models={m.name: m for m in spec.models}, containers=containers)
    written = {p.container: p.prefixes for p in access.writes if not p.container.startswith("azureml")}
    assert written == {containers["scores"]: ("churn/",), containers["artifacts"]: ("models/churn/",)}
    read = {p.container: p.prefixes for p in access.reads if not p.container.startswith("azureml")}
    assert read[containers["scores"]] == ("churn/",)  # reads back its own predictions, not ltv's
    grant = by_name(plan, "governance-grant-data-retention")["inputs"]["condition"]
    assert f"'{containers['scores']}' AND (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'churn/')" in grant
    assert "'ltv/'" not in grant


@pytest.mark.parametrize(
    ("uri", "warned"),
    [
        ("azureml://registries/acme/models/ltv/versions/3", False),  # a registry's model: no storage grant
        ("https://elsewhere.blob.core.windows.net/models/ltv/", True),  # another account: nothing granted
    ],
)
def test_a_model_uri_the_group_cannot_read_is_a_warning(uri: str, warned: bool) -> None:
    data = copy.deepcopy(BATCH)
    data["models"][1]["batch"]["model_uri"] = uri
    checked = check_text(yaml.safe_dump(data), "spec.yaml", clouds=["azure"])
    found = [p for p in checked.warnings if p.dotted_path == "models[1].batch.model_uri"]
    assert bool(found) == warned
    if found:
        assert "'ltv'" in found[0].message and found[0].hint
