"""Rules of the follow-up after settlement, without I/O: the handover's parts, the services
referrals go between and the pathway each uses, age bands, and the figures counted from
rows the handlers load (docs/decisions/0015)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from services.municipality.domain import age_on, kopp_content

DATA = Path(__file__).resolve().parents[1] / "data"
PATHWAY = "municipal-follow-up"
# The pathway role each handover recipient holds (municipal-follow-up.json).
RECIPIENT_ROLES = {
    "barnevern": "receiving_barnevern",
    "school": "receiving_school",
    "health_station": "receiving_health_station",
}
# The follow-up milestone each reported event reaches.
REPORTED = {
    "aftercare_offered": "aftercare_offered",
    "aftercare_accepted": "aftercare_decided",
    "aftercare_declined": "aftercare_decided",
    "nav_took_over": "nav_took_over",
}


@dataclass(frozen=True)
class Part:
    part: str
    category: str
    recipient: str  # barnevern | school | health_station
    sent_by: str  # bufetat_region (the municipality service on its behalf) | care_centre


@dataclass(frozen=True)
class Rules:
    """The follow-up's data: handover.json, referrals.json and followup.json."""

    purpose: str
    parts: tuple[Part, ...]
    services: dict[str, str]  # service code -> the unit kind the broker sees
    referral_pathways: dict[str, str]
    age_bands: tuple[tuple[str, int], ...]
    access_overlap_days: int

    def referral_pathway(self, to_service: str) -> str:
        return self.referral_pathways.get(to_service, self.referral_pathways["*"])

    def age_band(self, age: int) -> str:
        return [band for band, from_age in self.age_bands if age >= from_age][-1]

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.part == name)


def load_rules(folder: Path = DATA) -> Rules:
    handover = json.loads((folder / "handover.json").read_text(encoding="utf-8"))
    referrals = json.loads((folder / "referrals.json").read_text(encoding="utf-8"))
    followup = json.loads((folder / "followup.json").read_text(encoding="utf-8"))
    bands = sorted((b["band"], b["from_age"]) for b in followup["age_bands"])
    return Rules(
        purpose=handover["purpose"],
        parts=tuple(Part(**p) for p in handover["parts"]),
        services={code: s["kind"] for code, s in referrals["services"].items()},
        referral_pathways=dict(referrals["pathways"]),
        age_bands=tuple(sorted(bands, key=lambda b: b[1])),
        access_overlap_days=int(followup["access_overlap_days"]),
    )


def handover_request_id(case_id: str, part: str) -> str:
    """The share request a handover part travels as: one per case and part."""
    return f"handover-{case_id}-{part}"


def kopp_summary(
    measure: str | None,
    care_needs: list[str],
    family: list[str],
    network: list[str],
    siblings: list[str],
    kommunenummer: str,
) -> dict[str, Any]:
    """The new KOPP's summary as Bufetat's settlement profile holds it, under the field
    names of the broker's handover list (kopp: written consent, bvl § 5A-6)."""
    content = kopp_content(measure, care_needs, family, network, siblings, kommunenummer)
    return {**content, "measures": [measure] if measure else []}


def residence_summary(
    residence: str | None, decided_on: date | None, languages: list[str], age: int | None
) -> dict[str, Any]:
    """The residence status that seed 003 lost in a move (L882-884): it travels with the
    handover and then stays with the case."""
    return {
        "residence_status": residence,
        "residence_decided_on": decided_on.isoformat() if decided_on else None,
        "languages": list(languages),
        "age": age,
    }


def access_until(changed_on: date, overlap_days: int) -> date:
    """The last day the unit of the previous measure keeps access after a change."""
    return changed_on + timedelta(days=overlap_days)


def has_access(from_on: date, until: date | None, day: date) -> bool:
    return from_on <= day and (until is None or day <= until)


# -- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    """A settled child as the figures see it (no name, no id)."""

    status: str
    birth_date: date | None
    estimated: bool
    measure: str
    outcome: str | None
    day_activity: str | None
    closed_on: date | None
    services: int
    coordinator: bool


def followed_figures(rows: Iterable[Followed], rules: Rules, day: date) -> dict[str, Any]:
    """Seed 003's counts: young people followed by age band and measure (estimated birth
    dates counted apart), terminations by outcome and day activity, and children with two
    or more services without a coordinating service (seed 004 R6)."""
    by_band: dict[str, Counter[str]] = defaultdict(Counter)
    estimated: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    per_year: dict[int, Counter[str]] = defaultdict(Counter)
    several = without = 0
    for row in rows:
        if row.status == "closed":
            outcomes[row.outcome or "?"] += 1
            activities[row.day_activity or "?"] += 1
            if row.closed_on:
                per_year[row.closed_on.year][row.outcome or "?"] += 1
            continue
        if row.status != "active":
            continue
        band = rules.age_band(age_on(row.birth_date, day)) if row.birth_date else "unknown"
        by_band[band][row.measure] += 1
        estimated[band] += row.estimated
        if row.services >= 2:
            several += 1
            without += not row.coordinator
    order = [b for b, _ in rules.age_bands] + ["unknown"]
    return {
        "followed": sum(sum(c.values()) for c in by_band.values()),
        "followed_by_age_band": [
            {
                "age_band": band,
                "measures": dict(sorted(by_band[band].items())),
                "total": sum(by_band[band].values()),
                "birth_date_estimated": estimated[band],
            }
            for band in order
            if band in by_band
        ],
        "terminations": {
            "total": sum(outcomes.values()),
            "by_outcome": dict(sorted(outcomes.items())),
            "by_day_activity": dict(sorted(activities.items())),
            "by_year": {str(y): dict(sorted(c.items())) for y, c in sorted(per_year.items())},
        },
        "coordination": {"two_or_more_services": several, "without_coordinator": without},
    }


def handover_figures(parts: Iterable[tuple[str, str, date]], day: date) -> dict[str, Any]:
    """Handover parts by part and status; an unacknowledged released or requested part past
    its acknowledgement day counts as overdue."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for part, status, by in parts:
        out[part][status] += 1
        if status in ("requested", "released") and by < day:
            out[part]["overdue"] += 1
    return {part: dict(sorted(c.items())) for part, c in sorted(out.items())}


def referral_figures(rows: Iterable[tuple[str, str, str, str | None, str]]) -> list[dict]:
    """Referrals per route (from -> to): sent, acknowledged, feedback given, released or
    withheld, still without feedback, and how many came with consent to feedback (R4)."""
    routes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for from_service, to_service, status, feedback_outcome, consent in rows:
        c = routes[(from_service, to_service)]
        c["sent"] += 1
        c["acknowledged"] += status in ("acknowledged", "feedback_given")
        c["feedback_given"] += status == "feedback_given"
        c["feedback_released"] += feedback_outcome == "released"
        c["feedback_withheld"] += feedback_outcome == "withheld"
        c["without_feedback"] += status != "feedback_given"
        c["consent_to_feedback"] += consent == "given"
    return [{"from": f, "to": t, **dict(c)} for (f, t), c in sorted(routes.items())]


def acknowledge_by(settle_on: date) -> date:
    """The last day to acknowledge a handover part: the working day before the move-in day
    (municipal-follow-up.json's handover steps, previous_working_day)."""
    from services.planning.calendar import move_off_non_working_day

    return move_off_non_working_day(settle_on - timedelta(days=1), "previous_working_day")
