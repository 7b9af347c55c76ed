"""Azure private networking (governance.network: private): the managed network, the private endpoints,
the created or brought inbound network, the image copies, and the located errors of clouds.azure.network."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_infra.backends import registry
from mlops_infra.backends.azure import arm_actions, network
from mlops_infra.backends.azure.images import ImageRef, copied_image, needs_copy, parse_image
from mlops_infra.cost.estimate import estimate
from mlops_infra.errors import SpecInvalid
from mlops_infra.plan import plan_document
from mlops_infra.policy.check import findings_for, plan_resources
from mlops_infra.spec.validate import check_text
from tests import test_security_invariants as invariants
from tests.planning import resources_of

ROOT = Path(__file__).resolve().parent.parent
SUB = "22222222-2222-2222-2222-222222222222"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/hub-net/providers/Microsoft.Network/virtualNetworks/spoke/subnets/ml"
ZONES_GROUP = f"/subscriptions/{SUB}/resourceGroups/hub-dns"
NET = "azure-native:network:"
DNS = "azure-native:privatedns:"
ML = "azure-native:machinelearningservices:"
GRANT = "azure-native:authorization:RoleAssignment"
APPROVER = "b556d68e-0be0-4f35-a333-ad7ee1ce17ea"  # Azure AI Enterprise Network Connection Approver
# The private prod stack's Azure ML workspaces (the stack's and its feature store) and private endpoints.
WORKSPACES = ("storage-workspace", "features-store")
ENDPOINTS = ("storage-endpoint-workspace", "features-endpoint-featurestore", "storage-endpoint-blob", "storage-endpoint-registry")
NETWORK_WIDE = {NET + "VirtualNetwork", NET + "NetworkSecurityGroup", DNS + "PrivateZone", DNS + "VirtualNetworkLink"}


def prod_data() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    data["clouds"] = {"azure": data["clouds"]["azure"]}
    return data


def without_batch(data: dict[str, Any]) -> dict[str, Any]:
    """The spec without models[].batch: on a private network Azure refuses batch's only triggers (the
    schedule's Logic App cannot reach the private workspace; on_new_data is a gap on every network), so a
    private stack declares no batch block (test_private_prod_is_refused_only_for_its_batch_schedule)."""
    data["models"] = [{k: v for k, v in model.items() if k != "batch"} for model in data["models"]]
    return data


def prod_text(network: dict[str, Any] | None = None, *, private: bool = True, **changes: Any) -> str:
    """stacks/prod.yaml (the richest example) with network: private (less what a private Azure stack
    cannot have: without_batch) and an optional clouds.azure.network."""
    data = without_batch(prod_data()) if private else prod_data()
    data["governance"]["network"] = "private" if private else "public"
    if network is not None:
        data["clouds"]["azure"]["network"] = network
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def validate(text: str) -> Any:
    return check_text(text, "prod.yaml", clouds=["azure"])


def plan(text: str, **options: Any) -> dict[str, Any]:
    return plan_document(validate(text).spec, "azure", stack="prod", **options)


def by_name(document: dict, name: str) -> dict:
    return next(r for r in document["resources"] if r["name"] == name)


@pytest.fixture(scope="module")
def created() -> dict:
    return plan(prod_text())


@pytest.fixture(scope="module")
def brought() -> dict:
    return plan(prod_text({"subnet_id": SUBNET, "private_dns_zones": ZONES_GROUP}))


# --- the richest example, private: no network warning, everything private ------------------------------


def test_private_prod_validates_without_a_network_warning() -> None:
    warnings = validate(prod_text()).warnings
    assert not [w for w in warnings if w.path[:2] in {("governance", "network"), ("clouds", "azure")} and "network" in w.message]
    assert not [w for w in warnings if "private endpoint" in w.message or "network: private" in w.message]


def test_private_prod_is_refused_only_for_its_batch_schedule() -> None:
    data = prod_data()
    data["governance"]["network"] = "private"
    with pytest.raises(SpecInvalid) as raised:
        validate(yaml.safe_dump(data, sort_keys=False))
    (problem,) = raised.value.problems
    assert problem.path == ("models", 0, "batch", "schedule") and "private endpoint" in problem.message
    assert problem.line is not None and problem.hint
    # what the other tests plan: the same spec less the batch blocks, and nothing else
    assert [m["name"] for m in data["models"] if "batch" in m] == ["churn-classifier"]
    assert yaml.safe_load(prod_text()) == without_batch(data)


def test_public_access_is_off_on_workspace_storage_vault_registry_and_endpoints(created: dict) -> None:
    workspaces = {w["name"]: w for w in resources_of(created, ML + "Workspace")}
    assert set(workspaces) == set(WORKSPACES)
    (account,) = resources_of(created, "azure-native:storage:StorageAccount")
    (vault,) = resources_of(created, "azure-native:keyvault:Vault")
    (acr,) = resources_of(created, "azure-native:containerregistry:Registry")
    endpoints = resources_of(created, ML + "OnlineEndpoint")
    for workspace in workspaces.values():  # the stack's workspace and its feature store alike
        assert workspace["inputs"]["publicNetworkAccess"] == "Disabled"
        assert workspace["inputs"]["allowPublicAccessWhenBehindVnet"] is False
    assert account["inputs"]["publicNetworkAccess"] == "Disabled"
    assert account["inputs"]["networkRuleSet"]["defaultAction"] == "Deny"
    assert vault["inputs"]["properties"]["publicNetworkAccess"] == "Disabled"
    assert acr["inputs"]["publicNetworkAccess"] == "Disabled" and acr["inputs"]["networkRuleSet"]["defaultAction"] == "Deny"
    # ACR import comes in as a trusted service: the registry admits trusted services only
    assert acr["inputs"]["networkRuleBypassOptions"] == "AzureServices"
    assert len(endpoints) == 2 and all(e["inputs"]["properties"]["publicNetworkAccess"] == "Disabled" for e in endpoints)
    for deployment in resources_of(created, ML + "OnlineDeployment"):
        # the managed network decides egress: Azure asks to leave the flag unset
        assert "egressPublicNetworkAccess" not in deployment["inputs"]["properties"]


def test_the_workspace_has_a_managed_network_with_approved_outbound_only(created: dict) -> None:
    workspaces = {w["name"]: w for w in resources_of(created, ML + "Workspace")}
    assert set(workspaces) == set(WORKSPACES)
    for workspace in workspaces.values():
        assert workspace["inputs"]["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
        assert "outboundRules" not in workspace["inputs"]["managedNetwork"]  # no FQDN rule: no Azure Firewall
    # online deployments need it in place; the feature store's is provisioned with its first compute
    assert workspaces["storage-workspace"]["inputs"]["provisionNetworkNow"] is True
    # drift monitors run on serverless Spark: the managed network is provisioned with it, before them
    (spark,) = resources_of(created, "pulumi-python:dynamic/mlops-infra-azure:ManagedNetworkProvision")
    assert spark["inputs"]["include_spark"] is True and spark["dependencies"]["workspace_id"] == ["storage-workspace"]
    for monitor in (r for r in resources_of(created, ML + "Schedule") if r["name"].startswith("monitoring-drift-")):
        assert spark["name"] in monitor["depends_on"]


def test_the_stack_creates_a_closed_network_for_its_private_endpoints(created: dict) -> None:
    (vnet,) = resources_of(created, NET + "VirtualNetwork")
    (nsg,) = resources_of(created, NET + "NetworkSecurityGroup")
    assert vnet["inputs"]["addressSpace"]["addressPrefixes"] == [network.DEFAULT_ADDRESS_SPACE]
    (subnet,) = vnet["inputs"]["subnets"]
    assert subnet["privateEndpointNetworkPolicies"] == "Enabled" and subnet["defaultOutboundAccess"] is False
    assert vnet["dependencies"]["subnets"] == [nsg["name"]]
    rules = {r["name"]: r for r in nsg["inputs"]["securityRules"]}
    allow = rules["allow-https-from-network"]
    assert (allow["access"], allow["direction"], allow["protocol"], allow["destinationPortRange"]) == ("Allow", "Inbound", "Tcp", "443")
    assert allow["sourceAddressPrefix"] == "VirtualNetwork"
    assert [r["access"] for r in rules.values() if r["name"] != allow["name"]] == ["Deny", "Deny"]
    zones = {r["inputs"]["privateZoneName"]: r["name"] for r in resources_of(created, DNS + "PrivateZone")}
    assert set(zones) == set(network.ZONES)
    links = resources_of(created, DNS + "VirtualNetworkLink")
    assert {link["inputs"]["privateZoneName"] for link in links} == set(network.ZONES)
    assert all(link["dependencies"]["virtualNetwork"] == [vnet["name"]] and not link["inputs"]["registrationEnabled"] for link in links)


def test_private_endpoints_for_workspace_blobs_and_registry_with_their_dns(created: dict) -> None:
    endpoints = {r["name"]: r for r in resources_of(created, NET + "PrivateEndpoint")}
    expected = {
        "storage-endpoint-workspace": ("amlworkspace", "storage-workspace", network.WORKSPACE_ZONES),
        "features-endpoint-featurestore": ("amlworkspace", "features-store", network.WORKSPACE_ZONES),
        "storage-endpoint-blob": ("blob", "storage-account", (network.BLOB_ZONE,)),
        "storage-endpoint-registry": ("registry", "storage-registry", (network.REGISTRY_ZONE,)),
    }
    assert set(endpoints) == set(expected) == set(ENDPOINTS)
    zone_names = {r["name"]: r["inputs"]["privateZoneName"] for r in resources_of(created, DNS + "PrivateZone")}
    for name, (group, target, zones) in expected.items():
        endpoint = endpoints[name]
        (connection,) = endpoint["inputs"]["privateLinkServiceConnections"]
        assert connection["groupIds"] == [group]
        assert endpoint["dependencies"]["privateLinkServiceConnections"] == [target]
        assert endpoint["dependencies"]["subnet"] == ["governance-network"]
        assert endpoint["inputs"]["subnet"] == {"id": "(known after apply)"}  # a reference, nothing more
        dns = by_name(created, name.replace("endpoint-", "endpoint-dns-"))
        assert sorted(zone_names[z] for z in dns["dependencies"]["privateDnsZoneConfigs"]) == sorted(zones)
    # the key vault is only used by Azure services: no private endpoint for clients
    assert not [e for e in endpoints.values() if "governance-vault" in e["dependencies"]["privateLinkServiceConnections"]]


def test_images_are_copied_into_the_stacks_registry_and_jobs_run_the_copy(created: dict) -> None:
    login = by_name(created, "storage-registry")["inputs"]["registryName"] + ".azurecr.io"
    imports = {r["name"]: r for r in resources_of(created, "pulumi-python:dynamic/mlops-infra-azure:ImportedImage")}
    spec = validate(prod_text()).spec
    for model in spec.models:
        for stage, block in (("training", model.training), ("serving", model.serving)):
            assert block is not None
            copy_ = imports[f"{stage}-image-{model.name}"]
            ref = parse_image(block.image)
            assert copy_["inputs"] == {
                "registry_id": "(known after apply)",
                "repository": f"{ref.registry}/{ref.repository}",
                "source_image": ref.reference,
                "source_registry": "ghcr.io",
            }
            assert copy_["dependencies"]["registry_id"] == ["storage-registry"]
            environment = by_name(created, f"{stage}-envversion-{model.name}")
            assert environment["inputs"]["properties"]["image"] == f"{login}/{ref.registry}/{ref.reference}"
            assert copy_["name"] in environment["depends_on"]


def test_the_workspace_identity_may_approve_private_endpoints_on_three_resources_only(created: dict) -> None:
    approvals = [g for g in resources_of(created, GRANT) if g["inputs"]["roleDefinitionId"].endswith(APPROVER)]
    assert sorted(g["dependencies"]["scope"][0] for g in approvals) == ["governance-vault", "storage-account", "storage-registry"]
    assert all(g["dependencies"]["principalId"] == ["governance-identity-workspace"] for g in approvals)
    # and the workspace is created once they exist
    workspace = by_name(created, "storage-workspace")
    assert {g["name"] for g in approvals} <= set(workspace["dependencies"]["primaryUserAssignedIdentity"])


def test_security_invariants_and_policy_rules_hold_on_the_private_plan(created: dict) -> None:
    for check in (
        invariants.test_stateful_resources_are_protected,
        invariants.test_no_wildcard_actions_public_principals_or_broad_roles,
        invariants.test_every_taggable_resource_is_tagged,
        invariants.test_names_unique_and_outputs_present,
    ):
        check(created)
    spec = validate(prod_text()).spec
    assert findings_for(spec=spec, cloud="azure", resources=plan_resources(created), policies=[]) == []
    # the network is not data: a default destroy deletes it
    assert not [r["name"] for r in created["resources"] if r["type"] in NETWORK_WIDE | {NET + "PrivateEndpoint"} and r["protect"]]


def test_role_assignment_count_covers_the_network_grants(created: dict) -> None:
    from mlops_infra.backends.azure.governance_access import role_assignments

    assert role_assignments(validate(prod_text()).spec) == len(resources_of(created, GRANT))


def test_private_endpoints_and_zones_are_listed_unpriced_never_free(created: dict) -> None:
    spec = validate(prod_text()).spec
    result = estimate(spec=spec, cloud="azure", document=created)
    unpriced = {item.type: item for item in result.unpriced}
    assert {NET + "PrivateEndpoint", DNS + "PrivateZone"} <= set(unpriced)
    assert unpriced[NET + "PrivateEndpoint"].kind == "always_on"


def test_a_public_stack_has_no_network_resources() -> None:
    public = plan(prod_text(private=False))
    types = {r["type"] for r in public["resources"]}
    assert not types & (NETWORK_WIDE | {NET + "PrivateEndpoint", NET + "PrivateDnsZoneGroup"})
    assert not [t for t in types if t.endswith(("ImportedImage", "ManagedNetworkProvision"))]


def test_the_private_split_builds_the_network_in_the_shared_stack_and_copies_images_per_model() -> None:
    document = plan(prod_text(split={"enabled": True}))
    parts = {r["name"]: r.get("part") for r in document["resources"]}
    network_parts = {parts[r["name"]] for r in document["resources"] if r["type"] in NETWORK_WIDE | {NET + "PrivateEndpoint"}}
    assert network_parts == {"shared"}
    assert parts["training-image-churn-classifier"] == parts["serving-image-churn-classifier"] == "churn-classifier"
    assert parts["storage-managed-network"] == "shared"


# --- a brought network -----------------------------------------------------------------------------------


def test_a_brought_subnet_gets_the_endpoints_and_nothing_network_wide(brought: dict) -> None:
    assert not {r["type"] for r in brought["resources"]} & NETWORK_WIDE
    endpoints = resources_of(brought, NET + "PrivateEndpoint")
    assert len(endpoints) == len(ENDPOINTS) and all(e["inputs"]["subnet"] == {"id": SUBNET} for e in endpoints)
    for group in resources_of(brought, NET + "PrivateDnsZoneGroup"):
        for config in group["inputs"]["privateDnsZoneConfigs"]:
            zone = config["privateDnsZoneId"].rsplit("/", 1)[1]
            assert zone in network.ZONES
            assert config["privateDnsZoneId"] == f"{ZONES_GROUP}/providers/Microsoft.Network/privateDnsZones/{zone}"


def test_a_brought_subnet_without_zones_registers_no_records_and_says_so() -> None:
    text = prod_text({"subnet_id": SUBNET})
    (warning,) = [w for w in validate(text).warnings if w.path == ("clouds", "azure", "network")]
    assert "DNS records" in warning.message and all(zone in (warning.hint or "") for zone in network.ZONES)
    assert warning.line is not None
    document = plan(text)
    assert len(resources_of(document, NET + "PrivateEndpoint")) == len(ENDPOINTS)
    assert resources_of(document, NET + "PrivateDnsZoneGroup") == []


def test_an_address_space_sizes_the_created_network() -> None:
    document = plan(prod_text({"address_space": "192.168.10.0/26"}))
    (vnet,) = resources_of(document, NET + "VirtualNetwork")
    assert vnet["inputs"]["addressSpace"]["addressPrefixes"] == ["192.168.10.0/26"]
    (allow, *_) = resources_of(document, NET + "NetworkSecurityGroup")[0]["inputs"]["securityRules"]
    assert allow["destinationAddressPrefix"] == "192.168.10.0/26"


BAD = [
    ({"subnet_id": "spoke/ml"}, ("clouds", "azure", "network", "subnet_id"), "not the ARM id of a subnet"),
    (
        {"subnet_id": SUBNET.rsplit("/subnets/", 1)[0], "private_dns_zones": ZONES_GROUP},
        ("clouds", "azure", "network", "subnet_id"),
        "not a subnet",
    ),
    ({"subnet_id": f"/subscriptions/not-a-guid/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/s"},
     ("clouds", "azure", "network", "subnet_id"), "not the ARM id of a subnet"),
    ({"subnet_id": SUBNET, "private_dns_zones": f"{ZONES_GROUP}/providers/Microsoft.Network/privateDnsZones/x"},
     ("clouds", "azure", "network", "private_dns_zones"), "not the ARM id of a resource group"),
    ({"private_dns_zones": ZONES_GROUP}, ("clouds", "azure", "network", "private_dns_zones"), "brought network only"),
    ({"subnet_id": SUBNET, "private_dns_zones": ZONES_GROUP, "address_space": "10.1.0.0/24"},
     ("clouds", "azure", "network", "address_space"), "creates none"),
    ({"address_space": "10.1.0.0/33"}, ("clouds", "azure", "network", "address_space"), "CIDR"),
    ({"address_space": "10.1.0.1/24"}, ("clouds", "azure", "network", "address_space"), "CIDR"),
    ({"address_space": "8.8.8.0/24"}, ("clouds", "azure", "network", "address_space"), "private IPv4 range"),
    ({"address_space": "fd00::/64"}, ("clouds", "azure", "network", "address_space"), "private IPv4 range"),
    ({"address_space": "10.1.0.0/29"}, ("clouds", "azure", "network", "address_space"), "too small"),
]


@pytest.mark.parametrize(("block", "path", "words"), BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_a_wrong_network_block_is_a_located_error(block: dict, path: tuple, words: str) -> None:
    with pytest.raises(SpecInvalid) as raised:
        validate(prod_text(block))
    located = [p for p in raised.value.problems if p.path == path]
    assert located and words in located[0].message, [p.render() for p in raised.value.problems]
    assert located[0].line is not None and located[0].hint


def test_a_network_block_on_a_public_stack_is_a_warning() -> None:
    warnings = validate(prod_text({"subnet_id": SUBNET}, private=False)).warnings
    (warning,) = [w for w in warnings if w.path == ("clouds", "azure", "network")]
    assert "no effect" in warning.message and warning.severity == "warning"


def test_an_image_a_private_stack_cannot_copy_is_a_located_error() -> None:
    data = yaml.safe_load(prod_text())
    data["models"][0]["training"]["image"] = "ghcr.io/Acme/Train:1"
    with pytest.raises(SpecInvalid) as raised:
        validate(yaml.safe_dump(data, sort_keys=False))
    (problem,) = [p for p in raised.value.problems if p.path == ("models", 0, "training", "image")]
    assert "copy into the stack's registry" in problem.message and problem.line is not None


# --- images ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("ghcr.io/acme/train:1.4.0", ImageRef("ghcr.io", "acme/train", "1.4.0")),
        ("python:3.11", ImageRef("docker.io", "library/python", "3.11")),
        ("acme/train", ImageRef("docker.io", "acme/train")),
        ("localhost:5000/x/y:2", ImageRef("localhost:5000", "x/y", "2")),
        ("mcr.microsoft.com/azureml/minimal:latest", ImageRef("mcr.microsoft.com", "azureml/minimal", "latest")),
        ("ghcr.io/acme/t@sha256:" + "a" * 64, ImageRef("ghcr.io", "acme/t", None, "sha256:" + "a" * 64)),
    ],
)
def test_image_references_are_read_as_docker_reads_them(image: str, ref: ImageRef) -> None:
    assert parse_image(image) == ref


def test_copies_keep_the_source_registry_in_the_path_and_skip_reachable_registries() -> None:
    ref = parse_image("ghcr.io/acme/train:1.4.0")
    assert copied_image(ref, "acr1") == "acr1.azurecr.io/ghcr.io/acme/train:1.4.0"
    assert copied_image(parse_image("python"), "acr1") == "acr1.azurecr.io/docker.io/library/python:latest"
    assert not needs_copy(parse_image("acr1.azurecr.io/team/train:1"), "acr1")
    assert not needs_copy(parse_image("mcr.microsoft.com/azureml/minimal:1"), "acr1")
    assert needs_copy(parse_image("other.azurecr.io/team/train:1"), "acr1")
    for bad in ("ghcr.io/Acme/x:1", "a//b", "x@md5:00", "with space:1"):
        with pytest.raises(ValueError):
            parse_image(bad)


def test_an_image_already_in_the_stacks_registry_is_not_copied(created: dict) -> None:
    acr = by_name(created, "storage-registry")["inputs"]["registryName"]
    data = yaml.safe_load(prod_text())
    data["models"][0]["serving"]["image"] = f"{acr}.azurecr.io/acme/churn-serve:1.4.0"
    document = plan(yaml.safe_dump(data, sort_keys=False))
    names = {r["name"] for r in document["resources"]}
    assert "serving-image-churn-classifier" not in names and "training-image-churn-classifier" in names
    env = by_name(document, "serving-envversion-churn-classifier")
    assert env["inputs"]["properties"]["image"] == f"{acr}.azurecr.io/acme/churn-serve:1.4.0"


# --- the dynamic providers, with a fake ARM session ------------------------------------------------------


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def run(self, method: str, path: str, body: Any = None, *, api_version: str) -> None:
        self.calls.append((method, path, body, api_version))


REG = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1"
WS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


def test_an_imported_image_is_one_import_call_by_tag_or_digest() -> None:
    session = FakeSession()
    provider = arm_actions.ImportedImageProvider(session)
    props = {"registry_id": REG, "source_registry": "ghcr.io", "source_image": "acme/t:1", "repository": "ghcr.io/acme/t"}
    created = provider.create(props)
    assert created.id == f"{REG}/images/ghcr.io/acme/t:1" and created.outs == props
    digest = "sha256:" + "b" * 64
    provider.create({**props, "source_image": f"acme/t@{digest}"})
    (tagged, pinned) = session.calls
    assert tagged == (
        "POST", f"{REG}/importImage",
        {"source": {"registryUri": "ghcr.io", "sourceImage": "acme/t:1"}, "mode": "Force", "targetTags": ["ghcr.io/acme/t:1"]},
        arm_actions.REGISTRY_API_VERSION,
    )
    assert pinned[2]["untaggedTargetRepositories"] == ["ghcr.io/acme/t"] and "targetTags" not in pinned[2]
    provider.delete("id", props)  # the copy stays in the registry: no call
    assert len(session.calls) == 2
    changed = provider.diff("id", props, {**props, "source_image": "acme/t:2"})
    assert changed.changes and changed.replaces == ["source_image"]
    assert provider.diff("id", props, dict(props)).changes is False


def test_managed_network_provisioning_includes_spark() -> None:
    session = FakeSession()
    provider = arm_actions.ManagedNetworkProvisionProvider(session)
    result = provider.create({"workspace_id": WS, "include_spark": True})
    assert session.calls == [("POST", f"{WS}/provisionManagedNetwork", {"includeSpark": True}, arm_actions.ML_API_VERSION)]
    assert result.id == f"{WS}/managedNetwork"
    provider.delete("id", {})
    assert len(session.calls) == 1


def test_the_arm_session_waits_for_the_import_to_finish() -> None:
    from tests.test_serving_azure import Credential, Response, Session

    from mlops_infra.backends.azure.arm import ArmSession

    http = Session([Response(202, None, {"Location": "https://management.azure.com/op/9"}), Response(202), Response(200)])
    arm_actions.import_image(
        ArmSession(credential=Credential(), session=http, sleep=lambda _: None),
        registry_id=REG, source_registry="ghcr.io", source_image="acme/t:1", repository="ghcr.io/acme/t",
    )
    assert [r[0] for r in http.requests] == ["POST", "GET", "GET"]
    assert http.requests[0][2]["params"] == {"api-version": arm_actions.REGISTRY_API_VERSION}


def test_replacement_facts_match_the_providers() -> None:
    facts = registry()["azure"].resource_facts().types
    for resource, provider in (
        ("ImportedImage", arm_actions.ImportedImageProvider),
        ("ManagedNetworkProvision", arm_actions.ManagedNetworkProvisionProvider),
    ):
        entry = facts[f"pulumi-python:dynamic/mlops-infra-azure:{resource}"]
        assert set(entry.replace) == set(provider.inputs) and not entry.in_place


def test_the_providers_pickle_small_and_load_no_client_library() -> None:
    import base64
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    for provider in (arm_actions.ImportedImageProvider(), arm_actions.ManagedNetworkProvisionProvider()):
        raw = base64.b64decode(serialize_provider(provider))
        assert len(raw) < 1500 and b"mlops_infra.backends.azure.arm_actions" in raw and b"requests" not in raw
    assert "azure.identity" not in sys.modules


def test_plans_stay_deterministic() -> None:
    text = prod_text({"subnet_id": SUBNET, "private_dns_zones": ZONES_GROUP})
    first, second = plan(text), plan(text)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert copy.deepcopy(first) == second
