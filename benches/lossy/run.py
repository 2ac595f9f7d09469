"""Accuracy of lossy transfer, measured: the OCR recognizer (ΔCER) and BlazeFace (fidelity), tables and plots.

``python benches/lossy/run.py`` runs ``jointdnn-edge accuracy`` twice (the exact command lines are printed and
written into the section), writes ``ocr_rec.json``/``.png`` and ``face_fidelity.json``/``.png`` here, and
replaces its two subsections of "## Lossy transfer" in ``benches/RESULTS.md``. ``--quick`` measures a few
inputs at one cut into a temporary folder and leaves RESULTS.md alone (a smoke test: about half a minute).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / ".cache" / "fixtures"
sys.path.insert(0, str(HERE))

SECTION = "## Lossy transfer"
OCR_TITLE = "### OCR recognizer: ΔCER per cut and option"
FACE_TITLE = "### Fidelity of a second model: BlazeFace face detection"
REC = FIXTURES / "rapidocr" / "ch_PP-OCRv4_rec_infer.onnx"
FACE = FIXTURES / "mediapipe" / "face_detection_short_range.tflite"
#: RELU outputs after residual blocks 4, 8 and 11: a quarter, half and two thirds of the backbone
FACE_CUTS = ("activation_4", "activation_8", "activation_11")


def commands(out: Path, quick: bool) -> dict[str, list[str]]:
    """The two ``jointdnn-edge accuracy`` command lines (arguments after the program name)."""
    ocr = ["accuracy", str(REC), "--task", "ocr", "--count", "24" if quick else "240", "--sizes", "24,32,40"]
    face = ["accuracy", str(FACE), "--task", "fidelity", "--images", "16" if quick else "200"]
    face += ["--fit-images", "8" if quick else "64"]
    if quick:
        ocr += ["--cut", "p2o.Mul.131", "--options", "lossless,q8,pca0.125+q4c"]
        face += ["--cut", "activation_8", "--options", "lossless,q8,pca0.125+q4c"]
    else:
        face += [a for c in FACE_CUTS for a in ("--cut", c)]
        face += ["--options", "lossless,q8,q6,q4,q4c,q2c,pca0.25+q8c,pca0.25+q4c,pca0.125+q4c"]
    return {"ocr_rec": [*ocr, "--json", str(out / "ocr_rec.json")],
            "face_fidelity": [*face, "--json", str(out / "face_fidelity.json")]}  # fmt: skip


def shown(argv: list[str]) -> str:
    """A command line as the section prints it (paths relative to the repository)."""
    parts = [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in argv]
    return "jointdnn-edge " + shlex.join(parts)


def write_subsection(path: Path, title: str, body: str) -> None:
    """Replace the ``### title`` block (up to the next ``###``/``##``) inside :data:`SECTION`, or append it
    at the end of that section (the section is created when missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip() + "\n\n" + SECTION + "\n\n"
        start = text.find(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    end = len(text) if end == -1 else end + 1
    section = text[start:end]
    block = body.rstrip() + "\n\n"
    at = section.find(title + "\n")
    if at == -1:
        section = section.rstrip() + "\n\n" + block
    else:
        nxt = min([i for i in (section.find("\n### ", at + 1), section.find("\n## ", at + 1)) if i != -1] or [-1])
        section = section[:at] + block + ("" if nxt == -1 else section[nxt + 1 :])
    path.write_text((text[:start] + section + text[end:]).rstrip() + "\n", encoding="utf-8")


def _cells(row: dict[str, Any]) -> str:
    """The columns both tables share: cut (layer), shape, option, bytes, 8-bit lossless, reduction."""
    return (
        f"| `{row['cut']}` ({row['layer']}) | {'×'.join(map(str, row['shape']))} | `{row['option']['label']}` | "
        f"{row['bytes']:,.0f} | {row['lossless_8bit_bytes']:,.0f} | "
        f"{row['lossless_8bit_bytes'] / row['bytes']:.1f}× |"
    )


def ocr_section(data: dict[str, Any], command: str, seconds: float) -> str:
    held = data["held_out"]
    pt = 100.0 / held["eval_chars"]
    lines = [
        OCR_TITLE, "",
        f"PP-OCRv4 recognizer (`{data['model']}`, input 1×3×48×320) on {held['eval_texts']} rendered text lines "
        f"({held['eval_chars']} characters, so one character is {pt:.2f} CER points): words and phrases, random "
        f"letters and digits, codes (`K7-3QX`) and numbers (`1,204.50`, `12:45`) in turn, in "
        f"{len(data['fonts'])} fonts ({', '.join(f.removesuffix('.ttf') for f in data['fonts'])}) at "
        f"{'/'.join(map(str, data['sizes']))} pt. Baseline CER of the full model: "
        f"**{100 * data['baseline_cer']:.2f} points**. Options are fitted on {held['fit_texts']} other generated "
        f"lines (overlap with the measured ones: {held['overlap']}), so every ΔCER is on held-out text. "
        "`interval`: 95% percentile bootstrap over the texts (2,000 seeded resamples, paired: the same texts "
        "for the full and the lossy run); `bytes`: per inference, averaged; `8-bit lossless`: the codec's "
        "min/max 8-bit quantization with `auto` coding (JointDNN's baseline).",
        "",
        f"Made by `python benches/lossy/run.py` ({seconds:.0f} s for both tables on the shared 2-core box; "
        "onnxruntime, 1 thread), which runs:",
        "", f"    {command}", "",
        "| cut (layer) | shape | option | bytes | 8-bit lossless | reduction | ΔCER (points) | 95% interval |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in data["rows"]:
        lo, hi = r["delta_cer_ci95"]
        lines.append(f"{_cells(r)} {100 * r['delta_cer']:+.2f} | [{100 * lo:+.2f}, {100 * hi:+.2f}] |")
    lines += ["", "![bytes vs ΔCER](lossy/ocr_rec.png)", ""]
    return "\n".join(lines)


def face_section(data: dict[str, Any], command: str) -> str:
    held, base = data["held_out"], data["baseline"]
    lines = [
        FACE_TITLE, "",
        f"MediaPipe's short-range face detector (`{data['model']}`, TFLite, input 1×128×128×3 in "
        f"[{data['input_range'][0]:g}, {data['input_range'][1]:g}]) split at three single-tensor cuts of its "
        f"backbone, on {held['eval_images']} scenes made from scikit-image's sample photographs (seeded square "
        "crops; zero to two faces of its LFW subset pasted in, so there are faces to find; mirrored half of the "
        f"time). Photos measured: {', '.join(held['eval_photos'])}. Options fitted on {held['fit_images']} scenes "
        f"of other photos ({', '.join(held['fit_photos'])}) and other LFW faces. The full-precision model reports "
        f"{base['detections']} detections on {base['images_with_detections']} of the scenes.",
        "",
        f"Metric (`delta`, task `fidelity`, metric `{data['metric']}`): {data['metric_definition']}. "
        "0 = the same detections as full precision; `interval`: 95% bootstrap over the scenes; `rel. L2`: mean "
        "relative L2 error of the raw outputs (box regressors and score logits).",
        "", f"    {command}", "",
        "| cut (layer) | shape | option | bytes | 8-bit lossless | reduction | delta (%) | 95% interval | rel. L2 |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]  # fmt: skip
    for r in data["rows"]:
        lo, hi = r["delta_ci95"]
        lines.append(
            f"{_cells(r)} {100 * r['delta']:.2f} | [{100 * lo:.2f}, {100 * hi:.2f}] | {r['relative_l2']:.4f} |"
        )
    lines += ["", "![bytes vs fidelity](lossy/face_fidelity.png)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few inputs, one cut, into a temporary folder")
    parser.add_argument("--results", type=Path, default=ROOT / "benches" / "RESULTS.md")
    args = parser.parse_args()
    import plot

    from jointdnn_edge.cli import app

    out = Path(tempfile.mkdtemp(prefix="lossy-bench-")) if args.quick else HERE
    start = time.perf_counter()
    cmds = commands(out, args.quick)
    for name, argv in cmds.items():
        print(shown(argv), flush=True)
        app(argv, standalone_mode=False)
        plot.main(out / f"{name}.json", out / f"{name}.png")
    seconds = time.perf_counter() - start
    print(f"{seconds:.0f} s; tables and plots in {out}")
    if args.quick:
        return
    ocr = json.loads((out / "ocr_rec.json").read_text(encoding="utf-8"))
    face = json.loads((out / "face_fidelity.json").read_text(encoding="utf-8"))
    write_subsection(args.results, OCR_TITLE, ocr_section(ocr, shown(cmds["ocr_rec"]), seconds))
    write_subsection(args.results, FACE_TITLE, face_section(face, shown(cmds["face_fidelity"])))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
