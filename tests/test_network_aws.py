"""AWS private networking (governance.network: private): the created network, a brought one,
their validation, and what every stage does with them (backends/aws/governance_network.py)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends.aws import BACKEND, policies
from mlops_infra.backends.aws import governance_network as network
from mlops_infra.backends.aws import training_jobs as jobs
from mlops_infra.cost.estimate import estimate
from mlops_infra.errors import SpecInvalid
from mlops_infra.facts import fact
from mlops_infra.plan import UNKNOWN, plan_document
from mlops_infra.spec.models import spec_model
from mlops_infra.spec.validate import check_file
from tests.planning import ROOT
from tests.test_security_invariants import _as_list, _policy_documents

VPC = "vpc-0a1b2c3d4e5f60718"
SUBNETS = ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60722"]
GROUPS = ["sg-0a1b2c3d4e5f60733"]
BROUGHT = {"vpc_id": VPC, "subnet_ids": SUBNETS, "security_group_ids": GROUPS}
ACCOUNT = "123456789012"
REGION = "eu-west-1"  # prod.yaml's
NETWORK_TYPES = ("aws:ec2/", "aws:vpc/")


def prod(network_block: dict[str, Any] | None = None, **governance: Any) -> dict[str, Any]:
    """stacks/prod.yaml (the richest example) with network: private."""
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    data["governance"] = {**data["governance"], "network": "private", **governance}
    if network_block is not None:
        data["clouds"]["aws"]["network"] = network_block
    return data


@lru_cache(maxsize=None)
def _planned(text: str, part: str | None) -> str:
    return json.dumps(plan_document(spec_model().model_validate(json.loads(text)), "aws", stack="prod", part=part))


def plan(data: dict[str, Any], part: str | None = None) -> dict[str, Any]:
    return json.loads(_planned(json.dumps(data, sort_keys=True), part))


def of_type(plan_: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan_["resources"] if r["type"] == type_]


def named(plan_: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan_["resources"]}


def problems(data: dict[str, Any]) -> dict[tuple, Any]:
    spec = spec_model().model_validate(data)
    return {p.path: p for p in BACKEND.check(spec, spec.clouds.aws)}


def located(tmp_path: Path, data: dict[str, Any]) -> list[Any]:
    """Every problem validate reports for `data` written to a file (errors and warnings)."""
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        checked = check_file(path, clouds=["aws"])
    except SpecInvalid as invalid:
        return [*invalid.problems, *invalid.warnings]
    return list(checked.warnings)


# --- the created network ------------------------------------------------------------------
def test_private_alone_builds_the_network_and_warns_only_about_mlflow():
    found = problems(prod())
    assert ("governance", "network") not in found
    network_warnings = [p for p in found.values() if p.path[0] in ("governance", "clouds", "tracking")]
    # SageMaker's MLflow server takes no VPC: the one network finding left, a documented gap.
    assert [p.path for p in network_warnings] == [("tracking",)]
    assert network_warnings[0].message == BACKEND.gaps["tracking"].reason and not network_warnings[0].has_value
    untracked = prod()
    untracked["tracking"] = {"enabled": False}
    assert ("tracking",) not in problems(untracked)


def test_the_created_vpc_is_private_in_two_zones_with_no_way_to_the_internet():
    resources = plan(prod())["resources"]
    types = {r["type"] for r in resources}
    assert not {t for t in types if "internetGateway" in t or "natGateway" in t or "eip" in t.lower()}
    (vpc,) = [r for r in resources if r["type"] == "aws:ec2/vpc:Vpc"]
    assert vpc["inputs"]["cidrBlock"] == "10.0.0.0/16"
    assert vpc["inputs"]["enableDnsSupport"] is True and vpc["inputs"]["enableDnsHostnames"] is True
    subnets = [r for r in resources if r["type"] == "aws:ec2/subnet:Subnet"]
    assert sorted(s["inputs"]["cidrBlock"] for s in subnets) == ["10.0.0.0/18", "10.0.64.0/18"]
    assert all(s["inputs"]["mapPublicIpOnLaunch"] is False for s in subnets)
    # The zones are the region's (an invoke answered at deploy time), one subnet each.
    assert all(s["inputs"]["availabilityZone"] == UNKNOWN for s in subnets)
    (default,) = [r for r in resources if r["type"] == "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"]
    assert default["inputs"]["ingress"] == [] and default["inputs"]["egress"] == []
    assert len([r for r in resources if r["type"] == "aws:ec2/routeTableAssociation:RouteTableAssociation"]) == 2
    assert not [r for r in resources if r["type"] == "aws:ec2/route:Route"]  # only the gateway endpoint routes


def test_a_custom_block_is_split_into_the_subnets():
    resources = plan(prod({"cidr": "172.20.8.0/22"}))["resources"]
    (vpc,) = [r for r in resources if r["type"] == "aws:ec2/vpc:Vpc"]
    assert vpc["inputs"]["cidrBlock"] == "172.20.8.0/22"
    assert sorted(r["inputs"]["cidrBlock"] for r in resources if r["type"] == "aws:ec2/subnet:Subnet") == [
        "172.20.8.0/24", "172.20.9.0/24"]


def test_endpoints_cover_every_api_the_stack_calls_privately():
    resources = plan(prod())["resources"]
    endpoints = {r["inputs"]["serviceName"]: r for r in resources if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"}
    prefix = f"com.amazonaws.{REGION}."
    assert set(endpoints) == {prefix + s for s in (
        "s3", "sagemaker.api", "sagemaker.runtime", "sts", "logs", "monitoring", "kms", "ecr.api", "ecr.dkr",
        "events")}
    gateway = endpoints[prefix + "s3"]["inputs"]
    assert gateway["vpcEndpointType"] == "Gateway" and len(gateway["routeTableIds"]) == 1
    for name, endpoint in endpoints.items():
        if name == prefix + "s3":
            continue
        inputs = endpoint["inputs"]
        assert inputs["vpcEndpointType"] == "Interface" and inputs["privateDnsEnabled"] is True, name
        assert len(inputs["subnetIds"]) == network.ZONES and len(inputs["securityGroupIds"]) == 1, name


def test_endpoints_follow_what_the_spec_uses():
    data = prod()
    for model in data["models"]:
        model.pop("serving"), model.pop("monitoring"), model.pop("retraining"), model.pop("batch", None)
    # Data preparation and the evaluation gate watch their pipelines' failed runs with rules too.
    prepared = data["models"][0].pop("data_prep")
    gate = data["models"][0]["training"].pop("evaluation")
    services = network.interface_services(spec_model().model_validate(data), REGION)
    assert "sagemaker.runtime" not in services and "events" not in services
    assert {"ecr.api", "ecr.dkr", "sagemaker.api", "sts", "logs", "monitoring", "kms"} <= set(services)
    for stage, value in (("data_prep", prepared), ("evaluation", gate)):
        ruled = copy.deepcopy(data)
        (ruled["models"][0] if stage == "data_prep" else ruled["models"][0]["training"])[stage] = value
        assert "events" in network.interface_services(spec_model().model_validate(ruled), REGION), stage
    data["models"] = []
    assert "ecr.api" not in network.interface_services(spec_model().model_validate(data), REGION)


def test_security_groups_allow_least_access():
    resources = plan(prod({"client_cidrs": ["192.168.16.0/20"]}))["resources"]
    groups = {r["inputs"]["name"]: r for r in resources if r["type"] == "aws:ec2/securityGroup:SecurityGroup"}
    assert set(groups) == {"churn-prod-workloads", "churn-prod-endpoints"}
    # No inline rule: AWS's default allow-all egress is removed, every rule is one of these.
    assert all("ingress" not in g["inputs"] and "egress" not in g["inputs"] for g in groups.values())
    rules = {r["name"].removeprefix("governance-rule-"): r["inputs"] for r in resources
             if r["type"].startswith("aws:vpc/securityGroup")}
    assert set(rules) == {"workloads-from-workloads", "workloads-to-workloads", "workloads-to-endpoints",
                          "workloads-to-s3", "endpoints-from-workloads", "endpoints-from-192-168-16-0-20"}
    for name, rule in rules.items():
        assert rule.get("cidrIpv4") != "0.0.0.0/0" and "cidrIpv6" not in rule, name
        if rule["ipProtocol"] == "-1":
            assert name in ("workloads-from-workloads", "workloads-to-workloads")  # only among themselves
            assert rule["referencedSecurityGroupId"] == rule["securityGroupId"] or UNKNOWN in (
                rule["referencedSecurityGroupId"], rule["securityGroupId"])
        else:
            assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443), name
    assert rules["endpoints-from-192-168-16-0-20"]["cidrIpv4"] == "192.168.16.0/20"
    assert "prefixListId" in rules["workloads-to-s3"]


def test_sagemaker_models_jobs_and_monitoring_run_in_the_vpc_network_isolated():
    data = prod()
    data["models"][0]["training"]["run_on_deploy"] = True
    resources = plan(data)["resources"]
    for model in of_type({"resources": resources}, "aws:sagemaker/model:Model"):
        inputs = model["inputs"]
        assert inputs["enableNetworkIsolation"] is True
        assert len(inputs["vpcConfig"]["subnets"]) == 2 and len(inputs["vpcConfig"]["securityGroupIds"]) == 1
    (job,) = of_type({"resources": resources}, "aws:sagemaker/trainingJob:TrainingJob")
    assert job["inputs"]["enableNetworkIsolation"] is True
    assert len(job["inputs"]["vpcConfig"]["subnets"]) == 2
    (drift,) = of_type({"resources": resources}, "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
    net = drift["inputs"]["networkConfig"]
    assert net["enableNetworkIsolation"] is True and net["enableInterContainerTrafficEncryption"] is True
    assert len(net["vpcConfig"]["subnets"]) == 2


def test_the_pipelines_training_step_carries_the_vpc_config():
    job = jobs.JobValues(
        job_name="churn-prod-m", image="img", role_arn="arn:role", key_arn="arn:key", instance_type="ml.m5.large",
        instance_count=2, volume_encrypted=True, max_runtime=3600, max_wait=None, channels=(),
        output_uri="s3://a/models/m/", checkpoint_uri=None, hyperparameters=(), environment=(), tags=(),
        vpc=(tuple(SUBNETS), tuple(GROUPS)))
    (step,) = jobs.pipeline_definition(job, None)["Steps"]
    request = jobs.training_request(job)
    assert step["Arguments"]["VpcConfig"] == request["VpcConfig"] == {"SecurityGroupIds": GROUPS, "Subnets": SUBNETS}
    assert step["Arguments"]["EnableNetworkIsolation"] is True
    public = jobs.pipeline_definition(jobs.JobValues(**{**job.__dict__, "vpc": None}), None)
    assert "VpcConfig" not in public["Steps"][0]["Arguments"]


def test_acting_resources_wait_for_the_network_paths():
    named_ = named(plan(prod()))
    endpoint = named_["serving-endpoint-churn-classifier"]
    assert {"governance-endpoint-ecr.dkr", "governance-endpoint-s3", "governance-routes-a",
            "governance-rule-workloads-to-s3"} <= set(endpoint["depends_on"])
    pipeline = named_["training-pipeline-churn-classifier"]
    assert "governance-endpoint-sagemaker.api" in pipeline["depends_on"]


# --- a brought network ------------------------------------------------------------------------
def test_a_brought_network_is_used_and_nothing_network_wide_is_created():
    brought = plan(prod(BROUGHT))
    assert not [r for r in brought["resources"] if r["type"].startswith(NETWORK_TYPES)]
    public = json.loads(json.dumps(plan_document(
        spec_model().model_validate(yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())), "aws",
        stack="prod")))
    assert brought["summary"]["total"] == public["summary"]["total"]
    for model in of_type(brought, "aws:sagemaker/model:Model"):
        assert model["inputs"]["vpcConfig"] == {"securityGroupIds": GROUPS, "subnets": SUBNETS}
    # The VpcConfig is part of a model's content name: moving it into the VPC is a new model.
    assert ({m["inputs"]["name"] for m in of_type(brought, "aws:sagemaker/model:Model")}
            .isdisjoint(m["inputs"]["name"] for m in of_type(public, "aws:sagemaker/model:Model")))


def test_buckets_deny_requests_from_outside_the_vpc_except_the_deployer():
    resources = named(plan(prod(BROUGHT)))
    for name in ("storage-policy-raw", "storage-policy-artifacts"):
        (document,) = _policy_documents(resources[name]["inputs"])
        statements = {s["Sid"]: s for s in document["Statement"]}
        assert "DenyInsecureTransport" in statements  # TLS only still holds
        deny = statements["DenyOutsideStackVpc"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
        condition = deny["Condition"]
        assert condition["StringNotEqualsIfExists"] == {"aws:SourceVpc": VPC}
        assert condition["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"}
        exempt = condition["ArnNotLikeIfExists"]["aws:PrincipalArn"]
        # The deploying identity, read at deploy time (unknown offline) ...
        assert exempt[0] == UNKNOWN
        # ... and on the artifact bucket only, the MLflow server's role (it runs in SageMaker's network).
        mlflow = f"arn:aws:iam::{ACCOUNT}:role/churn-prod-mlflow-{REGION}"
        assert (mlflow in exempt) is (name == "storage-policy-artifacts")
    # A created VPC's id is known only after apply: so is then the whole policy.
    created = named(plan(prod()))
    assert created["storage-policy-raw"]["inputs"]["policy"] == UNKNOWN


def test_the_bucket_policy_document_with_and_without_a_network():
    arn = "arn:aws:s3:::b"
    plain = policies.bucket_policy(partition="aws", bucket="b")
    fenced = policies.bucket_policy(partition="aws", bucket="b",
                                    network=policies.NetworkPerimeter(vpc_id=VPC, exempt=("arn:aws:iam::1:role/d",)))
    assert fenced["Statement"][: len(plain["Statement"])] == plain["Statement"]
    (extra,) = fenced["Statement"][len(plain["Statement"]):]
    assert extra["Resource"] == [arn, f"{arn}/*"] and extra["Effect"] == "Deny"


def test_network_grants_are_scoped_to_the_stacks_vpc():
    resources = named(plan(prod(BROUGHT)))
    (serving,) = _policy_documents(resources["serving-grant-serving"]["inputs"])
    statements = {s["Sid"]: s for s in serving["Statement"]}
    vpc_arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"
    describe = statements["DescribeNetwork"]
    assert describe["Resource"] == "*" and all(a.startswith("ec2:Describe") for a in describe["Action"])
    for sid in ("CreateNetworkInterfacesInStackVpc", "ManageNetworkInterfacesInStackVpc"):
        assert statements[sid]["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}, sid
    unconditioned = statements["CreateNetworkInterfaces"]
    assert unconditioned["Action"] == ["ec2:CreateNetworkInterface"]
    assert unconditioned["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
    granted = {a for s in serving["Statement"] for a in _as_list(s["Action"]) if a.startswith("ec2:")}
    assert granted == set(fact("aws", "network", "vpc_execution_role_actions").value)


def test_group_identities_attach_their_jobs_to_the_vpc_and_validate_measures_it():
    spec = spec_model().model_validate(prod(BROUGHT))
    namer = BACKEND.namer(spec, spec.clouds.aws)
    from mlops_infra.backends.aws import governance_grants as grants

    key = policies.key_arn("aws", REGION, ACCOUNT, grants.KEY_ID_PLACEHOLDER)
    documents = grants.managed(spec, namer, spec.clouds.aws, key, ["training", "monitoring"], vpc_id=VPC)
    for purpose, document in documents.items():
        sids = {s.get("Sid") for s in document["Statement"]}
        assert {"CreateNetworkInterfacesInStackVpc", "ManageNetworkInterfacesInStackVpc"} <= sids, purpose
    public = spec_model().model_validate(yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text()))
    assert {b.role: b.inline for b in grants.budgets(spec, namer, spec.clouds.aws)} != {
        b.role: b.inline for b in grants.budgets(public, namer, public.clouds.aws)}  # serving grows


# --- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(("block", "path", "words"), [
    ({**BROUGHT, "vpc_id": "vpc-xyz"}, ("clouds", "aws", "network", "vpc_id"), "accepted form"),
    ({**BROUGHT, "subnet_ids": [SUBNETS[0], "subnet-1"]}, ("clouds", "aws", "network", "subnet_ids", 1),
     "accepted form"),
    ({**BROUGHT, "security_group_ids": ["sg-ZZZZZZZZ"]}, ("clouds", "aws", "network", "security_group_ids", 0),
     "accepted form"),
    ({**BROUGHT, "subnet_ids": SUBNETS[:1]}, ("clouds", "aws", "network", "subnet_ids"), "at least 2 subnets"),
    ({**BROUGHT, "security_group_ids": []}, ("clouds", "aws", "network", "security_group_ids"), "1 to 5"),
    ({**BROUGHT, "security_group_ids": [f"sg-0000000{i}" for i in range(6)]},
     ("clouds", "aws", "network", "security_group_ids"), "1 to 5"),
    ({**BROUGHT, "subnet_ids": [SUBNETS[0], SUBNETS[0]]}, ("clouds", "aws", "network", "subnet_ids"),
     "more than once"),
    ({"subnet_ids": SUBNETS}, ("clouds", "aws", "network", "subnet_ids"), "vpc_id is missing"),
    ({**BROUGHT, "cidr": "10.1.0.0/16"}, ("clouds", "aws", "network", "cidr"), "creates none"),
    ({"cidr": "10.0.0.0/12"}, ("clouds", "aws", "network", "cidr"), "/12 block"),
    ({"cidr": "10.1.0.1/16"}, ("clouds", "aws", "network", "cidr"), "host bits"),
    ({"client_cidrs": ["0.0.0.0/0"]}, ("clouds", "aws", "network", "client_cidrs", 0), "/0 block"),
])
def test_network_settings_errors_are_located(tmp_path: Path, block: dict, path: tuple, words: str):
    found = {p.path: p for p in located(tmp_path, prod(block))}
    problem = found[path]
    assert problem.severity == "error" and words in problem.message, problem
    assert problem.file.endswith("prod.yaml") and problem.line is not None


def test_a_network_block_without_a_private_network_has_no_effect(tmp_path: Path):
    data = prod(BROUGHT)
    data["governance"]["network"] = "public"
    found = {p.path: p for p in located(tmp_path, data)}
    assert found[("clouds", "aws", "network")].severity == "warning"


def test_private_networks_are_refused_where_the_endpoint_names_are_unknown():
    data = prod()
    data["clouds"]["aws"]["region"] = "cn-north-1"
    data["clouds"]["aws"].pop("overrides")
    problem = problems(data)[("governance", "network")]
    assert problem.severity == "error" and "aws-cn" in problem.message
    data["clouds"]["aws"]["network"] = BROUGHT  # a brought VPC has its endpoints: no names needed
    assert ("governance", "network") not in problems(data)


def test_the_valid_brought_form_passes(tmp_path: Path):
    found = located(tmp_path, prod(BROUGHT))
    assert not [p for p in found if p.severity == "error"]
    assert not [p for p in found if p.path[:3] == ("clouds", "aws", "network") or p.path[0] == "governance"]


NETWORK_SIDS = {"DescribeNetwork", "CreateNetworkInterfaces", "CreateNetworkInterfacesInStackVpc",
                "ManageNetworkInterfacesInStackVpc"}


def test_lifecycle_policies_leave_the_vpc_grants_to_the_attached_managed_policies():
    """One model with every lifecycle stage fits its role's inline limit in a private network: the
    batch, data preparation and explainability policies do not repeat the VPC grants its attached
    "training" and "monitoring" policies carry; a group attaching neither keeps them inline."""
    from mlops_infra.backends.aws import batch, lifecycle_grants
    from mlops_infra.backends.aws import governance_grants as grants

    data = prod()
    ltv = data["models"][1]  # served from a given model and scored in batch: no managed policy
    ltv.pop("training"), ltv.pop("registry"), ltv.pop("retraining")
    ltv["serving"]["model_uri"] = "s3://churn-prod-models/ltv/model.tar.gz"
    ltv["batch"] = {"input": {"bucket": "raw", "prefix": "ltv/"}, "output": {"bucket": "scores", "prefix": "ltv/"},
                    "compute": {"size": "cpu-large"}, "schedule": "0 6 * * *"}
    spec = spec_model().model_validate(data)
    settings = spec.clouds.aws
    namer = BACKEND.namer(spec, settings)
    key = policies.key_arn("aws", REGION, ACCOUNT, grants.KEY_ID_PLACEHOLDER)
    limit = grants.limit("role_inline_policies_size").value
    by_group = {g.name: g for g in grants.groups(spec, namer, REGION)}
    full, bare = by_group["churn-classifier"], by_group["ltv-regressor"]
    assert full.purposes == ("training", "monitoring") and bare.purposes == ()
    managed = grants.managed(spec, namer, settings, key, full.purposes)
    assert all(NETWORK_SIDS <= {s["Sid"] for s in managed[p]["Statement"]} for p in full.purposes)
    inline = lifecycle_grants.group_documents(spec, namer, settings, full.models, key)
    assert {s["Sid"] for d in inline for s in d["Statement"]}.isdisjoint(NETWORK_SIDS)
    assert network.grants_of_group(spec, full.name, VPC, REGION) is None
    assert network.grants_of_group(spec, bare.name, VPC, REGION) == VPC
    assert network.grants_of_group(spec, bare.name, None, REGION) is None
    public = spec_model().model_validate({**data, "governance": {**data["governance"], "network": "public"}})
    vpc_part = policies.policy_size(policies.document(network.network_grants(
        partition="aws", region=REGION, account_id=ACCOUNT, vpc_id=network.measured_vpc(settings)))) - \
        policies.policy_size(policies.document([]))
    assert batch.grant_size(spec, namer, settings, list(full.models)) == \
        batch.grant_size(public, namer, public.clouds.aws, list(full.models))
    assert batch.grant_size(spec, namer, settings, list(bare.models)) - \
        batch.grant_size(public, namer, public.clouds.aws, list(bare.models)) >= vpc_part - 4
    budget = next(b for b in grants.budgets(spec, namer, settings) if b.role == full.role)
    assert budget.inline <= limit


# --- invariants, split, cost, determinism ------------------------------------------------------
@pytest.mark.parametrize("block", [None, BROUGHT], ids=["created", "brought"])
def test_security_invariants_hold_in_private_plans(block: dict | None):
    resources = plan(prod(block))["resources"]
    for resource in resources:
        for document in _policy_documents(resource["inputs"]):
            for statement in _as_list(document.get("Statement")):
                if statement.get("Effect") != "Allow":
                    continue
                assert not any("*" in a for a in _as_list(statement.get("Action"))), resource["name"]
                assert statement.get("Principal") != "*", resource["name"]
        tags = resource["inputs"].get("tags")
        if isinstance(tags, dict):
            assert tags.get("managed-by") == "mlops-infra", resource["name"]
    kept = [r for r in resources if r["protect"]]
    assert kept and all(BACKEND.keeps(r["type"], r["inputs"]) for r in kept)
    assert not [r for r in resources if r["type"].startswith(NETWORK_TYPES) and r["protect"]]


def test_model_stacks_of_a_split_spec_get_the_network_from_the_shared_stack():
    data = prod()
    data["split"] = {"enabled": True}
    split = plan(data)
    shared = [r for r in split["resources"] if r["type"] == "aws:ec2/vpc:Vpc"]
    assert [r["part"] for r in shared] == ["shared"]
    models = of_type(split, "aws:sagemaker/model:Model")
    assert models and all(m["part"] != "shared" and len(m["inputs"]["vpcConfig"]["subnets"]) == 2 for m in models)


def test_cost_lists_each_interface_endpoint_per_zone_as_unpriced():
    data = prod()
    spec = spec_model().model_validate(data)
    result = estimate(spec=spec, cloud="aws", document=plan(data)).to_dict(project="churn", stack="prod")
    lines = [u for u in result["unpriced"] if u["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    interfaces = len(network.interface_services(spec, REGION))
    assert len(lines) == interfaces * network.ZONES
    assert all("privatelink" in u["reason"] and u["kind"] == "always_on" for u in lines)
    assert not [u for u in result["unpriced"] if u["type"].startswith(NETWORK_TYPES) and "vpcEndpoint" not in u["type"]]


def test_private_plans_are_deterministic():
    data = prod()
    first = plan_document(spec_model().model_validate(copy.deepcopy(data)), "aws", stack="prod")
    assert json.dumps(first, sort_keys=True) == json.dumps(plan(data), sort_keys=True)
