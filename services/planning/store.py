"""Planning's own tables: cases as planning sees them, milestones, tasks and the timeline."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Index, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class PlanningCase(Base):
    __tablename__ = "planning_case"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(16))
    care_centre: Mapped[str] = mapped_column(String(64), index=True)
    representative_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arrival: Mapped[date] = mapped_column(Date)
    # For steps on a birthday (the municipality's follow-up to adulthood): from case.opened.
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    birth_date_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Closed at the centre (settled or returned); a follow-up pathway may run on after it.
    closed: Mapped[str | None] = mapped_column(String(16), nullable=True)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Milestone(Base):
    __tablename__ = "planning_milestone"
    __table_args__ = (UniqueConstraint("case_id", "pathway", "name", "on"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    pathway: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Task(Base):
    __tablename__ = "planning_task"
    __table_args__ = (
        UniqueConstraint("case_id", "pathway", "task", "seq"),
        Index("ix_planning_task_next_check", "next_check"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    case_ref: Mapped[str] = mapped_column(String(16))
    pathway: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(8), default="task")
    title_nb: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    due: Mapped[date] = mapped_column(Date)
    responsible_unit: Mapped[str] = mapped_column(String(64), index=True)
    # The role at the responsible unit that carries it out, and others told (notify).
    role: Mapped[str] = mapped_column(String(64), default="contact_person")
    copies: Mapped[list[dict]] = mapped_column(JSON, default=list)
    strength: Mapped[str] = mapped_column(String(16))
    legal_ref: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    next_check: Mapped[date | None] = mapped_column(Date, nullable=True)
    done_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    days_late: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TimelineEntry(Base):
    __tablename__ = "planning_timeline"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PathwayUnit(Base):
    """The unit that holds a role in a case's further pathway (institution, municipal
    child-welfare service, Bufetat's intake unit, the municipality's receiving units, a
    referral's two services, the coordinator), as named when it started or since. `pathway`
    is the pathway's key: its id, or `id#instance` for one of several (a referral)."""

    __tablename__ = "planning_pathway_unit"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pathway: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64))
