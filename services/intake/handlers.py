"""Intake's message handlers: arrival in, case out."""

from __future__ import annotations

import logging

from sqlalchemy import select

from contracts.messages import ArrivalV1, CaseOpenedV1
from services.intake.domain import ArrivalOutcome, case_ref, classify_arrival, new_case_id
from services.intake.store import Case
from services.kit.service import Context, Rejected

log = logging.getLogger("intake")


async def on_arrival(ctx: Context) -> None:
    data: ArrivalV1 = ctx.data
    if ctx.sender.id != data.care_centre:
        raise Rejected(
            f"care_centre: {data.care_centre!r} is not the signing unit {ctx.sender.id!r}; "
            "a centre reports its own arrivals"
        )
    existing = await ctx.session.scalar(select(Case).where(Case.duf_number == data.duf_number))
    outcome = classify_arrival(existing.care_centre if existing else None, data.care_centre)
    if outcome is ArrivalOutcome.REPEAT:
        assert existing is not None
        log.info("arrival already registered", extra={"case_ref": existing.case_ref})
        return
    if outcome is ArrivalOutcome.TRANSFER:
        raise Rejected("transfer between care centres is not supported yet (issue 3)")
    case_id = new_case_id()
    case = Case(
        id=case_id,
        case_ref=case_ref(case_id),
        duf_number=data.duf_number,
        name=data.name,
        birth_date=data.birth_date,
        birth_date_estimated=data.birth_date_estimated,
        sex=data.sex,
        nationality=data.nationality,
        languages=data.languages,
        care_centre=data.care_centre,
        arrived_at=data.arrived_at,
    )
    ctx.session.add(case)
    ctx.emit(
        "no.ema.case.opened.v1",
        CaseOpenedV1(
            case_id=case.id,
            case_ref=case.case_ref,
            care_centre=case.care_centre,
            arrived_at=data.arrived_at,
            birth_date=data.birth_date,
            birth_date_estimated=data.birth_date_estimated,
        ),
        case_id=case.id,
    )
    log.info("case opened", extra={"case_ref": case.case_ref, "care_centre": case.care_centre})
