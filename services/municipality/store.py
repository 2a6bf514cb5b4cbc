"""The municipality service's own tables: capacity, children waiting for settlement, offers,
placements (the case opened in the municipality) and refund claims.

"Nothing given twice" is held by the database, not only by the handlers: one accepted offer
and one placement per child (unique), free places never below zero (check).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Capacity(Base):
    __tablename__ = "municipality_capacity"
    __table_args__ = (CheckConstraint("free_places >= 0", name="free_places_not_negative"),)
    kommunenummer: Mapped[str] = mapped_column(String(4), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    bufetat_region: Mapped[str] = mapped_column(String(16), index=True)
    children: Mapped[int] = mapped_column(Integer)
    measures: Mapped[list[str]] = mapped_column(JSON)
    # Measures per age band, [{"measure", "min_age", "max_age"}]; v1 publishes ages 0-17.
    offers: Mapped[list[dict]] = mapped_column(JSON, default=list)
    competences: Mapped[list[str]] = mapped_column(JSON, default=list)
    free_places: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Child(Base):
    """A child on the way to settlement: residence from the case events, the profile from
    Bufetat. Ready when residence is granted, the profile is in and the status is open."""

    __tablename__ = "settlement_child"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_ref: Mapped[str | None] = mapped_column(String(32))
    residence: Mapped[str | None] = mapped_column(String(16))
    residence_decided_on: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    bufetat_region: Mapped[str | None] = mapped_column(String(32), index=True)
    profile_from: Mapped[str | None] = mapped_column(String(64))
    measure: Mapped[str | None] = mapped_column(String(64))
    birth_date: Mapped[date | None] = mapped_column(Date)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    care_needs: Mapped[list[str]] = mapped_column(JSON, default=list)
    family: Mapped[list[str]] = mapped_column(JSON, default=list)
    network: Mapped[list[str]] = mapped_column(JSON, default=list)
    siblings: Mapped[list[str]] = mapped_column(JSON, default=list)
    kopp_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|settled|closed
    kommunenummer: Mapped[str | None] = mapped_column(String(4))
    settled_on: Mapped[date | None] = mapped_column(Date)
    # From case.opened: the centre that sends its parts of the handover, and whether the
    # birth date is estimated (the follow-up's steps on birthdays say so).
    care_centre: Mapped[str | None] = mapped_column(String(64))
    birth_date_estimated: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def ready(self) -> bool:
        return self.status == "open" and self.residence == "granted" and self.measure is not None


class Offer(Base):
    __tablename__ = "settlement_offer"
    __table_args__ = (
        # Two municipalities can never both hold an accepted offer for one child.
        Index(
            "one_accepted_offer_per_child",
            "case_id",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
        Index(
            "one_pending_offer_per_child_and_municipality",
            "case_id",
            "kommunenummer",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )
    offer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    kommunenummer: Mapped[str] = mapped_column(String(4), index=True)
    bufetat_region: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(64))
    measure: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    answer_by: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    year: Mapped[int] = mapped_column(Integer)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    share_request_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Placement(Base):
    """The child's case as opened in the municipality: one per child, one per offer."""

    __tablename__ = "settlement_placement"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    offer_id: Mapped[str] = mapped_column(String(64), unique=True)
    kommunenummer: Mapped[str] = mapped_column(String(4), index=True)
    year: Mapped[int] = mapped_column(Integer)
    measure: Mapped[str] = mapped_column(String(64))
    settled_on: Mapped[date] = mapped_column(Date)
    within_deadline: Mapped[bool] = mapped_column(Boolean)
    days_waited: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RefundClaim(Base):
    __tablename__ = "refund_claim"
    claim_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    kommunenummer: Mapped[str] = mapped_column(String(4), index=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    expenses_nok: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    outcome: Mapped[str] = mapped_column(String(16))
    refund_nok: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    days_claimed: Mapped[int] = mapped_column(Integer)
    days_refundable: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# -- after the centre: handover, follow-up, referrals (issue 15) --------------------------------


class HandoverPart(Base):
    """One part of the handover at settlement: a share request through the broker, released
    or withheld on its own basis, then acknowledged by its recipient."""

    __tablename__ = "handover_part"
    __table_args__ = (UniqueConstraint("case_id", "part"),)
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    part: Mapped[str] = mapped_column(String(32))
    data_category: Mapped[str] = mapped_column(String(16))
    source_unit: Mapped[str] = mapped_column(String(64))
    recipient_unit: Mapped[str] = mapped_column(String(64))
    acknowledge_by: Mapped[date] = mapped_column(Date)
    # requested -> released | withheld; released -> acknowledged
    status: Mapped[str] = mapped_column(String(16), default="requested")
    legal_basis: Mapped[str | None] = mapped_column(String(200))
    acknowledged_on: Mapped[date | None] = mapped_column(Date)


class FollowUp(Base):
    """The child's case in the municipality, opened from the handover at the acceptance: the
    residence status and the measure live here, so a change of measure loses neither."""

    __tablename__ = "followup_case"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(32))
    kommunenummer: Mapped[str] = mapped_column(String(4), index=True)
    municipality_unit: Mapped[str] = mapped_column(String(64))
    barnevern_unit: Mapped[str] = mapped_column(String(64))
    settle_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned|active|closed
    residence: Mapped[str | None] = mapped_column(String(16))
    residence_decided_on: Mapped[date | None] = mapped_column(Date)
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_date_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    measure: Mapped[str] = mapped_column(String(64))
    measure_decided_on: Mapped[date | None] = mapped_column(Date)
    provider_unit: Mapped[str | None] = mapped_column(String(64))
    coordination_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    coordinator_unit: Mapped[str | None] = mapped_column(String(64))
    coordinator_service: Mapped[str | None] = mapped_column(String(32))
    aftercare: Mapped[str | None] = mapped_column(String(16))  # offered|accepted|declined
    nav_on: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(String(32))
    day_activity: Mapped[str | None] = mapped_column(String(32))


class MeasureRecord(Base):
    """Every measure decision for a settled child, in order: a move is a new row."""

    __tablename__ = "followup_measure"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    measure: Mapped[str] = mapped_column(String(64))
    provider_unit: Mapped[str] = mapped_column(String(64))
    decided_on: Mapped[date] = mapped_column(Date)
    decision_ref: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(String(120))


class Access(Base):
    """Who may see a settled child's case, from when and until when (a measure's provider,
    the coordinator, the municipality and its barnevern)."""

    __tablename__ = "followup_access"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(16), primary_key=True)
    from_on: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)


class ChildService(Base):
    """A service the settled child receives (from the handover's recipients and the
    referrals acknowledged): two or more call for a coordinating service."""

    __tablename__ = "followup_service"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[date] = mapped_column(Date)


class Referral(Base):
    """A referral between two services: sent, acknowledged, feedback given (released or
    withheld by the broker), with the consent to feedback captured when it was sent."""

    __tablename__ = "referral"
    referral_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    from_service: Mapped[str] = mapped_column(String(32))
    from_unit: Mapped[str] = mapped_column(String(64))
    to_service: Mapped[str] = mapped_column(String(32))
    to_unit: Mapped[str] = mapped_column(String(64))
    pathway: Mapped[str] = mapped_column(String(64))
    share_request_id: Mapped[str] = mapped_column(String(128), index=True)
    sent_on: Mapped[date] = mapped_column(Date)
    feedback_consent: Mapped[str] = mapped_column(String(16))
    feedback_consent_id: Mapped[str | None] = mapped_column(String(128))
    content_outcome: Mapped[str | None] = mapped_column(String(16))  # released|withheld
    status: Mapped[str] = mapped_column(String(16), default="sent")
    acknowledged_on: Mapped[date | None] = mapped_column(Date)
    feedback_request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    feedback_on: Mapped[date | None] = mapped_column(Date)
    feedback_outcome: Mapped[str | None] = mapped_column(String(16))  # released|withheld


class ShareOutcome(Base):
    """The broker's decision on a handover or referral share request that arrived before the
    message naming it (the two travel on different streams)."""

    __tablename__ = "followup_share_outcome"
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    legal_basis: Mapped[str | None] = mapped_column(String(200))


async def child_row(session: AsyncSession, case_id: str) -> Child:
    """The child's row, made (open, nothing known yet) at the first event about the case."""
    child = await session.get(Child, case_id)
    if child is None:
        child = Child(
            case_id=case_id,
            status="open",
            languages=[],
            care_needs=[],
            family=[],
            network=[],
            siblings=[],
        )
        session.add(child)
    return child
