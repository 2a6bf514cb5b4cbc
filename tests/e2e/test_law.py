"""Issue 14 over the real bus: the law as the seeds state it. One test per item, named after
it (docs/decisions/0010). Dates are relative to today, so the tests hold on any day."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts import messages as m
from deploy.launcher import System, http_json
from services.kit.sealing import open_sealed, seal
from services.municipality.domain import age_on
from tests.e2e.test_consent import broker_key
from tests.e2e.test_lifecycle import TODAY, World, at_noon, duf
from tests.e2e.test_settlement import BIRTH, Settlement
from tests.support import ARRIVAL, Partner, query, stream_messages, wait_for

K = m.UnitKind


@pytest.fixture
async def world(system: System) -> World:
    suffix = uuid.uuid4().hex[:6]
    parts = [
        await Partner.register(system.nats_url, f"{name}-{suffix}", kind)
        for name, kind in (
            ("centre", K.CARE_CENTRE),
            ("bufetat", K.BUFETAT_REGION),
            ("sf", K.STATSFORVALTER),
            ("udi", K.UDI),
        )
    ]
    w = World(system, *parts)
    yield w
    for p in parts:
        await p.nc.close()


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
    subject = f"ema.share.delivered.{recipient.key.unit_id}"

    async def find() -> dict | None:
        for msg in await stream_messages(recipient.nc, "SHARE", subject):
            data = json.loads(msg.data)["data"]
            if data["request_id"] == request_id:
                sealed = m.EncryptedPayload(**data["payload"])
                body = open_sealed(sealed, recipient.sealing, aad=data["decision_id"].encode())
                return json.loads(body)["data"]
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
    request = m.ShareRequestV1(
        request_id=str(uuid.uuid4()),
        case_id=case_id,
        source_unit=sender.key.unit_id,
        recipient_unit=recipient,
        data_category=category,
        purpose=purpose,
        payload=seal(json.dumps(payload).encode(), await broker_key(sender)),
        **kw,
    )
    await sender.send("no.ema.share.request.v1", request, case_id=case_id)
    return request.request_id


async def offered_child(world: World, region: str, k: str, **profile: Any) -> tuple:
    """A child ready for settlement in `region`, a municipality `k` with a place and a sealing
    key (so it can open what the broker releases), and the Settlement helper."""
    s = Settlement(world, region)
    kommune = await Partner.register(
        world.system.nats_url, f"kommune-{k}", K.MUNICIPALITY, sealing=True
    )
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
    await kommune.nc.close()


async def test_item_1b_exit_handover_needs_consent_and_never_overrides_a_refusal(
    world: World,
) -> None:
    """Seed 002 passes exit information on only 'der det foreligger samtykke' (L997-999): the
    claimed 'exit-handover' statute is gone, a refusal holds, a written consent releases."""
    case_id, _ = await world.arrive(TODAY - timedelta(days=40))
    barnevern = await Partner.register(
        world.system.nats_url, "barnevern-" + uuid.uuid4().hex[:6], K.BARNEVERN, sealing=True
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
    await barnevern.nc.close()


async def _share_request(world: World, request_id: str) -> dict | None:
    for msg in await stream_messages(world.centre.nc, "SHARE", "ema.share.request"):
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
        world.system.nats_url, "flyktning-" + uuid.uuid4().hex[:6], K.MUNICIPALITY
    )
    school = await Partner.register(
        world.system.nats_url, "school-" + uuid.uuid4().hex[:6], K.SCHOOL, sealing=True
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
    kommune = await Partner.register(world.system.nats_url, "kommune-1103", K.MUNICIPALITY)
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
        await p.nc.close()


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
    await kommune.nc.close()


_ = (ARRIVAL, at_noon, duf, http_json)
