"""Wiring for the notify service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select

from contracts.fields import UNIT_ID_PATTERN
from services.kit import api_auth
from services.kit.service import Service
from services.kit.settings import Settings
from services.kit.verify import describe
from services.notify import handlers
from services.notify.channels import webhook_problem
from services.notify.routing import EVENT_KEYS, ROLES
from services.notify.store import Base, Delivery, Notification, Recipient
from services.notify.worker import run_worker


class NotifySettings(Settings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "emaflyt@localhost"
    smtp_timeout: float = 10.0
    webhook_timeout: float = 10.0
    webhook_hosts: str = Field(
        "",
        description="Hosts webhooks may go to, comma-separated (names or *.suffix); webhooks "
        "are https only. Empty: no webhooks.",
    )
    webhook_ca_file: Path | None = Field(
        None, description="Extra CA certificates for webhook hosts (an internal CA)."
    )
    delivery_max_attempts: int = Field(8, ge=1, le=50)
    delivery_backoff: float = Field(2.0, gt=0, description="First retry after this many s.")
    delivery_backoff_max: float = Field(600.0, gt=0)
    worker_interval: float = Field(2.0, gt=0)
    digest_hour: int = Field(7, ge=0, le=24, description="Oslo hour the daily digest goes out.")


service = Service("notify", Base.metadata, NotifySettings, migrate=True)
service.handles(
    "no.ema.planning.case-tasks.v1",
    # Retired (docs/decisions/0018), read while a planning service of before it may send them.
    "no.ema.planning.deadline-scheduled.v2",
    "no.ema.planning.task-status.v2",
    durable="notify-deadlines",
)(handlers.on_planning_event)
service.handles(
    "no.ema.share.emergency-released.v1",
    "no.ema.share.emergency-overdue.v1",
    durable="notify-emergency",
)(handlers.on_emergency_event)
service.background.append(run_worker)


class RecipientIn(BaseModel):
    """A role at a unit and how it is reached. Events empty: the role's defaults."""

    model_config = ConfigDict(extra="forbid")
    unit: str = Field(pattern=UNIT_ID_PATTERN)
    role: str = Field(pattern=r"^[a-z_]{2,64}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    webhook_url: str | None = Field(None, pattern=r"^https?://", max_length=500)
    webhook_secret: str | None = Field(None, min_length=16, max_length=200)
    language: str = Field("nb", pattern=r"^(nb|en)$")
    events: list[str] = Field(default_factory=list)
    digest: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RecipientIn:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        unknown = [e for e in self.events if e not in EVENT_KEYS]
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {', '.join(EVENT_KEYS)}")
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("a webhook needs webhook_secret (16+ characters) for its signature")
        return self


def recipient_json(r: Recipient) -> dict:
    return {
        "unit": r.unit,
        "role": r.role,
        "email": r.email,
        "webhook_url": r.webhook_url,
        "language": r.language,
        "events": r.events,
        "digest": r.digest,
    }


async def put_recipient(request: web.Request) -> web.Response:
    """POST /recipients: add or change a recipient (unit + role)."""
    try:
        data = RecipientIn.model_validate(await request.json())
    except ValidationError as exc:
        return web.json_response({"error": describe(exc)}, status=400)
    except ValueError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    if data.webhook_url:
        problem = webhook_problem(data.webhook_url, service.settings.webhook_hosts)  # type: ignore[attr-defined]
        if problem:
            return web.json_response({"error": problem}, status=400)
    async with service.outbox.write_lock, service.sessions() as session, session.begin():
        row = await session.scalar(
            select(Recipient).where(Recipient.unit == data.unit, Recipient.role == data.role)
        )
        if row is None:
            row = Recipient(unit=data.unit, role=data.role)
            session.add(row)
        for name, value in data.model_dump().items():
            setattr(row, name, value)
    return web.json_response(recipient_json(row), status=200)


async def list_recipients(_request: web.Request) -> web.Response:
    async with service.sessions() as session:
        rows = (await session.scalars(select(Recipient).order_by(Recipient.unit))).all()
    return web.json_response([recipient_json(r) for r in rows])


async def inbox(request: web.Request) -> web.Response:
    """GET /inbox/{unit}?role=...: the unit's notifications, newest first."""
    query = select(Notification).where(Notification.unit == request.match_info["unit"])
    if role := request.query.get("role"):
        query = query.where(Notification.role == role)
    async with service.sessions() as session:
        rows = (
            await session.scalars(query.order_by(Notification.created_at.desc()).limit(200))
        ).all()
    return web.json_response(
        [
            {
                "id": n.id,
                "case_ref": n.case_ref,
                "role": n.role,
                "event_type": n.event_type,
                "text_nb": n.text_nb,
                "text_en": n.text_en,
                "created_at": n.created_at.isoformat(),
            }
            for n in rows
        ]
    )


async def deliveries(request: web.Request) -> web.Response:
    """GET /deliveries?status=...: delivery status (pending, retrying, sent, failed)."""
    query = select(Delivery, Notification).join(
        Notification, Notification.id == Delivery.notification_id
    )
    if status := request.query.get("status"):
        query = query.where(Delivery.status == status)
    async with service.sessions() as session:
        rows = (await session.execute(query.order_by(Delivery.created_at.desc()).limit(500))).all()
        counts = dict(
            (
                await session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                )
            ).all()
        )
    return web.json_response(
        {
            "counts": counts,
            "deliveries": [
                {
                    "id": d.id,
                    "channel": d.channel,
                    "status": d.status,
                    "attempts": d.attempts,
                    "unit": n.unit,
                    "role": n.role,
                    "case_ref": n.case_ref,
                    "event": n.event_type,
                    "last_error": d.last_error,
                    "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                }
                for d, n in rows
            ],
        }
    )


service.access.update(
    {
        # A unit reads its own inbox; recipients (who is told what, where) are an administrator's.
        "/inbox/{unit}": api_auth.allow(
            api_auth.OPERATOR, api_auth.ADMINISTRATOR, unit_param="unit"
        ),
        "GET /recipients": api_auth.allow(api_auth.ADMINISTRATOR, api_auth.OPERATOR),
        "POST /recipients": api_auth.allow(api_auth.ADMINISTRATOR),
        "/deliveries": api_auth.allow(api_auth.ADMINISTRATOR, api_auth.OPERATOR),
    }
)
service.routes += [
    web.get("/inbox/{unit}", inbox),
    web.get("/recipients", list_recipients),
    web.post("/recipients", put_recipient),
    web.get("/deliveries", deliveries),
]
