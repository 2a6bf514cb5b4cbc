"""Norwegian working days and deadline arithmetic, from the maintained `holidays` calendar."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache

import holidays

from services.planning.pathway import Offset


@lru_cache(maxsize=64)
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.Norway(years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: date, count: int) -> date:
    """The count-th working day after `start` (start itself never counts)."""
    day = start
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_date(start: date, offset: Offset) -> date:
    match offset.unit:
        case "days":
            return start + timedelta(days=offset.value)
        case "weeks":
            return start + timedelta(weeks=offset.value)
        case "working_days":
            return add_working_days(start, offset.value)
        case "months":
            return add_months(start, offset.value)
    raise ValueError(f"unknown offset unit {offset.unit!r}")
