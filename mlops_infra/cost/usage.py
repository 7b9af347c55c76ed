"""How often a schedule runs in an average month (for usage-based costs)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from mlops_infra.stages.schedule import parse_cron

# A non-leap reference year: the month average is the same every year to within a run.
_REFERENCE_YEAR = 2025


@lru_cache(maxsize=256)
def scheduled_runs_per_month(expression: str) -> Decimal:
    """Runs a 5-field cron schedule makes per month, averaged over a year."""
    cron = parse_cron(expression)
    per_day = len(cron.minutes) * len(cron.hours)
    first = time(min(cron.hours), min(cron.minutes))
    day = date(_REFERENCE_YEAR, 1, 1)
    runs = 0
    while day.year == _REFERENCE_YEAR:
        # A day either matches at all its (hour, minute) pairs or at none: ask at its first one.
        if cron.fires(datetime.combine(day, first)):
            runs += per_day
        day += timedelta(days=1)
    return Decimal(runs) / 12
