"""Hostile input against every subscriber of every service, on one shared real system.

Hypothesis generates malformed, oversized, wrongly typed, unsigned, forged, impersonating,
wrong-sender and wrong-subject messages for every subject some consumer reads (the subject
map is `contracts/registry.py`, the consumers are each service's subscriptions). All of them
are published first; then the test waits until the DLQ holds each one once per consumer that
reads its subject, with the reason expected for its kind of hostility, and checks that no row
count in any service's database moved, every service is still alive, and no confidential
marker value reached a log line or a dead-letter reason.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.errors import MaxPayloadError

from contracts.fields import confidential_fields
from contracts.messages import ArrivalV1, UnitKind
from contracts.registry import Contract
from deploy.launcher import SERVICES, System
from services.kit.nkeys import sign_nonce
from services.kit.service import Subscription
from services.kit.signing import UnitKey
from services.kit.verify import MAX_BODY
from tests.support import ARRIVAL, TASKS_ON_ARRIVAL, Partner, http_json, query, wait_for

# Recognisable values put in every confidential field; none may ever reach a log line.
MARK_NAME = "Fuzzmarkor Hemmeligsen"
MARK_DUF = "209913572468"
MARK_BIRTH = "2011-07-13"
MARK_CIPHER = base64.b64encode(b"FUZZ-CONFIDENTIAL-SECTOR-CONTENT").decode()
MARKERS = (MARK_NAME, MARK_DUF, MARK_BIRTH, MARK_CIPHER)

EXAMPLES = 25  # per kind of hostility; every kind covers all subjects over its examples


def subscriptions() -> dict[str, list[Subscription]]:
    """Each service's consumers, as the services themselves declare them."""
    return {
        name: importlib.import_module(f"services.{name}.app").service.subscriptions
        for name in SERVICES
    }


SUBS = [s for subs in subscriptions().values() for s in subs]
CONSUMED: dict[str, Contract] = {t: c for s in SUBS for t, c in s.contracts.items()}
TYPES = sorted(CONSUMED)


def readers(subject: str) -> set[str]:
    """The consumers that read a subject: each must dead-letter a hostile message on it."""
    return {s.durable for s in SUBS if any(c.matches(subject) for c in s.contracts.values())}


def subject_of(contract: Contract) -> str:
    return contract.subject_for("kommune-0301")


# -- what the messages are made of ---------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=24),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def marker_for(field: str) -> Any:
    if "duf" in field:
        return MARK_DUF
    if "birth" in field:
        return MARK_BIRTH
    return MARK_NAME


@st.composite
def hostile_data(draw: st.DrawFn, contract: Contract) -> dict[str, Any]:
    """Every field of the type, each of some JSON type; at least one wrongly typed;
    confidential fields carry the markers, sometimes wrapped in the wrong container."""
    model = contract.model
    secret = confidential_fields(model)
    data: dict[str, Any] = {}
    for name in model.model_fields:
        if name in secret:
            value = marker_for(name)
            data[name] = draw(st.sampled_from([value, [value], {"v": value}, [[value]]]))
        elif name == "payload":
            data[name] = {
                "recipient_kid": "k",
                "ephemeral_public_key": "AAAA",
                "nonce": draw(json_value),
                "ciphertext": MARK_CIPHER,
            }
        elif name == "siblings":
            data[name] = [{"duf_number": MARK_DUF, "relation": draw(json_value)}]
        elif draw(st.booleans()):
            data[name] = draw(json_value)
    wrong = draw(st.sampled_from(sorted(model.model_fields)))
    data[wrong] = {"fuzz": [MARK_NAME, draw(json_leaf)]}  # a dict is no field's type here
    return data


@dataclass
class Hostile:
    kind: str
    subject: str
    body: bytes
    headers: dict[str, str]
    reasons: tuple[str, ...]  # the dead-letter reason starts with one of these

    @property
    def msg_id(self) -> str:
        return self.headers["Nats-Msg-Id"]


def envelope(source: str, type_: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": "2026-04-02T10:00:00+00:00",
        "data": data,
        **extra,
    }


def signed(key: UnitKey, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, {"Nats-Msg-Id": event["id"], **key.sign(body)}


header_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80)


class Generator:
    """Draws hostile messages with the keys of units registered for the test."""

    def __init__(self, units: dict[UnitKind, UnitKey]) -> None:
        self.units = units
        self.stranger = UnitKey.generate("stranger-unit")  # never registered

    def allowed_key(self, draw: st.DrawFn, contract: Contract) -> UnitKey:
        return self.units[draw(st.sampled_from(sorted(contract.senders)))]

    @st.composite
    def malformed(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        valid = json.dumps(envelope(key.unit_id, contract.type, {"name": MARK_NAME})).encode()
        body = draw(
            st.one_of(
                st.binary(max_size=300),
                st.integers(1, len(valid) - 1).map(lambda n: valid[:n]),  # truncated
                json_value.map(lambda v: json.dumps(v).encode()),  # JSON, but no envelope
                st.just(valid.replace(b'"specversion": "1.0"', b'"specversion": 1.0')),
                st.just(b"\xff\xfe" + valid),  # not UTF-8
                st.binary(min_size=1, max_size=50).map(lambda b: b"\x80" + b),  # not UTF-8 either
                st.integers(2000, 200_000).map(lambda n: b"[" * n),  # nested too deeply
                st.integers(2000, 20_000).map(  # ... inside an otherwise valid envelope
                    lambda n: valid.replace(b'{"name"', b'{"x": ' * n + b'{"name"', 1)
                ),
            )
        )
        headers = {"Nats-Msg-Id": str(uuid.uuid4()), **key.sign(body)}
        return Hostile("malformed", subject_of(contract), body, headers, ("invalid envelope",))

    @st.composite
    def oversized(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        size = draw(st.integers(100_000, MAX_BODY - 64_000))
        field = draw(st.sampled_from(sorted(contract.model.model_fields)))
        data = {field: (MARK_NAME + " ") * (size // (len(MARK_NAME) + 1))}
        body, headers = signed(key, envelope(key.unit_id, contract.type, data))
        return Hostile("oversized", subject_of(contract), body, headers, ("invalid data",))

    @st.composite
    def wrong_types(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        data = draw(hostile_data(contract))
        body, headers = signed(key, envelope(key.unit_id, contract.type, data))
        return Hostile("wrong_types", subject_of(contract), body, headers, ("invalid data",))

    @st.composite
    def unsigned(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        body, headers = signed(
            key, envelope(key.unit_id, contract.type, draw(hostile_data(contract)))
        )
        keep = draw(st.sampled_from([(), ("Ema-Key-Id",), ("Ema-Signature",)]))
        headers = {k: v for k, v in headers.items() if k == "Nats-Msg-Id" or k in keep}
        return Hostile("unsigned", subject_of(contract), body, headers, ("unsigned",))

    @st.composite
    def unknown_key(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        event = envelope(key.unit_id, contract.type, draw(hostile_data(contract)))
        body = json.dumps(event).encode()
        forged = self.stranger.sign(body)["Ema-Signature"]
        key_id = draw(
            st.one_of(
                st.just(f"{key.unit_id}/{self.stranger.kid}"),  # registered unit, unknown key
                st.just(self.stranger.key_id),  # unknown unit
                header_text.filter(lambda t: "/" not in t or t.endswith("/")),
                st.builds(lambda u, k: f"{u}/{k}", header_text, header_text),
            )
        )
        headers = {"Nats-Msg-Id": event["id"], "Ema-Key-Id": key_id, "Ema-Signature": forged}
        return Hostile("unknown_key", subject_of(contract), body, headers, ("unknown signing key",))

    @st.composite
    def bad_signature(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        body, headers = signed(
            key, envelope(key.unit_id, contract.type, draw(hostile_data(contract)))
        )
        how = draw(st.sampled_from(["changed", "appended", "garbage"]))
        if how == "changed":  # the body changed after signing
            at = draw(st.integers(0, len(body) - 1))
            body = body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
        elif how == "appended":
            body = body + b" "
        else:
            headers["Ema-Signature"] = draw(header_text)
        return Hostile("bad_signature", subject_of(contract), body, headers, ("bad signature",))

    @st.composite
    def impersonating(draw, self: Generator) -> Hostile:  # noqa: N805
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        other = draw(
            st.sampled_from(sorted({k.unit_id for k in self.units.values()} - {key.unit_id}))
        )
        body, headers = signed(key, envelope(other, contract.type, draw(hostile_data(contract))))
        return Hostile("impersonating", subject_of(contract), body, headers, ("signer",))

    @st.composite
    def wrong_sender(draw, self: Generator) -> Hostile:  # noqa: N805
        """Signed by a registered unit whose kind may not send this type."""
        choices = [t for t in TYPES if set(UnitKind) - CONSUMED[t].senders]
        contract = CONSUMED[draw(st.sampled_from(choices))]
        kind = draw(st.sampled_from(sorted(set(UnitKind) - contract.senders)))
        key = self.units[kind]
        data = draw(st.one_of(hostile_data(contract), st.just(valid_data(contract, key))))
        body, headers = signed(key, envelope(key.unit_id, contract.type, data))
        return Hostile("wrong_sender", subject_of(contract), body, headers, ("a unit of kind",))

    @st.composite
    def wrong_subject(draw, self: Generator) -> Hostile:  # noqa: N805
        """A type its sender may send, on another subject some consumer reads."""
        contract = CONSUMED[draw(st.sampled_from(TYPES))]
        key = self.allowed_key(draw, contract)
        subject = draw(
            st.sampled_from(
                sorted({subject_of(CONSUMED[t]) for t in TYPES} - {subject_of(contract)})
            )
        )
        body, headers = signed(
            key, envelope(key.unit_id, contract.type, draw(hostile_data(contract)))
        )
        return Hostile("wrong_subject", subject, body, headers, ("type ",))


def valid_data(contract: Contract, key: UnitKey) -> dict[str, Any]:
    """A valid arrival where that is the type (so only the sender is wrong); else empty."""
    if contract.type == "no.ema.intake.arrival.v1":
        return ArrivalV1(
            **{
                **ARRIVAL,
                "name": MARK_NAME,
                "duf_number": MARK_DUF,
                "birth_date": MARK_BIRTH,
                "care_centre": key.unit_id,
            }
        ).model_dump(mode="json")
    return {}


def draw_all(gen: Generator) -> list[Hostile]:
    out: list[Hostile] = []
    kinds = [
        gen.malformed,
        gen.wrong_types,
        gen.unsigned,
        gen.unknown_key,
        gen.bad_signature,
        gen.impersonating,
        gen.wrong_sender,
        gen.wrong_subject,
    ]
    for kind in kinds:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(kind())
        def collect(message: Hostile) -> None:
            out.append(message)

        collect()

    @settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(gen.oversized())
    def collect_big(message: Hostile) -> None:
        out.append(message)

    collect_big()
    return out + fixed(gen)


def fixed(gen: Generator) -> list[Hostile]:
    """On every consumed subject, the inputs that once killed a consumer (each now a
    regression): a body that is not UTF-8, JSON nested past the parser's recursion limit, and
    a key id that is no valid directory key."""
    out = []
    for type_ in TYPES:
        contract = CONSUMED[type_]
        key = gen.units[sorted(contract.senders)[0]]
        event = envelope(key.unit_id, type_, {"name": MARK_NAME})
        for body, reasons in (
            (b"\x80" + json.dumps(event).encode(), "invalid envelope"),
            (b"[" * 100_000, "invalid envelope"),
        ):
            headers = {"Nats-Msg-Id": str(uuid.uuid4()), **key.sign(body)}
            out.append(Hostile("malformed", subject_of(contract), body, headers, (reasons,)))
        body, headers = signed(key, event)
        headers["Ema-Key-Id"] = "Not A*Unit>/kid"
        out.append(
            Hostile("unknown_key", subject_of(contract), body, headers, ("unknown signing key",))
        )
    return out


# -- the system's state ------------------------------------------------------------------------


def row_counts(system: System) -> dict[str, dict[str, int]]:
    counts = {}
    for name in SERVICES:
        db = system.data_dir / f"{name}.db"
        tables = [r[0] for r in query(db, "select name from sqlite_master where type='table'")]
        counts[name] = {t: query(db, f'select count(*) from "{t}"')[0][0] for t in tables}
    return counts


async def settled_counts(system: System) -> dict[str, dict[str, int]]:
    """Row counts once nothing moves any more (timers and outboxes done)."""
    last = row_counts(system)
    while True:
        await asyncio.sleep(1.0)
        now = row_counts(system)
        pending = [
            http_json(f"http://127.0.0.1:{system.http_ports[n]}/healthz")["outbox_pending"]
            for n in SERVICES
        ]
        if now == last and not any(pending):
            return now
        last = now


def log_text(system: System) -> str:
    return "".join(p.read_text(errors="replace") for p in (system.data_dir / "logs").glob("*.log"))


class DeadLetters:
    """Every dead letter as it arrives: (original message id, consumer) -> reason."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}

    async def start(self, nc: nats.NATS) -> None:
        async def on_msg(msg: Any) -> None:
            h = msg.headers or {}
            self.seen[(h.get("Ema-Dlq-Original-Msg-Id", ""), h.get("Ema-Dlq-Consumer", ""))] = (
                h.get("Ema-Dlq-Reason", "")
            )

        await nc.jetstream().subscribe("ema.dlq.>", cb=on_msg, ordered_consumer=True)


async def register_units(system: System) -> tuple[dict[UnitKind, Partner], Partner]:
    partners = {}
    for kind in UnitKind:
        unit = (
            f"svc-fuzz-{uuid.uuid4().hex[:6]}"
            if kind is UnitKind.SERVICE
            else (f"fuzz-{kind.value.replace('_', '-')}-{uuid.uuid4().hex[:6]}")
        )
        partners[kind] = await Partner.register(system, unit, kind)
    centre = partners[UnitKind.CARE_CENTRE]
    return partners, centre


async def test_hostile_messages_are_dead_lettered_and_change_nothing(system: System) -> None:
    partners, centre = await register_units(system)
    # Some real state first, so that hostile messages have something to damage.
    await centre.send(
        "no.ema.intake.arrival.v1", ArrivalV1(**{**ARRIVAL, "care_centre": centre.key.unit_id})
    )
    await wait_for(
        lambda: (
            query(system.data_dir / "planning.db", "select count(*) from planning_task")
            == [(TASKS_ON_ARRIVAL,)]
        )
    )
    before = await settled_counts(system)
    assert before["intake"]["intake_case"] == 1

    gen = Generator({k: p.key for k, p in partners.items()})
    messages = draw_all(gen)
    kinds = {m.kind for m in messages}
    assert len(kinds) == 9

    letters = DeadLetters()
    await letters.start(centre.nc)
    js = centre.nc.jetstream()
    for m in messages:
        ack = await js.publish(m.subject, m.body, headers=m.headers, timeout=10)
        assert not ack.duplicate
    expected = {(m.msg_id, c): m for m in messages for c in readers(m.subject)}
    assert all(readers(m.subject) for m in messages)

    try:
        await wait_for(lambda: set(expected) <= set(letters.seen), timeout=60, interval=0.25)
    except TimeoutError:
        missing = sorted(
            {(m.kind, c, m.subject) for (i, c), m in expected.items() if (i, c) not in letters.seen}
        )
        raise AssertionError(f"not dead-lettered: {missing[:20]} ({len(missing)})") from None
    wrong = {
        (m.kind, c, letters.seen[(m.msg_id, c)])
        for (_, c), m in expected.items()
        if not letters.seen[(m.msg_id, c)].startswith(m.reasons)
    }
    assert not wrong
    print(f"{len(messages)} hostile messages, {len(expected)} dead letters expected and found")
    # Each hostile message dead-lettered once per consumer that reads it, never more.
    ours = {k for k in letters.seen if k[0] in {m.msg_id for m in messages}}
    assert ours == set(expected)

    assert await settled_counts(system) == before
    for name in SERVICES:
        live = http_json(f"http://127.0.0.1:{system.http_ports[name]}/livez")
        assert live["status"] == "alive"
        assert system.procs[name].alive
    logs = log_text(system)
    assert "dead-lettered" in logs
    for marker in MARKERS:
        assert marker not in logs
        assert not [r for r in letters.seen.values() if marker in r]
    for p in partners.values():
        await p.close()


async def test_replayed_message_ids_change_nothing(system: System) -> None:
    """A replay is not hostile enough to dead-letter: it is dropped by JetStream (same
    Nats-Msg-Id) or acknowledged as already handled (same event id under a new Nats-Msg-Id),
    even when its content was changed and signed again. Either way nothing changes."""
    centre = await Partner.register(
        system, f"fuzz-replay-{uuid.uuid4().hex[:6]}", UnitKind.CARE_CENTRE
    )
    data = ArrivalV1(**{**ARRIVAL, "duf_number": "202612345670", "care_centre": centre.key.unit_id})
    first = await centre.send("no.ema.intake.arrival.v1", data)
    await wait_for(
        lambda: (
            query(
                system.data_dir / "intake.db",
                "select count(*) from intake_case where duf_number = ?",
                "202612345670",
            )
            == [(1,)]
        )
    )
    before = await settled_counts(system)
    intake = f"http://127.0.0.1:{system.http_ports['intake']}/healthz"
    handled = http_json(intake)["consumers"]["intake-inbound"]["handled"]

    js = centre.nc.jetstream()
    event = envelope(
        centre.key.unit_id,
        "no.ema.intake.arrival.v1",
        {**data.model_dump(mode="json"), "name": MARK_NAME},
    )
    event["id"] = first
    body, headers = signed(centre.key, event)
    ack = await js.publish("ema.intake.arrival", body, headers=headers)
    assert ack.duplicate  # same Nats-Msg-Id: JetStream drops it
    replays = 0
    for changed in (False, True):
        ev = {**event, "data": {**event["data"], "sex": "other"}} if changed else event
        body, headers = signed(centre.key, ev)
        headers["Nats-Msg-Id"] = str(uuid.uuid4())
        assert not (await js.publish("ema.intake.arrival", body, headers=headers)).duplicate
        replays += 1
    await wait_for(
        lambda: http_json(intake)["consumers"]["intake-inbound"]["handled"] >= handled + replays
    )
    assert await settled_counts(system) == before
    assert MARK_NAME not in log_text(system)
    await centre.close()


async def test_body_over_the_server_limit_never_reaches_a_service(system: System) -> None:
    """Above max_payload nats-server itself refuses the message (the kit's own MAX_BODY check
    is the second line): the client refuses it, and so does the server on a raw socket."""
    centre = await Partner.register(
        system, f"fuzz-big-{uuid.uuid4().hex[:6]}", UnitKind.CARE_CENTRE
    )
    limit = centre.nc.max_payload
    assert limit <= MAX_BODY
    before = await settled_counts(system)
    body = json.dumps(
        envelope(
            centre.key.unit_id,
            "no.ema.intake.arrival.v1",
            {"name": MARK_NAME * (limit // len(MARK_NAME) + 1)},
        )
    ).encode()
    with pytest.raises(MaxPayloadError):
        await centre.nc.publish("ema.intake.arrival", body, headers=centre.key.sign(body))
    assert "Maximum Payload" in await raw_publish(system, "ema.intake.arrival", body)
    assert await settled_counts(system) == before
    await centre.close()


async def raw_publish(system: System, subject: str, body: bytes) -> str:
    """Publish past the client's own check, as a hostile client would; return the answer."""

    jwt, key = system.trust().own_user("operator")

    def go() -> str:
        with socket.create_connection(("127.0.0.1", system.nats.port), timeout=10) as s:
            info = json.loads(s.recv(4096).decode().removeprefix("INFO ").strip())
            connect = {
                "jwt": jwt,
                "sig": sign_nonce(key, info["nonce"]).decode(),
                "verbose": False,
                "pedantic": False,
            }
            s.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
            s.recv(4096)
            # The header first: the server judges the size from it and answers at once, then
            # closes; the body only if it did not (sending it into a closed socket would lose
            # the answer to the reset).
            s.sendall(f"PUB {subject} {len(body)}\r\n".encode())
            answer = read_error(s)
            if b"-ERR" not in answer:
                s.sendall(body + b"\r\n")
                answer += read_error(s)
            return answer.decode(errors="replace")

    return await asyncio.to_thread(go)


def read_error(s: socket.socket) -> bytes:
    """What the server says until its -ERR, the connection's end, or a second of silence."""
    answer = b""
    s.settimeout(1.0)
    try:
        while b"-ERR" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    return answer
