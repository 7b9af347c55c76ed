"""The spec's clouds.aws block."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, Field, field_validator

from mlops_infra.backends.regions import region_check
from mlops_infra.spec.models import Strict
from mlops_infra.spec.types import HintedValueError

ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
# EC2 resource ids: the prefix, then 8 (older resources) or 17 lower-case hex digits.
VPC_ID_PATTERN = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"
SUBNET_ID_PATTERN = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$"
SECURITY_GROUP_ID_PATTERN = r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$"
# The VPC the stack creates: AWS takes IPv4 blocks from /16 to /28; the stack splits its block
# into quarters and uses two of them (one private subnet per zone), so it asks for /16 to /24.
VPC_PREFIXES = (16, 24)
DEFAULT_CIDR = "10.0.0.0/16"


def _ipv4_block(value: str, *, smallest: int = 32, largest: int = 1) -> str:
    try:
        block = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise HintedValueError(f"{value!r} is not an IPv4 block in CIDR form ({exc})",
                               hint="write the network address and prefix length, e.g. 10.20.0.0/16") from None
    if not largest <= block.prefixlen <= smallest:
        raise HintedValueError(f"{value} is a /{block.prefixlen} block",
                               hint=f"use a block from /{largest} to /{smallest}")
    return value


def _vpc_block(value: str) -> str:
    return _ipv4_block(value, largest=VPC_PREFIXES[0], smallest=VPC_PREFIXES[1])


def _client_block(value: str) -> str:
    return _ipv4_block(value, largest=1)


VpcId = Annotated[str, Field(pattern=VPC_ID_PATTERN, description="a VPC id, vpc-0123456789abcdef0")]
SubnetId = Annotated[str, Field(pattern=SUBNET_ID_PATTERN, description="a subnet id, subnet-0123456789abcdef0")]
SecurityGroupId = Annotated[str, Field(pattern=SECURITY_GROUP_ID_PATTERN,
                                       description="a security group id, sg-0123456789abcdef0")]


class AwsModelOverrides(Strict):
    """SageMaker instance types that replace the catalog's choice for one model."""

    training_instance_type: Optional[str] = Field(
        None, description="SageMaker training instance type (ml.*), e.g. ml.g5.2xlarge"
    )
    serving_instance_type: Optional[str] = Field(
        None, description="SageMaker endpoint (production variant) instance type (ml.*), e.g. ml.m5.large"
    )


class AwsOverrides(Strict):
    models: dict[str, AwsModelOverrides] = Field(
        default_factory=dict, description="per model name (models[].name)"
    )


class AwsNetwork(Strict):
    """Where the stack's private network comes from (used with governance.network: private).

    Without vpc_id the stack creates its own VPC (cidr); with it, the stack uses that VPC, its
    subnets and security groups, and creates nothing network-wide: the VPC must already have
    the endpoints its jobs and endpoints call (docs/networking-aws.md).
    """

    vpc_id: Optional[VpcId] = Field(
        None, description="an existing VPC to use (vpc-0123456789abcdef0); without it the stack creates one"
    )
    subnet_ids: list[SubnetId] = Field(
        default_factory=list,
        description="with vpc_id: its private subnets SageMaker places jobs and endpoints in, at least two, in "
        "different availability zones (subnet-0123456789abcdef0)",
    )
    security_group_ids: list[SecurityGroupId] = Field(
        default_factory=list,
        description="with vpc_id: the security groups of the stack's jobs and endpoints, one to five "
        "(sg-0123456789abcdef0)",
    )
    cidr: Annotated[Optional[str], AfterValidator(lambda v: v if v is None else _vpc_block(v))] = Field(
        None, description=f"the IPv4 block of the VPC the stack creates, /16 to /24 (default {DEFAULT_CIDR})"
    )
    client_cidrs: list[Annotated[str, AfterValidator(_client_block)]] = Field(
        default_factory=list,
        description="IPv4 blocks (a VPN, peered networks, CI runners) that may reach the private AWS endpoints "
        "the stack creates, over HTTPS; nothing else outside the stack's jobs and endpoints may",
    )


class AwsSettings(Strict):
    region: Annotated[str, AfterValidator(region_check("aws", what="AWS region"))] = Field(
        description="AWS region, e.g. us-east-1 (one of backends/aws/regions.json)"
    )
    account_id: Optional[str] = Field(
        None,
        pattern=ACCOUNT_ID_PATTERN,
        description="the 12-digit AWS account the stack deploys to, quoted (\"123456789012\"); required to plan "
        "or deploy on AWS: bucket names are made unique to it, and deployments with another account's "
        "credentials are refused",
    )
    overrides: AwsOverrides = Field(default_factory=AwsOverrides)
    network: AwsNetwork = Field(
        default_factory=AwsNetwork,
        description="with governance.network: private, the VPC to create (cidr) or to use (vpc_id, subnet_ids, "
        "security_group_ids)",
    )

    @field_validator("account_id", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # YAML reads unquoted digits as a number (and 012345678901 loses its leading zero).
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write the account id as a quoted string, e.g. \"012345678901\": unquoted, YAML "
                             "reads it as a number and drops leading zeros")
        return value
