"""The compose stack's provisioning (docker-compose.yml `provision` and `provision-bus`, init
containers of the operator's image, run at every start). The NATS trust (docs/decisions/0010)
lives in its own volume, mounted in these containers alone.

    python -m deploy.containers.provision config   # before NATS starts
    python -m deploy.containers.provision bus      # once NATS answers

`config` makes the operator's trust on first use and writes nats-server's configuration
(operator mode: `python -m deploy.provision --server-config`), gives each service's PostgreSQL
role a generated password and ownership of its database, and puts each service's database URL
in that service's own secrets volume.

`bus` runs the operator's start-up work (deploy/provision.py): streams, the unit directory,
every consumer, a NATS user JWT for every registered unit, and for each service its Ed25519
key (made on first start), its user JWT, the API token issuer's public key and the operator's
dead-letter key, written into that service's own keys volume and nowhere else.

The same image, with the same volumes, is the operator's console (README "Containers"):

    docker compose run --rm --no-deps provision emaflyt unit register --id ... --public-key ...
    docker compose run --rm --no-deps provision emaflyt token issue --role operator --subject ...
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from deploy import permissions

ROOT = Path(os.environ.get("EMA_PROVISION_ROOT", "/provision"))
# The operator's own folder (EMA_DATA_DIR of the provision image): run.json, the units' JWTs,
# the database passwords. The trust is a volume of its own.
OPERATOR = Path(os.environ.get("EMA_DATA_DIR", "/operator"))
TRUST = Path(os.environ.get("EMA_TRUST_DIR", "/trust"))
NATS_CONF = Path(__file__).resolve().parent.parent / "nats" / "nats.conf"
NATS_URL = os.environ.get("EMA_NATS_URL", "nats://nats:4222")
RESOLVER_DIR = "/data/resolver"  # in nats-server's own data volume
SERVICES = permissions.SERVICES
SERVICE_UID = 10001  # the `emaflyt` user of deploy/Dockerfile


def _write(path: Path, text: str, mode: int = 0o600, uid: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if uid is not None:
        os.chown(tmp, uid, uid)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _own(folder: Path, uid: int) -> None:
    """A service's folder: its user's alone (0700), every file in it 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid)
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def secrets_dir(service: str, root: Path = ROOT) -> Path:
    return root / "secrets" / service


def keys_dir(service: str, root: Path = ROOT) -> Path:
    return root / "keys" / service


# -- before NATS ------------------------------------------------------------------------------


def passwords(operator: Path = OPERATOR) -> dict[str, str]:
    """One password per database role, generated once and kept in the operator's volume."""
    path = operator / "postgres-passwords.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    wanted = {s: known.get(s) or secrets.token_urlsafe(24) for s in SERVICES}
    if wanted != known:
        _write(path, json.dumps(wanted, indent=1))
    return wanted


def database_url(service: str, pw: Mapping[str, str], host: str = "postgres:5432") -> str:
    return f"postgresql+asyncpg://{service}:{pw[service]}@{host}/{service}"


def service_env(service: str, pw: Mapping[str, str]) -> str:
    lines = {
        "EMAFLYT_SERVICE": service,  # start.py refuses an image of another service
        "EMA_DATABASE_URL": database_url(service, pw),
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def write_nats(root: Path = ROOT, trust: Path = TRUST) -> str:
    """nats.conf and its trust stanza (operator mode), made with the trust on first use;
    returns the operator's public key. Both files hold public keys and JWTs only."""
    from deploy import provision

    folder = root / "nats"
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "nats.conf", NATS_CONF.read_text(), 0o644)
    provision.main(
        [
            "--server-config",
            str(folder / "trust.conf"),
            "--trust-dir",
            str(trust),
            "--resolver-dir",
            RESOLVER_DIR,
        ]
    )
    os.chmod(folder / "trust.conf", 0o644)
    from deploy.trust import Trust

    return Trust.load_or_create(trust).operator_key


def write_secrets(pw: Mapping[str, str], root: Path = ROOT, uid: int = SERVICE_UID) -> None:
    for service in SERVICES:
        folder = secrets_dir(service, root)
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "env", service_env(service, pw), 0o400, uid=uid)
        os.chown(folder, uid, uid)
        os.chmod(folder, 0o500)
        _own(keys_dir(service, root), uid)  # filled by `bus`; the service's own from the start


ROLE_SQL = """
SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                   THEN 'ALTER ROLE %I LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END, $1::text, $2::text)
"""


async def postgres_roles(pw: Mapping[str, str], timeout: float = 120.0) -> None:
    import asyncpg

    host = os.environ.get("POSTGRES_HOST", "postgres")
    user = os.environ.get("POSTGRES_USER", "postgres")
    deadline = time.monotonic() + timeout
    while True:  # PostgreSQL may still be initialising its cluster
        try:
            conn = await asyncpg.connect(
                host=host, user=user, database="postgres", password=os.environ["POSTGRES_PASSWORD"]
            )
            break
        except (OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for PostgreSQL at {host}: {type(exc).__name__}", flush=True)
            await asyncio.sleep(1)
    try:
        for service in SERVICES:
            await conn.execute(await conn.fetchval(ROLE_SQL, service, pw[service]))
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", service)
            verb = "ALTER DATABASE %I OWNER TO %I" if exists else "CREATE DATABASE %I OWNER %I"
            await conn.execute(
                await conn.fetchval("SELECT format($1, $2::text, $2::text)", verb, service)
            )
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', $1::text)", service
                )
            )
    finally:
        await conn.close()


def config(root: Path = ROOT) -> None:
    from services.kit.private import private_dir

    private_dir(OPERATOR)
    os.chmod(OPERATOR, 0o700)
    operator_key = write_nats(root)
    pw = passwords()
    asyncio.run(postgres_roles(pw))
    write_secrets(pw, root)
    print(
        f"NATS in operator mode (operator {operator_key}); a database role and credentials "
        f"for each of {', '.join(SERVICES)}",
        flush=True,
    )


# -- once NATS answers ------------------------------------------------------------------------


def bus_env(service: str, root: Path = ROOT) -> dict[str, str]:
    """The settings `service` provisions under: its own key in its own keys volume (the JWT,
    api-issuer.pub and dead-letter.pub land beside it), the consumer settings of the stack."""
    return {
        **os.environ,
        "EMA_DATA_DIR": str(OPERATOR),
        "EMA_KEY_FILE": str(keys_dir(service, root) / f"svc-{service}.pem"),
    }


def run_info(operator: Path = OPERATOR, nats_url: str = NATS_URL) -> dict[str, object]:
    """What the operator's commands in this container need (deploy/operator.py): where NATS
    is, where the trust is, where each service answers on the stack's network."""
    from services.kit.settings import DEFAULT_PORTS

    return {
        "nats_url": nats_url,
        "trust_dir": str(TRUST),
        "data_dir": str(operator),
        "services": {s: f"http://{s}:{DEFAULT_PORTS[s]}" for s in SERVICES},
    }


async def _provision(root: Path, timeout: float) -> None:
    from deploy.provision import provision
    from deploy.trust import Trust

    if not Trust.exists(TRUST):  # a trust made here would not be the one NATS trusts
        raise SystemExit(f"no NATS trust in {TRUST}: the `provision` step makes it, before NATS")
    trust = Trust.load_or_create(TRUST)
    servers = [u.strip() for u in NATS_URL.split(",") if u.strip()]
    replicas = int(os.environ.get("EMA_STREAM_REPLICAS", "1"))
    deadline = time.monotonic() + timeout
    while True:  # NATS may still be starting (podman runs no health checks by itself)
        try:
            await provision(servers, OPERATOR, trust, lambda s: bus_env(s, root), replicas)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for NATS at {NATS_URL}: {type(exc).__name__}", flush=True)
            await asyncio.sleep(1)


def bus(root: Path = ROOT, uid: int = SERVICE_UID, timeout: float = 120.0) -> None:
    asyncio.run(_provision(root, timeout))
    for service in SERVICES:
        _own(keys_dir(service, root), uid)
    _write(OPERATOR / "run.json", json.dumps(run_info(), indent=2))
    units = sorted(p.name for p in (OPERATOR / "nats" / "users").glob("*"))
    print(
        f"streams, unit directory and consumers on {NATS_URL}; each service's key "
        f"and NATS user in its own keys volume; {len(units)} unit(s) with their NATS users "
        f"under {OPERATOR / 'nats' / 'users'}",
        flush=True,
    )


def main(argv: list[str]) -> int:
    if argv == ["config"]:
        config()
        return 0
    if argv == ["bus"]:
        bus()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
