"""The decision log's witnesses, from the broker's side: answer their requests for
consistency proofs, keep what they cosigned or refused for the audit pages, and, when the log
is verified, ask each witness what it cosigned and compare that with the records as they
stand, naming the first record that differs.

A witness is a unit of kind `witness`; its cosigner key is its unit key as a C2SP cosigner
(type 0x04) named by its unit id. Auditors may pin the witnesses they trust in a vkeys file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from sqlalchemy import select

from contracts.messages import LogCosignedV1, LogWitnessAlarmV1, UnitKind
from contracts.registry import WITNESS_QUERY
from services.consent.store import LogEntry, WitnessAlarm, WitnessCosignature
from services.consent.verification import Report
from services.kit import merkle, tlog
from services.kit.directory import Directory
from services.kit.service import Context, Rejected

log = logging.getLogger("consent.witnesses")
MAX_PROOF_SPAN = 1_000_000


# -- what witnesses send --------------------------------------------------------------------


async def on_witness_message(ctx: Context) -> None:
    """Keep a witness's latest cosigned checkpoint, or its alarm, for the audit pages."""
    if isinstance(ctx.data, LogWitnessAlarmV1):
        a = ctx.data
        ctx.session.add(
            WitnessAlarm(witness=a.witness, size=a.size, held_size=a.held_size, problem=a.problem)
        )
        log.error(
            "a witness refused a log checkpoint", extra={"witness": a.witness, "size": a.size}
        )
        return
    data: LogCosignedV1 = ctx.data
    if data.witness != ctx.sender.id:
        raise Rejected(f"witness: {data.witness!r} is not the sending unit {ctx.sender.id!r}")
    keys = [cosigner_of(ctx.sender.id, k.public_key) for k in ctx.sender.keys if not k.revoked]
    try:
        if not tlog.verify_cosignatures(data.checkpoint, keys):
            raise Rejected(f"checkpoint: no cosignature of {data.witness} verifies")
        checkpoint = tlog.Checkpoint.parse(tlog.parse_note(data.checkpoint)[0])
    except tlog.NoteError as exc:
        raise Rejected(f"checkpoint: {exc}") from None
    row = await ctx.session.get(WitnessCosignature, data.witness)
    if row is None:
        row = WitnessCosignature(witness=data.witness, size=0)
        ctx.session.add(row)
    if checkpoint.size >= row.size:
        row.size, row.root, row.note = checkpoint.size, checkpoint.root.hex(), data.checkpoint


def cosigner_of(unit_id: str, public_b64: str) -> tlog.Verifier:
    return tlog.Verifier(unit_id, tlog.COSIGNATURE_V1, base64.b64decode(public_b64))


# -- proofs for witnesses -------------------------------------------------------------------


def consistency_responder(sessions: Any, origin: str) -> Any:
    """A NATS callback answering {origin, old_size, size} with the RFC 9162 consistency proof
    between those sizes of the log as it stands (hashes only)."""

    async def answer(msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            old_size, size = int(request["old_size"]), int(request["size"])
            if request.get("origin") != origin:
                raise ValueError(f"this log's origin is {origin}")
            if not 0 < old_size <= size or size - old_size > MAX_PROOF_SPAN:
                raise ValueError("sizes out of range")
            async with sessions() as session:
                hashes = list(
                    await session.scalars(
                        select(LogEntry.leaf_hash).where(LogEntry.idx < size).order_by(LogEntry.idx)
                    )
                )
            if len(hashes) < size:
                raise ValueError(f"the log holds {len(hashes)} records, not {size}")
            proof = merkle.consistency_proof(old_size, [bytes.fromhex(h) for h in hashes])
            reply = {"proof": [base64.b64encode(h).decode() for h in proof]}
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"error": str(exc)}
        await msg.respond(json.dumps(reply).encode())

    return answer


# -- asking witnesses when the log is verified ----------------------------------------------


@dataclass
class WitnessView:
    """One witness's view of the log, compared with the records as they stand."""

    name: str
    status: str  # agrees | disagrees | no checkpoint | unreachable
    size: int = 0
    summary: str = ""
    alarms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def disagrees(self) -> bool:
        return self.status == "disagrees"

    def as_json(self) -> dict[str, Any]:
        return {
            "witness": self.name,
            "status": self.status,
            "size": self.size,
            "summary": self.summary,
            "alarms": self.alarms,
        }


def read_cosigners(path: Path) -> list[tlog.Verifier]:
    """Witnesses an auditor pins: cosigner vkeys (type 0x04), one a line."""
    text = path.read_text(encoding="utf-8")
    return [v for v in tlog.read_vkeys(text) if v.kind == tlog.COSIGNATURE_V1]


async def directory_cosigners(directory: Directory) -> list[tlog.Verifier]:
    """Every unit of kind witness in the unit directory, with each key it has not revoked."""
    found = []
    for unit in await directory.all():
        if unit.kind == UnitKind.WITNESS:
            found += [cosigner_of(unit.id, k.public_key) for k in unit.keys if not k.revoked]
    return found


async def known_cosigners(sessions: Any, directory: Directory) -> list[tlog.Verifier]:
    """Witnesses that have cosigned or refused this log, with their keys from the directory
    (the service's own bus user may read units, not list them)."""
    async with sessions() as session:
        names = set(await session.scalars(select(WitnessCosignature.witness)))
        names |= set(await session.scalars(select(WitnessAlarm.witness)))
    found = []
    for name in sorted(names):
        unit = await directory.get(name)
        if unit is not None and unit.kind == UnitKind.WITNESS:
            found += [cosigner_of(unit.id, k.public_key) for k in unit.keys if not k.revoked]
    return found


async def ask(
    nc: Client, cosigner: tlog.Verifier, origin: str, size: int | None, timeout: float
) -> dict[str, Any]:
    subject = WITNESS_QUERY.replace("{unit}", cosigner.name)
    reply = await nc.request(
        subject, json.dumps({"origin": origin, "size": size}).encode(), timeout=timeout
    )
    return json.loads(reply.data)


async def check_witnesses(
    nc: Client,
    report: Report,
    log_keys: list[tlog.Verifier],
    cosigners: list[tlog.Verifier],
    timeout: float = 3.0,
) -> None:
    """Ask every witness for its latest cosigned checkpoint and add its view to the report."""
    origins = sorted({v.name for v in log_keys})
    by_name: dict[str, list[tlog.Verifier]] = {}
    for c in cosigners:
        by_name.setdefault(c.name, []).append(c)
    views = await asyncio.gather(
        *(
            _view(nc, report, log_keys, keys, origin, timeout)
            for name, keys in sorted(by_name.items())
            for origin in origins
        )
    )
    report.witnesses.extend(views)


async def _view(
    nc: Client,
    report: Report,
    log_keys: list[tlog.Verifier],
    keys: list[tlog.Verifier],
    origin: str,
    timeout: float,
) -> WitnessView:
    name = keys[0].name

    async def checkpoint_at(size: int | None) -> tuple[tlog.Checkpoint | None, dict[str, Any]]:
        answer = await ask(nc, keys[0], origin, size, timeout)
        note = answer.get("checkpoint")
        if not note:
            return None, answer
        if not tlog.verify_cosignatures(note, keys):
            raise tlog.NoteError(f"the cosignature of {name} does not verify")
        checkpoint, _ = tlog.open_checkpoint(note, log_keys)
        return checkpoint, answer

    try:
        latest, answer = await checkpoint_at(None)
    except (OSError, nats.errors.Error) as exc:  # timeouts, no responders, disconnected
        return WitnessView(name, "unreachable", summary=f"no answer ({type(exc).__name__})")
    except Exception as exc:  # noqa: BLE001 (any failure of the witness's answer is reported)
        return WitnessView(name, "disagrees", summary=f"witness {name}: {exc}")
    alarms = answer.get("alarms") or []
    if latest is None:
        return WitnessView(
            name, "no checkpoint", summary=f"witness {name} has cosigned nothing", alarms=alarms
        )
    view = WitnessView(name, "agrees", latest.size, alarms=alarms)
    records = report.records
    if latest.size > len(records):
        first = len(records)
        view.status = "disagrees"
        view.summary = (
            f"witness {name} cosigned tree size {latest.size}, but the log holds {first} "
            f"records: the record at index {first} and every one after it were removed "
            "(the log was truncated)"
        )
        return view
    if report.roots[latest.size - 1] == latest.root:
        view.summary = f"witness {name} agrees up to tree size {latest.size}"
        if alarms:
            view.summary += f"; it raised {len(alarms)} alarm(s)"
        return view
    view.status = "disagrees"
    # Bisect over the sizes the witness cosigned for the first one the records no longer give.
    lo, hi = 1, latest.size  # the root at `hi` differs; find the smallest size that differs
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            at, _ = await checkpoint_at(mid)
        except Exception:  # noqa: BLE001
            at = None
        if at is None:  # not kept by the witness: cannot narrow below here
            lo = mid + 1
        elif report.roots[mid - 1] == at.root:
            lo = mid + 1
        else:
            hi = mid
    record = records[lo - 1]
    view.summary = (
        f"witness {name} disagrees: it cosigned a different root at tree size {lo}; "
        f"{record.name} differs from what was witnessed (altered, reordered or replaced)"
    )
    return view


async def check_over_bus(
    nats_url: str,
    report: Report,
    log_keys: list[tlog.Verifier],
    pinned: Path | None = None,
    timeout: float = 3.0,
    options: dict[str, Any] | None = None,
) -> str | None:
    """For the CLIs: connect (as the operator: `options` are its login), ask the pinned
    witnesses (or the directory's), disconnect. Returns why the witnesses could not be
    asked, or None."""
    import nats

    from services.kit.directory import bucket

    try:
        nc = await nats.connect(
            servers=nats_url.split(","),
            connect_timeout=2,
            max_reconnect_attempts=0,
            **(options or {}),
        )
    except Exception as exc:  # noqa: BLE001 (the bus is optional for a database check)
        return f"the bus at {nats_url.split('@')[-1]} cannot be reached ({type(exc).__name__})"
    try:
        if pinned is not None:
            cosigners = read_cosigners(pinned)
        else:
            try:
                cosigners = await directory_cosigners(Directory(await bucket(nc.jetstream())))
            except Exception as exc:  # noqa: BLE001 (said, not mistaken for "none registered")
                return f"the unit directory could not be read ({type(exc).__name__}: {exc})"
        if not cosigners:
            return "no witness is registered (unit kind witness) or pinned (--witnesses)"
        await asyncio.wait_for(
            check_witnesses(nc, report, log_keys, cosigners, timeout), timeout=timeout * 40
        )
    except TimeoutError:
        return "the witnesses did not all answer in time"
    finally:
        await nc.close()
    return None


def print_witnesses(report: Report, skipped: str | None) -> None:
    if skipped:
        print(f"witnesses: not asked: {skipped}")
    for w in report.witnesses:
        line = f"witness {w.name}: {w.status}"
        print(
            f"{line}: {w.summary}"
            if w.summary and w.disagrees
            else line + (f" (tree size {w.size})" if w.size else "")
        )
        for alarm in w.alarms:
            print(f"  alarm at tree size {alarm['size']}: {alarm['problem']}")
    for w in report.witnesses:
        if w.disagrees:
            print(f"PROBLEM: {w.summary}")
