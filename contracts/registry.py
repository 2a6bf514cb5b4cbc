"""The subject map: every message type, its subject, its stream and who may send it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from contracts import messages as m
from contracts.messages import UnitKind


@dataclass(frozen=True)
class Contract:
    type: str
    subject: str  # "{unit}" is replaced by the addressed unit's id
    model: type[BaseModel]
    senders: frozenset[UnitKind]
    summary: str

    def subject_for(self, unit: str | None = None) -> str:
        if "{unit}" in self.subject:
            if not unit:
                raise ValueError(f"{self.type} is addressed to a unit: give its id")
            return self.subject.replace("{unit}", unit)
        return self.subject

    def matches(self, subject: str) -> bool:
        if "{unit}" not in self.subject:
            return subject == self.subject
        prefix = self.subject.split("{unit}")[0]
        return subject.startswith(prefix) and "." not in subject[len(prefix) :]


@dataclass(frozen=True)
class Stream:
    name: str
    subjects: tuple[str, ...]
    summary: str


SERVICE = frozenset({UnitKind.SERVICE})
ANY_UNIT = frozenset(UnitKind)
# Units that hold signed consent documents or witness oral consents.
CONSENT_SENDERS = frozenset(UnitKind) - {UnitKind.SERVICE}

CONTRACTS: tuple[Contract, ...] = (
    Contract("no.ema.intake.arrival.v1", "ema.intake.arrival", m.ArrivalV1,
             frozenset({UnitKind.CARE_CENTRE}), "A child arrived at a care centre."),
    Contract("no.ema.case.opened.v1", "ema.case.opened", m.CaseOpenedV1, SERVICE,
             "Intake opened the child's case."),
    Contract("no.ema.planning.deadline-scheduled.v1", "ema.planning.deadline.scheduled",
             m.DeadlineScheduledV1, SERVICE, "A task with a legal deadline was scheduled."),
    Contract("no.ema.notify.notification-recorded.v1", "ema.notify.recorded",
             m.NotificationRecordedV1, SERVICE, "A notification was recorded for a recipient."),
    Contract("no.ema.share.request.v1", "ema.share.request", m.ShareRequestV1, ANY_UNIT,
             "Ask the consent broker to share data about a case."),
    Contract("no.ema.share.receipt.v1", "ema.share.receipt.{unit}", m.ShareReceiptV1, SERVICE,
             "The broker's answer to the requesting unit."),
    Contract("no.ema.share.decided.v1", "ema.share.decided", m.ShareDecidedV1, SERVICE,
             "A share decision was durably recorded."),
    Contract("no.ema.share.delivered.v1", "ema.share.delivered.{unit}", m.ShareDeliveredV1,
             SERVICE, "Released data, redacted and sealed to the recipient."),
    Contract("no.ema.consent.granted.v1", "ema.consent.granted", m.ConsentGrantedV1,
             CONSENT_SENDERS, "Register or change a consent for a case."),
    Contract("no.ema.consent.withdrawn.v1", "ema.consent.withdrawn", m.ConsentWithdrawnV1,
             CONSENT_SENDERS, "Withdraw a consent."),
    Contract("no.ema.consent.recorded.v1", "ema.consent.recorded.{unit}", m.ConsentRecordedV1,
             SERVICE, "The broker recorded a consent change (acknowledgement)."),
    Contract("no.ema.municipality.capacity.v1", "ema.municipality.capacity",
             m.CapacityPublishedV1, frozenset({UnitKind.MUNICIPALITY, UnitKind.SERVICE}),
             "A municipality published its settlement capacity."),
)  # fmt: skip

STREAMS: tuple[Stream, ...] = (
    Stream("INTAKE", ("ema.intake.>",), "Arrivals from care centres."),
    Stream("CASE", ("ema.case.>",), "Case life-cycle events."),
    Stream("PLANNING", ("ema.planning.>",), "Deadlines and tasks."),
    Stream("NOTIFY", ("ema.notify.>",), "Notification records."),
    Stream("SHARE", ("ema.share.>",), "Share requests, decisions, receipts and deliveries."),
    Stream("CONSENT", ("ema.consent.>",), "Consents granted, changed, withdrawn; their acks."),
    Stream("MUNICIPALITY", ("ema.municipality.>",), "Settlement capacity, offers, refunds."),
    Stream("DLQ", ("ema.dlq.>",), "Dead letters: rejected or failing messages, with reasons."),
)

_BY_TYPE = {c.type: c for c in CONTRACTS}


def contract_for_type(type_: str) -> Contract | None:
    return _BY_TYPE.get(type_)


def stream_for_subject(subject: str) -> Stream:
    for stream in STREAMS:
        for pattern in stream.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return stream
    raise LookupError(f"no stream captures subject {subject!r}")
