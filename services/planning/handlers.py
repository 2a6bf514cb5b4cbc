"""Planning's handlers: case events and life-cycle reports move pathways forward."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from types import SimpleNamespace

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from contracts import messages as m
from services.kit.clock import OSLO, set_today, today
from services.kit.db import at_commit, queue_rows, utcnow
from services.kit.directory import Directory
from services.kit.outbox import Outbox, current_correlation
from services.kit.service import Context, HandlerFunc, NotYet, Rejected
from services.planning.calendar import Born, NoBirthDate, raw_due, recurs_past, step_due
from services.planning.domain import (
    OPEN,
    Facts,
    Places,
    applies,
    days_late,
    load_list,
    load_places,
    missing_before,
    next_check,
    status_on,
)
from services.planning.pathway import Pathway, Step
from services.planning.store import Milestone, PathwayUnit, PlanningCase, Task, TimelineEntry

log = logging.getLogger("planning")
CASE_KNOWN = select(PlanningCase.__table__.c.case_id).where(
    PlanningCase.__table__.c.case_id == bindparam("case_id")
)
__all__ = ["OSLO", "Planner", "make_handlers", "set_today", "today"]
MAIN = "ema-care-centre"
# Roles a further pathway's start names (PathwayStartedV2); V1 starts give them to the starter.
PATHWAY_ROLES = ("institution", "institution_leader", "municipal_cws", "bufetat_intake_unit")


def born_of(case: PlanningCase) -> Born | None:
    """The child's birth date as intake registered it, for steps on a birthday."""
    if case.birth_date is None:
        return None
    return Born(case.birth_date, bool(case.birth_date_estimated))


def started_by_units(pathway: Pathway) -> bool:
    """Institution pathways start on `admission` (pathway-started); the follow-up and
    referral pathways are driven by the municipality service (follow-up-reached)."""
    return "admission" in pathway.milestones


def pathway_key(pathway: str, instance: str | None) -> str:
    """One of several runs of a pathway in a case (a referral) is kept as `id#instance`."""
    return f"{pathway}#{instance}" if instance else pathway


CASE_TASKS = "planning_case_tasks"


def case_tasks(
    session: AsyncSession, outbox: Outbox, task: Task | SimpleNamespace
) -> m.CaseTasksV1:
    """The message gathering what this transaction does to the task's case, for the message
    being handled (its correlation): written to the outbox once, when the transaction commits
    (services.kit.db.at_commit; docs/decisions/0018)."""
    pending: dict[tuple[str | None, str], m.CaseTasksV1] = at_commit(
        session, CASE_TASKS, dict, lambda sync, found: _write_case_tasks(sync, outbox, found)
    )
    key = (current_correlation.get(), task.case_id)
    if key not in pending:
        pending[key] = m.CaseTasksV1.model_construct(
            case_id=task.case_id, case_ref=task.case_ref, scheduled=[], statuses=[]
        )
    return pending[key]


def _write_case_tasks(
    session: Session, outbox: Outbox, pending: dict[tuple[str | None, str], m.CaseTasksV1]
) -> None:
    for (correlation, case_id), gathered in pending.items():
        message = m.CaseTasksV1.model_validate(dict(gathered))
        outbox.add(
            session,  # type: ignore[arg-type]
            "no.ema.planning.case-tasks.v1",
            message,
            case_id=case_id,
            correlation_id=correlation,
        )


def emit_status(
    session: AsyncSession, outbox: Outbox, task: Task | SimpleNamespace, **changes: object
) -> None:
    """A status change (with force, reference, role and copies), in the case's message."""
    values = {"status": task.status, "days_late": task.days_late, **changes}
    case_tasks(session, outbox, task).statuses.append(
        m.TaskStatusV2(
            task_id=task.id,
            case_id=task.case_id,
            case_ref=task.case_ref,
            task=task.task,
            title_nb=task.title_nb,
            title_en=task.title_en,
            kind=task.kind,
            due=task.due,
            responsible_unit=task.responsible_unit,
            pathway=task.pathway,
            role=task.role,
            copies=task.copies or [],
            strength=task.strength,
            legal_ref=task.legal_ref,
            **values,
        )
    )


def emit_deadline(
    session: AsyncSession, outbox: Outbox, task: Task | SimpleNamespace, pathway: Pathway
) -> None:
    """A scheduled task or frame (kind, role, copies), in the case's message."""
    case_tasks(session, outbox, task).scheduled.append(
        m.DeadlineScheduledV2(
            task_id=task.id,
            case_id=task.case_id,
            case_ref=task.case_ref,
            task=task.task,
            kind=task.kind,
            title_nb=task.title_nb,
            title_en=task.title_en,
            due=task.due,
            responsible_unit=task.responsible_unit,
            role=task.role,
            copies=task.copies or [],
            strength=task.strength,
            legal_ref=task.legal_ref,
            pathway=pathway.ref,
        )
    )


class Planner:
    """Moves a case's pathways forward when milestones are reached, and names the unit that
    holds each step's role (docs/decisions/0011)."""

    def __init__(
        self,
        pathways: dict[str, Pathway],
        bufetat_unit: str,
        places: Places | None = None,
        lists: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.pathways = pathways
        self.bufetat_unit = bufetat_unit
        self.due_soon_working_days = 2  # the service's setting (services/planning/app.py)
        self.places = places or load_places()
        self.lists = lists or {
            c.nationality_in: load_list(c.nationality_in)
            for p in pathways.values()
            for s in p.steps
            if (c := s.applies_if) is not None and c.nationality_in
        }

    def pathway(self, ref: str) -> Pathway:
        """The pathway of a reference (`id@version`) or a key (`id#instance`)."""
        return self.pathways[ref.split("@")[0].split("#")[0]]

    async def location(self, directory: Directory | None, unit_id: str | None) -> str | None:
        """Where a unit lies (its registered kommunenummer), if known."""
        if directory is None or not unit_id:
            return None
        unit = await directory.get(unit_id)
        return unit.kommunenummer if unit else None

    async def responsible(
        self,
        session: AsyncSession,
        directory: Directory | None,
        case: PlanningCase,
        pathway: Pathway,
        role: str,
        starter: str | None = None,
        key: str | None = None,
    ) -> str:
        """The unit that holds `role` for this case and pathway (`key`: the pathway's key,
        `id#instance` for one of several)."""
        key = key or pathway.id
        if role == "care_centre":
            return case.care_centre
        if role == "bufetat_follow_up":  # Region øst decides for every child (seed 000 L276)
            return self.bufetat_unit
        if role in ("host_municipality", "bufetat_region", "statsforvalter", "representative"):
            kommune = await self.location(directory, case.care_centre)
            if role == "host_municipality":
                # The municipality's duty (seed 004): its unit once the centre's place is known.
                return f"kommune-{kommune}" if kommune else case.care_centre
            if role == "bufetat_region":
                return self.places.region_unit(kommune)
            if role == "representative" and case.representative_unit:
                return case.representative_unit
            return self.places.statsforvalter(kommune)  # no representative yet: who appoints
        held = await session.get(PathwayUnit, (case.case_id, key, role))
        if held is not None:
            return held.unit
        if role == "bufetat_intake_unit":
            institution = await session.get(PathwayUnit, (case.case_id, key, "institution"))
            where = await self.location(directory, institution.unit if institution else starter)
            if where is None and starter and await self._is_bufetat(directory, starter):
                return starter
            return self.places.region_unit(where)
        # A follow-up role not named yet rests with the municipality that holds the case.
        municipality = await session.get(PathwayUnit, (case.case_id, key, "municipality"))
        return starter or (municipality.unit if municipality else case.care_centre)

    async def _is_bufetat(self, directory: Directory | None, unit_id: str) -> bool:
        unit = await directory.get(unit_id) if directory else None
        return bool(unit and unit.kind == m.UnitKind.BUFETAT_REGION)

    async def copies(
        self,
        session: AsyncSession,
        directory: Directory | None,
        case: PlanningCase,
        pathway: Pathway,
        step: Step,
        starter: str | None,
        key: str | None = None,
    ) -> list[dict]:
        out = []
        for copy in step.copy_to:
            unit = await self.responsible(
                session, directory, case, pathway, copy.responsible, starter, key
            )
            out.append({"unit": unit, "role": copy.role})
        return out

    async def reached(self, session: AsyncSession, case_id: str, pathway: str) -> set[str]:
        rows = await session.scalars(
            select(Milestone.name).where(Milestone.case_id == case_id, Milestone.pathway == pathway)
        )
        return set(rows)

    async def started_on(
        self, session: AsyncSession, case_id: str, pathway: str, milestone: str
    ) -> date | None:
        return await session.scalar(
            select(func.max(Milestone.on)).where(
                Milestone.case_id == case_id,
                Milestone.pathway == pathway,
                Milestone.name == milestone,
            )
        )

    async def reach(
        self,
        session: AsyncSession,
        outbox: Outbox,
        case: PlanningCase,
        pathway: Pathway,
        milestone: str,
        on: date,
        starter: str | None = None,
        directory: Directory | None = None,
        facts: Facts | None = None,
        key: str | None = None,
        new_case: bool = False,
    ) -> None:
        """Record a milestone, complete the tasks it completes, cancel those it ends, start
        the steps it starts (those that apply to the child). The same milestone again on the
        same day changes nothing; on another day (a planned move-out moved, say) the open
        tasks it started are moved to their new dates. `key` names one of several runs of a
        pathway in a case (`id#instance`, a referral); by default the pathway's id.
        `new_case`: the case was created in this transaction, so it has no milestones and no
        tasks yet, and neither is read."""
        key = key or pathway.id
        if not new_case and await session.scalar(
            select(Milestone.id).where(
                Milestone.case_id == case.case_id,
                Milestone.pathway == key,
                Milestone.name == milestone,
                Milestone.on == on,
            )
        ):
            return
        session.add(Milestone(case_id=case.case_id, pathway=key, name=milestone, on=on))
        detail = {"pathway": pathway.ref} | ({"instance": key} if key != pathway.id else {})
        session.add(TimelineEntry(case_id=case.case_id, on=on, kind=milestone, detail=detail))
        rule = pathway.counting.non_working_day
        born = born_of(case)
        birthdays = pathway.counting.birthdays
        # The case's tasks in this pathway, read once: open ones by task, the last seq of each.
        tasks = (
            []
            if new_case
            else (
                await session.scalars(
                    select(Task)
                    .where(Task.case_id == case.case_id, Task.pathway == key)
                    .order_by(Task.due)
                )
            ).all()
        )
        last_seq: dict[str, int] = {}
        for t in tasks:
            last_seq[t.task] = max(last_seq.get(t.task, 0), t.seq)

        def open_of(task: str) -> list[Task]:
            return [t for t in tasks if t.task == task and t.status in OPEN]

        for step in pathway.steps_completed_by(milestone):
            for task in open_of(step.task):
                await self.complete(session, outbox, case, task, on, pathway)
        for step in pathway.steps:
            ends = step.recurrence and step.recurrence.until == milestone
            if ends or milestone in step.cancelled_by:
                for task in open_of(step.task):
                    await self.cancel(session, outbox, task)
        for step in pathway.steps_started_by(milestone):
            open_ = open_of(step.task)
            if open_:
                for task in open_:
                    task.due = step_due(on, step, rule, task.seq, born, birthdays)
                    task.status, task.next_check = "scheduled", min(task.due, today())
                    emit_deadline(session, outbox, task, pathway)
                continue
            if not applies(step.applies_if, facts, on, pathway.school_year, self.lists):
                continue
            seq = last_seq.get(step.task, 0)
            try:
                raw = raw_due(on, step, seq + 1, born, birthdays)
            except NoBirthDate:
                why = {"task": step.task, "why": "no birth date"}
                session.add(
                    TimelineEntry(case_id=case.case_id, on=on, kind="step_not_dated", detail=why)
                )
                log.warning(
                    "step on a birthday not dated: no birth date",
                    extra={"case_ref": case.case_ref, "task": step.task},
                )
                continue
            if recurs_past(step, raw, born, birthdays):
                continue
            unit = await self.responsible(
                session, directory, case, pathway, step.responsible, starter, key
            )
            copies = await self.copies(session, directory, case, pathway, step, starter, key)
            due = step_due(on, step, rule, seq + 1, born, birthdays)
            self.schedule(
                session,
                outbox,
                case,
                pathway,
                step,
                due,
                seq + 1,
                unit,
                copies,
                step.legal_ref_on(on),
                key,
            )

    def schedule(
        self,
        session: AsyncSession,
        outbox: Outbox,
        case: PlanningCase,
        pathway: Pathway,
        step: Step,
        due: date,
        seq: int,
        unit: str,
        copies: list[dict],
        legal_ref: str,
        key: str | None = None,
    ) -> None:
        title_nb, title_en = step.title_nb, step.title_en
        if step.on_birthday and case.birth_date_estimated:  # said, not hidden (ADR 0015)
            title_nb += " (anslått fødselsdato)"
            title_en += " (estimated birth date)"
        # Its first status is settled here, in the transaction that schedules it, as the
        # timer would settle it (services/planning/timers.py): the same messages, in the same
        # order, without the timer reading and updating every new task again (issue 17).
        day, soon = today(), self.due_soon_working_days
        status = status_on(due, day, soon)
        row = {
            "id": str(uuid.uuid4()),
            "case_id": case.case_id,
            "case_ref": case.case_ref,
            "pathway": key or pathway.id,
            "task": step.task,
            "seq": seq,
            "kind": step.kind,
            "title_nb": title_nb,
            "title_en": title_en,
            "due": due,
            "responsible_unit": unit,
            "role": step.role,
            "copies": copies,
            "strength": step.strength,
            "legal_ref": legal_ref,
            "status": status,
            "next_check": next_check(due, status, soon),
            "done_on": None,
            "days_late": (day - due).days if status == "overdue" else 0,
            "created_at": utcnow(),
        }
        # A row, not an ORM object: written with the batch's other tasks in one statement,
        # before anything in the transaction reads or changes tasks (services.kit.db).
        queue_rows(session, Task, row, visible=True)
        task = SimpleNamespace(**row)
        if status == "scheduled":
            emit_deadline(session, outbox, task, pathway)
        else:
            # The deadline as scheduled, then its status change, as before.
            task.status = "scheduled"
            emit_deadline(session, outbox, task, pathway)
            task.status = status
            emit_status(session, outbox, task, status=status, days_late=task.days_late)
            if status == "overdue":
                session.add(
                    TimelineEntry(
                        case_id=task.case_id,
                        on=day,
                        kind="task_overdue",
                        detail={"task": task.task, "due": str(task.due)},
                    )
                )
        log.info(
            "deadline scheduled",
            extra={"case_ref": case.case_ref, "task": step.task, "due": str(due), "seq": seq},
        )

    async def complete(
        self,
        session: AsyncSession,
        outbox: Outbox,
        case: PlanningCase,
        task: Task,
        on: date,
        pathway: Pathway,
    ) -> None:
        task.status, task.done_on, task.next_check = "done", on, None
        task.days_late = days_late(task.due, on)
        emit_status(session, outbox, task)
        session.add(
            TimelineEntry(
                case_id=task.case_id,
                on=on,
                kind="task_done",
                detail={"task": task.task, "due": str(task.due), "days_late": task.days_late},
            )
        )
        step = pathway.step(task.task)
        if step and step.recurrence:
            if step.recurrence.until not in await self.reached(session, case.case_id, task.pathway):
                start = await self.started_on(session, case.case_id, task.pathway, step.starts_on)
                born, birthdays = born_of(case), pathway.counting.birthdays
                raw = raw_due(start or task.due, step, task.seq + 1, born, birthdays)
                if recurs_past(step, raw, born, birthdays):
                    return
                due = step_due(
                    start or task.due,
                    step,
                    pathway.counting.non_working_day,
                    task.seq + 1,
                    born,
                    birthdays,
                )
                self.schedule(
                    session,
                    outbox,
                    case,
                    pathway,
                    step,
                    due,
                    task.seq + 1,
                    task.responsible_unit,
                    task.copies or [],
                    task.legal_ref,
                    task.pathway,
                )

    async def cancel(self, session: AsyncSession, outbox: Outbox, task: Task) -> None:
        task.status, task.next_check = "cancelled", None
        emit_status(session, outbox, task)

    async def hand_role(
        self,
        session: AsyncSession,
        outbox: Outbox,
        directory: Directory | None,
        case: PlanningCase,
        pathway: Pathway,
        key: str,
        role: str,
        unit: str,
    ) -> int:
        """A role of a running pathway passes to another unit (a new coordinator, say): it is
        recorded, and the open tasks it holds or is told of move, each holder told."""
        held = await session.get(PathwayUnit, (case.case_id, key, role))
        if held is not None and held.unit == unit:
            return 0
        if held is None:
            session.add(PathwayUnit(case_id=case.case_id, pathway=key, role=role, unit=unit))
        else:
            held.unit = unit
        await session.flush()
        moved = 0
        for task in (
            await session.scalars(
                select(Task).where(
                    Task.case_id == case.case_id, Task.pathway == key, Task.status.in_(OPEN)
                )
            )
        ).all():
            step = pathway.step(task.task)
            if step is None or (
                step.responsible != role and all(c.responsible != role for c in step.copy_to)
            ):
                continue
            new_unit = await self.responsible(
                session, directory, case, pathway, step.responsible, None, key
            )
            copies = await self.copies(session, directory, case, pathway, step, None, key)
            if (new_unit, copies) != (task.responsible_unit, task.copies):
                task.responsible_unit, task.copies = new_unit, copies
                emit_deadline(session, outbox, task, pathway)
                moved += 1
        return moved

    async def reassign(
        self,
        session: AsyncSession,
        outbox: Outbox,
        directory: Directory | None,
        case: PlanningCase,
        roles: set[str] | None = None,
        old_unit: str | None = None,
    ) -> int:
        """Name the holders of open tasks again after the case changed (a transfer, a
        representative appointed); every unit that takes over a task hears of it."""
        moved = 0
        for task in (
            await session.scalars(
                select(Task).where(Task.case_id == case.case_id, Task.status.in_(OPEN))
            )
        ).all():
            pathway = self.pathway(task.pathway)
            step = pathway.step(task.task)
            if step is None:
                continue
            if pathway.id == MAIN and (
                roles is None
                or step.responsible in roles
                or any(c.responsible in roles for c in step.copy_to)
            ):
                unit = await self.responsible(session, directory, case, pathway, step.responsible)
                copies = await self.copies(session, directory, case, pathway, step, None)
            elif old_unit is not None and task.responsible_unit == old_unit:
                unit, copies = case.care_centre, task.copies
            else:
                continue
            if (unit, copies) != (task.responsible_unit, task.copies):
                task.responsible_unit, task.copies = unit, copies
                emit_deadline(session, outbox, task, pathway)
                moved += 1
        return moved

    async def close(
        self,
        session: AsyncSession,
        outbox: Outbox,
        case: PlanningCase,
        reason: str,
        on: date,
        pathway: str | None = None,
    ) -> None:
        """Close the centre stay: cancel the open tasks (of `pathway` only, when given: a
        settlement leaves the municipality's follow-up running)."""
        query = select(Task).where(Task.case_id == case.case_id, Task.status.in_(OPEN))
        if pathway is not None:
            query = query.where(Task.pathway == pathway)
        for task in (await session.scalars(query)).all():
            await self.cancel(session, outbox, task)
        case.closed, case.closed_on = reason, on
        session.add(
            TimelineEntry(case_id=case.case_id, on=on, kind="closed", detail={"reason": reason})
        )
        outbox.add(
            session,
            "no.ema.case.closed.v1",
            m.CaseClosedV1(
                case_id=case.case_id,
                case_ref=case.case_ref,
                reason=reason,
                closed_on=on,
            ),
            case_id=case.case_id,
        )


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

    async def milestone(
        ctx: Context,
        case: PlanningCase,
        name: str,
        on: date,
        pathway: Pathway = main,
        starter: str | None = None,
    ) -> None:
        if on > today() and not name.endswith("_planned"):
            raise Rejected(f"{name}: the date {on} lies in the future")
        missing = missing_before(name, await planner.reached(ctx.session, case.case_id, pathway.id))
        if missing:
            raise Rejected(
                f"{name}: not possible before {', '.join(missing)} for case {case.case_ref}"
            )
        await planner.reach(
            ctx.session, ctx.outbox, case, pathway, name, on, starter, ctx.directory
        )

    def note(ctx: Context, case: PlanningCase, on: date, kind: str, detail: dict) -> None:
        ctx.session.add(TimelineEntry(case_id=case.case_id, on=on, kind=kind, detail=detail))

    def from_centre(ctx: Context, case: PlanningCase) -> None:
        if ctx.sender.id != case.care_centre:
            raise Rejected(
                f"source: {ctx.sender.id!r} is not the care centre of case {case.case_ref}"
            )

    async def case_opened(ctx: Context) -> None:
        data: m.CaseOpenedV2 = ctx.data
        # Without flushing what earlier messages of the batch added: their rows go in with the
        # commit, one statement per table for the batch. A case opened twice in one batch
        # (under two message ids) fails that commit on its key, and the batch is applied one
        # message at a time, where this read sees the first. A Core statement on the
        # transaction's connection: the ORM's get cost a quarter of planning's handling time
        # (cProfile, 500 arrivals), and no row of planning_case is ever queued.
        connection = await ctx.session.connection()
        if (await connection.execute(CASE_KNOWN, {"case_id": data.case_id})).first():
            return
        arrival = data.arrived_at.astimezone(OSLO).date()
        case = PlanningCase(
            case_id=data.case_id,
            case_ref=data.case_ref,
            care_centre=data.care_centre,
            arrival=arrival,
            birth_date=data.birth_date,
            birth_date_estimated=data.birth_date_estimated,
        )
        ctx.session.add(case)
        facts = Facts(birth_date=data.birth_date, nationality=data.nationality)
        await planner.reach(
            ctx.session,
            ctx.outbox,
            case,
            main,
            "arrival",
            arrival,
            directory=ctx.directory,
            facts=facts,
            new_case=True,
        )

    async def representative(ctx: Context) -> None:
        data: m.CaseRepresentativeV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        case.representative_unit = data.representative_unit
        ctx.session.add(
            TimelineEntry(
                case_id=case.case_id,
                on=data.appointed_on,
                kind="representative_appointed",
                detail={"unit": data.representative_unit},
            )
        )
        # The appointment completes the Statsforvalter's task and ends the warning.
        await planner.reach(
            ctx.session,
            ctx.outbox,
            case,
            main,
            "representative_appointed",
            min(data.appointed_on, today()),
            directory=ctx.directory,
        )
        await planner.reassign(ctx.session, ctx.outbox, ctx.directory, case, {"representative"})

    async def transferred(ctx: Context) -> None:
        data: m.CaseTransferredV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        case.care_centre = data.to_centre
        # The new centre, and its municipality, hear of every open task they take over.
        moved = await planner.reassign(
            ctx.session, ctx.outbox, ctx.directory, case, old_unit=data.from_centre
        )
        ctx.session.add(
            TimelineEntry(
                case_id=case.case_id,
                on=data.transferred_at.astimezone(OSLO).date(),
                kind="transferred",
                detail={"from": data.from_centre, "to": data.to_centre, "tasks_moved": moved},
            )
        )

    async def residence(ctx: Context) -> None:
        """UDI's decision, or UNE's: a refusal does not end the stay (seed 000 L57-58,
        L104-105); a final one starts the return preparation."""
        data: m.CaseResidenceDecidedV2 = ctx.data
        case = await case_of(ctx, data.case_id)
        if data.outcome == "granted":
            await milestone(ctx, case, "residence_granted", data.decided_on)
        elif data.outcome == "limited":
            await milestone(ctx, case, "residence_limited", data.decided_on)
        else:
            if "residence_refused" not in await planner.reached(ctx.session, case.case_id, MAIN):
                await milestone(ctx, case, "residence_refused", data.decided_on)
            if data.final:
                await milestone(ctx, case, "final_refusal", data.decided_on)
        detail = {"authority": data.authority, "outcome": data.outcome, "final": data.final}
        note(ctx, case, data.decided_on, "residence_decision", detail)

    async def appealed(ctx: Context) -> None:
        data: m.CaseAppealedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        await milestone(ctx, case, "appeal_lodged", data.lodged_on)

    async def departed(ctx: Context) -> None:
        """Leaving the country ends the stay (seed 000 L104-105), like settlement."""
        data: m.CaseDepartedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        await milestone(ctx, case, "departed", data.departed_on)
        note(ctx, case, data.departed_on, "departure", {"how": data.how})
        await planner.close(ctx.session, ctx.outbox, case, "returned", data.departed_on)

    async def settlement_planned(ctx: Context) -> None:
        """An accepted offer: the move-in day is agreed; the stay goes on until then."""
        data: m.CaseSettlementPlannedV1 = ctx.data
        known = await ctx.session.get(PlanningCase, data.case_id)
        if known is not None and known.closed == "settled":
            # Redelivered after the settlement it planned (a consumer killed mid-batch gets
            # its message again after later ones): the move-in has happened, nothing to plan.
            log.info(
                "settlement plan after the settlement: nothing left to plan",
                extra={"case_ref": known.case_ref},
            )
            return
        case = await case_of(ctx, data.case_id)
        await milestone(ctx, case, "settlement_planned", data.settle_on)
        note(ctx, case, data.settle_on, "move_in_agreed", {"kommunenummer": data.kommunenummer})

    async def settled(ctx: Context) -> None:
        """The centre stay ends; the municipality's follow-up (its own pathway) runs on."""
        data: m.CaseSettledV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        await milestone(ctx, case, "settled", data.settled_on)
        await planner.close(ctx.session, ctx.outbox, case, "settled", data.settled_on, MAIN)

    async def kopp(ctx: Context) -> None:
        data: m.KoppSubmittedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        from_centre(ctx, case)
        await milestone(ctx, case, "kopp_submitted", data.submitted_on)

    async def decision(ctx: Context) -> None:
        data: m.FollowUpDecidedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        if not case.representative_unit:
            raise Rejected(
                f"addressed_to: case {case.case_ref} has no representative yet; a "
                "follow-up decision is addressed to the representative (the "
                "Statsforvalter's task representative_appointment is open)"
            )
        if data.addressed_to != case.representative_unit:
            raise Rejected(
                f"addressed_to: {data.addressed_to!r} is not the representative "
                f"{case.representative_unit!r}"
            )
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
        # A case closed at the centre may have follow-up tasks open in the municipality.
        case = await ctx.session.get(PlanningCase, data.case_id)
        if case is None:
            raise NotYet(f"case_id: no case {data.case_id!r} is known to planning")
        if data.completed_on > today():
            raise Rejected(f"completed_on: {data.completed_on} lies in the future")
        tasks = (
            await ctx.session.scalars(
                select(Task)
                .where(Task.case_id == case.case_id, Task.task == data.task, Task.status.in_(OPEN))
                .order_by(Task.due)
            )
        ).all()
        if not tasks:
            raise Rejected(f"task: no open task {data.task!r} in case {case.case_ref}")
        task = tasks[0]
        step = planner.pathway(task.pathway).step(task.task)
        # A Statsforvalter's task is known by the county's unit id in units.json; any
        # Statsforvalter may report it, as any Bufetat region may report Bufetat's.
        statsforvalter = step is not None and step.responsible == "statsforvalter"
        allowed = (
            ctx.sender.id == task.responsible_unit
            or ctx.sender.kind == m.UnitKind.BUFETAT_REGION
            or (statsforvalter and ctx.sender.kind == m.UnitKind.STATSFORVALTER)
        )
        if not allowed:
            raise Rejected(
                f"source: {ctx.sender.id!r} is not responsible for {data.task!r}; "
                f"{task.responsible_unit!r} is"
            )
        await planner.complete(
            ctx.session, ctx.outbox, case, task, data.completed_on, planner.pathway(task.pathway)
        )

    async def start_pathway(
        ctx: Context, case_id: str, name: str, started_on: date, units: dict[str, str]
    ) -> None:
        case = await case_of(ctx, case_id)
        pathway = planner.pathways.get(name)
        if pathway is None or pathway.id == MAIN or not started_by_units(pathway):
            known = sorted(k for k, p in planner.pathways.items() if started_by_units(p))
            raise Rejected(
                f"pathway: {name!r} is not a pathway that can be started; "
                f"known: {', '.join(k for k in known if k != MAIN)}"
            )
        if await planner.reached(ctx.session, case.case_id, pathway.id):
            raise Rejected(f"pathway: {name!r} already runs for case {case.case_ref}")
        if started_on > today():
            raise Rejected(f"started_on: {started_on} lies in the future")
        for role, unit in units.items():
            ctx.session.add(
                PathwayUnit(case_id=case.case_id, pathway=pathway.id, role=role, unit=unit)
            )
        await ctx.session.flush()
        await planner.reach(
            ctx.session,
            ctx.outbox,
            case,
            pathway,
            "admission",
            started_on,
            starter=ctx.sender.id,
            directory=ctx.directory,
        )

    async def pathway_started(ctx: Context) -> None:
        data: m.PathwayStartedV1 = ctx.data
        # V1 names no units: the starter holds the institution's and the municipal service's
        # roles, as before (use V2 to name them).
        units = {r: ctx.sender.id for r in PATHWAY_ROLES if r != "bufetat_intake_unit"}
        await start_pathway(ctx, data.case_id, data.pathway, data.started_on, units)

    async def pathway_started_v2(ctx: Context) -> None:
        data: m.PathwayStartedV2 = ctx.data
        units = {
            "institution": data.institution,
            "institution_leader": data.institution,
            "municipal_cws": data.child_welfare_service,
        }
        if data.bufetat_intake_unit:
            units["bufetat_intake_unit"] = data.bufetat_intake_unit
        await start_pathway(ctx, data.case_id, data.pathway, data.started_on, units)

    async def follow_up_reached(ctx: Context) -> None:
        """The municipality's follow-up, or a referral, moved on (the municipality service
        has checked who said so): name the units holding its roles, reach the milestone. The
        pathway's first milestone starts it; a case closed at the centre runs on here."""
        data: m.FollowUpReachedV1 = ctx.data
        case = await ctx.session.get(PlanningCase, data.case_id)
        if case is None:
            raise NotYet(f"case_id: no case {data.case_id!r} is known to planning")
        pathway = planner.pathways.get(data.pathway)
        if pathway is None or pathway.id == MAIN:
            raise Rejected(f"pathway: {data.pathway!r} is not a follow-up pathway")
        if data.milestone not in pathway.milestones:
            raise Rejected(f"milestone: {data.milestone!r} is not a milestone of {pathway.ref}")
        if data.on > today() and not data.milestone.endswith("_planned"):
            raise Rejected(f"{data.milestone}: the date {data.on} lies in the future")
        key = pathway_key(pathway.id, data.instance)
        first = next(iter(pathway.milestones))
        if data.milestone != first and not await planner.reached(ctx.session, case.case_id, key):
            raise NotYet(f"pathway: {key!r} has not started for case {case.case_ref}")
        for held in data.roles:
            await planner.hand_role(
                ctx.session, ctx.outbox, ctx.directory, case, pathway, key, held.role, held.unit
            )
        await planner.reach(
            ctx.session,
            ctx.outbox,
            case,
            pathway,
            data.milestone,
            data.on,
            directory=ctx.directory,
            key=key,
        )

    async def milestone_reported(ctx: Context) -> None:
        data: m.MilestoneReportedV1 = ctx.data
        case = await case_of(ctx, data.case_id)
        pathway = planner.pathways.get(data.pathway)
        if pathway is None or not await planner.reached(ctx.session, case.case_id, data.pathway):
            raise Rejected(f"pathway: {data.pathway!r} does not run for case {case.case_ref}")
        if not started_by_units(pathway):
            raise Rejected(
                f"pathway: the milestones of {pathway.ref} come from the municipality "
                "service (handover, follow-up and referral messages)"
            )
        if data.milestone not in pathway.milestones:
            raise Rejected(
                f"milestone: {data.milestone!r} is not a milestone of {pathway.ref}; "
                f"known: {', '.join(pathway.milestones)}"
            )
        await milestone(ctx, case, data.milestone, data.on, pathway)

    return {
        "no.ema.case.opened.v2": case_opened,
        "no.ema.case.representative.v1": representative,
        "no.ema.case.transferred.v1": transferred,
        "no.ema.case.residence-decided.v2": residence,
        "no.ema.case.appealed.v1": appealed,
        "no.ema.case.departed.v1": departed,
        "no.ema.case.settlement-planned.v1": settlement_planned,
        "no.ema.case.settled.v1": settled,
        "no.ema.planning.kopp-submitted.v1": kopp,
        "no.ema.planning.follow-up-decided.v1": decision,
        "no.ema.planning.map-established.v1": map_established,
        "no.ema.planning.need-changed.v1": need_changed,
        "no.ema.planning.task-completed.v1": task_completed,
        "no.ema.planning.pathway-started.v1": pathway_started,
        "no.ema.planning.pathway-started.v2": pathway_started_v2,
        "no.ema.planning.milestone-reported.v1": milestone_reported,
        "no.ema.municipality.follow-up-reached.v1": follow_up_reached,
    }
