"""The thin path across real processes and a real nats-server: arrival → case → deadline →
notification, a share request withheld and recorded, and every bad message dead-lettered."""

from __future__ import annotations

import base64
import json
import random
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from contracts.messages import ArrivalV1, UnitKind
from contracts.registry import CONTRACTS
from deploy.launcher import System
from services.kit.directory import Directory, bucket
from services.kit.signing import UnitKey
from tests.support import (
    ARRIVAL,
    TASKS_ON_ARRIVAL,
    Partner,
    dead_letters,
    http_json,
    query,
    stream_messages,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def duf() -> str:
    return "2026" + "".join(random.choices("0123456789", k=8))


def centre_id() -> str:
    return "centre-" + uuid.uuid4().hex[:8]


async def centre(system: System) -> Partner:
    return await Partner.register(system, centre_id(), UnitKind.CARE_CENTRE)


def cases(system: System, duf_number: str) -> list[tuple]:
    return query(
        system.database_url("intake"),
        "select id, care_centre from intake_case where duf_number = ?",
        duf_number,
    )


@pytest.mark.postgres
@pytest.mark.parametrize("notices", ["each", "grouped"])
async def test_partner_script_sees_case_and_arrival_talk_after_easter(
    system: System, tmp_path: Path, notices: str
) -> None:
    """A partner using only nats-py (examples/partner_arrival.py) reports an arrival on
    Maundy Thursday and sees the case opened and the arrival talk on the Tuesday after Easter,
    with its task notices one by one or grouped (docs/decisions/0020)."""
    unit, key_file = centre_id(), tmp_path / "centre.pem"
    registered = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.cli",
            "--data-dir",
            str(system.data_dir),
            "unit",
            "register",
            "--id",
            unit,
            "--name",
            "Testsenteret",
            "--kind",
            "care_centre",
            "--notices",
            notices,
            "--generate-key",
            "--key-out",
            str(key_file),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    jwt = re.search(r"NATS user JWT: (\S+)", registered.stdout).group(1)
    assert f"task notices: {notices}" in registered.stdout
    number = duf()
    out = subprocess.run(
        [
            sys.executable,
            "examples/partner_arrival.py",
            "--nats-url",
            system.nats_url,
            "--unit",
            unit,
            "--key",
            str(key_file),
            "--jwt",
            jwt,
            "--duf",
            number,
            "--arrived-at",
            "2026-04-02T10:00:00+02:00",
            "--wait",
            "60",
            "--until",
            "arrival_talk,kopp_proposal",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["cases"]) == 1
    due = {d["task"]: d["due"] for d in result["deadlines"]}
    assert due["arrival_talk"] == "2026-04-07"
    assert due["kopp_proposal"] == "2026-04-23"  # 3 weeks after arrival
    case_id = result["cases"][0]["case_id"]
    assert cases(system, number) == [(case_id, unit)]

    tasks = http_json(f"http://127.0.0.1:{system.http_ports['planning']}/cases/{case_id}/tasks")
    assert {"task": "arrival_talk", "due": "2026-04-07"}.items() <= tasks[0].items()

    inbox_url = f"http://127.0.0.1:{system.http_ports['notify']}/inbox/{unit}"
    inbox = await wait_for(
        lambda: [n for n in http_json(inbox_url) if "Ankomstsamtale" in n["text_nb"]]
    )
    assert "07.04.2026" in inbox[0]["text_nb"]
    assert inbox[0]["case_ref"] == result["cases"][0]["case_ref"]


@pytest.mark.parametrize("same_event_id", [True, False])
@pytest.mark.postgres
async def test_same_arrival_twice_opens_one_case(system: System, same_event_id: bool) -> None:
    partner = await centre(system)
    number = duf()
    data = ArrivalV1(**{**ARRIVAL, "duf_number": number, "care_centre": partner.key.unit_id})
    first = await partner.send("no.ema.intake.arrival.v1", data)
    await partner.send("no.ema.intake.arrival.v1", data, event_id=first if same_event_id else None)
    await wait_for(lambda: cases(system, number))
    health = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    await wait_for(lambda: http_json(health)["outbox_pending"] == 0)
    opened = [
        m
        for m in await stream_messages(partner.nc, "CASE", "ema.case.opened.v2")
        if json.loads(m.data)["correlationid"] == first
    ]
    assert len(cases(system, number)) == 1
    assert len(opened) == 1
    await partner.close()


async def test_an_arrival_schedules_its_deadlines_in_one_message_and_nothing_retired_is_sent(
    system: System,
) -> None:
    """One arrival: one case opened, one planning message carrying all its deadlines and first
    statuses (no.ema.planning.case-tasks.v1), a notice per task to the centre; no service
    sends a retired type (docs/decisions/0018)."""
    partner = await centre(system)
    number = duf()
    data = ArrivalV1(**{**ARRIVAL, "duf_number": number, "care_centre": partner.key.unit_id})
    arrival = await partner.send("no.ema.intake.arrival.v1", data)
    case_id = (await wait_for(lambda: cases(system, number)))[0][0]
    tasks_url = f"http://127.0.0.1:{system.http_ports['planning']}/cases/{case_id}/tasks"
    tasks = await wait_for(lambda: (t := http_json(tasks_url)) and len(t) == TASKS_ON_ARRIVAL and t)
    notices = f"ema.notify.tasks.{partner.key.unit_id}"

    async def told() -> list:
        found = await stream_messages(partner.nc, "NOTIFY", notices)
        return found if len(found) >= TASKS_ON_ARRIVAL else []

    await wait_for(told)
    planned = [
        json.loads(m.data)
        for m in await stream_messages(partner.nc, "PLANNING", "ema.planning.case.tasks")
        if json.loads(m.data)["subject"] == case_id
    ]
    assert len(planned) == 1
    assert planned[0]["correlationid"] == arrival
    scheduled = planned[0]["data"]["scheduled"]
    assert sorted(d["task_id"] for d in scheduled) == sorted(t["task_id"] for t in tasks)
    # A task's first status travels with it, after it; only tasks with a status beyond
    # "scheduled" have one.
    statuses = planned[0]["data"]["statuses"]
    assert {d["task_id"] for d in statuses} == {
        t["task_id"] for t in tasks if t["status"] != "scheduled"
    }
    retired = {c.subject for c in CONTRACTS if c.retired}
    for stream in ("CASE", "PLANNING", "NOTIFY"):
        sent = {m.subject for m in await stream_messages(partner.nc, stream)}
        assert not sent & retired, (stream, sent & retired)
    await partner.close()


async def _rejected(system: System, partner: Partner, body: bytes, headers, number: str) -> str:  # noqa: ANN001
    before = len(await dead_letters(partner.nc))
    await partner.publish_raw("ema.intake.arrival", body, headers)
    letters = await wait_for(lambda: _after(dead_letters(partner.nc), before), timeout=15)
    assert cases(system, number) == []  # no state changed
    return letters[-1]["Ema-Dlq-Reason"]


async def _after(coro, before: int):  # noqa: ANN001, ANN202
    letters = await coro
    return letters if len(letters) > before else None


async def test_unsigned_arrival_is_dead_lettered(system: System) -> None:
    partner = await centre(system)
    number = duf()
    body, headers = partner.raw_arrival(duf_number=number)
    reason = await _rejected(system, partner, body, {"Nats-Msg-Id": headers["Nats-Msg-Id"]}, number)
    assert reason.startswith("unsigned")


async def test_forged_arrival_is_dead_lettered(system: System) -> None:
    partner = await centre(system)
    number = duf()
    body, headers = partner.raw_arrival(duf_number=number)
    tampered = body.replace(b'"female"', b'"male"')
    reason = await _rejected(system, partner, tampered, headers, number)
    assert reason.startswith("bad signature")


async def test_arrival_signed_by_unregistered_key_is_dead_lettered(system: System) -> None:
    partner = await centre(system)
    impostor = await Partner.register(system, "other-" + uuid.uuid4().hex[:6], UnitKind.CARE_CENTRE)
    number = duf()
    body, _ = partner.raw_arrival(duf_number=number)
    headers = {
        "Nats-Msg-Id": str(uuid.uuid4()),
        "Ema-Key-Id": f"{partner.key.unit_id}/{impostor.key.kid}",
        "Ema-Signature": impostor.key.sign(body)["Ema-Signature"],
    }
    reason = await _rejected(system, partner, body, headers, number)
    assert reason.startswith("unknown signing key")


async def test_arrival_with_missing_field_is_dead_lettered_with_the_field(system: System) -> None:
    partner = await centre(system)
    number = duf()
    body, headers = partner.raw_arrival(duf_number=number, nationality=None)
    reason = await _rejected(system, partner, body, headers, number)
    assert reason == "invalid data: nationality: Field required"


async def test_arrival_with_bad_duf_number_names_the_field(system: System) -> None:
    partner = await centre(system)
    body, headers = partner.raw_arrival(duf_number="12345")
    reason = await _rejected(system, partner, body, headers, "12345")
    assert reason.startswith("invalid data: duf_number: String should match pattern")
    assert "12345" not in reason  # the value itself is never echoed


async def test_arrival_for_another_centre_is_rejected(system: System) -> None:
    partner = await centre(system)
    number = duf()
    body, headers = partner.raw_arrival(duf_number=number, care_centre="centre-somewhere-else")
    reason = await _rejected(system, partner, body, headers, number)
    assert "is not the signing unit" in reason


@pytest.mark.postgres
async def test_share_request_is_withheld_by_default_and_recorded(system: System) -> None:
    partner = await centre(system)
    number = duf()
    await partner.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(**{**ARRIVAL, "duf_number": number, "care_centre": partner.key.unit_id}),
    )
    case_id = (await wait_for(lambda: cases(system, number)))[0][0]
    receipts = await partner.bus.subscribe(f"ema.share.receipt.{partner.key.unit_id}")
    request = await partner.share_request(
        case_id, "kommune-0301", "kopp", "settlement", {"kopp": "Part B: needs and resources"}
    )
    consent_url = f"http://127.0.0.1:{system.http_ports['consent']}/cases/{case_id}/decisions"
    # The broker may not have seen the case yet: wait until it has, then ask.
    await wait_for(
        lambda: query(
            system.database_url("consent"), "select 1 from consent_case where case_id = ?", case_id
        )
    )
    await partner.send("no.ema.share.request.v2", request, case_id=case_id)
    receipt = json.loads((await receipts.next_msg(timeout=15)).data)
    assert receipt["data"]["outcome"] == "withheld"
    assert receipt["data"]["request_id"] == request.request_id
    assert "samtykke" not in receipt["data"]["message_nb"].lower()  # reveals nothing
    decisions = http_json(consent_url)
    assert [d["outcome"] for d in decisions] == ["withhold"]
    assert decisions[0]["decision_id"] == receipt["data"]["decision_id"]
    assert decisions[0]["record_hash"].startswith("sha256:")
    await partner.close()


def test_status_shows_streams_lag_dead_letters_and_health(system: System) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.cli",
            "--data-dir",
            str(system.data_dir),
            "status",
            "--json",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    report = json.loads(out.stdout)
    assert report["nats_url"] == system.nats_url
    assert report["streams"]["INTAKE"]["consumers"]["intake-inbound"]["ack_pending"] == 0
    assert set(report["streams"]["CASE"]["consumers"]) == {
        "planning-cases",
        "consent-cases",
        "intake-cases",
        "municipality-cases",
    }
    reasons = [d["reason"] for d in report["dead_letters"]["recent"]]
    assert report["dead_letters"]["count"] >= 5
    assert any(r.startswith("unsigned") for r in reasons)
    assert {h["status"] for h in report["services"].values()} == {"ok"}
    text = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir), "status"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "dead letters:" in text.stdout and "consumer intake-inbound" in text.stdout


def register(system: System, unit: str, *options: str) -> subprocess.CompletedProcess:
    """`emaflyt unit register` of a care centre named x, with `options`; not checked."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.cli",
            "--data-dir",
            str(system.data_dir),
            "unit",
            "register",
            "--id",
            unit,
            "--name",
            "x",
            "--kind",
            "care_centre",
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_unit_register_refuses_a_bad_public_key(system: System) -> None:
    out = register(system, "centre-bad", "--public-key", "abc")
    assert out.returncode == 2
    assert "--public-key: not base64" in out.stderr


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--kommunenummer", "03x1", "--kommunenummer: four digits"),
        ("--sealing-key", "not base64!", "--sealing-key"),
    ],
)
async def test_unit_register_refuses_bad_settings_and_writes_nothing(
    system: System, option: str, value: str, said: str
) -> None:
    """A good key with a bad setting: refused, and no directory entry is left behind."""
    unit = centre_id()
    out = register(system, unit, "--public-key", UnitKey.generate(unit).public_b64, option, value)
    assert out.returncode != 0 and said in out.stderr, out.stderr
    nc = await system.connect()
    try:
        assert await Directory(await bucket(nc.jetstream()), ttl=0).get(unit) is None
    finally:
        await nc.close()


async def test_no_confidential_value_in_any_log(system: System) -> None:
    """Runs last in this module: nothing above may have logged a name, DUF number or birth
    date, whether the message was handled or dead-lettered."""
    nc = await system.connect()
    await wait_for(lambda: (system.data_dir / "logs").exists())
    logs = "".join(p.read_text() for p in (system.data_dir / "logs").glob("*.log"))
    await nc.close()
    assert logs
    for secret in (ARRIVAL["name"], "Test Testesen", "202600001234", ARRIVAL["birth_date"]):
        assert secret not in logs
    for row in query(system.database_url("intake"), "select duf_number from intake_case"):
        assert row[0] not in logs
    assert base64.b64encode(b"Part B").decode()[:6] not in logs
