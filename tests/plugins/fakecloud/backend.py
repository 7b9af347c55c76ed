"""FakeCloud: facts, provider and naming. Its resources are plain custom resources of the
package `fakecloud`, which the mock monitor registers like any provider's."""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.base import Backend
from mlops_infra.backends.fakecloud.settings import FakeCloudSettings
from mlops_infra.naming import NameStyle

ONLY = "FakeCloud has only keys, identities and buckets"


class FakeCloudBackend(Backend):
    name = "fakecloud"
    display_name = "FakeCloud"
    sdk_package = "pulumi"  # no SDK of its own: Pulumi's core registers its resources
    settings_model = FakeCloudSettings
    settings_example = "clouds: {fakecloud: {region: north-1, tenant: abc123}}"
    naming_styles = {
        "fakecloud.bucket": NameStyle(global_unique=True),
        "fakecloud.key": NameStyle(),
        "fakecloud.identity": NameStyle(letter_first=True),
    }
    unsupported = {stage: ONLY for stage in (
        "tracking", "training", "registry", "serving", "monitoring", "retraining",
        "batch", "data_prep", "features", "workspaces", "explainability",
    )}
    scale_to_zero = True
    kept_types = frozenset({"fakecloud:index:Key", "fakecloud:index:Bucket"})
    force_delete_inputs = {"fakecloud:index:Bucket": "forceDestroy"}
    physical_name_inputs = frozenset({"name"})

    def name_scope(self, settings: Any) -> str:
        return f"{settings.tenant}/{settings.region}"

    def create_provider(self, spec: Any, settings: Any) -> Any:
        import pulumi

        return pulumi.ProviderResource("fakecloud", "fakecloud", {"region": settings.region})
