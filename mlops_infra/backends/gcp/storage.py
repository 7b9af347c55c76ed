"""GCP storage: one Cloud Storage bucket per data bucket plus the artifact bucket, and who may use them.

Every bucket: regional (with the key and Vertex AI), uniform bucket-level access (IAM only, no
ACLs), public access prevention enforced, versioned (unless a data bucket opts out), encrypted
with the governance key (objects written with other keys are refused), lifecycle-managed,
soft delete on, labelled, protected. Only the teardown before `destroy --delete-data` marks them
force-destroyable (their objects are deleted with them).

TLS-only needs no setting on GCP: the Cloud Storage APIs (JSON and XML) are served over HTTPS
only. The one plain-HTTP path GCS has is static website hosting through a CNAME, which needs a
`website` block: none is ever set here (tests assert it).

Access (backends/gcp/grants.py decides it from the whole spec, so every stack of a split spec
agrees): each model group's identity reads its models' data prefixes and writes their output and
checkpoint prefixes in the artifact bucket, each prefix a managed folder with its own allow
policy; a group reading a whole bucket gets objectViewer on the bucket; the serving identity
reads each served model's artifact folder. All of them are stack-wide (the shared stack of a
split spec holds them): one grant per folder and principal, whoever needs it. Deleting a managed
folder never deletes its objects (facts/reserved-names.json), so folders are always deletable
(force_destroy) and a default destroy may remove them while the data stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_infra.backends.gcp import grants
from mlops_infra.backends.gcp.naming import GOOGLE_LIKE
from mlops_infra.backends.gcp.shared import ObjectGrants
from mlops_infra.spec.problems import Problem
from mlops_infra.stages.base import finding
from mlops_infra.stages.governance import GovernanceOutputs
from mlops_infra.stages.storage import ARTIFACTS, BucketRef, StorageOutputs

if TYPE_CHECKING:
    import pulumi_gcp as gcp

    from mlops_infra.backends.context import StageContext

SOFT_DELETE_SECONDS = 7 * 86400  # the GCS default, stated so plans show it (7-90 days allowed)
ABORT_MULTIPART_AFTER_DAYS = 7


def check(spec: Any, settings: Any) -> list[Problem]:
    """Words GCS refuses in bucket names: every physical bucket name holds the project and
    environment, and data buckets their spec name."""
    problems: list[Problem] = []
    words: list[tuple[tuple, str]] = [(("project",), spec.project), (("environment",), spec.environment)]
    words += [(("storage", "buckets", i, "name"), b.name) for i, b in enumerate(spec.storage.buckets)]
    for path, word in words:
        if GOOGLE_LIKE.search(word) or (path == ("project",) and word.startswith("goog")):
            problems.append(
                finding(
                    path,
                    f"{word!r} would put 'goog'/'google' into Cloud Storage bucket names, which GCS rejects",
                    hint="bucket names may not start with 'goog' or contain 'google' or close misspellings",
                    value=word,
                )
            )
    return problems


def build(ctx: StageContext) -> StorageOutputs:
    import pulumi_gcp as gcp

    governance = ctx.upstream.of(GovernanceOutputs)
    buckets: dict[str, Any] = {
        b.name: _bucket(ctx, b.name, b, versioning=b.versioning, key_id=governance.key_id) for b in ctx.spec.storage.buckets
    }
    buckets[ARTIFACTS] = _bucket(ctx, ARTIFACTS, ctx.spec.storage.artifacts, versioning=True, key_id=governance.key_id)
    access = grants.storage_access(ctx.spec, served_paths=grants.served_paths(ctx.spec, ctx.namer))
    principals = {grants.group_key(name): identity for name, identity in governance.groups.items()}
    principals[grants.SERVING] = governance.identities["serving"]
    principals[grants.AUTOMATION] = governance.identities["automation"]
    # Stays in this stack (resources never cross stacks): later stages wait for their grants.
    object_grants = ObjectGrants()
    ctx.upstream.add(object_grants)

    for bucket, bindings in access.whole.items():
        for binding in bindings:
            object_grants.by_key[grants.grant_key(bucket, binding.principal)] = gcp.storage.BucketIAMMember(
                ctx.logical("bucket-grant", f"{bucket}/{_who(binding)}"),
                bucket=buckets[bucket].name,
                role=binding.role,
                member=principals[binding.principal].principal,
                opts=ctx.opts(),
            )
    for folder, bindings in access.folders.items():
        managed = gcp.storage.ManagedFolder(
            ctx.logical("folder", f"{folder.bucket}/{folder.name}"),
            bucket=buckets[folder.bucket].name,
            name=folder.name,
            # Deleting a managed folder leaves its objects in place: a destroy that removes the
            # folder (and the grants on it) never touches the data under it.
            force_destroy=True,
            opts=ctx.opts(),
        )
        for binding in bindings:
            # One resource per folder and principal: served models sharing an artifact folder
            # share the serving identity's grant (two resources for one binding would each
            # remove it for both when deleted). Endpoints wait for theirs (serving.py).
            location = f"{folder.bucket}/{folder.name}"
            object_grants.by_key[grants.grant_key(location, binding.principal)] = gcp.storage.ManagedFolderIamMember(
                ctx.logical("folder-grant", f"{location}{_who(binding)}"),
                bucket=managed.bucket,
                managed_folder=managed.name,
                role=binding.role,
                member=principals[binding.principal].principal,
                opts=ctx.opts(),
            )
    return StorageOutputs(
        buckets={b.name: _ref(b.name, buckets[b.name]) for b in ctx.spec.storage.buckets},
        artifacts=_ref(ARTIFACTS, buckets[ARTIFACTS]),
    )


def _who(binding: grants.Binding) -> str:
    """A binding's access and principal for logical names: "read-group-<group>", "read-serving".

    Logical names put the bucket before a "/" and the folder (which ends in "/") before the
    principal, so no bucket, folder and group names can combine into another grant's name."""
    verb = "write" if binding.role == grants.OBJECT_USER else "read"
    principal = binding.principal
    if principal.startswith(grants.GROUP):
        principal = "group-" + principal.removeprefix(grants.GROUP)
    return f"{verb}-{principal}"


def _bucket(ctx: StageContext, name: str, settings: Any, *, versioning: bool, key_id: Any) -> gcp.storage.Bucket:
    import pulumi_gcp as gcp

    return gcp.storage.Bucket(
        ctx.logical("bucket", name),
        name=ctx.namer.name("gcp.storage.bucket", name),
        project=ctx.settings.project,
        location=ctx.settings.region.upper(),  # the key ring's region: CMEK needs the same location
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning={"enabled": versioning},
        # key_id waits for the Cloud Storage agent's grant on the key (see governance.py).
        encryption={
            "default_kms_key_name": key_id,
            "google_managed_encryption_enforcement_config": {"restriction_mode": "FullyRestricted"},
            "customer_supplied_encryption_enforcement_config": {"restriction_mode": "FullyRestricted"},
        },
        lifecycle_rules=lifecycle_rules(
            archive_after_days=settings.archive_after_days,
            expire_after_days=settings.expire_after_days,
            noncurrent_expire_after_days=settings.noncurrent_expire_after_days,
        ),
        soft_delete_policy={"retention_duration_seconds": SOFT_DELETE_SECONDS},
        force_destroy=ctx.teardown,  # empties the bucket when destroy --delete-data deletes it
        labels=ctx.tags(),
        opts=ctx.opts(protect=True),
    )


def _ref(name: str, bucket: gcp.storage.Bucket) -> BucketRef:
    return BucketRef(name=name, physical=bucket.name, uri=bucket.name.apply(lambda n: f"gs://{n}"))


def lifecycle_rules(
    *, archive_after_days: int | None, expire_after_days: int | None, noncurrent_expire_after_days: int | None
) -> list[gcp.storage.BucketLifecycleRuleArgsDict]:
    """The bucket's lifecycle rules, in a fixed order (pure: tests compare them with the spec)."""
    rules: list[gcp.storage.BucketLifecycleRuleArgsDict] = []
    if archive_after_days is not None:
        rules.append(
            {
                "action": {"type": "SetStorageClass", "storage_class": "ARCHIVE"},
                "condition": {"age": archive_after_days, "with_state": "LIVE"},
            }
        )
    if expire_after_days is not None:
        # On a versioned bucket this makes the live object noncurrent; the next rule removes it.
        rules.append({"action": {"type": "Delete"}, "condition": {"age": expire_after_days, "with_state": "LIVE"}})
    if noncurrent_expire_after_days is not None:
        # Kept on unversioned buckets too: it clears versions left from when versioning was on.
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {"days_since_noncurrent_time": noncurrent_expire_after_days, "with_state": "ARCHIVED"},
            }
        )
    rules.append(
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": ABORT_MULTIPART_AFTER_DAYS}}
    )
    return rules
