"""The spec's clouds.fakecloud block."""

from __future__ import annotations

from pydantic import Field

from mlops_infra.spec.models import Strict


class FakeCloudSettings(Strict):
    region: str = Field(pattern=r"^[a-z]+-[0-9]$", description="region, e.g. north-1")
    tenant: str = Field(pattern=r"^[a-z0-9]{6}$", description="the tenant id that globally unique names carry")
