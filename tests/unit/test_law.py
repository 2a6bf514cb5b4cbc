"""Issue 14 rules that need no bus: dated statutes and schemes (item 9), the counting of weeks
and the weekend rule (item 10). The bus scenarios are tests/e2e/test_law.py."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from services.municipality.domain import (
    DATA,
    RefundRules,
    decide_refund,
    grant_estimate,
    load_grant_rates,
    load_refund_rules,
)
from services.planning.calendar import due_date, move_off_non_working_day, step_due
from services.planning.domain import Facts, applies, load_list, load_places, school_level
from services.planning.pathway import Offset, load_all

BORN = date(2010, 6, 15)


# -- item 9: sources with dates ------------------------------------------------------------------


def test_item_9_refund_scheme_of_seed_001_has_its_period_and_verify() -> None:
    raw = json.loads((DATA / "refunds.json").read_text())
    (scheme,) = raw["schemes"]
    assert scheme["verify"] is True and "seed 001 L301-308" in scheme["source"]
    assert scheme["valid_from"] and "valid_to" in scheme and "reform" in scheme["note"]
    (loaded,) = load_refund_rules()
    assert loaded.in_force(date(2026, 1, 1)) and not loaded.in_force(date(2015, 12, 31))


def test_item_9_refund_uses_the_scheme_in_force_on_each_day() -> None:
    old = RefundRules(Decimal("0.80"), 20, date(2016, 1, 1), date(2026, 7, 1), "old", True)
    new = RefundRules(Decimal("0.50"), 18, date(2026, 7, 1), None, "new", True)
    d = decide_refund(BORN, date(2026, 6, 21), date(2026, 7, 10), Decimal("2000"), (old, new))
    # 10 days at 80 %, 10 days at 50 %: (10 * 0.8 + 10 * 0.5) / 20 of 2000.
    assert (d.outcome, d.refund_nok) == ("approved", Decimal("1300.00"))
    assert "old (verify)" in d.reason and "new (verify)" in d.reason


def test_item_9_days_outside_every_scheme_are_not_refunded() -> None:
    only = RefundRules(Decimal("0.80"), 20, date(2016, 1, 1), date(2026, 7, 1), "old")
    d = decide_refund(BORN, date(2026, 6, 21), date(2026, 7, 10), Decimal("2000"), (only,))
    assert (d.outcome, d.days_refundable, d.refund_nok) == ("prorated", 10, Decimal("800.00"))
    none = decide_refund(BORN, date(2026, 8, 1), date(2026, 8, 10), Decimal("2000"), (only,))
    assert none.outcome == "refused" and "no refund scheme is in force" in none.reason


def test_item_9_grant_years_only_while_the_scheme_is_in_force() -> None:
    grants = load_grant_rates()
    assert all(s["verify"] and s["valid_from"] for s in grants["schemes"].values())
    ended = {
        **grants,
        "schemes": {
            **grants["schemes"],
            "integration": {**grants["schemes"]["integration"], "valid_to": "2028-01-01"},
        },
    }
    est = grant_estimate(BORN, date(2026, 3, 1), ended)
    assert [y["year"] for y in est["years"] if y["grant"] == "integration"] == [2026, 2027]


# -- item 10: dates ------------------------------------------------------------------------------


def test_item_10_week_n_is_the_last_day_of_the_nth_week_of_the_stay() -> None:
    week8 = Offset(unit="week_of_stay", value=8)
    start = date(2026, 1, 14)  # a Wednesday: week 1 is 14-20 January
    assert due_date(start, week8) == start + timedelta(days=55)  # not + 56, week 9's first day
    assert due_date(start, Offset(unit="week_of_stay", value=1)) == date(2026, 1, 20)
    assert due_date(start, Offset(unit="weeks", value=3)) == date(2026, 2, 4)  # "innen 3 uker"


def test_item_10_weekend_and_holiday_rules() -> None:
    sunday, may17 = date(2026, 3, 8), date(2027, 5, 17)  # 17 May 2027 is a Monday holiday
    assert move_off_non_working_day(sunday, "previous_working_day") == date(2026, 3, 6)
    assert move_off_non_working_day(sunday, "next_working_day") == date(2026, 3, 9)
    assert move_off_non_working_day(sunday, "keep") == sunday
    assert move_off_non_working_day(may17, "next_working_day") == date(2027, 5, 18)
    assert move_off_non_working_day(date(2026, 4, 3), "next_working_day") == date(2026, 4, 7)


def test_item_10_counting_is_pathway_data_with_its_source() -> None:
    pathways = load_all()
    ema = pathways["ema-care-centre"].counting
    assert ema.non_working_day == "next_working_day" and ema.verify
    assert "domstolloven § 148" in ema.source
    for name in ("care-institution", "treatment-institution", "emergency-institution"):
        counting = pathways[name].counting
        assert counting.non_working_day == "previous_working_day" and counting.verify
        assert "L792-798" in counting.source and "week 1 begins on the move-in day" in (
            counting.weeks
        )
    care = pathways["care-institution"]
    assert care.step("mapping_report").offset == Offset(unit="week_of_stay", value=8)


def test_item_10_statutory_deadline_on_a_saturday_runs_to_monday() -> None:
    ema = load_all()["ema-care-centre"]
    kopp = ema.step("kopp_proposal")
    # Arrival Saturday 7 March 2026: three weeks later is Saturday 28 March -> Monday 30 March.
    assert step_due(date(2026, 3, 7), kopp, ema.counting.non_working_day) == date(2026, 3, 30)
    # Arrival Thursday 12 March: 2 April is Maundy Thursday, Easter follows -> Tuesday 7 April.
    assert step_due(date(2026, 3, 12), kopp, ema.counting.non_working_day) == date(2026, 4, 7)


def test_item_10_recurrence_counts_from_the_unmoved_date() -> None:
    care = load_all()["care-institution"]
    step = care.step("evaluation_meeting")
    start = date(2026, 1, 12)
    first, second = (step_due(start, step, "previous_working_day", n) for n in (1, 2))
    assert (first, second) == (date(2026, 5, 29), date(2026, 8, 31))  # not 29 August


# -- item 6: who holds the duty ----------------------------------------------------------------


def test_item_6_school_level_follows_the_school_year() -> None:
    rules = load_all()["ema-care-centre"].school_year
    assert rules is not None and rules.verify
    on = date(2026, 11, 20)
    assert school_level(date(2022, 3, 1), on, rules) == "barnehage"  # four years old
    assert school_level(date(2020, 12, 31), on, rules) == "grunnskole"  # turned 6 this year
    assert school_level(date(2011, 6, 1), on, rules) == "grunnskole"  # 10th grade at 15
    assert school_level(date(2010, 6, 1), on, rules) == "videregaende"  # 16
    assert school_level(date(2020, 9, 1), date(2026, 6, 1), rules) == "barnehage"  # before August


def test_item_6_tb_and_school_are_the_municipality_s_and_apply_by_nationality_and_age() -> None:
    ema = load_all()["ema-care-centre"]
    tb, school = ema.step("tb_screening"), ema.step("school_start")
    assert (tb.responsible, school.responsible) == ("host_municipality", "host_municipality")
    assert tb.applies_if.nationality_in == "tb_high_incidence"
    assert ema.step("health_mapping_offer").strength == "anbefales"  # voluntary, not TB
    lists = {"tb_high_incidence": load_list("tb_high_incidence")}
    day = date(2026, 11, 20)
    afghan, syrian = Facts(date(2014, 1, 1), "AFG"), Facts(date(2014, 1, 1), "SYR")
    assert applies(tb.applies_if, afghan, day, ema.school_year, lists)
    assert not applies(tb.applies_if, syrian, day, ema.school_year, lists)
    four = Facts(date(2022, 3, 1), "AFG")
    assert not applies(school.applies_if, four, day, ema.school_year, lists)
    assert applies(ema.step("kindergarten_offer").applies_if, four, day, ema.school_year, lists)


def test_item_6_regions_and_statsforvalter_by_the_centre_s_county() -> None:
    places = load_places()
    assert places.region_unit("3201") == "bufetat-ost"  # Bærum, Akershus
    assert places.region_unit("4601") == "bufetat-vest"  # Bergen
    assert places.region_unit("5501") == "bufetat-nord"  # Tromsø
    assert places.statsforvalter("4601") == "statsforvalter-vestland"
    assert places.region_unit(None) == "bufetat-ost"  # unknown: data's unknown_location
    ema = load_all()["ema-care-centre"]
    assert ema.step("settlement").responsible == "bufetat_region"
    assert ema.step("settlement").role == "settlement_coordinator"


def test_item_7_warning_five_working_days_before_the_decision() -> None:
    ema = load_all()["ema-care-centre"]
    arrival = date(2026, 3, 2)  # decision due Monday 13 April (after Easter)
    rule = ema.counting.non_working_day
    decision = step_due(arrival, ema.step("follow_up_decision"), rule)
    warning = step_due(arrival, ema.step("representative_missing"), rule)
    assert decision == date(2026, 4, 13)
    # Five working days back: 10, 9, 8, 7 April, then over Easter (6, 3, 2 April) to 1 April.
    assert warning == date(2026, 4, 1)


# -- every legal choice and every rule marked verify is recorded ---------------------------------


def test_every_rule_marked_verify_is_recorded_with_its_source() -> None:
    root = Path(__file__).resolve().parents[2]
    # Issue 14's record, and issue 15's for the follow-up after settlement and referrals.
    adr = "".join(
        (root / "docs/decisions" / name).read_text()
        for name in ("0011-the-law-as-the-seeds-state-it.md", "0015-after-the-centre.md")
    )
    for pathway in load_all().values():
        assert pathway.id in adr
        for step in pathway.steps:
            if step.verify:
                assert f"`{step.task}`" in adr, (pathway.id, step.task)
                assert "seed" in step.source and " L" in step.source, (pathway.id, step.task)
                assert step.note, (pathway.id, step.task)
    data_files = [
        "services/consent/policies/data.json",
        "services/planning/data/units.json",
        "services/planning/data/tb_high_incidence.json",
        "services/municipality/data/refunds.json",
        "services/municipality/data/grants.json",
        "services/municipality/data/handover.json",
        "services/municipality/data/referrals.json",
        "services/municipality/data/followup.json",
    ]
    for name in data_files:
        assert '"verify": true' in (root / name).read_text(), name
        assert f"`{name}`" in adr or f"`{name.rsplit('/', 1)[1]}`" in adr, name


# -- item 4: the move-in day ---------------------------------------------------------------------


async def test_item_4_the_move_in_day_settles_the_child_once(tmp_path: Path) -> None:
    """The municipality's timer sends case.settled on the agreed day, not before, and once."""
    import asyncio

    from services.kit.db import create_tables, make_engine, sessionmaker
    from services.municipality.handlers import move_in_due
    from services.municipality.store import Base, Child, Placement

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await create_tables(engine, Base.metadata)
    sessions = sessionmaker(engine)
    sent: list[tuple[str, object]] = []

    class Outbox:
        def add(self, session, type_, data, **kw) -> None:  # noqa: ANN001, ANN003
            sent.append((type_, data))

    move_in = date(2026, 12, 23)
    async with sessions() as session, session.begin():
        session.add(
            Child(
                case_id="c1",
                status="accepted",
                kommunenummer="1804",
                settled_on=move_in,
                languages=[],
                care_needs=[],
                family=[],
                network=[],
                siblings=[],
            )
        )
        session.add(
            Placement(
                case_id="c1",
                offer_id="o1",
                kommunenummer="1804",
                year=2026,
                measure="bofellesskap",
                settled_on=move_in,
                within_deadline=True,
                days_waited=40,
            )
        )
    lock = asyncio.Lock()
    assert await move_in_due(sessions, Outbox(), lock, move_in - timedelta(days=1)) == 0
    assert await move_in_due(sessions, Outbox(), lock, move_in) == 1
    assert await move_in_due(sessions, Outbox(), lock, move_in + timedelta(days=1)) == 0
    ((type_, data),) = sent
    assert type_ == "no.ema.case.settled.v1" and data.settled_on == move_in
    async with sessions() as session:
        assert (await session.get(Child, "c1")).status == "settled"
    await engine.dispose()
