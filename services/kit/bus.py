"""NATS connection, idempotent stream set-up, and the dead-letter stream."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.envelope import HEADER_MSG_ID
from contracts.registry import STREAMS

log = logging.getLogger("kit.bus")

DUPLICATE_WINDOW_S = 3600.0
DLQ_MAX_AGE_S = 90 * 24 * 3600.0

HEADER_DLQ_REASON = "Ema-Dlq-Reason"
HEADER_DLQ_SUBJECT = "Ema-Dlq-Subject"
HEADER_DLQ_CONSUMER = "Ema-Dlq-Consumer"
HEADER_DLQ_ATTEMPTS = "Ema-Dlq-Attempts"


async def connect(url: str, name: str, **kw: object) -> Client:
    """Connect, and keep reconnecting for as long as the process lives."""

    async def on_disconnect() -> None:
        log.warning("disconnected from NATS")

    async def on_reconnect() -> None:
        log.info("reconnected to NATS")

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error", extra={"error": repr(exc)})

    return await nats.connect(
        url,
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


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create every stream of the contract, or bring its config up to date. Safe to repeat."""
    for config in stream_configs(replicas):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def dead_letter(
    js: JetStreamContext, service: str, consumer: str, msg: Msg, reason: str, attempts: int
) -> None:
    """Copy a message to the dead-letter stream with its reason (idempotent per delivery)."""
    headers = dict(msg.headers or {})
    original_id = headers.pop(HEADER_MSG_ID, "")
    seq = msg.metadata.sequence.stream if msg.metadata else original_id
    headers.update(
        {
            HEADER_MSG_ID: f"dlq:{consumer}:{seq}",
            HEADER_DLQ_REASON: reason[:1000],
            HEADER_DLQ_SUBJECT: msg.subject,
            HEADER_DLQ_CONSUMER: consumer,
            HEADER_DLQ_ATTEMPTS: str(attempts),
            "Ema-Dlq-Original-Msg-Id": original_id,
        }
    )
    await js.publish(f"ema.dlq.{service}", msg.data, headers=headers, timeout=5)
    log.warning(
        "dead-lettered",
        extra={"subject": msg.subject, "msg_id": original_id, "consumer": consumer,
               "reason": reason, "attempts": attempts},
    )  # fmt: skip
