"""Who may touch which blobs on Azure, and what that costs in Azure RBAC (no SDK: validate uses it).

One identity per model group (mlops_infra/access.py) trains the group's models, runs their drift
monitors and reads their data. Azure bounds that design in three places (facts/iam-limits.json):
- one role assignment per (principal, role, scope), whatever its condition: per-model prefixes
  cannot be separate assignments of one identity on one container, they are one condition;
- a condition is at most 8 KB long: one identity for the whole fleet (the old "training"
  identity) passed it at about 35 models, so the condition is per group and bounded by the group;
- 4,000 role assignments per subscription, fixed and shared by every stack in it.
So each group identity holds exactly one role assignment: a custom role of the stack ("model
data", ROLE_ACTIONS / ROLE_DATA_ACTIONS) on the stack's resource group, which holds only this
stack's resources, with one condition that names the group's containers and prefixes. What the
role grants beyond blobs (pull images from the stack's registry, write metrics to its workspace,
use its key) has no condition: the stack has one of each. A fleet of N single-model groups costs
N assignments, plus FIXED ones for the stack (role_assignments() counts them; a test checks the
count against the plan).

The condition (group_condition) is Microsoft's "read or list blobs in named containers with a
path" shape, extended to writes: reads and listings are allowed under the group's data prefixes
(training inputs, drift baselines, new-data triggers), under its models' artifact prefixes
(trained models, checkpoints, captured requests) and in the workspace's system containers (run
logs and the default datastore); writes and deletes only under its models' trained-model and
checkpoint prefixes and in the system containers. Every other blob action is left out of the
role, so nothing escapes the condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from mlops_infra.access import ReaderGroup, covering_prefixes, reader_groups
from mlops_infra.backends.azure.storage_workspace import uses_workspace
from mlops_infra.facts import fact
from mlops_infra.stages.base import finding
from mlops_infra.stages.storage import ARTIFACTS, capture_prefix
from mlops_infra.stages.training import checkpoint_prefix, output_prefix

if TYPE_CHECKING:
    from mlops_infra.naming import Namer
    from mlops_infra.spec.models import Model, SpecBase
    from mlops_infra.spec.problems import Problem

CLOUD = "azure"
_CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
_BLOBS = f"{_CONTAINERS}/blobs"
CONTAINER_NAME = f"@Resource[{_CONTAINERS}:name]"
BLOB_PATH = f"@Resource[{_BLOBS}:path]"
LIST_PREFIX = f"@Request[{_BLOBS}:prefix]"

# The stack's "model data" role. Sources: Azure resource provider operations and the built-in
# roles it narrows (Storage Blob Data Contributor without container management, AcrPull,
# AzureML Metrics Writer, Key Vault Crypto User without sign/verify), learn.microsoft.com/azure/
# role-based-access-control/built-in-roles, read 2026-12-05.
ROLE_ACTIONS = (
    f"{_CONTAINERS}/read",
    "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
    "Microsoft.ContainerRegistry/registries/pull/read",
    "Microsoft.MachineLearningServices/workspaces/metrics/resource/write",
)
READ = f"{_BLOBS}/read"
WRITES = (f"{_BLOBS}/write", f"{_BLOBS}/add/action", f"{_BLOBS}/delete")
ROLE_DATA_ACTIONS = (
    READ,
    *WRITES,
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/encrypt/action",
    "Microsoft.KeyVault/vaults/keys/decrypt/action",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
)
# Containers Azure ML creates in the workspace's storage account: run logs ("azureml") and the
# default datastore ("azureml-blobstore-<workspace guid>", known only after apply).
SYSTEM_CONTAINER = "azureml"
SYSTEM_CONTAINER_PREFIX = "azureml-blobstore-"

GROUP_IDENTITY = "data"  # name part of a group's identity: <project>-<env>-data-<group>
# Role assignments a stack makes besides one per group (see role_assignments()).
KEY_GRANTS = 2  # serving and the storage account's identity on the key
WORKSPACE_GRANTS = 6  # the workspace identity: key, vault (2), storage account, registry, insights
NETWORK_GRANTS = 3  # private stacks: the workspace identity approves private endpoints to account, registry, vault
SERVING_GRANTS = 4  # serving: model reads and capture writes on artifacts, registry pulls, metrics
RETRAINING_GRANTS = 1  # automation: submit jobs in the workspace


@dataclass(frozen=True)
class Place:
    """Blobs of one container, or of every container whose name starts with `container`."""

    container: str
    prefixes: tuple[str, ...] = ()  # () = the whole container
    starts_with: bool = False

    def clause(self, attribute: str) -> str:
        match = "StringStartsWith" if self.starts_with else "StringEquals"
        named = f"{CONTAINER_NAME} {match} '{self.container}'"
        if not self.prefixes:
            return named
        paths = " OR ".join(f"{attribute} StringStartsWith '{p}'" for p in self.prefixes)
        return f"({named} AND ({paths}))"


@dataclass(frozen=True)
class GroupAccess:
    """What one group's identity may read and write, by physical container."""

    group: str
    reads: tuple[Place, ...]
    writes: tuple[Place, ...]

    @property
    def condition(self) -> str:
        return group_condition(self.reads, self.writes)


def _anywhere(attribute: str, places: Sequence[Place]) -> str:
    return " OR ".join(place.clause(attribute) for place in places)


def _read_and_list(by_path: str, by_prefix: str) -> str:
    """Reads allowed where `by_path` holds, listings where `by_prefix` holds."""
    return (
        f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR ({by_path}))"
        f" AND ((!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}})) OR ({by_prefix}))"
    )


def _write(where: str) -> str:
    """Writes, appends and deletes allowed where `where` holds."""
    actions = " AND ".join(f"!(ActionMatches{{'{action}'}})" for action in WRITES)
    return f"(({actions}) OR ({where}))"


def group_condition(reads: Sequence[Place], writes: Sequence[Place]) -> str:
    """The ABAC condition of a group's one role assignment (see the module docstring)."""
    return (
        f"{_read_and_list(_anywhere(BLOB_PATH, reads), _anywhere(LIST_PREFIX, reads))}"
        f" AND {_write(_anywhere(BLOB_PATH, writes))}"
    )


def read_condition(prefixes: tuple[str, ...]) -> str:
    """A reader's condition on one container: blobs under `prefixes`, by path and by listing."""
    paths = " OR ".join(f"{BLOB_PATH} StringStartsWith '{p}'" for p in prefixes)
    listed = " OR ".join(f"{LIST_PREFIX} StringStartsWith '{p}'" for p in prefixes)
    return _read_and_list(paths, listed)


def write_condition(prefix: str) -> str:
    """A contributor's condition on one container: writes and deletes only under `prefix`."""
    return _write(f"{BLOB_PATH} StringStartsWith '{prefix}'")


def prefix_condition(prefix: str) -> str:
    """A contributor's condition on one container: reads, listings, writes and deletes under `prefix`."""
    return f"{read_condition((prefix,))} AND {write_condition(prefix)}"


def _artifact_prefixes(model: Model) -> tuple[list[str], list[str]]:
    """(read, write) prefixes of one model in the artifact container."""
    reads: list[str] = []
    writes: list[str] = []
    if model.training is not None:
        writes.append(output_prefix(model.name))
        if model.training.spot:
            writes.append(checkpoint_prefix(model.name))
        reads += writes
    monitoring, serving = model.monitoring, model.serving
    if monitoring is not None and monitoring.drift is not None and serving is not None and serving.data_capture:
        reads.append(capture_prefix(model.name))  # the drift monitor reads what the endpoint captured
    return reads, writes


def _merged(places: list[Place]) -> list[Place]:
    """One place per container, covering the prefixes of every place given for it."""
    by_container: dict[str, list[Place]] = {}
    for item in places:
        by_container.setdefault(item.container, []).append(item)
    merged = []
    for container, found in by_container.items():
        if len(found) == 1 or any(not p.prefixes for p in found):
            merged.append(found[0] if len(found) == 1 else Place(container))
        else:
            merged.append(Place(container, tuple(covering_prefixes(q for p in found for q in p.prefixes))))
    return merged


def group_access(group: ReaderGroup, *, models: Mapping[str, Model], containers: Mapping[str, str]) -> GroupAccess:
    """One group's access; `models` by name, `containers`: bucket -> its physical container."""
    art_reads: list[str] = []
    art_writes: list[str] = []
    for name in group.models:
        model_reads, model_writes = _artifact_prefixes(models[name])
        art_reads += model_reads
        art_writes += model_writes

    def place(bucket: str, prefixes: Iterable[str]) -> Place:
        kept = covering_prefixes(prefixes)
        return Place(containers[bucket], () if kept == [""] else tuple(kept))

    system = (Place(SYSTEM_CONTAINER), Place(SYSTEM_CONTAINER_PREFIX, starts_with=True))
    # unknown buckets are reported by validate and granted nothing
    reads = [place(b, prefixes) for b, prefixes in group.reads.items() if b != ARTIFACTS and b in containers]
    # Data its jobs write (batch predictions, prepared data): written, and read back, there only.
    written = [place(b, prefixes) for b, prefixes in group.writes.items() if b != ARTIFACTS and b in containers]
    reads = _merged(reads + written)
    if art_reads:
        reads.append(place(ARTIFACTS, art_reads))
    writes = [*written, place(ARTIFACTS, art_writes)] if art_writes else written
    return GroupAccess(
        group=group.name,
        reads=(*sorted(reads, key=lambda p: p.container), *system),
        writes=(*writes, *system),
    )


def group_identity_name(namer: Namer, group: str) -> str:
    """The physical name of a model group's identity (governance.py makes it)."""
    return namer.name("azure.managed_identity", GROUP_IDENTITY, group)


def groups_access(spec: SpecBase, namer: Namer) -> list[GroupAccess]:
    """Every reader group's access, by group name (the whole spec: every stack of a split agrees)."""
    models = {m.name: m for m in spec.models}
    buckets = [b.name for b in spec.storage.buckets] + [ARTIFACTS]
    containers = {b: namer.name("azure.storage.container", b) for b in buckets}
    return [group_access(g, models=models, containers=containers) for g in reader_groups(spec).values()]


# --- counts: what a stack costs in Azure's subscription-wide budgets ----------------------------


def role_assignments(spec: SpecBase) -> int:
    """The role assignments a stack of `spec` makes (every stack of a split spec together)."""
    count = KEY_GRANTS + len(reader_groups(spec))
    if uses_workspace(spec):
        count += WORKSPACE_GRANTS + (NETWORK_GRANTS if spec.governance.network == "private" else 0)
    if any(m.serving is not None for m in spec.models):
        count += SERVING_GRANTS
    if any(_evented(m) for m in spec.models):
        count += RETRAINING_GRANTS
    return count


def _evented(model: Model) -> bool:
    """Whether retraining starts this model's job from events (the automation identity's grant)."""
    retrain = model.retraining
    if retrain is None or model.training is None:
        return False
    on_drift = retrain.on_drift and model.monitoring is not None and model.monitoring.drift is not None
    return retrain.new_data_ref is not None or bool(on_drift)


# --- checks -------------------------------------------------------------------------------------


def problems(spec: SpecBase, namer: Namer) -> list[Problem]:
    found = _condition_problems(spec, namer)
    found += _assignment_problems(spec)
    return found


def _group_path(spec: SpecBase, group: str) -> tuple[Any, ...]:
    """Where a group is named in the spec: its first model's `group`, or the model itself."""
    from mlops_infra.layout import group_of

    for i, model in enumerate(spec.models):
        if group_of(model) == group:
            return ("models", i, "group") if model.group is not None else ("models", i)
    return ("models",)


def _condition_problems(spec: SpecBase, namer: Namer) -> list[Problem]:
    limit = fact(CLOUD, "iam-limits", "condition-length")
    found = []
    for access in groups_access(spec, namer):
        length = len(access.condition)
        if length <= limit.value:
            continue
        size = len(reader_groups(spec)[access.group].models)
        identity = group_identity_name(namer, access.group)
        found.append(
            finding(
                _group_path(spec, access.group),
                f"model group {access.group!r} ({size} model{'s' if size != 1 else ''}): the condition on the data "
                f"access of its identity {identity} would be {length} characters long, and Azure allows "
                f"{limit.cite()}",
                hint="split the group into smaller ones (models[].group), or give its models' data prefixes a "
                "common parent so one prefix covers them",
                value=access.group,
            )
        )
    return found


def _assignment_problems(spec: SpecBase) -> list[Problem]:
    limit = fact(CLOUD, "iam-limits", "role-assignments-per-subscription")
    count = role_assignments(spec)
    groups = len(reader_groups(spec))
    what = (
        f"this stack makes {count} role assignments (one per model group's identity: {groups}; "
        f"{count - groups} for the stack)"
    )
    hint = "group models with models[].group: a group's models share one identity and one role assignment"
    if count > limit.value:
        return [finding(("models",), f"{what}, and Azure allows {limit.cite()}", hint=hint, value=count)]
    # dev, staging and prod of one project usually share a subscription, and its limit.
    if count * 3 > limit.value:
        return [
            finding(
                ("models",),
                f"{what}: three stacks like it (dev, staging and prod) would not fit one subscription, where "
                f"Azure allows {limit.cite()} in all",
                hint=f"{hint}; or give each environment its own subscription",
                value=count,
                severity="warning",
            )
        ]
    return []
