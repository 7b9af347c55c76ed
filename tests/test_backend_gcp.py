"""The GCP backend: Cloud KMS, service accounts and Cloud Storage, checked from the plan document.

Plans are shared through module-scoped fixtures (four plans and one offline run in all).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlops_infra.backends import registry
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.backends.gcp import BACKEND, catalog
from mlops_infra.backends.gcp.backend import STORAGE_AGENT_INVOKE, STORAGE_AGENT_PLACEHOLDER
from mlops_infra.backends.gcp.settings import GcpSettings
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN, dump_plan, run_offline
from mlops_infra.program import build_program
from mlops_infra.spec.models import SIZE_CLASSES, Compute
from mlops_infra.stages import all_stages
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_RING = "gcp:kms/keyRing:KeyRing"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
AUDIT = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
STATEFUL = {BUCKET, KEY, KEY_RING}
KEY_PATH = "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring/cryptoKeys/churn-dev-key"
IMAGE = "us-docker.pkg.dev/acme/churn/train:1.0"


def _data(**changes: Any) -> dict[str, Any]:
    """BASE_SPEC with only the clouds that are registered (other backends may be mid-change), its
    GCP block acknowledging the names GCP reserves (tested on their own below)."""
    data = copy.deepcopy(BASE_SPEC)
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data["clouds"]["gcp"]["name_generation"] = 1
    data.update(copy.deepcopy(changes))
    return data


def _gcp(**settings_: Any) -> dict[str, Any]:
    return {**_data()["clouds"], "gcp": {"project": "acme-ml-dev", "region": "us-central1", "name_generation": 1, **settings_}}


RICH = _data(
    storage={
        "buckets": [
            {"name": "raw", "archive_after_days": 90, "expire_after_days": 730},
            {"name": "features", "versioning": False, "noncurrent_expire_after_days": None},
            {"name": "scratch", "noncurrent_expire_after_days": 30},  # no model reads it
        ],
        "artifacts": {"expire_after_days": 400},
    },
    models=[
        {
            "name": "churn",
            "training": {
                "image": IMAGE,
                "compute": {"size": "gpu-small"},
                "inputs": [{"bucket": "raw", "prefix": "events/"}, {"bucket": "raw", "prefix": "events/2024/"}, "features"],
            },
            "serving": {"image": IMAGE, "compute": {"size": "cpu-small"}},
            "monitoring": {"drift": {"baseline": {"bucket": "raw", "prefix": "baseline/"}}},
        }
    ],
    governance={"audit_logs": False, "key_rotation_days": 180},
)
LONG = _data(
    project="a-b-c-d-e-f-g-h-i-j-k-lm",
    environment="stage-eu-west-1x",
    clouds=_gcp(project="a-very-long-project-id-12345"),
    storage={"buckets": [{"name": "x-y-z-raw-data-from-the-partners"}]},
)


@pytest.fixture(scope="module")
def base() -> dict:
    return plan_for("gcp", _data())


@pytest.fixture(scope="module")
def rich() -> dict:
    return plan_for("gcp", RICH)


@pytest.fixture(scope="module")
def long_names() -> dict:
    return plan_for("gcp", LONG)


@pytest.fixture(scope="module")
def plans(base: dict, rich: dict, long_names: dict) -> list[dict]:
    return [base, rich, long_names]


def by_name(plan: dict) -> dict[str, dict]:
    return {r["name"]: r for r in plan["resources"]}


# --- backend facts ------------------------------------------------------------------------
def test_importing_the_backend_loads_no_cloud_sdk() -> None:
    code = (
        "import sys, mlops_infra.backends.gcp as g, mlops_infra.backends.gcp.catalog;"
        "from tests.planning import spec_from;"
        "assert not [m for m in sys.modules if m.startswith(('pulumi_gcp', 'google.cloud'))], 'SDK loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[1]))


def test_every_stage_is_implemented() -> None:
    # This round's lifecycle stages are declared with a reason until they land (test_contract.py).
    pending = {"batch", "data_prep", "features", "workspaces", "explainability"}
    for stage in all_stages():
        assert BACKEND.supports(stage.name) or stage.name in pending, stage.name
    assert set(BACKEND.unsupported) <= pending


@pytest.mark.parametrize("project", ["acme-ml-dev", "a12345", "p" * 30, "x-1-y-2-z3"])
def test_settings_accept_valid_project_ids(project: str) -> None:
    assert GcpSettings.model_validate({"project": project, "region": "us-central1"}).project == project


@pytest.mark.parametrize(
    "project", ["acme", "p" * 31, "1acme-ml", "acme-ml-", "Acme-ml-dev", "acme_ml_dev", "example.com:acme"]
)
def test_settings_reject_invalid_project_ids(project: str) -> None:
    with pytest.raises(ValidationError):
        GcpSettings.model_validate({"project": project, "region": "us-central1"})


@pytest.mark.parametrize("region,ok", [("us-central1", True), ("northamerica-northeast2", True), ("europe-west12", True),
                                       ("us", False), ("us-central1-a", False), ("US-CENTRAL1", False), ("eu-west", False)])
def test_settings_region_pattern(region: str, ok: bool) -> None:
    if ok:
        GcpSettings.model_validate({"project": "acme-ml-dev", "region": region})
    else:
        with pytest.raises(ValidationError):
            GcpSettings.model_validate({"project": "acme-ml-dev", "region": region})


def test_settings_reject_unknown_override_keys() -> None:
    with pytest.raises(ValidationError, match="training_instance_type"):
        GcpSettings.model_validate(
            {"project": "acme-ml-dev", "region": "us-central1",
             "overrides": {"models": {"churn": {"training_instance_type": "ml.m5.large"}}}}
        )


def test_name_scope_is_the_project_so_bucket_names_differ_between_projects() -> None:
    one = BACKEND.namer(spec_from(_data()), GcpSettings(project="acme-ml-dev", region="us-central1"))
    two = BACKEND.namer(spec_from(_data()), GcpSettings(project="acme-ml-prod", region="us-central1"))
    assert one.name("gcp.storage.bucket", "raw") != two.name("gcp.storage.bucket", "raw")
    assert one.name("gcp.iam.service_account_id", "training") == two.name("gcp.iam.service_account_id", "training")


def test_mock_call_answers_the_storage_agent_invoke() -> None:
    answer = BACKEND.mock_call(STORAGE_AGENT_INVOKE, {"project": "acme-ml-dev"})
    assert answer["emailAddress"] == STORAGE_AGENT_PLACEHOLDER and UNKNOWN in answer["emailAddress"]
    assert answer["member"] == f"serviceAccount:{STORAGE_AGENT_PLACEHOLDER}"
    assert answer["project"] == "acme-ml-dev"
    # Every field the SDK's result type reads is answered.
    from pulumi_gcp.storage.get_project_service_account import GetProjectServiceAccountResult

    fields = set(inspect.signature(GetProjectServiceAccountResult.__init__).parameters) - {"__self__", "user_project"}
    camel = {f.split("_")[0] + "".join(w.title() for w in f.split("_")[1:]) for f in fields}
    assert camel <= set(answer)


# --- governance ---------------------------------------------------------------------------
def test_key_ring_and_key(base: dict, rich: dict) -> None:
    res = by_name(base)
    ring, key = res["governance-key-ring"], res["governance-key"]
    assert ring["inputs"] == {"location": "us-central1", "name": "churn-dev-keyring", "project": "acme-ml-dev"}
    assert ring["protect"] and key["protect"]
    assert key["inputs"]["keyRing"] == "projects/acme-ml-dev/locations/us-central1/keyRings/churn-dev-keyring"
    assert key["dependencies"]["keyRing"] == ["governance-key-ring"]
    assert key["inputs"]["purpose"] == "ENCRYPT_DECRYPT"
    assert key["inputs"]["rotationPeriod"] == f"{365 * 86400}s"
    assert key["inputs"]["destroyScheduledDuration"] == f"{30 * 86400}s"
    assert by_name(rich)["governance-key"]["inputs"]["rotationPeriod"] == f"{180 * 86400}s"
    assert base["outputs"]["governance"]["key_id"] == KEY_PATH


def test_stack_service_accounts_and_one_per_model_group(base: dict, rich: dict) -> None:
    accounts = {r["name"]: r["inputs"] for r in resources_of(base, ACCOUNT)}
    assert set(accounts) == {"governance-identity-serving", "governance-identity-automation"}  # no models, no group
    for role in ("serving", "automation"):
        assert accounts[f"governance-identity-{role}"]["accountId"] == f"churn-dev-{role}"
        assert accounts[f"governance-identity-{role}"]["project"] == "acme-ml-dev"
    assert base["outputs"]["governance"]["identities"] == {
        role: f"serviceAccount:churn-dev-{role}@acme-ml-dev.iam.gserviceaccount.com" for role in ("automation", "serving")
    }
    group = by_name(rich)["governance-identity-group-churn"]["inputs"]
    assert group["accountId"] == "churn-dev-group-churn" and "(churn)" in group["description"]


def test_only_service_agents_use_the_key_and_their_grants_stay_with_it(base: dict, rich: dict) -> None:
    grants = {r["name"]: r for r in resources_of(base, KEY_MEMBER)}
    assert set(grants) == {"governance-key-grant-storage-agent"}  # no ML stage: only Cloud Storage's agent
    # The invoke was answered: the agent's member is the placeholder, not missing.
    agent = grants["governance-key-grant-storage-agent"]["inputs"]["member"]
    assert agent == f"serviceAccount:{STORAGE_AGENT_PLACEHOLDER}"
    for plan in (base, rich):
        for grant in resources_of(plan, KEY_MEMBER):
            assert grant["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
            assert grant["inputs"]["cryptoKeyId"] == KEY_PATH
            assert "governance-key" in grant["dependencies"]["cryptoKeyId"]
            # Kept with the key: without them a kept bucket or dataset could not be read.
            assert grant["protect"], grant["name"]
            agent_made = grant["dependencies"].get("member", ["governance-service-agent-"])[0]
            assert agent_made.startswith("governance-service-agent-") or grant["inputs"]["member"] != UNKNOWN
            assert not grant["inputs"]["member"].startswith("serviceAccount:churn-dev-"), grant["name"]


def test_audit_logs_follow_the_spec(base: dict, rich: dict) -> None:
    audits = {r["inputs"]["service"]: r["inputs"] for r in resources_of(base, AUDIT)}
    assert [c["logType"] for c in audits["storage.googleapis.com"]["auditLogConfigs"]] == ["DATA_READ", "DATA_WRITE"]
    assert [c["logType"] for c in audits["cloudkms.googleapis.com"]["auditLogConfigs"]] == ["ADMIN_READ"]
    assert all(a["project"] == "acme-ml-dev" for a in audits.values())
    assert resources_of(rich, AUDIT) == []  # audit_logs: false


def test_audit_configs_stay_in_the_project_even_when_the_data_goes() -> None:
    for teardown in (False, True):
        run = run_offline(build_program(spec_from(_data()), "gcp", teardown=teardown), project="churn", stack="dev")
        kept = {r.name for r in run.registrations if r.retain_on_delete}
        assert kept == {"governance-audit-storage", "governance-audit-kms"}
        protected = {r.name for r in run.registrations if r.protect and "audit" in r.name}
        assert protected == (set() if teardown else kept)


# --- storage ------------------------------------------------------------------------------
def test_every_bucket_is_encrypted_with_the_governance_key_after_the_agent_grant(plans: list[dict]) -> None:
    for plan in plans:
        buckets = resources_of(plan, BUCKET)
        assert len(buckets) == len(plan["outputs"]["storage"]["bucket_uris"]) + 1
        for bucket in buckets:
            encryption = bucket["inputs"]["encryption"]
            assert encryption["defaultKmsKeyName"].endswith("/cryptoKeys/" + by_name(plan)["governance-key"]["inputs"]["name"])
            assert {"governance-key", "governance-key-grant-storage-agent"} <= set(bucket["dependencies"]["encryption"])
            assert encryption["googleManagedEncryptionEnforcementConfig"] == {"restrictionMode": "FullyRestricted"}
            assert encryption["customerSuppliedEncryptionEnforcementConfig"] == {"restrictionMode": "FullyRestricted"}


def test_buckets_are_private_regional_and_never_force_destroyed(plans: list[dict]) -> None:
    for plan in plans:
        for bucket in resources_of(plan, BUCKET):
            inputs = bucket["inputs"]
            assert inputs["uniformBucketLevelAccess"] is True
            assert inputs["publicAccessPrevention"] == "enforced"
            assert inputs["forceDestroy"] is False
            assert inputs["location"] == "US-CENTRAL1"
            assert inputs["softDeletePolicy"] == {"retentionDurationSeconds": 7 * 86400}
        acl_types = {r["type"] for r in plan["resources"] if "acl" in r["type"].lower() or "AccessControl" in r["type"]}
        assert acl_types == set()


def test_tls_only_no_http_endpoint(plans: list[dict]) -> None:
    # GCS serves its APIs over HTTPS only; a website block would add a plain-HTTP CNAME endpoint.
    for plan in plans:
        for bucket in resources_of(plan, BUCKET):
            assert "website" not in bucket["inputs"] and "cors" not in bucket["inputs"]
        assert "http://" not in json.dumps(plan["resources"])


def test_versioning(base: dict, rich: dict) -> None:
    assert all(b["inputs"]["versioning"] == {"enabled": True} for b in resources_of(base, BUCKET))
    versioning = {b["name"]: b["inputs"]["versioning"]["enabled"] for b in resources_of(rich, BUCKET)}
    assert versioning == {
        "storage-bucket-raw": True,
        "storage-bucket-features": False,
        "storage-bucket-scratch": True,
        "storage-bucket-artifacts": True,
    }


def _abort() -> dict:
    return {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 7}}


def _noncurrent(days: int) -> dict:
    return {"action": {"type": "Delete"}, "condition": {"daysSinceNoncurrentTime": days, "withState": "ARCHIVED"}}


def test_lifecycle_rules_match_the_spec(base: dict, rich: dict) -> None:
    archive = {"action": {"storageClass": "ARCHIVE", "type": "SetStorageClass"}, "condition": {"age": 90, "withState": "LIVE"}}
    expire = {"action": {"type": "Delete"}, "condition": {"age": 730, "withState": "LIVE"}}
    assert by_name(base)["storage-bucket-raw"]["inputs"]["lifecycleRules"] == [archive, expire, _noncurrent(90), _abort()]
    assert by_name(base)["storage-bucket-artifacts"]["inputs"]["lifecycleRules"] == [_noncurrent(90), _abort()]
    res = by_name(rich)
    assert res["storage-bucket-features"]["inputs"]["lifecycleRules"] == [_abort()]  # no lifecycle asked
    assert res["storage-bucket-scratch"]["inputs"]["lifecycleRules"] == [_noncurrent(30), _abort()]
    artifacts_expire = {"action": {"type": "Delete"}, "condition": {"age": 400, "withState": "LIVE"}}
    assert res["storage-bucket-artifacts"]["inputs"]["lifecycleRules"] == [artifacts_expire, _noncurrent(90), _abort()]


def test_stateful_resources_are_protected_and_nothing_else_needs_to_be(plans: list[dict]) -> None:
    for plan in plans:
        stateful = [r for r in plan["resources"] if r["type"] in STATEFUL]
        assert len(stateful) >= 4
        assert all(r["protect"] for r in stateful), [r["name"] for r in stateful if not r["protect"]]


def _sdk_class(type_token: str) -> type:
    package, module_path, cls = type_token.split(":")
    module = importlib.import_module(f"pulumi_{package}.{module_path.split('/')[0]}")
    return getattr(module, cls)


def test_every_labelable_resource_carries_the_stack_labels(plans: list[dict]) -> None:
    for plan in plans:
        checked = 0
        for r in plan["resources"]:
            if not r["custom"] or r["type"].startswith("pulumi:providers:"):
                continue
            takes_labels = "labels" in inspect.signature(_sdk_class(r["type"])._internal_init).parameters
            if takes_labels:
                checked += 1
                labels = r["inputs"].get("labels")
                assert labels and labels["managed-by"] == "mlops-infra", r["name"]
                assert labels["mlops-project"] == plan["project"] and labels["mlops-stage"] == r["stage"], r["name"]
                assert labels["owner"] == "ml-platform"
        assert checked >= 3


def test_every_resource_uses_the_explicit_provider(plans: list[dict]) -> None:
    for plan in plans:
        provider = by_name(plan)["gcp"]
        assert provider["type"] == "pulumi:providers:gcp"
        assert set(provider["inputs"]) == {"project", "region"}  # no default labels: they would not show
        for r in plan["resources"]:
            if r["custom"] and r["name"] != "gcp":
                assert r["provider"] == "gcp", r["name"]
                assert r["parent"] in (
                    "governance", "storage", "tracking", "training", "registry", "serving", "monitoring", "retraining"
                ), r["name"]
                assert r["parent"] == r["stage"], r["name"]


def test_physical_names_follow_the_rules(plans: list[dict]) -> None:
    rules = name_rules()
    kinds = {BUCKET: "gcp.storage.bucket", KEY: "gcp.kms.crypto_key", KEY_RING: "gcp.kms.key_ring"}
    for plan in plans:
        for r in plan["resources"]:
            if r["type"] in kinds:
                name = r["inputs"]["name"]
                assert rules[kinds[r["type"]]].accepts(name), name
                if r["type"] == BUCKET:
                    assert len(name) <= 63 and not name.startswith("goog") and "google" not in name
            if r["type"] == ACCOUNT:
                assert rules["gcp.iam.service_account_id"].accepts(r["inputs"]["accountId"]), r["inputs"]["accountId"]


def test_long_names_are_shortened_with_a_hash_and_stay_distinct(long_names: dict) -> None:
    ids = [r["inputs"]["accountId"] for r in resources_of(long_names, ACCOUNT)]
    assert len(set(ids)) == 2 and all(6 <= len(i) <= 30 for i in ids)
    assert all(i.startswith("a-b-c-d") for i in ids)
    buckets = [r["inputs"]["name"] for r in resources_of(long_names, BUCKET)]
    assert len(set(buckets)) == 2 and all(len(b) <= 63 for b in buckets)


BASIC_OR_ADMIN = ("roles/owner", "roles/editor", "roles/viewer")
FOLDER = "gcp:storage/managedFolder:ManagedFolder"
FOLDER_MEMBER = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"


def _grants(plan: dict) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] in (BUCKET_MEMBER, FOLDER_MEMBER, KEY_MEMBER)]


def test_grants_are_least_privilege(plans: list[dict]) -> None:
    allowed = {
        "roles/storage.objectViewer",
        "roles/storage.objectCreator",
        "roles/storage.objectUser",
        "roles/cloudkms.cryptoKeyEncrypterDecrypter",
    }
    for plan in plans:
        for grant in _grants(plan):
            role, member = grant["inputs"]["role"], grant["inputs"]["member"]
            assert role in allowed and role not in BASIC_OR_ADMIN and "admin" not in role.lower(), grant["name"]
            if member == UNKNOWN:  # a service agent: its email holds the project number
                assert grant["dependencies"]["member"][0].startswith("governance-service-agent-"), grant["name"]
            else:
                assert member.startswith("serviceAccount:") and "*" not in member, grant["name"]
            assert member not in ("allUsers", "allAuthenticatedUsers")
            assert "condition" not in grant["inputs"], grant["name"]  # prefixes are managed folders
        # Project-level IAM only where nothing narrower exists (training stage, checked in
        # tests/test_training_gcp.py): log writing, the custom role that launches jobs, and
        # each model group's worker role.
        groups = {r["name"].removeprefix("governance-identity-group-") for r in resources_of(plan, ACCOUNT)
                  if r["name"].startswith("governance-identity-group-")}
        project_grants = {
            r["name"] for r in plan["resources"] if "projects/iAM" in r["type"] and r["type"] not in (AUDIT, CUSTOM_ROLE)
        }
        assert project_grants <= {
            "training-project-grant-logwriter-automation",
            "training-project-grant-launcher-automation",
            "registry-project-grant-registrar-automation",
            "serving-project-grant-logwriter-serving",
            *(f"governance-project-grant-worker-{g}" for g in groups),
        }


def test_models_write_only_their_own_artifact_folders(base: dict, rich: dict) -> None:
    assert resources_of(base, FOLDER) == [] and _grants(base) == resources_of(base, KEY_MEMBER)  # no models
    folders = {r["inputs"]["name"]: r for r in resources_of(rich, FOLDER) if r["dependencies"]["bucket"] == ["storage-bucket-artifacts"]}
    assert set(folders) == {"models/churn/", "checkpoints/churn/"}
    assert all(f["inputs"]["forceDestroy"] is True and not f["protect"] for f in folders.values())  # objects stay
    writes = {
        (r["inputs"]["managedFolder"], r["inputs"]["member"].split(":")[1].split("@")[0], r["inputs"]["role"])
        for r in resources_of(rich, FOLDER_MEMBER)
        if r["inputs"]["managedFolder"] in folders
    }
    # churn has neither registry nor model_uri, so nothing serves from its folder.
    assert writes == {
        ("models/churn/", "churn-dev-group-churn", "roles/storage.objectUser"),
        ("checkpoints/churn/", "churn-dev-group-churn", "roles/storage.objectUser"),
    }
    assert [r for r in resources_of(rich, BUCKET_MEMBER) if r["dependencies"]["bucket"] == ["storage-bucket-artifacts"]] == []


def test_groups_read_only_the_buckets_and_prefixes_their_models_use(rich: dict) -> None:
    raw_name = by_name(rich)["storage-bucket-raw"]["inputs"]["name"]
    folders = {(r["inputs"]["bucket"], r["inputs"]["name"]) for r in resources_of(rich, FOLDER)}
    # events/2024/ is inside events/: one folder covers both.
    assert {(raw_name, "events/"), (raw_name, "baseline/")} <= folders and (raw_name, "events/2024/") not in folders
    reads = {
        (r["inputs"]["bucket"], r["inputs"]["managedFolder"]): r["inputs"]
        for r in resources_of(rich, FOLDER_MEMBER) if r["inputs"]["bucket"] == raw_name
    }
    assert set(reads) == {(raw_name, "events/"), (raw_name, "baseline/")}
    assert all(g["role"] == "roles/storage.objectViewer" and "churn-dev-group-churn@" in g["member"] for g in reads.values())
    whole = {r["dependencies"]["bucket"][0]: r["inputs"] for r in resources_of(rich, BUCKET_MEMBER)}
    assert set(whole) == {"storage-bucket-features"}  # read whole; scratch is read by no model
    assert whole["storage-bucket-features"]["member"].startswith("serviceAccount:churn-dev-group-churn@")
    automation = [g for g in _grants(rich) if "automation" in g["inputs"]["member"]]
    assert automation == []


def test_the_same_spec_plans_to_the_same_bytes(base: dict) -> None:
    assert dump_plan(plan_for("gcp", _data())) == dump_plan(base)


def test_outputs_are_gs_uris(rich: dict) -> None:
    uris = rich["outputs"]["storage"]["bucket_uris"]
    assert set(uris) == {"raw", "features", "scratch"}
    names = {r["name"].removeprefix("storage-bucket-"): r["inputs"]["name"] for r in resources_of(rich, BUCKET)}
    assert uris == {k: f"gs://{names[k]}" for k in uris}
    assert rich["outputs"]["storage"]["artifacts_uri"] == f"gs://{names['artifacts']}"


# --- catalog ------------------------------------------------------------------------------
@pytest.mark.parametrize("purpose", catalog.PURPOSES)
@pytest.mark.parametrize("size", sorted(SIZE_CLASSES))
def test_size_classes_map_to_machines_that_meet_them(purpose: str, size: str) -> None:
    spec = catalog.machine_spec(Compute(size=size), purpose)
    need = SIZE_CLASSES[size]
    shape = catalog.shape(spec)
    assert shape.cpus >= need["cpus"] and shape.memory_gib >= need["memory_gib"] and shape.gpus == need["gpus"]
    assert catalog.check_override(spec.machine_type, "serving" if purpose == "serving" else "training") is None
    assert spec == catalog.choose(need, purpose)  # the table agrees with the automatic choice
    assert catalog.instance_type(Compute(size=size), purpose) == spec.machine_type


@pytest.mark.parametrize(
    "needs,purpose,expected",
    [
        ({"cpus": 3, "memory_gib": 10, "gpus": 0}, "training", catalog.MachineSpec("n2-standard-4")),
        ({"cpus": 2, "memory_gib": 2, "gpus": 0}, "serving", catalog.MachineSpec("n2-highcpu-2")),
        ({"cpus": 2, "memory_gib": 2, "gpus": 0}, "processing", catalog.MachineSpec("n2-highmem-2")),
        ({"cpus": 10, "memory_gib": 64, "gpus": 0}, "serving", catalog.MachineSpec("n2-standard-16")),
        ({"cpus": 8, "memory_gib": 40, "gpus": 0}, "serving", catalog.MachineSpec("n2-highmem-8")),
        ({"cpus": 2, "memory_gib": 4, "gpus": 1}, "serving", catalog.MachineSpec("n1-standard-2", "NVIDIA_TESLA_T4", 1)),
        ({"cpus": 4, "memory_gib": 16, "gpus": 1}, "training", catalog.MachineSpec("g2-standard-4", "NVIDIA_L4", 1)),
        ({"cpus": 8, "memory_gib": 32, "gpus": 2}, "training", catalog.MachineSpec("n1-highmem-8", "NVIDIA_TESLA_T4", 2)),
        ({"cpus": 4, "memory_gib": 16, "gpus": 16}, "training", catalog.MachineSpec("a2-megagpu-16g", "NVIDIA_TESLA_A100", 16)),
    ],
)
def test_explicit_requirements_pick_the_smallest_listed_machine(needs: dict, purpose: str, expected: Any) -> None:
    compute = Compute(cpus=needs["cpus"], memory_gib=needs["memory_gib"], gpus=needs["gpus"])
    assert catalog.machine_spec(compute, purpose) == expected


def test_catalog_miss_names_the_cloud_and_the_class_and_hints() -> None:
    with pytest.raises(CatalogMiss) as miss:
        catalog.machine_spec(Compute(cpus=192, memory_gib=100), "training")
    assert "GCP" in miss.value.message and "192 cpus / 100 GiB" in miss.value.message
    assert "n2-highmem-80" in miss.value.hint
    with pytest.raises(CatalogMiss) as miss:
        catalog.machine_spec(Compute(cpus=8, memory_gib=64, gpus=16), "serving")  # a2-megagpu is training-only
    assert "8 cpus / 64 GiB / 16 gpus" in miss.value.message and "replicas" in miss.value.hint


def test_override_checks() -> None:
    assert catalog.check_override("n2-standard-8", "training") is None
    assert catalog.check_override("g2-standard-24", "serving") is None
    unknown = catalog.check_override("n2-standard-5", "training")
    assert unknown and "unknown" in unknown and "'n2-standard-4'" in unknown
    wrong_purpose = catalog.check_override("n1-standard-2", "training")
    assert wrong_purpose and "only for serving" in wrong_purpose
    assert catalog.check_override("a2-megagpu-16g", "serving")
    assert catalog.check_override("ml.m5.large", "serving")
    assert catalog.check_accelerator("NVIDIA_L4") is None
    assert "NVIDIA_TESLA_T4" in (catalog.check_accelerator("NVIDIA_TESLA_T5") or "")


@pytest.mark.parametrize(
    "machine,accelerator,count,ok",
    [
        ("a2-highgpu-1g", None, None, True),
        ("a2-highgpu-1g", "NVIDIA_TESLA_A100", 1, True),
        ("a2-highgpu-1g", "NVIDIA_L4", None, False),
        ("a2-highgpu-2g", "NVIDIA_TESLA_A100", 1, False),
        ("g2-standard-24", "NVIDIA_L4", 2, True),
        ("g2-standard-8", "NVIDIA_TESLA_T4", None, False),
        ("n1-standard-8", "NVIDIA_TESLA_T4", 1, True),
        ("n1-standard-8", "NVIDIA_TESLA_V100", 1, True),
        ("n1-standard-32", "NVIDIA_TESLA_V100", 1, False),  # V100 x1 allows 12 vCPUs
        ("n1-standard-8", "NVIDIA_TESLA_T4", 3, False),
        ("n1-standard-8", "NVIDIA_L4", 1, False),
        ("n2-standard-8", "NVIDIA_TESLA_T4", 1, False),
        ("e2-standard-8", None, 1, False),
        ("n2-standard-8", None, None, True),
    ],
)
def test_accelerator_pairing(machine: str, accelerator: str | None, count: int | None, ok: bool) -> None:
    assert (catalog.check_pairing(machine, accelerator, count) is None) is ok


def test_overrides_win_when_the_model_is_named() -> None:
    settings_ = GcpSettings.model_validate(
        {"project": "acme-ml-dev", "region": "us-central1", "overrides": {"models": {"churn": {
            "training_machine_type": "n1-standard-8", "training_accelerator_type": "NVIDIA_TESLA_T4",
            "serving_machine_type": "g2-standard-8"}}}}
    )
    compute = Compute(size="cpu-small")
    assert catalog.machine_spec(compute, "training", settings_, model="churn") == catalog.MachineSpec(
        "n1-standard-8", "NVIDIA_TESLA_T4", 1
    )
    assert catalog.machine_spec(compute, "serving", settings_, model="churn") == catalog.MachineSpec(
        "g2-standard-8", "NVIDIA_L4", 1
    )
    assert catalog.instance_type(compute, "serving", settings_, model="other") == "n2-standard-2"
    assert catalog.instance_type(compute, "processing", settings_, model="churn") == "n2-highmem-2"


@settings(max_examples=200, deadline=None)
@given(
    cpus=st.integers(1, 192),
    memory=st.integers(1, 2048),
    gpus=st.integers(0, 16),
    purpose=st.sampled_from(catalog.PURPOSES),
)
def test_explicit_choice_meets_the_requirements_or_misses(cpus: int, memory: int, gpus: int, purpose: str) -> None:
    compute = Compute(cpus=cpus, memory_gib=memory, gpus=gpus)
    try:
        spec = catalog.machine_spec(compute, purpose)
    except CatalogMiss as miss:
        assert "GCP" in miss.message and miss.hint
        return
    shape = catalog.shape(spec)
    assert shape.cpus >= cpus and shape.memory_gib >= memory and shape.gpus >= gpus
    assert (shape.gpus > 0) == (gpus > 0)
    assert catalog.check_override(spec.machine_type, "serving" if purpose == "serving" else "training") is None
    assert catalog.check_pairing(spec.machine_type, spec.accelerator_type, spec.accelerator_count or None) is None


@settings(max_examples=200, deadline=None)
@given(
    project=st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,23}", fullmatch=True).filter(lambda s: not s.endswith("-")),
    environment=st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){1,15}", fullmatch=True).filter(lambda s: not s.endswith("-")),
    role=st.sampled_from(("training", "serving", "automation")),
)
def test_service_account_ids_always_fit(project: str, environment: str, role: str) -> None:
    spec = spec_from(_data(project=project, environment=environment))
    namer = BACKEND.namer(spec, GcpSettings(project="acme-ml-dev", region="us-central1"))
    account_id = namer.name("gcp.iam.service_account_id", role)  # raises if the rule is broken
    assert 6 <= len(account_id) <= 30


# --- backend.check ------------------------------------------------------------------------
def _problems(**changes: Any) -> list:
    spec = spec_from(_data(**changes))
    return BACKEND.check(spec, spec.settings_for("gcp"))


def _model(name: str = "churn", training: dict | None = None, serving: dict | None = None) -> dict:
    model: dict[str, Any] = {"name": name}
    if training is not None:
        model["training"] = {"image": IMAGE, "compute": training}
    if serving is not None:
        model["serving"] = {"image": IMAGE, "compute": serving}
    return model


def _by_path(problems: list) -> dict[tuple, Any]:
    return {p.path: p for p in problems}


def test_check_is_clean_for_the_base_spec() -> None:
    assert _problems() == []


def test_check_override_problems_have_paths() -> None:
    base = ("clouds", "gcp", "overrides", "models")
    problems = _by_path(
        _problems(
            models=[_model("churn", training={"size": "cpu-small"})],
            clouds=_gcp(overrides={"models": {
                "chrun": {"training_machine_type": "n2-standard-8"},
                "churn": {"training_machine_type": "n2-standard-5", "serving_machine_type": "n2-standard-4",
                          "serving_accelerator_type": "NVIDIA_L4"},
            }}),
        )
    )
    unknown_model = problems[(*base, "chrun")]
    assert unknown_model.severity == "error" and "'churn'" in unknown_model.hint
    bad_machine = problems[(*base, "churn", "training_machine_type")]
    assert bad_machine.severity == "error" and "n2-standard-4" in bad_machine.message
    pairing = problems[(*base, "churn", "serving_accelerator_type")]
    assert pairing.severity == "error" and "NVIDIA_L4" in pairing.message
    # churn has no serving section: also told the serving override has no effect.
    no_effect = problems[(*base, "churn", "serving_machine_type")]
    assert no_effect.severity == "warning"


def test_check_accelerator_needs_a_machine_and_a_known_name() -> None:
    base = ("clouds", "gcp", "overrides", "models", "churn")
    problems = _by_path(
        _problems(
            models=[_model("churn", training={"size": "gpu-small"}, serving={"size": "cpu-small"})],
            clouds=_gcp(overrides={"models": {"churn": {
                "training_accelerator_type": "NVIDIA_TESLA_T4",
                "serving_machine_type": "n1-standard-4", "serving_accelerator_type": "NVIDIA_TESLA_T5",
            }}}),
        )
    )
    assert "needs training_machine_type" in problems[(*base, "training_accelerator_type")].message
    assert "NVIDIA_TESLA_T4" in problems[(*base, "serving_accelerator_type")].message
    assert all(p.severity == "error" for p in problems.values())


def test_check_warns_when_an_override_is_smaller_than_the_requirement() -> None:
    problems = _problems(
        models=[_model("churn", training={"size": "gpu-small"})],
        clouds=_gcp(overrides={"models": {"churn": {"training_machine_type": "n2-standard-8"}}}),
    )
    assert [(p.path[-1], p.severity) for p in problems] == [("training_machine_type", "warning")]
    assert "GPUs 0 < 1" in problems[0].message


def test_check_reports_catalog_misses_at_the_model_compute() -> None:
    problems = _problems(
        models=[_model("big", training={"cpus": 192, "memory_gib": 100}, serving={"cpus": 8, "memory_gib": 64, "gpus": 16})]
    )
    paths = {p.path: p for p in problems}
    # Plus: a trained model without registry or model_uri has nothing to deploy on GCP.
    assert set(paths) == {("models", 0, "training", "compute"), ("models", 0, "serving", "compute"), ("models", 0, "serving")}
    assert all("GCP" in p.message and p.severity == "error" and p.hint for p in problems)


def test_an_override_replaces_a_catalog_miss() -> None:
    problems = _problems(
        models=[_model("big", serving={"cpus": 8, "memory_gib": 64, "gpus": 16})],
        clouds=_gcp(overrides={"models": {"big": {"serving_machine_type": "a2-ultragpu-8g"}}}),
    )
    assert [p.severity for p in problems] == ["warning"]  # 8 GPUs < 16, but no catalog miss


def test_check_rejects_google_in_bucket_names_and_warns_on_early_archive_deletion() -> None:
    problems = _by_path(
        _problems(
            project="googly",
            storage={"buckets": [{"name": "g00gle-data"}, {"name": "logs", "archive_after_days": 30, "expire_after_days": 200}]},
        )
    )
    assert problems[("project",)].severity == "error"
    assert problems[("storage", "buckets", 0, "name")].severity == "error"
    early = problems[("storage", "buckets", 1, "expire_after_days")]
    assert early.severity == "warning" and "365" in early.message
    assert len(problems) == 3


def test_check_rejects_google_in_the_project_id_and_skips_a_missing_block() -> None:
    problems = _problems(clouds=_gcp(project="my-google-ml"))
    assert [(p.path, p.severity) for p in problems] == [(("clouds", "gcp", "project"), "error")]
    assert BACKEND.check(spec_from(_data()), None) == []


def test_private_network_only_asks_for_the_perimeter_the_stack_cannot_make() -> None:
    problems = _problems(governance={"network": "private"})
    assert [(p.path, p.severity) for p in problems] == [(("clouds", "gcp", "network", "service_perimeter"), "warning")]
    perimeter = "accessPolicies/123456/servicePerimeters/ml_dev"
    assert _problems(governance={"network": "private"}, clouds=_gcp(network={"service_perimeter": perimeter})) == []
