"""Azure: provider setup and the facts validate needs (no SDK import at module level)."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Mapping

from mlops_infra.backends.azure import access_rules, catalog, endpoint_rules, ml_rules, schedules
from mlops_infra.backends.azure.naming import (
    ACTIVITY_LOG_SETTING_NAME,
    AUDIT_SETTING_NAME,
    STYLES,
    alarm_name,
    vault_name,
    workspace_name,
)
from mlops_infra.backends.azure.settings import AzureSettings
from mlops_infra.backends.base import Backend, Singleton
from mlops_infra.facts import fact
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.tagging import MANAGED_KEYS

CLIENT_CONFIG = "azure-native:authorization:getClientConfig"
TRIGGER_CALLBACK = "azure-native:logic:listWorkflowTriggerCallbackUrl"

# Azure Storage charges archived blobs for at least 180 days (early deletion period,
# "Access tiers for blob data", Microsoft Learn).
ARCHIVE_MINIMUM_DAYS = 180

# (model part, catalog purpose, override field)
_OVERRIDABLE = (
    ("training", "training", "training_vm_size"),
    ("serving", "serving", "serving_instance_type"),
)


_OVERRIDE_FIELD = {purpose: field for _, purpose, field in _OVERRIDABLE}

DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
# What a default destroy keeps: the data (storage, registry, ML workspace with its runs and model
# containers, logs), the key and its vault, the resource group that holds them, and what guards
# the data (blob versioning and soft delete, lifecycle rules, audit diagnostic settings and the
# activity log export). The identities the kept account and workspace run as are kept too,
# because those need them (their key grants with them): destroy keeps what protected resources need.
KEPT_TYPES = frozenset(
    {
        "azure-native:resources:ResourceGroup",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Key",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobServiceProperties",
        "azure-native:storage:BlobContainer",
        "azure-native:storage:ManagementPolicy",
        DIAGNOSTIC_SETTING,
        "azure-native:monitor:SubscriptionDiagnosticSetting",
        "azure-native:operationalinsights:Workspace",
        "azure-native:machinelearningservices:Workspace",
        "azure-native:machinelearningservices:ModelContainer",
        "azure-native:containerregistry:Registry",
    }
)


class AzureBackend(Backend):
    name = "azure"
    display_name = "Azure"
    sdk_package = "pulumi_azure_native"
    settings_model = AzureSettings
    naming_styles = STYLES
    settings_example = "clouds: {azure: {location: westeurope, subscription_id: <your subscription's id>}}"
    prerequisite_types = frozenset({"azure-native:authorization:RoleAssignment"})
    # The lifecycle stages of this round land one cloud at a time; until then validate says so.
    unsupported: ClassVar[dict[str, str]] = {
        stage: "not implemented on Azure yet"
        for stage in ("batch", "data_prep", "features", "workspaces", "explainability")
    }

    # --- teardown -----------------------------------------------------------
    kept_types = KEPT_TYPES
    # Azure deletes non-empty blob containers, storage accounts and container registries as they
    # are: `destroy --delete-data` needs no force-delete input.
    force_delete_inputs: ClassVar[Mapping[str, str]] = {}

    def keeps(self, resource_type: str, inputs: Mapping[str, Any]) -> bool:
        # Diagnostic settings: the audit ones guard kept data; an endpoint's traffic log goes with it.
        if resource_type == DIAGNOSTIC_SETTING:
            return inputs.get("name") == AUDIT_SETTING_NAME
        return resource_type in self.kept_types

    # --- several stacks in one subscription ---------------------------------
    # Inputs holding names Azure wants unique beyond the stack (subscription, region, tenant or
    # world); children repeat their parent's (a container's accountName). Names inside one
    # workspace or one resource (model containers, diagnostic settings) are the stack's own.
    physical_name_inputs = frozenset(
        {
            "resourceGroupName",
            "vaultName",
            "keyName",
            "accountName",
            "containerName",
            "registryName",
            "workspaceName",
            "resourceName",
            "computeName",
            "endpointName",
            "deploymentName",
            "roleAssignmentName",
            "roleName",
            "actionGroupName",
            "ruleName",
            "autoscaleSettingName",
            "workflowName",
            "systemTopicName",
            "eventSubscriptionName",
        }
    )

    def singletons(self, spec: Any, settings: AzureSettings) -> list[Singleton]:
        """What a stack has once per subscription: the activity log export (with audit logs).

        Nothing else the stack makes is once per subscription or region: its resource group holds
        everything else, the custom roles and role assignments carry the stack in their names,
        and Event Grid system topics are one per source resource, which is the stack's. Resource
        providers must be registered in the subscription beforehand (azure-native declares no
        registrations, so no stack owns them).
        """
        if not spec.governance.audit_logs:
            return []
        return [
            Singleton(
                key=f"azure/subscription/{settings.subscription_id}/activity-log-export",
                what=f"the subscription's activity log export (diagnostic setting {ACTIVITY_LOG_SETTING_NAME})",
            )
        ]

    def name_scope(self, settings: AzureSettings) -> str:
        return f"{settings.location}/{settings.subscription_id}"

    def create_provider(self, spec: Any, settings: AzureSettings) -> Any:
        import pulumi
        import pulumi_azure_native as azure_native

        extra: dict[str, Any] = {}
        if settings.tenant_id:
            extra["tenant_id"] = settings.tenant_id
        return azure_native.Provider(
            "azure",
            location=settings.location,
            subscription_id=settings.subscription_id,
            opts=pulumi.ResourceOptions(),
            **extra,
        )

    def mock_call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == CLIENT_CONFIG:
            # Stages call it only for what clouds.azure does not give, so every answer is cloud-only.
            return {"clientId": UNKNOWN, "objectId": UNKNOWN, "subscriptionId": UNKNOWN, "tenantId": UNKNOWN}
        if token == TRIGGER_CALLBACK:
            # A Logic App trigger's signed URL: only Azure can sign it.
            return {"value": UNKNOWN, "basePath": UNKNOWN, "method": UNKNOWN, "relativePath": UNKNOWN}
        return {}

    # --- validation ---------------------------------------------------------
    endpoint_service = "Azure managed online endpoints"
    archive_tier = "the Archive tier"
    archive_minimum_days = ARCHIVE_MINIMUM_DAYS
    storage_service = "Azure Storage"

    def override_field(self, purpose: str) -> str:
        return _OVERRIDE_FIELD[purpose]

    def resolve_compute(self, compute: Any, purpose: str, settings: AzureSettings) -> Any:
        return catalog.instance_type(compute, purpose, settings)

    def check_cloud(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        problems = self._check_overrides(spec, settings)
        problems += self._check_max_wait(spec)
        problems += self._check_ml(spec)
        problems += self._check_storage(spec)
        problems += self._check_serving(spec, settings)
        problems += self._check_retraining(spec)
        problems += self._check_drift(spec)
        problems += access_rules.problems(spec, self.namer(spec, settings))
        problems += ml_rules.quota_problems(spec, settings)
        problems += self._check_reserved_names(spec, settings)
        return problems

    def _check_reserved_names(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        """Names Azure keeps after `destroy --delete-data`: said before the first deploy."""
        namer = self.namer(spec, settings)
        vault = fact(self.name, "reserved-names", "key-vault-retention-days")
        held = [
            f"key vault {vault_name(namer, settings)} for {vault.value} days (purge protection, which the storage "
            "account's customer-managed key requires)"
        ]
        sources = [vault.source]
        if ml_rules.uses_workspace(spec):
            workspace = fact(self.name, "reserved-names", "ml-workspace-soft-delete-days")
            held.append(f"Azure ML workspace {workspace_name(namer, settings)} for {workspace.value} days (soft delete)")
            sources.append(workspace.source)
        return [
            finding(
                ("clouds", "azure"),
                f"after `destroy --delete-data`, Azure keeps the names of the {' and '.join(held)}; deploying this "
                f"stack again before then fails (sources: {', '.join(sources)})",
                hint=f"to deploy again sooner, set clouds.azure.generation: {settings.generation + 1}, which gives "
                "those new names",
                severity="warning",
            )
        ]

    def _check_overrides(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        problems: list[Problem] = []
        models = {m.name: m for m in spec.models}
        base = ("clouds", "azure", "overrides", "models")
        for name, override in sorted(settings.overrides.models.items()):
            path = (*base, name)
            model = models.get(name)
            if model is None:
                continue  # reported by checks.unknown_override_models
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

    def _check_max_wait(self, spec: Any) -> list[Problem]:
        return [
            finding(
                ("models", i, "training", "max_wait"),
                "has no effect on Azure: low-priority compute has no wait limit, only max_runtime applies",
                hint="remove max_wait, or keep it for the other clouds",
                severity="warning",
            )
            for i, model in enumerate(spec.models)
            if model.training is not None and model.training.max_wait is not None
        ]

    def _check_ml(self, spec: Any) -> list[Problem]:
        problems = [
            finding(
                ("models", i, "registry", "approval"),
                "Azure ML has no approval gate on model versions: mlops-infra records approval: manual as the "
                "model container's 'approval' tag, and nothing in Azure stops an unapproved version from serving",
                hint="keep manual approval in your release process, or use approval: automatic",
                value="manual",
                severity="warning",
            )
            for i, model in enumerate(spec.models)
            if model.registry is not None and model.registry.approval == "manual"
        ]
        tracking = spec.tracking
        if tracking is not None and tracking.enabled and "size" in tracking.model_fields_set:
            problems.append(
                finding(
                    ("tracking", "size"),
                    "has no effect on Azure: the Azure ML workspace's MLflow server is not sized",
                    hint="remove size, or keep it for the other clouds",
                    value=tracking.size,
                    severity="warning",
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

    def _check_serving(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        """What Azure ML managed online endpoints cannot do as the spec asks (serving.py explains)."""
        served = [(i, m) for i, m in enumerate(spec.models) if m.serving is not None]
        if not served:
            return []
        namer = self.namer(spec, settings)
        account = namer.name("azure.storage.account")
        container = namer.name("azure.storage.container", "artifacts")
        problems: list[Problem] = []
        for i, model in served:
            serving = model.serving
            base = ("models", i, "serving")
            rollout = serving.rollout
            if rollout.mode == "linear":
                problems.append(
                    finding(
                        (*base, "rollout", "mode"),
                        "Azure ML cannot step traffic up by itself: a linear rollout needs something to move "
                        "the split every `wait`, and managed online endpoints only hold the split they are given",
                        hint=f"use mode: canary with canary_percent: {endpoint_rules.traffic_percent(rollout)} "
                        "(the split holds until the next release or until you set mode: all-at-once)",
                        value="linear",
                    )
                )
            if rollout.mode == "canary":
                problems.append(
                    finding(
                        (*base, "rollout", "wait"),
                        "has no effect on Azure: the new deployment keeps canary_percent of the traffic and the "
                        "previous one the rest until the next `up` that changes it; nothing promotes the canary "
                        "after the wait",
                        hint="promote with rollout mode: all-at-once (the previous deployment is then deleted), "
                        "or let the next release replace the older of the two",
                        value=rollout.wait,
                        severity="warning",
                    )
                )
            watched = _alarm_kinds(model)
            if rollout.rollback_on_alarms and watched:
                alarms = ", ".join(alarm_name(namer, model.name, kind) for kind in watched)
                problems.append(
                    finding(
                        (*base, "rollout", "rollback_on_alarms"),
                        "Azure ML has no automatic rollback: the endpoint's alarms "
                        f"({alarms}) notify but do not move traffic back",
                        hint="roll back by deploying the previous image again; during a canary, set the traffic "
                        "back with `az ml online-endpoint update --traffic`; or set rollback_on_alarms: false",
                        value=True,
                        severity="warning",
                    )
                )
            for field in ("scale_in_cooldown", "scale_out_cooldown"):
                seconds = getattr(serving.autoscaling, field)
                if seconds < endpoint_rules.MIN_COOLDOWN_SECONDS:
                    problems.append(
                        finding(
                            (*base, "autoscaling", field),
                            f"Azure Monitor autoscale waits at least {endpoint_rules.MIN_COOLDOWN_SECONDS} seconds "
                            f"between scale actions: {seconds} s becomes 1 minute",
                            hint="use 60s or more",
                            value=seconds,
                            severity="warning",
                        )
                    )
            source = endpoint_rules.model_source(serving.model_uri, account=account, container=container, model=model.name)
            models = endpoint_rules.models_prefix()
            if source.kind == "unsupported":
                problems.append(
                    finding(
                        (*base, "model_uri"),
                        "Azure ML reads model files from Azure storage only (https://, azureml://, wasbs:// or "
                        "abfss:// URIs)",
                        hint=f"copy the model into the stack's artifact bucket under {models}{model.name}/ and "
                        "point model_uri there, or drop model_uri to serve the training output",
                        value=serving.model_uri,
                    )
                )
            elif source.kind == "external" or (source.kind == "artifacts" and not source.path.startswith(models)):
                where = "outside the stack's artifact bucket" if source.kind == "external" else f"outside {models}"
                problems.append(
                    finding(
                        (*base, "model_uri"),
                        f"the model lies {where}: the serving identity gets no read access to it, so the "
                        "deployment cannot load it unless you grant that",
                        hint=f"put it under {models} in the artifact bucket, or give the stack's serving identity "
                        "Storage Blob Data Reader on it",
                        value=serving.model_uri,
                        severity="warning",
                    )
                )
        total_tags = len(spec.tags) + len(MANAGED_KEYS)
        if total_tags > endpoint_rules.MAX_AUTOSCALE_TAGS:
            problems.append(
                finding(
                    ("tags",),
                    f"Azure Monitor autoscale settings take at most {endpoint_rules.MAX_AUTOSCALE_TAGS} tags; "
                    f"with mlops-infra's own {len(MANAGED_KEYS)}, this spec gives them {total_tags}",
                    hint=f"keep at most {endpoint_rules.MAX_AUTOSCALE_TAGS - len(MANAGED_KEYS)} tags under tags:",
                    value=len(spec.tags),
                )
            )
        if spec.governance.network == "private":
            problems.append(
                finding(
                    ("governance", "network"),
                    "with network: private, online endpoints accept scoring requests only through a private "
                    "endpoint of the Azure ML workspace, which this stack does not create yet",
                    hint="add a private endpoint for the workspace in your virtual network (with its private DNS "
                    "zones), or use network: public",
                    value="private",
                    severity="warning",
                )
            )
        return problems


    def _check_retraining(self, spec: Any) -> list[Problem]:
        """Crons and time zones an Azure ML schedule cannot express exactly (schedules.py)."""
        problems: list[Problem] = []
        for i, model in enumerate(spec.models):
            retrain = model.retraining
            if retrain is None or not retrain.schedule:
                continue
            base = ("models", i, "retraining")
            try:
                schedules.ncrontab(retrain.schedule)
            except schedules.Untranslatable as exc:
                problems.append(
                    finding(
                        (*base, "schedule"),
                        f"{exc}, so Azure would run it on fewer days",
                        hint="restrict only one of day-of-month and day-of-week (e.g. '0 3 1 * *' or '0 3 * * 1')",
                        value=retrain.schedule,
                    )
                )
            if schedules.windows_zone(retrain.timezone) is None:
                close = difflib.get_close_matches(retrain.timezone, sorted(schedules.WINDOWS_ZONES), n=3)
                problems.append(
                    finding(
                        (*base, "timezone"),
                        "Azure ML schedules take Windows time zone names, and mlops-infra maps no Windows zone for "
                        f"{retrain.timezone!r}",
                        hint=(f"did you mean {', '.join(close)}? " if close else "")
                        + "supported: the zones in mlops_infra/backends/azure/schedules.py (WINDOWS_ZONES), or UTC",
                        value=retrain.timezone,
                    )
                )
        return problems

    def _check_drift(self, spec: Any) -> list[Problem]:
        """What an Azure ML drift monitor needs that only the user can provide, and where it stops."""
        problems = [
            finding(
                ("models", i, "monitoring", "drift", "baseline"),
                "Azure ML model monitors read the drift baseline as an MLTable: "
                + _where(model.monitoring.drift.baseline_ref)
                + " must hold an MLTable file describing the baseline's data files, with the columns of the "
                "endpoint's captured inputs",
                hint="write one with the mltable Python package (mltable.from_delimited_files(...).save(...)) "
                "next to the baseline files",
                severity="warning",
            )
            for i, model in enumerate(spec.models)
            if model.monitoring is not None and model.monitoring.drift is not None
        ]
        if not spec.monitoring.notify.webhook:
            return problems
        return problems + [
            finding(
                ("models", i, "monitoring", "drift"),
                "Azure ML model monitors notify by email only: drift on this model reaches monitoring.notify.emails "
                "but not the webhook (on_drift adds an Azure Monitor alert that does)",
                hint=f"set models[{i}].retraining.on_drift: true, or watch the monitor in Azure ML studio",
                severity="warning",
            )
            for i, model in enumerate(spec.models)
            if model.monitoring is not None
            and model.monitoring.drift is not None
            and not (model.retraining is not None and model.retraining.on_drift)
        ]


def _where(ref: Any) -> str:
    """'bucket 'raw'' or 'churn/baseline/ in bucket 'features''."""
    return f"{ref.prefix} in bucket {ref.bucket!r}" if ref.prefix else f"bucket {ref.bucket!r}"


def _alarm_kinds(model: Any) -> list[str]:
    """The endpoint alarms a model's monitoring block asks for (what a rollback would watch)."""
    monitoring = model.monitoring
    if monitoring is None:
        return []
    kinds = []
    if monitoring.latency_p99_ms is not None:
        kinds.append("latency")
    if monitoring.error_rate_percent is not None:
        kinds.append("errors")
    return kinds
