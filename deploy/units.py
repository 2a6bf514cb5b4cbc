"""Registering, rotating and revoking units: the directory entry, the unit's own NATS user
(a JWT the operator issues for the unit's public key) and its durable consumers, in one step.
Nothing here restarts nats-server: new users need no server change, and revocations reach
every server of a cluster as an account update (deploy/trust.py)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client

from contracts.messages import UnitKind
from deploy.provision import provision_unit, unit_jwt_path
from deploy.trust import Trust, user_public_key
from services.kit.directory import Directory, Unit, bucket
from services.kit.sealing import HYBRID, X25519
from services.kit.signing import kid_for


class Refused(ValueError):
    """What was asked cannot be done, and why; nothing was changed."""


@dataclass
class Registered:
    unit: Unit
    kid: str
    nkey: str  # the unit's NATS user: its signing key as an NKey
    jwt_path: Path | None  # the user JWT to hand to the unit (None without auth)


def check_public_key(public_b64: str) -> bytes:
    try:
        raw = base64.b64decode(public_b64, validate=True)
    except ValueError:
        raise Refused("--public-key: not base64") from None
    if len(raw) != 32:
        raise Refused(f"--public-key: {len(raw)} bytes, a raw Ed25519 public key has 32")
    return raw


async def register(
    nc: Client,
    data_dir: Path,
    trust: Trust | None,
    unit_id: str,
    name: str,
    kind: UnitKind,
    public_b64: str,
    sealing_key: str | None = None,
    pq_sealing_key: str | None = None,
    kommunenummer: str | None = None,
    notices: str | None = None,
) -> Registered:
    """Register a unit or add a key to it (rotation), and issue its NATS user. `notices`
    ("each" or "grouped") sets how it hears its tasks; None keeps what it had."""
    kid = kid_for(check_public_key(public_b64))
    # All input checked before anything is written: a refusal changes nothing.
    if notices is not None:
        check_notices(notices)
    if kommunenummer and not re.fullmatch(r"[0-9]{4}", kommunenummer):
        raise Refused("--kommunenummer: four digits, e.g. 0301")
    for sealing in (sealing_key, pq_sealing_key):
        try:
            if sealing:
                base64.b64decode(sealing, validate=True)
        except ValueError:
            raise Refused("--sealing-key: not base64") from None
    if kind is UnitKind.SERVICE:
        raise Refused("--kind service: services are registered by the operator's tooling")
    js = nc.jetstream(timeout=10)
    directory = Directory(await bucket(js), ttl=0)
    current = await directory.get(unit_id)
    if current is not None and current.revoked_at is not None:
        raise Refused(
            f"unit {unit_id} was revoked on {current.revoked_at:%Y-%m-%d}; "
            "register the unit under a new id"
        )
    nkey = user_public_key(public_b64)
    if trust is not None and trust.is_revoked(nkey):
        raise Refused("this key was revoked; a revoked key is never trusted again")
    try:
        unit = await directory.add_key(unit_id, name, kind, kid, public_b64)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    # The entry's other settings, in one write.
    before = unit.model_dump()
    if kommunenummer:
        unit.kommunenummer = kommunenummer
    if notices is not None:
        unit.notices = notices  # type: ignore[assignment] (checked above)
    if sealing_key:
        unit.add_sealing_key(X25519, sealing_key)
    if pq_sealing_key:
        unit.add_sealing_key(HYBRID, pq_sealing_key)
    if unit.model_dump() != before:
        await directory.put(unit)
    await provision_unit(js, trust, unit, data_dir)
    path = unit_jwt_path(data_dir, unit_id, kid) if trust else None
    return Registered(unit, kid, nkey, path)


NOTICE_FORMS = ("each", "grouped")


def check_notices(form: str) -> None:
    if form not in NOTICE_FORMS:
        raise Refused(f"--notices: {' or '.join(NOTICE_FORMS)}, not {form!r}")


async def set_notices(nc: Client, unit_id: str, form: str) -> Unit:
    """How a registered unit hears its tasks from now on (docs/decisions/0020): "each" (a
    no.ema.notify.task-notice.v1 per task) or "grouped" (one no.ema.notify.task-notices.v1
    per step of planning in a case). Notify sees the change within its directory cache's
    five seconds."""
    check_notices(form)
    directory = Directory(await bucket(nc.jetstream(timeout=10)), ttl=0)
    unit = await directory.get(unit_id)
    if unit is None:
        raise Refused(f"no unit {unit_id!r} in the directory")
    if unit.revoked_at is not None:
        raise Refused(f"unit {unit_id} was revoked on {unit.revoked_at:%Y-%m-%d}")
    if unit.kind is UnitKind.SERVICE:
        raise Refused(f"{unit_id} is a service: services hear no task notices")
    unit.notices = form  # type: ignore[assignment] (checked above)
    await directory.put(unit)
    return unit


async def revoke(
    nc: Client, servers: list[str], trust: Trust | None, unit_id: str, kid: str | None = None
) -> tuple[Unit, int]:
    """Revoke one key of a unit, or the whole unit: its messages are dead-lettered from now
    on, and its NATS users are disconnected and refused at every server. Returns the unit
    and how many servers confirmed."""
    directory = Directory(await bucket(nc.jetstream(timeout=10)), ttl=0)
    unit = await directory.get(unit_id)
    if unit is None:
        raise Refused(f"no unit {unit_id!r} in the directory")
    if unit.kind is UnitKind.SERVICE:
        raise Refused("services' keys are rotated by the operator's tooling, not revoked here")
    if kid is not None:
        if not any(k.kid == kid for k in unit.keys):
            known = ", ".join(k.kid for k in unit.keys) or "none"
            raise Refused(f"unit {unit_id} has no key {kid!r}; it has {known}")
        targets = [k for k in unit.keys if k.kid == kid]
    else:
        targets = list(unit.keys)
        unit.revoked_at = datetime.now(UTC)
    for key in targets:
        key.revoked = True
    await directory.put(unit)
    confirmed = 0
    if trust is not None:
        trust.revoke([user_public_key(k.public_key) for k in targets])
        confirmed = await trust.push_account(servers)
    return unit, confirmed
