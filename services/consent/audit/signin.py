"""Sign-in rules for the audit pages: where a sign-in may lead (`next`), throttling with
backoff per account and per address, and the record of every attempt. No I/O but the
session it is given."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.consent.audit.store import AuditSignIn

HOME = "/audit"
# The pages a sign-in may return to; anything else goes to HOME.
NEXT_PATHS = re.compile(
    r"^/audit(/decisions(/[0-9a-f-]{36})?|/status|/glass|/what-if|/views|/sign-ins"
    r"|/cases/[A-Za-z0-9-]{1,64}/(consents|report))?$"
)
SAFE_QUERY = re.compile(r"^[\w .:@+-]{0,200}$")


def safe_next(target: str | None) -> str:
    """An audit path from the allow-list with a re-encoded query, or HOME: never another
    site, a scheme, or markup."""
    if not target:
        return HOME
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not NEXT_PATHS.match(parts.path):
        return HOME
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=False)
    if not all(SAFE_QUERY.match(k) and SAFE_QUERY.match(v) for k, v in pairs):
        return parts.path
    query = urllib.parse.urlencode(pairs)
    return parts.path + (f"?{query}" if query else "")


async def wait_needed(
    session: AsyncSession, settings: Any, username: str, address: str, now: datetime
) -> float:
    """Seconds before this account, or this address, may try again (0: now). After
    `audit_throttle_after` failures (per address: `audit_throttle_after_address`) since the
    last success, each failure doubles the wait, from `audit_throttle_base` seconds up to
    `audit_throttle_max`."""
    waits = [0.0]
    for column, value, after in (
        (AuditSignIn.username, username, settings.audit_throttle_after),
        (AuditSignIn.address, address, settings.audit_throttle_after_address),
    ):
        since = now - timedelta(seconds=settings.audit_throttle_window)
        rows = list(
            await session.execute(
                select(AuditSignIn.at, AuditSignIn.ok, AuditSignIn.reason)
                .where(column == value, AuditSignIn.at >= since)
                .order_by(AuditSignIn.id)
            )
        )
        failures: list[datetime] = []
        for at, ok, reason in rows:
            if ok:
                failures = []
            elif reason != "throttled":
                failures.append(at)
        if len(failures) >= after:
            wait = min(
                settings.audit_throttle_base * 2 ** (len(failures) - after),
                settings.audit_throttle_max,
            )
            waits.append((failures[-1] + timedelta(seconds=wait) - now).total_seconds())
    return max(waits)


def attempt(username: str, address: str, method: str, ok: bool, reason: str) -> AuditSignIn:
    """A row for every sign-in attempt, refused ones with why (never the password)."""
    return AuditSignIn(
        username=username[:64], address=address[:64], method=method, ok=ok, reason=reason[:200]
    )
