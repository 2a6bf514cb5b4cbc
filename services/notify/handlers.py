"""Notify's handlers: deadlines and their status changes reach the right roles, once."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.messages import CaseTasksV1, TaskNoticesV1, TaskNoticeV1
from services.kit.db import per_transaction, queue_rows, utcnow
from services.kit.service import Context
from services.notify.routing import emergency_recipients, event_key, hears, recipients
from services.notify.store import Delivery, Notification, Recipient
from services.notify.templates import render_both

log = logging.getLogger("notify")
RECIPIENTS = "notify_recipients"


DEADLINE = "no.ema.planning.deadline-scheduled.v2"
STATUS = "no.ema.planning.task-status.v2"


Notices = dict[str, list[TaskNoticeV1]]  # addressed unit -> its notices, in order


def task_notice(data: Any, notices: Notices) -> None:
    """The responsible unit, and each unit told of the task, hear of it on the bus, each
    addressed alone: add the task's notice to each of their lists. Built without validating
    again: every field comes from the validated planning item, whose field is the same or
    narrower (tests/unit/test_notice_fields.py proves it from the models)."""
    notice = TaskNoticeV1.model_construct(
        task_id=data.task_id,
        case_id=data.case_id,
        case_ref=data.case_ref,
        task=data.task,
        title_nb=data.title_nb,
        title_en=data.title_en,
        due=data.due,
        status=getattr(data, "status", "scheduled"),
        days_late=getattr(data, "days_late", 0),
        responsible_unit=data.responsible_unit,
        legal_ref=getattr(data, "legal_ref", None),
        pathway=data.pathway,
    )
    told = [data.responsible_unit] + [c.unit for c in getattr(data, "copies", [])]
    for unit in dict.fromkeys(told):
        notices.setdefault(unit, []).append(notice)


# How each unit hears its tasks ("each" or "grouped", from the unit directory), kept as long
# as the directory's own cache keeps a unit, misses included: most addressees of a
# deployment's tasks (Bufetat's regions, the Statsforvalter) may never register a system.
_FORMS: dict[str, tuple[float, str]] = {}
FORM_TTL = 5.0


async def notice_form(ctx: Context, unit: str) -> str:
    hit = _FORMS.get(unit)
    now = time.monotonic()
    if hit is None or now - hit[0] >= FORM_TTL:
        registered = await ctx.directory.get(unit)
        hit = _FORMS[unit] = (now, registered.notices if registered else "each")
    return hit[1]


async def send_notices(ctx: Context, case_id: str, case_ref: str, notices: Notices) -> None:
    """Each unit's notices as it chose to hear them (docs/decisions/0020): one task-notice.v1
    per task, or all of them in one task-notices.v1."""
    for unit, items in notices.items():
        if await notice_form(ctx, unit) == "grouped":
            grouped = TaskNoticesV1.model_construct(
                case_id=case_id, case_ref=case_ref, unit=unit, notices=items
            )
            ctx.emit("no.ema.notify.task-notices.v1", grouped, case_id=case_id, unit=unit)
        else:
            for notice in items:
                ctx.emit("no.ema.notify.task-notice.v1", notice, case_id=case_id, unit=unit)


Wanted = list[tuple[Any, str, str, str, str]]  # data, unit, role, event key, dedupe key


def on_task(event_type: str, data: Any, wanted: Wanted, notices: Notices) -> None:
    """One scheduled task or one status change: its notices to its units, and the
    notifications its roles should have added to `wanted`."""
    task_notice(data, notices)
    key = event_key(event_type, getattr(data, "status", None), data.kind)
    if key is None:
        return
    # One notice per task and state, however often the event arrives (redelivered, or sent
    # again under a new id).
    copies = [(c.unit, c.role) for c in data.copies]
    for unit, role in recipients(key, data.responsible_unit, data.role, copies):
        wanted.append((data, unit, role, key, f"{key}:{data.task_id}"))


async def on_planning_event(ctx: Context) -> None:
    """A case's tasks scheduled and statuses changed (no.ema.planning.case-tasks.v1), or, from
    a planning service of before 0018, one task's deadline or status (v2)."""
    data, wanted, notices = ctx.data, [], {}
    if isinstance(data, CaseTasksV1):
        for item in data.scheduled:
            on_task(DEADLINE, item, wanted, notices)
        for item in data.statuses:
            on_task(STATUS, item, wanted, notices)
    else:
        on_task(ctx.event.type, data, wanted, notices)
    await send_notices(ctx, data.case_id, data.case_ref, notices)
    await notify(ctx, wanted)


async def on_emergency_event(ctx: Context) -> None:
    """A break-the-glass release (the representative is told) or its overdue review (the
    privacy officer is)."""
    data = ctx.data
    await notify(
        ctx,
        [
            (data, unit, role, key, f"{key}:{data.decision_id}")
            for unit, role, key in emergency_recipients(ctx.event.type, data)
        ],
    )


_RECORD: dict[str, Any] = {}


def record_once(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT (unit, role, dedupe_key) DO NOTHING RETURNING id, for the
    session's database (SQLite or PostgreSQL); built once, executed with parameters."""
    dialect = session.bind.dialect.name
    if dialect not in _RECORD:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        _RECORD[dialect] = (
            insert(Notification)
            .on_conflict_do_nothing(index_elements=["unit", "role", "dedupe_key"])
            .returning(Notification.id)
        )
    return _RECORD[dialect]


async def recipient_of(session: AsyncSession, unit: str, role: str) -> Recipient | None:
    """The recipient of a role at a unit, read once per transaction."""
    found: dict[tuple[str, str], Recipient | None] = per_transaction(session, RECIPIENTS, dict)
    if (unit, role) not in found:
        found[unit, role] = await session.scalar(
            select(Recipient).where(Recipient.unit == unit, Recipient.role == role)
        )
    return found[unit, role]


async def notify(ctx: Context, wanted: Wanted) -> None:
    """Record each wanted notification once per (unit, role, dedupe key), all in one
    statement, with deliveries on the channels each recipient hears it on."""
    notes: dict[tuple[str, str, str], dict[str, Any]] = {}
    texts: dict[tuple[str, int], tuple[str, str]] = {}  # one rendering per task and event
    now = utcnow()
    for data, unit, role, key, dedupe in wanted:
        if (unit, role, dedupe) in notes:
            continue
        if (key, id(data)) not in texts:
            texts[key, id(data)] = render_both(key, data)
        text_nb, text_en = texts[key, id(data)]
        notes[unit, role, dedupe] = {
            "id": str(uuid.uuid4()),
            "unit": unit,
            "role": role,
            "case_ref": data.case_ref,
            "event_type": key,
            "dedupe_key": dedupe,
            "source_event_id": ctx.event.id,
            "text_nb": text_nb,
            "text_en": text_en,
            "channel": "inbox",
            "created_at": now,
        }
    if not notes:
        return
    # The unique constraint decides what is new, in one statement (redelivered, sent again
    # under a new id, or recorded by a replica at the same moment): only new rows come back.
    connection = await ctx.session.connection()
    rows = list(notes.values())
    recorded = set((await connection.execute(record_once(ctx.session), rows)).scalars())
    # One log line for the message's notifications (ids and roles, never a text).
    told = []
    for n in rows:
        if n["id"] in recorded:
            channels = await delivered(ctx, n)
            told.append(
                {"unit": n["unit"], "role": n["role"], "key": n["event_type"], "channels": channels}
            )
    if told:
        log.info(
            "notifications recorded",
            extra={"case_ref": rows[0]["case_ref"], "count": len(told), "notifications": told},
        )


async def delivered(ctx: Context, note: dict[str, Any]) -> list[str]:
    """Queue a recorded notification's deliveries on the channels its recipient hears; the
    channels."""
    role, key = note["role"], note["event_type"]
    recipient = await recipient_of(ctx.session, note["unit"], role)
    channels = []
    if recipient and hears(role, recipient.events, key):
        channels = [
            c for c, on in (("email", recipient.email), ("webhook", recipient.webhook_url)) if on
        ]
        for channel in channels:
            queue_rows(
                ctx.session,
                Delivery,
                {
                    "id": str(uuid.uuid4()),
                    "notification_id": note["id"],
                    "recipient_id": recipient.id,
                    "channel": channel,
                },
            )
    return channels
