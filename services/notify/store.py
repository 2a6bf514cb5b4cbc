"""Notify's own tables: each recipient's inbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Notification(Base):
    __tablename__ = "notify_notification"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(64))
    case_ref: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(128))
    source_event_id: Mapped[str] = mapped_column(String(128))
    text_nb: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="inbox")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
