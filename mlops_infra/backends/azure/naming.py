"""How each Azure physical name is built (rules: data/cloud-name-rules.json).

Storage accounts and key vaults are globally unique DNS names, so they always
carry the stack's hash (seeded by the backend's name scope: location and
subscription). Storage accounts allow only lowercase letters and digits, 3-24
characters: the separator is empty and long projects are truncated before the
hash. Names Azure fixes ("default" for blob services and management policies)
and role assignment GUIDs do not go through the namer.

Container registries are globally unique DNS names of letters and digits only,
like storage accounts. Names inside the stack's Azure ML workspace (environments,
components, model containers, jobs) are scoped to that one workspace: they are
the spec's model names plus a fixed suffix (training.py, registry.py), which the
rules table has no entry for and which always fit Azure ML's asset name rule.
"""

from mlops_infra.naming import NameStyle

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
}
