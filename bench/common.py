"""What the benchmarks share: the raw nats-py JetStream baseline, percentiles, reading a
stream with its server timestamps, and a description of the machine."""

from __future__ import annotations

import asyncio
import glob
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_ms(values_s: list[float]) -> dict[str, float | None]:
    p50, p99 = percentile(values_s, 50), percentile(values_s, 99)
    return {
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
    }


async def read_stream(nc: Any, stream: str, subject: str) -> list[tuple[bytes, datetime]]:
    """Every message on a subject with the time the server stored it."""
    from tests.support import read_subject

    return [(msg.data, msg.metadata.timestamp) for msg in await read_subject(nc, stream, subject)]


async def jetstream_baseline(system: Any, n: int, size: int = 600) -> dict[str, Any]:
    """Raw nats-py on the same server: N messages of `size` bytes published pipelined
    (publish_async, each with a Nats-Msg-Id as emaflyt sends them) while a pull consumer
    fetches and acks them; throughput of each side and the publish-to-consume latency."""
    nc = await system.connect()  # the operator's user: a stream of its own for the baseline
    js = nc.jetstream()
    stream = f"BENCHRAW{os.getpid()}"
    await js.add_stream(name=stream, subjects=[f"benchraw{os.getpid()}.>"])
    subject = f"benchraw{os.getpid()}.x"
    psub = await js.pull_subscribe(subject, durable="raw", stream=stream)
    body = os.urandom(size)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    marks: dict[str, float] = {}

    async def consume() -> None:
        got = 0
        while got < n:
            try:
                msgs = await psub.fetch(256, timeout=2)
            except Exception:  # noqa: BLE001 (a fetch timeout while the publisher starts)
                continue
            now = time.perf_counter()
            for msg in msgs:
                latencies.append(now - sent[int(msg.headers["Nats-Msg-Id"])])
                await msg.ack()
            got += len(msgs)
        marks["consumed"] = time.perf_counter()
        done.set()

    consumer = asyncio.create_task(consume())
    t0 = time.perf_counter()
    futures = []
    for i in range(n):
        sent[i] = time.perf_counter()
        futures.append(await js.publish_async(subject, body, headers={"Nats-Msg-Id": str(i)}))
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    await asyncio.wait_for(done.wait(), 300)
    await consumer
    t1 = time.perf_counter()
    for i in range(min(n, 2000)):  # one at a time: the round trip of a single publish
        await js.publish(f"benchraw{os.getpid()}.seq", body, headers={"Nats-Msg-Id": f"s{i}"})
    sequential = min(n, 2000) / (time.perf_counter() - t1)
    await js.delete_stream(stream)
    await nc.close()
    return {
        "n": n,
        "publish_per_s": n / published,
        "sequential_publish_per_s": sequential,
        "end_to_end_per_s": n / (marks["consumed"] - t0),
        **latency_ms(latencies),
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    from deploy.launcher import nats_server_binary

    try:
        version = subprocess.run(
            [nats_server_binary(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "nats_server": version,
        "os": platform.platform(),
        "load_average_at_start": load,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (from /proc, as the OS counts)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_ids(system: Any) -> dict[str, int]:
    """The pid of every service process of a launcher System, and of its nats-server."""
    pids = {name: p.proc.pid for name, p in system.procs.items() if p.proc is not None}
    if getattr(system, "nats", None) is not None and system.nats.proc is not None:
        pids["nats-server"] = system.nats.proc.pid
    return pids


def cpu_snapshot(system: Any) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in process_ids(system).items()}


def sql_snapshot(system: Any) -> dict[str, int]:
    """SQL statements each service has sent so far (its /healthz)."""
    out = {}
    for name, proc in system.procs.items():
        try:
            out[name] = int(proc.health().get("sql_statements", 0))
        except Exception:  # noqa: BLE001 (a service without the counter)
            continue
    return out


def per_unit(after: dict[str, float], before: dict[str, float], n: int, scale: float) -> dict:
    """(after - before) / n * scale per process, and the sum."""
    out = {k: (after[k] - before.get(k, 0)) / n * scale for k in after}
    out["total"] = sum(out.values())
    return out


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def flow_snapshot(system: Any) -> dict[str, int]:
    """Messages the services have published (outbox) and consumed (handled), summed."""
    published = consumed = 0
    for proc in system.procs.values():
        try:
            health = proc.health()
        except Exception:  # noqa: BLE001
            continue
        published += int(health.get("outbox_published", 0))
        consumed += sum(int(c.get("handled", 0)) for c in health.get("consumers", {}).values())
    return {"published": published, "consumed": consumed}


def run_queue_snapshot() -> dict[int, tuple[int, int]]:
    """Per thread on the machine: (its process id, ns it has waited on a run queue so far),
    the 2nd field of /proc/<pid>/task/<tid>/schedstat (/proc/<pid>/schedstat alone counts
    only a process's main thread)."""
    out = {}
    for path in glob.glob("/proc/[0-9]*/task/[0-9]*/schedstat"):
        parts = path.split("/")
        try:
            out[int(parts[4])] = (int(parts[2]), int(Path(path).read_text().split()[1]))
        except (OSError, ValueError, IndexError):  # the thread ended while being read
            continue
    return out


def run_queue_ms(
    after: dict[int, tuple[int, int]], before: dict[int, tuple[int, int]], n: int, pids: dict
) -> dict[str, float]:
    """Run-queue wait between two snapshots in ms per message: summed over every thread of
    the machine ("system", threads that ended in between are lost), and per process of ours."""
    names = {pid: name for name, pid in pids.items()}
    out = dict.fromkeys(pids, 0.0)
    total = 0
    for tid, (pid, ns) in after.items():
        prev = before.get(tid)
        waited = ns - prev[1] if prev and prev[0] == pid and prev[1] <= ns else ns
        total += waited
        if pid in names:
            out[names[pid]] += waited / 1e6 / n
    out["system"] = total / 1e6 / n
    return out


class Window:
    """CPU per process (from the OS), run-queue wait and load average over a stretch of a
    run, per message."""

    def __init__(self, system: Any) -> None:
        self.system = system
        self.cpu, self.runq = cpu_snapshot(system), run_queue_snapshot()
        self.sql, self.load = sql_snapshot(system), load_average()

    def figures(self, n: int) -> dict[str, Any]:
        cpu, runq = cpu_snapshot(self.system), run_queue_snapshot()
        return {
            "load_average": {"before": self.load, "after": load_average()},
            "cpu_ms": per_unit(cpu, self.cpu, n, 1000),
            "run_queue_ms": run_queue_ms(runq, self.runq, n, process_ids(self.system)),
            "sql": per_unit(sql_snapshot(self.system), self.sql, n, 1),
        }


async def paced(
    items: Sequence[Any], rate: float, send: Callable[[Any], Awaitable[Any]]
) -> dict[str, float]:
    """Open loop: send each item at its time on the clock (i / rate after the first), not
    waiting for any reply; returns the rate asked for and the rate achieved."""
    t0 = time.perf_counter()
    for i, item in enumerate(items):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(item)
    spread = time.perf_counter() - t0
    achieved = (len(items) - 1) / spread if len(items) > 1 and spread > 0 else None
    return {"target_per_s": rate, "offered_per_s": achieved, "seconds": spread}


LOADS = (0.5, 0.8)  # offered loads as shares of the capacity the burst measured


def load_count(rate: float, seconds: float, least: int = 20) -> int:
    """Messages for an offered load held for `seconds`."""
    return max(least, round(rate * seconds))
