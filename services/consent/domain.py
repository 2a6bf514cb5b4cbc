"""Pure rules of the broker: the minimal policy input and the decision record's hash."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from contracts.messages import ShareRequestV1

GENESIS = "sha256:" + "0" * 64


def age_on(birth_date: date, day: date) -> int:
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def policy_input(
    request: ShareRequestV1,
    *,
    birth_date: date,
    birth_date_estimated: bool,
    source_kind: str | None,
    recipient_kind: str | None,
    consents: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """What the policy sees: the request without payload values, the child's age, the units'
    kinds, the consents in force and the time."""
    return {
        "request": {
            "case_id": request.case_id,
            "source_unit": request.source_unit,
            "recipient_unit": request.recipient_unit,
            "data_category": request.data_category.value,
            "purpose": request.purpose,
            "claimed_basis": request.claimed_basis,
            "break_the_glass": request.break_the_glass is not None,
        },
        "child": {"age": age_on(birth_date, now.date()), "age_estimated": birth_date_estimated},
        "units": {"source": {"kind": source_kind}, "recipient": {"kind": recipient_kind}},
        "consents": consents,
        "now": now.isoformat(),
    }


def sha256_json(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def record_hash(record: dict[str, Any], prev_hash: str) -> str:
    """Chains each record to the one before: altering or removing a record breaks the chain."""
    return sha256_json({"prev": prev_hash, "record": record})
