"""Deadline timers. Each open task carries the next day its status can change (`next_check`,
indexed); a tick reads only tasks whose day has come, so its cost follows what is due, not how
many cases are open. Status and outbox event commit together, and the update is conditional
on the old status, so a transition fires once across restarts and replicas."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from sqlalchemy import select, update

from services.kit.service import Service
from services.planning.domain import OPEN, next_check, status_on
from services.planning.handlers import emit_status, today
from services.planning.store import Task, TimelineEntry

log = logging.getLogger("planning.timers")


async def tick(svc: Service, day: date, limit: int = 500) -> int:
    """Settle the status of every task whose day has come; returns how many changed."""
    soon = svc.settings.due_soon_working_days  # type: ignore[attr-defined]
    changed = 0
    async with svc.outbox.write_lock, svc.sessions() as session, session.begin():
        tasks = (
            await session.scalars(
                select(Task)
                .where(Task.next_check <= day, Task.status.in_(OPEN))
                .order_by(Task.next_check)
                .limit(limit)
            )
        ).all()
        for task in tasks:
            new = status_on(task.due, day, soon)
            values = {"status": new, "next_check": next_check(task.due, new, soon)}
            if new == "overdue":
                values["days_late"] = (day - task.due).days
            result = await session.execute(
                update(Task)
                .where(Task.id == task.id, Task.status == task.status)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1 or new == task.status:
                continue
            emit_status(session, svc.outbox, task, status=new, days_late=values.get("days_late", 0))
            if new == "overdue":
                session.add(
                    TimelineEntry(
                        case_id=task.case_id,
                        on=day,
                        kind="task_overdue",
                        detail={"task": task.task, "due": str(task.due)},
                    )
                )
            changed += 1
    if changed:
        svc.outbox.wake()
        log.info("task statuses changed", extra={"count": changed, "day": str(day)})
    return changed


# Set when tasks are scheduled, so their first status is settled at once, not a tick later.
wake = asyncio.Event()


async def run_timers(svc: Service) -> None:
    interval = svc.settings.timer_interval  # type: ignore[attr-defined]
    while True:
        wake.clear()
        try:
            changed = await tick(svc, today())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("timer tick failed; will retry", exc_info=True)
            changed = 0
        if changed < 500:
            try:
                await asyncio.wait_for(wake.wait(), interval)
            except TimeoutError:
                pass
