"""Alembic for every service: one migrations folder per service
(services/<name>/migrations/versions), one env.py and one revision template for all of them
(services/kit/alembic_env), async URLs (sqlite+aiosqlite, postgresql+asyncpg).

A service runs `upgrade head` at start. A database made before migrations existed (by
`create_all`, so it has the kit's tables but no `alembic_version`) is stamped with the first
revision, which creates exactly those tables, and then upgraded like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import logging
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from services.kit.db import KitBase, make_engine

# The service logs one line per step ("database upgraded 0001 -> 0002"); Alembic's own info
# lines ("Context impl ...", twice per start) would only add noise.
logging.getLogger("alembic").setLevel(logging.WARNING)


def folder(service: str) -> Path:
    """services/<service>/migrations."""
    package = importlib.import_module(f"services.{service}")
    return Path(package.__file__ or "").resolve().parent / "migrations"


def config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "alembic_env"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(folder(service) / "versions"))
    cfg.set_main_option("service", service)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def service_metadata(service: str) -> MetaData:
    """The service's own tables: services/<name>/store.py and the stores of its parts
    (services/<name>/<part>/store.py, e.g. consent's audit), whatever was imported before."""
    metadata = importlib.import_module(f"services.{service}.store").Base.metadata
    root = Path(__file__).resolve().parent.parent / service
    for part in sorted(root.glob("*/store.py")):
        importlib.import_module(f"services.{service}.{part.parent.name}.store")
    return metadata


def target_metadata(metadata: MetaData) -> list[MetaData]:
    """What a service's database holds: the kit's outbox and inbox and the service's tables."""
    return [KitBase.metadata, metadata]


def _configure(connection: Connection, metadata: MetaData) -> dict[str, Any]:
    return {
        "connection": connection,
        "target_metadata": target_metadata(metadata),
        # SQLite alters tables by copying them; PostgreSQL alters in place.
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def _render_item(type_: str, obj: Any, _autogen: Any) -> str | Literal[False]:
    """Revisions spell out column types (UtcDateTime is a timezone-aware DateTime), so they
    never import the models they were made from."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_env() -> None:
    """The body of env.py: migrate on the connection a service hands over, or on the
    configured URL (`emaflyt db upgrade`)."""
    from alembic import context

    metadata = service_metadata(context.config.get_main_option("service") or "")

    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata(metadata),
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(**_configure(connection, metadata))
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set EMA_DATABASE_URL or pass -x url=...")

    async def run() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _lock(connection: Connection, service: str) -> None:
    """Replicas starting together on PostgreSQL migrate one after the other."""
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(f"emaflyt-migrate-{service}".encode())
        connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": key})


def _upgrade(connection: Connection, service: str, revision: str) -> list[str]:
    """Stamp a database made by create_all, then upgrade. Returns what was done."""
    _lock(connection, service)
    cfg = config(service)
    cfg.attributes["connection"] = connection
    done = []
    tables = set(inspect(connection).get_table_names())
    if "kit_outbox" in tables and "alembic_version" not in tables:
        base = ScriptDirectory.from_config(cfg).get_base()
        command.stamp(cfg, base)
        done.append(f"stamped {base} (tables made before migrations)")
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(cfg, revision)
    after = MigrationContext.configure(connection).get_current_revision()
    if after != before:
        done.append(f"upgraded {before or 'empty'} -> {after}")
    return done


async def upgrade(engine: AsyncEngine, service: str, revision: str = "head") -> list[str]:
    """Bring a service's database to `revision` (head at start)."""
    async with _file_lock(engine):
        async with engine.begin() as conn:
            return await conn.run_sync(_upgrade, service, revision)


@contextlib.asynccontextmanager
async def _file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """SQLite runs DDL outside the transaction: processes starting together on one SQLite file
    migrate one after the other under a lock file beside it (PostgreSQL: _lock)."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a") as fh:
        await asyncio.to_thread(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def head(service: str) -> str | None:
    return ScriptDirectory.from_config(config(service)).get_current_head()


def new_revision(service: str, message: str) -> Path:
    """Write the next revision of a service: the difference between its models and a scratch
    SQLite database at head (review it; PostgreSQL may need more than SQLite shows)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/{service}.db"

        async def to_head() -> None:
            engine = make_engine(url)
            try:
                await upgrade(engine, service)
            finally:
                await engine.dispose()

        asyncio.run(to_head())
        rev_id = f"{int(head(service) or 0) + 1:04d}"
        script = command.revision(
            config(service, url), message=message, autogenerate=True, rev_id=rev_id
        )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
