"""Pathways (forløp) as versioned data files, validated at load with clear errors.

A pathway names its milestones (events in a case, such as `arrival` or `residence_granted`)
and its steps. A step starts when its milestone is reached, falls due after an offset
(calendar days, weeks, months, Norwegian working days, or "week N of the stay"; negative for
"before"), may recur until another milestone, and is done when its `completed_by` milestone is
reached or the responsible unit reports it done. How weeks are counted and where a deadline
that falls on a Saturday, Sunday or holiday goes are the pathway's `counting` data, with their
source (docs/decisions/0011). A step may instead fall on a birthday (`birthday`: the day the
child turns N), with how a 29 February birthday and an estimated birth date count as the
pathway's `counting.birthdays` data (docs/decisions/0015).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PATHWAY_DIR = Path(__file__).parent / "pathways"
NAME = r"^[a-z][a-z0-9_]{1,63}$"


NonWorkingDay = Literal["next_working_day", "previous_working_day", "keep"]


class Offset(BaseModel):
    """`weeks`: N whole weeks after the start (`innen tre uker etter ankomst`: start + 21
    days). `week_of_stay`: "uke N" of a stay, whose week 1 begins on the start day, so the
    deadline is the last day of week N (start + 7N - 1 days). `birthday`: the day the child
    turns N, whatever the start (only as a step's first offset)."""

    model_config = ConfigDict(extra="forbid")
    unit: Literal["days", "weeks", "working_days", "months", "week_of_stay", "birthday"]
    value: int = Field(ge=-36, le=366)

    @model_validator(mode="after")
    def _week_of_stay_forward(self) -> Offset:
        if self.unit == "week_of_stay" and self.value < 1:
            raise ValueError("week_of_stay counts weeks of a stay from 1")
        if self.unit == "birthday" and not 0 <= self.value <= 30:
            raise ValueError("birthday is an age in whole years, 0-30")
        return self


class Birthdays(BaseModel):
    """How a pathway counts birthdays: the birthday of a child born on 29 February in a
    common year, and how far a step meant to come before an age moves forward when the birth
    date is estimated (the child may be older than registered)."""

    model_config = ConfigDict(extra="forbid")
    leap_day: Literal["feb_28", "mar_1"] = Field(
        description="The birthday in a common year of a child born on 29 February."
    )
    estimated_margin_months: int = Field(
        ge=0, le=36, description="Steps marked margin_earlier come this much earlier."
    )
    source: str = Field(min_length=1)
    verify: bool
    note: str | None = None


class Counting(BaseModel):
    """How a pathway counts: what its week numbers mean and where a deadline that falls on a
    Saturday, Sunday or public holiday goes. Data with its source, so it can be corrected."""

    model_config = ConfigDict(extra="forbid")
    weeks: str = Field(min_length=1, description="What 'week N' means in this pathway's source.")
    non_working_day: NonWorkingDay = Field(
        description="A deadline on a Saturday, Sunday or holiday moves to the next working day, "
        "the previous one, or stays."
    )
    source: str = Field(min_length=1, description="Where the rules come from, with lines.")
    verify: bool = Field(description="True where the rule is our reading, to be confirmed.")
    note: str | None = None
    birthdays: Birthdays | None = Field(None, description="For steps that fall on a birthday.")


class DatedRef(BaseModel):
    """A legal reference with the period it is in force: [valid_from, valid_to)."""

    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=180)
    valid_from: date | None = None
    valid_to: date | None = Field(None, description="First day no longer in force.")
    verify: bool = False
    note: str | None = None
    age: int | None = Field(
        None, ge=0, le=30, description="For a step on a birthday: the age limit this sets."
    )

    def in_force(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day < self.valid_to
        )


class Recurrence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: Offset
    until: str = Field(pattern=NAME, description="Milestone that ends the recurrence.")
    until_birthday: int | None = Field(
        None, ge=1, le=30, description="No occurrence on or after the child turns this age."
    )

    @model_validator(mode="after")
    def _forward(self) -> Recurrence:
        if self.every.value <= 0:
            raise ValueError("recurrence.every must move forward (value > 0)")
        if self.every.unit == "birthday":
            raise ValueError("recurrence.every cannot be a birthday")
        return self


class Condition(BaseModel):
    """Whom a step applies to, on the day it starts: an age band in whole years, a school
    level (from the birth date and the school year), nationalities in a named list."""

    model_config = ConfigDict(extra="forbid")
    age_from: int | None = Field(None, ge=0, le=30)
    age_below: int | None = Field(None, ge=0, le=30)
    school_levels: list[Literal["barnehage", "grunnskole", "videregaende"]] | None = None
    nationality_in: str | None = Field(
        None, pattern=NAME, description="A list in services/planning/data/<name>.json."
    )


class Copy(BaseModel):
    """Another unit (by role in the case) and the role there that hears of a step."""

    model_config = ConfigDict(extra="forbid")
    responsible: str = Field(pattern=NAME)
    role: str = Field(pattern=NAME)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(pattern=NAME)
    title_nb: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    kind: Literal["task", "frame"] = Field(
        "task", description="task: something to do by the date; frame: flagged when passed."
    )
    starts_on: str = Field(pattern=NAME, description="Milestone that starts the clock.")
    offset: Offset
    then: Offset | None = Field(
        None, description="A second offset from the first date, e.g. 5 working days before it."
    )
    non_working_day: NonWorkingDay | None = Field(
        None, description="Overrides the pathway's counting.non_working_day for this step."
    )
    recurrence: Recurrence | None = None
    completed_by: str | None = Field(
        None, pattern=NAME, description="Milestone that marks it done."
    )
    cancelled_by: list[str] = Field(
        default_factory=list, description="Milestones after which it no longer applies."
    )
    strength: Literal["skal", "bør", "anbefales", "kan"]
    responsible: str = Field(pattern=NAME, description="Role: care_centre, bufetat_region, ...")
    legal_ref: str | list[DatedRef] = Field(
        description="The legal basis, or the bases with the periods each is in force."
    )
    source: str = Field(min_length=1, description="Where the rule comes from, with lines.")
    note: str | None = Field(None, description="Why a choice was made where the source wavers.")
    verify: bool = Field(
        False, description="The rule is our reading where the source is silent or unsure."
    )
    applies_if: Condition | None = Field(
        None, description="Only for children who meet this on the day the step starts."
    )
    role: str = Field(
        "contact_person",
        pattern=NAME,
        description="The role at the responsible unit that carries the step out (notify).",
    )
    copy_to: list[Copy] = Field(
        default_factory=list, description="Other units and roles told of it (notify)."
    )
    estimated_birth_date: Literal["as_registered", "margin_earlier"] = Field(
        "as_registered",
        description="A step on a birthday, for a child whose birth date is estimated: on the "
        "registered date, or earlier by counting.birthdays.estimated_margin_months.",
    )

    @property
    def on_birthday(self) -> bool:
        return self.offset.unit == "birthday"

    def legal_ref_on(self, day: date) -> str:
        """The reference in force on the day (the step's start); the last one if none is."""
        if isinstance(self.legal_ref, str):
            return self.legal_ref
        found = [r for r in self.legal_ref if r.in_force(day)] or self.legal_ref[-1:]
        ref = found[0]
        return ref.ref + (" (verify)" if ref.verify and "verify" not in ref.ref else "")

    @model_validator(mode="after")
    def _refs(self) -> Step:
        if isinstance(self.legal_ref, str) and not 0 < len(self.legal_ref.strip()) <= 190:
            raise ValueError("legal_ref must be 1-190 characters")
        if isinstance(self.legal_ref, list) and not self.legal_ref:
            raise ValueError("legal_ref must name at least one reference")
        if self.then and self.then.unit == "birthday":
            raise ValueError("then: a birthday can only be the first offset")
        dated_ages = isinstance(self.legal_ref, list) and any(r.age for r in self.legal_ref)
        if dated_ages and not self.on_birthday:
            raise ValueError("legal_ref: an age limit needs a step on a birthday")
        return self


class SchoolYear(BaseModel):
    """Grade 1 starts in the school year of the calendar year a child turns `first_grade_age`;
    a school year starts on `starts` (MM-DD); grunnskole is grades 1-10."""

    model_config = ConfigDict(extra="forbid")
    first_grade_age: int = Field(ge=5, le=7)
    starts: str = Field(pattern=r"^[01][0-9]-[0-3][0-9]$")
    grades: int = Field(ge=1, le=13)
    source: str = Field(min_length=1)
    verify: bool


class Pathway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    version: int = Field(ge=1)
    title_nb: str
    title_en: str
    applies_to: str = Field(description="Who the pathway is for.")
    counting: Counting
    school_year: SchoolYear | None = Field(
        None, description="How a school level follows from a birth date (steps with levels)."
    )
    milestones: dict[str, str] = Field(min_length=1, description="Milestone name -> meaning.")
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Pathway:
        tasks = [s.task for s in self.steps]
        twice = sorted({t for t in tasks if tasks.count(t) > 1})
        if twice:
            raise ValueError(f"tasks appear twice: {', '.join(twice)}")
        for step in self.steps:
            if step.applies_if and step.applies_if.school_levels and not self.school_year:
                raise ValueError(f"step {step.task}: school levels need the pathway's school_year")
            birthday = step.on_birthday or (step.recurrence and step.recurrence.until_birthday)
            if birthday and not self.counting.birthdays:
                raise ValueError(
                    f"step {step.task}: birthdays need the pathway's counting.birthdays"
                )
            first = next(iter(self.milestones))
            if step.applies_if and step.starts_on != first:
                raise ValueError(
                    f"step {step.task}: applies_if is decided when the case opens, "
                    f"so the step must start on {first!r}"
                )
            until = step.recurrence and step.recurrence.until
            used = [step.starts_on, step.completed_by, until, *step.cancelled_by]
            for name in filter(None, used):
                if name not in self.milestones:
                    raise ValueError(f"step {step.task}: milestone {name!r} is not declared")
        return self

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def steps_started_by(self, milestone: str) -> list[Step]:
        return [s for s in self.steps if s.starts_on == milestone]

    def steps_completed_by(self, milestone: str) -> list[Step]:
        return [s for s in self.steps if s.completed_by == milestone]

    def step(self, task: str) -> Step | None:
        return next((s for s in self.steps if s.task == task), None)


class PathwayError(ValueError):
    pass


def load_pathway(path: Path) -> Pathway:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PathwayError(f"{path.name}: cannot read pathway file: {exc}") from None
    try:
        return Pathway.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise PathwayError(f"{path.name}: invalid pathway: {problems}") from None


def load_all(directory: Path = PATHWAY_DIR) -> dict[str, Pathway]:
    """Every pathway in the folder by id; a bad file stops the service with its error."""
    pathways = [load_pathway(p) for p in sorted(directory.glob("*.json"))]
    by_id = {p.id: p for p in pathways}
    if len(by_id) != len(pathways):
        raise PathwayError("two pathway files share an id")
    return by_id


def json_schema() -> dict:
    return Pathway.model_json_schema()
