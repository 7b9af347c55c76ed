"""Azure data preparation: a scheduled Azure ML command job per model, as its group's identity."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_infra.backends.azure import BACKEND
from mlops_infra.backends.azure.governance_access import groups_access
from tests.azure_lifecycle import azure_spec, problems_at
from tests.planning import plan_for, resources_of, spec_from

ML = "azure-native:machinelearningservices:"
PREP = {
    "image": "ghcr.io/acme/prep:1.0",
    "compute": {"size": "cpu-large"},
    "inputs": [{"bucket": "raw", "prefix": "churn/"}],
    "output": {"bucket": "features", "prefix": "churn/prepared/"},
    "schedule": "0 1 * * 0",
    "timezone": "Europe/Amsterdam",
    "max_runtime": "2h",
    "environment": {"MODE": "weekly"},
}
TRAINING = {"image": "ghcr.io/acme/train:1.0", "compute": {"size": "cpu-small"},
            "inputs": [{"bucket": "features", "prefix": "churn/prepared/"}]}


def data(prep: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    return azure_spec(**{
        "storage": {"buckets": [{"name": "raw"}, {"name": "features"}]},
        "models": [{"name": "churn", "training": TRAINING, "data_prep": prep or PREP}],
        "monitoring": {"notify": {"emails": ["oncall@example.com"]}},
        **changes,
    })


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("azure", data())


def staged(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources_of(plan, ML + type_) if r["stage"] == "data_prep"]


def test_the_job_runs_on_the_schedule_in_the_windows_zone(plan: dict[str, Any]) -> None:
    (schedule,) = staged(plan, "Schedule")
    props = schedule["inputs"]["properties"]
    assert schedule["inputs"]["name"] == "churn_prepare"
    assert props["trigger"] == {"triggerType": "Cron", "expression": "0 1 * * 0", "timeZone": "W. Europe Standard Time"}
    job = props["action"]["jobDefinition"]
    assert props["action"]["actionType"] == "CreateJob" and job["jobType"] == "Command"
    assert job["command"].startswith("prepare --output ${{outputs.prepared}} --raw__")
    assert job["limits"]["timeout"] == "PT7200S"
    assert job["environmentVariables"] == {"MODE": "weekly"}
    (name,) = job["inputs"]
    assert job["inputs"][name]["mode"] == "ReadOnlyMount" and name.startswith("raw__")
    output = job["outputs"]["prepared"]
    assert output["mode"] == "ReadWriteMount"
    (datastore,) = staged(plan, "Datastore")
    assert output["uri"] == f"azureml://datastores/{datastore['inputs']['name']}/paths/churn/prepared/"
    assert datastore["inputs"]["properties"]["credentials"] == {"credentialsType": "None"}  # identities, no keys
    # a failed run mails the stack's addresses
    assert job["notificationSetting"] == {"emailOn": ["JobFailed"], "emails": ["oncall@example.com"]}


def test_it_runs_as_the_group_identity_on_its_own_cluster(plan: dict[str, Any]) -> None:
    (schedule,) = staged(plan, "Schedule")
    job = schedule["inputs"]["properties"]["action"]["jobDefinition"]
    (cluster,) = staged(plan, "Compute")
    props = cluster["inputs"]["properties"]["properties"]
    assert props["vmSize"] == "Standard_D8s_v3"  # cpu-large, processing
    assert props["scaleSettings"]["minNodeCount"] == 0 and props["scaleSettings"]["maxNodeCount"] == 1
    assert props["remoteLoginPortPublicAccess"] == "Disabled"
    training = [r for r in resources_of(plan, ML + "Compute") if r["stage"] == "training"]
    assert cluster["inputs"]["computeName"] != training[0]["inputs"]["computeName"]
    identity = job["identity"]
    assert identity["identityType"] == "Managed"
    # the same identity as the model's training job: the group's
    (env,) = staged(plan, "EnvironmentVersion")
    assert env["inputs"]["properties"]["image"] == "ghcr.io/acme/prep:1.0"


def test_the_group_identity_writes_only_the_output_prefix() -> None:
    spec = spec_from(data())
    namer = BACKEND.namer(spec, spec.settings_for("azure"))
    (access,) = groups_access(spec, namer)
    features = namer.name("azure.storage.container", "features")
    raw = namer.name("azure.storage.container", "raw")
    data_writes = [p for p in access.writes if p.container in (features, raw)]
    assert [(p.container, p.prefixes) for p in data_writes] == [(features, ("churn/prepared/",))]
    reads = {p.container: p.prefixes for p in access.reads}
    assert reads[raw] == ("churn/",) and reads[features] == ("churn/prepared/",)
    assert "'churn/prepared/'" in access.condition


def test_private_stacks_run_it_without_public_ips() -> None:
    plan = plan_for("azure", data(governance={"network": "private"}))
    (cluster,) = staged(plan, "Compute")
    assert cluster["inputs"]["properties"]["properties"]["enableNodePublicIp"] is False
    (env,) = staged(plan, "EnvironmentVersion")
    assert ".azurecr.io/ghcr.io/acme/prep:1.0" in env["inputs"]["properties"]["image"]  # the stack's copy


def problems(raw: dict[str, Any]) -> dict[str, Any]:
    return {path: found[0] for path, found in problems_at(raw).items()}


def test_what_azure_does_not_build_is_located() -> None:
    found = problems(data({**PREP, "on_new_data": True, "timezone": "Asia/Kathmandu"},
                          monitoring={"notify": {"emails": ["a@example.com"], "webhook": "https://hooks.example.com/x"}}))
    assert found["models[0].data_prep.on_new_data"].severity == "error"
    assert "Windows" in found["models[0].data_prep.timezone"].message
    assert found["models[0].data_prep"].severity == "warning" and "webhook" in found["models[0].data_prep"].message


def test_a_cron_azure_cannot_express_is_an_error() -> None:
    found = problems(data({**PREP, "schedule": "0 1 1 * 1"}))
    assert found["models[0].data_prep.schedule"].severity == "error"


def test_a_valid_spec_has_no_data_prep_problem() -> None:
    assert not [p for p in problems(data()) if p.startswith("models[0].data_prep")]
