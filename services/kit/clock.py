"""The service's day: Oslo's date, or a pinned one (EMA_TODAY) so demos and tests can step
through a deadline's life. One per process: each service is its own process."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
_fixed_today: date | None = None


def set_today(day: date | None) -> None:
    """Pin "today" (EMA_TODAY), or unpin it with None."""
    global _fixed_today
    _fixed_today = day


def today() -> date:
    return _fixed_today or datetime.now(UTC).astimezone(OSLO).date()
