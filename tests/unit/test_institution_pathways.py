"""Institution pathways (seed 002): key deadlines computed from an example move-in date."""

from datetime import date

import pytest

from services.planning.calendar import due_date, is_working_day, step_due
from services.planning.pathway import PATHWAY_DIR, Pathway, Step, load_pathway

CARE = "care-institution"
TREATMENT = "treatment-institution"
EMERGENCY = "emergency-institution"
MOVE_IN = date(2026, 1, 12)  # a Monday


def _load(pathway_id: str) -> Pathway:
    return load_pathway(PATHWAY_DIR / f"{pathway_id}.json")


def _step(pathway: Pathway, task: str) -> Step:
    step = pathway.step(task)
    assert step is not None, f"{pathway.id} has no step {task!r}"
    return step


def _occurrences(
    step: Step, start: date, count: int, rule: str = "previous_working_day"
) -> list[date]:
    """The first due dates, as planning schedules them: each next one from the previous
    unmoved date, then off a weekend or holiday by the pathway's rule (item 10)."""
    return [step_due(start, step, rule, n) for n in range(1, count + 1)]


@pytest.mark.parametrize("pathway_id", [CARE, TREATMENT, EMERGENCY])
def test_file_header_milestones_and_sources(pathway_id: str) -> None:
    pathway = _load(pathway_id)
    assert (pathway.id, pathway.version) == (pathway_id, 2)
    assert pathway.counting.non_working_day == "previous_working_day"
    assert "seed 002 L792-798" in pathway.counting.source and pathway.counting.verify
    assert pathway.title_nb and pathway.title_en and pathway.applies_to
    assert {"admission", "move_out_planned", "moved_out"} <= set(pathway.milestones)
    for step in pathway.steps:
        assert "seed 002 L" in step.source, step.task
        assert step.legal_ref
        if step.recurrence:
            assert step.recurrence.until == "moved_out", step.task
        if step.starts_on == "move_out_planned":
            assert step.offset.value <= 0, step.task


def test_care_mapping_report_week_8_and_cooperation_meeting_week_9() -> None:
    care = _load(CARE)
    # Week 8 of a stay from Monday 12 January ends on Sunday 8 March (day 55): the Friday before.
    assert due_date(MOVE_IN, _step(care, "mapping_report").offset) == date(2026, 3, 8)
    assert _occurrences(_step(care, "mapping_report"), MOVE_IN, 1) == [date(2026, 3, 6)]
    assert _occurrences(_step(care, "cooperation_meeting"), MOVE_IN, 1) == [date(2026, 3, 13)]
    assert _step(care, "mapping_report").strength == "bør"


def test_care_first_evaluation_report_week_18_before_meeting_week_20() -> None:
    care = _load(CARE)
    report, meeting = _step(care, "evaluation_report"), _step(care, "evaluation_meeting")
    assert (report.offset.unit, report.offset.value) == ("week_of_stay", 18)
    assert report.note and "L800-802" in report.note and "L865-869" in report.note
    # Week 18 ends on Sunday 17 May (also the national day): Friday 15 May.
    assert _occurrences(report, MOVE_IN, 1) == [date(2026, 5, 15)]
    assert _occurrences(meeting, MOVE_IN, 1) == [date(2026, 5, 29)]


def test_care_evaluation_meeting_and_report_then_every_three_months() -> None:
    care = _load(CARE)
    meeting = _step(care, "evaluation_meeting")
    assert meeting.recurrence is not None and meeting.recurrence.until == "moved_out"
    # From Sunday 31 May: 31 August, 30 November, then Sunday 28 February 2027 -> Friday.
    assert _occurrences(meeting, MOVE_IN, 4) == [
        date(2026, 5, 29),
        date(2026, 8, 31),
        date(2026, 11, 30),
        date(2027, 2, 26),
    ]
    report = _step(care, "evaluation_report")
    assert _occurrences(report, MOVE_IN, 3) == [
        date(2026, 5, 15),
        date(2026, 8, 17),
        date(2026, 11, 17),
    ]


@pytest.mark.parametrize(
    ("pathway_id", "months", "first_two"),
    [
        (CARE, 3, [date(2026, 4, 10), date(2026, 7, 10)]),  # 12 April and July are Sundays
        (TREATMENT, 3, [date(2026, 4, 10), date(2026, 7, 10)]),
        (EMERGENCY, 1, [date(2026, 2, 12), date(2026, 3, 12)]),
    ],
)
def test_leader_assessment_cadence(pathway_id: str, months: int, first_two: list[date]) -> None:
    step = _step(_load(pathway_id), "leader_assessment")
    assert step.responsible == "institution_leader"
    assert step.recurrence is not None
    assert (step.recurrence.every.unit, step.recurrence.every.value) == ("months", months)
    assert _occurrences(step, MOVE_IN, 2) == first_two


@pytest.mark.parametrize(
    ("pathway_id", "planned_move_out", "meeting"),
    [
        (CARE, date(2026, 10, 30), date(2026, 8, 28)),  # 30 August is a Sunday
        (TREATMENT, date(2026, 10, 30), date(2026, 7, 30)),
        (CARE, date(2026, 4, 30), date(2026, 2, 27)),  # clamped to 28 February, a Saturday
        (TREATMENT, date(2026, 5, 31), date(2026, 2, 27)),
    ],
)
def test_transition_meeting_counts_back_from_planned_move_out(
    pathway_id: str, planned_move_out: date, meeting: date
) -> None:
    step = _step(_load(pathway_id), "transition_meeting")
    assert step.starts_on == "move_out_planned"
    assert step.offset.unit == "months" and step.offset.value < 0
    assert _occurrences(step, planned_move_out, 1) == [meeting]


def test_treatment_intake_phase_and_monthly_evaluation_meeting() -> None:
    treatment = _load(TREATMENT)
    plan = _step(treatment, "overall_treatment_plan")
    # End of the 8-week intake: Sunday 8 March, day 55, so Friday 6 March.
    assert _occurrences(plan, MOVE_IN, 1) == [date(2026, 3, 6)]
    assert _occurrences(_step(treatment, "mapping_report"), MOVE_IN, 1) == [date(2026, 3, 6)]
    meeting = _step(treatment, "evaluation_meeting")
    assert _occurrences(meeting, MOVE_IN, 3) == [
        date(2026, 2, 12),
        date(2026, 3, 12),
        date(2026, 4, 10),
    ]
    weekly = _step(treatment, "treatment_meeting")
    assert _occurrences(weekly, MOVE_IN, 3) == [
        date(2026, 1, 16),
        date(2026, 1, 23),
        date(2026, 1, 30),
    ]


def test_emergency_clarification_meeting_within_three_working_days_over_easter() -> None:
    emergency = _load(EMERGENCY)
    step = _step(emergency, "clarification_meeting")
    assert (step.strength, step.responsible) == ("skal", "bufetat_intake_unit")
    assert (step.offset.unit, step.offset.value) == ("working_days", 3)
    # Intake Wednesday 1 April 2026: Maundy Thursday, Good Friday, the weekend and
    # Easter Monday do not count, so the three working days are 7, 8 and 9 April.
    easter_intake = date(2026, 4, 1)
    assert not any(is_working_day(date(2026, 4, d)) for d in (2, 3, 6))
    assert due_date(easter_intake, step.offset) == date(2026, 4, 9)
    # An ordinary week: intake Monday, due Thursday.
    assert due_date(MOVE_IN, step.offset) == date(2026, 1, 15)
    intake = _step(emergency, "intake_tasks")
    assert due_date(easter_intake, intake.offset) == date(2026, 4, 9)


def test_emergency_six_week_frame_is_a_frame_closed_by_move_out() -> None:
    emergency = _load(EMERGENCY)
    frame = _step(emergency, "six_week_frame")
    assert frame.kind == "frame" and frame.recurrence is None
    assert frame.completed_by == "moved_out"
    assert due_date(date(2026, 4, 1), frame.offset) == date(2026, 5, 13)
    # Every other step is a task, and none of them stops at the frame.
    assert [s.task for s in emergency.steps if s.kind == "frame"] == ["six_week_frame"]


def test_emergency_weekly_cooperation_meeting() -> None:
    step = _step(_load(EMERGENCY), "cooperation_meeting")
    assert step.recurrence is not None
    assert (step.recurrence.every.unit, step.recurrence.every.value) == ("weeks", 1)
    # Week 1 from Wednesday 1 April ends Tuesday 7 April (Easter Monday is the 6th).
    assert _occurrences(step, date(2026, 4, 1), 3) == [
        date(2026, 4, 7),
        date(2026, 4, 14),
        date(2026, 4, 21),
    ]


def test_only_the_emergency_pathway_has_frames() -> None:
    for pathway_id in (CARE, TREATMENT):
        assert all(s.kind == "task" for s in _load(pathway_id).steps)
