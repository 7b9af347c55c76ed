"""GCP private networking (governance.network: private): what the created and the brought forms
build, what validate refuses and why, and that the private platform keeps every invariant.

The richest example (stacks/prod.yaml) is planned private three ways: created network (the
perimeter prerequisite acknowledged), a split of it, and a brought network.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.backends.gcp import BACKEND, governance_network
from mlops_infra.backends.gcp.governance_network import OTHER_PROJECT_GAP, PERIMETER_GAP
from mlops_infra.cost.estimate import estimate
from mlops_infra.errors import SpecInvalid
from mlops_infra.plan import dump_plan, plan_document
from mlops_infra.policy.check import plan_resources
from mlops_infra.policy.facts import facts_for
from mlops_infra.policy.rules import BUILTIN
from mlops_infra.spec.validate import check_text
from tests import test_security_invariants as invariants

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "acme-churn-prod"
PERIMETER = "accessPolicies/123456789/servicePerimeters/churn_prod"
BROUGHT = f"projects/{PROJECT}/global/networks/shared-ml"

NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
ROUTE = "gcp:compute/route:Route"
FIREWALL = "gcp:compute/firewall:Firewall"
ZONE = "gcp:dns/managedZone:ManagedZone"
RECORD = "gcp:dns/recordSet:RecordSet"
RANGE = "gcp:compute/globalAddress:GlobalAddress"
PEERING = "gcp:servicenetworking/connection:Connection"
ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
JOB = "gcp:cloudscheduler/job:Job"
TOPIC = "gcp:pubsub/topic:Topic"
TRIGGER = "gcp:eventarc/trigger:Trigger"
WORKFLOW = "gcp:workflows/workflow:Workflow"
WORKBENCH = "gcp:workbench/instance:Instance"
NETWORK_WIDE = {NETWORK, SUBNET, ROUTE, FIREWALL, ZONE, RECORD, RANGE, PEERING}


def _prod(network: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    data["clouds"] = {name: block for name, block in data["clouds"].items() if name in registry()}
    data["governance"] = {**data.get("governance", {}), "network": "private"}
    if network is not None:
        data["clouds"]["gcp"]["network"] = network
    data.update(copy.deepcopy(changes))
    return data


def _checked(data: dict[str, Any]) -> Any:
    return check_text(yaml.safe_dump(data), "prod.yaml", clouds=["gcp"])


def _plan(data: dict[str, Any]) -> dict[str, Any]:
    checked = _checked(data)
    document = plan_document(checked.spec, "gcp", stack="prod", warnings=[w.to_dict() for w in checked.warnings])
    return json.loads(dump_plan(document))


def _problems(data: dict[str, Any]) -> dict[tuple, Any]:
    from tests.planning import spec_from

    spec = spec_from(data)
    return {p.path: p for p in BACKEND.check(spec, spec.settings_for("gcp"))}


@pytest.fixture(scope="module")
def created() -> dict[str, Any]:
    return _plan(_prod({"service_perimeter": PERIMETER}))


@pytest.fixture(scope="module")
def brought() -> dict[str, Any]:
    # Without workspaces: a Workbench instance needs a subnet a brought network does not name,
    # which validate refuses (tests/test_workspaces_gcp.py).
    data = _prod({"network": BROUGHT, "service_perimeter": PERIMETER})
    del data["workspaces"]
    return _plan(data)


def by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def of_type(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == kind]


# --- the richest example, private -----------------------------------------------------------
def test_the_richest_example_plans_private_with_no_network_warning(created: dict[str, Any]) -> None:
    assert not [w for w in created["warnings"] if w["path"].startswith(("governance.network", "clouds.gcp.network"))]
    # Without the perimeter stated, the one network finding is the prerequisite the stack cannot make.
    unacknowledged = _checked(_prod())
    network = [w for w in unacknowledged.warnings if "network" in w.dotted_path]
    assert [w.dotted_path for w in network] == ["clouds.gcp.network.service_perimeter"]
    assert network[0].message == BACKEND.gaps[PERIMETER_GAP].reason
    assert "aiplatform.googleapis.com" in network[0].hint and "storage.googleapis.com" in network[0].hint


def test_the_network_has_no_internet_path(created: dict[str, Any]) -> None:
    (network,) = of_type(created, NETWORK)
    assert network["inputs"]["autoCreateSubnetworks"] is False and network["inputs"]["deleteDefaultRoutesOnCreate"] is True
    (subnet,) = of_type(created, SUBNET)
    assert subnet["inputs"]["privateIpGoogleAccess"] is True and subnet["inputs"]["logConfig"]["flowSampling"] == 0.5
    assert subnet["inputs"]["region"] == "europe-west4" and subnet["inputs"]["ipCidrRange"] == "10.8.0.0/22"
    # The one route leads to the restricted Google APIs VIP (a perimeter is stated), nowhere else.
    (route,) = of_type(created, ROUTE)
    assert route["inputs"]["destRange"] == "199.36.153.4/30" and route["inputs"]["nextHopGateway"] == "default-internet-gateway"
    # No router, NAT, external address or instance but the workspaces' Workbench instances, which
    # sit on the subnet without a public IP: nothing could reach the internet.
    assert not [r for r in created["resources"]
                if re.search(r"router|nat|instance|:address:Address", r["type"], re.I) and r["type"] != WORKBENCH]
    subnet_path = f"projects/{PROJECT}/regions/europe-west4/subnetworks/{subnet['inputs']['name']}"
    workbenches = of_type(created, WORKBENCH)
    assert len(workbenches) == 2  # stacks/prod.yaml's two workspace users
    for workbench in workbenches:
        gce = workbench["inputs"]["gceSetup"]
        assert gce["disablePublicIp"] is True
        assert gce["networkInterfaces"] == [
            {"network": f"projects/{PROJECT}/global/networks/{network['inputs']['name']}", "subnet": subnet_path}
        ]


def test_egress_is_denied_but_for_google_apis_and_the_endpoints(created: dict[str, Any]) -> None:
    rules = {r["inputs"]["name"].rsplit("-", 2)[-2] + "-" + r["inputs"]["name"].rsplit("-", 1)[-1]: r["inputs"]
             for r in of_type(created, FIREWALL)}
    assert all(rule["direction"] == "EGRESS" for rule in rules.values())  # ingress stays at the implied deny
    deny = rules["deny-egress"]
    assert deny["denies"] == [{"protocol": "all"}] and deny["destinationRanges"] == ["0.0.0.0/0"]
    assert deny["priority"] == 65534 and deny["logConfig"]["metadata"] == "INCLUDE_ALL_METADATA"
    apis = rules["google-apis"]
    assert apis["allows"] == [{"protocol": "tcp", "ports": ["443"]}] and apis["destinationRanges"] == ["199.36.153.4/30"]
    endpoints = rules["allow-endpoints"]
    assert endpoints["destinationRanges"] == ["10.8.0.0/22"] and endpoints["priority"] < deny["priority"]
    assert not [r for r in rules.values() if "0.0.0.0/0" in r.get("destinationRanges", []) and r.get("allows")]


def test_google_apis_resolve_to_the_vip_inside_the_network(created: dict[str, Any]) -> None:
    network = of_type(created, NETWORK)[0]["inputs"]["name"]
    zones = {z["inputs"]["dnsName"]: z for z in of_type(created, ZONE)}
    assert set(zones) == {"googleapis.com.", "pkg.dev."}
    for zone in zones.values():
        assert zone["inputs"]["visibility"] == "private"
        assert zone["inputs"]["privateVisibilityConfig"]["networks"] == [
            {"networkUrl": f"projects/{PROJECT}/global/networks/{network}"}
        ]
    records = {(r["inputs"]["name"], r["inputs"]["type"]): r["inputs"]["rrdatas"] for r in of_type(created, RECORD)}
    vip = ["199.36.153.4", "199.36.153.5", "199.36.153.6", "199.36.153.7"]
    assert records == {
        ("restricted.googleapis.com.", "A"): vip,
        ("*.googleapis.com.", "CNAME"): ["restricted.googleapis.com."],
        ("pkg.dev.", "A"): vip,
        ("*.pkg.dev.", "CNAME"): ["pkg.dev."],
    }


def test_without_a_perimeter_the_private_vip_serves() -> None:
    plan = _plan(_prod())
    (route,) = of_type(plan, ROUTE)
    assert route["inputs"]["destRange"] == "199.36.153.8/30"
    assert ("private.googleapis.com.", "A") in {(r["inputs"]["name"], r["inputs"]["type"]) for r in of_type(plan, RECORD)}


def test_custom_jobs_run_peered_into_the_network(created: dict[str, Any]) -> None:
    (reserved,) = of_type(created, RANGE)
    assert reserved["inputs"]["purpose"] == "VPC_PEERING" and reserved["inputs"]["addressType"] == "INTERNAL"
    assert (reserved["inputs"]["address"], reserved["inputs"]["prefixLength"]) == ("10.9.0.0", 16)
    (peering,) = of_type(created, PEERING)
    assert peering["inputs"]["service"] == "servicenetworking.googleapis.com"
    assert peering["inputs"]["reservedPeeringRanges"] == [reserved["inputs"]["name"]]
    network = of_type(created, NETWORK)[0]["inputs"]["name"]
    for workflow in of_type(created, WORKFLOW):
        if workflow["name"].startswith("training-workflow-"):
            spec = _job_spec(workflow)
            assert spec["network"] == (
                '${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_NUMBER") + "/global/networks/' + network + '"}'
            )
            assert spec["reservedIpRanges"] == [reserved["inputs"]["name"]]
            assert "governance-peering" in workflow["dependencies"]["sourceContents"]


def _job_spec(workflow: dict[str, Any]) -> dict[str, Any]:
    source = yaml.safe_load(workflow["inputs"]["sourceContents"])
    (init,) = [step["init"] for step in source["main"]["steps"] if "init" in step]
    (body,) = [a["job_body"] for a in init["assign"] if "job_body" in a]
    return body["jobSpec"]


def test_endpoints_are_private_service_connect_in_the_network(created: dict[str, Any]) -> None:
    network = f"projects/{PROJECT}/global/networks/{of_type(created, NETWORK)[0]['inputs']['name']}"
    endpoints = of_type(created, ENDPOINT)
    assert len(endpoints) == 2
    for endpoint in endpoints:
        psc = endpoint["inputs"]["privateServiceConnectConfig"]
        assert psc["enablePrivateServiceConnect"] is True and psc["projectAllowlists"] == [PROJECT]
        assert psc["pscAutomationConfigs"] == [{"projectId": PROJECT, "network": network}]
        assert "network" not in endpoint["inputs"]


def test_schedules_reach_workflows_through_pubsub_and_eventarc(created: dict[str, Any]) -> None:
    jobs = of_type(created, JOB)
    # Two retraining schedules, one drift schedule, one batch scoring and one data preparation schedule.
    assert sorted(j["stage"] for j in jobs) == ["batch", "data_prep", "monitoring", "retraining", "retraining"]
    topics = {t["inputs"]["name"]: t["inputs"] for t in of_type(created, TOPIC)}
    triggers = [t["inputs"] for t in of_type(created, TRIGGER)]
    automation = by_name(created)["governance-identity-automation"]["inputs"]["accountId"]
    for job in jobs:
        inputs = job["inputs"]
        assert "httpTarget" not in inputs, "no HTTP call to an API from Cloud Scheduler on a private network"
        target = inputs["pubsubTarget"]
        topic = target["topicName"].rsplit("/", 1)[-1]
        assert topics[topic]["kmsKeyName"].endswith("/cryptoKeys/churn-prod-key")
        assert topics[topic]["messageStoragePolicy"] == {"allowedPersistenceRegions": ["europe-west4"]}
        (trigger,) = [t for t in triggers if t["transport"]["pubsub"]["topic"] == target["topicName"]]
        assert trigger["serviceAccount"].startswith(automation + "@")
        assert trigger["destination"]["workflow"].startswith(f"projects/{PROJECT}/locations/europe-west4/workflows/")
        assert json.loads(__import__("base64").b64decode(target["data"]))["trigger"] == "schedule"
    # The Pub/Sub agent's token grant is made once, by governance, and every trigger waits for it.
    grants = [r for r in created["resources"] if r["name"].endswith("token-creator-pubsub-agent")]
    assert [g["name"] for g in grants] == ["governance-token-creator-pubsub-agent"]
    for trigger in of_type(created, TRIGGER):
        assert "governance-token-creator-pubsub-agent" in trigger["depends_on"]


def test_workflows_call_only_google_apis(created: dict[str, Any]) -> None:
    """Workflows in a perimeter may make authenticated calls to Google APIs only: connectors, or
    HTTP with OAuth2 to a googleapis.com host."""
    workflows = of_type(created, WORKFLOW)
    assert workflows
    for workflow in workflows:
        steps = _steps(yaml.safe_load(workflow["inputs"]["sourceContents"]))
        calls = [step for step in steps if "call" in step]
        assert calls
        for step in calls:
            if step["call"].startswith("http."):
                assert re.match(r'^\$\{"https://[a-z0-9-]+\.googleapis\.com/', step["args"]["url"]), step
                assert step["args"]["auth"] == {"type": "OAuth2"}
            else:
                assert step["call"].startswith(("googleapis.", "sys.")), (workflow["name"], step["call"])


def _steps(node: Any) -> list[dict[str, Any]]:
    """Every step body of a Workflows source, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "call" in node and isinstance(node["call"], str):
            found.append(node)
        for value in node.values():
            found += _steps(value)
    elif isinstance(node, list):
        for item in node:
            found += _steps(item)
    return found


def test_the_private_platform_keeps_the_security_invariants(created: dict[str, Any], brought: dict[str, Any]) -> None:
    for plan in (created, brought):
        invariants.test_stateful_resources_are_protected(plan)
        invariants.test_no_wildcard_actions_public_principals_or_broad_roles(plan)
        invariants.test_every_taggable_resource_is_tagged(plan)
        invariants.test_names_unique_and_outputs_present(plan)
        resources = plan_resources(plan)
        for rule in BUILTIN.values():
            assert rule(resources, facts_for("gcp")) == [], rule


def test_network_resources_are_deletable_and_labelled(created: dict[str, Any]) -> None:
    for resource in created["resources"]:
        if resource["type"] in NETWORK_WIDE:
            assert resource["protect"] is False, resource["name"]  # definitions, not data
    for kind in (ZONE, RANGE):
        for resource in of_type(created, kind):
            assert resource["inputs"]["labels"]["managed-by"] == "mlops-infra"


def test_private_plans_are_deterministic() -> None:
    data = _prod({"service_perimeter": PERIMETER})
    assert dump_plan(_plan(data)) == dump_plan(_plan(data))


def test_the_network_crosses_to_split_model_stacks() -> None:
    data = _prod({"service_perimeter": PERIMETER}, split={"enabled": True})
    plan = _plan(data)
    handed = plan["outputs"]["shared"]["handover"]
    assert {"governance.PrivateNetwork.name", "governance.PrivateNetwork.network"} <= set(handed)
    parts = {r["type"]: r["part"] for r in plan["resources"] if r["type"] in NETWORK_WIDE}
    assert set(parts.values()) == {"shared"}
    trained = [w for w in of_type(plan, WORKFLOW) if w["name"].startswith("training-workflow-")]
    assert trained and all(w["part"] != "shared" for w in trained)
    assert all("/global/networks/" in _job_spec(w)["network"] for w in trained)


def test_the_created_network_is_a_project_singleton_when_models_train() -> None:
    from tests.planning import spec_from

    spec = spec_from(_prod())
    keys = {s.key for s in BACKEND.singletons(spec, spec.settings_for("gcp"))}
    assert governance_network.peered_network_key(spec.settings_for("gcp")) in keys
    brought_spec = spec_from(_prod({"network": BROUGHT}))
    assert not [k for k in (s.key for s in BACKEND.singletons(brought_spec, brought_spec.settings_for("gcp")))
                if "network" in k]


def test_cost_prices_the_zones_and_lists_the_rest(created: dict[str, Any]) -> None:
    from tests.planning import spec_from

    result = estimate(spec=spec_from(_prod({"service_perimeter": PERIMETER})), cloud="gcp", document=created)
    zones = [i for i in result.items if i.type == ZONE]
    assert len(zones) == 2 and all(i.table == "cloud-dns" and i.unit == "hour" for i in zones)
    unpriced = {u.type: u for u in result.unpriced}
    assert unpriced[RANGE].kind == "always_on" and unpriced[PEERING].kind == "always_on"
    assert unpriced[NETWORK].kind == "usage" and FIREWALL not in unpriced


# --- the brought form -----------------------------------------------------------------------
def test_a_brought_network_creates_nothing_network_wide(brought: dict[str, Any]) -> None:
    assert not [r["name"] for r in brought["resources"] if r["type"] in NETWORK_WIDE]
    assert not [r for r in brought["resources"] if r["inputs"].get("service") in ("compute.googleapis.com", "dns.googleapis.com")]
    for endpoint in of_type(brought, ENDPOINT):
        automation = endpoint["inputs"]["privateServiceConnectConfig"]["pscAutomationConfigs"]
        assert automation == [{"projectId": PROJECT, "network": BROUGHT}]
    for workflow in of_type(brought, WORKFLOW):
        if workflow["name"].startswith("training-workflow-"):
            spec = _job_spec(workflow)
            assert spec["network"].endswith('+ "/global/networks/shared-ml"}') and "reservedIpRanges" not in spec
    assert not [w for w in brought["warnings"] if "network" in w["path"]]


@pytest.mark.parametrize(
    "given, hint",
    [
        ("shared-ml", f"projects/{PROJECT}/global/networks/ml-network"),
        (f"https://www.googleapis.com/compute/v1/{BROUGHT}", f"give the relative name: {BROUGHT}"),
        (f"projects/{PROJECT}/regions/europe-west4/subnetworks/ml", "gcloud compute networks list"),
        (f"projects/{PROJECT}/global/networks/Shared_ML", "gcloud compute networks list"),
    ],
)
def test_a_brought_network_of_the_wrong_form_is_a_located_error(given: str, hint: str) -> None:
    problem = _problems(_prod({"network": given}))[("clouds", "gcp", "network", "network")]
    assert problem.severity == "error" and problem.value == given and hint in problem.hint


def test_a_network_of_another_project_is_a_gap() -> None:
    problem = _problems(_prod({"network": "projects/acme-host-vpc/global/networks/shared"}))[
        ("clouds", "gcp", "network", "network")
    ]
    gap = BACKEND.gaps[OTHER_PROJECT_GAP]
    assert problem.message == gap.reason and problem.severity == "error" and PROJECT in problem.hint


def test_ranges_have_no_effect_with_a_brought_network() -> None:
    problems = _problems(_prod({"network": BROUGHT, "subnet_range": "10.50.0.0/24"}))
    ranges = problems[("clouds", "gcp", "network", "subnet_range")]
    assert ranges.severity == "warning" and "no effect" in ranges.message
    assert ("clouds", "gcp", "network", "peering_range") not in problems  # left at its default


def test_errors_are_located_in_the_file() -> None:
    data = _prod({"network": "shared-ml"})
    with pytest.raises(SpecInvalid) as raised:
        _checked(data)
    (problem,) = [p for p in raised.value.problems if p.dotted_path == "clouds.gcp.network.network"]
    assert problem.file == "prod.yaml" and problem.line is not None and problem.line > 1


# --- created-form settings and the rest of validate ---------------------------------------
@pytest.mark.parametrize(
    "network, field, words",
    [
        ({"subnet_range": "10.8.0.0/33"}, "subnet_range", "CIDR"),
        ({"subnet_range": "10.8.0.1/22"}, "subnet_range", "CIDR"),  # host bits set
        ({"subnet_range": "8.8.8.0/24"}, "subnet_range", "RFC 1918"),
        ({"subnet_range": "10.8.0.0/30"}, "subnet_range", "/29"),
        ({"peering_range": "10.8.0.0/16"}, "peering_range", "overlaps"),
        ({"service_perimeter": "churn_prod"}, "service_perimeter", "accessPolicies/NUMBER"),
    ],
)
def test_created_network_settings_are_checked(network: dict[str, Any], field: str, words: str) -> None:
    problem = _problems(_prod(network))[("clouds", "gcp", "network", field)]
    assert problem.severity == "error" and words in problem.message


def test_a_stack_leaving_singletons_to_another_must_train_in_the_owners_network() -> None:
    data = _prod(governance={"network": "private", "singletons": "external"})
    problem = _problems(data)[("clouds", "gcp", "network", "network")]
    assert problem.severity == "error" and "one network per project and region" in problem.message
    data["clouds"]["gcp"]["network"] = {"network": BROUGHT}
    assert ("clouds", "gcp", "network", "network") not in _problems(data)


def test_network_settings_on_a_public_stack_have_no_effect() -> None:
    data = _prod({"network": BROUGHT, "service_perimeter": PERIMETER}, governance={"network": "public"})
    problems = _problems(data)
    assert {p for p in problems if p[:3] == ("clouds", "gcp", "network")} == {
        ("clouds", "gcp", "network", "network"), ("clouds", "gcp", "network", "service_perimeter")
    }
    assert all(problems[p].severity == "warning" for p in problems if p[:3] == ("clouds", "gcp", "network"))
    assert not of_type(_plan(data), NETWORK)


def test_every_type_of_the_private_plans_has_diff_facts(created: dict[str, Any], brought: dict[str, Any]) -> None:
    facts = BACKEND.resource_facts()
    types = {r["type"] for plan in (created, brought) for r in plan["resources"]
             if r["custom"] and not r["type"].startswith("pulumi:providers:")}
    assert types - set(facts.types) == set()
