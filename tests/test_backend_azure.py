"""Azure backend: governance + storage plans, catalog, overrides and cloud-specific checks."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_infra.backends import registry
from mlops_infra.backends.azure import BACKEND, catalog
from mlops_infra.backends.azure.settings import AzureSettings
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.models import SIZE_CLASSES, Compute
from mlops_infra.stages import all_stages
from mlops_infra.tagging import stack_tags
from tests.planning import BASE_SPEC, by_name, plan_for, resources_of, spec_from

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
# What every test spec names (tests/planning.py BASE_SPEC): clouds.azure.subscription_id is required.
BASE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AZURE = {"location": "westeurope", "subscription_id": BASE_SUBSCRIPTION}
TENANT = "99999999-8888-7777-6666-555555555555"

ROLE = {
    "crypto-service": "e147488a-f6f5-4113-8e2d-b22465e65bf6",  # Key Vault Crypto Service Encryption User
    "crypto-user": "12338af0-0e69-4776-bea7-57ae8d297424",  # Key Vault Crypto User
    "blob-reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",  # Storage Blob Data Reader
    "blob-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
    "secrets-officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",  # Key Vault Secrets Officer
    "ai-administrator": "b78c5d69-af96-48a3-bf8d-a8b4d589de94",  # Azure AI Administrator
    "metrics-writer": "635dd51f-9968-44d3-b7fb-6d9a6bd613ae",  # AzureML Metrics Writer (preview)
    "acr-pull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",  # AcrPull
    "network-approver": "b556d68e-0be0-4f35-a333-ad7ee1ce17ea",  # Azure AI Enterprise Network Connection Approver
}
# what each role may be granted on (one resource type each), by the resource type of its scope
GRANTABLE = {
    ROLE["crypto-service"]: {"azure-native:keyvault:Key"},
    ROLE["crypto-user"]: {"azure-native:keyvault:Key"},
    ROLE["blob-reader"]: {"azure-native:storage:BlobContainer"},
    ROLE["blob-contributor"]: {"azure-native:storage:BlobContainer"},
    ROLE["secrets-officer"]: {"azure-native:keyvault:Vault"},
    ROLE["ai-administrator"]: {
        "azure-native:keyvault:Vault",
        "azure-native:storage:StorageAccount",
        "azure-native:containerregistry:Registry",
        "azure-native:applicationinsights:Component",
    },
    ROLE["metrics-writer"]: {"azure-native:machinelearningservices:Workspace"},
    ROLE["acr-pull"]: {"azure-native:containerregistry:Registry"},
    # private stacks: the workspace's managed network connects private endpoints to these three
    ROLE["network-approver"]: {
        "azure-native:keyvault:Vault",
        "azure-native:storage:StorageAccount",
        "azure-native:containerregistry:Registry",
    },
}
STAGES = {"governance", "storage", "tracking", "training", "registry", "serving", "monitoring", "retraining",
          "features", "data_prep", "workspaces", "explainability", "batch"}
# Dynamic resources (serving's endpoint traffic) run in Pulumi's own Python provider, not azure-native.
DYNAMIC = "pulumi-python:dynamic/"
# physical-name inputs of each resource type and their naming kind
NAMED = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "azure.resource_group"),
    "azure-native:keyvault:Vault": ("vaultName", "azure.keyvault.vault"),
    "azure-native:keyvault:Key": ("keyName", "azure.keyvault.key"),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceName", "azure.managed_identity"),
    "azure-native:storage:StorageAccount": ("accountName", "azure.storage.account"),
    "azure-native:storage:BlobContainer": ("containerName", "azure.storage.container"),
    "azure-native:operationalinsights:Workspace": ("workspaceName", "azure.loganalytics.workspace"),
}
STATEFUL = {
    "azure-native:resources:ResourceGroup",
    "azure-native:keyvault:Vault",
    "azure-native:keyvault:Key",
    "azure-native:storage:StorageAccount",
    "azure-native:storage:BlobContainer",
    "azure-native:operationalinsights:Workspace",
}
ACCOUNT = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
GRANT = "azure-native:authorization:RoleAssignment"
POLICY = "azure-native:storage:ManagementPolicy"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"


def spec_data(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with only the clouds registered right now (others' backends may be in progress)."""
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data.update(copy.deepcopy(changes))
    return data


def model(name: str, **parts: Any) -> dict[str, Any]:
    return {"name": name, **parts}


TRAINING = {"image": "registry.example.com/train:1.0", "compute": {"size": "cpu-large"}}
SERVING = {"image": "registry.example.com/serve:1.0", "compute": {"size": "cpu-small"}}

RICH = spec_data(
    storage={
        "buckets": [
            {"name": "raw", "archive_after_days": 30, "expire_after_days": 400},
            {"name": "features", "versioning": False, "noncurrent_expire_after_days": 7},
            {"name": "ref-data-2", "expire_after_days": 60},
            {"name": "unused"},
        ],
        "artifacts": {"archive_after_days": 200, "noncurrent_expire_after_days": 30},
    },
    models=[
        model(
            "churn",
            training={**TRAINING, "inputs": ["raw", {"bucket": "features", "prefix": "daily/"}]},
            serving={**SERVING, "data_capture": {"sampling_percent": 10}},
            monitoring={"drift": {"baseline": {"bucket": "ref-data-2", "prefix": "baseline/"}}},
        ),
        model(
            "ltv",
            training={**TRAINING, "inputs": [{"bucket": "features", "prefix": "daily/ltv/"}]},
            retraining={"on_new_data": {"bucket": "ref-data-2", "prefix": "incoming/"}},
        ),
    ],
    governance={"network": "private", "audit_logs": False, "key_rotation_days": 90},
)
NO_LIFECYCLE = spec_data(
    storage={
        "buckets": [{"name": "raw", "noncurrent_expire_after_days": None}],
        "artifacts": {"noncurrent_expire_after_days": None},
    }
)
LONG = spec_data(
    project="a-b-c-d-e-f-g-h-i-j-k-lm",
    environment="x-y-z-q-r-s-t-uv",
    storage={"buckets": [{"name": "a-very-long-bucket-name-of-32-ch"}, {"name": "b-very-long-bucket-name-of-32-ch"}]},
    # "ghost" is no bucket: validate reports it; planning must still not grant (or crash on) it
    models=[model("reader", training={**TRAINING, "inputs": ["a-very-long-bucket-name-of-32-ch", "ghost"]})],
)
EXPLICIT = spec_data(clouds={"azure": {"location": "northeurope", "subscription_id": SUBSCRIPTION, "tenant_id": TENANT}})


@pytest.fixture(scope="module")
def base() -> dict:
    return plan_for("azure", spec_data())


@pytest.fixture(scope="module")
def rich() -> dict:
    return plan_for("azure", RICH)


@pytest.fixture(scope="module")
def bare() -> dict:
    return plan_for("azure", NO_LIFECYCLE)


@pytest.fixture(scope="module")
def long() -> dict:
    return plan_for("azure", LONG)


@pytest.fixture(scope="module")
def explicit() -> dict:
    return plan_for("azure", EXPLICIT)


@pytest.fixture(scope="module")
def plans(base: dict, rich: dict, bare: dict, long: dict, explicit: dict) -> list[dict]:
    return [base, rich, bare, long, explicit]


def one(plan: dict, type_: str) -> dict:
    found = resources_of(plan, type_)
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]



def role_guid(grant: dict) -> str:
    return grant["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1]


def grants(plan: dict, principal: str) -> list[dict]:
    return [r for r in resources_of(plan, GRANT) if r["dependencies"]["principalId"] == [f"governance-identity-{principal}"]]


def scopes(plan: dict, principal: str) -> set[tuple[str, str]]:
    return {(role_guid(g), g["dependencies"]["scope"][0]) for g in grants(plan, principal)}


# --- plans: structure, provider, tags, protection, names ---------------------------------


def test_plan_is_deterministic(base: dict) -> None:
    again = plan_for("azure", spec_data())
    assert json.dumps(again, sort_keys=True) == json.dumps(base, sort_keys=True)


def test_governance_and_storage_resources(base: dict) -> None:
    types = {r["type"] for r in base["resources"]}
    assert {
        "azure-native:resources:ResourceGroup",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Key",
        "azure-native:managedidentity:UserAssignedIdentity",
        GRANT,
        ACCOUNT,
        "azure-native:storage:BlobServiceProperties",
        CONTAINER,
        POLICY,
        "azure-native:operationalinsights:Workspace",
        DIAGNOSTICS,
    } <= types
    assert base["summary"]["by_stage"].keys() == {"governance", "storage"}


def test_every_custom_resource_uses_the_explicit_provider(plans: list[dict]) -> None:
    for plan in plans:
        provider = one(plan, "pulumi:providers:azure-native")
        custom = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
        assert custom
        assert {r["provider"] for r in custom if not r["type"].startswith(DYNAMIC)} == {provider["name"]}
        assert all(r["provider"] is None for r in custom if r["type"].startswith(DYNAMIC))
        assert all(r["parent"] in STAGES for r in custom)


def test_provider_location_and_explicit_ids(base: dict, explicit: dict) -> None:
    assert one(base, "pulumi:providers:azure-native")["inputs"]["location"] == "westeurope"
    assert one(base, "pulumi:providers:azure-native")["inputs"]["subscriptionId"] == BASE_SUBSCRIPTION
    provider = one(explicit, "pulumi:providers:azure-native")["inputs"]
    assert (provider["location"], provider["subscriptionId"], provider["tenantId"]) == (
        "northeurope",
        SUBSCRIPTION,
        TENANT,
    )


def _taggable(type_: str) -> bool:
    _, module, name = type_.split(":")
    args = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), f"{name}Args")
    return "tags" in inspect.signature(args.__init__).parameters


def test_every_taggable_resource_carries_the_stack_tags(plans: list[dict]) -> None:
    for plan in plans:
        project = plan["project"]
        environment = "x-y-z-q-r-s-t-uv" if project == LONG["project"] else "dev"
        taggable = [r for r in plan["resources"] if r["type"].startswith("azure-native:") and _taggable(r["type"])]
        assert len(taggable) >= 8
        for resource in taggable:
            expected = stack_tags(
                project=project, environment=environment, user={"owner": "ml-platform"}, stage=resource["stage"]
            )
            assert resource["inputs"].get("tags") == expected, resource["name"]


def test_stateful_resources_are_protected(plans: list[dict]) -> None:
    for plan in plans:
        stateful = [r for r in plan["resources"] if r["type"] in STATEFUL]
        assert len(stateful) >= 6
        assert all(r["protect"] for r in stateful), [r["name"] for r in stateful if not r["protect"]]
    # the identity storage reaches its key with is kept as what the account needs, not protected
    # itself (tests/test_teardown_azure.py: a default destroy keeps it)
    assert not by_name(plans[0], "governance-identity-storage-cmk")["protect"]


def test_physical_names_follow_the_rules(plans: list[dict]) -> None:
    rules = name_rules()
    for plan in plans:
        for resource in plan["resources"]:
            if resource["type"] not in NAMED:
                continue
            key, kind = NAMED[resource["type"]]
            name = resource["inputs"][key]
            assert rules[kind].accepts(name), f"{kind} {name!r}"
            assert "--" not in name, name


def test_long_hyphen_heavy_names_fit_the_storage_account_rule(long: dict, base: dict) -> None:
    account = one(long, ACCOUNT)["inputs"]["accountName"]
    assert re.fullmatch(r"[a-z0-9]{3,24}", account) and len(account) == 24
    assert account.startswith("abcdefghijklm")  # hyphens dropped, then truncated before the hash
    vault = one(long, "azure-native:keyvault:Vault")["inputs"]["vaultName"]
    assert len(vault) <= 24 and vault[0].isalpha()
    containers = sorted(r["inputs"]["containerName"] for r in resources_of(long, CONTAINER))
    assert len(set(containers)) == 3 and all(len(c) <= 63 for c in containers)
    # the reader's group identity may read the long-named container, by its physical name
    (reader,) = group_grants(long)
    container = by_name(long, "storage-bucket-a-very-long-bucket-name-of-32-ch")["inputs"]["containerName"]
    assert f"StringEquals '{container}'" in reader["inputs"]["condition"]
    # globally unique names carry the stack's hash even when short
    assert re.fullmatch(r"churndev[0-9a-f]{6}", one(base, ACCOUNT)["inputs"]["accountName"])


def test_globally_unique_names_depend_on_location_and_subscription(base: dict, explicit: dict) -> None:
    assert one(base, ACCOUNT)["inputs"]["accountName"] != one(explicit, ACCOUNT)["inputs"]["accountName"]
    vaults = [one(p, "azure-native:keyvault:Vault")["inputs"]["vaultName"] for p in (base, explicit)]
    assert vaults[0] != vaults[1]
    assert BACKEND.name_scope(AzureSettings(**AZURE)) != BACKEND.name_scope(
        AzureSettings(location="westeurope", subscription_id=SUBSCRIPTION)
    )


# --- governance ----------------------------------------------------------------------------


def test_key_vault_is_rbac_only_with_purge_protection(base: dict, rich: dict) -> None:
    props = one(base, "azure-native:keyvault:Vault")["inputs"]["properties"]
    assert props["enableRbacAuthorization"] is True and props["accessPolicies"] == []
    assert props["enablePurgeProtection"] is True and props["enableSoftDelete"] is True
    assert props["softDeleteRetentionInDays"] == 90
    assert props["sku"] == {"family": "A", "name": "standard"}
    assert props["publicNetworkAccess"] == "Enabled"
    private = one(rich, "azure-native:keyvault:Vault")["inputs"]["properties"]
    assert private["publicNetworkAccess"] == "Disabled"
    assert private["networkAcls"] == {"bypass": "AzureServices", "defaultAction": "Deny"}
    assert props["tenantId"] == UNKNOWN  # from getClientConfig under the offline engine


def test_key_rotates_per_spec(base: dict, rich: dict) -> None:
    for plan, days in ((base, 365), (rich, 90)):
        key = one(plan, "azure-native:keyvault:Key")
        props = key["inputs"]["properties"]
        assert (props["kty"], props["keySize"]) == ("RSA", 3072)
        policy = props["rotationPolicy"]
        assert policy["lifetimeActions"] == [{"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": f"P{days}D"}}]
        expiry = int(policy["attributes"]["expiryTime"][1:-1])
        assert expiry >= days + 7
        assert key["dependencies"]["vaultName"] == ["governance-vault"]
    assert base["outputs"]["governance"]["key_id"] == (
        f"https://{one(base, 'azure-native:keyvault:Vault')['inputs']['vaultName']}.vault.azure.net/keys/churn-dev-cmk"
    )


def test_identities_and_key_grants(base: dict, rich: dict) -> None:
    identities = {r["inputs"]["resourceName"] for r in resources_of(base, "azure-native:managedidentity:UserAssignedIdentity")}
    # no stack-wide training identity: each model group's own identity does that work
    assert identities == {f"churn-dev-{role}" for role in ("serving", "automation", "storage-cmk")}
    key_grants = [g for g in resources_of(base, GRANT) if g["dependencies"]["scope"] == ["governance-key"]]
    by_principal = {g["dependencies"]["principalId"][0].rsplit("-", 1)[-1]: role_guid(g) for g in key_grants}
    assert by_principal == {"serving": ROLE["crypto-user"], "cmk": ROLE["crypto-service"]}
    assert grants(base, "automation") == []
    rich_identities = {r["name"] for r in resources_of(rich, "azure-native:managedidentity:UserAssignedIdentity")}
    assert {"governance-identity-data-churn", "governance-identity-data-ltv"} <= rich_identities


def test_role_assignments_are_least_privilege(plans: list[dict]) -> None:
    for plan in plans:
        assignments = resources_of(plan, GRANT)
        assert assignments
        names = [g["inputs"]["roleAssignmentName"] for g in assignments]
        assert len(set(names)) == len(names)
        custom = {
            r["inputs"]["roleDefinitionId"]: r for r in resources_of(plan, "azure-native:authorization:RoleDefinition")
        }
        for grant in assignments:
            inputs = grant["inputs"]
            assert inputs["principalType"] == "ServicePrincipal"
            assert uuid.UUID(inputs["roleAssignmentName"]).version == 5
            assert inputs["roleDefinitionId"].startswith("/subscriptions/")
            (principal,) = grant["dependencies"]["principalId"]
            assert principal.startswith("governance-identity-")
            if role_guid(grant) in custom:
                role = custom[role_guid(grant)]
                assert role["inputs"]["roleType"] == "CustomRole"
                assert not any("*" in a for p in role["inputs"]["permissions"] for a in p["actions"] + p.get("dataActions", []))
                if principal == "governance-identity-automation":
                    # retraining's job submitter: on the ML workspace only
                    assert role["dependencies"]["assignableScopes"] == ["storage-workspace"]
                    assert grant["dependencies"]["scope"] == ["storage-workspace"], grant["name"]
                else:
                    # a model group's one assignment: the stack's resource group, narrowed by a condition
                    assert principal.startswith("governance-identity-data-"), grant["name"]
                    assert role["dependencies"]["assignableScopes"] == ["governance-resource-group"]
                    assert grant["dependencies"]["scope"] == ["governance-resource-group"], grant["name"]
                    assert inputs["conditionVersion"] == "2.0" and inputs["condition"]
                continue
            assert role_guid(grant) in ROLE.values(), grant["name"]
            # always one resource (a key, a container, one of the ML workspace's resources),
            # never the group or the subscription
            (scope,) = grant["dependencies"]["scope"]
            assert by_name(plan, scope)["type"] in GRANTABLE[role_guid(grant)], grant["name"]


def test_role_assignment_ids_use_the_configured_subscription(explicit: dict) -> None:
    for grant in resources_of(explicit, GRANT):
        assert grant["inputs"]["roleDefinitionId"] == (
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role_guid(grant)}"
        )
    assert one(explicit, "azure-native:keyvault:Vault")["inputs"]["properties"]["tenantId"] == TENANT


def test_audit_logs_follow_the_spec(base: dict, rich: dict) -> None:
    settings = {r["name"]: r for r in resources_of(base, DIAGNOSTICS)}
    assert set(settings) == {"governance-vault-audit", "storage-blob-audit"}
    vault_audit, blob_audit = settings["governance-vault-audit"], settings["storage-blob-audit"]
    assert vault_audit["dependencies"]["resourceUri"] == ["governance-vault"]
    assert blob_audit["dependencies"]["resourceUri"] == ["storage-blob-service"]
    for setting in settings.values():
        assert setting["dependencies"]["workspaceId"] == ["governance-audit-workspace"]
    assert [log["category"] for log in vault_audit["inputs"]["logs"]] == ["AuditEvent"]
    assert {log["category"] for log in blob_audit["inputs"]["logs"]} == {"StorageRead", "StorageWrite", "StorageDelete"}
    assert all(log["enabled"] for s in settings.values() for log in s["inputs"]["logs"])
    assert resources_of(rich, DIAGNOSTICS) == []
    # the only Log Analytics workspace is the ML workspace's, not an audit one
    assert [r["name"] for r in resources_of(rich, "azure-native:operationalinsights:Workspace")] == ["storage-logs"]


# --- storage -------------------------------------------------------------------------------


def test_one_storage_account_encrypted_with_the_governance_key(plans: list[dict]) -> None:
    for plan in plans:
        account = one(plan, ACCOUNT)
        encryption = account["inputs"]["encryption"]
        key = one(plan, "azure-native:keyvault:Key")["inputs"]
        vault = one(plan, "azure-native:keyvault:Vault")["inputs"]["vaultName"]
        assert encryption["keySource"] == "Microsoft.Keyvault"
        assert encryption["keyVaultProperties"] == {
            "keyName": key["keyName"],
            "keyVaultUri": f"https://{vault}.vault.azure.net/",
        }  # no keyVersion: the account follows rotations
        assert encryption["requireInfrastructureEncryption"] is True
        assert all(s == {"enabled": True, "keyType": "Account"} for s in encryption["services"].values())
        deps = account["dependencies"]["encryption"]
        assert "governance-key" in deps and "governance-identity-storage-cmk" in deps
        # the account is created only once its identity may use the key
        assert "governance-grant-storage-cmk-key-vault-crypto-service-encryption-user-key" in deps
        assert account["inputs"]["identity"]["type"] == "UserAssigned"
        assert account["dependencies"]["identity"][0] == "governance-grant-storage-cmk-key-vault-crypto-service-encryption-user-key"


def test_storage_account_is_private_and_tls_only(base: dict, rich: dict) -> None:
    for plan, network in ((base, "public"), (rich, "private")):
        inputs = one(plan, ACCOUNT)["inputs"]
        assert inputs["kind"] == "StorageV2" and inputs["sku"] == {"name": "Standard_LRS"}
        assert inputs["allowBlobPublicAccess"] is False
        assert inputs["allowSharedKeyAccess"] is False
        assert inputs["enableHttpsTrafficOnly"] is True
        assert inputs["minimumTlsVersion"] == "TLS1_2"
        assert inputs["allowCrossTenantReplication"] is False
        assert inputs["publicNetworkAccess"] == ("Disabled" if network == "private" else "Enabled")
        assert inputs["networkRuleSet"]["defaultAction"] == ("Deny" if network == "private" else "Allow")


def test_one_private_container_per_bucket_plus_artifacts(base: dict, rich: dict) -> None:
    assert {r["name"] for r in resources_of(base, CONTAINER)} == {"storage-bucket-raw", "storage-bucket-artifacts"}
    containers = resources_of(rich, CONTAINER)
    assert {r["name"] for r in containers} == {
        f"storage-bucket-{name}" for name in ("raw", "features", "ref-data-2", "unused", "artifacts")
    }
    for container in containers:
        assert container["inputs"]["publicAccess"] == "None"
        # created after the blob service switched versioning on
        assert container["dependencies"]["accountName"] == ["storage-blob-service"]
    assert rich["outputs"]["storage"]["artifacts_uri"] == (
        f"https://{one(rich, ACCOUNT)['inputs']['accountName']}.blob.core.windows.net/churn-dev-artifacts"
    )
    assert set(rich["outputs"]["storage"]["bucket_uris"]) == {"raw", "features", "ref-data-2", "unused"}


def test_blob_service_versions_and_soft_deletes(base: dict, rich: dict) -> None:
    for plan in (base, rich):  # rich has a bucket with versioning: false: the account stays versioned
        service = one(plan, "azure-native:storage:BlobServiceProperties")["inputs"]
        assert service["isVersioningEnabled"] is True
        assert service["deleteRetentionPolicy"] == {"enabled": True, "days": 30, "allowPermanentDelete": False}
        assert service["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 30}
        assert service["changeFeed"]["enabled"] is True


def _rules(plan: dict) -> dict[str, dict]:
    policy = one(plan, POLICY)
    assert policy["dependencies"]["accountName"] == ["storage-blob-service"]
    rules = policy["inputs"]["policy"]["rules"]
    prefixes = [r["definition"]["filters"]["prefixMatch"][0] for r in rules]
    assert prefixes == sorted(prefixes)  # spec order does not reorder the policy
    return {r["definition"]["filters"]["prefixMatch"][0]: r for r in rules}


def test_lifecycle_rules_match_the_spec(base: dict, rich: dict) -> None:
    rules = _rules(base)
    assert set(rules) == {"churn-dev-raw/", "churn-dev-artifacts/"}
    raw = rules["churn-dev-raw/"]["definition"]
    assert raw["actions"]["baseBlob"] == {
        "tierToArchive": {"daysAfterModificationGreaterThan": 90},
        "delete": {"daysAfterModificationGreaterThan": 730},
    }
    assert raw["actions"]["version"] == {"delete": {"daysAfterCreationGreaterThan": 90}}
    assert raw["filters"]["blobTypes"] == ["blockBlob"]
    assert rules["churn-dev-artifacts/"]["definition"]["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": 90}}
    }
    rich_rules = _rules(rich)
    assert set(rich_rules) == {f"churn-dev-{n}/" for n in ("raw", "features", "ref-data-2", "unused", "artifacts")}
    assert rich_rules["churn-dev-features/"]["definition"]["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": 7}}
    }
    assert rich_rules["churn-dev-ref-data-2/"]["definition"]["actions"]["baseBlob"] == {
        "delete": {"daysAfterModificationGreaterThan": 60}
    }
    assert rich_rules["churn-dev-artifacts/"]["definition"]["actions"]["baseBlob"] == {
        "tierToArchive": {"daysAfterModificationGreaterThan": 200}
    }
    names = [r["name"] for r in rich_rules.values()]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z0-9]+", n) for n in names)
    assert all(r["enabled"] and r["type"] == "Lifecycle" for r in rich_rules.values())


def test_no_lifecycle_means_no_management_policy(bare: dict) -> None:
    assert resources_of(bare, POLICY) == []
    assert len(resources_of(bare, CONTAINER)) == 2


def group_grants(plan: dict) -> list[dict]:
    return [g for g in resources_of(plan, GRANT) if g["dependencies"]["principalId"][0].startswith("governance-identity-data-")]


def group_condition(plan: dict, group: str) -> str:
    (grant,) = [g for g in group_grants(plan) if g["dependencies"]["principalId"] == [f"governance-identity-data-{group}"]]
    return grant["inputs"]["condition"]


def test_each_model_group_reads_only_its_own_data(rich: dict) -> None:
    containers = {r["name"]: r["inputs"]["containerName"] for r in resources_of(rich, CONTAINER)}
    assert len(group_grants(rich)) == 2  # one assignment per group: churn and ltv
    assert "storage-bucket-unused" in containers  # declared, but no model reads it
    churn, ltv = group_condition(rich, "churn"), group_condition(rich, "ltv")
    for condition in (churn, ltv):
        assert containers["storage-bucket-unused"] not in condition
    # churn: the whole of raw, features under daily/, its drift baseline; its own artifacts
    assert f"StringEquals '{containers['storage-bucket-raw']}' OR" in churn  # no prefix: the whole container
    assert "StringStartsWith 'daily/'" in churn and "'baseline/'" in churn
    assert "'models/churn/'" in churn and "'data-capture/churn/'" in churn
    assert "ltv" not in churn.replace(containers["storage-bucket-raw"], "")
    # ltv: daily/ltv/ only (not all of daily/), its new-data trigger, its artifacts
    assert "StringStartsWith 'daily/ltv/'" in ltv and "StringStartsWith 'daily/'" not in ltv
    assert "'incoming/'" in ltv and "'models/ltv/'" in ltv
    assert containers["storage-bucket-raw"] not in ltv and "churn" not in ltv.replace("churn-dev", "")
    # reads by path and listings by prefix, writes only to its models' outputs and system containers
    assert ltv.count("blobs:path] StringStartsWith 'incoming/'") == 1
    assert ltv.count("blobs:prefix] StringStartsWith 'incoming/'") == 1
    writes = ltv.rsplit("!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})", 1)[1]
    assert re.findall(r"StringStartsWith '([^']*)'", writes) == ["models/ltv/", "azureml-blobstore-"]


def test_base_spec_without_models_has_no_group_identity(base: dict) -> None:
    assert group_grants(base) == []
    assert resources_of(base, "azure-native:authorization:RoleDefinition") == []


def test_serving_reads_models_and_reads_and_writes_only_captured_data(rich: dict) -> None:
    serving = {(role_guid(g), g["dependencies"]["scope"][0]): g["inputs"] for g in grants(rich, "serving")}
    assert set(serving) == {
        (ROLE["crypto-user"], "governance-key"),
        (ROLE["blob-reader"], "storage-bucket-artifacts"),
        (ROLE["blob-contributor"], "storage-bucket-artifacts"),
        # what an online deployment needs in the ML workspace (tests/test_serving_azure.py checks them)
        (ROLE["acr-pull"], "storage-registry"),
        (ROLE["metrics-writer"], "storage-workspace"),
    }
    writes = serving[(ROLE["blob-contributor"], "storage-bucket-artifacts")]
    assert writes["conditionVersion"] == "2.0"
    for action in ("blobs/write", "blobs/add/action", "blobs/delete"):
        assert f"!(ActionMatches{{'Microsoft.Storage/storageAccounts/blobServices/containers/{action}'}})" in writes["condition"]
    # reads, listings and writes all stay under data-capture/: nothing else in the bucket
    assert set(re.findall(r"StringStartsWith '([^']*)'", writes["condition"])) == {"data-capture/"}
    assert writes["condition"].count("StringStartsWith") == 3
    reads = serving[(ROLE["blob-reader"], "storage-bucket-artifacts")]
    assert reads["conditionVersion"] == "2.0"
    assert re.findall(r"StringStartsWith '([^']*)'", reads["condition"]) == ["models/", "models/"]


# --- catalog ---------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", catalog.PURPOSES)
def test_every_size_class_maps_to_an_accepted_type_that_meets_it(purpose: str) -> None:
    for size, needs in SIZE_CLASSES.items():
        chosen = catalog.instance_type(Compute(size=size), purpose, None)
        assert chosen in catalog.PURPOSE_TYPES[purpose], (size, chosen)
        assert catalog.meets(chosen, needs), (size, chosen)
        assert catalog.check_override(chosen, purpose) is None


def test_catalog_tables_only_name_known_vm_sizes() -> None:
    for types in catalog.PURPOSE_TYPES.values():
        assert set(types) <= set(catalog.VM_SIZES)
    assert set(catalog.SIZE_CLASS_TYPES) == set(catalog.PURPOSES)


@pytest.mark.parametrize(
    ("needs", "purpose", "expected"),
    [
        ({"cpus": 3, "memory_gib": 10}, "training", "Standard_DS3_v2"),
        ({"cpus": 2, "memory_gib": 8}, "serving", "Standard_D2as_v4"),
        ({"cpus": 2, "memory_gib": 12}, "serving", "Standard_E2s_v3"),
        ({"cpus": 8, "memory_gib": 64, "gpus": 2}, "training", "Standard_NC48ads_A100_v4"),
        ({"cpus": 4, "memory_gib": 16, "gpus": 1}, "serving", "Standard_NC4as_T4_v3"),
        ({"cpus": 64, "memory_gib": 1000, "gpus": 1}, "training", "Standard_ND96amsr_A100_v4"),
    ],
)
def test_explicit_requirements_pick_the_smallest_type(needs: dict, purpose: str, expected: str) -> None:
    assert catalog.instance_type(Compute(**needs), purpose, None) == expected


@pytest.mark.parametrize(
    ("needs", "purpose"),
    [
        ({"cpus": 192, "memory_gib": 64}, "training"),
        ({"cpus": 8, "memory_gib": 32, "gpus": 16}, "serving"),
        ({"cpus": 8, "memory_gib": 2048}, "processing"),
    ],
)
def test_catalog_miss_names_the_cloud_and_the_requirement(needs: dict, purpose: str) -> None:
    compute = Compute(**needs)
    with pytest.raises(CatalogMiss) as miss:
        catalog.instance_type(compute, purpose, None)
    assert "Azure" in miss.value.message and compute.label in miss.value.message
    assert miss.value.hint and "largest" in miss.value.hint


def test_check_override() -> None:
    assert catalog.check_override("Standard_DS3_v2", "training") is None
    assert catalog.check_override("Standard_DS3_v2", "serving") is None
    assert catalog.check_override("STANDARD_F4S_V2", "serving") is None  # Azure ignores case
    assert catalog.check_override("Standard_ND96asr_v4", "training") is None
    typo = catalog.check_override("Standard_DS3_v3", "serving")
    assert typo and "'Standard_DS3_v2'" in typo and "did you mean" in typo
    wrong_service = catalog.check_override("Standard_D2as_v4", "training")
    assert wrong_service and "serving size" in wrong_service
    assert catalog.check_override("ml.m5.large", "training") is not None


# --- backend.check ---------------------------------------------------------------------------


def check(**changes: Any) -> list:
    spec = spec_from(spec_data(**changes))
    return BACKEND.check(spec, spec.settings_for("azure"))


def paths(problems: list, severity: str = "error") -> set:
    return {p.path for p in problems if p.severity == severity and p.path != RESERVED_NAMES}


# Every Azure spec is warned that a key vault's name outlives --delete-data (test_teardown_azure.py).
RESERVED_NAMES = ("clouds", "azure")


def unexpected(problems: list) -> list:
    return [p for p in problems if not (p.path == RESERVED_NAMES and p.severity == "warning")]


def test_check_accepts_the_base_spec_and_good_overrides() -> None:
    assert unexpected(check()) == []
    good = check(
        clouds={"azure": {**AZURE, "overrides": {"models": {"trainer": {"training_vm_size": "Standard_D8s_v3"}}}}},
        models=[model("trainer", training=TRAINING)],
    )
    assert unexpected(good) == []


def test_check_reports_overrides_with_their_paths() -> None:
    base = ("clouds", "azure", "overrides", "models")
    overrides = {
        "churn-clasifier": {"training_vm_size": "Standard_D8s_v3"},
        "churn-classifier": {"training_vm_size": "Standard_DS3_v3", "serving_instance_type": "Standard_NC6s_v3"},
        "ltv": {"serving_instance_type": "Standard_F4s_v2", "training_vm_size": "Standard_D2s_v3"},
    }
    problems = check(
        clouds={"azure": {**AZURE, "overrides": {"models": overrides}}},
        models=[
            model("churn-classifier", training=TRAINING, serving=SERVING),
            model("ltv", training={**TRAINING, "compute": {"size": "gpu-small"}}),
        ],
    )
    assert paths(problems) == {(*base, "churn-clasifier"), (*base, "churn-classifier", "training_vm_size")}
    assert paths(problems, "warning") == {
        (*base, "ltv", "serving_instance_type"),  # ltv has no serving block
        (*base, "ltv", "training_vm_size"),  # a CPU size for a GPU requirement
    }
    unknown = next(p for p in problems if p.path == (*base, "churn-clasifier"))
    assert "'churn-classifier'" in (unknown.hint or "")
    short = next(p for p in problems if p.path == (*base, "ltv", "training_vm_size"))
    assert "gpus 0 < 1" in short.message


def test_check_reports_what_azure_cannot_serve() -> None:
    problems = check(
        models=[
            model(
                "huge",
                training={**TRAINING, "compute": {"cpus": 192, "memory_gib": 64}},
                serving={**SERVING, "autoscaling": {"min_replicas": 0, "max_replicas": 2}},
            ),
            model("spot", training={**TRAINING, "spot": True, "max_runtime": "1h", "max_wait": "2h"}),
        ]
    )
    assert paths(problems) == {
        ("models", 0, "training", "compute"),
        ("models", 0, "serving", "autoscaling", "min_replicas"),
    }
    assert paths(problems, "warning") == {("models", 1, "training", "max_wait")}
    miss = next(p for p in problems if p.path == ("models", 0, "training", "compute"))
    assert "Azure" in miss.message and "192 cpus" in miss.message


def test_an_override_replaces_the_catalog_choice() -> None:
    problems = check(
        clouds={"azure": {**AZURE, "overrides": {"models": {"big": {"training_vm_size": "Standard_ND96isr_H100_v5"}}}}},
        models=[model("big", training={**TRAINING, "compute": {"cpus": 192, "memory_gib": 64}})],
    )
    assert paths(problems) == set()
    assert paths(problems, "warning") == {("clouds", "azure", "overrides", "models", "big", "training_vm_size")}


def test_check_warns_that_versioning_is_account_wide() -> None:
    problems = check(storage={"buckets": [{"name": "raw"}, {"name": "scratch", "versioning": False}]})
    assert paths(problems) == set()
    assert paths(problems, "warning") == {("storage", "buckets", 1, "versioning")}
    assert "account-wide" in unexpected(problems)[0].message


# --- settings, backend facts, import weight --------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        {"location": "West Europe", "subscription_id": BASE_SUBSCRIPTION},
        {"location": "westeurope", "subscription_id": "not-a-guid"},
        {"location": "westeurope"},  # the subscription is required
        {**AZURE, "tenant_id": "1234"},
        {**AZURE, "overrides": {"models": {"m": {"training_instance_type": "x"}}}},
        {**AZURE, "generation": -1},
        {"region": "westeurope", "subscription_id": BASE_SUBSCRIPTION},
    ],
)
def test_settings_reject_bad_values(block: dict) -> None:
    with pytest.raises(ValueError):
        AzureSettings.model_validate(block)


def test_mock_call_answers_client_config_with_unknowns() -> None:
    answer = BACKEND.mock_call("azure-native:authorization:getClientConfig", {})
    assert answer == {"clientId": UNKNOWN, "objectId": UNKNOWN, "subscriptionId": UNKNOWN, "tenantId": UNKNOWN}
    assert BACKEND.mock_call("azure-native:other:getSomething", {}) == {}


def test_unsupported_stages_have_reasons() -> None:
    for stage in all_stages():
        if BACKEND.supports(stage.name):
            assert stage.name in STAGES
        else:
            assert "Azure" in BACKEND.unsupported[stage.name]
    assert set(BACKEND.unsupported) <= {"batch", "data_prep", "features", "workspaces", "explainability"}


def test_backend_package_and_check_load_no_sdk() -> None:
    code = (
        "import sys\n"
        "from mlops_infra.backends.azure import BACKEND, catalog\n"
        "from tests.planning import spec_from\n"
        f"spec = spec_from({spec_data()!r})\n"
        "BACKEND.check(spec, spec.settings_for('azure'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('pulumi_azure_native')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SLUGS = st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,31}", fullmatch=True).filter(lambda s: not s.endswith("-"))


@given(st.lists(SLUGS, min_size=2, max_size=6, unique=True))
def test_lifecycle_rule_names_are_alphanumeric_and_distinct(buckets: list[str]) -> None:
    from mlops_infra.backends.azure.storage import rule_name

    names = [rule_name(b) for b in buckets]
    assert all(re.fullmatch(r"[A-Za-z0-9]+", n) for n in names)
    assert len(set(names)) == len(names)
