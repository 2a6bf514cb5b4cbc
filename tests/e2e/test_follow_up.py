"""Issue 15 over the real bus, on a pinned clock: two children settled with the handover
(each part released or withheld on its own basis, acknowledged by its recipient, or overdue
on the move-in day), the municipality's follow-up to 18 and 20 with every step due on its day
(birthday steps, an estimated birth date too), a change of measure that keeps the residence
status and case access, a coordinating service, and two referrals from school to BUP: one
answered with feedback, one never acknowledged (overdue). Docs: docs/decisions/0015."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from urllib.error import HTTPError

import pytest

from contracts import messages as m
from deploy.launcher import System
from deploy.launcher import http_json as plain_http
from services.planning.calendar import Born, birthday, step_due
from services.planning.pathway import load_all
from tests.conftest import start_system
from tests.e2e.test_consent import share
from tests.e2e.test_law import consent, register_consent
from tests.e2e.test_lifecycle import TODAY, World
from tests.e2e.test_settlement import Settlement
from tests.support import Partner, dead_letters, http_json, stream_messages, wait_for

K = m.UnitKind
PATHWAYS = load_all()
FOLLOW = PATHWAYS["municipal-follow-up"]
BUP = PATHWAYS["referral-to-bup"]
MOVE_IN = TODAY + timedelta(days=14)
# Child A: 14 and some months at the acceptance, birth date known. Child B: 14 and a half,
# birth date estimated (an age assessment).
BORN_A = birthday(TODAY - timedelta(days=100), -14)
BORN_B = birthday(TODAY - timedelta(days=180), -14)
NAME = "Zahra Testdatter"


def due(
    task: str, born: Born | None = None, occurrence: int = 1, start: date = MOVE_IN, pathway=FOLLOW
) -> date:  # noqa: ANN001
    """Where planning puts a step: its offset (or birthday), then the pathway's rules."""
    step = pathway.step(task)
    return step_due(
        start, step, pathway.counting.non_working_day, occurrence, born, pathway.counting.birthdays
    )


def at(system: System, day: date) -> None:
    """Restart planning and the municipality with their day pinned: the calendar moved on."""
    for name in ("planning", "municipality"):
        system.procs[name].stop()
    for name in ("planning", "municipality"):
        system.start_service(name, EMA_TODAY=day.isoformat())


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(tmp_path_factory.mktemp("follow-up"), EMA_TODAY=TODAY.isoformat())
    yield sys_
    sys_.down()


class Town:
    """The units of the story: the centre and Bufetat, the municipality and its services."""

    def __init__(self, system: System) -> None:
        self.system = system

    async def register(self) -> None:
        s, x = self.system, uuid.uuid4().hex[:6]

        async def unit(name: str, kind: K, sealing: bool = False, **kw) -> Partner:  # noqa: ANN003
            return await Partner.register(s, name, kind, sealing=sealing, **kw)

        self.centre = await unit(f"centre-{x}", K.CARE_CENTRE, kommunenummer="0301")
        self.bufetat = await unit(f"bufetat-{x}", K.BUFETAT_REGION)
        self.sf = await unit(f"sf-{x}", K.STATSFORVALTER)
        self.udi = await unit(f"udi-{x}", K.UDI)
        self.kommune = await unit("kommune-0301", K.MUNICIPALITY, sealing=True)
        self.bv = await unit(f"bv-{x}", K.BARNEVERN, sealing=True)
        self.school = await unit(f"school-{x}", K.SCHOOL, sealing=True)
        self.hs = await unit(f"hs-{x}", K.HEALTH, sealing=True)
        self.bup = await unit(f"bup-{x}", K.HEALTH, sealing=True)
        self.home = await unit(f"bofellesskap-{x}", K.MUNICIPALITY)
        self.flat = await unit(f"hybel-{x}", K.MUNICIPALITY)
        self.refugee = await unit(f"flyktning-{x}", K.MUNICIPALITY)
        self.world = World(s, self.centre, self.bufetat, self.sf, self.udi)
        self.settlement = Settlement(self.world, "øst")

    def url(self, service: str, path: str) -> str:
        return self.world.url(service, path)

    # -- planning's tasks ---------------------------------------------------------------------

    def tasks(self, case_id: str) -> list[dict]:
        return http_json(self.url("planning", f"/cases/{case_id}/tasks"))

    def task(self, case_id: str, task: str, pathway: str = FOLLOW.id, seq: int = 1) -> dict | None:
        return next(
            (
                t
                for t in self.tasks(case_id)
                if t["task"] == task and t["pathway"] == pathway and t["seq"] == seq
            ),
            None,
        )

    async def task_is(
        self, case_id: str, task: str, status: str, pathway: str = FOLLOW.id, seq: int = 1
    ) -> dict:
        return await wait_for(
            lambda: (t := self.task(case_id, task, pathway, seq)) and t["status"] == status and t,
            timeout=30,
        )

    def follow_up(self, case_id: str) -> dict:
        return http_json(self.url("municipality", f"/followup/{case_id}"))

    def inbox(self, unit: Partner) -> list[dict]:
        return http_json(self.url("notify", f"/inbox/{unit.unit_id}"))

    async def notified(self, unit: Partner, role: str, key: str, text: str) -> dict:
        return await wait_for(
            lambda: next(
                (
                    n
                    for n in self.inbox(unit)
                    if n["role"] == role and n["event_type"] == key and text in n["text_nb"]
                ),
                None,
            ),
            timeout=30,
        )

    async def addressed(self, unit: Partner, subject: str, **match: object) -> list[dict]:
        """Messages on the unit's own subject (`ema.<...>.<unit>`) matching `match`."""
        stream = "MUNICIPALITY"
        full = f"{subject}.{unit.unit_id}"

        async def found() -> list[dict]:
            out = [json.loads(x.data)["data"] for x in await stream_messages(unit.nc, stream, full)]
            return [d for d in out if all(d.get(k) == v for k, v in match.items())]

        return await wait_for(found, timeout=30)

    # -- the settlement with its handover -------------------------------------------------------

    async def settled_child(self, born: date, estimated: bool, school_consent: bool) -> str:
        w, s = self.world, self.settlement
        case_id, number = await w.arrive(
            TODAY - timedelta(days=70), birth_date=born, birth_date_estimated=estimated
        )
        await self.udi.send(
            "no.ema.intake.residence-decided.v1",
            m.ResidenceDecisionV1(
                duf_number=number,
                outcome="granted",
                decided_on=TODAY - timedelta(days=30),
                udi_reference="UDI-" + number[-4:],
            ),
        )
        await self.bufetat.send(
            "no.ema.municipality.settlement-profile.v1",
            m.SettlementProfileV1(
                case_id=case_id,
                bufetat_region="øst",
                recommended_measure="bofellesskap",
                birth_date=born,
                languages=["prs"],
                care_needs=["trauma"],
                family_municipalities=["0301"],
                network_municipalities=[],
                siblings=[],
                kopp_on=TODAY,
            ),
        )
        await wait_for(lambda: case_id in s.waiting())
        # Each part on its own basis: the KOPP summary on a written consent (bvl § 5A-6), the
        # residence status on an oral one, the school history where the representative
        # consented, the health summary on none: withheld.
        given = [
            consent(
                case_id,
                ["kopp"],
                ["bufetat_region"],
                ["municipality", "barnevern"],
                ["settlement", "handover"],
            ),
            consent(
                case_id, ["identity"], ["bufetat_region"], ["barnevern"], ["handover"], form="oral"
            ),
        ]
        if school_consent:
            given.append(
                consent(
                    case_id,
                    ["school"],
                    ["care_centre", "school"],
                    ["school", "health"],
                    ["handover", "referral"],
                    form="oral",
                )
            )
        for c in given:
            await register_consent(self.system, self.centre, c)
        offer_id = await s.offer(case_id, "0301")
        await self.kommune.send(
            "no.ema.municipality.offer-answered.v2",
            m.OfferAnsweredV2(
                offer_id=offer_id,
                answer="accept",
                settle_on=MOVE_IN,
                measure="bofellesskap",
                handover_to=m.HandoverRecipients(
                    barnevern=self.bv.unit_id,
                    school=self.school.unit_id,
                    health_station=self.hs.unit_id,
                ),
            ),
        )
        assert (await s.outcome(self.kommune, offer_id))["outcome"] == "settled"
        # The centre hears which parts it sends, by which request id, to whom.
        asks = await wait_for(lambda: self._asks(case_id), timeout=30)
        assert {a["part"]: a["recipient_unit"] for a in asks} == {
            "school_history": self.school.unit_id,
            "health_summary": self.hs.unit_id,
        }
        for a in asks:
            content = {
                "school_history": {
                    "school_history": ["grade 6, Kabul"],
                    "languages": ["prs"],
                    "learning_needs": [],
                },
                "health_summary": {
                    "health_summary": "vaccinated",
                    "allergies": [],
                    "therapy_notes": "never released",
                },
            }[a["part"]]
            await share(
                self.centre,
                case_id,
                a["recipient_unit"],
                a["data_category"],
                a["purpose"],
                content,
                request_id=a["request_id"],
            )
        return case_id

    async def _asks(self, case_id: str) -> list[dict] | None:
        subject = f"ema.municipality.handover.{self.centre.unit_id}"
        found = [
            json.loads(x.data)["data"]
            for x in await stream_messages(self.centre.nc, "MUNICIPALITY", subject)
        ]
        asks = [a for a in found if a["case_id"] == case_id and a["your_role"] == "send"]
        return asks if len(asks) == 2 else None

    async def parts_decided(self, case_id: str) -> dict[str, dict]:
        def decided() -> dict | None:
            parts = {p["part"]: p for p in self.follow_up(case_id)["handover"]}
            return parts if all(p["status"] != "requested" for p in parts.values()) else None

        return await wait_for(decided, timeout=30)

    async def acknowledge(self, unit: Partner, case_id: str, request_id: str, on: date) -> None:
        await unit.send(
            "no.ema.municipality.handover-acknowledged.v1",
            m.HandoverAcknowledgedV1(case_id=case_id, request_id=request_id, acknowledged_on=on),
        )


@pytest.fixture
async def town(system: System) -> AsyncIterator[Town]:
    t = Town(system)
    await t.register()
    await t.kommune.send(
        "no.ema.municipality.capacity.v2",
        m.CapacityPublishedV2(
            kommunenummer="0301",
            year=TODAY.year,
            children=5,
            free_places=5,
            offers=[m.MeasureOffer(measure="bofellesskap", min_age=10, max_age=17)],
        ),
    )
    await wait_for(
        lambda: any(
            c["kommunenummer"] == "0301" and c["free_places"] == 5
            for c in http_json(t.url("municipality", "/capacity"))
        )
    )
    yield t
    for p in vars(t).values():
        if isinstance(p, Partner):
            await p.close()


@pytest.mark.timeout(1200)  # five restarts of two services on a loaded machine
async def test_settled_with_the_handover_and_followed_to_18_and_20(
    system: System, town: Town
) -> None:
    t = town
    a = await t.settled_child(BORN_A, estimated=False, school_consent=True)
    b = await t.settled_child(BORN_B, estimated=True, school_consent=False)

    # -- the handover: each part released or withheld on its own basis --------------------------
    parts = await t.parts_decided(a)
    assert {p: x["status"] for p, x in parts.items()} == {
        "kopp_summary": "released",
        "residence_status": "released",
        "school_history": "released",
        "health_summary": "withheld",
    }
    assert parts["kopp_summary"]["recipient_unit"] == t.bv.unit_id
    assert parts["health_summary"]["legal_basis"] is None
    # Each recipient hears only of its own parts, on its own subject, and opens what came.
    notices = await t.addressed(t.school, "ema.municipality.handover", case_id=a)
    assert {n["part"] for n in notices} == {"school_history"}
    assert notices[0]["acknowledge_by"] == due("handover_school_history").isoformat()
    kopp = await _delivered(t.bv, parts["kopp_summary"]["request_id"])
    assert kopp["recommended_measure"] == "bofellesskap" and kopp["family_ties"]["here"] is True
    residence = await _delivered(t.bv, parts["residence_status"]["request_id"])
    assert residence["residence_status"] == "granted"
    school = await _delivered(t.school, parts["school_history"]["request_id"])
    assert school["school_history"] == ["grade 6, Kabul"]
    # The municipality's case opened from the handover, not typed in again.
    case_a = t.follow_up(a)
    assert (case_a["status"], case_a["residence"], case_a["measure"]) == (
        "planned",
        "granted",
        "bofellesskap",
    )

    # Each part due the working day before the move-in day, to its recipient's role; the
    # withheld health summary has nothing to acknowledge.
    for part, unit in (
        ("kopp_summary", t.bv),
        ("residence_status", t.bv),
        ("school_history", t.school),
    ):
        task = await t.task_is(a, f"handover_{part}", "scheduled")
        assert (task["due"], task["responsible_unit"]) == (
            due(f"handover_{part}").isoformat(),
            unit.unit_id,
        )
        await t.acknowledge(unit, a, parts[part]["request_id"], TODAY)
        await t.task_is(a, f"handover_{part}", "done")
    await t.task_is(a, "handover_health_summary", "cancelled")
    notice = await t.notified(t.school, "school_contact", "deadline.scheduled", "skolehistorikken")
    assert "bør være gjennomført innen" in notice["text_nb"]
    # Child B: the school history is withheld (no consent); the KOPP summary acknowledged,
    # the residence status not.
    parts_b = await t.parts_decided(b)
    assert parts_b["school_history"]["status"] == "withheld"
    await t.acknowledge(t.bv, b, parts_b["kopp_summary"]["request_id"], TODAY)
    await t.task_is(b, "handover_kopp_summary", "done")

    # -- the move-in day --------------------------------------------------------------------------
    at(system, MOVE_IN)
    for case_id in (a, b):
        await wait_for(
            lambda c=case_id: (
                http_json(t.url("planning", f"/cases/{c}/timeline"))["case"]["closed"] == "settled"
            ),
            timeout=30,
        )
    # Unacknowledged before move-in: overdue, escalated to the unit's leader, the municipality told.
    late = await t.task_is(b, "handover_residence_status", "overdue")
    assert late["due"] == due("handover_residence_status").isoformat()
    await t.notified(t.bv, "cws_case_officer", "task.overdue", "oppholdsstatus")
    await t.notified(t.bv, "unit_leader", "task.overdue", "oppholdsstatus")
    await t.notified(t.kommune, "municipal_contact", "task.overdue", "oppholdsstatus")
    assert any(p["overdue"] for p in t.follow_up(b)["handover"] if p["part"] == "residence_status")

    # Every step of the follow-up due on its day: the birthday steps from the registered birth
    # date, or (child B's estimated one) twelve months earlier and said so.
    born_a, born_b = Born(BORN_A, False), Born(BORN_B, True)
    steps = (
        "measure_decision",
        "follow_up_visit",
        "aftercare_offer",
        "aftercare_decision",
        "nav_takeover",
        "closure",
    )
    for case_id, born in ((a, born_a), (b, born_b)):
        for name in steps:
            task = await t.task_is(
                case_id, name, "due" if name == "measure_decision" else "scheduled"
            )
            assert task["due"] == due(name, born).isoformat(), (case_id, name)
            assert task["responsible_unit"] == t.bv.unit_id
    # By 18: on the birthday, or the working day before it when it falls on a weekend.
    eighteen = birthday(BORN_A, 18)
    assert eighteen - timedelta(days=4) <= due("aftercare_decision", born_a) <= eighteen
    assert due("aftercare_decision", born_b) < birthday(BORN_B, 18) - timedelta(days=300)
    assert "(anslått fødselsdato)" in t.task(b, "aftercare_offer")["title_nb"]
    assert "anslått" not in t.task(a, "aftercare_offer")["title_nb"]
    # The age limit in force on the day it is reached: 25 under the 2021 act.
    closure = date.fromisoformat(t.task(a, "closure")["due"])
    assert birthday(BORN_A, 25) - timedelta(days=5) <= closure < birthday(BORN_A, 25)
    # Three services (barnevern, school, health station): a coordinating service is due.
    coordination = await t.task_is(a, "coordinator_assignment", "scheduled")
    assert (coordination["due"], coordination["responsible_unit"]) == (
        due("coordinator_assignment", start=MOVE_IN).isoformat(),
        "kommune-0301",
    )

    # -- measure, visits, a change of measure that keeps status and access ----------------------
    await t.bv.send(
        "no.ema.municipality.measure-decided.v1",
        m.MeasureDecidedV1(
            case_id=a,
            measure="bofellesskap",
            provider_unit=t.home.unit_id,
            decided_on=MOVE_IN,
            decision_ref="V-1",
            legal_basis="bvl § 4-4 annet ledd",
        ),
    )
    await t.task_is(a, "measure_decision", "done")
    await t.bv.send(
        "no.ema.planning.task-completed.v1",
        m.TaskCompletedV1(case_id=a, task="follow_up_visit", completed_on=MOVE_IN),
    )
    second = await t.task_is(a, "follow_up_visit", "scheduled", seq=2)
    assert second["due"] == due("follow_up_visit", born_a, occurrence=2).isoformat()
    await t.bv.send(
        "no.ema.municipality.measure-decided.v1",
        m.MeasureDecidedV1(
            case_id=a,
            measure="hybel_oppfolging",
            provider_unit=t.flat.unit_id,
            decided_on=MOVE_IN,
            decision_ref="V-2",
            legal_basis="bvl § 4-4 annet ledd",
        ),
    )
    access = await t.addressed(t.flat, "ema.municipality.access", case_id=a, access="granted")
    assert (access[0]["residence"], access[0]["measure"]) == ("granted", "hybel_oppfolging")
    mine = system.api(
        "municipality", f"/units/{t.flat.unit_id}/followup", role="unit", unit=t.flat.unit_id
    )
    assert [(c["case_id"], c["residence"]) for c in mine] == [(a, "granted")]
    old = system.api(
        "municipality", f"/units/{t.home.unit_id}/followup", role="unit", unit=t.home.unit_id
    )
    assert old[0]["access"][0]["until"] == (MOVE_IN + timedelta(days=14)).isoformat()
    with pytest.raises(HTTPError) as refused:  # a unit sees only its own list
        system.api(
            "municipality", f"/units/{t.flat.unit_id}/followup", role="unit", unit=t.school.unit_id
        )
    assert refused.value.code == 403
    case_a = t.follow_up(a)
    assert [x["measure"] for x in case_a["measures"]] == ["bofellesskap", "hybel_oppfolging"]
    assert (case_a["residence"], case_a["status"]) == ("granted", "active")

    # -- the coordinating service owns the responsibility-group meetings ------------------------
    await t.kommune.send(
        "no.ema.municipality.coordinator-assigned.v1",
        m.CoordinatorAssignedV1(
            case_id=a,
            coordinator_unit=t.refugee.unit_id,
            service="refugee_service",
            assigned_on=MOVE_IN,
        ),
    )
    await t.task_is(a, "coordinator_assignment", "done")
    meeting = await t.task_is(a, "responsibility_group_meeting", "scheduled")
    assert (meeting["due"], meeting["responsible_unit"], meeting["role"]) == (
        due("responsibility_group_meeting").isoformat(),
        t.refugee.unit_id,
        "coordinator",
    )
    await t.notified(t.refugee, "coordinator", "deadline.scheduled", "ansvarsgruppen")

    # -- referrals from school to BUP: one answered with feedback, one never acknowledged -------
    fb = consent(a, ["health"], ["health"], ["school"], ["referral_feedback"])
    await register_consent(system, t.centre, fb)
    answered, silent = ("ref-" + uuid.uuid4().hex[:12] for _ in range(2))
    for referral_id, agreed in ((answered, True), (silent, False)):
        content = await share(
            t.school,
            a,
            t.bup.unit_id,
            "school",
            "referral",
            {"reason": "concentration", "observations": "sleeps in class"},
        )
        await t.school.send(
            "no.ema.municipality.referral-sent.v1",
            m.ReferralSentV1(
                referral_id=referral_id,
                case_id=a,
                from_service="school",
                to_service="bup",
                to_unit=t.bup.unit_id,
                share_request_id=content.request_id,
                sent_on=MOVE_IN,
                feedback_consent="given" if agreed else "refused",
                feedback_consent_id=fb.consent_id if agreed else None,
            ),
        )
    key = f"{BUP.id}#{answered}"
    ack = await t.task_is(a, "referral_acknowledgement", "scheduled", pathway=key)
    assert ack["due"] == due("referral_acknowledgement", pathway=BUP).isoformat()
    assert ack["responsible_unit"] == t.bup.unit_id
    assert (await t.task_is(a, "referral_feedback", "scheduled", pathway=key))["due"] == due(
        "referral_feedback", pathway=BUP
    ).isoformat()  # 10 working days (pbrl § 2-2)
    told = await t.addressed(t.bup, "ema.municipality.referrals", referral_id=answered)
    assert told[0]["status"] == "sent" and told[0]["feedback_consent"] == "given"
    await t.bup.send(
        "no.ema.municipality.referral-acknowledged.v1",
        m.ReferralAcknowledgedV1(referral_id=answered, acknowledged_on=MOVE_IN),
    )
    await t.task_is(a, "referral_acknowledgement", "done", pathway=key)
    feedback = await share(
        t.bup,
        a,
        t.school.unit_id,
        "health",
        "referral_feedback",
        {
            "received_on": MOVE_IN.isoformat(),
            "assessment": "assessed",
            "follow_up_planned": True,
            "contact": "BUP team 2",
            "therapy_notes": "never released",
        },
    )
    await t.bup.send(
        "no.ema.municipality.referral-feedback.v1",
        m.ReferralFeedbackV1(
            referral_id=answered, share_request_id=feedback.request_id, given_on=MOVE_IN
        ),
    )
    await t.task_is(a, "referral_feedback", "done", pathway=key)
    back = await _delivered(t.school, feedback.request_id)
    assert back["assessment"] == "assessed" and "therapy_notes" not in back
    await t.addressed(
        t.school, "ema.municipality.referrals", referral_id=answered, status="feedback_given"
    )
    referral = await wait_for(
        lambda: next(
            (
                r
                for r in t.follow_up(a)["referrals"]
                if r["referral_id"] == answered and r["feedback_outcome"]
            ),
            None,
        )
    )
    assert referral["feedback_outcome"] == "released"

    async def on_its_day(task: str, event: str) -> date:
        """Pin the day the step falls due, see it due, report it done that day."""
        day = due(task, born_a)
        at(system, day)
        await t.task_is(a, task, "due")
        await t.bv.send(
            "no.ema.municipality.follow-up-reported.v1",
            m.FollowUpReportedV1(case_id=a, event=event, on=day),
        )
        assert (await t.task_is(a, task, "done"))["days_late"] == 0
        return day

    # -- well before 18: the aftercare offer is due (the silent referral long overdue) ----------
    offer_day = await on_its_day("aftercare_offer", "aftercare_offered")
    silent_ack = await t.task_is(
        a, "referral_acknowledgement", "overdue", pathway=f"{BUP.id}#{silent}"
    )
    assert (
        silent_ack["days_late"] == (offer_day - due("referral_acknowledgement", pathway=BUP)).days
    )
    await t.notified(t.bup, "service_contact", "task.overdue", "Kvittere for henvisningen")
    await t.notified(t.bup, "unit_leader", "task.overdue", "Kvittere for henvisningen")
    await t.notified(t.school, "service_contact", "task.overdue", "Kvittere for henvisningen")

    # -- 18: aftercare accepted on the day it is due ---------------------------------------------
    await on_its_day("aftercare_decision", "aftercare_accepted")

    # -- before 20: NAV takes over; child B's follow-up ends -------------------------------------
    nav_day = await on_its_day("nav_takeover", "nav_took_over")
    await t.bv.send(
        "no.ema.municipality.follow-up-closed.v1",
        m.FollowUpClosedV1(case_id=b, closed_on=nav_day, outcome="nav_only", day_activity="school"),
    )
    await t.task_is(b, "closure", "done")
    assert t.task(b, "follow_up_visit")["status"] == "cancelled"

    # -- 20: the figures -----------------------------------------------------------------------
    at(system, birthday(BORN_A, 20))
    figures = await wait_for(
        lambda: (
            (f := http_json(t.url("municipality", "/followup/figures")))
            and f["terminations"]["total"] == 1
            and f
        ),
        timeout=30,
    )
    assert figures["terminations"]["by_outcome"] == {"nav_only": 1}
    assert figures["terminations"]["by_day_activity"] == {"school": 1}
    assert figures["followed_by_age_band"] == [
        {
            "age_band": "20_22",
            "total": 1,
            "measures": {"hybel_oppfolging": 1},
            "birth_date_estimated": 0,
        }
    ]
    assert figures["coordination"] == {"two_or_more_services": 1, "without_coordinator": 0}
    route = next(r for r in figures["referrals"] if (r["from"], r["to"]) == ("school", "bup"))
    assert (route["sent"], route["feedback_released"], route["without_feedback"]) == (2, 1, 1)
    assert figures["handover"]["residence_status"]["overdue"] == 1
    recurring = http_json(t.url("planning", "/figures"))["recurring"]
    assert recurring["follow_up_visit"]["held"] == 1
    assert recurring["follow_up_visit"]["planned"] >= 2
    assert recurring["responsibility_group_meeting"]["planned"] >= 1

    # Notices carry no confidential content: no name, no birth date.
    for unit in (t.bv, t.school, t.hs, t.bup, t.kommune, t.refugee):
        for n in t.inbox(unit):
            for text in (n["text_nb"], n["text_en"]):
                assert NAME not in text
                assert BORN_A.isoformat() not in text and BORN_B.isoformat() not in text
                assert BORN_A.strftime("%d.%m.%Y") not in text
    letters = [
        d for d in await dead_letters(t.centre.nc) if a in json.dumps(d) or b in json.dumps(d)
    ]
    assert letters == []


async def _delivered(recipient: Partner, request_id: str) -> dict:
    from tests.e2e.test_law import delivered

    return await delivered(recipient, request_id)


def test_token_routes_for_units_need_a_unit_token(system: System) -> None:
    """The case list of a unit is behind sign-in like every other route."""
    url = f"http://127.0.0.1:{system.http_ports['municipality']}/units/x-unit/followup"
    with pytest.raises(HTTPError) as refused:
        plain_http(url)
    assert refused.value.code == 401
