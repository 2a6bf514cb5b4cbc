"""Notify over the real bus with a real SMTP server (aiosmtpd) and a webhook receiver.
Planning's day is pinned with EMA_TODAY so one KOPP deadline can be followed from due soon,
to due, to overdue."""

from __future__ import annotations

import asyncio
import email
import json
from datetime import date, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System, free_port
from services.notify.channels import verify_webhook
from services.planning.calendar import add_working_days
from tests.conftest import start_system
from tests.support import (
    ARRIVAL,
    Partner,
    dead_letters,
    http_json,
    self_signed_tls,
    stream_messages,
    wait_for,
)

MONDAY = date(2026, 5, 11)
KOPP_DUE = add_working_days(MONDAY, 2)  # Wednesday 13 May
ARRIVED = KOPP_DUE - timedelta(days=21)
SECRET = "webhook-secret-0123456789"
DIGEST = "Daglig oversikt fra emaflyt"


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.mails.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"

    def to(self, address: str, containing: str = "", digests: bool = False) -> list:
        """Mails to an address containing a text; the daily digest only when asked for."""
        return [
            m
            for m in self.mails
            if m["To"] == address
            and containing in m.get_content()
            and (m["Subject"] == DIGEST) == digests
        ]


def smtp(port: int) -> tuple[Controller, Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, box


async def webhook_receiver(port: int, received: list[dict], tls) -> web.AppRunner:  # noqa: ANN001
    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_webhook(SECRET, dict(request.headers), body)
        received.append({"verified": ok, "payload": json.loads(body)})
        return web.json_response({}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    return runner


def add_recipient(system: System, **body) -> dict:  # noqa: ANN003
    """POST /recipients with an administrator's token."""
    return http_json(
        f"http://127.0.0.1:{system.http_ports['notify']}/recipients", timeout=5, data=body
    )


def deliveries(system: System) -> dict:
    return http_json(f"http://127.0.0.1:{system.http_ports['notify']}/deliveries")


def at(system: System, day: date) -> None:
    """Restart planning with its day pinned (as if the calendar had moved on)."""
    system.procs["planning"].stop()
    system.start_service("planning", EMA_TODAY=day.isoformat())


@pytest.fixture
def mail_system(tmp_path: Path):  # noqa: ANN201
    port = free_port()
    cert, tls = self_signed_tls(tmp_path)
    system = start_system(
        tmp_path / "system",
        EMA_SMTP_PORT=str(port),
        EMA_WORKER_INTERVAL="0.2",
        EMA_WEBHOOK_HOSTS="127.0.0.1",
        EMA_WEBHOOK_CA_FILE=str(cert),
        EMA_DELIVERY_BACKOFF="0.1",
        EMA_DELIVERY_BACKOFF_MAX="0.3",
        EMA_DELIVERY_MAX_ATTEMPTS="20",
        EMA_TODAY=MONDAY.isoformat(),
        EMA_DIGEST_HOUR="0",
    )
    system.tls = tls  # the webhook receivers' side
    yield system, port
    system.down()


async def test_kopp_deadline_due_soon_due_and_overdue_by_email_and_webhook(mail_system) -> None:  # noqa: ANN001
    system, port = mail_system
    controller, box = smtp(port)
    hook_port, hooks = free_port(), []
    runner = await webhook_receiver(hook_port, hooks, system.tls)
    try:
        centre = await Partner.register(system, "centre-mail", UnitKind.CARE_CENTRE)
        add_recipient(system, unit="centre-mail", role="contact_person", email="kp@senter.no")
        add_recipient(
            system,
            unit="centre-mail",
            role="centre_leader",
            email="leder@senter.no",
            webhook_url=f"https://127.0.0.1:{hook_port}/hook",
            webhook_secret=SECRET,
        )
        await centre.send(
            "no.ema.intake.arrival.v1",
            ArrivalV1(
                **{
                    **ARRIVAL,
                    "care_centre": "centre-mail",
                    "arrived_at": f"{ARRIVED}T10:00:00+02:00",
                }
            ),
        )

        # Monday: two working days ahead, the KOPP is due soon.
        soon = await wait_for(lambda: box.to("kp@senter.no", "KOPP"))
        assert "om kort tid" in soon[0].get_content() and "13.05.2026" in soon[0].get_content()
        assert soon[0]["Subject"].startswith("Frist snart: sak EMA-")
        # The same status event delivered again changes nothing.
        status = [
            x
            for x in await stream_messages(centre.nc, "PLANNING", "ema.planning.case.tasks")
            if any(d["task"] == "kopp_proposal" for d in json.loads(x.data)["data"]["statuses"])
        ]
        headers = {**status[0].headers, "Nats-Msg-Id": "again-1"}
        await centre.nc.jetstream().publish(status[0].subject, status[0].data, headers=headers)

        at(system, KOPP_DUE)  # Wednesday: due today
        due = await wait_for(lambda: box.to("kp@senter.no", "KOPP sendt Bufetat er i dag"))
        assert len(due) == 1
        at(system, KOPP_DUE + timedelta(days=1))  # Thursday: overdue, escalated to the leader
        leader = await wait_for(lambda: box.to("leder@senter.no", "KOPP"))
        assert "1 dager over fristen" in leader[0].get_content()
        hook = await wait_for(lambda: [h for h in hooks if "KOPP" in h["payload"]["text"]])
        assert hook[0]["verified"] and hook[0]["payload"]["role"] == "centre_leader"
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        assert len(box.to("kp@senter.no", "KOPP")) == 3  # due soon, due, overdue: once each
        assert (
            len(box.to("kp@senter.no", digests=True)) == 1
        )  # one digest a recipient and day  # due soon, due, overdue: each once
        assert (
            len(
                [
                    m
                    for m in box.to("leder@senter.no", "KOPP")
                    if m["Subject"].startswith("Frist oversittet")
                ]
            )
            == 1
        )
        for mail in box.mails:  # never the child's name or birth date
            assert ARRIVAL["name"] not in mail.get_content()
            assert "2013" not in mail.get_content()
        assert deliveries(system)["counts"].get("failed", 0) == 0
        await centre.close()
    finally:
        controller.stop()
        await runner.cleanup()


async def test_smtp_down_at_first_gets_the_mail_later_and_a_dead_webhook_is_dead_lettered(
    mail_system,  # noqa: ANN001
) -> None:
    system, port = mail_system
    centre = await Partner.register(system, "centre-down", UnitKind.CARE_CENTRE)
    add_recipient(
        system,
        unit="centre-down",
        role="centre_leader",
        email="leder@down.no",
        webhook_url=f"https://127.0.0.1:{free_port()}/nobody",
        webhook_secret=SECRET,
    )
    await centre.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(
            **{**ARRIVAL, "care_centre": "centre-down", "arrived_at": "2026-03-02T10:00:00+01:00"}
        ),
    )
    await wait_for(lambda: deliveries(system)["counts"].get("retrying", 0) >= 2)
    controller, box = smtp(port)  # the mail server comes up
    try:
        mails = await wait_for(lambda: box.to("leder@down.no"), timeout=20)
        assert mails
        # 4 overdue tasks and the daily digest
        sent = await wait_for(
            lambda: len(box.to("leder@down.no")) >= 4 and box.to("leder@down.no", digests=True)
        )
        sent = box.to("leder@down.no") + box.to("leder@down.no", digests=True)
        rows = deliveries(system)["deliveries"]
        email_rows = [d for d in rows if d["channel"] == "email"]
        assert {d["status"] for d in email_rows} == {"sent"}
        assert max(d["attempts"] for d in email_rows) >= 2
        assert len(sent) == len(email_rows)  # each once

        # The webhook never answers: after the last attempt it is failed and dead-lettered.
        # Each webhook delivery (four notices and the digest) reaches its last attempt on its
        # own schedule: wait until none is still retrying, then every one must be failed.
        def webhook_statuses() -> set[str]:
            return {
                d["status"] for d in deliveries(system)["deliveries"] if d["channel"] == "webhook"
            }

        await wait_for(lambda: "retrying" not in webhook_statuses(), timeout=30)
        assert webhook_statuses() == {"failed"}
        letters = await wait_for(lambda: _delivery_letters(centre), timeout=30)
        assert letters[0]["Ema-Dlq-Reason"].startswith("delivery failed after 20 attempts")
    finally:
        controller.stop()
        await centre.close()


async def _delivery_letters(partner: Partner) -> list[dict] | None:
    letters = [
        d for d in await dead_letters(partner.nc) if d.get("Ema-Dlq-Consumer") == "notify-delivery"
    ]
    return letters or None


def test_recipient_input_is_checked(mail_system) -> None:  # noqa: ANN001
    import urllib.error

    system, _ = mail_system
    with pytest.raises(urllib.error.HTTPError) as err:
        add_recipient(
            system, unit="centre-x", role="contact_person", webhook_url="https://127.0.0.1:1/x"
        )
    assert "webhook_secret" in json.loads(err.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as err:
        add_recipient(
            system,
            unit="centre-x",
            role="contact_person",
            webhook_secret=SECRET,
            webhook_url="http://127.0.0.1:1/x",
        )
    assert "must be https" in json.loads(err.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as err:
        add_recipient(system, unit="centre-x", role="janitor")
    assert "role must be one of" in json.loads(err.value.read())["error"]


def test_notify_cli_adds_recipients_and_shows_inbox_and_deliveries(mail_system) -> None:  # noqa: ANN001
    import subprocess
    import sys

    system, _ = mail_system
    root = Path(__file__).resolve().parents[2]
    base = [sys.executable, "-m", "deploy.cli", "--data-dir", str(system.data_dir), "notify"]
    run = lambda *a: subprocess.run(base + list(a), cwd=root, capture_output=True, text=True)  # noqa: E731
    ok = run(
        "recipient",
        "--unit",
        "centre-cli",
        "--role",
        "contact_person",
        "--email",
        "kp@cli.no",
        "--events",
        "task.overdue",
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["events"] == ["task.overdue"]
    bad = run(
        "recipient", "--unit", "centre-cli", "--role", "contact_person", "--events", "task.sometime"
    )
    assert bad.returncode == 2 and "unknown events" in bad.stderr
    assert run("inbox", "centre-cli").returncode == 0
    out = run("deliveries", "--json")
    assert out.returncode == 0 and "counts" in json.loads(out.stdout)
