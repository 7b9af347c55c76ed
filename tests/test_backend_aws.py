"""AWS backend: catalog, checks, and the governance + storage plan (offline engine).

Training, tracking and registry: tests/test_training_aws.py; serving: tests/test_serving_aws.py.

Plans are shared through module-scoped fixtures (7 plans in this file).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import subprocess
import sys
from typing import Any

import pytest

from mlops_infra.backends.aws import BACKEND, catalog, policies
from mlops_infra.backends.aws.naming import STYLES, bucket_name, role_name
from mlops_infra.backends.base import CatalogMiss
from mlops_infra.naming import name_rules
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.models import SIZE_CLASSES, Compute
from mlops_infra.stages.storage import data_reads
from mlops_infra.tagging import stack_tags
from tests.planning import BASE_SPEC, plan_for, resources_of, spec_from

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0"
ACCOUNT = "123456789012"


def aws_only(data: dict[str, Any]) -> dict[str, Any]:
    """A spec whose clouds block names AWS only (other backends may not be registered), in ACCOUNT."""
    data = copy.deepcopy(data)
    data["clouds"] = {"aws": {**data["clouds"]["aws"], "account_id": ACCOUNT}}
    return data


BASE = aws_only(BASE_SPEC)

RICH: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "tags": {"owner": "ml-platform", "cost-center": "42"},
    "clouds": {
        "aws": {
            "region": "us-east-1",
            "account_id": ACCOUNT,
            "overrides": {"models": {"churn-classifier": {"serving_instance_type": "ml.c5.xlarge"}}},
        }
    },
    "storage": {
        "buckets": [
            {"name": "raw", "archive_after_days": 90, "expire_after_days": 730},
            {"name": "features", "versioning": False, "noncurrent_expire_after_days": None},
            {"name": "scratch"},
        ],
        "artifacts": {"expire_after_days": 365, "noncurrent_expire_after_days": 30},
    },
    "models": [
        {
            "name": "churn-classifier",
            "training": {
                "image": IMAGE,
                "compute": {"size": "cpu-large"},
                "inputs": ["raw", {"bucket": "features", "prefix": "daily/"}],
            },
            "serving": {"image": IMAGE, "compute": {"size": "cpu-small"}},
            "monitoring": {"drift": {"baseline": {"bucket": "features", "prefix": "baseline/"}}},
        }
    ],
}

LONG: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "project": "a-very-long-project-name",
    "environment": "production-east1",
    "storage": {"buckets": [{"name": "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p"}, {"name": "x-really-long-bucket-name-here-x"}]},
}

FOUNDATION_STATEFUL = {
    "aws:kms/key:Key",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
}
# What a default destroy keeps (tests/test_teardown.py checks the examples).
STATEFUL_TYPES = BACKEND.kept_types
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
NAME_INPUTS = {  # type -> (input holding the physical name, name rule kind)
    "aws:s3/bucket:Bucket": ("bucket", "aws.s3.bucket"),
    "aws:iam/role:Role": ("name", "aws.iam.role"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "aws.iam.policy"),
    "aws:kms/alias:Alias": ("name", "aws.kms.alias"),
    "aws:cloudtrail/trail:Trail": ("name", "aws.cloudtrail.trail"),
    "aws:iam/policy:Policy": ("name", "aws.iam.policy"),
}


# --- plans (7 in all) -------------------------------------------------------------
@pytest.fixture(scope="module")
def rich() -> dict[str, Any]:
    return plan_for("aws", RICH)


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return plan_for("aws", BASE)


@pytest.fixture(scope="module")
def no_audit() -> dict[str, Any]:
    return plan_for("aws", RICH, governance={"audit_logs": False})


@pytest.fixture(scope="module")
def long_names() -> dict[str, Any]:
    return plan_for("aws", LONG)


@pytest.fixture(scope="module")
def all_plans(rich, base, no_audit, long_names) -> list[dict[str, Any]]:
    return [rich, base, no_audit, long_names]


# --- plan helpers -----------------------------------------------------------------
def by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def config_of(plan: dict[str, Any], type_: str, bucket: str) -> dict[str, Any]:
    """The bucket-level configuration resource of `type_` for the bucket resource named `bucket`."""
    physical = by_name(plan)[bucket]["inputs"]["bucket"]
    found = [r for r in resources_of(plan, type_) if r["inputs"]["bucket"] == physical]
    assert len(found) == 1, (type_, bucket, found)
    assert found[0]["dependencies"]["bucket"] == [bucket]
    return found[0]


def policy_doc(resource: dict[str, Any], field: str = "policy") -> dict[str, Any]:
    text = resource["inputs"][field]
    assert text != UNKNOWN, f"{resource['name']}.{field} should be known before deployment"
    return json.loads(text)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def every_known_policy(plan: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for r in plan["resources"]:
        for field in ("policy", "assumeRolePolicy"):
            text = r["inputs"].get(field)
            if isinstance(text, str) and text != UNKNOWN:
                docs.append((f"{r['name']}.{field}", json.loads(text)))
    return docs


def grant(plan: dict[str, Any], role: str) -> dict[str, Any]:
    return policy_doc(by_name(plan)[f"storage-grant-{role}"])


def group_grant(plan: dict[str, Any], group: str) -> dict[str, Any]:
    return policy_doc(by_name(plan)[f"governance-groupdata-{group}"])


def allowed(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, resource) pairs of the Allow statements."""
    return [
        (action, resource)
        for s in statements(doc)
        if s["Effect"] == "Allow"
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def arn(plan: dict[str, Any], bucket: str) -> str:
    return "arn:aws:s3:::" + by_name(plan)[f"storage-bucket-{bucket}"]["inputs"]["bucket"]


# --- storage ----------------------------------------------------------------------
def test_every_bucket_is_encrypted_with_the_stack_key(all_plans):
    for plan in all_plans:
        buckets = resources_of(plan, "aws:s3/bucket:Bucket")
        data = len(resources_of(plan, "aws:s3/bucket:Bucket")) - 1
        assert data >= 1 and {"storage-bucket-artifacts"} <= {b["name"] for b in buckets}
        for bucket in buckets:
            enc = config_of(plan, SSE, bucket["name"])
            (rule,) = enc["inputs"]["rules"]
            assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
            assert rule["bucketKeyEnabled"] is True
            assert enc["dependencies"]["rules"] == ["governance-key"]


def test_buckets_match_the_spec_one_to_one(rich, long_names):
    assert sorted(b["name"] for b in resources_of(rich, "aws:s3/bucket:Bucket")) == [
        "storage-bucket-artifacts", "storage-bucket-features", "storage-bucket-raw", "storage-bucket-scratch",
    ]
    assert len(resources_of(long_names, "aws:s3/bucket:Bucket")) == 3
    for bucket in resources_of(rich, "aws:s3/bucket:Bucket"):
        assert bucket["inputs"]["forceDestroy"] is False
        # In the account's regional namespace: only this account can ever create these names.
        assert bucket["inputs"]["bucketNamespace"] == "account-regional"
        assert bucket["inputs"]["bucket"].endswith(f"-{ACCOUNT}-us-east-1-an")
    assert by_name(rich)["storage-bucket-raw"]["inputs"]["bucket"] == f"churn-dev-raw-{ACCOUNT}-us-east-1-an"


def test_versioning_follows_the_spec(rich):
    status = {
        name: config_of(rich, "aws:s3/bucketVersioning:BucketVersioning", f"storage-bucket-{name}")["inputs"][
            "versioningConfiguration"]["status"]
        for name in ("raw", "features", "scratch", "artifacts")
    }
    assert status == {"raw": "Enabled", "features": "Suspended", "scratch": "Enabled", "artifacts": "Enabled"}


def test_buckets_are_private(all_plans):
    for plan in all_plans:
        for bucket in resources_of(plan, "aws:s3/bucket:Bucket"):
            pab = config_of(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket["name"])["inputs"]
            blocks = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
            assert all(pab[k] is True for k in blocks)
            own = config_of(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket["name"])
            assert own["inputs"]["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_buckets_are_tls_only(all_plans):
    for plan in all_plans:
        for bucket in resources_of(plan, "aws:s3/bucket:Bucket"):
            doc = policy_doc(config_of(plan, "aws:s3/bucketPolicy:BucketPolicy", bucket["name"]))
            bucket_arn = "arn:aws:s3:::" + bucket["inputs"]["bucket"]
            insecure = {"Bool": {"aws:SecureTransport": "false"}}
            (deny,) = [s for s in statements(doc) if s.get("Condition") == insecure]
            assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
            assert sorted(deny["Resource"]) == [bucket_arn, f"{bucket_arn}/*"]


def lifecycle(plan: dict[str, Any], bucket: str) -> dict[str, dict[str, Any]]:
    type_ = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    rules = config_of(plan, type_, f"storage-bucket-{bucket}")
    out = {}
    for rule in rules["inputs"]["rules"]:
        assert rule["status"] == "Enabled" and rule["filter"] == {}
        out[rule["id"]] = {k: v for k, v in rule.items() if k not in ("id", "status", "filter")}
    return out


def test_lifecycle_rules_match_the_spec(rich):
    abort = {"abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}
    assert lifecycle(rich, "raw") == {
        "archive": {"transitions": [{"days": 90, "storageClass": "GLACIER"}]},
        "expire": {"expiration": {"days": 730}},
        "expire-noncurrent": {"noncurrentVersionExpiration": {"noncurrentDays": 90}},
        "abort-incomplete-uploads": abort,
    }
    assert lifecycle(rich, "features") == {"abort-incomplete-uploads": abort}  # no lifecycle in the spec
    assert lifecycle(rich, "artifacts") == {
        "expire": {"expiration": {"days": 365}},
        "expire-noncurrent": {"noncurrentVersionExpiration": {"noncurrentDays": 30}},
        "abort-incomplete-uploads": abort,
    }


def test_stateful_resources_are_protected_and_others_not(all_plans):
    for plan in all_plans:
        for r in plan["resources"]:
            assert r["protect"] is (r["type"] in STATEFUL_TYPES), r["name"]
        assert {r["type"] for r in plan["resources"]} >= FOUNDATION_STATEFUL
    # Written out here on purpose: a bucket or one of its guards dropped from kept_types fails.
    assert FOUNDATION_STATEFUL <= STATEFUL_TYPES


def _taggable(type_: str) -> bool:
    """Whether the SDK class behind a type token ("aws:s3/bucket:Bucket") takes tags."""
    _, path, name = type_.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{path.split('/')[0]}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_resource_carries_the_stack_tags(rich, long_names):
    foundation = {"aws:kms/key:Key", "aws:iam/role:Role", "aws:s3/bucket:Bucket", "aws:cloudtrail/trail:Trail"}
    # RICH trains one model (its group identity attaches the stack's "training" managed policy).
    training = {"aws:ecr/repository:Repository", "aws:sagemaker/pipeline:Pipeline", "aws:iam/policy:Policy"}
    serving = {"aws:sagemaker/model:Model", "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
               "aws:sagemaker/endpoint:Endpoint", "aws:appautoscaling/target:Target"}  # ... and serves it
    # ... with monitoring: its alert topic (no thresholds: no alarms; no data capture: no drift job).
    monitoring = {"aws:sns/topic:Topic"}
    for plan, spec, types in ((rich, RICH, foundation | training | serving | monitoring), (long_names, LONG, foundation)):
        taggable = [r for r in plan["resources"] if r["type"].startswith("aws:") and _taggable(r["type"])]
        assert {r["type"] for r in taggable} == types
        for r in taggable:
            expected = stack_tags(
                project=spec["project"], environment=spec["environment"], user=spec["tags"], stage=r["stage"]
            )
            assert r["inputs"]["tags"] == expected, r["name"]


def test_custom_resources_use_the_explicit_provider_and_a_stage_parent(all_plans):
    for plan in all_plans:
        (provider,) = resources_of(plan, "pulumi:providers:aws")
        assert provider["inputs"]["region"] == "us-east-1"
        for r in plan["resources"]:
            if r["custom"] and r["type"] != "pulumi:providers:aws":
                assert r["provider"] == "aws", r["name"]
                assert r["parent"] == r["stage"], r["name"]
                assert r["stage"] in ("governance", "storage", "registry", "tracking", "training", "serving",
                                      "monitoring", "retraining"), r["name"]


# --- grants -----------------------------------------------------------------------
def test_no_wildcard_action_and_no_public_principal_in_any_allow(all_plans):
    for plan in all_plans:
        docs = every_known_policy(plan)
        assert len(docs) >= 6  # key, two trusts, the serving grant, two bucket policies at least
        for where, doc in docs:
            for s in statements(doc):
                if s["Effect"] != "Allow":
                    continue
                for action in as_list(s["Action"]):
                    assert "*" not in action, (where, action)
                principal = s.get("Principal")
                if principal is not None:
                    groups = [principal] if isinstance(principal, str) else list(principal.values())
                    values = [v for group in groups for v in as_list(group)]
                    assert "*" not in values and not any(v.endswith(":*") for v in values), (where, principal)
                for resource in as_list(s.get("Resource", [])):
                    if where.startswith(("storage-grant", "governance-keygrant", "governance-groupdata")):
                        assert resource not in ("*", "arn:aws:s3:::*"), (where, resource)


def test_a_group_identity_reads_only_its_models_data_and_artifacts(rich):
    doc = group_grant(rich, "churn-classifier")
    pairs = allowed(doc)
    raw, features, scratch, art = (arn(rich, b) for b in ("raw", "features", "scratch", "artifacts"))
    own = f"{art}/models/churn-classifier/*"
    reads = {r for a, r in pairs if a == "s3:GetObject"}
    assert reads == {f"{raw}/*", f"{features}/baseline/*", f"{features}/daily/*", own}
    assert not any(scratch in r for _, r in pairs)  # no model uses it
    assert {r for a, r in pairs if a == "s3:PutObject"} == {own}  # not spot: no checkpoints
    listings = {r: s.get("Condition") for s in statements(doc) if s["Action"] == ["s3:ListBucket"]
                for r in as_list(s["Resource"])}
    assert listings[features] == {"StringLike": {"s3:prefix": ["baseline/*", "daily/*"]}}
    assert listings[art] == {"StringLike": {"s3:prefix": ["models/churn-classifier/*"]}}
    assert listings[raw] is None  # read whole
    assert {r for a, r in pairs if a == "s3:GetBucketLocation"} == {raw, features, art}
    role = by_name(rich)["governance-group-churn-classifier"]["inputs"]["name"]
    (passing,) = [s for s in statements(doc) if s["Action"] == "iam:PassRole"]
    assert passing["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/{role}"
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_serving_reads_trained_models_and_writes_captured_data_only(rich):
    doc = grant(rich, "serving")
    pairs = allowed(doc)
    art = arn(rich, "artifacts")
    assert set(pairs) == {
        ("s3:ListBucket", art), ("s3:GetBucketLocation", art), ("s3:GetObject", f"{art}/models/*"),
        ("s3:PutObject", f"{art}/data-capture/*"), ("s3:AbortMultipartUpload", f"{art}/data-capture/*"),
    }
    (listing,) = [s for s in statements(doc) if "s3:ListBucket" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/", "models/*"]}}


def test_no_workload_touches_the_audit_logs(rich):
    art = arn(rich, "artifacts")
    (deny,) = [s for s in statements(grant(rich, "serving")) if s["Effect"] == "Deny"]
    assert deny["Resource"] == f"{art}/audit-logs/*"
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(deny["Action"])
    assert "*" not in "".join(deny["Action"])
    # A group identity is granted its own prefixes only, none of which is the audit logs'.
    assert not any("audit-logs" in r or r == f"{art}/*" for _, r in allowed(group_grant(rich, "churn-classifier")))


def test_a_spec_without_models_has_no_group_identity(base):
    assert not [r for r in base["resources"] if r["name"].startswith(("governance-group", "governance-policy"))]
    assert {r["name"] for r in resources_of(base, "aws:iam/role:Role")} == {
        "governance-role-serving", "governance-role-automation"}
    assert "storage-grant-automation" not in by_name(base)


def test_grants_attach_to_the_governance_roles(rich):
    named = by_name(rich)
    for policy in ("storage-grant-serving", "governance-keygrant-serving"):
        assert named[policy]["inputs"]["role"] == named["governance-role-serving"]["inputs"]["name"]
        assert named[policy]["dependencies"]["role"] == ["governance-role-serving"]
    # The key ARN exists only after deployment; the grant depends on the key.
    assert named["governance-keygrant-serving"]["dependencies"]["policy"] == ["governance-key"]
    assert not [r for r in rich["resources"] if r["name"].endswith("-automation") and r["type"].endswith("RolePolicy")]
    # The group identity: its data policy, and the stack's training policy attached.
    group = named["governance-group-churn-classifier"]
    assert named["governance-groupdata-churn-classifier"]["inputs"]["role"] == group["inputs"]["name"]
    attach = named["governance-groupattach-training-churn-classifier"]
    assert attach["inputs"]["role"] == group["inputs"]["name"]
    assert attach["dependencies"]["policyArn"] == ["governance-policy-training"]
    assert named["governance-policy-training"]["dependencies"]["policy"] == ["governance-key"]
    assert "governance-policy-monitoring" not in named  # RICH captures no data: no drift job


# --- governance -------------------------------------------------------------------
def test_key_is_rotated_protected_and_managed_without_kms_star(rich):
    key = by_name(rich)["governance-key"]
    inputs = key["inputs"]
    assert inputs["enableKeyRotation"] is True and inputs["rotationPeriodInDays"] == 365
    assert inputs["deletionWindowInDays"] == 30 and key["protect"] is True
    doc = policy_doc(key)
    root = f"arn:aws:iam::{ACCOUNT}:root"
    admin = [s for s in statements(doc) if s.get("Principal") == {"AWS": root}]
    actions = {a for s in admin for a in as_list(s["Action"])}
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:Decrypt", "kms:GenerateDataKey"} <= actions
    assert all(a.startswith("kms:") and "*" not in a for a in actions)
    alias = by_name(rich)["governance-alias"]
    assert alias["inputs"]["name"] == "alias/churn-dev-key"
    assert alias["dependencies"]["targetKeyId"] == ["governance-key"]


def test_rotation_period_follows_the_spec():
    spec = spec_from(RICH, governance={"key_rotation_days": 180})
    from mlops_infra.plan import plan_document

    key = by_name(plan_document(spec, "aws", stack="dev"))["governance-key"]
    assert key["inputs"]["rotationPeriodInDays"] == 180


def test_roles_trust_their_service_for_this_account_only(rich):
    expected = {
        "group-churn-classifier": ("churn-dev-churn-classifier-jobs-us-east-1", "sagemaker.amazonaws.com"),
        "role-serving": ("churn-dev-serving-us-east-1", "sagemaker.amazonaws.com"),
        "role-automation": ("churn-dev-automation-us-east-1", ["events.amazonaws.com", "scheduler.amazonaws.com"]),
    }
    assert {r["name"] for r in resources_of(rich, "aws:iam/role:Role")} == {f"governance-{n}" for n in expected}
    for logical, (name, service) in expected.items():
        r = by_name(rich)[f"governance-{logical}"]
        assert r["inputs"]["name"] == name
        (s,) = statements(policy_doc(r, "assumeRolePolicy"))
        assert s["Principal"] == {"Service": service} and s["Action"] == "sts:AssumeRole"
        assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_audit_trail_records_the_stack_buckets_into_the_artifact_bucket(rich):
    named = by_name(rich)
    (trail,) = resources_of(rich, "aws:cloudtrail/trail:Trail")
    inputs = trail["inputs"]
    assert trail["protect"] is True  # a default destroy keeps recording who reads the kept data
    assert inputs["isMultiRegionTrail"] is False and inputs["enableLogFileValidation"] is True
    assert inputs["s3BucketName"] == named["storage-bucket-artifacts"]["inputs"]["bucket"]
    assert inputs["s3KeyPrefix"] == "audit-logs"
    assert trail["dependencies"]["kmsKeyId"] == ["governance-key"]
    (selector,) = inputs["advancedEventSelectors"]
    fields = {f["field"]: f for f in selector["fieldSelectors"]}
    assert fields["eventCategory"]["equals"] == ["Data"] and fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    buckets = [arn(rich, b) + "/" for b in ("artifacts", "features", "raw", "scratch")]
    assert fields["resources.ARN"]["startsWiths"] == buckets
    assert fields["resources.ARN"]["notStartsWiths"] == [arn(rich, "artifacts") + "/audit-logs/"]
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{inputs['name']}"
    # The artifact bucket lets CloudTrail write there, for this trail only.
    service = {"Service": "cloudtrail.amazonaws.com"}
    cloudtrail = [s for s in statements(policy_doc(named["storage-policy-artifacts"])) if s.get("Principal") == service]
    assert {s["Action"] for s in cloudtrail} == {"s3:GetBucketAcl", "s3:PutObject"}
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn for s in cloudtrail)
    (put,) = [s for s in cloudtrail if s["Action"] == "s3:PutObject"]
    assert put["Resource"] == f"{arn(rich, 'artifacts')}/audit-logs/AWSLogs/{ACCOUNT}/*"
    # The key lets CloudTrail use it, for this trail only.
    key_doc = policy_doc(named["governance-key"])
    trail_statements = [s for s in statements(key_doc) if s.get("Principal") == service]
    assert {a for s in trail_statements for a in s["Action"]} == {"kms:GenerateDataKey", "kms:DescribeKey"}
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn for s in trail_statements)


def test_without_audit_logs_there_is_no_trail_and_no_cloudtrail_access(no_audit):
    assert not resources_of(no_audit, "aws:cloudtrail/trail:Trail")
    for where, doc in every_known_policy(no_audit):
        assert "cloudtrail" not in json.dumps(doc), where


def test_outputs_name_the_buckets(rich):
    storage = rich["outputs"]["storage"]
    assert storage["artifacts_uri"] == "s3://" + by_name(rich)["storage-bucket-artifacts"]["inputs"]["bucket"]
    assert storage["bucket_uris"] == {
        b: "s3://" + by_name(rich)[f"storage-bucket-{b}"]["inputs"]["bucket"] for b in ("features", "raw", "scratch")
    }
    # Training runs as each model group's identity (see the grants tests), not a stack-wide one.
    assert set(rich["outputs"]["governance"]["identities"]) == {"serving", "automation"}


# --- names and determinism --------------------------------------------------------
def test_physical_names_keep_the_cloud_rules(all_plans):
    rules = name_rules()
    seen = 0
    for plan in all_plans:
        for r in plan["resources"]:
            if r["type"] not in NAME_INPUTS:
                continue
            field, kind = NAME_INPUTS[r["type"]]
            name = r["inputs"][field]
            assert rules[kind].accepts(name), (kind, name)
            seen += 1
            if kind == "aws.s3.bucket":
                assert ".." not in name and not name.startswith(("xn--", "sthree-"))
                assert not name.endswith(("-s3alias", "--ol-s3"))
            if kind == "aws.cloudtrail.trail":
                assert not re.search(r"[._-]{2}", name)
    assert seen >= 4 * 9


def test_long_hyphen_heavy_names_are_truncated_with_a_hash(long_names):
    names = [b["inputs"]["bucket"] for b in resources_of(long_names, "aws:s3/bucket:Bucket")]
    assert len(set(names)) == 3 and all(len(n) <= 63 for n in names)
    long_one = by_name(long_names)["storage-bucket-x-really-long-bucket-name-here-x"]["inputs"]["bucket"]
    full = "a-very-long-project-name-production-east1-x-really-long-bucket-name-here-x"
    suffix = f"-{ACCOUNT}-us-east-1-an"
    assert long_one.endswith(suffix)
    body, digest = long_one.removesuffix(suffix).rsplit("-", 1)
    assert re.fullmatch(r"[0-9a-f]{6}", digest) and full.startswith(body) and len(long_one) >= 60
    roles = [r["inputs"]["name"] for r in resources_of(long_names, "aws:iam/role:Role")]
    assert len(set(roles)) == 2 and all(len(n) <= 64 for n in roles)


def test_logical_names_follow_spec_names_not_positions(rich):
    reordered = copy.deepcopy(RICH)
    reordered["storage"]["buckets"].reverse()
    assert plan_for("aws", reordered)["resources"] == rich["resources"]


def test_the_same_spec_plans_to_the_same_document(rich):
    assert json.dumps(plan_for("aws", RICH), sort_keys=True) == json.dumps(rich, sort_keys=True)


def test_names_depend_on_the_region():
    east = BACKEND.namer(spec_from(RICH), spec_from(RICH).clouds.aws)
    west_spec = spec_from(RICH, clouds={"aws": {"region": "eu-west-1", "account_id": ACCOUNT}})
    west = BACKEND.namer(west_spec, west_spec.clouds.aws)
    assert bucket_name(east, "raw") != bucket_name(west, "raw")
    assert role_name(east, "training", "us-east-1") != role_name(west, "training", "eu-west-1")
    assert set(STYLES) <= set(name_rules())


# --- policies (pure) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"),
     ("us-isob-east-1", "aws-iso-b")],
)
def test_partition_comes_from_the_region(region, partition):
    assert policies.partition_of(region) == partition
    assert policies.bucket_arn(partition, "b") == f"arn:{partition}:s3:::b"


def test_key_use_policy_is_explicit():
    (s,) = statements(policies.key_use_policy("arn:aws:kms:us-east-1:111122223333:key/k"))
    assert s["Resource"] == "arn:aws:kms:us-east-1:111122223333:key/k"
    assert set(s["Action"]) == {
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    }


def test_data_reads_merge_prefixes():
    spec = spec_from(
        RICH,
        models=[
            {"name": "ma", "training": {"image": IMAGE, "compute": {"size": "cpu-small"},
                                        "inputs": [{"bucket": "features", "prefix": "x/"},
                                                   {"bucket": "features", "prefix": "x/y/"}]},
             "retraining": {"on_new_data": {"bucket": "raw", "prefix": "new/"}}},
            {"name": "mb", "training": {"image": IMAGE, "compute": {"size": "cpu-small"}, "inputs": ["raw"]}},
        ],
    )
    assert data_reads(spec) == {"features": ["x/"], "raw": [""]}


# --- catalog ----------------------------------------------------------------------
@pytest.mark.parametrize("purpose", catalog.PURPOSES)
@pytest.mark.parametrize("size", sorted(SIZE_CLASSES))
def test_every_size_class_maps_to_an_accepted_type_that_fits(purpose, size):
    chosen = catalog.instance_type(Compute(size=size), purpose)
    assert chosen in catalog.types_for(purpose)
    spec, need = catalog.spec_of(chosen), SIZE_CLASSES[size]
    assert spec.cpus >= need["cpus"] and spec.memory_gib >= need["memory_gib"] and spec.gpus >= need["gpus"]
    assert bool(spec.gpus) == bool(need["gpus"])


def test_size_classes_use_the_purpose_lists():
    assert catalog.instance_type(Compute(size="gpu-x8"), "training") == "ml.p4d.24xlarge"
    assert "ml.p4d.24xlarge" not in catalog.types_for("processing")
    assert catalog.instance_type(Compute(size="gpu-x8"), "processing") == "ml.g5.48xlarge"
    assert "ml.t3.medium" in catalog.types_for("training") and "ml.t3.medium" not in catalog.types_for("serving")


def test_catalog_specs_are_sagemaker_types():
    every = set().union(*(catalog.types_for(p) for p in catalog.PURPOSES))
    assert set(catalog.INSTANCE_SPECS) <= every


@pytest.mark.parametrize(
    ("compute", "purpose", "expected"),
    [
        (dict(cpus=2, memory_gib=4), "serving", "ml.c5.large"),
        (dict(cpus=2, memory_gib=4), "training", "ml.m5.large"),  # ml.c5.large cannot train
        (dict(cpus=4, memory_gib=32), "training", "ml.r5.xlarge"),
        (dict(cpus=3, memory_gib=10), "processing", "ml.m5.xlarge"),
        (dict(cpus=4, memory_gib=16, gpus=1), "serving", "ml.g4dn.xlarge"),
        (dict(cpus=4, memory_gib=16, gpus=2), "training", "ml.g4dn.12xlarge"),
        (dict(cpus=64, memory_gib=1000, gpus=8), "training", "ml.p4d.24xlarge"),
        (dict(cpus=100, memory_gib=16), "training", None),  # CPU-only never lands on a GPU type
    ],
)
def test_explicit_requirements_pick_the_smallest_fit(compute, purpose, expected):
    if expected is None:
        with pytest.raises(CatalogMiss):
            catalog.instance_type(Compute(**compute), purpose)
    else:
        assert catalog.instance_type(Compute(**compute), purpose) == expected


def test_catalog_miss_names_the_cloud_and_the_class():
    with pytest.raises(CatalogMiss) as miss:
        catalog.instance_type(Compute(cpus=8, memory_gib=32, gpus=16), "training", spec_from(RICH).clouds.aws)
    assert "AWS" in miss.value.message and "8 cpus / 32 GiB / 16 gpus" in miss.value.message
    assert "us-east-1" in miss.value.message
    assert "instance_count" in miss.value.hint and "training_instance_type" in miss.value.hint
    with pytest.raises(CatalogMiss) as miss:
        catalog.instance_type(Compute(cpus=8, memory_gib=2048), "serving")
    assert "serving_instance_type" in miss.value.hint and "instance_count" not in miss.value.hint
    with pytest.raises(ValueError):
        catalog.instance_type(Compute(size="cpu-small"), "inference")


def test_check_override():
    assert catalog.check_override("ml.g5.2xlarge", "training") is None
    assert catalog.check_override("ml.t2.medium", "serving") is None
    message = catalog.check_override("ml.m5.larg", "training")
    assert "ml.m5.large" in message and "did you mean" in message
    message = catalog.check_override("ml.t3.medium", "serving")
    assert "real-time endpoints" in message and "training jobs" in message
    assert "did you mean" not in (catalog.check_override("m5", "serving") or "did you mean")


# --- backend.check ----------------------------------------------------------------
# RICH monitors drift: `check` always notes where Model Monitor reads the baseline (a warning,
# tested in tests/test_monitoring_aws.py); the checks below are about everything else.
BASELINE_NOTE = ("models", 0, "monitoring", "drift", "baseline")


def problems_of(data: dict[str, Any], **changes: Any) -> dict[tuple, Any]:
    spec = spec_from(data, **changes)
    return {p.path: p for p in BACKEND.check(spec, spec.clouds.aws) if p.path != BASELINE_NOTE}


def test_check_accepts_the_rich_spec():
    assert problems_of(RICH) == {}
    assert problems_of(BASE) == {}


def test_check_reports_override_problems_with_their_paths():
    overrides = {
        "churn-clasifier": {"training_instance_type": "ml.m5.large"},
        "churn-classifier": {"training_instance_type": "ml.m5.larg", "serving_instance_type": "ml.t3.medium"},
    }
    found = problems_of(RICH, clouds={"aws": {"region": "us-east-1", "account_id": ACCOUNT,
                                              "overrides": {"models": overrides}}})
    base = ("clouds", "aws", "overrides", "models")
    unknown = found.pop((*base, "churn-clasifier"))
    assert unknown.severity == "error" and "churn-classifier" in unknown.hint
    bad_training = found.pop((*base, "churn-classifier", "training_instance_type"))
    assert bad_training.severity == "error" and "ml.m5.large" in bad_training.message
    bad_serving = found.pop((*base, "churn-classifier", "serving_instance_type"))
    assert bad_serving.severity == "error" and bad_serving.value == "ml.t3.medium"
    assert found == {}


def test_check_warns_about_overrides_without_effect_or_too_small():
    data = copy.deepcopy(RICH)
    data["models"].append({"name": "scorer", "serving": {"image": IMAGE, "compute": {"size": "gpu-small"}}})
    overrides = {"scorer": {"training_instance_type": "ml.m5.large", "serving_instance_type": "ml.m5.large"}}
    found = problems_of(data, clouds={"aws": {"region": "us-east-1", "account_id": ACCOUNT,
                                              "overrides": {"models": overrides}}})
    base = ("clouds", "aws", "overrides", "models", "scorer")
    assert found[(*base, "training_instance_type")].severity == "warning"
    small = found[(*base, "serving_instance_type")]
    assert small.severity == "warning" and "0 < 1 GPUs" in small.message
    assert len(found) == 2


def test_check_reports_compute_the_catalog_cannot_serve():
    data = copy.deepcopy(RICH)
    data["models"][0]["training"]["compute"] = {"cpus": 8, "memory_gib": 32, "gpus": 16}
    data["models"][0]["serving"]["compute"] = {"cpus": 8, "memory_gib": 2048}
    found = problems_of(data)
    training = found.pop(("models", 0, "training", "compute"))
    assert training.severity == "error" and "AWS" in training.message and training.value == "8 cpus / 32 GiB / 16 gpus"
    # Serving has an override (ml.c5.xlarge): the catalog is not asked, the shortfall is a warning.
    small = found.pop(("clouds", "aws", "overrides", "models", "churn-classifier", "serving_instance_type"))
    assert small.severity == "warning" and "8 < 2048 GiB" in small.message
    assert found == {}
    data["clouds"]["aws"]["overrides"] = {"models": {"churn-classifier": {"training_instance_type": "ml.p5.48xlarge"}}}
    found = problems_of(data)
    override = ("clouds", "aws", "overrides", "models", "churn-classifier", "training_instance_type")
    assert set(found) == {("models", 0, "serving", "compute"), override}
    assert found[override].severity == "warning"  # ml.p5.48xlarge has 8 GPUs, not 16


def test_check_reports_other_aws_facts():
    data = copy.deepcopy(RICH)
    data["models"][0]["serving"]["autoscaling"] = {"min_replicas": 0, "max_replicas": 2}
    data["storage"]["buckets"][0]["expire_after_days"] = 120
    found = problems_of(data, governance={"network": "private"})
    assert found.pop(("models", 0, "serving", "autoscaling", "min_replicas")).severity == "error"
    assert found.pop(("storage", "buckets", 0, "expire_after_days")).severity == "warning"
    assert ("governance", "network") not in found  # a private network is built, not warned about
    # max_replicas 2 without a target: nothing would ever scale out.
    assert found.pop(("models", 0, "serving", "autoscaling")).severity == "warning"
    assert found == {}


def test_check_reports_a_group_identity_iam_would_reject():
    """Models of one group share one role: a group reading too many prefixes is refused, located at
    its first model's group, while the same models in groups of their own fit."""
    buckets = [{"name": f"bucket-{i}"} for i in range(40)]
    plain = {"aws": {"region": "us-east-1", "account_id": ACCOUNT}}  # no overrides: they name other models

    def model(m: int, group: str | None) -> dict[str, Any]:
        inputs = [{"bucket": f"bucket-{(m * 20 + j) % 40}", "prefix": f"model-{m}/input-{j}/"} for j in range(20)]
        found = {"name": f"model-{m}", "training": {"image": IMAGE, "compute": {"size": "cpu-small"}, "inputs": inputs}}
        return found | ({"group": group} if group else {})

    grouped = problems_of(RICH, storage={"buckets": buckets}, models=[model(m, "team") for m in range(6)], clouds=plain)
    (problem,) = grouped.values()
    assert problem.path == ("models", 0, "group") and problem.severity == "error"
    assert "model group 'team'" in problem.message and "churn-dev-team-jobs-us-east-1" in problem.message
    assert "10240 characters (https://docs.aws.amazon.com/IAM/" in problem.message
    assert "6 models" in problem.hint and "models[].group" in problem.hint
    assert problems_of(RICH, storage={"buckets": buckets}, models=[model(m, None) for m in range(6)], clouds=plain) == {}


# --- backend facts ----------------------------------------------------------------
def test_every_stage_is_supported():
    # This round's lifecycle stages are declared with a reason until they land (test_contract.py).
    assert set(BACKEND.unsupported) <= {"batch", "data_prep", "features", "workspaces", "explainability"}
    assert all(BACKEND.supports(s) for s in ("governance", "storage", "registry", "tracking", "training", "serving",
                                             "monitoring", "retraining"))


def test_mock_call_answers_every_invoke_without_a_cloud():
    identity = BACKEND.mock_call("aws:index/getCallerIdentity:getCallerIdentity", {})
    assert identity["accountId"] == UNKNOWN
    assert BACKEND.mock_call("aws:index/getPartition:getPartition", {})["partition"] == "aws"
    assert BACKEND.mock_call("aws:index/getRegion:getRegion", {"region": "eu-west-1"})["region"] == "eu-west-1"


def test_importing_the_backend_and_checking_loads_no_sdk():
    code = (
        "import json, sys; from tests.planning import spec_from; from mlops_infra.backends.aws import BACKEND;"
        f"s = spec_from(json.loads({json.dumps(json.dumps(RICH))})); "
        f"assert [p.path for p in BACKEND.check(s, s.clouds.aws)] == [{BASELINE_NOTE!r}];"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'boto3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plan_shows_ordering_dependencies():
    plan = plan_for("aws")
    policy = next(r for r in plan["resources"] if r["name"] == "storage-policy-raw")
    assert policy["depends_on"] == ["storage-ownership-raw", "storage-publicaccess-raw"]
    trail = next(r for r in plan["resources"] if r["type"] == "aws:cloudtrail/trail:Trail")
    assert set(trail["depends_on"]) >= {"storage-policy-artifacts", "storage-encryption-artifacts"}
