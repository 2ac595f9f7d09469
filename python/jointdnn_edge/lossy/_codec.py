"""Encode a tensor with a fitted :class:`LossySpec`, and decode it back (``docs/wire-format.md`` §9).

Bytes on the wire: a 16-byte header (magic ``JDNL``, version, bits, the spec's
digest) and one activation frame (the lossless codec, §1-§5) holding a
single unnamed tensor: the densely packed codes as ``uint8`` (quantized), or
the projected values as ``float32`` (projection alone).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from .. import codec
from ..codec.quantize import is_float
from ..errors import CodecError, ConfigError, FrameTooLargeError
from ._spec import LossySpec, channels_last

__all__ = ["MAGIC", "VERSION", "HEADER_BYTES", "encode", "decode", "pack_codes", "unpack_codes", "packed_bytes"]

MAGIC = b"JDNL"
VERSION = 1
_HEADER = struct.Struct("<4sBBH8s")
#: Bytes of the lossy header before the frame.
HEADER_BYTES = _HEADER.size


def packed_bytes(count: int, bits: int) -> int:
    """Bytes of ``count`` codes of ``bits`` bits packed densely: ``ceil(count * bits / 8)``."""
    return (count * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes (each below ``2**bits``, ``bits`` in 1..8) packed LSB first: bit ``j`` of code ``i`` is stream bit
    ``i * bits + j``, stream bit ``b`` is bit ``b mod 8`` of byte ``b div 8``; unused bits of the last byte are 0."""
    flat = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1)
    if bits == 8:
        return flat
    planes = (flat[:, None] >> np.arange(bits, dtype=np.uint8)) & np.uint8(1)
    return np.packbits(planes.reshape(-1), bitorder="little")


def unpack_codes(buf: np.ndarray, count: int, bits: int) -> np.ndarray:
    """The inverse of :func:`pack_codes`; :class:`CodecError` for a wrong length or non-zero padding bits."""
    buf = np.asarray(buf, dtype=np.uint8).reshape(-1)
    if buf.size != packed_bytes(count, bits):
        raise CodecError(
            f"{buf.size} bytes of codes, expected {packed_bytes(count, bits)} for {count} {bits}-bit codes"
        )
    if bits == 8:
        return buf
    stream = np.unpackbits(buf, bitorder="little")
    if stream[count * bits :].any():
        raise CodecError("padding bits after the last code are not 0")
    planes = stream[: count * bits].reshape(count, bits)
    return np.packbits(planes, axis=1, bitorder="little").reshape(-1)


def _check_spec(spec: Any) -> LossySpec:
    if not isinstance(spec, LossySpec):
        raise ConfigError(f"expected a LossySpec, got {type(spec).__name__}")
    return spec


def _back_to_shape(rows: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Channels-last rows back into ``shape`` (whose ``axis`` holds the channels)."""
    moved = shape[:axis] + shape[axis + 1 :] + (shape[axis],)
    return np.moveaxis(rows.reshape(moved), -1, axis)


def encode(tensor: Any, spec: LossySpec, *, frame_codec: str = "auto", level: int = codec.DEFAULT_LEVEL) -> bytes:
    """The bytes that carry ``tensor`` under ``spec``: project (if the spec has a projection), quantize with the
    spec's clip ranges (values outside are clipped), pack the codes densely, then the lossless frame codec.

    :class:`ConfigError` when the spec does not fit the tensor (channel count,
    axis) or ``frame_codec`` is unknown; :class:`CodecError` for a
    non-floating tensor or one holding NaN or infinity.
    """
    spec = _check_spec(spec)
    x = np.asarray(tensor)
    if not is_float(x.dtype):
        raise CodecError(f"lossy encoding takes a floating tensor, got dtype {x.dtype}")
    coded_shape = spec.coded_shape(x.shape)
    rows = channels_last(x, spec.axis)
    if rows.size and not np.isfinite(rows).all():
        raise CodecError("cannot encode a tensor holding NaN or infinity lossily; send it losslessly")
    p = spec.projection
    if p is not None:
        rows = (rows - p.mean) @ p.components.T
    if spec.bits is None:
        payload: np.ndarray = _back_to_shape(rows.astype(np.float32), coded_shape, spec.axis)
    else:
        levels = (1 << spec.bits) - 1
        step = spec.steps
        safe = np.where(step > 0, step, 1.0)
        q = np.clip(np.rint((rows - spec.lo) / safe), 0, levels)
        q *= step > 0  # a constant range (step 0): every value stands for lo, code 0
        codes = _back_to_shape(q.astype(np.uint8), coded_shape, spec.axis)
        payload = pack_codes(codes, spec.bits)
    frame = codec.encode({"": payload}, codec=frame_codec, level=level)
    return _HEADER.pack(MAGIC, VERSION, spec.bits or 0, 0, spec.digest) + frame


def decode(
    data: bytes | bytearray | memoryview,
    spec: LossySpec,
    shape: tuple[int, ...],
    dtype: Any = np.float32,
    *,
    max_bytes: int = codec.DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """The tensor of ``shape`` and ``dtype`` that ``data`` (from :func:`encode` with the same ``spec``) stands for.

    Safe on untrusted bytes: the sizes follow from ``spec`` and ``shape``
    alone, a tensor over ``max_bytes`` is refused
    (:class:`FrameTooLargeError`) before anything is decoded, and the frame
    inside may not decode to more than the expected payload. Anything
    malformed, or bytes written under another spec, is a :class:`CodecError`;
    a spec that does not fit ``shape``/``dtype`` a :class:`ConfigError`.
    """
    spec = _check_spec(spec)
    try:
        shape = tuple(int(d) for d in shape)
        out_dtype = np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad expected shape or dtype: {e}") from None
    if any(d < 0 for d in shape):
        raise ConfigError(f"bad expected shape {shape}")
    if not is_float(out_dtype):
        raise ConfigError(f"lossy tensors are floating; expected dtype {out_dtype} is not")
    coded_shape = spec.coded_shape(shape)
    out_bytes = math.prod(shape) * out_dtype.itemsize
    if out_bytes > max_bytes:
        raise FrameTooLargeError(f"tensor of shape {shape} is {out_bytes} bytes, more than max_bytes={max_bytes}")
    mv = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    if len(mv) < HEADER_BYTES:
        raise CodecError(f"lossy payload is {len(mv)} bytes, shorter than its {HEADER_BYTES}-byte header")
    magic, version, bits, reserved, digest = _HEADER.unpack_from(mv)
    if magic != MAGIC:
        raise CodecError(f"not a lossy payload (magic {bytes(magic)!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise CodecError(f"lossy payload version {version} is not supported (this decoder reads {VERSION})")
    if reserved:
        raise CodecError("lossy header reserved field must be 0")
    if bits != (spec.bits or 0) or digest != spec.digest:
        raise CodecError("payload was encoded under another lossy spec (bits or spec digest differ)")
    n = math.prod(coded_shape)
    want_dtype: np.dtype[Any] = np.dtype(np.float32 if spec.bits is None else np.uint8)
    want_shape = coded_shape if spec.bits is None else (packed_bytes(n, spec.bits),)
    inner_bytes = math.prod(want_shape) * want_dtype.itemsize
    try:
        tensors = codec.decode(mv[HEADER_BYTES:], max_bytes=inner_bytes, dequantize=False)
    except FrameTooLargeError:
        raise CodecError(f"lossy payload's frame holds more than the {inner_bytes} bytes the spec allows") from None
    got = tensors.get("")
    if len(tensors) != 1 or not isinstance(got, np.ndarray) or got.dtype != want_dtype or got.shape != want_shape:
        raise CodecError(f"lossy payload's frame must hold one unnamed {want_dtype} tensor of shape {want_shape}")
    if spec.bits is None:
        rows = channels_last(got, spec.axis)
    else:
        codes = unpack_codes(got, n, spec.bits).reshape(coded_shape)
        rows = spec.lo + channels_last(codes, spec.axis) * spec.steps
    p = spec.projection
    if p is not None:
        rows = rows @ p.components + p.mean
    return np.ascontiguousarray(_back_to_shape(rows, shape, spec.axis).astype(out_dtype))
