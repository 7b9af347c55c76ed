"""What the policy rules need to know about Azure plans (pure data, no SDK)."""

from __future__ import annotations

from mlops_infra.backends.azure.catalog import VM_SIZES
from mlops_infra.policy.facts import CloudFacts, Require

_ACCOUNT = "azure-native:storage:StorageAccount"

FACTS = CloudFacts(
    stateful=frozenset(
        {
            _ACCOUNT,
            "azure-native:storage:BlobContainer",
            "azure-native:keyvault:Vault",
            "azure-native:keyvault:Key",
            "azure-native:resources:ResourceGroup",
        }
    ),
    encryption=(
        Require(_ACCOUNT, "encryption.keySource", "Microsoft.Keyvault", why="customer-managed key"),
        Require(_ACCOUNT, "encryption.requireInfrastructureEncryption", True),
        Require("azure-native:keyvault:Key", "properties.rotationPolicy", why="key rotation"),
    ),
    public_access=(
        Require(_ACCOUNT, "allowBlobPublicAccess", False),
        Require(_ACCOUNT, "allowSharedKeyAccess", False),
        Require("azure-native:containerregistry:Registry", "anonymousPullEnabled", False),
    ),
    public_principals=(),
    # Built-in roles that grant everything: Owner, Contributor, User Access Administrator.
    broad_roles=(
        r"8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        r"b24988ac-6180-42a0-ab88-20f7382dd24c",
        r"18d7d88d-bdd0-40e5-a4ae-bfc1a6aa0d5b",
    ),
    audit=(Require("azure-native:monitor:DiagnosticSetting", "logs"),),
    replica_limits=(("azure-native:monitor:AutoscaleSetting", "profiles.0.capacity.maximum"),),
    gpus={name: int(facts["gpus"]) for name, facts in VM_SIZES.items()},
)
