"""Neutral cron + IANA time zone -> an Azure ML schedule's cron trigger (pure: retraining.check uses it).

Azure ML schedules (CronTrigger, REST API 2025-12-01, which pulumi-azure-native 3.29 uses) take
- `expression`: "should follow NCronTab format" (the API reference). NCronTab (the .NET library,
  github.com/atifaziz/NCrontab, CrontabSchedule.cs and CrontabFieldImpl.cs) reads the same five
  fields as Vixie cron with two differences that matter here:
  * day of week is 0-6 (Sunday = 0): 7 is rejected;
  * a day must match day-of-month AND day-of-week (GetNextOccurrence checks the day of week after
    choosing the day), where Vixie cron fires when EITHER matches once both fields are restricted.
  The translation writes every field as explicit numbers (ranges and lists, no names, no steps),
  so only the day rule can stop it: a cron restricting both day fields (neither to every day)
  has no NCronTab equivalent, and retraining.check reports it at models[i].retraining.schedule.
- `timeZone`: "should follow Windows time zone format" (the API reference and the SDK's own
  docstring for CronTrigger.time_zone), e.g. "W. Europe Standard Time", not "Europe/Amsterdam".
  WINDOWS_ZONES maps the IANA zones we support; any other zone is an error at
  models[i].retraining.timezone (never a silent fallback to UTC).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_infra.stages.schedule import parse_cron

if TYPE_CHECKING:
    from mlops_infra.spec.problems import Path, Problem

# IANA zone -> Windows time zone id. Source: Unicode CLDR windowsZones.xml (the mapping Windows
# and .NET use), as generated into tzlocal 5.4.5's windows_tz.py. tests/test_monitoring_azure.py
# checks that each zone keeps the UTC offsets of its Windows zone's reference zone (CLDR
# territory "001") hour by hour over several years.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "Etc/UTC": "UTC",
    # Europe
    "Europe/London": "GMT Standard Time",
    "Europe/Dublin": "GMT Standard Time",
    "Europe/Lisbon": "GMT Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Berlin": "W. Europe Standard Time",
    "Europe/Rome": "W. Europe Standard Time",
    "Europe/Zurich": "W. Europe Standard Time",
    "Europe/Vienna": "W. Europe Standard Time",
    "Europe/Stockholm": "W. Europe Standard Time",
    "Europe/Oslo": "W. Europe Standard Time",
    "Europe/Luxembourg": "W. Europe Standard Time",
    "Europe/Paris": "Romance Standard Time",
    "Europe/Madrid": "Romance Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/Copenhagen": "Romance Standard Time",
    "Europe/Warsaw": "Central European Standard Time",
    "Europe/Prague": "Central Europe Standard Time",
    "Europe/Budapest": "Central Europe Standard Time",
    "Europe/Helsinki": "FLE Standard Time",
    "Europe/Kyiv": "FLE Standard Time",
    "Europe/Kiev": "FLE Standard Time",
    "Europe/Riga": "FLE Standard Time",
    "Europe/Vilnius": "FLE Standard Time",
    "Europe/Tallinn": "FLE Standard Time",
    "Europe/Sofia": "FLE Standard Time",
    "Europe/Athens": "GTB Standard Time",
    "Europe/Bucharest": "GTB Standard Time",
    "Europe/Istanbul": "Turkey Standard Time",
    "Europe/Moscow": "Russian Standard Time",
    # Americas
    "America/New_York": "Eastern Standard Time",
    "America/Detroit": "Eastern Standard Time",
    "America/Toronto": "Eastern Standard Time",
    "America/Chicago": "Central Standard Time",
    "America/Winnipeg": "Manitoba Standard Time",
    "America/Denver": "Mountain Standard Time",
    "America/Phoenix": "US Mountain Standard Time",
    "America/Los_Angeles": "Pacific Standard Time",
    "America/Anchorage": "Alaskan Standard Time",
    "Pacific/Honolulu": "Hawaiian Standard Time",
    "America/Halifax": "Atlantic Standard Time",
    "America/Sao_Paulo": "E. South America Standard Time",
    "America/Mexico_City": "Central Standard Time (Mexico)",
    "America/Bogota": "SA Pacific Standard Time",
    "America/Lima": "SA Pacific Standard Time",
    "America/Argentina/Buenos_Aires": "Argentina Standard Time",
    "America/Buenos_Aires": "Argentina Standard Time",
    "America/Santiago": "Pacific SA Standard Time",
    # Asia
    "Asia/Tokyo": "Tokyo Standard Time",
    "Asia/Seoul": "Korea Standard Time",
    "Asia/Shanghai": "China Standard Time",
    "Asia/Hong_Kong": "China Standard Time",
    "Asia/Taipei": "Taipei Standard Time",
    "Asia/Singapore": "Singapore Standard Time",
    "Asia/Kuala_Lumpur": "Singapore Standard Time",
    "Asia/Manila": "Singapore Standard Time",
    "Asia/Jakarta": "SE Asia Standard Time",
    "Asia/Bangkok": "SE Asia Standard Time",
    "Asia/Ho_Chi_Minh": "SE Asia Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Asia/Calcutta": "India Standard Time",
    "Asia/Karachi": "Pakistan Standard Time",
    "Asia/Dhaka": "Bangladesh Standard Time",
    "Asia/Dubai": "Arabian Standard Time",
    "Asia/Riyadh": "Arab Standard Time",
    "Asia/Qatar": "Arab Standard Time",
    "Asia/Jerusalem": "Israel Standard Time",
    "Asia/Tehran": "Iran Standard Time",
    # Oceania
    "Australia/Sydney": "AUS Eastern Standard Time",
    "Australia/Melbourne": "AUS Eastern Standard Time",
    "Australia/Canberra": "AUS Eastern Standard Time",
    "Australia/Hobart": "Tasmania Standard Time",
    "Australia/Brisbane": "E. Australia Standard Time",
    "Australia/Adelaide": "Cen. Australia Standard Time",
    "Australia/Darwin": "AUS Central Standard Time",
    "Australia/Perth": "W. Australia Standard Time",
    "Pacific/Auckland": "New Zealand Standard Time",
    # Africa
    "Africa/Johannesburg": "South Africa Standard Time",
    "Africa/Cairo": "Egypt Standard Time",
    "Africa/Lagos": "W. Central Africa Standard Time",
    "Africa/Nairobi": "E. Africa Standard Time",
    "Africa/Casablanca": "Morocco Standard Time",
}

_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


class Untranslatable(ValueError):
    """The neutral cron has no NCronTab equivalent (the message says why)."""


def windows_zone(iana: str) -> str | None:
    """The Windows time zone id Azure ML wants for an IANA zone, or None when we do not map it."""
    return WINDOWS_ZONES.get(iana)


def ncrontab(expression: str) -> str:
    """The NCronTab expression that fires at exactly the minutes `expression` fires at.

    Raises Untranslatable when both day fields are restricted (NCronTab ANDs them, cron ORs them).
    """
    cron = parse_cron(expression)
    days, weekdays = cron.days, cron.weekdays
    if cron.days_restricted and cron.weekdays_restricted:
        every_day = set(range(1, 32)) <= days or set(range(7)) <= weekdays
        if not every_day:
            raise Untranslatable(
                "Azure ML schedules (NCronTab) fire only on days that match both day-of-month and "
                "day-of-week; this cron means days matching either"
            )
        days, weekdays = frozenset(range(1, 32)), frozenset(range(7))  # OR with "every day": every day
    parts = (cron.minutes, cron.hours, days, cron.months, weekdays)
    return " ".join(_field(values, low, high) for values, (low, high) in zip(parts, _FIELDS))


def _field(values: frozenset[int], low: int, high: int) -> str:
    if set(range(low, high + 1)) <= values:
        return "*"
    runs: list[tuple[int, int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)



def zone_problem(zone: str, path: Path, *, service: str) -> Problem | None:
    """The error for an IANA zone mlops-infra maps to no Windows zone (`service` takes Windows names)."""
    import difflib

    from mlops_infra.stages.base import finding

    if windows_zone(zone) is not None:
        return None
    close = difflib.get_close_matches(zone, sorted(WINDOWS_ZONES), n=3)
    return finding(
        path,
        f"{service} take Windows time zone names, and mlops-infra maps no Windows zone for {zone!r}",
        hint=(f"did you mean {', '.join(close)}? " if close else "")
        + "supported: the zones in mlops_infra/backends/azure/schedules.py (WINDOWS_ZONES), or UTC",
        value=zone,
    )
