"""A service killed with SIGKILL after its commit but before publishing loses nothing."""

from __future__ import annotations

import json
import signal

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System, http_json
from tests.support import ARRIVAL, Partner, query, stream_messages, wait_for


async def test_sigkill_between_commit_and_publish_loses_nothing(fresh_system: System) -> None:
    system = fresh_system
    system.procs["intake"].stop()
    intake = system.start_service("intake", EMA_FAULT_CRASH_AFTER_COMMIT="1")
    partner = await Partner.register(system.nats_url, "centre-crash", UnitKind.CARE_CENTRE)
    arrival = ArrivalV1(**{**ARRIVAL, "care_centre": "centre-crash"})
    arrival_id = await partner.send("no.ema.intake.arrival.v1", arrival)

    await wait_for(lambda: not intake.alive, timeout=15)
    assert intake.proc is not None and intake.proc.returncode == -signal.SIGKILL
    db = system.data_dir / "intake.db"
    assert len(query(db, "select id from intake_case")) == 1  # committed ...
    # case opened + representative requested, both committed, neither published
    assert query(db, "select count(*) from kit_outbox where published_at is null") == [(2,)]
    assert await stream_messages(partner.nc, "CASE") == []  # ... but never published

    system.start_service("intake")  # restart without the fault
    opened = await wait_for(lambda: stream_messages(partner.nc, "CASE", "ema.case.opened"))
    assert json.loads(opened[0].data)["correlationid"] == arrival_id
    case_id = json.loads(opened[0].data)["data"]["case_id"]
    tasks_url = f"http://127.0.0.1:{system.http_ports['planning']}/cases/{case_id}/tasks"
    await wait_for(lambda: len(http_json(tasks_url)) == 5)

    # The unacked arrival is redelivered after ack_wait; the inbox makes it a no-op.
    health = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(health)["consumers"]["intake-inbound"]["handled"] >= 1)
    assert len(query(db, "select id from intake_case")) == 1
    assert len(await stream_messages(partner.nc, "CASE", "ema.case.opened")) == 1
    assert query(db, "select count(*) from kit_outbox where published_at is null") == [(0,)]
    await partner.nc.close()


async def test_restart_of_nats_and_services_finds_data_again(fresh_system: System) -> None:
    system = fresh_system
    partner = await Partner.register(system.nats_url, "centre-restart", UnitKind.CARE_CENTRE)
    await partner.send("no.ema.intake.arrival.v1",
                       ArrivalV1(**{**ARRIVAL, "care_centre": "centre-restart"}))  # fmt: skip
    await wait_for(lambda: query(system.data_dir / "planning.db",
                                 "select count(*) from planning_task") == [(5,)])  # fmt: skip
    await partner.nc.close()
    system.down()
    system.up()
    partner = await Partner.register(system.nats_url, "centre-restart", UnitKind.CARE_CENTRE)
    assert len(await stream_messages(partner.nc, "CASE", "ema.case.opened")) == 1
    # The same child reported again after the restart is still one case.
    await partner.send("no.ema.intake.arrival.v1",
                       ArrivalV1(**{**ARRIVAL, "care_centre": "centre-restart"}))  # fmt: skip
    health = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(health)["consumers"]["intake-inbound"]["handled"] == 1)
    assert query(system.data_dir / "intake.db", "select count(*) from intake_case") == [(1,)]
    await partner.nc.close()
