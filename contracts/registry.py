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
    # Unit kinds that may read it on the bus. Addressed types ("{unit}" in the subject): the
    # kinds a message may be addressed to; each unit reads only its own. Others: the kinds
    # that may read every message of the type, so it must carry ids, codes and dates only
    # (a test checks it holds no confidential field). Services read what they consume.
    readers: frozenset[UnitKind] = frozenset()
    # Why the services no longer send it and what replaced it (docs/decisions/0018). Only a
    # type no unit may read and no service reads any more is retired; its schema stays.
    retired: str = ""

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
WITNESS = frozenset({UnitKind.WITNESS})
# Units that take part in a child's case (a log witness does not).
ANY_UNIT = frozenset(UnitKind) - WITNESS
BUFETAT = frozenset({UnitKind.BUFETAT_REGION})
MUNICIPALITY = frozenset({UnitKind.MUNICIPALITY})
# Units that hold signed consent documents or witness oral consents.
CONSENT_SENDERS = frozenset(UnitKind) - {UnitKind.SERVICE, UnitKind.WITNESS}
# The kinds a case's messages may be addressed to (a witness sees tree heads only).
UNITS = frozenset(UnitKind) - {UnitKind.SERVICE, UnitKind.WITNESS}
# The municipality's services after settlement: school, health station, BUP (health), PPT
# (school), the refugee service (municipality) and barnevern (issue 15).
MUNICIPAL_SERVICES = frozenset(
    {UnitKind.MUNICIPALITY, UnitKind.BARNEVERN, UnitKind.SCHOOL, UnitKind.HEALTH}
)
CHILD_WELFARE = frozenset({UnitKind.BARNEVERN, UnitKind.MUNICIPALITY})
HANDOVER_UNITS = MUNICIPAL_SERVICES | {UnitKind.CARE_CENTRE}

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        "no.ema.intake.arrival.v1",
        "ema.intake.arrival",
        m.ArrivalV1,
        frozenset({UnitKind.CARE_CENTRE}),
        "A child arrived at a care centre.",
    ),
    Contract(
        "no.ema.case.opened.v1",
        "ema.case.opened",
        m.CaseOpenedV1,
        SERVICE,
        "Intake opened the child's case.",
        retired="2026-12-02: every reader takes no.ema.case.opened.v2",
    ),
    Contract(
        "no.ema.case.opened.v2",
        "ema.case.opened.v2",
        m.CaseOpenedV2,
        SERVICE,
        "Intake opened the child's case (with nationality for the steps that apply).",
    ),
    Contract(
        "no.ema.planning.deadline-scheduled.v1",
        "ema.planning.deadline.scheduled",
        m.DeadlineScheduledV1,
        SERVICE,
        "A task with a legal deadline was scheduled.",
        retired="2026-12-02: no.ema.planning.case-tasks.v1 carries a case's deadlines together",
    ),
    Contract(
        "no.ema.planning.deadline-scheduled.v2",
        "ema.planning.deadline.scheduled.v2",
        m.DeadlineScheduledV2,
        SERVICE,
        "A task or frame was scheduled, with its role, copies, force and legal reference.",
        retired="2026-12-02: no.ema.planning.case-tasks.v1 carries a case's deadlines together",
    ),
    Contract(
        "no.ema.notify.notification-recorded.v1",
        "ema.notify.recorded",
        m.NotificationRecordedV1,
        SERVICE,
        "A notification was recorded for a recipient.",
        retired="2026-12-02: no reader; notify's inbox and each unit's task notices tell it",
    ),
    Contract(
        "no.ema.share.request.v1",
        "ema.share.request",
        m.ShareRequestV1,
        ANY_UNIT,
        "Ask the consent broker to share data about a case.",
    ),
    Contract(
        "no.ema.share.receipt.v1",
        "ema.share.receipt.{unit}",
        m.ShareReceiptV1,
        SERVICE,
        "The broker's answer to the requesting unit.",
        UNITS,
    ),
    Contract(
        "no.ema.share.decided.v1",
        "ema.share.decided",
        m.ShareDecidedV1,
        SERVICE,
        "A share decision was durably recorded.",
    ),
    Contract(
        "no.ema.intake.representative-requested.v1",
        "ema.intake.representative.requested",
        m.RepresentativeRequestedV1,
        SERVICE,
        "Intake asks for a representative.",
        frozenset({UnitKind.STATSFORVALTER}),
    ),
    Contract(
        "no.ema.intake.representative-appointed.v1",
        "ema.intake.representative.appointed",
        m.RepresentativeAppointedV1,
        frozenset({UnitKind.STATSFORVALTER}),
        "The Statsforvalter appointed a representative.",
    ),
    Contract(
        "no.ema.intake.residence-decided.v1",
        "ema.intake.residence.decided",
        m.ResidenceDecisionV1,
        frozenset({UnitKind.UDI}),
        "UDI decided the asylum application.",
    ),
    Contract(
        "no.ema.intake.residence-decided.v2",
        "ema.intake.residence.decided.v2",
        m.ResidenceDecisionV2,
        frozenset({UnitKind.UDI}),
        "UDI's or UNE's decision: granted, limited or refused, final or not.",
    ),
    Contract(
        "no.ema.intake.appeal-lodged.v1",
        "ema.intake.appeal.lodged",
        m.AppealLodgedV1,
        frozenset({UnitKind.REPRESENTATIVE}),
        "The representative appealed to UNE.",
    ),
    Contract(
        "no.ema.intake.departed.v1",
        "ema.intake.departed",
        m.DepartedV1,
        frozenset({UnitKind.CARE_CENTRE, UnitKind.UDI}),
        "The child left the country.",
    ),
    Contract(
        "no.ema.case.representative.v1",
        "ema.case.representative",
        m.CaseRepresentativeV1,
        SERVICE,
        "A case got its representative.",
    ),
    Contract(
        "no.ema.case.transferred.v1",
        "ema.case.transferred",
        m.CaseTransferredV1,
        SERVICE,
        "The case moved with the child to another centre.",
    ),
    Contract(
        "no.ema.case.residence-decided.v1",
        "ema.case.residence",
        m.CaseResidenceDecidedV1,
        SERVICE,
        "The case's residence decision.",
        retired="2026-12-02: every reader takes no.ema.case.residence-decided.v2",
    ),
    Contract(
        "no.ema.case.residence-decided.v2",
        "ema.case.residence.v2",
        m.CaseResidenceDecidedV2,
        SERVICE,
        "The case's residence decision, final or not.",
    ),
    Contract(
        "no.ema.case.appealed.v1",
        "ema.case.appealed",
        m.CaseAppealedV1,
        SERVICE,
        "The case's refusal was appealed.",
    ),
    Contract(
        "no.ema.case.departed.v1",
        "ema.case.departed",
        m.CaseDepartedV1,
        SERVICE,
        "The child left the country.",
    ),
    Contract(
        "no.ema.case.settlement-planned.v1",
        "ema.case.settlement.planned",
        m.CaseSettlementPlannedV1,
        SERVICE,
        "A municipality accepted the child; the move-in date is agreed.",
    ),
    Contract(
        "no.ema.case.settled.v1",
        "ema.case.settled",
        m.CaseSettledV1,
        frozenset({UnitKind.BUFETAT_REGION, UnitKind.SERVICE}),
        "The child was settled in a municipality.",
    ),
    Contract(
        "no.ema.case.closed.v1",
        "ema.case.closed",
        m.CaseClosedV1,
        SERVICE,
        "The case closed at the centre.",
    ),
    Contract(
        "no.ema.planning.kopp-submitted.v1",
        "ema.planning.kopp.submitted",
        m.KoppSubmittedV1,
        frozenset({UnitKind.CARE_CENTRE}),
        "A KOPP proposal was sent.",
    ),
    Contract(
        "no.ema.planning.follow-up-decided.v1",
        "ema.planning.decision.made",
        m.FollowUpDecidedV1,
        frozenset({UnitKind.BUFETAT_REGION}),
        "Bufetat made a follow-up decision.",
    ),
    Contract(
        "no.ema.planning.map-established.v1",
        "ema.planning.map.established",
        m.MapEstablishedV1,
        frozenset({UnitKind.CARE_CENTRE}),
        "The MAP exists.",
    ),
    Contract(
        "no.ema.planning.need-changed.v1",
        "ema.planning.need.changed",
        m.NeedChangedV1,
        frozenset({UnitKind.CARE_CENTRE}),
        "The child's needs changed.",
    ),
    Contract(
        "no.ema.planning.task-completed.v1",
        "ema.planning.task.completed",
        m.TaskCompletedV1,
        ANY_UNIT,
        "A unit reports a task done.",
    ),
    Contract(
        "no.ema.planning.pathway-started.v1",
        "ema.planning.pathway.started",
        m.PathwayStartedV1,
        frozenset({UnitKind.BUFETAT_REGION, UnitKind.BARNEVERN, UnitKind.CARE_CENTRE}),
        "A further pathway starts.",
    ),
    Contract(
        "no.ema.planning.pathway-started.v2",
        "ema.planning.pathway.started.v2",
        m.PathwayStartedV2,
        frozenset({UnitKind.BUFETAT_REGION, UnitKind.BARNEVERN, UnitKind.CARE_CENTRE}),
        "A further pathway starts, with the units holding its roles.",
    ),
    Contract(
        "no.ema.planning.milestone-reported.v1",
        "ema.planning.milestone.reported",
        m.MilestoneReportedV1,
        frozenset(
            {
                UnitKind.BUFETAT_REGION,
                UnitKind.BARNEVERN,
                UnitKind.CARE_CENTRE,
                UnitKind.MUNICIPALITY,
            }
        ),
        "A pathway milestone was reached or planned.",
    ),
    Contract(
        "no.ema.planning.task-status.v1",
        "ema.planning.task.status",
        m.TaskStatusV1,
        SERVICE,
        "A task became due soon, due, overdue, done or cancelled.",
        retired="2026-12-02: no.ema.planning.case-tasks.v1 carries a case's statuses together",
    ),
    Contract(
        "no.ema.planning.task-status.v2",
        "ema.planning.task.status.v2",
        m.TaskStatusV2,
        SERVICE,
        "A task's status changed, with its role, copies, force and reference.",
        retired="2026-12-02: no.ema.planning.case-tasks.v1 carries a case's statuses together",
    ),
    Contract(
        "no.ema.planning.case-tasks.v1",
        "ema.planning.case.tasks",
        m.CaseTasksV1,
        SERVICE,
        "What one step of planning did to a case's tasks: scheduled, and statuses changed.",
    ),
    Contract(
        "no.ema.share.delivered.v1",
        "ema.share.delivered.{unit}",
        m.ShareDeliveredV1,
        SERVICE,
        "Released data, redacted and sealed to the recipient.",
        UNITS,
    ),
    Contract(
        "no.ema.share.request.v2",
        "ema.share.request.v2",
        m.ShareRequestV2,
        ANY_UNIT,
        "Ask the consent broker to share data; the payload sealed with its context.",
    ),
    Contract(
        "no.ema.share.delivered.v2",
        "ema.share.delivered.v2.{unit}",
        m.ShareDeliveredV2,
        SERVICE,
        "Released data, sealed to the recipient with its context.",
        UNITS,
    ),
    Contract(
        "no.ema.intake.arrival-registered.v1",
        "ema.intake.registered.{unit}",
        m.ArrivalRegisteredV1,
        SERVICE,
        "The case an arrival opened, for its centre.",
        frozenset({UnitKind.CARE_CENTRE}),
    ),
    Contract(
        "no.ema.notify.task-notice.v1",
        "ema.notify.tasks.{unit}",
        m.TaskNoticeV1,
        SERVICE,
        "A task of the unit's: scheduled, due soon, due, overdue, done.",
        UNITS,
    ),
    Contract(
        "no.ema.notify.task-notices.v1",
        "ema.notify.tasks.{unit}",
        m.TaskNoticesV1,
        SERVICE,
        "A unit's task notices from one step of planning in one case, together (for units "
        "registered with grouped notices).",
        UNITS,
    ),
    Contract(
        "no.ema.share.emergency-released.v1",
        "ema.share.emergency.released",
        m.EmergencyReleasedV1,
        SERVICE,
        "A break-the-glass release: tell the representative.",
    ),
    Contract(
        "no.ema.share.emergency-overdue.v1",
        "ema.share.emergency.overdue",
        m.EmergencyReviewOverdueV1,
        SERVICE,
        "A break-the-glass release not reviewed in time: tell the privacy officer.",
    ),
    Contract(
        "no.ema.log.checkpoint.v1",
        "ema.log.checkpoint",
        m.LogCheckpointV1,
        SERVICE,
        "A signed tree head of the decision log, with its consistency proof.",
        frozenset({UnitKind.WITNESS}),
    ),
    Contract(
        "no.ema.log.cosigned.v1",
        "ema.log.cosigned",
        m.LogCosignedV1,
        WITNESS,
        "A witness cosigned a checkpoint of the decision log.",
    ),
    Contract(
        "no.ema.log.witness-alarm.v1",
        "ema.log.alarm",
        m.LogWitnessAlarmV1,
        WITNESS,
        "A witness refused a checkpoint: inconsistent or not signed by a known log key.",
    ),
    Contract(
        "no.ema.consent.granted.v1",
        "ema.consent.granted",
        m.ConsentGrantedV1,
        CONSENT_SENDERS,
        "Register or change a consent for a case.",
    ),
    Contract(
        "no.ema.consent.withdrawn.v1",
        "ema.consent.withdrawn",
        m.ConsentWithdrawnV1,
        CONSENT_SENDERS,
        "Withdraw a consent.",
    ),
    Contract(
        "no.ema.consent.recorded.v1",
        "ema.consent.recorded.{unit}",
        m.ConsentRecordedV1,
        SERVICE,
        "The broker recorded a consent change (acknowledgement).",
        UNITS,
    ),
    Contract(
        "no.ema.municipality.capacity.v1",
        "ema.municipality.capacity",
        m.CapacityPublishedV1,
        frozenset({UnitKind.MUNICIPALITY, UnitKind.SERVICE}),
        "A municipality published its settlement capacity.",
    ),
    Contract(
        "no.ema.municipality.capacity.v2",
        "ema.municipality.capacity.v2",
        m.CapacityPublishedV2,
        frozenset({UnitKind.MUNICIPALITY, UnitKind.SERVICE}),
        "Capacity with measures per age band and competences.",
    ),
    Contract(
        "no.ema.municipality.settlement-profile.v1",
        "ema.municipality.profile",
        m.SettlementProfileV1,
        BUFETAT,
        "Bufetat's settlement profile of a child.",
    ),
    Contract(
        "no.ema.municipality.offer-requested.v1",
        "ema.municipality.offer.requested",
        m.OfferRequestedV1,
        BUFETAT,
        "Bufetat asks to offer a child to a municipality.",
    ),
    Contract(
        "no.ema.municipality.offer.v1",
        "ema.municipality.offers.{unit}",
        m.SettlementOfferV1,
        SERVICE,
        "A settlement offer to a municipality.",
        MUNICIPALITY,
    ),
    Contract(
        "no.ema.municipality.offer-answered.v1",
        "ema.municipality.offer.answered",
        m.OfferAnsweredV1,
        MUNICIPALITY,
        "A municipality accepts or declines an offer.",
    ),
    Contract(
        "no.ema.municipality.offer-outcome.v1",
        "ema.municipality.outcome.{unit}",
        m.OfferOutcomeV1,
        SERVICE,
        "The outcome of a municipality's answer.",
        MUNICIPALITY,
    ),
    Contract(
        "no.ema.municipality.offer-escalated.v1",
        "ema.municipality.offer.escalated",
        m.OfferEscalatedV1,
        SERVICE,
        "An offer got no answer in time.",
        BUFETAT,
    ),
    Contract(
        "no.ema.municipality.refund-claimed.v1",
        "ema.municipality.refund.claimed",
        m.RefundClaimedV1,
        MUNICIPALITY,
        "A municipality claims a refund.",
    ),
    Contract(
        "no.ema.municipality.refund-decided.v1",
        "ema.municipality.refunds.{unit}",
        m.RefundDecidedV1,
        SERVICE,
        "The decision on a refund claim.",
        MUNICIPALITY,
    ),
    Contract(
        "no.ema.municipality.offer-answered.v2",
        "ema.municipality.offer.answered.v2",
        m.OfferAnsweredV2,
        MUNICIPALITY,
        "A municipality accepts (naming the units that receive the handover) or declines.",
    ),
    Contract(
        "no.ema.municipality.handover-notice.v1",
        "ema.municipality.handover.{unit}",
        m.HandoverNoticeV1,
        SERVICE,
        "A part of the handover at settlement, to the unit that sends or receives it.",
        HANDOVER_UNITS,
    ),
    Contract(
        "no.ema.municipality.handover-acknowledged.v1",
        "ema.municipality.handover.acknowledged",
        m.HandoverAcknowledgedV1,
        MUNICIPAL_SERVICES,
        "The recipient acknowledges a handover part.",
    ),
    Contract(
        "no.ema.municipality.follow-up-reached.v1",
        "ema.municipality.followup.reached",
        m.FollowUpReachedV1,
        SERVICE,
        "A milestone of the follow-up after settlement or of a referral, for planning.",
    ),
    Contract(
        "no.ema.municipality.measure-decided.v1",
        "ema.municipality.measure.decided",
        m.MeasureDecidedV1,
        CHILD_WELFARE,
        "Barnevern decided or changed the settled child's measure.",
    ),
    Contract(
        "no.ema.municipality.case-access.v1",
        "ema.municipality.access.{unit}",
        m.CaseAccessV1,
        SERVICE,
        "A unit gets (or loses) access to a settled child's case, with its residence status.",
        MUNICIPAL_SERVICES,
    ),
    Contract(
        "no.ema.municipality.follow-up-reported.v1",
        "ema.municipality.followup.reported",
        m.FollowUpReportedV1,
        CHILD_WELFARE,
        "Aftercare offered, accepted or declined; NAV took over.",
    ),
    Contract(
        "no.ema.municipality.follow-up-closed.v1",
        "ema.municipality.followup.closed",
        m.FollowUpClosedV1,
        CHILD_WELFARE,
        "The follow-up ended, with its outcome and day activity.",
    ),
    Contract(
        "no.ema.municipality.referral-sent.v1",
        "ema.municipality.referral.sent",
        m.ReferralSentV1,
        MUNICIPAL_SERVICES,
        "A service refers the child to another.",
    ),
    Contract(
        "no.ema.municipality.referral-acknowledged.v1",
        "ema.municipality.referral.acknowledged",
        m.ReferralAcknowledgedV1,
        MUNICIPAL_SERVICES,
        "The service referred to acknowledges the referral.",
    ),
    Contract(
        "no.ema.municipality.referral-feedback.v1",
        "ema.municipality.referral.feedback",
        m.ReferralFeedbackV1,
        MUNICIPAL_SERVICES,
        "The service referred to gives feedback (its content through the broker).",
    ),
    Contract(
        "no.ema.municipality.referral-notice.v1",
        "ema.municipality.referrals.{unit}",
        m.ReferralNoticeV1,
        SERVICE,
        "A referral's progress, to the unit referred to and the referring unit.",
        MUNICIPAL_SERVICES,
    ),
    Contract(
        "no.ema.municipality.coordinator-assigned.v1",
        "ema.municipality.coordinator.assigned",
        m.CoordinatorAssignedV1,
        MUNICIPALITY,
        "The municipality names the child's coordinating service.",
    ),
)

STREAMS: tuple[Stream, ...] = (
    Stream("INTAKE", ("ema.intake.>",), "Arrivals from care centres."),
    Stream("CASE", ("ema.case.>",), "Case life-cycle events."),
    Stream("PLANNING", ("ema.planning.>",), "Deadlines and tasks."),
    Stream("NOTIFY", ("ema.notify.>",), "Notification records."),
    Stream("SHARE", ("ema.share.>",), "Share requests, decisions, receipts and deliveries."),
    Stream("CONSENT", ("ema.consent.>",), "Consents granted, changed, withdrawn; their acks."),
    Stream("LOG", ("ema.log.>",), "Decision log checkpoints, witnesses' cosignatures, alarms."),
    Stream("MUNICIPALITY", ("ema.municipality.>",), "Settlement capacity, offers, refunds."),
    Stream("DLQ", ("ema.dlq.>",), "Dead letters: rejected or failing messages, with reasons."),
)

_BY_TYPE = {c.type: c for c in CONTRACTS}

# Request-reply subjects (core NATS, outside every stream): a witness asks the broker for a
# consistency proof; an auditor asks a witness for a checkpoint it cosigned.
LOG_CONSISTENCY = "ema.rpc.consent.consistency"
WITNESS_QUERY = "ema.rpc.witness.{unit}"


def unit_consumer(unit_id: str) -> str:
    """The durable consumer the operator provisions for a unit on each stream it reads: part of
    the contract, since partners bind it by name (contracts/README.md §5)."""
    return f"unit-{unit_id}"


def contract_for_type(type_: str) -> Contract | None:
    return _BY_TYPE.get(type_)


def stream_for_subject(subject: str) -> Stream:
    for stream in STREAMS:
        for pattern in stream.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return stream
    raise LookupError(f"no stream captures subject {subject!r}")
