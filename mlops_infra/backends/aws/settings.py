"""The spec's clouds.aws block."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from mlops_infra.backends.regions import region_check
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
    region: Annotated[str, AfterValidator(region_check("aws", what="AWS region"))] = Field(
        description="AWS region, e.g. us-east-1 (one of backends/aws/regions.json)"
    )
    overrides: AwsOverrides = Field(default_factory=AwsOverrides)
