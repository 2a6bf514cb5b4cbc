"""Break-the-glass that can be answered for, over the real system: only from a unit linked to
the case, only to a unit that can act in an emergency, within a rate per unit; the
justification kept sealed with its hash in the log; the representative told through notify;
an overdue review escalated to the privacy officer; the detail page shows it all."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from contracts import messages as m
from contracts.messages import UnitKind
from deploy.launcher import System
from tests.conftest import start_system
from tests.e2e.test_consent import cli, consent, decision, flow, open_case, receipt, share, uid
from tests.support import Partner, query, wait_for

PASSWORD = "correct horse battery staple"
WHY = "bevisstløs etter fall, trenger allergier og medisinliste"
EMERGENCY = {"allergies": "penicillin", "medication": "ingen", "therapy_notes": "HEMMELIG"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(
        tmp_path_factory.mktemp("glass"), EMA_GLASS_LIMIT="2", EMA_GLASS_CHECK_INTERVAL="0.5"
    )
    out = cli(
        sys_,
        "audit",
        "user",
        "add",
        "--username",
        "ombud",
        "--role",
        "privacy_officer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert out.returncode == 0, out.stderr
    yield sys_
    sys_.down()


async def case_with_representative(system: System) -> tuple[Partner, str, str]:
    centre, case_id = await open_case(system)
    statsforvalter = await Partner.register(system, uid("sf"), UnitKind.STATSFORVALTER)
    representative = uid("rep")
    await statsforvalter.send(
        "no.ema.intake.representative-appointed.v1",
        m.RepresentativeAppointedV1(
            case_id=case_id,
            representative_unit=representative,
            name="Rita Representant",
            appointed_on=datetime.now(UTC).date(),
        ),
    )
    await wait_for(
        lambda: query(
            system.database_url("consent"),
            "select 1 from consent_case where case_id = ? and representative_unit = ?",
            case_id,
            representative,
        )
    )
    await statsforvalter.nc.close()
    return centre, case_id, representative


async def glass(sender: Partner, case_id: str, recipient: str, category: str = "health") -> dict:
    receipts = await sender.nc.subscribe(f"ema.share.receipt.{sender.key.unit_id}")
    request = await share(
        sender,
        case_id,
        recipient,
        category,
        "emergency",
        EMERGENCY,
        break_the_glass={"justification": WHY},
    )
    answer = await receipt(sender, receipts, request.request_id)
    await receipts.unsubscribe()
    return answer


async def page(system: System, path: str) -> tuple[int, str]:
    """A page as the signed-in privacy officer sees it."""
    base = f"http://127.0.0.1:{system.http_ports['consent']}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/audit/login") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
        form = {"csrf": token, "username": "ombud", "password": PASSWORD}
        async with http.post(f"{base}/audit/login", data=form) as resp:
            assert "/audit/login" not in str(resp.url)
        async with http.get(base + path) as resp:
            return resp.status, await resp.text()


def notifications(system: System, unit: str) -> list[tuple]:
    return query(
        system.database_url("notify"),
        "select role, event_type, text_nb from notify_notification where unit = ?",
        unit,
    )


async def test_an_unrelated_centre_cannot_break_the_glass_over_the_childs_refusal(
    system: System,
) -> None:
    centre, case_id, _ = await case_with_representative(system)
    refusal = consent(
        case_id,
        [],
        refusals=[flow(["health"], ["care_centre"], ["school"], ["emergency", "schooling"])],
    )
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    await centre.send("no.ema.consent.granted.v1", refusal, case_id=case_id)
    await acks.next_msg(timeout=15)
    stranger = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL, sealing=True)
    health = await Partner.register(system, uid("legevakt"), UnitKind.HEALTH, sealing=True)
    answer = await glass(stranger, case_id, school.key.unit_id)
    assert answer["outcome"] == "withheld"
    reasons = decision(system, answer["decision_id"])["reasons"]
    assert any("a school unit cannot act in an emergency" in r for r in reasons), reasons
    answer = await glass(stranger, case_id, health.key.unit_id)
    assert answer["outcome"] == "withheld"
    reasons = decision(system, answer["decision_id"])["reasons"]
    assert any("the source unit is not linked to the case" in r for r in reasons), reasons
    # Even the case's own centre cannot send health data to a school under break-the-glass.
    answer = await glass(centre, case_id, school.key.unit_id)
    assert answer["outcome"] == "withheld"
    for p in (stranger, school, health, centre):
        await p.nc.close()


async def test_a_linked_unit_breaks_the_glass_and_is_answered_for(system: System) -> None:
    centre, case_id, representative = await case_with_representative(system)
    health = await Partner.register(system, uid("legevakt"), UnitKind.HEALTH, sealing=True)
    answer = await glass(centre, case_id, health.key.unit_id)
    assert answer["outcome"] == "released"
    decision_id = answer["decision_id"]
    db = system.database_url("consent")
    # The justification is kept sealed; the log record holds its hash, never the text.
    sealed, digest = query(
        db,
        "select justification, justification_hash from consent_glass where decision_id = ?",
        decision_id,
    )[0]
    assert "bevisstløs" not in sealed and digest.startswith("sha256:")
    body = json.loads(query(db, "select body from consent_log where ref_id = ?", decision_id)[0][0])
    assert body["justification_hash"] == digest and "bevisstløs" not in json.dumps(body)
    # The representative is told through notify (the obligation the decision names).
    told = await wait_for(lambda: notifications(system, representative))
    assert told[0][:2] == ("representative", "glass.released")
    assert centre.key.unit_id in told[0][2] and "allergies" in told[0][2]
    assert "penicillin" not in told[0][2] and "bevisstløs" not in told[0][2]
    # The privacy officer's detail page works and shows the justification.
    status, text = await page(system, f"/audit/decisions/{decision_id}")
    assert status == 200, text[-2000:]
    assert WHY in text and "notify_representative" in text and "review (72 h)" in text
    status, text = await page(system, "/audit/glass")
    assert status == 200 and decision_id in text
    # Rate: two releases per unit in 24 hours here; the third is refused.
    assert (await glass(centre, case_id, health.key.unit_id))["outcome"] == "released"
    third = await glass(centre, case_id, health.key.unit_id)
    assert third["outcome"] == "withheld"
    assert any(
        "emergency releases in the last 24 hours (limit 2)" in r
        for r in decision(system, third["decision_id"])["reasons"]
    )
    # Not reviewed in time (the deadline moved into the past here): escalated, once.
    with sqlite3.connect(Path(system.data_dir) / "consent.db") as conn:
        conn.execute(
            "update consent_glass set review_due = ? where decision_id = ?",
            ((datetime.now(UTC) - timedelta(minutes=1)).isoformat(sep=" "), decision_id),
        )
    escalated = await wait_for(lambda: notifications(system, "privacy-office"))
    assert [(r, e) for r, e, _ in escalated] == [("privacy_officer", "glass.overdue")]
    assert query(db, "select escalated_at from consent_glass where decision_id = ?", decision_id)[
        0
    ][0]
    status, text = await page(system, f"/audit/decisions/{decision_id}")
    assert status == 200 and "Sendt til personvernombudet" in text
    out = cli(system, "consent", "verify", "--no-witnesses")
    assert out.returncode == 0, out.stdout
    await centre.nc.close()
    await health.nc.close()
