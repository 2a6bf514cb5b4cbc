"""Pure rules for consent records: who may grant at what age (K3), the form K1/K2 need, and
validity. Parameters come from the policy data (data.legal), so law changes are data changes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contracts.messages import ConsentGrantedV1, Flow
from services.consent.domain import months_on


class InvalidConsent(ValueError):
    """Names the field and the rule, never a value."""


def validate_grant(
    consent: ConsentGrantedV1,
    *,
    birth_date: date,
    now: datetime,
    legal: dict[str, Any],
    estimated: bool = False,
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
    months = months_on(birth_date, consent.granted_at.date())
    for category in sorted(categories):
        problem = grantor_problem(
            legal["consent_age"], category, consent.grantor.role.value, months, estimated
        )
        if problem:
            raise InvalidConsent(problem)


def bands(rules: dict[str, Any], months: int, estimated: bool) -> list[str]:
    """The age bands (K3) the child may be in: one, or both sides of a threshold when an
    estimated age lies within the margin of it."""

    def band_of(m: int) -> str:
        return max(
            (b for b in rules["bands"] if m >= b["from_age"] * 12), key=lambda b: b["from_age"]
        )["band"]

    found = [band_of(months)]
    if estimated:
        for b in rules["bands"]:
            t = b["from_age"] * 12
            if t > 0 and abs(months - t) < rules["estimated_margin_months"]:
                found += [band_of(t - 1), band_of(t)]
    return sorted(set(found))


def grantor_problem(
    rules: dict[str, Any], category: str, role: str, months: int, estimated: bool
) -> str | None:
    """Why `role` may not consent to `category` at this age (K3), or None. Near a threshold
    with an estimated age, a grantor of either side is accepted: the policy then asks for both
    signatures at decision time."""
    grantors = rules["grantors"].get(category, rules["grantors"]["*"])
    possible = bands(rules, months, estimated)
    if any(role in grantors.get(b, []) for b in possible):
        return None
    band = next(b for b in rules["bands"] if b["band"] == possible[0])
    frm = band["from_age"]
    later = sorted(b["from_age"] for b in rules["bands"] if b["from_age"] > frm)
    allowed = grantors.get(band["band"], [])
    who = "the young person" if allowed == ["young_person"] else "the representative or guardian"
    if frm == 0:
        return (
            f"grantor.role: under {later[0]} the representative or guardian consents to "
            f"{category} matters, not the young person (K3)"
        )
    if not later:
        return (
            f"grantor.role: from {frm} the young person consents to {category} matters; "
            f"a representative's or guardian's role ends at {frm} (K3)"
        )
    if allowed == ["young_person"]:
        return (
            f"grantor.role: from {frm} the young person consents to {category} matters, "
            "not the representative or guardian (K3)"
        )
    return f"grantor.role: {category} needs {who} (K3)"


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
