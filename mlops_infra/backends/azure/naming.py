"""How each Azure physical name is built (rules: data/cloud-name-rules.json).

Storage accounts and key vaults are globally unique DNS names, so they always
carry the stack's hash, seeded by the backend's name scope: the location and the
subscription id, which clouds.azure requires, so two organizations with the same
project and environment get different names. The key vault and the Azure ML
workspace also take clouds.azure.generation when it is not 0: Azure keeps their
names reserved for a while after deletion (facts/reserved-names.json). Storage accounts allow only lowercase letters and digits, 3-24
characters: the separator is empty and long projects are truncated before the
hash. Names Azure fixes ("default" for blob services and management policies)
and role assignment GUIDs do not go through the namer.

Container registries are globally unique DNS names of letters and digits only,
like storage accounts. Names inside the stack's Azure ML workspace (environments,
components, model containers, jobs) are scoped to that one workspace: they are
the spec's model names plus a fixed suffix (training.py, registry.py), which the
rules table has no entry for and which always fit Azure ML's asset name rule.

Online endpoints are DNS names (<endpoint>.<location>.inference.ml.azure.com), unique per
region across all customers: they carry the stack's hash. A deployment's name holds a hash of
its content (serving.py), so a changed image or model is a new deployment next to the old one.
Each deployment's autoscale setting takes the deployment's name (autoscale settings live in the
resource group; deployment names are unique in it and fit the autoscale name rule, which the
rules table has no entry for). Metric alerts of an endpoint are named by alarm_name(), which the
monitoring stage uses too, so both stages agree on them without depending on each other. The
errors alarm is a log search alert (scheduled query rule: Azure metric alerts cannot divide one
metric by another); its name follows the metric alert rule, which is stricter than the scheduled
query rule one (every character it forbids, the other forbids too). alert_name() names the other
alerts (traffic, drift), which no rollout watches.

Monitoring and retraining (issue 5): the action group is "azure.monitor.action_group"; Logic Apps
"azure.logic.workflow"; Event Grid event subscriptions "azure.eventgrid.subscription". Event Grid
system topics (3-128 letters, digits and hyphens, resource-name-rules Microsoft.EventGrid/
systemTopics) have no entry in the rules table yet: they use the subscription kind, whose rule
(3-64, the same characters) is stricter. Azure ML schedules are workspace assets named like the
other assets (training.asset_name); workbooks and custom role definitions are named by GUIDs.
"""

from typing import Any

from mlops_infra.naming import Namer, NameStyle

STYLES = {
    "azure.resource_group": NameStyle(),
    "azure.keyvault.vault": NameStyle(global_unique=True, letter_first=True),
    "azure.keyvault.key": NameStyle(),
    "azure.managed_identity": NameStyle(),
    "azure.storage.account": NameStyle(separator="", global_unique=True),
    "azure.storage.container": NameStyle(),
    "azure.loganalytics.workspace": NameStyle(),
    "azure.acr.registry": NameStyle(separator="", global_unique=True),
    "azure.ml.workspace": NameStyle(),
    "azure.ml.compute_cluster": NameStyle(letter_first=True),
    "azure.ml.datastore": NameStyle(separator="_"),
    # Compute instances are DNS names (<name>.<location>.instances.azureml.ms): unique in the region
    # across customers, like online endpoints (workspaces.py).
    "azure.ml.compute_instance": NameStyle(global_unique=True, letter_first=True),
    "azure.ml.online_endpoint": NameStyle(global_unique=True, letter_first=True),
    "azure.ml.online_deployment": NameStyle(letter_first=True),
    "azure.monitor.metric_alert": NameStyle(),
    "azure.monitor.action_group": NameStyle(),
    "azure.eventgrid.subscription": NameStyle(),
    "azure.logic.workflow": NameStyle(),
    # governance.network: private (network.py): the network, its subnet and security group, the
    # private endpoints and the DNS zone links; private DNS zone names are fixed by Azure.
    "azure.network.virtual_network": NameStyle(),
    "azure.network.subnet": NameStyle(),
    "azure.network.security_group": NameStyle(),
    "azure.network.private_endpoint": NameStyle(),
    "azure.network.dns_link": NameStyle(),
}

# Diagnostic settings are named per resource they watch (the rules table has no entry for them):
# the audit ones guard kept data and stay with it (backend.keeps), the others go with the stack.
AUDIT_SETTING_NAME = "mlops-infra-audit"
# The subscription's activity log export: one per subscription, owned by one stack (singletons).
ACTIVITY_LOG_SETTING_NAME = "mlops-infra-activity-log"

ALARM_KINDS = ("latency", "errors")  # the endpoint alarms a rollout would watch
OTHER_ALERT_KINDS = ("traffic", "drift")  # alerts no rollout watches


def alarm_name(namer: Namer, model: str, kind: str) -> str:
    """The metric alert name of one of a model endpoint's alarms ("latency" or "errors")."""
    if kind not in ALARM_KINDS:
        raise ValueError(f"unknown alarm kind {kind!r}; expected one of {', '.join(ALARM_KINDS)}")
    return namer.name("azure.monitor.metric_alert", model, kind)


def alert_name(namer: Namer, model: str, kind: str) -> str:
    """The name of a model's other alerts ("traffic": too few requests; "drift": drift detected)."""
    if kind not in OTHER_ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; expected one of {', '.join(OTHER_ALERT_KINDS)}")
    return namer.name("azure.monitor.metric_alert", model, kind)


def generation_parts(settings: Any) -> tuple[str, ...]:
    """Name parts of what Azure reserves after deletion: none for generation 0 (clouds.azure)."""
    return (f"g{settings.generation}",) if settings.generation else ()


def vault_name(namer: Namer, settings: Any) -> str:
    """The key vault: purge protection keeps a deleted vault's name for its retention period."""
    return namer.name("azure.keyvault.vault", *generation_parts(settings))


def workspace_name(namer: Namer, settings: Any) -> str:
    """The Azure ML workspace: soft delete keeps a deleted workspace's name for 14 days."""
    return namer.name("azure.ml.workspace", *generation_parts(settings))
