"""Arrival path: signed arrivals through intake → planning → notify, until every task notice
and notification they cause is out, beside raw nats-py JetStream publish and consume and the
floor, both on the same server in the same run. Prints figures and the counts that show
nothing was lost; asserts nothing about time.

    .venv/bin/python bench/thin_path.py [N] [--unloaded 50] [--load-seconds 15]

`run(n)` returns the figures as a dict (bench/run_all.py). Latency of an arrival: from the
moment the server stored it (INTAKE) to the moment it stored the last task notice carrying
the arrival's id as correlation id (NOTIFY, ema.notify.tasks.>), both server timestamps.
Three ways: one arrival at a time (unloaded), a burst of N (capacity = N / seconds until
fully notified; queueing included), and open-loop offered loads at 50 % and 80 % of that
capacity.
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

from nats.js.errors import NotFoundError  # noqa: E402

from bench.common import (  # noqa: E402
    LOADS,
    Window,
    flow_snapshot,
    jetstream_baseline,
    latency_ms,
    load_count,
    paced,
    per_unit,
    read_stream,
    sql_snapshot,
)
from bench.floor import measure_floor  # noqa: E402
from contracts.messages import ArrivalV1, UnitKind  # noqa: E402
from deploy.launcher import SERVICES, System  # noqa: E402
from deploy.permissions import consumers  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from tests.support import ARRIVAL, Partner  # noqa: E402

TIME_LIMIT_S = 1200
ARRIVALS = "ema.intake.arrival"
NOTICES = "ema.notify.tasks.>"  # task notices, each addressed to one unit


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def drained(js, stream: str, consumer: str) -> bool:  # noqa: ANN001
    info = await js.consumer_info(stream, consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


def arrivals(partner: Partner, n: int, offset: int) -> list[tuple[str, bytes, dict, str]]:
    """N signed arrivals: (subject, body, headers, the arrival's id)."""
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
        subject, event, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
        messages.append((subject, body, headers, event.id))
    return messages


def own_consumers() -> list[tuple[str, str]]:
    """(stream, durable) of the services' own consumers: the ones a bench waits on (a
    partner unit's consumers and the directory's KV watchers are read by nobody here)."""
    return [(stream, durable) for service in SERVICES for stream, durable in consumers(service)]


async def quiet(js, timeout: float = 120) -> bool:  # noqa: ANN001
    """Wait until every service's own durable consumer has nothing pending; False if the
    timeout came first."""
    own = own_consumers()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        busy = False
        for stream, durable in own:
            try:
                info = await js.consumer_info(stream, durable)
            except NotFoundError:  # a service not started, or not yet bound
                continue
            busy |= bool(info.num_pending or info.num_ack_pending)
        if not busy:
            return True
        await asyncio.sleep(0.25)
    return False


class Notices:
    """Task notices (ema.notify.tasks.<unit>) as they are received, counted per CloudEvent
    correlation id: the id of the arrival that caused them."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.per_arrival = 0
        self.complete: set[str] = set()
        self.changed = asyncio.Event()

    async def on_msg(self, msg: Any) -> None:
        corr = json.loads(msg.data).get("correlationid")
        if not corr:
            return
        self.count[corr] = self.count.get(corr, 0) + 1
        if self.per_arrival and self.count[corr] >= self.per_arrival:
            self.complete.add(corr)
        self.changed.set()

    def expect(self, per_arrival: int) -> None:
        self.per_arrival = per_arrival
        self.complete = {k for k, v in self.count.items() if v >= per_arrival}

    async def wait(self, ids: set[str], timeout: float) -> bool:
        """Until every one of the arrivals has all its notices; False on timeout."""
        deadline = time.perf_counter() + timeout
        while not ids <= self.complete:
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass
        return True


async def server_latencies(nc, phases: dict[str, list[str]], per_arrival: int) -> dict:  # noqa: ANN001
    """Per phase: arrival stored (INTAKE) → the last of its task notices stored (NOTIFY),
    both server timestamps; only arrivals with all their notices count."""
    stored = {json.loads(b)["id"]: ts for b, ts in await read_stream(nc, "INTAKE", ARRIVALS)}
    last: dict[str, datetime] = {}
    seen: dict[str, int] = {}
    for b, ts in await read_stream(nc, "NOTIFY", NOTICES):
        corr = json.loads(b).get("correlationid")
        if corr in stored:
            seen[corr] = seen.get(corr, 0) + 1
            if corr not in last or ts > last[corr]:
                last[corr] = ts
    out = {}
    for name, ids in phases.items():
        done = [k for k in ids if seen.get(k, 0) >= per_arrival and k in stored]
        values = [(last[k] - stored[k]).total_seconds() for k in done]
        out[name] = {"n": len(ids), "fully_notified": len(done), **latency_ms(values)}
    return out


async def measure(
    system: System,
    n: int,
    warm_up: int = 50,
    unloaded: int = 50,
    load_seconds: float = 15.0,
    loads: tuple[float, ...] = LOADS,
    notices: str = "grouped",
) -> dict[str, Any]:
    """Warm-up, then latency three ways: one arrival at a time (`unloaded`), a burst of `n`
    (capacity, CPU, run-queue wait), and open-loop offered loads at `loads` x the burst's
    capacity, each held for `load_seconds`. Then the floor and the raw baseline. The bench's
    care centre hears its tasks as `notices` says ("each" or "grouped", ADR 0020)."""
    partner = await Partner.register(system, "centre-bench", UnitKind.CARE_CENTRE, notices=notices)
    js = partner.nc.jetstream()
    operator = await system.connect()
    ojs = operator.jetstream()
    notices = Notices()
    await operator.subscribe(NOTICES, cb=notices.on_msg)
    await operator.flush()
    planning_db = system.data_dir / "planning.db"
    notify_db = system.data_dir / "notify.db"
    offset = iter(range(0, 10**9, 10**6))
    # A warm-up burst, awaited until every consumer is quiet: it tells how many task notices
    # and notifications one arrival causes, so "fully notified" below waits for that many.
    warm = arrivals(partner, warm_up, next(offset))
    for s, b, h, _ in warm:
        await js.publish(s, b, headers=h)
    await quiet(ojs)
    await asyncio.sleep(1.5)
    await quiet(ojs)
    per_arrival = count(notify_db, "select count(*) from notify_notification") / warm_up
    counts = sorted(notices.count.get(i, 0) for *_, i in warm)
    notices_per_arrival = counts[len(counts) // 2]
    if not notices_per_arrival:
        raise RuntimeError(
            f"no task notice on {NOTICES} carried an arrival's id as its correlation id "
            f"({len(notices.count)} correlation ids seen): the arrival path cannot be timed; "
            "check that notify's notices are emitted while handling a message caused by the "
            "arrival (services/kit/outbox.py current_correlation)"
        )
    notices.expect(notices_per_arrival)
    phases: dict[str, list[str]] = {}

    # 1. Unloaded: one arrival at a time, the next when the last is fully notified.
    one = arrivals(partner, unloaded, next(offset))
    phases["unloaded"] = [i for *_, i in one]
    t0 = time.perf_counter()
    for s, b, h, i in one:
        await js.publish(s, b, headers=h)
        await notices.wait({i}, 60)
    unloaded_s = time.perf_counter() - t0
    await quiet(ojs)

    # 2. Burst: everything published at once; capacity, CPU, run-queue wait.
    before = count(notify_db, "select count(*) from notify_notification")
    expected_notifications = before + round(per_arrival * n)
    messages = arrivals(partner, n, next(offset))
    phases["burst"] = ids = [i for *_, i in messages]
    sql0, flow0 = sql_snapshot(system), flow_snapshot(system)
    window = Window(system)
    t0 = time.perf_counter()
    futures = [await js.publish_async(s, b, headers=h) for s, b, h, _ in messages]
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    marks: dict[str, float] = {}
    while time.perf_counter() - t0 < TIME_LIMIT_S:
        if "notices" not in marks and set(ids) <= notices.complete:
            marks["notices"] = time.perf_counter() - t0
        if "notices" in marks and (
            count(notify_db, "select count(*) from notify_notification") >= expected_notifications
        ):
            marks["notified"] = time.perf_counter() - t0
            break
        await asyncio.sleep(0.1)
    burst = window.figures(n)
    sql1 = sql_snapshot(system)
    await quiet(ojs)  # the last acks and outbox rows, for the message counts
    flow1 = flow_snapshot(system)
    capacity = n / marks["notified"] if "notified" in marks else None

    # 3. Offered loads, open loop: published at a fixed rate by the clock.
    offered: dict[str, dict[str, Any]] = {}
    for share in loads if capacity else ():
        name = f"load_{round(share * 100)}"
        rate = share * capacity
        batch = arrivals(partner, load_count(rate, load_seconds), next(offset))
        phases[name] = [i for *_, i in batch]
        futures = []

        async def send(m: tuple[str, bytes, dict, str], futures: list = futures) -> None:
            futures.append(await js.publish_async(m[0], m[1], headers=m[2]))

        window = Window(system)
        pace = await paced(batch, rate, send)
        await asyncio.gather(*futures)
        finished = await notices.wait(set(phases[name]), 300)
        offered[name] = {
            "share_of_capacity": share,
            **pace,
            "finished": finished,
            **window.figures(len(batch)),
        }
        await quiet(ojs)

    dlq = (await ojs.stream_info("DLQ")).state.messages
    latency = await server_latencies(operator, phases, notices_per_arrival)
    for name in offered:
        latency[name].update(offered[name])
    await partner.close()
    await operator.close()
    figures: dict[str, Any] = {
        "path": "arrival → case → deadlines → task notices and notifications",
        "n": n,
        "load_average": burst["load_average"],
        "published_per_s": n / published,
        "notices_seconds": marks.get("notices"),
        "notified_seconds": marks.get("notified"),
        "per_s": capacity,
        "notices_per_arrival": notices_per_arrival,
        "notifications_per_arrival": per_arrival,
        "cpu_ms_per_arrival": burst["cpu_ms"],
        "run_queue_ms_per_arrival": burst["run_queue_ms"],
        "sql_statements_per_arrival": per_unit(sql1, sql0, n, 1),
        **{k: latency["burst"][k] for k in ("p50_ms", "p99_ms")},
        "latency": {**latency, "unloaded": {**latency["unloaded"], "seconds": unloaded_s}},
        "counts": {
            "cases": count(system.data_dir / "intake.db", "select count(*) from intake_case"),
            "notifications": count(notify_db, "select count(*) from notify_notification"),
            "expected_notifications_after_burst": expected_notifications,
            "dead_letters": dlq,
        },
    }
    try:
        figures["counts"]["tasks"] = count(planning_db, "select count(*) from planning_task")
    except sqlite3.Error:  # planning's tables are planning's to change
        pass
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


def run(
    n: int = 10000, unloaded: int = 50, load_seconds: float = 15.0, notices: str = "grouped"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        system = start(tmp)
        try:
            figures = asyncio.run(
                measure(system, n, unloaded=unloaded, load_seconds=load_seconds, notices=notices)
            )
            return {**figures, "notices": notices}
        finally:
            system.down()


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f} ms"


def report(f: dict[str, Any]) -> None:
    n, raw = f["n"], f["baseline"]
    print(f"# arrival path, burst of {n} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(f"publish {n} signed arrivals (publish_async): {f['published_per_s']:,.0f} msg/s")
    if f["notified_seconds"]:
        print(
            f"burst: all {n} fully notified ({f['notices_per_arrival']} task notices, "
            f"{f['notifications_per_arrival']:.0f} notifications each) in "
            f"{f['notified_seconds']:.1f} s: {f['per_s']:,.1f} arrivals/s"
        )
    else:
        print(f"burst not fully notified within {TIME_LIMIT_S} s")
    for name, lat in f["latency"].items():
        rate = lat.get("offered_per_s")
        offered = f", offered {rate:,.1f}/s" if rate else ""
        print(
            f"latency {name:9} ({lat['fully_notified']}/{lat['n']} fully notified{offered}): "
            f"p50 {ms(lat['p50_ms'])}, p99 {ms(lat['p99_ms'])}"
        )
    cpu, rq = f["cpu_ms_per_arrival"], f["run_queue_ms_per_arrival"]
    print(
        f"burst: CPU {cpu['total']:.1f} ms per arrival (all our processes), run-queue wait "
        f"{rq['system']:.1f} ms per arrival (whole machine); load average "
        f"{f['load_average']['before']} -> {f['load_average']['after']}"
    )
    print(f"floor / actual CPU: {f['floor_over_actual']:.2f}")
    c = f["counts"]
    print(
        f"counts: cases {c['cases']}, notifications {c['notifications']}, "
        f"dead letters {c['dead_letters']}"
    )
    print(
        f"raw nats-py JetStream, same server, same run: publish {raw['publish_per_s']:,.0f} "
        f"msg/s pipelined, {raw['sequential_publish_per_s']:,.0f} sequential; publish+consume "
        f"{raw['end_to_end_per_s']:,.0f} msg/s, latency p50 {raw['p50_ms']:,.1f} ms, "
        f"p99 {raw['p99_ms']:,.1f} ms"
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=10000, help="arrivals in the burst")
    parser.add_argument("--unloaded", type=int, default=50, help="arrivals one at a time")
    parser.add_argument(
        "--load-seconds", type=float, default=15.0, help="how long each offered load is held"
    )
    parser.add_argument(
        "--notices",
        choices=("each", "grouped"),
        default="grouped",
        help="how the bench's care centre hears its tasks (ADR 0020)",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    report(run(args.n, args.unloaded, args.load_seconds, args.notices))
    print(f"(the whole run took {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
