"""Delivers pending notices on email and webhooks with retries and backoff, and makes the
daily digests. A notice that keeps failing goes to the dead-letter stream with the reason."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from services.kit.bus import HEADER_DLQ_REASON
from services.kit.db import utcnow
from services.kit.service import Service
from services.notify.channels import SmtpConfig, post_webhook, send_email
from services.notify.store import Delivery, Digest, Notification, Recipient
from services.notify.templates import digest, subject

log = logging.getLogger("notify.worker")
OSLO = ZoneInfo("Europe/Oslo")


def smtp_config(svc: Service) -> SmtpConfig:
    s = svc.settings
    return SmtpConfig(
        s.smtp_host,
        s.smtp_port,
        s.smtp_starttls,
        s.smtp_username,  # type: ignore[attr-defined]
        s.smtp_password,
        s.smtp_from,
        s.smtp_timeout,
    )  # type: ignore[attr-defined]


async def attempt(svc: Service, delivery: Delivery, note: Notification, who: Recipient) -> None:
    language = who.language if who.language in ("nb", "en") else "nb"
    text = note.text_nb if language == "nb" else note.text_en
    if delivery.channel == "email":
        assert who.email
        await send_email(
            smtp_config(svc),
            who.email,
            subject(note.event_type, note.case_ref, language),
            text,
            delivery.id,
        )
    else:
        assert who.webhook_url and who.webhook_secret
        payload = {
            "id": delivery.id,
            "notification_id": note.id,
            "unit": note.unit,
            "role": note.role,
            "case_ref": note.case_ref,
            "event": note.event_type,
            "text": text,
            "language": language,
            "created_at": note.created_at.isoformat(),
        }
        s = svc.settings
        await post_webhook(
            who.webhook_url,
            who.webhook_secret,
            payload,
            s.webhook_timeout,  # type: ignore[attr-defined]
            s.webhook_hosts,
            str(s.webhook_ca_file) if s.webhook_ca_file else None,  # type: ignore[attr-defined]
        )


async def deliver_due(svc: Service, limit: int = 50) -> int:
    """Try every delivery whose time has come; returns how many were tried."""
    s = svc.settings
    now = utcnow()
    async with svc.sessions() as session:
        rows = (
            await session.execute(
                select(Delivery, Notification, Recipient)
                .join(Notification, Notification.id == Delivery.notification_id)
                .join(Recipient, Recipient.id == Delivery.recipient_id)
                .where(
                    Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at <= now
                )
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            )
        ).all()
    for delivery, note, who in rows:
        tries = delivery.attempts + 1
        values: dict[str, object] = {"attempts": tries}
        try:
            await attempt(svc, delivery, note, who)
            values.update(status="sent", sent_at=utcnow(), last_error=None)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if tries >= s.delivery_max_attempts:  # type: ignore[attr-defined]
                values.update(status="failed", last_error=error)
                await dead_letter(svc, delivery, note, who, error, tries)
            else:
                wait = min(s.delivery_backoff * 2 ** (tries - 1), s.delivery_backoff_max)  # type: ignore[attr-defined]
                values.update(
                    status="retrying",
                    last_error=error,
                    next_attempt_at=utcnow() + timedelta(seconds=wait),
                )
        async with svc.outbox.write_lock, svc.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.status != "sent")
                .values(**values)
            )
        log.info(
            "delivery " + str(values["status"]),
            extra={
                "delivery": delivery.id,
                "channel": delivery.channel,
                "unit": note.unit,
                "role": note.role,
                "attempts": tries,
                "error": values.get("last_error"),
            },
        )
    return len(rows)


async def dead_letter(
    svc: Service, delivery: Delivery, note: Notification, who: Recipient, error: str, tries: int
) -> None:
    body = json.dumps(
        {
            "delivery": delivery.id,
            "notification": note.id,
            "channel": delivery.channel,
            "unit": note.unit,
            "role": note.role,
        }
    )
    await svc.js.publish(
        "ema.dlq.notify",
        body.encode(),
        headers={
            "Nats-Msg-Id": f"dlq:delivery:{delivery.id}",
            HEADER_DLQ_REASON: f"delivery failed after {tries} attempts: {error}",
            "Ema-Dlq-Subject": f"notify.delivery.{delivery.channel}",
            "Ema-Dlq-Consumer": "notify-delivery",
            "Ema-Dlq-Attempts": str(tries),
        },
    )


async def make_digests(svc: Service, now: datetime | None = None) -> int:
    """Once a day, after the digest hour, one email per recipient with the day's notices."""
    local = (now or datetime.now(UTC)).astimezone(OSLO)
    if local.hour < svc.settings.digest_hour:  # type: ignore[attr-defined]
        return 0
    made = 0
    since = local - timedelta(days=1)
    async with svc.outbox.write_lock, svc.sessions() as session, session.begin():
        recipients = (
            await session.scalars(
                select(Recipient).where(Recipient.digest.is_(True), Recipient.email.is_not(None))
            )
        ).all()
        for who in recipients:
            if await session.scalar(
                select(Digest.id).where(Digest.recipient_id == who.id, Digest.day == local.date())
            ):
                continue
            notes = (
                await session.scalars(
                    select(Notification)
                    .where(
                        Notification.unit == who.unit,
                        Notification.role == who.role,
                        Notification.event_type != "digest",
                        Notification.created_at >= since,
                    )
                    .order_by(Notification.created_at)
                )
            ).all()
            if not notes:
                continue
            note = Notification(
                id=str(uuid.uuid4()),
                unit=who.unit,
                role=who.role,
                case_ref="-",
                event_type="digest",
                dedupe_key=f"digest:{local.date()}",
                source_event_id="",
                text_nb=digest([n.text_nb for n in notes], "nb"),
                text_en=digest([n.text_en for n in notes], "en"),
            )
            session.add(note)
            session.add(
                Delivery(
                    id=str(uuid.uuid4()),
                    notification_id=note.id,
                    recipient_id=who.id,
                    channel="email",
                )
            )
            session.add(Digest(recipient_id=who.id, day=local.date(), notification_id=note.id))
            made += 1
    return made


async def run_worker(svc: Service) -> None:
    interval = svc.settings.worker_interval  # type: ignore[attr-defined]
    while not svc.stop_event.is_set():
        tried = 0
        try:
            await make_digests(svc)
            tried = await deliver_due(svc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("delivery round failed; will retry", exc_info=True)
        await asyncio.sleep(0 if tried >= 50 else interval)
