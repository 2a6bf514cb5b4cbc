"""Global assignment vs greedy on the same input: 1,000 children x 357 municipalities.

    .venv/bin/python bench/matching.py [--children 1000] [--seed 5]

Prints the total score and children placed for each method, and the time of each step.
`run(n)` returns the figures as a dict (bench/run_all.py): a matching round's latency over
several rounds, children matched per second, beside the raw solver (scipy's
linear_sum_assignment alone on the same expanded score matrix) and the greedy baseline.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import latency_ms  # noqa: E402
from services.municipality.domain import (  # noqa: E402
    Band,
    Child,
    Place,
    assign,
    assign_greedy,
    score_matrix,
)
from services.municipality.reference import load_register  # noqa: E402

MEASURES = ["bofellesskap"] * 7 + ["fosterhjem", "forsterket_fosterhjem", "slektsfosterhjem"]
NEEDS = ["trauma", "mental_health", "physical_health", "school_support", "language_support"]


def make_input(n: int, seed: int) -> tuple[list[Child], list[Place]]:
    rng = random.Random(seed)
    register = load_register()
    codes = sorted(register.municipalities)
    places = []
    for k in codes:
        offers = tuple(
            Band(x, rng.choice([0, 6, 10, 13]), rng.choice([15, 17]))
            for x in rng.sample(sorted(set(MEASURES)), rng.randint(1, 3))
        )
        places.append(
            Place(
                k,
                register.municipalities[k].name,
                register.municipalities[k].bufetat_region,
                offers,
                rng.choice([0, 0, 1, 1, 2, 3, 4, 6]),
                frozenset(rng.sample(NEEDS, rng.randint(0, 3))),
            )
        )
    children = []
    for i in range(n):
        sib = f"c{i - 1}" if i % 50 == 1 else None  # one sibling pair in 50
        children.append(
            Child(
                f"c{i}",
                age=rng.randint(9, 17),
                measure=rng.choice(MEASURES),
                days_left=rng.randint(-40, 90),
                care_needs=frozenset(rng.sample(NEEDS, rng.randint(0, 2))),
                family=frozenset(rng.sample(codes, 1)) if rng.random() < 0.3 else frozenset(),
                network=frozenset(rng.sample(codes, 2)) if rng.random() < 0.4 else frozenset(),
                siblings=frozenset({sib}) if sib else frozenset(),
            )
        )
    for i in range(n):  # siblings name each other
        if i % 50 == 1 and i < n:
            c = children[i - 1]
            children[i - 1] = Child(**{**c.__dict__, "siblings": frozenset({f"c{i}"})})
    return children, places


def run(n: int = 1000, rounds: int = 7, seed: int = 5) -> dict[str, Any]:
    children, places = make_input(n, seed)
    rounds_s, greedy_s, raw_s = [], [], []
    best = greedy = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        best = assign(children, places)
        rounds_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        greedy = assign_greedy(children, places)
        greedy_s.append(time.perf_counter() - t0)
        s = score_matrix(children, places)
        cols = np.repeat(np.arange(len(places)), [max(p.free, 0) for p in places])
        sub = s[:, cols]
        t0 = time.perf_counter()
        linear_sum_assignment(sub, maximize=True)
        raw_s.append(time.perf_counter() - t0)
    placed = lambda a: sum(len(p.case_ids) for p in a.proposals)  # noqa: E731
    med = sorted(rounds_s)[len(rounds_s) // 2]
    raw_med = sorted(raw_s)[len(raw_s) // 2]
    return {
        "path": "settlement matching (score matrix + global assignment + explanations)",
        "n": n,
        "municipalities": len(places),
        "free_places": sum(p.free for p in places),
        "rounds": rounds,
        "per_s": n / med,
        **latency_ms(rounds_s),
        "placed": placed(best),
        "total": best.total,
        "greedy": {"placed": placed(greedy), "total": greedy.total, **latency_ms(greedy_s)},
        "baseline": {
            "what": "scipy linear_sum_assignment alone, same expanded matrix",
            "per_s": n / raw_med,
            **latency_ms(raw_s),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--children", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    children, places = make_input(args.children, args.seed)
    slots = sum(p.free for p in places)
    print(f"{len(children)} children, {len(places)} municipalities, {slots} free places")
    t0 = time.perf_counter()
    score_matrix(children, places)
    t1 = time.perf_counter()
    best = assign(children, places)
    t2 = time.perf_counter()
    greedy = assign_greedy(children, places)
    t3 = time.perf_counter()
    placed = lambda a: sum(len(p.case_ids) for p in a.proposals)  # noqa: E731
    print(f"score matrix:      {t1 - t0:7.3f} s")
    print(
        f"global (LSA):      total {best.total:12.1f}  placed {placed(best):5d}  "
        f"{t2 - t1:7.3f} s (matrix included)"
    )
    print(
        f"greedy:            total {greedy.total:12.1f}  placed {placed(greedy):5d}  "
        f"{t3 - t2:7.3f} s"
    )
    print(
        f"global - greedy:   {best.total - greedy.total:+.1f} "
        f"({(best.total - greedy.total) / greedy.total:+.2%})"
    )


if __name__ == "__main__":
    main()
