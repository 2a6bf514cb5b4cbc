"""Intake's own tables: the child's case as registered, its links and its history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Case(Base):
    __tablename__ = "intake_case"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(16), unique=True)
    duf_number: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    birth_date_estimated: Mapped[bool] = mapped_column(Boolean)
    sex: Mapped[str] = mapped_column(String(16))
    nationality: Mapped[str] = mapped_column(String(3))
    languages: Mapped[list[str]] = mapped_column(JSON)
    care_centre: Mapped[str] = mapped_column(String(64), index=True)
    arrived_at: Mapped[datetime] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    representative_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    residence: Mapped[str | None] = mapped_column(String(16), nullable=True)
    residence_decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    closed: Mapped[str | None] = mapped_column(String(16), nullable=True)


class SiblingLink(Base):
    """Siblings by DUF number; the sibling's case may be opened before or after this one."""

    __tablename__ = "intake_sibling"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sibling_duf: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)
    relation: Mapped[str] = mapped_column(String(16))


class CaseHistory(Base):
    """What happened to a case at intake: opened, transferred, representative, residence."""

    __tablename__ = "intake_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
