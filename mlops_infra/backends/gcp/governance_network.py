"""GCP private networking (governance.network: private): the network the stack's Vertex AI work
reaches privately, built by the governance stage (once per stack, like the key).

Created form (no clouds.gcp.network.network):
- a VPC network without default routes (nothing in it reaches the internet: there is no route
  there, so no Cloud NAT either) and one regional subnet with Private Google Access and flow logs;
- one route to the Google APIs' private virtual IPs (private.googleapis.com, or
  restricted.googleapis.com when clouds.gcp.network.service_perimeter names the project's VPC
  Service Controls perimeter) and private Cloud DNS zones that send googleapis.com and pkg.dev
  there, so clients in the network (CI runners, notebooks) reach Cloud Storage, Vertex AI and
  Artifact Registry on internal paths;
- egress firewall rules: deny everything (logged), allow HTTPS to those virtual IPs and HTTP(S)
  to the subnet (where the Vertex AI endpoints' Private Service Connect addresses are); ingress
  stays at GCP's implied deny;
- when models train: private services access, a reserved range peered with Google's service
  producer network, so Vertex AI custom jobs run peered into this network (CustomJob.network).
  Vertex AI peers with one network per project and region, so that network is a project
  singleton (GcpBackend.singletons): a stack leaving singletons to another brings the owner's.
Brought form (clouds.gcp.network.network): nothing network-wide is created. The network must be
in the stack's project, have Private Google Access on its subnets and, when models train,
private services access already (documented prerequisites: nothing offline can see them).

Either way Vertex AI endpoints use Private Service Connect (serving.py): traffic split and
request-response logging work there, and not on endpoints peered by VPC Network Peering
(cloud.google.com/vertex-ai/docs/predictions/choose-endpoint-type); Vertex AI creates the PSC
address in this network (pscAutomationConfigs). Scheduled runs go through Pub/Sub and Eventarc
(scheduling.py), targets VPC Service Controls allows Cloud Scheduler.

VPC Service Controls cannot be made by a project-level stack: a perimeter belongs to the
organization's access policy. check() says so until the spec names the perimeter.

Facts (read 2026-12-06):
- Private Google Access virtual IPs: private.googleapis.com 199.36.153.8/30, restricted.googleapis.com
  199.36.153.4/30 (cloud.google.com/vpc/docs/configure-private-google-access#domain-options).
- A reserved /16 runs 63 parallel custom jobs of up to 8 nodes (cloud.google.com/vertex-ai/docs/
  training/using-private-ip); CustomJob.network names the project by number
  (projects/NUMBER/global/networks/NAME): the training workflow reads it from its environment.
- Vertex AI peers with one network per region at a time (cloud.google.com/vertex-ai/docs/general/vpc-peering).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp.naming import dns_zone_name, network_name
from mlops_infra.backends.gcp.shared import PrivateNetwork
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

SETTINGS_PATH = ("clouds", "gcp", "network")
NETWORK_ID = re.compile(r"^projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/global/networks/(?P<name>[a-z]([-a-z0-9]{0,61}[a-z0-9])?)$")
PERIMETER_ID = re.compile(r"^accessPolicies/[0-9]+/servicePerimeters/[^/\s]+$")
SELF_LINK_PREFIX = re.compile(r"^https://(www|compute)\.googleapis\.com/compute/(v1|beta)/")


@dataclass(frozen=True)
class Vip:
    """A Google APIs virtual IP range and the name that resolves to it."""

    host: str
    cidr: str

    @property
    def addresses(self) -> list[str]:
        return [str(a) for a in ipaddress.ip_network(self.cidr)]


PRIVATE_VIP = Vip("private.googleapis.com.", "199.36.153.8/30")
RESTRICTED_VIP = Vip("restricted.googleapis.com.", "199.36.153.4/30")
# Domains answered privately inside the network: the Google APIs, and Artifact Registry's
# REGION-docker.pkg.dev (images pushed from the network).
GOOGLE_DOMAINS = ("googleapis.com.", "pkg.dev.")
DNS_TTL = 300
SUBNET_MIN_PREFIX = 29  # the smallest IPv4 subnet range GCP takes
# Flow logs of the subnet: 5-second aggregation, half the flows, all metadata (log volume bills by use).
FLOW_LOGS = {"aggregation_interval": "INTERVAL_5_SEC", "flow_sampling": 0.5, "metadata": "INCLUDE_ALL_METADATA"}
SERVICE_NETWORKING = "servicenetworking.googleapis.com"
NETWORK_APIS = {"compute": "compute.googleapis.com", "dns": "dns.googleapis.com"}
PERIMETER_GAP = "governance.network: private (VPC Service Controls)"
OTHER_PROJECT_GAP = "clouds.gcp.network.network (another project's network)"


# --- what the spec asks for (pure) --------------------------------------------------------
def wanted(spec: Any) -> bool:
    return spec.governance.network == "private"


def brought(settings: Any) -> bool:
    return settings.network.network is not None


def trains(spec: Any) -> bool:
    return any(m.training is not None for m in spec.models)


def peers(spec: Any, settings: Any) -> bool:
    """Whether the stack reserves a range and peers the created network with Vertex AI."""
    return wanted(spec) and not brought(settings) and trains(spec)


def vip(settings: Any) -> Vip:
    return RESTRICTED_VIP if settings.network.service_perimeter else PRIVATE_VIP


def peered_network_key(settings: Any) -> str:
    """The project singleton of the network Vertex AI peers with (GcpBackend.singletons)."""
    return f"gcp/project/{settings.project}/{settings.region}/vertex-peered-network"


# --- checks -------------------------------------------------------------------------------
def check(spec: Any, settings: Any) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    block = settings.network
    if not wanted(spec):
        return _without_effect(
            block, sorted(block.model_fields_set), "governance.network is public",
            hint="set governance.network: private, or remove it",
        )
    problems: list[Problem] = []
    if brought(settings):
        problems += _brought_problems(settings)
    else:
        problems += _range_problems(settings)
        if spec.governance.singletons == "external" and trains(spec):
            problems.append(
                finding(
                    (*SETTINGS_PATH, "network"),
                    "Vertex AI peers custom jobs with one network per project and region, the network of the stack "
                    f"that owns project {settings.project}'s singletons: this stack (governance.singletons: external) "
                    "must train in that network rather than create its own",
                    hint="set clouds.gcp.network.network to the owner stack's network, "
                    f"projects/{settings.project}/global/networks/NAME",
                )
            )
    perimeter = block.service_perimeter
    if perimeter is None:
        problems.append(
            BACKEND.gap(
                PERIMETER_GAP, (*SETTINGS_PATH, "service_perimeter"),
                hint=f"put project {settings.project} in a perimeter restricting {', '.join(perimeter_services(spec))} "
                "(docs/networking-gcp.md), then state it: clouds.gcp.network.service_perimeter: "
                "accessPolicies/NUMBER/servicePerimeters/NAME",
            )
        )
    elif not PERIMETER_ID.match(perimeter):
        problems.append(
            finding(
                (*SETTINGS_PATH, "service_perimeter"),
                "a VPC Service Controls perimeter is named accessPolicies/NUMBER/servicePerimeters/NAME",
                hint="gcloud access-context-manager perimeters list --policy=POLICY --format='value(name)' prints it",
                value=perimeter,
            )
        )
    return problems


def _brought_problems(settings: Any) -> list[Problem]:
    from mlops_infra.backends.gcp import BACKEND

    block, path = settings.network, (*SETTINGS_PATH, "network")
    problems: list[Problem] = []
    given = block.network
    match = NETWORK_ID.match(given)
    if match is None:
        stripped = SELF_LINK_PREFIX.sub("", given)
        hint = (
            f"give the relative name: {stripped}"
            if stripped != given and NETWORK_ID.match(stripped)
            else f"e.g. projects/{settings.project}/global/networks/ml-network (gcloud compute networks list --uri "
            "shows yours; keep the part from projects/)"
        )
        problems.append(finding(path, "a VPC network is named projects/PROJECT/global/networks/NAME", hint=hint, value=given))
    elif match["project"] != settings.project:
        problems.append(
            BACKEND.gap(
                OTHER_PROJECT_GAP, path, value=given,
                hint=f"use a network of project {settings.project}, or deploy the stack into the network's project",
            )
        )
    problems += _without_effect(
        block, [n for n in ("subnet_range", "peering_range") if n in block.model_fields_set],
        "the network is brought: the stack creates nothing network-wide there",
        hint="remove it, or remove clouds.gcp.network.network to have the stack create the network",
    )
    return problems


def _without_effect(block: Any, names: list[str], why: str, *, hint: str) -> list[Problem]:
    return [
        finding(
            (*SETTINGS_PATH, name),
            f"clouds.gcp.network.{name} has no effect: {why}",
            hint=hint,
            value=getattr(block, name),
            severity="warning",
        )
        for name in names
    ]


def _range_problems(settings: Any) -> list[Problem]:
    block = settings.network
    problems: list[Problem] = []
    ranges: dict[str, ipaddress.IPv4Network] = {}
    for name in ("subnet_range", "peering_range"):
        value, path = getattr(block, name), (*SETTINGS_PATH, name)
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as error:
            problems.append(finding(path, f"not an IPv4 range in CIDR form ({error})", hint="e.g. 10.8.0.0/22", value=value))
            continue
        if not network.is_private or not any(network.subnet_of(r) for r in _RFC1918):
            problems.append(
                finding(path, "the range must be private (RFC 1918: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)",
                        hint="pick a range your other networks do not use", value=value)
            )
            continue
        ranges[name] = network
    subnet = ranges.get("subnet_range")
    if subnet is not None and subnet.prefixlen > SUBNET_MIN_PREFIX:
        problems.append(
            finding((*SETTINGS_PATH, "subnet_range"), f"GCP subnets are /{SUBNET_MIN_PREFIX} or larger",
                    hint=f"use a prefix length of at most {SUBNET_MIN_PREFIX}", value=block.subnet_range)
        )
    if len(ranges) == 2 and ranges["subnet_range"].overlaps(ranges["peering_range"]):
        problems.append(
            finding((*SETTINGS_PATH, "peering_range"), "the peering range overlaps the subnet range",
                    hint="give Vertex AI's peered jobs a range of their own", value=block.peering_range)
        )
    return problems


_RFC1918 = tuple(ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def perimeter_services(spec: Any) -> list[str]:
    """The Google APIs the stack uses: what its VPC Service Controls perimeter should restrict."""
    from mlops_infra.backends.gcp.governance import ML_APIS, PLAIN_APIS, ml_apis, plain_apis

    services = {"storage.googleapis.com", "cloudkms.googleapis.com", "logging.googleapis.com"}
    services |= {ML_APIS[name] for name in ml_apis(spec)}
    services |= {PLAIN_APIS[name] for name in plain_apis(spec)}
    return sorted(services)


# --- build --------------------------------------------------------------------------------
def build(ctx: StageContext) -> PrivateNetwork | None:
    """The network, created or brought, shared with later stages; None when the spec is public."""
    if not wanted(ctx.spec):
        return None
    settings = ctx.settings
    if brought(settings):
        path = settings.network.network
        return ctx.share(PrivateNetwork(network=path, name=path.rsplit("/", 1)[-1], peering_ranges=[]))
    return ctx.share(_create(ctx))


def _create(ctx: StageContext) -> PrivateNetwork:
    import pulumi_gcp as gcp

    settings, project = ctx.settings, ctx.settings.project
    stack = f"{ctx.spec.project}/{ctx.spec.environment}"
    apis = {
        name: gcp.projects.Service(
            ctx.logical("api", name), project=project, service=service,
            disable_on_destroy=False, disable_dependent_services=False, opts=ctx.opts(),
        )
        for name, service in sorted(NETWORK_APIS.items())
    }
    network = gcp.compute.Network(
        ctx.logical("network"),
        name=network_name(ctx.namer, "vpc"),
        project=project,
        description=f"private network of the mlops-infra stack {stack}: Google APIs only, no internet route",
        auto_create_subnetworks=False,
        routing_mode="REGIONAL",
        delete_default_routes_on_create=True,
        opts=ctx.opts(depends_on=[apis["compute"]]),
    )
    network_path = network.name.apply(lambda n: f"projects/{project}/global/networks/{n}")
    subnet = gcp.compute.Subnetwork(
        ctx.logical("subnet"),
        name=network_name(ctx.namer, "subnet"),
        project=project,
        region=settings.region,
        network=network_path,
        ip_cidr_range=settings.network.subnet_range,
        private_ip_google_access=True,
        stack_type="IPV4_ONLY",
        log_config=FLOW_LOGS,
        description=f"workloads and Private Service Connect addresses of the mlops-infra stack {stack}",
        opts=ctx.opts(),
    )
    target = vip(settings)
    gcp.compute.Route(
        ctx.logical("route", "google-apis"),
        name=network_name(ctx.namer, "google-apis"),
        project=project,
        network=network_path,
        dest_range=target.cidr,
        next_hop_gateway="default-internet-gateway",  # Google's edge for these VIPs, not the internet
        priority=1000,
        description=f"Google APIs through {target.host.rstrip('.')} (Private Google Access)",
        opts=ctx.opts(),
    )
    _firewall(ctx, network_path, settings, target)
    _dns(ctx, network_path, target)
    ranges: list[Any] = []
    if trains(ctx.spec):
        ranges = [_peering(ctx, network, network_path, settings)]
    return PrivateNetwork(
        network=network_path,
        name=network.name,
        peering_ranges=ranges,
        subnet=subnet.name.apply(lambda n: f"projects/{project}/regions/{settings.region}/subnetworks/{n}"),
    )


def _firewall(ctx: StageContext, network_path: Any, settings: Any, target: Vip) -> None:
    import pulumi_gcp as gcp

    project = settings.project
    rules = (
        # What is not allowed below leaves nothing: logged, so a blocked dependency shows up.
        ("deny-egress", {"denies": [{"protocol": "all"}], "destination_ranges": ["0.0.0.0/0"], "priority": 65534,
                         "log_config": {"metadata": "INCLUDE_ALL_METADATA"}},
         "deny all other egress"),
        ("allow-google-apis", {"allows": [{"protocol": "tcp", "ports": ["443"]}], "destination_ranges": [target.cidr],
                               "priority": 1000},
         f"HTTPS to the Google APIs ({target.host.rstrip('.')})"),
        ("allow-endpoints", {"allows": [{"protocol": "tcp", "ports": ["80", "443"]}],
                             "destination_ranges": [settings.network.subnet_range], "priority": 1000},
         "HTTP(S) to the Vertex AI endpoints' Private Service Connect addresses in the subnet"),
    )
    for part, rule, what in rules:
        gcp.compute.Firewall(
            ctx.logical("firewall", part),
            name=network_name(ctx.namer, part),
            project=project,
            network=network_path,
            direction="EGRESS",
            description=what,
            opts=ctx.opts(),
            **rule,
        )


def _dns(ctx: StageContext, network_path: Any, target: Vip) -> None:
    import pulumi_gcp as gcp

    project = ctx.settings.project
    for domain in GOOGLE_DOMAINS:
        label = domain.strip(".").replace(".", "-")
        zone = gcp.dns.ManagedZone(
            ctx.logical("dns-zone", label),
            name=dns_zone_name(ctx.namer, domain),
            project=project,
            dns_name=domain,
            visibility="private",
            private_visibility_config={"networks": [{"network_url": network_path}]},
            description=f"{domain} through {target.host} inside the stack's network",
            labels=ctx.tags(),
            opts=ctx.opts(),
        )
        records = ((target.host if domain == "googleapis.com." else domain, "A", target.addresses),
                   (f"*.{domain}", "CNAME", [target.host if domain == "googleapis.com." else domain]))
        for name, kind, data in records:
            gcp.dns.RecordSet(
                ctx.logical("dns-record", label, kind.lower()),
                project=project,
                managed_zone=zone.name,
                name=name,
                type=kind,
                ttl=DNS_TTL,
                rrdatas=data,
                opts=ctx.opts(),
            )


def _peering(ctx: StageContext, network: Any, network_path: Any, settings: Any) -> Any:
    import pulumi_gcp as gcp

    project = settings.project
    api = gcp.projects.Service(
        ctx.logical("api", "servicenetworking"), project=project, service=SERVICE_NETWORKING,
        disable_on_destroy=False, disable_dependent_services=False, opts=ctx.opts(),
    )
    reserved = ipaddress.IPv4Network(settings.network.peering_range)
    address = gcp.compute.GlobalAddress(
        ctx.logical("peering-range"),
        name=network_name(ctx.namer, "vertex-peering"),
        project=project,
        purpose="VPC_PEERING",
        address_type="INTERNAL",
        address=str(reserved.network_address),
        prefix_length=reserved.prefixlen,
        network=network_path,
        description="Vertex AI custom jobs peered into the stack's network (private services access)",
        labels=ctx.tags(),
        opts=ctx.opts(),
    )
    connection = gcp.servicenetworking.Connection(
        ctx.logical("peering"),
        network=network_path,
        service=SERVICE_NETWORKING,
        reserved_peering_ranges=[address.name],
        opts=ctx.opts(depends_on=[api]),
    )
    # The range's name, once the peering that uses it exists: jobs naming it wait for both.
    return connection.reserved_peering_ranges.apply(lambda names: names[0])
