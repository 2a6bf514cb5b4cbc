"""Pure settlement rules: matching children to municipalities, refunds and grant estimates.

No I/O here: the handlers load rows, call these functions and store the results, so every
rule is unit-tested without a bus or a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
INFEASIBLE = -1.0e9
SETTLEMENT_WEEKS = 13  # about 3 months: the settlement target (St.meld. nr. 17 (2000-2001))


# -- reference data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """Measures and care needs as data (measures.json): a new measure is a line, not code."""

    measures: dict[str, dict[str, str]]
    care_needs: dict[str, dict[str, str]]


def load_catalogue(path: Path = DATA / "measures.json") -> Catalogue:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Catalogue(
        {m["code"]: m for m in raw["measures"]}, {c["code"]: c for c in raw["care_needs"]}
    )


def age_on(birth_date: date, on: date) -> int:
    """Whole years of age on a day."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


# -- matching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    case_id: str
    age: int
    measure: str
    days_left: int
    care_needs: frozenset[str] = frozenset()
    family: frozenset[str] = frozenset()
    network: frozenset[str] = frozenset()
    siblings: frozenset[str] = frozenset()
    declined_by: frozenset[str] = frozenset()  # municipalities that declined this child


@dataclass(frozen=True)
class Band:
    measure: str
    min_age: int
    max_age: int


@dataclass(frozen=True)
class Place:
    """A municipality as matching sees it: what it offers and how many places are free."""

    kommunenummer: str
    name: str
    region: str
    offers: tuple[Band, ...]
    free: int
    competences: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Weights:
    """Points per criterion. Placing a child at all (`base`) outweighs any preference, so the
    optimum places as many children as the hard constraints allow."""

    base: float = 100.0
    family: float = 60.0
    network: float = 25.0
    need_met: float = 15.0
    need_unmet: float = -10.0
    age_fit: float = 20.0
    urgency: float = 50.0  # at 0 days left; grows to 1.5x when overdue


def urgency(days_left: int, w: Weights) -> float:
    return w.urgency * min(1.5, max(0.0, (90 - days_left) / 90))


def _fit(age: int, band: Band) -> float:
    mid, half = (band.min_age + band.max_age) / 2, max((band.max_age - band.min_age) / 2, 1.0)
    return max(0.0, 1.0 - abs(age - mid) / half)


def fitting_band(child: Child, place: Place) -> Band | None:
    """The best-fitting age band in which the place offers the child's measure, if any."""
    bands = [
        b
        for b in place.offers
        if b.measure == child.measure and b.min_age <= child.age <= b.max_age
    ]
    return max(bands, key=lambda b: _fit(child.age, b), default=None)


@dataclass
class Scored:
    score: float
    lines: list[str]


def explain(child: Child, place: Place, w: Weights = Weights()) -> Scored:
    """Score one child in one municipality, line by line. Hard constraints first: a broken
    one gives INFEASIBLE and the line that says which."""
    band = fitting_band(child, place)
    if place.kommunenummer in child.declined_by:
        return Scored(INFEASIBLE, [f"{place.name} declined this child before"])
    if band is None:
        return Scored(
            INFEASIBLE, [f"{place.name} does not offer {child.measure} for age {child.age}"]
        )
    if place.free < 1:
        return Scored(INFEASIBLE, [f"{place.name} has no free place"])
    lines = [
        f"+{w.base:.0f} hard constraints met: {child.measure} offered for ages "
        f"{band.min_age}-{band.max_age} (child is {child.age}), {place.free} free places"
    ]
    score = w.base
    if place.kommunenummer in child.family:
        score += w.family
        lines.append(f"+{w.family:.0f} family ties: relatives live in {place.name}")
    elif child.family:
        lines.append("+0 family ties: relatives live elsewhere (traded off)")
    if place.kommunenummer in child.network:
        score += w.network
        lines.append(f"+{w.network:.0f} network: the child has a network in {place.name}")
    met = sorted(child.care_needs & place.competences)
    unmet = sorted(child.care_needs - place.competences)
    if met:
        score += w.need_met * len(met)
        lines.append(f"+{w.need_met * len(met):.0f} care needs met: {', '.join(met)}")
    if unmet:
        score += w.need_unmet * len(unmet)
        lines.append(
            f"{w.need_unmet * len(unmet):.0f} care needs not covered: "
            f"{', '.join(unmet)} (traded off)"
        )
    fit = w.age_fit * _fit(child.age, band)
    score += fit
    lines.append(f"+{fit:.1f} age fit in the band {band.min_age}-{band.max_age}")
    urg = urgency(child.days_left, w)
    score += urg
    lines.append(f"+{urg:.1f} priority: {child.days_left} days left to the 3-month deadline")
    return Scored(score, lines)


def score_matrix(
    children: Sequence[Child], places: Sequence[Place], w: Weights = Weights()
) -> np.ndarray:
    """children x places scores, vectorised; equals `explain(...).score` cell by cell (tested).
    Infeasible cells hold INFEASIBLE."""
    n, m = len(children), len(places)
    col = {p.kommunenummer: j for j, p in enumerate(places)}
    ages = np.array([c.age for c in children], dtype=float)
    fit = np.full((n, m), -1.0)
    by_measure: dict[str, np.ndarray] = {}
    for c_i, c in enumerate(children):
        by_measure.setdefault(c.measure, np.zeros(n, dtype=bool))[c_i] = True
    for j, p in enumerate(places):
        for b in p.offers:
            rows = by_measure.get(b.measure)
            if rows is None:
                continue
            ok = rows & (ages >= b.min_age) & (ages <= b.max_age)
            mid, half = (b.min_age + b.max_age) / 2, max((b.max_age - b.min_age) / 2, 1.0)
            f = np.maximum(0.0, 1.0 - np.abs(ages - mid) / half)
            fit[:, j] = np.where(ok, np.maximum(fit[:, j], f), fit[:, j])
    feasible = fit >= 0
    feasible &= np.array([p.free >= 1 for p in places])[None, :]
    bonus = np.zeros((n, m))
    needs = sorted({x for c in children for x in c.care_needs})
    need_col = {x: k for k, x in enumerate(needs)}
    need_mat = np.zeros((n, len(needs)))
    for i, c in enumerate(children):
        for k in c.family:
            if k in col:
                bonus[i, col[k]] += w.family
        for k in c.network:
            if k in col:
                bonus[i, col[k]] += w.network
        for k in c.declined_by:
            if k in col:
                feasible[i, col[k]] = False
        for x in c.care_needs:
            need_mat[i, need_col[x]] = 1.0
    comp_mat = np.array([[x in p.competences for p in places] for x in needs], dtype=float)
    met = need_mat @ comp_mat if needs else np.zeros((n, m))
    total_needs = need_mat.sum(axis=1, keepdims=True)
    urg = np.array([urgency(c.days_left, w) for c in children])[:, None]
    score = (
        w.base
        + bonus
        + w.need_met * met
        + w.need_unmet * (total_needs - met)
        + w.age_fit * np.maximum(fit, 0)
        + urg
    )
    return np.where(feasible, score, INFEASIBLE)


@dataclass
class Proposal:
    kommunenummer: str
    name: str
    case_ids: list[str]
    score: float
    lines: list[str]


@dataclass
class Assignment:
    proposals: list[Proposal] = field(default_factory=list)
    unplaced: dict[str, str] = field(default_factory=dict)  # case_id -> why

    @property
    def total(self) -> float:
        return round(sum(p.score for p in self.proposals), 2)


def sibling_groups(children: Sequence[Child]) -> tuple[list[list[int]], dict[str, str]]:
    """Groups of indices of siblings settled together (connected through `siblings`), and the
    children held back because a sibling is not ready for settlement yet."""
    index = {c.case_id: i for i, c in enumerate(children)}
    parent = list(range(len(children)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    held: dict[str, str] = {}
    for i, c in enumerate(children):
        for s in c.siblings:
            if s in index:
                parent[find(i)] = find(index[s])
            else:
                held[c.case_id] = "a sibling who must be settled together is not ready yet"
    groups: dict[int, list[int]] = {}
    for i in range(len(children)):
        groups.setdefault(find(i), []).append(i)
    out = [g for g in groups.values() if not any(children[i].case_id in held for i in g)]
    for g in groups.values():
        if any(children[i].case_id in held for i in g):
            for i in g:
                held.setdefault(children[i].case_id, "a sibling is held back, so is the group")
    return out, held


def _proposal(
    children: Sequence[Child],
    members: list[int],
    place: Place,
    w: Weights,
    best: dict[int, tuple[float, str]],
) -> Proposal:
    lines: list[str] = []
    total = 0.0
    for i in members:
        s = explain(children[i], place, w)
        total += s.score
        prefix = f"[{children[i].case_id[:8]}] " if len(members) > 1 else ""
        lines += [prefix + line for line in s.lines]
        top_score, top_name = best[i]
        if top_name != place.name and top_score > s.score + 0.005:
            lines.append(
                f"{prefix}trade-off: {top_name} would score {top_score:.1f} alone "
                f"(here {s.score:.1f}); its places serve the whole group of children "
                "better"
            )
    if len(members) > 1:
        lines.insert(0, f"siblings settled together: {len(members)} places in {place.name}")
    return Proposal(
        place.kommunenummer,
        place.name,
        [children[i].case_id for i in members],
        round(total, 2),
        lines,
    )


def load_solver():  # noqa: ANN201 (scipy's function)
    """scipy's `linear_sum_assignment`, imported on first use: scipy.optimize costs a third
    of a second, which the service pays in the background after it starts (app.warm_matcher)."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


def assign(
    children: Sequence[Child], places: Sequence[Place], w: Weights = Weights()
) -> Assignment:
    """The global optimum with `linear_sum_assignment`, in two steps (ADR 0007):
    1. sibling groups first, a group as one row needing `len(group)` places in one
       municipality, one group per municipality per run;
    2. single children over municipalities expanded into one column per free place left."""
    linear_sum_assignment = load_solver()
    result = Assignment()
    if not children or not places:
        result.unplaced = {c.case_id: "no municipality has published capacity" for c in children}
        return result
    s = score_matrix(children, places, w)
    best = {i: (float(s[i].max()), places[int(s[i].argmax())].name) for i in range(len(children))}
    groups, held = sibling_groups(children)
    result.unplaced.update(held)
    free = np.array([p.free for p in places])
    multi = [g for g in groups if len(g) > 1]
    singles = [g[0] for g in groups if len(g) == 1]
    if multi:
        gs = np.full((len(multi), len(places)), INFEASIBLE)
        for r, g in enumerate(multi):
            rows = s[g]
            ok = (rows > INFEASIBLE / 2).all(axis=0) & (free >= len(g))
            gs[r] = np.where(ok, rows.sum(axis=0), INFEASIBLE)
        for r, j in zip(*linear_sum_assignment(gs, maximize=True), strict=True):
            if gs[r, j] > INFEASIBLE / 2:
                free[j] -= len(multi[r])
                result.proposals.append(_proposal(children, multi[r], places[j], w, best))
            else:
                for i in multi[r]:
                    result.unplaced[children[i].case_id] = (
                        f"no municipality has {len(multi[r])} fitting free places for the "
                        "siblings together"
                    )
    if singles:
        cols = np.repeat(np.arange(len(places)), np.maximum(free, 0))
        if len(cols):
            sub = s[np.ix_(singles, cols)]
            for r, c in zip(*linear_sum_assignment(sub, maximize=True), strict=True):
                if sub[r, c] > INFEASIBLE / 2:
                    i = singles[r]
                    result.proposals.append(_proposal(children, [i], places[cols[c]], w, best))
        placed = {cid for p in result.proposals for cid in p.case_ids}
        for i in singles:
            cid = children[i].case_id
            if cid not in placed:
                result.unplaced[cid] = (
                    "no fitting free place"
                    if s[i].max() <= INFEASIBLE / 2
                    else "fitting places went to children with a higher total score"
                )
    result.proposals.sort(key=lambda p: -p.score)
    return result


def assign_greedy(
    children: Sequence[Child], places: Sequence[Place], w: Weights = Weights()
) -> Assignment:
    """The baseline: oldest deadline first, each child takes its best place still free."""
    result = Assignment()
    s = score_matrix(children, places, w)
    best = {i: (float(s[i].max()), places[int(s[i].argmax())].name) for i in range(len(children))}
    groups, held = sibling_groups(children)
    result.unplaced.update(held)
    free = np.array([p.free for p in places])
    for g in sorted(groups, key=lambda g: min(children[i].days_left for i in g)):
        rows = s[g]
        ok = (rows > INFEASIBLE / 2).all(axis=0) & (free >= len(g))
        if not ok.any():
            for i in g:
                result.unplaced[children[i].case_id] = "no fitting free place left"
            continue
        j = int(np.where(ok, rows.sum(axis=0), -np.inf).argmax())
        free[j] -= len(g)
        result.proposals.append(_proposal(children, g, places[j], w, best))
    return result


# -- refunds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundRules:
    """One refund scheme: the share refunded until the child turns `age_limit`, in force from
    `valid_from` up to (not including) `valid_to` (item 9: the rule in force on the day)."""

    share: Decimal
    age_limit: int
    valid_from: date = date.min
    valid_to: date | None = None
    id: str = "refund"
    verify: bool = False

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


def load_refund_rules(path: Path = DATA / "refunds.json") -> tuple[RefundRules, ...]:
    """The refund schemes, each with its period (refunds.json)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        RefundRules(
            Decimal(x["share"]),
            int(x["age_limit"]),
            date.fromisoformat(x["valid_from"]),
            date.fromisoformat(x["valid_to"]) if x.get("valid_to") else None,
            x["id"],
            bool(x.get("verify")),
        )
        for x in raw["schemes"]
    )


def birthday(birth_date: date, years: int) -> date:
    """The day a child turns `years`; born on 29 February: 1 March in common years."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 3, 1)


@dataclass(frozen=True)
class RefundDecision:
    outcome: str  # approved | prorated | refused
    refund_nok: Decimal
    days_claimed: int
    days_refundable: int
    reason: str


def decide_refund(
    birth_date: date,
    period_from: date,
    period_to: date,
    expenses: Decimal,
    schemes: RefundRules | Sequence[RefundRules],
) -> RefundDecision:
    """Refund each day's share of the expenses under the scheme in force that day, for the days
    before the child turns the scheme's `age_limit` (the birthday is the first day not
    refunded). A period across the birthday, or partly outside every scheme, is prorated."""
    if period_to < period_from:
        raise ValueError("period_to: the period ends before it starts")
    schemes = (schemes,) if isinstance(schemes, RefundRules) else tuple(schemes)
    days = (period_to - period_from).days + 1
    shares: list[Decimal] = []
    used: dict[str, RefundRules] = {}
    outside = too_old = 0
    for i in range(days):
        day = period_from + timedelta(days=i)
        scheme = next((x for x in schemes if x.in_force(day)), None)
        if scheme is None:
            outside += 1
        elif day >= birthday(birth_date, scheme.age_limit):
            too_old += 1
        else:
            shares.append(scheme.share)
            used[scheme.id] = scheme
    refundable = len(shares)
    limit = max((x.age_limit for x in schemes), default=0)
    if refundable == 0:
        if outside == days:
            return RefundDecision(
                "refused",
                Decimal("0.00"),
                days,
                0,
                "period_from: no refund scheme is in force for the period; see refunds.json",
            )
        return RefundDecision(
            "refused",
            Decimal("0.00"),
            days,
            0,
            f"period_from: the period starts on or after the child's "
            f"{limit}th birthday; Bufetat refunds until the child "
            f"turns {limit}",
        )
    amount = (expenses * sum(shares) / days).quantize(Decimal("0.01"), ROUND_HALF_UP)
    rates = " / ".join(sorted({f"{x.share * 100:.0f} %" for x in used.values()}))
    named = ", ".join(f"{x.id}{' (verify)' if x.verify else ''}" for x in used.values())
    if too_old:
        return RefundDecision(
            "prorated",
            amount,
            days,
            refundable,
            f"period_to: the period crosses the child's {limit}th "
            f"birthday; {rates} refunded for the {refundable} of {days} days "
            f"before it; scheme {named}",
        )
    if outside:
        return RefundDecision(
            "prorated",
            amount,
            days,
            refundable,
            f"period_to: {rates} refunded for the {refundable} of {days} days "
            f"a refund scheme is in force; scheme {named}",
        )
    return RefundDecision(
        "approved", amount, days, days, f"{rates} of refundable expenses; scheme {named}"
    )


# -- grants ----------------------------------------------------------------------------------


def load_grant_rates(path: Path = DATA / "grants.json") -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _rates_for(rates: dict, year: int) -> tuple[dict, bool]:
    """The rates of a year; a year not in the data uses the latest earlier one (flagged)."""
    known = sorted(int(y) for y in rates)
    if str(year) in rates:
        return rates[str(year)], False
    earlier = [y for y in known if y <= year] or known[:1]
    return rates[str(earlier[-1])], True


def _scheme_in_force(scheme: dict, day: date) -> bool:
    starts = date.fromisoformat(scheme.get("valid_from") or "0001-01-01")
    ends = scheme.get("valid_to")
    return starts <= day and (ends is None or day < date.fromisoformat(ends))


def grant_estimate(birth_date: date, settled_on: date, grants: dict) -> dict:
    """IMDi's integration grant for the settlement year and the next four, and the special
    grant for every year from settlement to the year the child turns 20, inclusive; each year
    only while its scheme is in force (grants.json `schemes`, item 9)."""
    rates = grants["rates"]
    schemes = grants.get("schemes", {})
    integration = schemes.get("integration", {"years": 5})
    special = schemes.get("special_minor", {"until_age": 20})

    def in_force(scheme: dict, year: int) -> bool:
        return _scheme_in_force(scheme, max(date(year, 1, 1), settled_on))

    years: list[dict] = []
    for i in range(int(integration["years"])):
        y = settled_on.year + i
        if not in_force(integration, y):
            continue
        r, carried = _rates_for(rates, y)
        years.append(
            {
                "year": y,
                "grant": "integration",
                "settlement_year": i + 1,
                "nok": r["integration"][i],
                "rate_carried_forward": carried,
            }
        )
    for y in range(settled_on.year, birth_date.year + int(special["until_age"]) + 1):
        if not in_force(special, y):
            continue
        r, carried = _rates_for(rates, y)
        years.append(
            {
                "year": y,
                "grant": "special_minor",
                "nok": r["special_minor"],
                "rate_carried_forward": carried,
            }
        )
    return {
        "years": sorted(years, key=lambda x: (x["year"], x["grant"])),
        "integration_total": sum(x["nok"] for x in years if x["grant"] == "integration"),
        "special_total": sum(x["nok"] for x in years if x["grant"] == "special_minor"),
        "total": sum(x["nok"] for x in years),
        "verify": bool(grants.get("verify")),
    }


def offer_payload(
    case_id: str,
    age: int,
    languages: list[str],
    measure: str | None,
    care_needs: list[str],
    family: list[str],
    network: list[str],
    siblings: list[str],
    kommunenummer: str,
) -> dict:
    """What an offered municipality needs to know (seed 001 L115-121: care needs, family ties
    and network, age), under the field names the broker's minimisation lists (K11)."""
    return {
        "case_id": case_id,
        "age": age,
        "languages": list(languages),
        **kopp_content(measure, care_needs, family, network, siblings, kommunenummer),
    }


def kopp_content(
    measure: str | None,
    care_needs: list[str],
    family: list[str],
    network: list[str],
    siblings: list[str],
    kommunenummer: str,
) -> dict:
    """The KOPP's content in a settlement profile, as seen from one municipality: the
    recommended measure, care needs, family ties and network there, siblings (category kopp:
    written consent, bvl § 5A-6)."""
    return {
        "recommended_measure": measure,
        "care_needs": list(care_needs),
        "family_ties": {"here": kommunenummer in family, "municipalities": sorted(family)},
        "network": {"here": kommunenummer in network, "municipalities": sorted(network)},
        "siblings": {"settled_together": len(siblings), "case_ids": sorted(siblings)},
    }


def deadline_for(decided_on: date) -> date:
    """Settlement within 3 months of the residence decision."""
    from services.planning.calendar import add_months

    return add_months(decided_on, 3)


def ready_order(items: Iterable[dict]) -> list[dict]:
    """Waiting children, oldest deadline first."""
    return sorted(items, key=lambda x: (x["deadline"], x["case_id"]))
