"""Azure: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

import difflib
from typing import Any

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.naming import STYLES
from mlops_infra.backends.azure.settings import AzureSettings
from mlops_infra.backends.base import Backend, CatalogMiss
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding

CLIENT_CONFIG = "azure-native:authorization:getClientConfig"

# (model part, catalog purpose, override field)
_OVERRIDABLE = (
    ("training", "training", "training_vm_size"),
    ("serving", "serving", "serving_instance_type"),
)


class AzureBackend(Backend):
    name = "azure"
    display_name = "Azure"
    sdk_package = "pulumi_azure_native"
    settings_model = AzureSettings
    naming_styles = STYLES
    settings_example = "clouds: {azure: {location: westeurope}}"
    unsupported = {
        "tracking": "not implemented yet on Azure (the Azure ML workspace's MLflow server arrives with the training issue)",
        "training": "not implemented yet on Azure (Azure ML compute clusters and jobs arrive with the training issue)",
        "registry": "not implemented yet on Azure (Azure ML model registry arrives with the training issue)",
        "serving": "not implemented yet on Azure (managed online endpoints arrive with the serving issue)",
        "monitoring": "not implemented yet on Azure (Azure Monitor alerts arrive with the monitoring issue)",
        "retraining": "not implemented yet on Azure (Azure ML schedules and Event Grid triggers arrive with the monitoring issue)",
    }

    def name_scope(self, settings: AzureSettings) -> str:
        return f"{settings.location}/{settings.subscription_id or ''}"

    def create_provider(self, spec: Any, settings: AzureSettings) -> Any:
        import pulumi
        import pulumi_azure_native as azure_native

        extra: dict[str, Any] = {}
        if settings.subscription_id:
            extra["subscription_id"] = settings.subscription_id
        if settings.tenant_id:
            extra["tenant_id"] = settings.tenant_id
        return azure_native.Provider("azure", location=settings.location, opts=pulumi.ResourceOptions(), **extra)

    def mock_call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == CLIENT_CONFIG:
            # Stages call it only for what clouds.azure does not give, so every answer is cloud-only.
            return {"clientId": UNKNOWN, "objectId": UNKNOWN, "subscriptionId": UNKNOWN, "tenantId": UNKNOWN}
        return {}

    # --- validation ---------------------------------------------------------
    def check(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        problems = self._check_overrides(spec, settings)
        problems += self._check_compute(spec, settings)
        problems += self._check_storage(spec)
        return problems

    def _check_overrides(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        problems: list[Problem] = []
        models = {m.name: m for m in spec.models}
        base = ("clouds", "azure", "overrides", "models")
        for name, override in sorted(settings.overrides.models.items()):
            path = (*base, name)
            model = models.get(name)
            if model is None:
                close = difflib.get_close_matches(name, sorted(models), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known models: {', '.join(sorted(models)) or 'none'}"
                problems.append(finding(path, f"overrides name an unknown model {name!r}", hint=hint, value=name))
                continue
            for part, purpose, field in _OVERRIDABLE:
                value = getattr(override, field)
                if value is None:
                    continue
                field_path = (*path, field)
                message = catalog.check_override(value, purpose)
                if message:
                    problems.append(
                        finding(
                            field_path,
                            message,
                            hint=f"see {catalog.SERVICE[purpose]} sizes in mlops_infra/backends/azure/catalog.py",
                            value=value,
                        )
                    )
                    continue
                block = getattr(model, part)
                if block is None:
                    problems.append(
                        finding(
                            field_path,
                            f"has no effect: model {name!r} has no {part} block",
                            hint=f"remove the override or add models[{spec.models.index(model)}].{part}",
                            severity="warning",
                        )
                    )
                    continue
                short = catalog.unmet(value, block.compute, purpose)
                if short:
                    problems.append(
                        finding(
                            field_path,
                            f"{value} falls short of the model's {part} compute ({block.compute.label}): "
                            + ", ".join(short),
                            hint="pick a larger size or lower the requirement",
                            value=value,
                            severity="warning",
                        )
                    )
        return problems

    def _check_compute(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            override = settings.overrides.models.get(model.name)
            for part, purpose, field in _OVERRIDABLE:
                block = getattr(model, part)
                if block is None or (override is not None and getattr(override, field)):
                    continue
                try:
                    catalog.instance_type(block.compute, purpose, settings)
                except CatalogMiss as miss:
                    problems.append(finding(("models", i, part, "compute"), miss.message, hint=miss.hint))
            if model.training is not None and model.training.max_wait is not None:
                problems.append(
                    finding(
                        ("models", i, "training", "max_wait"),
                        "has no effect on Azure: low-priority compute has no wait limit, only max_runtime applies",
                        hint="remove max_wait, or keep it for the other clouds",
                        severity="warning",
                    )
                )
            if model.serving is not None and model.serving.autoscaling.min_replicas == 0:
                problems.append(
                    finding(
                        ("models", i, "serving", "autoscaling", "min_replicas"),
                        "Azure managed online endpoints cannot scale to zero (a deployment runs at least 1 instance)",
                        hint="set min_replicas: 1",
                        value=0,
                    )
                )
        return problems

    def _check_storage(self, spec: Any) -> list[Problem]:
        # Blob versioning is a property of the storage account, not of a container: every bucket
        # shares the one account, so `versioning: false` cannot switch it off for one bucket.
        return [
            finding(
                ("storage", "buckets", i, "versioning"),
                f"bucket {bucket.name!r} stays versioned on Azure: blob versioning is account-wide and the "
                "stack's other buckets need it",
                hint="old versions still expire after noncurrent_expire_after_days",
                value=False,
                severity="warning",
            )
            for i, bucket in enumerate(spec.storage.buckets)
            if not bucket.versioning
        ]
