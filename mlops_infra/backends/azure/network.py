"""Private networking on Azure (governance.network: private): the network the stack's private
endpoints live in, the endpoints themselves, and the rules for a brought network.

Two networks are involved, as Azure ML designs it ("Workspace managed virtual network isolation"):
- outbound, the workspace's managed virtual network (storage_workspace.py): Azure ML runs the
  compute clusters, online deployments and serverless Spark of the stack in it, allowing only
  approved outbound traffic, and reaches the workspace, its storage account, key vault and
  container registry through private endpoints it manages itself;
- inbound, a virtual network of the user's, where clients (people, CI, applications) reach the
  stack: this module puts a private endpoint there for the workspace (its API, MLflow tracking,
  studio and the scoring of every online endpoint), for the storage account's blobs (the
  buckets) and for the container registry (pushing images). The key vault gets none: only
  Azure services use it, through the managed network or as trusted services.

Where that inbound network comes from:
- governance.network: private alone: the stack creates it (governance stage): a virtual network of
  clouds.azure.network.address_space (DEFAULT_ADDRESS_SPACE), one subnet for the endpoints with a
  security group that admits HTTPS from the virtual network (and networks peered with it) only,
  and the four privatelink DNS zones, linked to the network, that make the endpoints' names
  resolve to their private addresses. Clients join by peering their network with it.
- clouds.azure.network.subnet_id: the user brings a subnet and the stack creates nothing
  network-wide: no network, no security group, no DNS zone (a privatelink zone linked to a network
  answers for every resource of its kind there, so creating one would change name resolution
  for the user's other resources). Its endpoints register their records in the zones of
  clouds.azure.network.private_dns_zones (a hub's resource group); without it they register none,
  and validate warns.

Every resource here is stack-wide (governance and storage build them once per stack).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.common import after
from mlops_infra.backends.azure.settings import GUID_PATTERN
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

DEFAULT_ADDRESS_SPACE = "10.240.0.0/24"
# The smallest address space accepted: Azure keeps five addresses of every subnet (Azure Virtual
# Network FAQ), and the stack's three private endpoints take one or more each (the workspace's
# serves its API, notebook and inference names); 16 addresses leave room for them.
SMALLEST_PREFIX = 28
SUBNET = "endpoints"
HTTPS = "443"

# privatelink DNS zones of the Azure public cloud, per private endpoint group (sources: "Azure
# Private Endpoint private DNS zone values" and Azure ML "Configure a private endpoint", read
# 2026-12-06). Managed online endpoints are scored through the workspace's endpoint: their
# names resolve in its privatelink.api.azureml.ms records.
WORKSPACE_ZONES = ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")
BLOB_ZONE = "privatelink.blob.core.windows.net"
REGISTRY_ZONE = "privatelink.azurecr.io"
ZONES = (*WORKSPACE_ZONES, BLOB_ZONE, REGISTRY_ZONE)


@dataclass(frozen=True)
class Target:
    """What a private endpoint connects to: the resource's private link group and its DNS zones."""

    group: str
    zones: tuple[str, ...]


TARGETS = {
    "workspace": Target("amlworkspace", WORKSPACE_ZONES),
    "featurestore": Target("amlworkspace", WORKSPACE_ZONES),  # a workspace of kind FeatureStore
    "blob": Target("blob", (BLOB_ZONE,)),
    "registry": Target("registry", (REGISTRY_ZONE,)),
}


@dataclass(frozen=True)
class PrivateNetwork:
    """Where the stack's private endpoints go (values only: it crosses to a split spec's model stacks)."""

    subnet_id: Any
    zone_ids: dict[str, Any]  # privatelink zone name -> ARM id; empty: the endpoints register no records


def is_private(spec: SpecBase) -> bool:
    return spec.governance.network == "private"


# --- ids a brought network is given by ------------------------------------------------------------
_GUID = GUID_PATTERN.strip("^$")
_GROUP = rf"/subscriptions/{_GUID}/resourceGroups/[-\w.()]{{1,90}}"
_NETWORK = rf"{_GROUP}/providers/Microsoft\.Network/virtualNetworks/[\w.-]{{2,64}}"
GROUP_ID = re.compile(rf"^{_GROUP}$", re.IGNORECASE)
NETWORK_ID = re.compile(rf"^{_NETWORK}$", re.IGNORECASE)
SUBNET_ID = re.compile(rf"^{_NETWORK}/subnets/[\w.-]{{1,80}}$", re.IGNORECASE)
SUBNET_FORM = (
    "/subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<network>"
    "/subnets/<subnet>"
)
GROUP_FORM = "/subscriptions/<subscription id>/resourceGroups/<group>"


def problems(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    """The network block's problems, located at clouds.azure.network (validate)."""
    network = settings.network
    if network is None:
        return []
    at = ("clouds", "azure", "network")
    if not is_private(spec):
        return [
            finding(
                at,
                "has no effect: governance.network is public, so the stack makes no private endpoint",
                hint="set governance.network: private, or remove clouds.azure.network",
                severity="warning",
            )
        ]
    if network.subnet_id is None:
        found = []
        if network.private_dns_zones is not None:
            found.append(
                finding(
                    (*at, "private_dns_zones"),
                    "applies to a brought network only: without subnet_id the stack creates its network and links "
                    "its own privatelink DNS zones to it",
                    hint="add subnet_id, or remove private_dns_zones",
                    value=network.private_dns_zones,
                )
            )
        return found + _address_problems(network.address_space or DEFAULT_ADDRESS_SPACE, (*at, "address_space"))
    return _brought_problems(network, at)


def _brought_problems(network: Any, at: tuple) -> list[Problem]:
    found = []
    subnet = network.subnet_id
    if NETWORK_ID.match(subnet.rstrip("/")):
        found.append(
            finding(
                (*at, "subnet_id"),
                "names a virtual network, not a subnet: Azure places private endpoints in a subnet",
                hint=f"append /subnets/<subnet name> ({SUBNET_FORM})",
                value=subnet,
            )
        )
    elif not SUBNET_ID.match(subnet):
        found.append(
            finding((*at, "subnet_id"), "is not the ARM id of a subnet", hint=f"use the form {SUBNET_FORM}", value=subnet)
        )
    if network.address_space is not None:
        found.append(
            finding(
                (*at, "address_space"),
                "sizes the network the stack creates, and with subnet_id it creates none",
                hint="remove address_space, or remove subnet_id to let the stack create its network",
                value=network.address_space,
            )
        )
    zones = network.private_dns_zones
    if zones is None:
        found.append(
            finding(
                at,
                "the stack's private endpoints register no DNS records without private_dns_zones: clients resolve "
                "the workspace, storage and registry names to their public addresses, which refuse them, unless "
                "your own DNS (an Azure Policy, say) registers the records",
                hint=f"set private_dns_zones to the resource group that holds {', '.join(ZONES)}",
                severity="warning",
            )
        )
    elif not GROUP_ID.match(zones):
        found.append(
            finding(
                (*at, "private_dns_zones"),
                "is not the ARM id of a resource group (the one that holds your privatelink DNS zones)",
                hint=f"use the form {GROUP_FORM}",
                value=zones,
            )
        )
    return found


def _address_problems(space: str, at: tuple) -> list[Problem]:
    try:
        network = ipaddress.ip_network(space, strict=True)
    except ValueError as exc:
        return [finding(at, f"is not an address range in CIDR form ({exc})", hint="e.g. 10.240.0.0/24", value=space)]
    if not isinstance(network, ipaddress.IPv4Network) or not any(
        network.subnet_of(block) for block in _PRIVATE_RANGES
    ):
        return [
            finding(
                at,
                "must be a private IPv4 range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)",
                hint="e.g. 10.240.0.0/24",
                value=space,
            )
        ]
    if network.prefixlen > SMALLEST_PREFIX:
        return [
            finding(
                at,
                f"is too small: Azure keeps 5 addresses of every subnet and the stack's private endpoints need "
                f"several, so it takes a /{SMALLEST_PREFIX} or larger",
                hint=f"use a /{SMALLEST_PREFIX} or larger, e.g. 10.240.0.0/24",
                value=space,
            )
        ]
    return []


_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


# --- building -------------------------------------------------------------------------------------
def build_network(ctx: StageContext, *, rg: Any) -> PrivateNetwork:
    """The inbound network of a private stack (governance): created, or the one brought."""
    brought = ctx.settings.network
    if brought is not None and brought.subnet_id is not None:
        zones = brought.private_dns_zones
        ids = {zone: f"{zones}/providers/Microsoft.Network/privateDnsZones/{zone}" for zone in ZONES} if zones else {}
        return PrivateNetwork(subnet_id=brought.subnet_id, zone_ids=ids)
    space = (brought.address_space if brought is not None else None) or DEFAULT_ADDRESS_SPACE
    return _created_network(ctx, rg=rg, space=space)


def _created_network(ctx: StageContext, *, rg: Any, space: str) -> PrivateNetwork:
    import pulumi
    from pulumi_azure_native import network, privatedns

    location, tags = ctx.settings.location, ctx.tags()

    def deny(direction: str) -> network.SecurityRuleArgs:
        return network.SecurityRuleArgs(
            name=f"deny-{direction.lower()}", priority=4096, direction=direction, access="Deny", protocol="*",
            source_address_prefix="*", source_port_range="*", destination_address_prefix="*", destination_port_range="*",
        )

    security_group = network.NetworkSecurityGroup(
        ctx.logical("network", "security-group"),
        network_security_group_name=ctx.namer.name("azure.network.security_group", SUBNET),
        resource_group_name=rg,
        location=location,
        security_rules=[
            # Clients in the network, or in networks peered or connected to it (the VirtualNetwork
            # tag), reach the endpoints over HTTPS; nothing else comes in, and the endpoints
            # start no connection out.
            network.SecurityRuleArgs(
                name="allow-https-from-network", priority=100, direction="Inbound", access="Allow", protocol="Tcp",
                source_address_prefix="VirtualNetwork", source_port_range="*",
                destination_address_prefix=space, destination_port_range=HTTPS,
            ),
            deny("Inbound"),
            deny("Outbound"),
        ],
        tags=tags,
        opts=ctx.opts(),
    )
    subnet_name = ctx.namer.name("azure.network.subnet", SUBNET)
    vnet_name = ctx.namer.name("azure.network.virtual_network")
    vnet = network.VirtualNetwork(
        ctx.logical("network"),
        virtual_network_name=vnet_name,
        resource_group_name=rg,
        location=location,
        address_space=network.AddressSpaceArgs(address_prefixes=[space]),
        subnets=[
            network.SubnetArgs(
                name=subnet_name,
                address_prefix=space,
                network_security_group=network.NetworkSecurityGroupArgs(id=security_group.id),
                # The security group applies to the private endpoints too (off by default).
                private_endpoint_network_policies="Enabled",
                default_outbound_access=False,
            )
        ],
        tags=tags,
        opts=ctx.opts(),
    )
    zone_ids: dict[str, Any] = {}
    for zone in ZONES:
        word = zone.removeprefix("privatelink.").split(".")[0]  # api, notebooks, blob, azurecr
        resource = privatedns.PrivateZone(
            ctx.logical("dns", word),
            private_zone_name=zone,
            resource_group_name=rg,
            location="global",
            tags=tags,
            opts=ctx.opts(),
        )
        privatedns.VirtualNetworkLink(
            ctx.logical("dns-link", word),
            virtual_network_link_name=ctx.namer.name("azure.network.dns_link", word),
            private_zone_name=after(resource.tags, zone),
            resource_group_name=rg,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            registration_enabled=False,
            tags=tags,
            opts=ctx.opts(),
        )
        zone_ids[zone] = resource.id
    return PrivateNetwork(subnet_id=pulumi.Output.concat(vnet.id, "/subnets/", subnet_name), zone_ids=zone_ids)


def private_endpoint(
    ctx: StageContext, network: PrivateNetwork, *, target: str, resource_id: Any, rg: Any
) -> Any:
    """A private endpoint in the stack's inbound network for `target` (a key of TARGETS), with its DNS records."""
    import pulumi
    from pulumi_azure_native import network as net

    spec = TARGETS[target]
    name = ctx.namer.name("azure.network.private_endpoint", target)
    # A reference to the subnet by id: the SDK's Args class fills in policy defaults, which would
    # say something about a subnet the endpoint does not own, so they are cleared.
    subnet = net.SubnetArgs(id=network.subnet_id)
    for default in ("private_endpoint_network_policies", "private_link_service_network_policies"):
        pulumi.set(subnet, default, None)
    endpoint = net.PrivateEndpoint(
        ctx.logical("endpoint", target),
        private_endpoint_name=name,
        resource_group_name=rg,
        location=ctx.settings.location,
        subnet=subnet,
        custom_network_interface_name=f"{name}-nic",
        private_link_service_connections=[
            net.PrivateLinkServiceConnectionArgs(name=target, private_link_service_id=resource_id, group_ids=[spec.group])
        ],
        tags=ctx.tags(),
        opts=ctx.opts(),
    )
    if network.zone_ids:
        net.PrivateDnsZoneGroup(
            ctx.logical("endpoint-dns", target),
            private_dns_zone_group_name="default",
            private_endpoint_name=after(endpoint.tags, name),
            resource_group_name=rg,
            private_dns_zone_configs=[
                net.PrivateDnsZoneConfigArgs(name=zone.replace(".", "-"), private_dns_zone_id=network.zone_ids[zone])
                for zone in spec.zones
            ],
            opts=ctx.opts(),
        )
    return endpoint
