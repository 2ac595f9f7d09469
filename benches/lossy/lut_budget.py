"""A lookup table under an accuracy budget on the recognizer split: build time, and query time beside the plain
table's and plan()'s under the same budget, in one run.

The cost table and the transfer options are those of ``plan_budget.py``
(PP-OCRv4 recognizer profiled here, the phone emulated 20x slower, the
measured accuracy table with its early cuts), on the 3G radio with the
session's stateless cloud. The box is 3G-like bandwidths (``--up``/``--down``
Mbit/s, slowdown 1) so that most cells are answered from their stored lists;
points are log-uniform in the box. Every budgeted answer is checked against
``plan()`` under the budget before anything is timed.

Run: ``python benches/lossy/lut_budget.py [--budget 0.005] [--cells 8]`` (minutes: one build per assignment).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from plan_budget import MODEL, recognizer_costs  # noqa: E402

from jointdnn_edge import Network, lossy, plan  # noqa: E402
from jointdnn_edge.planner import LookupTable, transfer_options  # noqa: E402
from jointdnn_edge.planner._accuracy import accuracy_planner  # noqa: E402


def per_call_us(fn, points, repeats: int) -> float:
    """Median over ``repeats`` passes of the mean time of one call over ``points``, in µs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in points:
            fn(*p)
        times.append((time.perf_counter() - t0) / len(points) * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.005, help="max accuracy loss (absolute CER; 0.005 = 0.5 pt)")
    ap.add_argument("--cells", type=int, default=8, help="cells per bandwidth axis")
    ap.add_argument("--up", type=float, nargs=2, default=(0.5, 8.0))
    ap.add_argument("--down", type=float, nargs=2, default=(1.0, 16.0))
    ap.add_argument("--points", type=int, default=2000)
    args = ap.parse_args()
    table = json.loads((HERE / "ocr_rec.json").read_text(encoding="utf-8"))
    table["rows"] += json.loads((HERE / "ocr_rec_early.json").read_text(encoding="utf-8"))["rows"]
    graph, costs = recognizer_costs(MODEL)
    out_bytes = np.array(costs.out_bytes)
    for r in table["rows"]:
        out_bytes[lossy.cut_tensors(graph, [r])[r["cut"]] - 1] = r["lossless_8bit_bytes"]
    costs = costs.replace(out_bytes=out_bytes)
    options = transfer_options(table, tensor_of=lossy.cut_tensors(graph, table))
    budget = args.budget
    kw = {"network": "3g", "up_mbps": tuple(args.up), "down_mbps": tuple(args.down), "cloud_keeps_tensors": False}
    cells = (args.cells, args.cells, 1)
    t0 = time.perf_counter()
    plain = LookupTable.build(costs, cells=cells, **kw)
    plain_s = time.perf_counter() - t0
    assignments = len(accuracy_planner(costs, options, cloud_keeps_tensors=False).assignments(budget))
    t0 = time.perf_counter()
    lut = LookupTable.build(costs, cells=cells, max_accuracy_loss=budget, accuracy=options, **kw)
    budget_s = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    points = [
        (float(math.exp(rng.uniform(*np.log(args.up)))), float(math.exp(rng.uniform(*np.log(args.down)))), 1.0)
        for _ in range(args.points)
    ]
    radio = Network.preset("3g")

    def planned(up: float, down: float, slowdown: float):
        return plan(
            costs, radio.with_bandwidth(up, down), cloud_slowdown=slowdown, cloud_keeps_tensors=False,
            max_accuracy_loss=budget, accuracy=options,
        )  # fmt: skip

    lossy_answers = 0
    for p in points[:50]:  # the oracle first
        got, want = lut.query(*p), planned(*p)
        assert math.isclose(got.latency_ms, want.latency_ms, rel_tol=1e-9), (p, got, want)
        lossy_answers += bool(got.lossy)
    plain_us = per_call_us(plain.query, points, 5)
    budget_us = per_call_us(lut.query, points, 5)
    plan_us = per_call_us(planned, points[:20], 3)
    st, pst = lut.stats(), plain.stats()
    print(
        f"recognizer ({graph.n} layers), 3G radio, stateless cloud, budget {100 * budget:g} CER points "
        f"({len(options)} options, {assignments} assignments), box up {args.up[0]:g}-{args.up[1]:g} / down "
        f"{args.down[0]:g}-{args.down[1]:g} Mbit/s in {cells[0]}x{cells[1]} cells: build {budget_s:.1f} s "
        f"(plain table {plain_s:.1f} s, {budget_s / plain_s:.1f}x); stored schedules {st['schedules']} "
        f"({st['lossy_schedules']} lossy; plain {pst['schedules']}), longest cell {st['max_per_cell']} "
        f"(plain {pst['max_per_cell']}), solve cells {st['solve_cells']} (plain {pst['solve_cells']}); "
        f"{lossy_answers}/50 checked answers lossy. Query: {budget_us:.2f} µs vs plain table {plain_us:.2f} µs "
        f"({budget_us / plain_us:.1f}x) vs plan() under the budget {plan_us / 1e3:.1f} ms "
        f"({plan_us / budget_us:,.0f}x the table's query)."
    )


if __name__ == "__main__":
    main()
