"""Thin-path throughput: N signed arrivals through intake → planning → notify, beside raw
nats-py JetStream publish on the same run. Prints figures; asserts nothing about time.

    .venv/bin/python bench/thin_path.py [N]
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402

from contracts.messages import ArrivalV1, UnitKind  # noqa: E402
from deploy.launcher import System, http_json  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from tests.support import ARRIVAL, Partner  # noqa: E402

TIME_LIMIT_S = 600


async def raw_baseline(url: str, n: int) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCHRAW", subjects=["benchraw.>"])
    body = os.urandom(600)
    t0 = time.perf_counter()
    for i in range(n):
        await js.publish("benchraw.x", body, headers={"Nats-Msg-Id": f"s{i}"})
    seq = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    futures = [await js.publish_async("benchraw.y", body, headers={"Nats-Msg-Id": f"a{i}"})
               for i in range(n)]  # fmt: skip
    await asyncio.gather(*futures)
    pipelined = n / (time.perf_counter() - t0)
    await js.delete_stream("BENCHRAW")
    await nc.close()
    return {"sequential": seq, "pipelined": pipelined}


async def run(system: System, n: int) -> None:
    partner = await Partner.register(system.nats_url, "centre-bench", UnitKind.CARE_CENTRE)
    messages = []
    for i in range(n):
        data = ArrivalV1(**{**ARRIVAL, "duf_number": f"{202700000000 + i}",
                            "care_centre": "centre-bench"})  # fmt: skip
        subject, _, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
        messages.append((subject, body, headers))
    js = partner.nc.jetstream()
    t0 = time.perf_counter()
    futures = [await js.publish_async(s, b, headers=h) for s, b, h in messages]
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    notify = f"http://127.0.0.1:{system.http_ports['notify']}/healthz"
    planning = f"http://127.0.0.1:{system.http_ports['planning']}/healthz"
    marks: dict[str, float] = {}
    while time.perf_counter() - t0 < TIME_LIMIT_S:
        p = http_json(planning)["consumers"]["planning-cases"]["handled"]
        q = http_json(notify)["consumers"]["notify-deadlines"]["handled"]
        if p >= n and "cases" not in marks:
            marks["cases"] = time.perf_counter() - t0
        if q >= 5 * n:
            marks["notified"] = time.perf_counter() - t0
            break
        await asyncio.sleep(0.2)
    await partner.nc.close()
    raw = await raw_baseline(system.nats_url, n)
    done = marks.get("notified")
    print(
        f"# thin path, {n} arrivals ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})"
    )
    print(f"publish {n} signed arrivals (publish_async): {n / published:,.0f} msg/s")
    cases = marks.get("cases", float("nan"))
    print(f"arrival -> case opened -> 5 deadlines scheduled (planning done): "
          f"{cases:.1f} s, {n / cases:,.0f} arrivals/s")  # fmt: skip
    if done:
        print(
            f"... -> 5 notifications recorded per arrival: {done:.1f} s, "
            f"{n / done:,.0f} arrivals/s ({5 * n / done:,.0f} notifications/s)"
        )
    else:
        print(f"notifications incomplete after {TIME_LIMIT_S} s")
    print(
        f"raw nats-py JetStream publish+ack, same server: sequential {raw['sequential']:,.0f}"
        f" msg/s, pipelined {raw['pipelined']:,.0f} msg/s"
    )
    if done:
        print(
            f"ratio thin path (arrivals/s) to raw sequential publish: "
            f"{(n / done) / raw['sequential']:.3f}"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
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
