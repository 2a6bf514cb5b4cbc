"""Pathways (forløp) as versioned data files, validated at load with clear errors.

A pathway names its milestones (events in a case, such as `arrival` or `residence_granted`)
and its steps. A step starts when its milestone is reached, falls due after an offset
(calendar days, weeks, months or Norwegian working days; negative for "before"), may recur
until another milestone, and is done when its `completed_by` milestone is reached or the
responsible unit reports it done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PATHWAY_DIR = Path(__file__).parent / "pathways"
NAME = r"^[a-z][a-z0-9_]{1,63}$"


class Offset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: Literal["days", "weeks", "working_days", "months"]
    value: int = Field(ge=-36, le=366)


class Recurrence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: Offset
    until: str = Field(pattern=NAME, description="Milestone that ends the recurrence.")

    @model_validator(mode="after")
    def _forward(self) -> Recurrence:
        if self.every.value <= 0:
            raise ValueError("recurrence.every must move forward (value > 0)")
        return self


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
    recurrence: Recurrence | None = None
    completed_by: str | None = Field(
        None, pattern=NAME, description="Milestone that marks it done."
    )
    strength: Literal["skal", "bør", "anbefales", "kan"]
    responsible: str = Field(pattern=NAME, description="Role: care_centre, bufetat_region, ...")
    legal_ref: str = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the rule comes from, with lines.")
    note: str | None = Field(None, description="Why a choice was made where the source wavers.")


class Pathway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    version: int = Field(ge=1)
    title_nb: str
    title_en: str
    applies_to: str = Field(description="Who the pathway is for.")
    milestones: dict[str, str] = Field(min_length=1, description="Milestone name -> meaning.")
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Pathway:
        tasks = [s.task for s in self.steps]
        twice = sorted({t for t in tasks if tasks.count(t) > 1})
        if twice:
            raise ValueError(f"tasks appear twice: {', '.join(twice)}")
        for step in self.steps:
            used = [step.starts_on, step.completed_by, step.recurrence and step.recurrence.until]
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
