"""Norwegian working days and deadline arithmetic, from the maintained `holidays` calendar."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

from services.planning.pathway import Birthdays, NonWorkingDay, Offset, Step


@lru_cache(maxsize=64)
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.Norway(years=year)


# Both pure, over a handful of dates in use at a time: a cProfile of planning put 61 holiday
# lookups behind every arrival.
@lru_cache(maxsize=8192)
def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


@lru_cache(maxsize=8192)
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


@dataclass(frozen=True)
class Born:
    """The child's registered birth date, and whether it is estimated (age assessment)."""

    day: date
    estimated: bool


def birthday(born: date, age: int, leap_day: str = "mar_1") -> date:
    """The day a child born on `born` turns `age`; a 29 February birthday in a common year
    falls on 28 February or 1 March (the pathway's counting.birthdays.leap_day)."""
    year = born.year + age
    if (born.month, born.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28) if leap_day == "feb_28" else date(year, 3, 1)
    return born.replace(year=year)


def age_limit(step: Step, born: date, leap_day: str) -> int:
    """The age a birthday step falls on: where its references set age limits, the limit of
    the reference in force on the day that limit is reached (23 under the 1992 act, 25 under
    the 2021 act, say); otherwise the offset's own age."""
    if isinstance(step.legal_ref, list):
        for ref in step.legal_ref:
            if ref.age is not None and ref.in_force(birthday(born, ref.age, leap_day)):
                return ref.age
        ages = [r.age for r in step.legal_ref if r.age is not None]
        if ages:
            return ages[-1]
    return step.offset.value


class NoBirthDate(ValueError):
    """A step on a birthday for a case whose birth date planning does not know."""


def due_date(start: date, offset: Offset) -> date:
    if offset.unit == "birthday":
        raise NoBirthDate("a birthday offset needs the child's birth date (raw_due)")
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


def raw_due(
    start: date,
    step: Step,
    occurrence: int = 1,
    born: Born | None = None,
    birthdays: Birthdays | None = None,
) -> date:
    """The step's n-th date before the weekend rule: later occurrences count from the earlier
    unmoved date, so moving one off a weekend never shifts the next. A step on a birthday
    counts from the child's birthday, earlier by the margin for an estimated birth date where
    the step says so, and never before its start (a birthday passed before the pathway began
    makes the step due on the start day)."""
    if step.on_birthday:
        if born is None:
            raise NoBirthDate(f"{step.task}: falls on a birthday; the birth date is not known")
        leap = birthdays.leap_day if birthdays else "mar_1"
        day = birthday(born.day, age_limit(step, born.day, leap), leap)
        if born.estimated and step.estimated_birth_date == "margin_earlier" and birthdays:
            day = add_months(day, -birthdays.estimated_margin_months)
    else:
        day = due_date(start, step.offset)
    if step.then:
        day = due_date(day, step.then)
    for _ in range(occurrence - 1):
        assert step.recurrence is not None
        day = due_date(day, step.recurrence.every)
    return max(day, start) if step.on_birthday else day


def step_due(
    start: date,
    step: Step,
    rule: NonWorkingDay,
    occurrence: int = 1,
    born: Born | None = None,
    birthdays: Birthdays | None = None,
) -> date:
    """When the n-th occurrence of a step falls due, after the weekend rule (the step's own,
    or the pathway's `rule`)."""
    day = raw_due(start, step, occurrence, born, birthdays)
    return move_off_non_working_day(day, step.non_working_day or rule)


def recurs_past(step: Step, raw: date, born: Born | None, birthdays: Birthdays | None) -> bool:
    """Whether an occurrence falls on or after the birthday that ends the step's recurrence."""
    until = step.recurrence.until_birthday if step.recurrence else None
    if until is None or born is None:
        return False
    return raw >= birthday(born.day, until, birthdays.leap_day if birthdays else "mar_1")
