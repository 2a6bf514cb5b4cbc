"""Test helpers: a partner unit that signs and publishes, and readers for streams and logs."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import nats
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nats.aio.client import Client
from sqlalchemy.engine import make_url

from contracts.messages import UnitKind
from services.kit.bus import ensure_streams
from services.kit.directory import Directory, bucket
from services.kit.outbox import build_event
from services.kit.signing import UnitKey

ARRIVAL = {
    "duf_number": "202600001234",
    "name": "Zahra Testdatter",
    "birth_date": "2013-05-01",
    "birth_date_estimated": True,
    "sex": "female",
    "nationality": "AFG",
    "languages": ["prs", "ps"],
    "arrived_at": "2026-04-02T10:00:00+02:00",
}


def tasks_on_arrival(arrival: dict[str, Any] = ARRIVAL) -> int:
    """How many tasks planning schedules when this child arrives: the care-centre pathway's
    steps that start on arrival and apply to the child (TB by nationality, school by age)."""
    from datetime import datetime

    from services.planning.domain import Facts, applies, load_list
    from services.planning.pathway import load_all

    ema = load_all()["ema-care-centre"]
    on = datetime.fromisoformat(str(arrival["arrived_at"])).date()
    facts = Facts(date.fromisoformat(str(arrival["birth_date"])), arrival["nationality"])
    lists = {"tb_high_incidence": load_list("tb_high_incidence")}
    steps = ema.steps_started_by("arrival")
    return sum(applies(s.applies_if, facts, on, ema.school_year, lists) for s in steps)


TASKS_ON_ARRIVAL = tasks_on_arrival()


@dataclass
class Partner:
    """A registered unit that signs what it sends, as a partner system would."""

    nc: Client
    key: UnitKey
    sealing: X25519PrivateKey | None = None

    @classmethod
    async def register(
        cls,
        nats_url: str,
        unit_id: str,
        kind: UnitKind,
        sealing: bool = False,
        kommunenummer: str | None = None,
    ) -> Partner:
        """Register a unit; with sealing=True it also publishes an X25519 key to receive
        released data; `kommunenummer` says where it lies (a care centre's municipality)."""
        nc = await nats.connect(servers=nats_url.split(","))
        js = nc.jetstream()
        await ensure_streams(js, update=False)
        key = UnitKey.generate(unit_id)
        directory = Directory(await bucket(js))
        unit = await directory.add_key(unit_id, unit_id, kind, key.kid, key.public_b64)
        private = None
        if sealing:
            private = X25519PrivateKey.generate()
            raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            unit.sealing_key = base64.b64encode(raw).decode()
        if kommunenummer:
            unit.kommunenummer = kommunenummer
        if sealing or kommunenummer:
            await directory.put(unit)
        return cls(nc, key, private)

    async def send(self, type_: str, data: Any, *, case_id: str | None = None,
                   event_id: str | None = None) -> str:  # fmt: skip
        subject, event, body, headers = build_event(self.key, type_, data, case_id=case_id)
        if event_id:
            raw = json.loads(body)
            raw["id"] = event_id
            body = json.dumps(raw).encode()
            headers = {"Nats-Msg-Id": event_id, **self.key.sign(body)}
        await self.publish_raw(subject, body, headers)
        return event_id or event.id

    async def publish_raw(self, subject: str, body: bytes, headers: dict[str, str] | None) -> None:
        await self.nc.jetstream().publish(subject, body, headers=headers)

    def raw_arrival(self, **overrides: Any) -> tuple[bytes, dict[str, str]]:
        """An arrival envelope as raw JSON, for malformed variants the models would refuse."""
        data = {**ARRIVAL, "care_centre": self.key.unit_id, **overrides}
        data = {k: v for k, v in data.items() if v is not None}
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": self.key.unit_id,
                 "type": "no.ema.intake.arrival.v1", "time": "2026-04-02T10:00:00+00:00",
                 "data": data}  # fmt: skip
        body = json.dumps(event).encode()
        return body, {"Nats-Msg-Id": event["id"], **self.key.sign(body)}


async def stream_messages(nc: Client, stream: str, subject: str | None = None) -> list[Any]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except Exception:
            continue
        if subject is None or msg.subject == subject:
            out.append(msg)
    return out


async def read_subject(nc: Client, stream: str, subject: str) -> list[Any]:
    """Every message on a subject, read with one ephemeral pull consumer (acked as read)."""
    js = nc.jetstream()
    psub = await js.pull_subscribe(subject, stream=stream)
    out = []
    try:
        while True:
            info = await psub.consumer_info()
            if info.num_pending == 0:
                break
            for msg in await psub.fetch(min(1000, info.num_pending), timeout=10):
                out.append(msg)
                await msg.ack()
    finally:
        await psub.unsubscribe()
    return out


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1) -> Any:  # noqa: ANN001
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def query(db: Path | str, sql: str, *params: Any) -> list[tuple]:
    """Rows of a service's database: a SQLite file, or a database URL (`System.database_url`)
    of SQLite or PostgreSQL. Parameters are `?` on both."""
    if isinstance(db, str):
        url = make_url(db)
        if url.get_backend_name() == "postgresql":
            return _pg_query(url.set(drivername="postgresql").render_as_string(False), sql, params)
        db = Path(url.database or "")
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _pg_query(dsn: str, sql: str, params: tuple) -> list[tuple]:
    numbered = iter(range(1, len(params) + 1))
    sql = re.sub(r"\?", lambda _: f"${next(numbered)}", sql)

    async def run() -> list[tuple]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    # Callers may be inside an event loop (async tests): run on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def dead_letters(nc: Client) -> list[dict[str, str]]:
    msgs = await stream_messages(nc, "DLQ")
    return [dict(m.headers or {}) for m in msgs]
