"""Arrival burst: N signed arrivals through intake → planning (5 deadlines each) → notify,
beside raw nats-py JetStream publish on the same server in the same run. Prints figures and
the counts that show nothing was lost; asserts nothing about time.

    .venv/bin/python bench/thin_path.py [N]      (default 10000)
"""

from __future__ import annotations

import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402

from contracts.messages import ArrivalV1, UnitKind  # noqa: E402
from deploy.launcher import System  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from tests.support import ARRIVAL, Partner  # noqa: E402

TIME_LIMIT_S = 1200


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def raw_baseline(url: str, n: int) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCHRAW", subjects=["benchraw.>"])
    body = os.urandom(600)
    t0 = time.perf_counter()
    for i in range(min(n, 5000)):
        await js.publish("benchraw.x", body, headers={"Nats-Msg-Id": f"s{i}"})
    seq = min(n, 5000) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    futures = [await js.publish_async("benchraw.y", body, headers={"Nats-Msg-Id": f"a{i}"})
               for i in range(n)]  # fmt: skip
    await asyncio.gather(*futures)
    pipelined = n / (time.perf_counter() - t0)
    await js.delete_stream("BENCHRAW")
    await nc.close()
    return {"sequential": seq, "pipelined": pipelined}


async def drained(js, stream: str, consumer: str) -> bool:  # noqa: ANN001
    info = await js.consumer_info(stream, consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def run(system: System, n: int) -> None:
    partner = await Partner.register(system.nats_url, "centre-bench", UnitKind.CARE_CENTRE)
    now = datetime.now(UTC).isoformat()
    messages = []
    for i in range(n):
        data = ArrivalV1(**{**ARRIVAL, "duf_number": f"{202700000000 + i}",
                            "care_centre": "centre-bench", "arrived_at": now})  # fmt: skip
        subject, _, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
        messages.append((subject, body, headers))
    js = partner.nc.jetstream()
    t0 = time.perf_counter()
    futures = [await js.publish_async(s, b, headers=h) for s, b, h in messages]
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    planning_db = system.data_dir / "planning.db"
    marks: dict[str, float] = {}
    while time.perf_counter() - t0 < TIME_LIMIT_S:
        if (
            "deadlines" not in marks
            and count(planning_db, "select count(*) from planning_task") >= 5 * n
        ):
            marks["deadlines"] = time.perf_counter() - t0
        if "deadlines" in marks and await drained(js, "PLANNING", "notify-deadlines"):
            marks["notified"] = time.perf_counter() - t0
            break
        await asyncio.sleep(0.25)
    dlq = (await js.stream_info("DLQ")).state.messages
    await partner.nc.close()
    raw = await raw_baseline(system.nats_url, n)
    cases = count(system.data_dir / "intake.db", "select count(*) from intake_case")
    tasks = count(planning_db, "select count(*) from planning_task")
    notes = count(system.data_dir / "notify.db", "select count(*) from notify_notification")
    print(
        f"# arrival burst, {n} arrivals ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})"
    )
    rate = n / published
    print(f"publish {n} signed arrivals (publish_async): {published:.1f} s, {rate:,.0f} msg/s")
    if "deadlines" in marks:
        d = marks["deadlines"]
        print(f"arrival -> case opened -> 5 deadlines, all {n}: {d:.1f} s, {n / d:,.0f}/s")
    if "notified" in marks:
        d = marks["notified"]
        print(f"... -> every notification recorded: {d:.1f} s, {n / d:,.0f} arrivals/s")
    else:
        print(f"not finished within {TIME_LIMIT_S} s")
    print(
        f"counts: cases {cases}/{n}, deadlines {tasks}/{5 * n}, notifications {notes}, "
        f"dead letters {dlq}"
    )
    print(
        f"raw nats-py JetStream publish+ack, same server, same run: sequential "
        f"{raw['sequential']:,.0f} msg/s, pipelined {raw['pipelined']:,.0f} msg/s"
    )
    if "deadlines" in marks:
        print(
            f"ratio arrivals/s (to deadlines) : raw pipelined publish = "
            f"{n / marks['deadlines'] / raw['pipelined']:.4f}"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with tempfile.TemporaryDirectory() as tmp:
        system = System(Path(tmp), nats_port=0, monitor_port=0,
                        http_ports=dict.fromkeys(("intake", "planning", "consent", "notify",
                                                  "municipality"), 0),
                        env={"EMA_LOG_LEVEL": "WARNING"})  # fmt: skip
        system.up()
        try:
            asyncio.run(run(system, n))
        finally:
            system.down()


if __name__ == "__main__":
    main()
