"""CloudEvents 1.0 envelope (structured JSON mode) and the NATS headers that ride with it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import UNIT_ID_PATTERN

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_SIGNATURE = "Ema-Signature"
HEADER_KEY_ID = "Ema-Key-Id"
HEADER_CORRELATION = "Ema-Correlation-Id"

CONTENT_TYPE = "application/cloudevents+json"


class CloudEvent(BaseModel):
    """The envelope every message travels in. `id` is also the Nats-Msg-Id header."""

    model_config = ConfigDict(extra="forbid")

    specversion: str = Field("1.0", pattern=r"^1\.0$")
    id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        min_length=1,
        max_length=128,
        description="Unique per message; also sent as the Nats-Msg-Id header for deduplication.",
    )
    source: str = Field(pattern=UNIT_ID_PATTERN, description="Id of the sending unit.")
    type: str = Field(pattern=r"^no\.ema\.[a-z0-9.-]+\.v[0-9]+$", description="Versioned type.")
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(None, max_length=128, description="The case id, when there is one.")
    datacontenttype: str = "application/json"
    correlationid: str | None = Field(
        None, max_length=128, description="Extension attribute: ties a chain of messages together."
    )
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
