"""The municipality service's own tables: published settlement capacity."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData()


class Capacity(Base):
    __tablename__ = "municipality_capacity"
    kommunenummer: Mapped[str] = mapped_column(String(4), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    bufetat_region: Mapped[str] = mapped_column(String(16), index=True)
    children: Mapped[int] = mapped_column(Integer)
    measures: Mapped[list[str]] = mapped_column(JSON)
    free_places: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
