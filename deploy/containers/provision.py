"""The compose stack's one provisioning step (docker-compose.yml `provision`, an init container
run before NATS and the services, at every start):

- NATS: the server config and its users and permissions (deploy/permissions.py), with a
  password per user generated once and kept in the provision-state volume;
- PostgreSQL: a role per service owning that service's database, its password set here;
- per service, an env file with its NATS URL and database URL, in that service's own secrets
  volume, readable by the service's user alone (deploy/containers/start.py reads it).

    python -m deploy.containers.provision              # provision (in the container)
    python -m deploy.containers.provision url USER     # USER's NATS URL (operator, unit-...)

When the bus moves to per-unit NATS identities (NKeys / decentralized JWT), this is the place
that changes: write the server's trust config to nats/ and each service's credentials into its
secrets volume; the services and the compose file stay as they are.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path

from deploy import permissions

ROOT = Path(os.environ.get("EMA_PROVISION_ROOT", "/provision"))
NATS_CONF = Path(__file__).resolve().parent.parent / "nats" / "nats.conf"
SERVICES = permissions.SERVICES
SERVICE_UID = 10001  # the `emaflyt` user of deploy/Dockerfile
NATS_HOST = "nats:4222"


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


def passwords(state: Path) -> dict[str, str]:
    """One password per NATS user and per database role, generated once and kept."""
    path = state / "passwords.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    names = [*permissions.users(), *(f"postgres-{s}" for s in SERVICES)]
    wanted = {n: known.get(n) or secrets.token_urlsafe(24) for n in names}
    if wanted != known:
        _write(path, json.dumps(wanted, indent=1))
    return wanted


def nats_url(user: str, pw: dict[str, str], host: str = NATS_HOST) -> str:
    return f"nats://{user}:{pw[user]}@{host}"


def database_url(service: str, pw: dict[str, str], host: str = "postgres:5432") -> str:
    return f"postgresql+asyncpg://{service}:{pw[f'postgres-{service}']}@{host}/{service}"


def service_env(service: str, pw: dict[str, str]) -> str:
    lines = {
        "EMAFLYT_SERVICE": service,  # start.py refuses an image of another service
        "EMA_NATS_URL": nats_url(f"svc-{service}", pw),
        "EMA_DATABASE_URL": database_url(service, pw),
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def write_nats(root: Path, pw: dict[str, str]) -> None:
    auth = permissions.render({user: pw[user] for user in permissions.users()})
    _write(root / "nats" / "nats.conf", NATS_CONF.read_text(), 0o644)
    _write(root / "nats" / "auth.conf", "# Written by deploy/containers/provision.py.\n" + auth)


def write_secrets(root: Path, pw: dict[str, str]) -> None:
    for service in SERVICES:
        folder = root / "secrets" / service
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "env", service_env(service, pw), 0o400, uid=SERVICE_UID)
        os.chown(folder, SERVICE_UID, SERVICE_UID)
        os.chmod(folder, 0o500)


ROLE_SQL = """
SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                   THEN 'ALTER ROLE %I LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END, $1::text, $2::text)
"""


async def postgres_roles(pw: dict[str, str], timeout: float = 120.0) -> None:
    import asyncpg

    host = os.environ.get("POSTGRES_HOST", "postgres")
    user = os.environ.get("POSTGRES_USER", "postgres")
    deadline = time.monotonic() + timeout
    while True:  # PostgreSQL may still be initialising its cluster
        try:
            conn = await asyncpg.connect(host=host, user=user, database="postgres",
                                         password=os.environ["POSTGRES_PASSWORD"])  # fmt: skip
            break
        except (OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise
            print(f"provision: waiting for PostgreSQL at {host}: {type(exc).__name__}", flush=True)
            await asyncio.sleep(1)
    try:
        for service in SERVICES:
            await conn.execute(await conn.fetchval(ROLE_SQL, service, pw[f"postgres-{service}"]))
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", service)
            verb = "ALTER DATABASE %I OWNER TO %I" if exists else "CREATE DATABASE %I OWNER %I"
            await conn.execute(await conn.fetchval("SELECT format($1, $2::text, $2::text)",
                                                   verb, service))  # fmt: skip
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', $1::text)", service
                )
            )
    finally:
        await conn.close()


def provision(root: Path = ROOT) -> None:
    pw = passwords(root / "state")
    write_nats(root, pw)
    asyncio.run(postgres_roles(pw))
    write_secrets(root, pw)
    print(f"provision: NATS config with {len(permissions.users())} users; a database role and "
          f"credentials for each of {', '.join(SERVICES)}", flush=True)  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[:1] == ["url"] and len(argv) in (2, 3):
        pw = passwords(ROOT / "state")
        print(nats_url(argv[1], pw, *argv[2:]))
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    provision()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
