"""The spec's clouds.aws block."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import AfterValidator, Field, field_validator

from mlops_infra.backends.regions import region_check
from mlops_infra.spec.models import Strict

ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"


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
    account_id: Optional[str] = Field(
        None,
        pattern=ACCOUNT_ID_PATTERN,
        description="the 12-digit AWS account the stack deploys to, quoted (\"123456789012\"); required to plan "
        "or deploy on AWS: bucket names are made unique to it, and deployments with another account's "
        "credentials are refused",
    )
    overrides: AwsOverrides = Field(default_factory=AwsOverrides)

    @field_validator("account_id", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # YAML reads unquoted digits as a number (and 012345678901 loses its leading zero).
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write the account id as a quoted string, e.g. \"012345678901\": unquoted, YAML "
                             "reads it as a number and drops leading zeros")
        return value
