"""Wiring for the notify service."""

from aiohttp import web
from sqlalchemy import select

from services.kit.service import Service
from services.notify import handlers
from services.notify.store import Base, Notification

service = Service("notify", Base.metadata)
service.handles(
    "no.ema.planning.deadline-scheduled.v1",
    "no.ema.planning.task-status.v1",
    durable="notify-deadlines",
)(handlers.on_planning_event)


async def inbox(request: web.Request) -> web.Response:
    """GET /inbox/{unit}: the unit's notifications, newest first."""
    async with service.sessions() as session:
        rows = (
            await session.scalars(
                select(Notification)
                .where(Notification.unit == request.match_info["unit"])
                .order_by(Notification.created_at.desc())
                .limit(200)
            )
        ).all()
    return web.json_response(
        [
            {"id": n.id, "case_ref": n.case_ref, "role": n.role, "event_type": n.event_type,
             "text_nb": n.text_nb, "text_en": n.text_en, "channel": n.channel,
             "created_at": n.created_at.isoformat()}
            for n in rows
        ]
    )  # fmt: skip


service.routes.append(web.get("/inbox/{unit}", inbox))
