"""Benchmark the activation codecs on real post-ReLU activations.

Inputs are real photographs that ship inside scikit-image (astronaut, coffee,
chelsea). Models:

* trained CNNs the test fixtures fetch (``python tests/fixtures/fetch.py``):
  PP-OCR text detection and direction classification (ONNX, run with
  onnxruntime; their ReLU outputs are exposed as extra graph outputs) and
  MediaPipe BlazeFace / hand / pose networks (TFLite, run with LiteRT keeping
  every intermediate tensor; their ReLU is fused into the convolutions, so a
  post-ReLU tensor is a convolution or ReLU output whose minimum is exactly 0);
* the paper's AlexNet and VGG16 from ``jointdnn_edge.zoo`` (``small`` size),
  whose weights are random (seeded He-normal): their activations have the
  real networks' shapes but not trained statistics, so they are summarised as
  a separate group.

For every post-ReLU layer of at least ``--min-bytes`` bytes (smaller ones are
SE-block vectors and the like, which the paper also leaves uncompressed) it
reports the zero ratio and, per codec, the compression ratio and encode/decode
MB/s, twice: on the float32 tensor (lossless) and on its 8-bit quantization
(the paper's setting), where the paper's PNG method runs beside the others.
Throughputs count uncompressed bytes (float32 or uint8) per second of
``jointdnn_edge.codec.encode``/``decode`` (frame and checksum included), one
thread. Every round trip is checked bit for bit.

Usage: python benches/codec.py [--quick] [--no-zoo] [--level N] [--repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from jointdnn_edge import codec  # noqa: E402

FIXTURES = ROOT / ".cache" / "fixtures"
PHOTOS = ("astronaut", "coffee", "chelsea")
F32_CODECS = ("raw", "zstd", "sparse", "auto")
Q8_CODECS = ("png", "zstd", "sparse", "auto")
# Paper (JointDNN, section 4.2): PNG on 8-bit AlexNet/VGG16 layers, 3.5x on average, 5.8x at best.
PAPER_AVG, PAPER_BEST = 3.5, 5.8
ZOO_PREFIX = "zoo:"

Runner = Callable[[np.ndarray], list[tuple[str, np.ndarray]]]


# ------------------------------------------------------------------ inputs
def photos(size: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """The scikit-image photographs resized to (height, width), RGB uint8."""
    import skimage.data
    from PIL import Image

    h, w = size
    return [(n, np.asarray(Image.fromarray(getattr(skimage.data, n)()).resize((w, h), Image.BILINEAR))) for n in PHOTOS]


def onnx_relu_outputs(model: Path | bytes, imagenet: bool = False) -> tuple[tuple[int, int] | None, Runner]:
    """The model's static input size (if any) and a function mapping an RGB photo to its ReLU outputs."""
    import onnx
    import onnxruntime as ort

    m = onnx.load_model_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    names = [n.output[0] for n in m.graph.node if n.op_type == "Relu"]
    for name in names:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dims = inp.shape[-2:]
    size = (int(dims[0]), int(dims[1])) if all(isinstance(d, int) for d in dims) else None
    mean, std = (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])) if imagenet else (0.5, 0.5)

    def run(img: np.ndarray) -> list[tuple[str, np.ndarray]]:
        x = ((img.astype(np.float32) / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)[None]
        return list(zip(names, sess.run(names, {inp.name: np.ascontiguousarray(x)})))

    return size, run


def tflite_relu_outputs(path: Path) -> tuple[tuple[int, int], Runner]:
    """Input size and a function mapping an RGB photo to the post-ReLU intermediate tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(
            model_path=str(path),
            experimental_preserve_all_tensors=True,
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    _, h, w, _ = detail["shape"]
    kinds = ("CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "RELU6", "ADD")
    ops = [o for o in it._get_ops_details() if o["op_name"] in kinds]
    details = {d["index"]: d for d in it.get_tensor_details()}

    def run(img: np.ndarray) -> list[tuple[str, np.ndarray]]:
        it.set_tensor(detail["index"], (img.astype(np.float32) / 127.5 - 1.0)[None])
        it.invoke()
        out = []
        for o in ops:
            for t in o["outputs"]:
                d = details[t]
                if d["dtype"] != np.float32 or len(d["shape"]) != 4:
                    continue
                a = it.get_tensor(t)
                if a.size and a.min() == 0.0:  # clamped at exactly 0: a (fused) ReLU output
                    label = f"op{o['index']} {o['op_name'].lower()} {d['name'].split(';')[0][-32:]}"
                    out.append((label, np.ascontiguousarray(a.transpose(0, 3, 1, 2))))
        return out

    return (int(h), int(w)), run


def collect(min_bytes: int, quick: bool, zoo: bool) -> dict[str, list[tuple[str, list[np.ndarray]]]]:
    """model name -> [(layer name, [activation per photo])]; zoo models are named ``zoo:<name>``."""
    plans: list[tuple[str, Callable[[], tuple[tuple[int, int] | None, Runner]]]] = []
    ocr = FIXTURES / "rapidocr"
    mp = FIXTURES / "mediapipe"
    if (ocr / "ch_PP-OCRv4_det_infer.onnx").exists():
        det, cls = ocr / "ch_PP-OCRv4_det_infer.onnx", ocr / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
        plans.append(("PP-OCRv4-det", lambda: ((480, 480), onnx_relu_outputs(det)[1])))
        plans.append(("PP-OCR-cls", lambda: ((48, 192), onnx_relu_outputs(cls)[1])))
    for name, file in (
        ("BlazeFace", "face_detection_short_range.tflite"),
        ("BlazeFace-full", "face_detection_full_range_sparse.tflite"),
        ("HandLandmark", "hand_landmark_full.tflite"),
        ("PoseDetection", "pose_detection.tflite"),
    ):
        if (mp / file).exists():
            plans.append((name, lambda f=file: tflite_relu_outputs(mp / f)))  # type: ignore[misc]
    if not plans:
        raise SystemExit("no model fixtures found: run `python tests/fixtures/fetch.py` first")
    if quick:
        plans = plans[:2]
    if zoo:
        try:
            from jointdnn_edge import zoo as zoo_models
        except ImportError:  # the zoo is another package area; run without it when it is absent
            zoo_models = None
        for name in ("alexnet",) if quick else ("alexnet", "vgg16"):
            if zoo_models is not None:
                built = zoo_models.build(name, size="small")
                plans.append((ZOO_PREFIX + name, lambda b=built: onnx_relu_outputs(b, imagenet=True)))  # type: ignore[misc]
    models: dict[str, list[tuple[str, list[np.ndarray]]]] = {}
    for name, make in plans:
        size, run = make()
        assert size is not None
        per_layer: dict[str, list[np.ndarray]] = {}
        for _photo, img in photos(size)[: 1 if quick else None]:
            for layer, a in run(img):
                if a.nbytes >= min_bytes:
                    per_layer.setdefault(layer, []).append(np.array(a))
        models[name] = list(per_layer.items())
    return models


# ------------------------------------------------------------ measurement
@dataclass
class Cell:
    raw: int = 0
    enc: int = 0
    enc_s: float = 0.0
    dec_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.raw / self.enc

    @property
    def enc_mbs(self) -> float:
        return self.raw / 1e6 / self.enc_s

    @property
    def dec_mbs(self) -> float:
        return self.raw / 1e6 / self.dec_s


@dataclass
class Row:
    model: str
    layer: str
    shape: tuple[int, ...]
    zr: float
    f32: dict[str, Cell] = field(default_factory=dict)
    q8: dict[str, Cell] = field(default_factory=dict)
    q8_err: float = 0.0


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """Result and median wall time of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def measure(model: str, layer: str, acts: list[np.ndarray], level: int, repeats: int) -> Row:
    row = Row(model, layer, acts[0].shape, statistics.fmean(codec.zero_ratio(a) for a in acts))
    errs = []
    for a in acts:
        for c in F32_CODECS:
            frame, te = timed(lambda c=c, a=a: codec.encode({"x": a}, codec=c, level=level), repeats)
            back, td = timed(lambda f=frame: codec.decode(f), repeats)
            assert np.array_equal(back["x"].view(np.uint8), a.view(np.uint8)), (model, layer, c)
            cell = row.f32.setdefault(c, Cell())
            cell.raw += a.nbytes
            cell.enc += len(frame)
            cell.enc_s += te
            cell.dec_s += td
        qt = codec.quantize(a, 8)
        errs.append(codec.quantization_error(a, qt).max_abs / max(float(a.max()), 1e-30))
        for c in Q8_CODECS:
            reps = 1 if c == "png" else repeats  # PNG is slow; one run is a stable enough figure
            frame, te = timed(lambda c=c, qt=qt: codec.encode({"x": qt}, codec=c, level=level), reps)
            back, td = timed(lambda f=frame: codec.decode(f, dequantize=False), reps)
            assert np.array_equal(back["x"].q, qt.q), (model, layer, c)
            cell = row.q8.setdefault(c, Cell())
            cell.raw += qt.q.nbytes
            cell.enc += len(frame)
            cell.enc_s += te
            cell.dec_s += td
    row.q8_err = max(errs)
    return row


# ---------------------------------------------------------------- report
def table(rows: list[Row], kind: str, codecs: tuple[str, ...]) -> list[str]:
    head = "| model | layer | shape | ZR | " + " | ".join(f"{c} ratio (enc/dec MB/s)" for c in codecs) + " |"
    lines = [head, "|" + "---|" * (4 + len(codecs))]
    for r in rows:
        cells = getattr(r, kind)
        body = " | ".join(f"{cells[c].ratio:.2f} ({cells[c].enc_mbs:.0f}/{cells[c].dec_mbs:.0f})" for c in codecs)
        shape = "x".join(str(s) for s in r.shape)
        lines.append(f"| {r.model} | {r.layer} | {shape} | {r.zr:.2f} | {body} |")
    return lines


def totals(rows: list[Row], kind: str, c: str) -> Cell:
    t = Cell()
    for r in rows:
        x = getattr(r, kind)[c]
        t.raw += x.raw
        t.enc += x.enc
        t.enc_s += x.enc_s
        t.dec_s += x.dec_s
    return t


def summary(rows: list[Row], title: str) -> tuple[list[str], dict[str, Any]]:
    """Summary tables of one group of layers and the targets checked on it."""
    out: list[str] = [f"### {title}: {len(rows)} layers", ""]
    res: dict[str, Any] = {"layers": len(rows), "q8": {}, "f32": {}}
    png = totals(rows, "q8", "png")
    out += [
        "8-bit (quantized) activations (mean/best: over layers; aggregate: all bytes together):",
        "",
        "| codec | mean ratio | best ratio | aggregate ratio | enc MB/s | dec MB/s | enc vs PNG | dec vs PNG |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in Q8_CODECS:
        ratios = [r.q8[c].ratio for r in rows]
        t = totals(rows, "q8", c)
        d = res["q8"][c] = {
            "mean_ratio": statistics.fmean(ratios),
            "best_ratio": max(ratios),
            "aggregate_ratio": t.ratio,
            "enc_mbs": t.enc_mbs,
            "dec_mbs": t.dec_mbs,
            "enc_vs_png": t.enc_mbs / png.enc_mbs,
            "dec_vs_png": t.dec_mbs / png.dec_mbs,
            "layers_beating_png": sum(r.q8[c].ratio >= r.q8["png"].ratio for r in rows) / len(rows),
        }
        out.append(
            f"| {c} | {d['mean_ratio']:.2f} | {d['best_ratio']:.2f} | {d['aggregate_ratio']:.2f} | "
            f"{d['enc_mbs']:.0f} | {d['dec_mbs']:.0f} | {d['enc_vs_png']:.1f}x | {d['dec_vs_png']:.1f}x |"
        )
    out += [
        "",
        "float32 activations, lossless:",
        "",
        "| codec | mean ratio | median ratio | min ratio | layers >= 2x | enc MB/s | dec MB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in F32_CODECS:
        ratios = [r.f32[c].ratio for r in rows]
        t = totals(rows, "f32", c)
        d = res["f32"][c] = {
            "mean_ratio": statistics.fmean(ratios),
            "median_ratio": statistics.median(ratios),
            "min_ratio": min(ratios),
            "share_ge_2x": sum(x >= 2 for x in ratios) / len(ratios),
            "enc_mbs": t.enc_mbs,
            "dec_mbs": t.dec_mbs,
        }
        out.append(
            f"| {c} | {d['mean_ratio']:.2f} | {d['median_ratio']:.2f} | {d['min_ratio']:.2f} | "
            f"{100 * d['share_ge_2x']:.0f}% | {d['enc_mbs']:.0f} | {d['dec_mbs']:.0f} |"
        )
    a, f, p = res["q8"]["auto"], res["f32"]["auto"], res["q8"]["png"]
    zrs = [r.zr for r in rows]
    typical = [r.f32["auto"].ratio for r in rows if r.zr >= 0.5]
    if typical:
        f32_typical = (
            f"on the {len(typical)} layers with >= 50% zeros (the paper's post-ReLU range is 50-90%): "
            f"min {min(typical):.2f}, median {statistics.median(typical):.2f} "
            f"({'met' if min(typical) >= 2 else 'NOT met'})"
        )
    else:
        f32_typical = "no layer has >= 50% zeros"
    out += [
        "",
        "Targets (auto codec):",
        "",
        f"- 8-bit mean ratio {a['mean_ratio']:.2f} (paper's PNG {PAPER_AVG}; PNG in this run {p['mean_ratio']:.2f}): "
        f"{'met' if a['mean_ratio'] >= PAPER_AVG else 'NOT met'}; auto >= PNG on "
        f"{100 * a['layers_beating_png']:.0f}% of layers",
        f"- 8-bit best ratio {a['best_ratio']:.2f} (paper's PNG {PAPER_BEST}; PNG in this run {p['best_ratio']:.2f}): "
        f"{'met' if a['best_ratio'] >= PAPER_BEST else 'NOT met'}",
        f"- 8-bit throughput vs PNG: encode {a['enc_vs_png']:.1f}x, decode {a['dec_vs_png']:.1f}x (target >= 5x): "
        f"encode {'met' if a['enc_vs_png'] >= 5 else 'NOT met'}, decode {'met' if a['dec_vs_png'] >= 5 else 'NOT met'}",
        f"- float32 lossless: median ratio {f['median_ratio']:.2f}, {100 * f['share_ge_2x']:.0f}% of layers >= 2x; "
        + f32_typical,
        f"- zero ratio: mean {statistics.fmean(zrs):.2f}, range {min(zrs):.2f}..{max(zrs):.2f}",
        "",
    ]
    return out, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two trained models and AlexNet, one photo (a smoke run)")
    ap.add_argument("--no-zoo", action="store_true", help="leave out the zoo models (random weights)")
    ap.add_argument("--level", type=int, default=codec.DEFAULT_LEVEL, help="zstd level")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    ap.add_argument("--min-bytes", type=int, default=16384, help="skip float32 layers smaller than this")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()

    from rich.progress import Progress

    models = collect(args.min_bytes, args.quick, not args.no_zoo)
    jobs = [(m, layer, acts) for m, layers in models.items() for layer, acts in layers]
    rows: list[Row] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("measuring", total=len(jobs))
        for m, layer, acts in jobs:
            progress.update(task, description=f"{m} {layer[:40]}")
            rows.append(measure(m, layer, acts, args.level, args.repeats))
            progress.advance(task)

    import PIL
    import zstandard

    cpu = platform.processor() or platform.machine()
    libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
    print(f"# codec benchmark: {platform.platform()}, {cpu}, python {platform.python_version()}")
    print(
        f"# zstandard {zstandard.__version__} (libzstd {libzstd}), Pillow {PIL.__version__}, numpy {np.__version__}; "
        f"zstd level {args.level}; photos {', '.join(PHOTOS[: 1 if args.quick else None])}; "
        f"{len(rows)} post-ReLU layers >= {args.min_bytes} bytes in {len(models)} models"
    )
    print()
    print("float32, lossless: ratio (encode/decode MB/s)")
    print()
    print("\n".join(table(rows, "f32", F32_CODECS)))
    print()
    err = max(r.q8_err for r in rows) * 100
    print(f"8-bit (quantize(x, 8), max error <= {err:.2f}% of the layer's max): ratio vs uint8 bytes (enc/dec MB/s)")
    print()
    print("\n".join(table(rows, "q8", Q8_CODECS)))
    print()
    trained = [r for r in rows if not r.model.startswith(ZOO_PREFIX)]
    zoo_rows = [r for r in rows if r.model.startswith(ZOO_PREFIX)]
    res: dict[str, Any] = {}
    groups = [("Trained CNNs", trained), ("Zoo models (random weights)", zoo_rows), ("All layers", rows)]
    for title, group in groups:
        if group and (group is rows or len(group) != len(rows)):
            lines, res[title] = summary(group, title)
            print("\n".join(lines))
    if args.json:
        res["layers"] = [
            {
                "model": r.model,
                "layer": r.layer,
                "shape": list(r.shape),
                "zero_ratio": r.zr,
                "f32": {c: {"ratio": x.ratio, "enc_mbs": x.enc_mbs, "dec_mbs": x.dec_mbs} for c, x in r.f32.items()},
                "q8": {c: {"ratio": x.ratio, "enc_mbs": x.enc_mbs, "dec_mbs": x.dec_mbs} for c, x in r.q8.items()},
            }
            for r in rows
        ]
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
