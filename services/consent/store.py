"""The consent service's own tables: cases it knows and the decision log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, MetaData, String
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


class DecisionRecord(Base):
    """One share decision. Holds hashes and minimal metadata, never payload values."""

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
    reasons: Mapped[list[str]] = mapped_column(JSON)
    policy_input: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_revision: Mapped[str] = mapped_column(String(64))
    payload_hash: Mapped[str] = mapped_column(String(80))
    prev_hash: Mapped[str] = mapped_column(String(80))
    record_hash: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
