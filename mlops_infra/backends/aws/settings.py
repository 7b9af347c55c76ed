"""The spec's clouds.aws block."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from mlops_infra.spec.models import Strict


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


class AwsSettings(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", description="AWS region, e.g. us-east-1")
    overrides: AwsOverrides = Field(default_factory=AwsOverrides)
