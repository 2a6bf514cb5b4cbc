"""Sealed payloads bound to their context, and who may speak for a child (issue 12, findings
2 and 3): each attack through the real bus, refused with its reason in the dead-letter stream,
and no decision, consent or delivery changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.messages import ConsentGrantedV1, ConsentWithdrawnV1, ShareRequestV1, UnitKind
from deploy.launcher import System
from services.kit.sealing import HYBRID
from tests.security.conftest import open_case, uid
from tests.support import Partner, dead_letters, query, wait_for


async def new_letter(partner: Partner, before: int, timeout: float = 20) -> dict[str, str]:
    async def more() -> list | None:
        letters = await dead_letters(partner.nc)
        return letters if len(letters) > before else None

    return (await wait_for(more, timeout=timeout))[-1]


def decisions_for(system: System, request_id: str) -> list[tuple]:
    return query(
        system.database_url("consent"),
        "select outcome from consent_decision where request_id = ?",
        request_id,
    )


def consent_row(system: System, consent_id: str) -> list[tuple]:
    return query(
        system.database_url("consent"),
        "select version, status, registered_by from consent_consent where consent_id = ?",
        consent_id,
    )


def grant(case_id: str, consent_id: str | None = None, version: int = 1) -> ConsentGrantedV1:
    now = datetime.now(UTC)
    return ConsentGrantedV1(
        consent_id=consent_id or uid("samtykke"),
        version=version,
        case_id=case_id,
        grantor={"role": "representative", "capacity": "representant"},
        form={"kind": "written", "document_sha256": "a" * 64},
        scope=[
            {
                "categories": ["kopp"],
                "source_sectors": ["care_centre"],
                "recipient_sectors": ["municipality"],
                "purposes": ["settlement"],
            }
        ],
        granted_at=now - timedelta(hours=1),
        valid_from=now - timedelta(hours=1),
        valid_to=now + timedelta(days=90),
        child_heard={"status": "heard", "method": "samtale med tolk"},
    )


async def test_a_sealed_payload_copied_off_the_bus_cannot_be_laundered(
    system: System, closing
) -> None:  # noqa: ANN001
    """Finding 2: a payload copied from a centre's request and submitted by another unit as
    its own (itself as source and recipient, a claimed statute) was opened and re-sealed."""
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    thief = await Partner.register(system, uid("school"), UnitKind.SCHOOL, sealing=True)
    closing.extend([centre, kommune, thief])
    original = await centre.share_request(
        case_id, kommune.unit_id, "kopp", "settlement", {"care_needs": "traume"}
    )
    before = len(await dead_letters(thief.nc))
    for change in (
        {"source_unit": thief.unit_id, "recipient_unit": thief.unit_id},
        {"source_unit": thief.unit_id},  # the same flow, other sender
        {"source_unit": thief.unit_id, "purpose": "concern_report"},
    ):
        stolen = original.model_copy(
            update={"request_id": uid("stolen"), "claimed_basis": "bvl-13-2", **change}
        )
        await thief.send("no.ema.share.request.v2", stolen, case_id=case_id)
        letter = await new_letter(thief, before)
        before += 1
        assert letter["Ema-Dlq-Reason"].startswith("rejected: payload: does not open for this")
        assert decisions_for(system, stolen.request_id) == []  # nothing decided or logged
    # The same payload as its own sender sent it still works: binding, not breakage.
    await centre.send("no.ema.share.request.v2", original, case_id=case_id)
    assert (await wait_for(lambda: decisions_for(system, original.request_id)))[0][0] == "withhold"


async def test_version_1_share_requests_are_refused_with_the_way_forward(
    system: System, closing
) -> None:  # noqa: ANN001
    centre, case_id = await open_case(system)
    closing.append(centre)
    before = len(await dead_letters(centre.nc))
    old = ShareRequestV1(
        request_id=uid("old"),
        case_id=case_id,
        source_unit=centre.unit_id,
        recipient_unit="kommune-0301",
        data_category="identity",
        purpose="anonymous_consultation",
        payload={
            "recipient_kid": "0" * 16,
            "ephemeral_public_key": "AA==",
            "nonce": "AA==",
            "ciphertext": "AA==",
        },
    )
    await centre.send("no.ema.share.request.v1", old, case_id=case_id)
    letter = await new_letter(centre, before)
    assert "no.ema.share.request.v1 is retired" in letter["Ema-Dlq-Reason"]
    assert "no.ema.share.request.v2" in letter["Ema-Dlq-Reason"]
    assert decisions_for(system, old.request_id) == []


async def test_post_quantum_hybrid_sealing_round_trip(system: System, closing) -> None:  # noqa: ANN001
    """The broker publishes an ML-KEM-768 + X25519 key too; a request sealed to it opens, and
    a recipient with only a hybrid key can be delivered to by a broker set to that suite."""
    centre, case_id = await open_case(system)
    closing.append(centre)
    request = await centre.share_request(
        case_id,
        "kommune-0301",
        "identity",
        "anonymous_consultation",
        {"age_band": "10-12", "question": "?"},
        suite=HYBRID,
    )
    assert request.payload.suite == HYBRID
    await centre.send("no.ema.share.request.v2", request, case_id=case_id)
    assert await wait_for(lambda: decisions_for(system, request.request_id))


async def test_an_unrelated_unit_cannot_register_change_or_withdraw_a_childs_consent(
    system: System, closing
) -> None:  # noqa: ANN001
    """Finding 3: an unrelated school re-granted a consent without the child's refusal (and
    the next request was released); a health unit withdrew a consent a care centre had
    registered."""
    centre, case_id = await open_case(system)
    school = await Partner.register(system, uid("school"), UnitKind.SCHOOL)
    health = await Partner.register(system, uid("health"), UnitKind.HEALTH)
    closing.extend([centre, school, health])
    given = grant(case_id)
    refusal = {
        "categories": ["kopp"],
        "source_sectors": ["care_centre"],
        "recipient_units": ["kommune-0301"],
        "purposes": ["settlement"],
    }
    given = ConsentGrantedV1.model_validate({**given.model_dump(), "refusals": [refusal]})
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await wait_for(lambda: consent_row(system, given.consent_id))
    before = len(await dead_letters(centre.nc))
    # The school re-grants it as version 2, without the refusal.
    rewritten = given.model_copy(update={"version": 2, "refusals": []})
    await school.send("no.ema.consent.granted.v1", rewritten, case_id=case_id)
    letter = await new_letter(school, before)
    assert f"{school.unit_id} may not change this consent" in letter["Ema-Dlq-Reason"]
    # Health withdraws it.
    await health.send(
        "no.ema.consent.withdrawn.v1",
        ConsentWithdrawnV1(
            consent_id=given.consent_id,
            case_id=case_id,
            withdrawn_by="representative",
            withdrawn_at=datetime.now(UTC),
        ),
        case_id=case_id,
    )
    letter = await new_letter(health, before + 1)
    assert f"{health.unit_id} may not withdraw this consent" in letter["Ema-Dlq-Reason"]
    # The school registers a consent of its own for the child.
    await school.send("no.ema.consent.granted.v1", grant(case_id), case_id=case_id)
    letter = await new_letter(school, before + 2)
    assert "may not register consents for this case" in letter["Ema-Dlq-Reason"]
    assert consent_row(system, given.consent_id) == [(1, "active", centre.unit_id)]


async def test_the_representative_may_change_what_the_centre_registered(
    system: System, closing
) -> None:  # noqa: ANN001
    centre, case_id = await open_case(system)
    representative = await Partner.register(system, uid("verge"), UnitKind.REPRESENTATIVE)
    statsforvalter = await Partner.register(system, uid("sf"), UnitKind.STATSFORVALTER)
    closing.extend([centre, representative, statsforvalter])
    given = grant(case_id)
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await wait_for(lambda: consent_row(system, given.consent_id))
    from contracts.messages import RepresentativeAppointedV1

    await statsforvalter.send(
        "no.ema.intake.representative-appointed.v1",
        RepresentativeAppointedV1(
            case_id=case_id,
            representative_unit=representative.unit_id,
            name="Verge Vergesen",
            appointed_on=datetime.now(UTC).date(),
        ),
        case_id=case_id,
    )
    await wait_for(
        lambda: query(
            system.database_url("consent"),
            "select 1 from consent_case where case_id = ? and representative_unit = ?",
            case_id,
            representative.unit_id,
        )
    )
    acks = await representative.bus.subscribe(f"ema.consent.recorded.{representative.unit_id}")
    await representative.send(
        "no.ema.consent.withdrawn.v1",
        ConsentWithdrawnV1(
            consent_id=given.consent_id,
            case_id=case_id,
            withdrawn_by="representative",
            withdrawn_at=datetime.now(UTC),
        ),
        case_id=case_id,
    )
    ack = json.loads((await acks.next_msg(timeout=20)).data)["data"]
    assert ack["status"] == "withdrawn"  # acknowledged to the one who withdrew it
    assert consent_row(system, given.consent_id)[0][1] == "withdrawn"


@pytest.mark.parametrize("bad_id", ['x"y', "a b", "../etc", "-leading", "ø"])
async def test_a_hostile_consent_id_changes_nothing_and_breaks_no_later_decision(
    system: System, bad_id: str, closing
) -> None:  # noqa: ANN001
    """Finding 3: a consent id like x"y broke the policy engine's output for the whole case
    (every later request dead-lettered, emergency included)."""
    centre, case_id = await open_case(system)
    hospital = await Partner.register(system, uid("sykehus"), UnitKind.HEALTH, sealing=True)
    closing.extend([centre, hospital])
    before = len(await dead_letters(centre.nc))
    await centre.send(
        "no.ema.consent.granted.v1", grant(case_id, consent_id=bad_id), case_id=case_id
    )
    letter = await new_letter(centre, before)
    assert letter["Ema-Dlq-Reason"].startswith("rejected: consent_id: use letters, digits")
    assert consent_row(system, bad_id) == []
    # The case's own centre (a unit linked to it) breaks the glass to a hospital.
    request = await centre.share_request(
        case_id,
        hospital.unit_id,
        "health",
        "emergency",
        {"allergies": "penicillin"},
        break_the_glass={"justification": "bevisstløs, trenger allergier nå"},
    )
    await centre.send("no.ema.share.request.v2", request, case_id=case_id)
    assert (await wait_for(lambda: decisions_for(system, request.request_id)))[0][0] == "allow"


async def test_acknowledgements_reach_the_registrant_alone(system: System, closing) -> None:  # noqa: ANN001
    from tests.security.conftest import as_unit, settle

    centre, case_id = await open_case(system)
    nosy = await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    closing.extend([centre, nosy])
    nc, seen = await as_unit(system, nosy)
    closing.append(nc)
    await nc.subscribe(f"ema.consent.recorded.{centre.unit_id}")
    await nc.subscribe("ema.consent.recorded.*")
    await settle(nc)
    assert seen.refused_subscription(f"ema.consent.recorded.{centre.unit_id}")
    assert seen.refused_subscription("ema.consent.recorded.*")
