"""What every partner program needs, with nothing but nats-py and cryptography
(contracts/README.md): log in to NATS as your unit, sign and publish CloudEvents, read your own
durable consumers, check that what emaflyt's services send is signed by them, seal a share
request to the consent broker, and open what is delivered to you.

The examples beside this file (one per unit kind) import it; copy it into your own system.
Each example ends by printing, or writing with --transcript, what it sent and what it read:
`emaflyt partner check` judges the same record (contracts/README.md §13).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

OSLO = ZoneInfo("Europe/Oslo")
X25519 = "HPKE-X25519-SHA256-A256GCM"
HYBRID = "HPKE-MLKEM768X25519-SHA256-A256GCM"
_SUITES = {
    X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    HYBRID: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
_MLKEM_PUBLIC = 1184
BROKER = "svc-consent"


def today() -> date:
    """Dates in messages are Norwegian calendar days."""
    return datetime.now(UTC).astimezone(OSLO).date()


def kid(raw_public: bytes) -> str:
    """A key id: the first 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def context(label: str, **fields: str) -> bytes:
    """HPKE `info` (contracts/README.md §7): `emaflyt/<label>`, a newline, then the context
    as JSON with sorted keys and no spaces, non-ASCII kept as UTF-8."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"emaflyt/{label}\n".encode() + body.encode()


def request_context(req: dict[str, Any]) -> bytes:
    return context("share-request/v2", **{k: req[k] for k in SHARE_CONTEXT})


def delivery_context(d: dict[str, Any]) -> bytes:
    fields = {k: d[k] for k in SHARE_CONTEXT}
    return context("share-delivered/v2", decision_id=d["decision_id"], **fields)


SHARE_CONTEXT = (
    "case_id",
    "request_id",
    "source_unit",
    "recipient_unit",
    "data_category",
    "purpose",
)


class SealingKey:
    """A private key to receive released data: the JSON file `emaflyt unit keygen --sealing`
    writes (`suite`, `x25519` base64 raw, and for the hybrid suite `mlkem768_seed`)."""

    def __init__(self, path: str) -> None:
        parts = json.loads(Path(path).read_text())
        self.suite = parts["suite"]
        self.x25519 = X25519PrivateKey.from_private_bytes(base64.b64decode(parts["x25519"]))
        seed = parts.get("mlkem768_seed")
        self.mlkem = (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(base64.b64decode(seed)) if seed else None
        )
        raw = self.x25519.public_key().public_bytes_raw()
        if self.mlkem is not None:
            raw = self.mlkem.public_key().public_bytes_raw() + raw
        self.kid = kid(raw)

    def open(self, payload: dict[str, Any], info: bytes) -> bytes:
        if payload["suite"] != self.suite or payload["recipient_kid"] != self.kid:
            raise ValueError(
                f"sealed to key {payload['recipient_kid']}, not to this key {self.kid}"
            )
        private: Any = self.x25519
        if self.mlkem is not None:
            private = hpke.MLKEM768X25519PrivateKey(self.mlkem, self.x25519)
        sealed = base64.b64decode(payload["sealed"])
        return _SUITES[self.suite].decrypt(sealed, private, info=info)


def seal(plaintext: bytes, suite: str, public_b64: str, info: bytes) -> dict[str, str]:
    """`payload` of a share request: HPKE base mode to the broker's key of `suite`."""
    raw = base64.b64decode(public_b64)
    if suite == X25519:
        public: Any = X25519PublicKey.from_public_bytes(raw)
    else:
        public = hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC]),
            X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC:]),
        )
    sealed = _SUITES[suite].encrypt(plaintext, public, info=info)
    return {"suite": suite, "recipient_kid": kid(raw), "sealed": base64.b64encode(sealed).decode()}


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every example takes: where NATS is, and who you are."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    p.add_argument("--unit", required=True, help="your unit id")
    p.add_argument("--key", required=True, help="your Ed25519 private key (PEM)")
    p.add_argument("--jwt", required=True, help="your NATS user JWT (from the operator)")
    p.add_argument("--sealing-key", help="your sealing key file, to open what is released to you")
    p.add_argument("--wait", type=float, default=15.0, help="seconds to wait for answers")
    p.add_argument("--transcript", help="write what was sent and read to this JSON file")
    return p


class Partner:
    """One unit, logged in as itself."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.unit_id: str = args.unit
        self.url: str = args.nats_url
        self.wait: float = args.wait
        self.transcript_path: str | None = args.transcript
        private = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SystemExit(f"{args.key}: not an Ed25519 private key")
        self.key = private
        public = private.public_key().public_bytes_raw()
        self.key_id = f"{self.unit_id}/{kid(public)}"
        self.jwt = Path(args.jwt).read_text().strip()
        self.sealing = SealingKey(args.sealing_key) if args.sealing_key else None
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._subs: dict[str, Any] = {}
        self._keys: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> Partner:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))  # the server's refusals (permissions) arrive here

        self.nc = await nats.connect(
            self.url,
            user_jwt_cb=lambda: self.jwt.encode(),
            signature_cb=lambda nonce: base64.b64encode(self.key.sign(nonce.encode())),
            inbox_prefix=f"_INBOX_{self.unit_id}",  # the only replies this unit may read
            error_cb=on_error,
            allow_reconnect=False,
        )
        self.js = self.nc.jetstream()
        self.units = await self.js.key_value("ema_units")  # the unit directory, read-only
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        type_: str,
        subject: str,
        data: dict[str, Any],
        *,
        case_id: str | None = None,
        expect: dict[str, Any] | None = None,
    ) -> dict:
        """Sign and publish one CloudEvent; returns it. `expect` is kept in the transcript:
        the outcome you expect (e.g. {"outcome": "withheld"}) for the check to compare."""
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": self.unit_id,
            "type": type_,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
        if case_id:
            event["subject"] = case_id
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {
            "Nats-Msg-Id": event["id"],
            "Ema-Key-Id": self.key_id,
            "Ema-Signature": base64.b64encode(self.key.sign(body)).decode(),
        }
        try:
            ack = await self.js.publish(subject, body, headers=headers, timeout=5)
        except Exception as exc:
            refused = [e for e in self.errors if "permissions violation" in e.lower()]
            raise SystemExit(
                f"publishing {type_} to {subject} failed: {refused[-1] if refused else exc!r}"
            ) from None
        self.sent.append(
            {
                "id": event["id"],
                "type": type_,
                "subject": subject,
                "data": data,
                "stream": ack.stream,
                "seq": ack.seq,
                **({"expect": expect} if expect else {}),
            }
        )
        print(f"sent {type_} {event['id']} -> {ack.stream} #{ack.seq}")
        return event

    async def broker_key(self, suite: str = X25519) -> dict[str, str]:
        entry = json.loads((await self.units.get(BROKER)).value)
        for key in reversed(entry.get("sealing_keys", [])):
            if key["suite"] == suite:
                return key
        raise SystemExit(f"the consent broker has published no {suite} sealing key")

    async def share_request(
        self,
        case_id: str,
        recipient: str,
        category: str,
        purpose: str,
        content: dict[str, Any],
        *,
        suite: str = X25519,
        claimed_basis: str | None = None,
        justification: str | None = None,
        expect: dict[str, Any] | None = None,
    ) -> dict:
        """Seal `content` to the broker under this request's context, and send the request."""
        req: dict[str, Any] = {
            "request_id": f"req-{uuid.uuid4().hex[:16]}",
            "case_id": case_id,
            "source_unit": self.unit_id,
            "recipient_unit": recipient,
            "data_category": category,
            "purpose": purpose,
        }
        broker = await self.broker_key(suite)
        plaintext = json.dumps(content, ensure_ascii=False).encode()
        req["payload"] = seal(plaintext, suite, broker["public_key"], request_context(req))
        if claimed_basis:
            req["claimed_basis"] = claimed_basis
        if justification:
            req["break_the_glass"] = {"justification": justification}
        return await self.send(
            "no.ema.share.request.v2", "ema.share.request.v2", req, case_id=case_id, expect=expect
        )

    # -- reading ------------------------------------------------------------------------------

    async def trusted(self, msg: Any) -> dict[str, Any] | None:
        """The event, if its signature is from a key the directory holds for its source."""
        key_id = (msg.headers or {}).get("Ema-Key-Id", "")
        unit, _, key_kid = key_id.partition("/")
        if unit not in self._keys:
            try:
                self._keys[unit] = json.loads((await self.units.get(unit)).value)
            except nats.js.errors.KeyNotFoundError:
                return None  # not a registered unit: nothing it signs is trusted
        entry = self._keys[unit]
        key = next((k for k in entry["keys"] if k["kid"] == key_kid and not k.get("revoked")), None)
        event = json.loads(msg.data)
        if key is None or event.get("source") != unit:
            return None
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
            public.verify(base64.b64decode((msg.headers or {})["Ema-Signature"]), msg.data)
        except (InvalidSignature, KeyError, ValueError):
            return None
        return event

    async def read(self, stream: str, done: Callable[[], bool], wait: float | None = None) -> None:
        """Read your own durable consumer on `stream` (the operator made it: `unit-<id>`),
        keep what is signed by its sender, acknowledge it, until `done()` holds or the wait
        runs out."""
        if stream not in self._subs:
            self._subs[stream] = await self.js.pull_subscribe_bind(f"unit-{self.unit_id}", stream)
        sub = self._subs[stream]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.wait if wait is None else wait)
        while not done() and loop.time() < deadline:
            try:
                msgs = await sub.fetch(50, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):  # nothing to read now
                continue
            for msg in msgs:
                event = await self.trusted(msg)
                if event is None:
                    print(
                        f"ignored a message on {msg.subject} that its sender did not sign",
                        file=sys.stderr,
                    )
                else:
                    self.received.append({"subject": msg.subject, "event": event})
                    self.opened(self.received[-1])
                await msg.ack()

    def opened(self, entry: dict[str, Any]) -> None:
        """Open a delivery addressed to us: its content, and whether its hash matches."""
        event = entry["event"]
        if event["type"] != "no.ema.share.delivered.v2" or self.sealing is None:
            return
        d = event["data"]
        try:
            plain = self.sealing.open(d["payload"], delivery_context(d))
        except Exception as exc:
            entry["open_error"] = f"{type(exc).__name__}: {exc}"
            return
        entry["opened"] = json.loads(plain)
        entry["hash_ok"] = "sha256:" + hashlib.sha256(plain).hexdigest() == d["content_hash"]

    def answers(self, sent: dict[str, Any], type_: str | None = None) -> list[dict[str, Any]]:
        """What emaflyt sent because of `sent`: everything it causes carries its id as
        `correlationid`."""
        return [
            r["event"]
            for r in self.received
            if r["event"].get("correlationid") == sent["id"]
            and (type_ is None or r["event"]["type"] == type_)
        ]

    def answered(self, sent: dict[str, Any], type_: str) -> Callable[[], bool]:
        return lambda: bool(self.answers(sent, type_))

    def delivery(self, request_id: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in self.received
                if r["event"]["type"] == "no.ema.share.delivered.v2"
                and r["event"]["data"]["request_id"] == request_id
            ),
            None,
        )

    def finish(self, missing: list[str]) -> int:
        """Write the transcript; exit 1 when an answer you needed did not come."""
        record = {"unit": self.unit_id, "sent": self.sent, "received": self.received}
        if self.transcript_path:
            Path(self.transcript_path).write_text(json.dumps(record, indent=2, ensure_ascii=False))
        else:
            print(json.dumps(record, ensure_ascii=False))
        for what in missing:
            print(
                f"no answer within {self.wait:g}s: {what}. A refused message goes to the "
                "dead letters, which only the operator reads: ask them for the reason "
                "(give the message id above)",
                file=sys.stderr,
            )
        return 1 if missing else 0


def run(main: Callable[[], Any]) -> None:
    sys.exit(asyncio.run(main()))
