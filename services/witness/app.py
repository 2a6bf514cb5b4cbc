"""A reference witness for the consent broker's decision log (C2SP tlog-witness model, over
the bus): run by anyone the log should answer to (Datatilsynet, a partner), with its own
store and its own key, outside the broker's host.

    EMA_UNIT_ID=witness-dt EMA_WITNESS_LOG_KEYS=consent-log.vkeys python -m services.witness

It reads every `no.ema.log.checkpoint.v1` (durable consumer `witness-<unit>` on LOG), checks
the checkpoint's signature with the log keys it was given and its consistency proof against
the largest checkpoint it cosigned (asking the broker for a proof over a gap), keeps it, and
publishes `no.ema.log.cosigned.v1`, or `no.ema.log.witness-alarm.v1` when the log's history
changed. Auditors ask it on `ema.rpc.witness.<unit>` for what it cosigned (latest, or at a
size). The cosigning key is the unit's Ed25519 key, as a C2SP cosigner (type 0x04) named by
the unit id; the unit must be registered as kind `witness` in the unit directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, Field
from sqlalchemy import select

from contracts.envelope import HEADER_MSG_ID, CloudEvent
from contracts.messages import LogCheckpointV1, LogCosignedV1, LogWitnessAlarmV1, UnitKind
from contracts.registry import LOG_CONSISTENCY, WITNESS_QUERY, contract_for_type, unit_consumer
from services.kit import bus, tlog
from services.kit.db import create_tables, make_engine, sessionmaker
from services.kit.directory import Directory, bucket
from services.kit.logs import setup_logging
from services.kit.settings import Settings
from services.kit.signing import UnitKey
from services.kit.verify import Invalid, verify_message
from services.witness.domain import Held, judge
from services.witness.store import Alarm, Base, Cosigned

log = logging.getLogger("witness")
CHECKPOINTS = {"no.ema.log.checkpoint.v1": contract_for_type("no.ema.log.checkpoint.v1")}


class WitnessSettings(Settings):
    witness_log_keys: Path | None = Field(
        None,
        description="The public keys (vkeys) of the logs this witness checks; re-read "
        "when a checkpoint names a key not in it. Default <data>/keys/witnessed-logs.vkeys.",
    )
    proof_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a proof.")

    def model_post_init(self, context: object) -> None:
        if self.unit_id is None:
            self.unit_id = "witness-local"
        super().model_post_init(context)
        if self.witness_log_keys is None:
            self.witness_log_keys = self.data_dir / "keys" / "witnessed-logs.vkeys"


def cosigner(key: UnitKey) -> tlog.Signer:
    return tlog.Signer(key.unit_id, key.private, tlog.COSIGNATURE_V1)


class Witness:
    def __init__(self, settings: WitnessSettings) -> None:
        self.settings = settings
        assert settings.key_file is not None and settings.unit_id is not None
        self.key = UnitKey.load_or_create(settings.unit_id, settings.key_file)
        self.signer = cosigner(self.key)
        self.log_keys: list[tlog.Verifier] = []

    def read_log_keys(self) -> None:
        path = self.settings.witness_log_keys
        assert path is not None
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        self.log_keys = [v for v in tlog.read_vkeys(text) if v.kind == tlog.ED25519]

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        self.read_log_keys()
        self.engine = make_engine(s.database_url or "")
        await create_tables(self.engine, Base.metadata)
        self.sessions = sessionmaker(self.engine)
        # As itself: the JWT the operator issued when registering the witness, beside its key.
        self.nc: Client = await bus.connect(
            s.nats_url, f"emaflyt-{s.unit_id}", **bus.credentials(self.key, s.nats_jwt_file)
        )
        self.js = self.nc.jetstream(timeout=10)
        self.directory = Directory(await bucket(self.js))
        await self._registered()
        query = await self.nc.subscribe(
            WITNESS_QUERY.replace("{unit}", self.key.unit_id), cb=self._answer
        )
        # Its own durable on the LOG stream, made by the operator when it was registered.
        psub = await self.js.pull_subscribe_bind(unit_consumer(self.key.unit_id), "LOG")
        log.info("witness ready", extra={"unit": self.key.unit_id, "logs": len(self.log_keys)})
        try:
            while not stop.is_set():
                try:
                    msgs = await psub.fetch(32, timeout=1.0)
                except (TimeoutError, NatsTimeoutError):
                    continue
                for i, msg in enumerate(msgs):
                    if not await self._handle(msg):
                        for later in msgs[i:]:
                            await later.nak(delay=1.0)
                        await asyncio.sleep(1.0)
                        break
        finally:
            await query.unsubscribe()
            await self.nc.close()
            await self.engine.dispose()

    async def _registered(self) -> None:
        unit = await self.directory.get(self.key.unit_id)
        if unit is not None and unit.key(self.key.kid):
            return
        try:
            await self.directory.add_key(
                self.key.unit_id,
                self.key.unit_id,
                UnitKind.WITNESS,
                self.key.kid,
                self.key.public_b64,
            )
        except Exception as exc:
            raise SystemExit(
                f"witness {self.key.unit_id} is not in the unit directory and cannot add itself "
                f"({type(exc).__name__}); an operator registers it: emaflyt unit register "
                f"--id {self.key.unit_id} --name ... --kind witness "
                f"--public-key {self.key.public_b64}"
            ) from None

    # -- checkpoints -----------------------------------------------------------------------

    async def _handle(self, msg: Msg) -> bool:
        """Check one checkpoint; False: try again later (a proof could not be had)."""
        try:
            verified = await verify_message(
                msg.subject, msg.headers, msg.data, self.directory, CHECKPOINTS
            )  # type: ignore[arg-type]
        except Invalid as exc:
            log.warning("checkpoint message refused", extra={"reason": str(exc)})
            await msg.ack()
            return True
        data: LogCheckpointV1 = verified.data  # type: ignore[assignment]
        try:
            checkpoint = self._open(data.checkpoint)
        except tlog.NoteError as exc:
            await self._alarm(data.origin, data.size, b"", f"checkpoint refused: {exc}")
            await msg.ack()
            return True
        proof = [base64.b64decode(h) for h in data.consistency_proof]
        outcome = await self._judge(checkpoint, data.checkpoint, data.old_size, proof)
        if outcome is None:
            return False
        await msg.ack()
        return True

    def _open(self, note: str) -> tlog.Checkpoint:
        try:
            checkpoint, _ = tlog.open_checkpoint(note, self.log_keys)
        except tlog.NoteError:
            self.read_log_keys()  # a rotated log key may have been added since
            checkpoint, _ = tlog.open_checkpoint(note, self.log_keys)
        return checkpoint

    async def _judge(
        self, checkpoint: tlog.Checkpoint, note: str, old_size: int, proof: list[bytes]
    ) -> str | None:
        async with self.sessions() as session:
            latest = await session.scalar(
                select(Cosigned)
                .where(Cosigned.origin == checkpoint.origin)
                .order_by(Cosigned.size.desc())
                .limit(1)
            )
            held = Held(latest.size, bytes.fromhex(latest.root)) if latest else None
            kept = {}
            if held and checkpoint.size <= held.size:
                row = await session.get(Cosigned, (checkpoint.origin, checkpoint.size))
                kept = {checkpoint.size: bytes.fromhex(row.root)} if row else {}
        verdict = judge(held, kept.get, checkpoint, old_size, proof)
        if verdict.action == "need_proof":
            assert held is not None
            got = await self._proof(checkpoint.origin, held.size, checkpoint.size)
            if got is None:
                return None
            verdict = judge(held, kept.get, checkpoint, held.size, got)
        if verdict.action == "cosign":
            await self._cosign(checkpoint, note)
        elif verdict.action == "alarm":
            await self._alarm(
                checkpoint.origin,
                checkpoint.size,
                checkpoint.root,
                verdict.problem,
                held.size if held else 0,
            )
        elif verdict.action == "seen":
            await self._republish(checkpoint)
        return verdict.action

    async def _proof(self, origin: str, old_size: int, size: int) -> list[bytes] | None:
        request = {"origin": origin, "old_size": old_size, "size": size}
        try:
            reply = await self.nc.request(
                LOG_CONSISTENCY, json.dumps(request).encode(), timeout=self.settings.proof_timeout
            )
            answer = json.loads(reply.data)
            return [base64.b64decode(h) for h in answer["proof"]]
        except Exception as exc:
            log.warning(
                "no consistency proof from the log; will try again",
                extra={"old_size": old_size, "size": size, "error": repr(exc)},
            )
            return None

    async def _cosign(self, checkpoint: tlog.Checkpoint, note: str) -> None:
        cosigned = tlog.add_signature(note, self.signer.cosign(checkpoint.text, int(time.time())))
        async with self.sessions() as session, session.begin():
            session.add(
                Cosigned(
                    origin=checkpoint.origin,
                    size=checkpoint.size,
                    root=checkpoint.root.hex(),
                    note=cosigned,
                )
            )
        await self._publish(
            "no.ema.log.cosigned.v1",
            LogCosignedV1(
                origin=checkpoint.origin,
                size=checkpoint.size,
                witness=self.signer.name,
                checkpoint=cosigned,
            ),
            f"{checkpoint.origin}|{checkpoint.size}",
        )

    async def _republish(self, checkpoint: tlog.Checkpoint) -> None:
        """A checkpoint seen again (redelivered): its cosignature goes out again (the same
        message id, so JetStream keeps one)."""
        async with self.sessions() as session:
            row = await session.get(Cosigned, (checkpoint.origin, checkpoint.size))
        if row is not None and row.root == checkpoint.root.hex():
            await self._publish(
                "no.ema.log.cosigned.v1",
                LogCosignedV1(
                    origin=row.origin,
                    size=row.size,
                    witness=self.signer.name,
                    checkpoint=row.note,
                ),
                f"{row.origin}|{row.size}",
            )

    async def _alarm(
        self, origin: str, size: int, root: bytes, problem: str, held_size: int = 0
    ) -> None:
        log.error(
            "log checkpoint refused", extra={"origin": origin, "size": size, "problem": problem}
        )
        async with self.sessions() as session, session.begin():
            session.add(
                Alarm(
                    origin=origin, size=size, root=root.hex(), held_size=held_size, problem=problem
                )
            )
        await self._publish(
            "no.ema.log.witness-alarm.v1",
            LogWitnessAlarmV1(
                origin=origin,
                witness=self.signer.name,
                size=size,
                held_size=held_size,
                problem=problem[:1000],
            ),
            f"alarm|{origin}|{size}|{root.hex()}",
        )

    async def _publish(self, type_: str, data: BaseModel, dedupe: str) -> None:
        contract = contract_for_type(type_)
        assert contract is not None
        event = CloudEvent(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.signer.name}|{dedupe}")),
            source=self.key.unit_id,
            type=type_,
            data=data.model_dump(mode="json"),
        )
        body = event.to_bytes()
        headers = {HEADER_MSG_ID: event.id, **self.key.sign(body)}
        await self.js.publish(contract.subject_for(), body, headers=headers)

    # -- audit queries -------------------------------------------------------------------------

    async def _answer(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            answer = await self.cosigned(str(request["origin"]), request.get("size"))
        except Exception as exc:  # a malformed question gets an answer that says so
            answer = {"error": f"bad request: {type(exc).__name__}"}
        await msg.respond(json.dumps(answer).encode())

    async def cosigned(self, origin: str, size: int | None) -> dict[str, Any]:
        """The cosigned checkpoint at `size`, or the latest; and the alarms raised."""
        async with self.sessions() as session:
            stmt = select(Cosigned).where(Cosigned.origin == origin)
            stmt = stmt.where(Cosigned.size == int(size)) if size else stmt
            row = await session.scalar(stmt.order_by(Cosigned.size.desc()).limit(1))
            alarms = list(
                await session.scalars(
                    select(Alarm).where(Alarm.origin == origin).order_by(Alarm.id).limit(20)
                )
            )
        out: dict[str, Any] = {
            "witness": self.signer.name,
            "alarms": [
                {"size": a.size, "problem": a.problem, "at": a.at.isoformat()} for a in alarms
            ],
        }
        if row is None:
            out["error"] = f"no cosigned checkpoint {'at size ' + str(size) if size else ''}"
            return out
        return {**out, "size": row.size, "checkpoint": row.note}


def main() -> None:
    settings = WitnessSettings.from_env("witness")
    setup_logging("witness", settings.log_level)
    stop = asyncio.Event()

    async def run() -> None:
        task = asyncio.create_task(Witness(settings).run(stop))

        def stopping() -> None:
            stop.set()  # the loop ends after its fetch; a start still waiting ends at once
            asyncio.get_running_loop().call_later(5.0, task.cancel)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(run())
