"""Break-the-glass that can be answered for: who may use it, what is kept, who is told.

Before the policy's own emergency rule counts, a break-the-glass request must come from a
unit linked to the case (its care centres, its representative, or a party to an earlier
release about the child), go to a kind of unit that can act in an emergency, and stay within
the source unit's rate. The justification is kept sealed to the broker's key, its hash in the
decision record; a release tells the representative through notify, and a release nobody
reviewed by its deadline is escalated to the privacy officer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.messages import (
    EmergencyReleasedV1,
    EmergencyReviewOverdueV1,
    SealedPayload,
    ShareRequestV2,
)
from services.consent.domain import canonical
from services.consent.store import DecisionRecord, GlassRelease, KnownCase
from services.kit import sealing
from services.kit.sealing import SealingKey
from services.kit.service import Context

log = logging.getLogger("consent.glass")


async def linked_units(session: AsyncSession, case: KnownCase) -> set[str]:
    """The units a case ties to: its care centres and representative, and the parties to
    releases about the child made before."""
    units = {case.care_centre, *(case.linked_units or [])}
    if case.representative_unit:
        units.add(case.representative_unit)
    rows = await session.execute(
        select(DecisionRecord.source_unit, DecisionRecord.recipient_unit).where(
            DecisionRecord.case_id == case.case_id, DecisionRecord.outcome == "allow"
        )
    )
    for source, recipient in rows:
        units |= {source, recipient}
    return units


async def refusal(
    session: AsyncSession,
    settings: Any,
    case: KnownCase,
    req: ShareRequestV2,
    recipient_kind: str | None,
    now: datetime,
) -> str | None:
    """Why a break-the-glass request may not be released whatever the policy says, or None."""
    kinds = [k.strip() for k in settings.glass_recipient_kinds.split(",") if k.strip()]
    if recipient_kind not in kinds:
        return (
            f"break-the-glass refused: a {recipient_kind or 'unknown'} unit cannot act in an "
            f"emergency (recipients: {', '.join(kinds)})"
        )
    if req.source_unit not in await linked_units(session, case):
        return (
            "break-the-glass refused: the source unit is not linked to the case (its care "
            "centre, representative or a party to an earlier release)"
        )
    since = now - timedelta(hours=settings.glass_window_hours)
    used = await session.scalar(
        select(func.count())
        .select_from(GlassRelease)
        .where(
            # Releases under break-the-glass: those with a review deadline.
            GlassRelease.source_unit == req.source_unit,
            GlassRelease.outcome == "allow",
            GlassRelease.review_due.is_not(None),
            GlassRelease.decided_at >= since,
        )
    )
    if (used or 0) >= settings.glass_limit:
        hours, limit = settings.glass_window_hours, settings.glass_limit
        return (
            f"break-the-glass refused: the source unit made {used} emergency releases in "
            f"the last {hours} hours (limit {limit})"
        )
    return None


def _context(decision_id: str) -> bytes:
    return sealing.context("break-the-glass-justification/v1", decision_id=decision_id)


def sealed_justification(
    req: ShareRequestV2, decision_id: str, broker: SealingKey
) -> tuple[SealedPayload, str]:
    """The justification sealed to the broker's own key (bound to its decision), and the hash
    the log keeps."""
    assert req.break_the_glass is not None
    content = canonical(
        {
            "decision_id": decision_id,
            "salt": base64.b64encode(os.urandom(16)).decode(),
            "justification": req.break_the_glass.justification,
        }
    )
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    sealed = sealing.seal(content, broker.suite, broker.public_b64, _context(decision_id))
    return sealed, digest


def open_justification(row: GlassRelease, keys: list[SealingKey]) -> str | None:
    """The justification for a privacy officer, if it opens and matches its logged hash."""
    try:
        payload = SealedPayload.model_validate(row.justification)
        content = sealing.open_with(keys, payload, _context(row.decision_id))
    except Exception:  # noqa: BLE001 (shown as not readable)
        return None
    if "sha256:" + hashlib.sha256(content).hexdigest() != row.justification_hash:
        return None
    return str(json.loads(content)["justification"])


def review_hours(obligations: list[dict[str, Any]]) -> int | None:
    return next(
        (o.get("within_hours") or 72 for o in obligations if o.get("kind") == "review"), None
    )


def record(
    ctx: Context,
    case: KnownCase,
    req: ShareRequestV2,
    decision_id: str,
    outcome: str,
    fields: list[str],
    obligations: list[dict[str, Any]],
    sealed: SealedPayload,
    digest: str,
    now: datetime,
) -> None:
    """Keep the sealed justification; on a release, tell the representative (the
    notify_representative obligation) through notify."""
    hours = review_hours(obligations) if outcome == "allow" else None
    due = now + timedelta(hours=hours) if hours else None
    ctx.session.add(
        GlassRelease(
            decision_id=decision_id,
            case_id=req.case_id,
            source_unit=req.source_unit,
            recipient_unit=req.recipient_unit,
            outcome=outcome,
            justification=sealed.model_dump(mode="json"),
            justification_hash=digest,
            decided_at=now,
            review_due=due,
        )
    )
    if outcome != "allow" or not any(o.get("kind") == "notify_representative" for o in obligations):
        return
    ctx.emit(
        "no.ema.share.emergency-released.v1",
        EmergencyReleasedV1(
            decision_id=decision_id,
            case_id=req.case_id,
            case_ref=case.case_ref or "",
            representative_unit=case.representative_unit,
            care_centre=case.care_centre,
            source_unit=req.source_unit,
            recipient_unit=req.recipient_unit,
            data_category=req.data_category,
            fields=fields,
            decided_at=now,
            review_due=due or now,
        ),
        case_id=req.case_id,
    )


async def escalate_overdue(svc: Any) -> None:
    """Background: a release not reviewed by its deadline goes to the privacy officer, once."""
    from services.consent.audit.store import AuditReview

    while True:
        await asyncio.sleep(svc.settings.glass_check_interval)
        try:
            now = datetime.now(UTC)
            async with svc.outbox.write_lock, svc.sessions() as session, session.begin():
                reviewed = select(AuditReview.decision_id)
                rows = list(
                    await session.scalars(
                        select(GlassRelease)
                        .where(
                            GlassRelease.outcome == "allow",
                            GlassRelease.review_due < now,
                            GlassRelease.escalated_at.is_(None),
                            GlassRelease.decision_id.not_in(reviewed),
                        )
                        .with_for_update()
                    )
                )
                for row in rows:
                    case = await session.get(KnownCase, row.case_id)
                    svc.outbox.add(
                        session,
                        "no.ema.share.emergency-overdue.v1",
                        EmergencyReviewOverdueV1(
                            decision_id=row.decision_id,
                            case_id=row.case_id,
                            case_ref=(case.case_ref if case else None) or "",
                            source_unit=row.source_unit,
                            recipient_unit=row.recipient_unit,
                            decided_at=row.decided_at,
                            review_due=row.review_due,
                            privacy_officer_unit=svc.settings.privacy_officer_unit,
                        ),
                        case_id=row.case_id,
                    )
                    row.escalated_at = now
                    log.warning(
                        "break-the-glass review overdue: escalated",
                        extra={"decision_id": row.decision_id},
                    )
            if rows:
                svc.outbox.wake()
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup: try again next round
            log.warning("overdue check failed", exc_info=True)
