"""Intake rules: what makes an arrival a new case, a repeat, or a transfer. No I/O."""

from __future__ import annotations

import base64
import uuid
from enum import StrEnum


class ArrivalOutcome(StrEnum):
    NEW_CASE = "new_case"
    REPEAT = "repeat"  # the same child reported again by the same centre: one case
    TRANSFER = "transfer"  # the same child at another centre: the case moves with the child


def new_case_id() -> str:
    return str(uuid.uuid4())


def case_ref(case_id: str) -> str:
    """A short, stable reference for people: EMA- and 8 base32 characters of the case id."""
    raw = uuid.UUID(case_id).bytes[:5]
    return "EMA-" + base64.b32encode(raw).decode().rstrip("=")


def classify_arrival(existing_centre: str | None, reporting_centre: str) -> ArrivalOutcome:
    if existing_centre is None:
        return ArrivalOutcome.NEW_CASE
    if existing_centre == reporting_centre:
        return ArrivalOutcome.REPEAT
    return ArrivalOutcome.TRANSFER
