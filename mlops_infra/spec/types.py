"""Small value types shared by the spec models: slugs, durations, cron, percentages."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

SLUG_RE = r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$"
# Every pattern here is applied with fullmatch: with match, "$" also matches before a final
# line break, and "m1\n" would pass as a slug.
_SLUG = re.compile(SLUG_RE)


class HintedValueError(ValueError):
    """A validator's refusal that knows how to fix it: the validator turns `hint` into the problem's hint."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def did_you_mean(value: str, known: "list[str] | frozenset[str]", *, otherwise: str) -> str:
    """'did you mean X?' for the closest known value (typos: a swapped, missing, extra or wrong letter)."""
    lowered = value.lower()
    best = min(sorted(known), key=lambda k: (_edit_distance(lowered, k.lower()), k), default=None)
    if best is None or _edit_distance(lowered, best.lower()) > max(2, len(value) // 4):
        return otherwise
    return f"did you mean {best!r}?"


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours."""
    if abs(len(a) - len(b)) > 3:
        return abs(len(a) - len(b))
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def _slug_check(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            "must be a slug: lowercase letters, digits and single hyphens, starting with a letter"
        )
    return value


def _slug_length(max_length: int, min_length: int = 2) -> Any:
    return Field(min_length=min_length, max_length=max_length, json_schema_extra={"pattern": SLUG_RE})


# Spelled as Annotated aliases (not built by a function) so that type checkers see `str`.
ProjectName = Annotated[str, _slug_length(24), AfterValidator(_slug_check)]
EnvironmentName = Annotated[str, _slug_length(16), AfterValidator(_slug_check)]
ResourceName = Annotated[str, _slug_length(32), AfterValidator(_slug_check)]

_DURATION = re.compile(r"^([1-9][0-9]{0,6})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = r"^[1-9][0-9]{0,6}(s|m|h|d)$"


def parse_duration(value: object) -> object:
    """'4h' -> 14400. Anything else passes through for pydantic to reject."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValueError("must be a duration such as 90s, 30m, 4h or 2d")
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a duration such as 90s, 30m, 4h or 2d")
    return value


def format_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration_schema(min_seconds: int, max_seconds: int) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "integer", "minimum": min_seconds, "maximum": max_seconds},
            ],
            "description": f"duration ({format_duration(min_seconds)} to {format_duration(max_seconds)})",
        }
    )


# A duration written '4h' (or whole seconds), kept as seconds, bounded.
JobDuration = Annotated[
    int, BeforeValidator(parse_duration), Field(ge=60, le=28 * 86400), _duration_schema(60, 28 * 86400)
]
ShortDuration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=3600), _duration_schema(0, 3600)]


Percent = Annotated[float, Field(ge=0, le=100)]
PositivePercent = Annotated[float, Field(gt=0, le=100)]


def _whole_percent(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(
            f"must be a whole percentage, not {value:g}: SageMaker, Vertex AI and Azure ML all split traffic "
            "in whole percentages"
        )
    return value


# A share of an endpoint's traffic (canary, linear step): whole percentages on every cloud.
TrafficPercent = Annotated[int, Field(ge=1, le=100), BeforeValidator(_whole_percent)]

# Five-field cron: minute hour day-of-month month day-of-week.
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)


def _cron_value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ValueError(f"cron {field} field: {text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"cron {field} field: {number} is outside {low}-{high}")
    return number


def check_cron(expression: str) -> str:
    """Validate a neutral 5-field cron expression (no seconds, no @macros, no '?', 'L', '#')."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron must have 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    for text, (field, low, high, names) in zip(fields, _CRON_FIELDS):
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"cron {field} field: step {step!r} must be a positive number")
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            first = _cron_value(start, low, high, names, field)
            if dash:
                last = _cron_value(end, low, high, names, field)
                if last < first:
                    raise ValueError(f"cron {field} field: range {base!r} runs backwards")
    return expression


Cron = Annotated[str, AfterValidator(check_cron)]


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    # Walking the zone database takes ~15 ms: once per process, not once per model.
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name: str) -> str:
    if name not in _time_zones():
        raise HintedValueError(
            f"unknown IANA time zone {name!r}",
            hint=did_you_mean(
                name, _time_zones(), otherwise="use a tz database name such as UTC, Europe/Paris or America/New_York"
            ),
        )
    return name


TimeZone = Annotated[str, AfterValidator(check_timezone)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("is not an email address")
    return value


Email = Annotated[str, AfterValidator(check_email)]


def check_https_url(value: str) -> str:
    if not re.fullmatch(r"https://[^\s/]+(/\S*)?", value):
        raise ValueError("must be an https:// URL")
    return value


HttpsUrl = Annotated[str, AfterValidator(check_https_url)]

_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._\-/:@]*$", re.IGNORECASE)


def check_image(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError("is not a container image reference (registry/repository:tag or @sha256:digest)")
    if ":" not in value.rsplit("/", 1)[-1] and "@" not in value:
        raise ValueError("needs an explicit tag (repository:1.2.0) or digest (repository@sha256:...)")
    return value


Image = Annotated[str, Field(max_length=512), AfterValidator(check_image)]
