"""Test helpers: a partner unit that signs and publishes, and readers for streams and logs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client
from sqlalchemy.engine import make_url

from contracts.messages import ShareDeliveredV2, ShareRequestV2, UnitKind
from deploy import units
from deploy.trust import connect_options
from services.kit.bus import ensure_streams
from services.kit.directory import Directory, bucket
from services.kit.outbox import build_event
from services.kit.sealing import (
    HYBRID,
    X25519,
    SealingKey,
    delivery_context,
    request_context,
    seal,
)
from services.kit.signing import UnitKey

ARRIVAL = {
    "duf_number": "202600001234",
    "name": "Zahra Testdatter",
    "birth_date": "2013-05-01",
    "birth_date_estimated": True,
    "sex": "female",
    "nationality": "AFG",
    "languages": ["prs", "ps"],
    "arrived_at": "2026-04-02T10:00:00+02:00",
}


def tasks_on_arrival(arrival: dict[str, Any] = ARRIVAL) -> int:
    """How many tasks planning schedules when this child arrives: the care-centre pathway's
    steps that start on arrival and apply to the child (TB by nationality, school by age)."""
    from datetime import datetime

    from services.planning.domain import Facts, applies, load_list
    from services.planning.pathway import load_all

    ema = load_all()["ema-care-centre"]
    on = datetime.fromisoformat(str(arrival["arrived_at"])).date()
    facts = Facts(date.fromisoformat(str(arrival["birth_date"])), arrival["nationality"])
    lists = {"tb_high_incidence": load_list("tb_high_incidence")}
    steps = ema.steps_started_by("arrival")
    return sum(applies(s.applies_if, facts, on, ema.school_year, lists) for s in steps)


TASKS_ON_ARRIVAL = tasks_on_arrival()


@dataclass
class Partner:
    """A registered unit that signs what it sends, as a partner system would. `nc` is the
    operator's connection (for the test to look around); `own` the unit's own NATS user,
    which it publishes and reads through, as a real partner does."""

    nc: Client
    key: UnitKey
    sealing: SealingKey | None = None
    own: Client | None = None

    @classmethod
    async def register(
        cls,
        target: Any,
        unit_id: str,
        kind: UnitKind,
        sealing: bool = False,
        suite: str = X25519,
        kommunenummer: str | None = None,
        notices: str | None = None,
    ) -> Partner:
        """Register a unit; with sealing=True it also publishes a sealing key (of `suite`) to
        receive released data; `kommunenummer` says where it lies (a care centre's
        municipality). `target` is a System (the unit gets its own NATS user) or the URL of a
        server without auth."""
        key = UnitKey.generate(unit_id)
        private = SealingKey.generate(suite) if sealing else None
        if isinstance(target, str):
            nc = await nats.connect(servers=target.split(","))
            js = nc.jetstream()
            await ensure_streams(js, update=False)
            directory = Directory(await bucket(js))
            unit = await directory.add_key(unit_id, unit_id, kind, key.kid, key.public_b64)
            if private is not None:
                unit.add_sealing_key(private.suite, private.public_b64)
            unit.kommunenummer = kommunenummer or unit.kommunenummer
            await directory.put(unit)
            return cls(nc, key, private)
        nc = await target.connect()
        if kind is UnitKind.SERVICE:  # a test posing as a service: directory entry only
            directory = Directory(await bucket(nc.jetstream()))
            await directory.add_key(unit_id, unit_id, kind, key.kid, key.public_b64)
            return cls(nc, key, private)
        x25519 = private.public_b64 if private and private.suite == X25519 else None
        hybrid = private.public_b64 if private and private.suite == HYBRID else None
        done = await units.register(
            nc,
            target.data_dir,
            target.trust(),
            unit_id,
            unit_id,
            kind,
            key.public_b64,
            x25519,
            hybrid,
            kommunenummer=kommunenummer,
            notices=notices,
        )
        own = None
        if done.jwt_path is not None:
            own = await nats.connect(
                servers=target.servers,
                **connect_options(
                    done.jwt_path.read_text().strip(), key.private, f"_INBOX_{unit_id}"
                ),
            )
        return cls(nc, key, private, own)

    @property
    def bus(self) -> Client:
        """The connection the unit itself uses."""
        return self.own or self.nc

    @property
    def unit_id(self) -> str:
        return self.key.unit_id

    async def close(self) -> None:
        for nc in (self.own, self.nc):
            if nc is not None and not nc.is_closed:
                await nc.close()

    async def broker_key(self, suite: str = X25519) -> str:
        """svc-consent's public sealing key of `suite`, from the unit directory."""
        directory = Directory(await bucket(self.nc.jetstream()), ttl=0)

        async def found() -> str | None:
            unit = await directory.get("svc-consent")
            entry = unit.sealing_for(suite) if unit else None
            return entry.public_key if entry else None

        return await wait_for(found)

    async def share_request(
        self,
        case_id: str,
        recipient: str,
        category: str,
        purpose: str,
        content: Any,
        *,
        suite: str = X25519,
        **kw: Any,
    ) -> ShareRequestV2:
        """A share request from this unit, its content sealed to the broker with its context."""
        broker = await self.broker_key(suite)
        return self.sealed_request(
            case_id, recipient, category, purpose, content, broker=broker, suite=suite, **kw
        )

    def sealed_request(
        self,
        case_id: str,
        recipient: str,
        category: str,
        purpose: str,
        content: Any,
        *,
        broker: str,
        request_id: str | None = None,
        claimed_basis: str | None = None,
        break_the_glass: Any = None,
        suite: str = X25519,
    ) -> ShareRequestV2:
        """The same, with the broker's public key of `suite` already at hand."""
        request_id = request_id or f"req-{uuid.uuid4().hex[:12]}"
        info = request_context(case_id, request_id, self.unit_id, recipient, category, purpose)
        payload = seal(json.dumps(content).encode(), suite, broker, info)
        return ShareRequestV2(
            request_id=request_id,
            case_id=case_id,
            source_unit=self.unit_id,
            recipient_unit=recipient,
            data_category=category,
            purpose=purpose,
            payload=payload,
            claimed_basis=claimed_basis,
            break_the_glass=break_the_glass,
        )

    def open_delivery(self, delivered: Any) -> Any:
        """The content of a delivery to this unit (ShareDeliveredV2 or its data as a dict)."""
        d = (
            delivered
            if isinstance(delivered, ShareDeliveredV2)
            else (ShareDeliveredV2.model_validate(delivered))
        )
        assert self.sealing is not None, "registered without a sealing key"
        info = delivery_context(
            d.decision_id,
            d.case_id,
            d.request_id,
            d.source_unit,
            d.recipient_unit,
            d.data_category.value,
            d.purpose,
        )
        return json.loads(self.sealing.open(d.payload, info))

    async def send(
        self, type_: str, data: Any, *, case_id: str | None = None, event_id: str | None = None
    ) -> str:
        subject, event, body, headers = build_event(self.key, type_, data, case_id=case_id)
        if event_id:
            raw = json.loads(body)
            raw["id"] = event_id
            body = json.dumps(raw).encode()
            headers = {"Nats-Msg-Id": event_id, **self.key.sign(body)}
        await self.publish_raw(subject, body, headers)
        return event_id or event.id

    async def publish_raw(self, subject: str, body: bytes, headers: dict[str, str] | None) -> None:
        await self.bus.jetstream().publish(subject, body, headers=headers)

    def raw_arrival(self, **overrides: Any) -> tuple[bytes, dict[str, str]]:
        """An arrival envelope as raw JSON, for malformed variants the models would refuse."""
        data = {**ARRIVAL, "care_centre": self.key.unit_id, **overrides}
        data = {k: v for k, v in data.items() if v is not None}
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": self.key.unit_id,
            "type": "no.ema.intake.arrival.v1",
            "time": "2026-04-02T10:00:00+00:00",
            "data": data,
        }
        body = json.dumps(event).encode()
        return body, {"Nats-Msg-Id": event["id"], **self.key.sign(body)}


async def stream_messages(nc: Client, stream: str, subject: str | None = None) -> list[Any]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except Exception:
            continue
        if subject is None or msg.subject == subject:
            out.append(msg)
    return out


async def read_subject(nc: Client, stream: str, subject: str) -> list[Any]:
    """Every message on a subject, read with one ephemeral pull consumer (acked as read)."""
    js = nc.jetstream()
    psub = await js.pull_subscribe(subject, stream=stream)
    out = []
    try:
        while True:
            info = await psub.consumer_info()
            if info.num_pending == 0:
                break
            for msg in await psub.fetch(min(1000, info.num_pending), timeout=10):
                out.append(msg)
                await msg.ack()
    finally:
        await psub.unsubscribe()
    return out


async def case_task_items(nc: Client, part: str) -> list[dict[str, Any]]:
    """Every task `part` ("scheduled" or "statuses") planning sent in its per-case messages
    (no.ema.planning.case-tasks.v1), in order."""
    messages = await stream_messages(nc, "PLANNING", "ema.planning.case.tasks")
    return [item for m in messages for item in json.loads(m.data)["data"].get(part, [])]


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1) -> Any:  # noqa: ANN001
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def query(db: Path | str, sql: str, *params: Any) -> list[tuple]:
    """Rows of a service's database: a SQLite file, or a database URL (`System.database_url`)
    of SQLite or PostgreSQL. Parameters are `?` on both."""
    if isinstance(db, str):
        url = make_url(db)
        if url.get_backend_name() == "postgresql":
            return _pg_query(url.set(drivername="postgresql").render_as_string(False), sql, params)
        db = Path(url.database or "")
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _pg_query(dsn: str, sql: str, params: tuple) -> list[tuple]:
    numbered = iter(range(1, len(params) + 1))
    sql = re.sub(r"\?", lambda _: f"${next(numbered)}", sql)

    async def run() -> list[tuple]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    # Callers may be inside an event loop (async tests): run on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def dead_letters(nc: Client) -> list[dict[str, str]]:
    msgs = await stream_messages(nc, "DLQ")
    return [{k: str(v) for k, v in (m.headers or {}).items()} for m in msgs]


# Systems the tests started (tests.conftest.start_system), to find the one behind a URL.
SYSTEMS: list[Any] = []


def role_for(path: str, method: str = "GET") -> str:
    """The role a test calls a route with: decisions and consents are the privacy officer's,
    managing recipients an administrator's, the rest the operator's."""
    if "/decisions" in path or "/consents" in path:
        return "privacy_officer"
    if path.startswith("/recipients") and method == "POST":
        return "administrator"
    return "operator"


def http_json(url: str, timeout: float = 10.0, role: str | None = None, **kw: Any) -> Any:
    """deploy.launcher.http_json with a bearer token of the system that serves `url`. The
    timeout is generous: on a loaded CI host a request may wait seconds for the CPU, and no
    test here asserts how fast an answer comes (bench/ measures that)."""
    from urllib.parse import urlsplit

    from deploy.launcher import http_json as plain

    parts = urlsplit(url)
    # The newest system first: a port of a system stopped earlier may have been given again.
    system = next(
        (s for s in reversed(SYSTEMS) if parts.port in s.http_ports.values() and s.auth), None
    )
    if system is None:
        return plain(url, timeout=timeout, **kw)
    method = kw.get("method") or ("POST" if kw.get("data") is not None else "GET")
    token = system.api_token(role or role_for(parts.path, method), subject="tests")
    return plain(url, timeout=timeout, token=token, **kw)


def self_signed_tls(folder: Path) -> tuple[Path, Any]:
    """A certificate for 127.0.0.1 and localhost (its own CA), and a server SSL context with
    it: for webhook receivers in tests, which notify reaches over https only."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emaflyt test webhook")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "webhook-cert.pem", folder / "webhook-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context
