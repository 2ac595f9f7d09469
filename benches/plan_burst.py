"""What a link's burst costs a plan: ``plan()`` on one compiled table, the same link with and without a burst.

Usage: python benches/plan_burst.py [--sizes 21 200 1000]

The burst makes the planner read each transfer vector's eligible bytes and take a minimum per direction
(``structure::transfer_usage``); without one it reads the vectors as before. Best of three timed loops each, both
links in the same run, on random chains (``tests/planner_strategies.random_costs``' generator, seed 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from jointdnn_edge import Network, plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from planner_strategies import random_costs  # the tests' generator (not a package)


def per_plan_us(costs: object, net: Network, loops: int) -> float:
    """Best of three loops of ``loops`` plans, microseconds per plan."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(loops):
            plan(costs, net)
        best = min(best, (time.perf_counter() - t) / loops * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[21, 200, 1000])
    args = ap.parse_args()
    plain = Network.preset("wifi", rtt_ms=5.0)
    bursty = dataclasses.replace(plain, burst_up_bytes=9400.0, burst_down_bytes=27_000.0)
    print("| layers | plan, no burst | plan, burst | ratio |")
    print("|---:|---:|---:|---:|")
    for n in args.sizes:
        costs = random_costs(np.random.default_rng(1), n, dag=False)
        plan(costs, plain), plan(costs, bursty)  # compiled, warm
        loops = max(20, 4000 // n)
        a, b = per_plan_us(costs, plain, loops), per_plan_us(costs, bursty, loops)
        print(f"| {n} | {a:.2f} µs | {b:.2f} µs | {b / a:.2f} |")


if __name__ == "__main__":
    main()
