"""The floor of a message path, measured in the same run: the same kind of signed messages,
as many per arrival as the system published and consumed, through sign, an outbox write,
publish, fetch, verify, an inbox write and ack, with no application logic: SQLite in WAL with
one transaction and one executemany per batch, as the kit does it (docs/decisions/0017).
CPU from the OS for this process and for nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import cpu_seconds
from contracts.envelope import HEADER_KEY_ID, HEADER_SIGNATURE
from contracts.messages import ArrivalV1
from services.kit.outbox import build_event
from services.kit.signing import UnitKey, verify
from tests.support import ARRIVAL

BATCH = 64


async def measure_floor(system: Any, arrivals: int, published: float, consumed: float) -> dict:
    """CPU ms per arrival for `published` signed messages sent and `consumed` received and
    verified per arrival."""
    n_pub, n_con = round(arrivals * published), round(arrivals * consumed)
    key = UnitKey.generate("floor-bench")
    nc = await system.connect()
    js = nc.jetstream()
    stream, subject = f"BENCHFLOOR{os.getpid()}", f"benchfloor{os.getpid()}.x"
    await js.add_stream(name=stream, subjects=[subject])
    psub = await js.pull_subscribe(subject, durable="floor", stream=stream)
    db = sqlite3.connect(system.data_dir / "floor.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "create table if not exists outbox (seq integer primary key, msg_id text unique, "
        "subject text, headers text, body blob, created_at text, published_at text)"
    )
    db.execute(
        "create table if not exists inbox (consumer text, msg_id text, processed_at text, "
        "primary key (consumer, msg_id))"
    )
    data = ArrivalV1(
        **{**ARRIVAL, "care_centre": "centre-bench", "arrived_at": datetime.now(UTC).isoformat()}
    )
    public = key.public_b64
    nats_pid = system.nats.proc.pid
    cpu0, nats0, t0 = time.process_time(), cpu_seconds(nats_pid), time.perf_counter()
    for start in range(0, n_pub, BATCH):
        rows = []
        for _ in range(min(BATCH, n_pub - start)):
            _subject, event, body, headers = build_event(key, "no.ema.intake.arrival.v1", data)
            rows.append((event.id, subject, json.dumps(headers), body, event.time))
        db.execute("begin")
        db.executemany(
            "insert into outbox (msg_id, subject, headers, body, created_at) values (?,?,?,?,?)",
            rows,
        )
        db.execute("commit")
        futures = [
            await js.publish_async(subject, body, headers=json.loads(h))
            for _, _, h, body, _ in rows
        ]
        await asyncio.gather(*futures)
    got = 0
    while got < n_con:
        msgs = await psub.fetch(min(BATCH, n_con - got), timeout=5)
        now = datetime.now(UTC).isoformat()
        inbox = []
        for msg in msgs:
            if not verify(public, msg.data, msg.headers[HEADER_SIGNATURE]):
                raise AssertionError("a floor message did not verify")
            assert msg.headers[HEADER_KEY_ID]
            json.loads(msg.data)
            inbox.append(("floor", msg.headers["Nats-Msg-Id"], now))
        db.execute("begin")
        db.executemany("insert into inbox values (?,?,?)", inbox)
        db.execute("commit")
        for msg in msgs:
            await msg.ack()
        got += len(msgs)
    wall = time.perf_counter() - t0
    own, nats = time.process_time() - cpu0, cpu_seconds(nats_pid) - nats0
    db.close()
    await js.delete_stream(stream)
    await nc.close()
    per = 1000 / arrivals
    return {
        "what": "sign + outbox executemany + publish, fetch + verify + inbox executemany + ack",
        "published_per_arrival": published,
        "consumed_per_arrival": consumed,
        "cpu_ms_per_arrival": {
            "bench process": own * per,
            "nats-server": nats * per,
            "total": (own + nats) * per,
        },
        "wall_s": wall,
    }
