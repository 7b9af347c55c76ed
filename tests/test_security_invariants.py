"""Secure by default on every cloud, for every example: what a reviewer would check by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops_infra.policy.facts import facts_for
from tests.planning import CLOUDS, example_plan


ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.stem for p in (ROOT / "stacks").glob("*.yaml"))

# What holds data or guards it, per cloud: the policy rules' facts (backends/<cloud>/policy_facts.py).
STATEFUL = {cloud: facts_for(cloud).stateful for cloud in CLOUDS}
BROAD_ROLES = re.compile(r"roles/(owner|editor|viewer)\b|roles/storage\.admin|roles/cloudkms\.admin", re.I)
# Built-in Azure roles that grant everything: Owner, Contributor, User Access Administrator.
AZURE_BROAD = {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c", "18d7d88d-bdd0-40e5-a4ae-bfc1a6aa0d5b"}


@pytest.fixture(scope="module", params=[(s, c) for s in STACKS for c in CLOUDS], ids=lambda p: f"{p[0]}-{p[1]}")
def plan(request: pytest.FixtureRequest) -> dict:
    stack, cloud = request.param
    return example_plan(stack, cloud)


def test_stateful_resources_are_protected(plan: dict) -> None:
    stateful = [r for r in plan["resources"] if r["type"] in STATEFUL[plan["cloud"]]]
    assert stateful, "the plan has no stateful resources to check"
    assert all(r["protect"] for r in stateful), [r["name"] for r in stateful if not r["protect"]]


def test_no_wildcard_actions_public_principals_or_broad_roles(plan: dict) -> None:
    text = json.dumps(plan["resources"])
    statements = [
        (resource["name"], statement)
        for resource in plan["resources"]
        for document in _policy_documents(resource["inputs"])
        for statement in _as_list(document.get("Statement"))
    ]
    for name, statement in statements:
        if statement.get("Effect") != "Allow":
            continue  # a Deny may (and, for TLS-only, must) use wildcards
        for action in _as_list(statement.get("Action")) + _as_list(statement.get("NotAction")):
            assert "*" not in action, f"{name} allows a wildcard action {action}"
        assert "NotAction" not in statement and "NotResource" not in statement, name
        principal = statement.get("Principal")
        if principal is not None:
            values = [principal] if isinstance(principal, str) else [v for vs in principal.values() for v in _as_list(vs)]
            assert "*" not in values, f"{name} allows a public principal"
    assert "allUsers" not in text and "allAuthenticatedUsers" not in text
    assert not BROAD_ROLES.search(text)
    assert not any(guid in text for guid in AZURE_BROAD)


def test_tls_only_is_enforced_where_the_cloud_needs_a_policy(plan: dict) -> None:
    if plan["cloud"] != "aws":
        pytest.skip("GCS and Azure Storage enforce TLS on the service itself (checked in the backend tests)")
    buckets = [r for r in plan["resources"] if r["type"] == "aws:s3/bucket:Bucket"]
    policies = {r["inputs"]["bucket"]: r for r in plan["resources"] if r["type"] == "aws:s3/bucketPolicy:BucketPolicy"}
    for bucket in buckets:
        policy = policies[bucket["inputs"]["bucket"]]
        denies = [s for d in _policy_documents(policy["inputs"]) for s in _as_list(d["Statement"]) if s["Effect"] == "Deny"]
        assert any(
            s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in denies
        ), bucket["name"]


def _policy_documents(inputs: dict) -> list[dict]:
    documents = []
    for value in _strings(inputs):
        if value.lstrip().startswith("{") and '"Statement"' in value:
            documents.append(json.loads(value))
    return documents


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# Where a type's `labels` input is configuration, not tags: its tags live elsewhere, or nowhere.
TAG_FIELD = {
    "gcp:monitoring/notificationChannel:NotificationChannel": "userLabels",  # labels = channel settings
    "gcp:monitoring/metricDescriptor:MetricDescriptor": None,  # labels = the metric's label schema
}


def _tag_holder(inputs: dict) -> dict:
    # A Kubernetes object's tags are its metadata's labels; every other resource's are top-level inputs.
    metadata = inputs.get("metadata")
    return metadata if isinstance(metadata, dict) else inputs


def test_every_taggable_resource_is_tagged(plan: dict) -> None:
    tagged = [r for r in plan["resources"] if {"tags", "labels", "metadata"} & set(r["inputs"])]
    assert tagged
    for resource in tagged:
        holder = _tag_holder(resource["inputs"])
        field = TAG_FIELD.get(resource["type"], "tags" if "tags" in holder else "labels")
        if field is None:
            continue
        tags = holder.get(field)
        assert isinstance(tags, dict), f"{resource['name']} has no {field}"
        assert tags.get("managed-by") == "mlops-infra", resource["name"]
        assert tags.get("owner") == "ml-platform", resource["name"]


def test_names_unique_and_outputs_present(plan: dict) -> None:
    names = [r["name"] for r in plan["resources"]]
    assert len(names) == len(set(names))
    assert plan["outputs"]["governance"]["key_id"]
    assert plan["outputs"]["storage"]["artifacts_uri"]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
