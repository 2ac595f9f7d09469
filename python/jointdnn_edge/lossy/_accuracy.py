"""What a lossy option costs in accuracy, measured: the recognizer split at a cut, the cut tensor sent lossily.

For each cut (a layer after which exactly one activation crosses to the rest
of the model) the model runs as two slices (the project's ONNX slicing):
layers ``0..i`` on the rendered text line, the lossy option applied to the
cut tensor (encode, decode: the bytes counted are the bytes sent), layers
``i+1..end`` on the result. Each option is fitted on activations of other
inputs than the ones measured (held out), and every delta comes with a
bootstrap interval over the measured inputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import codec
from ..errors import ConfigError
from ..models import ModelGraph, executor_for, load_model
from ._codec import decode, encode
from ._ocr import (
    REC_HEIGHT,
    REC_WIDTH,
    ctc_greedy,
    default_fonts,
    default_texts,
    disjoint_texts,
    edit_distance,
    ocr_labels,
)
from ._ocr import render_line as _render
from ._spec import LossyOption, fit, parse_option

__all__ = [
    "DEFAULT_OPTIONS",
    "LOSSLESS",
    "CutOutcome",
    "bootstrap_interval",
    "channel_axis",
    "default_cuts",
    "measure_ocr",
    "single_tensor_cuts",
    "sweep_cuts",
]

#: The options a measurement tries by default (see :func:`parse_option`).
DEFAULT_OPTIONS = ("q8", "q6", "q4", "q4c", "q2c", "pca0.25+q8c", "pca0.25+q4c", "pca0.125+q4c")


def single_tensor_cuts(graph: ModelGraph) -> list[tuple[int, str]]:
    """``(i, tensor)`` for every layer ``i`` after which exactly one activation (and no model input) is read later."""
    inputs = {t.name for t in graph.inputs}
    produced = {t.name for layer in graph.layers for t in layer.outputs}
    cuts = []
    for i in range(graph.n - 1):
        ins, _ = graph.slice_io(i + 1, graph.n - 1)
        if len(ins) == 1 and ins[0] in produced and ins[0] not in inputs:
            cuts.append((i, ins[0]))
    return cuts


def default_cuts(graph: ModelGraph, fractions: Sequence[float] = (0.25, 0.5, 0.75)) -> list[tuple[int, str]]:
    """The single-tensor cuts nearest to these fractions of the layers (feature maps of 3 or more dimensions)."""
    cuts = [(i, t) for i, t in single_tensor_cuts(graph) if len(graph.tensor(t).shape) >= 3]
    if not cuts:
        raise ConfigError(f"model {graph.name!r} has no single-tensor cut")
    chosen: list[tuple[int, str]] = []
    for f in fractions:
        best = min(cuts, key=lambda c: abs(c[0] - f * (graph.n - 1)))
        if best not in chosen:
            chosen.append(best)
    return chosen


#: The pseudo-option that sends the cut tensor losslessly (float32 through the frame codec): a table's anchor row,
#: whose delta is exactly 0 by construction.
LOSSLESS = "lossless"


def channel_axis(graph: ModelGraph, shape: tuple[int, ...]) -> int:
    """The channel axis of an activation: NCHW feature maps of ONNX models: axis 1; TFLite (NHWC), sequences
    ``(N, T, C)`` and the rest: the last axis."""
    return 1 if len(shape) == 4 and graph.format == "onnx" else len(shape) - 1


def _resolve_cuts(graph: ModelGraph, cuts: Sequence[str] | None) -> list[tuple[int, str]]:
    if cuts is None:
        return default_cuts(graph)
    by_name = {t: i for i, t in single_tensor_cuts(graph)}
    missing = [c for c in cuts if c not in by_name]
    if missing:
        raise ConfigError(f"not a single-tensor cut of {graph.name!r}: {', '.join(missing)}")
    return [(by_name[c], c) for c in cuts]


def _resolve_options(options: Sequence[str | LossyOption]) -> list[LossyOption | str]:
    """Parsed options; the string :data:`LOSSLESS` stays as it is."""
    return [o if isinstance(o, LossyOption) or o == LOSSLESS else parse_option(o) for o in options]


@dataclass
class CutOutcome:
    """One cut × option of a sweep: what was sent and what the model's tail computed from it."""

    layer: int
    cut: str
    shape: list[int]
    option: dict[str, Any]
    #: bytes sent per input, in input order
    sent: list[int]
    lossless_8bit_bytes: float
    raw_bytes: int
    #: per input, what ``read`` made of the model's outputs computed from the decoded cut tensor
    outputs: list[Any]

    def row(self) -> dict[str, Any]:
        """The table columns every task shares."""
        return {
            "cut": self.cut,
            "layer": self.layer,
            "shape": self.shape,
            "option": self.option,
            "bytes": float(np.mean(self.sent)),
            "lossless_8bit_bytes": self.lossless_8bit_bytes,
            "raw_bytes": self.raw_bytes,
        }


def sweep_cuts(
    graph: ModelGraph,
    executor: Any,
    cuts: Sequence[tuple[int, str]],
    options: Sequence[LossyOption | str],
    feeds: Sequence[dict[str, np.ndarray]],
    fit_feeds: Sequence[dict[str, np.ndarray]],
    read: Callable[[dict[str, np.ndarray]], Any] = lambda outputs: outputs,
) -> Iterator[CutOutcome]:
    """For each cut and option: fit the option on the cut tensor of ``fit_feeds``, then run ``feeds`` as two
    slices with the cut tensor encoded and decoded in between (:data:`LOSSLESS`: the float32 frame codec);
    ``read`` turns each input's outputs into what is kept (e.g. the decoded text)."""
    last = graph.n - 1
    for i, cut in cuts:
        heads = [executor.run(graph, 0, i, f)[cut] for f in feeds]
        fit_heads = [executor.run(graph, 0, i, f)[cut] for f in fit_feeds]
        axis = channel_axis(graph, heads[0].shape)
        lossless8 = float(np.mean([len(codec.encode({cut: h}, quantize_bits=8)) for h in heads]))
        for opt in options:
            sent, outs = [], []
            if opt == LOSSLESS:
                described: dict[str, Any] = {"label": LOSSLESS, "bits": None, "granularity": None, "clip": None,
                                             "keep": None, "channels": heads[0].shape[axis]}  # fmt: skip
            else:
                assert isinstance(opt, LossyOption)
                spec = fit(fit_heads, opt, axis=axis)
                described = {"label": opt.label, **spec.describe()}
            for h in heads:
                if opt == LOSSLESS:
                    data = codec.encode({cut: h})
                    back = codec.decode(data)[cut]
                else:
                    data = encode(h, spec)
                    back = decode(data, spec, h.shape, h.dtype)
                sent.append(len(data))
                outs.append(read(executor.run(graph, i + 1, last, {cut: back})))
            yield CutOutcome(i, cut, list(heads[0].shape), described, sent, lossless8, int(heads[0].nbytes), outs)


def bootstrap_interval(
    numerators: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> list[float]:
    """Percentile bootstrap interval of ``sum(numerators) / sum(weights)`` over the items (resampled with
    replacement, seeded: the same inputs give the same interval). ``weights`` default to 1 (a mean)."""
    num = np.asarray(numerators, dtype=np.float64)
    w = np.ones_like(num) if weights is None else np.asarray(weights, dtype=np.float64)
    if num.ndim != 1 or num.shape != w.shape or num.size == 0:
        raise ConfigError("bootstrap needs as many weights as numerators, at least one")
    idx = np.random.default_rng(seed).integers(0, num.size, (resamples, num.size))
    stats = num[idx].sum(axis=1) / w[idx].sum(axis=1)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return [float(lo), float(hi)]


def measure_ocr(
    model: str | os.PathLike[str],
    *,
    options: Sequence[str | LossyOption] = DEFAULT_OPTIONS,
    texts: Sequence[str] | None = None,
    fit_texts: Sequence[str] | None = None,
    fonts: Sequence[str | os.PathLike[str]] | None = None,
    sizes: Sequence[int] = (28, 36),
    cuts: Sequence[str] | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """The accuracy table of a PaddleOCR recognizer: its CER on ``texts`` and ΔCER per cut × option.

    Text ``j`` is rendered in ``fonts[j % F]`` at ``sizes[(j // F) % S]``
    (every font at every size); options are fitted on ``fit_texts`` (default:
    32 generated lines, words, random strings, codes and numbers, none of
    them among ``texts``). Returns the issue's JSON contract: ``{"model",
    "task", "baseline_cer", "texts", "rows": [{"cut", "option", "bytes",
    "lossless_8bit_bytes", "delta_cer", ...}]}``, bytes per inference
    averaged over the texts, plus per row ``delta_cer_ci95`` (a seeded
    percentile bootstrap over the texts) and ``held_out`` (counts of eval
    and fit texts and characters, and their overlap).
    """
    texts = list(texts) if texts is not None else default_texts(24)
    if not texts or any(not t.strip() for t in texts):
        raise ConfigError("texts must be non-empty lines")
    fit_texts = list(fit_texts) if fit_texts is not None else disjoint_texts(32, texts, seed=1000)
    if not fit_texts or any(not t.strip() for t in fit_texts):
        raise ConfigError("fit texts must be non-empty lines")
    font_paths = [Path(f) for f in fonts] if fonts else default_fonts()
    if not sizes or any(int(s) < 4 for s in sizes):
        raise ConfigError(f"font sizes must be at least 4 points, got {list(sizes)}")
    opts = _resolve_options(options)
    import onnx

    proto = onnx.load(os.fspath(model))
    labels = ocr_labels(proto)
    shape = (1, 3, REC_HEIGHT, REC_WIDTH)
    graph = load_model(proto, input_shapes={proto.graph.input[0].name: shape}, name=Path(model).stem)
    executor = executor_for(graph, threads=threads)
    in_name, out_name = graph.inputs[0].name, graph.outputs[0].name

    def feeds(lines: Sequence[str]) -> list[dict[str, np.ndarray]]:
        nf = len(font_paths)
        return [
            {in_name: _render(t, font_paths[j % nf], int(sizes[(j // nf) % len(sizes)]))} for j, t in enumerate(lines)
        ]

    def text(outputs: dict[str, np.ndarray]) -> str:
        return ctc_greedy(outputs[out_name][0], labels)

    def errors(predictions: Sequence[str]) -> np.ndarray:
        return np.array([edit_distance(p, t) for p, t in zip(predictions, texts)])

    lengths = np.array([len(t) for t in texts])
    eval_feeds = feeds(texts)
    base = errors([text(executor.run_model(graph, f)) for f in eval_feeds])
    baseline = float(base.sum() / lengths.sum())
    rows: list[dict[str, Any]] = []
    fit_feeds = feeds(fit_texts)
    for outcome in sweep_cuts(graph, executor, _resolve_cuts(graph, cuts), opts, eval_feeds, fit_feeds, text):
        err = errors(outcome.outputs)
        cer = float(err.sum() / lengths.sum())
        rows.append(
            {
                **outcome.row(),
                "cer": cer,
                "delta_cer": cer - baseline,
                "delta_cer_ci95": bootstrap_interval(err - base, lengths),
            }
        )
    return {
        "model": graph.name,
        "task": "ocr",
        "baseline_cer": baseline,
        "texts": texts,
        "fit_texts": fit_texts,
        "held_out": {
            "eval_texts": len(texts),
            "eval_chars": int(lengths.sum()),
            "fit_texts": len(fit_texts),
            "overlap": len(set(texts) & set(fit_texts)),
        },
        "fonts": [p.name for p in font_paths],
        "sizes": [int(s) for s in sizes],
        "rows": rows,
    }
