"""Issue 15 rules that need no bus: steps on birthdays (29 February, estimated birth dates, the
age limit in force, a birthday passed before the start, visits that end at 18), the follow-up
data agreeing with itself, the figures, and who reads the new addressed messages."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from contracts.messages import HandoverRecipients, UnitKind
from deploy import permissions
from services.municipality.followup import domain as d
from services.notify.routing import ROLES
from services.planning.calendar import Born, age_limit, birthday, raw_due, recurs_past, step_due
from services.planning.pathway import PathwayError, load_all, load_pathway

PATHWAYS = load_all()
FOLLOW = PATHWAYS["municipal-follow-up"]
RULE = FOLLOW.counting.non_working_day
BIRTHDAYS = FOLLOW.counting.birthdays


def due(task: str, start: date, born: Born, occurrence: int = 1) -> date:
    return step_due(start, FOLLOW.step(task), RULE, occurrence, born, BIRTHDAYS)


def test_a_29_february_birthday_in_a_common_year() -> None:
    assert birthday(date(2012, 2, 29), 18, "mar_1") == date(2030, 3, 1)
    assert birthday(date(2012, 2, 29), 18, "feb_28") == date(2030, 2, 28)
    assert birthday(date(2012, 2, 29), 16, "mar_1") == date(2028, 2, 29)  # a leap year
    assert BIRTHDAYS is not None and BIRTHDAYS.verify and "seed 003" in BIRTHDAYS.source


def test_steps_on_birthdays_fall_on_the_right_day() -> None:
    born = Born(date(2011, 9, 14), estimated=False)  # 18 on Thursday 14 September 2029
    start = date(2026, 12, 16)
    assert due("aftercare_decision", start, born) == date(2029, 9, 14)
    assert due("aftercare_offer", start, born) == date(2029, 3, 14)  # six months before
    assert due("nav_takeover", start, born) == date(2031, 6, 13)  # Sat 14 June: Friday before


def test_a_weekend_birthday_moves_to_the_working_day_before() -> None:
    born = Born(date(2012, 8, 24), estimated=False)  # 18 on Saturday 24 August 2030
    assert due("aftercare_decision", date(2026, 12, 16), born) == date(2030, 8, 23)


def test_an_estimated_birth_date_brings_the_steps_before_an_age_forward_and_says_so() -> None:
    start = date(2026, 12, 16)
    known, estimated = Born(date(2011, 9, 14), False), Born(date(2011, 9, 14), True)
    assert BIRTHDAYS is not None and BIRTHDAYS.estimated_margin_months == 12
    assert due("aftercare_decision", start, estimated) == date(2028, 9, 14)
    assert due("aftercare_offer", start, estimated) == date(2028, 3, 14)
    # The age limit stays on the registered date: the date the law counts from.
    assert due("closure", start, estimated) == due("closure", start, known)


def test_the_age_limit_in_force_on_the_day_it_is_reached() -> None:
    closure = FOLLOW.step("closure")
    assert age_limit(closure, date(1998, 5, 1), "mar_1") == 23  # 23 in 2021: the 1992 act
    assert age_limit(closure, date(2011, 5, 1), "mar_1") == 25  # 23 in 2034: the 2021 act
    assert raw_due(date(2026, 1, 1), closure, 1, Born(date(2011, 5, 1), False), BIRTHDAYS) == (
        date(2036, 4, 30)
    )


def test_a_birthday_passed_before_the_start_is_due_on_the_start_day() -> None:
    late = Born(date(2009, 3, 1), estimated=False)  # 17 and nine months at the move-in
    start = date(2026, 12, 16)
    assert due("aftercare_offer", start, late) == start


def test_visits_every_three_months_end_at_18() -> None:
    visit = FOLLOW.step("follow_up_visit")
    born = Born(date(2009, 9, 1), estimated=False)  # 18 on 1 September 2027
    start = date(2026, 12, 16)
    dates = [raw_due(start, visit, n, born, BIRTHDAYS) for n in (1, 2, 3)]
    assert dates == [date(2027, 3, 16), date(2027, 6, 16), date(2027, 9, 16)]
    assert [recurs_past(visit, x, born, BIRTHDAYS) for x in dates] == [False, False, True]
    assert "seed 003 L698-700" in visit.source and visit.verify


def _write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(body))
    return path


def test_birthday_steps_need_the_pathway_s_birthday_rules(tmp_path: Path) -> None:
    raw = json.loads(
        (
            Path(__file__).parents[2] / "services/planning/pathways/municipal-follow-up.json"
        ).read_text()
    )
    del raw["counting"]["birthdays"]
    with pytest.raises(PathwayError, match="birthdays need the pathway's counting.birthdays"):
        load_pathway(_write(tmp_path, raw))
    raw = json.loads(
        (
            Path(__file__).parents[2] / "services/planning/pathways/municipal-follow-up.json"
        ).read_text()
    )
    raw["steps"][4]["legal_ref"][0]["age"] = 23  # measure_decision: not on a birthday
    with pytest.raises(PathwayError, match="an age limit needs a step on a birthday"):
        load_pathway(_write(tmp_path, raw))


def test_handover_parts_and_their_steps_agree() -> None:
    rules = d.load_rules()
    assert {p.recipient for p in rules.parts} == set(HandoverRecipients.model_fields)
    for part in rules.parts:
        step = FOLLOW.step(f"handover_{part.part}")
        assert step is not None and step.starts_on == "move_in_planned"
        assert step.completed_by == f"{part.part}_acknowledged"
        assert step.cancelled_by == [f"{part.part}_withheld"]
        assert step.responsible == d.RECIPIENT_ROLES[part.recipient]
    assert set(d.REPORTED.values()) <= set(FOLLOW.milestones)


def test_referral_services_and_pathways_agree() -> None:
    rules = d.load_rules()
    assert set(rules.services.values()) <= {k.value for k in UnitKind}
    assert rules.services["bup"] == "health" and rules.services["ppt"] == "school"
    for service in rules.services:
        pathway = PATHWAYS[rules.referral_pathway(service)]
        assert {"sent", "acknowledged", "feedback_given"} <= set(pathway.milestones)
        assert pathway.step("referral_acknowledgement") and pathway.step("referral_feedback")
    assert rules.referral_pathway("bup") == "referral-to-bup"
    assert rules.referral_pathway("ppt") == "referral"
    bup = PATHWAYS["referral-to-bup"].step("referral_feedback")
    assert "§ 2-2" in str(bup.legal_ref) and "seed 004 L1417-1419" in bup.source


def test_every_role_a_pathway_names_is_a_role_notify_knows() -> None:
    for pathway in PATHWAYS.values():
        for step in pathway.steps:
            assert step.role in ROLES, (pathway.id, step.task)
            assert all(c.role in ROLES for c in step.copy_to), (pathway.id, step.task)


def test_followed_figures_by_age_band_and_measure() -> None:
    rules = d.load_rules()
    day = date(2027, 1, 1)

    def row(born: date, **kw: object) -> d.Followed:
        base = dict(
            status="active",
            birth_date=born,
            estimated=False,
            measure="bofellesskap",
            outcome=None,
            day_activity=None,
            closed_on=None,
            services=3,
            coordinator=False,
        )
        return d.Followed(**{**base, **kw})

    rows = [
        row(date(2012, 1, 1)),
        row(date(2010, 6, 1), estimated=True, measure="hybel_oppfolging", coordinator=True),
        row(date(2008, 1, 1), measure="ettervern", services=1),
        row(
            date(2006, 1, 1),
            status="closed",
            outcome="nav_only",
            day_activity="school",
            closed_on=date(2026, 12, 1),
        ),
        row(date(2012, 1, 1), status="planned"),
    ]
    figures = d.followed_figures(rows, rules, day)
    assert figures["followed"] == 3
    bands = {b["age_band"]: b for b in figures["followed_by_age_band"]}
    assert bands["under_16"]["measures"] == {"bofellesskap": 1}
    assert bands["16_17"] == {
        "age_band": "16_17",
        "measures": {"hybel_oppfolging": 1},
        "total": 1,
        "birth_date_estimated": 1,
    }
    assert bands["18_19"]["measures"] == {"ettervern": 1}
    assert figures["terminations"]["by_outcome"] == {"nav_only": 1}
    assert figures["terminations"]["by_year"] == {"2026": {"nav_only": 1}}
    assert figures["coordination"] == {"two_or_more_services": 2, "without_coordinator": 1}


def test_handover_and_referral_figures() -> None:
    day = date(2027, 1, 10)
    parts = [
        ("kopp_summary", "acknowledged", date(2027, 1, 5)),
        ("residence_status", "released", date(2027, 1, 5)),
        ("health_summary", "withheld", date(2027, 1, 5)),
        ("school_history", "released", date(2027, 1, 20)),
    ]
    assert d.handover_figures(parts, day) == {
        "health_summary": {"withheld": 1},
        "kopp_summary": {"acknowledged": 1},
        "residence_status": {"overdue": 1, "released": 1},
        "school_history": {"released": 1},
    }
    routes = d.referral_figures(
        [
            ("school", "bup", "feedback_given", "released", "given"),
            ("school", "bup", "sent", None, "refused"),
            ("health_station", "ppt", "acknowledged", None, "given"),
        ]
    )
    school_bup = next(r for r in routes if r["to"] == "bup")
    assert (
        school_bup["sent"],
        school_bup["acknowledged"],
        school_bup["without_feedback"],
        school_bup["feedback_released"],
        school_bup["consent_to_feedback"],
    ) == (2, 1, 1, 1, 1)


@pytest.mark.parametrize(
    "kind", [UnitKind.SCHOOL, UnitKind.HEALTH, UnitKind.BARNEVERN, UnitKind.MUNICIPALITY]
)
def test_the_municipality_s_services_read_only_their_own_handover_referrals_and_access(
    kind: UnitKind,
) -> None:
    reads = {s for subjects in permissions.unit_reads("unit-a", kind).values() for s in subjects}
    assert {
        "ema.municipality.handover.unit-a",
        "ema.municipality.referrals.unit-a",
        "ema.municipality.access.unit-a",
    } <= reads
    assert not any(s.startswith("ema.municipality.") and not s.endswith(".unit-a") for s in reads)


def test_a_referral_s_tasks_find_their_pathway_by_key() -> None:
    from services.planning.handlers import Planner, pathway_key

    planner = Planner(PATHWAYS, "bufetat-ost")
    key = pathway_key("referral-to-bup", "ref-0123456789ab")
    assert key == "referral-to-bup#ref-0123456789ab"
    assert planner.pathway(key).id == "referral-to-bup"
    assert planner.pathway("municipal-follow-up@1").id == "municipal-follow-up"
