"""AWS private networking (governance.network: private): what the governance stage builds, as
data, and the builder (its SDK imported inside).

With no clouds.aws.network.vpc_id, the stack creates its own network, once per stack:
- ec2.Vpc (clouds.aws.network.cidr, default 10.0.0.0/16; DNS support and hostnames on, which
  private DNS names of interface endpoints need) and ec2.DefaultSecurityGroup stripped of every
  rule (nothing may use the VPC's default group by accident);
- two private ec2.Subnet, one per availability zone (the first two the region offers without
  opt-in): the two first quarters of the block. No internet gateway and no NAT: nothing in the
  VPC reaches the internet, and nothing on the internet reaches it;
- one ec2.RouteTable for both subnets, through which the S3 gateway endpoint routes;
- security groups with least access (no inline rules, so AWS's default allow-all egress is
  removed): "workloads" (the stack's training, processing and monitoring jobs and endpoint
  containers) may talk to itself (distributed training, inter-container encryption) and reach
  the interface endpoints and S3 over HTTPS, nothing else; "endpoints" (the interface endpoints)
  accepts HTTPS from the workloads and from clouds.aws.network.client_cidrs, and sends nothing;
- ec2.VpcEndpoint: S3 (gateway, free) and interface endpoints with private DNS for every AWS
  API the stack's jobs, endpoints and clients call (interface_services): SageMaker API, STS,
  CloudWatch Logs and metrics and KMS always; SageMaker Runtime with a served model; ECR (API
  and registry) with a training, serving or monitoring image; EventBridge with an event rule.
  Interface endpoints are billed per endpoint, per zone and per hour (facts/network.json).

With vpc_id, the stack uses that VPC, subnet_ids and security_group_ids and creates nothing
network-wide: that VPC must already route S3 through a gateway endpoint and have the interface
endpoints above (docs/networking-aws.md).

Either way the governance stage shares a PrivateNetwork (ctx.share) with the later stages: the
subnets and security groups go into the VpcConfig of SageMaker models, training jobs (pipelines
and one-off) and monitoring jobs, all network-isolated; the VPC and the identity deploying the
stack go into the bucket policies (storage.py), which deny requests from outside the VPC.
SageMaker's managed MLflow tracking server takes no VPC configuration (see GAPS in backend.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.aws import monitoring_alarms as alarms
from mlops_infra.backends.aws import policies
from mlops_infra.backends.aws.settings import DEFAULT_CIDR
from mlops_infra.facts import fact
from mlops_infra.layout import group_of
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

if TYPE_CHECKING:
    from mlops_infra.backends.context import StageContext

ZONES = 2  # private subnets the stack creates, one per availability zone (SageMaker hosting needs two)
HTTPS = 443
# The first part of every AWS service endpoint name, per partition: only the commercial
# partition's is known here (other partitions name some services differently).
SERVICE_PREFIX = {"aws": "com.amazonaws"}
# The services every private stack reaches through interface endpoints: the SageMaker API
# (pipelines, clients in the VPC, presigned URLs), STS (credentials), CloudWatch Logs and
# metrics (job and endpoint logs, alarms' metrics) and KMS (the stack key).
ALWAYS = ("sagemaker.api", "sts", "logs", "monitoring", "kms")
RUNTIME = "sagemaker.runtime"  # invoking endpoints privately
REGISTRY = ("ecr.api", "ecr.dkr")  # pulling training, serving and analyzer images
EVENTS = "events"  # EventBridge: the stack's rules
GATEWAY = "s3"
# Placeholder of a VPC id's full length, to measure IAM policies before the VPC exists.
VPC_ID_PLACEHOLDER = "vpc-" + "0" * 17


def private(spec: Any) -> bool:
    return bool(spec.governance.network == "private")


# --- what the stack creates -----------------------------------------------------------
def vpc_block(settings: Any) -> str:
    return str(settings.network.cidr or DEFAULT_CIDR)


def subnet_blocks(cidr: str) -> list[str]:
    """The private subnets' blocks: the first ZONES quarters of the VPC's block."""
    network = ipaddress.IPv4Network(cidr)
    return [str(block) for block in list(network.subnets(prefixlen_diff=2))[:ZONES]]


def uses_eventbridge(spec: Any, region: str) -> bool:
    """Whether the stack has EventBridge rules: drift violations, retraining on data or drift."""
    for model in spec.models:
        if alarms.monitors_drift(model, region):
            return True
        retrain = model.retraining
        if retrain is not None and model.training is not None and (retrain.new_data_ref or retrain.on_drift):
            return True
        # Data preparation and the evaluation gate watch their pipelines' failed runs; the
        # explainability signals watch their monitoring executions.
        if model.data_prep is not None or (model.training is not None and model.training.evaluation is not None):
            return True
        mon = model.monitoring
        if mon is not None and (mon.explainability or mon.bias or mon.model_quality) and model.serving is not None:
            return True
    return False


def interface_services(spec: Any, region: str) -> list[str]:
    """The AWS services the stack reaches through interface endpoints (see the module docstring)."""
    services = list(ALWAYS)
    if any(m.serving is not None for m in spec.models):
        services.append(RUNTIME)
    if any(m.training is not None or m.serving is not None for m in spec.models):
        services += REGISTRY
    if uses_eventbridge(spec, region):
        services.append(EVENTS)
    return services


def service_name(region: str, service: str) -> str:
    """A VPC endpoint service name, e.g. com.amazonaws.eu-west-1.sagemaker.api."""
    return f"{SERVICE_PREFIX[policies.partition_of(region)]}.{region}.{service}"


def group_name(spec: Any, purpose: str) -> str:
    """A security group's name: unique within the stack's own VPC (GroupName: 255 characters)."""
    return f"{spec.project}-{spec.environment}-{purpose}"


# --- what later stages use -------------------------------------------------------------
@dataclass(frozen=True)
class PrivateNetwork:
    """The stack's network as later stages use it (Outputs and constants: it crosses stacks).

    `known_*` stand, before deployment, for the ids the cloud assigns (the ids themselves for a
    brought network; the subnets' blocks and the groups' names for a created one): content
    hashes of immutable SageMaker resources are computed from them.
    """

    vpc_id: Any
    subnet_ids: list[Any]
    security_group_ids: list[Any]
    deployer: Any  # the ARN of the identity deploying the stack (exempt from the buckets' network rule)
    known_subnets: list[str]
    known_security_groups: list[str]

    def vpc_config(self, *, known: bool = False) -> dict[str, Any]:
        """A VpcConfig as the SDK takes it (models, jobs, monitoring jobs)."""
        if known:
            return {"security_group_ids": list(self.known_security_groups), "subnets": list(self.known_subnets)}
        return {"security_group_ids": list(self.security_group_ids), "subnets": list(self.subnet_ids)}


def network_grants(*, partition: str, region: str, account_id: str, vpc_id: str) -> list[dict[str, Any]]:
    """What an execution role needs for SageMaker to attach its containers to the stack's VPC
    (facts/network.json): creating and deleting network interfaces only in that VPC. The
    Describe actions support no resource-level permission: "*" is their only form."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    in_vpc = {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}}
    actions = fact("aws", "network", "vpc_execution_role_actions").value
    describe = [a for a in actions if a.startswith("ec2:Describe")]
    manage = [a for a in actions if not a.startswith("ec2:Describe") and a != "ec2:CreateNetworkInterface"]
    return [
        {"Sid": "DescribeNetwork", "Effect": "Allow", "Action": describe, "Resource": "*"},
        {"Sid": "CreateNetworkInterfaces", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
         "Resource": f"{ec2}:network-interface/*"},
        {"Sid": "CreateNetworkInterfacesInStackVpc", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
         "Resource": [f"{ec2}:subnet/*", f"{ec2}:security-group/*"], "Condition": in_vpc},
        {"Sid": "ManageNetworkInterfacesInStackVpc", "Effect": "Allow", "Action": manage,
         "Resource": f"{ec2}:network-interface/*", "Condition": in_vpc},
    ]


def grants_of_group(spec: Any, group: str, vpc_id: Any, region: str) -> Any:
    """The VPC id a lifecycle stage's inline policy on `group`'s identity grants network access
    to, or None. A group whose models train or monitor drift attaches the stack's managed
    "training" or "monitoring" policy (governance_grants.groups), which already carries the same
    network grants: repeating them in every lifecycle policy would only spend the role's inline
    size limit (one fully featured model passed it in a private network)."""
    if not vpc_id:
        return None
    attached = any(m.training is not None or alarms.monitors_drift(m, region)
                   for m in spec.models if group_of(m) == group)
    return None if attached else vpc_id


def measured_vpc(settings: Any) -> str:
    """The VPC id the grants name, as validate measures them (a created VPC's is not known yet)."""
    return str(settings.network.vpc_id or VPC_ID_PLACEHOLDER)


# --- validate ---------------------------------------------------------------------------
def check(spec: Any, settings: Any) -> list[Problem]:
    """The network block against governance.network, and what SageMaker needs of a brought VPC."""
    network = settings.network
    base = ("clouds", "aws", "network")
    given = network.model_fields_set
    if not private(spec):
        return [finding(base, "clouds.aws.network has no effect while governance.network is public",
                        hint="set governance: {network: private}, or remove clouds.aws.network",
                        severity="warning")] if given else []
    problems: list[Problem] = []
    if network.vpc_id is None:
        if policies.partition_of(settings.region) not in SERVICE_PREFIX:
            problems.append(finding(
                ("governance", "network"),
                f"the private network the stack creates in {settings.region} needs the VPC endpoint service names "
                f"of the {policies.partition_of(settings.region)} partition, which this version does not know",
                hint="bring a VPC that has its endpoints (clouds.aws.network.vpc_id, subnet_ids, "
                "security_group_ids), deploy to a region of the commercial partition, or use network: public",
                value="private"))
        for field in ("subnet_ids", "security_group_ids"):
            if getattr(network, field):
                problems.append(finding(
                    (*base, field), f"{field} name parts of an existing VPC, but vpc_id is missing",
                    hint="add vpc_id (the VPC they belong to), or remove them to let the stack create its network"))
        return problems
    for field in ("cidr", "client_cidrs"):
        if getattr(network, field):
            problems.append(finding(
                (*base, field), f"{field} configures the VPC the stack creates, and with vpc_id it creates none",
                hint=f"remove {field}: the brought VPC's own settings apply"))
    least = fact("aws", "network", "hosting_min_subnets")
    most = fact("aws", "network", "vpc_config_max_subnets")
    subnets = network.subnet_ids
    if len(subnets) < least.value:
        problems.append(finding(
            (*base, "subnet_ids"),
            f"SageMaker needs at least {least.value} subnets in different availability zones for models in a "
            f"VPC ({least.source}); {len(subnets)} given",
            hint="list the VPC's private subnets of two or more zones (subnet-0123456789abcdef0)", value=subnets))
    elif len(subnets) > most.value:
        problems.append(finding((*base, "subnet_ids"), f"SageMaker takes at most {most.cite()} per job or model",
                                hint=f"list at most {most.value}", value=subnets))
    groups = network.security_group_ids
    limit = fact("aws", "network", "vpc_config_max_security_groups")
    if not groups or len(groups) > limit.value:
        problems.append(finding(
            (*base, "security_group_ids"),
            f"SageMaker's jobs and models take 1 to {limit.cite()}; {len(groups)} given",
            hint="name the security groups the stack's jobs and endpoints run in (sg-0123456789abcdef0): they "
            "must allow HTTPS to the VPC's endpoints and traffic among themselves", value=groups))
    for field, ids in (("subnet_ids", subnets), ("security_group_ids", groups)):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            problems.append(finding((*base, field), f"{', '.join(repeated)} listed more than once",
                                    hint="list each once", value=ids))
    return problems


# --- build ------------------------------------------------------------------------------
def build(ctx: "StageContext") -> PrivateNetwork:
    """The stack's network (created or brought) and the deploying identity (see the docstring)."""
    import pulumi
    import pulumi_aws as aws

    invoke = pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent)
    caller = aws.get_caller_identity_output(opts=invoke)
    # aws:PrincipalArn of an assumed role's session is the role's ARN: the session context gives it.
    deployer = aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
    brought = ctx.settings.network
    if brought.vpc_id is not None:
        return PrivateNetwork(
            vpc_id=brought.vpc_id, subnet_ids=list(brought.subnet_ids),
            security_group_ids=list(brought.security_group_ids), deployer=deployer,
            known_subnets=list(brought.subnet_ids), known_security_groups=list(brought.security_group_ids),
        )
    return _create(ctx, deployer)


def _create(ctx: "StageContext", deployer: Any) -> PrivateNetwork:
    import pulumi
    import pulumi_aws as aws

    spec, region = ctx.spec, ctx.settings.region
    label = f"{spec.project}-{spec.environment}"

    def tags(name: str) -> dict[str, str]:
        return {**ctx.tags(), "Name": f"{label}-{name}"}

    cidr = vpc_block(ctx.settings)
    vpc = aws.ec2.Vpc(ctx.logical("vpc"), cidr_block=cidr, enable_dns_support=True, enable_dns_hostnames=True,
                      tags=tags("private"), opts=ctx.opts())
    aws.ec2.DefaultSecurityGroup(ctx.logical("defaultgroup"), vpc_id=vpc.id, ingress=[], egress=[],
                                 tags=tags("default-unused"), opts=ctx.opts())
    zones = aws.get_availability_zones_output(
        state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
        opts=pulumi.InvokeOutputOptions(provider=ctx.provider, parent=ctx.parent))
    routes = aws.ec2.RouteTable(ctx.logical("routes"), vpc_id=vpc.id, tags=tags("private"), opts=ctx.opts())
    subnets = []
    for index, block in enumerate(subnet_blocks(cidr)):
        zone = chr(ord("a") + index)  # a logical suffix, not the zone's name
        subnet = aws.ec2.Subnet(
            ctx.logical("subnet", zone), vpc_id=vpc.id, cidr_block=block,
            availability_zone=zones.names.apply(lambda names, i=index: names[i]),
            map_public_ip_on_launch=False, tags=tags(f"private-{zone}"), opts=ctx.opts())
        aws.ec2.RouteTableAssociation(ctx.logical("routes", zone), subnet_id=subnet.id, route_table_id=routes.id,
                                      opts=ctx.opts())
        subnets.append(subnet)

    workloads = aws.ec2.SecurityGroup(
        ctx.logical("group", "workloads"), name=group_name(spec, "workloads"), vpc_id=vpc.id,
        description="mlops-infra: the stack's SageMaker jobs and endpoint containers", tags=tags("workloads"),
        opts=ctx.opts())
    endpoints = aws.ec2.SecurityGroup(
        ctx.logical("group", "endpoints"), name=group_name(spec, "endpoints"), vpc_id=vpc.id,
        description="mlops-infra: the stack's interface VPC endpoints", tags=tags("endpoints"), opts=ctx.opts())
    gateway = aws.ec2.VpcEndpoint(
        ctx.logical("endpoint", GATEWAY), vpc_id=vpc.id, service_name=service_name(region, GATEWAY),
        vpc_endpoint_type="Gateway", route_table_ids=[routes.id], tags=tags(GATEWAY), opts=ctx.opts())
    _rules(ctx, workloads=workloads.id, endpoints=endpoints.id, s3=gateway.prefix_list_id)
    for service in interface_services(spec, region):
        aws.ec2.VpcEndpoint(
            ctx.logical("endpoint", service), vpc_id=vpc.id, service_name=service_name(region, service),
            vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=[s.id for s in subnets],
            security_group_ids=[endpoints.id], tags=tags(service), opts=ctx.opts())
    return PrivateNetwork(
        vpc_id=vpc.id, subnet_ids=[s.id for s in subnets], security_group_ids=[workloads.id], deployer=deployer,
        known_subnets=subnet_blocks(cidr), known_security_groups=[group_name(spec, "workloads")],
    )


def _rules(ctx: "StageContext", *, workloads: Any, endpoints: Any, s3: Any) -> None:
    """Least access (see the module docstring); each rule its own resource, so they can name each
    other's groups."""
    import pulumi_aws as aws

    tags = ctx.tags()
    aws.vpc.SecurityGroupIngressRule(
        ctx.logical("rule", "workloads-from-workloads"), security_group_id=workloads, ip_protocol="-1",
        referenced_security_group_id=workloads, description="among the stack's jobs (distributed training)",
        tags=tags, opts=ctx.opts())
    aws.vpc.SecurityGroupEgressRule(
        ctx.logical("rule", "workloads-to-workloads"), security_group_id=workloads, ip_protocol="-1",
        referenced_security_group_id=workloads, description="among the stack's jobs (distributed training)",
        tags=tags, opts=ctx.opts())
    aws.vpc.SecurityGroupEgressRule(
        ctx.logical("rule", "workloads-to-endpoints"), security_group_id=workloads, ip_protocol="tcp",
        from_port=HTTPS, to_port=HTTPS, referenced_security_group_id=endpoints,
        description="HTTPS to the AWS APIs' interface endpoints", tags=tags, opts=ctx.opts())
    aws.vpc.SecurityGroupEgressRule(
        ctx.logical("rule", "workloads-to-s3"), security_group_id=workloads, ip_protocol="tcp",
        from_port=HTTPS, to_port=HTTPS, prefix_list_id=s3, description="HTTPS to S3 through the gateway endpoint",
        tags=tags, opts=ctx.opts())
    aws.vpc.SecurityGroupIngressRule(
        ctx.logical("rule", "endpoints-from-workloads"), security_group_id=endpoints, ip_protocol="tcp",
        from_port=HTTPS, to_port=HTTPS, referenced_security_group_id=workloads,
        description="HTTPS from the stack's jobs and endpoint containers", tags=tags, opts=ctx.opts())
    for block in ctx.settings.network.client_cidrs:
        aws.vpc.SecurityGroupIngressRule(
            ctx.logical("rule", "endpoints-from", block.replace(".", "-").replace("/", "-")),
            security_group_id=endpoints, ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS, cidr_ipv4=block,
            description="HTTPS from clouds.aws.network.client_cidrs", tags=tags, opts=ctx.opts())
