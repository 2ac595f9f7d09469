"""Explicit, lossy linear quantization of activations (the paper's 8-bit fixed point).

The JointDNN paper quantizes 32-bit activations to 8 bits before compressing
them as images. :func:`quantize` does the same with a linear min/max mapping:
``q = round((x - lo) / step)`` with ``step = (hi - lo) / (2**bits - 1)``, where
``lo``/``hi`` are the tensor's minimum and maximum. Scaling by the range
``hi - lo`` (never by ``hi`` alone) keeps negative and all-negative ranges
correct; a constant tensor (``hi == lo``) gets ``step = 0`` and comes back
exactly. The parameters travel in the frame (see ``docs/wire-format.md``) and
the decoder dequantizes with :func:`dequantize`.

Quantization is never applied implicitly: lossless encoding is the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CodecError, ConfigError

__all__ = ["QuantizedTensor", "QuantizationError", "quantize", "dequantize", "quantization_error", "is_float"]


@dataclass(frozen=True)
class QuantizedTensor:
    """Integer codes plus what is needed to map them back to the original floats.

    ``q`` holds the codes (``uint8`` for ``bits <= 8``, else ``uint16``) in the
    tensor's shape; ``dtype`` is the original floating dtype; ``lo``/``hi`` the
    range that code ``0`` and code ``2**bits - 1`` stand for.
    """

    q: np.ndarray
    lo: float
    hi: float
    bits: int
    dtype: np.dtype[Any]

    @property
    def step(self) -> float:
        """Distance between two neighbouring codes, in the original units (0 for a constant tensor)."""
        return (self.hi - self.lo) / float((1 << self.bits) - 1)

    @property
    def error_bound(self) -> float:
        """Largest absolute error rounding can introduce: half a step (plus the float rounding of the cast)."""
        return self.step / 2.0

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the tensor."""
        return tuple(self.q.shape)


@dataclass(frozen=True)
class QuantizationError:
    """What quantization did to one tensor: measured errors and the theoretical bound."""

    max_abs: float
    rmse: float
    bound: float
    #: signal-to-quantization-noise ratio in dB (inf when the error is 0)
    snr_db: float


def _code_dtype(bits: int) -> np.dtype[Any]:
    return np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= 16:
        raise ConfigError(f"quantization bits must be an integer in 1..16, got {bits!r}")
    return int(bits)


def quantize(x: np.ndarray, bits: int = 8) -> QuantizedTensor:
    """Map a floating tensor linearly onto ``bits``-bit codes between its min and max.

    Raises :class:`CodecError` for non-floating tensors and for tensors holding
    NaN or infinities (their range is undefined; encode such tensors losslessly),
    :class:`ConfigError` for ``bits`` outside 1..16.
    Every finite value comes back within :attr:`QuantizedTensor.error_bound`.
    """
    bits = _check_bits(bits)
    a = np.asarray(x)
    if not is_float(a.dtype):
        raise CodecError(f"quantize takes a floating tensor, got dtype {a.dtype}")
    levels = (1 << bits) - 1
    if a.size == 0:
        return QuantizedTensor(np.zeros(a.shape, _code_dtype(bits)), 0.0, 0.0, bits, a.dtype)
    # float16/bfloat16 are widened once; float32 stays float32 for speed (the
    # rounding error of that arithmetic is far below half a step for <= 16 bits).
    work = np.float64 if a.dtype.itemsize >= 8 else np.float32
    w: Any = a.astype(work, copy=False)
    lo, hi = float(w.min()), float(w.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CodecError("cannot quantize a tensor holding NaN or infinity; encode it losslessly instead")
    step = (hi - lo) / levels
    if step == 0.0:
        q = np.zeros(a.shape, _code_dtype(bits))
    else:
        t = (w - work(lo)) * work(1.0 / step)
        np.rint(t, out=t)
        np.clip(t, 0, levels, out=t)
        q = t.astype(_code_dtype(bits))
    return QuantizedTensor(q, lo, hi, bits, a.dtype)


def dequantize(qt: QuantizedTensor) -> np.ndarray:
    """The floats the codes stand for, in the original dtype: ``lo + q * step`` computed in float64.

    This is the exact formula the wire format specifies, so every decoder
    reproduces the same values bit for bit.
    """
    bits = _check_bits(qt.bits)
    step = (float(qt.hi) - float(qt.lo)) / float((1 << bits) - 1)
    out = qt.q.astype(np.float64)
    out *= step
    out += float(qt.lo)
    return out.astype(qt.dtype)


def quantization_error(x: np.ndarray, qt: QuantizedTensor | None = None, bits: int = 8) -> QuantizationError:
    """Measure the error ``quantize(x, bits)`` (or the given ``qt``) introduces on ``x``."""
    a = np.asarray(x)
    if qt is None:
        qt = quantize(a, bits)
    if a.size == 0:
        return QuantizationError(0.0, 0.0, qt.error_bound, math.inf)
    ref = a.astype(np.float64)
    diff = dequantize(qt).astype(np.float64) - ref
    mse = float(np.mean(diff * diff))
    power = float(np.mean(ref * ref))
    snr = math.inf if mse == 0.0 else (10.0 * math.log10(power / mse) if power > 0 else -math.inf)
    return QuantizationError(float(np.max(np.abs(diff))), math.sqrt(mse), qt.error_bound, snr)


def is_float(dt: np.dtype[Any]) -> bool:
    """True for the floating dtypes that can be quantized (bfloat16 included)."""
    return dt.kind == "f" or dt.name == "bfloat16"
