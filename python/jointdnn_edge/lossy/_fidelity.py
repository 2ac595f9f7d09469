"""A task-agnostic accuracy measure: how far a lossy cut moves a model's outputs from full precision.

The inputs are scenes made from scikit-image's sample photographs (shipped
in the package, nothing downloaded): a seeded crop of a photo, with zero to
two faces of its LFW subset pasted in at seeded places and sizes, so that a
face detector has faces to find. Fitting and measuring use disjoint photos
and disjoint faces. The full-precision outputs are the reference; each cut ×
option is scored by one of three metrics (:data:`METRICS`), as a per-image
disagreement ``d`` in [0, 1] (0: the same), averaged into ``delta``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..models import ModelGraph, executor_for, load_model
from ._accuracy import DEFAULT_OPTIONS, _resolve_cuts, _resolve_options, bootstrap_interval, sweep_cuts
from ._spec import LossyOption

__all__ = [
    "EVAL_PHOTOS",
    "FIT_PHOTOS",
    "METRICS",
    "blazeface_anchors",
    "box_iou",
    "detection_agreement",
    "detections",
    "input_range",
    "mask_iou",
    "measure_fidelity",
    "relative_l2",
    "scenes",
]

#: Photographs the options are fitted on, and the disjoint set they are measured on (only the second has
#: real faces: the astronaut and the cameraman).
FIT_PHOTOS = ("chelsea", "coffee", "rocket", "coins", "brick", "grass", "page", "clock", "cell", "microaneurysms")
EVAL_PHOTOS = ("astronaut", "camera", "immunohistochemistry", "retina", "hubble_deep_field", "moon", "gravel", "text")
#: The LFW subset's first 100 images are faces (25 × 25 grey): the first half for fitting, the second for measuring.
_FIT_FACES, _EVAL_FACES = range(0, 50), range(50, 100)
METRICS = {
    "detection": "1 - mean over images of the agreement of the detections (score >= 0.5, NMS at IoU 0.3): "
    "summed IoU of greedily matched boxes over the number of distinct detections (1 when neither run detects)",
    "mask": "1 - mean over images of the IoU of the masks thresholded at 0.5 (1 when both are empty)",
    "output": "mean over images of the relative L2 error of the outputs, ||y - y_full|| / ||y_full||, capped at 1",
}
#: Input value ranges of known MediaPipe models by file stem prefix (their graphs normalize this way).
_INPUT_RANGES = (
    ("face_detection", (-1.0, 1.0)),
    ("pose_detection", (-1.0, 1.0)),
    ("selfie_segmentation", (0.0, 1.0)),
    ("palm_detection", (0.0, 1.0)),
)
#: SSD anchor layouts of MediaPipe's detectors: strides, 2 anchors per layer; layers of one stride share a grid.
_ANCHOR_STRIDES = ((8, 16, 16, 16), (8, 16, 32, 32, 32), (4,))


def input_range(name: str) -> tuple[float, float]:
    """The value range a model expects its image in: known MediaPipe models by name, else [0, 1]."""
    for prefix, rng in _INPUT_RANGES:
        if name.startswith(prefix):
            return rng
    return (0.0, 1.0)


def _photo(name: str) -> Any:
    """A scikit-image sample photograph as an RGB Pillow image."""
    import skimage.data
    from PIL import Image

    try:
        img = np.asarray(getattr(skimage.data, name)())
    except (AttributeError, OSError, ValueError) as e:
        raise ConfigError(f"scikit-image sample {name!r} cannot be read: {e}") from None
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    if img.dtype != np.uint8:  # boolean or float samples in [0, 1]
        img = np.rint(img.astype(np.float64) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(img), "RGB")


def scenes(
    count: int, hw: tuple[int, int], *, split: str = "eval", seed: int = 0, photos: Sequence[str] | None = None
) -> list[np.ndarray]:
    """``count`` seeded RGB scenes of ``hw`` pixels in [0, 1], ``(H, W, 3)`` float32.

    Scene ``j``: a square crop (half to all of the shorter side, at a seeded
    place) of photo ``j mod P`` of the split's photos (:data:`FIT_PHOTOS` or
    :data:`EVAL_PHOTOS`), resized, with ``j mod 3`` faces of the split's half
    of the LFW faces pasted in (a quarter to half the height), mirrored half
    of the time.
    """
    import skimage.data
    from PIL import Image

    if split not in ("fit", "eval"):
        raise ConfigError(f"split must be 'fit' or 'eval', got {split!r}")
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    names = list(photos) if photos is not None else list(FIT_PHOTOS if split == "fit" else EVAL_PHOTOS)
    lfw = np.asarray(skimage.data.lfw_subset())  # type: ignore[no-untyped-call]  # (200, 25, 25) grey in [0, 1]
    faces = [
        Image.fromarray(np.rint(lfw[i] * 255).astype(np.uint8), "L")
        for i in (_FIT_FACES if split == "fit" else _EVAL_FACES)
    ]
    pictures = {n: _photo(n) for n in dict.fromkeys(names)}
    h, w = hw
    out = []
    for j in range(count):
        rng = np.random.default_rng([seed, j, int(split == "fit")])
        img = pictures[names[j % len(names)]]
        side = int(min(img.size) * rng.uniform(0.5, 1.0))
        left, top = (int(rng.integers(0, d - side + 1)) for d in img.size)
        scene = img.resize((w, h), Image.Resampling.BOX, box=(left, top, left + side, top + side))
        for _ in range(j % 3):
            size = max(4, int(h * rng.uniform(0.25, 0.5)))
            face = faces[int(rng.integers(0, len(faces)))].resize((size, size), Image.Resampling.BILINEAR)
            scene.paste(
                face.convert("RGB"),
                (int(rng.integers(0, max(1, w - size + 1))), int(rng.integers(0, max(1, h - size + 1)))),
            )
        if rng.uniform() < 0.5:
            scene = scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(np.asarray(scene, dtype=np.float32) / np.float32(255.0))
    return out


def _image_layout(shape: tuple[int, ...]) -> tuple[str, tuple[int, int], int]:
    """``("nhwc" | "nchw", (H, W), channels)`` of an image input; :class:`ConfigError` for other inputs."""
    if len(shape) == 4 and shape[0] == 1 and shape[3] in (1, 3):
        return "nhwc", (shape[1], shape[2]), shape[3]
    if len(shape) == 4 and shape[0] == 1 and shape[1] in (1, 3):
        return "nchw", (shape[2], shape[3]), shape[1]
    raise ConfigError(f"fidelity needs one image input of shape (1, H, W, 1|3) or (1, 1|3, H, W), got {shape}")


def _as_input(scene: np.ndarray, layout: str, channels: int, lo: float, hi: float) -> np.ndarray:
    x = scene.mean(axis=-1, keepdims=True) if channels == 1 else scene
    x = (x * (hi - lo) + lo).astype(np.float32)
    return np.ascontiguousarray(x[None] if layout == "nhwc" else x.transpose(2, 0, 1)[None])


# ------------------------------------------------------------------ metrics
def blazeface_anchors(hw: tuple[int, int], count: int) -> np.ndarray | None:
    """Anchor centres ``(count, 2)`` as (x, y) fractions of the image for MediaPipe's SSD layouts, in output
    order (per stride: grid rows, columns, then the anchors of a cell); None when no layout gives ``count``."""
    h, w = hw
    for strides in _ANCHOR_STRIDES:
        centres = []
        for stride in dict.fromkeys(strides):
            per_cell = 2 * strides.count(stride)
            gh, gw = -(-h // stride), -(-w // stride)
            ys, xs = np.meshgrid((np.arange(gh) + 0.5) / gh, (np.arange(gw) + 0.5) / gw, indexing="ij")
            grid = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)
            centres.append(np.repeat(grid, per_cell, axis=0))
        anchors = np.concatenate(centres)
        if anchors.shape[0] == count:
            return anchors
    return None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``(n, 4)`` with every box of ``b`` ``(m, 4)``, boxes as (x0, y0, x1, y1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.asarray(np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0))


def detections(
    regressors: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    hw: tuple[int, int],
    *,
    threshold: float = 0.5,
    nms_iou: float = 0.3,
) -> np.ndarray:
    """The boxes ``(n, 4)`` a MediaPipe SSD detector reports: anchors whose score (sigmoid of the logit, clipped
    to ±100) reaches ``threshold``, decoded (centre offset and size in input pixels), greedy NMS, best first."""
    h, w = hw
    reg = np.asarray(regressors, np.float64).reshape(anchors.shape[0], -1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64).reshape(-1), -100, 100)))
    keep = np.flatnonzero(scores >= threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    cx = anchors[keep, 0] + reg[keep, 0] / w
    cy = anchors[keep, 1] + reg[keep, 1] / h
    bw, bh = reg[keep, 2] / w, reg[keep, 3] / h
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    chosen: list[int] = []
    for k in range(len(boxes)):
        if not chosen or box_iou(boxes[k], boxes[chosen]).max() <= nms_iou:
            chosen.append(k)
    return boxes[chosen]


def detection_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """Summed IoU of greedily matched pairs (highest IoU first, each box once) over the number of distinct
    detections (``n + m - matched``); 1.0 when both are empty, and for identical box sets."""
    n, m = len(reference), len(other)
    if n == 0 and m == 0:
        return 1.0
    if n == 0 or m == 0:
        return 0.0
    iou = box_iou(reference, other)
    pairs = sorted(((float(iou[i, j]), i, j) for i in range(n) for j in range(m) if iou[i, j] > 0), reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = 0.0
    for v, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total += v
    return total / (n + m - len(used_a))


def mask_iou(reference: np.ndarray, other: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of the two masks thresholded at ``threshold``; 1.0 when both are empty."""
    a, b = np.asarray(reference) >= threshold, np.asarray(other) >= threshold
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union


def relative_l2(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    """``||y - y_ref|| / ||y_ref||`` over all outputs together (0 when equal; 1 when the reference is all zero
    and the other is not)."""
    ref = np.concatenate([np.asarray(r, np.float64).reshape(-1) for r in reference])
    got = np.concatenate([np.asarray(o, np.float64).reshape(-1) for o in other])
    diff, norm = float(np.linalg.norm(got - ref)), float(np.linalg.norm(ref))
    if norm == 0.0:
        return 0.0 if diff == 0.0 else 1.0
    return diff / norm


def _max_abs_diff(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(o, np.float64) - r))) for r, o in zip(reference, other))


def _choose_metric(graph: ModelGraph, hw: tuple[int, int], metric: str) -> tuple[str, Any]:
    """The metric and what it needs: detection (the anchors and the two outputs' names), mask (the output)."""
    outs = graph.outputs
    anchors = None
    names: tuple[str, str] | None = None
    if len(outs) == 2:
        by_last = sorted(outs, key=lambda t: t.shape[-1])
        scores_t, reg_t = by_last
        if len(scores_t.shape) == 3 and scores_t.shape[-1] == 1 and reg_t.shape[:2] == scores_t.shape[:2]:
            if reg_t.shape[-1] >= 4:
                anchors = blazeface_anchors(hw, scores_t.shape[1])
                names = (reg_t.name, scores_t.name)
    is_mask = len(outs) == 1 and len(outs[0].shape) == 4 and 1 in (outs[0].shape[1], outs[0].shape[3])
    if metric == "auto":
        metric = "detection" if anchors is not None else "mask" if is_mask else "output"
    if metric == "detection":
        if anchors is None:
            raise ConfigError(f"{graph.name!r} is not a MediaPipe SSD detector (scores (1, A, 1) and boxes (1, A, K))")
        return metric, (anchors, names)
    if metric == "mask" and not is_mask:
        raise ConfigError(f"{graph.name!r} has no single-channel mask output")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose auto or one of {tuple(METRICS)}")
    return metric, None


def measure_fidelity(
    model: str | os.PathLike[str],
    *,
    options: Sequence[str | LossyOption] = DEFAULT_OPTIONS,
    images: int | Sequence[np.ndarray] = 64,
    fit_images: int | Sequence[np.ndarray] = 32,
    cuts: Sequence[str] | None = None,
    metric: str = "auto",
    value_range: tuple[float, float] | None = None,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """How far each cut × option moves a model's outputs from its full-precision outputs (task ``fidelity``).

    ``images``/``fit_images``: a count of generated :func:`scenes` (eval and
    fit splits: disjoint photos and faces), or explicit model inputs.
    ``metric``: ``auto`` (detection for MediaPipe SSD detectors, mask for a
    single one-channel output, else output) or a key of :data:`METRICS`.
    Returns ``{"model", "task": "fidelity", "metric", "metric_definition",
    "held_out", "baseline", "rows": [{"cut", "option", "bytes",
    "lossless_8bit_bytes", "delta", "delta_ci95", "max_abs_diff",
    "relative_l2", ...}]}``; ``delta`` 0 means the same outputs.
    """
    graph = load_model(os.fspath(model), name=Path(model).stem)
    if len(graph.inputs) != 1:
        raise ConfigError(f"fidelity needs a model with one image input; {graph.name!r} has {len(graph.inputs)}")
    (inp,) = graph.inputs
    layout, hw, channels = _image_layout(tuple(inp.shape))
    lo, hi = value_range if value_range is not None else input_range(graph.name)
    if not lo < hi:
        raise ConfigError(f"input range must have lo < hi, got {(lo, hi)}")
    metric, need = _choose_metric(graph, hw, metric)
    opts = _resolve_options(options)

    def feeds(spec: int | Sequence[np.ndarray], split: str) -> list[dict[str, np.ndarray]]:
        if isinstance(spec, int):
            return [
                {inp.name: _as_input(s, layout, channels, lo, hi)} for s in scenes(spec, hw, split=split, seed=seed)
            ]
        arrays = [np.asarray(a, dtype=np.float32) for a in spec]
        if not arrays or any(a.shape != tuple(inp.shape) for a in arrays):
            raise ConfigError(f"explicit {split} inputs must be a non-empty list of arrays of shape {inp.shape}")
        return [{inp.name: a} for a in arrays]

    executor = executor_for(graph, threads=threads)
    eval_feeds, fit_feeds = feeds(images, "eval"), feeds(fit_images, "fit")
    full = [executor.run_model(graph, f) for f in eval_feeds]
    out_names = [t.name for t in graph.outputs]

    def read(outputs: dict[str, np.ndarray]) -> Any:
        if metric == "detection":
            anchors, (reg, score) = need
            return detections(outputs[reg], outputs[score], anchors, hw)
        return outputs[out_names[0]]

    reference = [read(o) for o in full]

    def disagreement(ref: Any, got: Any, ref_out: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> float:
        if metric == "detection":
            return 1.0 - detection_agreement(ref, got)
        if metric == "mask":
            return 1.0 - mask_iou(ref, got)
        return min(1.0, relative_l2([ref_out[n] for n in out_names], [out[n] for n in out_names]))

    rows: list[dict[str, Any]] = []
    for outcome in sweep_cuts(graph, executor, _resolve_cuts(graph, cuts), opts, eval_feeds, fit_feeds):
        d = [disagreement(r, read(o), f, o) for r, f, o in zip(reference, full, outcome.outputs)]
        pairs = [([f[n] for n in out_names], [o[n] for n in out_names]) for f, o in zip(full, outcome.outputs)]
        rows.append(
            {
                **outcome.row(),
                "delta": float(np.mean(d)),
                "delta_ci95": bootstrap_interval(d),
                "max_abs_diff": max(_max_abs_diff(a, b) for a, b in pairs),
                "relative_l2": float(np.mean([relative_l2(a, b) for a, b in pairs])),
            }
        )
    baseline: dict[str, Any] = {}
    if metric == "detection":
        baseline = {
            "detections": int(sum(len(r) for r in reference)),
            "images_with_detections": sum(len(r) > 0 for r in reference),
        }
    elif metric == "mask":
        baseline = {"mask_fraction": float(np.mean([np.mean(np.asarray(r) >= 0.5) for r in reference]))}
    return {
        "model": graph.name,
        "task": "fidelity",
        "metric": metric,
        "metric_definition": METRICS[metric],
        "input_range": [lo, hi],
        "held_out": {
            "eval_images": len(eval_feeds),
            "fit_images": len(fit_feeds),
            "eval_photos": list(EVAL_PHOTOS) if isinstance(images, int) else None,
            "fit_photos": list(FIT_PHOTOS) if isinstance(fit_images, int) else None,
            "seed": seed,
        },
        "baseline": baseline,
        "rows": rows,
    }
