"""`mlops-infra check`: the built-in invariants, policy files, and the same rules as a policy pack."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from mlops_infra.cli import main
from mlops_infra.policy.check import plan_resources
from mlops_infra.policy.facts import facts_for
from mlops_infra.policy.rules import BUILTIN
from mlops_infra.spec.validate import check_text
from tests.planning import CLOUDS, ROOT, example_plan

DEV = ROOT / "stacks" / "dev.yaml"


def _first(resources: list[dict], type_: str) -> dict:
    return next(r for r in resources if r["type"] == type_)


def _drop(resources: list[dict], type_: str) -> list[dict]:
    return [r for r in resources if r["type"] != type_]


def _grant(resources: list[dict], cloud: str) -> list[dict]:
    victim = {
        "aws": "aws:iam/rolePolicy:RolePolicy",
        "gcp": "gcp:projects/iAMMember:IAMMember",
        "azure": "azure-native:authorization:RoleAssignment",
        "kubernetes": "kubernetes:rbac.authorization.k8s.io/v1:Role",
    }[cloud]
    r = _first(resources, victim)
    if cloud == "kubernetes":
        r["inputs"]["rules"][0]["verbs"] = ["*"]
    elif cloud == "aws":
        r["inputs"]["policy"] = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    elif cloud == "gcp":
        r["inputs"]["role"] = "roles/editor"
    else:
        r["inputs"]["roleDefinitionId"] = "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    return resources


def _unencrypted(resources: list[dict], cloud: str) -> list[dict]:
    if cloud == "aws":
        return _drop(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    if cloud == "gcp":
        del _first(resources, "gcp:storage/bucket:Bucket")["inputs"]["encryption"]
    else:
        _first(resources, "azure-native:storage:StorageAccount")["inputs"]["encryption"]["keySource"] = "Microsoft.Storage"
    return resources


def _public(resources: list[dict], cloud: str) -> list[dict]:
    if cloud == "kubernetes":
        _first(resources, "kubernetes:core/v1:Service")["inputs"]["spec"]["type"] = "LoadBalancer"
    elif cloud == "aws":
        _first(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]["blockPublicPolicy"] = False
    elif cloud == "gcp":
        _first(resources, "gcp:storage/bucket:Bucket")["inputs"]["publicAccessPrevention"] = "inherited"
    else:
        _first(resources, "azure-native:storage:StorageAccount")["inputs"]["allowBlobPublicAccess"] = True
    return resources


def _unprotected(resources: list[dict], cloud: str) -> list[dict]:
    next(r for r in resources if r["type"] in facts_for(cloud).stateful)["protect"] = False
    return resources


def _unaudited(resources: list[dict], cloud: str) -> list[dict]:
    audit_types = {rule.type for rule in facts_for(cloud).audit}
    return [r for r in resources if r["type"] not in audit_types]


BREAK: dict[str, Callable[[list[dict], str], list[dict]]] = {
    "encryption": _unencrypted,
    "no-public-access": _public,
    "no-wildcard-grants": _grant,
    "protected-data": _unprotected,
    "audit-logging": _unaudited,
}


def test_every_builtin_rule_has_a_breaking_case() -> None:
    assert set(BREAK) == set(BUILTIN)


# Rules whose facts a cloud may leave empty: the setting is not the stack's (a cluster's encryption at rest
# and audit policy are its admin's); validate then warns at the spec's path instead.
NOTHING_TO_BREAK = {"encryption": ("encryption", "governance.encryption"), "audit-logging": ("audit", "governance.audit_logs")}


def validation_warnings(cloud: str) -> list[Any]:
    return check_text(DEV.read_text(), str(DEV), clouds=[cloud]).warnings


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("rule", sorted(BUILTIN))
def test_builtin_rule_passes_on_the_example_and_fails_when_broken(rule: str, cloud: str) -> None:
    resources = plan_resources(example_plan("dev", cloud))
    facts = facts_for(cloud)
    assert BUILTIN[rule](resources, facts) == []
    if rule in NOTHING_TO_BREAK and not getattr(facts, NOTHING_TO_BREAK[rule][0]):
        warned = [p.dotted_path for p in validation_warnings(cloud)]
        assert NOTHING_TO_BREAK[rule][1] in warned, warned
        return
    broken = BREAK[rule](copy.deepcopy(resources), cloud)
    findings = BUILTIN[rule](broken, facts)
    assert findings and all(f.rule == rule and f.severity == "mandatory" for f in findings)


def _check(*args: str) -> Any:
    return CliRunner().invoke(main, ["check", *args])


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def test_a_missing_required_tag_fails_located_and_passes_once_added(tmp_path: Path) -> None:
    spec = tmp_path / "dev.yaml"
    spec.write_text(DEV.read_text())
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: mlops-infra/policy/v1\nrequired_tags: [owner, team]\n")
    failed = _check("--spec", str(spec), "--cloud", "aws", "--policy", str(policy), "--json")
    assert failed.exit_code == 1, failed.output
    document = json.loads(failed.stdout)
    assert document["format"] == "mlops-infra/check/v1" and not document["passed"]
    (finding,) = document["findings"]
    assert finding["rule"] == "required_tags" and finding["severity"] == "mandatory" and "'team'" in finding["message"]
    assert finding["file"] == str(spec) and finding["path"] == "tags" and finding["line"] == _line_of(spec, "tags:")
    text = _check("--spec", str(spec), "--cloud", "aws", "--policy", str(policy))
    assert f"{spec}:{finding['line']}: mandatory: [required_tags]" in text.stdout
    spec.write_text(DEV.read_text().replace('  cost-center: "42"', '  cost-center: "42"\n  team: churn'))
    passed = _check("--spec", str(spec), "--cloud", "aws", "--policy", str(policy), "--json")
    assert passed.exit_code == 0 and json.loads(passed.stdout)["passed"]


def _policy(tmp_path: Path, body: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: mlops-infra/policy/v1\n" + body)
    return str(path)


@pytest.mark.parametrize(
    ("body", "rule", "path"),
    [
        ("allowed_regions: {aws: [eu-west-1]}\n", "allowed_regions", "clouds.aws.region"),
        ("allowed_instance_types: {aws: [ml.m5.large]}\n", "allowed_instance_types", "models[0].training.compute"),
        ("max_gpus: 0\nallowed_instance_types: {gcp: [n1-standard-4]}\n", "allowed_instance_types", None),
        ("max_replicas: 2\n", "max_replicas", "models[0].serving.autoscaling.max_replicas"),
        ("network: private\n", "network", "governance.network"),
        ("max_monthly_cost: 10\n", "max_monthly_cost", None),
    ],
)
def test_organization_rules_fail_with_their_location(tmp_path: Path, body: str, rule: str, path: str | None) -> None:
    result = _check("--spec", str(DEV), "--cloud", "aws", "--policy", _policy(tmp_path, body), "--json")
    findings = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == rule]
    if "{gcp:" in body:  # rules for another cloud do not apply to an AWS plan
        assert result.exit_code == 0 and not findings
        return
    assert result.exit_code == 1 and findings
    assert path is None or findings[0]["path"] == path and findings[0]["line"]


def test_gpus_and_allowed_types_pass_when_met(tmp_path: Path) -> None:
    body = "max_gpus: 0\nallowed_instance_types: {aws: [ml.m5.large, ml.m5.2xlarge]}\nmax_replicas: 4\n"
    result = _check("--spec", str(DEV), "--cloud", "aws", "--policy", _policy(tmp_path, body), "--json")
    assert result.exit_code == 0, result.stdout


def test_advisory_findings_only_print(tmp_path: Path) -> None:
    body = "max_monthly_cost: 10\nnetwork: private\nadvisory: [max_monthly_cost, network]\n"
    result = _check("--spec", str(DEV), "--cloud", "aws", "--policy", _policy(tmp_path, body), "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["passed"]
    assert {f["severity"] for f in document["findings"]} == {"advisory"} and document["summary"]["advisory"] == 2


def test_an_invalid_policy_file_is_exit_2_with_every_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: mlops-infra/policy/v1\nmax_gpu: 2\nmax_replicas: 0\nadvisory: [nonsense]\n")
    result = _check("--spec", str(DEV), "--cloud", "aws", "--policy", str(path))
    assert result.exit_code == 2
    assert f"{path}:2:" in result.stderr and "did you mean 'max_gpus'" in result.stderr
    assert f"{path}:3:" in result.stderr and f"{path}:4:" in result.stderr
    assert f"3 problems in {path}" in result.stderr


def test_the_policy_pack_reports_what_the_plain_rules_find(tmp_path: Path) -> None:
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import PolicyResource, PolicyResourceOptions, StackValidationArgs

    from mlops_infra.policy.organization import PolicyFile
    from mlops_infra.policy.pack_adapter import build_policies, load_context, write_context
    from mlops_infra.spec.validate import check_file

    spec = check_file(DEV, clouds=["aws"]).spec
    context = write_context(spec=spec, cloud="aws", policy_files=[_policy(tmp_path, "network: private\n")], directory=tmp_path)
    spec, cloud, policies = load_context(context)
    assert isinstance(policies[0], PolicyFile)
    pack = build_policies(spec=spec, cloud=cloud, policies=policies)
    assert [p.name for p in pack] == [*BUILTIN, "organization-mandatory", "organization-advisory"]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in pack[:-1])

    plan = example_plan("dev", "aws")
    resources = _public(plan_resources(plan), "aws")
    options = PolicyResourceOptions(True, [], None, [], None, [])  # type: ignore[arg-type]
    engine = [
        PolicyResource(r["type"], r["inputs"], f"urn:pulumi:dev::churn::{r['type']}::{r['name']}", r["name"],
                       PolicyResourceOptions(r["protect"], [], None, [], None, []), None, None, [], {})  # type: ignore[arg-type]
        for r in resources
    ]
    engine.append(PolicyResource("pulumi:providers:aws", {}, "urn:p", "aws", options, None, None, [], {}))  # type: ignore[arg-type]
    reported: dict[str, list[tuple[str, str | None]]] = {}
    for policy in pack:
        policy.validate(StackValidationArgs(engine), lambda m, urn=None, name=policy.name: reported.setdefault(name, []).append((m, urn)))
    expected = BUILTIN["no-public-access"](resources, facts_for("aws"))
    urns = {r.name: r.urn for r in engine}
    assert [urn for _, urn in reported["no-public-access"]] == [urns[f.resource] for f in expected if f.resource]
    assert "encryption" not in reported
    assert any("network: private" in m for m, _ in reported["organization-mandatory"])
