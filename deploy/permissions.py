"""Who may publish and subscribe to what on the bus: one NATS user per service, one per unit
kind, and an operator. Derived from the subject map (contracts/registry.py) and each service's
consumers, rendered as a nats-server `authorization` block (deploy/nats/auth.conf for
containers, with passwords from the environment; the embedded launcher writes its own with
generated passwords).

    python -m deploy.permissions          # rewrite deploy/nats/auth.conf
    python -m deploy.permissions --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from contracts.messages import UnitKind
from contracts.registry import CONTRACTS, LOG_CONSISTENCY, WITNESS_QUERY, contract_for_type

SERVICES = ("intake", "planning", "consent", "notify", "municipality")
AUTH_CONF = Path(__file__).parent / "nats" / "auth.conf"
KV_STREAM = "KV_ema_units"

# The message types each service emits (a unit test checks this against the code).
EMITS: dict[str, tuple[str, ...]] = {
    "intake": ("no.ema.case.opened.v1", "no.ema.case.representative.v1",
               "no.ema.case.residence-decided.v1", "no.ema.case.transferred.v1",
               "no.ema.intake.representative-requested.v1"),
    "planning": ("no.ema.case.closed.v1", "no.ema.planning.deadline-scheduled.v1",
                 "no.ema.planning.task-status.v1"),
    "consent": ("no.ema.consent.recorded.v1", "no.ema.log.checkpoint.v1",
                "no.ema.share.decided.v1", "no.ema.share.delivered.v1",
                "no.ema.share.delivered.v2", "no.ema.share.emergency-overdue.v1",
                "no.ema.share.emergency-released.v1", "no.ema.share.receipt.v1"),
    "notify": ("no.ema.notify.notification-recorded.v1",),
    "municipality": ("no.ema.case.settled.v1", "no.ema.municipality.offer-escalated.v1",
                     "no.ema.municipality.offer-outcome.v1", "no.ema.municipality.offer.v1",
                     "no.ema.municipality.refund-decided.v1", "no.ema.share.request.v1"),
}  # fmt: skip

UNIT_KINDS = tuple(k for k in UnitKind if k is not UnitKind.SERVICE)
# Kinds that take part in cases; a witness receives nothing addressed to units.
CASE_KINDS = tuple(k for k in UNIT_KINDS if k is not UnitKind.WITNESS)

# What a kind reads beyond what is addressed to it: the care centre follows its cases and
# deadlines; Bufetat follows every case, deadline and unanswered offer.
READS: dict[UnitKind, tuple[str, ...]] = {
    UnitKind.CARE_CENTRE: ("ema.case.>", "ema.planning.deadline.scheduled",
                           "ema.planning.task.status"),
    UnitKind.BUFETAT_REGION: ("ema.case.>", "ema.planning.>", "ema.municipality.offer.escalated"),
}  # fmt: skip


# Addressed message types each kind receives (others it neither needs nor may read).
RECEIVES: dict[str, tuple[UnitKind, ...]] = {
    "no.ema.share.receipt.v1": CASE_KINDS,
    "no.ema.share.delivered.v1": CASE_KINDS,
    "no.ema.share.delivered.v2": CASE_KINDS,
    "no.ema.consent.recorded.v1": CASE_KINDS,
    "no.ema.municipality.offer.v1": (UnitKind.MUNICIPALITY,),
    "no.ema.municipality.offer-outcome.v1": (UnitKind.MUNICIPALITY,),
    "no.ema.municipality.refund-decided.v1": (UnitKind.MUNICIPALITY,),
}


def _addressed_to(kind: UnitKind, type_: str) -> bool:
    return kind in RECEIVES.get(type_, ())


def consumers(service: str) -> list[tuple[str, str]]:
    """(stream, durable) of every consumer the service binds."""
    app = importlib.import_module(f"services.{service}.app")
    return [(sub.stream, sub.durable) for sub in app.service.subscriptions]


def service_permissions(service: str) -> dict[str, list[str]]:
    publish = {f"ema.dlq.{service}", f"$KV.ema_units.svc-{service}",
               f"$JS.API.STREAM.INFO.{KV_STREAM}", f"$JS.API.DIRECT.GET.{KV_STREAM}.>",
               f"$JS.API.STREAM.MSG.GET.{KV_STREAM}", "$JS.API.INFO",
               "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.CREATE.*",
               "$JS.API.STREAM.UPDATE.*"}  # fmt: skip
    for type_ in EMITS[service]:
        contract = contract_for_type(type_)
        assert contract is not None, type_
        publish.add(contract.subject.replace("{unit}", "*"))
    for stream, durable in consumers(service):
        publish |= {f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
                    f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
                    f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                    f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                    f"$JS.ACK.{stream}.{durable}.>"}  # fmt: skip
    subscribe = {"_INBOX.>"}
    perms = {"publish": sorted(publish), "subscribe": sorted(subscribe)}
    if service == "consent":  # answers witnesses' proof requests; asks witnesses when auditing
        perms["subscribe"] = sorted(subscribe | {LOG_CONSISTENCY})
        perms["publish"] = sorted(publish | {WITNESS_QUERY.replace("{unit}", "*")})
        perms["allow_responses"] = True
    return perms


def unit_kind_permissions(kind: UnitKind) -> dict[str, list[str]]:
    """A unit publishes the types its kind may send and reads what is addressed to its kind."""
    publish, subscribe = {f"$JS.API.STREAM.INFO.{KV_STREAM}",
                          f"$JS.API.DIRECT.GET.{KV_STREAM}.>"}, {"_INBOX.>"}  # fmt: skip
    for contract in CONTRACTS:
        if kind in contract.senders:
            publish.add(contract.subject.replace("{unit}", "*"))
        if "{unit}" in contract.subject and _addressed_to(kind, contract.type):
            # NATS wildcards match whole tokens only, so a kind's user reads what is addressed
            # to any unit of the types it receives; the content stays sealed to the recipient's
            # key. Isolating one unit from another needs a user per unit (docs/runbook.md).
            subscribe.add(contract.subject.replace("{unit}", "*"))
    subscribe.update(READS.get(kind, ()))
    if kind is UnitKind.WITNESS:
        # Its own durable consumer on the LOG stream, the directory (to check the broker's
        # signatures), proofs from the broker, and audit queries.
        publish |= {"$JS.API.CONSUMER.CREATE.LOG.>", "$JS.API.CONSUMER.DURABLE.CREATE.LOG.>",
                    "$JS.API.CONSUMER.INFO.LOG.>", "$JS.API.CONSUMER.MSG.NEXT.LOG.>",
                    "$JS.ACK.LOG.>", LOG_CONSISTENCY,
                    f"$JS.API.STREAM.MSG.GET.{KV_STREAM}"}  # fmt: skip
        subscribe.add(WITNESS_QUERY.replace("{unit}", "*"))
        return {"publish": sorted(publish), "subscribe": sorted(subscribe),
                "allow_responses": True}  # fmt: skip
    return {"publish": sorted(publish), "subscribe": sorted(subscribe)}


def users() -> dict[str, dict]:
    table = {f"svc-{name}": service_permissions(name) for name in SERVICES}
    table |= {f"unit-{kind.value}": unit_kind_permissions(kind) for kind in UNIT_KINDS}
    table["operator"] = {"publish": [">"], "subscribe": [">"]}
    return table


def _quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def render(passwords: dict[str, str]) -> str:
    """nats-server `authorization` block; a password of the form $VAR comes from the env."""
    lines = [
        "# Generated by `python -m deploy.permissions` from contracts/registry.py and the",
        "# services' consumers. Do not edit by hand.",
        "authorization {",
        "  users = [",
    ]
    for user, perms in users().items():
        password = passwords[user]
        shown = password if password.startswith("$") else f'"{password}"'
        lines += [f'    {{ user: "{user}", password: {shown}, permissions: {{',
                  f"        publish: {{ allow: [{_quote(perms['publish'])}] }},",
                  f"        subscribe: {{ allow: [{_quote(perms['subscribe'])}] }}"
                  + (",\n        allow_responses: true" if perms.get("allow_responses") else ""),
                  "    } }"]  # fmt: skip
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def env_passwords() -> dict[str, str]:
    return {u: "$NATS_PASSWORD_" + u.upper().replace("-", "_") for u in users()}


def main(argv: list[str]) -> int:
    text = "# Users and permissions for docker-compose; passwords from .env.\n" + render(
        env_passwords()
    )
    if "--check" in argv:
        ok = AUTH_CONF.exists() and AUTH_CONF.read_text() == text
        print(
            "up to date" if ok else f"out of date: {AUTH_CONF} (run python -m deploy.permissions)"
        )
        return 0 if ok else 1
    AUTH_CONF.write_text(text)
    print(f"wrote {AUTH_CONF}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
