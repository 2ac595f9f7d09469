"""Plot bytes per inference against ΔCER for each cut and lossy option (``benches/lossy/ocr_rec.json``).

Data: ``jointdnn-edge accuracy ch_PP-OCRv4_rec_infer.onnx --task ocr --json benches/lossy/ocr_rec.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent


def main(src: Path = HERE / "ocr_rec.json", out: Path = HERE / "ocr_rec.png") -> None:
    data = json.loads(src.read_text(encoding="utf-8"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cut in dict.fromkeys(r["cut"] for r in data["rows"]):
        rows = [r for r in data["rows"] if r["cut"] == cut]
        base = rows[0]["lossless_8bit_bytes"]
        ax.scatter([base / r["bytes"] for r in rows], [100 * r["delta_cer"] for r in rows], label=cut)
        for r in rows:
            ax.annotate(r["option"]["label"], (base / r["bytes"], 100 * r["delta_cer"]), fontsize=6)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("reduction over 8-bit lossless (×)")
    ax.set_ylabel("ΔCER (points)")
    ax.set_title(f"{data['model']}: baseline CER {100 * data['baseline_cer']:.2f} points, {len(data['texts'])} texts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:]))
