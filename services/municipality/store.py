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
    text,
)
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
        ),  # fmt: skip
        Index(
            "one_pending_offer_per_child_and_municipality",
            "case_id",
            "kommunenummer",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),  # fmt: skip
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
