"""Notify's handlers: a scheduled deadline lands in the responsible unit's inbox."""

from __future__ import annotations

import logging
import uuid

from contracts.messages import DeadlineScheduledV1, NotificationRecordedV1
from services.kit.service import Context
from services.notify.store import Notification
from services.notify.templates import render

log = logging.getLogger("notify")

CONTACT_PERSON = "contact_person"


async def on_deadline_scheduled(ctx: Context) -> None:
    data: DeadlineScheduledV1 = ctx.data
    note = Notification(
        id=str(uuid.uuid4()),
        unit=data.responsible_unit,
        role=CONTACT_PERSON,
        case_ref=data.case_ref,
        event_type=ctx.event.type,
        source_event_id=ctx.event.id,
        text_nb=render(ctx.event.type, data, "nb"),
        text_en=render(ctx.event.type, data, "en"),
    )
    ctx.session.add(note)
    ctx.emit(
        "no.ema.notify.notification-recorded.v1",
        NotificationRecordedV1(
            notification_id=note.id, case_ref=note.case_ref, unit=note.unit, role=note.role,
            event_type=note.event_type, channel="inbox",
        ),
        case_id=data.case_id,
    )  # fmt: skip
    log.info("notification recorded", extra={"case_ref": note.case_ref, "unit": note.unit})
