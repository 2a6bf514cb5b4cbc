"""Norwegian working days and deadline arithmetic, from the maintained `holidays` calendar."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache

import holidays

from services.planning.pathway import NonWorkingDay, Offset, Step


@lru_cache(maxsize=64)
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.Norway(years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: date, count: int) -> date:
    """The count-th working day after `start` (start itself never counts); before it when
    `count` is negative."""
    day, step = start, 1 if count >= 0 else -1
    remaining = abs(count)
    while remaining > 0:
        day += timedelta(days=step)
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
        case "week_of_stay":  # week 1 begins on the start day: week N ends on day 7N - 1
            return start + timedelta(days=7 * offset.value - 1)
    raise ValueError(f"unknown offset unit {offset.unit!r}")


def move_off_non_working_day(day: date, rule: NonWorkingDay) -> date:
    """A deadline on a Saturday, Sunday or holiday: to the next or previous working day, or
    kept (the pathway's counting rule)."""
    step = {"next_working_day": 1, "previous_working_day": -1}.get(rule)
    while step and not is_working_day(day):
        day += timedelta(days=step)
    return day


def raw_due(start: date, step: Step, occurrence: int = 1) -> date:
    """The step's n-th date before the weekend rule: later occurrences count from the earlier
    unmoved date, so moving one off a weekend never shifts the next."""
    day = due_date(start, step.offset)
    if step.then:
        day = due_date(day, step.then)
    for _ in range(occurrence - 1):
        assert step.recurrence is not None
        day = due_date(day, step.recurrence.every)
    return day


def step_due(start: date, step: Step, rule: NonWorkingDay, occurrence: int = 1) -> date:
    """When the n-th occurrence of a step falls due, after the weekend rule (the step's own,
    or the pathway's `rule`)."""
    return move_off_non_working_day(raw_due(start, step, occurrence), step.non_working_day or rule)
