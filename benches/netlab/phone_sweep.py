"""The issue's literal pair on the step trace at fixed phone speeds: where the adaptive session wins and where it ties.

    python benches/netlab/phone_sweep.py --phones 30 33 36 39 42 --out benches/netlab [--runs DIR [--from-runs]]

One ``jointdnn-edge netlab alexnet --emulation sleep --phone-ms P`` run per
phone time P (the zoo AlexNet ``small``, the step trace once, root needed).
The 20x phone of the issue is this CPU's profile at the start of a run times
20, which drew 30-42 ms on this shared machine; whether a split pays on the
trace's Wi-Fi depends on it, so each run here fixes the phone instead. Writes
``phone_sweep.json`` (per phone: the goals, the strategies' p50 over the
trace and per phase, the session's schedule per phase) and
``phone_sweep.png`` under ``--out``, the runs' full JSON under ``--runs``
(``--from-runs`` reads them back instead of running), and prints a Markdown
table. The cloud is this CPU too, priced by the profile the run starts with,
which moves between runs; the table shows it beside the phone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

STRATEGIES = ("jointdnn", "mobile", "cloud", "static")


def run_one(phone_ms: float, say: Any) -> dict[str, Any]:
    """One lab run of the literal pair with a ``phone_ms`` phone; its JSON document."""
    from jointdnn_edge.netlab import run_netlab

    return run_netlab("alexnet", size="small", emulation="sleep", phone_ms=phone_ms, report=say).to_dict()


def digest(phone_ms: float, doc: dict[str, Any]) -> dict[str, Any]:
    """What the sweep compares of one run: goals, p50s over the trace and per phase, the session's schedules."""
    g = doc["goals"]
    return {
        "phone_ms": phone_ms,
        # this CPU's profile of the model, which also prices the cloud (the server runs on this CPU)
        "host_profile_ms": phone_ms / doc["setup"]["mobile_costs"]["slowdown"],
        "mobile_measured_p50_ms": doc["strategies"]["mobile"]["p50_ms"],
        "p50_ms": {s: doc["strategies"][s]["p50_ms"] for s in STRATEGIES},
        "phases": [
            {
                "start_s": ph["start_s"],
                "up_mbps": ph["up_mbps"],
                "link": f"{ph['up_mbps']:g}/{ph['down_mbps']:g} Mbit/s, {ph['rtt_ms']:g} ms",
                "p50_ms": ph["p50_ms"],
                "optimum_ms": ph.get("optimum_ms"),
                "jointdnn_schedule": ph["jointdnn_schedule"],
                "adapted_after": ph["jointdnn_adapted_after"],
            }
            for ph in doc["phases"]
        ],
        "no_worse_each_phase": g["jointdnn_p50_no_worse_each_phase"],
        "better_over_trace": g["jointdnn_p50_ms"] is not None
        and g["best_other_p50_ms"] is not None
        and g["jointdnn_p50_ms"] < g["best_other_p50_ms"],
        "settled_error_by_phase": g["settled_rel_error_p50_by_phase"],
        "decision_fraction_max": g["decision_fraction_max"],
        "wrong_outputs": g["wrong_outputs"],
        "lost": g["lost"],
        "fallbacks": doc["strategies"]["jointdnn"]["fallbacks"],
    }


def _wifi_phase(row: dict[str, Any]) -> dict[str, Any] | None:
    """The step trace's Wi-Fi phase (Table 3's Wi-Fi rates) of a digested run."""
    from jointdnn_edge import Network

    wifi = Network.preset("wifi").up_mbps
    return next((ph for ph in row["phases"] if ph["up_mbps"] == wifi), None)


def table(rows: list[dict[str, Any]]) -> str:
    """The sweep as Markdown: one line per phone."""
    head = (
        "| phone ms (measured) | this CPU's profile ms | jointdnn p50 | best other p50 | better over trace "
        "| no worse per phase "
        "| Wi-Fi phase: jointdnn / best other | Wi-Fi schedule | adapted after | settled error "
        "| wrong / lost / fallbacks |"
    )
    lines = [head, "|---:|---:|---:|---:|---|---|---:|---|---|---|---|"]
    for r in rows:
        p = r["p50_ms"]
        best = min(p[s] for s in ("mobile", "cloud", "static") if p[s] is not None)
        wifi = _wifi_phase(r)
        if wifi is not None:
            w = wifi["p50_ms"]
            w_best = min(w[s] for s in ("mobile", "cloud", "static") if w[s] is not None)
            wifi_cell, schedule = f"{w['jointdnn']:.1f} / {w_best:.1f}", wifi["jointdnn_schedule"]
        else:
            wifi_cell, schedule = "-", "-"
        flags = r["no_worse_each_phase"]
        errors = ", ".join(f"{e:.0%}" for e in r["settled_error_by_phase"])
        adapted = ", ".join("-" if ph["adapted_after"] is None else str(ph["adapted_after"]) for ph in r["phases"])
        lines.append(
            f"| {r['phone_ms']:g} ({r['mobile_measured_p50_ms']:.1f}) | {r['host_profile_ms']:.2f} | "
            f"{p['jointdnn']:.2f} | {best:.2f} | "
            f"{'yes' if r['better_over_trace'] else 'no'} | {sum(flags)} of {len(flags)} | {wifi_cell} | {schedule} | "
            f"{adapted} | {errors} | {r['wrong_outputs']} / {r['lost']} / {r['fallbacks']} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """p50 over the trace and on the Wi-Fi phase against the phone's time, one line per strategy (no cloud: it is
    off the scale on 3G)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    x = [r["phone_ms"] for r in rows]
    for name, style in (("jointdnn", "o-"), ("mobile", "s--"), ("static", "^:")):
        axes[0].plot(x, [r["p50_ms"][name] for r in rows], style, label=name)
        wifi = [_wifi_phase(r)["p50_ms"][name] for r in rows]  # type: ignore[index]
        axes[1].plot(x, wifi, style, label=name)
    axes[0].set_title("whole step trace")
    axes[1].set_title("Wi-Fi phase (18.88/54.97 Mbit/s, 10 ms)")
    for ax in axes:
        ax.set_xlabel("phone: AlexNet small all-mobile (ms)")
        ax.set_ylabel("p50 latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("The literal pair on the step trace, by phone speed (network lab)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phones", nargs="+", type=float, default=[30.0, 34.0, 38.0, 42.0])
    ap.add_argument("--out", type=Path, default=Path("benches/netlab"))
    ap.add_argument("--runs", type=Path, default=None, help="Write each run's full JSON here.")
    ap.add_argument("--from-runs", action="store_true", help="Read the runs from --runs instead of running them.")
    args = ap.parse_args()
    console = Console(stderr=True)
    rows = []
    if args.from_runs:
        if args.runs is None:
            ap.error("--from-runs needs --runs DIR")
        for phone_ms in args.phones:
            rows.append(digest(phone_ms, json.loads((args.runs / f"phone_{phone_ms:g}.json").read_text())))
    with Progress(console=console, disable=args.from_runs) as progress:
        task = progress.add_task("phones", total=len(args.phones))
        for phone_ms in [] if args.from_runs else args.phones:
            doc = run_one(phone_ms, lambda line: console.print(f"[dim]{line}[/]"))
            if args.runs is not None:
                args.runs.mkdir(parents=True, exist_ok=True)
                (args.runs / f"phone_{phone_ms:g}.json").write_text(json.dumps(doc))
            rows.append(digest(phone_ms, doc))
            progress.advance(task)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phone_sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out / "phone_sweep.png")
    print(table(rows))


if __name__ == "__main__":
    main()
