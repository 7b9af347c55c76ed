"""Neutral schedules: the spec's 5-field cron, parsed once, so each cloud's translation can be
checked to fire at exactly the same minutes (tests compare translations with `fires`).

Semantics are Vixie cron's: minute hour day-of-month month day-of-week, day-of-week 0-7 with
0 and 7 both Sunday, names allowed for months and days; when both day fields are restricted,
a day matches if EITHER matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlops_infra.spec.types import _CRON_FIELDS, check_cron

DRIFT_SCHEDULES = {"hourly": "0 * * * *", "daily": "0 2 * * *", "weekly": "0 2 * * 0"}


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # day of month, 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, Sunday = 0
    days_restricted: bool  # day-of-month field was not "*"
    weekdays_restricted: bool  # day-of-week field was not "*"

    def fires(self, moment: datetime) -> bool:
        """Whether the schedule fires at this minute (in the schedule's own time zone)."""
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        weekday = (moment.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
        day_ok, weekday_ok = moment.day in self.days, weekday in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def parse_cron(expression: str) -> Cron:
    check_cron(expression)
    fields = expression.split()
    sets = []
    for text, (_, low, high, names) in zip(fields, _CRON_FIELDS):
        sets.append(frozenset(_expand(text, low, high, names)))
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        expression=expression,
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        days_restricted=fields[2] != "*",
        weekdays_restricted=fields[4] != "*",
    )


def _expand(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = _value(start, names)
            last = _value(end, names) if dash else (high if step_text else first)
        values.update(range(first, last + 1, step))
    return values


def _value(text: str, names: dict[str, int]) -> int:
    return names[text.lower()] if text.lower() in names else int(text)
