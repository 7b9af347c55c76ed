"""The spec's clouds.gcp block."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from mlops_infra.backends.regions import region_check
from mlops_infra.spec.models import Strict

# GCP project ids: 6-30 characters, a lowercase letter first, lowercase letters, digits and
# hyphens, no trailing hyphen (Resource Manager projects.create, projectId).
PROJECT_ID_PATTERN = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"


class GcpModelOverrides(Strict):
    """Raw Vertex AI machine specs for one model; each is checked against backends/gcp/catalog.py."""

    training_machine_type: Optional[str] = Field(None, description="Vertex AI custom job machine type, e.g. n2-standard-8")
    training_accelerator_type: Optional[str] = Field(None, description="Vertex AI accelerator type, e.g. NVIDIA_L4")
    training_accelerator_count: Optional[int] = Field(None, ge=1, le=16, description="accelerators per machine")
    serving_machine_type: Optional[str] = Field(None, description="Vertex AI prediction machine type, e.g. n2-standard-4")
    serving_accelerator_type: Optional[str] = Field(None, description="Vertex AI accelerator type, e.g. NVIDIA_TESLA_T4")
    serving_accelerator_count: Optional[int] = Field(None, ge=1, le=16, description="accelerators per replica")


class GcpOverrides(Strict):
    models: dict[str, GcpModelOverrides] = Field(default_factory=dict, description="per model name")


class GcpNetwork(Strict):
    """clouds.gcp.network: how governance.network: private reaches GCP (backends/gcp/governance_network.py)."""

    network: Optional[str] = Field(
        None,
        description="an existing VPC network to use instead of creating one, projects/PROJECT/global/networks/NAME "
        "(in clouds.gcp.project; it must already have Private Google Access on its subnets and, for training, "
        "private services access: nothing network-wide is created then)",
    )
    subnet_range: str = Field(
        "10.8.0.0/22",
        description="the created network's subnet (Private Google Access on), an RFC 1918 range; not with network",
    )
    peering_range: str = Field(
        "10.9.0.0/16",
        description="the range reserved for Vertex AI custom jobs peered into the created network (a /16 runs 63 "
        "parallel jobs of up to 8 nodes); not with network",
    )
    service_perimeter: Optional[str] = Field(
        None,
        description="the VPC Service Controls perimeter the project is in, accessPolicies/NUMBER/servicePerimeters/NAME "
        "(made at organization level, outside the stack): stating it acknowledges the prerequisite and points the "
        "created network's Google APIs at restricted.googleapis.com",
    )


class GcpSettings(Strict):
    project: str = Field(pattern=PROJECT_ID_PATTERN, description="GCP project id: 6-30 lowercase letters, digits and hyphens, a letter first, no hyphen last, e.g. acme-ml-dev")
    region: Annotated[str, AfterValidator(region_check("gcp", what="Vertex AI region"))] = Field(
        description="GCP region where Vertex AI runs, e.g. us-central1 (one of backends/gcp/regions.json)"
    )
    overrides: GcpOverrides = Field(default_factory=GcpOverrides)
    network: GcpNetwork = Field(default_factory=GcpNetwork, description="private networking (governance.network: private)")
    name_generation: int = Field(
        1,
        ge=1,
        le=99,
        description="raise by one after `destroy --delete-data` before deploying the stack again: GCP never frees "
        "the names of Cloud KMS key rings and keys, and holds a deleted custom role's id for up to 37 days, so the "
        "next generation takes new ones",
    )
