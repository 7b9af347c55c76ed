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


class GcpSettings(Strict):
    project: str = Field(pattern=PROJECT_ID_PATTERN, description="GCP project id: 6-30 lowercase letters, digits and hyphens, a letter first, no hyphen last, e.g. acme-ml-dev")
    region: Annotated[str, AfterValidator(region_check("gcp", what="Vertex AI region"))] = Field(
        description="GCP region where Vertex AI runs, e.g. us-central1 (one of backends/gcp/regions.json)"
    )
    overrides: GcpOverrides = Field(default_factory=GcpOverrides)
    name_generation: int = Field(
        1,
        ge=1,
        le=99,
        description="raise by one after `destroy --delete-data` before deploying the stack again: GCP never frees "
        "the names of Cloud KMS key rings and keys, and holds a deleted custom role's id for up to 37 days, so the "
        "next generation takes new ones",
    )
