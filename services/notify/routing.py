"""Who hears what: event keys and the roles at the responsible unit that hear them. No I/O."""

from __future__ import annotations

CONTACT_PERSON = "contact_person"
CENTRE_LEADER = "centre_leader"
ROLES = (CONTACT_PERSON, CENTRE_LEADER, "representative", "bufetat_case_officer",
         "settlement_coordinator", "privacy_officer")  # fmt: skip

EVENT_KEYS = ("deadline.scheduled", "task.due_soon", "task.due", "task.overdue",
              "glass.released", "glass.overdue")  # fmt: skip

# Roles that hear an event at the responsible unit; an overdue task is escalated to the leader.
ROUTES: dict[str, tuple[str, ...]] = {
    "deadline.scheduled": (CONTACT_PERSON,),
    "task.due_soon": (CONTACT_PERSON,),
    "task.due": (CONTACT_PERSON,),
    "task.overdue": (CONTACT_PERSON, CENTRE_LEADER),
}

# What a recipient hears on email/webhook unless it says otherwise (the inbox gets all).
DEFAULT_EVENTS: dict[str, tuple[str, ...]] = {
    CONTACT_PERSON: ("task.due_soon", "task.due", "task.overdue"),
    CENTRE_LEADER: ("task.overdue", "glass.released"),
    "representative": ("glass.released",),
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


def event_key(event_type: str, status: str | None) -> str | None:
    if event_type == "no.ema.planning.deadline-scheduled.v1":
        return "deadline.scheduled"
    if event_type == "no.ema.planning.task-status.v1" and status in ("due_soon", "due", "overdue"):
        return f"task.{status}"
    return None


def hears(role: str, events: list[str], key: str) -> bool:
    return key in (events or DEFAULT_EVENTS.get(role, ()))
