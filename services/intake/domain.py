"""Intake rules: who a care centre takes, and what makes an arrival a new case, a repeat or a
transfer. No I/O."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

CENTRE_AGE_LIMIT = 15  # Bufetat's care centres take children under 15 ...
SIBLING_AGE_LIMIT = 18  # ... and siblings 15-18 placed with a younger sibling (seed 000).


class ArrivalOutcome(StrEnum):
    NEW_CASE = "new_case"
    REPEAT = "repeat"  # the same child reported again by the same centre: one case
    TRANSFER = "transfer"  # the same child at another centre: the case moves with the child
    REOPEN = "reopen"  # the child of a closed case arrives again


def new_case_id() -> str:
    return str(uuid.uuid4())


def case_ref(case_id: str) -> str:
    """A short, stable reference for people: EMA- and 8 base32 characters of the case id."""
    raw = uuid.UUID(case_id).bytes[:5]
    return "EMA-" + base64.b32encode(raw).decode().rstrip("=")


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def admission_problem(birth_date: date, arrival: date, has_younger_sibling: bool) -> str | None:
    """Why a care centre cannot take this child, or None. The reason names the field."""
    if birth_date > arrival:
        return "birth_date: lies after the arrival date"
    age = age_on(birth_date, arrival)
    if age >= SIBLING_AGE_LIMIT:
        return f"birth_date: the child is {age} at arrival; EMA cases are for children under 18"
    if age >= CENTRE_AGE_LIMIT and not has_younger_sibling:
        return (
            f"birth_date: the child is {age} at arrival; care centres take children under 15, "
            "or 15-17 with a younger sibling at the centre (give siblings)"
        )
    return None


def classify_arrival(
    existing_centre: str | None, reporting_centre: str, closed: bool = False
) -> ArrivalOutcome:
    if existing_centre is None:
        return ArrivalOutcome.NEW_CASE
    if closed:
        return ArrivalOutcome.REOPEN
    if existing_centre == reporting_centre:
        return ArrivalOutcome.REPEAT
    return ArrivalOutcome.TRANSFER


@dataclass(frozen=True)
class Decision:
    """A residence decision as the case holds it: who decided, the outcome, and whether it is
    final (UNE's always are; UDI's refusal when no appeal came in time)."""

    authority: str  # udi | une
    outcome: str  # granted | limited | refused
    final: bool


def decision_problem(earlier: list[Decision], new: Decision) -> str | None:
    """Why a decision cannot follow the earlier ones, or None. UDI decides first; after a
    refusal that is not final, UDI may reverse or close it (final) and UNE decides the
    appeal; after a grant, a limited permit or a final refusal nothing more comes here."""
    if not earlier:
        if new.authority == "une":
            return "authority: UNE decides an appeal; the case has no decision from UDI yet"
        return None
    last = earlier[-1]
    if last.outcome != "refused" or last.final:
        return (
            f"outcome: the case already has a {'final ' if last.final else ''}residence "
            f"decision ({last.authority}: {last.outcome})"
        )
    return None
