"""Arrival burst: N signed arrivals through intake → planning (8 deadlines each) → notify,
beside raw nats-py JetStream publish and consume on the same server in the same run. Prints
figures and the counts that show nothing was lost; asserts nothing about time.

    .venv/bin/python bench/thin_path.py [N]      (default 10000)

`run(n)` returns the figures as a dict (bench/run_all.py). Latency of an arrival: from the
moment the server stored it to the moment it stored the last of its deadline messages
(both server timestamps), in a burst, so queueing is included.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    cpu_snapshot,
    flow_snapshot,
    jetstream_baseline,
    latency_ms,
    load_average,
    per_unit,
    read_stream,
    sql_snapshot,
)
from bench.floor import measure_floor  # noqa: E402
from contracts.messages import ArrivalV1, UnitKind  # noqa: E402
from deploy.launcher import SERVICES, System  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from tests.support import ARRIVAL, TASKS_ON_ARRIVAL, Partner  # noqa: E402

TIME_LIMIT_S = 1200


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def drained(js, stream: str, consumer: str) -> bool:  # noqa: ANN001
    info = await js.consumer_info(stream, consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


def arrivals(partner: Partner, n: int, offset: int) -> list[tuple[str, bytes, dict]]:
    now = datetime.now(UTC).isoformat()
    messages = []
    for i in range(offset, offset + n):
        data = ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": f"{202700000000 + i}",
                "care_centre": "centre-bench",
                "arrived_at": now,
            }
        )
        subject, _, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
        messages.append((subject, body, headers))
    return messages


async def quiet(js, system: System, timeout: float = 120) -> None:  # noqa: ANN001
    """Wait until every durable consumer of every service has nothing pending."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        busy = False
        for stream in await js.streams_info():
            consumers = await js.consumers_info(stream.config.name)
            busy |= any(c.num_pending or c.num_ack_pending for c in consumers)
        if not busy:
            return
        await asyncio.sleep(0.25)


async def measure(system: System, n: int, warm_up: int = 50) -> dict[str, Any]:
    partner = await Partner.register(system, "centre-bench", UnitKind.CARE_CENTRE)
    js = partner.nc.jetstream()
    operator = await system.connect()
    ojs = operator.jetstream()
    planning_db = system.data_dir / "planning.db"
    notify_db = system.data_dir / "notify.db"
    # A warm-up burst, awaited until every consumer is quiet: it tells how many notifications
    # one arrival causes, so "fully notified" below waits for that many.
    for s, b, h in arrivals(partner, warm_up, 10**6):
        await js.publish(s, b, headers=h)
    await quiet(ojs, system)
    await asyncio.sleep(1.5)
    await quiet(ojs, system)
    per_arrival = count(notify_db, "select count(*) from notify_notification") / warm_up
    expected_notifications = round(per_arrival * (warm_up + n))
    expected_deadlines = TASKS_ON_ARRIVAL * (warm_up + n)
    messages = arrivals(partner, n, 0)
    cpu0, sql0, load0 = cpu_snapshot(system), sql_snapshot(system), load_average()
    flow0 = flow_snapshot(system)
    t0 = time.perf_counter()
    futures = [await js.publish_async(s, b, headers=h) for s, b, h in messages]
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    marks: dict[str, float] = {}
    while time.perf_counter() - t0 < TIME_LIMIT_S:
        if "deadlines" not in marks and (
            count(planning_db, "select count(*) from planning_task") >= expected_deadlines
        ):
            marks["deadlines"] = time.perf_counter() - t0
        if "deadlines" in marks and (
            count(notify_db, "select count(*) from notify_notification") >= expected_notifications
        ):
            marks["notified"] = time.perf_counter() - t0
            break
        await asyncio.sleep(0.1)
    cpu1, sql1, load1 = cpu_snapshot(system), sql_snapshot(system), load_average()
    await quiet(ojs, system)  # the last acks and outbox rows, for the message counts
    flow1 = flow_snapshot(system)
    dlq = (await js.stream_info("DLQ")).state.messages
    # Latency per arrival from the server's own timestamps.
    stored = {
        json.loads(b)["id"]: ts
        for b, ts in await read_stream(partner.nc, "INTAKE", "ema.intake.arrival")
    }
    last: dict[str, datetime] = {}
    for b, ts in await read_stream(partner.nc, "PLANNING", "ema.planning.deadline.scheduled"):
        corr = json.loads(b).get("correlationid")
        if corr in stored and (corr not in last or ts > last[corr]):
            last[corr] = ts
    latencies = [(last[k] - stored[k]).total_seconds() for k in last]
    await partner.close()
    await operator.close()
    figures: dict[str, Any] = {
        "path": f"arrival → case → {TASKS_ON_ARRIVAL} deadlines → notifications",
        "n": n,
        "load_average": {"before": load0, "after": load1},
        "published_per_s": n / published,
        "seconds": marks.get("deadlines"),
        "per_s": n / marks["deadlines"] if "deadlines" in marks else None,
        "notified_seconds": marks.get("notified"),
        "notified_per_s": n / marks["notified"] if "notified" in marks else None,
        "notifications_per_arrival": per_arrival,
        "cpu_ms_per_arrival": per_unit(cpu1, cpu0, n, 1000),
        "sql_statements_per_arrival": per_unit(sql1, sql0, n, 1),
        **latency_ms(latencies),
        "counts": {
            "cases": count(system.data_dir / "intake.db", "select count(*) from intake_case"),
            "deadlines": count(planning_db, "select count(*) from planning_task"),
            "notifications": count(notify_db, "select count(*) from notify_notification"),
            "expected_notifications": expected_notifications,
            "dead_letters": dlq,
        },
    }
    # Published per arrival: the services' outbox rows plus the arrival itself.
    published = (flow1["published"] - flow0["published"]) / n + 1
    consumed = (flow1["consumed"] - flow0["consumed"]) / n
    floor = await measure_floor(system, n, published, consumed)
    figures["floor"] = floor
    total = figures["cpu_ms_per_arrival"]["total"]
    figures["floor_over_actual"] = floor["cpu_ms_per_arrival"]["total"] / total if total else None
    figures["baseline"] = await jetstream_baseline(system, n)
    return figures


def start(tmp: str, **env: str) -> System:
    system = System(
        Path(tmp),
        nats_port=0,
        monitor_port=0,
        http_ports=dict.fromkeys(SERVICES, 0),
        env={"EMA_LOG_LEVEL": "WARNING", **env},
    )
    system.up()
    return system


def run(n: int = 10000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        system = start(tmp)
        try:
            return asyncio.run(measure(system, n))
        finally:
            system.down()


def report(f: dict[str, Any]) -> None:
    n, raw = f["n"], f["baseline"]
    print(f"# arrival burst, {n} arrivals ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(f"publish {n} signed arrivals (publish_async): {f['published_per_s']:,.0f} msg/s")
    if f["seconds"]:
        print(
            f"arrival -> case opened -> {TASKS_ON_ARRIVAL} deadlines, all {n}: "
            f"{f['seconds']:.1f} s, "
            f"{f['per_s']:,.0f}/s; latency p50 {f['p50_ms']:,.0f} ms, "
            f"p99 {f['p99_ms']:,.0f} ms"
        )
    if f["notified_seconds"]:
        print(f"... -> every notification recorded: {f['notified_seconds']:.1f} s")
    else:
        print(f"not finished within {TIME_LIMIT_S} s")
    c = f["counts"]
    print(
        f"counts: cases {c['cases']}/{n}, deadlines {c['deadlines']}/{TASKS_ON_ARRIVAL * n}, "
        f"notifications {c['notifications']}, dead letters {c['dead_letters']}"
    )
    print(
        f"raw nats-py JetStream, same server, same run: publish {raw['publish_per_s']:,.0f} "
        f"msg/s pipelined, {raw['sequential_publish_per_s']:,.0f} sequential; publish+consume "
        f"{raw['end_to_end_per_s']:,.0f} msg/s, latency p50 {raw['p50_ms']:,.1f} ms, "
        f"p99 {raw['p99_ms']:,.1f} ms"
    )
    if f["per_s"]:
        print(
            f"ratio arrivals/s : raw publish+consume = {f['per_s'] / raw['end_to_end_per_s']:.4f}"
        )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=10000, help="arrivals in the burst")
    report(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
