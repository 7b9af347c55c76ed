"""Azure: the cloud's facts, provider, mocks and gaps (no SDK import at module level).

Each stage's checks live beside its build() in the stage module (Backend.check runs them); what
Azure cannot do as a spec asks is data (GAPS), which those checks report through gap() and from which the
README's table of gaps is generated.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from mlops_infra.backends.azure import catalog
from mlops_infra.backends.azure.gaps import GAPS
from mlops_infra.backends.azure.naming import ACTIVITY_LOG_SETTING_NAME, AUDIT_SETTING_NAME, STYLES
from mlops_infra.backends.azure.settings import AzureSettings
from mlops_infra.backends.base import Backend, Gap, Singleton
from mlops_infra.plan import UNKNOWN
from mlops_infra.spec.problems import Path, Problem
from mlops_infra.stages.base import finding

CLIENT_CONFIG = "azure-native:authorization:getClientConfig"
TRIGGER_CALLBACK = "azure-native:logic:listWorkflowTriggerCallbackUrl"
ENDPOINT_KEYS = "azure-native:machinelearningservices:listOnlineEndpointKeys"

# Azure Storage charges archived blobs for at least 180 days (early deletion period,
# "Access tiers for blob data", Microsoft Learn).
ARCHIVE_MINIMUM_DAYS = 180

_NO_VALUE: Any = object()  # gap() without a value

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
    unsupported: ClassVar[dict[str, str]] = {}  # every stage deploys on Azure
    gaps: ClassVar[Mapping[str, Gap]] = GAPS

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
        if token == ENDPOINT_KEYS:
            # serving.auth: key: Azure generates the keys; the plan never holds one.
            return {"primaryKey": UNKNOWN, "secondaryKey": UNKNOWN}
        return {}

    # --- validation ---------------------------------------------------------
    endpoint_service = "Azure managed online endpoints"
    archive_tier = "the Archive tier"
    archive_minimum_days = ARCHIVE_MINIMUM_DAYS
    storage_service = "Azure Storage"

    def override_field(self, purpose: str) -> str:
        return catalog.OVERRIDE_FIELD[purpose]

    def resolve_compute(self, compute: Any, purpose: str, settings: AzureSettings) -> Any:
        return catalog.instance_type(compute, purpose, settings)

    def check_cloud(self, spec: Any, settings: AzureSettings) -> list[Problem]:
        return catalog.override_problems(spec, settings)

    def gap(
        self, feature: str, path: Path, *, value: Any = _NO_VALUE, detail: str = "", hint: str | None = None
    ) -> Problem:
        """Backend.gap, with what this spec adds to the reason (names, numbers) and a hint fitted to it.

        Without a value, the finding shows none (a gap such as "drift does not reach the webhook"
        has no value worth repeating).
        """
        gap = self.gaps[feature]
        extra = {} if value is _NO_VALUE else {"value": value}
        return finding(path, gap.reason + detail, hint=hint or gap.hint or None, severity=gap.severity, **extra)
