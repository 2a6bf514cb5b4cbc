"""Wiring for the municipality service: consumers, the offer timer and the HTTP views
(capacity, waiting children, proposals, placements, refunds, grants, figures)."""

from __future__ import annotations

import asyncio
import logging
import statistics
from datetime import UTC, date, datetime

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select

from services.kit import api_auth
from services.kit.service import Service, route
from services.kit.settings import Settings
from services.municipality import domain
from services.municipality.followup import views as followup_views
from services.municipality.followup.handlers import make_followup_handlers
from services.municipality.handlers import (
    Deps,
    escalate_due,
    make_handlers,
    move_in_due,
    set_today,
    today,
)
from services.municipality.reference import load_register
from services.municipality.store import Base, Capacity, Child, Offer, Placement, RefundClaim

log = logging.getLogger("municipality")
REGISTER = load_register()
CATALOGUE = domain.load_catalogue()
GRANTS = domain.load_grant_rates()


class MunicipalitySettings(Settings):
    offer_answer_hours: float = Field(168.0, gt=0, description="Answer time for an offer.")
    timer_interval: float = Field(30.0, gt=0, description="Seconds between escalation checks.")
    today: date | None = Field(None, description="Pin today's date: demos and tests only.")


service = Service("municipality", Base.metadata, MunicipalitySettings, migrate=True)
DEPS = Deps(REGISTER, CATALOGUE, domain.load_refund_rules())
H = make_handlers(DEPS) | make_followup_handlers(DEPS.rules, CATALOGUE)


def _on(*types: str, durable: str) -> None:
    service.handles(*types, durable=durable)(route({t: H[t] for t in types}))


_on(
    "no.ema.municipality.capacity.v1",
    "no.ema.municipality.capacity.v2",
    durable="municipality-capacity",
)
_on(
    "no.ema.case.residence-decided.v2",
    "no.ema.case.closed.v1",
    "no.ema.case.opened.v2",
    "no.ema.case.transferred.v1",
    durable="municipality-cases",
)
_on(
    "no.ema.municipality.settlement-profile.v1",
    "no.ema.municipality.offer-requested.v1",
    "no.ema.municipality.offer-answered.v1",
    "no.ema.municipality.offer-answered.v2",
    durable="municipality-settlement",
)
_on("no.ema.municipality.refund-claimed.v1", durable="municipality-refunds")
# After the centre (issue 15): the broker's decisions on handover and referral shares, and
# the follow-up's own messages.
_on("no.ema.share.decided.v1", durable="municipality-shares")
_on(
    "no.ema.municipality.handover-acknowledged.v1",
    "no.ema.municipality.measure-decided.v1",
    "no.ema.municipality.follow-up-reported.v1",
    "no.ema.municipality.follow-up-closed.v1",
    "no.ema.municipality.coordinator-assigned.v1",
    "no.ema.municipality.referral-sent.v1",
    "no.ema.municipality.referral-acknowledged.v1",
    "no.ema.municipality.referral-feedback.v1",
    durable="municipality-followup",
)


async def configure(svc: Service) -> None:
    DEPS.answer_hours = svc.settings.offer_answer_hours  # type: ignore[attr-defined]
    set_today(svc.settings.today)  # type: ignore[attr-defined]


async def escalation_timer(svc: Service) -> None:
    while True:
        try:
            if await escalate_due(
                svc.sessions, svc.outbox, svc.outbox.write_lock, datetime.now(UTC)
            ):
                svc.outbox.wake()
            if await move_in_due(svc.sessions, svc.outbox, svc.outbox.write_lock, today()):
                svc.outbox.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("escalation check failed; will retry", exc_info=True)
        await asyncio.sleep(svc.settings.timer_interval)  # type: ignore[attr-defined]


async def warm_matcher(svc: Service) -> None:
    """Import the matcher's solver once the service is up, off the event loop: importing
    scipy.optimize at start would hold every start back a third of a second, and importing it
    at the first GET /proposals made that request wait for it (seconds on a cold, busy host)."""
    await asyncio.to_thread(domain.load_solver)
    await svc.stop_event.wait()


service.startup.append(configure)
service.background += [escalation_timer, warm_matcher]


# -- reading the state for matching and views ------------------------------------------------


async def _waiting(session, region: str | None = None) -> list[Child]:  # noqa: ANN001
    q = select(Child).where(
        Child.status == "open", Child.residence == "granted", Child.measure.is_not(None)
    )
    if region:
        q = q.where(Child.bufetat_region == region)
    return list((await session.scalars(q)).all())


async def matching_input(session, region: str | None = None):  # noqa: ANN001, ANN201
    """Ready children without a pending offer, and this year's places minus pending offers."""
    day = today()
    pending = (
        await session.execute(
            select(Offer.case_id, Offer.kommunenummer).where(Offer.status == "pending")
        )
    ).all()
    declined = (
        await session.execute(
            select(Offer.case_id, Offer.kommunenummer).where(Offer.status == "declined")
        )
    ).all()
    offered = {c for c, _ in pending}
    held: dict[str, int] = {}
    for _, k in pending:
        held[k] = held.get(k, 0) + 1
    no: dict[str, set[str]] = {}
    for c, k in declined:
        no.setdefault(c, set()).add(k)
    children = [
        domain.Child(
            case_id=c.case_id,
            age=domain.age_on(c.birth_date, day),
            measure=c.measure,
            days_left=(c.deadline - day).days if c.deadline else 90,
            care_needs=frozenset(c.care_needs),
            family=frozenset(c.family),
            network=frozenset(c.network),
            siblings=frozenset(c.siblings),
            declined_by=frozenset(no.get(c.case_id, ())),
        )
        for c in await _waiting(session, region)
        if c.case_id not in offered
    ]
    q = select(Capacity).where(Capacity.year == day.year)
    if region:  # a region settles in its own municipalities
        q = q.where(Capacity.bufetat_region == region)
    caps = (await session.scalars(q)).all()
    places = [
        domain.Place(
            kommunenummer=r.kommunenummer,
            name=REGISTER.municipalities[r.kommunenummer].name,
            region=r.bufetat_region,
            offers=tuple(domain.Band(o["measure"], o["min_age"], o["max_age"]) for o in r.offers),
            free=max(0, r.free_places - held.get(r.kommunenummer, 0)),
            competences=frozenset(r.competences or ()),
        )
        for r in caps
    ]
    return children, places


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(
        body,
        status=status,
        dumps=lambda x: __import__("json").dumps(x, default=str, ensure_ascii=False),
    )


async def capacity(request: web.Request) -> web.Response:
    """GET /capacity: published capacity per municipality and year."""
    async with service.sessions() as session:
        rows = (await session.scalars(select(Capacity).order_by(Capacity.kommunenummer))).all()
    return _json(
        [
            {
                "kommunenummer": r.kommunenummer,
                "name": REGISTER.municipalities[r.kommunenummer].name,
                "bufetat_region": r.bufetat_region,
                "year": r.year,
                "children": r.children,
                "measures": r.measures,
                "offers": r.offers,
                "competences": r.competences,
                "free_places": r.free_places,
            }
            for r in rows
        ]
    )


async def waiting_list(region: str | None) -> list[dict]:
    day = today()
    async with service.sessions() as session:
        rows = await _waiting(session, region)
        pending = {
            c
            for (c,) in (
                await session.execute(select(Offer.case_id).where(Offer.status == "pending"))
            ).all()
        }
    return domain.ready_order(
        [
            {
                "case_id": c.case_id,
                "case_ref": c.case_ref,
                "bufetat_region": c.bufetat_region,
                "residence_decided_on": c.residence_decided_on,
                "deadline": c.deadline,
                "days_left": (c.deadline - day).days if c.deadline else None,
                "days_waiting": (day - c.residence_decided_on).days
                if c.residence_decided_on
                else None,
                "measure": c.measure,
                "siblings": len(c.siblings),
                "offer_pending": c.case_id in pending,
            }
            for c in rows
        ]
    )


async def waiting(request: web.Request) -> web.Response:
    """GET /waiting?region=: children ready for settlement, oldest deadline first."""
    return _json(await waiting_list(request.query.get("region")))


async def proposals(request: web.Request) -> web.Response:
    """GET /proposals?region=: the global assignment now, each proposal explained."""
    async with service.sessions() as session:
        children, places = await matching_input(session, request.query.get("region"))
    result = domain.assign(children, places)
    return _json(
        {
            "total_score": result.total,
            "proposals": [p.__dict__ for p in result.proposals],
            "unplaced": result.unplaced,
        }
    )


async def municipality_cases(request: web.Request) -> web.Response:
    """GET /municipalities/{k}/cases: cases opened in the municipality by settlement."""
    k = request.match_info["k"]
    async with service.sessions() as session:
        rows = (
            await session.scalars(
                select(Placement).where(Placement.kommunenummer == k).order_by(Placement.settled_on)
            )
        ).all()
        status = {
            c.case_id: c.status
            for c in (
                await session.scalars(
                    select(Child).where(Child.case_id.in_([r.case_id for r in rows]))
                )
            ).all()
        }
    # "accepted": the move-in day is agreed but has not come; "settled": the child lives here.
    return _json(
        [
            {
                "case_id": r.case_id,
                "offer_id": r.offer_id,
                "measure": r.measure,
                "settled_on": r.settled_on,
                "status": status.get(r.case_id),
                "moved_in": status.get(r.case_id) == "settled",
                "within_deadline": r.within_deadline,
            }
            for r in rows
        ]
    )


async def offer(request: web.Request) -> web.Response:
    """GET /offers/{offer_id}: status of one offer."""
    async with service.sessions() as session:
        o = await session.get(Offer, request.match_info["offer_id"])
    if o is None:
        return _json({"error": "no such offer"}, 404)
    return _json(
        {
            "offer_id": o.offer_id,
            "case_id": o.case_id,
            "kommunenummer": o.kommunenummer,
            "measure": o.measure,
            "status": o.status,
            "escalated": o.escalated,
            "answer_by": o.answer_by,
            "reason": o.reason,
        }
    )


async def refund_totals(request: web.Request) -> web.Response:
    """GET /refunds/totals: running totals per municipality."""
    async with service.sessions() as session:
        rows = (
            await session.execute(
                select(
                    RefundClaim.kommunenummer,
                    func.count(),
                    func.sum(RefundClaim.expenses_nok),
                    func.sum(RefundClaim.refund_nok),
                ).group_by(RefundClaim.kommunenummer)
            )
        ).all()
    return _json(
        {k: {"claims": n, "claimed_nok": str(c), "refunded_nok": str(r)} for k, n, c, r in rows}
    )


async def grants(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/grants: IMDi grant estimate for a settled child (rates: verify)."""
    async with service.sessions() as session:
        child = await session.get(Child, request.match_info["case_id"])
    if child is None or child.settled_on is None or child.birth_date is None:
        return _json({"error": "no settled child with this case id"}, 404)
    return _json(domain.grant_estimate(child.birth_date, child.settled_on, GRANTS))


async def compute_figures() -> dict:
    day = today()
    async with service.sessions() as session:
        placements = (await session.scalars(select(Placement))).all()
        waiting_rows = await _waiting(session)
        caps = (await session.scalars(select(Capacity).where(Capacity.year == day.year))).all()
    within = sum(p.within_deadline for p in placements)
    waited = [(day - c.residence_decided_on).days for c in waiting_rows if c.residence_decided_on]
    per_region: dict[str, int] = {}
    need: dict[tuple[str, str], int] = {}
    for c in waiting_rows:
        region = c.bufetat_region or "?"
        per_region[region] = per_region.get(region, 0) + 1
        need[(region, c.measure or "?")] = need.get((region, c.measure or "?"), 0) + 1
    free: dict[tuple[str, str], int] = {}
    for r in caps:
        for measure in r.measures:
            free[(r.bufetat_region, measure)] = free.get((r.bufetat_region, measure), 0) + (
                r.free_places
            )
    gap = [
        {
            "bufetat_region": reg,
            "measure": mea,
            "waiting": need.get((reg, mea), 0),
            "free_places": free.get((reg, mea), 0),
            "gap": need.get((reg, mea), 0) - free.get((reg, mea), 0),
        }
        for reg, mea in sorted(set(need) | set(free))
    ]
    return {
        "as_of": day.isoformat(),
        "settled": len(placements),
        "settled_within_3_months_pct": round(100 * within / len(placements), 1)
        if placements
        else None,
        "waiting": len(waiting_rows),
        "waiting_per_region": per_region,
        "days_waiting": {
            "median": statistics.median(waited) if waited else None,
            "max": max(waited, default=None),
        },
        "capacity_gap": gap,
        "note": "free places in a municipality count once per measure it offers",
    }


async def figures(request: web.Request) -> web.Response:
    """GET /figures: settled within 3 months, waiting, days waiting, capacity gap."""
    return _json(await compute_figures())


service.access.update(
    dict.fromkeys(
        (
            "/capacity",
            "/waiting",
            "/proposals",
            "/offers/{offer_id}",
            "/refunds/totals",
            "/cases/{case_id}/grants",
            "/figures",
        ),
        api_auth.OPERATORS,
    )
)
service.access["/municipalities/{k}/cases"] = api_auth.allow(
    api_auth.OPERATOR,
    api_auth.ADMINISTRATOR,
    api_auth.PRIVACY_OFFICER,
    unit_param="k",
    unit_of=lambda k: f"kommune-{k}",
)  # a municipality reads its own children
followup_views.install(service, DEPS.rules)
service.routes += [
    web.get("/capacity", capacity),
    web.get("/waiting", waiting),
    web.get("/proposals", proposals),
    web.get("/municipalities/{k}/cases", municipality_cases),
    web.get("/offers/{offer_id}", offer),
    web.get("/refunds/totals", refund_totals),
    web.get("/cases/{case_id}/grants", grants),
    web.get("/figures", figures),
]
