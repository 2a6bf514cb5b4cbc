"""Fixtures that start real processes on loopback: nats-server and the services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.launcher import NatsServer, System, free_port


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path, free_port(), free_port())
    server.start()
    yield server
    server.stop()


def start_system(data_dir: Path, **env: str) -> System:
    system = System(data_dir, nats_port=0, monitor_port=0,
                    http_ports={name: 0 for name in ("intake", "planning", "consent", "notify",
                                                     "municipality")},
                    env={"EMA_ACK_WAIT": "2", "EMA_MAX_DELIVER": "3", "EMA_TIMER_INTERVAL": "0.3",
                         **env})  # fmt: skip
    try:
        system.up()
    except Exception:
        system.down()
        raise
    return system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system, shared by the tests of one module."""
    sys_ = start_system(tmp_path_factory.mktemp("system"))
    yield sys_
    sys_.down()


@pytest.fixture
def fresh_system(tmp_path: Path) -> Iterator[System]:
    """A system of its own, for tests that kill or restart parts of it."""
    sys_ = start_system(tmp_path)
    yield sys_
    sys_.down()
