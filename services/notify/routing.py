"""Who hears what: event keys and the roles at the responsible unit that hear them. No I/O."""

from __future__ import annotations

CONTACT_PERSON = "contact_person"
CENTRE_LEADER = "centre_leader"
ROLES = (CONTACT_PERSON, CENTRE_LEADER, "representative", "bufetat_case_officer",
         "settlement_coordinator", "privacy_officer")  # fmt: skip

EVENT_KEYS = ("deadline.scheduled", "task.due_soon", "task.due", "task.overdue")

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
    CENTRE_LEADER: ("task.overdue",),
}


def event_key(event_type: str, status: str | None) -> str | None:
    if event_type == "no.ema.planning.deadline-scheduled.v1":
        return "deadline.scheduled"
    if event_type == "no.ema.planning.task-status.v1" and status in ("due_soon", "due", "overdue"):
        return f"task.{status}"
    return None


def hears(role: str, events: list[str], key: str) -> bool:
    return key in (events or DEFAULT_EVENTS.get(role, ()))
