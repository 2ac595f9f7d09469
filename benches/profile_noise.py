"""Profile noise: two profiles of one model, the schedules that flip between them, and what stability said.

Usage: python benches/profile_noise.py [--results benches/RESULTS.md] [--models nin alexnet] [--samples 200]

Each model (zoo, small preset, ONNX Runtime on one thread) is profiled twice
in a row with the same settings. The mobile is this machine slowed down
``--slowdown`` times (so that splitting pays on some networks; the cloud is the
mobile / 10). For 3G / 4G / Wi-Fi, and the Wi-Fi radio at upload bandwidths
from 1 to 128 Mbit/s (download 3x), x latency / energy, the optimal placement
is planned on each profile; a *flip* is a case where the two placements differ.
Beside each case: the stability of each profile's schedule under its own
measured spread (:func:`jointdnn_edge.planner.stability`), the groups raised by
the containment check, and how far the two profiles' group medians are apart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from jointdnn_edge import Network, profile, zoo
from jointdnn_edge.models import executor_for
from jointdnn_edge.planner import plan, runs_of, stability
from jointdnn_edge.planner._stability import placement_bar
from jointdnn_edge.spread import GroupSpread

NETWORKS: list[tuple[str, Network]] = [(name, Network.preset(name)) for name in ("3g", "4g", "wifi")] + [
    (f"wifi {up:g}/{3 * up:g}", Network.preset("wifi").with_bandwidth(up, 3 * up))
    for up in (1, 2, 4, 8, 16, 32, 64, 128)
]
CASES = [(label, net, obj) for label, net in NETWORKS for obj in ("latency", "energy")]


def profile_twice(name: str, args: argparse.Namespace) -> tuple[Any, Any, float]:
    """Two profiles of ``name`` back to back, and the seconds they took."""
    graph = zoo.load(name, size="small")
    started = time.perf_counter()
    tables = [
        profile(
            graph,
            executor_for(graph, threads=1),
            max_group=args.max_group,
            repeats=args.repeats,
            mobile_slowdown=args.slowdown,
            progress=False,
        )
        for _ in range(2)
    ]
    return tables[0], tables[1], time.perf_counter() - started


def ratios(a: Any, b: Any) -> tuple[float, float]:
    """Median and largest ratio (larger / smaller) between the two profiles' offered group medians."""
    ok = np.isfinite(a.mobile_ms) & np.isfinite(b.mobile_ms)
    r = np.maximum(a.mobile_ms[ok], b.mobile_ms[ok]) / np.minimum(a.mobile_ms[ok], b.mobile_ms[ok])
    return float(np.median(r)), float(r.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["nin", "alexnet"])
    ap.add_argument("--max-group", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slowdown", type=float, default=20.0)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--results", type=Path, default=None, help="write the section into this RESULTS.md")
    args = ap.parse_args()

    rows = []
    notes = []
    flips = flips_flagged = stable_cases = stable_kept = 0
    for name in args.models:
        a, b, seconds = profile_twice(name, args)
        med, worst = ratios(a, b)
        sa, sb = GroupSpread.of(a), GroupSpread.of(b)
        assert sa is not None and sb is not None
        upper = np.isfinite(a.mobile_ms)
        band = float(np.median((sa.mobile_hi - sa.mobile_lo)[upper]))
        raised = [len(t.meta["group_check"].get("mobile", [])) for t in (a, b)]
        notes.append(
            f"- {name}: {a.n} layers, {int(upper.sum())} groups, both profiles in {seconds:.1f} s; group medians "
            f"differ by x{med:.2f} (median) to x{worst:.2f} (largest) between the profiles; median interquartile "
            f"band {band:.1%} of a group's median; groups raised by the containment check: {raised[0]} / {raised[1]}"
        )
        for label, net, obj in CASES:
            pa, pb = plan(a, net, objective=obj), plan(b, net, objective=obj)
            sta = stability(a, net, obj, samples=args.samples, seed=0)
            stb = stability(b, net, obj, samples=args.samples, seed=0)
            flip = tuple(runs_of(pa.segments)) != tuple(runs_of(pb.segments))
            # does profile A's spread put profile B's placement among its optima (or doubt its own)?
            seen = tuple(runs_of(pb.segments)) in dict(sta.counts)
            if flip:
                flips += 1
                flips_flagged += int(sta.share < 1 or stb.share < 1)
            elif sta.share == 1 and stb.share == 1:
                stable_cases += 1
            stable_kept += int(not flip and sta.share == 1)
            rows.append(
                f"| {name} | {label} | {obj} | `{placement_bar(sta.placement, a.n)}` | "
                f"`{placement_bar(stb.placement, b.n)}` | {'yes' if flip else ''} | {sta.share:.0%} | "
                f"{stb.share:.0%} | {'yes' if seen else 'no'} |"
            )
        print(notes[-1], flush=True)
    total = len(rows)
    body = "\n".join(
        [
            "## Profile noise",
            "",
            "`python benches/profile_noise.py --results benches/RESULTS.md` "
            f"(models {', '.join(args.models)}, small preset, one thread, max group {args.max_group}, "
            f"{args.repeats} timed runs per group, mobile = this machine x {args.slowdown:g}, cloud = mobile / 10, "
            f"{args.samples} resamples). Each model is profiled twice in a row; M/C: each layer on the mobile "
            "or the cloud. Stability: the share of tables redrawn within the profile's own interquartile bands "
            "whose optimum keeps the profile's placement. 'B seen': profile B's placement is among the optima "
            "of profile A's resampled tables. Measured on 2 cores shared with other jobs: the figures are noisy "
            "by nature, which is the point here, and another run gives other numbers.",
            "",
            *notes,
            "",
            "| model | network | objective | profile A | profile B | flip | stability A | stability B | B seen |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"{flips} of {total} cases flip between the two profiles; in {flips_flagged} of those flips at least one "
            f"profile's stability was below 100 %. {stable_kept} cases were the same in both profiles with profile A "
            "100 % stable."
            + (
                " Every flip was announced by a stability below 100 %; a stability below 100 % without a flip says "
                "the schedule could have flipped, not that it did."
                if flips and flips == flips_flagged
                else ""
            ),
        ]
    )
    print(body)
    if args.results is not None:
        from solver import write_section  # benches/ is the script's directory

        write_section(args.results, "## Profile noise", body + "\n")


if __name__ == "__main__":
    main()
