"""A partner system (a care centre) reports an arrival with plain nats-py, no emaflyt code.

    python examples/partner_arrival.py --unit centre-demo --key centre-demo.pem \\
        --jwt data/nats/users/centre-demo/<kid>.jwt --arrived-at 2026-04-02T10:00:00+02:00

It logs in to NATS as the centre itself (its user JWT from the operator, the server's nonce
signed with the centre's Ed25519 key: the same key that signs its messages), signs the
CloudEvent, publishes it, and reads from its own durable consumers the case intake opened
and the deadlines planning scheduled for it (contracts/README.md). Exits 1 when no case came,
or not the deadlines named by --until (the arrival talk by default).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import uuid
from datetime import UTC, datetime

import nats
from cryptography.hazmat.primitives import serialization


def load_key(path: str):  # noqa: ANN201
    return serialization.load_pem_private_key(open(path, "rb").read(), password=None)


def signed(body: bytes, unit: str, private) -> dict[str, str]:  # noqa: ANN001
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(public).hexdigest()[:16]
    return {
        "Ema-Key-Id": f"{unit}/{kid}",
        "Ema-Signature": base64.b64encode(private.sign(body)).decode(),
    }


async def fetch_mine(js, stream: str, durable: str, wanted, done, wait: float) -> None:  # noqa: ANN001
    """Read the unit's own durable consumer until `done()` holds and nothing more comes
    for a second, or `wait` runs out."""
    sub = await js.pull_subscribe_bind(durable, stream)
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        try:
            msgs = await sub.fetch(50, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):  # nothing to read now
            if done():
                return
            continue
        for msg in msgs:
            wanted(msg)
            await msg.ack()


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--unit", required=True, help="the care centre's unit id")
    p.add_argument("--key", required=True, help="the centre's Ed25519 private key (PEM)")
    p.add_argument("--jwt", required=True, help="the centre's NATS user JWT (from the operator)")
    p.add_argument("--duf", default="202600001234")
    p.add_argument("--arrived-at", default=datetime.now(UTC).isoformat())
    p.add_argument("--event-id", default=str(uuid.uuid4()), help="reuse to test deduplication")
    p.add_argument("--wait", type=float, default=10.0)
    p.add_argument(
        "--until",
        default="arrival_talk",
        help="comma-separated deadlines (tasks) to wait for before a quiet second ends the "
        "wait; the others that come by then are printed too",
    )
    args = p.parse_args()
    private = load_key(args.key)
    jwt = open(args.jwt).read().strip()

    event = {
        "specversion": "1.0",
        "id": args.event_id,
        "source": args.unit,
        "type": "no.ema.intake.arrival.v1",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "duf_number": args.duf,
            "name": "Test Testesen",
            "birth_date": "2013-05-01",
            "birth_date_estimated": True,
            "sex": "male",
            "nationality": "AFG",
            "languages": ["prs", "ps"],
            "care_centre": args.unit,
            "arrived_at": args.arrived_at,
        },
    }
    body = json.dumps(event).encode()
    headers = {"Nats-Msg-Id": event["id"], **signed(body, args.unit, private)}

    nc = await nats.connect(
        args.nats_url,
        user_jwt_cb=lambda: jwt.encode(),
        signature_cb=lambda nonce: base64.b64encode(private.sign(nonce.encode())),
        inbox_prefix=f"_INBOX_{args.unit}",  # the only replies this unit may read
    )
    js = nc.jetstream()
    ack = await js.publish("ema.intake.arrival", body, headers=headers)
    print(
        f"published arrival {event['id']} -> stream {ack.stream} seq {ack.seq}"
        f"{' (duplicate, dropped by JetStream)' if ack.duplicate else ''}"
    )

    cases: list[dict] = []
    deadlines: dict[str, dict] = {}

    def on_registered(msg) -> None:  # noqa: ANN001
        ev = json.loads(msg.data)
        if ev["data"]["arrival_id"] == event["id"]:
            cases.append(ev["data"])

    def on_task(msg) -> None:  # noqa: ANN001
        ev = json.loads(msg.data)
        # One task-notice.v1 per task, or, for a unit registered with grouped notices, one
        # task-notices.v1 carrying them all (contracts/README.md §6).
        grouped = ev["type"] == "no.ema.notify.task-notices.v1"
        for task in ev["data"]["notices"] if grouped else [ev["data"]]:
            if cases and task["case_id"] == cases[0]["case_id"] and task["status"] == "scheduled":
                deadlines[task["task_id"]] = task

    durable = f"unit-{args.unit}"  # provisioned by the operator at registration
    await fetch_mine(js, "INTAKE", durable, on_registered, lambda: bool(cases), args.wait)
    until = {t for t in args.until.split(",") if t}

    def have_all() -> bool:
        return until <= {t["task"] for t in deadlines.values()} if until else bool(deadlines)

    await fetch_mine(js, "NOTIFY", durable, on_task, have_all, args.wait)
    await nc.close()
    for case in cases:
        print(
            f"case {case['outcome']}: {case['case_ref']} ({case['case_id']}) "
            f"at {case['care_centre']}"
        )
    for task in sorted(deadlines.values(), key=lambda t: t["due"]):
        print(f"deadline: {task['task']:20s} due {task['due']}  ({task['legal_ref']})")
    print(json.dumps({"cases": cases, "deadlines": list(deadlines.values())}))
    if not cases:
        print(
            f"no answer within {args.wait:g}s: the arrival was refused or not handled yet; the "
            "operator sees why in the dead letters (`emaflyt dlq list`)",
            file=sys.stderr,
        )
        return 1
    if not have_all():
        missing = ", ".join(sorted(until - {t["task"] for t in deadlines.values()}))
        print(
            f"the case was opened, but no deadline {missing} within {args.wait:g}s", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
