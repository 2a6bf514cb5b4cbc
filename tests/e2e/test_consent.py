"""Golden scenarios of the consent broker over the real bus (real nats-server, real SQLite,
real regopy): consents, decisions, record before release, delivery, verification."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.messages import (
    ArrivalV1,
    ConsentGrantedV1,
    ConsentWithdrawnV1,
    ShareDeliveredV2,
    ShareRequestV2,
    UnitKind,
)
from deploy.launcher import System
from services.kit.outbox import build_event
from services.kit.sealing import delivery_context
from tests.support import ARRIVAL, Partner, dead_letters, query, wait_for

ROOT = Path(__file__).resolve().parents[2]
KOPP = {
    "age": 12,
    "languages": ["prs"],
    "care_needs": "trenger fast voksenperson",
    "family_ties": "onkel i Bergen",
    "recommended_measure": "fosterhjem",
    "therapy_notes": "HEMMELIG-TERAPI",
    "name": "Zahra Testdatter",
}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def born_years_ago(years: int) -> date:
    today = datetime.now(UTC).date()
    return date(today.year - years, 1, 1) if today.month > 1 else date(today.year - years - 1, 1, 1)


async def open_case(system: System, years: int = 12) -> tuple[Partner, str]:
    """A case for a child of `years`; from 15 the child comes with a younger sibling, as care
    centres take children under 15 and their older siblings only."""
    centre = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    siblings = []
    if years >= 15:
        younger, _ = await open_case_at(system, centre, 10)
        siblings = [{"duf_number": younger}]
    _, case_id = await open_case_at(system, centre, years, siblings)
    return centre, case_id


async def open_case_at(
    system: System, centre: Partner, years: int, siblings: list | None = None
) -> tuple[str, str]:
    number = "2026" + "".join(random.choices("0123456789", k=8))
    await centre.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": number,
                "care_centre": centre.key.unit_id,
                "birth_date": born_years_ago(years),
                "siblings": siblings or [],
            }
        ),
    )
    rows = await wait_for(
        lambda: query(
            system.database_url("intake"), "select id from intake_case where duf_number = ?", number
        )
    )
    case_id = rows[0][0]
    await wait_for(
        lambda: query(
            system.database_url("consent"), "select 1 from consent_case where case_id = ?", case_id
        )
    )
    return number, case_id


def flow(
    categories: list[str],
    sources: list[str],
    recipients: list[str],
    purposes: list[str],
    recipient_units: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "categories": categories,
        "source_sectors": sources,
        "recipient_sectors": recipients,
        "recipient_units": recipient_units or [],
        "purposes": purposes,
    }


def consent(
    case_id: str,
    scope: list[dict],
    *,
    role: str = "representative",
    form: str = "written",
    refusals: list[dict] | None = None,
    granted_at: datetime | None = None,
    valid_to: datetime | None = None,
    consent_id: str | None = None,
) -> ConsentGrantedV1:
    now = datetime.now(UTC)
    granted = granted_at or now - timedelta(days=1)
    return ConsentGrantedV1(
        consent_id=consent_id or uid("consent"),
        case_id=case_id,
        grantor={"role": role, "capacity": "representant oppnevnt av Statsforvalteren"},
        form={"kind": "written", "document_sha256": hashlib.sha256(b"signed pdf").hexdigest()}
        if form == "written"
        else {"kind": "oral", "witness_unit": "centre-x"},
        scope=scope,
        refusals=refusals or [],
        granted_at=granted,
        valid_from=granted,
        valid_to=valid_to or now + timedelta(days=365),
        child_heard={"status": "heard", "method": "samtale med tolk"},
    )


async def recorded(partner: Partner, sub: Any, consent_id: str) -> dict:
    while True:
        msg = json.loads((await sub.next_msg(timeout=15)).data)["data"]
        if msg["consent_id"] == consent_id:
            return msg


async def share(
    sender: Partner,
    case_id: str,
    recipient: str,
    category: str,
    purpose: str,
    payload: dict,
    **kw: Any,
) -> ShareRequestV2:
    request = await sender.share_request(case_id, recipient, category, purpose, payload, **kw)
    await sender.send("no.ema.share.request.v2", request, case_id=case_id)
    return request


async def receipt(sender: Partner, sub: Any, request_id: str) -> dict:
    while True:
        data = json.loads((await sub.next_msg(timeout=15)).data)["data"]
        if data["request_id"] == request_id:
            return data


def decision(system: System, decision_id: str) -> dict:
    row = query(
        system.database_url("consent"),
        "select outcome, legal_basis, fields, obligations, reasons, log_index,"
        " record_hash, reason_nb from consent_decision where id = ?",
        decision_id,
    )[0]
    keys = (
        "outcome",
        "legal_basis",
        "fields",
        "obligations",
        "reasons",
        "log_index",
        "record_hash",
        "reason_nb",
    )
    out = dict(zip(keys, row, strict=True))
    for k in ("fields", "obligations", "reasons"):
        out[k] = json.loads(out[k])
    return out


def open_delivery(recipient: Partner, msg: Any) -> tuple[ShareDeliveredV2, dict]:
    delivered = ShareDeliveredV2(**json.loads(msg.data)["data"])
    assert recipient.sealing is not None
    content = recipient.sealing.open(
        delivered.payload,
        delivery_context(
            delivered.decision_id,
            delivered.case_id,
            delivered.request_id,
            delivered.source_unit,
            delivered.recipient_unit,
            delivered.data_category.value,
            delivered.purpose,
        ),
    )
    assert "sha256:" + hashlib.sha256(content).hexdigest() == delivered.content_hash
    body = json.loads(content)
    assert body["decision_id"] == delivered.decision_id
    return delivered, body["data"]


def cli(system: System, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`emaflyt --data-dir <the system's> ...`, as an operator runs it beside the system."""
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir), *args],
        cwd=ROOT,
        env={**os.environ, **system.env},  # the system's EMA_DATABASE_URL, if any
        capture_output=True,
        text=True,
        input=stdin,
    )


@pytest.mark.postgres
async def test_k1_k11_kopp_with_written_consent_is_delivered_with_only_settlement_fields(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    given = consent(case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])])
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    ack = await recorded(centre, acks, given.consent_id)
    assert ack["status"] == "active"

    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    inbox = await kommune.nc.subscribe(f"ema.share.delivered.v2.{kommune.key.unit_id}")
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    answer = await receipt(centre, receipts, request.request_id)
    assert answer["outcome"] == "released"
    delivered, data = open_delivery(kommune, await inbox.next_msg(timeout=15))
    assert data == {
        k: KOPP[k] for k in ("age", "languages", "care_needs", "family_ties", "recommended_measure")
    }
    assert delivered.legal_basis == f"consent:{given.consent_id}"
    # Every release joins its decision record: same id, same log leaf, same content hash.
    record = decision(system, delivered.decision_id)
    assert record["outcome"] == "allow"
    assert (record["log_index"], record["record_hash"]) == (
        delivered.log_index,
        delivered.record_hash,
    )
    body = json.loads(
        query(
            system.database_url("consent"),
            "select body from consent_log where idx = ?",
            delivered.log_index,
        )[0][0]
    )
    assert body["content_hash"] == delivered.content_hash
    assert "HEMMELIG" not in json.dumps(body) and "Zahra" not in json.dumps(body)
    out = cli(system, "consent", "verify", "--record", delivered.decision_id, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True


@pytest.mark.postgres
async def test_k1_kopp_without_consent_is_withheld_and_the_receipt_reveals_nothing(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    request = await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
    answer = await receipt(centre, receipts, request.request_id)
    assert answer["outcome"] == "withheld"
    assert set(answer) == {"request_id", "decision_id", "outcome", "message_nb", "message_en"}
    assert "samtykke" not in answer["message_nb"].lower()
    record = decision(system, answer["decision_id"])
    assert record["outcome"] == "withhold" and record["fields"] == []
    assert any("(K7)" in r for r in record["reasons"])


async def test_k3_representative_health_consent_does_not_count_for_a_17_year_old(
    system: System,
) -> None:
    centre, case_id = await open_case(system, years=17)
    health = await Partner.register(system, uid("health"), UnitKind.HEALTH)
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL, sealing=True)
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    # Given by the representative when the child was 15: valid then, not for a 17-year-old.
    two_years_ago = datetime.now(UTC) - timedelta(days=2 * 366)
    given = consent(
        case_id, [flow(["health"], ["health"], ["school"], ["schooling"])], granted_at=two_years_ago
    )
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)  # the case's centre
    await recorded(centre, acks, given.consent_id)
    receipts = await health.nc.subscribe(f"ema.share.receipt.{health.key.unit_id}")
    request = await share(
        health, case_id, school.key.unit_id, "health", "schooling", {"adaptations_needed": "hvile"}
    )
    answer = await receipt(health, receipts, request.request_id)
    assert answer["outcome"] == "withheld"
    reasons = decision(system, answer["decision_id"])["reasons"]
    assert any("must come from the young person (K3)" in r for r in reasons)


@pytest.mark.parametrize(
    ("years", "role", "form", "category", "reason"),
    [
        (12, "representative", "oral", "kopp", "form: kopp needs written consent (K1/K2)"),
        (17, "representative", "written", "health", "from 16 the young person consents"),
        (12, "young_person", "written", "school", "under 16 the representative"),
    ],
)
async def test_invalid_consent_is_dead_lettered_with_the_rule(
    system: System, years: int, role: str, form: str, category: str, reason: str
) -> None:
    centre, case_id = await open_case(system, years=years)
    given = consent(
        case_id,
        [flow([category], ["care_centre"], ["municipality"], ["settlement"])],
        role=role,
        form=form,
    )
    before = len(await dead_letters(centre.nc))
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    letters = await wait_for(lambda: _more(dead_letters(centre.nc), before))
    assert reason in letters[-1]["Ema-Dlq-Reason"]
    assert not query(
        system.database_url("consent"),
        "select 1 from consent_consent where consent_id = ?",
        given.consent_id,
    )


async def _more(coro: Any, before: int) -> list | None:
    letters = await coro
    return letters if len(letters) > before else None


async def test_k10_concern_to_barnevern_is_delivered_on_statute_with_a_review(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    barnevern = await Partner.register(system, uid("barnevern"), UnitKind.BARNEVERN, sealing=True)
    inbox = await barnevern.nc.subscribe(f"ema.share.delivered.v2.{barnevern.key.unit_id}")
    await share(
        school,
        case_id,
        barnevern.key.unit_id,
        "school",
        "concern_report",
        {"concern": "blåmerker", "observations": "trist", "grades": "B"},
        claimed_basis="bvl-13-2",
    )
    delivered, data = open_delivery(barnevern, await inbox.next_msg(timeout=15))
    assert data == {"concern": "blåmerker", "observations": "trist"}
    assert delivered.legal_basis == "statute:bvl-13-2"
    assert [o.model_dump() for o in delivered.obligations] == [
        {"kind": "review", "within_hours": 720}
    ]


async def test_k9_anonymous_consultation_is_delivered_without_identifying_fields(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    barnevern = await Partner.register(system, uid("barnevern"), UnitKind.BARNEVERN, sealing=True)
    inbox = await barnevern.nc.subscribe(f"ema.share.delivered.v2.{barnevern.key.unit_id}")
    await share(
        centre,
        case_id,
        barnevern.key.unit_id,
        "barnevern",
        "anonymous_consultation",
        {"age_band": "10-12", "question": "hva gjør vi?", "name": "Zahra"},
    )
    delivered, data = open_delivery(barnevern, await inbox.next_msg(timeout=15))
    assert data == {"age_band": "10-12", "question": "hva gjør vi?"}
    assert delivered.legal_basis == "statute:fvl-13a-2"


IN_FLIGHT = 200


async def kopp_requests(
    centre: Partner, case_id: str, recipient: str, n: int
) -> list[tuple[ShareRequestV2, Any]]:
    """`n` kopp share requests, built and sealed, not sent."""
    key = await centre.broker_key()
    built = []
    for _ in range(n):
        request = centre.sealed_request(case_id, recipient, "kopp", "settlement", KOPP, broker=key)
        built.append(
            (request, build_event(centre.key, "no.ema.share.request.v2", request, case_id=case_id))
        )
    return built


async def pipeline(centre: Partner, built: list[tuple[ShareRequestV2, Any]]) -> None:
    """Publish built requests at once, without waiting for one before the next."""
    js = centre.nc.jetstream()
    futures = [
        await js.publish_async(subject, body, headers=headers)
        for _, (subject, _, body, headers) in built
    ]
    await asyncio.gather(*futures)


async def withdraw_amid_requests(
    centre: Partner,
    built: list[tuple[ShareRequestV2, Any]],
    answered: Callable[[], bool],
    withdrawal: ConsentWithdrawnV1,
    acknowledged: Callable[[], bool],
) -> None:
    """Race `withdrawal` against the built requests, so requests are in flight on both sides.

    A quarter is pipelined onto the bus and the withdrawal is sent as soon as the broker has
    answered one of them (`answered`). The rest keep coming a few at a time until the broker
    has acknowledged the withdrawal, however long the machine makes that take, and the last
    ten after it. Sending everything first would not race: the broker decides a fetched batch
    in one transaction, and on SQLite the share deciders can keep the write lock busy until
    the requests run out."""
    first = len(built) // 4
    await pipeline(centre, built[:first])
    await wait_for(answered, interval=0.005)
    await centre.send("no.ema.consent.withdrawn.v1", withdrawal, case_id=withdrawal.case_id)
    rest = built[first:]
    while len(rest) > 10 and not acknowledged():
        await pipeline(centre, rest[:5])
        rest = rest[5:]
        await asyncio.sleep(0.02)
    await wait_for(acknowledged, timeout=60)
    await pipeline(centre, rest)


@pytest.mark.postgres
async def test_k6_no_release_after_a_withdrawal_is_acknowledged_with_requests_in_flight(
    system: System,
) -> None:
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    given = consent(case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])])
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await recorded(centre, acks, given.consent_id)
    # One connection sees the broker's publications in the order its outbox relays them.
    events: list[tuple[str, dict]] = []
    watcher = kommune.nc

    async def collect(msg: Any) -> None:
        events.append((msg.subject, json.loads(msg.data)["data"]))

    await watcher.subscribe(f"ema.share.delivered.v2.{kommune.key.unit_id}", cb=collect)
    await watcher.subscribe(f"ema.consent.recorded.{centre.key.unit_id}", cb=collect)
    await watcher.subscribe(f"ema.share.receipt.{centre.key.unit_id}", cb=collect)
    await watcher.flush()
    # 200 requests are built and sealed first, then raced against the withdrawal.
    built = await kopp_requests(centre, case_id, kommune.key.unit_id, IN_FLIGHT)
    pending_ids = {request.request_id for request, _ in built}

    def acknowledged() -> bool:
        return any(
            s.startswith("ema.consent.recorded") and d["status"] == "withdrawn" for s, d in events
        )

    await withdraw_amid_requests(
        centre,
        built,
        answered=lambda: any(
            s.startswith("ema.share.receipt") and d["request_id"] in pending_ids for s, d in events
        ),
        withdrawal=ConsentWithdrawnV1(
            consent_id=given.consent_id,
            case_id=case_id,
            withdrawn_by="representative",
            withdrawn_at=datetime.now(UTC),
        ),
        acknowledged=acknowledged,
    )
    requests = [request for request, _ in built]
    after = [
        await share(centre, case_id, kommune.key.unit_id, "kopp", "settlement", KOPP)
        for _ in range(3)
    ]
    ids = {r.request_id for r in requests if isinstance(r, ShareRequestV2)} | {
        r.request_id for r in after
    }
    await wait_for(
        lambda: (
            len(
                [
                    e
                    for e in events
                    if e[0].startswith("ema.share.receipt") and e[1]["request_id"] in ids
                ]
            )
            == IN_FLIGHT + 3
        ),
        timeout=120,
    )
    ack_at = next(
        i
        for i, (s, d) in enumerate(events)
        if s.startswith("ema.consent.recorded") and d["status"] == "withdrawn"
    )
    withdrawn_index = events[ack_at][1]["log_index"]
    inflight = {r.request_id for r in requests if isinstance(r, ShareRequestV2)}
    outcomes = [
        d["outcome"]
        for s, d in events
        if s.startswith("ema.share.receipt") and d["request_id"] in inflight
    ]
    # The race really happened: decisions on both sides of the withdrawal.
    assert outcomes.count("released") >= 1 and outcomes.count("withheld") >= 1, outcomes
    released_after = [d for s, d in events[ack_at:] if s.startswith("ema.share.delivered")]
    assert released_after == []
    for s, d in events:
        if s.startswith("ema.share.delivered"):
            assert d["log_index"] < withdrawn_index  # decided before the withdrawal
    for request in after:
        answer = next(
            d
            for s, d in events
            if s.startswith("ema.share.receipt") and d["request_id"] == request.request_id
        )
        assert answer["outcome"] == "withheld"


def _copy_db(system: System, target: Path) -> Path:
    (target / "keys").mkdir(parents=True, exist_ok=True)
    shutil.copy(system.data_dir / "keys" / "consent-log.vkeys", target / "keys")
    with (
        sqlite3.connect(system.data_dir / "consent.db") as src,
        sqlite3.connect(target / "consent.db") as dst,
    ):
        src.backup(dst)
    return target / "consent.db"


async def test_verify_detects_altered_removed_and_reordered_records(
    system: System, tmp_path: Path
) -> None:
    centre, case_id = await open_case(system)
    receipts = await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}")
    for _ in range(3):
        request = await share(centre, case_id, "kommune-0301", "kopp", "settlement", KOPP)
        await receipt(centre, receipts, request.request_id)
    clean = System(tmp_path / "clean", services=())
    _copy_db(system, clean.data_dir)
    ok = cli(clean, "consent", "verify")
    assert ok.returncode == 0, ok.stdout
    size = query(clean.data_dir / "consent.db", "select count(*) from consent_log")[0][0]
    assert size >= 3  # three decisions at least (and any consents logged before)

    def tampered(name: str, *sql: str) -> str:
        copy = System(tmp_path / name, services=())
        db = _copy_db(system, copy.data_dir)
        with sqlite3.connect(db) as conn:
            for statement in sql:
                conn.execute(statement)
        out = cli(copy, "consent", "verify")
        assert out.returncode == 1
        return out.stdout

    # A withheld decision (these requests had no consent) turned into an allowed one.
    idx, victim = query(
        clean.data_dir / "consent.db",
        "select idx, ref_id from consent_log where body like '%\"withhold\"%' order by idx limit 1",
    )[0]
    out = tampered(
        "altered",
        "update consent_log set body = replace(body, '\"withhold\"', '\"allow\"') "
        f"where idx = {idx}",
    )
    assert f"record {victim}" in out and f"at index {idx} was altered" in out
    out = tampered(
        "rehashed", f"update consent_log set body = body || ' ', leaf_hash = 'x' where idx = {idx}"
    )
    assert f"at index {idx} was altered" in out
    out = tampered("removed", "delete from consent_log where idx = 1")
    assert "record at index 1 was removed" in out
    out = tampered("tail", f"delete from consent_log where idx = {size - 1}")
    assert f"record at index {size - 1} was removed" in out
    out = tampered(
        "reordered",
        "update consent_log set idx = -1 where idx = 1",
        "update consent_log set idx = 1 where idx = 2",
        "update consent_log set idx = 2 where idx = -1",
    )
    assert "belongs at index 1: the log was reordered" in out
    out = tampered("decision", "update consent_decision set outcome = 'allow'")
    assert "table column(s) outcome differ from its log record" in out
