"""Who hears what: event keys, and the units and roles that hear them. No I/O.

A task names the role at its responsible unit that carries it out and the other units and
roles told of it (the pathway's `role` and `copy_to`); an overdue task is escalated to the
leader of the role's unit. So Bufetat's case officers and settlement coordinators, the
Statsforvalter, municipalities and representatives are addressed where the law names them.
"""

from __future__ import annotations

CONTACT_PERSON = "contact_person"
CENTRE_LEADER = "centre_leader"
UNIT_LEADER = "unit_leader"
ROLES = (
    CONTACT_PERSON,
    CENTRE_LEADER,
    "representative",
    "bufetat_case_officer",
    "settlement_coordinator",
    "privacy_officer",
    "statsforvalter_case_officer",
    "municipal_contact",
    "cws_case_officer",
    # After settlement (issue 15): the receiving school and health station, the service a
    # referral goes to or comes from, and the coordinating service.
    "school_contact",
    "health_contact",
    "service_contact",
    "coordinator",
    UNIT_LEADER,
)

EVENT_KEYS = (
    "deadline.scheduled",
    "task.due_soon",
    "task.due",
    "task.overdue",
    "frame.due",
    "frame.overdue",
    "glass.released",
    "glass.overdue",
)
OVERDUE = ("task.overdue", "frame.overdue")

# The leader an overdue task is escalated to, by the role that holds it.
LEADERS: dict[str, str] = {CONTACT_PERSON: CENTRE_LEADER}

# What a recipient hears on email/webhook unless it says otherwise (the inbox gets all).
DEFAULT_OTHERS = ("task.due_soon", "task.due", "task.overdue", "frame.due", "frame.overdue")
DEFAULT_EVENTS: dict[str, tuple[str, ...]] = {
    CENTRE_LEADER: (*OVERDUE, "glass.released"),
    UNIT_LEADER: OVERDUE,
    "representative": (*DEFAULT_OTHERS, "glass.released"),
    "privacy_officer": ("glass.overdue",),
}


def emergency_recipients(event_type: str, data: object) -> list[tuple[str, str, str]]:
    """(unit, role, event key) told of a break-the-glass release or an overdue review: the
    representative (the care centre's leader while the case has none), or the privacy
    officer."""
    if event_type == "no.ema.share.emergency-released.v1":
        rep = getattr(data, "representative_unit", None)
        if rep:
            return [(rep, "representative", "glass.released")]
        return [(getattr(data, "care_centre"), CENTRE_LEADER, "glass.released")]  # noqa: B009
    if event_type == "no.ema.share.emergency-overdue.v1":
        return [(getattr(data, "privacy_officer_unit"), "privacy_officer", "glass.overdue")]  # noqa: B009
    return []


def event_key(event_type: str, status: str | None, kind: str = "task") -> str | None:
    """A frame (a limit flagged when passed) is noticed on its day and when passed only."""
    if event_type.startswith("no.ema.planning.deadline-scheduled."):
        return None if kind == "frame" else "deadline.scheduled"
    if event_type.startswith("no.ema.planning.task-status."):
        if kind == "frame" and status in ("due", "overdue"):
            return f"frame.{status}"
        if kind != "frame" and status in ("due_soon", "due", "overdue"):
            return f"task.{status}"
    return None


def recipients(
    key: str, unit: str, role: str, copies: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(unit, role) pairs that hear the event, each once: the role at the responsible unit,
    the copies, and for an overdue task the leader of the responsible role's unit."""
    found = [(unit, role), *copies]
    if key in OVERDUE:
        found.append((unit, LEADERS.get(role, UNIT_LEADER)))
    return list(dict.fromkeys(found))


def hears(role: str, events: list[str], key: str) -> bool:
    return key in (events or DEFAULT_EVENTS.get(role, DEFAULT_OTHERS))
