"""Share requests through the consent broker's whole path: signed, sealed share request on the
bus → policy decision → Merkle log record → re-sealed delivery to the recipient. Beside it, in
the same run, the broker's own policy engine (`--engine`, EMA_POLICY_ENGINE) evaluating the
same policy input, and regopy's for comparison with earlier runs. Prints the machine, the
date, throughput, latency, CPU and SQL statements per request; asserts nothing about time.

    .venv/bin/python bench/consent.py [--n 2000] [--sequential 100] [--load-seconds 15]
        [--engine opa-go|regopy] [--json]

Latency three ways: one request at a time (unloaded), a burst of n (its rate is the
capacity; queueing included), and open-loop offered loads at 50 % and 80 % of that rate,
each held for --load-seconds; latency from publish to the recipient's receipt.

`run(n)` returns the figures as a dict, for a runner of every benchmark: `engine_raw` and
`ratio_path_to_engine` compare the path with the engine it ran on; `regopy` and
`ratio_path_to_regopy` are kept for the runners that read them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.common import LOADS, Window, latency_ms, load_count, paced  # noqa: E402
from contracts.messages import (  # noqa: E402
    ArrivalV1,
    ConsentGrantedV1,
    SealedPayload,
    ShareDeliveredV2,
    ShareRequestV2,
    UnitKind,
)
from deploy.launcher import System  # noqa: E402
from services.consent.consents import policy_form  # noqa: E402
from services.consent.domain import policy_input  # noqa: E402
from services.consent.engine import DEFAULT_ENGINE, GoOpaEngine, RegopyEngine  # noqa: E402
from services.kit.outbox import build_event  # noqa: E402
from services.kit.sealing import X25519  # noqa: E402
from tests.support import ARRIVAL, Partner, query, wait_for  # noqa: E402

TIME_LIMIT_S = 600
KOPP = {
    "age": 12,
    "languages": ["prs"],
    "care_needs": "fast voksenperson",
    "family_ties": "onkel",
    "recommended_measure": "fosterhjem",
    "therapy_notes": "not for the municipality",
}
BIRTH = datetime.now(UTC).date().replace(year=datetime.now(UTC).year - 12, month=1, day=1)


def the_consent(case_id: str) -> ConsentGrantedV1:
    now = datetime.now(UTC)
    return ConsentGrantedV1(
        consent_id=f"bench-{uuid.uuid4().hex[:8]}",
        case_id=case_id,
        grantor={"role": "representative", "capacity": "representant"},
        form={"kind": "written", "document_sha256": hashlib.sha256(b"signed").hexdigest()},
        scope=[
            {
                "categories": ["kopp"],
                "source_sectors": ["care_centre"],
                "recipient_sectors": ["municipality"],
                "purposes": ["settlement"],
            }
        ],
        granted_at=now - timedelta(days=1),
        valid_from=now - timedelta(days=1),
        valid_to=now + timedelta(days=365),
        child_heard={"status": "heard"},
    )


def request(centre: Partner, case_id: str, kommune: str, broker_key: str) -> ShareRequestV2:
    return centre.sealed_request(case_id, kommune, "kopp", "settlement", KOPP, broker=broker_key)


def regopy_rate(given: ConsentGrantedV1, n: int) -> dict[str, float]:
    """regopy alone, on the policy input the broker builds for these requests."""
    return engine_rate("regopy", given, n)


def engine_rate(name: str, given: ConsentGrantedV1, n: int) -> dict[str, Any]:
    """An in-process engine alone (`opa-go` or `regopy`), on the policy input the broker builds
    for these requests: evaluations per second of wall time, and CPU per evaluation (the Go
    evaluator's collector runs on threads of its own, which the CPU time counts)."""
    engine = GoOpaEngine() if name == "opa-go" else RegopyEngine()
    sealed = SealedPayload(suite=X25519, recipient_kid="0" * 16, sealed="AA==")  # not read
    req = ShareRequestV2(
        request_id="r",
        case_id=given.case_id,
        source_unit="centre-bench",
        recipient_unit="kommune-0301",
        data_category="kopp",
        purpose="settlement",
        payload=sealed,
    )
    inputs = policy_input(
        req,
        birth_date=BIRTH,
        birth_date_estimated=True,
        source_kind="care_centre",
        recipient_kind="municipality",
        consents=[policy_form(given)],
        now=datetime.now(UTC),
    )
    assert engine.decide(inputs)["allow"] is True, "the bench input must be allowed"
    for _ in range(min(n, 50)):  # warm up as the broker is by its earlier requests
        engine.decide(inputs)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        engine.decide(inputs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "engine": name,
        "n": n,
        "seconds": seconds,
        "evaluations_per_s": n / seconds,
        "mean_ms": 1000 * seconds / n,
        "cpu_ms_each": 1000 * cpu / n,
    }


async def whole_path(
    system: System, n: int, sequential: int, load_seconds: float = 15.0
) -> dict[str, Any]:
    centre = await Partner.register(system, "centre-bench", UnitKind.CARE_CENTRE)
    kommune = await Partner.register(system, "kommune-0301", UnitKind.MUNICIPALITY, sealing=True)
    await centre.send(
        "no.ema.intake.arrival.v1",
        ArrivalV1(**{**ARRIVAL, "care_centre": "centre-bench", "birth_date": BIRTH}),
    )
    db = system.data_dir / "consent.db"
    rows = await wait_for(lambda: query(db, "select case_id from consent_case"), timeout=60)
    case_id = rows[0][0]
    acks = await centre.nc.subscribe("ema.consent.recorded.centre-bench")
    given = the_consent(case_id)
    await centre.send("no.ema.consent.granted.v1", given, case_id=case_id)
    ack = json.loads((await acks.next_msg(timeout=30)).data)["data"]
    assert ack["status"] == "active", ack
    key = await centre.broker_key()
    sent: dict[str, float] = {}
    arrived: dict[str, tuple[float, ShareDeliveredV2]] = {}
    withheld: list[str] = []
    done = asyncio.Event()
    expected = {"count": 0}

    async def on_delivered(msg: Any) -> None:
        delivered = ShareDeliveredV2(**json.loads(msg.data)["data"])
        arrived[delivered.request_id] = (time.perf_counter(), delivered)
        if len(arrived) + len(withheld) >= expected["count"]:
            done.set()

    async def on_receipt(msg: Any) -> None:
        data = json.loads(msg.data)["data"]
        if data["outcome"] != "released":
            withheld.append(data["request_id"])
            if len(arrived) + len(withheld) >= expected["count"]:
                done.set()

    await kommune.nc.subscribe("ema.share.delivered.v2.kommune-0301", cb=on_delivered)
    await centre.nc.subscribe("ema.share.receipt.centre-bench", cb=on_receipt)
    await kommune.nc.flush()
    await centre.nc.flush()
    js = centre.nc.jetstream()

    # 1. Unloaded: one request at a time, latency without a queue in front of it.
    single: list[float] = []
    for _ in range(sequential):
        built = request(centre, case_id, "kommune-0301", key)
        subject, _, body, headers = build_event(
            centre.key, "no.ema.share.request.v2", built, case_id=case_id
        )
        expected["count"] = len(arrived) + len(withheld) + 1
        done.clear()
        t0 = time.perf_counter()
        await js.publish(subject, body, headers=headers)
        await asyncio.wait_for(done.wait(), 30)
        single.append(time.perf_counter() - t0)

    async def phase(count: int, rate: float | None = None) -> dict[str, Any]:
        """`count` requests built and sealed first, then published all at once (rate None)
        or open loop at `rate` per second; awaited until each is delivered or withheld."""
        built_all = []
        for _ in range(count):
            built = request(centre, case_id, "kommune-0301", key)
            built_all.append(
                (
                    built.request_id,
                    build_event(centre.key, "no.ema.share.request.v2", built, case_id=case_id),
                )
            )
        ids = {rid for rid, _ in built_all}
        expected["count"] = len(arrived) + len(withheld) + count
        done.clear()
        futures = []

        async def send(item: tuple[str, tuple]) -> None:
            rid, (subject, _, body, headers) = item
            sent[rid] = time.perf_counter()
            futures.append(await js.publish_async(subject, body, headers=headers))

        window = Window(system)
        t_start = time.perf_counter()
        pace: dict[str, Any] = {}
        if rate is None:
            for item in built_all:
                await send(item)
        else:
            pace = await paced(built_all, rate, send)
        await asyncio.gather(*futures)
        published = time.perf_counter() - t_start
        finished = True
        try:
            await asyncio.wait_for(done.wait(), TIME_LIMIT_S)
        except TimeoutError:
            finished = False
        measured = window.figures(count)
        mine = [(at, d) for rid, (at, d) in arrived.items() if rid in ids]
        last = max((at for at, _ in mine), default=time.perf_counter())
        seconds = last - t_start
        # Every delivery opens with the recipient's key and holds only the settlement fields.
        opened = sum(
            1
            for _, d in mine
            if set(kommune.open_delivery(d)["data"])
            == {"age", "languages", "care_needs", "family_ties", "recommended_measure"}
        )
        return {
            "n": count,
            **pace,
            "finished": finished,
            "publish_seconds": published,
            "seconds": seconds,
            "per_s": len(mine) / seconds if seconds else 0.0,
            **latency_ms([at - sent[d.request_id] for at, d in mine]),
            "delivered": len(mine),
            "opened_minimised": opened,
            "withheld": len([r for r in withheld if r in ids]),
            **measured,
        }

    # 2. Burst: n requests pipelined onto the bus; its rate is the capacity.
    burst = await phase(n)
    # 3. Offered loads, open loop at shares of that capacity.
    loads = {}
    for share in LOADS if burst["finished"] and burst["per_s"] else ():
        rate = share * burst["per_s"]
        loads[f"load_{round(share * 100)}"] = {
            "share_of_capacity": share,
            **await phase(load_count(rate, load_seconds), rate),
        }
    dead = (await js.stream_info("DLQ")).state.messages
    await centre.close()
    await kommune.close()
    return {
        "sequential": {"n": sequential, **latency_ms(single)},
        "cpu_ms_per_request": burst.pop("cpu_ms"),
        "run_queue_ms_per_request": burst.pop("run_queue_ms"),
        "sql_per_request": burst.pop("sql"),
        "load_average": burst.pop("load_average"),
        "burst": {**burst, "dead_letters": dead},
        "loads": loads,
        "consent": given,
    }


def run(
    n: int = 2000, sequential: int = 100, load_seconds: float = 15.0, engine: str = DEFAULT_ENGINE
) -> dict[str, Any]:
    """Start nats-server, intake and consent (on `engine`) in a temporary folder, measure, stop;
    return the figures (whole path, and the raw engine and regopy in the same run) with the
    machine and the date."""
    load_before = os.getloadavg()[0]  # other work on the machine shifts every figure
    with tempfile.TemporaryDirectory() as tmp:
        system = System(
            Path(tmp),
            nats_port=0,
            monitor_port=0,
            services=("intake", "consent"),
            http_ports={"intake": 0, "consent": 0},
            env={"EMA_LOG_LEVEL": "WARNING", "EMA_POLICY_ENGINE": engine},
        )
        system.up()
        try:
            path = asyncio.run(whole_path(system, n, sequential, load_seconds))
        finally:
            system.down()
    given = path.pop("consent")
    raw = engine_rate(engine, given, n)
    regopy = raw if engine == "regopy" else regopy_rate(given, n)
    return {
        "benchmark": "consent",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m": load_before,
        },
        "engine": engine,
        **path,
        "engine_raw": raw,
        "ratio_path_to_engine": path["burst"]["per_s"] / raw["evaluations_per_s"],
        "regopy": regopy,
        "ratio_path_to_regopy": path["burst"]["per_s"] / regopy["evaluations_per_s"],
    }


def ms(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f} ms"


def report(fig: dict[str, Any]) -> None:
    m, seq, burst, raw = fig["machine"], fig["sequential"], fig["burst"], fig["engine_raw"]
    print(
        f"# consent broker, {burst['n']} share requests ({fig['date']}, {m['machine']}, "
        f"{m['cores']} cores, load {m['load_average_1m']:.1f}, Python {m['python']}, "
        f"{m['platform']})"
    )
    print(
        f"one at a time ({seq['n']}): share request -> decision -> log record -> sealed "
        f"delivery  p50 {ms(seq['p50_ms'], 1)}  p99 {ms(seq['p99_ms'], 1)}"
    )
    state = "" if burst["finished"] else f"  NOT FINISHED within {TIME_LIMIT_S} s"
    print(
        f"burst ({burst['n']} pipelined): {burst['per_s']:,.0f} requests/s end to end, "
        f"{burst['seconds']:.1f} s; latency under load p50 {ms(burst['p50_ms'])}, "
        f"p99 {ms(burst['p99_ms'])} (publish took {burst['publish_seconds']:.1f} s)"
        f"{state}"
    )
    print(
        f"counts: delivered {burst['delivered']}/{burst['n']} (opened, minimised: "
        f"{burst['opened_minimised']}), withheld {burst['withheld']}, "
        f"dead letters {burst['dead_letters']}"
    )
    print(
        f"raw {fig['engine']} (the broker's engine), same policy input, same run: "
        f"{raw['evaluations_per_s']:,.0f} evaluations/s ({raw['mean_ms']:.2f} ms each, "
        f"{raw['cpu_ms_each']:.2f} ms CPU, {raw['n']} evaluations)"
    )
    for name, load in fig["loads"].items():
        print(
            f"offered load {name[5:]} % of the burst's rate, open loop ({load['n']}, offered "
            f"{load['offered_per_s'] or 0:,.1f}/s): p50 {ms(load['p50_ms'], 1)}, "
            f"p99 {ms(load['p99_ms'], 1)}"
        )
    cpu, rq = fig["cpu_ms_per_request"], fig["run_queue_ms_per_request"]
    print(
        f"burst: CPU {cpu['total']:.2f} ms per request (our processes), run-queue wait "
        f"{rq['system']:.2f} ms per request (whole machine); load average "
        f"{fig['load_average']['before']} -> {fig['load_average']['after']}"
    )
    sql = fig["sql_per_request"]
    print("SQL statements per request: " + ", ".join(f"{k} {v:.1f}" for k, v in sql.items()))
    print(f"ratio whole path : raw {fig['engine']} = {fig['ratio_path_to_engine']:.3f}")
    if fig["engine"] != "regopy":
        print(
            f"raw regopy, for comparison: {fig['regopy']['evaluations_per_s']:,.0f} "
            f"evaluations/s; ratio whole path : raw regopy = {fig['ratio_path_to_regopy']:.3f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="share requests in the burst")
    p.add_argument("--sequential", type=int, default=100, help="requests sent one at a time")
    p.add_argument(
        "--load-seconds", type=float, default=15.0, help="how long each offered load is held"
    )
    p.add_argument(
        "--engine",
        choices=("opa-go", "regopy"),
        default=DEFAULT_ENGINE,
        help="the broker's policy engine (EMA_POLICY_ENGINE), measured alone beside it",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    fig = run(args.n, min(args.sequential, args.n), args.load_seconds, args.engine)
    print(json.dumps(fig, indent=2)) if args.json else report(fig)


if __name__ == "__main__":
    main()
