"""HTTP views of the follow-up: a settled child's case (operators), the cases a unit may see
today with their residence status (the unit itself: case access that moves with the child),
and the follow-up figures."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from services.kit import api_auth
from services.kit.clock import today
from services.kit.service import Service
from services.municipality.followup import domain as d
from services.municipality.store import (
    Access,
    ChildService,
    FollowUp,
    HandoverPart,
    MeasureRecord,
    Referral,
)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(
        body, status=status, dumps=lambda x: json.dumps(x, default=str, ensure_ascii=False)
    )


def case_json(fu: FollowUp) -> dict[str, Any]:
    return {
        "case_id": fu.case_id,
        "case_ref": fu.case_ref,
        "kommunenummer": fu.kommunenummer,
        "status": fu.status,
        "settle_on": fu.settle_on,
        "residence": fu.residence,
        "residence_decided_on": fu.residence_decided_on,
        "measure": fu.measure,
        "measure_decided_on": fu.measure_decided_on,
        "provider_unit": fu.provider_unit,
        "barnevern_unit": fu.barnevern_unit,
        "coordinator_unit": fu.coordinator_unit,
        "coordinator_service": fu.coordinator_service,
        "aftercare": fu.aftercare,
        "nav_on": fu.nav_on,
        "closed_on": fu.closed_on,
        "outcome": fu.outcome,
        "day_activity": fu.day_activity,
        "birth_date_estimated": fu.birth_date_estimated,
    }


async def follow_up_figures(service: Service, rules: d.Rules) -> dict[str, Any]:
    day = today()
    async with service.sessions() as session:
        cases = (await session.scalars(select(FollowUp))).all()
        services = dict(
            (
                await session.execute(
                    select(
                        ChildService.case_id, func.count(func.distinct(ChildService.service))
                    ).group_by(ChildService.case_id)
                )
            ).all()
        )
        parts = (
            await session.execute(
                select(HandoverPart.part, HandoverPart.status, HandoverPart.acknowledge_by)
            )
        ).all()
        referrals = (
            await session.execute(
                select(
                    Referral.from_service,
                    Referral.to_service,
                    Referral.status,
                    Referral.feedback_outcome,
                    Referral.feedback_consent,
                )
            )
        ).all()
    rows = [
        d.Followed(
            status=c.status,
            birth_date=c.birth_date,
            estimated=c.birth_date_estimated,
            measure=c.measure,
            outcome=c.outcome,
            day_activity=c.day_activity,
            closed_on=c.closed_on,
            services=services.get(c.case_id, 0),
            coordinator=c.coordinator_unit is not None,
        )
        for c in cases
    ]
    return {
        **d.followed_figures(rows, rules, day),
        "handover": d.handover_figures(parts, day),
        "referrals": d.referral_figures(referrals),
        "note": "visits and responsibility-group meetings planned vs held: planning's /figures",
    }


def install(service: Service, rules: d.Rules) -> None:
    """Add the follow-up's routes and who may call them."""

    async def follow_up(request: web.Request) -> web.Response:
        """GET /followup/{case_id}: the settled child's case, measures, access, handover,
        services and referrals."""
        case_id = request.match_info["case_id"]
        async with service.sessions() as session:
            fu = await session.get(FollowUp, case_id)
            if fu is None:
                return _json({"error": "no follow-up for this case"}, 404)
            measures = (
                await session.scalars(
                    select(MeasureRecord)
                    .where(MeasureRecord.case_id == case_id)
                    .order_by(MeasureRecord.id)
                )
            ).all()
            access = (await session.scalars(select(Access).where(Access.case_id == case_id))).all()
            parts = (
                await session.scalars(
                    select(HandoverPart)
                    .where(HandoverPart.case_id == case_id)
                    .order_by(HandoverPart.part)
                )
            ).all()
            services = (
                await session.scalars(select(ChildService).where(ChildService.case_id == case_id))
            ).all()
            referrals = (
                await session.scalars(
                    select(Referral).where(Referral.case_id == case_id).order_by(Referral.sent_on)
                )
            ).all()
        day = today()
        return _json(
            {
                **case_json(fu),
                "measures": [
                    {
                        "measure": x.measure,
                        "provider_unit": x.provider_unit,
                        "decided_on": x.decided_on,
                        "decision_ref": x.decision_ref,
                        "legal_basis": x.legal_basis,
                    }
                    for x in measures
                ],
                "access": [
                    {
                        "unit": a.unit,
                        "reason": a.reason,
                        "from_on": a.from_on,
                        "until": a.until,
                        "now": d.has_access(a.from_on, a.until, day),
                    }
                    for a in access
                ],
                "handover": [
                    {
                        "part": p.part,
                        "request_id": p.request_id,
                        "data_category": p.data_category,
                        "source_unit": p.source_unit,
                        "recipient_unit": p.recipient_unit,
                        "status": p.status,
                        "legal_basis": p.legal_basis,
                        "acknowledge_by": p.acknowledge_by,
                        "acknowledged_on": p.acknowledged_on,
                        "overdue": p.status in ("requested", "released") and p.acknowledge_by < day,
                    }
                    for p in parts
                ],
                "services": sorted({s.service for s in services}),
                "referrals": [
                    {
                        "referral_id": r.referral_id,
                        "from_service": r.from_service,
                        "to_service": r.to_service,
                        "to_unit": r.to_unit,
                        "status": r.status,
                        "sent_on": r.sent_on,
                        "acknowledged_on": r.acknowledged_on,
                        "feedback_on": r.feedback_on,
                        "content_outcome": r.content_outcome,
                        "feedback_outcome": r.feedback_outcome,
                        "feedback_consent": r.feedback_consent,
                    }
                    for r in referrals
                ],
            }
        )

    async def unit_cases(request: web.Request) -> web.Response:
        """GET /units/{unit}/followup: the settled children whose case the unit may see today,
        each with its residence status and measure."""
        unit, day = request.match_info["unit"], today()
        async with service.sessions() as session:
            query = (
                select(Access, FollowUp)
                .join(FollowUp, FollowUp.case_id == Access.case_id)
                .where(Access.unit == unit)
            )
            rows = (await session.execute(query)).all()
        seen: dict[str, dict[str, Any]] = {}
        for access, fu in rows:
            if d.has_access(access.from_on, access.until, day):
                entry = seen.setdefault(fu.case_id, {**case_json(fu), "access": []})
                entry["access"].append({"reason": access.reason, "until": access.until})
        return _json(sorted(seen.values(), key=lambda c: c["case_ref"]))

    async def figures(request: web.Request) -> web.Response:
        """GET /followup/figures: young people followed by age band and measure,
        terminations by outcome, handover parts, referrals, children without a coordinator."""
        return _json({"as_of": today().isoformat(), **await follow_up_figures(service, rules)})

    service.access.update(
        dict.fromkeys(("/followup/{case_id}", "/followup/figures"), api_auth.OPERATORS)
    )
    service.access["/units/{unit}/followup"] = api_auth.allow(
        api_auth.OPERATOR, api_auth.ADMINISTRATOR, api_auth.PRIVACY_OFFICER, unit_param="unit"
    )  # a unit reads the cases it may see
    service.routes += [
        web.get("/followup/figures", figures),
        web.get("/followup/{case_id}", follow_up),
        web.get("/units/{unit}/followup", unit_cases),
    ]
