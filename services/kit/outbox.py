"""The outbox: events are stored in the same transaction as the state that caused them and
published by a relay afterwards, so a crash between commit and publish loses nothing."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from typing import Any

from nats.js import JetStreamContext
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import HEADER_CORRELATION, HEADER_MSG_ID, CloudEvent
from contracts.registry import contract_for_type
from services.kit.db import OutboxRow, queue_rows, utcnow
from services.kit.signing import UnitKey

log = logging.getLogger("kit.outbox")

# The correlation id of the message being handled: everything it causes carries it along.
current_correlation: ContextVar[str | None] = ContextVar("current_correlation", default=None)

ACK_TIMEOUT_S = 10.0


def build_event(
    key: UnitKey,
    type_: str,
    data: BaseModel,
    *,
    case_id: str | None = None,
    unit: str | None = None,
    correlation_id: str | None = None,
) -> tuple[str, CloudEvent, bytes, dict[str, str]]:
    """Envelope, serialise and sign one message; returns subject, event, body and headers."""
    contract = contract_for_type(type_)
    if contract is None:
        raise LookupError(f"unknown message type {type_!r}")
    if not isinstance(data, contract.model):
        raise TypeError(f"{type_} carries {contract.model.__name__}, not {type(data).__name__}")
    event = CloudEvent(
        source=key.unit_id,
        type=type_,
        subject=case_id,
        correlationid=correlation_id,
        data=data.model_dump(mode="json", exclude_none=True),
    )
    body = event.to_bytes()
    headers = {HEADER_MSG_ID: event.id, **key.sign(body)}
    if correlation_id:
        headers[HEADER_CORRELATION] = correlation_id
    return contract.subject_for(unit), event, body, headers


class Outbox:
    def __init__(self, sessions: async_sessionmaker, key: UnitKey) -> None:
        self.sessions = sessions
        self.key = key
        self._wake = asyncio.Event()
        self.published = 0
        # SQLite allows one writer: writers in this process take turns instead of meeting
        # in SQLite's busy-wait. Harmless on PostgreSQL.
        self.write_lock = asyncio.Lock()

    def add(self, session: AsyncSession, type_: str, data: BaseModel, **kw: Any) -> CloudEvent:
        """Sign the message and queue its row in the session's transaction: the rows of a
        transaction are written, in the order they were added, with one executemany when it
        commits (services.kit.db.KitSession; docs/decisions/0017)."""
        contract = contract_for_type(type_)
        if contract is not None and contract.retired:
            raise LookupError(f"{type_} is retired ({contract.retired})")
        kw.setdefault("correlation_id", current_correlation.get())
        subject, event, body, headers = build_event(self.key, type_, data, **kw)
        queue_rows(
            session,
            OutboxRow,
            {
                "msg_id": event.id,
                "subject": subject,
                "headers": headers,
                "body": body,
                "created_at": utcnow(),
            },
        )
        return event

    def wake(self) -> None:
        self._wake.set()

    async def pending(self) -> int:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(OutboxRow.seq).where(OutboxRow.published_at.is_(None))
            )
            return len(rows.all())

    async def relay_once(self, js: JetStreamContext, limit: int = 256) -> int:
        """Publish the oldest unpublished rows in order; returns how many were published."""
        async with self.sessions() as session:
            # Columns, not ORM objects: nothing here is changed through the session.
            rows = (
                await session.execute(
                    select(OutboxRow.seq, OutboxRow.subject, OutboxRow.body, OutboxRow.headers)
                    .where(OutboxRow.published_at.is_(None))
                    .order_by(OutboxRow.seq)
                    .limit(limit)
                )
            ).all()
        if not rows:
            return 0
        # Pipelined in order on one connection; only the prefix before a failure counts as
        # published, the rest is sent again (JetStream drops the repeats by Nats-Msg-Id).
        futures = [
            await js.publish_async(row.subject, row.body, headers=row.headers) for row in rows
        ]
        finished, pending = await asyncio.wait(futures, timeout=ACK_TIMEOUT_S)
        for future in pending:
            future.cancel()
        for future in finished:
            future.exception()  # retrieved here, so a failed ack is not reported twice
        done: list[int] = []
        failure: BaseException | None = None
        for row, future in zip(rows, futures, strict=True):
            if future not in finished or future.exception() is not None:
                failure = future.exception() if future in finished else TimeoutError("no PubAck")
                break
            done.append(row.seq)
        if done:
            async with self.write_lock, self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxRow).where(OutboxRow.seq.in_(done)).values(published_at=utcnow())
                )
            self.published += len(done)
        if failure is not None:
            raise failure
        return len(done)

    async def run(self, js: JetStreamContext, poll: float = 1.0) -> None:
        backoff = 0.2
        limit = 256
        while True:
            # Cleared before reading, not after: a commit that wakes the relay while it reads
            # or publishes is seen on the next turn, not at the next poll. A page shorter than
            # the limit was everything committed when it was read (no extra empty read).
            self._wake.clear()
            try:
                while await self.relay_once(js, limit) == limit:
                    pass
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down or timing out: keep the rows, try again
                log.warning("outbox relay failed, will retry", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), poll)
            except TimeoutError:
                pass
