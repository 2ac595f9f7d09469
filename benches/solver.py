"""Planner speed at scale: the native solver against a pure-Python DP, the pure-Python reference, networkx and HiGHS.

Usage: python benches/solver.py [--quick] [--no-ilp] [--before OLD_CORE.so] [--results benches/RESULTS.md]

Every case answers the same request on the same table with every solver and
checks they agree on the optimal cost before timing. Cases (issue 15):

* chains of N = 21, 70, 200, 1000 layers with *every* group of consecutive
  layers offered (about 2·N² transitions): first ``plan()`` on a new table
  (state-graph build included), later ``plan()`` (same network), ``plan()``
  with a new network every call, the state graph's memory; against a
  pure-Python DP over the chain (the classic two-states-per-boundary
  recurrence, ``python DP``, which walks back the optimal schedule as
  ``plan()`` answers one), the pure-Python reference solver and networkx
  over the same state graph (N <= 200: both build a Python object per
  transition), and the HiGHS ILPs (N <= 70);
* wide DAGs, the hidden-state widths ``docs/planner.md`` describes: residual
  (ResNet-50-like, width 2), Inception-style blocks (one tensor per branch
  live) and a U-Net (skip connections);
* the exact constrained search (energy under a deadline) at every N;
* lookup-table build time and size for an AlexNet-size table (21 layers).

``--before`` loads a previous build of the native module (a copy of
``_core.*.so``) next to the current one and times it in the same run, on the
same tables, through its ``Problem`` directly (no Python-side checks: a
slight advantage to the old build). Timings: the median of repeated calls
(batches for calls under 100 µs) on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import gc
import importlib.machinery
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from rich.console import Console

from jointdnn_edge import CostTable, Network, __version__
from jointdnn_edge.planner import LookupTable, compile, native_available, plan, reference
from jointdnn_edge.planner.schedule import evaluate_usage
from jointdnn_edge.planner.usage import DIMS, dot, weights
from jointdnn_edge.reproduce import replace_section as write_section  # the other benches import it from here

console = Console(width=140)
NET = Network.preset("4g")


# ------------------------------------------------------------------ tables
def chain(n: int, max_group: int | None, seed: int = 0) -> CostTable:
    """A chain with fusion effects: each group is 70-100% of the sum of its layers."""
    rng = np.random.default_rng(seed)
    mobile = rng.uniform(1, 60, n)
    cloud = mobile / rng.uniform(5, 25, n)
    csum_m = np.concatenate([[0], np.cumsum(mobile)])
    csum_c = np.concatenate([[0], np.cumsum(cloud)])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ok = j >= i
    if max_group is not None:
        ok &= (j - i + 1) <= max_group
    fuse = np.where(i == j, 1.0, rng.uniform(0.7, 1.0, (n, n)))
    mm = np.where(ok, (csum_m[j + 1] - csum_m[i]) * fuse, np.inf)
    cm = np.where(ok, (csum_c[j + 1] - csum_c[i]) * fuse, np.inf)
    out = np.round(rng.uniform(2e3, 8e5, n) * np.linspace(1.0, 0.05, n))
    return CostTable(mm, cm, out, 6e5, names=[f"l{k}" for k in range(n)])


class _Layers:
    """Appends layers with their predecessors (-1: the model input) for a DAG cost table."""

    def __init__(self) -> None:
        self.edges: list[tuple[int, int]] = []
        self.n = 0

    def __call__(self, *preds: int) -> int:
        for p in preds:
            self.edges.append((p, self.n))
        self.n += 1
        return self.n - 1

    def table(self, seed: int, max_group: int = 16) -> CostTable:
        rng = np.random.default_rng(seed)
        mobile = rng.uniform(2, 30, self.n)
        return CostTable.from_layers(
            mobile,
            mobile / rng.uniform(5, 25, self.n),
            np.round(rng.uniform(5e4, 8e5, self.n)),
            6e5,
            edges=self.edges,
            max_group=max_group,
        )


def resnet50_like(seed: int = 1) -> CostTable:
    """Stem, 16 bottleneck blocks (1x1, 3x3, 1x1 convs + add; projection at stage starts), pool, fc: width 2."""
    layer = _Layers()
    x = layer(-1)
    x = layer(x)
    for blocks in (3, 4, 6, 3):
        for b in range(blocks):
            a = layer(layer(layer(x)))
            skip = layer(x) if b == 0 else x  # projection shortcut at the first block of a stage
            x = layer(a, skip)
    layer(layer(x))
    return layer.table(seed)


def inception_like(blocks: int = 9, branches: int = 4, seed: int = 2) -> CostTable:
    """Blocks of ``branches`` parallel two-layer branches joined by a concat (GoogLeNet's shape): width ``branches``."""
    layer = _Layers()
    x = layer(layer(-1))
    for _ in range(blocks):
        ends = [layer(layer(x)) for _ in range(branches)]
        x = layer(*ends)
    layer(layer(x))
    return layer.table(seed)


def unet_like(depth: int = 8, seed: int = 3) -> CostTable:
    """An encoder of ``depth`` levels whose outputs skip to the mirrored decoder levels (Pix2Pix's generator)."""
    layer = _Layers()
    x = layer(-1)
    skips = []
    for _ in range(depth - 1):
        skips.append(x)
        x = layer(x)
    for s in reversed(skips):
        x = layer(x, s)
    layer(x)
    return layer.table(seed, max_group=8)


# ------------------------------------------------------------------ timing
def median_us(fn: Callable[[], object], budget_s: float, min_runs: int = 5, max_runs: int = 20000) -> float:
    """Median wall time per call in µs (batches of calls for sub-100 µs functions)."""
    fn()  # warm (builds cached solver structures)
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    if one > 2.0:  # slow baselines: one timed run is enough (and all the budget allows)
        return one * 1e6
    batch = max(1, int(1e-4 / max(one, 1e-9))) if one < 1e-4 else 1
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < min_runs or (time.perf_counter() < deadline and len(samples) * batch < max_runs):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t0) / batch)
    return statistics.median(samples) * 1e6


def rss_bytes() -> int:
    """This process's resident memory now (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def load_before(path: Path) -> ModuleType:
    """A previous build of the native module, loaded beside the current one."""
    name = "jointdnn_edge_before._core"  # the last component must be the init function's name
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def old_problem(mod: ModuleType, c: CostTable) -> Any:
    """The previous build's compiled problem for ``c`` (its constructor, as the backend called it)."""
    return mod.Problem(
        c.mobile_ms,
        c.cloud_ms,
        c.mobile_mj,
        c.out_bytes,
        c.input_bytes,
        list(c.edges),
        list(c.outputs),
        c.cloud_download_bytes,
        c.codec_ms,
        c.codec_mj,
        True,
    )


def copy_table(c: CostTable) -> CostTable:
    """An equal table with a new identity (so plan() compiles it afresh)."""
    return CostTable.from_dict(c.to_dict())


def networks(k: int = 64) -> list[Network]:
    """``k`` links of the 4G radio at different bandwidths (a new network every plan)."""
    radio = NET.radio
    return [radio.with_bandwidth(NET.up_mbps * (0.5 + i / k), NET.down_mbps * (1.5 - i / k)) for i in range(k)]


def first_plan_ms(c: CostTable, first: Callable[[CostTable], object], repeats: int) -> float:
    """Median ms of ``first(copy)`` on a copy of ``c`` made beforehand (a compile and a plan on a new table)."""
    samples = []
    for _ in range(repeats):
        fresh = copy_table(c)
        gc.collect()
        t0 = time.perf_counter()
        first(fresh)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


# ------------------------------------------------------------------ baselines
class ChainDP:
    """The pure-Python DP over a chain: two states per boundary (where the last output is), every group offered.

    Its lists are made once (as a compiled graph is); each call computes the costs from the
    network, runs the recurrence and walks back the optimal schedule, as plan() does: a planner's
    answer is the schedule, not only its cost.
    """

    def __init__(self, c: CostTable) -> None:
        assert c.is_chain
        self.n = c.n
        self.mobile = c.mobile_ms.tolist()
        self.cloud = c.cloud_ms.tolist()
        self.mj = c.mobile_mj.tolist()
        self.tensor = [c.input_bytes, *c.out_bytes.tolist()]

    def plan(self, net: Network) -> tuple[float, list[tuple[int, int, str]]]:
        """The least latency on ``net`` and a schedule reaching it, ``(first, last, platform)`` per group."""
        n, inf = self.n, math.inf
        w_up, w_down, rtt = 8.0 / (net.up_mbps * 1e3), 8.0 / (net.down_mbps * 1e3), net.rtt_ms
        last_out = self.tensor[n] * w_down + rtt  # a model output made on the cloud comes back
        dist = [[inf, inf] for _ in range(n + 1)]  # [mobile, cloud] at each boundary
        via: list[list[Any]] = [[None, None] for _ in range(n + 1)]  # (start of the last group, lane before it)
        dist[0][0] = 0.0
        for p in range(n):
            dm, dc = dist[p]
            down, up = dc + self.tensor[p] * w_down + rtt, dm + self.tensor[p] * w_up + rtt
            # run p.. on the mobile: tensor p must be there (from the mobile lane, or downloaded)
            base_m, via_m = (down, (p, 1)) if down < dm else (dm, (p, 0))
            base_c, via_c = (up, (p, 0)) if up < dc else (dc, (p, 1))
            row_m, row_c = self.mobile[p], self.cloud[p]
            for q in range(p, n):
                nxt = dist[q + 1]
                v = base_m + row_m[q]
                if v < nxt[0]:
                    nxt[0] = v
                    via[q + 1][0] = via_m
                v = base_c + row_c[q] + (last_out if q == n - 1 else 0.0)
                if v < nxt[1]:
                    nxt[1] = v
                    via[q + 1][1] = via_c
        lane = 0 if dist[n][0] <= dist[n][1] else 1
        best, segments, q = dist[n][lane], [], n
        while q > 0:
            p, before = via[q][lane]
            segments.append((p, q - 1, ("mobile", "cloud")[lane]))
            lane, q = before, p
        segments.reverse()
        return best, segments


def networkx_solver(costs: CostTable, net: Network) -> Callable[[], float]:
    """networkx shortest path over the same state graph (built once, weights per call)."""
    import networkx as nx

    g = reference.StateGraph.build(reference.Plain.of(costs))
    w = weights("latency", net, 1.0)
    G = nx.DiGraph()
    for s in range(g.num_states):
        for k in range(g.trans_start[s], g.trans_start[s + 1]):
            t = g.trans[k]
            G.add_edge(s, t[0], usage=reference.transition_usage(t, net.burst))
    for s in range(g.num_states):
        if g.is_terminal(s):
            G.add_edge(s, "end", usage=(0.0,) * DIMS)

    def run() -> float:
        return nx.shortest_path_length(G, 0, "end", weight=lambda u, v, d: sum(a * b for a, b in zip(w, d["usage"])))

    return run


def fmt_us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f} s" if v >= 1e6 else f"{v / 1e3:.2f} ms" if v >= 1e3 else f"{v:.1f} µs"


def vs(v: float | None, base: float) -> str:
    """A baseline's time with its ratio to ``base`` (the current native solver)."""
    return "-" if v is None else f"{fmt_us(v)} ({v / base:,.0f}x)"


# ------------------------------------------------------------------ cases
def scale_case(
    name: str, c: CostTable, old: ModuleType | None, budget: float, ilp: bool, big_baselines: bool
) -> dict[str, Any]:
    """First and later plan, a new network each plan, memory, and the baselines on one table (latency)."""
    from jointdnn_edge.planner.ilp import solve_ilp

    row: dict[str, Any] = {"case": name, "n": c.n}
    repeats = 3 if c.n >= 500 else 7
    solver = compile(c, solver="native")
    ref_value = plan(c, NET).latency_ms
    row["graph_mb"] = solver._problem.nbytes / 2**20  # type: ignore[attr-defined]
    row["states"], row["transitions"], row["width"] = solver.size
    nets = networks()
    it = iter(range(1 << 62))
    row["first"] = first_plan_ms(c, lambda t: plan(t, NET), repeats)
    row["later"] = median_us(lambda: plan(c, NET), budget)
    row["new_net"] = median_us(lambda: plan(c, nets[next(it) % len(nets)]), budget)
    if old is not None:
        gc.collect()
        before_rss = rss_bytes()
        prob = old_problem(old, c)
        row["old_graph_mb"] = (rss_bytes() - before_rss) / 2**20
        assert math.isclose(prob.solve("latency", NET).latency_ms, ref_value, rel_tol=1e-9)
        row["old_first"] = first_plan_ms(c, lambda t: old_problem(old, t).solve("latency", NET), repeats)
        row["old_later"] = median_us(lambda: prob.solve("latency", NET), budget)
        row["old_new_net"] = median_us(lambda: prob.solve("latency", nets[next(it) % len(nets)]), budget)
        del prob
    baselines: dict[str, Callable[[], float]] = {}
    if c.is_chain:
        dp = ChainDP(c)
        value, segments = dp.plan(NET)
        # the DP's schedule (ties may pick another one than plan()) costs what it says
        assert math.isclose(dot(weights("latency", NET, 1.0), evaluate_usage(c, segments)[0]), value, rel_tol=1e-9)
        baselines["dp"] = lambda: dp.plan(NET)[0]
    if c.n <= 200 or big_baselines:
        python = compile(c, solver="python")
        baselines["python"] = lambda: python.solve("latency", NET).latency_ms
        baselines["networkx"] = networkx_solver(c, NET)
    if ilp and c.n <= 70:
        baselines["ilp"] = lambda: plan(c, NET, solver="ilp").latency_ms

        def placement() -> float:
            return dot(weights("latency", NET, 1.0), solve_ilp(c, NET, formulation="placement")[1])

        baselines["placement"] = placement
    for key, run in baselines.items():
        row[key] = checked_us(run, ref_value, budget, (name, key))
    return row


def checked_us(run: Callable[[], float], ref_value: float, budget: float, label: tuple[Any, ...]) -> float:
    """µs per call of a baseline whose optimum must equal ``ref_value``: its one checked run when that took over
    2 s, else the median within ``budget``."""
    t0 = time.perf_counter()
    value = run()
    first = time.perf_counter() - t0
    assert math.isclose(value, ref_value, rel_tol=1e-6), (*label, value, ref_value)
    return first * 1e6 if first > 2.0 else median_us(run, budget, min_runs=3)


def constrained_case(n: int, old: ModuleType | None, budget: float, ilp: bool) -> dict[str, Any]:
    """Energy under a deadline halfway between the energy- and latency-optimal schedules (3G), chain N, all groups."""
    c = chain(n, None, seed=3)
    e, lat = plan(c, "3g", objective="energy"), plan(c, "3g", objective="latency")
    kw = {"objective": "energy", "deadline_ms": (e.latency_ms + lat.latency_ms) / 2}
    net = Network.preset("3g")
    ref_value = plan(c, net, **kw).mobile_energy_mj  # type: ignore[arg-type]
    row: dict[str, Any] = {"case": f"energy under deadline, chain N={n}", "n": n}
    row["later"] = median_us(lambda: plan(c, net, **kw), budget)  # type: ignore[arg-type]
    if old is not None:
        prob = old_problem(old, c)
        assert math.isclose(
            prob.solve("energy", net, deadline_ms=kw["deadline_ms"]).mobile_energy_mj, ref_value, rel_tol=1e-9
        )
        row["old_later"] = median_us(lambda: prob.solve("energy", net, deadline_ms=kw["deadline_ms"]), budget)
    others: dict[str, Callable[[], float]] = {}
    if n <= 70:
        python = compile(c, solver="python")
        others["python"] = lambda: python.solve("energy", net, deadline_ms=kw["deadline_ms"]).mobile_energy_mj
    if ilp and n <= 21:
        others["ilp"] = lambda: plan(c, net, solver="ilp", **kw).mobile_energy_mj  # type: ignore[arg-type]
    for key, run in others.items():
        row[key] = checked_us(run, ref_value, budget, (n, key))
    return row


def lut_case(name: str, kw: dict[str, Any], old: ModuleType | None) -> dict[str, Any]:
    """Build time (a fresh table each time), size and query time of an AlexNet-size (N = 21) lookup table."""
    c = chain(21, None, seed=5)  # the deadline in main() is set for this table
    row: dict[str, Any] = {"case": name}
    gc.collect()
    rss0 = rss_bytes()
    samples = []
    for _ in range(3):
        fresh = copy_table(c)
        t0 = time.perf_counter()
        lut = LookupTable.build(fresh, network="4g", **kw)
        samples.append(time.perf_counter() - t0)
    row["build_ms"] = statistics.median(samples) * 1e3
    row["rss_mb"] = (rss_bytes() - rss0) / 2**20
    row["file_kb"] = len(lut.to_bytes()) / 1024
    row.update(lut.stats())
    row["query_us"] = median_us(lambda: lut.query(NET.up_mbps, NET.down_mbps), 0.3)
    if old is not None:
        from jointdnn_edge.planner import _backend

        saved = _backend._module
        _backend._module = old  # build through the previous native module
        try:
            samples = []
            for _ in range(3):
                fresh = copy_table(c)
                t0 = time.perf_counter()
                LookupTable.build(fresh, network="4g", **kw)
                samples.append(time.perf_counter() - t0)
        finally:
            _backend._module = saved
        row["old_build_ms"] = statistics.median(samples) * 1e3
    return row


# ------------------------------------------------------------------ report
GOALS_MS = {  # issue 15: (case key, column, limit in µs)
    "N=1000 later plan() <= 5 ms": ("chain N=1000, all groups", "later", 5000.0),
    "N=1000 first plan() <= 30 ms": ("chain N=1000, all groups", "first_us", 30000.0),
    "N=200 later plan() <= 150 µs": ("chain N=200, all groups", "later", 150.0),
    "constrained N=1000 <= 20 ms": ("energy under deadline, chain N=1000", "later", 20000.0),
}


def report(scale: list[dict], constrained: list[dict], luts: list[dict], old: bool) -> list[str]:
    """The figures as markdown lines (also printed)."""
    md = [
        "Chains with every group offered, then wide DAGs (groups <= 16 layers, U-Net <= 8); latency on 4G. "
        "*first*: compile a table not seen before and plan (ms); *later*: plan again, same network; *new net*: "
        "plan with another bandwidth every call (µs). Ratios: baseline / current native *later*. *python DP*: the "
        "chain recurrence in plain Python over lists made once, walking back the optimal schedule as plan() returns "
        "one (runs before 2026-12-07 timed it returning the latency alone: 27.8 µs at N = 21 then, against about "
        "29.5 µs with the walk-back).",
        "",
        "| case | N | width | states | transitions | graph MB (before: RSS growth, now: held) | first plan, ms | "
        "later plan | plan, new net each call | python DP | pure-Python reference | networkx | HiGHS paper ILP | "
        "HiGHS placement ILP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pair(r: dict, key: str, unit: Callable[[float], str]) -> str:
        now = unit(r[key])
        return f"{unit(r['old_' + key])} → **{now}**" if ("old_" + key) in r else now

    for r in scale:
        base = r["later"]
        md.append(
            "| "
            + " | ".join(
                [
                    r["case"],
                    str(r["n"]),
                    str(r["width"]),
                    str(r["states"]),
                    str(r["transitions"]),
                    pair(r, "graph_mb", lambda v: f"{v:.2f}"),
                    pair(r, "first", lambda v: f"{v:.2f}"),
                    pair(r, "later", fmt_us),
                    pair(r, "new_net", fmt_us),
                    *(vs(r.get(k), base) for k in ("dp", "python", "networkx", "ilp", "placement")),
                ]
            )
            + " |"
        )
    md += [
        "",
        "| exact constrained search | N | plan | pure-Python reference | HiGHS paper ILP |",
        "|---|---|---|---|---|",
    ]
    for r in constrained:
        base = r["later"]
        md.append(
            f"| {r['case']} | {r['n']} | {pair(r, 'later', fmt_us)} | {vs(r.get('python'), base)} | "
            f"{vs(r.get('ilp'), base)} |"
        )
    md += [
        "",
        "| lookup table, chain N=21, 4G radio | cells | schedules | max per cell | solve cells | build, ms | "
        "RSS growth MB | file KiB | query µs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in luts:
        md.append(
            f"| {r['case']} | {r['cells']} | {r['schedules']} | {r['max_per_cell']} | {r['solve_cells']} | "
            f"{pair(r, 'build_ms', lambda v: f'{v:.1f}')} | {r['rss_mb']:.1f} | {r['file_kb']:.1f} | "
            f"{r['query_us']:.2f} |"
        )
    md.append("")
    by_case = {r["case"]: r for r in scale + constrained}
    for r in scale:
        r["first_us"] = r["first"] * 1e3
    for label, (case, key, limit) in GOALS_MS.items():
        if case in by_case:
            got = by_case[case][key]
            md.append(f"- goal {label}: {fmt_us(got)} -> {'met' if got <= limit else 'MISSED'}")
    worst = min(
        ((r["dp"] / r["later"], r["n"]) for r in scale if "dp" in r),
        default=None,
    )
    if worst is not None:
        md.append(
            f"- goal >= 20x the pure-Python DP at every N: least {worst[0]:.0f}x (N={worst[1]}) -> "
            f"{'met' if worst[0] >= 20 else 'MISSED'}"
        )
    for r in luts:
        md.append(
            f"- goal lookup-table build (AlexNet size) < 1 s, {r['case']}: {r['build_ms']:.0f} ms -> "
            f"{'met' if r['build_ms'] < 1000 else 'MISSED'}"
        )
    if old:
        md.append("- `a → **b**`: the previous build (`--before`) → this build, in the same run.")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing budget per case")
    ap.add_argument("--no-ilp", action="store_true", help="skip the HiGHS ILPs (minutes at N = 70)")
    ap.add_argument("--big-baselines", action="store_true", help="the reference and networkx at N = 1000 too")
    ap.add_argument("--before", type=Path, help="a previous build of _core.*.so to time in the same run")
    ap.add_argument("--sizes", default="21,70,200,1000", help="chain lengths (comma-separated)")
    ap.add_argument("--results", type=Path, help="rewrite this file's '## Planner' section with the figures")
    args = ap.parse_args()
    if not native_available():
        sys.exit("the native module is not available: build it first (pip install . or maturin develop)")
    budget = 0.3 if args.quick else 1.0
    old = load_before(args.before) if args.before else None
    sizes = [int(x) for x in args.sizes.split(",")]
    tables = [(f"chain N={n}, all groups", chain(n, None)) for n in sizes]
    tables += [
        ("ResNet-50-like DAG (residual)", resnet50_like()),
        ("Inception-like DAG, 4 branches", inception_like()),
        ("U-Net-like DAG, 7 skips", unet_like()),
    ]
    scale = []
    for name, c in tables:
        console.print(f"[dim]{name}...[/]")
        scale.append(scale_case(name, c, old, budget, not args.no_ilp, args.big_baselines))
    constrained = []
    for n in sizes:
        console.print(f"[dim]constrained N={n}...[/]")
        constrained.append(constrained_case(n, old, budget, not args.no_ilp))
    luts = []
    alex = chain(21, None, seed=5)
    deadline = round((plan(alex, NET, objective="energy").latency_ms + plan(alex, NET).latency_ms) / 2)
    for name, kw in (
        ("latency, 16x16x4 cells (default)", {}),
        (f"energy under a {deadline} ms deadline, 16x16x4 cells", {"objective": "energy", "deadline_ms": deadline}),
    ):
        console.print(f"[dim]lookup table {name}...[/]")
        luts.append(lut_case(name, kw, old))
    md = report(scale, constrained, luts, old is not None)
    for line in md:
        console.print(line, markup=False, highlight=False)
    if args.results:
        flags = " ".join(
            f
            for f in (
                "--quick" if args.quick else "",
                "--no-ilp" if args.no_ilp else "",
                f"--before {args.before}" if args.before else "",
            )
            if f
        )
        header = (
            f"Command: `python benches/solver.py {flags} --results {args.results}`  \n"
            f"Machine: {platform.machine()}, {platform.processor() or platform.platform()}, "
            f"Python {platform.python_version()}, jointdnn-edge {__version__}, {os.cpu_count()} cores (shared with "
            "other jobs: figures move by 1.5-2x run to run; compare within a run). Median wall time per call from "
            "Python, one thread; a baseline over 2 s: its one checked run; every solver's optimum checked equal "
            "before timing."
        )
        section = "\n".join(["## Planner", "", header, "", *md, ""])
        write_section(args.results, "## Planner", section)


if __name__ == "__main__":
    main()
