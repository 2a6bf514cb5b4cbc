"""Planning's handlers: a case event starts the pathway steps it triggers."""

from __future__ import annotations

import logging
import uuid
from zoneinfo import ZoneInfo

from contracts.messages import CaseOpenedV1, DeadlineScheduledV1
from services.kit.service import Context, HandlerFunc
from services.planning.calendar import due_date
from services.planning.pathway import Pathway
from services.planning.store import Task

log = logging.getLogger("planning")
OSLO = ZoneInfo("Europe/Oslo")


def responsible_unit(role: str, case: CaseOpenedV1, bufetat_unit: str) -> str:
    return case.care_centre if role == "care_centre" else bufetat_unit


def make_case_opened_handler(pathway: Pathway) -> HandlerFunc:
    async def on_case_opened(ctx: Context) -> None:
        case: CaseOpenedV1 = ctx.data
        arrival_day = case.arrived_at.astimezone(OSLO).date()
        for step in pathway.steps_started_by(ctx.event.type):
            task = Task(
                id=str(uuid.uuid4()),
                case_id=case.case_id,
                case_ref=case.case_ref,
                task=step.task,
                due=due_date(arrival_day, step.offset),
                responsible_unit=responsible_unit(
                    step.responsible, case, ctx.settings.bufetat_unit
                ),
                strength=step.strength,
                legal_ref=step.legal_ref,
                pathway=pathway.ref,
            )
            ctx.session.add(task)
            ctx.emit(
                "no.ema.planning.deadline-scheduled.v1",
                DeadlineScheduledV1(
                    task_id=task.id, case_id=task.case_id, case_ref=task.case_ref,
                    task=task.task, title_nb=step.title_nb, title_en=step.title_en,
                    due=task.due, responsible_unit=task.responsible_unit,
                    strength=step.strength, legal_ref=step.legal_ref, pathway=pathway.ref,
                ),
                case_id=case.case_id,
            )  # fmt: skip
            log.info(
                "deadline scheduled",
                extra={"case_ref": task.case_ref, "task": task.task, "due": str(task.due)},
            )

    return on_case_opened
