"""A service killed with SIGKILL after its commit but before publishing loses nothing."""

from __future__ import annotations

import json
import signal

import pytest

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System
from tests.support import (
    ARRIVAL,
    TASKS_ON_ARRIVAL,
    Partner,
    case_task_items,
    http_json,
    query,
    stream_messages,
    wait_for,
)


async def test_sigkill_between_commit_and_publish_loses_nothing(fresh_system: System) -> None:
    system = fresh_system
    system.procs["intake"].stop()
    intake = system.start_service("intake", EMA_FAULT_CRASH_AFTER_COMMIT="1")
    partner = await Partner.register(system, "centre-crash", UnitKind.CARE_CENTRE)
    arrival = ArrivalV1(**{**ARRIVAL, "care_centre": "centre-crash"})
    arrival_id = await partner.send("no.ema.intake.arrival.v1", arrival)

    await wait_for(lambda: not intake.alive, timeout=15)
    assert intake.proc is not None and intake.proc.returncode == -signal.SIGKILL
    db = system.data_dir / "intake.db"
    assert len(query(db, "select id from intake_case")) == 1  # committed ...
    # case opened, representative requested, the centre's receipt: committed, none published
    assert query(db, "select count(*) from kit_outbox where published_at is null") == [(3,)]
    assert await stream_messages(partner.nc, "CASE") == []  # ... but never published

    system.start_service("intake")  # restart without the fault
    opened = await wait_for(lambda: stream_messages(partner.nc, "CASE", "ema.case.opened.v2"))
    assert json.loads(opened[0].data)["correlationid"] == arrival_id
    case_id = json.loads(opened[0].data)["data"]["case_id"]
    tasks_url = f"http://127.0.0.1:{system.http_ports['planning']}/cases/{case_id}/tasks"
    await wait_for(lambda: len(http_json(tasks_url)) == TASKS_ON_ARRIVAL)

    # The unacked arrival is redelivered after ack_wait; the inbox makes it a no-op.
    health = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(health)["consumers"]["intake-inbound"]["handled"] >= 1)
    assert len(query(db, "select id from intake_case")) == 1
    assert len(await stream_messages(partner.nc, "CASE", "ema.case.opened.v2")) == 1
    assert query(db, "select count(*) from kit_outbox where published_at is null") == [(0,)]
    await partner.close()


@pytest.mark.postgres
async def test_restart_of_nats_and_services_finds_data_again(fresh_system: System) -> None:
    system = fresh_system
    partner = await Partner.register(system, "centre-restart", UnitKind.CARE_CENTRE)
    await partner.send(
        "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": "centre-restart"})
    )
    await wait_for(
        lambda: (
            query(system.database_url("planning"), "select count(*) from planning_task")
            == [(TASKS_ON_ARRIVAL,)]
        )
    )
    await partner.close()
    system.down()
    system.up()
    partner = await Partner.register(system, "centre-restart", UnitKind.CARE_CENTRE)
    assert len(await stream_messages(partner.nc, "CASE", "ema.case.opened.v2")) == 1
    # The same child reported again after the restart is still one case.
    await partner.send(
        "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": "centre-restart"})
    )
    health = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(health)["consumers"]["intake-inbound"]["handled"] == 1)
    assert query(system.database_url("intake"), "select count(*) from intake_case") == [(1,)]
    await partner.close()


@pytest.mark.postgres
async def test_deadline_timers_fire_once_across_restarts(fresh_system: System) -> None:
    """A status change is emitted once, even when planning is killed and restarted and
    nats-server restarts too."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    system = fresh_system
    partner = await Partner.register(system, "centre-timer", UnitKind.CARE_CENTRE)
    arrived = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    await partner.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(**{**ARRIVAL, "care_centre": "centre-timer", "arrived_at": arrived}),
    )

    async def overdue_events() -> list[dict]:
        statuses = await case_task_items(partner.nc, "statuses")
        return [d for d in statuses if d["status"] == "overdue"]

    # 40 days on: arrival talk, representative, KOPP, health offer, TB, school are overdue
    first = await wait_for(lambda: _at_least(overdue_events(), 4))
    system.procs["planning"].stop(signal.SIGKILL)
    system.start_service("planning")
    await asyncio.sleep(1.5)  # several timer ticks
    await partner.close()
    system.nats.stop()
    system.nats.start()
    partner = await Partner.register(system, "centre-timer", UnitKind.CARE_CENTRE)
    await asyncio.sleep(1.5)
    again = await overdue_events()
    assert sorted(e["task_id"] for e in again) == sorted(e["task_id"] for e in first)
    await partner.close()


async def _at_least(coro, n: int):  # noqa: ANN001, ANN202
    items = await coro
    return items if len(items) >= n else None


@pytest.mark.timeout(900)
async def test_burst_of_arrivals_schedules_every_deadline(fresh_system: System) -> None:
    """1,000 arrivals published at once: every case opened, every deadline scheduled, every
    notification recorded, nothing dead-lettered (bench/thin_path.py runs 10,000)."""
    from services.kit.outbox import build_event

    system, n = fresh_system, 1000
    partner = await Partner.register(system, "centre-burst", UnitKind.CARE_CENTRE)
    js = partner.nc.jetstream()
    futures = []
    for i in range(n):
        data = ArrivalV1(
            **{**ARRIVAL, "duf_number": f"{202700000000 + i}", "care_centre": "centre-burst"}
        )
        subject, _, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
        futures.append(await js.publish_async(subject, body, headers=headers))
    for future in futures:
        await future
    planning_db = system.data_dir / "planning.db"
    await wait_for(
        lambda: (
            query(planning_db, "select count(*) from planning_task") == [(TASKS_ON_ARRIVAL * n,)]
        ),
        timeout=600,
    )
    # Every case's notifications recorded (notify's `handled` counts a redelivered message
    # again, so it is no measure of this).
    notified = "select count(distinct case_ref) from notify_notification"
    await wait_for(lambda: query(system.data_dir / "notify.db", notified) == [(n,)], timeout=600)
    assert query(system.data_dir / "intake.db", "select count(*) from intake_case") == [(n,)]
    assert query(planning_db, "select count(distinct case_id) from planning_task") == [(n,)]
    assert await stream_messages(partner.nc, "DLQ") == []
    await partner.close()
