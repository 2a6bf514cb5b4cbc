"""Notify's handlers: deadlines and their status changes land in the right inboxes."""

from __future__ import annotations

import logging
import uuid

from contracts.messages import NotificationRecordedV1
from services.kit.service import Context
from services.notify.store import Notification
from services.notify.templates import render, template_key

log = logging.getLogger("notify")

CONTACT_PERSON = "contact_person"
LEADER = "centre_leader"


def recipients(status: str | None) -> list[str]:
    """Roles at the responsible unit who hear of it; an overdue task is escalated."""
    return [CONTACT_PERSON, LEADER] if status == "overdue" else [CONTACT_PERSON]


async def on_planning_event(ctx: Context) -> None:
    data = ctx.data
    key = template_key(ctx.event.type, data)
    if key is None:
        return
    for role in recipients(getattr(data, "status", None)):
        note = Notification(
            id=str(uuid.uuid4()), unit=data.responsible_unit, role=role,
            case_ref=data.case_ref, event_type=key, source_event_id=ctx.event.id,
            text_nb=render(key, data, "nb"), text_en=render(key, data, "en"),
        )  # fmt: skip
        ctx.session.add(note)
        ctx.emit("no.ema.notify.notification-recorded.v1", NotificationRecordedV1(
            notification_id=note.id, case_ref=note.case_ref, unit=note.unit, role=note.role,
            event_type=key, channel="inbox",
        ), case_id=data.case_id)  # fmt: skip
        log.info(
            "notification recorded",
            extra={"case_ref": note.case_ref, "unit": note.unit, "role": role, "key": key},
        )
