"""The operator's start-up work, before any service runs: streams, the unit directory, and
for every service and registered unit its NATS user (JWT with its own permissions) and its
durable consumers. Services and partners create nothing on the bus themselves.

    python -m deploy.provision --data-dir data --nats-url nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from contracts.messages import UnitKind
from deploy import permissions
from deploy.trust import Trust, user_public_key, write_private
from services.kit.bus import ensure_streams
from services.kit.directory import Directory, Unit, bucket
from services.kit.private import private_dir
from services.kit.settings import Settings
from services.kit.signing import UnitKey

UNIT_ACK_WAIT = 30.0


def trust_dir(data_dir: Path) -> Path:
    return data_dir / "nats" / "trust"


def users_dir(data_dir: Path) -> Path:
    """Where the operator keeps the user JWTs it issued to units (hand them to the unit)."""
    return data_dir / "nats" / "users"


def unit_jwt_path(data_dir: Path, unit_id: str, kid: str) -> Path:
    return users_dir(data_dir) / unit_id / f"{kid}.jwt"


async def connect_operator(servers: list[str], trust: Trust | None, **kw: object) -> nats.NATS:
    options = trust.connect_options() if trust else {}
    return await nats.connect(servers=servers, name="emaflyt-operator", **options, **kw)


async def provision_service(
    js: JetStreamContext, directory: Directory, trust: Trust | None, name: str, settings: Settings
) -> None:
    """The service's key (created here on first start), its directory entry, its NATS user
    JWT written beside the key, and its consumers as its code declares them."""
    assert settings.unit_id and settings.key_file and settings.nats_jwt_file
    assert settings.api_issuer_file
    private_dir(settings.key_file.parent)
    key = UnitKey.load_or_create(settings.unit_id, settings.key_file)
    await directory.add_key(
        settings.unit_id, f"emaflyt {name}", UnitKind.SERVICE, key.kid, key.public_b64
    )
    if trust is not None:
        write_private(settings.api_issuer_file, trust.api_issuer_public + "\n")
        assert settings.dead_letter_key_file is not None
        write_private(settings.dead_letter_key_file, trust.dead_letter_key().public_b64 + "\n")
        jwt = trust.user_jwt(
            settings.unit_id, user_public_key(key.public_b64), permissions.service_permissions(name)
        )
        write_private(settings.nats_jwt_file, jwt + "\n")
    for sub in permissions.subscriptions(name):
        # Creating a durable that exists with another config updates it (nats-server >= 2.10).
        await js.add_consumer(sub.stream, sub.consumer_config(settings))


def unit_consumer_config(unit_id: str, subjects: list[str]) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=permissions.unit_consumer(unit_id),
        description=f"What is addressed to {unit_id}",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=UNIT_ACK_WAIT,
        max_ack_pending=1000,
        filter_subjects=subjects,
    )


async def provision_unit(
    js: JetStreamContext, trust: Trust | None, unit: Unit, data_dir: Path
) -> list[Path]:
    """A unit's consumers (one per stream it reads) and a user JWT per active key; returns
    the JWT files written."""
    written: list[Path] = []
    if unit.kind is UnitKind.SERVICE or unit.revoked_at is not None:
        return written
    for stream, subjects in permissions.unit_reads(unit.id, unit.kind).items():
        await js.add_consumer(stream, unit_consumer_config(unit.id, subjects))
    if trust is None:
        return written
    rights = permissions.unit_permissions(unit.id, unit.kind)
    for key in unit.keys:
        nkey = user_public_key(key.public_key)
        if key.revoked or trust.is_revoked(nkey):
            continue
        path = unit_jwt_path(data_dir, unit.id, key.kid)
        write_private(path, trust.user_jwt(unit.id, nkey, rights) + "\n")
        written.append(path)
    return written


async def provision(
    servers: list[str],
    data_dir: Path,
    trust: Trust | None,
    service_env: Callable[[str], Mapping[str, str]],
    replicas: int = 1,
    services: tuple[str, ...] = permissions.SERVICES,
) -> None:
    nc = await connect_operator(servers, trust, connect_timeout=5)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_streams(js, replicas)
        directory = Directory(await bucket(js, replicas))
        for name in services:
            settings = Settings.from_env(name, dict(service_env(name)))
            await provision_service(js, directory, trust, name, settings)
        for unit in await directory.all():
            await provision_unit(js, trust, unit, data_dir)
    finally:
        await nc.close()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.provision", description=__doc__)
    p.add_argument("--data-dir", default=os.environ.get("EMA_DATA_DIR", "data"))
    p.add_argument("--nats-url", default=os.environ.get("EMA_NATS_URL", "nats://127.0.0.1:4222"))
    p.add_argument("--replicas", type=int, default=int(os.environ.get("EMA_STREAM_REPLICAS", 1)))
    p.add_argument("--trust-dir", help="the operator's trust folder (default DATA/nats/trust)")
    p.add_argument(
        "--server-config",
        metavar="PATH",
        help="only write nats-server's trust "
        "configuration (operator mode), making the trust on first use, and stop",
    )
    p.add_argument(
        "--resolver-dir",
        default="/data/resolver",
        help="with --server-config: where nats-server keeps account JWTs",
    )
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    folder = Path(args.trust_dir) if args.trust_dir else trust_dir(data_dir)
    if args.server_config:
        made = Trust.load_or_create(folder)
        write_private(Path(args.server_config), made.server_config(Path(args.resolver_dir)))
        print(f"wrote {args.server_config} (operator {made.operator_key})")
        return 0
    trust = Trust.load_or_create(folder) if Trust.exists(folder) else None

    def env(_name: str) -> Mapping[str, str]:
        return {**os.environ, "EMA_DATA_DIR": str(data_dir)}

    servers = [u.strip() for u in args.nats_url.split(",")]
    asyncio.run(provision(servers, data_dir, trust, env, args.replicas))
    print(f"provisioned streams, directory and identities on {args.nats_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
