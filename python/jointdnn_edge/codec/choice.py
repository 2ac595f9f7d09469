"""The codec ``auto`` picks for a tensor, and the filter every codec uses: cheap decisions, no trial compression.

:func:`choose_codec` decides from size, dtype and a sampled zero ratio;
:func:`choose_filter` from dtype and, for bytes, a sampled entropy. Both are
deterministic, so the same tensor always makes the same frame.
"""

from __future__ import annotations

import numpy as np

from . import codecs as _c

__all__ = [
    "AUTO_RAW_BELOW",
    "DELTA_MIN_BYTES",
    "SPARSE_MIN_ZERO_RATIO",
    "choose_codec",
    "choose_filter",
    "zero_ratio",
]

#: ``auto`` uses the sparse codec from this fraction of all-zero elements on.
#: Measured on 144 post-ReLU layers of six trained CNNs (benches/codec.py),
#: sparse beat shuffled zstd on every layer, the sparsest with 8% zeros.
SPARSE_MIN_ZERO_RATIO = 0.05
#: ``auto`` stores tensors smaller than this raw: compressing them saves a few
#: bytes at best and costs a zstd frame header.
AUTO_RAW_BELOW = 128
_ZR_SAMPLE = 1 << 16
_ENTROPY_RUNS = 4
#: Byte tensors smaller than this are never delta-coded (see :func:`choose_filter`).
DELTA_MIN_BYTES = 8192
_ENTROPY_RUN = 1 << 12


def zero_ratio(x: np.ndarray) -> float:
    """Fraction of elements whose bytes are all zero (so -0.0 and NaN are not zeros); 0 for an empty tensor."""
    flat = np.ascontiguousarray(np.asarray(x)).reshape(-1)
    if flat.size == 0:
        return 0.0
    return 1.0 - float(np.count_nonzero(_c.nonzero_mask(flat))) / flat.size


def _sampled_zero_ratio(flat: np.ndarray) -> float:
    step = max(1, flat.size // _ZR_SAMPLE)
    s = flat[::step]
    return 1.0 - float(np.count_nonzero(_c.nonzero_mask(np.ascontiguousarray(s)))) / s.size


def _entropy(b: np.ndarray) -> float:
    """Order-0 entropy (bits per byte) of a uint8 array."""
    counts = np.bincount(b, minlength=256)
    p = counts[counts > 0] / b.size
    return float(-(p * np.log2(p)).sum())


def choose_filter(flat: np.ndarray, codec: int) -> int:
    """The filter for ``codec`` on a contiguous 1-D tensor: a cheap, deterministic decision.

    Multi-byte elements are byte-shuffled (their exponent or high bytes then
    sit together and compress). For single bytes, delta coding helps smooth
    feature maps and hurts noisy ones, so the stream zstd would see (the
    non-zero bytes for ``sparse``) is sampled in a few contiguous runs and
    delta-coded only when that lowers its order-0 entropy. Byte tensors under
    :data:`DELTA_MIN_BYTES` skip the test: too small for it to pay.
    """
    if codec in (_c.RAW, _c.PNG):
        return _c.FILTER_NONE
    if flat.dtype.itemsize > 1:
        return _c.FILTER_SHUFFLE
    if flat.nbytes < DELTA_MIN_BYTES:
        return _c.FILTER_NONE
    b = flat.view(np.uint8)
    run = _ENTROPY_RUN
    if b.size > _ENTROPY_RUNS * run:
        step = (b.size - run) // (_ENTROPY_RUNS - 1)
        parts = [b[i * step : i * step + run] for i in range(_ENTROPY_RUNS)]
    else:
        parts = [b]
    if codec == _c.SPARSE:
        parts = [p[p != 0] for p in parts]
    parts = [p for p in parts if p.size > 1]
    if not parts:
        return _c.FILTER_NONE
    plain = np.concatenate(parts)
    delta = np.concatenate([np.diff(p) for p in parts])  # uint8 diff wraps, as the filter does
    return _c.FILTER_DELTA if _entropy(delta) < _entropy(plain) else _c.FILTER_NONE


def choose_codec(flat: np.ndarray) -> tuple[int, int]:
    """``(codec id, filter id)`` that ``auto`` uses for a contiguous 1-D tensor.

    Tiny tensors go raw. Tensors with at least :data:`SPARSE_MIN_ZERO_RATIO`
    all-zero elements (post-ReLU) go sparse: on real activations the sparse
    codec beat shuffled zstd on every layer down to 8% zeros, float32 and
    8-bit alike. The rest go to zstd. The filter comes from :func:`choose_filter`.
    """
    if flat.nbytes < AUTO_RAW_BELOW:
        return _c.RAW, _c.FILTER_NONE
    cid = _c.SPARSE if _sampled_zero_ratio(flat) >= SPARSE_MIN_ZERO_RATIO else _c.ZSTD
    return cid, choose_filter(flat, cid)
