"""The older plan document `plan --against` compares with: read safely, then checked the way a
spec is checked, every problem at once, each at its path, before anything is planned.

A plan document comes from `plan --json` or `--out`, but CI passes whatever file it has (a
stub for a new stack, an artifact of an older release, a hand-edited file): a malformed one
is invalid input (exit 2 with what is wrong), never a crash in the diff.
"""

from __future__ import annotations

import json
from pathlib import Path as FsPath
from typing import Any

from mlops_infra.errors import PlanDocumentInvalid, UsageError
from mlops_infra.plan import PLAN_FORMAT
from mlops_infra.spec.problems import Path, Problem

MAX_PLAN_BYTES = 1 << 30  # a plan of 5,000 models is a few hundred MB
MAX_DEPTH = 100  # the plans mlops-infra writes nest about 15 levels deep
MAX_REPORTED = 20

_WRITE_HINT = "write one with `mlops-infra plan --json --out FILE`"
_OPTIONAL_TEXT = ("stage", "parent", "provider")  # a string or null
_OPTIONAL_FLAGS = ("protect", "custom", "retain_on_delete")


def load_plan(path: FsPath) -> dict[str, Any]:
    """The plan document at `path`; UsageError when it cannot be read, PlanDocumentInvalid when malformed."""
    from mlops_infra.spec.reading import read_regular_file

    data = read_regular_file(
        path,
        limit=MAX_PLAN_BYTES,
        what="--against plan document",
        missing=f"--against: {path} does not exist",
        missing_hint=_WRITE_HINT,
    )
    try:
        document = json.loads(data)
    except RecursionError:
        raise UsageError(f"--against: {path} nests too deeply to be a plan document", hint=_WRITE_HINT) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--against: {path} is not JSON (line {exc.lineno}: {exc.msg})", hint=_WRITE_HINT) from None
    except ValueError as exc:  # not UTF-8/16/32, or a number too long to convert
        raise UsageError(f"--against: {path} is not JSON ({exc})", hint=_WRITE_HINT) from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise UsageError(f"--against: {path} is not a plan document ({PLAN_FORMAT})", hint=_WRITE_HINT)
    problems = plan_problems(document, str(path))
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            more = len(problems) - MAX_REPORTED
            shown.append(Problem(file=str(path), line=None, path=(), message=f"and {more} more problems"))
        raise PlanDocumentInvalid(shown, source=str(path), total=len(problems))
    return document


def plan_problems(document: dict[str, Any], filename: str) -> list[Problem]:
    """What is wrong with a plan document whose format is right: the fields `--against` reads."""
    problems: list[Problem] = []

    def wrong(path: Path, message: str, value: Any = None) -> None:
        problems.append(
            Problem(file=filename, line=None, path=path, message=message, hint=_WRITE_HINT, value=value,
                    has_value=value is not None and not isinstance(value, (dict, list)))
        )

    if not isinstance(document.get("cloud"), str):
        wrong(("cloud",), "must be the name of the cloud the plan is for", document.get("cloud"))
    resources = document.get("resources")
    if not isinstance(resources, list):
        wrong(("resources",), "must be a list of resources", resources)
        return problems
    seen: dict[tuple[Any, ...], int] = {}
    for index, resource in enumerate(resources):
        where: Path = ("resources", index)
        if not isinstance(resource, dict):
            wrong(where, "must be a resource (an object with name, type and inputs)", resource)
            continue
        for key in ("name", "type"):
            if not isinstance(resource.get(key), str) or not resource.get(key):
                wrong((*where, key), "is required and must be a non-empty string", resource.get(key))
        if "part" in resource and not isinstance(resource["part"], str):
            wrong((*where, "part"), "must be a string", resource["part"])
        for key in _OPTIONAL_TEXT:
            if resource.get(key) is not None and not isinstance(resource[key], str):
                wrong((*where, key), "must be a string or null", resource[key])
        for key in _OPTIONAL_FLAGS:
            if key in resource and not isinstance(resource[key], bool):
                wrong((*where, key), "must be true or false", resource[key])
        if not isinstance(resource.get("inputs", {}), dict):
            wrong((*where, "inputs"), "must be an object of input properties", resource.get("inputs"))
        elif _depth(resource.get("inputs", {})) > MAX_DEPTH:
            wrong((*where, "inputs"), f"nests deeper than {MAX_DEPTH} levels")
        _check_names(resource, where, wrong)
        identity = (resource.get("part"), resource.get("name"), resource.get("type"))
        if all(isinstance(k, str) for k in identity[1:]) and isinstance(identity[0], (str, type(None))):
            if identity in seen:
                wrong(where, f"the same resource (part, name and type) as resources[{seen[identity]}]")
            seen.setdefault(identity, index)
    return problems


def _check_names(resource: dict[str, Any], where: Path, wrong: Any) -> None:
    depends_on = resource.get("depends_on", [])
    if not (isinstance(depends_on, list) and all(isinstance(n, str) for n in depends_on)):
        wrong((*where, "depends_on"), "must be a list of resource names")
    dependencies = resource.get("dependencies", {})
    if not isinstance(dependencies, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names) for names in dependencies.values()
    ):
        wrong((*where, "dependencies"), "must map input names to lists of resource names")


def _depth(value: Any) -> int:
    """How deeply `value` nests (iteratively: a hostile document must not exhaust the stack here)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)
    return deepest
