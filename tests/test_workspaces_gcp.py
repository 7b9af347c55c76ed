"""GCP workspaces: a Vertex AI Workbench instance per user, with its own service account.

Three plans (module-scoped): two users on a private network (one with a GPU size), three
users (the diff test), and the same two users on a public network.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mlops_infra.backends.gcp import BACKEND
from mlops_infra.diff import diff_plans
from mlops_infra.errors import SpecInvalid
from mlops_infra.spec.validate import check_text
from tests.planning import BASE_SPEC, plan_for, resources_of

INSTANCE = "gcp:workbench/instance:Instance"
ACCOUNT = "gcp:serviceaccount/account:Account"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
KEY = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
USERS = [{"name": "data-science"}, {"name": "ml-platform", "size": "gpu-small"}]


def _data(users: list[dict[str, Any]], *, network: str = "private") -> dict[str, Any]:
    data = copy.deepcopy(BASE_SPEC)
    data["workspaces"] = {"size": "cpu-medium", "idle_shutdown": "45m", "users": users}
    data["governance"] = {"network": network}
    return data


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    return plan_for("gcp", _data(USERS))


@pytest.fixture(scope="module")
def bigger() -> dict[str, Any]:
    return plan_for("gcp", _data([*USERS, {"name": "analysts"}]))


@pytest.fixture(scope="module")
def public() -> dict[str, Any]:
    return plan_for("gcp", _data(USERS, network="public"))


def _instances(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"].removeprefix("workspaces-instance-"): r for r in resources_of(plan, INSTANCE)}


def test_one_protected_encrypted_instance_per_user(private: dict[str, Any]) -> None:
    instances = _instances(private)
    assert set(instances) == {"data-science", "ml-platform"}
    for user, instance in instances.items():
        assert instance["protect"] and BACKEND.keeps(INSTANCE, instance["inputs"])
        gce = instance["inputs"]["gceSetup"]
        for disk in (gce["bootDisk"], gce["dataDisks"]):
            assert disk["diskEncryption"] == "CMEK" and disk["kmsKey"] == KEY
        assert gce["metadata"] == {"idle-timeout-seconds": "2700", "notebook-disable-root": "true"}
        assert gce["serviceAccounts"] == [{"email": f"churn-dev-ws-{user}@acme-ml-dev.iam.gserviceaccount.com"}]
        assert instance["inputs"]["location"] == "us-central1-b"
        assert instance["inputs"]["name"] == f"churn-dev-{user}"
    assert instances["data-science"]["inputs"]["gceSetup"]["machineType"] == "n2-standard-4"  # the default size
    gpu = instances["ml-platform"]["inputs"]["gceSetup"]
    assert gpu["machineType"] == "g2-standard-4" and gpu["acceleratorConfigs"] == [{"coreCount": 1, "type": "NVIDIA_L4"}]
    assert gpu["shieldedInstanceConfig"]["enableSecureBoot"] is False


def test_private_network_no_public_ip_on_the_stacks_subnet(private: dict[str, Any], public: dict[str, Any]) -> None:
    for instance in _instances(private).values():
        gce = instance["inputs"]["gceSetup"]
        assert gce["disablePublicIp"] is True
        (nic,) = gce["networkInterfaces"]
        assert nic["network"] == "projects/acme-ml-dev/global/networks/churn-dev-vpc"
        assert nic["subnet"].startswith("projects/acme-ml-dev/regions/us-central1/subnetworks/churn-dev-")
    for instance in _instances(public).values():
        gce = instance["inputs"]["gceSetup"]
        assert gce["disablePublicIp"] is False and "networkInterfaces" not in gce


def test_each_user_has_an_identity_and_the_disk_agent_may_use_the_key(private: dict[str, Any]) -> None:
    accounts = {r["inputs"]["accountId"] for r in resources_of(private, ACCOUNT) if r["stage"] == "workspaces"}
    assert accounts == {"churn-dev-ws-data-science", "churn-dev-ws-ml-platform"}
    (grant,) = [r for r in resources_of(private, KEY_MEMBER) if r["stage"] == "workspaces"]
    assert grant["protect"] and grant["inputs"]["cryptoKeyId"] == KEY
    assert grant["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def test_adding_a_user_touches_only_its_own_resources(private: dict[str, Any], bigger: dict[str, Any]) -> None:
    changes = diff_plans(private, bigger)
    assert not changes.delete and not changes.update
    assert sorted(item["name"] for item in changes.create) == [
        "workspaces-identity-analysts", "workspaces-instance-analysts",
    ]


def test_a_brought_network_without_a_subnet_is_located() -> None:
    data = _data(USERS)
    data["cloud"] = "gcp"
    data["clouds"]["gcp"]["network"] = {"network": "projects/acme-ml-dev/global/networks/shared"}
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"])
    assert [p for p in raised.value.problems if p.path == ("workspaces",) and "subnet" in p.message]


def test_an_idle_shutdown_workbench_refuses_is_located() -> None:
    data = _data(USERS, network="public")
    data["cloud"] = "gcp"
    data["workspaces"]["idle_shutdown"] = "5m"
    with pytest.raises(SpecInvalid) as raised:
        check_text(yaml.safe_dump(data), "spec.yaml", clouds=["gcp"])
    (problem,) = [p for p in raised.value.problems if p.path == ("workspaces", "idle_shutdown")]
    assert "10m" in (problem.hint or "")
