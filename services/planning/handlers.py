"""Planning's handlers: case events and life-cycle reports move pathways forward."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import messages as m
from services.kit.outbox import Outbox
from services.kit.service import Context, HandlerFunc, NotYet, Rejected
from services.planning.calendar import due_date
from services.planning.domain import OPEN, days_late, missing_before
from services.planning.pathway import Pathway, Step
from services.planning.store import Milestone, PlanningCase, Task, TimelineEntry

log = logging.getLogger("planning")
OSLO = ZoneInfo("Europe/Oslo")
MAIN = "ema-care-centre"


_fixed_today: date | None = None


def set_today(day: date | None) -> None:
    """Pin "today" (EMA_TODAY) so demos and tests can step through a deadline's life."""
    global _fixed_today
    _fixed_today = day


def today() -> date:
    return _fixed_today or datetime.now(UTC).astimezone(OSLO).date()


def status_message(task: Task, **changes: object) -> m.TaskStatusV1:
    values = {"status": task.status, "days_late": task.days_late, **changes}
    return m.TaskStatusV1(
        task_id=task.id, case_id=task.case_id, case_ref=task.case_ref, task=task.task,
        title_nb=task.title_nb, title_en=task.title_en, kind=task.kind, due=task.due,
        responsible_unit=task.responsible_unit, pathway=task.pathway, **values,
    )  # fmt: skip


def deadline_message(task: Task, pathway: Pathway) -> m.DeadlineScheduledV1:
    return m.DeadlineScheduledV1(
        task_id=task.id, case_id=task.case_id, case_ref=task.case_ref, task=task.task,
        title_nb=task.title_nb, title_en=task.title_en, due=task.due,
        responsible_unit=task.responsible_unit, strength=task.strength,
        legal_ref=task.legal_ref, pathway=pathway.ref,
    )  # fmt: skip


class Planner:
    """Moves a case's pathways forward when milestones are reached."""

    def __init__(self, pathways: dict[str, Pathway], bufetat_unit: str) -> None:
        self.pathways = pathways
        self.bufetat_unit = bufetat_unit

    def pathway(self, ref: str) -> Pathway:
        return self.pathways[ref.split("@")[0]]

    def responsible(self, role: str, case: PlanningCase, starter: str | None) -> str:
        if role == "care_centre":
            return case.care_centre
        if role.startswith("bufetat"):
            return self.bufetat_unit
        if role == "representative" and case.representative_unit:
            return case.representative_unit
        return starter or case.care_centre

    async def reached(self, session: AsyncSession, case_id: str, pathway: str) -> set[str]:
        rows = await session.scalars(
            select(Milestone.name).where(Milestone.case_id == case_id, Milestone.pathway == pathway)
        )
        return set(rows)

    async def reach(self, session: AsyncSession, outbox: Outbox, case: PlanningCase,
                    pathway: Pathway, milestone: str, on: date,
                    starter: str | None = None) -> None:  # fmt: skip
        """Record a milestone, complete the tasks it completes, start the steps it starts.
        The same milestone again on the same day changes nothing; on another day (a planned
        move-out moved, say) the open tasks it started are moved to their new dates."""
        if await session.scalar(select(Milestone.id).where(
                Milestone.case_id == case.case_id, Milestone.pathway == pathway.id,
                Milestone.name == milestone, Milestone.on == on)):  # fmt: skip
            return
        session.add(Milestone(case_id=case.case_id, pathway=pathway.id, name=milestone, on=on))
        session.add(TimelineEntry(case_id=case.case_id, on=on, kind=milestone,
                                  detail={"pathway": pathway.ref}))  # fmt: skip
        for step in pathway.steps_completed_by(milestone):
            for task in await self.open_tasks(session, case.case_id, pathway.id, step.task):
                await self.complete(session, outbox, case, task, on, pathway)
        for step in pathway.steps:
            if step.recurrence and step.recurrence.until == milestone:
                for task in await self.open_tasks(session, case.case_id, pathway.id, step.task):
                    await self.cancel(session, outbox, task)
        for step in pathway.steps_started_by(milestone):
            due = due_date(on, step.offset)
            open_ = await self.open_tasks(session, case.case_id, pathway.id, step.task)
            if open_:
                for task in open_:
                    task.due, task.status, task.next_check = due, "scheduled", min(due, today())
                    outbox.add(session, "no.ema.planning.deadline-scheduled.v1",
                               deadline_message(task, pathway), case_id=case.case_id)  # fmt: skip
                continue
            seq = await session.scalar(select(func.max(Task.seq)).where(
                Task.case_id == case.case_id, Task.pathway == pathway.id,
                Task.task == step.task))  # fmt: skip
            self.schedule(session, outbox, case, pathway, step, due, (seq or 0) + 1, starter)

    async def open_tasks(self, session: AsyncSession, case_id: str, pathway: str,
                         task: str | None = None) -> list[Task]:  # fmt: skip
        query = select(Task).where(Task.case_id == case_id, Task.pathway == pathway,
                                   Task.status.in_(OPEN))  # fmt: skip
        if task:
            query = query.where(Task.task == task)
        return list((await session.scalars(query.order_by(Task.due))).all())

    def schedule(self, session: AsyncSession, outbox: Outbox, case: PlanningCase,
                 pathway: Pathway, step: Step, due: date, seq: int,
                 starter: str | None) -> Task:  # fmt: skip
        task = Task(
            id=str(uuid.uuid4()), case_id=case.case_id, case_ref=case.case_ref,
            pathway=pathway.id, task=step.task, seq=seq, kind=step.kind,
            title_nb=step.title_nb, title_en=step.title_en, due=due,
            responsible_unit=self.responsible(step.responsible, case, starter),
            strength=step.strength, legal_ref=step.legal_ref, status="scheduled",
            next_check=min(due, today()),  # the timer settles the status right away
        )  # fmt: skip
        session.add(task)
        outbox.add(session, "no.ema.planning.deadline-scheduled.v1",
                   deadline_message(task, pathway), case_id=case.case_id)  # fmt: skip
        log.info("deadline scheduled", extra={"case_ref": case.case_ref, "task": step.task,
                                              "due": str(due), "seq": seq})  # fmt: skip
        return task

    async def complete(self, session: AsyncSession, outbox: Outbox, case: PlanningCase,
                       task: Task, on: date, pathway: Pathway) -> None:  # fmt: skip
        task.status, task.done_on, task.next_check = "done", on, None
        task.days_late = days_late(task.due, on)
        outbox.add(session, "no.ema.planning.task-status.v1", status_message(task),
                   case_id=task.case_id)  # fmt: skip
        session.add(TimelineEntry(case_id=task.case_id, on=on, kind="task_done",
                                  detail={"task": task.task, "due": str(task.due),
                                          "days_late": task.days_late}))  # fmt: skip
        step = pathway.step(task.task)
        if step and step.recurrence:
            if step.recurrence.until not in await self.reached(session, case.case_id, pathway.id):
                self.schedule(session, outbox, case, pathway, step,
                              due_date(task.due, step.recurrence.every), task.seq + 1,
                              task.responsible_unit)  # fmt: skip

    async def cancel(self, session: AsyncSession, outbox: Outbox, task: Task) -> None:
        task.status, task.next_check = "cancelled", None
        outbox.add(session, "no.ema.planning.task-status.v1", status_message(task),
                   case_id=task.case_id)  # fmt: skip

    async def close(self, session: AsyncSession, outbox: Outbox, case: PlanningCase,
                    reason: str, on: date) -> None:  # fmt: skip
        for task in (await session.scalars(select(Task).where(
                Task.case_id == case.case_id, Task.status.in_(OPEN)))).all():  # fmt: skip
            await self.cancel(session, outbox, task)
        case.closed, case.closed_on = reason, on
        session.add(TimelineEntry(case_id=case.case_id, on=on, kind="closed",
                                  detail={"reason": reason}))  # fmt: skip
        outbox.add(session, "no.ema.case.closed.v1", m.CaseClosedV1(
            case_id=case.case_id, case_ref=case.case_ref, reason=reason, closed_on=on,
        ), case_id=case.case_id)  # fmt: skip


# -- message handlers --------------------------------------------------------------------------


def make_handlers(planner: Planner) -> dict[str, HandlerFunc]:
    main = planner.pathways[MAIN]

    async def case_of(ctx: Context, case_id: str) -> PlanningCase:
        case = await ctx.session.get(PlanningCase, case_id)
        if case is None:
            raise NotYet(f"case_id: no case {case_id!r} is known to planning")
        if case.closed:
            raise Rejected(f"case_id: case {case.case_ref} is closed ({case.closed})")
        return case

    async def milestone(ctx: Context, case: PlanningCase, name: str, on: date,
                        pathway: Pathway = main) -> None:  # fmt: skip
        if on > today() and not name.endswith("_planned"):
            raise Rejected(f"{name}: the date {on} lies in the future")
        missing = missing_before(name, await planner.reached(ctx.session, case.case_id,
                                                             pathway.id))  # fmt: skip
        if missing:
            raise Rejected(f"{name}: not possible before {', '.join(missing)} for case "
                           f"{case.case_ref}")  # fmt: skip
        await planner.reach(ctx.session, ctx.outbox, case, pathway, name, on)

    def from_centre(ctx: Context, case: PlanningCase) -> None:
        if ctx.sender.id != case.care_centre:
            raise Rejected(f"source: {ctx.sender.id!r} is not the care centre of case "
                           f"{case.case_ref}")  # fmt: skip

    async def case_opened(ctx: Context) -> None:
        data: m.CaseOpenedV1 = ctx.data
        if await ctx.session.get(PlanningCase, data.case_id):
            return
        arrival = data.arrived_at.astimezone(OSLO).date()
        case = PlanningCase(case_id=data.case_id, case_ref=data.case_ref,
                            care_centre=data.care_centre, arrival=arrival)  # fmt: skip
        ctx.session.add(case)
        await planner.reach(ctx.session, ctx.outbox, case, main, "arrival", arrival)

    async def representative(ctx: Context) -> None:
        data: m.CaseRepresentativeV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        case.representative_unit = data.representative_unit
        ctx.session.add(TimelineEntry(case_id=case.case_id, on=data.appointed_on,
                                      kind="representative_appointed",
                                      detail={"unit": data.representative_unit}))  # fmt: skip

    async def transferred(ctx: Context) -> None:
        data: m.CaseTransferredV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        case.care_centre = data.to_centre
        moved = (await ctx.session.scalars(select(Task).where(
            Task.case_id == case.case_id, Task.status.in_(OPEN),
            Task.responsible_unit == data.from_centre))).all()  # fmt: skip
        for task in moved:  # the new centre hears of every open task it takes over
            task.responsible_unit = data.to_centre
            ctx.emit("no.ema.planning.deadline-scheduled.v1",
                     deadline_message(task, planner.pathway(task.pathway)),
                     case_id=case.case_id)  # fmt: skip
        ctx.session.add(TimelineEntry(
            case_id=case.case_id, on=data.transferred_at.astimezone(OSLO).date(),
            kind="transferred", detail={"from": data.from_centre, "to": data.to_centre,
                                        "tasks_moved": len(moved)}))  # fmt: skip

    async def residence(ctx: Context) -> None:
        data: m.CaseResidenceDecidedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        if data.outcome == "granted":
            await milestone(ctx, case, "residence_granted", data.decided_on)
        else:
            await milestone(ctx, case, "residence_refused", data.decided_on)
            await planner.close(ctx.session, ctx.outbox, case, "returned", data.decided_on)

    async def settled(ctx: Context) -> None:
        data: m.CaseSettledV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        await milestone(ctx, case, "settled", data.settled_on)
        await planner.close(ctx.session, ctx.outbox, case, "settled", data.settled_on)

    async def kopp(ctx: Context) -> None:
        data: m.KoppSubmittedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        from_centre(ctx, case)
        await milestone(ctx, case, "kopp_submitted", data.submitted_on)

    async def decision(ctx: Context) -> None:
        data: m.FollowUpDecidedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        if not case.representative_unit:
            raise Rejected(f"addressed_to: case {case.case_ref} has no representative yet; a "
                           "follow-up decision is addressed to the representative")  # fmt: skip
        if data.addressed_to != case.representative_unit:
            raise Rejected(f"addressed_to: {data.addressed_to!r} is not the representative "
                           f"{case.representative_unit!r}")  # fmt: skip
        if case.care_centre not in data.copy_to:
            raise Rejected(f"copy_to: the care centre {case.care_centre!r} must get a copy")
        if not data.appeal_right_noted:
            raise Rejected("appeal_right_noted: the decision must state the right of appeal")
        await milestone(ctx, case, "follow_up_decision", data.decided_on)

    async def map_established(ctx: Context) -> None:
        data: m.MapEstablishedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        from_centre(ctx, case)
        await milestone(ctx, case, "map_established", data.established_on)

    async def need_changed(ctx: Context) -> None:
        data: m.NeedChangedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        from_centre(ctx, case)
        await milestone(ctx, case, "need_changed", data.reported_on)

    async def task_completed(ctx: Context) -> None:
        data: m.TaskCompletedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        if data.completed_on > today():
            raise Rejected(f"completed_on: {data.completed_on} lies in the future")
        tasks = (await ctx.session.scalars(select(Task).where(
            Task.case_id == case.case_id, Task.task == data.task, Task.status.in_(OPEN)
        ).order_by(Task.due))).all()  # fmt: skip
        if not tasks:
            raise Rejected(f"task: no open task {data.task!r} in case {case.case_ref}")
        task = tasks[0]
        if ctx.sender.id != task.responsible_unit and ctx.sender.kind != "bufetat_region":
            raise Rejected(f"source: {ctx.sender.id!r} is not responsible for {data.task!r}")
        await planner.complete(ctx.session, ctx.outbox, case, task, data.completed_on,
                               planner.pathway(task.pathway))  # fmt: skip

    async def pathway_started(ctx: Context) -> None:
        data: m.PathwayStartedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        pathway = planner.pathways.get(data.pathway)
        if pathway is None or pathway.id == MAIN:
            raise Rejected(
                f"pathway: {data.pathway!r} is not a pathway that can be started; "
                f"known: {', '.join(sorted(set(planner.pathways) - {MAIN}))}"
            )
        if await planner.reached(ctx.session, case.case_id, pathway.id):
            raise Rejected(f"pathway: {data.pathway!r} already runs for case {case.case_ref}")
        if data.started_on > today():
            raise Rejected(f"started_on: {data.started_on} lies in the future")
        await planner.reach(ctx.session, ctx.outbox, case, pathway, "admission",
                            data.started_on, starter=ctx.sender.id)  # fmt: skip

    async def milestone_reported(ctx: Context) -> None:
        data: m.MilestoneReportedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        pathway = planner.pathways.get(data.pathway)
        if pathway is None or not await planner.reached(ctx.session, case.case_id, data.pathway):
            raise Rejected(f"pathway: {data.pathway!r} does not run for case {case.case_ref}")
        if data.milestone not in pathway.milestones:
            raise Rejected(f"milestone: {data.milestone!r} is not a milestone of {pathway.ref}; "
                           f"known: {', '.join(pathway.milestones)}")  # fmt: skip
        await milestone(ctx, case, data.milestone, data.on, pathway)

    return {
        "no.ema.case.opened.v1": case_opened,
        "no.ema.case.representative.v1": representative,
        "no.ema.case.transferred.v1": transferred,
        "no.ema.case.residence-decided.v1": residence,
        "no.ema.case.settled.v1": settled,
        "no.ema.planning.kopp-submitted.v1": kopp,
        "no.ema.planning.follow-up-decided.v1": decision,
        "no.ema.planning.map-established.v1": map_established,
        "no.ema.planning.need-changed.v1": need_changed,
        "no.ema.planning.task-completed.v1": task_completed,
        "no.ema.planning.pathway-started.v1": pathway_started,
        "no.ema.planning.milestone-reported.v1": milestone_reported,
    }
