"""Typed message bodies (the CloudEvent `data`), one model per released type and version.

A released model never changes incompatibly: a new version is a new class beside it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.fields import UNIT_ID_PATTERN, confidential, unit_id


class UnitKind(StrEnum):
    CARE_CENTRE = "care_centre"
    BUFETAT_REGION = "bufetat_region"
    MUNICIPALITY = "municipality"
    SCHOOL = "school"
    HEALTH = "health"
    BARNEVERN = "barnevern"
    IMDI = "imdi"
    UDI = "udi"
    REPRESENTATIVE = "representative"
    STATSFORVALTER = "statsforvalter"
    SERVICE = "service"
    WITNESS = "witness"  # holds and cosigns the decision log's tree heads; sees no case data


class DataCategory(StrEnum):
    HEALTH = "health"
    SCHOOL = "school"
    BARNEVERN = "barnevern"
    IDENTITY = "identity"
    SETTLEMENT = "settlement"
    KOPP = "kopp"


class Message(BaseModel):
    """Base of every message body: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


ISO_639 = re.compile(r"^[a-z]{2,3}$")
DUF_PATTERN = r"^(19[9][0-9]|20[0-9]{2})[0-9]{8}$"


class Sibling(Message):
    """A sibling of the arriving child, linked to the sibling's own case by DUF number."""

    duf_number: str = confidential("The sibling's DUF number.", pattern=DUF_PATTERN)
    relation: Literal["sibling", "half_sibling"] = "sibling"


class ArrivalV1(Message):
    """A child has arrived at a care centre. Sent by the care centre."""

    duf_number: str = confidential(
        "UDI's 12-digit case number (DUF): the registration year, then 8 digits.",
        pattern=DUF_PATTERN,
    )
    name: str = confidential("The child's full name.", min_length=1, max_length=200)
    birth_date: date = confidential("Birth date as known; see birth_date_estimated.")
    birth_date_estimated: bool = Field(False, description="True when the birth date is estimated.")
    sex: Literal["female", "male", "other", "unknown"]
    nationality: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3, or XXX.")
    languages: list[str] = Field(min_length=1, max_length=10, description="ISO 639 codes.")
    care_centre: str = unit_id("Unit id of the receiving care centre.")
    arrived_at: datetime = Field(description="Arrival time, with offset.")
    siblings: list[Sibling] = Field(
        default_factory=list, max_length=12, description="Siblings, by their DUF numbers."
    )

    @field_validator("languages")
    @classmethod
    def _iso_639(cls, value: list[str]) -> list[str]:
        bad = [code for code in value if not ISO_639.match(code)]
        if bad:
            raise ValueError(f"not ISO 639 language codes: {', '.join(bad)}")
        return value

    @field_validator("arrived_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("arrival time needs a UTC offset, e.g. 2026-04-02T10:00:00+02:00")
        return value


class CaseOpenedV1(Message):
    """Intake opened a case for an arrival. Sent by the intake service."""

    case_id: str = Field(description="Stable id of the child's case (UUID).")
    case_ref: str = Field(description="Short reference used in notifications, e.g. EMA-7K2Q9D.")
    care_centre: str = unit_id("The care centre where the child stays.")
    arrived_at: datetime
    birth_date: date = confidential("Birth date as known.")
    birth_date_estimated: bool


class CaseOpenedV2(Message):
    """Intake opened a case for an arrival, with what planning needs to choose the steps that
    apply (TB screening by nationality, school level by age). v1 stays for its readers."""

    case_id: str = Field(description="Stable id of the child's case (UUID).")
    case_ref: str = Field(description="Short reference used in notifications, e.g. EMA-7K2Q9D.")
    care_centre: str = unit_id("The care centre where the child stays.")
    arrived_at: datetime
    birth_date: date = confidential("Birth date as known.")
    birth_date_estimated: bool
    nationality: str = confidential("ISO 3166-1 alpha-3, or XXX.", pattern=r"^[A-Z]{3}$")


class DeadlineScheduledV1(Message):
    """Planning scheduled a task with a legal deadline for a case."""

    task_id: str
    case_id: str
    case_ref: str
    task: str = Field(description="Task code from the pathway, e.g. arrival_talk.")
    title_nb: str
    title_en: str
    due: date
    responsible_unit: str = unit_id("Unit that must carry out the task.")
    strength: Literal["skal", "bør", "anbefales", "kan"]
    legal_ref: str
    pathway: str = Field(description="Pathway id and version, e.g. ema-care-centre@1.")


Strength = Literal["skal", "bør", "anbefales", "kan"]


class Copy(Message):
    """Another unit and the role there that hears of a task."""

    unit: str = unit_id("The unit told.")
    role: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")


class DeadlineScheduledV2(Message):
    """Planning scheduled a task or a frame, with the role that carries it out, who else hears
    of it, its force (the verb of its source) and the legal reference in force on the day."""

    task_id: str
    case_id: str
    case_ref: str
    task: str = Field(description="Task code from the pathway, e.g. arrival_talk.")
    kind: Literal["task", "frame"] = Field(
        description="task: something to do by the date; frame: flagged when passed."
    )
    title_nb: str
    title_en: str
    due: date
    responsible_unit: str = unit_id("Unit that must carry out the task.")
    role: str = Field(description="The role at the responsible unit, e.g. contact_person.")
    copies: list[Copy] = Field(default_factory=list, description="Others who hear of it.")
    strength: Strength
    legal_ref: str
    pathway: str = Field(description="Pathway id and version, e.g. ema-care-centre@3.")


class NotificationRecordedV1(Message):
    """Notify recorded a notification in a recipient's inbox."""

    notification_id: str
    case_ref: str
    unit: str = unit_id("Recipient unit.")
    role: str
    event_type: str
    channel: Literal["inbox", "email", "webhook"]


class EncryptedPayload(Message):
    """Content sealed (v1, retired) to one unit's X25519 key: X25519 + HKDF-SHA256 +
    AES-256-GCM. A v1 request was sealed to the consent broker, a v1 delivery to its
    recipient."""

    alg: Literal["X25519-HKDF-SHA256-A256GCM"] = "X25519-HKDF-SHA256-A256GCM"
    recipient_kid: str = Field(
        description="Key id of the X25519 key it is sealed to: the broker's in a request, the "
        "recipient's in a delivery."
    )
    ephemeral_public_key: str = Field(description="Base64 raw X25519 public key.")
    nonce: str = Field(description="Base64 12-byte nonce.")
    ciphertext: str = confidential("Base64 ciphertext with tag.", max_length=1_000_000)


class BreakTheGlass(Message):
    justification: str = Field(min_length=10, max_length=2000)


class ShareRequestV1(Message):
    """A unit asks to share data about a case with another unit, through the consent broker."""

    request_id: str = Field(min_length=1, max_length=128)
    case_id: str
    source_unit: str = unit_id("Unit the data comes from.")
    recipient_unit: str = unit_id("Unit that would receive the data.")
    data_category: DataCategory
    purpose: str = Field(pattern=r"^[a-z_]{2,64}$", description="Purpose code, e.g. settlement.")
    payload: EncryptedPayload
    claimed_basis: str | None = Field(None, max_length=200, description="Claimed statute, if any.")
    break_the_glass: BreakTheGlass | None = None


class ShareReceiptV1(Message):
    """The broker's answer to the sender. A withheld receipt reveals nothing about consents."""

    request_id: str
    decision_id: str
    outcome: Literal["released", "withheld"]
    message_nb: str
    message_en: str


class ShareDecidedV1(Message):
    """A share decision was recorded (no payload values): for audit and obligations."""

    decision_id: str
    request_id: str
    case_id: str
    source_unit: str
    recipient_unit: str
    data_category: DataCategory
    purpose: str
    outcome: Literal["allow", "withhold"]
    # Optional: the envelope leaves out null values, so a withheld decision carries none.
    legal_basis: str | None = None
    policy_revision: str
    record_hash: str


class GrantorRole(StrEnum):
    REPRESENTATIVE = "representative"
    GUARDIAN = "guardian"
    YOUNG_PERSON = "young_person"


class Grantor(Message):
    """Who gave the consent and in what capacity. No names: the signed document holds them."""

    role: GrantorRole
    capacity: str = Field(
        min_length=2,
        max_length=200,
        description="E.g. 'representant oppnevnt av Statsforvalteren'.",
    )


class ConsentForm(Message):
    """Written (with the SHA-256 of the signed document) or oral (with who witnessed it)."""

    kind: Literal["written", "oral"]
    document_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the signed document."
    )
    witness_unit: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}$",
        description="Unit whose staff witnessed an oral consent.",
    )
    witness_role: str | None = Field(None, max_length=100, description="E.g. 'miljøterapeut'.")


class Flow(Message):
    """A set of flows: data categories x source units/sectors x recipient units/sectors x
    purposes. A unit matches by id, a sector by the unit's kind."""

    categories: list[DataCategory] = Field(min_length=1)
    source_units: list[str] = Field(default_factory=list)
    source_sectors: list[UnitKind] = Field(default_factory=list)
    recipient_units: list[str] = Field(default_factory=list)
    recipient_sectors: list[UnitKind] = Field(default_factory=list)
    purposes: list[str] = Field(min_length=1)


class ChildHeard(Message):
    """K8: whether and how the child was heard. Only facts about the hearing, no views."""

    status: Literal["heard", "declined_to_take_part", "not_heard"]
    method: str | None = Field(None, max_length=200, description="E.g. 'samtale med tolk'.")
    objected: bool = Field(False, description="The child objected to this sharing.")
    interpreter_used: bool = False


class ConsentGrantedV1(Message):
    """A consent (and any refusals of specific flows) for a case, registered by the unit that
    holds the signed document or witnessed the oral consent. A later message with the same
    consent_id and a higher version changes it."""

    consent_id: str = Field(min_length=1, max_length=128)
    version: int = Field(1, ge=1, description="Raise to change a consent; the highest counts.")
    case_id: str
    grantor: Grantor
    form: ConsentForm
    scope: list[Flow] = Field(default_factory=list, max_length=50)
    refusals: list[Flow] = Field(
        default_factory=list,
        max_length=50,
        description="Flows refused: a refusal beats any consent.",
    )
    granted_at: datetime
    valid_from: datetime
    valid_to: datetime
    child_heard: ChildHeard


class ConsentWithdrawnV1(Message):
    """A consent is withdrawn. It stops counting from the next decision."""

    consent_id: str = Field(min_length=1, max_length=128)
    case_id: str
    withdrawn_by: GrantorRole
    withdrawn_at: datetime


class ConsentRecordedV1(Message):
    """The broker's acknowledgement: the consent change is recorded in the log and counts for
    every decision after it."""

    consent_id: str
    case_id: str
    status: Literal["active", "withdrawn"]
    version: int
    log_index: int = Field(description="Position of the record in the broker's Merkle log.")
    record_hash: str


class Obligation(Message):
    kind: Literal["review", "notify_representative"]
    within_hours: int | None = None


class ShareDeliveredV1(Message):
    """Released data for the recipient: only the allowed fields, sealed to the recipient's
    X25519 key with the decision id as associated data. content_hash is SHA-256 over the
    decrypted bytes; the decision record (record_hash, at log_index) holds the same hash."""

    decision_id: str
    request_id: str
    case_id: str
    source_unit: str
    recipient_unit: str
    data_category: DataCategory
    purpose: str
    fields: list[str]
    legal_basis: str
    obligations: list[Obligation] = Field(default_factory=list)
    payload: EncryptedPayload
    content_hash: str
    record_hash: str
    log_index: int


SEALING_SUITES = ("HPKE-X25519-SHA256-A256GCM", "HPKE-MLKEM768X25519-SHA256-A256GCM")


class SealedPayload(Message):
    """Content sealed with HPKE (RFC 9180, base mode) to one unit's key, its context bound as
    HPKE `info`: opening it for another case, request, sender, recipient, category or purpose
    fails. Suites: DHKEM(X25519) or the post-quantum hybrid ML-KEM-768 + X25519, each with
    HKDF-SHA256 and AES-256-GCM (contracts/README.md §7)."""

    suite: Literal["HPKE-X25519-SHA256-A256GCM", "HPKE-MLKEM768X25519-SHA256-A256GCM"]
    recipient_kid: str = Field(
        pattern=r"^[0-9a-f]{16}$",
        description="The recipient's sealing key: first 16 hex digits of SHA-256 over its raw "
        "public key, as in the unit directory's sealing_keys.",
    )
    sealed: str = confidential(
        "Base64 of the HPKE encapsulated key followed by the ciphertext with its tag.",
        max_length=1_400_000,
    )


class ShareRequestV2(Message):
    """A unit asks the consent broker to share data about a case with another unit. The
    payload is sealed to the broker with the request's context bound (v1's sealing was not,
    so a copied payload could be submitted again by another unit: v1 is refused)."""

    request_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    case_id: str = Field(min_length=1, max_length=128)
    source_unit: str = unit_id("Unit the data comes from: the sending unit.")
    recipient_unit: str = unit_id("Unit that would receive the data.")
    data_category: DataCategory
    purpose: str = Field(pattern=r"^[a-z_]{2,64}$", description="Purpose code, e.g. settlement.")
    payload: SealedPayload
    claimed_basis: str | None = Field(None, max_length=200, description="Claimed statute, if any.")
    break_the_glass: BreakTheGlass | None = None


class ShareDeliveredV2(Message):
    """Released data for the recipient: only the allowed fields, sealed to the recipient's
    key with the delivery's context (decision, request, case, units, category, purpose) bound.
    content_hash is SHA-256 over the opened bytes; the decision record holds the same hash.
    With it the evidence the recipient keeps: the decision log's checkpoint the decision was
    logged under (a C2SP signed note of tree size log_index + 1) and the record's inclusion
    proof against it. Witnesses' cosignatures of that checkpoint, or of any later one with a
    consistency proof, show the log cannot drop or rewrite the decision."""

    decision_id: str
    request_id: str
    case_id: str
    source_unit: str
    recipient_unit: str
    data_category: DataCategory
    purpose: str
    fields: list[str]
    legal_basis: str
    obligations: list[Obligation] = Field(default_factory=list)
    payload: SealedPayload
    content_hash: str
    record_hash: str
    log_index: int
    checkpoint: str = Field(max_length=4000, description="C2SP checkpoint, signed note form.")
    inclusion_proof: list[str] = Field(
        max_length=64, description="Base64 SHA-256 node hashes, RFC 9162 section 2.1.3."
    )


class ArrivalRegisteredV1(Message):
    """Intake's answer to the care centre that reported an arrival: the case it opened, found
    open already, or took over by transfer. Addressed to that centre alone."""

    arrival_id: str = Field(description="The arrival message's id (its CloudEvent id).")
    case_id: str
    case_ref: str
    outcome: Literal["opened", "already_open", "transferred"]
    care_centre: str = unit_id("The centre the case is at now.")


class TaskNoticeV1(Message):
    """What a unit must do, addressed to the unit responsible for the task: scheduled, due
    soon, due, overdue, done or cancelled. Ids, codes and dates only."""

    task_id: str
    case_id: str
    case_ref: str
    task: str = Field(description="Task code from the pathway, e.g. arrival_talk.")
    title_nb: str
    title_en: str
    due: date
    status: Literal["scheduled", "due_soon", "due", "overdue", "done", "cancelled"]
    days_late: int = Field(0, ge=0)
    responsible_unit: str = unit_id("The unit that must carry out the task (the addressee).")
    legal_ref: str | None = None
    pathway: str


class TaskNoticesV1(Message):
    """Every task notice one step of planning caused for one unit in one case, in one message,
    for units registered to read notices grouped (`emaflyt unit register --notices grouped`;
    docs/decisions/0020). Each item is exactly the task-notice.v1 it replaces, in the order
    they would have come; a unit reads either form, never both, for a step."""

    case_id: str
    case_ref: str
    unit: str = unit_id("The addressee: the unit every notice here is for.")
    notices: list[TaskNoticeV1] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_case(self) -> TaskNoticesV1:
        for item in self.notices:
            if item.case_id != self.case_id or item.case_ref != self.case_ref:
                raise ValueError(f"task {item.task_id} belongs to another case")
        return self


class EmergencyReleasedV1(Message):
    """Data was released under break-the-glass. Notify tells the case's representative (the
    care centre's leader while there is none); a privacy officer reviews it by review_due.
    Ids, units, field names and times only."""

    decision_id: str
    case_id: str
    case_ref: str = Field("", max_length=16)
    representative_unit: str | None = Field(None, pattern=UNIT_ID_PATTERN)
    care_centre: str = unit_id("The case's care centre.")
    source_unit: str = unit_id("The unit that broke the glass.")
    recipient_unit: str = unit_id("The unit that received the data.")
    data_category: DataCategory
    fields: list[str]
    decided_at: datetime
    review_due: datetime


class EmergencyReviewOverdueV1(Message):
    """A break-the-glass release was not reviewed by its deadline: notify escalates it to the
    privacy officer."""

    decision_id: str
    case_id: str
    case_ref: str = Field("", max_length=16)
    source_unit: str = unit_id("The unit that broke the glass.")
    recipient_unit: str = unit_id("The unit that received the data.")
    decided_at: datetime
    review_due: datetime
    privacy_officer_unit: str = unit_id("Where the privacy officer is notified.")


class LogCheckpointV1(Message):
    """A signed tree head of the consent broker's decision log: a C2SP checkpoint
    (origin, tree size, base64 root hash) in signed-note form, with the consistency proof from
    the previous tree head. Witnesses check it against the last checkpoint they hold and cosign
    it. Hashes only: nothing about a case or a person."""

    origin: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=1)
    checkpoint: str = Field(max_length=4000, description="C2SP checkpoint, signed note form.")
    old_size: int = Field(ge=0, description="The tree size the consistency proof starts from.")
    consistency_proof: list[str] = Field(
        max_length=128, description="Base64 SHA-256 node hashes, RFC 9162 section 2.1.4."
    )


class LogCosignedV1(Message):
    """A witness found a checkpoint consistent with every one it cosigned before and cosigned
    it (C2SP tlog-cosignature): the checkpoint carries the log's signature and the witness's."""

    origin: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=1)
    witness: str = Field(min_length=1, max_length=200, description="The cosigner's key name.")
    checkpoint: str = Field(max_length=8000, description="The checkpoint with the cosignature.")


class LogWitnessAlarmV1(Message):
    """A witness refused a checkpoint: not signed by a log key it trusts, or not consistent
    with what it cosigned before (a rewritten, reordered or truncated log, or a fork)."""

    origin: str = Field(min_length=1, max_length=200)
    witness: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=0, description="Tree size of the refused checkpoint.")
    held_size: int = Field(ge=0, description="The largest tree size the witness cosigned.")
    problem: str = Field(max_length=1000)


class CapacityPublishedV1(Message):
    """A municipality's settlement decision for a year, and its free places now."""

    kommunenummer: str = Field(pattern=r"^[0-9]{4}$")
    year: int = Field(ge=2000, le=2100)
    children: int = Field(ge=0, le=10_000, description="Children the council decided to settle.")
    measures: list[str] = Field(min_length=1, description="Measures offered, e.g. bofellesskap.")
    free_places: int = Field(ge=0, le=10_000)


class RepresentativeRequestedV1(Message):
    """Intake asks the Statsforvalter to appoint a representative for a new case."""

    case_id: str
    case_ref: str
    care_centre: str = unit_id("Where the child stays.")
    requested_on: date


class RepresentativeAppointedV1(Message):
    """The Statsforvalter appointed a representative (sent by the Statsforvalter)."""

    case_id: str
    representative_unit: str = unit_id("The representative's unit id in emaflyt.")
    name: str = confidential("The representative's name.", min_length=1, max_length=200)
    appointed_on: date


class CaseRepresentativeV1(Message):
    """A case now has a representative: decisions are addressed to this unit."""

    case_id: str
    case_ref: str
    representative_unit: str = unit_id("The representative's unit id.")
    appointed_on: date


class CaseTransferredV1(Message):
    """The child moved to another care centre; the case and its history moved along."""

    case_id: str
    case_ref: str
    from_centre: str = unit_id("The centre the child left.")
    to_centre: str = unit_id("The centre the child arrived at.")
    transferred_at: datetime


class ResidenceDecisionV1(Message):
    """UDI's decision on the asylum application, by DUF number (sent by UDI)."""

    duf_number: str = confidential("The child's DUF number.", pattern=DUF_PATTERN)
    outcome: Literal["granted", "refused"]
    decided_on: date
    udi_reference: str = Field(min_length=1, max_length=64)


class ResidenceDecisionV2(Message):
    """UDI's decision, or UNE's on appeal (relayed by UDI), by DUF number. A refusal is final
    when UNE decided it, or when UDI reports that no appeal came in time."""

    duf_number: str = confidential("The child's DUF number.", pattern=DUF_PATTERN)
    authority: Literal["udi", "une"]
    outcome: Literal["granted", "limited", "refused"] = Field(
        description="granted: residence; limited: a limited permit (begrenset tillatelse); "
        "refused: avslag."
    )
    final: bool = Field(description="No further appeal within the administration.")
    decided_on: date
    reference: str = Field(min_length=1, max_length=64)
    valid_until: date | None = Field(None, description="End of a limited permit, if any.")


class AppealLodgedV1(Message):
    """The representative appealed UDI's refusal to UNE (klage, through UDI)."""

    case_id: str
    lodged_on: date


class DepartedV1(Message):
    """The child left the country: the centre place ends (seed 000 L104-105)."""

    case_id: str
    departed_on: date
    how: Literal["voluntary_return", "forced_return", "left_unknown"]


class CaseResidenceDecidedV2(Message):
    """The case's residence decision: authority, outcome and whether it is final."""

    case_id: str
    case_ref: str
    authority: Literal["udi", "une"]
    outcome: Literal["granted", "limited", "refused"]
    final: bool
    decided_on: date


class CaseAppealedV1(Message):
    """The refusal of the case was appealed to UNE."""

    case_id: str
    case_ref: str
    lodged_on: date


class CaseDepartedV1(Message):
    """The child left the country; the stay ends."""

    case_id: str
    case_ref: str
    departed_on: date
    how: Literal["voluntary_return", "forced_return", "left_unknown"]


class CaseResidenceDecidedV1(Message):
    """Intake matched UDI's decision to the case; the residence status stays with the case."""

    case_id: str
    case_ref: str
    outcome: Literal["granted", "refused"]
    decided_on: date


class KoppSubmittedV1(Message):
    """The centre submitted a KOPP proposal to Bufetat. The KOPP itself travels only through
    the consent broker; this message carries its fingerprint."""

    case_id: str
    submitted_on: date
    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class FollowUpDecidedV1(Message):
    """Bufetat's follow-up decision (oppfølgingsvedtak), addressed to the representative with a
    copy to the centre and the right of appeal noted."""

    case_id: str
    decision_ref: str = Field(min_length=1, max_length=64)
    decided_on: date
    addressed_to: str = unit_id("The child's representative.")
    copy_to: list[str] = Field(min_length=1, description="Copies, at least the care centre.")
    appeal_right_noted: bool


class MapEstablishedV1(Message):
    """The centre established the MAP (goals and work plan) after the decision."""

    case_id: str
    established_on: date


class NeedChangedV1(Message):
    """The centre reports that the child's needs changed: a new decision falls due."""

    case_id: str
    reported_on: date


class TaskCompletedV1(Message):
    """The responsible unit reports a pathway task done."""

    case_id: str
    task: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    completed_on: date


class PathwayStartedV1(Message):
    """Start a further pathway for a case, e.g. an institution stay (milestone `admission`)."""

    case_id: str
    pathway: str = Field(pattern=r"^[a-z0-9-]+$")
    started_on: date


class PathwayStartedV2(Message):
    """Start a further pathway for a case, naming the units that hold its roles: the
    institution, the municipal child-welfare service that placed the child, and Bufetat's
    intake unit where the pathway gives it a task."""

    case_id: str
    pathway: str = Field(pattern=r"^[a-z0-9-]+$")
    started_on: date
    institution: str = unit_id("The institution where the child stays.")
    child_welfare_service: str = unit_id("The municipal child-welfare service (barnevern).")
    bufetat_intake_unit: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Bufetat's intake unit."
    )


class MilestoneReportedV1(Message):
    """A milestone of a running pathway was reached or planned, e.g. move_out_planned."""

    case_id: str
    pathway: str = Field(pattern=r"^[a-z0-9-]+$")
    milestone: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    on: date


class CaseSettledV1(Message):
    """The child was settled in a municipality: the centre stay closes."""

    case_id: str
    kommunenummer: str = Field(pattern=r"^[0-9]{4}$")
    settled_on: date
    measure: str = Field(min_length=1, max_length=64)


class CaseSettlementPlannedV1(Message):
    """A municipality accepted the child: the move-in is agreed for `settle_on`. The centre
    stay ends on that day (case.settled), not at the acceptance."""

    case_id: str
    kommunenummer: str = Field(pattern=r"^[0-9]{4}$")
    settle_on: date
    measure: str = Field(min_length=1, max_length=64)


class TaskStatusV1(Message):
    """A task's status changed: due_soon, due, overdue, done (with days late) or cancelled."""

    task_id: str
    case_id: str
    case_ref: str
    task: str
    title_nb: str
    title_en: str
    kind: Literal["task", "frame"]
    due: date
    status: Literal["due_soon", "due", "overdue", "done", "cancelled"]
    days_late: int = Field(0, ge=0, description="Calendar days past the due date.")
    responsible_unit: str = unit_id("Unit that must carry out the task.")
    pathway: str


class TaskStatusV2(Message):
    """A task's status changed, with its force, legal reference, role and copies, so every
    notice can say what the step is and who it is for. v1 stays for its readers."""

    task_id: str
    case_id: str
    case_ref: str
    task: str
    title_nb: str
    title_en: str
    kind: Literal["task", "frame"]
    due: date
    status: Literal["due_soon", "due", "overdue", "done", "cancelled"]
    days_late: int = Field(0, ge=0, description="Calendar days past the due date.")
    responsible_unit: str = unit_id("Unit that must carry out the task.")
    role: str
    copies: list[Copy] = Field(default_factory=list)
    strength: Strength
    legal_ref: str
    pathway: str


class CaseTasksV1(Message):
    """What one step of planning did to a case's tasks, in one message: the tasks and frames
    it scheduled and the statuses that changed. Replaces one deadline-scheduled.v2 and one
    task-status.v2 message per task (docs/decisions/0018); each item is exactly the message it
    replaces. A task scheduled here comes before any status of it in the same message."""

    case_id: str
    case_ref: str
    scheduled: list[DeadlineScheduledV2] = Field(
        default_factory=list, max_length=1000, description="Tasks and frames scheduled."
    )
    statuses: list[TaskStatusV2] = Field(
        default_factory=list, max_length=1000, description="Status changes, in order."
    )

    @model_validator(mode="after")
    def _one_case(self) -> CaseTasksV1:
        if not self.scheduled and not self.statuses:
            raise ValueError("scheduled and statuses are both empty")
        for item in (*self.scheduled, *self.statuses):
            if item.case_id != self.case_id or item.case_ref != self.case_ref:
                raise ValueError(f"task {item.task_id} belongs to another case")
        return self


class CaseClosedV1(Message):
    """The case closed at the centre: returned after a refusal, or settled."""

    case_id: str
    case_ref: str
    reason: Literal["returned", "settled"]
    closed_on: date


# -- municipality: capacity, settlement profiles, offers, refunds (issue 5) ----------------

KOMMUNENUMMER = r"^[0-9]{4}$"
CODE = r"^[a-z][a-z0-9_]{1,63}$"


class MeasureOffer(Message):
    """One measure a municipality offers, for an age band (whole years, both inclusive)."""

    measure: str = Field(pattern=CODE, description="Measure code from measures.json.")
    min_age: int = Field(0, ge=0, le=17)
    max_age: int = Field(17, ge=0, le=17)


class CapacityPublishedV2(Message):
    """A municipality's settlement decision for a year with measures per age band, the
    competences it offers for care needs, and its free places now. v1 stays valid."""

    kommunenummer: str = Field(pattern=KOMMUNENUMMER)
    year: int = Field(ge=2000, le=2100)
    children: int = Field(ge=0, le=10_000, description="Children the council decided to settle.")
    offers: list[MeasureOffer] = Field(min_length=1, max_length=20)
    competences: list[str] = Field(
        default_factory=list, max_length=20, description="Care-need codes it can meet."
    )
    free_places: int = Field(ge=0, le=10_000)


class SettlementProfileV1(Message):
    """Bufetat's settlement profile from the new KOPP: what matching needs, nothing more
    (K11). Sent by the Bufetat region."""

    case_id: str
    bufetat_region: str = Field(min_length=2, max_length=32, description="Region that settles.")
    recommended_measure: str = confidential("Measure the KOPP recommends.", pattern=CODE)
    birth_date: date = confidential("Birth date as known.")
    languages: list[str] = confidential("ISO 639 codes.", min_length=1, max_length=10)
    care_needs: list[str] = confidential("Care-need codes from the KOPP.", max_length=20)
    family_municipalities: list[str] = confidential(
        "Kommunenummer where relatives live.", max_length=20
    )
    network_municipalities: list[str] = confidential(
        "Kommunenummer of the child's network (friends, community).", max_length=20
    )
    siblings: list[str] = confidential(
        "Case ids of siblings who must be settled together.", max_length=12
    )
    kopp_on: date = Field(description="Date of the new KOPP the profile comes from.")

    @field_validator("family_municipalities", "network_municipalities")
    @classmethod
    def _kommunenummer(cls, value: list[str]) -> list[str]:
        if any(not re.match(KOMMUNENUMMER, v) for v in value):
            raise ValueError("every entry must be a 4-digit kommunenummer")
        return value


class OfferRequestedV1(Message):
    """Bufetat asks for a settlement offer to be sent to a municipality for a child."""

    offer_id: str = Field(min_length=8, max_length=64)
    case_id: str
    kommunenummer: str = Field(pattern=KOMMUNENUMMER)
    measure: str = Field(pattern=CODE)
    answer_by: datetime | None = Field(
        None, description="Answer deadline; default: the configured answer time from now."
    )


class SettlementOfferV1(Message):
    """The offer as the municipality receives it: ids, measure and answer deadline only. The
    child's data follows separately, as a delivery (no.ema.share.delivered.v2 whose
    request_id is share_request_id), and only when a consent covers settlement data for the
    municipality; without one nothing follows and no message says so (contracts/README.md
    §12)."""

    offer_id: str
    case_id: str
    case_ref: str
    kommunenummer: str
    measure: str
    answer_by: datetime
    share_request_id: str = Field(
        description="request_id of the delivery that carries the child's settlement data, "
        "if a consent releases it."
    )


class OfferAnsweredV1(Message):
    """The municipality accepts (date and measure) or declines (reason) an offer."""

    offer_id: str
    answer: Literal["accept", "decline"]
    settle_on: date | None = Field(None, description="Settlement date (accept).")
    measure: str | None = Field(None, pattern=CODE, description="Measure (accept).")
    reason: str | None = Field(None, min_length=3, max_length=500, description="Why (decline).")


class OfferOutcomeV1(Message):
    """The answer to the municipality: its acceptance settled the child, its decline was
    recorded, or its answer was refused (e.g. the child or the place was taken)."""

    offer_id: str
    case_id: str
    outcome: Literal["settled", "declined", "refused", "expired"]
    message_nb: str
    message_en: str


class OfferEscalatedV1(Message):
    """An offer got no answer by its deadline: Bufetat follows up."""

    offer_id: str
    case_id: str
    kommunenummer: str
    bufetat_region: str
    answer_by: datetime


class RefundClaimedV1(Message):
    """A municipality claims the refund of child-welfare expenses for a child and period."""

    claim_id: str = Field(min_length=8, max_length=64)
    case_id: str
    kommunenummer: str = Field(pattern=KOMMUNENUMMER)
    period_from: date
    period_to: date
    expenses_nok: Decimal = Field(ge=0, le=100_000_000, decimal_places=2)


class RefundDecidedV1(Message):
    """Bufetat's decision on a refund claim, sent to the claiming municipality."""

    claim_id: str
    case_id: str
    outcome: Literal["approved", "prorated", "refused"]
    refund_nok: Decimal
    days_claimed: int
    days_refundable: int
    reason: str


# -- after the centre: handover, the municipality's follow-up, referrals (issue 15) --------

HandoverPart = Literal["kopp_summary", "residence_status", "school_history", "health_summary"]
# The services a referral goes between (seed 004 L6467-6652); their sector is data
# (services/municipality/data/referrals.json).
ServiceCode = Literal["school", "health_station", "bup", "ppt", "refugee_service", "barnevern"]
REQUEST_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
REFERRAL_ID = r"^[a-z0-9][a-z0-9-]{7,39}$"


class HandoverRecipients(Message):
    """The receiving municipality's units for the handover: its child-welfare service, the
    child's school and health station."""

    barnevern: str = unit_id("The municipal child-welfare service (barnevern).")
    school: str = unit_id("The school the child starts at.")
    health_station: str = unit_id("The health station (helsestasjon/skolehelsetjeneste).")


class OfferAnsweredV2(Message):
    """The municipality accepts (move-in date, measure, and the units that receive the
    handover) or declines (reason) an offer. v1 stays: its handover goes to the
    municipality's own unit."""

    offer_id: str
    answer: Literal["accept", "decline"]
    settle_on: date | None = Field(None, description="Move-in date (accept).")
    measure: str | None = Field(None, pattern=CODE, description="Measure (accept).")
    handover_to: HandoverRecipients | None = Field(
        None, description="Who receives each part of the handover (accept)."
    )
    reason: str | None = Field(None, min_length=3, max_length=500, description="Why (decline).")


class HandoverNoticeV1(Message):
    """A part of the handover at settlement, addressed to the unit that sends it (the care
    centre) or receives it. The content travels only through the consent broker as share
    request `request_id`; the recipient acknowledges it by `acknowledge_by`."""

    case_id: str
    case_ref: str
    kommunenummer: str = Field(pattern=KOMMUNENUMMER)
    part: HandoverPart
    request_id: str = Field(pattern=REQUEST_ID)
    data_category: DataCategory
    purpose: str = Field(pattern=r"^[a-z_]{2,64}$")
    source_unit: str = unit_id("The unit the part comes from.")
    recipient_unit: str = unit_id("The unit the part goes to.")
    your_role: Literal["send", "receive"]
    settle_on: date = Field(description="The move-in day.")
    acknowledge_by: date = Field(description="The last day to acknowledge: before move-in.")


class HandoverAcknowledgedV1(Message):
    """The recipient of a handover part acknowledges that it received it."""

    case_id: str
    request_id: str = Field(pattern=REQUEST_ID)
    acknowledged_on: date


class RoleUnit(Message):
    role: str = Field(pattern=CODE)
    unit: str = unit_id("The unit that holds the role.")


class FollowUpReachedV1(Message):
    """A milestone of the municipality's follow-up, or of a referral, for planning: which
    pathway (and which instance of it, e.g. a referral id), the milestone, the day, and the
    units that hold its roles from now on. Ids, codes and dates only."""

    case_id: str
    pathway: str = Field(pattern=r"^[a-z0-9-]+$")
    instance: str | None = Field(None, pattern=REFERRAL_ID)
    milestone: str = Field(pattern=CODE)
    on: date
    roles: list[RoleUnit] = Field(default_factory=list, max_length=20)


class MeasureDecidedV1(Message):
    """The municipality's child-welfare service decided the child's measure, or changed it:
    the residence status and case access follow the child, not the measure."""

    case_id: str
    measure: str = Field(pattern=CODE, description="Measure code from measures.json.")
    provider_unit: str = unit_id("The unit that runs the measure (it gets case access).")
    decided_on: date
    decision_ref: str = Field(min_length=1, max_length=64)
    legal_basis: str = Field(min_length=2, max_length=120, description="E.g. bvl § 4-4 annet ledd.")


class CaseAccessV1(Message):
    """Access to a settled child's case for a unit (a measure's provider, the coordinator),
    with the residence status that follows the case: nothing is lost in a move."""

    case_id: str
    case_ref: str
    kommunenummer: str = Field(pattern=KOMMUNENUMMER)
    access: Literal["granted", "ends"]
    reason: Literal["municipality", "barnevern", "measure", "coordinator"]
    measure: str | None = None
    from_on: date
    until: date | None = Field(None, description="Last day of access (ends).")
    residence: Literal["granted", "limited", "refused"] | None = None
    residence_decided_on: date | None = None


class FollowUpReportedV1(Message):
    """A step of the follow-up after settlement: aftercare offered, accepted or declined, NAV
    took over the economy."""

    case_id: str
    event: Literal["aftercare_offered", "aftercare_accepted", "aftercare_declined", "nav_took_over"]
    on: date


class FollowUpClosedV1(Message):
    """The municipality's follow-up ended: the outcome and the day activity at the end, as
    the seed's annual report counts them (seed 003 L936-940)."""

    case_id: str
    closed_on: date
    outcome: Literal[
        "no_public_support", "adult_services_and_nav", "nav_only", "moved_away", "other"
    ]
    day_activity: Literal["school", "work", "school_and_work", "none"]


class ReferralSentV1(Message):
    """A service refers the child to another; the referral's content goes through the consent
    broker as share request `share_request_id`. Whether the child (or the one who consents
    for the child) agreed that feedback may come back is captured here."""

    referral_id: str = Field(pattern=REFERRAL_ID)
    case_id: str
    from_service: ServiceCode
    to_service: ServiceCode
    to_unit: str = unit_id("The unit referred to.")
    share_request_id: str = Field(pattern=REQUEST_ID)
    sent_on: date
    feedback_consent: Literal["given", "refused", "not_asked"]
    feedback_consent_id: str | None = Field(
        None, max_length=128, description="The consent registered with the broker (given)."
    )


class ReferralAcknowledgedV1(Message):
    """The service referred to acknowledges the referral."""

    referral_id: str = Field(pattern=REFERRAL_ID)
    acknowledged_on: date


class ReferralFeedbackV1(Message):
    """The service referred to gives feedback; its content goes through the consent broker
    as share request `share_request_id`, back to the referring unit."""

    referral_id: str = Field(pattern=REFERRAL_ID)
    share_request_id: str = Field(pattern=REQUEST_ID)
    given_on: date


class ReferralNoticeV1(Message):
    """A referral's progress, addressed to the unit referred to (sent) and to the referring
    unit (acknowledged, feedback given). Ids, codes and dates only."""

    referral_id: str
    case_id: str
    case_ref: str
    from_service: ServiceCode
    to_service: ServiceCode
    from_unit: str = unit_id("The referring unit.")
    to_unit: str = unit_id("The unit referred to.")
    status: Literal["sent", "acknowledged", "feedback_given"]
    on: date
    feedback_consent: Literal["given", "refused", "not_asked"]


class CoordinatorAssignedV1(Message):
    """The municipality names the service that coordinates a child's services (seed 004
    L1720-1726): it owns the responsibility-group meetings."""

    case_id: str
    coordinator_unit: str = unit_id("The coordinating unit.")
    service: ServiceCode
    assigned_on: date
