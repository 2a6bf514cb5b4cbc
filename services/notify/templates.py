"""Notification texts in bokmål and English. Templates see only non-confidential fields."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from contracts.fields import confidential_fields

DEADLINE = "no.ema.planning.deadline-scheduled.v1"
STATUS = "no.ema.planning.task-status.v1"

TEMPLATES: dict[str, dict[str, str]] = {
    DEADLINE: {
        "nb": "Sak {case_ref}: {title_nb} skal være gjennomført innen {due_nb}. "
        "Registrer utført oppgave i emaflyt.",
        "en": "Case {case_ref}: {title_en} is due by {due_en}. Record the task as done in emaflyt.",
    },
    f"{STATUS}#due_soon": {
        "nb": "Sak {case_ref}: fristen for {title_nb} er {due_nb}, om kort tid.",
        "en": "Case {case_ref}: {title_en} is due soon, on {due_en}.",
    },
    f"{STATUS}#due": {
        "nb": "Sak {case_ref}: fristen for {title_nb} er i dag ({due_nb}).",
        "en": "Case {case_ref}: {title_en} is due today ({due_en}).",
    },
    f"{STATUS}#overdue": {
        "nb": "Sak {case_ref}: fristen for {title_nb} gikk ut {due_nb} ({days_late} dager over "
        "fristen). Følg opp og registrer i emaflyt.",
        "en": "Case {case_ref}: {title_en} was due {due_en} ({days_late} days overdue). "
        "Follow up and record it in emaflyt.",
    },
}


def template_key(event_type: str, data: BaseModel) -> str | None:
    """Which template an event uses, or None when it needs no notification."""
    key = f"{event_type}#{getattr(data, 'status', '')}" if event_type == STATUS else event_type
    return key if key in TEMPLATES else None


def render(key: str, data: BaseModel, language: str = "nb") -> str:
    """Render a template from the event's fields, with every confidential field removed."""
    hidden = confidential_fields(type(data))
    values = {k: v for k, v in data.model_dump().items() if k not in hidden}
    for name, value in list(values.items()):
        if isinstance(value, date):
            values[f"{name}_nb"] = value.strftime("%d.%m.%Y")
            values[f"{name}_en"] = value.isoformat()
    return TEMPLATES[key][language].format(**values)
