"""Beyond one machine: a three-node NATS cluster with R3 streams loses a node mid-run and
nothing is lost; two replicas of a service share its work without doing anything twice."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import nats
import pytest

from contracts.messages import ArrivalV1, UnitKind
from deploy import units
from deploy.launcher import System, cluster
from deploy.provision import unit_jwt_path
from deploy.trust import Trust, connect_options
from services.kit.outbox import build_event
from tests.support import (
    ARRIVAL,
    TASKS_ON_ARRIVAL,
    Partner,
    case_task_items,
    dead_letters,
    http_json,
    query,
    stream_messages,
    wait_for,
)

N = 300


async def publish_with_retry(js, subject: str, body: bytes, headers: dict) -> None:  # noqa: ANN001
    """What a partner does while a node fails over: try again; Nats-Msg-Id drops repeats."""
    for attempt in range(40):
        try:
            await js.publish(subject, body, headers=headers, timeout=2)
            return
        except Exception:
            await asyncio.sleep(0.25 * (attempt + 1))
    raise RuntimeError(f"could not publish {headers['Nats-Msg-Id']}")


@pytest.fixture
def three_nodes(tmp_path: Path):  # noqa: ANN201
    # The operator's trust is made first: every node trusts it (the System below finds it in
    # its data folder).
    nodes = cluster(tmp_path / "nats", trust=Trust.load_or_create(tmp_path / "sys/nats/trust"))
    for node in nodes:  # start every node before waiting: each needs its peers
        node.launch()
    for node in nodes:
        node.wait_ready(timeout=30)
    yield nodes
    for node in nodes:
        node.stop()


async def meta_leader(urls: str, trust: Trust) -> None:
    nc = await nats.connect(servers=urls.split(","), **trust.connect_options())
    try:
        await wait_for(lambda: _account_info(nc), timeout=30, interval=0.3)
    finally:
        await nc.close()


async def _account_info(nc) -> bool:  # noqa: ANN001
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False


async def test_losing_a_node_loses_nothing_and_replicas_share_work(three_nodes, tmp_path) -> None:  # noqa: ANN001
    urls = ",".join(n.url for n in three_nodes)
    await meta_leader(urls, Trust.load_or_create(tmp_path / "sys/nats/trust"))
    system = System(
        tmp_path / "sys",
        external_nats=urls,
        http_ports=dict.fromkeys(("intake", "planning", "consent", "notify", "municipality"), 0),
        env={"EMA_STREAM_REPLICAS": "3", "EMA_ACK_WAIT": "3", "EMA_TIMER_INTERVAL": "0.5"},
    )
    system.up()
    try:
        second = system.start_service("planning", replica=1)  # shares planning's consumer and DB
        partner = await Partner.register(system, "centre-cluster", UnitKind.CARE_CENTRE)
        info = await partner.nc.jetstream().stream_info("CASE")
        assert info.config.num_replicas == 3
        js = partner.nc.jetstream()
        for i in range(N):
            data = ArrivalV1(
                **{**ARRIVAL, "duf_number": f"{202800000000 + i}", "care_centre": "centre-cluster"}
            )
            subject, _, body, headers = build_event(partner.key, "no.ema.intake.arrival.v1", data)
            if i == N // 3:
                three_nodes[1].stop(signal.SIGKILL)  # a node dies mid-run
            await publish_with_retry(js, subject, body, headers)
        planning_db = system.data_dir / "planning.db"
        try:
            await wait_for(
                lambda: (
                    query(planning_db, "select count(*) from planning_task")
                    == [(TASKS_ON_ARRIVAL * N,)]
                ),
                timeout=240,
            )
        except TimeoutError:
            raise AssertionError(await _where_it_stopped(partner, system)) from None
        assert query(system.data_dir / "intake.db", "select count(*) from intake_case") == [(N,)]
        # Two planning processes on one durable consumer between them handled every case (which
        # one takes a message is the server's choice: one stuck on a request to the dead node
        # leaves the work to the other); no deadline was scheduled twice.
        first = http_json(f"http://127.0.0.1:{system.http_ports['planning']}/healthz")
        other = second.health()
        handled = (
            first["consumers"]["planning-cases"]["handled"],
            other["consumers"]["planning-cases"]["handled"],
        )
        assert sum(handled) >= N, handled

        async def scheduled() -> list[str]:
            return [d["task_id"] for d in await case_task_items(partner.nc, "scheduled")]

        # Every deadline reaches the bus once, though both replicas relay the outbox.
        total = TASKS_ON_ARRIVAL * N
        task_ids = await wait_for(lambda: _at_least(scheduled(), total), timeout=120, interval=1)
        assert len(task_ids) == len(set(task_ids)) == total
        assert await stream_messages(partner.nc, "DLQ") == []
        await _revoked_everywhere(system, partner, three_nodes[2].url)
        await partner.close()
    finally:
        system.down()


async def _revoked_everywhere(system: System, partner: Partner, other_node: str) -> None:
    """Revoked through one node, the unit is disconnected at another and refused there."""
    jwt = unit_jwt_path(system.data_dir, partner.unit_id, partner.key.kid).read_text().strip()
    login = connect_options(jwt, partner.key.private, f"_INBOX_{partner.unit_id}")
    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    there = await nats.connect(other_node, allow_reconnect=False, closed_cb=on_closed, **login)
    await units.revoke(partner.nc, [system.servers[0]], system.trust(), partner.unit_id)
    await asyncio.wait_for(closed.wait(), timeout=10)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(other_node, allow_reconnect=False, **login)
    assert there.is_closed


async def _at_least(coro, n: int):  # noqa: ANN001, ANN202
    items = await coro
    return items if len(items) >= n else None


async def _where_it_stopped(partner: Partner, system: System) -> str:
    """What a failed run leaves to read: counts, consumers' backlog, dead-letter reasons,
    and the warnings in the services' logs."""
    js = partner.nc.jetstream()
    data = system.data_dir
    lines = [
        f"cases: {query(data / 'intake.db', 'select count(*) from intake_case')}",
        f"tasks: {query(data / 'planning.db', 'select count(*) from planning_task')}",
    ]
    for stream in ("CASE", "PLANNING"):
        for consumer in await js.consumers_info(stream):
            lines.append(
                f"{stream}/{consumer.name}: pending {consumer.num_pending}, "
                f"ack pending {consumer.num_ack_pending}, "
                f"redelivered {consumer.num_redelivered}"
            )
    reasons = Counter(d.get("Ema-Dlq-Reason", "")[:100] for d in await dead_letters(partner.nc))
    lines.append(f"dead letters: {dict(reasons)}")
    warnings: Counter = Counter()
    for log in (system.data_dir / "logs").glob("*.log"):
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("level") in ("warning", "error"):
                warnings[(log.stem, entry["msg"][:60], entry.get("error", "")[:60])] += 1
    lines += [f"{n} x {key}" for key, n in warnings.most_common(15)]
    return "nothing lost was not shown:\n" + "\n".join(lines)
