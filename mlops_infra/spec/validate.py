"""Load a spec file and report every problem in it at once, each with file, line, path and hint.

Two passes: the structural one (YAML + pydantic: types, unknown keys, ranges,
local rules) reports everything it finds; when it passes, the semantic one
(cross-references, tags, each target cloud's own checks) reports everything
it finds. Warnings (a stage a cloud does not support yet) never fail a run.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any, Callable, Iterable, Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlops_infra.errors import SpecInvalid, UsageError
from mlops_infra.spec.characters import control_character_problems
from mlops_infra.spec.problems import Path, Problem, dotted, errors_in, sort_problems
from mlops_infra.spec.types import HintedValueError
from mlops_infra.tagging import TAG_HINT

MAX_SPEC_BYTES = 8_000_000


@dataclass
class Checked:
    """A spec that passed validation, with the warnings found on the way."""

    spec: Any  # the Spec model instance
    file: str
    warnings: list[Problem] = field(default_factory=list)
    clouds: list[str] = field(default_factory=list)


def read_spec(path: str | FsPath) -> bytes:
    """The spec file's bytes (decoded by the loader, which also recognises other encodings)."""
    from mlops_infra.spec.reading import read_regular_file

    return read_regular_file(
        FsPath(path),
        limit=MAX_SPEC_BYTES,
        what="spec file",
        missing_hint="pass --spec PATH or --stack NAME (stacks/NAME.yaml)",
    )


def check_file(path: str | FsPath, *, clouds: Sequence[str] | None = None) -> Checked:
    from mlops_infra import tenancy

    def beside(spec: Any, targets: Sequence[str]) -> Iterable[Problem]:
        return tenancy.problems(FsPath(path), spec, targets)

    return check_text(read_spec(path), str(path), clouds=clouds, beside=beside)


def check_text(
    text: str | bytes,
    filename: str,
    *,
    clouds: Sequence[str] | None = None,
    beside: Callable[[Any, Sequence[str]], Iterable[Problem]] | None = None,
) -> Checked:
    """Validate a spec; raise SpecInvalid with every problem, or return it with its warnings.

    `clouds`: the target clouds to check for. None means the spec's default cloud
    plus every cloud it has settings for.
    """
    from mlops_infra.spec.models import spec_model
    from mlops_infra.spec.yaml_loader import YamlLoadError, load_yaml

    try:
        doc = load_yaml(text, filename)
    except YamlLoadError as exc:
        raise SpecInvalid(sort_problems(exc.problems)) from None
    if not isinstance(doc.data, dict):
        found = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
        raise SpecInvalid(
            [
                Problem(
                    file=filename,
                    line=doc.line_for(()) or 1,
                    path=(),
                    message=f"a spec must be a mapping, found {found}",
                    hint="start from `mlops-infra init` or see the spec reference in the README",
                )
            ]
        )
    model = spec_model()
    control = control_character_problems(doc.data, filename, doc.line_for)
    try:
        spec = model.model_validate(doc.data)
    except ValidationError as exc:
        marked = {p.path for p in control}
        structural = [p for p in _structural_problems(exc, doc, model) if p.path not in marked]
        raise SpecInvalid(sort_problems(control + structural)) from None
    if control:
        raise SpecInvalid(sort_problems(control))

    targets = _targets(spec, clouds)
    semantic = list(semantic_problems(spec, targets))
    if beside is not None:  # checks against the specs next to this file (mlops_infra/tenancy.py)
        semantic += beside(spec, targets)
    if clouds is None and not targets:
        semantic.append(_no_target_cloud())
    located = [_locate(p, doc) for p in semantic]
    errors = errors_in(located)
    warnings = [p for p in located if p.severity != "error"]
    if errors:
        raise SpecInvalid(sort_problems(errors), warnings=sort_problems(warnings))
    return Checked(spec=spec, file=filename, warnings=sort_problems(warnings), clouds=targets)


def _targets(spec: Any, clouds: Sequence[str] | None) -> list[str]:
    if clouds is not None:
        return list(clouds)
    wanted = {name for name, value in spec.clouds if value is not None}
    if spec.cloud:
        wanted.add(spec.cloud)
    return sorted(wanted)


def _no_target_cloud() -> Problem:
    """A spec that names no cloud plans nowhere: `plan` would fail on every cloud, so validate fails too."""
    from mlops_infra.backends import registry
    from mlops_infra.stages.base import finding

    name, backend = next(iter(registry().items()))
    return finding(
        ("cloud",),
        "no target cloud: the spec has no `cloud:` and no settings under `clouds:`, so no cloud can plan it",
        hint=f"set a default cloud and its settings, e.g. cloud: {name} and {backend.settings_example}",
    )


def semantic_problems(spec: Any, clouds: Iterable[str]) -> Iterable[Problem]:
    from mlops_infra.layout import problems as layout_problems
    from mlops_infra.stack_size import stack_size_problems
    from mlops_infra.stages import all_stages
    from mlops_infra.stages.base import finding

    seen: dict[str, int] = {}
    for i, model in enumerate(spec.models):
        if model.name in seen:
            yield finding(
                ("models", i, "name"),
                f"duplicate model name {model.name!r} (also models[{seen[model.name]}])",
                hint="model names must be unique within a spec",
            )
        seen.setdefault(model.name, i)
    for stage in all_stages():
        for check in stage.checks:
            yield from check(spec)
    yield from layout_problems(spec)
    clouds = list(clouds)
    yield from stack_size_problems(spec, clouds)
    for cloud in clouds:
        yield from (replace(p, cloud=cloud) for p in _cloud_problems(spec, cloud))


def _cloud_problems(spec: Any, cloud: str) -> Iterable[Problem]:
    """What one target cloud finds: missing settings, stages it does not deploy, its own checks."""
    from mlops_infra.backends import registry
    from mlops_infra.stages import all_stages
    from mlops_infra.stages.base import finding

    backend = registry()[cloud]
    settings = spec.settings_for(cloud)
    if settings is None:
        yield finding(
            ("clouds",),
            f"no settings for {cloud}: planning on {backend.display_name} needs clouds.{cloud}",
            hint=f"add {backend.settings_example}" if backend.settings_example else f"add clouds.{cloud} (`mlops-infra schema`)",
        )
        return
    for stage in all_stages():
        if backend.supports(stage.name):
            continue
        reason = backend.unsupported.get(stage.name, "not supported")
        used = stage.used_at(spec)
        if used:
            # One warning per (cloud, stage), at the first place the spec asks for it.
            more = f" (and {len(used) - 1} more place{'s' if len(used) > 2 else ''})" if len(used) > 1 else ""
            yield finding(
                used[0],
                f"{backend.display_name} does not deploy {stage.name} yet{more}: {reason}",
                hint=f"the plan for {cloud} leaves this part out",
                severity="warning",
            )
    yield from backend.check(spec, settings)


def _locate(problem: Problem, doc: Any) -> Problem:
    return replace(problem, file=doc.filename, line=doc.line_for(problem.path))


# --- pydantic errors -> problems -----------------------------------------------


def _structural_problems(exc: ValidationError, doc: Any, model: type[BaseModel]) -> list[Problem]:
    grouped: dict[Path, list[ErrorDetails]] = {}
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], doc.data)
        grouped.setdefault(path, []).append(error)
    problems = []
    for path, errors in grouped.items():
        problems.append(_problem_for(path, errors, doc, model))
    return problems


def _data_path(loc: Sequence[Any], data: Any) -> Path:
    """Drop pydantic's union-member tags from loc: keep only the parts that address the data."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and _FIELD_NAME.match(part) and part not in _TYPE_TAGS:
            path.append(part)  # a missing field: point at where it belongs
            node = None
    return tuple(path)


# Spec field names look like this; union-member tags in pydantic's loc do not
# ('DataRef', 'function-after[...]', 'str', 'constrained-str').
_FIELD_NAME = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def _problem_for(path: Path, errors: list[ErrorDetails], doc: Any, model: type[BaseModel]) -> Problem:
    error = errors[0]
    kind = error["type"]
    line = doc.line_for(path)
    value = error.get("input")
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        known = _known_fields(model, path[:-1])
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else (f"known keys here: {', '.join(known)}" if known else None)
        return Problem(file=doc.filename, line=line, path=path, message=f"unknown key {key!r}", hint=hint)
    if kind == "missing":
        hint = _hint_for(path) or _described(model, path) or _SCHEMA_HINT
        return Problem(file=doc.filename, line=line, path=path, message="required key is missing", hint=hint)
    messages = []
    for err in errors:
        text = _clean_message(err)
        if text not in messages:
            messages.append(text)
    message = messages[0] if len(messages) == 1 else "does not match any accepted form: " + "; or ".join(messages)
    shown = not isinstance(value, (dict, list)) or kind.endswith("_type")
    if isinstance(value, dict):
        shown = False
    return Problem(
        file=doc.filename,
        line=line,
        path=path,
        message=message,
        hint=_hint_of(errors, path, model),
        value=value,
        has_value=shown,
    )


_SCHEMA_HINT = "`mlops-infra schema` prints every key with its accepted values"
_YAML_BOOLEAN_WORDS = {"yes", "no", "on", "off", "y", "n"}


def _hint_of(errors: list[ErrorDetails], path: Path, model: type[BaseModel]) -> str:
    """Every problem gets a hint: the validator's own, one for the kind of mistake, or the key's description."""
    for error in errors:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, HintedValueError):
            return cause.hint
    kind, value = errors[0]["type"], errors[0].get("input")
    if kind in ("bool_type", "bool_parsing"):
        if isinstance(value, str) and value.lower() in _YAML_BOOLEAN_WORDS:
            return f"write true or false: specs are YAML 1.2, where {value!r} is a string, not a boolean"
        return "write true or false, without quotes"
    if kind in ("int_type", "int_parsing", "float_type", "float_parsing"):
        if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
            return f"remove the quotes: {value!r} is a string, the key takes a number"
        return "write a number without quotes" + (f" ({_described(model, path)})" if _described(model, path) else "")
    if kind == "int_from_float":
        return "write a whole number, without decimals"
    if kind == "string_type":
        return "write text; quote values YAML reads as numbers, booleans or dates, e.g. '42', 'true', '2025-01-01'"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a mapping: indented `key: value` lines, or {key: value}"
    if kind == "list_type":
        return "write a list: [a, b], or one `- item` line each"
    return _hint_for(path) or _described(model, path) or _SCHEMA_HINT


def _described(model: type[BaseModel], path: Path) -> str | None:
    """The description the spec model gives the key at `path` (what `mlops-infra schema` shows)."""
    keys = [p for p in path]
    while keys and isinstance(keys[-1], int):
        keys.pop()
    if not keys:
        return None
    parent = _model_at(model, tuple(keys[:-1]))
    if parent is None:
        return None
    for name, info in parent.model_fields.items():
        if keys[-1] in (name, info.alias) and info.description:
            return f"{dotted(tuple(keys))}: {info.description}"
    return None


def _clean_message(error: ErrorDetails) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if error["type"] == "string_pattern_mismatch":
        return "is not in the accepted form"
    if error["type"] == "literal_error":
        expected = error.get("ctx", {}).get("expected")
        if expected:
            text = f"must be one of {expected}"
    return text[:1].lower() + text[1:]


_HINTS = {
    "apiVersion": "use apiVersion: mlops-infra/v1",
    "size": "size classes: cpu-small, cpu-medium, cpu-large, cpu-xlarge, gpu-small, gpu-large, gpu-x4, gpu-x8",
    "schedule": "five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'",
    "project": "a slug such as churn: lowercase letters, digits and single hyphens",
    "environment": "a slug such as dev or prod",
    "subscription_id": "your Azure subscription's id, a GUID (az account show --query id --output tsv)",
    "tags": TAG_HINT,
    "canary_percent": "a whole number of percent, e.g. canary_percent: 10",
    "step_percent": "a whole number of percent, e.g. step_percent: 25",
}


def _hint_for(path: Path) -> str | None:
    if path and path[-1] == "cloud":
        from mlops_infra.backends import names

        return f"the default target cloud: {' or '.join(names())} (--cloud overrides it)"
    for part in reversed(path):
        if isinstance(part, str) and part in _HINTS:
            return _HINTS[part]
    return None


def _known_fields(model: type[BaseModel], path: Path) -> list[str]:
    target = _model_at(model, path)
    if target is None:
        return []
    return sorted(f.alias or name for name, f in target.model_fields.items())


def _model_at(model: type[BaseModel], path: Path) -> type[BaseModel] | None:
    current: Any = model
    for part in path:
        current = _unwrap(current, part)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, part: str | int) -> Any:
    """Follow one path step through models, Optional/Union, list and dict annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(part, str):
            return None
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return _model_in(info.annotation)
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and isinstance(part, int) and args:
        return _model_in(args[0])
    if origin is dict and args:
        return _model_in(args[1])
    return None


def _model_in(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        models = [_model_in(a) for a in typing.get_args(annotation) if a is not type(None)]
        models = [m for m in models if m is not None]
        return models[0] if len(models) == 1 else (models[0] if models else None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin in (list, tuple, dict):
        return annotation
    return None
