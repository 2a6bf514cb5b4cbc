"""The witness's own store: every checkpoint it cosigned (the latest is what it holds) and
every alarm it raised. Nothing about cases: origins, sizes and hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Cosigned(Base):
    __tablename__ = "witness_checkpoint"
    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)  # the checkpoint with the log's and our signature
    cosigned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Alarm(Base):
    __tablename__ = "witness_alarm"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(64))
    held_size: Mapped[int] = mapped_column(Integer)
    problem: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
