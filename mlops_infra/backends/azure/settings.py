"""The spec's clouds.azure block."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from mlops_infra.backends.regions import region_check
from mlops_infra.spec.models import Strict

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AzureModelOverrides(Strict):
    training_vm_size: Optional[str] = Field(
        None, description="Azure ML compute cluster VM size, e.g. Standard_NC24ads_A100_v4"
    )
    serving_instance_type: Optional[str] = Field(
        None, description="managed online endpoint instance type, e.g. Standard_DS3_v2"
    )


class AzureOverrides(Strict):
    models: dict[str, AzureModelOverrides] = Field(default_factory=dict, description="per model name")


class AzureNetwork(Strict):
    """Where a private stack's private endpoints go (governance.network: private; backends/azure/network.py)."""

    subnet_id: Optional[str] = Field(
        None,
        description=(
            "bring a network: the ARM id of an existing subnet (/subscriptions/<id>/resourceGroups/<group>/providers/"
            "Microsoft.Network/virtualNetworks/<network>/subnets/<subnet>) in clouds.azure.location for the stack's "
            "private endpoints; the stack then creates no virtual network, security group or DNS zone"
        ),
    )
    private_dns_zones: Optional[str] = Field(
        None,
        description=(
            "with subnet_id: the ARM id of the resource group that holds your privatelink DNS zones "
            "(/subscriptions/<id>/resourceGroups/<group>); the stack's private endpoints register their records there"
        ),
    )
    address_space: Optional[str] = Field(
        None,
        description=(
            "without subnet_id: the IPv4 range (CIDR) of the virtual network the stack creates, default 10.240.0.0/24; "
            "pick one that does not overlap the networks you will peer with it"
        ),
    )


class AzureSettings(Strict):
    location: Annotated[str, AfterValidator(region_check("azure", what="Azure region"))] = Field(
        description="Azure region (location, programmatic name), e.g. westeurope (one of backends/azure/regions.json)"
    )
    subscription_id: str = Field(
        pattern=GUID_PATTERN,
        description=(
            "subscription id (a GUID) to deploy into (az account show --query id --output tsv). Required: it feeds the "
            "names Azure wants unique across all customers (storage account, key vault, container registry, "
            "online endpoints), so two organizations with the same project never collide"
        ),
    )
    tenant_id: Optional[str] = Field(
        None, pattern=GUID_PATTERN, description="Microsoft Entra tenant id, a GUID (default: the credentials' tenant)"
    )
    generation: int = Field(
        0,
        ge=0,
        le=999,
        description=(
            "bump it to deploy again at once after `destroy --delete-data`: Azure keeps a deleted key vault's "
            "name (purge protection) and a deleted Azure ML workspace's name (soft delete) reserved for a "
            "while, and a new generation gives those two new names"
        ),
    )
    overrides: AzureOverrides = Field(default_factory=AzureOverrides)
    workspace_users: dict[str, Annotated[str, Field(pattern=GUID_PATTERN)]] = Field(
        default_factory=dict,
        description=(
            "workspaces.users[].name -> the Microsoft Entra object id (a GUID) of the person its compute instance is "
            "assigned to (az ad user show --id <upn> --query id --output tsv): Azure ML compute instances belong to "
            "one user, named by object id"
        ),
    )
    network: Optional[AzureNetwork] = Field(
        None,
        description=(
            "with governance.network: private, the network the stack's private endpoints live in: bring a subnet "
            "(subnet_id, private_dns_zones), or size the network the stack creates (address_space)"
        ),
    )
