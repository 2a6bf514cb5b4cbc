"""Issue 3 scenarios over the real bus: the life cycle of a case, its deadlines, statuses,
timeline and figures. Dates are relative to today, so the tests hold on any day."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from contracts import messages as m
from deploy.launcher import System
from services.kit.clock import OSLO
from services.planning.calendar import add_months, add_working_days, step_due
from services.planning.pathway import load_all
from tests.support import (
    ARRIVAL,
    Partner,
    dead_letters,
    http_json,
    query,
    stream_messages,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
TODAY = datetime.now(UTC).astimezone(OSLO).date()
K = m.UnitKind


PATHWAYS = load_all()


def due_of(start: date, task: str, pathway: str = "ema-care-centre", occurrence: int = 1) -> date:
    """When planning puts a step's deadline: its offset, then the pathway's weekend rule."""
    p = PATHWAYS[pathway]
    return step_due(start, p.step(task), p.counting.non_working_day, occurrence)


def duf() -> str:
    return "2026" + "".join(random.choices("0123456789", k=8))


def at_noon(day: date) -> str:
    """Noon that day in Norway; for today before noon, the time now (intake refuses a report
    dated in the future, and the suite runs at any hour)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=OSLO)
    return min(noon, datetime.now(OSLO).replace(microsecond=0)).isoformat()


@dataclass
class World:
    system: System
    centre: Partner
    bufetat: Partner
    statsforvalter: Partner
    udi: Partner

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.system.http_ports[service]}{path}"

    async def arrive(self, arrived: date, **overrides) -> tuple[str, str]:  # noqa: ANN003
        """Report an arrival; returns (case_id, duf_number) once planning knows the case."""
        number = overrides.pop("duf_number", None) or duf()
        data = m.ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": number,
                "care_centre": overrides.pop("centre", self.centre).key.unit_id,
                "arrived_at": at_noon(arrived),
                **overrides,
            }
        )
        sender = self.centre
        await sender.send("no.ema.intake.arrival.v1", data)
        rows = await wait_for(
            lambda: query(
                self.system.database_url("intake"),
                "select id from intake_case where duf_number = ?",
                number,
            )
        )
        case_id = rows[0][0]
        await wait_for(lambda: self.tasks(case_id))
        return case_id, number

    def tasks(self, case_id: str) -> dict[str, dict]:
        return {t["task"]: t for t in http_json(self.url("planning", f"/cases/{case_id}/tasks"))}

    async def task_is(self, case_id: str, task: str, status: str) -> dict:
        return await wait_for(
            lambda: (t := self.tasks(case_id).get(task)) and t["status"] == status and t
        )

    async def appoint_representative(self, case_id: str) -> str:
        unit = "rep-" + uuid.uuid4().hex[:8]
        await self.statsforvalter.send(
            "no.ema.intake.representative-appointed.v1",
            m.RepresentativeAppointedV1(
                case_id=case_id,
                representative_unit=unit,
                name="Rita Representant",
                appointed_on=TODAY,
            ),
        )
        await wait_for(
            lambda: (
                http_json(self.url("planning", f"/cases/{case_id}/timeline"))["case"][
                    "representative_unit"
                ]
                == unit
            )
        )
        return unit

    async def submit_kopp(self, case_id: str, on: date) -> None:
        await self.centre.send(
            "no.ema.planning.kopp-submitted.v1",
            m.KoppSubmittedV1(
                case_id=case_id,
                submitted_on=on,
                document_sha256=hashlib.sha256(b"kopp").hexdigest(),
            ),
        )

    async def rejection(self, sender: Partner, type_: str, data, before: int | None = None) -> str:  # noqa: ANN001
        count = len(await dead_letters(sender.nc)) if before is None else before
        await sender.send(type_, data)
        letters = await wait_for(lambda: _more(dead_letters(sender.nc), count), timeout=20)
        return letters[-1]["Ema-Dlq-Reason"]


async def _more(coro, count: int):  # noqa: ANN001, ANN202
    letters = await coro
    return letters if len(letters) > count else None


@pytest.fixture
async def world(system: System) -> World:
    suffix = uuid.uuid4().hex[:6]
    parts = [
        await Partner.register(system, f"{name}-{suffix}", kind)
        for name, kind in (
            ("centre", K.CARE_CENTRE),
            ("bufetat", K.BUFETAT_REGION),
            ("sf", K.STATSFORVALTER),
            ("udi", K.UDI),
        )
    ]
    w = World(system, *parts)
    yield w
    for p in parts:
        await p.close()


@pytest.mark.postgres
async def test_late_kopp_shows_overdue_then_done_late(world: World) -> None:
    arrived = TODAY - timedelta(days=30)
    case_id, _ = await world.arrive(arrived)
    kopp = await world.task_is(case_id, "kopp_proposal", "overdue")
    kopp_due = due_of(arrived, "kopp_proposal")  # three weeks, or the next working day
    late = (TODAY - kopp_due).days
    assert kopp["due"] == kopp_due.isoformat()
    assert kopp["days_late"] == late
    # The centre leader hears of it, not only the contact person (notify hears of the
    # status after planning has it: wait for both notices).
    inbox_url = world.url("notify", f"/inbox/{world.centre.key.unit_id}")
    overdue = await wait_for(
        lambda: (
            (
                found := [
                    n
                    for n in http_json(inbox_url)
                    if n["event_type"] == "task.overdue" and "KOPP" in n["text_nb"]
                ]
            )
            and len(found) >= 2
            and found
        )
    )
    assert {n["role"] for n in overdue} == {"contact_person", "centre_leader"}
    assert f"{late} dager over fristen" in overdue[0]["text_nb"]

    submitted = TODAY - timedelta(days=2)
    await world.submit_kopp(case_id, submitted)
    done = await world.task_is(case_id, "kopp_proposal", "done")
    assert done["days_late"] == (submitted - kopp_due).days
    assert done["done_on"] == submitted.isoformat()
    timeline = http_json(world.url("planning", f"/cases/{case_id}/timeline"))
    assert "kopp_proposal" in [t["task"] for t in timeline["late"]]
    assert [e["kind"] for e in timeline["happened"]][:1] == ["arrival"]


@pytest.mark.postgres
async def test_statuses_due_soon_and_due(world: World) -> None:
    case_id, _ = await world.arrive(TODAY)
    talk = await world.task_is(case_id, "arrival_talk", "due_soon")
    assert talk["due"] == add_working_days(TODAY, 1).isoformat()
    case_id, _ = await world.arrive(TODAY - timedelta(days=21))
    # Due today, unless today is a Saturday, Sunday or holiday: then the next working day.
    expected = due_of(TODAY - timedelta(days=21), "kopp_proposal")
    status = "due" if expected == TODAY else "due_soon"
    assert (await world.task_is(case_id, "kopp_proposal", status))["due"] == expected.isoformat()


@pytest.mark.postgres
async def test_residence_granted_starts_new_kopp_and_settlement_clock(world: World) -> None:
    case_id, number = await world.arrive(TODAY - timedelta(days=60))
    granted = TODAY - timedelta(days=1)
    await world.udi.send(
        "no.ema.intake.residence-decided.v1",
        m.ResidenceDecisionV1(
            duf_number=number, outcome="granted", decided_on=granted, udi_reference="UDI-1"
        ),
    )
    settlement = await world.task_is(case_id, "settlement", "scheduled")
    assert settlement["due"] == due_of(granted, "settlement").isoformat()
    assert world.tasks(case_id)["new_kopp"]["due"] == due_of(granted, "new_kopp").isoformat()
    case = http_json(world.url("intake", f"/cases/{case_id}"))
    assert case["residence"] == "granted"

    # Settled: the settlement task is done, the centre stay closes, other open tasks end.
    await world.bufetat.send(
        "no.ema.case.settled.v1",
        m.CaseSettledV1(
            case_id=case_id, kommunenummer="0301", settled_on=TODAY, measure="bofellesskap"
        ),
    )
    assert (await world.task_is(case_id, "settlement", "done"))["days_late"] == 0
    await wait_for(lambda: http_json(world.url("intake", f"/cases/{case_id}"))["closed"])
    statuses = {t["status"] for t in world.tasks(case_id).values()}
    assert statuses <= {"done", "cancelled"}
    figures = http_json(world.url("planning", "/figures"))
    assert figures["residence_to_settlement_days"]["settled"] >= 1


async def test_departure_closes_the_case_and_later_reports_are_refused(world: World) -> None:
    """A refusal no longer closes the case (issue 14 item 5, tests/e2e/test_law.py): the
    child leaving the country does."""
    case_id, number = await world.arrive(TODAY - timedelta(days=10))
    await world.udi.send(
        "no.ema.intake.residence-decided.v1",
        m.ResidenceDecisionV1(
            duf_number=number, outcome="refused", decided_on=TODAY, udi_reference="UDI-2"
        ),
    )
    await wait_for(lambda: "appeal" in world.tasks(case_id))
    assert http_json(world.url("intake", f"/cases/{case_id}"))["closed"] is None
    await world.centre.send(
        "no.ema.intake.departed.v1",
        m.DepartedV1(case_id=case_id, departed_on=TODAY, how="voluntary_return"),
    )
    await wait_for(
        lambda: http_json(world.url("intake", f"/cases/{case_id}"))["closed"] == "returned"
    )
    closed = [
        json.loads(x.data)["data"]
        for x in await stream_messages(world.centre.nc, "CASE", "ema.case.closed")
    ]
    assert {"case_id": case_id, "reason": "returned"}.items() <= next(
        c for c in closed if c["case_id"] == case_id
    ).items()
    assert all(
        t["status"] == "cancelled" for t in world.tasks(case_id).values() if t["status"] != "done"
    )
    reason = await world.rejection(
        world.centre,
        "no.ema.planning.kopp-submitted.v1",
        m.KoppSubmittedV1(case_id=case_id, submitted_on=TODAY, document_sha256="0" * 64),
    )
    assert "is closed (returned)" in reason


@pytest.mark.postgres
async def test_decision_life_cycle_and_out_of_order_reports(world: World) -> None:
    case_id, _ = await world.arrive(TODAY - timedelta(days=20))
    decision = m.FollowUpDecidedV1(
        case_id=case_id,
        decision_ref="V-1",
        decided_on=TODAY,
        addressed_to="rep-x",
        copy_to=[world.centre.key.unit_id],
        appeal_right_noted=True,
    )
    send = world.rejection
    t = "no.ema.planning.follow-up-decided.v1"
    assert "no representative yet" in await send(world.bufetat, t, decision)
    rep = await world.appoint_representative(case_id)
    assert "not possible before kopp_submitted" in await send(
        world.bufetat, t, decision.model_copy(update={"addressed_to": rep})
    )
    assert "MAP" not in world.tasks(case_id)
    assert "not possible before follow_up_decision" in await send(
        world.centre,
        "no.ema.planning.map-established.v1",
        m.MapEstablishedV1(case_id=case_id, established_on=TODAY),
    )
    await world.submit_kopp(case_id, TODAY)
    await world.task_is(case_id, "kopp_proposal", "done")
    assert "is not the representative" in await send(world.bufetat, t, decision)
    assert "must get a copy" in await send(
        world.bufetat,
        t,
        decision.model_copy(update={"addressed_to": rep, "copy_to": ["someone-else"]}),
    )
    assert "right of appeal" in await send(
        world.bufetat,
        t,
        decision.model_copy(update={"addressed_to": rep, "appeal_right_noted": False}),
    )
    await world.bufetat.send(t, decision.model_copy(update={"addressed_to": rep}))
    await world.task_is(case_id, "follow_up_decision", "done")
    assert world.tasks(case_id)["map"]["due"] == due_of(TODAY, "map").isoformat()
    await world.centre.send(
        "no.ema.planning.map-established.v1",
        m.MapEstablishedV1(case_id=case_id, established_on=TODAY),
    )
    await world.task_is(case_id, "map", "done")
    await world.centre.send(
        "no.ema.planning.need-changed.v1", m.NeedChangedV1(case_id=case_id, reported_on=TODAY)
    )
    new = await wait_for(lambda: world.tasks(case_id).get("new_follow_up_decision"))
    assert new["due"] == due_of(TODAY, "new_follow_up_decision").isoformat()


async def test_report_for_unknown_case_is_dead_lettered_after_retries(world: World) -> None:
    reason = await world.rejection(
        world.centre,
        "no.ema.planning.kopp-submitted.v1",
        m.KoppSubmittedV1(case_id=str(uuid.uuid4()), submitted_on=TODAY, document_sha256="0" * 64),
    )
    assert reason.startswith("not applicable after 3/3 attempts: case_id: no case")


async def test_task_reports_are_checked(world: World) -> None:
    case_id, _ = await world.arrive(TODAY - timedelta(days=3))
    t = "no.ema.planning.task-completed.v1"
    future = m.TaskCompletedV1(
        case_id=case_id, task="arrival_talk", completed_on=TODAY + timedelta(days=1)
    )
    assert "lies in the future" in await world.rejection(world.centre, t, future)
    assert "no open task 'tea_party'" in await world.rejection(
        world.centre, t, future.model_copy(update={"task": "tea_party", "completed_on": TODAY})
    )
    other = await Partner.register(
        world.system, "centre-other-" + uuid.uuid4().hex[:4], K.CARE_CENTRE
    )
    assert "is not responsible" in await world.rejection(
        other, t, future.model_copy(update={"completed_on": TODAY})
    )
    await other.close()
    await world.centre.send(t, future.model_copy(update={"completed_on": TODAY}))
    assert (await world.task_is(case_id, "arrival_talk", "done"))["days_late"] >= 0


async def test_intake_rejections_name_field_and_reason(world: World) -> None:
    arrived = TODAY - timedelta(days=1)
    send = world.rejection
    t = "no.ema.intake.arrival.v1"

    def arrival(**kw) -> m.ArrivalV1:  # noqa: ANN003
        return m.ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": duf(),
                "arrived_at": at_noon(arrived),
                "care_centre": world.centre.key.unit_id,
                **kw,
            }
        )

    sixteen = (arrived - timedelta(days=16 * 366)).isoformat()
    assert "care centres take children under 15" in await send(
        world.centre, t, arrival(birth_date=sixteen)
    )
    assert "under 18" in await send(world.centre, t, arrival(birth_date="2000-01-01"))
    assert "lies after the arrival date" in await send(
        world.centre, t, arrival(birth_date=(TODAY + timedelta(days=5)).isoformat())
    )
    # A 16-year-old placed with a younger sibling who has a case at the centre is taken in.
    _, young = await world.arrive(arrived)
    case_id, _ = await world.arrive(arrived, birth_date=sixteen, siblings=[{"duf_number": young}])
    assert case_id


async def test_transfer_moves_the_case_with_its_history(world: World) -> None:
    case_id, number = await world.arrive(TODAY - timedelta(days=5))
    await world.udi.send(
        "no.ema.intake.residence-decided.v1",
        m.ResidenceDecisionV1(
            duf_number=number, outcome="granted", decided_on=TODAY, udi_reference="UDI-3"
        ),
    )
    await wait_for(lambda: "settlement" in world.tasks(case_id))
    other = await Partner.register(world.system, "centre-b-" + uuid.uuid4().hex[:4], K.CARE_CENTRE)
    data = m.ArrivalV1(
        **{
            **ARRIVAL,
            "duf_number": number,
            "care_centre": other.key.unit_id,
            "arrived_at": at_noon(TODAY),
        }
    )
    await other.send("no.ema.intake.arrival.v1", data)
    await wait_for(
        lambda: world.tasks(case_id)["kopp_proposal"]["responsible_unit"] == other.key.unit_id
    )
    case = http_json(world.url("intake", f"/cases/{case_id}"))
    assert case["care_centre"] == other.key.unit_id
    assert case["residence"] == "granted"  # kept through the move
    assert [h["kind"] for h in case["history"]] == ["opened", "residence", "transferred"]
    assert (
        len(
            query(
                world.system.database_url("intake"),
                "select id from intake_case where duf_number = ?",
                number,
            )
        )
        == 1
    )
    await other.close()


def test_timeline_and_figures_from_the_cli(system: System) -> None:
    cases = query(system.database_url("planning"), "select case_id from planning_case limit 1")
    base = [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir)]
    out = subprocess.run(
        base + ["case", "timeline", cases[0][0], "--json"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    timeline = json.loads(out.stdout)
    assert timeline["case"]["case_id"] == cases[0][0] and timeline["happened"]
    text = subprocess.run(
        base + ["case", "timeline", cases[0][0]],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert "arrival" in text and "due" in text
    figures = json.loads(
        subprocess.run(
            base + ["figures", "--json"], check=True, cwd=ROOT, capture_output=True, text=True
        ).stdout
    )
    assert figures["overdue_total"] >= 1
    assert any(row["task"] == "kopp_proposal" for row in figures["deadlines_met"])
    missing = subprocess.run(
        base + ["case", "timeline", str(uuid.uuid4())], cwd=ROOT, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "no case" in missing.stderr


async def test_institution_pathway_runs_from_admission_to_move_out(world: World) -> None:
    case_id, _ = await world.arrive(TODAY - timedelta(days=3))
    cws = await Partner.register(world.system, "bv-" + uuid.uuid4().hex[:6], K.BARNEVERN)
    admitted = TODAY - timedelta(days=10)
    t = "no.ema.planning.pathway-started.v1"
    reason = await world.rejection(
        cws, t, m.PathwayStartedV1(case_id=case_id, pathway="holiday-camp", started_on=admitted)
    )
    assert "known: care-institution, emergency-institution, treatment-institution" in reason
    await cws.send(
        t, m.PathwayStartedV1(case_id=case_id, pathway="care-institution", started_on=admitted)
    )
    report = await wait_for(lambda: world.tasks(case_id).get("mapping_report"))
    # "Uke 8": the last day of the 8th week of the stay, moved back off a weekend (item 10).
    assert report["due"] == due_of(admitted, "mapping_report", "care-institution").isoformat()
    assert report["responsible_unit"] == cws.key.unit_id
    assert report["pathway"] == "care-institution"

    move_out = "no.ema.planning.milestone-reported.v1"
    planned = add_months(TODAY, 6)
    await cws.send(
        move_out,
        m.MilestoneReportedV1(
            case_id=case_id, pathway="care-institution", milestone="move_out_planned", on=planned
        ),
    )
    meeting = await wait_for(lambda: world.tasks(case_id).get("transition_meeting"))
    assert meeting["due"] == due_of(planned, "transition_meeting", "care-institution").isoformat()
    # The planned date moves: the meeting moves with it, and is not scheduled twice.
    later = add_months(TODAY, 7)
    await cws.send(
        move_out,
        m.MilestoneReportedV1(
            case_id=case_id, pathway="care-institution", milestone="move_out_planned", on=later
        ),
    )
    moved = due_of(later, "transition_meeting", "care-institution").isoformat()
    await wait_for(lambda: world.tasks(case_id)["transition_meeting"]["due"] == moved)
    tasks = http_json(world.url("planning", f"/cases/{case_id}/tasks"))
    assert len([x for x in tasks if x["task"] == "transition_meeting"]) == 1
    assert "milestone: 'moved_in_again' is not a milestone" in await world.rejection(
        cws,
        move_out,
        m.MilestoneReportedV1(
            case_id=case_id, pathway="care-institution", milestone="moved_in_again", on=TODAY
        ),
    )
    # Moving out ends every recurring task of the stay.
    await cws.send(
        move_out,
        m.MilestoneReportedV1(
            case_id=case_id, pathway="care-institution", milestone="moved_out", on=TODAY
        ),
    )
    await wait_for(lambda: world.tasks(case_id)["leader_assessment"]["status"] == "cancelled")
    await cws.close()


async def test_metrics_liveness_and_readiness(system: System, world: World) -> None:
    import urllib.request

    case_id, _ = await world.arrive(TODAY - timedelta(days=30))
    await world.task_is(case_id, "kopp_proposal", "overdue")

    def metrics(service: str) -> str:
        url = f"http://127.0.0.1:{system.http_ports[service]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
            return resp.read().decode()

    for name, port in system.http_ports.items():
        text = metrics(name)
        assert "ema_consumer_lag" in text and "ema_outbox_pending" in text, name
        assert "ema_dead_letter_depth" in text, name
        assert http_json(f"http://127.0.0.1:{port}/livez")["status"] == "alive"
        assert http_json(f"http://127.0.0.1:{port}/readyz")["status"] == "ok"
    planning, intake = metrics("planning"), metrics("intake")
    assert 'ema_deadlines_overdue{task="kopp_proposal"}' in planning
    assert 'ema_messages_handled_total{consumer="planning-cases"}' in planning
    assert "# TYPE ema_dead_letters_total counter" in intake
    assert "ema_decision_seconds_count" in metrics("consent")
    assert ARRIVAL["name"] not in intake + planning
