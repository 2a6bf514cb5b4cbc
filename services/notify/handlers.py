"""Notify's handlers: deadlines and their status changes reach the right roles, once."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from contracts.messages import NotificationRecordedV1, TaskNoticeV1
from services.kit.service import Context
from services.notify.routing import ROUTES, event_key, hears
from services.notify.store import Delivery, Notification, Recipient
from services.notify.templates import render

log = logging.getLogger("notify")


def task_notice(ctx: Context) -> None:
    """The responsible unit hears of its task on the bus, addressed to it alone."""
    data = ctx.data
    status = getattr(data, "status", "scheduled")
    ctx.emit("no.ema.notify.task-notice.v1", TaskNoticeV1(
        task_id=data.task_id, case_id=data.case_id, case_ref=data.case_ref, task=data.task,
        title_nb=data.title_nb, title_en=data.title_en, due=data.due, status=status,
        days_late=getattr(data, "days_late", 0), responsible_unit=data.responsible_unit,
        legal_ref=getattr(data, "legal_ref", None), pathway=data.pathway,
    ), case_id=data.case_id, unit=data.responsible_unit)  # fmt: skip


async def on_planning_event(ctx: Context) -> None:
    data = ctx.data
    task_notice(ctx)
    key = event_key(ctx.event.type, getattr(data, "status", None))
    if key is None:
        return
    # One notice per task and state, however often the event arrives (redelivered, or sent
    # again under a new id).
    dedupe = f"{key}:{data.task_id}"
    for role in ROUTES[key]:
        seen = await ctx.session.scalar(select(Notification.id).where(
            Notification.unit == data.responsible_unit, Notification.role == role,
            Notification.dedupe_key == dedupe))  # fmt: skip
        if seen:
            continue
        note = Notification(
            id=str(uuid.uuid4()), unit=data.responsible_unit, role=role, case_ref=data.case_ref,
            event_type=key, dedupe_key=dedupe, source_event_id=ctx.event.id,
            text_nb=render(key, data, "nb"), text_en=render(key, data, "en"),
        )  # fmt: skip
        ctx.session.add(note)
        recipient = await ctx.session.scalar(select(Recipient).where(
            Recipient.unit == note.unit, Recipient.role == role))  # fmt: skip
        channels = []
        if recipient and hears(role, recipient.events, key):
            channels = [c for c, on in (("email", recipient.email),
                                        ("webhook", recipient.webhook_url)) if on]  # fmt: skip
            for channel in channels:
                ctx.session.add(Delivery(id=str(uuid.uuid4()), notification_id=note.id,
                                         recipient_id=recipient.id, channel=channel))  # fmt: skip
        ctx.emit("no.ema.notify.notification-recorded.v1", NotificationRecordedV1(
            notification_id=note.id, case_ref=note.case_ref, unit=note.unit, role=role,
            event_type=key, channel="inbox",
        ), case_id=data.case_id)  # fmt: skip
        log.info("notification recorded", extra={"case_ref": note.case_ref, "unit": note.unit,
                                                  "role": role, "key": key,
                                                  "channels": channels})  # fmt: skip
