"""How each Azure physical name is built (rules: data/cloud-name-rules.json).

Storage accounts and key vaults are globally unique DNS names, so they always
carry the stack's hash (seeded by the backend's name scope: location and
subscription). Storage accounts allow only lowercase letters and digits, 3-24
characters: the separator is empty and long projects are truncated before the
hash. Names Azure fixes ("default" for blob services and management policies)
and role assignment GUIDs do not go through the namer.
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
}
