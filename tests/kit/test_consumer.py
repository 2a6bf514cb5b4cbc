"""The kit's consumer against a real nats-server: bounded redelivery, dead letters, rollback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contracts.messages import CapacityPublishedV1, UnitKind
from deploy.launcher import NatsServer, free_port
from services.kit.service import Context, Rejected, Service
from services.kit.settings import Settings
from tests.support import Partner, dead_letters, stream_messages, wait_for


class Base(DeclarativeBase):
    metadata = MetaData()


class Effect(Base):
    __tablename__ = "effect"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    note: Mapped[str] = mapped_column(String(32))


CAPACITY = CapacityPublishedV1(kommunenummer="0301", year=2026, children=10,
                               measures=["bofellesskap"], free_places=3)  # fmt: skip


@pytest.fixture
async def harness(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[dict]:
    calls: list[str] = []
    behaviour = {"mode": "fail"}

    svc = Service("municipality", Base.metadata)

    @svc.handles("no.ema.municipality.capacity.v1", durable="test-capacity")
    async def handler(ctx: Context) -> None:
        calls.append(ctx.event.id)
        ctx.session.add(Effect(note=behaviour["mode"]))
        if behaviour["mode"] == "fail":
            raise RuntimeError("database said no")
        if behaviour["mode"] == "reject":
            raise Rejected("free_places: not possible")

    svc.settings = Settings(service="municipality", nats_url=nats_server.url, data_dir=tmp_path,
                            http_port=free_port(), max_deliver=3, ack_wait=2)  # fmt: skip
    task = asyncio.create_task(svc.run(install_signal_handlers=False))
    await wait_for(lambda: getattr(svc, "ready", False))
    partner = await Partner.register(nats_server.url, "kommune-0301", UnitKind.MUNICIPALITY)
    yield {"svc": svc, "calls": calls, "behaviour": behaviour, "partner": partner}
    await partner.nc.close()
    svc.stop_event.set()
    await task


async def effects(svc: Service) -> list[str]:
    async with svc.sessions() as session:
        return list((await session.scalars(select(Effect.note))).all())


async def test_failing_handler_is_retried_then_dead_lettered(harness: dict) -> None:
    msg_id = await harness["partner"].send("no.ema.municipality.capacity.v1", CAPACITY)
    letters = await wait_for(lambda: dead_letters(harness["partner"].nc), timeout=20)
    assert harness["calls"] == [msg_id] * 3  # exactly max_deliver attempts, never dropped
    assert letters[0]["Ema-Dlq-Reason"].startswith("handler failed on attempt 3/3: RuntimeError")
    assert letters[0]["Ema-Dlq-Original-Msg-Id"] == msg_id
    assert await effects(harness["svc"]) == []  # every attempt rolled back


async def test_rejection_changes_nothing_and_is_dead_lettered_once(harness: dict) -> None:
    harness["behaviour"]["mode"] = "reject"
    await harness["partner"].send("no.ema.municipality.capacity.v1", CAPACITY)
    letters = await wait_for(lambda: dead_letters(harness["partner"].nc))
    assert letters[0]["Ema-Dlq-Reason"] == "rejected: free_places: not possible"
    assert len(harness["calls"]) == 1
    assert await effects(harness["svc"]) == []


async def test_duplicate_delivery_is_applied_once(harness: dict) -> None:
    harness["behaviour"]["mode"] = "ok"
    partner = harness["partner"]
    first = await partner.send("no.ema.municipality.capacity.v1", CAPACITY)
    await wait_for(lambda: effects(harness["svc"]))
    # The same event again under another Nats-Msg-Id (as after JetStream's duplicate window
    # has passed): the server stores it, the consumer's inbox must catch it.
    msgs = await stream_messages(partner.nc, "MUNICIPALITY")
    headers = {**msgs[0].headers, "Nats-Msg-Id": "resent-" + first}
    await partner.publish_raw(msgs[0].subject, msgs[0].data, headers)
    sub = harness["svc"].subscriptions[0]
    await wait_for(lambda: sub.handled == 2)
    assert await effects(harness["svc"]) == ["ok"]
