"""One settings object per service, read from EMA_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

DEFAULT_PORTS = {
    "intake": 8101,
    "planning": 8102,
    "consent": 8103,
    "notify": 8104,
    "municipality": 8105,
}


class Settings(BaseModel):
    service: str
    nats_url: str = Field("nats://127.0.0.1:4222", description="One URL or several, with commas.")
    stream_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas; 3 in a cluster.")
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL; SQLite by default. `{service}` is replaced by the "
        "service's name, so one template gives each service its own database.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 0
    unit_id: str | None = None
    key_file: Path | None = None
    nats_jwt_file: Path | None = Field(
        None,
        description="The service's NATS user JWT (issued by the operator's tooling); default: "
        "beside key_file. Without it the service connects without credentials.",
    )
    api_issuer_file: Path | None = Field(
        None,
        description="Public keys of the API token issuer (base64, one a line); default: "
        "api-issuer.pub beside key_file, written by the operator's tooling.",
    )
    dead_letter_key_file: Path | None = Field(
        None,
        description="The operator's X25519 key (base64) dead letters are sealed to; default: "
        "dead-letter.pub beside key_file, written by the operator's tooling.",
    )
    sealing_suite: str = Field(
        "x25519",
        pattern=r"^(x25519|mlkem768-x25519)$",
        description="HPKE suite for sealed payloads: x25519, or mlkem768-x25519 (post-quantum "
        "hybrid; the broker then refuses payloads sealed with X25519 alone).",
    )
    clock_skew: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="Seconds a reported time may lie ahead of this service's clock (partners' "
        "clocks run a little ahead); anything later is dead-lettered as dated in the future.",
    )
    max_deliver: int = Field(
        5, ge=1, le=100, description="Attempts before a message is dead-lettered."
    )
    ack_wait: float = Field(30.0, gt=0)
    fetch_batch: int = Field(64, ge=1, le=1000)
    log_level: str = "INFO"
    # Fault injection for the crash tests: kill the process right after a database commit,
    # before the outbox relays. Never set in production.
    fault_crash_after_commit: bool = False

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {"service": service}
        for name in cls.model_fields:
            key = f"EMA_{name.upper()}"
            if key in env and name != "service":
                values[name] = env[key]
        return cls(**values)

    def model_post_init(self, _context: object) -> None:
        if self.unit_id is None:
            self.unit_id = f"svc-{self.service}"
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / (self.service + '.db')}"
        self.database_url = self.database_url.replace("{service}", self.service)
        if self.key_file is None:
            self.key_file = self.data_dir / "keys" / f"{self.unit_id}.pem"
        if self.nats_jwt_file is None:
            self.nats_jwt_file = self.key_file.with_suffix(".jwt")
        if self.api_issuer_file is None:
            self.api_issuer_file = self.key_file.parent / "api-issuer.pub"
        if self.dead_letter_key_file is None:
            self.dead_letter_key_file = self.key_file.parent / "dead-letter.pub"
        if self.http_port == 0:
            self.http_port = DEFAULT_PORTS.get(self.service, 8100)
