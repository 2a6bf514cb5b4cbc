"""Wiring for the planning service."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date

from aiohttp import web
from prometheus_client import Gauge
from pydantic import Field
from sqlalchemy import func, select

from services.kit import api_auth
from services.kit.service import Service, route
from services.kit.settings import Settings
from services.planning.handlers import Planner, make_handlers, set_today, today
from services.planning.pathway import load_all
from services.planning.store import Base, Milestone, PlanningCase, Task, TimelineEntry
from services.planning.timers import run_timers, wake

PATHWAYS = load_all()


class PlanningSettings(Settings):
    bufetat_unit: str = "bufetat-ost"
    due_soon_working_days: int = Field(2, ge=0, le=30)
    timer_interval: float = Field(30.0, gt=0, description="Seconds between deadline checks.")
    today: date | None = Field(None, description="Pin today's date: demos and tests only.")


service = Service("planning", Base.metadata, PlanningSettings, migrate=True)
planner = Planner(PATHWAYS, bufetat_unit=PlanningSettings.model_fields["bufetat_unit"].default)
HANDLERS = make_handlers(planner)


async def configure(svc: Service) -> None:
    planner.bufetat_unit = svc.settings.bufetat_unit  # type: ignore[attr-defined]
    planner.due_soon_working_days = svc.settings.due_soon_working_days  # type: ignore[attr-defined]
    set_today(svc.settings.today)  # type: ignore[attr-defined]
    overdue = Gauge(
        "ema_deadlines_overdue",
        "Open tasks past their due date, per task.",
        ["task"],
        registry=svc.metrics.registry,
    )

    async def count_overdue() -> None:
        async with svc.sessions() as session:
            rows = (
                await session.execute(
                    select(Task.task, func.count())
                    .where(Task.status == "overdue")
                    .group_by(Task.task)
                )
            ).all()
        overdue.clear()
        for task, count in rows:
            overdue.labels(task).set(count)

    svc.metrics.refreshers.append(count_overdue)


CASE_TYPES = [
    "no.ema.case.opened.v2",
    "no.ema.case.representative.v1",
    "no.ema.case.transferred.v1",
    "no.ema.case.residence-decided.v2",
    "no.ema.case.appealed.v1",
    "no.ema.case.departed.v1",
    "no.ema.case.settlement-planned.v1",
    "no.ema.case.settled.v1",
]
LIFECYCLE_TYPES = [
    "no.ema.planning.kopp-submitted.v1",
    "no.ema.planning.follow-up-decided.v1",
    "no.ema.planning.map-established.v1",
    "no.ema.planning.need-changed.v1",
    "no.ema.planning.task-completed.v1",
    "no.ema.planning.pathway-started.v1",
    "no.ema.planning.pathway-started.v2",
    "no.ema.planning.milestone-reported.v1",
]
service.handles(*CASE_TYPES, durable="planning-cases")(route({t: HANDLERS[t] for t in CASE_TYPES}))
service.handles(*LIFECYCLE_TYPES, durable="planning-lifecycle")(
    route({t: HANDLERS[t] for t in LIFECYCLE_TYPES})
)
FOLLOW_UP = "no.ema.municipality.follow-up-reached.v1"
service.handles(FOLLOW_UP, durable="planning-follow-up")(HANDLERS[FOLLOW_UP])
service.startup.append(configure)
service.background.append(run_timers)
service.after_commit.append(wake.set)  # new tasks get their first status at once


def task_json(t: Task) -> dict:
    late = (today() - t.due).days if t.status == "overdue" else t.days_late
    return {
        "task_id": t.id,
        "task": t.task,
        "seq": t.seq,
        "kind": t.kind,
        "title_nb": t.title_nb,
        "title_en": t.title_en,
        "due": t.due.isoformat(),
        "status": t.status,
        "done_on": t.done_on.isoformat() if t.done_on else None,
        "days_late": late,
        "responsible_unit": t.responsible_unit,
        "role": t.role,
        "copies": t.copies,
        "strength": t.strength,
        "legal_ref": t.legal_ref,
        "pathway": t.pathway,
    }


async def case_tasks(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/tasks: the case's tasks and deadlines."""
    async with service.sessions() as session:
        tasks = (
            await session.scalars(
                select(Task)
                .where(Task.case_id == request.match_info["case_id"])
                .order_by(Task.due, Task.task)
            )
        ).all()
    return web.json_response([task_json(t) for t in tasks])


async def timeline(request: web.Request) -> web.Response:
    """GET /cases/{case_id}/timeline: what happened, what is due, what was late."""
    case_id = request.match_info["case_id"]
    async with service.sessions() as session:
        case = await session.get(PlanningCase, case_id)
        if case is None:
            return web.json_response({"error": f"no case {case_id} in planning"}, status=404)
        entries = (
            await session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.case_id == case_id)
                .order_by(TimelineEntry.on, TimelineEntry.id)
            )
        ).all()
        tasks = (
            await session.scalars(
                select(Task).where(Task.case_id == case_id).order_by(Task.due, Task.task)
            )
        ).all()
    return web.json_response(
        {
            "case": {
                "case_id": case.case_id,
                "case_ref": case.case_ref,
                "care_centre": case.care_centre,
                "representative_unit": case.representative_unit,
                "arrival": case.arrival.isoformat(),
                "closed": case.closed,
                "closed_on": case.closed_on.isoformat() if case.closed_on else None,
            },
            "happened": [
                {"on": e.on.isoformat(), "kind": e.kind, "detail": e.detail} for e in entries
            ],
            "due": [task_json(t) for t in tasks if t.status not in ("done", "cancelled")],
            "late": [task_json(t) for t in tasks if t.days_late > 0 or t.status == "overdue"],
            "done": [task_json(t) for t in tasks if t.status == "done"],
        }
    )


async def figures_data() -> dict:
    async with service.sessions() as session:
        tasks = (await session.scalars(select(Task))).all()
        cases = {c.case_id: c for c in (await session.scalars(select(PlanningCase))).all()}
        milestones = (
            await session.scalars(
                select(Milestone).where(Milestone.name.in_(["residence_granted", "settled"]))
            )
        ).all()
    met: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    overdue: dict[str, int] = defaultdict(int)
    day = today()
    for t in tasks:
        centre = cases[t.case_id].care_centre if t.case_id in cases else "?"
        key = (t.task, centre)
        if t.status == "done":
            met[key][0 if t.days_late == 0 else 1] += 1
        elif t.status == "overdue" or (t.status != "cancelled" and t.due < day):
            met[key][1] += 1
            overdue[t.task] += 1
    by_case: dict[str, dict[str, object]] = defaultdict(dict)
    for ms in milestones:
        by_case[ms.case_id][ms.name] = ms.on
    waits = sorted(
        (v["settled"] - v["residence_granted"]).days
        for v in by_case.values()
        if "settled" in v and "residence_granted" in v
    )
    return {
        "as_of": day.isoformat(),
        "recurring": recurring_figures(tasks, day),
        "deadlines_met": [
            {
                "task": task,
                "care_centre": centre,
                "met": ok,
                "missed": late,
                "share_met": round(ok / (ok + late), 3),
            }
            for (task, centre), (ok, late) in sorted(met.items())
        ],
        "overdue_now": dict(sorted(overdue.items())),
        "overdue_total": sum(overdue.values()),
        "residence_to_settlement_days": {
            "settled": len(waits),
            "mean": round(statistics.mean(waits), 1) if waits else None,
            "median": statistics.median(waits) if waits else None,
            "max": max(waits) if waits else None,
            "share_within_3_months": round(sum(w <= 92 for w in waits) / len(waits), 3)
            if waits
            else None,
        },
    }


def recurring_figures(tasks: list[Task], day: date) -> dict:
    """Recurring meetings and visits of the follow-up pathways (follow-up visits,
    responsibility-group meetings): planned so far (due by today), held, held on time, and
    overdue now (seed 003 L698-700, seed 004 L6737-6753: meetings are the first thing cut)."""
    recurring = {
        s.task
        for p in PATHWAYS.values()
        if p.id != "ema-care-centre"
        for s in p.steps
        if s.recurrence
    }
    out: dict[str, dict[str, int]] = {}
    for t in tasks:
        if t.task not in recurring or t.status == "cancelled":
            continue
        row = out.setdefault(t.task, {"planned": 0, "held": 0, "held_on_time": 0, "overdue": 0})
        if t.due <= day or t.status == "done":
            row["planned"] += 1
        if t.status == "done":
            row["held"] += 1
            row["held_on_time"] += t.days_late == 0
        elif t.due < day:
            row["overdue"] += 1
    return dict(sorted(out.items()))


async def figures(_request: web.Request) -> web.Response:
    """GET /figures: deadlines met per type and centre, overdue now, residence to settlement."""
    return web.json_response(await figures_data())


service.access.update(
    dict.fromkeys(
        ("/cases/{case_id}/tasks", "/cases/{case_id}/timeline", "/figures"), api_auth.OPERATORS
    )
)
service.routes += [
    web.get("/cases/{case_id}/tasks", case_tasks),
    web.get("/cases/{case_id}/timeline", timeline),
    web.get("/figures", figures),
]
