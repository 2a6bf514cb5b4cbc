"""A partner system (a care centre) reports an arrival with plain nats-py, no emaflyt code.

    python examples/partner_arrival.py --unit centre-demo --key centre-demo.pem \
        --arrived-at 2026-04-02T10:00:00+02:00

It signs the CloudEvent with the centre's Ed25519 key (see contracts/README.md), publishes it
to JetStream, and prints the case that intake opened and the deadlines planning scheduled.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime

import nats
from cryptography.hazmat.primitives import serialization


def signed(body: bytes, unit: str, key_path: str) -> dict[str, str]:
    private = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(public).hexdigest()[:16]
    return {"Ema-Key-Id": f"{unit}/{kid}",
            "Ema-Signature": base64.b64encode(private.sign(body)).decode()}  # fmt: skip


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--unit", required=True, help="the care centre's unit id")
    p.add_argument("--key", required=True, help="the centre's Ed25519 private key (PEM)")
    p.add_argument("--duf", default="202600001234")
    p.add_argument("--arrived-at", default=datetime.now(UTC).isoformat())
    p.add_argument("--event-id", default=str(uuid.uuid4()), help="reuse to test deduplication")
    p.add_argument("--wait", type=float, default=10.0)
    args = p.parse_args()

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
    headers = {"Nats-Msg-Id": event["id"], **signed(body, args.unit, args.key)}

    nc = await nats.connect(args.nats_url)
    js = nc.jetstream()
    seen: dict[str, list] = {"ema.case.opened": [], "ema.planning.deadline.scheduled": []}
    done = asyncio.Event()

    async def on_event(msg) -> None:  # noqa: ANN001
        ev = json.loads(msg.data)
        if ev.get("correlationid") == event["id"]:
            seen[msg.subject].append(ev["data"])
            if (
                seen["ema.planning.deadline.scheduled"]
                and len(seen["ema.planning.deadline.scheduled"]) >= 5
            ):
                done.set()

    for subject in seen:
        await nc.subscribe(subject, cb=on_event)
    ack = await js.publish("ema.intake.arrival", body, headers=headers)
    print(f"published arrival {event['id']} -> stream {ack.stream} seq {ack.seq}"
          f"{' (duplicate, dropped by JetStream)' if ack.duplicate else ''}")  # fmt: skip
    try:
        await asyncio.wait_for(done.wait(), args.wait)
    except TimeoutError:
        pass
    for case in seen["ema.case.opened"]:
        print(f"case opened: {case['case_ref']} ({case['case_id']}) at {case['care_centre']}")
    for task in sorted(seen["ema.planning.deadline.scheduled"], key=lambda t: t["due"]):
        print(f"deadline: {task['task']:20s} due {task['due']}  ({task['legal_ref']})")
    print(json.dumps({"cases": seen["ema.case.opened"],
                      "deadlines": seen["ema.planning.deadline.scheduled"]}))  # fmt: skip
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
