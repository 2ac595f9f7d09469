"""Pictures of schedules (matplotlib, an optional extra: ``pip install jointdnn-edge[plot]``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .costs import CostTable
    from .planner import Schedule

COLORS = {"mobile": "#3b7dd8", "cloud": "#e8833a"}


def plot_schedules(
    costs: CostTable,
    schedules: Mapping[str, Schedule],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> None:
    """Draw each schedule's placement over the layers' output sizes, and their latency and energy, to a PNG.

    Top: one row per schedule, a cell per layer coloured by platform. Middle:
    the bytes each layer would send (log scale), which is what the planner
    trades against compute. Bottom: latency and mobile energy of each
    schedule side by side.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch, Rectangle
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("plots need matplotlib: pip install 'jointdnn-edge[plot]'") from e

    n = costs.n
    labels = list(schedules)
    fig = plt.figure(figsize=(max(8.0, 0.35 * n + 3), 3.2 + 0.45 * len(labels)))
    grid = fig.add_gridspec(3, 2, height_ratios=[0.45 * len(labels) + 0.3, 1.6, 1.8], hspace=0.55, wspace=0.3)
    ax = fig.add_subplot(grid[0, :])
    for row, label in enumerate(labels):
        for layer, platform in enumerate(schedules[label].placement()):
            ax.add_patch(Rectangle((layer, row), 0.95, 0.8, color=COLORS[platform]))
        for a, _, _ in schedules[label].segments[1:]:
            ax.plot([a - 0.025, a - 0.025], [row, row + 0.8], color="black", lw=0.8)
    ax.set_xlim(0, n)
    ax.set_ylim(len(labels), -0.2)
    ax.set_yticks([i + 0.4 for i in range(len(labels))], labels)
    ax.set_xticks([i + 0.475 for i in range(n)], [nm if n <= 40 else "" for nm in costs.names], rotation=90, fontsize=7)
    ax.legend(
        handles=[Patch(color=c, label=p) for p, c in COLORS.items()],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        ncol=2,
        frameon=False,
    )
    ax.set_title(title or "schedules (black ticks: group boundaries)", loc="left")

    ax2 = fig.add_subplot(grid[1, :])
    ax2.bar(range(n), costs.out_bytes, color="#888888")
    ax2.set_yscale("log")
    ax2.set_xlim(-0.5, n - 0.5)
    ax2.set_ylabel("output bytes")
    ax2.set_xticks([])

    for col, (attr, unit) in enumerate((("latency_ms", "latency (ms)"), ("mobile_energy_mj", "mobile energy (mJ)"))):
        axm = fig.add_subplot(grid[2, col])
        vals = [getattr(schedules[k], attr) for k in labels]
        axm.bar(labels, vals, color=["#5a9" if k.lower().startswith("joint") else "#bbb" for k in labels])
        axm.set_ylabel(unit)
        for i, v in enumerate(vals):
            axm.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        axm.tick_params(axis="x", labelsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def schedule_text(costs: CostTable, s: Schedule, width: int = 100) -> list[str]:
    """The schedule drawn as text: one line per run of layers on one platform."""
    lines = []
    for a, b, p in s.runs():
        names = costs.names[a] if a == b else f"{costs.names[a]} .. {costs.names[b]}"
        groups = [(x, y) for x, y, q in s.segments if a <= x and y <= b]
        lines.append(
            f"{p:>6}  layers {a:>3}-{b:<3} ({len(groups)} group{'s' if len(groups) > 1 else ''})  {names}"[:width]
        )
    return lines


def describe(s: Any) -> dict[str, Any]:
    """The headline numbers of a schedule, for tables and JSON output."""
    return {
        "latency_ms": s.latency_ms,
        "mobile_energy_mj": s.mobile_energy_mj,
        "cloud_ms": s.cloud_ms,
        "bytes_up": s.bytes_up,
        "bytes_down": s.bytes_down,
        "transfers": s.transfers,
        "pattern": s.pattern(),
    }
