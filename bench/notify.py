"""Notifications per second through the whole path: N signed task-status changes on the bus
(one case message each) → notify (inbox, delivery) → email on a real SMTP server (aiosmtpd)
on loopback. Beside it, in the same run: raw nats-py JetStream publish and raw smtplib sends
to the same SMTP server.
Prints figures; asserts nothing about time.

    .venv/bin/python bench/notify.py [N]      (default 2000)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import platform
import re
import smtplib
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller  # noqa: E402

from bench.common import jetstream_baseline, latency_ms  # noqa: E402
from contracts.messages import CaseTasksV1, TaskStatusV2, UnitKind  # noqa: E402
from deploy.launcher import System, free_port  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from tests.support import Partner  # noqa: E402


class Counter:
    """Counts mails and notes when the first mail naming each case reference arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.first_seen: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.count += 1
        now = time.perf_counter()
        msg = email.message_from_bytes(envelope.content or b"", policy=email.policy.default)
        text = str(msg["Subject"] or "") + "".join(
            part.get_content() for part in msg.walk() if part.get_content_maintype() == "text"
        )
        for ref in REF.findall(text):
            self.first_seen.setdefault(ref, now)
        return "250 OK"


REF = re.compile(r"EMA-B[0-9]{6}")


def raw_smtp(port: int, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@b", "c@d", f"raw {i}"
        msg.set_content("x")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(msg)
    return n / (time.perf_counter() - t0)


async def measure(system: System, n: int, box: Counter, smtp_port: int) -> dict[str, Any]:
    body = {
        "unit": "centre-bench",
        "role": "contact_person",
        "email": "kp@bench.no",
        "digest": False,
    }
    # Recipients are an administrator's to manage (services/notify/app.py, issue 12).
    system.api("notify", "/recipients", role="administrator", data=body, method="POST")
    planner = await Partner.register(system, "svc-bench-planning", UnitKind.SERVICE)
    js = planner.nc.jetstream()
    events = []
    for i in range(n):
        data = TaskStatusV2(
            task_id=str(uuid.uuid4()),
            case_id=str(uuid.uuid4()),
            case_ref=f"EMA-B{i:06d}",
            task="kopp_proposal",
            title_nb="Forslag til KOPP sendt Bufetat",
            title_en="KOPP proposal sent to Bufetat",
            kind="task",
            due=date(2026, 5, 13),
            status="due_soon",
            responsible_unit="centre-bench",
            role="contact_person",
            strength="skal",
            legal_ref="Bufdir, Retningslinjer for omsorgssentre",
            pathway="ema-care-centre",
        )
        # As planning sends it (docs/decisions/0018): a case's status changes in one message.
        tasks = CaseTasksV1(case_id=data.case_id, case_ref=data.case_ref, statuses=[data])
        subject, _, raw, headers = build_event(planner.key, "no.ema.planning.case-tasks.v1", tasks)
        events.append((subject, raw, headers))
    t0 = time.perf_counter()
    sent: dict[str, float] = {}
    futures = []
    for i, (s, b, h) in enumerate(events):
        sent[f"EMA-B{i:06d}"] = time.perf_counter()
        futures.append(await js.publish_async(s, b, headers=h))
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    latency_first = None
    while box.count < n and time.perf_counter() - t0 < 900:
        if latency_first is None and box.count:
            latency_first = time.perf_counter() - t0
        await asyncio.sleep(0.1)
    total = time.perf_counter() - t0
    received = box.count  # before the raw smtplib baseline adds its own mails
    await planner.close()
    raw_pub = n / published
    smtp_rate = raw_smtp(smtp_port, min(n, 500))
    latencies = [box.first_seen[ref] - t for ref, t in sent.items() if ref in box.first_seen]
    return {
        "path": "task status → notification → email received",
        "n": n,
        "received": received,
        "seconds": total,
        "per_s": received / total,
        "first_email_s": latency_first,
        **latency_ms(latencies),
        "published_per_s": raw_pub,
        "smtp_baseline_per_s": smtp_rate,
        "baseline": await jetstream_baseline(system, n),
    }


def report(f: dict[str, Any]) -> None:
    n, raw = f["n"], f["baseline"]
    print(
        f"# notify path, {n} events ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})"
    )
    print(
        f"event published -> notification -> email received: {f['received']}/{n} in "
        f"{f['seconds']:.1f} s, {f['per_s']:,.0f} notifications/s; latency p50 "
        f"{f['p50_ms']:,.0f} ms, p99 {f['p99_ms']:,.0f} ms"
    )
    print(f"raw nats-py publish_async of the same events: {f['published_per_s']:,.0f} msg/s")
    print(
        f"raw nats-py JetStream publish+consume: {raw['end_to_end_per_s']:,.0f} msg/s, "
        f"p50 {raw['p50_ms']:,.1f} ms, p99 {raw['p99_ms']:,.1f} ms"
    )
    print(
        f"raw smtplib send, one connection per mail, same SMTP server: "
        f"{f['smtp_baseline_per_s']:,.0f} mails/s"
    )
    print(f"ratio notifications/s : raw smtplib = {f['per_s'] / f['smtp_baseline_per_s']:.2f}")


def run(n: int = 2000) -> dict[str, Any]:
    smtp_port = free_port()
    box = Counter()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        system = System(
            Path(tmp),
            nats_port=0,
            monitor_port=0,
            http_ports=dict.fromkeys(
                ("intake", "planning", "consent", "notify", "municipality"), 0
            ),
            env={
                "EMA_LOG_LEVEL": "WARNING",
                "EMA_SMTP_PORT": str(smtp_port),
                "EMA_WORKER_INTERVAL": "0.2",
            },
        )
        system.up()
        try:
            return asyncio.run(measure(system, n, box, smtp_port))
        finally:
            system.down()
            controller.stop()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=2000, help="task-status events")
    report(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
