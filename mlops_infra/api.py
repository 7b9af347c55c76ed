"""What the CLI commands do, as plain keyword-only functions returning result objects."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_infra.errors import SpecInvalid, UsageError
from mlops_infra.spec.problems import Problem

VALIDATE_FORMAT = "mlops-infra/validate/v1"


@dataclass(frozen=True)
class SpecSource:
    path: Path
    stack: str  # the stack name: --stack, or the spec file's stem


def resolve_source(*, stack: str | None, spec: str | None, root: Path | None = None) -> SpecSource:
    """The spec file and stack name a command works on: --spec PATH, --stack NAME, or stack dev.

    An empty value is an error (an unset CI variable must not quietly select another spec), and
    the stack name, which names the Pulumi stacks, is checked whether it comes from --stack or
    from the spec file's name.
    """
    if stack is not None and spec is not None:
        raise UsageError("give --stack or --spec, not both")
    if spec is not None:
        if not spec:
            raise UsageError("--spec is empty", hint="pass the path of a spec file, or --stack NAME")
        path = Path(spec)
        check_stack_name(path.stem, origin="the spec file's name")
        return SpecSource(path=path, stack=path.stem)
    if stack is not None and not stack:
        raise UsageError("--stack is empty", hint="pass a stack name such as dev (it reads stacks/dev.yaml)")
    name = stack or "dev"
    check_stack_name(name, origin="--stack")
    path = (root or project_root(Path.cwd())) / "stacks" / f"{name}.yaml"
    if not path.exists():
        raise UsageError(
            f"no spec for stack {name!r}: {path} does not exist",
            hint="run `mlops-infra init` to scaffold one, or pass --spec PATH",
        )
    return SpecSource(path=path, stack=name)


def project_root(start: Path) -> Path:
    """The nearest folder, from `start` up, that holds stacks/ (the way git finds .git); else `start`."""
    for folder in (start, *start.parents):
        if (folder / "stacks").is_dir():
            return folder
    return start


# Pulumi stack names allow letters, digits, '-', '_' and '.'; ours start with a letter or digit
# and leave room for the "-<cloud>" every Pulumi stack name of a spec ends with.
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_stack_name(name: str, *, origin: str) -> None:
    from mlops_infra.backends import registry
    from mlops_infra.layout import PULUMI_STACK_NAME_MAX

    longest = PULUMI_STACK_NAME_MAX - 1 - max(len(cloud) for cloud in registry())
    rule = (
        f"stack names use letters, digits, '-', '_' and '.', start with a letter or digit and have at most "
        f"{longest} characters"
    )
    fix = "rename the spec file" if origin != "--stack" else "choose another stack name"
    if not _STACK_NAME.fullmatch(name):
        raise UsageError(f"invalid stack name {name!r} (from {origin})", hint=f"{rule}: {fix}")
    if len(name) > longest:
        raise UsageError(
            f"stack name {name[:20]!r}... (from {origin}) has {len(name)} characters", hint=f"{rule}: {fix}"
        )


@dataclass
class ValidateResult:
    file: str
    valid: bool
    clouds: list[str]
    problems: list[Problem]
    warnings: list[Problem]
    stages: dict[str, dict[str, str]] = field(default_factory=dict)  # cloud -> stage -> status

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": VALIDATE_FORMAT,
            "file": self.file,
            "valid": self.valid,
            "clouds": self.clouds,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
            "stages": self.stages,
        }


def stage_support(cloud: str) -> dict[str, str]:
    """'implemented' or the human reason a cloud cannot do a stage."""
    from mlops_infra.backends import get_backend
    from mlops_infra.stages import all_stages

    backend = get_backend(cloud)
    return {
        s.name: "implemented" if backend.supports(s.name) else backend.unsupported.get(s.name, "not supported")
        for s in all_stages()
    }


def validate(*, source: SpecSource, clouds: list[str] | None = None) -> ValidateResult:
    from mlops_infra.spec.validate import check_file

    if clouds:
        for cloud in clouds:
            _known_cloud(cloud)
    try:
        checked = check_file(source.path, clouds=clouds)
    except SpecInvalid as exc:
        return ValidateResult(
            file=str(source.path), valid=False, clouds=list(clouds or []), problems=exc.problems, warnings=exc.warnings
        )
    return ValidateResult(
        file=str(source.path),
        valid=True,
        clouds=checked.clouds,
        problems=[],
        warnings=checked.warnings,
        stages={cloud: stage_support(cloud) for cloud in checked.clouds},
    )


def _cloud_hint() -> str:
    from mlops_infra.backends import names

    return f"pass --cloud {'|'.join(names())} or set `cloud:` in the spec"


def _known_cloud(cloud: str) -> None:
    from mlops_infra.backends import get_backend

    get_backend(cloud)


@dataclass
class PlanResult:
    document: dict[str, Any]
    warnings: list[Problem]
    written_to: Path | None = None
    changes: Any = None  # diff.Changes when planned --against an older document

    def to_dict(self) -> dict[str, Any]:
        if self.changes is None:
            return self.document
        return {**self.document, "changes": self.changes.to_dict()}


def plan(
    *,
    source: SpecSource,
    cloud: str | None,
    out: Path | None = None,
    against: Path | None = None,
    part: str | None = None,
) -> PlanResult:
    """Validate for the target cloud, then plan offline; SpecInvalid carries every problem.

    `out` is written only when everything succeeded, and atomically: a failed plan leaves no file
    and an existing one as it was.
    """
    from mlops_infra.diff import diff_plans
    from mlops_infra.plan import dump_plan, plan_document
    from mlops_infra.plan_schema import load_plan
    from mlops_infra.spec.validate import check_file

    old = load_plan(against) if against is not None else None
    if cloud:
        _known_cloud(cloud)
    target = cloud
    if target is None:
        checked = check_file(source.path, clouds=[])
        target = checked.spec.cloud
        if target is None:
            raise UsageError("no target cloud", hint=_cloud_hint())
    if old is not None and old["cloud"] != target:
        raise UsageError(
            f"--against: {against} is a plan for {old['cloud']}, this plan is for {target}",
            hint="compare plans of the same cloud",
        )
    checked = check_file(source.path, clouds=[target])
    document = plan_document(
        checked.spec, target, stack=source.stack, warnings=[w.to_dict() for w in checked.warnings], part=part
    )
    if old is not None and part is not None and "split" in document:
        # Compare only the stacks planned: the others are not being deleted.
        planned = {p["part"] for p in document["split"]["parts"]}
        old = {**old, "resources": [r for r in old["resources"] if r.get("part") in planned]}
    changes = diff_plans(old, document) if old is not None else None
    if out is not None:
        write_atomically(out, dump_plan(document))
    return PlanResult(document=document, warnings=checked.warnings, written_to=out, changes=changes)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, then rename it over `path` (all or nothing)."""
    import os
    import tempfile

    if path.exists() and not path.is_file():
        raise UsageError(f"cannot write {path}: it exists and is not a regular file")
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(handle, _file_mode(path))  # mkstemp makes 0600; a plan document is no secret
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def schema() -> dict[str, Any]:
    from mlops_infra.spec.models import spec_model

    document = spec_model().model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mlops-infra.dev/schema/v1/spec.json",
        "title": "mlops-infra spec (apiVersion mlops-infra/v1)",
        **document,
    }


def engine_targets(
    *,
    source: SpecSource,
    cloud: str | None,
    backend_url: str | None,
    part: str | None = None,
    project_dir: Path | None = None,
) -> tuple[list[Any], list[Problem]]:
    """The Pulumi stacks an engine command runs on, in deployment order (a split spec's shared one first)."""
    import dataclasses

    from mlops_infra.layout import select

    from mlops_infra.layout import PULUMI_STACK_NAME_MAX

    target, warnings = engine_target(source=source, cloud=cloud, backend_url=backend_url, project_dir=project_dir)
    targets = [dataclasses.replace(target, part=p) for p in select(target.spec, part)]
    for each in targets:
        if len(each.pulumi_stack) > PULUMI_STACK_NAME_MAX:
            raise UsageError(
                f"Pulumi stack name {each.pulumi_stack!r} is longer than {PULUMI_STACK_NAME_MAX} characters",
                hint="use a shorter stack name (--stack) or model group name",
            )
    return targets, warnings


def engine_target(
    *, source: SpecSource, cloud: str | None, backend_url: str | None, project_dir: Path | None = None
) -> tuple[Any, list[Problem]]:
    """Validate the spec for the target cloud and name the Pulumi stack the engine commands use."""
    from mlops_infra.deploy import Target
    from mlops_infra.spec.validate import check_file

    if cloud:
        _known_cloud(cloud)
    target_cloud = cloud
    if target_cloud is None:
        target_cloud = check_file(source.path, clouds=[]).spec.cloud
        if target_cloud is None:
            raise UsageError("no target cloud", hint=_cloud_hint())
    if backend_url is not None:
        check_backend_url(backend_url)
    checked = check_file(source.path, clouds=[target_cloud])
    root = project_dir or _project_dir(source)
    target = Target(spec=checked.spec, cloud=target_cloud, stack=source.stack, project_dir=root, backend_url=backend_url)
    return target, checked.warnings


BACKEND_FORMS = "s3://bucket, gs://bucket, azblob://container, file:///absolute/path or https://api.pulumi.com"


def check_backend_url(url: str) -> None:
    """--backend names where the state lives: an empty or malformed one is refused, never read as the default."""
    from urllib.parse import urlsplit

    if not url.strip():
        raise UsageError(
            "--backend is empty",
            hint="leave --backend out for the local state in .mlops-infra/state; in CI, set the variable that fills it "
            "(MLOPS_INFRA_BACKEND)",
        )
    parts = urlsplit(url)
    place = parts.path if parts.scheme == "file" else parts.netloc
    if parts.scheme not in ("s3", "gs", "azblob", "file", "https"):
        raise UsageError(f"unsupported --backend {url!r}", hint=f"use {BACKEND_FORMS}")
    if not place or url != url.strip() or " " in url:
        raise UsageError(f"malformed --backend {url!r}: it names no bucket, container, path or host", hint=f"use {BACKEND_FORMS}")


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, or what the umask gives a new file."""
    import os

    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _project_dir(source: SpecSource) -> Path:
    """The project is the folder holding stacks/ (state goes to <project>/.mlops-infra/state)."""
    folder = source.path.resolve().parent
    return folder.parent if folder.name == "stacks" else folder
