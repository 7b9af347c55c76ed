"""Neutral cron + IANA zone -> a Logic Apps Recurrence trigger (pure: batch.check uses it too).

Batch runs are started by a Logic App (batch.py) whose Recurrence trigger fires on a schedule:
frequency Day (every day) or Week (on `weekDays`), at every combination of `hours` and
`minutes`, in a Windows time zone (`timeZone`, the same names Azure ML schedules take:
schedules.WINDOWS_ZONES), counted from `startTime` (local time, no offset, as Logic Apps asks
when a time zone is given). Source: "Schedule and run recurring workflows with the Recurrence
trigger in Azure Logic Apps" and the Workflow Definition Language schema, Microsoft Learn, read
2026-12-06.

What it cannot say: a cron restricted to some days of the month or some months (Recurrence's
week and day schedules have no such field); batch.check reports those at models[i].batch.schedule.
"""

from __future__ import annotations

from typing import Any

from mlops_infra.backends.azure.schedules import Untranslatable
from mlops_infra.stages.schedule import parse_cron

WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")  # cron 0-6
START = "2024-01-01T00:00:00"  # a fixed past start keeps the definition the same on every plan


def recurrence(expression: str, windows_zone: str) -> dict[str, Any]:
    """The Recurrence of a Logic App that fires at exactly the minutes `expression` fires at.

    Raises Untranslatable for crons restricted by day of month or by month.
    """
    cron = parse_cron(expression)
    if cron.days_restricted and set(range(1, 32)) - cron.days:
        raise Untranslatable("a Logic Apps recurrence runs every day or on days of the week, not on days of the month")
    if set(range(1, 13)) - cron.months:
        raise Untranslatable("a Logic Apps recurrence runs in every month; it cannot skip months")
    schedule: dict[str, Any] = {"hours": sorted(cron.hours), "minutes": sorted(cron.minutes)}
    weekly = cron.weekdays_restricted and bool(set(range(7)) - cron.weekdays)
    if weekly:
        schedule["weekDays"] = [WEEKDAYS[day] for day in sorted(cron.weekdays)]
    return {
        "frequency": "Week" if weekly else "Day",
        "interval": 1,
        "schedule": schedule,
        "timeZone": windows_zone,
        "startTime": START,
    }
