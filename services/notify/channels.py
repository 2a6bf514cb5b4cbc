"""Outside channels: email over SMTP and webhooks signed with HMAC-SHA256 and a timestamp."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage

import aiohttp

SIGNATURE_HEADER = "Ema-Webhook-Signature"
TIMESTAMP_HEADER = "Ema-Webhook-Timestamp"
REPLAY_WINDOW_S = 300


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    sender: str
    timeout: float


def _send_email(cfg: SmtpConfig, to: str, subject: str, body: str, message_id: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.sender, to, subject
    msg["Message-ID"] = f"<{message_id}@emaflyt>"  # lets a mailbox drop a repeat after a crash
    msg.set_content(body)
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if cfg.username:
            smtp.login(cfg.username, cfg.password or "")
        smtp.send_message(msg)


async def send_email(cfg: SmtpConfig, to: str, subject: str, body: str, message_id: str) -> None:
    await asyncio.to_thread(_send_email, cfg, to, subject, body, message_id)


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(secret: str, headers: dict[str, str], body: bytes,
                   now: float | None = None) -> bool:  # fmt: skip
    """What a receiver does: recompute the signature and refuse old timestamps (replay)."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > REPLAY_WINDOW_S:
        return False
    expected = sign_webhook(secret, timestamp, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))


async def post_webhook(url: str, secret: str, payload: dict, timeout: float) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: sign_webhook(secret, timestamp, body)}  # fmt: skip
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")
