"""Payload codecs and filters: turning one tensor's bytes into a payload and back.

Every function here works on a flat, C-ordered, little-endian element stream
(a 1-D numpy array); :mod:`.frame` handles names, shapes and checksums. The
byte layouts are specified in ``docs/wire-format.md``; the ids below are part
of the wire format and must never be renumbered.

Decoders are written for untrusted input: every size is checked against the
size the frame header promises *before* anything is decompressed or
allocated, and every failure becomes :class:`CodecError`.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
import zlib
from typing import Any

import numpy as np
import zstandard

from ..errors import CodecError, ConfigError
from ..planner._backend import native_module

__all__ = [
    "RAW",
    "ZSTD",
    "SPARSE",
    "PNG",
    "CODEC_IDS",
    "CODEC_NAMES",
    "FILTER_NONE",
    "FILTER_SHUFFLE",
    "FILTER_DELTA",
    "FILTER_DELTA_SHUFFLE",
    "FILTER_NAMES",
    "DEFAULT_LEVEL",
    "encode_payload",
    "decode_payload",
    "png_layout",
]

# Codec ids (wire format).
RAW = 0
ZSTD = 1
SPARSE = 2
PNG = 3
CODEC_IDS = {"raw": RAW, "zstd": ZSTD, "sparse": SPARSE, "png": PNG}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}

# Filter ids (wire format): transforms of the element stream fed to zstd.
FILTER_NONE = 0
FILTER_SHUFFLE = 1  # byte transpose: all first bytes, then all second bytes, ...
FILTER_DELTA = 2  # y[i] = x[i] - x[i-1] modulo 2**(8*itemsize), on the unsigned view
FILTER_DELTA_SHUFFLE = 3  # delta, then shuffle
FILTER_NAMES = {
    FILTER_NONE: "none",
    FILTER_SHUFFLE: "shuffle",
    FILTER_DELTA: "delta",
    FILTER_DELTA_SHUFFLE: "delta+shuffle",
}

#: zstd level used when none is given. Level 1 rather than zstd's usual 3: on
#: post-ReLU activations levels 1 and 3 give ratios within a few percent of
#: each other while level 1 encodes about twice as fast (benches/RESULTS.md).
DEFAULT_LEVEL = 1

#: A zstd frame may declare a window (decoder history buffer) larger than its
#: content; we accept up to this much, or the content size when larger.
_MIN_WINDOW_CAP = 1 << 23
_MAX_WINDOW_CAP = 1 << 31

_SPARSE_HEADER = struct.Struct("<QQ")  # nnz, length of the bitmap's zstd frame
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_UINT_OF_SIZE: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.uint8),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<u8"),
}

_local = threading.local()


# --------------------------------------------------------------------- zstd
def _compressor(level: int, threads: int) -> zstandard.ZstdCompressor:
    """A per-thread cached compressor (zstandard objects are not thread-safe)."""
    cache: dict[tuple[int, int], zstandard.ZstdCompressor] | None = getattr(_local, "cctx", None)
    if cache is None:
        cache = _local.cctx = {}
    key = (level, threads)
    c = cache.get(key)
    if c is None:
        try:
            c = zstandard.ZstdCompressor(level=level, threads=threads, write_content_size=True)
        except (zstandard.ZstdError, ValueError, TypeError) as e:
            raise ConfigError(f"invalid zstd settings level={level}, threads={threads}: {e}") from None
        cache[key] = c
    return c


def _zstd_compress(data: Any, level: int, threads: int) -> bytes:
    # Multi-threaded zstd only pays off on large inputs; small ones use one thread.
    t = threads if threads and memoryview(data).nbytes >= (1 << 20) else 0
    return _compressor(level, t).compress(data)


def _decompressor(window_cap: int) -> zstandard.ZstdDecompressor:
    """A per-thread cached decompressor for a window limit."""
    cache: dict[int, zstandard.ZstdDecompressor] | None = getattr(_local, "dctx", None)
    if cache is None:
        cache = _local.dctx = {}
    d = cache.get(window_cap)
    if d is None:
        d = cache[window_cap] = zstandard.ZstdDecompressor(max_window_size=window_cap)
    return d


def _zstd_decompress(data: memoryview, expected: int, what: str) -> bytes:
    """Decompress one zstd frame that must expand to exactly ``expected`` bytes.

    The frame's declared content size (when present) is checked before any
    output is allocated; without one, output is capped at ``expected`` bytes.
    """
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as e:
        raise CodecError(f"{what}: not a zstd frame ({e})") from None
    declared = params.content_size
    if declared != zstandard.CONTENTSIZE_UNKNOWN and declared != expected:
        raise CodecError(f"{what}: zstd frame declares {declared} bytes, the header promises {expected}")
    if params.dict_id:
        raise CodecError(f"{what}: zstd frame needs dictionary {params.dict_id}; dictionaries are not used")
    window_cap = min(_MAX_WINDOW_CAP, max(_MIN_WINDOW_CAP, 1 << max(10, (expected - 1).bit_length())))
    dctx = _decompressor(window_cap)
    try:
        out = dctx.decompress(data, max_output_size=max(expected, 1), allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise CodecError(f"{what}: corrupt zstd data ({e})") from None
    if len(out) != expected:
        raise CodecError(f"{what}: zstd data expands to {len(out)} bytes, the header promises {expected}")
    return out


# ------------------------------------------------------------------ filters
def _as_uint(flat: np.ndarray) -> np.ndarray:
    """The same bytes as unsigned integers of the element width (widths 1, 2, 4, 8)."""
    return flat.view(_UINT_OF_SIZE[flat.dtype.itemsize])


def _apply_filter(flat: np.ndarray, filt: int) -> Any:
    """Bytes-like filtered stream of a contiguous 1-D array."""
    k = flat.dtype.itemsize
    if filt in (FILTER_DELTA, FILTER_DELTA_SHUFFLE):
        if k not in _UINT_OF_SIZE:
            raise CodecError(f"the delta filter needs 1, 2, 4 or 8-byte elements, not {k}")
        u = _as_uint(flat)
        d = np.empty_like(u)
        if u.size:
            d[0] = u[0]
            np.subtract(u[1:], u[:-1], out=d[1:])  # unsigned: wraps modulo 2**(8k)
        flat = d
    b = flat.view(np.uint8)
    if filt in (FILTER_SHUFFLE, FILTER_DELTA_SHUFFLE) and k > 1:
        b = np.ascontiguousarray(b.reshape(-1, k).T)
    return b


def _undo_filter(buf: bytes | np.ndarray, filt: int, dtype: np.dtype[Any], n: int) -> np.ndarray:
    """Invert :func:`_apply_filter`: ``n`` elements of ``dtype`` from the filtered bytes."""
    k = dtype.itemsize
    b = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    if filt in (FILTER_SHUFFLE, FILTER_DELTA_SHUFFLE) and k > 1:
        b = np.ascontiguousarray(b.reshape(k, n).T).reshape(-1)
    if filt in (FILTER_DELTA, FILTER_DELTA_SHUFFLE):
        if k not in _UINT_OF_SIZE:
            raise CodecError(f"the delta filter needs 1, 2, 4 or 8-byte elements, not {k}")
        b = _prefix_sum(b.view(_UINT_OF_SIZE[k])).view(np.uint8)
    return b.view(dtype)


def _prefix_sum(u: np.ndarray, block: int = 16) -> np.ndarray:
    """Running sum of unsigned integers, wrapping modulo 2**bits (the inverse of the delta filter).

    ``np.cumsum`` is a scalar loop; summing ``block`` strided columns and then
    carrying the row totals is about twice as fast and gives the same result.
    """
    n = u.size
    rows = -(-n // block)
    a = np.zeros(rows * block, u.dtype)
    a[:n] = u
    m = a.reshape(rows, block)
    for j in range(1, block):
        m[:, j] += m[:, j - 1]
    if rows > 1:
        carry = np.cumsum(m[:-1, -1], dtype=u.dtype)
        m[1:] += carry[:, None]
    return a[:n]


def check_filter(codec: int, filt: int, itemsize: int) -> None:
    """Raise :class:`CodecError` unless ``filt`` is valid for ``codec`` on elements of ``itemsize`` bytes."""
    if filt not in FILTER_NAMES:
        raise CodecError(f"unknown filter id {filt}")
    if codec in (RAW, PNG) and filt != FILTER_NONE:
        raise CodecError(f"codec {CODEC_NAMES[codec]} takes no filter (got {FILTER_NAMES[filt]})")
    if filt in (FILTER_DELTA, FILTER_DELTA_SHUFFLE) and itemsize not in _UINT_OF_SIZE:
        raise CodecError(f"the delta filter needs 1, 2, 4 or 8-byte elements, not {itemsize}")


# ------------------------------------------------------------------- sparse
def nonzero_mask(flat: np.ndarray) -> np.ndarray:
    """True where an element has at least one non-zero byte (so -0.0 and NaN count as non-zero)."""
    k = flat.dtype.itemsize
    if k in _UINT_OF_SIZE:
        return np.asarray(_as_uint(flat) != 0)
    return np.asarray(flat.view(np.uint8).reshape(-1, k).any(axis=1))


def _sparse_encode(flat: np.ndarray, filt: int, level: int, threads: int) -> list[Any]:
    mask = nonzero_mask(flat)
    values = np.compress(mask, flat)  # several times faster than flat[mask] on irregular masks
    bitmap = np.packbits(mask, bitorder="little")
    bm = _zstd_compress(bitmap, level, threads)
    vals = _zstd_compress(_apply_filter(values, filt), level, threads)
    return [_SPARSE_HEADER.pack(int(values.size), len(bm)), bm, vals]


def _sparse_decode(payload: memoryview, dtype: np.dtype[Any], n: int, filt: int) -> np.ndarray:
    if len(payload) < _SPARSE_HEADER.size:
        raise CodecError(f"sparse payload is {len(payload)} bytes, shorter than its {_SPARSE_HEADER.size}-byte header")
    nnz, bm_len = _SPARSE_HEADER.unpack_from(payload)
    if nnz > n:
        raise CodecError(f"sparse payload claims {nnz} non-zero elements in a tensor of {n}")
    if bm_len > len(payload) - _SPARSE_HEADER.size:
        raise CodecError(f"sparse bitmap length {bm_len} runs past the payload end")
    start = _SPARSE_HEADER.size
    bitmap = np.frombuffer(_zstd_decompress(payload[start : start + bm_len], (n + 7) // 8, "sparse bitmap"), np.uint8)
    if n % 8 and bitmap[-1] >> (n % 8):
        raise CodecError("sparse bitmap has bits set past the last element")
    native = native_module()
    if native is None:
        mask = np.unpackbits(bitmap, count=n, bitorder="little").view(np.bool_)
        count = int(np.count_nonzero(mask))
    else:
        count = _popcount(bitmap)  # bits past n were refused above
    if count != nnz:
        raise CodecError(f"sparse bitmap marks {count} non-zero elements, the payload header says {nnz}")
    k = dtype.itemsize
    raw_vals = _zstd_decompress(payload[start + bm_len :], nnz * k, "sparse values")
    values = _undo_filter(raw_vals, filt, dtype, nnz)
    if native is not None:
        # one pass in Rust (rust/core/src/sparse.rs), skipping zero bytes of the bitmap
        out_bytes = np.zeros(n * k, np.uint8)
        native.sparse_expand(bitmap, np.ascontiguousarray(values).view(np.uint8).reshape(-1), k, n, out_bytes)
        return out_bytes.view(dtype)
    out = np.zeros(n, dtype)
    out[np.flatnonzero(mask)] = values  # integer-index scatter: much faster than out[mask] = values
    return out


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(bitmap: np.ndarray) -> int:
    """Set bits in a uint8 array (numpy >= 2's popcount, else a byte lookup table: no unpacking of every bit)."""
    if _BITWISE_COUNT is not None:
        return int(_BITWISE_COUNT(bitmap).sum(dtype=np.int64))
    return int(_POPCOUNT[bitmap].sum(dtype=np.int64))


_BITWISE_COUNT = getattr(np, "bitwise_count", None)


# ---------------------------------------------------------------------- png
def png_layout(shape: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """``(channels, height, width, tile_rows, tile_cols)`` of the paper's tiled image for ``shape``.

    The last two axes are a channel's height and width and every leading axis
    counts as channels (a 1-D tensor is one row, a scalar one pixel). Channels
    fill a grid of ``ceil(sqrt(C))`` columns row by row.
    """
    if len(shape) >= 2:
        h, w = shape[-2], shape[-1]
        c = math.prod(shape[:-2])
    elif len(shape) == 1:
        c, h, w = 1, 1, shape[0]
    else:
        c, h, w = 1, 1, 1
    cols = math.isqrt(c - 1) + 1 if c > 0 else 0
    rows = -(-c // cols) if cols else 0
    return c, h, w, rows, cols


def _png_encode(flat: np.ndarray, shape: tuple[int, ...]) -> bytes:
    from PIL import Image  # imported lazily: only the paper's baseline needs Pillow

    c, h, w, rows, cols = png_layout(shape)
    tiles = np.zeros((rows * cols, h, w), np.uint8)
    tiles[:c] = flat.view(np.uint8).reshape(c, h, w)
    img = tiles.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG")  # Pillow's default (zlib level 6), as in the paper
    return buf.getvalue()


def _png_check_chunks(payload: memoryview, width: int, height: int) -> None:
    """Walk the PNG chunk list without decompressing anything: IHDR, IDAT..., IEND only, dimensions as promised."""
    data = payload
    if bytes(data[:8]) != _PNG_SIGNATURE:
        raise CodecError("png payload does not start with the PNG signature")
    pos = 8
    seen: list[bytes] = []
    while pos < len(data):
        if len(data) - pos < 12:
            raise CodecError("png payload is truncated inside a chunk header")
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = bytes(data[pos + 4 : pos + 8])
        if length > len(data) - pos - 12:
            raise CodecError(f"png chunk {ctype!r} of {length} bytes runs past the payload end")
        body = data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        if zlib.crc32(body, zlib.crc32(ctype)) != crc:
            raise CodecError(f"png chunk {ctype!r} fails its CRC")
        if not seen:
            if ctype != b"IHDR" or length != 13:
                raise CodecError("png payload must start with a 13-byte IHDR chunk")
            pw, ph, depth, color, comp, filt, interlace = struct.unpack(">IIBBBBB", body)
            if (pw, ph) != (width, height):
                raise CodecError(f"png image is {pw}x{ph}, the tensor shape needs {width}x{height}")
            if (depth, color, comp, filt, interlace) != (8, 0, 0, 0, 0):
                raise CodecError("png image must be 8-bit grayscale, non-interlaced")
        elif ctype not in (b"IDAT", b"IEND"):
            raise CodecError(f"png chunk {ctype!r} is not allowed (only IHDR, IDAT, IEND)")
        seen.append(ctype)
        pos += 12 + length
        if ctype == b"IEND":
            break
    if not seen or seen[-1] != b"IEND" or pos != len(data):
        raise CodecError("png payload must end with IEND and nothing after it")
    if b"IDAT" not in seen:
        raise CodecError("png payload has no IDAT chunk")


def _png_decode(payload: memoryview, shape: tuple[int, ...], n: int) -> np.ndarray:
    from PIL import Image

    c, h, w, rows, cols = png_layout(shape)
    _png_check_chunks(payload, cols * w, rows * h)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # dimensions were checked above
            with Image.open(io.BytesIO(payload), formats=["PNG"]) as im:
                im.load()
                if im.mode != "L" or im.size != (cols * w, rows * h):
                    raise CodecError(f"png decoded to mode {im.mode} size {im.size}")
                img = np.asarray(im, dtype=np.uint8)
    except CodecError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error, DecompressionBombError...
        raise CodecError(f"png payload cannot be decoded: {type(e).__name__}: {e}") from None
    tiles = img.reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(rows * cols, h, w)
    return np.ascontiguousarray(tiles[:c]).reshape(n)


# ----------------------------------------------------------------- dispatch
def encode_payload(
    flat: np.ndarray, shape: tuple[int, ...], codec: int, filt: int, level: int, threads: int
) -> list[Any]:
    """Bytes-like pieces whose concatenation is the payload of ``flat`` (contiguous, 1-D, little-endian)."""
    if codec == RAW:
        return [flat.view(np.uint8)]
    if codec == ZSTD:
        return [_zstd_compress(_apply_filter(flat, filt), level, threads)]
    if codec == SPARSE:
        return _sparse_encode(flat, filt, level, threads)
    if codec == PNG:
        return [_png_encode(flat, shape)]
    raise CodecError(f"unknown codec id {codec}")


def decode_payload(
    payload: memoryview,
    codec: int,
    filt: int,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    n: int,
) -> np.ndarray:
    """The flat array of ``n`` elements of ``dtype`` a payload stands for; :class:`CodecError` if it does not."""
    k = dtype.itemsize
    if codec == RAW:
        if len(payload) != n * k:
            raise CodecError(f"raw payload is {len(payload)} bytes, the header promises {n * k}")
        a = np.frombuffer(payload, dtype=dtype, count=n)
        # zero-copy view on the frame; copy only when misaligned for the dtype
        return a if a.flags.aligned else a.copy()
    if codec == ZSTD:
        return _undo_filter(_zstd_decompress(payload, n * k, "zstd payload"), filt, dtype, n)
    if codec == SPARSE:
        return _sparse_decode(payload, dtype, n, filt)
    if codec == PNG:
        if k != 1:
            raise CodecError(f"png payload needs a 1-byte dtype, the header says {dtype}")
        if n == 0:
            raise CodecError("png payload for an empty tensor")
        return _png_decode(payload, shape, n).view(dtype)
    raise CodecError(f"unknown codec id {codec}")
