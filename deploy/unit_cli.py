"""`emaflyt unit ...`: register, rotate and revoke units; hand them their NATS credentials."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path

from contracts.messages import UnitKind
from deploy import operator, units
from deploy.trust import creds_file, write_private
from services.kit.directory import Directory, bucket
from services.kit.nkeys import user_nkey_from_b64
from services.kit.sealing import HYBRID, X25519, SealingKey
from services.kit.signing import UnitKey


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise units.Refused(
            f"{path} exists: it may hold the key a unit is registered with. Choose another "
            "path, or --force to replace it (the registered key then no longer matches)"
        )


async def _register(args: argparse.Namespace) -> int:
    key: UnitKey | None = None
    if args.generate_key:
        if not args.key_out:
            raise units.Refused("--generate-key needs --key-out PATH for the private key")
        _refuse_overwrite(Path(args.key_out), args.force)
        key = UnitKey.generate(args.id)
        public_b64 = key.public_b64
    elif args.public_key:
        public_b64 = args.public_key
    else:
        raise units.Refused("give --public-key B64 or --generate-key --key-out PATH")
    nc = await operator.connect(args)
    try:
        done = await units.register(
            nc,
            Path(args.data_dir),
            operator.trust(args),
            args.id,
            args.name,
            UnitKind(args.kind),
            public_b64,
            args.sealing_key,
            args.pq_sealing_key,
            kommunenummer=args.kommunenummer,
            notices=args.notices,
        )
    finally:
        await nc.close()
    if key is not None:
        key.save(Path(args.key_out))
        print(f"private key written to {args.key_out} (mode 600): keep it with the unit")
    print(
        f"unit {done.unit.id} ({done.unit.kind.value}) registered; key id {done.unit.id}/"
        f"{done.kid}; NATS user {done.nkey}"
    )
    print(f"public key {public_b64}")
    print(f"task notices: {done.unit.notices} (emaflyt unit notices changes it)")
    if done.jwt_path is not None:
        print(
            f"NATS user JWT: {done.jwt_path} (hand it to the unit; with its private key it "
            "logs in as itself: contracts/README.md §1)"
        )
        if key is not None and args.creds_out:
            _refuse_overwrite(Path(args.creds_out), args.force)
            write_private(
                Path(args.creds_out), creds_file(done.jwt_path.read_text().strip(), key.private)
            )
            print(f"NATS credentials (JWT and NKey seed) written to {args.creds_out} (mode 600)")
    return 0


async def _list(args: argparse.Namespace) -> int:
    nc = await operator.connect(args)
    try:
        directory = Directory(await bucket(nc.jetstream()))
        found = sorted(await directory.all(), key=lambda u: u.id)
    finally:
        await nc.close()
    if args.json:
        print(json.dumps([u.model_dump(mode="json") for u in found], indent=2))
        return 0
    for unit in found:
        state = f" REVOKED {unit.revoked_at:%Y-%m-%d %H:%M}" if unit.revoked_at else ""
        kids = ", ".join(k.kid + (" (revoked)" if k.revoked else "") for k in unit.keys)
        grouped = "  notices: grouped" if unit.notices == "grouped" else ""
        print(f"{unit.id:28s} {unit.kind.value:15s} {unit.name}{state}  keys: {kids}{grouped}")
    return 0


async def _notices(args: argparse.Namespace) -> int:
    nc = await operator.connect(args)
    try:
        unit = await units.set_notices(nc, args.id, args.form)
    finally:
        await nc.close()
    what = {
        "each": "a no.ema.notify.task-notice.v1 per task",
        "grouped": "one no.ema.notify.task-notices.v1 per step of planning in a case",
    }[unit.notices]
    print(
        f"unit {unit.id} hears its tasks as {what} on ema.notify.tasks.{unit.id}, from notify's "
        "next step (within 5 s)"
    )
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    nc = await operator.connect(args)
    try:
        unit, servers = await units.revoke(
            nc, operator.servers(args), operator.trust(args), args.id, getattr(args, "kid", None)
        )
    finally:
        await nc.close()
    what = f"key {args.id}/{args.kid}" if getattr(args, "kid", None) else f"unit {args.id}"
    live = [k.kid for k in unit.keys if not k.revoked]
    print(
        f"{what} revoked: its messages are dead-lettered from now on; its NATS users were "
        f"disconnected and are refused ({servers} server(s) confirmed). Keys still trusted: "
        f"{', '.join(live) or 'none'}"
    )
    return 0


async def _credentials(args: argparse.Namespace) -> int:
    """Issue (again) the NATS user JWT of a registered unit: for units registered before
    per-unit identities, or a lost JWT. With --key, also a .creds file."""
    from deploy.provision import provision_unit, unit_jwt_path

    trust = operator.trust(args)
    if trust is None:
        raise units.Refused("this system runs without NATS identities (no trust folder)")
    nc = await operator.connect(args)
    try:
        directory = Directory(await bucket(nc.jetstream()), ttl=0)
        unit = await directory.get(args.id)
        if unit is None:
            raise units.Refused(f"no unit {args.id!r} in the directory")
        await provision_unit(nc.jetstream(timeout=10), trust, unit, Path(args.data_dir))
    finally:
        await nc.close()
    live = [k for k in unit.keys if not k.revoked]
    if not live or unit.revoked_at:
        raise units.Refused(f"unit {args.id} has no key that is trusted")
    for k in live:
        print(
            f"{unit_jwt_path(Path(args.data_dir), unit.id, k.kid)}  (key {k.kid}, NATS user "
            f"{user_nkey_from_b64(k.public_key)})"
        )
    if args.key:
        key = UnitKey.load(args.id, Path(args.key))
        match = next((k for k in live if k.kid == key.kid), None)
        if match is None:
            raise units.Refused(f"{args.key} is not a trusted key of {args.id}")
        out = Path(args.creds_out or f"{args.id}.creds")
        _refuse_overwrite(out, args.force)
        jwt = unit_jwt_path(Path(args.data_dir), unit.id, key.kid).read_text().strip()
        write_private(out, creds_file(jwt, key.private))
        print(f"NATS credentials written to {out} (mode 600)")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _refuse_overwrite(out, args.force)
    if args.sealing:
        suite = HYBRID if args.sealing == "mlkem768-x25519" else X25519
        sealing = SealingKey.generate(suite)
        sealing.save(out)
        print(
            json.dumps(
                {
                    "suite": suite,
                    "kid": sealing.kid,
                    "public_key": sealing.public_b64,
                    "private_key_file": args.out,
                }
            )
        )
        return 0
    key = UnitKey.generate(args.id)
    key.save(out)
    print(
        json.dumps(
            {
                "unit": args.id,
                "kid": key.kid,
                "public_key": key.public_b64,
                "nats_user": user_nkey_from_b64(key.public_b64),
                "private_key_file": args.out,
            }
        )
    )
    return 0


def run(func):  # noqa: ANN001, ANN201
    """A unit command: a refusal prints its reason and exits 2, changing nothing."""

    def call(args: argparse.Namespace) -> int:
        try:
            result = func(args)
            return asyncio.run(result) if asyncio.iscoroutine(result) else result
        except units.Refused as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2

    return call


def _b64_key(text: str) -> str:
    base64.b64decode(text, validate=True)
    return text


def add_parser(sub: argparse._SubParsersAction) -> None:
    unit = sub.add_parser("unit", help="the unit directory and units' NATS identities")
    cmds = unit.add_subparsers(dest="unit_cmd", required=True)
    reg = cmds.add_parser(
        "register", help="register a unit (or a new key of it) and issue its NATS user"
    )
    reg.add_argument("--id", required=True, help="unit id, e.g. centre-oslo or kommune-0301")
    reg.add_argument("--name", required=True)
    reg.add_argument(
        "--kind", required=True, choices=[k.value for k in UnitKind if k is not UnitKind.SERVICE]
    )
    reg.add_argument(
        "--public-key", help="base64 raw Ed25519 public key (emaflyt unit keygen prints one)"
    )
    reg.add_argument("--generate-key", action="store_true", help="create a key pair")
    reg.add_argument("--key-out", help="where to write the private key (with --generate-key)")
    reg.add_argument("--creds-out", help="with --generate-key: also write a NATS .creds file")
    reg.add_argument(
        "--sealing-key", type=_b64_key, help="base64 raw X25519 key to receive released data"
    )
    reg.add_argument(
        "--pq-sealing-key",
        type=_b64_key,
        help="base64 ML-KEM-768 + X25519 public key (post-quantum hybrid)",
    )
    reg.add_argument(
        "--kommunenummer",
        help="where the unit lies (a care centre: its host municipality, which holds the TB "
        "screening and school duties)",
    )
    reg.add_argument(
        "--notices",
        choices=units.NOTICE_FORMS,
        help="how the unit hears its tasks: a message per task (each, the default for a new "
        "unit) or one per step of planning in a case (grouped); unchanged when not given",
    )
    reg.add_argument("--force", action="store_true", help="overwrite existing key files")
    reg.set_defaults(func=run(_register))
    nt = cmds.add_parser(
        "notices", help="how a unit hears its tasks: a message per task, or grouped per step"
    )
    nt.add_argument("--id", required=True)
    nt.add_argument("form", choices=units.NOTICE_FORMS)
    nt.set_defaults(func=run(_notices))
    ls = cmds.add_parser("list", help="list registered units")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run(_list))
    rv = cmds.add_parser(
        "revoke", help="revoke a unit: its messages are refused, its NATS users disconnected"
    )
    rv.add_argument("--id", required=True)
    rv.set_defaults(func=run(_revoke))
    rk = cmds.add_parser("revoke-key", help="stop trusting one of a unit's keys (after rotation)")
    rk.add_argument("--id", required=True)
    rk.add_argument("--kid", required=True)
    rk.set_defaults(func=run(_revoke))
    cr = cmds.add_parser("credentials", help="issue a registered unit's NATS user JWT (again)")
    cr.add_argument("--id", required=True)
    cr.add_argument("--key", help="the unit's private key (PEM): also write a .creds file")
    cr.add_argument("--creds-out", help="where to write the .creds file (default <id>.creds)")
    cr.add_argument("--force", action="store_true")
    cr.set_defaults(func=run(_credentials))
    kg = cmds.add_parser("keygen", help="create a key pair without registering it")
    kg.add_argument("--id", required=True)
    kg.add_argument("--out", required=True)
    kg.add_argument(
        "--sealing",
        choices=["x25519", "mlkem768-x25519"],
        help="a sealing key (to receive released data) instead of a signing key",
    )
    kg.add_argument("--force", action="store_true", help="overwrite an existing file")
    kg.set_defaults(func=run(_keygen))
