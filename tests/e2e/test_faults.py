"""Faults under load: every service SIGKILLed in turn, and nats-server stopped and started,
while a run of mixed messages (arrivals, consents, share requests, settlement replies) goes
through. Afterwards every message has had its effect exactly once, counted in the databases
and in the messages delivered on the bus, and nothing was dead-lettered.

EMA_FAULT_MESSAGES sets the size of the run (default 700, which keeps the module near two
minutes on two cores); `make stress` runs it with 10,000. Consent withdrawn while share
requests are in flight is tests/e2e/test_consent.py::test_k6_...with_requests_in_flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from nats.aio.client import Client

from contracts import messages as m
from deploy.launcher import SERVICES, System
from services.kit.outbox import build_event
from tests.conftest import start_system
from tests.e2e.test_consent import KOPP, consent, flow
from tests.e2e.test_lifecycle import TODAY
from tests.support import (
    ARRIVAL,
    TASKS_ON_ARRIVAL,
    Partner,
    http_json,
    query,
    read_subject,
    wait_for,
)

K = m.UnitKind
MESSAGES = int(os.environ.get("EMA_FAULT_MESSAGES", "700"))
KOMMUNE = "0301"
BIRTH = TODAY.replace(year=TODAY.year - 14) - timedelta(days=40)
pytestmark = pytest.mark.timeout(300 + MESSAGES // 5)


def dufs(prefix: str, n: int) -> list[str]:
    base = random.randrange(10**6, 9 * 10**6)
    return [f"2026{prefix}{base + i:07d}"[:12] for i in range(n)]


@dataclass
class Actors:
    centre: Partner
    udi: Partner
    bufetat: Partner
    kommune: Partner
    sealing_key: str
    consent_cases: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)

    async def close(self) -> None:
        for p in (self.centre, self.udi, self.bufetat, self.kommune):
            await p.close()


@dataclass
class Run:
    """The mixed messages, signed and ready, and the ids each kind is counted by."""

    messages: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    arrivals: dict[str, str] = field(default_factory=dict)  # event id -> DUF number
    consents: set[str] = field(default_factory=set)
    shares: set[str] = field(default_factory=set)
    answers: set[str] = field(default_factory=set)


def db(system: System, name: str, sql: str, *params: Any) -> list[tuple]:
    return query(system.data_dir / f"{name}.db", sql, *params)


def count_in(system: System, name: str, table: str, column: str, ids: set[str]) -> int:
    """Rows whose `column` is one of `ids` (in chunks: SQLite limits the parameters)."""
    ids_l, total = sorted(ids), 0
    for i in range(0, len(ids_l), 500):
        chunk = ids_l[i : i + 500]
        marks = ",".join("?" * len(chunk))
        total += db(
            system, name, f"select count(*) from {table} where {column} in ({marks})", *chunk
        )[0][0]
    return total


async def publish(nc: Client, messages: list[tuple[str, bytes, dict[str, str]]]) -> None:
    js = nc.jetstream()
    for i in range(0, len(messages), 500):
        futures = [await js.publish_async(s, b, headers=h) for s, b, h in messages[i : i + 500]]
        await asyncio.gather(*futures)


async def prepare(system: System, n_cases: int, n_offers: int) -> Actors:
    """Cases the consents and share requests refer to, and children with pending offers
    for the settlement replies; all settled before any fault."""
    suffix = uuid.uuid4().hex[:6]
    centre = await Partner.register(system, f"centre-{suffix}", K.CARE_CENTRE)
    udi = await Partner.register(system, f"udi-{suffix}", K.UDI)
    bufetat = await Partner.register(system, f"bufetat-{suffix}", K.BUFETAT_REGION)
    kommune = await Partner.register(system, f"kommune-{KOMMUNE}", K.MUNICIPALITY, sealing=True)
    actors = Actors(centre, udi, bufetat, kommune, await centre.broker_key())
    free = n_offers + 5
    await kommune.send(
        "no.ema.municipality.capacity.v2",
        m.CapacityPublishedV2(
            kommunenummer=KOMMUNE,
            year=TODAY.year,
            children=free,
            free_places=free,
            offers=[m.MeasureOffer(measure="bofellesskap", min_age=10, max_age=17)],
        ),
    )

    plain, ready = dufs("1", n_cases), dufs("2", n_offers)
    arrived = f"{(TODAY - timedelta(days=70)).isoformat()}T12:00:00+01:00"
    msgs = []
    for number in plain + ready:
        data = m.ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": number,
                "arrived_at": arrived,
                "care_centre": centre.key.unit_id,
                **({"birth_date": BIRTH} if number in ready else {}),
            }
        )
        msgs.append(build_event(centre.key, "no.ema.intake.arrival.v1", data))
    await publish(centre.nc, [(s, b, h) for s, _, b, h in msgs])
    total = n_cases + n_offers
    await wait_for(
        lambda: db(system, "consent", "select count(*) from consent_case")[0][0] >= total,
        timeout=120 + total / 5,
    )
    case_of = dict(db(system, "intake", "select duf_number, id from intake_case"))
    actors.consent_cases = [case_of[d] for d in plain]
    ready_cases = [case_of[d] for d in ready]

    decided = TODAY - timedelta(days=30)
    await publish(
        udi.nc,
        signed(
            udi,
            "no.ema.intake.residence-decided.v1",
            [
                m.ResidenceDecisionV1(
                    duf_number=d,
                    outcome="granted",
                    decided_on=decided,
                    udi_reference="UDI-" + d[-4:],
                )
                for d in ready
            ],
        ),
    )
    await settle_count(system, "residence = 'granted'", n_offers)
    await publish(
        bufetat.nc,
        signed(
            bufetat,
            "no.ema.municipality.settlement-profile.v1",
            [
                m.SettlementProfileV1(
                    case_id=c,
                    bufetat_region="øst",
                    recommended_measure="bofellesskap",
                    birth_date=BIRTH,
                    languages=["prs"],
                    care_needs=[],
                    family_municipalities=[],
                    network_municipalities=[],
                    siblings=[],
                    kopp_on=TODAY,
                )
                for c in ready_cases
            ],
        ),
    )
    await settle_count(system, "measure is not null", n_offers)
    actors.offers = [f"offer-{uuid.uuid4().hex[:12]}" for _ in ready_cases]
    await publish(
        bufetat.nc,
        signed(
            bufetat,
            "no.ema.municipality.offer-requested.v1",
            [
                m.OfferRequestedV1(
                    offer_id=o, case_id=c, kommunenummer=KOMMUNE, measure="bofellesskap"
                )
                for o, c in zip(actors.offers, ready_cases, strict=True)
            ],
        ),
    )
    await wait_for(
        lambda: (
            db(
                system,
                "municipality",
                "select count(*) from settlement_offer where status = 'pending'",
            )[0][0]
            >= n_offers
        ),
        timeout=60 + n_offers / 5,
    )
    await quiet(system)
    return actors


def signed(p: Partner, type_: str, datas: list) -> list[tuple[str, bytes, dict[str, str]]]:
    return [_strip(build_event(p.key, type_, d)) for d in datas]


async def settle_count(system: System, where: str, n: int) -> None:
    await wait_for(
        lambda: (
            db(system, "municipality", f"select count(*) from settlement_child where {where}")[0][0]
            >= n
        ),
        timeout=60 + n / 5,
    )


def _strip(built: tuple) -> tuple[str, bytes, dict[str, str]]:
    subject, _, body, headers = built
    return subject, body, headers


def make_run(actors: Actors, n: int) -> Run:
    """n mixed messages: 40% arrivals, 20% consents, 30% share requests, 10% offer answers
    (one per prepared offer), shuffled."""
    run = Run()
    c = actors.centre
    n_answers = len(actors.offers)
    n_consents = n // 5
    n_shares = (3 * n) // 10
    n_arrivals = n - n_answers - n_consents - n_shares
    for number in dufs("3", n_arrivals):
        data = m.ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": number,
                "care_centre": c.key.unit_id,
                "arrived_at": datetime.now(UTC).isoformat(),
            }
        )
        subject, event, body, headers = build_event(c.key, "no.ema.intake.arrival.v1", data)
        run.arrivals[event.id] = number
        run.messages.append((subject, body, headers))
    scope = [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])]
    for i in range(n_consents):
        case_id = actors.consent_cases[i % len(actors.consent_cases)]
        given = consent(case_id, scope)
        run.consents.add(given.consent_id)
        run.messages.append(
            _strip(build_event(c.key, "no.ema.consent.granted.v1", given, case_id=case_id))
        )
    for i in range(n_shares):
        case_id = actors.consent_cases[i % len(actors.consent_cases)]
        request = c.sealed_request(
            case_id,
            actors.kommune.key.unit_id,
            "kopp",
            "settlement",
            KOPP,
            broker=actors.sealing_key,
        )
        run.shares.add(request.request_id)
        run.messages.append(
            _strip(build_event(c.key, "no.ema.share.request.v2", request, case_id=case_id))
        )
    for offer_id in actors.offers:
        answer = m.OfferAnsweredV1(
            offer_id=offer_id,
            answer="accept",
            settle_on=TODAY - timedelta(days=1),
            measure="bofellesskap",
        )
        run.answers.add(offer_id)
        run.messages += signed(actors.kommune, "no.ema.municipality.offer-answered.v1", [answer])
    random.shuffle(run.messages)
    return run


async def bus(nc: Client, stream: str, subject: str) -> list[dict]:
    """Every message on a subject, as JSON."""
    return [json.loads(msg.data) for msg in await read_subject(nc, stream, subject)]


def health(system: System, name: str) -> dict:
    """The service's health, also when it answers 503 (degraded, e.g. NATS down)."""
    try:
        return http_json(f"http://127.0.0.1:{system.http_ports[name]}/healthz")
    except HTTPError as exc:
        return json.loads(exc.read())


@pytest.fixture
def faulty_system(tmp_path: Path) -> Iterator[System]:
    """A system of its own; acks may take longer than in the other tests, as a batch under
    load on two cores can outlast two seconds, which is not the fault under test."""
    system = start_system(tmp_path, EMA_ACK_WAIT="8", EMA_MAX_DELIVER="5")
    yield system
    system.down()


def handled(system: System, name: str) -> int:
    try:
        return sum(c["handled"] for c in health(system, name)["consumers"].values())
    except OSError:
        return 0


async def quiet(system: System, nc: Client | None = None) -> None:
    """Until every consumer has nothing pending or unacknowledged and every outbox is empty,
    twice in a row a second apart."""
    own = nc is None
    nc = nc or await system.connect()
    js = nc.jetstream()
    streams = ("INTAKE", "CASE", "PLANNING", "NOTIFY", "SHARE", "CONSENT", "MUNICIPALITY")

    async def idle() -> bool:
        for name in SERVICES:
            if health(system, name)["outbox_pending"]:
                return False
        for stream in streams:
            for info in await js.consumers_info(stream):
                if info.name.startswith(SERVICES) and (info.num_pending or info.num_ack_pending):
                    return False
        return True

    calm = 0
    while calm < 2:
        try:
            calm = calm + 1 if await idle() else 0
        except OSError:
            calm = 0
        await asyncio.sleep(1.0)
    if own:
        await nc.close()


async def check_exactly_once(system: System, actors: Actors, run: Run) -> None:
    """Each message's effect is in the databases once, and on the bus once."""
    a = len(run.arrivals)
    dufs_run = set(run.arrivals.values())
    assert count_in(system, "intake", "intake_case", "duf_number", dufs_run) == a
    cases = {r[0] for r in db(system, "intake", "select id from intake_case")} - set(
        actors.consent_cases
    )
    run_cases = {
        cid
        for cid, number in db(system, "intake", "select id, duf_number from intake_case")
        if number in dufs_run
    }
    assert run_cases <= cases
    assert count_in(system, "planning", "planning_task", "case_id", run_cases) == (
        TASKS_ON_ARRIVAL * a
    )
    assert count_in(system, "consent", "consent_case", "case_id", run_cases) == a
    assert count_in(system, "consent", "consent_consent", "consent_id", run.consents) == len(
        run.consents
    )
    assert count_in(system, "consent", "consent_decision", "request_id", run.shares) == len(
        run.shares
    )
    assert count_in(system, "municipality", "settlement_placement", "offer_id", run.answers) == (
        len(run.answers)
    )
    nc = actors.centre.nc
    opened = [e["correlationid"] for e in await bus(nc, "CASE", "ema.case.opened.v2")]
    assert sorted(x for x in opened if x in run.arrivals) == sorted(run.arrivals)
    unit = actors.centre.key.unit_id
    acks = [
        e["data"]["consent_id"] for e in await bus(nc, "CONSENT", f"ema.consent.recorded.{unit}")
    ]
    assert sorted(x for x in acks if x in run.consents) == sorted(run.consents)
    receipts = [
        e["data"]["request_id"] for e in await bus(nc, "SHARE", f"ema.share.receipt.{unit}")
    ]
    assert sorted(x for x in receipts if x in run.shares) == sorted(run.shares)
    decided = [e["data"]["request_id"] for e in await bus(nc, "SHARE", "ema.share.decided")]
    assert sorted(x for x in decided if x in run.shares) == sorted(run.shares)
    k = actors.kommune.key.unit_id
    outcomes = [e["data"] for e in await bus(nc, "MUNICIPALITY", f"ema.municipality.outcome.{k}")]
    assert sorted(o["offer_id"] for o in outcomes if o["offer_id"] in run.answers) == sorted(
        run.answers
    )
    assert {o["outcome"] for o in outcomes if o["offer_id"] in run.answers} == {"settled"}
    settled = [e["data"]["case_id"] for e in await bus(nc, "CASE", "ema.case.settled")]
    assert len(settled) == len(set(settled)) == len(run.answers)
    assert (await nc.jetstream().stream_info("DLQ")).state.messages == 0


async def test_sigkill_each_service_in_turn_loses_nothing_and_applies_nothing_twice(
    faulty_system: System,
) -> None:
    system = faulty_system
    # Consents accumulate per case and every share decision weighs them all: spread them.
    actors = await prepare(system, n_cases=max(20, MESSAGES // 50), n_offers=MESSAGES // 10)
    run = make_run(actors, MESSAGES)
    waves = [run.messages[i :: len(SERVICES)] for i in range(len(SERVICES))]
    killed = []
    for name, wave in zip(SERVICES, waves, strict=True):
        start = handled(system, name)
        await publish(actors.centre.nc, wave)
        # Kill while the service is in the middle of the wave.
        await wait_for(
            lambda n=name, s=start: handled(system, n) >= s + 5, timeout=60, interval=0.02
        )
        system.procs[name].stop(signal.SIGKILL)
        killed.append(system.procs[name].proc.returncode)
        system.start_service(name)
    assert killed == [-signal.SIGKILL] * len(SERVICES)
    await quiet(system, actors.centre.nc)
    await check_exactly_once(system, actors, run)
    await actors.close()


async def test_nats_server_restart_mid_run_loses_nothing(faulty_system: System) -> None:
    system = faulty_system
    n = max(100, MESSAGES // 2)
    actors = await prepare(system, n_cases=max(10, n // 50), n_offers=n // 10)
    run = make_run(actors, n)
    half = len(run.messages) // 2
    start = handled(system, "planning")
    await publish(actors.centre.nc, run.messages[:half])
    await wait_for(lambda: handled(system, "planning") >= start + 5, timeout=60, interval=0.02)
    system.nats.stop()  # SIGTERM; same port and store when it comes back
    await asyncio.sleep(1.0)
    assert not any(health(system, s)["nats_connected"] for s in SERVICES)
    system.nats.start()
    await wait_for(lambda: all(health(system, s)["nats_connected"] for s in SERVICES), timeout=30)
    await wait_for(lambda: actors.centre.nc.is_connected, timeout=30)
    await publish(actors.centre.nc, run.messages[half:])
    await quiet(system, actors.centre.nc)
    await check_exactly_once(system, actors, run)
    assert {health(system, s)["status"] for s in SERVICES} == {"ok"}
    await actors.close()
