"""Pure rules for consent records: who may grant at what age (K3), the form K1/K2 need, and
validity. Parameters come from the policy data (data.legal), so law changes are data changes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contracts.messages import ConsentGrantedV1, Flow
from services.consent.domain import age_on


class InvalidConsent(ValueError):
    """Names the field and the rule, never a value."""


def validate_grant(
    consent: ConsentGrantedV1, *, birth_date: date, now: datetime, legal: dict[str, Any]
) -> None:
    for name in ("granted_at", "valid_from", "valid_to"):
        if getattr(consent, name).tzinfo is None:
            raise InvalidConsent(f"{name}: needs a UTC offset, e.g. 2026-05-01T10:00:00+02:00")
    if consent.valid_to <= consent.valid_from:
        raise InvalidConsent("valid_to: must be after valid_from")
    if consent.valid_to <= now:
        raise InvalidConsent("valid_to: the consent has already expired; register a new one")
    if not consent.scope and not consent.refusals:
        raise InvalidConsent("scope: a consent needs at least one flow in scope or refusals")
    for i, flow in enumerate(consent.scope):
        if not (flow.source_units or flow.source_sectors):
            raise InvalidConsent(f"scope[{i}]: name the source units or sectors (K6)")
        if not (flow.recipient_units or flow.recipient_sectors):
            raise InvalidConsent(f"scope[{i}]: name the recipient units or sectors (K6)")
    categories = {c.value for flow in consent.scope for c in flow.categories}
    written = sorted(categories & set(legal["written_required"]))
    if written:
        if consent.form.kind != "written":
            raise InvalidConsent(
                f"form: {', '.join(written)} needs written consent (K1/K2); register the "
                "signed document's SHA-256 with form.kind 'written'"
            )
    if consent.form.kind == "written" and not consent.form.document_sha256:
        raise InvalidConsent("form.document_sha256: a written consent needs the document's hash")
    if consent.form.kind == "oral" and not consent.form.witness_unit:
        raise InvalidConsent("form.witness_unit: an oral consent needs who witnessed it")
    age = age_on(birth_date, consent.granted_at.date())
    role = consent.grantor.role.value
    grantors = legal["grantors"]
    if age < legal["health_consent_age"]:
        if role not in grantors["under_16"]:
            raise InvalidConsent(
                f"grantor.role: under {legal['health_consent_age']} the representative or "
                "guardian consents, not the young person (K3)"
            )
    else:
        if "health" in categories and role not in grantors["from_16_health"]:
            raise InvalidConsent(
                f"grantor.role: from {legal['health_consent_age']} the young person consents "
                "to health matters, not the representative or guardian (K3)"
            )
        other = categories - {"health"}
        if other and role not in grantors["from_16_other"]:
            raise InvalidConsent(
                f"grantor.role: {', '.join(sorted(other))} needs the representative or "
                "guardian (K3)"
            )


def _flow(flow: Flow) -> dict[str, Any]:
    return flow.model_dump(mode="json")


def policy_form(consent: ConsentGrantedV1) -> dict[str, Any]:
    """The consent as the policy sees it: scope, form, validity in epoch ns (no names)."""
    return {
        "id": consent.consent_id,
        "version": consent.version,
        "grantor_role": consent.grantor.role.value,
        "form": consent.form.kind,
        "document_hashed": bool(consent.form.document_sha256),
        "valid_from_ns": int(consent.valid_from.timestamp()) * 10**9,
        "valid_to_ns": int(consent.valid_to.timestamp()) * 10**9,
        "child_heard": consent.child_heard.model_dump(mode="json", include={"status", "objected"}),
        "scope": [_flow(f) for f in consent.scope],
        "refusals": [_flow(f) for f in consent.refusals],
    }
