"""A withdrawal racing share decisions on three consent replicas, with the policy evaluated by
a slow OPA (each evaluation held 30 ms, as a round trip to an OPA container): no release that
relies on the consent is logged after the withdrawal. The decision takes the case's lock
before it reads consents, and the withdrawal takes the same lock (PostgreSQL: a row lock;
SQLite: the database's write lock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.messages import ConsentWithdrawnV1, UnitKind
from deploy.launcher import System, free_port
from tests.conftest import database_env, start_system
from tests.e2e.test_consent import (
    consent,
    flow,
    kopp_requests,
    open_case,
    recorded,
    uid,
    withdraw_amid_requests,
)
from tests.e2e.test_opa_engine import start_opa
from tests.support import Partner, query, wait_for

IN_FLIGHT = 120
REPLICAS = 3


@pytest.fixture
def replicated(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> Iterator[System]:
    port = free_port()
    opa = start_opa(port, tmp_path / "opa.log", delay=0.03)
    # One decision per transaction: nothing else holds a lock across the policy evaluation.
    system = start_system(
        tmp_path / "system",
        EMA_POLICY_ENGINE="opa",
        EMA_OPA_URL=f"http://127.0.0.1:{port}",
        EMA_FETCH_BATCH="1",
        **database_env(database, request),
    )
    try:
        for replica in range(1, REPLICAS):
            system.start_service("consent", replica=replica)
        yield system
    finally:
        system.down()
        opa.terminate()
        opa.wait(10)


@pytest.mark.postgres
async def test_no_release_on_a_consent_is_logged_after_its_withdrawal_with_replicas(
    replicated: System,
) -> None:
    system = replicated
    centre, case_id = await open_case(system)
    kommune = await Partner.register(system, uid("kommune"), UnitKind.MUNICIPALITY, sealing=True)
    acks = await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}")
    given = consent(case_id, [flow(["kopp"], ["care_centre"], ["municipality"], ["settlement"])])
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    await recorded(centre, acks, given.consent_id)
    receipts: list[dict] = []
    withdrawals: list[dict] = []

    async def on_receipt(msg: object) -> None:
        receipts.append(json.loads(msg.data)["data"])  # type: ignore[attr-defined]

    async def on_recorded(msg: object) -> None:
        data = json.loads(msg.data)["data"]  # type: ignore[attr-defined]
        if data["consent_id"] == given.consent_id and data["status"] == "withdrawn":
            withdrawals.append(data)

    await centre.nc.subscribe(f"ema.share.receipt.{centre.key.unit_id}", cb=on_receipt)
    await centre.nc.subscribe(f"ema.consent.recorded.{centre.key.unit_id}", cb=on_recorded)
    await centre.nc.flush()
    built = await kopp_requests(centre, case_id, kommune.key.unit_id, IN_FLIGHT)
    await withdraw_amid_requests(
        centre,
        built,
        answered=lambda: bool(receipts),  # the replicas are deciding
        withdrawal=ConsentWithdrawnV1(
            consent_id=given.consent_id,
            case_id=case_id,
            withdrawn_by="representative",
            withdrawn_at=datetime.now(UTC),
        ),
        acknowledged=lambda: bool(withdrawals),
    )
    ack = withdrawals[0]
    await wait_for(lambda: len(receipts) >= IN_FLIGHT, timeout=180, interval=0.2)
    db = system.database_url("consent")
    released = query(
        db,
        "select log_index from consent_decision where legal_basis = ? and outcome = 'allow'",
        f"consent:{given.consent_id}",
    )
    withheld = query(
        db,
        "select count(*) from consent_decision where case_id = ? and outcome = 'withhold'",
        case_id,
    )[0][0]
    # The race happened: releases before the withdrawal, and withholdings after it.
    assert released and withheld, (len(released), withheld)
    late = [i for (i,) in released if i > ack["log_index"]]
    assert late == [], f"{len(late)} releases logged after the withdrawal at {ack['log_index']}"
    # Several replicas decided (the consumers are shared).
    logs = [
        p.log_path.read_text() for name, p in system.procs.items() if name.startswith("consent")
    ]
    assert sum("share decided" in text for text in logs) >= 2
    await centre.nc.close()
    await kommune.nc.close()
