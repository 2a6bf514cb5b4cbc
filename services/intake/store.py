"""Intake's own tables: the child's case as registered on arrival."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, MetaData, String
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
