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


def verify_webhook(
    secret: str, headers: dict[str, str], body: bytes, now: float | None = None
) -> bool:
    """What a receiver does: recompute the signature and refuse old timestamps (replay)."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > REPLAY_WINDOW_S:
        return False
    expected = sign_webhook(secret, timestamp, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))


def webhook_problem(url: str, allowed_hosts: str) -> str | None:
    """Why a webhook URL may not be used, or None: only https, only to a host the operator
    allowed (EMA_WEBHOOK_HOSTS: names, or *.suffix), so notices cannot be redirected to an
    attacker or into the operator's own network."""
    from fnmatch import fnmatchcase
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "webhook_url: not a URL"
    if parts.scheme != "https":
        return "webhook_url: must be https"
    if parts.username or parts.password:
        return "webhook_url: no user or password in the URL; the secret signs each delivery"
    patterns = [p.strip().lower() for p in allowed_hosts.split(",") if p.strip()]
    if not host or not any(fnmatchcase(host, p) for p in patterns):
        return (
            f"webhook_url: host {host or '(none)'} is not among the hosts the operator "
            "allows (EMA_WEBHOOK_HOSTS)"
        )
    return None


def client_ssl(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


async def post_webhook(
    url: str,
    secret: str,
    payload: dict,
    timeout: float,
    allowed_hosts: str = "",
    ca_file: str | None = None,
) -> None:
    problem = webhook_problem(url, allowed_hosts)
    if problem:
        raise RuntimeError(problem)
    body = json.dumps(payload, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign_webhook(secret, timestamp, body),
    }
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.post(
            url, data=body, headers=headers, allow_redirects=False, ssl=client_ssl(ca_file)
        ) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")
