"""Who may publish and subscribe to what on the bus, per identity: each service and each unit
connects as itself (deploy/trust.py issues its NATS user JWT with these permissions).

Derived from the subject map (contracts/registry.py: senders and readers), each service's
consumers, and the unit's own id:

- a unit publishes the types its kind may send, reads only what is addressed to it (subjects
  ending in its id) and the few broadcasts its kind may read (ids, codes and dates only),
  through its own durable consumers, which the operator's tooling provisions;
- a service publishes what its code emits and its own dead letters, and pulls from its own
  consumers; neither creates or changes streams or consumers;
- every identity has its own reply-inbox prefix (`_INBOX_<id>`); nobody reads `_INBOX.>`.

    python -m deploy.permissions [--identity ID --kind KIND] [--json]   # print them
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from contracts.messages import UnitKind
from contracts.registry import (
    CONTRACTS,
    LOG_CONSISTENCY,
    WITNESS_QUERY,
    contract_for_type,
    stream_for_subject,
    unit_consumer,
)

SERVICES = ("intake", "planning", "consent", "notify", "municipality")
KV_STREAM = "KV_ema_units"

# The message types each service emits (a unit test checks this against the code).
EMITS: dict[str, tuple[str, ...]] = {
    "intake": (
        "no.ema.case.appealed.v1",
        "no.ema.case.departed.v1",
        "no.ema.case.opened.v2",
        "no.ema.case.representative.v1",
        "no.ema.case.residence-decided.v2",
        "no.ema.case.transferred.v1",
        "no.ema.intake.arrival-registered.v1",
        "no.ema.intake.representative-requested.v1",
    ),
    "planning": (
        "no.ema.case.closed.v1",
        "no.ema.planning.case-tasks.v1",
    ),
    "consent": (
        "no.ema.consent.recorded.v1",
        "no.ema.log.checkpoint.v1",
        "no.ema.share.decided.v1",
        "no.ema.share.delivered.v2",
        "no.ema.share.emergency-overdue.v1",
        "no.ema.share.emergency-released.v1",
        "no.ema.share.receipt.v1",
    ),
    "notify": ("no.ema.notify.task-notice.v1", "no.ema.notify.task-notices.v1"),
    "municipality": (
        "no.ema.case.settled.v1",
        "no.ema.case.settlement-planned.v1",
        "no.ema.municipality.case-access.v1",
        "no.ema.municipality.follow-up-reached.v1",
        "no.ema.municipality.handover-notice.v1",
        "no.ema.municipality.offer-escalated.v1",
        "no.ema.municipality.offer-outcome.v1",
        "no.ema.municipality.offer.v1",
        "no.ema.municipality.referral-notice.v1",
        "no.ema.municipality.refund-decided.v1",
        "no.ema.share.request.v2",
    ),
}

UNIT_KINDS = tuple(k for k in UnitKind if k is not UnitKind.SERVICE)

# Reading the unit directory (keys, sealing keys): stream info and direct gets, nothing else.
DIRECTORY_READ = (
    f"$JS.API.STREAM.INFO.{KV_STREAM}",
    f"$JS.API.DIRECT.GET.{KV_STREAM}.>",
    f"$JS.API.STREAM.MSG.GET.{KV_STREAM}",
)


def inbox_prefix(identity: str) -> str:
    """The reply-inbox prefix of an identity: its replies reach it alone."""
    return f"_INBOX_{identity}"


def service_unit(service: str) -> str:
    return f"svc-{service}"


def _consumer_rights(stream: str, durable: str) -> set[str]:
    return {
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    }


def subscriptions(service: str) -> list[Any]:
    """The service's subscriptions (kit Subscription: durable, stream, filter subjects)."""
    app = importlib.import_module(f"services.{service}.app")
    return list(app.service.subscriptions)


def consumers(service: str) -> list[tuple[str, str]]:
    """(stream, durable) of every consumer the service binds."""
    return [(sub.stream, sub.durable) for sub in subscriptions(service)]


def service_permissions(service: str) -> dict[str, list[str]]:
    publish = {
        f"ema.dlq.{service}",
        f"$KV.ema_units.{service_unit(service)}",
        "$JS.API.STREAM.INFO.DLQ",
        *DIRECTORY_READ,
    }
    for type_ in EMITS[service]:
        contract = contract_for_type(type_)
        assert contract is not None, type_
        publish.add(contract.subject.replace("{unit}", "*"))
    for stream, durable in consumers(service):
        publish |= _consumer_rights(stream, durable)
    perms: dict[str, Any] = {
        "publish": sorted(publish),
        "subscribe": [inbox_prefix(service_unit(service)) + ".>"],
    }
    if service == "consent":  # answers witnesses' proof requests; asks witnesses when auditing
        perms["subscribe"] = sorted({*perms["subscribe"], LOG_CONSISTENCY})
        perms["publish"] = sorted({*perms["publish"], WITNESS_QUERY.replace("{unit}", "*")})
        perms["allow_responses"] = True
    return perms


def unit_reads(unit_id: str, kind: UnitKind) -> dict[str, list[str]]:
    """Per stream, the subjects a unit reads: addressed to it, or broadcasts its kind reads."""
    out: dict[str, set[str]] = {}
    for contract in CONTRACTS:
        if kind not in contract.readers:
            continue
        addressed = "{unit}" in contract.subject
        subject = contract.subject_for(unit_id) if addressed else contract.subject
        out.setdefault(stream_for_subject(subject).name, set()).add(subject)
    return {stream: sorted(subjects) for stream, subjects in sorted(out.items())}


def unit_sends(kind: UnitKind) -> list[str]:
    return sorted({c.subject for c in CONTRACTS if kind in c.senders and "{unit}" not in c.subject})


def unit_permissions(unit_id: str, kind: UnitKind) -> dict[str, Any]:
    """A unit publishes what its kind may send and reads what is addressed to it."""
    publish = set(unit_sends(kind)) | set(DIRECTORY_READ)
    subscribe = {inbox_prefix(unit_id) + ".>"}
    for stream, subjects in unit_reads(unit_id, kind).items():
        publish |= _consumer_rights(stream, unit_consumer(unit_id))
        subscribe |= set(subjects)  # live delivery too, for a unit that is always connected
    perms: dict[str, Any] = {"publish": sorted(publish), "subscribe": sorted(subscribe)}
    if kind is UnitKind.WITNESS:
        # Asks the broker for consistency proofs; answers audit queries addressed to it.
        perms["publish"] = sorted({*publish, LOG_CONSISTENCY})
        perms["subscribe"] = sorted({*subscribe, WITNESS_QUERY.replace("{unit}", unit_id)})
        perms["allow_responses"] = True
    return perms


OPERATOR_PERMISSIONS = {"publish": [">"], "subscribe": [">"]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.permissions", description=__doc__)
    p.add_argument("--identity", help="a service name, or a unit id (with --kind)")
    p.add_argument("--kind", choices=[k.value for k in UNIT_KINDS])
    args = p.parse_args(argv)
    if args.identity in SERVICES:
        table = {service_unit(args.identity): service_permissions(args.identity)}
    elif args.identity:
        if not args.kind:
            p.error("--kind is needed for a unit")
        table = {args.identity: unit_permissions(args.identity, UnitKind(args.kind))}
    else:
        table = {service_unit(s): service_permissions(s) for s in SERVICES}
        table |= {f"<{k.value} unit>": unit_permissions("<unit-id>", k) for k in UNIT_KINDS}
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
