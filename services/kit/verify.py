"""Checks every incoming message passes before it may touch state, each with a clear reason."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from contracts.envelope import HEADER_KEY_ID, HEADER_SIGNATURE, CloudEvent
from contracts.registry import Contract, contract_for_type
from services.kit.directory import Directory, Unit
from services.kit.signing import verify

MAX_BODY = 1_048_576


class Invalid(Exception):
    """The message is unsigned, forged or malformed: it goes to the dead-letter stream."""


@dataclass(frozen=True)
class Verified:
    event: CloudEvent
    data: BaseModel
    contract: Contract
    sender: Unit


def describe(error: ValidationError) -> str:
    """Field and reason for each error, never the offending value (it may be confidential)."""
    parts = []
    for err in error.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def verify_message(
    subject: str,
    headers: dict[str, str] | None,
    body: bytes,
    directory: Directory,
    accepts: dict[str, Contract],
) -> Verified:
    headers = headers or {}
    if len(body) > MAX_BODY:
        raise Invalid(f"body of {len(body)} bytes exceeds the {MAX_BODY}-byte limit")
    key_id, signature = headers.get(HEADER_KEY_ID), headers.get(HEADER_SIGNATURE)
    if not key_id or not signature:
        raise Invalid(f"unsigned: the {HEADER_KEY_ID} and {HEADER_SIGNATURE} headers are required")
    unit_id, _, kid = key_id.partition("/")
    sender = await directory.get(unit_id) if unit_id and kid else None
    public = sender.key(kid) if sender else None
    if sender is None or public is None:
        raise Invalid(f"unknown signing key {key_id!r}: not in the unit directory, or revoked")
    if not verify(public.public_key, body, signature):
        raise Invalid(f"bad signature: the body does not verify against key {key_id!r}")
    try:
        raw = json.loads(body)
    except UnicodeDecodeError:
        raise Invalid("invalid envelope: body is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise Invalid(f"invalid envelope: body is not JSON ({exc.msg})") from None
    except RecursionError:
        raise Invalid("invalid envelope: body is nested too deeply") from None
    try:
        event = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(f"invalid envelope: {describe(exc)}") from None
    if event.source != sender.id:
        raise Invalid(f"signer {sender.id!r} is not the envelope source {event.source!r}")
    contract = accepts.get(event.type)
    if contract is None:
        known = "known" if contract_for_type(event.type) else "unknown"
        raise Invalid(f"type {event.type!r} ({known}) is not accepted on {subject!r} here")
    if not contract.matches(subject):
        raise Invalid(f"type {event.type!r} does not belong on subject {subject!r}")
    if sender.kind not in contract.senders:
        raise Invalid(f"a unit of kind {sender.kind.value!r} may not send {event.type!r}")
    try:
        data = contract.model.model_validate(event.data)
    except ValidationError as exc:
        raise Invalid(f"invalid data: {describe(exc)}") from None
    return Verified(event, data, contract, sender)
