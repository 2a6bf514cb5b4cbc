"""Notification texts in bokmål and English. Templates see only non-confidential fields."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from contracts.fields import confidential_fields

WHERE = "emaflyt (sak {case_ref})"

TEMPLATES: dict[str, dict[str, str]] = {
    "deadline.scheduled": {
        "nb": "Sak {case_ref}: {title_nb} {force_nb} {due_nb}. {basis_nb} "
        "Registrer utført oppgave i emaflyt.",
        "en": "Case {case_ref}: {title_en} {force_en} {due_en}. {basis_en} "
        "Record the task as done in emaflyt.",
    },
    "task.due_soon": {
        "nb": "Sak {case_ref}: fristen for {title_nb} er {due_nb}, om kort tid. {basis_nb} "
        "Registrer utført oppgave i emaflyt.",
        "en": "Case {case_ref}: {title_en} is due soon, on {due_en}. {basis_en} "
        "Record the task as done in emaflyt.",
    },
    "task.due": {
        "nb": "Sak {case_ref}: fristen for {title_nb} er i dag ({due_nb}). {basis_nb} "
        "Registrer utført oppgave i emaflyt.",
        "en": "Case {case_ref}: {title_en} is due today ({due_en}). {basis_en} "
        "Record the task as done in emaflyt.",
    },
    "task.overdue": {
        "nb": "Sak {case_ref}: fristen for {title_nb} gikk ut {due_nb} ({days_late} dager over "
        "fristen). {basis_nb} Følg opp og registrer i emaflyt.",
        "en": "Case {case_ref}: {title_en} was due {due_en} ({days_late} days overdue). "
        "{basis_en} Follow up and record it in emaflyt.",
    },
    "frame.due": {
        "nb": "Sak {case_ref}: {title_nb} ({due_nb}). {basis_nb} Se saken i emaflyt.",
        "en": "Case {case_ref}: {title_en} ({due_en}). {basis_en} See the case in emaflyt.",
    },
    "frame.overdue": {
        "nb": "Sak {case_ref}: {title_nb}: passert {due_nb}. {basis_nb} Se saken i emaflyt.",
        "en": "Case {case_ref}: {title_en}: passed {due_en}. {basis_en} See the case in emaflyt.",
    },
    "glass.released": {
        "nb": "Sak {case_ref}: {source_unit} delte opplysninger ({data_category}: {fields_list}) "
        "med {recipient_unit} i en nødsituasjon (break-the-glass) {decided_at_nb}. Delingen "
        "kontrolleres av personvernombudet innen {review_due_nb}; se tilgangsrapporten i "
        "emaflyt.",
        "en": "Case {case_ref}: {source_unit} shared information ({data_category}: "
        "{fields_list}) with {recipient_unit} in an emergency (break-the-glass) on "
        "{decided_at_en}. The privacy officer reviews it by {review_due_en}; see the access "
        "report in emaflyt.",
    },
    "glass.overdue": {
        "nb": "Sak {case_ref}: en deling i nødsituasjon fra {source_unit} til {recipient_unit} "
        "({decided_at_nb}) er ikke kontrollert innen fristen {review_due_nb}. Kontroller den "
        "under Nødtilgang i emaflyts revisjonssider.",
        "en": "Case {case_ref}: an emergency release from {source_unit} to {recipient_unit} "
        "({decided_at_en}) was not reviewed by {review_due_en}. Review it under Break-the-glass "
        "in emaflyt's audit pages.",
    },
}

# The step's own force, from the verb of its source (seed 002: skal, bør, anbefales, kan).
FORCE = {
    "nb": {
        "skal": "skal være gjennomført innen",
        "bør": "bør være gjennomført innen",
        "anbefales": "anbefales gjennomført innen",
        "kan": "kan gjennomføres innen",
    },
    "en": {
        "skal": "must be done by",
        "bør": "should be done by",
        "anbefales": "is recommended by",
        "kan": "may be done by",
    },
}
BASIS = {
    "nb": {
        "skal": "Dette er et krav (skal) etter {legal_ref}.",
        "bør": "Dette bør gjøres (bør) etter {legal_ref}.",
        "anbefales": "Dette anbefales (anbefales) etter {legal_ref}.",
        "kan": "Dette kan gjøres (kan) etter {legal_ref}.",
    },
    "en": {
        "skal": "This is required (skal) by {legal_ref}.",
        "bør": "This should be done (bør) under {legal_ref}.",
        "anbefales": "This is recommended (anbefales) under {legal_ref}.",
        "kan": "This may be done (kan) under {legal_ref}.",
    },
}

SUBJECTS: dict[str, dict[str, str]] = {
    "deadline.scheduled": {
        "nb": "Ny frist i sak {case_ref}",
        "en": "New deadline, case {case_ref}",
    },
    "task.due_soon": {"nb": "Frist snart: sak {case_ref}", "en": "Due soon: case {case_ref}"},
    "task.due": {"nb": "Frist i dag: sak {case_ref}", "en": "Due today: case {case_ref}"},
    "task.overdue": {"nb": "Frist oversittet: sak {case_ref}", "en": "Overdue: case {case_ref}"},
    "frame.due": {"nb": "Varsel: sak {case_ref}", "en": "Warning: case {case_ref}"},
    "frame.overdue": {"nb": "Varsel passert: sak {case_ref}", "en": "Passed: case {case_ref}"},
    "glass.released": {
        "nb": "Nødtilgang i sak {case_ref}",
        "en": "Emergency access, case {case_ref}",
    },
    "glass.overdue": {
        "nb": "Nødtilgang ikke kontrollert: sak {case_ref}",
        "en": "Emergency access not reviewed: case {case_ref}",
    },
    "digest": {"nb": "Daglig oversikt fra emaflyt", "en": "Daily digest from emaflyt"},
}

DIGEST_HEAD = {
    "nb": "Oversikt over varsler siste døgn ({count}):",
    "en": "Notifications in the last day ({count}):",
}


def values_of(data: BaseModel) -> dict[str, object]:
    """The event's fields a template may use: every confidential field removed, dates in
    Norwegian and ISO form."""
    hidden = confidential_fields(type(data))
    values = {k: v for k, v in data.model_dump().items() if k not in hidden}
    if isinstance(values.get("fields"), list):
        values["fields_list"] = ", ".join(values["fields"])
    for name, value in list(values.items()):
        if isinstance(value, date):
            values[f"{name}_nb"] = value.strftime("%d.%m.%Y")
            values[f"{name}_en"] = value.isoformat()
    strength = values.get("strength")
    if strength in FORCE["nb"] and "legal_ref" in values:
        for language in ("nb", "en"):
            values[f"force_{language}"] = FORCE[language][strength]
            values[f"basis_{language}"] = BASIS[language][strength].format(**values)
    return values


def render_both(key: str, data: BaseModel) -> tuple[str, str]:
    """The text in bokmål and in English, from one reading of the event's fields."""
    values = values_of(data)
    return TEMPLATES[key]["nb"].format(**values), TEMPLATES[key]["en"].format(**values)


def subject(key: str, case_ref: str, language: str = "nb") -> str:
    return SUBJECTS[key][language].format(case_ref=case_ref)


def digest(texts: list[str], language: str = "nb") -> str:
    head = DIGEST_HEAD[language].format(count=len(texts))
    return "\n".join([head, *(f"- {t}" for t in texts)])
