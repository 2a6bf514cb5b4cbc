"""Planning rules without I/O: a task's status on a given day, when to look at it again,
and which life-cycle events may follow which."""

from __future__ import annotations

from datetime import date, timedelta

from services.planning.calendar import add_working_days, is_working_day

OPEN = ("scheduled", "due_soon", "due", "overdue")
TERMINAL = ("done", "cancelled")


def due_soon_from(due: date, working_days_before: int) -> date:
    """The day a task becomes due soon: `working_days_before` working days before its due date."""
    day, remaining = due, working_days_before
    while remaining > 0:
        day -= timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def status_on(due: date, today: date, working_days_before: int) -> str:
    if today > due:
        return "overdue"
    if today == due:
        return "due"
    if today >= due_soon_from(due, working_days_before):
        return "due_soon"
    return "scheduled"


def next_check(due: date, status: str, working_days_before: int) -> date | None:
    """The next day the status of an open task can change; None when it cannot."""
    match status:
        case "scheduled":
            return due_soon_from(due, working_days_before)
        case "due_soon":
            return due
        case "due":
            return due + timedelta(days=1)
    return None


def days_late(due: date, done_on: date) -> int:
    return max(0, (done_on - due).days)


# Life-cycle order: a milestone may only be reported once those it needs are reached.
REQUIRES: dict[str, tuple[str, ...]] = {
    "follow_up_decision": ("kopp_submitted",),
    "map_established": ("follow_up_decision",),
    "need_changed": ("follow_up_decision",),
    "settled": ("residence_granted",),
}


def missing_before(milestone: str, reached: set[str]) -> list[str]:
    return [m for m in REQUIRES.get(milestone, ()) if m not in reached]


__all__ = [
    "OPEN",
    "TERMINAL",
    "add_working_days",
    "days_late",
    "due_soon_from",
    "missing_before",
    "next_check",
    "status_on",
]
