"""Summaries and Markdown tables of `jointdnn-edge netlab --json` runs, for benches/RESULTS.md's "Network lab".

    python benches/netlab/summarize.py RUN.json [...] [--out benches/netlab]

For each run: writes ``NAME_summary.json`` (the JSON without the
per-inference records) under ``--out`` and prints the strategy table, the
per-phase table and the goals. Per phase, "optimum" is the planner's optimum
on the shaped link (the lab's cost table), "adapted after" the inferences into
the phase until the adaptive session ran a schedule within 2% of it on that
link (no fallback), "settled after" those until it first ran the schedule it
ran most after its first three (a stricter count: two schedules within 1% of
each other on the link are not the same schedule).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

STRATEGIES = ("jointdnn", "mobile", "cloud", "static")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def tables(doc: dict[str, Any]) -> str:
    """The run's strategy and phase tables and its goals, as Markdown."""
    head = "| strategy | n | p50 ms | p95 ms | mean ms | energy mJ | fallbacks | wrong | lost |"
    lines = [head, "|---" + "|---:" * 8 + "|"]
    for name, s in doc["strategies"].items():
        lines.append(
            f"| {name} | {s['n']} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | {_ms(s['mean_ms'])} | "
            f"{_ms(s['energy_mj'])} | {s['fallbacks']} | {s['wrong_outputs']} | {s['lost']} |"
        )
    head = (
        "| phase | up/down Mbit/s, rtt | jointdnn | mobile | cloud | static | optimum | JointDNN's schedule (settled) "
        "| adapted after | settled after | error |"
    )
    lines += ["", head, "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for ph in doc["phases"]:
        p = ph["p50_ms"]
        err = ph["jointdnn_settled_rel_error_p50"]
        lines.append(
            f"| {ph['start_s']:g}-{ph['end_s']:g} s | {ph['up_mbps']:g}/{ph['down_mbps']:g}, {ph['rtt_ms']:g} ms | "
            + " | ".join(_ms(p[s]) for s in STRATEGIES)
            + f" | {_ms(ph.get('optimum_ms'))} | {ph['jointdnn_schedule']} | {_n(ph['jointdnn_adapted_after'])} | "
            + f"{_n(ph.get('jointdnn_settled_after'))} | "
            + ("-" if err is None else f"{err:.0%}")
            + " |"
        )
    joint = [r for r in doc["inferences"] if r["strategy"] == "jointdnn" and r["measured_ms"]]
    g = doc["goals"]
    lines += [
        "",
        f"- setup: {doc['setup']}",
        f"- whole trace p50: jointdnn {_ms(g['jointdnn_p50_ms'])} ms, best other {_ms(g['best_other_p50_ms'])} ms",
        f"- no worse per phase: {g['jointdnn_p50_no_worse_each_phase']}",
        f"- decision / inference: p50 {g['decision_fraction_p50']:.3%}, max {g['decision_fraction_max']:.2%}"
        if joint
        else "- decision: no inference",
        f"- wrong outputs {g['wrong_outputs']}, lost {g['lost']}; probes {len(doc['probes'])}",
    ]
    if joint:
        p50 = statistics.median(r["measured_ms"] for r in joint)
        lines.append(f"- jointdnn measured p50 over the run: {p50:.1f} ms")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="Write NAME_summary.json here.")
    args = ap.parse_args()
    for path in args.runs:
        doc = json.loads(path.read_text())
        print(f"## {path.name}\n\n{tables(doc)}\n")
        if args.out is not None:
            summary = {k: v for k, v in doc.items() if k != "inferences"}
            (args.out / f"{path.stem}_summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
