"""Issue 14 over the real bus: the law as the seeds state it. One test per item, named after
it (docs/decisions/0011). Dates are relative to today, so the tests hold on any day."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts import messages as m
from deploy.launcher import System
from services.municipality.domain import age_on
from services.planning.calendar import move_off_non_working_day
from tests.e2e.test_consent import share as share_request
from tests.e2e.test_lifecycle import TODAY, World, at_noon, due_of, duf, world
from tests.e2e.test_settlement import BIRTH, Settlement
from tests.support import (
    ARRIVAL,
    Partner,
    dead_letters,
    http_json,
    query,
    stream_messages,
    wait_for,
)

K = m.UnitKind


def consent(
    case_id: str,
    categories: list[str],
    sources: list[str],
    recipients: list[str],
    purposes: list[str],
    *,
    role: str = "representative",
    form: str = "written",
    refusals: list[dict] | None = None,
    granted: datetime | None = None,
) -> m.ConsentGrantedV1:
    now = datetime.now(UTC)
    granted = granted or now - timedelta(days=1)
    scope = (
        [
            {
                "categories": categories,
                "source_sectors": sources,
                "recipient_sectors": recipients,
                "purposes": purposes,
            }
        ]
        if categories
        else []
    )
    return m.ConsentGrantedV1(
        consent_id="consent-" + uuid.uuid4().hex[:8],
        case_id=case_id,
        grantor={
            "role": role,
            "capacity": "representant oppnevnt av Statsforvalteren"
            if role != "young_person"
            else "den unge selv",
        },
        form={"kind": "written", "document_sha256": hashlib.sha256(b"signed").hexdigest()}
        if form == "written"
        else {"kind": "oral", "witness_unit": "centre-x"},
        scope=scope,
        refusals=refusals or [],
        granted_at=granted,
        valid_from=granted,
        valid_to=now + timedelta(days=365),
        child_heard={"status": "heard"},
    )


async def register_consent(system: System, sender: Partner, given: m.ConsentGrantedV1) -> None:
    await sender.send("no.ema.consent.granted.v1", given, case_id=given.case_id)
    await wait_for(
        lambda: query(
            system.database_url("consent"),
            "select 1 from consent_consent where consent_id = ?",
            given.consent_id,
        ),
        timeout=20,
    )


def decision_for(system: System, request_id: str) -> dict | None:
    rows = query(
        system.database_url("consent"),
        "select outcome, legal_basis, fields, reasons from consent_decision where request_id = ?",
        request_id,
    )
    if not rows:
        return None
    outcome, basis, fields, reasons = rows[0]
    return {
        "outcome": outcome,
        "legal_basis": basis,
        "fields": json.loads(fields),
        "reasons": json.loads(reasons),
    }


async def decided(system: System, request_id: str) -> dict:
    return await wait_for(lambda: decision_for(system, request_id), timeout=20)


async def delivered(recipient: Partner, request_id: str) -> dict:
    """The released content a recipient opens, read from the SHARE stream."""
    subject = f"ema.share.delivered.v2.{recipient.key.unit_id}"

    async def find() -> dict | None:
        for msg in await stream_messages(recipient.nc, "SHARE", subject):
            data = json.loads(msg.data)["data"]
            if data["request_id"] == request_id:
                return recipient.open_delivery(data)["data"]
        return None

    return await wait_for(find, timeout=20)


async def share(
    sender: Partner,
    case_id: str,
    recipient: str,
    category: str,
    purpose: str,
    payload: dict,
    **kw: Any,
) -> str:
    """Send a share request (tests/e2e/test_consent.py); its request id."""
    request = await share_request(sender, case_id, recipient, category, purpose, payload, **kw)
    return request.request_id


async def offered_child(world: World, region: str, k: str, **profile: Any) -> tuple:
    """A child ready for settlement in `region`, a municipality `k` with a place and a sealing
    key (so it can open what the broker releases), and the Settlement helper."""
    s = Settlement(world, region)
    kommune = await Partner.register(world.system, f"kommune-{k}", K.MUNICIPALITY, sealing=True)
    await s.capacity(k, 3, competences=["trauma"])
    case_id = await s.ready_child(**profile)
    return s, kommune, case_id


# -- item 1: § 5A-6 bypassed twice -------------------------------------------------------------


async def test_item_1a_settlement_offer_is_kopp_and_needs_written_consent(world: World) -> None:
    """The offer carries KOPP content (care needs, measure): category kopp, so the oral consent
    for 'settlement' data that used to release it releases nothing; a written one does."""
    s, kommune, case_id = await offered_child(world, "sør", "4204", care_needs=["trauma"])
    oral = consent(
        case_id,
        ["settlement", "identity"],
        ["bufetat_region", "service"],
        ["municipality"],
        ["settlement"],
        form="oral",
    )
    await register_consent(world.system, world.centre, oral)
    offer_id = await s.offer(case_id, "4204")
    request_id = f"settlement-{offer_id}"
    request = await wait_for(lambda: _share_request(world, request_id))
    assert (request["data_category"], request["purpose"]) == ("kopp", "settlement")
    assert request["source_unit"] == world.bufetat.key.unit_id  # whose profile it is
    withheld = await decided(world.system, request_id)
    assert withheld["outcome"] == "withhold" and withheld["fields"] == []

    written = consent(case_id, ["kopp"], ["bufetat_region"], ["municipality"], ["settlement"])
    await register_consent(world.system, world.centre, written)
    await kommune.send(
        "no.ema.municipality.offer-answered.v1",
        m.OfferAnsweredV1(offer_id=offer_id, answer="decline", reason="Vi venter på samtykket"),
    )
    await wait_for(lambda: s.offer_status(offer_id) == "declined")
    second = await _offer_again(world, s, case_id, "4204")
    released = await decided(world.system, f"settlement-{second}")
    assert released["outcome"] == "allow"
    assert released["legal_basis"] == f"consent:{written.consent_id}"
    assert "trauma" in (await delivered(kommune, f"settlement-{second}"))["care_needs"]
    await kommune.close()


async def test_item_1b_exit_handover_needs_consent_and_never_overrides_a_refusal(
    world: World,
) -> None:
    """Seed 002 passes exit information on only 'der det foreligger samtykke' (L997-999): the
    claimed 'exit-handover' statute is gone, a refusal holds, a written consent releases."""
    case_id, _ = await world.arrive(TODAY - timedelta(days=40))
    barnevern = await Partner.register(
        world.system, "barnevern-" + uuid.uuid4().hex[:6], K.BARNEVERN, sealing=True
    )
    bv = barnevern.key.unit_id
    content = {
        "care_needs": ["trauma"],
        "family_ties": "onkel i Bergen",
        "measures": ["MAP"],
        "recommended_measure": "fosterhjem",
        "therapy_notes": "HEMMELIG",
    }
    for category in ("barnevern", "kopp"):
        rid = await share(
            world.centre, case_id, bv, category, "handover", content, claimed_basis="exit-handover"
        )
        d = await decided(world.system, rid)
        assert d["outcome"] == "withhold", category
        assert "claimed basis exit-handover does not apply to this flow" in d["reasons"]

    refusal = consent(
        case_id,
        [],
        [],
        [],
        [],
        refusals=[
            {
                "categories": ["kopp", "barnevern"],
                "source_sectors": [],
                "recipient_sectors": ["barnevern"],
                "purposes": ["handover"],
            }
        ],
    )
    written = consent(case_id, ["kopp"], ["care_centre"], ["barnevern"], ["handover"])
    await register_consent(world.system, world.centre, written)
    rid = await share(world.centre, case_id, bv, "kopp", "handover", content)
    allowed = await decided(world.system, rid)
    assert allowed["outcome"] == "allow" and "therapy_notes" not in allowed["fields"]
    opened = await delivered(barnevern, rid)
    assert opened["care_needs"] == ["trauma"] and "therapy_notes" not in opened

    await register_consent(world.system, world.centre, refusal)
    rid = await share(
        world.centre, case_id, bv, "kopp", "handover", content, claimed_basis="exit-handover"
    )
    refused = await decided(world.system, rid)
    assert refused["outcome"] == "withhold"
    assert any("a refusal beats any consent (K6)" in r for r in refused["reasons"])
    await barnevern.close()


async def _share_request(world: World, request_id: str) -> dict | None:
    for msg in await stream_messages(world.centre.nc, "SHARE", "ema.share.request.v2"):
        data = json.loads(msg.data)["data"]
        if data["request_id"] == request_id:
            return data
    return None


async def _offer_again(world: World, s: Settlement, case_id: str, k: str) -> str:
    offer_id = "offer-" + uuid.uuid4().hex[:12]
    await world.bufetat.send(
        "no.ema.municipality.offer-requested.v1",
        m.OfferRequestedV1(
            offer_id=offer_id, case_id=case_id, kommunenummer=k, measure="bofellesskap"
        ),
    )
    await wait_for(lambda: s.offer_status(offer_id) == "pending")
    return offer_id


# -- item 2: consent by age --------------------------------------------------------------------


async def open_case(world: World, birth: date, *, estimated: bool, arrived: date) -> str:
    """A case for a child born on `birth`; a child 15 or older at arrival comes with a younger
    sibling, as care centres take only those."""
    siblings = []
    if (arrived - birth).days >= 15 * 365:
        _, young = await world.arrive(arrived, birth_date=date(arrived.year - 10, 3, 1))
        siblings = [{"duf_number": young}]
    case_id, _ = await world.arrive(
        arrived, birth_date=birth, birth_date_estimated=estimated, siblings=siblings
    )
    await wait_for(
        lambda: query(
            world.system.database_url("consent"),
            "select 1 from consent_case where case_id = ?",
            case_id,
        )
    )
    return case_id


def years_ago(years: int, months: int = 0) -> date:
    total = TODAY.year * 12 + TODAY.month - 1 - years * 12 - months
    return date(total // 12, total % 12 + 1, 1)


async def test_item_2_consent_by_age(world: World) -> None:
    """Seed 004 L6552-6560: parents (for an EMA: the representative) consent 'inntil barnet er
    16 år'; then the young person, for school as for health. The representative's role ends at
    18. An estimated age near 16 needs both signatures."""
    refugee_service = await Partner.register(
        world.system, "flyktning-" + uuid.uuid4().hex[:6], K.MUNICIPALITY
    )
    school = await Partner.register(
        world.system, "school-" + uuid.uuid4().hex[:6], K.SCHOOL, sealing=True
    )
    mapping = {"school_history": "4 år skole i Kabul", "languages": ["prs"]}
    flow = (["school"], ["municipality"], ["school"], ["schooling"])

    # 16 and a half, birth date known: the young person's own written consent counts.
    sixteen = await open_case(
        world, years_ago(16, 6), estimated=False, arrived=TODAY - timedelta(days=20)
    )
    await register_consent(world.system, world.centre, consent(sixteen, *flow, role="young_person"))
    rid = await share(refugee_service, sixteen, school.key.unit_id, "school", "schooling", mapping)
    assert (await decided(world.system, rid))["outcome"] == "allow"
    assert (await delivered(school, rid))["school_history"] == "4 år skole i Kabul"

    # 19 (arrived at 17 two years ago): the representative's consent no longer counts.
    kommune = await Partner.register(world.system, "kommune-1103", K.MUNICIPALITY)
    nineteen = await open_case(
        world, years_ago(19, 3), estimated=False, arrived=TODAY - timedelta(days=2 * 365)
    )
    old = consent(
        nineteen,
        ["kopp"],
        ["care_centre"],
        ["municipality"],
        ["settlement"],
        granted=datetime.now(UTC) - timedelta(days=600),
    )
    await register_consent(world.system, world.centre, old)
    rid = await share(
        world.centre, nineteen, "kommune-1103", "kopp", "settlement", {"care_needs": ["trauma"]}
    )
    d = await decided(world.system, rid)
    assert d["outcome"] == "withhold"
    assert (
        f"consent {old.consent_id}: a representative's or guardian's role ends at 18 (K3)"
        in (d["reasons"])
    )

    # 16 and 3 months by an estimated birth date: neither side decides alone.
    near = await open_case(
        world, years_ago(16, 3), estimated=True, arrived=TODAY - timedelta(days=20)
    )
    await register_consent(world.system, world.centre, consent(near, *flow, role="young_person"))
    rid = await share(refugee_service, near, school.key.unit_id, "school", "schooling", mapping)
    d = await decided(world.system, rid)
    assert d["outcome"] == "withhold"
    assert any("the age cannot decide alone" in r for r in d["reasons"])
    await register_consent(world.system, world.centre, consent(near, *flow))
    rid = await share(refugee_service, near, school.key.unit_id, "school", "schooling", mapping)
    assert (await decided(world.system, rid))["outcome"] == "allow"
    for p in (refugee_service, school, kommune):
        await p.close()


# -- item 3: the offer carries what the municipality most needs ------------------------------------


async def test_item_3_offer_carries_family_ties_network_and_siblings(world: World) -> None:
    s, kommune, case_id = await offered_child(
        world,
        "midt-norge",
        "5001",
        family_municipalities=["5001", "5006"],
        network_municipalities=["5001"],
        care_needs=["trauma"],
    )
    written = consent(case_id, ["kopp"], ["bufetat_region"], ["municipality"], ["settlement"])
    await register_consent(world.system, world.centre, written)
    offer_id = await s.offer(case_id, "5001")
    data = await delivered(kommune, f"settlement-{offer_id}")
    assert data["family_ties"] == {"here": True, "municipalities": ["5001", "5006"]}
    assert data["network"] == {"here": True, "municipalities": ["5001"]}
    assert data["siblings"] == {"settled_together": 0, "case_ids": []}
    assert data["care_needs"] == ["trauma"] and data["recommended_measure"] == "bofellesskap"
    assert data["age"] == age_on(BIRTH, TODAY)
    assert "birth_date" not in data and "case_id" not in data
    await kommune.close()


# -- item 4: accepting is not moving in -----------------------------------------------------------


async def test_item_4_accept_now_move_in_three_weeks_later(world: World) -> None:
    s = Settlement(world, "nord")
    kommune = await s.capacity("1804", 2)  # Bodø
    case_id = await s.ready_child()
    offer_id = await s.offer(case_id, "1804")
    move_in = TODAY + timedelta(days=21)
    await kommune.send(
        "no.ema.municipality.offer-answered.v1",
        m.OfferAnsweredV1(
            offer_id=offer_id, answer="accept", settle_on=move_in, measure="bofellesskap"
        ),
    )
    outcome = await s.outcome(kommune, offer_id)
    assert outcome["outcome"] == "settled" and move_in.isoformat() in outcome["message_en"]
    timeline = await wait_for(
        lambda: (
            (t := _timeline(world, case_id))
            and any(e["kind"] == "settlement_planned" for e in t["happened"])
            and t
        )
    )
    planned = next(e for e in timeline["happened"] if e["kind"] == "settlement_planned")
    assert planned["on"] == move_in.isoformat()
    # Nothing dead-lettered, the centre stay still open, the settlement task not done.
    assert timeline["case"]["closed"] is None
    assert world.tasks(case_id)["settlement"]["status"] not in ("done", "cancelled")
    assert not [
        x
        for x in await stream_messages(world.centre.nc, "CASE", "ema.case.settled")
        if json.loads(x.data)["data"]["case_id"] == case_id
    ]
    assert not [d for d in await dead_letters(world.centre.nc) if case_id in json.dumps(d)]
    (placement,) = [
        c for c in http_json(s.url("/municipalities/1804/cases")) if c["case_id"] == case_id
    ]
    assert (placement["status"], placement["moved_in"]) == ("accepted", False)
    assert case_id not in s.waiting()
    await kommune.close()


# -- item 5: a UDI refusal does not close the case -----------------------------------------------


async def decide(
    world: World, number: str, authority: str, outcome: str, final: bool, on: date = TODAY
) -> None:
    await world.udi.send(
        "no.ema.intake.residence-decided.v2",
        m.ResidenceDecisionV2(
            duf_number=number,
            authority=authority,
            outcome=outcome,
            final=final,
            decided_on=on,
            reference=f"{authority.upper()}-{uuid.uuid4().hex[:6]}",
        ),
    )


async def test_item_5_refusal_appeal_une_return_and_departure(world: World) -> None:
    """'I UDI – og ved klage i UNE' (seed 000 L57-58); the place lasts until the child is
    settled 'eller forlater landet' (L104-105)."""
    case_id, number = await world.arrive(TODAY - timedelta(days=12))
    rep = await world.appoint_representative(case_id)
    representative = await Partner.register(world.system, rep, K.REPRESENTATIVE)
    await decide(world, number, "udi", "refused", False)
    appeal = await wait_for(lambda: world.tasks(case_id).get("appeal"))
    assert (appeal["responsible_unit"], appeal["strength"]) == (rep, "kan")
    tasks = world.tasks(case_id)
    for open_task in ("follow_up_decision", "school_start", "kopp_proposal"):
        assert tasks[open_task]["status"] not in ("cancelled", "done"), open_task
    assert _timeline(world, case_id)["case"]["closed"] is None

    await representative.send(
        "no.ema.intake.appeal-lodged.v1", m.AppealLodgedV1(case_id=case_id, lodged_on=TODAY)
    )
    await world.task_is(case_id, "appeal", "done")
    await decide(world, number, "une", "refused", True)
    prep = await wait_for(lambda: world.tasks(case_id).get("return_preparation"))
    assert prep["responsible_unit"] == world.centre.key.unit_id
    assert _timeline(world, case_id)["case"]["closed"] is None  # still in care
    assert world.tasks(case_id)["school_start"]["status"] != "cancelled"
    case = http_json(world.url("intake", f"/cases/{case_id}"))
    assert case["closed"] is None and [
        h["detail"]["authority"] for h in case["history"] if h["kind"] == "residence"
    ] == ["udi", "une"]

    await world.centre.send(
        "no.ema.intake.departed.v1",
        m.DepartedV1(case_id=case_id, departed_on=TODAY, how="voluntary_return"),
    )
    await wait_for(lambda: _timeline(world, case_id)["case"]["closed"] == "returned")
    await representative.close()


async def test_item_5_une_grants_on_appeal_and_a_limited_permit_settles_nobody(
    world: World,
) -> None:
    case_id, number = await world.arrive(TODAY - timedelta(days=30))
    rep = await world.appoint_representative(case_id)
    representative = await Partner.register(world.system, rep, K.REPRESENTATIVE)
    await decide(world, number, "udi", "refused", False, TODAY - timedelta(days=5))
    await wait_for(lambda: world.tasks(case_id).get("appeal"))
    await representative.send(
        "no.ema.intake.appeal-lodged.v1", m.AppealLodgedV1(case_id=case_id, lodged_on=TODAY)
    )
    await world.task_is(case_id, "appeal", "done")
    await decide(world, number, "une", "granted", True)
    settlement = await wait_for(lambda: world.tasks(case_id).get("settlement"))
    assert settlement["due"] == due_of(TODAY, "settlement").isoformat()
    assert "new_kopp" in world.tasks(case_id)
    await representative.close()

    limited, number = await world.arrive(TODAY - timedelta(days=30))
    await decide(world, number, "udi", "limited", False)
    await wait_for(
        lambda: any(e["kind"] == "residence_limited" for e in _timeline(world, limited)["happened"])
    )
    assert "settlement" not in world.tasks(limited)
    assert _timeline(world, limited)["case"]["closed"] is None


def _timeline(world: World, case_id: str) -> dict:
    return http_json(world.url("planning", f"/cases/{case_id}/timeline"))


async def arrive_at(world: World, centre: Partner, arrived: date, **overrides: Any) -> tuple:
    """An arrival reported by `centre` itself (World.arrive signs as the world's centre)."""
    number = duf()
    data = m.ArrivalV1(
        **{
            **ARRIVAL,
            "duf_number": number,
            "care_centre": centre.key.unit_id,
            "arrived_at": at_noon(arrived),
            **overrides,
        }
    )
    await centre.send("no.ema.intake.arrival.v1", data)
    rows = await wait_for(
        lambda: query(
            world.system.database_url("intake"),
            "select id from intake_case where duf_number = ?",
            number,
        )
    )
    await wait_for(lambda: world.tasks(rows[0][0]))
    return rows[0][0], number


# -- item 6: the units that hold the duty ---------------------------------------------------------


async def test_item_6_municipality_region_and_institution_units_hold_their_duties(
    world: World,
) -> None:
    bergen_centre = await Partner.register(
        world.system,
        "centre-bgo-" + uuid.uuid4().hex[:4],
        K.CARE_CENTRE,
        kommunenummer="4601",
    )
    bergen = await Partner.register(world.system, "kommune-4601", K.MUNICIPALITY)
    afghan, number = await arrive_at(world, bergen_centre, TODAY - timedelta(days=3))
    tasks = world.tasks(afghan)
    # TB screening and school: the municipality where the centre lies (seed 004).
    assert tasks["tb_screening"]["responsible_unit"] == "kommune-4601"
    assert tasks["school_start"]["responsible_unit"] == "kommune-4601"
    assert tasks["health_mapping_offer"]["responsible_unit"] == bergen_centre.key.unit_id
    assert tasks["representative_appointment"]["responsible_unit"] == "statsforvalter-vestland"
    # The municipality reports its task done.
    await bergen.send(
        "no.ema.planning.task-completed.v1",
        m.TaskCompletedV1(case_id=afghan, task="tb_screening", completed_on=TODAY),
    )
    await world.task_is(afghan, "tb_screening", "done")
    # Settlement by the region of the centre (vest), not one unit for the whole country.
    await world.udi.send(
        "no.ema.intake.residence-decided.v2",
        m.ResidenceDecisionV2(
            duf_number=number,
            authority="udi",
            outcome="granted",
            final=True,
            decided_on=TODAY,
            reference="UDI-6",
        ),
    )
    settlement = await wait_for(lambda: world.tasks(afghan).get("settlement"))
    assert (settlement["responsible_unit"], settlement["role"]) == (
        "bufetat-vest",
        "settlement_coordinator",
    )

    # TB only for high-incidence countries; a four-year-old gets kindergarten, not school.
    syrian, _ = await arrive_at(world, bergen_centre, TODAY - timedelta(days=3), nationality="SYR")
    assert "tb_screening" not in world.tasks(syrian)
    four = date(TODAY.year - 4, 3, 1)
    small, _ = await arrive_at(world, bergen_centre, TODAY - timedelta(days=3), birth_date=four)
    assert "school_start" not in world.tasks(small)
    assert world.tasks(small)["kindergarten_offer"]["strength"] == "kan"

    # An institution stay: the municipal service holds the responsibility-group meeting, the
    # Bufetat region of the institution the emergency clarification meeting.
    institution = await Partner.register(
        world.system, "inst-" + uuid.uuid4().hex[:4], K.CARE_CENTRE, kommunenummer="4601"
    )
    cws = "barnevern-" + uuid.uuid4().hex[:4]
    for pathway in ("care-institution", "emergency-institution"):
        await institution.send(
            "no.ema.planning.pathway-started.v2",
            m.PathwayStartedV2(
                case_id=syrian if pathway == "care-institution" else small,
                pathway=pathway,
                started_on=TODAY - timedelta(days=1),
                institution=institution.key.unit_id,
                child_welfare_service=cws,
            ),
        )
    meeting = await wait_for(lambda: world.tasks(syrian).get("responsibility_group_meeting"))
    assert meeting["responsible_unit"] == cws
    assert world.tasks(syrian)["mapping_report"]["responsible_unit"] == institution.key.unit_id
    clarification = await wait_for(lambda: world.tasks(small).get("clarification_meeting"))
    assert clarification["responsible_unit"] == "bufetat-vest"
    for p in (bergen_centre, bergen, institution):
        await p.close()


# -- item 7: the representative is asked for, and followed -------------------------------------


async def test_item_7_statsforvalter_task_and_warning_to_centre_and_bufetat(world: World) -> None:
    centre = await Partner.register(
        world.system,
        "centre-osl-" + uuid.uuid4().hex[:4],
        K.CARE_CENTRE,
        kommunenummer="0301",
    )
    arrived = TODAY - timedelta(days=40)  # the warning, 5 working days before the decision, passed
    case_id, _ = await arrive_at(world, centre, arrived)
    task = world.tasks(case_id)["representative_appointment"]
    ref = http_json(world.url("intake", f"/cases/{case_id}"))["case_ref"]
    assert (task["responsible_unit"], task["role"]) == (
        "statsforvalter-oslo-viken",
        "statsforvalter_case_officer",
    )
    warning = world.tasks(case_id)["representative_missing"]
    assert (
        warning["kind"] == "frame"
        and warning["due"] == due_of(arrived, "representative_missing").isoformat()
    )
    for unit, role in (
        (centre.key.unit_id, "contact_person"),
        ("bufetat-ost", "bufetat_case_officer"),
    ):
        url = world.url("notify", f"/inbox/{unit}?role={role}")
        notes = await wait_for(
            lambda u=url: [
                n
                for n in http_json(u)
                if n["case_ref"] == ref and "ingen representant" in n["text_nb"]
            ]
        )
        assert notes[0]["event_type"] == "frame.overdue", unit
    sf = world.url("notify", "/inbox/statsforvalter-oslo-viken?role=statsforvalter_case_officer")
    assert await wait_for(lambda: [n for n in http_json(sf) if "representant" in n["text_nb"]])
    await world.statsforvalter.send(
        "no.ema.intake.representative-appointed.v1",
        m.RepresentativeAppointedV1(
            case_id=case_id,
            representative_unit="rep-7",
            name="Rita Representant",
            appointed_on=TODAY,
        ),
    )
    await world.task_is(case_id, "representative_appointment", "done")
    await world.task_is(case_id, "representative_missing", "done")
    # Another case: the Statsforvalter, under its own unit id, reports the task done itself.
    other, _ = await arrive_at(world, centre, TODAY - timedelta(days=1))
    await world.statsforvalter.send(
        "no.ema.planning.task-completed.v1",
        m.TaskCompletedV1(case_id=other, task="representative_appointment", completed_on=TODAY),
    )
    await world.task_is(other, "representative_appointment", "done")
    await centre.close()


# -- item 8: notices for everyone the law names ----------------------------------------------------


async def test_item_8_notices_reach_named_roles_with_force_and_reference(world: World) -> None:
    case_id, number = await world.arrive(TODAY - timedelta(days=2))
    rep = await world.appoint_representative(case_id)
    await decide(world, number, "udi", "granted", True, TODAY - timedelta(days=100))

    def inbox(unit: str, role: str) -> list[dict]:
        return http_json(world.url("notify", f"/inbox/{unit}?role={role}"))

    officer = await wait_for(
        lambda: [
            n
            for n in inbox("bufetat-ost", "bufetat_case_officer")
            if "Oppfølgingsvedtak" in n["text_nb"]
        ]
    )
    assert "skal være gjennomført innen" in officer[0]["text_nb"]
    assert "barnevernsloven (2021)" in officer[0]["text_nb"]
    coordinator = await wait_for(
        lambda: [
            n
            for n in inbox("bufetat-ost", "settlement_coordinator")
            if n["event_type"] == "task.overdue"
        ]
    )
    assert "St.meld. nr. 17" in coordinator[0]["text_nb"]
    assert await wait_for(lambda: inbox("bufetat-ost", "unit_leader"))  # escalated
    centre = world.centre.key.unit_id
    offer = await wait_for(
        lambda: [n for n in inbox(centre, "contact_person") if "helsekartlegging" in n["text_nb"]]
    )
    assert "anbefales gjennomført innen" in offer[0]["text_nb"]
    assert "skal være" not in offer[0]["text_nb"]
    copied = await wait_for(
        lambda: [n for n in inbox(centre, "contact_person") if "Oppfølgingsvedtak" in n["text_nb"]]
    )
    assert copied and rep


# -- item 9: sources with dates ------------------------------------------------------------------


async def test_item_9_the_rule_in_force_on_the_day(world: World) -> None:
    old, _ = await world.arrive(date(2022, 11, 1), birth_date=date(2012, 3, 1))
    new, _ = await world.arrive(TODAY - timedelta(days=1))
    assert world.tasks(old)["kopp_proposal"]["legal_ref"] == "barnevernloven (1992) § 5A-4"
    assert world.tasks(new)["kopp_proposal"]["legal_ref"].startswith(
        "barnevernsloven (2021) kapittel 11"
    )
    assert "verify" in world.tasks(new)["kopp_proposal"]["legal_ref"]


# -- item 10: dates ------------------------------------------------------------------------------


async def test_item_10_week_8_and_weekend_rules_over_the_bus(world: World) -> None:
    # A Saturday arrival: three weeks later is a Saturday, the KOPP falls due on Monday.
    saturday = TODAY - timedelta(days=(TODAY.weekday() - 5) % 7 + 35)
    case_id, _ = await world.arrive(saturday)
    kopp = world.tasks(case_id)["kopp_proposal"]
    assert kopp["due"] == due_of(saturday, "kopp_proposal").isoformat()
    # Not the Saturday three weeks on: Monday, or later after a holiday.
    assert date.fromisoformat(kopp["due"]) >= saturday + timedelta(days=23)
    # A care institution from a Monday: week 8 ends on Sunday, day 55; the Friday before.
    monday = TODAY - timedelta(days=TODAY.weekday() + 14)
    cws = await Partner.register(world.system, "bv-" + uuid.uuid4().hex[:6], K.BARNEVERN)
    await cws.send(
        "no.ema.planning.pathway-started.v2",
        m.PathwayStartedV2(
            case_id=case_id,
            pathway="care-institution",
            started_on=monday,
            institution="inst-x",
            child_welfare_service=cws.key.unit_id,
        ),
    )
    report = await wait_for(lambda: world.tasks(case_id).get("mapping_report"))
    day55 = monday + timedelta(days=55)
    assert day55.weekday() == 6
    assert report["due"] == move_off_non_working_day(day55, "previous_working_day").isoformat()
    assert date.fromisoformat(report["due"]) < day55
    await cws.close()


_ = (ARRIVAL, at_noon, duf, world)  # world: the fixture these tests use
