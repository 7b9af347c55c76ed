"""Several stacks in one account, project or subscription: one owner per singleton.

Some cloud objects exist once per account, project, subscription or region (GCP's audit
configuration, Vertex AI's `default` metadata store). When dev, staging and prod share one, each
stack claiming them would overwrite the others' settings, and each `destroy` would remove them
for all. The spec says whether this stack owns them (governance.singletons); validate reads the
specs beside it (the same folder, as stacks/ holds a project's environments) and refuses two
owners of one object, and warns when nobody there owns what this stack leaves to others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from mlops_infra.spec.problems import Problem

SPEC_SUFFIXES = (".yaml", ".yml")
FIELD = ("governance", "singletons")


def problems(path: Path, spec: Any, clouds: Sequence[str]) -> Iterable[Problem]:
    from mlops_infra.backends import registry
    from mlops_infra.stages.base import finding

    backends = registry()
    mine = {
        s.key: s
        for cloud in clouds
        if spec.settings_for(cloud) is not None
        for s in backends[cloud].singletons(spec, spec.settings_for(cloud))
    }
    if not mine:
        return
    owners = _owners(path, clouds, set(mine))
    owned = spec.governance.singletons == "owned"
    for key, singleton in sorted(mine.items()):
        others = owners.get(key, [])
        if owned and others:
            yield finding(
                FIELD,
                f"{singleton.what} ({key}) is also owned by {others[0].name}: two stacks would overwrite each "
                "other's settings, and either one's destroy would remove them for both",
                hint=f"keep governance.singletons: owned in exactly one stack sharing it; set "
                f"governance.singletons: external in the others",
                value="owned",
            )
        elif not owned and not others:
            yield finding(
                FIELD,
                f"this stack leaves {singleton.what} ({key}) to another stack, and no spec beside it owns it",
                hint="make sure the stack that owns it is deployed first (or that it exists already), or set "
                "governance.singletons: owned here",
                value="external",
                severity="warning",
            )


def _owners(path: Path, clouds: Sequence[str], keys: set[str]) -> dict[str, list[Path]]:
    """Singleton key -> the specs beside `path` that own it (specs that do not load are skipped)."""
    from mlops_infra.backends import registry

    found: dict[str, list[Path]] = {}
    for other_path, other in _neighbours(path):
        if other.governance.singletons != "owned":
            continue
        for cloud in clouds:
            settings = other.settings_for(cloud)
            if settings is None:
                continue
            for singleton in registry()[cloud].singletons(other, settings):
                if singleton.key in keys:
                    found.setdefault(singleton.key, []).append(other_path)
    return found


def _neighbours(path: Path) -> Iterable[tuple[Path, Any]]:
    """The other specs in `path`'s folder that pass structural validation, by file name."""
    from mlops_infra.spec.models import spec_model
    from mlops_infra.spec.validate import read_spec
    from mlops_infra.spec.yaml_loader import load_yaml

    folder = path.resolve().parent
    try:
        candidates = sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
    except OSError:
        return
    for candidate in candidates:
        if candidate == path.resolve():
            continue
        try:
            doc = load_yaml(read_spec(candidate), str(candidate))
            yield candidate, spec_model().model_validate(doc.data)
        except Exception:  # noqa: BLE001 - a neighbour that does not load is its own problem, not this one's
            continue
