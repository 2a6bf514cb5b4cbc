"""`emaflyt partner check`: does a partner's setup work, told in the partner's terms.

Run by the partner with nothing but its own identity (its unit id, its Ed25519 key, the NATS
user JWT the operator issued, optionally its sealing key) against a running emaflyt, as
contracts/README.md §13 describes:

    emaflyt partner check --unit centre-oslo-1 --key centre.pem --jwt centre.jwt \\
        --nats-url nats://emaflyt.example:4222 [--sealing-key sealing.json] [--case CASE_ID]

It checks the key and JWT belong together, logs in, reads the unit's own directory entry and
consumers, then sends one of each message the unit's kind may send (x-senders) and waits for
the answers on the unit's own consumers. A partner cannot read the dead letters: when no answer
comes it says so, prints what it sent, and names what is usually wrong. What it sends counts:
run it against a test system, on a test case.

`judge()` holds the rules for what each message should get back; the test suite applies the
same rules to what the examples in examples/ send and read (their transcripts), so the examples
cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts import messages as m
from contracts.envelope import CloudEvent
from contracts.messages import UnitKind
from contracts.registry import CONTRACTS, contract_for_type
from deploy import permissions

OK, FAIL, NO_ANSWER, SENT, SKIP, NOTE = "ok", "FAIL", "NO ANSWER", "sent", "skip", "note"

ARRIVAL = "no.ema.intake.arrival.v1"
REGISTERED = "no.ema.intake.arrival-registered.v1"
NOTICE = "no.ema.notify.task-notice.v1"
NOTICES = "no.ema.notify.task-notices.v1"  # a grouped unit's notices (docs/decisions/0020)
SHARE = "no.ema.share.request.v2"
RECEIPT = "no.ema.share.receipt.v1"
DELIVERED = "no.ema.share.delivered.v2"
GRANTED = "no.ema.consent.granted.v1"
WITHDRAWN = "no.ema.consent.withdrawn.v1"
RECORDED = "no.ema.consent.recorded.v1"
TASK_DONE = "no.ema.planning.task-completed.v1"
KOPP = "no.ema.planning.kopp-submitted.v1"
MAP = "no.ema.planning.map-established.v1"
NEED = "no.ema.planning.need-changed.v1"
PATHWAY = "no.ema.planning.pathway-started.v1"
MILESTONE = "no.ema.planning.milestone-reported.v1"
ANSWERED = "no.ema.municipality.offer-answered.v1"
OUTCOME = "no.ema.municipality.offer-outcome.v1"
OFFER = "no.ema.municipality.offer.v1"
REFUND = "no.ema.municipality.refund-claimed.v1"
REFUND_DECIDED = "no.ema.municipality.refund-decided.v1"
REQUESTED = "no.ema.intake.representative-requested.v1"
APPOINTED = "no.ema.intake.representative-appointed.v1"
RESIDENCE = "no.ema.intake.residence-decided.v1"

# What the check does not send, and why (it would change a real case, or it is a newer version
# of a message the check sends in its older form).
NOT_SENT_BY_A_CHECK = {
    "no.ema.intake.departed.v1": "ends the centre stay (the child left the country): not sent "
    "by a check",
    "no.ema.intake.appeal-lodged.v1": "needs a refused residence decision on the case: send it "
    "on such a test case",
    "no.ema.intake.residence-decided.v2": "v2 adds UNE, limited permits and finality; the check "
    "sends v1, which is read the same way",
    "no.ema.planning.pathway-started.v2": "v2 names the institution, barnevern and Bufetat's "
    "intake unit; the check sends v1",
    "no.ema.log.cosigned.v1": "a witness cosigns the decision log's checkpoints as it reads "
    "them from the LOG stream (python -m services.witness)",
    "no.ema.log.witness-alarm.v1": "a witness raises it only when the decision log is not "
    "consistent with what it cosigned",
    # After settlement (issue 15): they act on a settled child's follow-up case.
    "no.ema.municipality.offer-answered.v2": "the check answers offers in v1 (--offer); v2 also "
    "names the units that receive the handover",
    "no.ema.municipality.handover-acknowledged.v1": "acknowledges a handover part released to "
    "you: send it when one arrives",
    "no.ema.municipality.measure-decided.v1": "acts on a settled child's follow-up case: send "
    "it on such a test case",
    "no.ema.municipality.follow-up-reported.v1": "acts on a settled child's follow-up case: "
    "send it on such a test case",
    "no.ema.municipality.follow-up-closed.v1": "ends a settled child's follow-up: not sent by "
    "a check",
    "no.ema.municipality.referral-sent.v1": "refers a settled child between the municipality's "
    "services: send it on a follow-up test case",
    "no.ema.municipality.referral-acknowledged.v1": "acknowledges a referral made to you: send "
    "it when one arrives",
    "no.ema.municipality.referral-feedback.v1": "answers a referral made to you: send it when "
    "one arrives",
    "no.ema.municipality.coordinator-assigned.v1": "names a settled child's coordinating "
    "service: send it on a follow-up test case",
}

# Types emaflyt answers the sender of with nothing: what happens instead.
NO_ANSWER_BY_DESIGN = {
    "no.ema.municipality.capacity.v1": "it counts for matching from now on",
    "no.ema.municipality.capacity.v2": "it counts for matching from now on",
    "no.ema.municipality.settlement-profile.v1": "the child is ready for settlement once "
    "residence is granted",
    "no.ema.municipality.offer-requested.v1": "the municipality gets the offer; you hear again "
    "only if it is not answered in time (no.ema.municipality.offer-escalated.v1)",
    APPOINTED: "the case gets its representative",
    RESIDENCE: "the case gets its residence status, and its deadlines follow",
    NEED: "a new follow-up decision falls due for Bufetat",
    MILESTONE: "the tasks it starts go to the units responsible for them",
    "no.ema.case.settled.v1": "the centre stay closes and its open tasks are cancelled",
    "no.ema.planning.follow-up-decided.v1": "the MAP falls due at the care centre",
}

# What is usually wrong when a type gets no answer (the dead letter names it exactly).
HINTS = {
    ARRIVAL: "care_centre must be your own unit id; the child must be under 15 at arrival (or "
    "15-17 with a younger sibling who has a case); arrived_at must not lie in the future",
    SHARE: "the case must be open; source_unit must be you; the payload must be sealed to "
    "svc-consent's current sealing key of the suite the system requires, with this request's "
    "context as HPKE info (contracts/README.md §7)",
    GRANTED: "only the case's care centre or the child's appointed representative may "
    "register a consent; consent_id must be new (or its version raised); the form must fit the "
    "categories (health and KOPP need written consent with the document's hash)",
    WITHDRAWN: "only the unit that registered the consent or the child's representative may "
    "withdraw it, once",
    TASK_DONE: "the task must be open in the case and yours (the answer goes to the unit "
    "responsible); completed_on must not lie in the future",
    KOPP: "only the case's care centre reports its KOPP",
    MAP: "the MAP follows Bufetat's follow-up decision; only the case's care centre reports it",
    PATHWAY: "the pathway must be one that can be started and not already run for the case",
    ANSWERED: "the offer must be addressed to you; an acceptance needs settle_on and measure, "
    "a decline a reason",
    REFUND: "kommunenummer must be yours and claim_id new; period_to not before period_from",
}


@dataclass
class Finding:
    status: str
    what: str
    text: str
    event_id: str | None = None
    sent: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        head = f"  {self.status:9s} {self.what}"
        if self.event_id:
            head += f" {self.event_id}"
        out = [f"{head}: {self.text}"]
        if self.sent is not None and self.status in (FAIL, NO_ANSWER):
            out.append("            sent: " + json.dumps(self.sent, ensure_ascii=False))
        return out


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (FAIL, NO_ANSWER)]


# -- the rules: what each message should get back ------------------------------------------


def _expanded(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A grouped task-notices.v1 as the task-notice.v1 events it carries (the same bodies), so
    the rules judge a unit on either form alike; any other event as it is."""
    if event.get("type") != NOTICES:
        return [event]
    return [{**event, "type": NOTICE, "data": n} for n in event["data"]["notices"]]


def _of(answers: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for a in answers for e in _expanded(a["event"]) if e.get("type") == type_]


def _none(sent: dict[str, Any], what: str, wait: float | None) -> Finding:
    within = f" within {wait:g} s" if wait else ""
    hint = HINTS.get(sent["type"])
    text = (
        f"no {what}{within}; ask the operator for the dead-letter reason (message id "
        f"{sent['id']})" + (f". Usually: {hint}" if hint else "")
    )
    return Finding(NO_ANSWER, sent["type"], text, sent["id"], _shown(sent))


def _shown(sent: dict[str, Any]) -> dict[str, Any]:
    return {k: sent[k] for k in ("type", "subject", "data") if k in sent}


def _arrival(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
    reg = _of(answers, REGISTERED)
    if not reg:
        return [_none(sent, "no.ema.intake.arrival-registered.v1 (the case it opened)", wait)]
    d = reg[0]["data"]
    out = [
        Finding(
            OK,
            sent["type"],
            f"case {d['case_ref']} {d['outcome']} ({d['case_id']}) at {d['care_centre']}",
            sent["id"],
        )
    ]
    notices = _of(answers, NOTICE)
    if notices:
        tasks = ", ".join(sorted({f"{n['data']['task']} due {n['data']['due']}" for n in notices}))
        out.append(Finding(OK, NOTICE, f"{len(notices)} task notice(s): {tasks}", sent["id"]))
    elif d["outcome"] == "opened":
        out.append(_none(sent, "task notice for the new case's deadlines", wait))
    return out


def _share(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
    data, expect = sent["data"], sent.get("expect") or {}
    receipts = _of(answers, RECEIPT)
    if not receipts:
        return [_none(sent, "no.ema.share.receipt.v1", wait)]
    r = receipts[0]["data"]
    t, eid = sent["type"], sent["id"]
    what = f"{data['data_category']}/{data['purpose']} to {data['recipient_unit']}"
    if expect.get("outcome") and r["outcome"] != expect["outcome"]:
        why = (
            "no consent, statute or break-the-glass covers this flow (contracts/README.md "
            "§10), or the recipient has no sealing key of the broker's suite"
            if r["outcome"] == "withheld"
            else "a basis covers the flow"
        )
        return [
            Finding(
                FAIL,
                t,
                f"{what}: {r['outcome']}, expected {expect['outcome']}: {why}",
                eid,
                _shown(sent),
            )
        ]
    if r["outcome"] == "withheld":
        return [
            Finding(
                OK,
                t,
                f"{what}: withheld (no consent, statute or break-the-glass "
                "covers it; the receipt says no more, by design)",
                eid,
            )
        ]
    if data["recipient_unit"] != record["unit"]:
        return [Finding(OK, t, f"{what}: released (decision {r['decision_id']})", eid)]
    entry = next(
        (
            x
            for x in record["received"]
            if x["event"].get("type") == DELIVERED
            and x["event"]["data"].get("request_id") == data["request_id"]
        ),
        None,
    )
    if entry is None:
        return [
            _none(sent, "no.ema.share.delivered.v2 (released, but the delivery did not come)", wait)
        ]
    d = entry["event"]["data"]
    if "open_error" in entry:
        return [
            Finding(
                FAIL,
                t,
                f"{what}: the delivery does not open with your sealing key "
                f"({entry['open_error']}): is it the key the directory holds for you?",
                eid,
            )
        ]
    if "opened" not in entry:
        return [
            Finding(
                OK,
                t,
                f"{what}: released on {d['legal_basis']}, fields "
                f"{', '.join(d['fields'])} (not opened: give your sealing key)",
                eid,
            )
        ]
    opened, problems = entry["opened"], []
    if not entry.get("hash_ok"):
        problems.append("content_hash does not match the opened content")
    if opened.get("decision_id") != d["decision_id"]:
        problems.append("the opened decision_id is not the delivery's")
    got = set(opened.get("data") or {})
    if got - set(d["fields"]):
        problems.append(
            f"fields beyond those released: {', '.join(sorted(got - set(d['fields'])))}"
        )
    if "fields" in expect and sorted(d["fields"]) != sorted(expect["fields"]):
        problems.append(f"released fields {d['fields']}, the table says {expect['fields']}")
    if problems:
        return [Finding(FAIL, t, f"{what}: " + "; ".join(problems), eid)]
    return [
        Finding(
            OK,
            t,
            f"{what}: released to you on {d['legal_basis']}; opened, hash "
            f"matches, fields {', '.join(sorted(got)) or 'none'}",
            eid,
        )
    ]


def _consent(status: str):  # noqa: ANN202
    def rule(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
        recorded = _of(answers, RECORDED)
        if not recorded:
            return [_none(sent, "no.ema.consent.recorded.v1", wait)]
        d = recorded[0]["data"]
        if d["status"] != status:
            return [
                Finding(FAIL, sent["type"], f"recorded as {d['status']}, not {status}", sent["id"])
            ]
        return [
            Finding(
                OK,
                sent["type"],
                f"consent {d['consent_id']} version {d['version']} "
                f"{d['status']} (log index {d['log_index']})",
                sent["id"],
            )
        ]

    return rule


def _task_notice(tasks: tuple[str, ...] | None, status: str | None, what: str):  # noqa: ANN202
    def rule(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
        wanted = tasks or ((sent["data"]["task"],) if "task" in sent["data"] else None)
        notices = [
            n
            for n in _of(answers, NOTICE)
            if (wanted is None or n["data"]["task"] in wanted)
            and (status is None or n["data"]["status"] == status)
        ]
        if not notices:
            return [_none(sent, what, wait)]
        listed = ", ".join(sorted({f"{n['data']['task']} {n['data']['status']}" for n in notices}))
        return [Finding(OK, sent["type"], f"task notice(s): {listed}", sent["id"])]

    return rule


def _offer_answer(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
    outcomes = _of(answers, OUTCOME)
    if not outcomes:
        return [_none(sent, "no.ema.municipality.offer-outcome.v1", wait)]
    d = outcomes[0]["data"]
    expected = "settled" if sent["data"]["answer"] == "accept" else "declined"
    status = OK if d["outcome"] == expected else FAIL
    return [
        Finding(
            status,
            sent["type"],
            f"offer {d['offer_id']}: {d['outcome']} ({d['message_en']})",
            sent["id"],
        )
    ]


def _refund(sent: dict, answers: list, record: dict, wait: float | None) -> list[Finding]:
    decided = _of(answers, REFUND_DECIDED)
    if not decided:
        return [_none(sent, "no.ema.municipality.refund-decided.v1", wait)]
    d = decided[0]["data"]
    expect = (sent.get("expect") or {}).get("outcome")
    status = FAIL if expect and d["outcome"] != expect else OK
    return [
        Finding(
            status,
            sent["type"],
            f"claim {d['claim_id']}: {d['outcome']}, "
            f"{d['refund_nok']} NOK for {d['days_refundable']} of {d['days_claimed']} "
            f"days ({d['reason']})",
            sent["id"],
        )
    ]


RULES = {
    ARRIVAL: _arrival,
    SHARE: _share,
    GRANTED: _consent("active"),
    WITHDRAWN: _consent("withdrawn"),
    TASK_DONE: _task_notice(None, "done", "task notice (done) for the task"),
    KOPP: _task_notice(("kopp_proposal", "new_kopp"), "done", "task notice (kopp done)"),
    MAP: _task_notice(("map",), "done", "task notice (map done)"),
    PATHWAY: _task_notice(None, None, "task notice for the pathway's tasks"),
    ANSWERED: _offer_answer,
    REFUND: _refund,
}


def _schema_problem(event: dict[str, Any]) -> str | None:
    try:
        envelope = CloudEvent.model_validate(event)
    except ValidationError as exc:
        return f"its envelope does not match the contract: {exc.errors()[0]['msg']}"
    contract = contract_for_type(envelope.type)
    if contract is None:
        return f"unknown type {envelope.type}"
    try:
        contract.model.model_validate(envelope.data)
    except ValidationError as exc:
        loc = ".".join(str(p) for p in exc.errors()[0]["loc"])
        return f"its data does not match {envelope.type}: {loc}: {exc.errors()[0]['msg']}"
    return None


def judge(record: dict[str, Any], wait: float | None = None) -> list[Finding]:
    """What each sent message got back, from a transcript: `{"unit", "sent": [{"id", "type",
    "subject", "data", "expect"?}], "received": [{"subject", "event", "opened"?, "hash_ok"?,
    "open_error"?}]}` (what examples/partner.py writes). Answers are found by `correlationid`:
    everything a message causes carries its id."""
    out: list[Finding] = []
    for entry in record["received"]:
        problem = _schema_problem(entry["event"])
        if problem:
            out.append(
                Finding(
                    FAIL,
                    str(entry["event"].get("type")),
                    f"received on {entry['subject']}: {problem}",
                )
            )
    for sent in record["sent"]:
        answers = [r for r in record["received"] if r["event"].get("correlationid") == sent["id"]]
        rule = RULES.get(sent["type"])
        if rule is not None:
            out.extend(rule(sent, answers, record, wait))
            continue
        why = NO_ANSWER_BY_DESIGN.get(sent["type"], "emaflyt sends you no answer for it")
        where = f"stored ({sent['stream']} #{sent['seq']})" if "seq" in sent else "stored"
        also = f"; {len(answers)} message(s) it caused came to you" if answers else ""
        out.append(
            Finding(
                SENT,
                sent["type"],
                f"{where}; no answer by design: {why}{also}. A "
                "refusal shows only in the dead letters (ask the operator)",
                sent["id"],
            )
        )
    return out


# -- what the broker releases (from the policy data, as contracts/README.md §10 shows) -------


def policy() -> dict[str, Any]:
    from contracts.generate import POLICY_DATA

    return json.loads(POLICY_DATA.read_text(encoding="utf-8"))["legal"]


def released_fields(purpose: str, category: str) -> list[str]:
    lists = policy()["minimise"].get(purpose, {})
    return list(lists.get(category) or lists.get("*") or [])


def statute_covers(
    source: str, recipient: str, category: str, purpose: str, claimed: str | None = None
) -> bool:
    for sid, st in policy()["statutes"].items():
        if (
            source in st["source_sectors"]
            and recipient in st["recipient_sectors"]
            and category in st["categories"]
            and purpose in st["purposes"]
            and (not st["requires_claim"] or claimed == sid)
        ):
            return True
    return False


# -- the check itself ------------------------------------------------------------------------


def _jwt_claims(jwt: str) -> dict[str, Any]:
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (three base64url parts separated by dots)")
    return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))


def _duf() -> str:
    return f"{datetime.now(UTC).year}" + "".join(random.choices("0123456789", k=8))


@dataclass
class Options:
    unit: str
    key: Path
    jwt: Path
    nats_url: str = "nats://127.0.0.1:4222"
    sealing_key: Path | None = None
    suite: str = "x25519"
    wait: float = 15.0
    case: str | None = None
    duf: str | None = None
    offer: str | None = None
    accept: bool = False
    representative: str | None = None
    pathway: str | None = None


@dataclass
class Check:
    """One run of the check, as the partner: its own connection, consumers and keys."""

    opts: Options
    # Findings and the ids of sent messages, in the order they happened (a sent message is
    # judged at the end, in its place).
    timeline: list[Finding | str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    kind: UnitKind | None = None
    errors: list[str] = field(default_factory=list)

    def note(self, status: str, what: str, text: str) -> None:
        self.timeline.append(Finding(status, what, text))

    @property
    def findings(self) -> list[Finding]:
        """Everything found so far, sent messages judged in their place."""
        judged: dict[str | None, list[Finding]] = {}
        for finding in judge(self.record(), self.opts.wait) if self.sent else []:
            judged.setdefault(finding.event_id, []).append(finding)
        out: list[Finding] = []
        for item in self.timeline:
            out.extend(judged.pop(item, []) if isinstance(item, str) else [item])
        return out + [f for group in judged.values() for f in group]

    # -- identity, before anything is sent --------------------------------------------------

    def load(self) -> bool:
        from services.kit import nkeys
        from services.kit.sealing import SealingKey
        from services.kit.signing import UnitKey

        o = self.opts
        try:
            self.key = UnitKey.load(o.unit, o.key)
        except OSError as exc:
            self.note(FAIL, "key", f"cannot read {o.key}: {exc.strerror}")
            return False
        except (ValueError, TypeError) as exc:
            self.note(
                FAIL,
                "key",
                f"{o.key}: not an Ed25519 private key in PEM (PKCS#8), as "
                f"`emaflyt unit keygen` writes ({type(exc).__name__})",
            )
            return False
        self.nkey = nkeys.public_nkey(nkeys.USER, self.key.private)
        try:
            self.jwt = o.jwt.read_text().strip()
        except OSError as exc:
            self.note(FAIL, "jwt", f"cannot read {o.jwt}: {exc.strerror}")
            return False
        try:
            claims = _jwt_claims(self.jwt)
        except ValueError as exc:
            self.note(FAIL, "jwt", f"{o.jwt}: not a NATS user JWT ({exc})")
            return False
        problems = []
        if claims.get("sub") != self.nkey:
            problems.append(
                f"it was issued for NATS user {claims.get('sub')}, but your key is "
                f"NATS user {self.nkey}: it belongs to another key"
            )
        if claims.get("name") != o.unit:
            problems.append(
                f"it was issued to unit {claims.get('name')!r}, not {o.unit!r}: "
                "--unit must be your unit id"
            )
        if claims.get("exp") and claims["exp"] < time.time():
            problems.append("it has expired")
        allowed_sub = (claims.get("nats", {}).get("sub") or {}).get("allow") or []
        if f"{permissions.inbox_prefix(o.unit)}.>" not in allowed_sub and not problems:
            problems.append(
                f"it does not let you read the inbox {permissions.inbox_prefix(o.unit)}"
            )
        if problems:
            self.note(
                FAIL,
                "jwt",
                "; ".join(problems) + f". Ask the operator: `emaflyt unit "
                f"credentials --id {o.unit}`",
            )
            return False
        self.pub_allowed = set((claims.get("nats", {}).get("pub") or {}).get("allow") or [])
        self.note(
            OK,
            "key+jwt",
            f"key {self.key.key_id} is NATS user {self.nkey}; the JWT is issued for it",
        )
        self.sealing = None
        if o.sealing_key:
            try:
                self.sealing = SealingKey.from_json(o.sealing_key.read_text())
            except (OSError, ValueError, KeyError) as exc:
                self.note(
                    FAIL,
                    "sealing-key",
                    f"{o.sealing_key}: not a sealing key file as "
                    f"`emaflyt unit keygen --sealing` writes ({type(exc).__name__})",
                )
                return False
        return True

    async def login(self) -> bool:
        import nats

        from deploy.trust import connect_options

        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        nc = nats.NATS()
        try:
            await nc.connect(
                servers=[u.strip() for u in self.opts.nats_url.split(",")],
                connect_timeout=5,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=on_error,
                **connect_options(
                    self.jwt, self.key.private, permissions.inbox_prefix(self.opts.unit)
                ),
            )
        except Exception as exc:
            # A refused login leaves the client's socket open: close it.
            with contextlib.suppress(Exception):
                await nc.close()
            text = str(exc) or type(exc).__name__
            refused = "authorization" in (text + " ".join(self.errors)).lower()
            self.note(
                FAIL,
                "login",
                (
                    "the server refused your login: the JWT is not one this system's operator "
                    "issued, or your key was revoked (ask the operator)"
                    if refused
                    else f"no NATS server answers at {self.opts.nats_url} ({text})"
                ),
            )
            return False
        self.nc = nc
        self.js = self.nc.jetstream(timeout=10)
        self.note(OK, "login", f"logged in at {self.opts.nats_url} as {self.opts.unit}")
        return True

    async def directory(self) -> bool:
        from services.kit.directory import Directory
        from services.kit.sealing import SUITE_SETTINGS

        try:
            kv = await self.js.key_value("ema_units")
        except Exception as exc:
            self.note(
                FAIL,
                "directory",
                f"the unit directory cannot be read ({exc!r}); your "
                "JWT should allow it: ask the operator",
            )
            return False
        self.dir = Directory(kv, ttl=30)
        unit = await self.dir.get(self.opts.unit)
        if unit is None:
            self.note(
                FAIL,
                "directory",
                f"{self.opts.unit} is not registered: ask the operator "
                "to register it with your public key",
            )
            return False
        if unit.revoked_at is not None:
            self.note(FAIL, "directory", f"{unit.id} was revoked on {unit.revoked_at:%Y-%m-%d}")
            return False
        key = next((k for k in unit.keys if k.kid == self.key.kid), None)
        if key is None or key.revoked:
            state = "is revoked" if key else "is not registered"
            self.note(
                FAIL,
                "directory",
                f"your key {self.key.kid} {state} for {unit.id} (its "
                f"keys: {', '.join(k.kid for k in unit.keys)}); what you sign is refused",
            )
            return False
        self.kind = unit.kind
        self.unit = unit
        self.suite = SUITE_SETTINGS[self.opts.suite]
        mine = unit.sealing_for(self.suite)
        text = f"{unit.id} ({unit.name}) is registered as {unit.kind.value}; key "
        text += f"{self.key.kid} trusted"
        if mine is None:
            self.note(
                NOTE,
                "directory",
                text + f"; no {self.suite} sealing key is registered "
                "for you, so nothing can be released to you (register one: "
                "`--sealing-key` at registration)",
            )
        elif self.sealing is not None and self.sealing.kid != mine.kid:
            self.note(
                FAIL,
                "sealing-key",
                f"the sealing key you gave ({self.sealing.kid}) is not "
                f"the one registered for you ({mine.kid}): deliveries cannot be opened "
                "with it",
            )
            return False
        else:
            self.note(OK, "directory", text + f"; sealing key {mine.kid} ({self.suite})")
        broker = await self.dir.get("svc-consent")
        if broker is None or broker.sealing_for(self.suite) is None:
            self.note(
                FAIL,
                "directory",
                f"svc-consent has no {self.suite} sealing key: the "
                "system is not up, or uses the other suite (--suite)",
            )
            return False
        self.broker_key = broker.sealing_for(self.suite)
        expected = set(permissions.unit_sends(unit.kind))
        missing = sorted(expected - self.pub_allowed)
        if missing:
            self.note(
                FAIL,
                "jwt",
                f"your JWT does not let you publish {', '.join(missing)}, "
                f"which a {unit.kind.value} sends: ask the operator for a fresh one "
                f"(`emaflyt unit credentials --id {unit.id}`)",
            )
            return False
        return True

    async def consumers(self) -> bool:
        from nats.js.errors import NotFoundError

        assert self.kind is not None
        durable = permissions.unit_consumer(self.opts.unit)
        self.streams = permissions.unit_reads(self.opts.unit, self.kind)
        ok, waiting = [], []
        for stream, subjects in self.streams.items():
            try:
                info = await self.js.consumer_info(stream, durable)
            except NotFoundError:
                self.note(
                    FAIL,
                    "consumers",
                    f"your consumer {durable} on {stream} does not "
                    f"exist: ask the operator (`emaflyt unit credentials --id "
                    f"{self.opts.unit}` makes it again)",
                )
                return False
            except Exception as exc:
                self.note(FAIL, "consumers", f"{durable} on {stream} cannot be read ({exc!r})")
                return False
            have = sorted(info.config.filter_subjects or [info.config.filter_subject or ""])
            if have != sorted(subjects):
                self.note(
                    FAIL,
                    "consumers",
                    f"{durable} on {stream} reads {have}, not {sorted(subjects)}: ask the operator",
                )
                return False
            ok.append(stream)
            if info.num_pending or info.num_ack_pending:
                waiting.append(f"{stream}: {info.num_pending + info.num_ack_pending}")
        self.note(OK, "consumers", f"{durable} on {', '.join(ok)}")
        if waiting:
            self.note(
                NOTE,
                "consumers",
                f"messages wait in your consumers ({'; '.join(waiting)}): "
                "the check reads past them without acknowledging them, so your system "
                "still gets them; stop your own consumer while the check runs, or it may "
                "take the check's answers",
            )
        return True

    # -- sending and reading ----------------------------------------------------------------

    async def reader(self, stream: str) -> None:
        from services.kit.sealing import delivery_context
        from services.kit.verify import Invalid, verify_message

        accepts = {c.type: c for c in CONTRACTS}
        sub = await self.js.pull_subscribe_bind(permissions.unit_consumer(self.opts.unit), stream)
        seen: set[str] = set()
        while True:
            try:
                msgs = await sub.fetch(20, timeout=1)
            except asyncio.CancelledError:
                raise
            except Exception:  # a timeout with nothing to read, or the server went away
                await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                ours = self._ours(msg.data)
                try:
                    v = await verify_message(msg.subject, msg.headers, msg.data, self.dir, accepts)
                except Invalid as exc:
                    if ours:
                        self.note(
                            FAIL,
                            msg.subject,
                            f"a message addressed to you fails the contract: {exc}",
                        )
                        await msg.ack()
                    continue
                if v.event.id in seen:
                    continue
                seen.add(v.event.id)
                event = json.loads(msg.data)
                entry: dict[str, Any] = {"subject": msg.subject, "event": event}
                if v.event.type == DELIVERED and self.sealing is not None:
                    d: m.ShareDeliveredV2 = v.data  # type: ignore[assignment]
                    info = delivery_context(
                        d.decision_id,
                        d.case_id,
                        d.request_id,
                        d.source_unit,
                        d.recipient_unit,
                        d.data_category.value,
                        d.purpose,
                    )
                    try:
                        plain = self.sealing.open(d.payload, info)
                        entry["opened"] = json.loads(plain)
                        digest = "sha256:" + hashlib.sha256(plain).hexdigest()
                        entry["hash_ok"] = digest == d.content_hash
                    except Exception as exc:
                        entry["open_error"] = str(exc)
                self.received.append(entry)
                if ours:
                    await msg.ack()  # the check's own answers; anything else is left for you

    def _ours(self, body: bytes) -> bool:
        try:
            return json.loads(body).get("correlationid") in {s["id"] for s in self.sent}
        except (ValueError, AttributeError):
            return False

    async def send(
        self,
        type_: str,
        data: BaseModel,
        *,
        case_id: str | None = None,
        expect: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        from services.kit.outbox import build_event

        subject, event, body, headers = build_event(self.key, type_, data, case_id=case_id)
        record: dict[str, Any] = {
            "id": event.id,
            "type": type_,
            "subject": subject,
            "data": event.data,
        }
        if expect:
            record["expect"] = expect
        self.sent.append(record)  # before publishing: answers may come at once
        self.timeline.append(event.id)
        try:
            ack = await self.js.publish(subject, body, headers=headers, timeout=5)
        except Exception as exc:
            self.sent.remove(record)
            self.timeline.remove(event.id)
            refused = [e for e in self.errors if "permissions violation" in e.lower()]
            self.note(
                FAIL,
                type_,
                f"publishing to {subject} failed: "
                + (
                    "the server refused it (your JWT does not allow this subject)"
                    if refused
                    else repr(exc)
                ),
            )
            return None
        record["stream"], record["seq"] = ack.stream, ack.seq
        return record

    def answers(self, sent: dict[str, Any] | None, type_: str) -> list[dict[str, Any]]:
        if sent is None:
            return []
        return [
            e
            for r in self.received
            if r["event"].get("correlationid") == sent["id"]
            for e in _expanded(r["event"])
            if e["type"] == type_
        ]

    async def until(self, done: Any, wait: float | None = None) -> bool:
        deadline = time.monotonic() + (self.opts.wait if wait is None else wait)
        while time.monotonic() < deadline:
            if done():
                return True
            await asyncio.sleep(0.2)
        return bool(done())

    async def answer_of(self, sent: dict[str, Any] | None, *types: str) -> None:
        await self.until(lambda: all(self.answers(sent, t) for t in types))

    def skip(self, type_: str, why: str) -> None:
        self.note(SKIP, type_, why)

    # -- the messages of each kind ------------------------------------------------------------

    def _sends(self, type_: str) -> bool:
        c = contract_for_type(type_)
        return bool(c and self.kind in c.senders)

    async def scenario(self) -> None:
        await self._scenario()
        judged = {f.what for f in self.findings}
        for type_, why in NOT_SENT_BY_A_CHECK.items():
            if self._sends(type_) and type_ not in judged:
                self.skip(type_, why)

    async def _scenario(self) -> None:
        assert self.kind is not None
        k, o = self.kind, self.opts
        if k is UnitKind.WITNESS:
            return  # a witness sends only what it finds in the decision log
        case = o.case
        if k is UnitKind.CARE_CENTRE:
            case = await self.arrival()
        if case is None:
            if k is UnitKind.MUNICIPALITY:
                await self.capacity()
            for c in CONTRACTS:
                if (
                    k in c.senders
                    and c.type not in (ARRIVAL, "no.ema.share.request.v1")
                    and not (c.type.startswith("no.ema.municipality.capacity."))
                ):
                    self.skip(c.type, "give --case with an open test case to check it")
            return
        if k is UnitKind.STATSFORVALTER:
            await self.representative(case)
        if k is UnitKind.UDI:
            await self.residence()
        if k is UnitKind.MUNICIPALITY:
            await self.capacity()
            await self.offer_answer()
            await self.refund(case)
        if k is UnitKind.BUFETAT_REGION:
            await self.bufetat(case)
        if k is UnitKind.CARE_CENTRE:
            await self.care_centre(case)
        if self._sends(PATHWAY):
            await self.pathway(case)
        else:
            why = (
                "no task in emaflyt's pathways is assigned to a "
                f"{k.value} unit: report the tasks you are responsible for"
            )
            if self._sends(TASK_DONE):
                self.skip(TASK_DONE, why)
            if self._sends(MILESTONE):
                self.skip(MILESTONE, "report milestones of a pathway that runs for the case")
        await self.share(case)
        if k is UnitKind.HEALTH:
            await self.treatment(case)
        if k is UnitKind.REPRESENTATIVE:
            await self.consents(case, "identity", "settlement")
        elif k is not UnitKind.CARE_CENTRE:
            for t in (GRANTED, WITHDRAWN):
                self.skip(
                    t,
                    "the broker records consents only from the case's care centre or "
                    "the child's representative (contracts/README.md §12)",
                )

    async def arrival(self) -> str | None:
        now = datetime.now(UTC)
        born = (now - timedelta(days=365 * 10 + 40)).date()
        sent = await self.send(
            ARRIVAL,
            m.ArrivalV1(
                duf_number=_duf(),
                name="Partner Check",
                birth_date=born,
                birth_date_estimated=True,
                sex="unknown",
                nationality="XXX",
                languages=["prs"],
                care_centre=self.opts.unit,
                arrived_at=now,
            ),
        )
        await self.answer_of(sent, REGISTERED, NOTICE)
        reg = self.answers(sent, REGISTERED)
        return reg[0]["data"]["case_id"] if reg else None

    async def care_centre(self, case: str) -> None:
        today = datetime.now(UTC).date()
        sent = await self.send(
            TASK_DONE,
            m.TaskCompletedV1(case_id=case, task="arrival_talk", completed_on=today),
            case_id=case,
        )
        await self.until(
            lambda: any(n["data"]["status"] == "done" for n in self.answers(sent, NOTICE))
        )
        digest = hashlib.sha256(b"partner check: KOPP proposal").hexdigest()
        sent = await self.send(
            KOPP,
            m.KoppSubmittedV1(case_id=case, submitted_on=today, document_sha256=digest),
            case_id=case,
        )
        await self.answer_of(sent, NOTICE)
        for t in (MAP, NEED):
            self.skip(
                t,
                "follows Bufetat's follow-up decision (the pathway's order, contracts/README.md "
                "§11); send it on a case that has one",
            )
        await self.consents(case, "school", "schooling")

    async def consents(self, case: str, category: str, purpose: str) -> None:
        """Register a consent for a flow to yourself, share under it, withdraw it, and see the
        same request withheld."""
        now = datetime.now(UTC)
        assert self.kind is not None
        consent_id = f"check-{uuid.uuid4().hex[:12]}"
        grant = m.ConsentGrantedV1(
            consent_id=consent_id,
            case_id=case,
            grantor=m.Grantor(
                role=m.GrantorRole.REPRESENTATIVE,
                capacity="representant oppnevnt av Statsforvalteren",
            ),
            form=m.ConsentForm(kind="oral", witness_unit=self.opts.unit, witness_role="check"),
            scope=[
                m.Flow(
                    categories=[m.DataCategory(category)],
                    source_units=[self.opts.unit],
                    recipient_units=[self.opts.unit],
                    purposes=[purpose],
                )
            ],
            granted_at=now,
            valid_from=now - timedelta(minutes=1),
            valid_to=now + timedelta(days=30),
            child_heard=m.ChildHeard(status="heard", method="samtale"),
        )
        sent = await self.send(GRANTED, grant, case_id=case)
        await self.answer_of(sent, RECORDED)
        recorded = bool(self.answers(sent, RECORDED))
        content = {f: f"check value for {f}" for f in released_fields(purpose, category)}
        content["name"] = "never released: not a field of this purpose"
        if recorded:
            await self.request(
                case, category, purpose, content, "released", released_fields(purpose, category)
            )
        sent = await self.send(
            WITHDRAWN,
            m.ConsentWithdrawnV1(
                consent_id=consent_id,
                case_id=case,
                withdrawn_by=m.GrantorRole.REPRESENTATIVE,
                withdrawn_at=datetime.now(UTC),
            ),
            case_id=case,
        )
        await self.answer_of(sent, RECORDED)
        if recorded and self.answers(sent, RECORDED):
            await self.request(case, category, purpose, content, "withheld")

    async def request(
        self,
        case: str,
        category: str,
        purpose: str,
        content: dict[str, Any],
        outcome: str | None,
        fields: list[str] | None = None,
        claimed: str | None = None,
    ) -> None:
        from services.kit.sealing import request_context, seal

        if outcome == "released" and self.unit.sealing_for(self.suite) is None:
            outcome, fields = "withheld", None  # nothing can be sealed to you
        request_id = f"check-{uuid.uuid4().hex[:16]}"
        info = request_context(case, request_id, self.opts.unit, self.opts.unit, category, purpose)
        payload = seal(json.dumps(content).encode(), self.suite, self.broker_key.public_key, info)
        req = m.ShareRequestV2(
            request_id=request_id,
            case_id=case,
            source_unit=self.opts.unit,
            recipient_unit=self.opts.unit,
            data_category=category,
            purpose=purpose,
            payload=payload,
            claimed_basis=claimed,
        )
        expect: dict[str, Any] = {"outcome": outcome} if outcome else {}
        if fields is not None:
            expect["fields"] = fields
        sent = await self.send(SHARE, req, case_id=case, expect=expect)
        types = (RECEIPT, DELIVERED) if outcome == "released" else (RECEIPT,)
        await self.answer_of(sent, *types)

    async def share(self, case: str) -> None:
        """Anonymous consultation with yourself: released without consent (fvl § 13 a nr. 2)
        to the kinds the statute lists, with only its fields."""
        assert self.kind is not None
        category = {
            UnitKind.SCHOOL: "school",
            UnitKind.HEALTH: "health",
            UnitKind.BARNEVERN: "barnevern",
            UnitKind.BUFETAT_REGION: "kopp",
            UnitKind.CARE_CENTRE: "kopp",
        }.get(self.kind, "settlement")
        purpose = "anonymous_consultation"
        kind = self.kind.value
        covered = statute_covers(kind, kind, category, purpose)
        fields = released_fields(purpose, category)
        content = {f: f"check value for {f}" for f in fields} | {"name": "never released"}
        await self.request(
            case,
            category,
            purpose,
            content,
            "released" if covered else "withheld",
            fields if covered else None,
        )

    async def treatment(self, case: str) -> None:
        fields = released_fields("treatment", "health")
        content = {f: f"check value for {f}" for f in fields} | {"name": "never released"}
        await self.request(case, "health", "treatment", content, "released", fields, "hpl-25")

    async def pathway(self, case: str) -> None:
        assert self.kind is not None
        pathway = self.opts.pathway or {
            UnitKind.CARE_CENTRE: "care-institution",
            UnitKind.BARNEVERN: "treatment-institution",
        }.get(self.kind, "emergency-institution")
        today = datetime.now(UTC).date()
        sent = await self.send(
            PATHWAY,
            m.PathwayStartedV1(case_id=case, pathway=pathway, started_on=today),
            case_id=case,
        )
        await self.answer_of(sent, NOTICE)
        notices = [
            n["data"]
            for n in self.answers(sent, NOTICE)
            if n["data"]["responsible_unit"] == self.opts.unit
        ]
        if self._sends(TASK_DONE):
            if notices:
                task = sorted(notices, key=lambda n: n["due"])[0]["task"]
                done = await self.send(
                    TASK_DONE,
                    m.TaskCompletedV1(case_id=case, task=task, completed_on=today),
                    case_id=case,
                )
                await self.until(
                    lambda: any(n["data"]["status"] == "done" for n in self.answers(done, NOTICE))
                )
            elif self.kind is not UnitKind.CARE_CENTRE:
                self.skip(TASK_DONE, "no task of the pathway came to you to complete")
        if self._sends(MILESTONE):
            await self.send(
                MILESTONE,
                m.MilestoneReportedV1(
                    case_id=case,
                    pathway=pathway,
                    milestone="move_out_planned",
                    on=today + timedelta(days=30),
                ),
                case_id=case,
            )

    async def representative(self, case: str) -> None:
        await self.until(
            lambda: any(
                r["event"]["type"] == REQUESTED and r["event"]["data"]["case_id"] == case
                for r in self.received
            ),
            wait=3,
        )
        requests = [r for r in self.received if r["event"]["type"] == REQUESTED]
        if any(r["event"]["data"]["case_id"] == case for r in requests):
            self.note(OK, REQUESTED, f"the request for case {case} is in your consumer")
        else:
            self.note(
                NOTE,
                REQUESTED,
                f"no request for case {case} waits in your consumer "
                "(acknowledged before?); the appointment is sent all the same",
            )
        if not self.opts.representative:
            self.skip(APPOINTED, "give --representative UNIT (the representative you appoint)")
            return
        await self.send(
            APPOINTED,
            m.RepresentativeAppointedV1(
                case_id=case,
                representative_unit=self.opts.representative,
                name="Partner Check Representant",
                appointed_on=datetime.now(UTC).date(),
            ),
            case_id=case,
        )

    async def residence(self) -> None:
        if not self.opts.duf:
            self.skip(RESIDENCE, "give --duf with the test case's DUF number")
            return
        await self.send(
            RESIDENCE,
            m.ResidenceDecisionV1(
                duf_number=self.opts.duf,
                outcome="granted",
                decided_on=datetime.now(UTC).date(),
                udi_reference=f"CHECK-{uuid.uuid4().hex[:8]}",
            ),
        )

    def kommunenummer(self) -> str | None:
        number = self.opts.unit.removeprefix("kommune-")
        if self.opts.unit.startswith("kommune-") and len(number) == 4 and number.isdigit():
            return number
        self.note(
            FAIL,
            "unit id",
            f"a municipality's unit id is kommune-<kommunenummer>, not "
            f"{self.opts.unit!r}: what it sends for a kommunenummer is refused",
        )
        return None

    async def capacity(self) -> None:
        number = self.kommunenummer()
        if number is None:
            return
        year = datetime.now(UTC).year
        await self.send(
            "no.ema.municipality.capacity.v1",
            m.CapacityPublishedV1(
                kommunenummer=number,
                year=year,
                children=5,
                measures=["bofellesskap"],
                free_places=2,
            ),
        )
        await self.send(
            "no.ema.municipality.capacity.v2",
            m.CapacityPublishedV2(
                kommunenummer=number,
                year=year,
                children=5,
                free_places=2,
                offers=[m.MeasureOffer(measure="bofellesskap", min_age=6, max_age=17)],
                competences=["language_support"],
            ),
        )

    async def offer_answer(self) -> None:
        if not self.opts.offer:
            self.skip(
                ANSWERED,
                "give --offer OFFER_ID (an offer to you) to answer it (declined unless --accept)",
            )
            return
        await self.until(
            lambda: any(
                r["event"]["type"] == OFFER and r["event"]["data"]["offer_id"] == self.opts.offer
                for r in self.received
            ),
            wait=3,
        )
        offer = next(
            (
                r["event"]["data"]
                for r in self.received
                if r["event"]["type"] == OFFER and r["event"]["data"]["offer_id"] == self.opts.offer
            ),
            None,
        )
        if offer is None:
            self.note(
                NOTE,
                OFFER,
                f"offer {self.opts.offer} is not (or no longer) in your "
                "consumer; answered all the same",
            )
        else:
            data_came = any(
                r["event"]["type"] == DELIVERED
                and r["event"]["data"]["request_id"] == offer["share_request_id"]
                for r in self.received
            )
            self.note(
                OK if data_came else NOTE,
                OFFER,
                f"offer {offer['offer_id']} of case "
                f"{offer['case_ref']}, {offer['measure']}, answer by {offer['answer_by']}"
                + (
                    "; the child's data came with it"
                    if data_came
                    else "; no data came with it: no consent releases settlement data to you "
                    "(contracts/README.md §12)"
                ),
            )
        if self.opts.accept:
            answer = m.OfferAnsweredV1(
                offer_id=self.opts.offer,
                answer="accept",
                settle_on=datetime.now(UTC).date(),
                measure=offer["measure"] if offer else "bofellesskap",
            )
        else:
            answer = m.OfferAnsweredV1(
                offer_id=self.opts.offer, answer="decline", reason="partner check: declined"
            )
        sent = await self.send(ANSWERED, answer)
        await self.answer_of(sent, OUTCOME)

    async def refund(self, case: str) -> None:
        number = self.kommunenummer()
        if number is None:
            return
        today = datetime.now(UTC).date()
        sent = await self.send(
            REFUND,
            m.RefundClaimedV1(
                claim_id=f"check-{uuid.uuid4().hex[:12]}",
                case_id=case,
                kommunenummer=number,
                period_from=today,
                period_to=today,
                expenses_nok="1000.00",
            ),
            case_id=case,
        )
        await self.answer_of(sent, REFUND_DECIDED)

    async def bufetat(self, case: str) -> None:
        today = datetime.now(UTC).date()
        await self.send(
            "no.ema.municipality.settlement-profile.v1",
            m.SettlementProfileV1(
                case_id=case,
                bufetat_region="øst",
                recommended_measure="bofellesskap",
                birth_date=today.replace(year=today.year - 12),
                languages=["prs"],
                care_needs=[],
                family_municipalities=[],
                network_municipalities=[],
                siblings=[],
                kopp_on=today,
            ),
            case_id=case,
        )
        for t, why in (
            (
                "no.ema.municipality.offer-requested.v1",
                "offers a real child to a municipality: send it when the child is ready",
            ),
            (
                "no.ema.planning.follow-up-decided.v1",
                "needs the case's representative and KOPP; send it on a case that has both",
            ),
            ("no.ema.case.settled.v1", "closes the case: not sent by a check"),
        ):
            self.skip(t, why)

    # -- the whole run ----------------------------------------------------------------------

    async def run(self) -> list[Finding]:
        if not self.load() or not await self.login():
            return self.findings
        readers: list[asyncio.Task] = []
        try:
            if not await self.directory() or not await self.consumers():
                return self.findings
            readers = [asyncio.create_task(self.reader(s)) for s in self.streams]
            await self.scenario()
            await asyncio.sleep(0.5)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await self.nc.close()
        return self.findings

    def record(self) -> dict[str, Any]:
        return {"unit": self.opts.unit, "sent": self.sent, "received": self.received}


def report(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.extend(f.lines())
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    order = (OK, SENT, NOTE, SKIP, NO_ANSWER, FAIL)
    lines.append("summary: " + ", ".join(f"{counts[s]} {s}" for s in order if s in counts))
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    partner = sub.add_parser("partner", help="for partners: check your integration")
    cmds = partner.add_subparsers(dest="partner_cmd", required=True)
    ck = cmds.add_parser(
        "check",
        help="send one of each message your kind may send and check the answers, as your own unit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ck.add_argument("--unit", required=True, help="your unit id")
    ck.add_argument("--key", required=True, help="your Ed25519 private key (PEM)")
    ck.add_argument("--jwt", required=True, help="your NATS user JWT (from the operator)")
    ck.add_argument(
        "--nats-url",
        dest="partner_nats_url",
        metavar="NATS_URL",
        help="the system's NATS URL (default: emaflyt --nats-url, or nats://127.0.0.1:4222)",
    )
    ck.add_argument(
        "--sealing-key",
        help="your sealing key file (`unit keygen --sealing`), to open what is released to you",
    )
    ck.add_argument("--suite", choices=["x25519", "mlkem768-x25519"], default="x25519")
    ck.add_argument("--wait", type=float, default=15.0, help="seconds to wait for each answer")
    ck.add_argument("--case", help="an open test case (every kind but care centres needs one)")
    ck.add_argument("--duf", help="UDI: the test case's DUF number")
    ck.add_argument("--offer", help="municipality: an offer to you, to answer")
    ck.add_argument("--accept", action="store_true", help="accept --offer (default: decline)")
    ck.add_argument("--representative", help="Statsforvalter: the representative to appoint")
    ck.add_argument("--pathway", help="the pathway to start (default by kind)")
    ck.add_argument("--json", action="store_true", help="the findings as JSON")
    ck.set_defaults(func=main)


def options(args: argparse.Namespace) -> Options:
    url = args.partner_nats_url or getattr(args, "nats_url", None) or "nats://127.0.0.1:4222"
    return Options(
        unit=args.unit,
        key=Path(args.key),
        jwt=Path(args.jwt),
        nats_url=url,
        sealing_key=Path(args.sealing_key) if args.sealing_key else None,
        suite=args.suite,
        wait=args.wait,
        case=args.case,
        duf=args.duf,
        offer=args.offer,
        accept=args.accept,
        representative=args.representative,
        pathway=args.pathway,
    )


def main(args: argparse.Namespace) -> int:
    opts = options(args)
    check = Check(opts)
    print(f"emaflyt partner check: {opts.unit} at {opts.nats_url}", flush=True)
    findings = asyncio.run(check.run())
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2, ensure_ascii=False))
    else:
        print(report(findings))
    return 1 if failed(findings) or not any(f.status == OK for f in findings) else 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m deploy.partner_check")
    add_parser(cli.add_subparsers(dest="command", required=True))
    parsed = cli.parse_args(["partner", "check", *sys.argv[1:]])
    sys.exit(parsed.func(parsed))
