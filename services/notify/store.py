"""Notify's own tables: recipients and what they hear, inboxes, deliveries and digests."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Recipient(Base):
    """A role at a unit, with the channels it is reached on and the events it hears."""

    __tablename__ = "notify_recipient"
    __table_args__ = (UniqueConstraint("unit", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str] = mapped_column(String(2), default="nb")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    digest: Mapped[bool] = mapped_column(default=True)


class Notification(Base):
    """A message in a recipient's inbox (unit and role)."""

    __tablename__ = "notify_notification"
    __table_args__ = (UniqueConstraint("unit", "role", "dedupe_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(64))
    case_ref: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(128))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    source_event_id: Mapped[str] = mapped_column(String(128))
    text_nb: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="inbox")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class Delivery(Base):
    """One notification on one outside channel (email or webhook), sent once."""

    __tablename__ = "notify_delivery"
    __table_args__ = (UniqueConstraint("notification_id", "channel"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(36), index=True)
    recipient_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Digest(Base):
    """The daily digest of one recipient for one day: made once."""

    __tablename__ = "notify_digest"
    __table_args__ = (UniqueConstraint("recipient_id", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    notification_id: Mapped[str] = mapped_column(String(36))
