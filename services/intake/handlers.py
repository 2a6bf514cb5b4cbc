"""Intake's handlers: arrivals, representatives, UDI's decisions and case closure."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select

from contracts.messages import (
    AppealLodgedV1,
    ArrivalRegisteredV1,
    ArrivalV1,
    CaseAppealedV1,
    CaseClosedV1,
    CaseDepartedV1,
    CaseOpenedV2,
    CaseRepresentativeV1,
    CaseResidenceDecidedV2,
    CaseTransferredV1,
    DepartedV1,
    RepresentativeAppointedV1,
    RepresentativeRequestedV1,
    ResidenceDecisionV1,
    ResidenceDecisionV2,
    UnitKind,
)
from services.intake.domain import (
    CENTRE_AGE_LIMIT,
    ArrivalOutcome,
    Decision,
    admission_problem,
    age_on,
    case_ref,
    classify_arrival,
    decision_problem,
    new_case_id,
)
from services.intake.store import Case, CaseHistory, SiblingLink
from services.kit.service import Context, NotYet, Rejected

log = logging.getLogger("intake")
CASE_OF_DUF = select(Case.__table__.c.id).where(Case.__table__.c.duf_number == bindparam("duf"))
OSLO = ZoneInfo("Europe/Oslo")


async def _younger_sibling(ctx: Context, data: ArrivalV1) -> bool:
    """True when a sibling named in the arrival has a case and is under 15."""
    dufs = [s.duf_number for s in data.siblings]
    if not dufs:
        return False
    arrival = data.arrived_at.astimezone(OSLO).date()
    siblings = (await ctx.session.scalars(select(Case).where(Case.duf_number.in_(dufs)))).all()
    return any(age_on(s.birth_date, arrival) < CENTRE_AGE_LIMIT for s in siblings)


def _latest(ctx: Context) -> datetime:
    """The latest time a report may name: now, plus the clock skew allowed (EMA_CLOCK_SKEW)."""
    return datetime.now(UTC) + timedelta(seconds=ctx.settings.clock_skew)


def _not_in_future(ctx: Context, field: str, when: datetime | date) -> None:
    """Refuse a report dated in the future: it is a mistake (a wrong year, a clock far ahead),
    and a case opened on it would get deadlines counted from a day that has not come."""
    latest = _latest(ctx)
    if isinstance(when, datetime):
        if when > latest:
            raise Rejected(
                f"{field}: lies in the future (more than {ctx.settings.clock_skew:g} s ahead of "
                "emaflyt's clock); report it once it has happened"
            )
    elif when > latest.astimezone(OSLO).date():
        raise Rejected(
            f"{field}: lies in the future (after today in Norway); report it once it has happened"
        )


async def on_arrival(ctx: Context) -> None:
    data: ArrivalV1 = ctx.data
    if ctx.sender.id != data.care_centre:
        raise Rejected(
            f"care_centre: {data.care_centre!r} is not the signing unit {ctx.sender.id!r}; "
            "a centre reports its own arrivals"
        )
    _not_in_future(ctx, "arrived_at", data.arrived_at)
    # Without flushing the batch's earlier rows (they go in with the commit, one statement per
    # table). The same child reported twice in one batch fails that commit on the unique DUF
    # number, and the batch is applied one message at a time, where this read sees the first.
    # A Core statement asks whether the child is known (the ORM's select was a fifth of
    # intake's handling time in a cProfile of 500 arrivals); the case is loaded only if so.
    connection = await ctx.session.connection()
    known = (await connection.execute(CASE_OF_DUF, {"duf": data.duf_number})).first()
    existing = None
    if known is not None:
        with ctx.session.sync_session.no_autoflush:
            existing = await ctx.session.get(Case, known.id)
    outcome = classify_arrival(
        existing.care_centre if existing else None,
        data.care_centre,
        bool(existing and existing.closed),
    )
    if outcome is ArrivalOutcome.REPEAT:
        assert existing is not None
        log.info("arrival already registered", extra={"case_ref": existing.case_ref})
        registered(ctx, existing, "already_open")
        return
    if outcome is ArrivalOutcome.REOPEN:
        assert existing is not None
        raise Rejected(
            f"duf_number: case {existing.case_ref} was closed ({existing.closed}); "
            "a new stay must be opened by Bufetat"
        )
    if outcome is ArrivalOutcome.TRANSFER:
        assert existing is not None
        await transfer(ctx, existing, data)
        return
    duf_numbers = [sibling.duf_number for sibling in data.siblings]
    if len(set(duf_numbers)) < len(duf_numbers):
        raise Rejected("siblings: a sibling is listed more than once; list each once")
    if data.duf_number in duf_numbers:
        raise Rejected("siblings: the child's own DUF number is listed as a sibling")
    arrival_day = data.arrived_at.astimezone(OSLO).date()
    problem = admission_problem(data.birth_date, arrival_day, await _younger_sibling(ctx, data))
    if problem:
        raise Rejected(problem)
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
    for sibling in data.siblings:
        ctx.session.add(
            SiblingLink(case_id=case_id, sibling_duf=sibling.duf_number, relation=sibling.relation)
        )
    ctx.session.add(
        CaseHistory(case_id=case_id, kind="opened", detail={"care_centre": data.care_centre})
    )
    opened = dict(
        case_id=case.id,
        case_ref=case.case_ref,
        care_centre=case.care_centre,
        arrived_at=data.arrived_at,
        birth_date=data.birth_date,
        birth_date_estimated=data.birth_date_estimated,
    )
    ctx.emit(
        "no.ema.case.opened.v2",
        CaseOpenedV2(**opened, nationality=data.nationality),
        case_id=case.id,
    )
    ctx.emit(
        "no.ema.intake.representative-requested.v1",
        RepresentativeRequestedV1(
            case_id=case.id,
            case_ref=case.case_ref,
            care_centre=case.care_centre,
            requested_on=arrival_day,
        ),
        case_id=case.id,
    )
    registered(ctx, case, "opened")
    log.info("case opened", extra={"case_ref": case.case_ref, "care_centre": case.care_centre})


def registered(ctx: Context, case: Case, outcome: str) -> None:
    """Tell the reporting centre, and it alone, which case its arrival opened or found."""
    ctx.emit(
        "no.ema.intake.arrival-registered.v1",
        ArrivalRegisteredV1(
            arrival_id=ctx.event.id,
            case_id=case.id,
            case_ref=case.case_ref,
            outcome=outcome,
            care_centre=case.care_centre,
        ),
        case_id=case.id,
        unit=ctx.sender.id,
    )


async def transfer(ctx: Context, case: Case, data: ArrivalV1) -> None:
    """The child arrived at another centre: the case, its residence status, representative
    and history move along; nothing is entered again."""
    previous = case.care_centre
    case.care_centre = data.care_centre
    ctx.session.add(
        CaseHistory(
            case_id=case.id, kind="transferred", detail={"from": previous, "to": data.care_centre}
        )
    )
    ctx.emit(
        "no.ema.case.transferred.v1",
        CaseTransferredV1(
            case_id=case.id,
            case_ref=case.case_ref,
            from_centre=previous,
            to_centre=data.care_centre,
            transferred_at=data.arrived_at,
        ),
        case_id=case.id,
    )
    registered(ctx, case, "transferred")
    log.info(
        "case transferred",
        extra={"case_ref": case.case_ref, "from": previous, "to": data.care_centre},
    )


async def _case(ctx: Context, case_id: str) -> Case:
    case = await ctx.session.get(Case, case_id)
    if case is None:
        raise NotYet(f"case_id: no case {case_id!r} is known to intake")
    return case


async def on_representative_appointed(ctx: Context) -> None:
    data: RepresentativeAppointedV1 = ctx.data
    _not_in_future(ctx, "appointed_on", data.appointed_on)
    case = await _case(ctx, data.case_id)
    if case.closed:
        raise Rejected(f"case_id: case {case.case_ref} is closed ({case.closed})")
    case.representative_unit = data.representative_unit
    ctx.session.add(
        CaseHistory(
            case_id=case.id, kind="representative", detail={"unit": data.representative_unit}
        )
    )
    ctx.emit(
        "no.ema.case.representative.v1",
        CaseRepresentativeV1(
            case_id=case.id,
            case_ref=case.case_ref,
            representative_unit=data.representative_unit,
            appointed_on=data.appointed_on,
        ),
        case_id=case.id,
    )


async def on_residence_decided(ctx: Context) -> None:
    """UDI's decision in the first version: granted, or a refusal that may still be appealed."""
    data: ResidenceDecisionV1 = ctx.data
    await _decided(
        ctx,
        data.duf_number,
        Decision("udi", data.outcome, False),
        data.decided_on,
        data.udi_reference,
    )


async def on_residence_decided_v2(ctx: Context) -> None:
    """UDI's decision, or UNE's on appeal: "i UDI – og ved klage i UNE" (seed 000 L57-58)."""
    data: ResidenceDecisionV2 = ctx.data
    final = data.final or data.authority == "une"
    await _decided(
        ctx,
        data.duf_number,
        Decision(data.authority, data.outcome, final),
        data.decided_on,
        data.reference,
    )


async def _decisions(ctx: Context, case: Case) -> list[Decision]:
    rows = (
        await ctx.session.scalars(
            select(CaseHistory)
            .where(CaseHistory.case_id == case.id, CaseHistory.kind == "residence")
            .order_by(CaseHistory.id)
        )
    ).all()
    return [
        Decision(r.detail.get("authority", "udi"), r.detail["outcome"], bool(r.detail.get("final")))
        for r in rows
    ]


async def _decided(
    ctx: Context, duf_number: str, new: Decision, decided_on: date, reference: str
) -> None:
    case = await ctx.session.scalar(select(Case).where(Case.duf_number == duf_number))
    if case is None:
        raise NotYet("duf_number: no case has this DUF number")
    if case.closed:
        raise Rejected(f"duf_number: case {case.case_ref} is closed ({case.closed})")
    _not_in_future(ctx, "decided_on", decided_on)
    problem = decision_problem(await _decisions(ctx, case), new)
    if problem:
        raise Rejected(f"{problem} (case {case.case_ref})")
    case.residence, case.residence_decided_on = new.outcome, decided_on
    ctx.session.add(
        CaseHistory(
            case_id=case.id,
            kind="residence",
            detail={
                "authority": new.authority,
                "outcome": new.outcome,
                "final": new.final,
                "on": str(decided_on),
                "reference": reference,
            },
        )
    )
    ctx.emit(
        "no.ema.case.residence-decided.v2",
        CaseResidenceDecidedV2(
            case_id=case.id,
            case_ref=case.case_ref,
            authority=new.authority,
            outcome=new.outcome,
            final=new.final,
            decided_on=decided_on,
        ),
        case_id=case.id,
    )


async def on_appeal_lodged(ctx: Context) -> None:
    """The representative, who has the right of appeal (seed 000 L287-288), appealed."""
    data: AppealLodgedV1 = ctx.data
    case = await _case(ctx, data.case_id)
    if case.closed:
        raise Rejected(f"case_id: case {case.case_ref} is closed ({case.closed})")
    if ctx.sender.id != case.representative_unit:
        raise Rejected(
            f"source: {ctx.sender.id!r} is not the representative of case {case.case_ref}"
        )
    decisions = await _decisions(ctx, case)
    if not decisions or decisions[-1].outcome != "refused" or decisions[-1].final:
        raise Rejected(f"case_id: case {case.case_ref} has no refusal open to appeal")
    if any(
        h.kind == "appealed"
        for h in (
            await ctx.session.scalars(select(CaseHistory).where(CaseHistory.case_id == case.id))
        ).all()
    ):
        raise Rejected(f"case_id: the refusal of case {case.case_ref} is already appealed")
    ctx.session.add(
        CaseHistory(case_id=case.id, kind="appealed", detail={"on": str(data.lodged_on)})
    )
    ctx.emit(
        "no.ema.case.appealed.v1",
        CaseAppealedV1(case_id=case.id, case_ref=case.case_ref, lodged_on=data.lodged_on),
        case_id=case.id,
    )


async def on_departed(ctx: Context) -> None:
    """The child left the country: the place ends (seed 000 L104-105). Reported by the care
    centre, or by UDI for a return it carried out."""
    data: DepartedV1 = ctx.data
    case = await _case(ctx, data.case_id)
    if case.closed:
        raise Rejected(f"case_id: case {case.case_ref} is closed ({case.closed})")
    if ctx.sender.id != case.care_centre and ctx.sender.kind != UnitKind.UDI:
        raise Rejected(f"source: {ctx.sender.id!r} is not the care centre of case {case.case_ref}")
    _not_in_future(ctx, "departed_on", data.departed_on)
    ctx.session.add(
        CaseHistory(
            case_id=case.id, kind="departed", detail={"on": str(data.departed_on), "how": data.how}
        )
    )
    ctx.emit(
        "no.ema.case.departed.v1",
        CaseDepartedV1(
            case_id=case.id,
            case_ref=case.case_ref,
            departed_on=data.departed_on,
            how=data.how,
        ),
        case_id=case.id,
    )


async def on_case_closed(ctx: Context) -> None:
    data: CaseClosedV1 = ctx.data
    case = await _case(ctx, data.case_id)
    case.closed = data.reason
    ctx.session.add(
        CaseHistory(
            case_id=case.id,
            kind="closed",
            detail={"reason": data.reason, "on": str(data.closed_on)},
        )
    )
