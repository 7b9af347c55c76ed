"""AWS workspaces: a SageMaker Studio domain and a user profile per user.

Plans shared by the module: a public spec, its private-network twin, and the spec with one more user.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import workspaces
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

DOMAIN = "aws:sagemaker/domain:Domain"
PROFILE = "aws:sagemaker/userProfile:UserProfile"

SPEC: dict[str, Any] = {
    **copy.deepcopy(BASE_SPEC),
    "workspaces": {"size": "cpu-small", "idle_shutdown": "1h",
                   "users": [{"name": "data-science"}, {"name": "ml-platform", "size": "gpu-small"}]},
}


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_for("aws", SPEC)


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data["governance"] = {"network": "private"}
    return plan_for("aws", data)



def test_one_domain_encrypted_and_kept_with_idle_shutdown(plan):
    (domain,) = resources_of(plan, DOMAIN)
    inputs = domain["inputs"]
    assert domain["stage"] == "workspaces" and domain["protect"] is True
    assert inputs["domainName"] == "churn-dev-studio" and inputs["authMode"] == "IAM"
    assert domain["dependencies"]["kmsKeyId"] == ["governance-key"]
    assert inputs["retentionPolicy"] == {"homeEfsFileSystem": "Retain"}
    lab = inputs["defaultUserSettings"]["jupyterLabAppSettings"]
    assert lab["defaultResourceSpec"] == {"instanceType": "ml.m5.large"}
    assert lab["appLifecycleManagement"]["idleSettings"] == {
        "lifecycleManagement": "ENABLED", "idleTimeoutInMinutes": 60, "maxIdleTimeoutInMinutes": 60}
    assert domain["dependencies"]["defaultUserSettings"] == ["workspaces-grant", "workspaces-role"]


def test_public_domain_uses_the_default_vpc(plan):
    (domain,) = resources_of(plan, DOMAIN)
    assert domain["inputs"]["appNetworkAccessType"] == "PublicInternetOnly"
    assert "domainSettings" not in domain["inputs"]


def test_private_domain_is_vpc_only_in_the_stacks_subnets(private):
    (domain,) = resources_of(private, DOMAIN)
    assert domain["inputs"]["appNetworkAccessType"] == "VpcOnly"
    assert domain["dependencies"]["vpcId"] == ["governance-vpc"]
    assert all(d.startswith("governance-subnet") for d in domain["dependencies"]["subnetIds"])
    assert domain["dependencies"]["domainSettings"] and all(
        d.startswith("governance-") for d in domain["dependencies"]["domainSettings"])
    for profile in resources_of(private, PROFILE):
        assert "securityGroups" in profile["inputs"]["userSettings"]


def test_each_user_gets_a_profile_of_its_size(plan):
    profiles = {r["name"]: r for r in resources_of(plan, PROFILE)}
    assert set(profiles) == {"workspaces-user-data-science", "workspaces-user-ml-platform"}
    gpu = profiles["workspaces-user-ml-platform"]["inputs"]
    assert gpu["userProfileName"] == "churn-dev-ml-platform"
    assert gpu["userSettings"]["jupyterLabAppSettings"]["defaultResourceSpec"] == {"instanceType": "ml.g4dn.xlarge"}
    assert profiles["workspaces-user-data-science"]["dependencies"]["domainId"] == ["workspaces-domain"]


def test_sizes_are_studio_instance_types():
    botocore = pytest.importorskip("botocore.session")
    allowed = set(botocore.get_session().get_service_model("sagemaker").shape_for("AppInstanceType").enum)
    settings = spec_from(SPEC).clouds.aws
    for size in ("cpu-small", "cpu-medium", "cpu-large", "gpu-small"):
        assert workspaces.instance_type(size, settings) in allowed


def test_the_execution_role_reads_data_and_writes_only_its_place(plan):
    role = by_name(plan, "workspaces-role")["inputs"]
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    doc = workspaces.workspace_grants(partition="aws", data_buckets=["raw"], artifacts="art", key_arn="KEY")
    sids = {s["Sid"]: s for s in doc["Statement"]}
    assert sids["ReadData"] == {"Sid": "ReadData", "Effect": "Allow", "Action": ["s3:GetObject"],
                                "Resource": ["arn:aws:s3:::raw/*"]}
    assert sids["UseOwnPlace"]["Resource"] == "arn:aws:s3:::art/workspaces/*"
    assert not any(a.startswith("sagemaker:") for s in doc["Statement"] for a in s["Action"])
    assert all(s["Resource"] != "*" for s in doc["Statement"])


def test_adding_a_user_touches_only_its_profile(plan):
    data = copy.deepcopy(SPEC)
    data["workspaces"]["users"].append({"name": "analyst"})
    changes = diff_plans(plan, plan_for("aws", data))
    assert changes.update == [] and changes.delete == []
    assert [c["name"] for c in changes.create] == ["workspaces-user-analyst"]


def test_an_idle_shutdown_studio_cannot_set_is_a_located_error():
    data = copy.deepcopy(SPEC)
    data["workspaces"]["idle_shutdown"] = "30m"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", clouds=["aws"])
    problem = next(p for p in raised.value.problems if p.dotted_path == "workspaces.idle_shutdown")
    assert "60 to 525600 minutes" in problem.message and problem.hint and problem.line is not None
    warnings = check_text(yaml.safe_dump(SPEC, sort_keys=False), "spec.yaml", clouds=["aws"]).warnings
    assert any(p.dotted_path == "workspaces" and "default VPC" in p.message for p in warnings)
