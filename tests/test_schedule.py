"""The neutral cron model that every cloud's schedule translation is checked against."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from mlops_infra.stages.schedule import DRIFT_SCHEDULES, parse_cron


def firing(expression: str, start: datetime, days: int) -> list[datetime]:
    cron = parse_cron(expression)
    minutes = (start + timedelta(minutes=i) for i in range(days * 24 * 60))
    return [m for m in minutes if cron.fires(m)]


def test_weekly_monday_three_am() -> None:
    fired = firing("0 3 * * 1", datetime(2026, 11, 23), 14)  # 2026-11-23 is a Monday
    assert fired == [datetime(2026, 11, 23, 3), datetime(2026, 11, 30, 3)]


def test_sunday_is_zero_and_seven() -> None:
    assert parse_cron("0 0 * * 0").weekdays == parse_cron("0 0 * * 7").weekdays == frozenset({0})
    assert parse_cron("0 0 * * sun").weekdays == frozenset({0})


def test_both_day_fields_restricted_means_either() -> None:
    fired = firing("30 4 1 * mon", datetime(2026, 11, 29), 5)
    assert fired == [datetime(2026, 11, 30, 4, 30), datetime(2026, 12, 1, 4, 30)]


@pytest.mark.parametrize(
    ("expression", "minutes", "hours"),
    [("*/15 * * * *", {0, 15, 30, 45}, set(range(24))), ("5 9-17/4 * * *", {5}, {9, 13, 17}), ("0,30 1 * * *", {0, 30}, {1})],
)
def test_steps_ranges_and_lists(expression: str, minutes: set, hours: set) -> None:
    cron = parse_cron(expression)
    assert cron.minutes == minutes and cron.hours == hours


def test_month_names_and_step_from_a_start() -> None:
    assert parse_cron("0 0 1 jan,jul *").months == frozenset({1, 7})
    assert parse_cron("0 0 1 3/4 *").months == frozenset({3, 7, 11})


def test_drift_schedules_are_valid_crons() -> None:
    for expression in DRIFT_SCHEDULES.values():
        assert parse_cron(expression).minutes == frozenset({0})
