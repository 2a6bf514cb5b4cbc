"""Matching, refunds and grants: the pure rules of the municipality service."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from services.municipality.domain import (
    INFEASIBLE,
    Band,
    Child,
    Place,
    RefundRules,
    assign,
    assign_greedy,
    decide_refund,
    explain,
    grant_estimate,
    load_catalogue,
    load_grant_rates,
    load_refund_rules,
    score_matrix,
)

RULES = RefundRules(Decimal("0.80"), 20)
BOF = (Band("bofellesskap", 13, 17),)


def place(k: str, free: int = 1, offers=BOF, competences=()) -> Place:  # noqa: ANN001
    return Place(k, f"K{k}", "øst", tuple(offers), free, frozenset(competences))


def child(cid: str, **kw) -> Child:  # noqa: ANN003
    base = {"age": 15, "measure": "bofellesskap", "days_left": 60}
    return Child(cid, **{**base, **kw})


def test_hard_constraints_measure_age_and_free_place() -> None:
    assert explain(child("a", measure="fosterhjem"), place("0301")).score == INFEASIBLE
    assert (
        "does not offer fosterhjem"
        in explain(child("a", measure="fosterhjem"), place("0301")).lines[0]
    )
    assert explain(child("a", age=11), place("0301")).score == INFEASIBLE
    assert "no free place" in explain(child("a"), place("0301", free=0)).lines[0]
    result = assign([child("a", age=11), child("b")], [place("0301", free=5)])
    assert [p.case_ids for p in result.proposals] == [["b"]]
    assert result.unplaced == {"a": "no fitting free place"}


def test_explanation_lines_name_every_criterion() -> None:
    c = child(
        "a",
        family=frozenset({"4601"}),
        network=frozenset({"4601"}),
        care_needs=frozenset({"trauma", "school_support"}),
        days_left=10,
    )
    s = explain(c, place("4601", competences={"trauma"}))
    text = "\n".join(s.lines)
    for expected in (
        "hard constraints met",
        "family ties: relatives live in K4601",
        "network",
        "care needs met: trauma",
        "care needs not covered: school_support (traded off)",
        "age fit",
        "10 days left",
    ):
        assert expected in text


def test_vectorised_matrix_equals_explained_scores() -> None:
    rng = random.Random(7)
    measures = ["bofellesskap", "fosterhjem", "slektsfosterhjem"]
    needs = ["trauma", "mental_health", "school_support"]
    places = [
        place(
            f"{k:04d}",
            free=rng.randint(0, 3),
            offers=[
                Band(m, rng.randint(0, 12), rng.randint(12, 17)) for m in rng.sample(measures, 2)
            ],
            competences=rng.sample(needs, rng.randint(0, 2)),
        )
        for k in range(30)
    ]
    kids = [
        child(
            str(i),
            age=rng.randint(5, 17),
            measure=rng.choice(measures),
            days_left=rng.randint(-30, 90),
            care_needs=frozenset(rng.sample(needs, rng.randint(0, 2))),
            family=frozenset({f"{rng.randint(0, 29):04d}"}),
            declined_by=frozenset({f"{rng.randint(0, 29):04d}"}),
        )
        for i in range(40)
    ]
    matrix = score_matrix(kids, places)
    for i, c in enumerate(kids):
        for j, p in enumerate(places):
            assert matrix[i, j] == pytest.approx(explain(c, p).score), (i, j)


def test_global_assignment_beats_greedy_where_greedy_blocks() -> None:
    # The urgent child takes the family municipality of the other; the optimum swaps them.
    urgent = child("u", days_left=5)
    family = child("f", days_left=80, family=frozenset({"0301"}))
    places = [place("0301"), place("4601", offers=(Band("bofellesskap", 15, 17),))]
    greedy = assign_greedy([urgent, family], places)
    best = assign([urgent, family], places)
    assert best.total > greedy.total
    by_case = {p.case_ids[0]: p.kommunenummer for p in best.proposals}
    assert by_case == {"u": "4601", "f": "0301"}


def test_siblings_are_settled_together_or_not_at_all() -> None:
    a = child("a", siblings=frozenset({"b"}))
    b = child("b", age=14, siblings=frozenset({"a"}))
    single = child("c")
    result = assign([a, b, single], [place("0301", free=1), place("4601", free=2)])
    groups = {tuple(sorted(p.case_ids)): p.kommunenummer for p in result.proposals}
    assert groups[("a", "b")] == "4601"
    assert groups[("c",)] == "0301"
    assert (
        "siblings settled together"
        in next(p for p in result.proposals if len(p.case_ids) == 2).lines[0]
    )
    # No municipality has two places: neither sibling is proposed alone.
    result = assign([a, b], [place("0301", free=1), place("4601", free=1)])
    assert result.proposals == []
    assert set(result.unplaced) == {"a", "b"}
    # A sibling not ready yet holds the other back.
    held = assign([child("x", siblings=frozenset({"y"}))], [place("0301")])
    assert held.proposals == [] and "not ready" in held.unplaced["x"]


def test_a_declining_municipality_is_not_proposed_again() -> None:
    c = child("a", family=frozenset({"0301"}), declined_by=frozenset({"0301"}))
    result = assign([c], [place("0301"), place("4601")])
    assert [p.kommunenummer for p in result.proposals] == ["4601"]


def test_no_slot_is_given_twice() -> None:
    kids = [child(str(i)) for i in range(10)]
    result = assign(kids, [place("0301", free=3), place("4601", free=2)])
    counts: dict[str, int] = {}
    for p in result.proposals:
        counts[p.kommunenummer] = counts.get(p.kommunenummer, 0) + len(p.case_ids)
    assert counts == {"0301": 3, "4601": 2}
    assert len(result.unplaced) == 5
    assert np.isfinite(result.total)


# -- refunds at the 20th birthday ------------------------------------------------------------


BORN = date(2006, 6, 15)  # turns 20 on 2026-06-15


def test_refund_before_the_20th_birthday_is_80_percent() -> None:
    d = decide_refund(BORN, date(2026, 5, 1), date(2026, 5, 31), Decimal("100000"), RULES)
    assert (d.outcome, d.refund_nok, d.days_refundable) == ("approved", Decimal("80000.00"), 31)


def test_period_ending_the_day_before_the_birthday_is_whole() -> None:
    d = decide_refund(BORN, date(2026, 6, 1), date(2026, 6, 14), Decimal("1400"), RULES)
    assert (d.outcome, d.refund_nok) == ("approved", Decimal("1120.00"))


def test_period_crossing_the_birthday_is_prorated_by_days() -> None:
    d = decide_refund(BORN, date(2026, 6, 1), date(2026, 6, 30), Decimal("30000"), RULES)
    # 1-14 June refundable: 14 of 30 days.
    assert (d.outcome, d.days_claimed, d.days_refundable) == ("prorated", 30, 14)
    assert d.refund_nok == Decimal("11200.00")
    assert d.reason.startswith("period_to:") and "2006" not in d.reason


def test_period_from_the_birthday_is_refused_with_the_rule_not_the_date() -> None:
    d = decide_refund(BORN, date(2026, 6, 15), date(2026, 6, 30), Decimal("30000"), RULES)
    assert (d.outcome, d.refund_nok) == ("refused", Decimal("0.00"))
    assert d.reason.startswith("period_from:") and "20th birthday" in d.reason
    assert "2026-06-15" not in d.reason and "2006" not in d.reason


def test_leap_day_child_turns_20_on_29_february() -> None:
    # 20 years after a leap day is a leap year again (until 2100): the birthday exists.
    leap = date(2008, 2, 29)
    d = decide_refund(leap, date(2028, 2, 28), date(2028, 3, 1), Decimal("300"), RULES)
    assert (d.days_refundable, d.refund_nok) == (1, Decimal("80.00"))


def test_refund_rules_and_grant_rates_are_data() -> None:
    (scheme,) = load_refund_rules()
    assert (scheme.share, scheme.age_limit, scheme.verify) == (RULES.share, 20, True)
    grants = load_grant_rates()
    assert grants["verify"] is True
    assert {"bofellesskap", "fosterhjem", "slektsfosterhjem"} <= set(load_catalogue().measures)


def test_grant_estimate_five_integration_years_and_special_until_the_year_of_20() -> None:
    grants = {
        "verify": True,
        "rates": {"2026": {"integration": [5, 4, 3, 2, 1], "special_minor": 10}},
    }
    est = grant_estimate(date(2010, 12, 31), date(2026, 3, 1), grants)
    assert [y["year"] for y in est["years"] if y["grant"] == "integration"] == list(
        range(2026, 2031)
    )
    special = [y["year"] for y in est["years"] if y["grant"] == "special_minor"]
    assert special == list(range(2026, 2031))  # turns 20 in 2030: that year included
    assert est["integration_total"] == 15 and est["special_total"] == 50
    assert all(y["rate_carried_forward"] for y in est["years"] if y["year"] > 2026)
