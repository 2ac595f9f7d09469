"""Lossy transfer of a cut tensor: quantization and a channel projection, with what they cost in accuracy.

An option (:class:`LossyOption`, e.g. ``parse_option("pca0.25+q4c")``) is
fitted on sample activations of one tensor into a :class:`LossySpec`
(:func:`fit`): the clip ranges of uniform ``bits``-bit quantization (per tensor
or per channel; min/max, a percentile or the MSE-best clip) and, optionally,
a channel projection (PCA over channels, ``k`` of ``C`` kept) applied on the
phone and undone on the cloud. The spec's JSON is what both sides read.

>>> import numpy as np
>>> from jointdnn_edge import lossy
>>> x = np.random.default_rng(0).standard_normal((1, 8, 4, 4)).astype(np.float32)
>>> spec = lossy.fit(x, "q4c")
>>> data = lossy.encode(x, spec)        # 16-byte header + a frame of the packed 4-bit codes
>>> y = lossy.decode(data, lossy.LossySpec.from_json(spec.to_json()), x.shape)
>>> bool(np.abs(y - x).max() <= spec.steps.max() / 2 + 1e-6)
True

:func:`measure_ocr` measures the character error rate a PaddleOCR
recognizer loses per cut and option, :func:`measure_fidelity` how far any
image model's outputs move from full precision (``docs/lossy.md``). Decoding untrusted
bytes is bounded and typed: :class:`~jointdnn_edge.CodecError`,
:class:`~jointdnn_edge.FrameTooLargeError`, and
:class:`~jointdnn_edge.ConfigError` for a bad spec.
"""

from __future__ import annotations

from ._accuracy import DEFAULT_OPTIONS, LOSSLESS, bootstrap_interval, default_cuts, measure_ocr, single_tensor_cuts
from ._codec import HEADER_BYTES, decode, encode, pack_codes, packed_bytes, unpack_codes
from ._fidelity import (
    EVAL_PHOTOS,
    FIT_PHOTOS,
    METRICS,
    detection_agreement,
    mask_iou,
    measure_fidelity,
    relative_l2,
    scenes,
)
from ._fitting import cut_tensors, fit_table, spec_for
from ._ocr import (
    TEXT_KINDS,
    character_error_rate,
    ctc_greedy,
    default_fonts,
    default_texts,
    disjoint_texts,
    edit_distance,
    ocr_labels,
    render_line,
)
from ._spec import CLIP_METHODS, GRANULARITIES, SPEC_VERSION, LossyOption, LossySpec, Projection, fit, parse_option

__all__ = [
    "CLIP_METHODS",
    "DEFAULT_OPTIONS",
    "EVAL_PHOTOS",
    "FIT_PHOTOS",
    "GRANULARITIES",
    "HEADER_BYTES",
    "LOSSLESS",
    "METRICS",
    "SPEC_VERSION",
    "TEXT_KINDS",
    "LossyOption",
    "LossySpec",
    "Projection",
    "bootstrap_interval",
    "character_error_rate",
    "cut_tensors",
    "ctc_greedy",
    "decode",
    "default_cuts",
    "default_fonts",
    "default_texts",
    "detection_agreement",
    "disjoint_texts",
    "edit_distance",
    "encode",
    "fit",
    "fit_table",
    "mask_iou",
    "measure_fidelity",
    "measure_ocr",
    "ocr_labels",
    "pack_codes",
    "packed_bytes",
    "parse_option",
    "relative_l2",
    "render_line",
    "scenes",
    "single_tensor_cuts",
    "spec_for",
    "unpack_codes",
]
