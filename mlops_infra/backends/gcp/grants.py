"""Who may read and write which objects on GCP, and how large that makes each allow policy.

Pure (no SDK): the storage and serving stages build exactly what this module decides, and
governance.check() measures it against IAM's documented limits (facts/iam-limits.json).

Per-prefix access goes through Cloud Storage managed folders, never IAM conditions. A managed
folder is a prefix with an allow policy of its own: granting a role on it grants it on every
object under the prefix, listing included (cloud.google.com/storage/docs/managed-folders,
/storage/docs/listing-objects). Conditions on the bucket's policy do not scale: every prefix
costs two logical operators in one identity's condition (12 allowed), every identity with its
own prefixes one conditional binding of the same role (20 per role and principal), and all of
them land in the bucket's single policy (1,500 principals). With managed folders each prefix
policy holds only the identities that read or write that prefix, and a bucket's own policy only
the identities that read all of it.

Principals are keys here, resolved to service accounts by the stages: GROUP + group name for a
model group's identity (mlops_infra/access.py), SERVING for the serving identity, AUTOMATION.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlops_infra.access import reader_groups
from mlops_infra.backends.gcp.automation import drift_models, starts_workflows
from mlops_infra.backends.gcp.serving_endpoints import model_source
from mlops_infra.layout import group_of
from mlops_infra.stages.storage import ARTIFACTS
from mlops_infra.stages.training import checkpoint_prefix, output_prefix

OBJECT_VIEWER = "roles/storage.objectViewer"  # get + list objects
# Read, create, overwrite and delete objects (training rewrites checkpoints and outputs);
# versioning and soft delete keep what it overwrites or deletes.
OBJECT_USER = "roles/storage.objectUser"
GROUP = "group:"
SERVING = "serving"
AUTOMATION = "automation"
# What runs as a group's identity, and the custom roles that lets it write logs (and for drift
# run BigQuery jobs and write the drift metric) on the project (governance.py).
TRAINING, DRIFT, FEATURES = "training", "drift", "features"
MODEL_WORKER, DRIFT_WORKER = "model-worker", "drift-worker"
# The stack-wide project grants (role keys as the stages name them).
LAUNCHER, REGISTRAR, STARTER = "training-launcher", "model-registrar", "workflow-starter"
LOG_WRITER = "roles/logging.logWriter"
# Managed folder names GCS refuses (facts/iam-limits.json managed_folder_depth).
_RESERVED_FOLDER_START = ".well-known/acme-challenge/"
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}/")


def group_key(group: str) -> str:
    return f"{GROUP}{group}"


def grant_key(location: str, principal: str) -> tuple[str, str]:
    """The key of `principal`'s grant on a bucket ("raw") or a managed folder ("artifacts/models/m/")
    in shared.ObjectGrants, which later stages of the same stack wait for."""
    return ("object-grant", f"{location}|{principal}")


@dataclass(frozen=True)
class Folder:
    """A managed folder: a spec bucket name (ARTIFACTS for the artifact bucket) and a prefix."""

    bucket: str
    name: str  # the prefix, ending in "/"


@dataclass(frozen=True)
class Binding:
    role: str
    principal: str  # a principal key (GROUP + name, SERVING, AUTOMATION)
    condition: str | None = None


@dataclass
class Policy:
    """One allow policy this stack writes into: what it is, and the bindings the stack adds."""

    resource: str  # for messages: "bucket raw", "managed folder raw/m0001/", "project acme-ml"
    bindings: list[Binding] = field(default_factory=list)
    path: tuple[str | int, ...] = ("models",)  # where validate reports an overflow

    @property
    def principals(self) -> int:
        """Principal appearances, as IAM counts them (every binding's every member)."""
        return len(self.bindings)


@dataclass
class StorageAccess:
    """Object access of one stack: managed folders and whole-bucket readers, sorted."""

    folders: dict[Folder, list[Binding]]
    whole: dict[str, list[Binding]]  # spec bucket name -> its bucket-level grants


def folder_name(path: str) -> str:
    """The managed folder that holds an object path's directory ("a/b" and "a/b/" -> "a/b/")."""
    return path.strip("/") + "/" if path.strip("/") else ""


def served_paths(spec: Any, namer: Any) -> dict[str, str]:
    """Served model -> the path in the artifact bucket its endpoint deploys from (when it is there)."""
    artifacts = namer.name("gcp.storage.bucket", ARTIFACTS)
    found: dict[str, str] = {}
    for model in spec.models:
        if model.serving is not None:
            source = model_source(model, artifacts_bucket=artifacts)
            if source.path is not None:
                found[model.name] = source.path
    return found


def storage_access(spec: Any, *, served_paths: dict[str, str]) -> StorageAccess:
    """Who reads and writes what in the stack's buckets, decided from the whole spec.

    Groups read their data prefixes (mlops_infra/access.py) and write their trained models'
    output and checkpoint prefixes in the artifact bucket; the serving identity reads each
    served model's artifact path (`served_paths`: model -> path in the artifact bucket).
    """
    known = {b.name for b in spec.storage.buckets}
    folders: dict[Folder, set[Binding]] = {}
    whole: dict[str, set[Binding]] = {}

    def grant(bucket: str, prefix: str, binding: Binding) -> None:
        if prefix:
            folders.setdefault(Folder(bucket, prefix), set()).add(binding)
        else:
            whole.setdefault(bucket, set()).add(binding)

    for name, group in reader_groups(spec).items():
        for bucket, prefixes in group.reads.items():
            if bucket in known:
                for prefix in prefixes:
                    grant(bucket, prefix, Binding(OBJECT_VIEWER, group_key(name)))
        # Batch predictions (and prepared data) land only under the prefixes the group writes.
        for bucket, prefixes in group.writes.items():
            if bucket in known:
                for prefix in prefixes:
                    grant(bucket, prefix, Binding(OBJECT_USER, group_key(name)))
    for model in spec.models:
        if model.training is not None:
            for prefix in (output_prefix(model.name), checkpoint_prefix(model.name)):
                grant(ARTIFACTS, prefix, Binding(OBJECT_USER, group_key(group_of(model))))
    for path in served_paths.values():
        grant(ARTIFACTS, folder_name(path), Binding(OBJECT_VIEWER, SERVING))
    for model in spec.models:
        if model.training is not None and model.training.evaluation is not None:
            # The training workflow (automation) reads the gate's metrics.json of each run, and of
            # the approved version's run: in the model's output folder, nothing else.
            grant(ARTIFACTS, output_prefix(model.name), Binding(OBJECT_VIEWER, AUTOMATION))
    return StorageAccess(
        folders={f: _sorted(b) for f, b in sorted(folders.items(), key=lambda i: (i[0].bucket, i[0].name))},
        whole={bucket: _sorted(b) for bucket, b in sorted(whole.items())},
    )


def _sorted(bindings: set[Binding]) -> list[Binding]:
    return sorted(bindings, key=lambda b: (b.role, b.principal, b.condition or ""))


def group_work(spec: Any) -> dict[str, frozenset[str]]:
    """Group -> what runs as its identity: TRAINING (custom jobs) and DRIFT (drift workflows)."""
    drifting = {m.name for m in drift_models(spec)}
    work: dict[str, set[str]] = {name: set() for name in reader_groups(spec)}
    for model in spec.models:
        if group_of(model) not in work:
            continue
        if model.training is not None or model.data_prep is not None:  # custom jobs
            work[group_of(model)].add(TRAINING)
        if model.name in drifting:
            work[group_of(model)].add(DRIFT)
        if model.features:
            work[group_of(model)].add(FEATURES)
    return {name: frozenset(kinds) for name, kinds in work.items()}


def worker_role(work: frozenset[str]) -> str:
    """The worker role (governance.py) a group identity holds on the project: DRIFT_WORKER when
    it runs drift workflows (logs, BigQuery jobs, metric writes) or queries its feature groups'
    offline tables (BigQuery jobs; the metric write goes unused), else MODEL_WORKER (logs)."""
    return DRIFT_WORKER if DRIFT in work or FEATURES in work else MODEL_WORKER


def project_bindings(spec: Any) -> list[Binding]:
    """The stack's grants on the project's policy: one worker role per group identity that
    runs something, and the stack-wide ones the stages make (training: launcher and log writer
    for automation; registry: registrar; retraining/drift: workflow starter; serving: log writer).
    Every group costs one principal appearance, whatever its models do."""
    bindings = [Binding(worker_role(work), group_key(name)) for name, work in group_work(spec).items() if work]
    if launches_jobs(spec):
        bindings += [Binding(LAUNCHER, AUTOMATION), Binding(LOG_WRITER, AUTOMATION)]
    elif any(m.data_prep is not None for m in spec.models):
        bindings.append(Binding(LAUNCHER, AUTOMATION))
    if any(m.registry is not None and m.training is not None for m in spec.models):
        bindings.append(Binding(REGISTRAR, AUTOMATION))
    if starts_workflows(spec):
        bindings.append(Binding(STARTER, AUTOMATION))
    if any(m.serving is not None for m in spec.models):
        bindings.append(Binding(LOG_WRITER, SERVING))
    return bindings


def launches_jobs(spec: Any) -> bool:
    """Whether the automation identity runs workflows that launch Vertex AI jobs (training's custom
    jobs, batch's prediction jobs): it then holds the launcher role and writes their call logs."""
    return any(m.training is not None or m.batch is not None for m in spec.models)


def policies(spec: Any, *, project: str, physical: dict[str, str], access: StorageAccess) -> list[Policy]:
    """Every allow policy whose size grows with the spec (`physical`: spec bucket -> GCS name)."""
    index = {b.name: i for i, b in enumerate(spec.storage.buckets)}

    def where(bucket: str) -> tuple[str | int, ...]:
        return ("storage", "buckets", index[bucket], "name") if bucket in index else ("storage", "artifacts")

    found = [Policy(f"project {project}", project_bindings(spec), ("models",))]
    for bucket, bindings in access.whole.items():
        found.append(Policy(f"bucket gs://{physical[bucket]}", bindings, where(bucket)))
    for folder, bindings in access.folders.items():
        found.append(Policy(f"managed folder gs://{physical[folder.bucket]}/{folder.name}", bindings, where(folder.bucket)))
    return found


def logical_operators(expression: str) -> int:
    """&&, || and ! (not !=) in a CEL condition; string literals do not count."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    return code.count("&&") + code.count("||") + len(re.findall(r"!(?!=)", code))


def folder_name_problem(prefix: str, *, depth: int) -> str | None:
    """Why GCS would refuse `prefix` as a managed folder name, or None."""
    if prefix.startswith(_RESERVED_FOLDER_START):
        return f"managed folder names may not start with {_RESERVED_FOLDER_START}"
    if _DOT_SEGMENT.search(prefix):
        return "managed folders cannot be named '.' or '..'"
    if prefix.count("/") > depth:
        return f"managed folders nest at most {depth} levels deep, and this prefix has {prefix.count('/')}"
    return None
