"""One system for the security suite: real nats-server in operator mode, real services, each
unit connected as itself. The attacks here are the ones issue 12 reproduced on the old main."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from contracts.messages import ArrivalV1, UnitKind
from deploy.launcher import System
from tests.conftest import start_system
from tests.support import ARRIVAL, Partner, query, wait_for


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = start_system(
        tmp_path_factory.mktemp("security"), EMA_WEBHOOK_HOSTS="hooks.kommune.no,*.example.no"
    )
    yield sys_
    sys_.down()


@dataclass
class Refusals:
    """Connect as a unit and collect what the server refuses it."""

    errors: list[str] = field(default_factory=list)

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())

    def refused_subscription(self, subject: str) -> bool:
        return any(
            f'permissions violation for subscription to "{subject.lower()}"' in e
            for e in self.errors
        )

    def refused_publish(self, subject: str) -> bool:
        return any(
            f'permissions violation for publish to "{subject.lower()}"' in e for e in self.errors
        )


async def as_unit(system: System, partner: Partner) -> tuple[Client, Refusals]:
    """A second connection as the unit itself, watching for refusals."""
    from deploy.provision import unit_jwt_path
    from deploy.trust import connect_options

    seen = Refusals()
    jwt = unit_jwt_path(system.data_dir, partner.unit_id, partner.key.kid).read_text().strip()
    nc = await nats.connect(
        servers=system.servers,
        error_cb=seen.on_error,
        allow_reconnect=False,
        **connect_options(jwt, partner.key.private, f"_INBOX_{partner.unit_id}"),
    )
    return nc, seen


async def settle(nc: Client, seconds: float = 0.4) -> None:
    await nc.flush()
    await asyncio.sleep(seconds)


def uid(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def open_case(
    system: System, centre: Partner | None = None, birth_date: str = "2014-05-01"
) -> tuple[Partner, str]:
    """A care centre and a case it opened (the broker knows it before this returns)."""
    import random

    centre = centre or await Partner.register(system, uid("centre"), UnitKind.CARE_CENTRE)
    number = "2026" + "".join(random.choices("0123456789", k=8))
    await centre.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(
            **{
                **ARRIVAL,
                "duf_number": number,
                "care_centre": centre.unit_id,
                "birth_date": birth_date,
            }
        ),
    )
    rows = await wait_for(
        lambda: query(
            system.database_url("intake"), "select id from intake_case where duf_number = ?", number
        )
    )
    case_id = rows[0][0]
    await wait_for(
        lambda: query(
            system.database_url("consent"), "select 1 from consent_case where case_id = ?", case_id
        )
    )
    return centre, case_id


@pytest.fixture
async def closing() -> AsyncIterator[list]:
    """Connections and partners a test opened, closed after it."""
    opened: list = []
    yield opened
    for item in opened:
        try:
            await item.close()
        except Exception:
            pass


__all__ = ["Path", "Refusals", "as_unit", "open_case", "settle", "uid"]
