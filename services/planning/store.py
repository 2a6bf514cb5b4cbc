"""Planning's own tables: the tasks of each case with their deadlines."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Task(Base):
    __tablename__ = "planning_task"
    __table_args__ = (UniqueConstraint("case_id", "task"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    case_ref: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(64))
    due: Mapped[date] = mapped_column(Date, index=True)
    responsible_unit: Mapped[str] = mapped_column(String(64))
    strength: Mapped[str] = mapped_column(String(16))
    legal_ref: Mapped[str] = mapped_column(String(200))
    pathway: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
