"""Run every benchmark and write bench/RESULTS.md (`make bench`).

Each bench module has `run(n) -> dict` and starts what it needs itself. The paths: arrival →
deadlines (bench/thin_path.py), share request → decision → record → delivery
(bench/consent.py when present, else "not measured"), settlement matching
(bench/matching.py), notification (bench/notify.py). Beside each, the raw baseline measured
in the same run. The arrival path is then run again with planning and notify under cProfile
to show what bounds it.

    .venv/bin/python bench/run_all.py [--arrivals 1000] [--notify 500] [--matching 1000]
                                      [--consent 1000] [--profile 200] [--out bench/RESULTS.md]
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine  # noqa: E402

PATHS = (
    ("arrival → deadlines", "bench.thin_path", "arrivals"),
    ("share request → decision → record → delivery", "bench.consent", "consent"),
    ("settlement matching", "bench.matching", "matching"),
    ("notification", "bench.notify", "notify"),
)


def fmt(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        return f"{x:,.{digits}f}"
    return str(x)


def first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def run_path(module: str, n: int) -> dict[str, Any] | None:
    """The module's figures, None if the module does not exist (yet)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    t0 = time.perf_counter()
    try:
        figures = mod.run(n)
    except Exception:  # noqa: BLE001 (one failing bench must not lose the others)
        return {"error": traceback.format_exc(limit=5)}
    figures["wall_s"] = time.perf_counter() - t0
    return figures


Row = tuple[str, Any, Any, Any, Any, str, Any, Any, Any]


def rows(title: str, f: dict[str, Any]) -> list[Row]:
    """(path, n, per s, p50, p99, baseline, baseline per s, baseline p50, baseline p99) rows
    from a bench's figures, whichever of the known shapes they have."""
    if "burst" in f and "regopy" in f:  # bench/consent.py
        burst, raw, seq = f["burst"], f["regopy"], f.get("sequential") or {}
        what = "regopy evaluations of the same policy input, in process"
        out = [
            (
                title,
                burst.get("n"),
                burst.get("per_s"),
                burst.get("p50_ms"),
                burst.get("p99_ms"),
                what,
                raw.get("evaluations_per_s"),
                None,
                None,
            )
        ]
        if seq:
            out.append(
                (
                    f"{title} (one request at a time)",
                    seq.get("n"),
                    None,
                    seq.get("p50_ms"),
                    seq.get("p99_ms"),
                    what,
                    raw.get("evaluations_per_s"),
                    None,
                    None,
                )
            )
        return out
    b = f.get("baseline") or {}
    what = b.get("what") or "nats-py JetStream publish_async + pull consume, same server"
    rate = first(f, "per_s", "throughput")
    out = [
        (
            title,
            f.get("n"),
            rate,
            f.get("p50_ms"),
            f.get("p99_ms"),
            what,
            first(b, "end_to_end_per_s", "per_s"),
            b.get("p50_ms"),
            b.get("p99_ms"),
        )
    ]
    if f.get("smtp_baseline_per_s"):
        out.append(
            (
                f"{title} (beside SMTP)",
                f.get("n"),
                rate,
                f.get("p50_ms"),
                f.get("p99_ms"),
                "raw smtplib, one connection per mail, same SMTP server",
                f["smtp_baseline_per_s"],
                None,
                None,
            )
        )
    return out


def table(results: dict[str, dict[str, Any] | None]) -> list[str]:
    lines = [
        "| path | n | throughput /s | p50 ms | p99 ms | raw baseline (same run) "
        "| baseline /s | baseline p50 ms | baseline p99 ms | ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for title, module, key in PATHS:
        f = results.get(key)
        if f is None:
            lines.append(f"| {title} | not measured (`{module}` absent) |||||||||")
            continue
        if "error" in f:
            lines.append(f"| {title} | failed (see below) |||||||||")
            continue
        for name, n, rate, p50, p99, what, b_rate, b50, b99 in rows(title, f):
            ratio = f"{rate / b_rate:.4f}" if rate and b_rate else "–"
            lines.append(
                f"| {name} | {fmt(n)} | {fmt(rate, 1)} | {fmt(p50, 1)} | {fmt(p99, 1)} "
                f"| {what} | {fmt(b_rate, 1)} | {fmt(b50, 2)} | {fmt(b99, 2)} | {ratio} |"
            )
    return lines


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


def profile_arrivals(n: int, workdir: Path) -> dict[str, Any]:
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
        figures = asyncio.run(measure(system, n))
    finally:
        for name in PROFILED:
            system.procs[name].stop(signal.SIGTERM, timeout=60)
        system.down()
    return {"figures": figures, **{k: summarise(v) for k, v in profiles.items() if v.exists()}}


# -- the report -----------------------------------------------------------------------------


def write(
    out: Path,
    results: dict[str, Any],
    prof: dict[str, Any] | None,
    args: Any,
    host: dict[str, str],
    started: datetime,
    wall: float,
) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bench/run_all.py`) on {started:%Y-%m-%d %H:%M} UTC in "
        f"{wall / 60:.1f} min. Every figure comes from this one run; every baseline was measured "
        "in the same run on the same nats-server. Latencies are for bursts (everything "
        "published at once), so they include the time a message waited in the queue.",
        "",
        "## Machine",
        "",
        f"- CPU: {host['cpu']}, {host['cores']} cores; RAM {host['ram']}",
        f"- Python {host['python']}; {host['nats_server']}; {host['os']}",
        f"- Load average when the run started: {host['load_average_at_start']} "
        f"(1, 5, 15 min). {load_note(host)}",
        "",
        "## Paths",
        "",
        *table(results),
        "",
        "Ratio = path throughput / baseline throughput. Baselines: for the bus paths, raw "
        "nats-py JetStream on the same server (600-byte messages, `publish_async` pipelined "
        "with a pull consumer fetching and acking at the same time; latency from the publish "
        "call to the consumer's receipt); for the consent path, the Rego engine's own "
        "evaluations per second (regopy), as `bench/consent.py` reports it; for matching, "
        "scipy's `linear_sum_assignment` alone on the same expanded score matrix.",
        "",
        *cpu_section(results),
        "## Details per path",
        "",
    ]
    for title, module, key in PATHS:
        f = results.get(key)
        lines.append(f"### {title}")
        lines.append("")
        if f is None:
            lines.append(f"Not measured: `{module}` is not in this checkout.")
        elif "error" in f:
            lines += ["Failed:", "", "```", f["error"].rstrip(), "```"]
        else:
            lines += ["```json", json.dumps(f, indent=2, ensure_ascii=False, default=str), "```"]
        lines.append("")
    if prof:
        lines += profile_section(prof)
    out.write_text("\n".join(lines) + "\n")


def cpu_section(results: dict[str, Any]) -> list[str]:
    """CPU time per message per process, as the OS counts it (/proc utime + stime), from
    just before the burst was published to the moment its last effect was recorded."""
    lines = [
        "## CPU per message, per process (from the OS)",
        "",
        "User + system CPU of each process over the burst (read from `/proc/<pid>/stat` "
        "before it was published and when its last effect was recorded), divided by the "
        "burst's size; SQL statements per message from each service's own counter "
        "(`sql_statements` in `/healthz`, an executemany counting once).",
        "",
    ]
    arr = results.get("arrivals") or {}
    if arr.get("cpu_ms_per_arrival"):
        cpu, sql = arr["cpu_ms_per_arrival"], arr.get("sql_statements_per_arrival") or {}
        names = [k for k in cpu if k != "total"]
        lines += [
            f"Arrivals ({fmt(arr.get('n'))}; load average before/after "
            f"{arr['load_average']['before']} / {arr['load_average']['after']}; "
            f"{fmt(arr.get('notifications_per_arrival'), 0)} notifications per arrival "
            f"awaited, {fmt(arr.get('notified_per_s'), 1)} arrivals/s fully notified):",
            "",
            "| process | CPU ms per arrival | SQL statements per arrival |",
            "|---|---:|---:|",
        ]
        lines += [f"| {k} | {fmt(cpu[k], 2)} | {fmt(sql.get(k), 1)} |" for k in names]
        lines += [f"| **all** | **{fmt(cpu['total'], 2)}** | **{fmt(sql.get('total'), 1)}** |", ""]
    con = results.get("consent") or {}
    if con.get("cpu_ms_per_request"):
        cpu = con["cpu_ms_per_request"]
        lines += [
            f"Share requests (burst of {fmt((con.get('burst') or {}).get('n'))}; load average "
            f"before/after {con['load_average']['before']} / {con['load_average']['after']}):",
            "",
            "| process | CPU ms per share request |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {fmt(v, 2)} |" for k, v in cpu.items() if k != "total"]
        lines += [f"| **all** | **{fmt(cpu['total'], 2)}** |", ""]
    return lines


def load_note(host: dict[str, Any]) -> str:
    """Whether other work shared the cores, read from the 1-minute load at the start."""
    try:
        one_minute = float(str(host["load_average_at_start"]).split()[0])
    except (ValueError, IndexError):
        return ""
    if one_minute > 0.5 * float(host["cores"]):
        return (
            "Other work shared the cores when the run started, so the figures are "
            "disturbed: their order of magnitude and the ratios mean most."
        )
    return "The machine was otherwise idle when the run started."


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
    lines += [ANALYSIS, ""]
    return lines


ANALYSIS = """Own time per package in the two profiled processes, as in the tables above;
what they do not show (other processes, aiosqlite's thread when it is used) is in the CPU
table per process further up."""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arrivals", type=int, default=1000)
    ap.add_argument("--notify", type=int, default=500)
    ap.add_argument("--matching", type=int, default=1000)
    ap.add_argument("--consent", type=int, default=1000)
    ap.add_argument("--profile", type=int, default=200, help="arrivals to profile; 0: none")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    started, t0 = datetime.now(UTC), time.perf_counter()
    host = machine()
    results: dict[str, Any] = {}
    for title, module, key in PATHS:
        print(f"== {title} ({module}, n={getattr(args, key)})", flush=True)
        results[key] = run_path(module, getattr(args, key))
        print(json.dumps(results[key], default=str, ensure_ascii=False)[:600], flush=True)
    prof = None
    if args.profile:
        print(f"== profiling the arrival path (n={args.profile})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                prof = profile_arrivals(args.profile, Path(tmp))
            except Exception:  # noqa: BLE001
                traceback.print_exc()
    write(args.out, results, prof, args, host, started, time.perf_counter() - t0)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
