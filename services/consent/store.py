"""The consent service's own tables: cases it knows, consents, decisions, and the Merkle log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class KnownCase(Base):
    __tablename__ = "consent_case"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    birth_date: Mapped[date] = mapped_column(Date)
    birth_date_estimated: Mapped[bool] = mapped_column(Boolean)
    care_centre: Mapped[str] = mapped_column(String(64))
    case_ref: Mapped[str | None] = mapped_column(String(16), nullable=True)
    representative_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Every care centre the child has stayed at (break-the-glass needs a linked source).
    linked_units: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class ConsentRow(Base):
    """A consent as the policy sees it (no names); the latest version counts."""

    __tablename__ = "consent_consent"
    consent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # active | withdrawn
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    registered_by: Mapped[str] = mapped_column(String(64))
    log_index: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DecisionRecord(Base):
    """One share decision, for queries. Its log entry is the tamper-evident copy; the policy
    input here may be erased with the case while the log stays."""

    __tablename__ = "consent_decision"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    source_unit: Mapped[str] = mapped_column(String(64))
    recipient_unit: Mapped[str] = mapped_column(String(64))
    data_category: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    legal_basis: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    obligations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    reason_nb: Mapped[str] = mapped_column(Text)
    policy_input: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_revision: Mapped[str] = mapped_column(String(64))
    data_version: Mapped[str] = mapped_column(String(64))
    log_index: Mapped[int] = mapped_column(Integer, unique=True)
    record_hash: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LogEntry(Base):
    """A leaf of the Merkle log: canonical JSON of a record (hashes and metadata only)."""

    __tablename__ = "consent_log"
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[str] = mapped_column(String(128), index=True)
    body: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(64))


class TreeHead(Base):
    """A signed tree head (Ed25519 with the service key) after each append."""

    __tablename__ = "consent_tree_head"
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(128))
    signature: Mapped[str] = mapped_column(String(128))


class LogState(Base):
    """One row: the tree's right edge, so an append needs no old leaves. Locked per append."""

    __tablename__ = "consent_log_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    frontier: Mapped[list[list[Any]]] = mapped_column(JSON)


class WitnessCosignature(Base):
    """The latest checkpoint each witness cosigned, as it sent it (shown on the audit pages;
    verification asks the witnesses themselves)."""

    __tablename__ = "consent_cosignature"
    witness: Mapped[str] = mapped_column(String(200), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WitnessAlarm(Base):
    """A witness refused one of the log's checkpoints."""

    __tablename__ = "consent_witness_alarm"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    witness: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    held_size: Mapped[int] = mapped_column(Integer)
    problem: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GlassRelease(Base):
    """A break-the-glass request: its justification sealed to the broker's key (the decision
    record holds its hash), the review deadline of a release, and when it was escalated."""

    __tablename__ = "consent_glass"
    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    source_unit: Mapped[str] = mapped_column(String(64), index=True)
    recipient_unit: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    justification: Mapped[dict[str, Any]] = mapped_column(JSON)
    justification_hash: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    review_due: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
