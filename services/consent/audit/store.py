"""The audit's own tables, in the consent service's database: accounts, sessions, every view of
an audit page, full-log verifications and break-the-glass reviews."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.consent.store import Base
from services.kit.db import UtcDateTime, utcnow

ROLES = ("privacy_officer", "operator")


class AuditUser(Base):
    __tablename__ = "audit_user"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    origin: Mapped[str] = mapped_column(String(16), default="local")  # local | oidc
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # An OpenID Connect account is the provider's subject: bound to issuer + sub (given when
    # the account is added, or at its first sign-in), never to a changeable username claim.
    oidc_issuer: Mapped[str | None] = mapped_column(String(300), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AuditSession(Base):
    """A login: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "audit_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditView(Base):
    """Who looked at which audit page, when, with which query (refusals too)."""

    __tablename__ = "audit_view"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    query: Mapped[str] = mapped_column(Text, default="")
    allowed: Mapped[bool] = mapped_column(Boolean)


class AuditVerification(Base):
    """The result of a full verification of the decision log."""

    __tablename__ = "audit_verification"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    size: Mapped[int] = mapped_column(Integer)
    signed_size: Mapped[int] = mapped_column(Integer)
    problems: Mapped[list[str]] = mapped_column(JSON)
    # What each witness said (witnesses.WitnessView.as_json), when they were asked.
    witnesses: Mapped[list[dict] | None] = mapped_column(JSON, nullable=True)


class AuditReview(Base):
    """A privacy officer's review of a break-the-glass release; also appended to the log."""

    __tablename__ = "audit_review"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # approved | rejected
    note: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(64))
    reviewed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    log_index: Mapped[int] = mapped_column(Integer)


class AuditSignIn(Base):
    """Every sign-in attempt, refused ones with the reason: throttling counts them, and the
    privacy officer sees them."""

    __tablename__ = "audit_sign_in"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(16))  # password | oidc
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(200), default="")
