"""bench/consent.py's run() on a few requests: the figures a runner of every benchmark reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_returns_the_whole_path_and_raw_regopy_figures() -> None:
    spec = importlib.util.spec_from_file_location("bench_consent", ROOT / "bench" / "consent.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fig = bench.run(12, sequential=3)
    burst = fig["burst"]
    assert burst["finished"] is True
    # Every request went the whole way: decided, recorded, delivered sealed and minimised.
    assert (burst["delivered"], burst["opened_minimised"], burst["withheld"]) == (12, 12, 0)
    assert burst["dead_letters"] == 0
    assert 0 < burst["p50_ms"] <= burst["p99_ms"] and burst["per_s"] > 0
    assert fig["sequential"]["n"] == 3 and 0 < fig["sequential"]["p50_ms"]
    assert fig["regopy"]["n"] == 12 and fig["regopy"]["evaluations_per_s"] > 0
    # The engine the broker ran on, measured alone in the same run (the ratio's baseline).
    assert fig["engine"] == fig["engine_raw"]["engine"] == "opa-go"
    assert fig["engine_raw"]["evaluations_per_s"] > 0 and fig["ratio_path_to_engine"] > 0
    # Per request: CPU of the broker's process and the SQL statements it sent.
    assert fig["cpu_ms_per_request"]["consent"] > 0 and fig["sql_per_request"]["consent"] > 0
    assert fig["machine"]["cores"] and fig["date"].startswith("20")
