"""Task notices grouped per step of planning (no.ema.notify.task-notices.v1, ADR 0020): a unit
registered for them hears an arrival's tasks in one message on its own consumer, with exactly
what the per-task form says; units that did not choose it still get one message per task; the
operator switches a unit, and a bad switch changes nothing."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from contracts.messages import ArrivalV1, TaskCompletedV1, UnitKind
from contracts.registry import unit_consumer
from deploy.launcher import System
from services.kit.directory import Directory, bucket
from services.notify.handlers import FORM_TTL
from tests.support import ARRIVAL, Partner, http_json, read_subject, stream_messages, wait_for

ROOT = Path(__file__).resolve().parents[2]
EACH, GROUPED = "no.ema.notify.task-notice.v1", "no.ema.notify.task-notices.v1"
# What a notice says, whichever form carries it (ids and the case differ between two cases).
SAYS = ("task", "title_nb", "title_en", "due", "status", "days_late", "legal_ref", "pathway")


class Own:
    """A unit's notices, read as the unit reads them: through its own NATS user, from the
    durable consumer the operator provisioned for it on NOTIFY, each acked."""

    def __init__(self, partner: Partner) -> None:
        self.partner, self.events, self.sub = partner, [], None

    async def until(self, enough, timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ANN001
        if self.sub is None:
            js = self.partner.bus.jetstream()
            self.sub = await js.pull_subscribe_bind(unit_consumer(self.partner.unit_id), "NOTIFY")

        async def read() -> bool:
            try:
                for msg in await self.sub.fetch(50, timeout=0.5):
                    self.events.append(json.loads(msg.data))
                    await msg.ack()
            except TimeoutError:  # nothing more now (nats-py raises its own or asyncio's)
                pass
            return enough(self.events)

        await wait_for(read, timeout=timeout)
        return self.events


def said(notice: dict[str, Any]) -> tuple:
    return tuple(notice.get(k) for k in SAYS)


async def arrive(system: System, centre: Partner) -> tuple[str, str]:
    """An arrival at `centre`; its event id and the case it opened (from planning)."""
    number = "2026" + "".join(random.choices("0123456789", k=8))
    data = ArrivalV1(**{**ARRIVAL, "duf_number": number, "care_centre": centre.unit_id})
    arrival = await centre.send("no.ema.intake.arrival.v1", data)
    cases = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(cases)["outbox_pending"] == 0)

    async def opened() -> str | None:
        for m in await stream_messages(centre.nc, "CASE", "ema.case.opened.v2"):
            event = json.loads(m.data)
            if event["correlationid"] == arrival:
                return event["data"]["case_id"]
        return None

    return arrival, await wait_for(opened)


def centre_id() -> str:
    return "centre-" + uuid.uuid4().hex[:8]


async def notify_idle(system: System) -> None:
    health = f"http://127.0.0.1:{system.http_ports['notify']}/healthz"
    await wait_for(lambda: http_json(health)["outbox_pending"] == 0)


async def test_a_unit_registered_for_grouped_notices_hears_an_arrival_in_one_message(
    system: System,
) -> None:
    each = await Partner.register(system, centre_id(), UnitKind.CARE_CENTRE)
    grouped = await Partner.register(system, centre_id(), UnitKind.CARE_CENTRE, notices="grouped")
    arrival_each, _ = await arrive(system, each)
    arrival_grouped, case_id = await arrive(system, grouped)

    own = Own(grouped)
    await own.until(lambda es: any(e["correlationid"] == arrival_grouped for e in es))
    await notify_idle(system)
    await asyncio.sleep(1)  # anything more notify sent for the arrival has reached the stream
    mine = await own.until(lambda es: True)  # and is read
    for_arrival = [e for e in mine if e["correlationid"] == arrival_grouped]
    assert [e["type"] for e in for_arrival] == [GROUPED]
    message = for_arrival[0]
    assert message["source"] == "svc-notify" and message["subject"] == case_id
    assert message["data"]["unit"] == grouped.unit_id
    assert message["data"]["case_id"] == case_id
    notices = message["data"]["notices"]
    assert {n["case_id"] for n in notices} == {case_id}
    # Its own tasks, and those it is told of (copies: the representative's appointment).
    assert grouped.unit_id in {n["responsible_unit"] for n in notices}

    # The per-task form of the same arrival at another centre says exactly the same, one
    # message per task.
    theirs = await Own(each).until(
        lambda es: len([e for e in es if e["correlationid"] == arrival_each]) >= len(notices)
    )
    singles = [e for e in theirs if e["correlationid"] == arrival_each]
    assert {e["type"] for e in singles} == {EACH}
    assert sorted(said(e["data"]) for e in singles) == sorted(said(n) for n in notices)
    assert len(singles) == len(notices) > 1

    # The arrival's other addressees did not choose grouped notices: one message per task.
    others = [
        m
        for m in await read_subject(grouped.nc, "NOTIFY", "ema.notify.tasks.>")
        if json.loads(m.data)["correlationid"] == arrival_grouped
        and m.subject != f"ema.notify.tasks.{grouped.unit_id}"
    ]
    assert others and {json.loads(m.data)["type"] for m in others} == {EACH}
    await each.close()
    await grouped.close()


def cli(system: System, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir), "unit", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_operator_switches_a_unit_to_grouped_notices(system: System) -> None:
    centre = await Partner.register(system, centre_id(), UnitKind.CARE_CENTRE)
    arrival, case_id = await arrive(system, centre)
    own = Own(centre)
    await own.until(lambda es: any(e["correlationid"] == arrival for e in es))

    # Bad input is refused and changes nothing.
    nobody = cli(system, "notices", "--id", "centre-nosuchunit", "grouped")
    assert nobody.returncode != 0 and "no unit 'centre-nosuchunit'" in nobody.stderr
    bogus = cli(system, "notices", "--id", centre.unit_id, "bundled")
    assert bogus.returncode != 0 and "invalid choice: 'bundled'" in bogus.stderr
    directory = Directory(await bucket(centre.nc.jetstream()), ttl=0)
    assert (await directory.get(centre.unit_id)).notices == "each"
    assert await directory.get("centre-nosuchunit") is None

    switched = cli(system, "notices", "--id", centre.unit_id, "grouped")
    assert switched.returncode == 0, switched.stderr
    assert f"ema.notify.tasks.{centre.unit_id}" in switched.stdout
    assert (await directory.get(centre.unit_id)).notices == "grouped"
    listed = json.loads(cli(system, "list", "--json").stdout)
    assert {u["id"]: u["notices"] for u in listed}[centre.unit_id] == "grouped"
    [line] = [x for x in cli(system, "list").stdout.splitlines() if x.startswith(centre.unit_id)]
    assert line.endswith("notices: grouped")

    await asyncio.sleep(FORM_TTL + 0.5)  # notify's cache of the unit's choice has expired
    done = await centre.send(
        "no.ema.planning.task-completed.v1",
        TaskCompletedV1(case_id=case_id, task="arrival_talk", completed_on=date.today()),
    )
    await own.until(lambda es: any(e["correlationid"] == done for e in es))
    await notify_idle(system)
    await asyncio.sleep(1)
    events = await own.until(lambda es: True)
    after = [e for e in events if e["correlationid"] == done]
    assert [e["type"] for e in after] == [GROUPED]
    assert [(n["task"], n["status"]) for n in after[0]["data"]["notices"]] == [
        ("arrival_talk", "done")
    ]
    await centre.close()
