"""Pathways (forløp) as versioned data files, validated at load with clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PATHWAY_DIR = Path(__file__).parent / "pathways"


class Offset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: Literal["days", "weeks", "working_days", "months"]
    value: int = Field(ge=0, le=120)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(pattern=r"^[a-z_]{2,64}$")
    title_nb: str
    title_en: str
    starts_on: str = Field(description="Message type whose arrival starts the clock.")
    offset: Offset
    strength: Literal["skal", "bør", "anbefales", "kan"]
    responsible: str
    legal_ref: str
    source: str


class Pathway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    version: int = Field(ge=1)
    title_nb: str
    title_en: str
    steps: list[Step] = Field(min_length=1)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def steps_started_by(self, message_type: str) -> list[Step]:
        return [s for s in self.steps if s.starts_on == message_type]


class PathwayError(ValueError):
    pass


def load_pathway(path: Path) -> Pathway:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PathwayError(f"{path.name}: cannot read pathway file: {exc}") from None
    try:
        pathway = Pathway.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise PathwayError(f"{path.name}: invalid pathway: {problems}") from None
    tasks = [s.task for s in pathway.steps]
    if len(tasks) != len(set(tasks)):
        raise PathwayError(f"{path.name}: a task appears twice in the pathway")
    return pathway
