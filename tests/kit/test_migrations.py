"""Each service's Alembic revisions build exactly the tables of its models, on SQLite and on
PostgreSQL; a database made by create_all before migrations existed is stamped and kept."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import make_url

from deploy.launcher import SERVICES, System, in_own_loop
from services.intake.store import Case
from services.kit import migrations
from services.kit.db import KitBase, OutboxRow, create_tables, make_engine
from services.kit.settings import Settings
from tests.postgres import PostgresCluster


@pytest.fixture
def empty_database(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database("migrations")


def differences(connection, service: str) -> list:  # noqa: ANN001
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(
        context, migrations.target_metadata(migrations.service_metadata(service))
    )


def downgrade_to_base(connection, service: str) -> None:  # noqa: ANN001
    cfg = migrations.config(service)
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


def tables(connection) -> set[str]:  # noqa: ANN001
    return set(inspect(connection).get_table_names())


@pytest.mark.postgres
@pytest.mark.parametrize("service", SERVICES)
async def test_migrated_schema_is_the_models_schema(service: str, empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        done = await migrations.upgrade(engine, service)
        assert done == [f"upgraded empty -> {migrations.head(service)}"]
        async with engine.connect() as conn:
            assert await conn.run_sync(differences, service) == []
            wanted = {
                t.name
                for md in migrations.target_metadata(migrations.service_metadata(service))
                for t in md.tables.values()
            }
            assert await conn.run_sync(tables) == wanted | {"alembic_version"}
        assert await migrations.upgrade(engine, service) == []  # a second start changes nothing
        async with engine.begin() as conn:
            await conn.run_sync(downgrade_to_base, service)
            assert await conn.run_sync(tables) == {"alembic_version"}
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_database_made_by_create_all_is_stamped_and_keeps_its_rows(
    empty_database: str,
) -> None:
    engine = make_engine(empty_database)
    now = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)
    try:
        await create_tables(engine, migrations.service_metadata("intake"))
        async with engine.begin() as conn:
            await conn.execute(
                insert(OutboxRow).values(
                    msg_id="m-1", subject="ema.case.opened", headers={}, body=b"{}", created_at=now
                )
            )
            await conn.execute(
                insert(Case).values(
                    id="c-1",
                    case_ref="EMA-1",
                    duf_number="202600000001",
                    name="N",
                    birth_date=now.date(),
                    birth_date_estimated=False,
                    sex="female",
                    nationality="AFG",
                    languages=["prs"],
                    care_centre="centre-1",
                    arrived_at=now,
                    opened_at=now,
                )
            )
        assert await migrations.current(engine) is None
        done = await migrations.upgrade(engine, "intake")
        assert done[0].startswith("stamped 0001")
        assert await migrations.current(engine) == migrations.head("intake")
        async with engine.connect() as conn:
            assert await conn.run_sync(differences, "intake") == []
            assert (await conn.execute(select(OutboxRow.msg_id))).scalars().all() == ["m-1"]
            case = (await conn.execute(select(Case.arrived_at, Case.languages))).one()
            assert case == (now, ["prs"])
        async with engine.begin() as conn:  # the comparison does see a difference
            await conn.execute(text("drop index ix_intake_case_care_centre"))
            diff = await conn.run_sync(differences, "intake")
        assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_intake_case_care_centre")]
    finally:
        await engine.dispose()


def test_every_service_has_one_initial_revision_and_ships_it() -> None:
    for service in SERVICES:
        versions = migrations.folder(service) / "versions"
        assert (migrations.folder(service) / "__init__.py").exists()  # packaged with the code
        assert [p.name for p in versions.glob("0001_*.py")], service
        assert migrations.head(service) is not None
    assert set(KitBase.metadata.tables) == {"kit_outbox", "kit_inbox"}


def test_postgres_backup_restores_with_its_revision_and_rows(postgres: PostgresCluster) -> None:
    """The runbook's pg_dump -Fc / pg_restore round trip on a migrated service database."""
    source, target = postgres.create_database("backup"), postgres.create_database("restore")
    engine_args = ("-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres")
    dump = postgres.base / "intake.dump"

    async def fill() -> None:
        engine = make_engine(source)
        try:
            await migrations.upgrade(engine, "intake")
            async with engine.begin() as conn:
                await conn.execute(
                    insert(OutboxRow).values(
                        msg_id="m-2",
                        subject="ema.case.opened",
                        headers={"a": "b"},
                        body=b"{}",
                        created_at=datetime.now(UTC),
                    )
                )
        finally:
            await engine.dispose()

    async def check() -> tuple[str | None, list[str], list[str]]:
        engine = make_engine(target)
        try:
            async with engine.connect() as conn:
                ids = list((await conn.execute(select(OutboxRow.msg_id))).scalars())
            return await migrations.current(engine), ids, await migrations.upgrade(engine, "intake")
        finally:
            await engine.dispose()

    in_own_loop(fill())
    subprocess.run(
        [
            str(postgres.bin / "pg_dump"),
            *engine_args,
            "-Fc",
            "-f",
            str(dump),
            make_url(source).database,
        ],
        check=True,
    )
    subprocess.run(
        [
            str(postgres.bin / "pg_restore"),
            *engine_args,
            "--no-owner",
            "-d",
            make_url(target).database,
            str(dump),
        ],
        check=True,
    )
    result: list = []

    async def run_check() -> None:
        result.append(await check())

    in_own_loop(run_check())
    assert result == [(migrations.head("intake"), ["m-2"], [])]


def test_one_url_template_gives_each_service_its_own_database(tmp_path: Path) -> None:
    template = "postgresql+asyncpg://u@127.0.0.1:5432/ema_{service}"
    assert Settings(service="consent", database_url=template).database_url.endswith("/ema_consent")
    system = System(tmp_path, nats_port=0, monitor_port=0, env={"EMA_DATABASE_URL": template})
    assert system.database_url("notify") == template.replace("{service}", "notify")
    system.check_databases()  # five different databases
    one = "postgresql+asyncpg://u@127.0.0.1:5432/ema"
    shared = System(tmp_path, nats_port=0, monitor_port=0, env={"EMA_DATABASE_URL": one})
    with pytest.raises(ValueError, match="shared by several services"):
        shared.up()
    assert shared.nats.proc is None and not shared.procs  # refused before anything started


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(empty_database: str) -> None:
    engines = [make_engine(empty_database) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrations.upgrade(e, "notify") for e in engines))
        assert sorted(results) == [[], [], ["upgraded empty -> 0001"]]
        assert await migrations.current(engines[0]) == migrations.head("notify")
    finally:
        for engine in engines:
            await engine.dispose()


def test_db_commands_stamp_upgrade_and_report(tmp_path: Path) -> None:
    """`emaflyt db`: an old create_all database is stamped, a missing one made, both at head."""

    async def old_intake() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
        await create_tables(engine, migrations.service_metadata("intake"))
        await engine.dispose()

    in_own_loop(old_intake())

    env = {k: v for k, v in os.environ.items() if k != "EMA_DATABASE_URL"}

    def emaflyt(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-m", "deploy.cli", "--data-dir", str(tmp_path), "db", *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return out.stdout.splitlines()

    before = emaflyt("current", "--service", "intake", "--service", "notify")
    assert [line.split(": ")[-1] for line in before] == ["at nothing, head is 0001"] * 2
    done = emaflyt("upgrade", "--service", "intake", "--service", "notify")
    assert done[0].endswith("stamped 0001 (tables made before migrations)")
    assert done[1].endswith("upgraded empty -> 0001")
    after = emaflyt("current", "--service", "intake", "--service", "notify")
    assert [line.split(": ")[-1] for line in after] == ["at 0001"] * 2
