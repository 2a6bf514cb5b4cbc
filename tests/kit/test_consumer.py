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


CAPACITY = CapacityPublishedV1(
    kommunenummer="0301", year=2026, children=10, measures=["bofellesskap"], free_places=3
)


@pytest.fixture
async def harness(
    nats_server: NatsServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[dict]:
    calls: list[str] = []
    behaviour = {"mode": "fail"}
    partner = await Partner.register(nats_server.url, "kommune-0301", UnitKind.MUNICIPALITY)

    svc = Service("municipality", Base.metadata)

    @svc.handles("no.ema.municipality.capacity.v1", durable="test-capacity")
    async def handler(ctx: Context) -> None:
        calls.append(ctx.event.id)
        ctx.session.add(Effect(note=behaviour["mode"]))
        if behaviour["mode"] == "fail":
            raise RuntimeError("database said no")
        if behaviour["mode"] == "slow":  # a lock held elsewhere, a slow disk
            await asyncio.sleep(7)
        if behaviour["mode"] == "reject" or ctx.data.free_places == 0:
            raise Rejected("free_places: not possible")

    svc.settings = Settings(
        service="municipality",
        nats_url=nats_server.url,
        data_dir=tmp_path,
        http_port=free_port(),
        max_deliver=3,
        ack_wait=2,
    )
    tasks = []

    async def start() -> None:
        # What the operator's tooling does before a service starts: its consumers exist.
        for sub in svc.subscriptions:
            await partner.nc.jetstream().add_consumer(sub.stream, sub.consumer_config(svc.settings))
        tasks.append(asyncio.create_task(svc.run(install_signal_handlers=False)))
        await wait_for(lambda: getattr(svc, "ready", False))

    h = {"svc": svc, "calls": calls, "behaviour": behaviour, "partner": partner, "start": start}
    if request.node.get_closest_marker("publish_first") is None:
        await start()
    yield h
    await partner.close()
    svc.stop_event.set()
    await asyncio.gather(*tasks)


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


@pytest.mark.publish_first
async def test_one_bad_message_in_a_batch_leaves_the_others_applied_once(harness: dict) -> None:
    """Messages waiting when the service starts arrive as one batch; a rejected one in the
    middle is dead-lettered alone and every other message is applied exactly once."""
    harness["behaviour"]["mode"] = "ok"
    partner = harness["partner"]
    for places in (1, 2, 0, 3, 4):
        await partner.send(
            "no.ema.municipality.capacity.v1", CAPACITY.model_copy(update={"free_places": places})
        )
    await harness["start"]()
    sub = harness["svc"].subscriptions[0]
    await wait_for(lambda: sub.handled == 4 and sub.dead_lettered == 1)
    assert await effects(harness["svc"]) == ["ok"] * 4
    letters = await dead_letters(partner.nc)
    assert [d["Ema-Dlq-Reason"] for d in letters] == ["rejected: free_places: not possible"]
    assert len(harness["calls"]) > 5  # the batch ran, rolled back, then went one by one


async def test_a_slow_handler_keeps_its_message_and_is_not_dead_lettered(harness: dict) -> None:
    """Work that takes longer than ack_wait (here 3.5 times: more than max_deliver windows)
    is reported in progress: no redelivery, no 'gave up' dead letter, applied once."""
    harness["behaviour"]["mode"] = "slow"
    await harness["partner"].send("no.ema.municipality.capacity.v1", CAPACITY)
    sub = harness["svc"].subscriptions[0]
    await wait_for(lambda: sub.handled == 1, timeout=30)
    assert await effects(harness["svc"]) == ["slow"]
    assert len(harness["calls"]) == 1
    assert await dead_letters(harness["partner"].nc) == []


async def test_a_bus_timeout_mid_batch_neither_kills_the_consumer_nor_loses_the_message(
    harness: dict,
) -> None:
    """A directory lookup that times out (a node failing over) interrupts the batch; the
    consumer keeps running, tries the batch again and applies it once."""
    from nats.errors import TimeoutError as NatsTimeout

    harness["behaviour"]["mode"] = "ok"
    directory = harness["svc"].directory
    real_get, failures = directory.get, []

    async def flaky_get(unit_id: str):  # noqa: ANN202
        if len(failures) < 2:
            failures.append(unit_id)
            raise NatsTimeout
        return await real_get(unit_id)

    directory.get = flaky_get
    await harness["partner"].send("no.ema.municipality.capacity.v1", CAPACITY)
    sub = harness["svc"].subscriptions[0]
    await wait_for(lambda: sub.handled == 1, timeout=20)
    assert len(failures) == 2
    assert await effects(harness["svc"]) == ["ok"]
    assert await dead_letters(harness["partner"].nc) == []
