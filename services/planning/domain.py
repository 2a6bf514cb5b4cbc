"""Planning rules without I/O: a task's status on a given day, when to look at it again,
which life-cycle events may follow which, to whom a step applies and which unit holds a role
that the law gives by place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from services.planning.calendar import add_working_days, is_working_day
from services.planning.pathway import Condition, SchoolYear

DATA = Path(__file__).parent / "data"

OPEN = ("scheduled", "due_soon", "due", "overdue")
TERMINAL = ("done", "cancelled")


@lru_cache(maxsize=8192)
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
    "appeal_lodged": ("residence_refused",),
    "final_refusal": ("residence_refused",),
    "settlement_planned": ("residence_granted",),
    "settled": ("residence_granted",),
}


def missing_before(milestone: str, reached: set[str]) -> list[str]:
    return [m for m in REQUIRES.get(milestone, ()) if m not in reached]


# -- to whom a step applies ------------------------------------------------------------------


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def school_level(birth_date: date, day: date, rules: SchoolYear) -> str:
    """barnehage, grunnskole or videregaende on a day: grade 1 is the school year that starts
    in the calendar year the child turns `first_grade_age`."""
    month, dom = (int(x) for x in rules.starts.split("-"))
    year = day.year if (day.month, day.day) >= (month, dom) else day.year - 1
    grade = year - birth_date.year - rules.first_grade_age + 1
    if grade < 1:
        return "barnehage"
    return "grunnskole" if grade <= rules.grades else "videregaende"


@dataclass(frozen=True)
class Facts:
    """What intake tells planning about the child when the case opens (never stored)."""

    birth_date: date
    nationality: str


def load_list(name: str) -> frozenset[str]:
    raw = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return frozenset(raw["countries"])


def applies(
    cond: Condition | None,
    facts: Facts | None,
    on: date,
    school: SchoolYear | None,
    lists: dict[str, frozenset[str]],
) -> bool:
    """Whether a step applies to this child on the day it starts. Without facts (a case
    opened by an older message) a conditional step is scheduled: better asked than lost."""
    if cond is None or facts is None:
        return True
    age = age_on(facts.birth_date, on)
    if cond.age_from is not None and age < cond.age_from:
        return False
    if cond.age_below is not None and age >= cond.age_below:
        return False
    if cond.school_levels is not None:
        assert school is not None
        if school_level(facts.birth_date, on, school) not in cond.school_levels:
            return False
    if cond.nationality_in is not None:
        return facts.nationality in lists[cond.nationality_in]
    return True


# -- who holds a role given by place ----------------------------------------------------------


@dataclass(frozen=True)
class Places:
    """Bufetat regions and Statsforvalter by county (units.json): a kommunenummer's first two
    digits are its county."""

    regions: dict[str, str]
    counties: dict[str, dict[str, str]]
    unknown: dict[str, str]
    follow_up_region: str

    def county(self, kommunenummer: str | None) -> dict[str, str]:
        return self.counties.get((kommunenummer or "")[:2], self.unknown)

    def region_unit(self, kommunenummer: str | None) -> str:
        return self.regions[self.county(kommunenummer)["bufetat_region"]]

    def statsforvalter(self, kommunenummer: str | None) -> str:
        return self.county(kommunenummer)["statsforvalter"]


def load_places(path: Path = DATA / "units.json") -> Places:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Places(
        raw["bufetat_regions"], raw["counties"], raw["unknown_location"], raw["follow_up_region"]
    )


__all__ = [
    "OPEN",
    "TERMINAL",
    "Facts",
    "Places",
    "applies",
    "load_list",
    "load_places",
    "school_level",
    "add_working_days",
    "days_late",
    "due_soon_from",
    "missing_before",
    "next_check",
    "status_on",
]
