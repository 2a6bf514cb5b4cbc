"""Issue 18 over the real system: `emaflyt partner check` passes for a unit of every kind,
connected as itself, and finds what a partner gets wrong; the examples in examples/ run
against the system and what they send and read passes the same checks (deploy.partner_check
.judge), so they cannot rot. Nothing here uses more than the partner's own identity, except
the operator's look at the dead letters and databases afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest

from contracts import messages as m
from contracts.messages import UnitKind
from contracts.registry import CONTRACTS
from deploy import units
from deploy.launcher import System
from deploy.partner_check import FAIL, NO_ANSWER, OK, Check, Finding, Options, failed, judge
from deploy.trust import connect_options
from services.kit.sealing import X25519, SealingKey
from services.kit.signing import UnitKey
from tests.conftest import start_system
from tests.support import Partner, dead_letters, http_json, query, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("partner-kit"))
    yield sys_
    sys_.down()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("partner-files")


@dataclass
class Creds:
    """What a partner holds: its unit id, key, JWT and sealing key, as files."""

    unit: str
    key: Path
    jwt: Path
    sealing: Path | None

    def args(self) -> list[str]:
        out = ["--unit", self.unit, "--key", str(self.key), "--jwt", str(self.jwt)]
        return out + (["--sealing-key", str(self.sealing)] if self.sealing else [])

    def options(self, system: System, **kw: Any) -> Options:
        return Options(
            unit=self.unit,
            key=self.key,
            jwt=self.jwt,
            sealing_key=self.sealing,
            nats_url=system.servers[0],
            **{"wait": 20, **kw},
        )


async def register(
    system: System, folder: Path, unit_id: str, kind: UnitKind, sealing: bool = True
) -> Creds:
    """Register a unit as the operator does, and keep its files as the partner would."""
    key = UnitKey.generate(unit_id)
    key.save(folder / f"{unit_id}.pem")
    seal_key = SealingKey.generate(X25519) if sealing else None
    if seal_key is not None:
        seal_key.save(folder / f"{unit_id}-sealing.json")
    nc = await system.connect()
    try:
        done = await units.register(
            nc,
            system.data_dir,
            system.trust(),
            unit_id,
            unit_id,
            kind,
            key.public_b64,
            seal_key.public_b64 if seal_key else None,
        )
    finally:
        await nc.close()
    assert done.jwt_path is not None
    sealing_path = folder / f"{unit_id}-sealing.json" if sealing else None
    return Creds(unit_id, folder / f"{unit_id}.pem", done.jwt_path, sealing_path)


async def as_partner(system: System, creds: Creds) -> Partner:
    """The test's own hand on a unit (tests.support.Partner), for what no example does."""
    key = UnitKey.load(creds.unit, creds.key)
    own = await nats.connect(
        servers=system.servers,
        **connect_options(creds.jwt.read_text().strip(), key.private, f"_INBOX_{creds.unit}"),
    )
    return Partner(await system.connect(), key, None, own)


async def example(
    system: System, folder: Path, name: str, creds: Creds, *extra: str, wait: float = 20
) -> tuple[int, str, dict[str, Any]]:
    """Run examples/<name>.py as the partner would; returns its exit code, output and
    transcript."""
    transcript = folder / f"{name}-{uuid.uuid4().hex[:6]}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / f"{name}.py"),
        "--nats-url",
        system.servers[0],
        *creds.args(),
        "--wait",
        str(wait),
        "--transcript",
        str(transcript),
        *extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode()
    record = json.loads(transcript.read_text()) if transcript.exists() else {}
    return proc.returncode or 0, text, record


def passed(record: dict[str, Any], output: str = "") -> list[Finding]:
    """The examples' transcript judged by the check's rules: nothing failed or unanswered."""
    findings = judge(record)
    assert failed(findings) == [], "\n".join(
        [output] + [line for f in findings for line in f.lines()]
    )
    return findings


async def no_dead_letters(system: System, ids: list[str]) -> None:
    nc = await system.connect()
    try:
        letters = await dead_letters(nc)
    finally:
        await nc.close()
    refused = [
        (x.get("Ema-Dlq-Original-Msg-Id"), x.get("Ema-Dlq-Reason"))
        for x in letters
        if x.get("Ema-Dlq-Original-Msg-Id") in ids
    ]
    assert refused == []


def delivered(record: dict[str, Any], case_id: str, purpose: str) -> dict[str, Any]:
    entry = next(
        r
        for r in record["received"]
        if r["event"]["type"] == "no.ema.share.delivered.v2"
        and r["event"]["data"]["case_id"] == case_id
        and r["event"]["data"]["purpose"] == purpose
    )
    assert entry["hash_ok"] is True
    return entry["opened"]["data"]


async def test_the_examples_run_and_pass_the_checks(system: System, folder: Path) -> None:
    K = UnitKind
    centre = await register(system, folder, "centre-ex", K.CARE_CENTRE)
    school = await register(system, folder, "school-ex", K.SCHOOL)
    barnevern = await register(system, folder, "barnevern-ex", K.BARNEVERN)
    health = await register(system, folder, "health-ex", K.HEALTH)
    sf = await register(system, folder, "statsforvalter-ex", K.STATSFORVALTER)
    udi = await register(system, folder, "udi-ex", K.UDI)
    kommune = await register(system, folder, "kommune-1103", K.MUNICIPALITY)
    rep = await register(system, folder, "rep-ex", K.REPRESENTATIVE)
    bufetat = await register(system, folder, "bufetat-ex", K.BUFETAT_REGION)
    sent_ids: list[str] = []

    # The care centre: arrival, case and deadlines, tasks, a consent and a release to the school.
    code, out, centre_record = await example(
        system, folder, "care_centre", centre, "--school", school.unit
    )
    assert code == 0, out
    passed(centre_record, out)
    sent_ids += [s["id"] for s in centre_record["sent"]]
    registered = next(
        r["event"]["data"]
        for r in centre_record["received"]
        if r["event"]["type"] == "no.ema.intake.arrival-registered.v1"
    )
    case_id = registered["case_id"]
    duf = centre_record["sent"][0]["data"]["duf_number"]
    assert {s["type"] for s in centre_record["sent"]} >= {
        "no.ema.intake.arrival.v1",
        "no.ema.planning.task-completed.v1",
        "no.ema.planning.kopp-submitted.v1",
        "no.ema.consent.granted.v1",
        "no.ema.share.request.v2",
    }

    # The first example of all, on its own.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "partner_arrival.py"),
        "--nats-url",
        system.servers[0],
        "--unit",
        centre.unit,
        "--key",
        str(centre.key),
        "--jwt",
        str(centre.jwt),
        "--duf",
        "202600009999",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, out.decode()
    assert "case opened" in out.decode()

    # The Statsforvalter reads the request for a representative and appoints one.
    code, out, record = await example(
        system, folder, "statsforvalter", sf, "--case", case_id, "--representative", rep.unit
    )
    assert code == 0, out
    passed(record, out)
    assert case_id in out  # it read the request for this case
    sent_ids += [s["id"] for s in record["sent"]]
    await wait_for(
        lambda: query(
            system.database_url("intake"),
            "select 1 from intake_case where id = ? and representative_unit = ?",
            case_id,
            rep.unit,
        )
    )

    # UDI grants residence.
    code, out, record = await example(system, folder, "udi", udi, "--duf", duf)
    assert code == 0, out
    passed(record, out)
    sent_ids += [s["id"] for s in record["sent"]]
    await wait_for(
        lambda: query(
            system.database_url("intake"),
            "select 1 from intake_case where id = ? and residence = ?",
            case_id,
            "granted",
        )
    )

    # The school opens the centre's release (only the schooling fields) and reports a concern.
    code, out, record = await example(
        system, folder, "school", school, "--case", case_id, "--barnevern", barnevern.unit
    )
    assert code == 0, out
    passed(record, out)
    sent_ids += [s["id"] for s in record["sent"]]
    assert set(delivered(record, case_id, "schooling")) == {
        "school_history",
        "languages",
        "learning_needs",
    }

    # Barnevern opens the concern report, starts an institution stay, completes a task.
    code, out, record = await example(system, folder, "barnevern", barnevern, "--case", case_id)
    assert code == 0, out
    passed(record, out)
    sent_ids += [s["id"] for s in record["sent"]]
    assert set(delivered(record, case_id, "concern_report")) == {
        "concern",
        "observations",
        "age",
        "care_centre",
    }

    # Health: treatment under hpl-25 to itself (opened; a party to a release about the child
    # is linked to the case), then break-the-glass to the emergency service treating it.
    legevakt = await register(system, folder, "legevakt-ex", UnitKind.HEALTH)
    code, out, record = await example(
        system, folder, "health", health, "--case", case_id, "--emergency-to", legevakt.unit
    )
    assert code == 0, out
    passed(record, out)
    sent_ids += [s["id"] for s in record["sent"]]
    assert "family_history" not in out

    # Settlement. The representative consents to the settlement data going to municipalities
    # for this child; a second child has no such consent. Bufetat makes both ready and offers
    # them to Stavanger while the municipality's example runs.
    representative, bufetat_hand, centre_hand, udi_hand = (
        await as_partner(system, rep),
        await as_partner(system, bufetat),
        await as_partner(system, centre),
        await as_partner(system, udi),
    )
    try:
        now = datetime.now(UTC)
        await wait_for(
            lambda: query(
                system.database_url("consent"),
                "select 1 from consent_case where case_id = ? and representative_unit = ?",
                case_id,
                rep.unit,
            )
        )
        await representative.send(
            "no.ema.consent.granted.v1",
            m.ConsentGrantedV1(
                consent_id=f"settle-{uuid.uuid4().hex[:8]}",
                case_id=case_id,
                grantor=m.Grantor(role=m.GrantorRole.REPRESENTATIVE, capacity="representant"),
                # The offer carries KOPP content: written consent, from the Bufetat region
                # whose settlement profile it is (bvl § 5A-6, docs/decisions/0011).
                form=m.ConsentForm(kind="written", document_sha256="c" * 64),
                scope=[
                    m.Flow(
                        categories=[m.DataCategory.KOPP],
                        source_sectors=[UnitKind.BUFETAT_REGION],
                        recipient_sectors=[UnitKind.MUNICIPALITY],
                        purposes=["settlement"],
                    )
                ],
                granted_at=now,
                valid_from=now - timedelta(minutes=1),
                valid_to=now + timedelta(days=90),
                child_heard=m.ChildHeard(status="heard"),
            ),
            case_id=case_id,
        )
        await wait_for(
            lambda: query(
                system.database_url("consent"),
                "select 1 from consent_consent where case_id = ?",
                case_id,
            )
        )
        duf2 = "2026" + uuid.uuid4().int.__str__()[:8]
        await centre_hand.send(
            "no.ema.intake.arrival.v1",
            m.ArrivalV1(
                duf_number=duf2,
                name="Andre Testesen",
                birth_date=now.date().replace(year=now.year - 12),
                birth_date_estimated=True,
                sex="female",
                nationality="ERI",
                languages=["ti"],
                care_centre=centre.unit,
                arrived_at=now,
            ),
        )
        case2 = (
            await wait_for(
                lambda: query(
                    system.database_url("intake"),
                    "select id from intake_case where duf_number = ?",
                    duf2,
                )
            )
        )[0][0]
        await udi_hand.send(
            "no.ema.intake.residence-decided.v1",
            m.ResidenceDecisionV1(
                duf_number=duf2, outcome="granted", decided_on=now.date(), udi_reference="UDI-2"
            ),
        )
        for child in (case_id, case2):
            await bufetat_hand.send(
                "no.ema.municipality.settlement-profile.v1",
                m.SettlementProfileV1(
                    case_id=child,
                    bufetat_region="vest",
                    recommended_measure="bofellesskap",
                    birth_date=now.date().replace(year=now.year - 12),
                    languages=["prs"],
                    care_needs=["language_support"],
                    family_municipalities=["1103"],
                    network_municipalities=[],
                    siblings=[],
                    kopp_on=now.date(),
                ),
                case_id=child,
            )
        url = f"http://127.0.0.1:{system.http_ports['municipality']}"
        await wait_for(
            lambda: (
                {c["case_id"] for c in http_json(f"{url}/waiting?region=vest")} >= {case_id, case2}
            ),
            timeout=30,
        )

        municipality = asyncio.create_task(
            example(
                system,
                folder,
                "municipality",
                kommune,
                "--accept",
                "--refund-nok",
                "45000.00",
                wait=45,
            )
        )
        await wait_for(
            lambda: any(c["kommunenummer"] == "1103" for c in http_json(f"{url}/capacity")),
            timeout=30,
        )
        for child in (case2, case_id):
            await bufetat_hand.send(
                "no.ema.municipality.offer-requested.v1",
                m.OfferRequestedV1(
                    offer_id=f"offer-{uuid.uuid4().hex[:10]}",
                    case_id=child,
                    kommunenummer="1103",
                    measure="bofellesskap",
                ),
                case_id=child,
            )
        code, out, record = await municipality
    finally:
        for hand in (representative, bufetat_hand, centre_hand, udi_hand):
            await hand.close()
    assert code == 0, out
    findings = passed(record, out)
    sent_ids += [s["id"] for s in record["sent"]]
    assert "no data came with it" in out  # the second child: no consent, no data, no answer
    answered = [s for s in record["sent"] if s["type"] == "no.ema.municipality.offer-answered.v1"]
    assert len(answered) == 1 and answered[0]["data"]["answer"] == "accept"
    assert set(delivered(record, case_id, "settlement")) == {
        "age",
        "languages",
        "care_needs",
        "family_ties",
        "network",
        "siblings",
        "recommended_measure",
    }
    assert any(
        f.what == "no.ema.municipality.refund-claimed.v1" and f.status == OK for f in findings
    )
    await no_dead_letters(system, sent_ids)


async def test_the_check_passes_for_a_unit_of_every_kind(system: System, folder: Path) -> None:
    K = UnitKind
    centre = await register(system, folder, "centre-kit", K.CARE_CENTRE)
    check = Check(centre.options(system))
    results: dict[UnitKind, list[Finding]] = {K.CARE_CENTRE: await check.run()}
    case_id = next(
        r["event"]["data"]["case_id"]
        for r in check.received
        if r["event"]["type"] == "no.ema.intake.arrival-registered.v1"
    )
    duf = next(
        s["data"]["duf_number"] for s in check.sent if s["type"] == "no.ema.intake.arrival.v1"
    )
    sent_ids = [s["id"] for s in check.sent]
    rep = await register(system, folder, "rep-kit", K.REPRESENTATIVE)
    plan = [
        (K.STATSFORVALTER, "statsforvalter-kit", {"representative": rep.unit}),
        (K.UDI, "udi-kit", {"duf": duf}),
        (K.SCHOOL, "school-kit", {}),
        (K.HEALTH, "health-kit", {}),
        (K.BARNEVERN, "barnevern-kit", {}),
        (K.IMDI, "imdi-kit", {}),
        (K.MUNICIPALITY, "kommune-1106", {}),
        (K.BUFETAT_REGION, "bufetat-kit", {}),
        (K.REPRESENTATIVE, rep.unit, {}),
        (K.WITNESS, "witness-kit", {}),
    ]
    for kind, unit_id, extra in plan:
        creds = rep if unit_id == rep.unit else await register(system, folder, unit_id, kind)
        if kind is K.REPRESENTATIVE:  # the appointment has reached the consent broker
            await wait_for(
                lambda: query(
                    system.database_url("consent"),
                    "select 1 from consent_case where case_id = ? and representative_unit = ?",
                    case_id,
                    rep.unit,
                )
            )
        check = Check(creds.options(system, case=case_id, **extra))
        results[kind] = await check.run()
        sent_ids += [s["id"] for s in check.sent]
    assert set(results) == set(UnitKind) - {K.SERVICE}
    for kind, findings in results.items():
        text = "\n".join(line for f in findings for line in f.lines())
        assert failed(findings) == [], f"{kind.value}:\n{text}"
        # One of each message the kind may send: sent and judged, or skipped with the reason.
        seen = {f.what for f in findings}
        for contract in CONTRACTS:
            if kind in contract.senders and contract.type != "no.ema.share.request.v1":
                assert contract.type in seen, f"{kind.value}: {contract.type} not covered\n{text}"
        if kind is not UnitKind.WITNESS:  # a witness only reads: its login is what is checked
            assert any(f.status == OK and f.what.startswith("no.ema.") for f in findings), text
    await no_dead_letters(system, sent_ids)


async def test_the_check_names_what_a_partner_got_wrong(system: System, folder: Path) -> None:
    K = UnitKind
    a = await register(system, folder, "school-wrong-a", K.SCHOOL)
    b = await register(system, folder, "school-wrong-b", K.SCHOOL)

    # Another key's JWT: refused before anything is sent, and said so.
    mixed = Creds(a.unit, a.key, b.jwt, a.sealing)
    findings = await Check(mixed.options(system)).run()
    assert [f.status for f in findings] == [FAIL]
    assert "belongs to another key" in findings[0].text

    # A sealing key that is not the registered one.
    other = folder / "other-sealing.json"
    SealingKey.generate(X25519).save(other)
    findings = await Check(Creds(a.unit, a.key, a.jwt, other).options(system)).run()
    assert any(f.status == FAIL and f.what == "sealing-key" for f in findings)

    # A message that is refused: no answer, what was sent, and where to ask.
    findings = await Check(a.options(system, case="no-such-case", wait=4)).run()
    unanswered = [f for f in findings if f.status == NO_ANSWER]
    assert unanswered and unanswered[0].what == "no.ema.share.request.v2"
    lines = unanswered[0].lines()
    assert "ask the operator for the dead-letter reason" in lines[0]
    assert lines[1].lstrip().startswith("sent: ") and "no-such-case" in lines[1]

    # A municipality whose unit id is not kommune-<kommunenummer>.
    odd = await register(system, folder, "oslo-kommune", K.MUNICIPALITY)
    findings = await Check(odd.options(system)).run()
    assert any(f.status == FAIL and f.what == "unit id" for f in findings)

    # A revoked unit is refused at login.
    nc = await system.connect()
    try:
        await units.revoke(nc, system.servers, system.trust(), b.unit)
    finally:
        await nc.close()
    findings = await Check(b.options(system)).run()
    assert findings[-1].status == FAIL and findings[-1].what == "login"
    assert "refused your login" in findings[-1].text

    # The same from the command line, in the partner's terms, with exit code 1.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.cli",
        "partner",
        "check",
        "--nats-url",
        system.servers[0],
        "--unit",
        a.unit,
        "--key",
        str(a.key),
        "--jwt",
        str(b.jwt),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    assert "belongs to another key" in out.decode() and "emaflyt unit credentials" in out.decode()
