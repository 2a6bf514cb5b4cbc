"""Notification texts in bokmål and English. Templates see only non-confidential fields."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from contracts.fields import confidential_fields

TEMPLATES: dict[str, dict[str, str]] = {
    "no.ema.planning.deadline-scheduled.v1": {
        "nb": "Sak {case_ref}: {title_nb} skal være gjennomført innen {due_nb}. "
        "Registrer utført oppgave i emaflyt.",
        "en": "Case {case_ref}: {title_en} is due by {due_en}. Record the task as done in emaflyt.",
    },
}


def render(event_type: str, data: BaseModel, language: str = "nb") -> str:
    """Render a template from the event's fields, with every confidential field removed."""
    hidden = confidential_fields(type(data))
    values = {k: v for k, v in data.model_dump().items() if k not in hidden}
    for key, value in list(values.items()):
        if isinstance(value, date):
            values[f"{key}_nb"] = value.strftime("%d.%m.%Y")
            values[f"{key}_en"] = value.isoformat()
    return TEMPLATES[event_type][language].format(**values)
