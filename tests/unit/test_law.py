"""Issue 14 rules that need no bus: dated statutes and schemes (item 9), the counting of weeks
and the weekend rule (item 10). The bus scenarios are tests/e2e/test_law.py."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from services.municipality.domain import (
    DATA,
    RefundRules,
    decide_refund,
    grant_estimate,
    load_grant_rates,
    load_refund_rules,
)

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
