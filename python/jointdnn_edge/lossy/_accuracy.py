"""What a lossy option costs in accuracy, measured: the recognizer split at a cut, the cut tensor sent lossily.

For each cut (a layer after which exactly one activation crosses to the rest
of the model) the model runs as two slices (the project's ONNX slicing):
layers ``0..i`` on the rendered text line, the lossy option applied to the
cut tensor (encode, decode: the bytes counted are the bytes sent), layers
``i+1..end`` on the result. Each option is fitted on activations of other
texts than the ones measured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import codec
from ..errors import ConfigError
from ..models import ModelGraph, executor_for, load_model
from ._codec import decode, encode
from ._ocr import REC_HEIGHT, REC_WIDTH, character_error_rate, ctc_greedy, default_fonts, default_texts, ocr_labels
from ._ocr import render_line as _render
from ._spec import LossyOption, fit, parse_option

__all__ = ["DEFAULT_OPTIONS", "default_cuts", "measure_ocr", "single_tensor_cuts"]

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


def _channel_axis(shape: tuple[int, ...]) -> int:
    """NCHW feature maps: axis 1; sequences ``(N, T, C)`` and the rest: the last axis."""
    return 1 if len(shape) == 4 else len(shape) - 1


def _resolve_cuts(graph: ModelGraph, cuts: Sequence[str] | None) -> list[tuple[int, str]]:
    if cuts is None:
        return default_cuts(graph)
    by_name = {t: i for i, t in single_tensor_cuts(graph)}
    missing = [c for c in cuts if c not in by_name]
    if missing:
        raise ConfigError(f"not a single-tensor cut of {graph.name!r}: {', '.join(missing)}")
    return [(by_name[c], c) for c in cuts]


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

    Text ``j`` is rendered in ``fonts[j % len(fonts)]`` at ``sizes[j % len(sizes)]``;
    options are fitted on ``fit_texts`` (default: 16 seeded random strings,
    none of them among the default texts). Returns the issue's JSON contract:
    ``{"model", "task", "baseline_cer", "texts", "rows": [{"cut", "option",
    "bytes", "lossless_8bit_bytes", "delta_cer", ...}]}``, bytes per inference
    averaged over the texts.
    """
    texts = list(texts) if texts is not None else default_texts(24)
    fit_texts = list(fit_texts) if fit_texts is not None else [t for t in default_texts(32, seed=1000)[1::2]]
    if not texts or not fit_texts or any(not t.strip() for t in texts):
        raise ConfigError("texts and fit texts must be non-empty lines")
    font_paths = [Path(f) for f in fonts] if fonts else default_fonts()
    if not sizes or any(int(s) < 4 for s in sizes):
        raise ConfigError(f"font sizes must be at least 4 points, got {list(sizes)}")
    opts = [parse_option(o) if isinstance(o, str) else o for o in options]
    import onnx

    proto = onnx.load(os.fspath(model))
    labels = ocr_labels(proto)
    shape = (1, 3, REC_HEIGHT, REC_WIDTH)
    graph = load_model(proto, input_shapes={proto.graph.input[0].name: shape}, name=Path(model).stem)
    executor = executor_for(graph, threads=threads)
    in_name, out_name = graph.inputs[0].name, graph.outputs[0].name

    def images(lines: Sequence[str]) -> list[np.ndarray]:
        return [_render(t, font_paths[j % len(font_paths)], int(sizes[j % len(sizes)])) for j, t in enumerate(lines)]

    def read(outputs: list[np.ndarray]) -> float:
        return character_error_rate([ctc_greedy(o[0], labels) for o in outputs], texts)

    eval_images, fit_images = images(texts), images(fit_texts)
    baseline = read([executor.run_model(graph, {in_name: x})[out_name] for x in eval_images])
    last = graph.n - 1
    rows: list[dict[str, Any]] = []
    for i, cut in _resolve_cuts(graph, cuts):
        heads = [executor.run(graph, 0, i, {in_name: x})[cut] for x in eval_images]
        fit_heads = [executor.run(graph, 0, i, {in_name: x})[cut] for x in fit_images]
        axis = _channel_axis(heads[0].shape)
        lossless8 = float(np.mean([len(codec.encode({cut: h}, quantize_bits=8)) for h in heads]))
        for opt in opts:
            spec = fit(fit_heads, opt, axis=axis)
            sent, outs = [], []
            for h in heads:
                data = encode(h, spec)
                sent.append(len(data))
                back = decode(data, spec, h.shape, h.dtype)
                outs.append(executor.run(graph, i + 1, last, {cut: back})[out_name])
            cer = read(outs)
            rows.append(
                {
                    "cut": cut,
                    "layer": i,
                    "shape": list(heads[0].shape),
                    "option": {"label": opt.label, **spec.describe()},
                    "bytes": float(np.mean(sent)),
                    "lossless_8bit_bytes": lossless8,
                    "raw_bytes": int(heads[0].nbytes),
                    "cer": cer,
                    "delta_cer": cer - baseline,
                }
            )
    return {
        "model": graph.name,
        "task": "ocr",
        "baseline_cer": baseline,
        "texts": texts,
        "fit_texts": fit_texts,
        "fonts": [p.name for p in font_paths],
        "sizes": [int(s) for s in sizes],
        "rows": rows,
    }
