"""Wiring for the intake service."""

from aiohttp import web
from sqlalchemy import select

from services.intake import handlers
from services.intake.store import Base, Case, CaseHistory
from services.kit import api_auth
from services.kit.service import Service, route

service = Service("intake", Base.metadata, migrate=True)
INBOUND = {
    "no.ema.intake.arrival.v1": handlers.on_arrival,
    "no.ema.intake.representative-appointed.v1": handlers.on_representative_appointed,
    "no.ema.intake.residence-decided.v1": handlers.on_residence_decided,
    "no.ema.intake.residence-decided.v2": handlers.on_residence_decided_v2,
    "no.ema.intake.appeal-lodged.v1": handlers.on_appeal_lodged,
    "no.ema.intake.departed.v1": handlers.on_departed,
}
service.handles(*INBOUND, durable="intake-inbound")(route(INBOUND))
service.handles("no.ema.case.closed.v1", durable="intake-cases")(handlers.on_case_closed)


async def case_view(request: web.Request) -> web.Response:
    """GET /cases/{case_id}: where the child is, with representative, residence and history.
    Personal data (name, DUF number, birth date) stays out."""
    async with service.sessions() as session:
        case = await session.get(Case, request.match_info["case_id"])
        if case is None:
            return web.json_response({"error": "no such case"}, status=404)
        history = (
            await session.scalars(
                select(CaseHistory).where(CaseHistory.case_id == case.id).order_by(CaseHistory.id)
            )
        ).all()
    return web.json_response(
        {
            "case_id": case.id,
            "case_ref": case.case_ref,
            "care_centre": case.care_centre,
            "representative_unit": case.representative_unit,
            "residence": case.residence,
            "residence_decided_on": str(case.residence_decided_on or "") or None,
            "closed": case.closed,
            "history": [
                {"kind": h.kind, "detail": h.detail, "at": h.at.isoformat()} for h in history
            ],
        }
    )


service.routes.append(web.get("/cases/{case_id}", case_view))
service.access["/cases/{case_id}"] = api_auth.OPERATORS
