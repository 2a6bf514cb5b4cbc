"""The FHIR R4 Consent mapping of the broker's consent records (pure; no bus)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent

from contracts.messages import ConsentGrantedV1
from services.consent.consents import policy_form
from services.consent.fhir import bundle, consent_view, to_csv, to_fhir

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
DOC = hashlib.sha256(b"signed pdf").hexdigest()


def granted_record(consent_id: str = "consent-1", **overrides: Any) -> dict[str, Any]:
    """The log body the broker writes for a grant (as services/consent/handlers.py does)."""
    data = ConsentGrantedV1(
        **{
            "consent_id": consent_id,
            "version": 2,
            "case_id": "3f2b6d3c-0c55-4a8e-9d43-1f0e4a5b6c7d",
            "grantor": {"role": "representative", "capacity": "representant oppnevnt"},
            "form": {"kind": "written", "document_sha256": DOC},
            "scope": [
                {
                    "categories": ["kopp"],
                    "source_sectors": ["care_centre"],
                    "recipient_sectors": ["municipality"],
                    "recipient_units": ["kommune-0301"],
                    "purposes": ["settlement"],
                }
            ],
            "refusals": [
                {
                    "categories": ["health"],
                    "source_sectors": ["health"],
                    "recipient_sectors": ["school"],
                    "purposes": ["schooling"],
                }
            ],
            "granted_at": NOW - timedelta(days=2),
            "valid_from": NOW - timedelta(days=1),
            "valid_to": NOW + timedelta(days=30),
            "child_heard": {"status": "heard", "method": "samtale med tolk"},
            **overrides,
        }
    )
    return {
        "kind": "consent.granted",
        "consent_id": data.consent_id,
        "version": data.version,
        "case_id": data.case_id,
        "grantor": data.grantor.model_dump(mode="json"),
        "form": data.form.model_dump(mode="json"),
        "policy": policy_form(data),
        "child_heard": data.child_heard.model_dump(mode="json"),
        "granted_at": data.granted_at.isoformat(),
        "registered_by": "centre-oslo",
        "recorded_at": NOW.isoformat(),
    }


def codes(provision: Any, attr: str) -> list[str]:
    return [c.code for c in getattr(provision, attr) or []]


def test_a_written_consent_with_a_refusal_validates_as_fhir_with_a_nested_deny() -> None:
    raw = bundle([consent_view("active", granted_record(), None, NOW)], NOW)
    parsed = Bundle.model_validate(raw)
    assert parsed.type == "collection" and len(parsed.entry) == 1
    consent = Consent.model_validate(raw["entry"][0]["resource"])
    assert consent.status == "active"
    assert consent.scope.coding[0].code == "patient-privacy"
    assert consent.category[0].coding[0].code == "59284-0"
    assert consent.patient.identifier.value == "3f2b6d3c-0c55-4a8e-9d43-1f0e4a5b6c7d"
    assert consent.performer[0].type == "RelatedPerson"
    assert consent.sourceAttachment.hash == hashlib.sha256(b"signed pdf").digest()
    assert consent.meta.versionId == "2"
    assert {c.code for c in consent.policyRule.coding} == {"fvl-13a-1", "bvl-5a-6"}
    root = consent.provision
    assert root.type == "permit"
    assert root.period.start == NOW - timedelta(days=1)
    assert root.period.end == NOW + timedelta(days=30)
    permit, deny = root.provision
    assert (permit.type, codes(permit, "class_fhir"), codes(permit, "purpose")) == (
        "permit",
        ["kopp"],
        ["settlement"],
    )
    recipients = [
        a.reference.identifier.value for a in permit.actor if a.role.coding[0].code == "IRCP"
    ]
    assert recipients == ["kommune-0301", "municipality"]
    assert (deny.type, codes(deny, "class_fhir"), codes(deny, "purpose")) == (
        "deny",
        ["health"],
        ["schooling"],
    )


def test_withdrawn_and_expired_consents_are_inactive() -> None:
    withdrawal = {"withdrawn_at": NOW.isoformat(), "withdrawn_by": "representative"}
    withdrawn = consent_view("withdrawn", granted_record(), withdrawal, NOW)
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"] == NOW.isoformat()
    assert to_fhir(withdrawn)["status"] == "inactive"
    expired = consent_view("active", granted_record(), None, NOW + timedelta(days=31))
    assert expired["status"] == "expired"
    assert to_fhir(expired)["status"] == "inactive"


def test_a_young_person_performs_as_the_patient_and_an_oral_consent_has_no_attachment() -> None:
    record = granted_record(
        grantor={"role": "young_person", "capacity": "ungdommen selv"},
        form={"kind": "oral", "witness_unit": "centre-oslo"},
        scope=[
            {
                "categories": ["school"],
                "source_sectors": ["school"],
                "recipient_sectors": ["care_centre"],
                "purposes": ["schooling"],
            }
        ],
        refusals=[],
    )
    resource = to_fhir(consent_view("active", record, None, NOW))
    consent = Consent.model_validate(resource)
    assert consent.performer[0].type == "Patient"
    assert consent.performer[0].identifier.value == record["case_id"]
    assert consent.sourceAttachment is None
    assert {c.code for c in consent.policyRule.coding} == {"fvl-13a-1"}


def test_a_consent_id_that_is_no_fhir_id_keeps_its_identifier() -> None:
    record = granted_record("samtykke/2026 #1 æøå")
    resource = to_fhir(consent_view("active", record, None, NOW))
    Consent.model_validate(resource)
    assert resource["id"] != "samtykke/2026 #1 æøå"
    assert resource["identifier"][0]["value"] == "samtykke/2026 #1 æøå"


def test_csv_has_a_permit_row_per_flow_and_a_deny_row_per_refusal() -> None:
    rows = list(
        csv.DictReader(io.StringIO(to_csv([consent_view("active", granted_record(), None, NOW)])))
    )
    assert [(r["provision"], r["categories"], r["recipient_units"]) for r in rows] == [
        ("permit", "kopp", "kommune-0301"),
        ("deny", "health", ""),
    ]
    assert rows[0]["document_sha256"] == DOC
    assert (
        base64.b64decode(
            to_fhir(consent_view("active", granted_record(), None, NOW))["sourceAttachment"]["hash"]
        ).hex()
        == DOC
    )
