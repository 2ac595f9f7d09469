"""Plot bytes against the accuracy cost of each cut and lossy option, from an ``accuracy --json`` table.

Data: ``benches/lossy/run.py`` (or ``jointdnn-edge accuracy MODEL --task ocr|fidelity --json FILE``);
``python benches/lossy/plot.py TABLE.json OUT.png``. Error bars: the 95% bootstrap interval over the inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent


def _axis(data: dict[str, Any]) -> tuple[str, str, float, str]:
    """(delta key, interval key, scale, y label) of a table's task."""
    if data["task"] == "ocr":
        return "delta_cer", "delta_cer_ci95", 100.0, "ΔCER (points)"
    return "delta", "delta_ci95", 100.0, f"{data['metric']} disagreement with full precision (%)"


def _title(data: dict[str, Any]) -> str:
    held = data["held_out"]
    if data["task"] == "ocr":
        return (
            f"{data['model']}: baseline CER {100 * data['baseline_cer']:.2f} points, "
            f"{held['eval_texts']} texts ({held['eval_chars']} chars), fitted on {held['fit_texts']} others"
        )
    return f"{data['model']}: {held['eval_images']} scenes, fitted on {held['fit_images']} others"


def main(src: Path = HERE / "ocr_rec.json", out: Path = HERE / "ocr_rec.png") -> None:
    data = json.loads(src.read_text(encoding="utf-8"))
    key, ci, scale, ylabel = _axis(data)
    rows = [r for r in data["rows"] if r["option"]["label"] != "lossless"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for cut in dict.fromkeys(r["cut"] for r in rows):
        mine = [r for r in rows if r["cut"] == cut]
        xs = [r["lossless_8bit_bytes"] / r["bytes"] for r in mine]
        ys = [scale * r[key] for r in mine]
        err = [[y - scale * r[ci][0] for y, r in zip(ys, mine)], [scale * r[ci][1] - y for y, r in zip(ys, mine)]]
        ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=2, label=cut, alpha=0.8)
        for x, y, r in zip(xs, ys, mine):
            ax.annotate(r["option"]["label"], (x, y), fontsize=6)
    if data["task"] == "ocr":
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("reduction over 8-bit lossless (×)")
    ax.set_ylabel(ylabel)
    ax.set_title(_title(data), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
