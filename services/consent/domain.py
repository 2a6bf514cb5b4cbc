"""Pure rules of the broker: the minimal policy input, canonical record bytes, redaction."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from contracts.messages import ShareRequestV1, ShareRequestV2


def age_on(birth_date: date, day: date) -> int:
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def months_on(birth_date: date, day: date) -> int:
    """Whole months of age on a day (K3: how near a threshold an estimated age lies)."""
    months = (day.year - birth_date.year) * 12 + day.month - birth_date.month
    return months - (day.day < birth_date.day)


def policy_input(
    request: ShareRequestV1 | ShareRequestV2,
    *,
    birth_date: date,
    birth_date_estimated: bool,
    source_kind: str | None,
    recipient_kind: str | None,
    consents: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """What the policy sees: the request without payload values, the child's age, the units'
    ids and kinds, the consents in force and the time in epoch ns (docs/decisions/0006)."""
    req: dict[str, Any] = {
        "case_id": request.case_id,
        "source_unit": request.source_unit,
        "recipient_unit": request.recipient_unit,
        "data_category": request.data_category.value,
        "purpose": request.purpose,
        "break_the_glass": request.break_the_glass is not None,
    }
    if request.claimed_basis:
        req["claimed_basis"] = request.claimed_basis
    return {
        "request": req,
        "child": {
            "age": age_on(birth_date, now.date()),
            "age_months": months_on(birth_date, now.date()),
            "age_estimated": birth_date_estimated,
        },
        "units": {
            "source": {"id": request.source_unit, "kind": source_kind},
            "recipient": {"id": request.recipient_unit, "kind": recipient_kind},
        },
        "consents": consents,
        "now_ns": int(now.timestamp() * 1e6) * 1000,
    }


def sha256_json(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def redact(payload: Any, fields: list[str]) -> dict[str, Any]:
    """Keep only the allowed top-level fields of a JSON object payload (K11)."""
    if not isinstance(payload, dict):
        raise ValueError("payload: must be a JSON object of fields")
    return {k: payload[k] for k in fields if k in payload}
