"""AWS tenancy: several stacks in one account, names unique across organizations, the account id."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import BACKEND
from mlops_infra.backends.aws.backend import ACCOUNT_SETTING_TYPES
from mlops_infra.errors import SpecInvalid, UsageError
from mlops_infra.plan import UNKNOWN, plan_document
from mlops_infra.spec.validate import check_file, check_text
from tests.fleet import fleet_spec
from tests.planning import ROOT

ACCOUNT = "123456789012"
ENVIRONMENTS = ("dev", "staging", "prod")


def tenant_spec(environment: str, *, account: str = ACCOUNT, region: str = "us-east-1") -> dict[str, Any]:
    """One tenant's environment: three models with training, serving, drift and retraining."""
    data = fleet_spec(3, environment=environment)
    data["cloud"] = "aws"
    data["clouds"] = {"aws": {"region": region, "account_id": account}}
    data["tracking"] = {"enabled": True}
    return data


def physical_names(plan: dict[str, Any]) -> set[str]:
    """Every physical name the plan gives AWS (the inputs Backend.physical_name_inputs lists)."""
    return {
        value
        for r in plan["resources"]
        for key, value in r["inputs"].items()
        if key in BACKEND.physical_name_inputs and isinstance(value, str) and value != UNKNOWN
    }


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, dict[str, Any]]]:
    """dev, staging and prod of one project in one account and region, validated side by side."""
    folder = tmp_path_factory.mktemp("stacks")
    for environment in ENVIRONMENTS:
        (folder / f"{environment}.yaml").write_text(yaml.safe_dump(tenant_spec(environment), sort_keys=False))
    found = {}
    for environment in ENVIRONMENTS:
        checked = check_file(folder / f"{environment}.yaml", clouds=["aws"])
        found[environment] = (checked, plan_document(checked.spec, "aws", stack=environment))
    return found


def test_dev_staging_and_prod_in_one_account_share_no_name(tenant) -> None:
    names = {environment: physical_names(plan) for environment, (_, plan) in tenant.items()}
    assert all(len(found) > 50 for found in names.values())
    for first in ENVIRONMENTS:
        for second in ENVIRONMENTS:
            if first < second:
                assert not names[first] & names[second], (first, second, names[first] & names[second])


def test_no_stack_claims_an_account_level_object(tenant) -> None:
    for environment, (checked, plan) in tenant.items():
        assert BACKEND.singletons(checked.spec, checked.spec.clouds.aws) == []
        assert not {r["type"] for r in plan["resources"]} & ACCOUNT_SETTING_TYPES, environment
        # Every spec owns its singletons (the default), and none is refused or warned about.
        assert not [w for w in checked.warnings if w.path == ("governance", "singletons")]


def test_the_type_list_names_real_account_settings() -> None:
    import importlib

    for token in ACCOUNT_SETTING_TYPES:
        _, path, name = token.split(":")
        assert hasattr(importlib.import_module(f"pulumi_aws.{path.split('/')[0]}"), name), token


def test_examples_plan_no_account_level_object() -> None:
    from tests.planning import example_plan

    for stack in ("dev", "prod"):
        assert not {r["type"] for r in example_plan(stack, "aws")["resources"]} & ACCOUNT_SETTING_TYPES


# --- names unique across organizations -------------------------------------------------------
def test_two_organizations_with_the_same_project_get_their_own_bucket_names() -> None:
    ours, theirs = (check_text(yaml.safe_dump(tenant_spec("prod", account=a)), "prod.yaml", clouds=["aws"]).spec
                    for a in (ACCOUNT, "210987654321"))
    buckets = {}
    for spec in (ours, theirs):
        plan = plan_document(spec, "aws", stack="prod")
        buckets[spec.clouds.aws.account_id] = {
            r["inputs"]["bucket"] for r in plan["resources"] if r["type"] == "aws:s3/bucket:Bucket"}
    assert not buckets[ACCOUNT] & buckets["210987654321"]
    for account, names in buckets.items():
        assert all(n.endswith(f"-{account}-us-east-1-an") and len(n) <= 63 for n in names)


def test_the_provider_refuses_other_accounts_credentials(tenant) -> None:
    _, plan = tenant["prod"]
    (provider,) = [r for r in plan["resources"] if r["type"] == "pulumi:providers:aws"]
    assert json.loads(provider["inputs"]["allowedAccountIds"]) == [ACCOUNT]


def test_a_region_without_an_account_namespace_warns_and_names_globally() -> None:
    data = tenant_spec("prod", region="me-south-1")  # Bahrain: Model Monitor, no account namespace
    checked = check_text(yaml.safe_dump(data, sort_keys=False), "prod.yaml", clouds=["aws"])
    (warning,) = [w for w in checked.warnings if w.path == ("clouds", "aws", "region")]
    assert "global namespace" in warning.message and "any account" in warning.message
    assert "gpbucketnamespaces" in warning.message and warning.line is not None
    plan = plan_document(checked.spec, "aws", stack="prod")
    for bucket in (r for r in plan["resources"] if r["type"] == "aws:s3/bucket:Bucket"):
        assert bucket["inputs"]["bucketNamespace"] == "global"
        assert bucket["inputs"]["bucket"].endswith(f"-{ACCOUNT}-me-south-1")


# --- the account id ----------------------------------------------------------------------------
def spec_text(aws: str) -> str:
    return (ROOT / "stacks" / "dev.yaml").read_text().replace(
        _aws_block(), f"  aws:\n{aws}", 1)


def _aws_block() -> str:
    text = (ROOT / "stacks" / "dev.yaml").read_text()
    start = text.index("  aws:\n")
    end = text.index("  gcp:\n")
    return text[start:end]


def test_a_missing_account_id_is_a_located_error_with_a_hint() -> None:
    with pytest.raises(SpecInvalid) as invalid:
        check_text(spec_text("    region: us-east-1\n"), "dev.yaml", clouds=["aws"])
    (problem,) = invalid.value.problems
    assert problem.path == ("clouds", "aws", "account_id") and problem.line is not None
    assert "S3 bucket names" in problem.message
    assert 'account_id: "123456789012"' in problem.hint and "get-caller-identity" in problem.hint
    # Needed only where AWS is a target: the same spec plans on GCP without it.
    check_text(spec_text("    region: us-east-1\n"), "dev.yaml", clouds=["gcp"])


@pytest.mark.parametrize(("value", "words"), [
    ("123456789012", "quoted string"),  # unquoted: YAML reads a number
    ('"12345"', "is not in the accepted form"),
    ('"12345678901a"', "is not in the accepted form"),
])
def test_a_malformed_account_id_is_refused(value: str, words: str) -> None:
    with pytest.raises(SpecInvalid) as invalid:
        check_text(spec_text(f"    region: us-east-1\n    account_id: {value}\n"), "dev.yaml", clouds=["aws"])
    (problem,) = invalid.value.problems
    assert problem.path == ("clouds", "aws", "account_id") and words in problem.message


def test_a_program_without_an_account_id_stops_before_any_resource() -> None:
    data = copy.deepcopy(tenant_spec("dev"))
    del data["clouds"]["aws"]["account_id"]
    from mlops_infra.spec.models import spec_model

    with pytest.raises(UsageError) as missing:
        plan_document(spec_model().model_validate(data), "aws", stack="dev")
    assert "clouds.aws.account_id" in missing.value.message


def test_stacks_folder_examples_name_the_account() -> None:
    for stack in ("dev", "prod"):
        raw = yaml.safe_load((ROOT / "stacks" / f"{stack}.yaml").read_text())
        assert len(raw["clouds"]["aws"]["account_id"]) == 12
