"""Planning under an accuracy budget: the recognizer split on 3G / 4G / Wi-Fi, on the emulated 20x slower phone.

The PP-OCRv4 recognizer's cost table is profiled here (one layer per group,
this CPU with one thread as the cloud, 20x slower as the phone, the demo's
emulation), with transfers sized by the JointDNN baseline: 8-bit
quantization and ``auto`` lossless coding of each layer's output on a
rendered text line. The transfer options and their ΔCER are the measured
accuracy table (``benches/lossy/ocr_rec.json``, and the early cuts of
``ocr_rec_early.json``: ``lossy.measure_ocr(model, cuts=["batch_norm_2.tmp_2", "p2o.Add.3"],
options=("q8", "q6", "q4", "q4c", "q2c", "pca0.5+q4c", "pca0.25+q4c"))``); the cut tensors'
lossless transfers are that table's 8-bit lossless bytes. For each network preset the
script plans cloud-only, lossless JointDNN (no option) and the
accuracy-aware plan at budgets 0, 0.5 and 2 CER points, all with the
session's stateless cloud, and prints a Markdown table (also written to
``benches/lossy/plan_budget.md``) and a plot (``benches/lossy/plan_budget.png``).

Run: ``python benches/lossy/plan_budget.py`` (a couple of minutes: the profile).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from jointdnn_edge import lossy, plan
from jointdnn_edge.codec import compress_costs, layer_samples, profile_codec
from jointdnn_edge.demo import DEFAULT_MOBILE_SLOWDOWN
from jointdnn_edge.models import executor_for, load_model
from jointdnn_edge.planner import transfer_options
from jointdnn_edge.profiler import profile

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
MODEL = ROOT / ".cache" / "fixtures" / "rapidocr" / "ch_PP-OCRv4_rec_infer.onnx"
NETWORKS = ("3g", "4g", "wifi")
BUDGETS = (0.0, 0.005, 0.02)


def recognizer_costs(model: Path):
    """The graph and its cost table on the emulated phone (see the module docs)."""
    import onnx

    proto = onnx.load(str(model))
    graph = load_model(proto, input_shapes={proto.graph.input[0].name: (1, 3, 48, 320)}, name=model.stem)
    ex = executor_for(graph, threads=1)
    line = lossy.render_line("jointdnn edge 2024", lossy.default_fonts()[0], 32)
    feeds = {graph.inputs[0].name: line}
    costs = profile(graph, ex, max_group=1, repeats=3, cloud_speedup=1.0, progress=False)
    prof = profile_codec(layer_samples(graph, [feeds], executor=ex), quantize_bits=8, repeats=1)
    costs = compress_costs(costs, prof)
    costs = costs.replace(mobile_ms=np.asarray(costs.mobile_ms) * DEFAULT_MOBILE_SLOWDOWN, mobile_power_mw=7500.0)
    return graph, costs


def describe(s, names) -> str:
    """Where the schedule cuts (runs) and with which option."""
    runs = " → ".join(f"{p[0].upper()} {a}..{b}" for a, b, p in s.runs())
    if s.lossy:
        runs += "; " + ", ".join(f"`{names[t]}` {o}" for t, o in s.lossy)
    return runs


#: A camera crop of a text line: 48 x 320 RGB pixels at 8 bits, which lossless coding barely shrinks.
CAMERA_INPUT_BYTES = 48 * 320 * 3


def main() -> None:
    table = json.loads((HERE / "ocr_rec.json").read_text(encoding="utf-8"))
    early = HERE / "ocr_rec_early.json"
    if early.exists():  # the early cuts, measured the same way on the same texts
        table["rows"] += json.loads(early.read_text(encoding="utf-8"))["rows"]
    t0 = time.perf_counter()
    graph, costs = recognizer_costs(MODEL)
    profile_s = time.perf_counter() - t0
    # the cut tensors' lossless transfers as the accuracy table measured them (8-bit + auto, averaged over its texts)
    out_bytes = np.array(costs.out_bytes)
    for r in table["rows"]:
        out_bytes[lossy.cut_tensors(graph, [r])[r["cut"]] - 1] = r["lossless_8bit_bytes"]
    costs = costs.replace(out_bytes=out_bytes)
    texts = []
    for title, scenario in (
        (f"rendered line as input ({costs.input_bytes:,.0f} B after 8-bit + lossless coding)", costs),
        (
            f"camera crop as input ({CAMERA_INPUT_BYTES:,} B of 8-bit pixels)",
            costs.replace(input_bytes=CAMERA_INPUT_BYTES),
        ),
    ):
        texts.append(f"**{title}**\n\n" + report(graph, scenario, table, profile_s, title))
    text = "\n\n".join(texts)
    (HERE / "plan_budget.md").write_text(text + "\n", encoding="utf-8")
    print(text)


def report(graph, costs, table, profile_s: float, title: str) -> str:
    """The table of plans for one cost table (and its plot)."""
    tensor_of = lossy.cut_tensors(graph, table)
    names = {t: c for c, t in tensor_of.items()}
    options = transfer_options(table, tensor_of=tensor_of)
    kw = {"cloud_keeps_tensors": False}
    rows, data = [], {}
    t_plan = time.perf_counter()
    for net in NETWORKS:
        cloud = plan(costs, net, force="cloud", **kw)
        base = plan(costs, net, **kw)
        plans = [("cloud-only", cloud), ("lossless JointDNN", base)]
        plans += [
            (f"budget {100 * b:g} pt", plan(costs, net, max_accuracy_loss=b, accuracy=options, **kw)) for b in BUDGETS
        ]
        data[net] = plans
        for label, s in plans:
            rows.append(
                f"| {net} | {label} | {describe(s, names)} | {s.bytes_up:,.0f} | {100 * s.accuracy_loss:.2f} | "
                f"{s.latency_ms:,.0f} | {s.mobile_energy_mj:,.0f} | {base.latency_ms / s.latency_ms:.2f}× | "
                f"{cloud.latency_ms / s.latency_ms:.2f}× | {cloud.mobile_energy_mj / s.mobile_energy_mj:.2f}× |"
            )
    plan_s = time.perf_counter() - t_plan
    head = (
        "| network | plan | runs (layers; lossy cut and option) | bytes up | loss (pt) | latency ms | energy mJ | "
        "vs lossless | latency vs cloud-only | energy vs cloud-only |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    g3 = dict(data["3g"])
    goal = g3["lossless JointDNN"].latency_ms / g3[f"budget {100 * BUDGETS[-1]:g} pt"].latency_ms
    text = "\n".join(
        [
            head,
            *rows,
            "",
            f"Goal (3G, ≥1.5× lower latency than lossless JointDNN): {goal:.2f}× at a budget of "
            f"{100 * BUDGETS[-1]:g} points ({'met' if goal >= 1.5 else 'NOT met'}). "
            f"{graph.n} layers; profile {profile_s:.0f} s; the {len(data) * 5} plans {plan_s:.2f} s.",
        ]
    )
    if "camera" in title:
        plot(data, HERE / "plan_budget.png")
    return text


def plot(data, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = [label for label, _ in next(iter(data.values()))]
    width = 0.8 / len(labels)
    for ax, attr, title in (
        (axes[0], "latency_ms", "latency (ms)"),
        (axes[1], "mobile_energy_mj", "mobile energy (mJ)"),
    ):
        for k, label in enumerate(labels):
            vals = [getattr(dict(plans)[label], attr) for plans in data.values()]
            ax.bar(np.arange(len(data)) + k * width, vals, width, label=label)
        ax.set_xticks(np.arange(len(data)) + 0.4 - width / 2, list(data))
        ax.set_yscale("log")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.suptitle("PP-OCRv4 recognizer, phone emulated 20× slower: plans under an accuracy budget")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
