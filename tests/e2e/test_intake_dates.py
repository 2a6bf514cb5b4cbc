"""Reports dated in the future are dead-lettered with the reason (issue 18): an arrival dated
next year opens no case and schedules no deadline; a few seconds ahead (a partner's clock
running fast) is within the allowed clock skew."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from contracts import messages as m
from contracts.messages import UnitKind
from deploy.launcher import System
from tests.support import ARRIVAL, Partner, dead_letters, query, wait_for


def duf() -> str:
    return "2026" + "".join(random.choices("0123456789", k=8))


async def _reason(partner: Partner, event_id: str) -> str:
    async def found() -> str | None:
        for letter in await dead_letters(partner.nc):
            if letter.get("Ema-Dlq-Original-Msg-Id") == event_id:
                return letter.get("Ema-Dlq-Reason", "")
        return None

    return await wait_for(found, timeout=20)


def _cases(system: System, number: str) -> list[tuple]:
    return query(
        system.database_url("intake"), "select id from intake_case where duf_number = ?", number
    )


async def test_an_arrival_dated_next_year_is_dead_lettered_and_opens_no_case(
    system: System,
) -> None:
    centre = await Partner.register(system, "centre-future", UnitKind.CARE_CENTRE)
    try:
        number = duf()
        next_year = datetime.now(UTC).year + 1
        event_id = await centre.send(
            "no.ema.intake.arrival.v1",
            m.ArrivalV1(
                **{
                    **ARRIVAL,
                    "duf_number": number,
                    "care_centre": centre.unit_id,
                    "arrived_at": f"{next_year}-01-01T10:00:00+01:00",
                }
            ),
        )
        reason = await _reason(centre, event_id)
        assert "arrived_at: lies in the future" in reason, reason
        assert str(next_year) not in reason  # the field and the rule, never the value
        assert _cases(system, number) == []
    finally:
        await centre.close()


async def test_an_arrival_a_little_ahead_of_the_clock_is_within_the_skew(system: System) -> None:
    centre = await Partner.register(system, "centre-fast-clock", UnitKind.CARE_CENTRE)
    try:
        number = duf()
        ahead = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
        await centre.send(
            "no.ema.intake.arrival.v1",
            m.ArrivalV1(
                **{
                    **ARRIVAL,
                    "duf_number": number,
                    "care_centre": centre.unit_id,
                    "arrived_at": ahead,
                }
            ),
        )
        assert await wait_for(lambda: _cases(system, number))
    finally:
        await centre.close()


async def test_an_appointment_dated_in_the_future_is_dead_lettered(system: System) -> None:
    centre = await Partner.register(system, "centre-appoint", UnitKind.CARE_CENTRE)
    sf = await Partner.register(system, "statsforvalter-future", UnitKind.STATSFORVALTER)
    try:
        number = duf()
        await centre.send(
            "no.ema.intake.arrival.v1",
            m.ArrivalV1(**{**ARRIVAL, "duf_number": number, "care_centre": centre.unit_id}),
        )
        case_id = (await wait_for(lambda: _cases(system, number)))[0][0]
        event_id = await sf.send(
            "no.ema.intake.representative-appointed.v1",
            m.RepresentativeAppointedV1(
                case_id=case_id,
                representative_unit="rep-future",
                name="Rita Representant",
                appointed_on=datetime.now(UTC).date() + timedelta(days=400),
            ),
        )
        reason = await _reason(sf, event_id)
        assert "appointed_on: lies in the future" in reason, reason
        rows = query(
            system.database_url("intake"),
            "select representative_unit from intake_case where id = ?",
            case_id,
        )
        assert rows == [(None,)]
    finally:
        await centre.close()
        await sf.close()
