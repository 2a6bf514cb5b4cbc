"""Wiring for the planning service."""

from aiohttp import web
from sqlalchemy import select

from services.kit.service import Service
from services.kit.settings import Settings
from services.planning.handlers import make_case_opened_handler
from services.planning.pathway import PATHWAY_DIR, load_pathway
from services.planning.store import Base, Task

PATHWAY = load_pathway(PATHWAY_DIR / "ema-care-centre.json")


class PlanningSettings(Settings):
    bufetat_unit: str = "bufetat-ost"


service = Service("planning", Base.metadata, PlanningSettings)
service.handles("no.ema.case.opened.v1", durable="planning-cases")(
    make_case_opened_handler(PATHWAY)
)


async def case_tasks(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/tasks: the case's tasks and deadlines as JSON."""
    async with service.sessions() as session:
        tasks = (
            await session.scalars(
                select(Task).where(Task.case_id == request.match_info["case_id"]).order_by(Task.due)
            )
        ).all()
    return web.json_response(
        [
            {"task": t.task, "due": t.due.isoformat(), "status": t.status,
             "responsible_unit": t.responsible_unit, "strength": t.strength,
             "legal_ref": t.legal_ref, "pathway": t.pathway}
            for t in tasks
        ]
    )  # fmt: skip


service.routes.append(web.get("/cases/{case_id}/tasks", case_tasks))
