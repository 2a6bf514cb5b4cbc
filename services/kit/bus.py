"""NATS connection, idempotent stream set-up, and the dead-letter stream."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.envelope import HEADER_MSG_ID
from contracts.registry import STREAMS
from services.kit import sealing
from services.kit.nkeys import sign_nonce
from services.kit.signing import UnitKey

log = logging.getLogger("kit.bus")

DUPLICATE_WINDOW_S = 3600.0
DLQ_MAX_AGE_S = 90 * 24 * 3600.0

HEADER_DLQ_REASON = "Ema-Dlq-Reason"
HEADER_DLQ_SUBJECT = "Ema-Dlq-Subject"
HEADER_DLQ_CONSUMER = "Ema-Dlq-Consumer"
HEADER_DLQ_ATTEMPTS = "Ema-Dlq-Attempts"


def redact(url: str) -> str:
    """A NATS URL (or several) without user names or passwords, for logs and status."""
    from urllib.parse import urlsplit, urlunsplit

    out = []
    for part in url.split(","):
        parts = urlsplit(part.strip())
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        out.append(urlunsplit(parts._replace(netloc=netloc)) if parts.netloc else part.strip())
    return ",".join(out)


def credentials(key: UnitKey, jwt_file: Path | None) -> dict[str, object]:
    """Log in as the identity the operator issued to this key: its user JWT, the server's
    nonce signed with the same Ed25519 key that signs messages, its own reply inbox."""
    if jwt_file is None or not jwt_file.exists():
        return {}
    jwt = jwt_file.read_text().strip()
    return {
        "user_jwt_cb": lambda: jwt.encode(),
        "signature_cb": lambda nonce: sign_nonce(key.private, nonce),
        "inbox_prefix": f"_INBOX_{key.unit_id}",
    }


async def connect(url: str, name: str, **kw: object) -> Client:
    """Connect, and keep reconnecting for as long as the process lives."""

    async def on_disconnect() -> None:
        log.warning("disconnected from NATS")

    async def on_reconnect() -> None:
        log.info("reconnected to NATS")

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error", extra={"error": f"{type(exc).__name__}: {exc}"})

    return await nats.connect(
        servers=[u.strip() for u in url.split(",") if u.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        **kw,
    )


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    configs = []
    for stream in STREAMS:
        is_dlq = stream.name == "DLQ"
        configs.append(
            StreamConfig(
                name=stream.name,
                description=stream.summary,
                subjects=list(stream.subjects),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=DLQ_MAX_AGE_S if is_dlq else 0,
                num_replicas=replicas,
            )
        )
    return configs


def differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether a stream's settings need an update (an update is a cluster-wide operation)."""
    fields = ("subjects", "num_replicas", "max_age", "duplicate_window", "storage", "retention")
    return any(getattr(current, f) != getattr(wanted, f) for f in fields)


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1, attempts: int = 20, update: bool = True
) -> None:
    """Create every stream of the contract, or bring its config up to date. Safe to repeat;
    retried while a cluster elects its leaders or several services start at once. With
    update=False (clients), existing streams are left as the operator set them."""
    for config in stream_configs(replicas):
        for attempt in range(1, attempts + 1):
            try:
                try:
                    current = (await js.stream_info(config.name)).config
                except NotFoundError:
                    await js.add_stream(config)
                else:
                    if update and differs(current, config):
                        await js.update_stream(config)
                break
            except NotFoundError:
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise
                log.info(
                    "stream set-up not ready, retrying",
                    extra={"stream": config.name, "error": repr(exc)},
                )
                await asyncio.sleep(min(0.25 * attempt, 3.0))


HEADER_DLQ_SEALED = "Ema-Dlq-Sealed"


def dead_letter_context(consumer: str, seq: object) -> bytes:
    """What a dead letter's body is sealed to the operator under."""
    return sealing.context("dead-letter/v1", consumer=consumer, seq=str(seq))


HEADER_DLQ_KID = "Ema-Dlq-Sealed-Kid"
HEADER_DLQ_OMITTED = "Ema-Dlq-Body-Omitted"
# A dead letter must fit in one NATS message (1 MiB by default) with its headers.
DLQ_MAX_BODY = 1_040_000


def seal_dead_letter(
    body: bytes, operator_key: str | None, consumer: str, seq: object
) -> tuple[bytes, dict[str, str]]:
    """A dead letter's body sealed to the operator's key (it may hold names for 90 days),
    as raw HPKE output (encapsulated key, ciphertext, tag: 48 bytes more than the body), the
    suite and key id in headers. Without a key configured it stays as it came; a body too
    large to keep is left out, its size and SHA-256 said instead."""
    if len(body) + 48 > DLQ_MAX_BODY:
        digest = hashlib.sha256(body).hexdigest()
        return b"", {HEADER_DLQ_OMITTED: f"{len(body)} bytes, sha256:{digest}"}
    if not operator_key:
        return body, {}
    sealed = sealing.seal(body, sealing.X25519, operator_key, dead_letter_context(consumer, seq))
    raw = base64.b64decode(sealed.sealed)
    return raw, {HEADER_DLQ_SEALED: sealed.suite, HEADER_DLQ_KID: sealed.recipient_kid}


async def dead_letter(
    js: JetStreamContext,
    service: str,
    consumer: str,
    msg: Msg,
    reason: str,
    attempts: int,
    operator_key: str | None = None,
) -> None:
    """Copy a message to the dead-letter stream with its reason (idempotent per delivery),
    its body sealed to the operator's key."""
    headers = dict(msg.headers or {})
    original_id = headers.pop(HEADER_MSG_ID, "")
    seq = msg.metadata.sequence.stream if msg.metadata else original_id
    body, sealed = seal_dead_letter(msg.data, operator_key, consumer, seq)
    headers.update(sealed)
    headers.update(
        {
            HEADER_MSG_ID: f"dlq:{consumer}:{seq}",
            HEADER_DLQ_REASON: reason[:1000],
            HEADER_DLQ_SUBJECT: msg.subject,
            HEADER_DLQ_CONSUMER: consumer,
            HEADER_DLQ_ATTEMPTS: str(attempts),
            "Ema-Dlq-Original-Msg-Id": original_id,
            "Ema-Dlq-Stream-Seq": str(seq),
        }
    )
    await js.publish(f"ema.dlq.{service}", body, headers=headers, timeout=5)
    log.warning(
        "dead-lettered",
        extra={
            "subject": msg.subject,
            "msg_id": original_id,
            "consumer": consumer,
            "reason": reason,
            "attempts": attempts,
        },
    )
