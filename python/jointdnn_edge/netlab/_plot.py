"""The lab's figure: the link and its estimate, each strategy's latency, and the adaptive schedule's changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._run import STRATEGIES

__all__ = ["plot_netlab"]

_COLORS = {"jointdnn": "tab:red", "mobile": "tab:green", "cloud": "tab:blue", "static": "tab:purple"}


def plot_netlab(result: dict[str, Any], path: str | Path) -> None:
    """Write the figure of a :meth:`NetlabResult.to_dict` to ``path`` (PNG, or any format matplotlib knows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = result["inferences"]
    end = result["trace"].get("played_s", max((r["t_s"] for r in recs), default=1.0))
    fig, (ax_bw, ax_lat) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=[1, 1.4])
    # shaped bandwidth: the trace's steps
    xs, ups, downs = [], [], []
    for ph in result["trace"].get("phases", []):
        xs += [ph["start_s"], ph["end_s"]]
        ups += [ph["up_mbps"]] * 2
        downs += [ph["down_mbps"]] * 2
    ax_bw.plot(xs, ups, color="black", lw=1.5, label="shaped up")
    ax_bw.plot(xs, downs, color="gray", lw=1.5, ls="--", label="shaped down")
    joint = [r for r in recs if r["strategy"] == "jointdnn"]
    est = [(r["t_s"], r["est_up_mbps"]) for r in joint if r["est_up_mbps"]]
    if est:
        ax_bw.scatter(*zip(*est), s=8, color="tab:red", label="estimated up (jointdnn)")
    est_d = [(r["t_s"], r["est_down_mbps"]) for r in joint if r["est_down_mbps"]]
    if est_d:
        ax_bw.scatter(*zip(*est_d), s=8, marker="x", color="tab:orange", label="estimated down (jointdnn)")
    ax_bw.set_yscale("symlog", linthresh=1.0)
    ax_bw.set_ylabel("Mbit/s")
    ax_bw.legend(loc="upper right", fontsize=8)
    for s in STRATEGIES:
        pts = [(r["t_s"], r["measured_ms"]) for r in recs if r["strategy"] == s and r["measured_ms"] is not None]
        if pts:
            ax_lat.scatter(*zip(*pts), s=6 if s != "jointdnn" else 10, color=_COLORS[s], label=s, alpha=0.8)
    pred = [(r["t_s"], r["predicted_ms"]) for r in joint if r["predicted_ms"] is not None]
    if pred:
        ax_lat.plot(*zip(*pred), color="tab:red", lw=0.8, alpha=0.6, label="jointdnn predicted")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency, ms")
    ax_lat.set_xlabel("time, s")
    ax_lat.legend(loc="upper right", fontsize=8, ncol=2)
    # schedule changes of the adaptive session
    last = None
    for r in joint:
        if r["schedule"] is not None and r["schedule"] != last:
            for ax in (ax_bw, ax_lat):
                ax.axvline(r["t_s"], color="tab:red", lw=0.6, ls=":")
            ax_lat.annotate(r["schedule"], (r["t_s"], 1.0), xycoords=("data", "axes fraction"), fontsize=6,
                            rotation=90, va="top", ha="right", family="monospace")  # fmt: skip
            last = r["schedule"]
    ax_lat.set_xlim(0, end)
    setup = result.get("setup", {})
    fig.suptitle(f"network lab: {setup.get('model', '')} on trace {result['trace'].get('name', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
