"""Azure storage: one storage account per stack, one blob container per bucket.

The account (StorageV2, Standard_LRS) refuses anonymous access, shared keys and plain HTTP,
requires TLS 1.2, wraps its data with the stack's Key Vault key through a user-assigned
identity (customer-managed key, plus infrastructure encryption) and is protected. Its blob
service keeps versions, soft-deletes blobs and containers for 30 days and records a change
feed. Lifecycle rules (one per container, matched by the container's name as prefix) archive,
expire and prune old versions as the spec says.

Why Standard_LRS, not Standard_ZRS: the spec's archive_after_days needs the Archive tier, which
Azure offers only on LRS, GRS and RA-GRS accounts; choosing ZRS only for stacks without archive
rules would make adding one rule a redundancy conversion of the whole account.

Versioning is account-wide on Azure: a bucket with `versioning: false` stays versioned
(validate warns: a gap); its old versions still expire after noncurrent_expire_after_days.
Azure counts a version's age from when that version was written, not from when it was
superseded, so old versions may go sooner than on S3 or GCS.

When the spec uses tracking, training, registry or serving, this stage also declares the stack's
Azure ML workspace on this account (storage_workspace.py says what it holds and why it is declared
here) and shares it (WorkspaceRef) with the later stages.

Teardown: the account, its containers, its blob service properties (versioning, soft delete) and
its lifecycle rules are protected, and so is the blob audit setting: a default destroy keeps the
data and what guards it. Azure deletes non-empty containers and accounts without any flag, so
`destroy --delete-data` needs no force-delete input here (Backend.force_delete_inputs is empty).

Grants on data (role assignments on containers, never on the account):
- each model group's identity reads its own data and writes its own models through one role
  assignment made by governance (governance_access.py);
- serving reads model artifacts (under the models/ prefix of every training output) and reads and
  writes captured requests under CAPTURE_PREFIX, nothing else, when some model serves. These two
  grants are the stack's, not one per model: Azure allows one assignment per (identity, role,
  scope), whatever its condition, and every endpoint runs as the one serving identity, so
  per-model prefixes would isolate nothing; prefix conditions keep the grants the same size
  however many models serve. Online deployments wait for them (StorageGrants).

Network: governance.network private refuses public network access to the account (trusted Azure
services, such as the key vault check and Event Grid, still pass) and gives it a private endpoint
for blobs in the stack's inbound network (network.py); Azure ML reaches it through its managed
network.

Checked here (validate): buckets that ask for no versioning, and the Azure ML quotas the
workspace's computes and endpoints take (storage_workspace.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_infra.backends.azure.common import BLOB_DNS_SUFFIX, after, grant, share_waits
from mlops_infra.backends.azure.governance import AzureGovernance
from mlops_infra.backends.azure.governance_access import prefix_condition, read_condition
from mlops_infra.backends.azure.naming import AUDIT_SETTING_NAME
from mlops_infra.backends.azure.network import PrivateNetwork, private_endpoint
from mlops_infra.backends.azure.serving_rules import models_prefix
from mlops_infra.backends.azure.storage_workspace import build_workspace, quota_problems, uses_workspace
from mlops_infra.naming import stable_hash
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, CAPTURE_PREFIX, BucketRef, StorageOutputs

if TYPE_CHECKING:
    from pulumi_azure_native import storage

    from mlops_infra.backends.azure.settings import AzureSettings
    from mlops_infra.backends.context import StageContext
    from mlops_infra.spec.models import SpecBase
    from mlops_infra.spec.problems import Problem

SOFT_DELETE_DAYS = 30
CHANGE_FEED_DAYS = 30


@dataclass(frozen=True)
class StorageGrants:
    """The serving identity's grants on the artifact container: online deployments wait for them."""

    serving: list[Any]


def check(spec: SpecBase, settings: AzureSettings) -> list[Problem]:
    from mlops_infra.backends.azure import BACKEND

    # Blob versioning is a property of the storage account, not of a container: every bucket
    # shares the one account, so `versioning: false` cannot switch it off for one bucket.
    unversioned = [
        BACKEND.gap("storage.buckets[].versioning.false", ("storage", "buckets", i, "versioning"), value=False)
        for i, bucket in enumerate(spec.storage.buckets)
        if not bucket.versioning
    ]
    return unversioned + quota_problems(spec, settings)


def build(ctx: StageContext) -> StorageOutputs:
    from pulumi_azure_native import monitor, storage

    spec = ctx.spec
    governance = ctx.upstream.of(GovernanceOutputs)
    azure = ctx.upstream.of(AzureGovernance)
    rg = governance.scope
    location = ctx.settings.location
    private = spec.governance.network == "private"
    cmk = azure.storage_identity

    account_name = ctx.namer.name("azure.storage.account")
    account = storage.StorageAccount(
        ctx.logical("account"),
        account_name=account_name,
        resource_group_name=rg,
        location=location,
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
        access_tier=storage.AccessTier.HOT,
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        allowed_copy_scope=storage.AllowedCopyScope.AAD,
        is_local_user_enabled=False,
        is_sftp_enabled=False,
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        public_network_access=storage.PublicNetworkAccess.DISABLED if private else storage.PublicNetworkAccess.ENABLED,
        network_rule_set=storage.NetworkRuleSetArgs(
            default_action=storage.DefaultAction.DENY if private else storage.DefaultAction.ALLOW,
            bypass=storage.Bypass.AZURE_SERVICES,
        ),
        identity=storage.IdentityArgs(
            type=storage.IdentityType.USER_ASSIGNED,
            # One Output for the whole list (not a list holding an Output): the input is a list of
            # identity ids but the output a map keyed by id, and the offline engine, which echoes
            # inputs as outputs, can only pass the list through while it is unknown.
            user_assigned_identities=cmk.id.apply(lambda identity_id: [identity_id]),
        ),
        encryption=storage.EncryptionArgs(
            key_source=storage.KeySource.MICROSOFT_KEYVAULT,
            # No key version: the account follows the key's rotations.
            key_vault_properties=storage.KeyVaultPropertiesArgs(
                key_name=azure.key_name, key_vault_uri=azure.vault_uri
            ),
            encryption_identity=storage.EncryptionIdentityArgs(encryption_user_assigned_identity=cmk.id),
            require_infrastructure_encryption=True,
            services=storage.EncryptionServicesArgs(
                blob=_account_key(),
                file=_account_key(),
                queue=_account_key(),
                table=_account_key(),
            ),
        ),
        tags=ctx.tags(),
        opts=ctx.opts(protect=True),
    )
    account_ref = after(account.tags, account_name)
    if private:
        # Clients reach the buckets through the stack's inbound network (network.py).
        private_endpoint(ctx, ctx.upstream.of(PrivateNetwork), target="blob", resource_id=account.id, rg=rg)

    blob_service = storage.BlobServiceProperties(
        ctx.logical("blob-service"),
        account_name=account_ref,
        resource_group_name=rg,
        blob_services_name="default",
        is_versioning_enabled=True,  # account-wide: see the module docstring
        delete_retention_policy=storage.DeleteRetentionPolicyArgs(
            enabled=True, days=SOFT_DELETE_DAYS, allow_permanent_delete=False
        ),
        container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=SOFT_DELETE_DAYS),
        change_feed=storage.ChangeFeedArgs(enabled=True, retention_in_days=CHANGE_FEED_DAYS),
        opts=ctx.opts(protect=True),
    )
    # Containers and lifecycle rules wait for the blob service, so versioning is on before data lands.
    service_ref = after(blob_service.is_versioning_enabled, account_name)

    # bucket name -> its lifecycle settings (Bucket and Artifacts share the three fields)
    lifecycles: dict[str, Any] = {b.name: b for b in spec.storage.buckets}
    lifecycles[ARTIFACTS] = spec.storage.artifacts
    containers: dict[str, storage.BlobContainer] = {}
    refs: dict[str, BucketRef] = {}
    rules: list[storage.ManagementPolicyRuleArgs] = []
    for name in sorted([b.name for b in spec.storage.buckets] + [ARTIFACTS]):  # spec order must not matter
        physical = ctx.namer.name("azure.storage.container", name)
        container = storage.BlobContainer(
            ctx.logical("bucket", name),
            container_name=physical,
            account_name=service_ref,
            resource_group_name=rg,
            public_access=storage.PublicAccess.NONE,
            opts=ctx.opts(protect=True),
        )
        containers[name] = container
        refs[name] = BucketRef(
            name=name,
            physical=after(container.public_access, physical),
            uri=after(container.public_access, f"https://{account_name}.{BLOB_DNS_SUFFIX}/{physical}"),
        )
        rule = lifecycle_rule(name, physical, lifecycles[name])
        if rule is not None:
            rules.append(rule)

    if rules:
        storage.ManagementPolicy(
            ctx.logical("lifecycle"),
            account_name=service_ref,
            resource_group_name=rg,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(rules=rules),
            opts=ctx.opts(protect=True),
        )

    if any(m.serving is not None for m in spec.models):
        share_waits(ctx, StorageGrants(serving=_serving_grants(ctx, containers[ARTIFACTS].id, azure.subscription_id)))

    if azure.audit_workspace_id is not None:
        monitor.DiagnosticSetting(
            ctx.logical("blob-audit"),
            name=AUDIT_SETTING_NAME,
            resource_uri=blob_service.id,
            workspace_id=azure.audit_workspace_id,
            logs=[
                monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True)
                for category in ("StorageRead", "StorageWrite", "StorageDelete")
            ],
            opts=ctx.opts(protect=True),
        )

    artifacts = refs.pop(ARTIFACTS)
    if uses_workspace(spec):
        ctx.share(
            build_workspace(
                ctx, governance=governance, azure=azure, account=account, account_name=account_ref, artifacts=artifacts
            )
        )
    return StorageOutputs(buckets=refs, artifacts=artifacts)


def _account_key() -> storage.EncryptionServiceArgs:
    from pulumi_azure_native import storage

    return storage.EncryptionServiceArgs(enabled=True, key_type=storage.KeyType.ACCOUNT)


def rule_name(bucket: str) -> str:
    """A lifecycle rule name (letters and digits only) for a bucket: 'raw-data' -> 'rawData'.

    A hyphen before a digit cannot be shown by case ('a-1' and 'a1' would both read 'a1'):
    such names get the bucket's hash appended.
    """
    head, *rest = bucket.split("-")
    text = head + "".join(part[:1].upper() + part[1:] for part in rest)
    if any(part[:1].isdigit() for part in rest):
        text += stable_hash(bucket)
    return text


def lifecycle_rule(name: str, container: str, cfg: Any) -> storage.ManagementPolicyRuleArgs | None:
    """The lifecycle rule of one container, or None when the bucket asks for none."""
    from pulumi_azure_native import storage

    base: dict[str, Any] = {}
    if cfg.archive_after_days is not None:
        base["tier_to_archive"] = storage.DateAfterModificationArgs(
            days_after_modification_greater_than=cfg.archive_after_days
        )
    if cfg.expire_after_days is not None:
        base["delete"] = storage.DateAfterModificationArgs(days_after_modification_greater_than=cfg.expire_after_days)
    version = None
    if cfg.noncurrent_expire_after_days is not None:
        version = storage.ManagementPolicyVersionArgs(
            delete=storage.DateAfterCreationArgs(days_after_creation_greater_than=cfg.noncurrent_expire_after_days)
        )
    if not base and version is None:
        return None
    return storage.ManagementPolicyRuleArgs(
        name=rule_name(name),
        type=storage.RuleType.LIFECYCLE,
        enabled=True,
        definition=storage.ManagementPolicyDefinitionArgs(
            filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"], prefix_match=[f"{container}/"]),
            actions=storage.ManagementPolicyActionArgs(
                base_blob=storage.ManagementPolicyBaseBlobArgs(**base) if base else None,
                version=version,
            ),
        ),
    )


def _serving_grants(ctx: StageContext, artifacts: Any, subscription_id: Any) -> list[Any]:
    serving = ctx.upstream.of(GovernanceOutputs).identities["serving"]
    models = models_prefix()
    common = {
        "principal_id": serving.principal,
        "principal": "serving",
        "scope": artifacts,
        "target": f"bucket/{ARTIFACTS}",
        "subscription_id": subscription_id,
    }
    return [
        grant(
            ctx,
            role="Storage Blob Data Reader",
            description=f"mlops-infra: serving reads model artifacts under {models}",
            condition=read_condition((models,)),
            **common,
        ),
        grant(
            ctx,
            role="Storage Blob Data Contributor",
            description=f"mlops-infra: serving writes captured data under {CAPTURE_PREFIX}",
            condition=prefix_condition(CAPTURE_PREFIX),
            **common,
        ),
    ]
