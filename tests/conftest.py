"""Fixtures that start real processes on loopback: nats-server, the services and, for tests
marked `postgres`, a private PostgreSQL cluster.

A test marked `@pytest.mark.postgres` runs twice, as `[sqlite]` and `[postgresql]`: the same
body against a system whose services keep their data in SQLite files, then in a PostgreSQL
database each. Without PostgreSQL's binaries those runs are skipped, unless
EMA_REQUIRE_POSTGRES=1 (CI), where they fail."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from deploy.launcher import SERVICES, NatsServer, System, free_port
from tests.postgres import PostgresCluster, bindir
from tests.support import SYSTEMS

DATABASES = ("sqlite", "postgresql")

# Files, sockets, connections and subprocesses a test leaves open: the run fails with the list.
LEAKS: list[str] = []
DROPPED: list[str] = []


# Every NATS connection a test opens (tests/support.Partner, System.connect, or directly):
# closed when the test ends, on the test's own event loop, if the test did not close it.
OPENED: list[tuple[Client, asyncio.AbstractEventLoop]] = []
_nats_connect = nats.connect


async def _tracked_connect(*args: Any, **kw: Any) -> Client:
    nc = await _nats_connect(*args, **kw)
    OPENED.append((nc, asyncio.get_running_loop()))
    return nc


nats.connect = _tracked_connect


@pytest.fixture(autouse=True)
async def _close_connections(_collect_garbage: None) -> AsyncIterator[None]:
    """The test's connections closed on its own loop, before that loop closes."""
    yield
    loop = asyncio.get_running_loop()
    mine = [nc for nc, at in OPENED if at is loop]
    OPENED[:] = [(nc, at) for nc, at in OPENED if at is not loop and not at.is_closed()]
    for nc in mine:
        if not nc.is_closed:
            # A connection to a server the test stopped may end in a cancelled wait: it is
            # closed all the same.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(nc.close(), 10)


@pytest.fixture(autouse=True)
def _collect_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """Objects a test dropped are collected while its warnings are still recorded, so a
    resource left open is reported against the test that opened it. Unit tests (pure logic,
    nothing opened) only get the young generation collected: a full collection after each of
    them would cost minutes; whatever they leave is found by the last collection at the end."""
    yield
    gc.collect(0 if request.node.nodeid.startswith("tests/unit/") else 2)


def pytest_warning_recorded(
    warning_message: warnings.WarningMessage, when: str, nodeid: str, location: object
) -> None:
    text = str(warning_message.message)
    if not issubclass(warning_message.category, ResourceWarning):
        return
    # A socket or transport already closed or closing when collected was not forgotten: its
    # connection was dropped mid-close (a server the test stopped).
    if text.startswith("unclosed") and (" closing " in text or " [closed] " in text):
        return
    line = f"{nodeid or when}: {text.splitlines()[0][:300]}"
    # Every connection the tests open is closed (_close_connections); what nats-py itself drops
    # on a reconnect (a stream's writer, its transport) is listed, not failed on: it is not
    # the project's to close.
    if text == "loop is closed" or text.startswith(("unclosed transport", "unclosed <Stream")):
        DROPPED.append(line)
        return
    LEAKS.append(line)


def pytest_testnodedown(node: Any, error: object) -> None:
    """Under pytest-xdist (`make test` runs two workers): what a worker's last collection
    found. (Warnings recorded during its tests reach the controller's hook above already.)"""
    found = getattr(node, "workeroutput", {})
    LEAKS.extend(found.get("leaks", []))
    DROPPED.extend(found.get("dropped", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks, dropped = len(LEAKS), len(DROPPED)
    with warnings.catch_warnings(record=True) as late:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    for w in late:
        pytest_warning_recorded(w, "the last collection", "", None)
    if hasattr(session.config, "workeroutput"):  # an xdist worker: its controller reports
        session.config.workeroutput["leaks"] = LEAKS[leaks:]
        session.config.workeroutput["dropped"] = DROPPED[dropped:]
        return
    if DROPPED:
        print(
            f"\n{len(set(DROPPED))} stream(s) dropped inside nats-py:",
            *sorted(set(DROPPED)),
            sep="\n  ",
        )
    if LEAKS:
        print(f"\n{len(set(LEAKS))} resource(s) left open:", *sorted(set(LEAKS)), sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("postgres"):
        metafunc.parametrize("database", DATABASES, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the test session's own (started at the first test needing it)."""
    found = bindir()
    if found is None:
        reason = "PostgreSQL not installed (apt-get install postgresql)"
        if os.environ.get("EMA_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and EMA_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    cluster = PostgresCluster(found)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """Where the services keep their data: "sqlite" unless the test is marked `postgres`."""
    return getattr(request, "param", "sqlite")


def database_env(database: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if database == "sqlite":
        return {}
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return {"EMA_DATABASE_URL": cluster.database_template(SERVICES)}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path, free_port(), free_port())
    server.start()
    yield server
    server.stop()


def start_system(data_dir: Path, **env: str) -> System:
    system = System(
        data_dir,
        nats_port=0,
        monitor_port=0,
        http_ports={
            name: 0 for name in ("intake", "planning", "consent", "notify", "municipality")
        },
        env={"EMA_ACK_WAIT": "2", "EMA_MAX_DELIVER": "3", "EMA_TIMER_INTERVAL": "0.3", **env},
    )
    try:
        system.up()
    except Exception:
        system.down()
        raise
    SYSTEMS.append(system)
    return system


@pytest.fixture(scope="module")
def systems() -> Iterator[dict[str, System]]:
    """The systems of one module, one per database kind, started when first asked for."""
    started: dict[str, System] = {}
    yield started
    for sys_ in started.values():
        sys_.down()


@pytest.fixture
def system(
    database: str,
    systems: dict[str, System],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> System:
    """The whole system, shared by the tests of one module (one per database kind)."""
    if database not in systems:
        env = database_env(database, request)
        systems[database] = start_system(tmp_path_factory.mktemp(f"system-{database}"), **env)
    return systems[database]


@pytest.fixture
def fresh_system(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> Iterator[System]:
    """A system of its own, for tests that kill or restart parts of it."""
    sys_ = start_system(tmp_path, **database_env(database, request))
    yield sys_
    sys_.down()
