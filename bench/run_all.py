"""Run every benchmark and write bench/RESULTS.md (`make bench`).

Each bench module has `run(n) -> dict` and starts what it needs itself, on a fresh system.
The arrival path (bench/thin_path.py) and the share path (bench/consent.py) run in
alternating repetitions (arrival, share, arrival, share, ...), each with its own baseline or
engine rate measured in that repetition, its latency three ways (one at a time, offered 50 %
and 80 % of the burst's rate, burst), CPU per process and run-queue wait; the tables give
the median across repetitions with the min–max spread. Settlement matching
(bench/matching.py) and notification (bench/notify.py) run once. The arrival path is then
run again with planning and notify under cProfile to show what bounds it.

    .venv/bin/python bench/run_all.py [--repetitions 3] [--arrivals 1000] [--consent 1000]
        [--unloaded 50] [--sequential 100] [--load-seconds 15] [--notify 500]
        [--matching 1000] [--profile 200] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine  # noqa: E402

ARRIVAL, SHARE = "arrival → fully notified", "share request → decision → record → delivery"
ONCE = (
    ("settlement matching", "bench.matching", "matching"),
    ("notification", "bench.notify", "notify"),
)
WAYS = (
    ("one at a time", "unloaded"),
    ("offered 50 % of capacity", "load_50"),
    ("offered 80 % of capacity", "load_80"),
    ("burst", "burst"),
)


def fmt(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        return f"{x:,.{digits}f}"
    return str(x)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def spread(values: list[Any], digits: int = 0) -> str:
    """Median across repetitions with the min–max spread; – when nothing was measured."""
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{fmt(median(values), digits)} ({fmt(min(values), digits)}–{fmt(max(values), digits)})"


def pick(reps: list[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """One figure from each repetition that has it."""
    out = []
    for f in reps:
        try:
            out.append(get(f))
        except (KeyError, TypeError, ZeroDivisionError):
            continue
    return out


def run_path(module: str, **kw: Any) -> dict[str, Any] | None:
    """The module's figures, None if the module does not exist (yet)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    t0 = time.perf_counter()
    try:
        figures = mod.run(**kw)
    except Exception:  # noqa: BLE001 (one failing bench must not lose the others)
        return {"error": traceback.format_exc(limit=5)}
    figures["wall_s"] = time.perf_counter() - t0
    return figures


# -- profiling the arrival path -------------------------------------------------------------

GROUPS = (
    ("SQLAlchemy ORM and Core", ("sqlalchemy",)),
    ("aiosqlite / sqlite3 (calls and thread hops)", ("aiosqlite", "sqlite3")),
    ("pydantic validation and serialisation", ("pydantic",)),
    ("Ed25519 / cryptography", ("cryptography", "signing.py")),
    ("nats-py client", ("/nats/",)),
    ("asyncio event loop and selectors", ("asyncio", "selectors.py")),
    ("json", ("/json/",)),
    ("emaflyt services and kit", ("/services/",)),
    ("holidays / calendar", ("holidays", "calendar")),
)


IDLE = "idle (waiting in epoll for work)"
PROFILED = ("planning", "notify")  # the two largest in the CPU table


def group_of(filename: str, func: str) -> str:
    if "select.epoll" in func:
        return IDLE
    if "SimpleQueue" in func:
        return "hand-over to aiosqlite's thread (queue put, GIL)"
    if any(x in func for x in ("marshal", "compile", "__build_class__", "builtins.exec")):
        return "start-up (imports)"
    if "_socket" in func or "_ssl" in func:
        return "socket I/O"
    if "ed25519" in func.lower() or "x25519" in func.lower():
        return "Ed25519 / cryptography"
    if "pydantic_core" in func:
        return "pydantic validation and serialisation"
    if "sqlite3" in func:
        return "aiosqlite / sqlite3 (calls and thread hops)"
    for name, needles in GROUPS:
        if any(n in filename for n in needles):
            return name
    if filename == "~":
        return "other built-ins (C functions)"
    return "other"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    groups: dict[str, float] = {}
    hops = 0
    for (filename, _line, func), (_cc, nc, tt, _ct, _callers) in stats.stats.items():
        g = group_of(filename, func)
        groups[g] = groups.get(g, 0.0) + tt
        if "SimpleQueue" in func:
            hops += nc
    idle = groups.pop(IDLE, 0.0)
    busy = sum(groups.values())
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(top)
    body = out.getvalue()
    body = body[body.find("   ncalls") :] if "   ncalls" in body else body
    return {
        "busy_s": busy,
        "idle_s": idle,
        "thread_hops": hops,
        "groups": sorted(((g, t / busy) for g, t in groups.items()), key=lambda x: -x[1]),
        "top": body.replace(str(ROOT) + "/", ""),
    }


def profile_arrivals(n: int, workdir: Path, notices: str = "grouped") -> dict[str, Any]:
    """The arrival burst again with planning and notify each under cProfile."""
    from bench.thin_path import measure, start
    from deploy.launcher import ServiceProcess

    system = start(str(workdir / "system"))
    profiles = {}
    try:
        for name in PROFILED:
            system.procs[name].stop()
            out = workdir / f"{name}.prof"
            env = system.service_env(name, EMA_HTTP_PORT=str(system.http_ports[name]))
            proc = ServiceProcess(
                name, env, system.http_ports[name], system.data_dir / "logs" / f"{name}.log"
            )
            log = open(proc.log_path, "ab")  # noqa: SIM115 (lives with the process)
            proc.proc = subprocess.Popen(
                [sys.executable, "-m", "cProfile", "-o", str(out), "-m", f"services.{name}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            system.procs[name] = proc
            proc.wait_healthy()
            profiles[name] = out
        figures = asyncio.run(measure(system, n, unloaded=0, loads=(), notices=notices))
    finally:
        for name in PROFILED:
            system.procs[name].stop(signal.SIGTERM, timeout=60)
        system.down()
    return {"figures": figures, **{k: summarise(v) for k, v in profiles.items() if v.exists()}}


# -- the report -----------------------------------------------------------------------------


def ok(reps: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [f for f in reps if f and "error" not in f]


def arrival_way(f: dict[str, Any], way: str) -> dict[str, Any]:
    if way == "burst":
        cost = {"cpu_ms": f["cpu_ms_per_arrival"], "run_queue_ms": f["run_queue_ms_per_arrival"]}
        return {**f["latency"][way], **cost}
    return f["latency"][way]


def share_way(f: dict[str, Any], way: str) -> dict[str, Any]:
    if way == "unloaded":
        return f["sequential"]
    if way == "burst":
        cost = {"cpu_ms": f["cpu_ms_per_request"], "run_queue_ms": f["run_queue_ms_per_request"]}
        return {**f["burst"], "offered_per_s": None, **cost}
    return f["loads"][way]


def paths_table(arr: list[dict], sha: list[dict], once: dict[str, Any]) -> list[str]:
    lines = [
        "| path | n per repetition | repetitions | throughput /s | baseline (same repetition) "
        "| baseline /s | path / baseline |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    if arr:
        lines.append(
            f"| {ARRIVAL} (burst) | {fmt(arr[0]['n'])} | {len(arr)} "
            f"| {spread(pick(arr, lambda f: f['per_s']), 1)} "
            "| nats-py JetStream publish_async + pull consume, same server "
            f"| {spread(pick(arr, lambda f: f['baseline']['end_to_end_per_s']))} "
            f"| {spread(pick(arr, lambda f: f['per_s'] / f['baseline']['end_to_end_per_s']), 4)} |"
        )
    if sha:
        lines.append(
            f"| {SHARE} (burst) | {fmt(sha[0]['burst']['n'])} | {len(sha)} "
            f"| {spread(pick(sha, lambda f: f['burst']['per_s']), 1)} "
            f"| the broker's engine ({sha[0]['engine']}) alone on the same policy input, in "
            "process "
            f"| {spread(pick(sha, lambda f: f['engine_raw']['evaluations_per_s']), 1)} "
            f"| {spread(pick(sha, lambda f: f['ratio_path_to_engine']), 3)} |"
        )
        if sha[0]["engine"] != "regopy":
            lines.append(
                f"| {SHARE} (burst), against regopy | {fmt(sha[0]['burst']['n'])} | {len(sha)} "
                f"| {spread(pick(sha, lambda f: f['burst']['per_s']), 1)} "
                "| regopy alone on the same policy input, in process "
                f"| {spread(pick(sha, lambda f: f['regopy']['evaluations_per_s']), 1)} "
                f"| {spread(pick(sha, lambda f: f['ratio_path_to_regopy']), 3)} |"
            )
    for title, module, key in ONCE:
        f = once.get(key)
        if f is None:
            lines.append(f"| {title} | not measured (`{module}` absent) ||||||")
        elif "error" in f:
            lines.append(f"| {title} | failed (see below) ||||||")
        else:
            b = f.get("baseline") or {}
            base = b.get("end_to_end_per_s") or b.get("per_s")
            what = b.get("what") or "nats-py JetStream publish_async + pull consume, same server"
            rate = f.get("per_s")
            ratio = f"{rate / base:.4f}" if rate and base else "–"
            lines.append(
                f"| {title} | {fmt(f.get('n'))} | 1 | {fmt(rate, 1)} | {what} "
                f"| {fmt(base, 1)} | {ratio} |"
            )
            if f.get("smtp_baseline_per_s"):
                smtp = f["smtp_baseline_per_s"]
                lines.append(
                    f"| {title} | {fmt(f.get('n'))} | 1 | {fmt(rate, 1)} "
                    "| raw smtplib, one connection per mail, same SMTP server "
                    f"| {fmt(smtp, 1)} | {rate / smtp if rate else 0:.4f} |"
                )
    return lines


def latency_table(arr: list[dict], sha: list[dict], once: dict[str, Any]) -> list[str]:
    lines = [
        "| path | way | n per repetition | offered /s (achieved) | p50 ms | p99 ms "
        "| CPU ms per message, ours | run-queue wait ms per message, machine |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for title, reps, get in ((ARRIVAL, arr, arrival_way), (SHARE, sha, share_way)):
        for label, way in WAYS:
            got = pick(reps, lambda f, way=way, get=get: get(f, way))
            if not got:
                continue
            lines.append(
                f"| {title} | {label} | {spread([g.get('n') for g in got])} "
                f"| {spread([g.get('offered_per_s') for g in got], 1)} "
                f"| {spread([g.get('p50_ms') for g in got], 1)} "
                f"| {spread([g.get('p99_ms') for g in got], 1)} "
                f"| {spread([(g.get('cpu_ms') or {}).get('total') for g in got], 1)} "
                f"| {spread([(g.get('run_queue_ms') or {}).get('system') for g in got], 1)} |"
            )
    for title, _module, key in ONCE:
        f = once.get(key)
        if f and "error" not in f and f.get("p50_ms") is not None:
            lines.append(
                f"| {title} | {'rounds' if key == 'matching' else 'burst'} | {fmt(f.get('n'))} "
                f"| – | {fmt(f['p50_ms'], 1)} | {fmt(f['p99_ms'], 1)} | – | – |"
            )
    return lines


def cost_table(reps: list[dict], cpu_key: str, rq_key: str, sql_key: str | None) -> list[str]:
    names = [k for k in reps[0][cpu_key] if k != "total"]
    lines = [
        "| process | CPU ms per message | run-queue wait ms per message"
        + (" | SQL statements per message |" if sql_key else " |"),
        "|---|---:|---:" + ("|---:|" if sql_key else "|"),
    ]
    ours = lambda f: sum(v for n, v in f[rq_key].items() if n != "system")  # noqa: E731
    for k in [*names, "total", "system"]:
        label = {"total": "**all of ours**", "system": "**whole machine**"}.get(k, k)
        cpu = "–" if k == "system" else spread(pick(reps, lambda f, k=k: f[cpu_key][k]), 2)
        rq = spread(pick(reps, ours if k == "total" else lambda f, k=k: f[rq_key][k]), 2)
        row = f"| {label} | {cpu} | {rq}"
        if sql_key:
            sql = "–" if k == "system" else spread(pick(reps, lambda f, k=k: f[sql_key][k]), 1)
            row += f" | {sql}"
        lines.append(row + " |")
    return lines


def cost_section(arr: list[dict], sha: list[dict]) -> list[str]:
    lines = [
        "## CPU and run-queue wait per message, per process (from the OS)",
        "",
        "Over each burst, from just before it was published to the moment its last effect "
        "was recorded: user + system CPU of each process (`/proc/<pid>/stat`) and the time "
        "its threads waited on a run queue (2nd field of `/proc/<pid>/task/<tid>/schedstat`; "
        "the whole machine's row sums every thread on it, other work included), divided by "
        "the burst's size; median across repetitions (min–max). SQL statements per message "
        "from each service's own counter (`sql_statements` in `/healthz`, an executemany "
        "counting once).",
        "",
    ]
    if arr:
        lines += [f"Arrivals (burst of {fmt(arr[0]['n'])}, {len(arr)} repetitions):", ""]
        lines += cost_table(
            arr, "cpu_ms_per_arrival", "run_queue_ms_per_arrival", "sql_statements_per_arrival"
        )
        lines += [
            "",
            "Floor of the arrival path, measured in each arrival repetition (as many signed "
            "messages per arrival as the system sent and received, through sign, outbox "
            "executemany, publish, fetch, verify, inbox executemany and ack, with no "
            "application logic): CPU "
            f"{spread(pick(arr, lambda f: f['floor']['cpu_ms_per_arrival']['total']), 2)} "
            "ms per arrival; floor / actual "
            f"{spread(pick(arr, lambda f: f['floor_over_actual']), 2)}.",
            "",
        ]
    if sha:
        lines += [
            f"Share requests (burst of {fmt(sha[0]['burst']['n'])}, {len(sha)} repetitions):",
            "",
        ]
        lines += cost_table(sha, "cpu_ms_per_request", "run_queue_ms_per_request", None)
        lines.append("")
    return lines


def repetitions_table(reps: list[tuple[str, int, dict[str, Any] | None]]) -> list[str]:
    lines = [
        "| # | path | load average before (1, 5, 15 min) | after | run-queue wait ms per "
        "message, whole machine | throughput /s | engine or baseline /s | wall s |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for path, i, f in reps:
        if not f or "error" in f:
            lines.append(f"| {i} | {path} | failed (see below) ||||||")
            continue
        if path == ARRIVAL:
            rq, rate = f["run_queue_ms_per_arrival"]["system"], f.get("per_s")
            base = f["baseline"]["end_to_end_per_s"]
        else:
            rq, rate = f["run_queue_ms_per_request"]["system"], f["burst"]["per_s"]
            base = f["engine_raw"]["evaluations_per_s"]
        lines.append(
            f"| {i} | {path} | {f['load_average']['before']} | {f['load_average']['after']} "
            f"| {fmt(rq, 2)} | {fmt(rate, 1)} | {fmt(base, 1)} | {fmt(f.get('wall_s'))} |"
        )
    return lines


NOTICE_FORMS = {
    "each": "as one task-notice.v1 per task",
    "grouped": "grouped, one task-notices.v1 per step of planning in a case",
}


def notices_of(arr: list[dict[str, Any]]) -> str:
    forms = {f.get("notices", "each") for f in arr}
    return forms.pop() if len(forms) == 1 else "mixed"


def write(
    out: Path,
    reps: list[tuple[str, int, dict[str, Any] | None]],
    once: dict[str, Any],
    prof: dict[str, Any] | None,
    host: dict[str, str],
    started: datetime,
    wall: float,
) -> None:
    arr = ok([f for path, _, f in reps if path == ARRIVAL])
    sha = ok([f for path, _, f in reps if path == SHARE])
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bench/run_all.py`) on {started:%Y-%m-%d %H:%M} UTC in "
        f"{wall / 60:.1f} min. The arrival and share paths ran in alternating repetitions, "
        "each on a fresh system with its baseline (or the Rego engine's rate) measured in the "
        "same repetition; figures are the median across repetitions with the min–max spread "
        "in brackets, and each repetition's figures are in the details below. Matching and "
        "notification ran once.",
        "",
        "## Machine",
        "",
        f"- CPU: {host['cpu']}, {host['cores']} cores; RAM {host['ram']}",
        f"- Python {host['python']}; {host['nats_server']}; {host['os']}",
        f"- Load average when the run started: {host['load_average_at_start']} "
        "(1, 5, 15 min); during each repetition: the table further down.",
        "",
        "## Paths",
        "",
        *paths_table(arr, sha, once),
        "",
        f"The arrival path's care centre hears its tasks {NOTICE_FORMS.get(notices_of(arr), '?')} "
        "(docs/decisions/0020); the other units its tasks concern (Bufetat's region, the "
        "Statsforvalter) one message per task. "
        "Throughput of a burst: for arrivals, arrivals until every task notice and "
        "notification they cause is out, per second; for share requests, requests delivered "
        "or withheld per second. Baselines: for the bus paths, raw nats-py JetStream on the "
        "same server (600-byte messages, `publish_async` pipelined with a pull consumer "
        "fetching and acking at the same time); for the consent path, the broker's own policy "
        "engine (EMA_POLICY_ENGINE; OPA's Go evaluator by default, docs/decisions/0019) "
        "evaluating the same policy input in process, and regopy beside it; for matching, scipy's "
        "`linear_sum_assignment` alone on the same expanded score matrix.",
        "",
        "## Latency three ways",
        "",
        *latency_table(arr, sha, once),
        "",
        "One at a time: the next message is sent when the last is done. Offered loads: "
        "published open loop at a fixed rate by the clock (not waiting for replies) at 50 % "
        "and 80 % of the throughput that repetition's burst measured, for the number of "
        "messages shown; the achieved rate is in the offered column. Burst: everything "
        "published at once, so the latency includes the time a message waited in the queue. "
        "Arrival latency: from the server storing the arrival (INTAKE) to the server storing "
        "the last task notice (`ema.notify.tasks.<unit>`) carrying the arrival's id as "
        "correlation id. Share latency: from the publish call to the recipient's receipt of "
        "the sealed delivery. CPU and run-queue wait per message over each offered load and "
        "burst: from its first message published until its last was done, divided by its "
        "messages (so an offered load's figure includes the idle time between messages).",
        "",
        *cost_section(arr, sha),
        "## Load in each repetition",
        "",
        *repetitions_table(reps),
        "",
        "## Details per repetition and path",
        "",
    ]
    for path, i, f in reps:
        lines += [f"### {path}, repetition {i}", ""]
        lines += details(f, path)
    for title, module, key in ONCE:
        lines += [f"### {title}", ""]
        f = once.get(key)
        lines += (
            [f"Not measured: `{module}` is not in this checkout.", ""]
            if f is None
            else details(f, title)
        )
    if prof:
        lines += profile_section(prof)
    out.write_text("\n".join(lines) + "\n")


def details(f: dict[str, Any] | None, title: str) -> list[str]:
    if f is None:
        return ["Not measured.", ""]
    if "error" in f:
        return ["Failed:", "", "```", f["error"].rstrip(), "```", ""]
    return [
        f"<details><summary>{title}: figures as JSON</summary>",
        "",
        "```json",
        json.dumps(f, indent=2, ensure_ascii=False, default=str),
        "```",
        "",
        "</details>",
        "",
    ]


def profile_section(prof: dict[str, Any]) -> list[str]:
    f = prof["figures"]
    lines = [
        "## What bounds the arrival path (profile)",
        "",
        f"The arrival burst again ({f['n']} arrivals) with planning and notify each under "
        f"cProfile ({fmt(f.get('per_s'), 1)} arrivals/s while profiled). Own time per "
        "package as a share of the busy time of the main thread over the process's life "
        "(start-up included). SQLite runs on the main thread by default (docs/decisions/"
        "0016), so cProfile sees it; with EMA_SQLITE_THREAD=1 it would run on aiosqlite's "
        "thread, which cProfile does not see (then only the hand-over shows):",
        "",
    ]
    for name in PROFILED:
        p = prof.get(name)
        if not p:
            continue
        lines += [
            f"**{name}**: {p['busy_s']:.1f} s busy in the main thread, "
            f"{p['idle_s']:.1f} s idle in epoll; {p['thread_hops'] / f['n']:.0f} calls "
            "handed to aiosqlite's thread per arrival",
            "",
            "| share | where |",
            "|---:|---|",
        ]
        lines += [f"| {share:.0%} | {group} |" for group, share in p["groups"] if share >= 0.01]
        lines += [
            "",
            "<details><summary>top functions by own time</summary>",
            "",
            "```",
            p["top"].rstrip(),
            "```",
            "",
            "</details>",
            "",
        ]
    lines += [
        "Own time per package in the two profiled processes; what they do not show (other "
        "processes, aiosqlite's thread when it is used) is in the CPU table per process.",
        "",
    ]
    return lines


ANALYSIS = """Own time per package in the two profiled processes, as in the tables above;
what they do not show (other processes, aiosqlite's thread when it is used) is in the CPU
table per process further up."""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repetitions", type=int, default=3, help="of the arrival and share paths")
    ap.add_argument("--arrivals", type=int, default=1000, help="arrivals in each burst")
    ap.add_argument("--consent", type=int, default=1000, help="share requests in each burst")
    ap.add_argument("--unloaded", type=int, default=50, help="arrivals one at a time")
    ap.add_argument("--sequential", type=int, default=100, help="share requests one at a time")
    ap.add_argument("--load-seconds", type=float, default=15.0, help="each offered load held")
    ap.add_argument("--notify", type=int, default=500)
    ap.add_argument("--matching", type=int, default=1000)
    ap.add_argument("--profile", type=int, default=200, help="arrivals to profile; 0: none")
    ap.add_argument(
        "--notices",
        choices=("each", "grouped"),
        default="grouped",
        help="how the arrival bench's care centre hears its tasks (docs/decisions/0020)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    started, t0 = datetime.now(UTC), time.perf_counter()
    host = machine()
    paths = (
        (
            ARRIVAL,
            "bench.thin_path",
            {
                "n": args.arrivals,
                "unloaded": args.unloaded,
                "load_seconds": args.load_seconds,
                "notices": args.notices,
            },
        ),
        (
            SHARE,
            "bench.consent",
            {"n": args.consent, "sequential": args.sequential, "load_seconds": args.load_seconds},
        ),
    )
    reps: list[tuple[str, int, dict[str, Any] | None]] = []
    for i in range(1, args.repetitions + 1):
        for title, module, kw in paths:
            print(f"== {title}, repetition {i} ({module}, {kw})", flush=True)
            f = run_path(module, **kw)
            reps.append((title, i, f))
            print(json.dumps(f, default=str, ensure_ascii=False)[:400], flush=True)
    once: dict[str, Any] = {}
    for title, module, key in ONCE:
        print(f"== {title} ({module}, n={getattr(args, key)})", flush=True)
        once[key] = run_path(module, n=getattr(args, key))
        print(json.dumps(once[key], default=str, ensure_ascii=False)[:400], flush=True)
    prof = None
    if args.profile:
        print(f"== profiling the arrival path (n={args.profile})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                prof = profile_arrivals(args.profile, Path(tmp), args.notices)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
    write(args.out, reps, once, prof, host, started, time.perf_counter() - t0)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
