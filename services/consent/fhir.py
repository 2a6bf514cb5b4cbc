"""A case's consents as HL7 FHIR R4 Consent resources, in a Bundle of type collection.

The broker keeps consents as the policy sees them (no names); the grant and withdrawal records
in its log add the grantor's role, the form and the dates. Nothing here names the child: the
patient is the case id, and the signed document is referred to by its SHA-256 only.

fhir.resources 7+ ships no R4 sub-package: its R4B models (4.3.0) validate the output, and the
Consent resource is the same in R4 and R4B, so the resources are valid R4 Consents too.

Mapping (docs in README.md, "Consents and the decision log"):
  status          active; inactive once withdrawn or expired (the broker never records a
                  consent it refuses, so "rejected" does not occur: that goes to dead letters)
  scope           consentscope#patient-privacy
  category        LOINC 59284-0 (Patient Consent)
  patient         the case id (Patient/<case id> and identifier urn:emaflyt:case)
  dateTime        granted_at
  performer       the grantor by role (the young person is the patient; a representative or
                  guardian a RelatedPerson), never by name
  organization    the unit that registered the consent
  sourceAttachment  written form: hash = SHA-256 of the signed document (base64)
  policyRule      the legal basis of consent-based disclosure (codes below, to verify)
  provision       permit (deny if the consent only refuses) for valid_from..valid_to, with one
                  nested permit per flow in scope and one nested deny per refused flow: actors
                  (recipients IRCP, sources CST), purposes, data categories as class
"""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any

CASE_SYSTEM = "urn:emaflyt:case"
CONSENT_SYSTEM = "urn:emaflyt:consent"
UNIT_SYSTEM = "urn:emaflyt:unit"
SECTOR_SYSTEM = "urn:emaflyt:unit-kind"
CATEGORY_SYSTEM = "urn:emaflyt:data-category"
PURPOSE_SYSTEM = "urn:emaflyt:purpose"
LEGAL_BASIS_SYSTEM = "urn:emaflyt:legal-basis"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
NAMESPACE = uuid.UUID("1d7c1f0e-5a57-4c55-9d0c-6e6a7c0f4d21")

# The legal basis of a consent-based disclosure, by data category (DOMAIN.md K1-K4). The
# references are to be verified, like the statutes in policies/data.json.
LEGAL_BASIS: dict[str, tuple[str, str]] = {
    "consent": ("fvl-13a-1", "forvaltningsloven § 13 a nr. 1 (samtykke)"),
    "health": (
        "hpl-22",
        "helsepersonelloven § 22 (samtykke); pasient- og brukerrettighetsloven § 4-3 (K2, K3, K4)",
    ),
    "kopp": (
        "bvl-5a-6",
        "barnevernloven (1992) § 5A-6, skriftlig samtykke (K1); renummerert i 2021-loven",
    ),
}


def _ns_to_iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def consent_view(
    status: str, granted: dict[str, Any], withdrawn: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """One consent as exported in JSON: its latest grant record, and the withdrawal if any.
    status is the broker's (active | withdrawn); an active consent past valid_to is expired."""
    policy = granted["policy"]
    valid_to = _ns_to_iso(policy["valid_to_ns"])
    if status == "withdrawn":
        state = "withdrawn"
    elif policy["valid_to_ns"] <= now.timestamp() * 1e9:
        state = "expired"
    else:
        state = "active"
    form = {k: v for k, v in granted["form"].items() if v is not None}
    return {
        "consent_id": granted["consent_id"],
        "version": granted["version"],
        "case_id": granted["case_id"],
        "status": state,
        "grantor": granted["grantor"],
        "form": form,
        "granted_at": granted["granted_at"],
        "valid_from": _ns_to_iso(policy["valid_from_ns"]),
        "valid_to": valid_to,
        "withdrawn_at": withdrawn["withdrawn_at"] if withdrawn else None,
        "withdrawn_by": withdrawn["withdrawn_by"] if withdrawn else None,
        "child_heard": {
            k: granted["child_heard"].get(k) for k in ("status", "objected", "interpreter_used")
        },
        "scope": policy["scope"],
        "refusals": policy["refusals"],
        "registered_by": granted["registered_by"],
        "recorded_at": granted["recorded_at"],
    }


def _org(system: str, value: str, display: str) -> dict[str, Any]:
    return {
        "type": "Organization",
        "identifier": {"system": system, "value": value},
        "display": display,
    }


def _actors(units: list[str], sectors: list[str], role: str, display: str) -> list[dict]:
    code = {"coding": [{"system": PARTICIPATION, "code": role, "display": display}]}
    return [{"role": code, "reference": _org(UNIT_SYSTEM, u, u)} for u in units] + [
        {"role": code, "reference": _org(SECTOR_SYSTEM, s, f"any {s} unit")} for s in sectors
    ]


def _provision(kind: str, flow: dict[str, Any]) -> dict[str, Any]:
    actors = _actors(
        flow.get("recipient_units", []),
        flow.get("recipient_sectors", []),
        "IRCP",
        "information recipient",
    )
    actors += _actors(
        flow.get("source_units", []), flow.get("source_sectors", []), "CST", "custodian"
    )
    out: dict[str, Any] = {
        "type": kind,
        "purpose": [{"system": PURPOSE_SYSTEM, "code": p} for p in flow["purposes"]],
        "class": [{"system": CATEGORY_SYSTEM, "code": c} for c in flow["categories"]],
    }
    if actors:
        out["actor"] = actors
    return out


def _patient(case_id: str) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "type": "Patient",
        "identifier": {"system": CASE_SYSTEM, "value": case_id},
    }
    if FHIR_ID.match(case_id):
        ref["reference"] = f"Patient/{case_id}"
    return ref


def _resource_id(consent_id: str) -> str:
    return consent_id if FHIR_ID.match(consent_id) else str(uuid.uuid5(NAMESPACE, consent_id))


def to_fhir(view: dict[str, Any]) -> dict[str, Any]:
    """One consent view as a FHIR R4 Consent resource (JSON)."""
    categories = {c for flow in view["scope"] for c in flow["categories"]}
    bases = [LEGAL_BASIS["consent"]] + [
        LEGAL_BASIS[c] for c in ("health", "kopp") if c in categories
    ]
    role = view["grantor"]["role"]
    if role == "young_person":
        performer = {**_patient(view["case_id"]), "display": "young person (the patient)"}
    else:
        performer = {"type": "RelatedPerson", "display": f"{role}: {view['grantor']['capacity']}"}
    root = {
        "type": "permit" if view["scope"] else "deny",
        "period": {"start": view["valid_from"], "end": view["valid_to"]},
        "provision": [_provision("permit", f) for f in view["scope"]]
        + [_provision("deny", f) for f in view["refusals"]],
    }
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": _resource_id(view["consent_id"]),
        "meta": {"versionId": str(view["version"]), "lastUpdated": view["recorded_at"]},
        "identifier": [{"system": CONSENT_SYSTEM, "value": view["consent_id"]}],
        "status": "active" if view["status"] == "active" else "inactive",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
                ]
            }
        ],
        "patient": _patient(view["case_id"]),
        "dateTime": view["granted_at"],
        "performer": [performer],
        "organization": [_org(UNIT_SYSTEM, view["registered_by"], view["registered_by"])],
        "policyRule": {
            "coding": [
                {"system": LEGAL_BASIS_SYSTEM, "code": code, "display": text}
                for code, text in bases
            ],
            "text": "; ".join(text for _, text in bases),
        },
        "provision": root,
    }
    sha = view["form"].get("document_sha256")
    if view["form"]["kind"] == "written" and sha:
        resource["sourceAttachment"] = {
            "title": f"signed consent document, SHA-256 {sha}",
            "hash": base64.b64encode(bytes.fromhex(sha)).decode(),
        }
    return resource


def bundle(views: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """A Bundle (collection) of the consents, checked against the fhir.resources models."""
    from fhir.resources.R4B.bundle import Bundle

    entries = []
    for view in views:
        resource = to_fhir(view)
        full_url = uuid.uuid5(NAMESPACE, f"{view['consent_id']}/{view['version']}")
        entries.append({"fullUrl": f"urn:uuid:{full_url}", "resource": resource})
    raw = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now.isoformat(),
        "total": len(entries),
        "entry": entries,
    }
    Bundle.model_validate(raw)  # raises if the mapping ever produces an invalid resource
    return raw


CSV_COLUMNS = (
    "consent_id",
    "version",
    "status",
    "grantor_role",
    "form",
    "document_sha256",
    "granted_at",
    "valid_from",
    "valid_to",
    "withdrawn_at",
    "provision",
    "categories",
    "source_units",
    "source_sectors",
    "recipient_units",
    "recipient_sectors",
    "purposes",
)


def to_csv(views: list[dict[str, Any]]) -> str:
    """One row per flow: permit for each flow in scope, deny for each refusal."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for view in views:
        base = {
            "consent_id": view["consent_id"],
            "version": view["version"],
            "status": view["status"],
            "grantor_role": view["grantor"]["role"],
            "form": view["form"]["kind"],
            "document_sha256": view["form"].get("document_sha256") or "",
            "granted_at": view["granted_at"],
            "valid_from": view["valid_from"],
            "valid_to": view["valid_to"],
            "withdrawn_at": view["withdrawn_at"] or "",
        }
        for kind, flows in (("permit", view["scope"]), ("deny", view["refusals"])):
            for flow in flows:
                writer.writerow(
                    {
                        **base,
                        "provision": kind,
                        **{k: " ".join(flow.get(k, [])) for k in CSV_COLUMNS[11:]},
                    }
                )
    return out.getvalue()
