"""The activation frame: several named tensors in one self-describing message.

Byte layout (all integers little-endian; ``docs/wire-format.md`` is the
normative description)::

    frame   = header record*
    header  = "JDNF" version:u8 checksum_alg:u8 reserved:u16 count:u32          (12 bytes)
    record  = name_len:u16 dtype:u8 ndim:u8 codec:u8 filter:u8 flags:u8 reserved:u8
              payload_len:u64 checksum:u64 name shape:u64*ndim [quant] record_crc:u32
              zero padding to a multiple of 8 from the frame start, payload
    quant   = orig_dtype:u8 bits:u8 reserved:6 lo:f64 hi:f64                        (flags bit 0)

``checksum`` covers the tensor's decoded (stored-dtype) bytes; ``record_crc``
(always CRC-32) covers the record's metadata, so a corrupt name, shape or dtype
is caught as well as a corrupt payload.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Union

import numpy as np

from ..errors import CodecError, ConfigError, FrameTooLargeError
from . import codecs as _c
from .choice import choose_codec, choose_filter
from .quantize import QuantizedTensor, is_float, quantize
from .quantize import dequantize as _dequantize

__all__ = [
    "MAGIC",
    "VERSION",
    "DEFAULT_MAX_BYTES",
    "CHECKSUMS",
    "CODECS",
    "FrameEntry",
    "QuantParams",
    "encode",
    "decode",
    "read_headers",
    "dtype_code",
]

MAGIC = b"JDNF"
VERSION = 1
#: Default cap on the bytes :func:`decode` may produce (sum over the frame's tensors).
DEFAULT_MAX_BYTES = 256 << 20
#: Codec names accepted by :func:`encode`.
CODECS = ("auto", "raw", "zstd", "sparse", "png")
MAX_NDIM = 32

_HEADER = struct.Struct("<4sBBHI")
_RECORD = struct.Struct("<HBBBBBBQQ")
_QUANT = struct.Struct("<BB6sdd")
_CRC = struct.Struct("<I")
_FLAG_QUANT = 0x01
_MIN_RECORD = _RECORD.size + _CRC.size

# dtype codes (wire format; never renumber)
_DTYPE_CODES: dict[int, str] = {
    1: "bool",
    2: "int8",
    3: "uint8",
    4: "int16",
    5: "uint16",
    6: "int32",
    7: "uint32",
    8: "int64",
    9: "uint64",
    10: "float16",
    11: "bfloat16",
    12: "float32",
    13: "float64",
    14: "complex64",
    15: "complex128",
}
_FLOAT_CODES = {10, 11, 12, 13}

#: Names of the element types a frame can carry, by their wire code (``docs/wire-format.md``).
WIRE_DTYPES: Mapping[int, str] = MappingProxyType(_DTYPE_CODES)


def _bfloat16() -> Any:
    try:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        return None


_BF16 = _bfloat16()


def _wire_dtype(name: str) -> Any:
    if name == "bfloat16":
        return _BF16
    return np.dtype(name).newbyteorder("<")


#: code -> little-endian numpy dtype (None for bfloat16 without ml_dtypes)
_DTYPE_OF_CODE: dict[int, Any] = {code: _wire_dtype(name) for code, name in _DTYPE_CODES.items()}
#: (kind, itemsize) -> code, for the standard numpy dtypes
_CODE_OF_KIND = {(np.dtype(n).kind, np.dtype(n).itemsize): c for c, n in _DTYPE_CODES.items() if n != "bfloat16"}


def _code_to_dtype(code: int) -> np.dtype[Any]:
    dt = _DTYPE_OF_CODE.get(code)
    if dt is None:
        if code == 11:
            raise CodecError("frame holds bfloat16, which needs the ml_dtypes package")
        raise CodecError(f"unknown dtype code {code}")
    return dt  # type: ignore[no-any-return]


def dtype_code(dt: np.dtype[Any]) -> int:
    """The wire code of a numpy dtype; :class:`CodecError` if the wire format cannot carry it."""
    dt = np.dtype(dt)
    code = _CODE_OF_KIND.get((dt.kind, dt.itemsize))
    if code is not None:
        return code
    if _BF16 is not None and dt == _BF16:
        return 11
    raise CodecError(f"dtype {dt} cannot be sent (supported: {', '.join(_DTYPE_CODES.values())})")


# ----------------------------------------------------------------- checksums
def _xxh3() -> Callable[[Any], int] | None:
    try:
        import xxhash

        return xxhash.xxh3_64_intdigest  # type: ignore[no-any-return]
    except ImportError:
        return None


def _crc32c() -> Callable[[Any], int] | None:
    try:
        import crc32c

        return crc32c.crc32c  # type: ignore[no-any-return]
    except ImportError:
        return None


#: Checksum algorithms by wire id: (name, function or None when its package is missing).
_CHECKSUM_BY_ID: dict[int, tuple[str, Callable[[Any], int] | None]] = {
    1: ("crc32", zlib.crc32),
    2: ("crc32c", _crc32c()),
    3: ("xxh3", _xxh3()),
}
#: Checksum names :func:`encode` accepts here (``crc32`` always; the others when their package is installed).
CHECKSUMS = tuple(name for name, fn in _CHECKSUM_BY_ID.values() if fn is not None)
_CHECKSUM_IDS = {name: i for i, (name, _fn) in _CHECKSUM_BY_ID.items()}


# ------------------------------------------------------------------- entries
@dataclass(frozen=True)
class QuantParams:
    """Quantization parameters of one tensor as carried by the frame."""

    bits: int
    lo: float
    hi: float
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class FrameEntry:
    """One tensor's record as read from a frame (no payload decoded)."""

    name: str
    #: dtype of the stored elements (the code type when quantized)
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    codec: str
    filter: str
    payload_bytes: int
    checksum: int
    quant: QuantParams | None
    #: offset of the payload from the frame start
    payload_offset: int

    @property
    def raw_bytes(self) -> int:
        """Bytes of the decoded stored elements."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def out_bytes(self) -> int:
        """Bytes of the array :func:`decode` returns (dequantized size for quantized tensors)."""
        itemsize = self.quant.dtype.itemsize if self.quant is not None else self.dtype.itemsize
        return math.prod(self.shape) * itemsize


TensorLike = Union[np.ndarray, QuantizedTensor]


# -------------------------------------------------------------------- encode
def encode(
    tensors: Mapping[str, TensorLike],
    *,
    codec: str = "auto",
    level: int = _c.DEFAULT_LEVEL,
    quantize_bits: int | None = None,
    checksum: str = "crc32",
    threads: int = 0,
) -> bytes:
    """Pack named tensors into one frame; lossless unless ``quantize_bits`` or a :class:`QuantizedTensor` is given.

    ``codec`` is one of :data:`CODECS` and applies to every tensor; ``"auto"``
    picks per tensor from its size, dtype and zero ratio and never produces a
    payload larger than the raw bytes. Empty tensors are always stored raw.
    ``level`` is the zstd level, ``threads`` zstd worker threads for tensors of
    1 MiB and more (0: none, -1: one per core). ``quantize_bits`` quantizes
    every floating tensor (see :func:`quantize`); a :class:`QuantizedTensor`
    value is sent as it is. Raises :class:`ConfigError` for an unknown
    ``codec`` or ``checksum`` (or one whose package is missing) and a bad
    ``level`` or ``quantize_bits``; :class:`CodecError` for tensors the wire
    format cannot carry (object dtypes, ``png`` on multi-byte elements, ...).
    """
    if codec not in CODECS:
        raise ConfigError(f"unknown codec {codec!r}; choose one of {CODECS}")
    if checksum not in _CHECKSUM_IDS:
        raise ConfigError(f"unknown checksum {checksum!r}; choose one of {tuple(_CHECKSUM_IDS)}")
    csum_fn = _CHECKSUM_BY_ID[_CHECKSUM_IDS[checksum]][1]
    if csum_fn is None:
        raise ConfigError(f"checksum {checksum!r} needs a package that is not installed; available: {CHECKSUMS}")
    if not isinstance(level, int) or isinstance(level, bool):
        raise ConfigError(f"level must be an integer, got {level!r}")
    if not isinstance(tensors, Mapping):
        raise CodecError(f"encode takes a mapping of names to arrays, got {type(tensors).__name__}")
    if len(tensors) > 0xFFFFFFFF:
        raise CodecError("too many tensors for one frame")
    parts: list[Any] = [_HEADER.pack(MAGIC, VERSION, _CHECKSUM_IDS[checksum], 0, len(tensors))]
    offset = _HEADER.size
    for name, value in tensors.items():
        pieces, record = _encode_one(name, value, codec, level, quantize_bits, threads, csum_fn, offset)
        offset += len(record)
        parts.append(record)
        parts.extend(pieces)
        offset += sum(memoryview(p).nbytes for p in pieces)
    return b"".join(parts)


def _encode_one(
    name: Any,
    value: Any,
    codec: str,
    level: int,
    quantize_bits: int | None,
    threads: int,
    csum_fn: Callable[[Any], int],
    offset: int,
) -> tuple[list[Any], bytes]:
    if not isinstance(name, str):
        raise CodecError(f"tensor names must be strings, got {name!r}")
    bname = name.encode("utf-8")
    if len(bname) > 0xFFFF:
        raise CodecError(f"tensor name of {len(bname)} UTF-8 bytes is longer than 65535")
    quant: QuantizedTensor | None
    if isinstance(value, QuantizedTensor):
        quant = _checked_quant(value)
        arr = quant.q
    else:
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise CodecError(f"tensor {name!r} is not an array: {e}") from None
        quant = None
        if quantize_bits is not None and is_float(arr.dtype):
            quant = quantize(arr, quantize_bits)
            arr = quant.q
    code = dtype_code(arr.dtype)
    if arr.ndim > MAX_NDIM:
        raise CodecError(f"tensor {name!r} has {arr.ndim} dimensions, more than {MAX_NDIM}")
    dt = _code_to_dtype(code)
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype != dt:
        flat = flat.astype(dt)  # big-endian or otherwise non-canonical input: little-endian on the wire
    if code == 1 and flat.size and flat.view(np.uint8).max() > 1:
        raise CodecError(f"bool tensor {name!r} holds bytes other than 0 and 1")
    shape = tuple(int(s) for s in arr.shape)

    if flat.size == 0:
        cid, filt = _c.RAW, _c.FILTER_NONE
    elif codec == "auto":
        cid, filt = choose_codec(flat)
    else:
        cid = _c.CODEC_IDS[codec]
        filt = choose_filter(flat, cid)
    if cid == _c.PNG and dt.itemsize != 1:
        raise CodecError(
            f"png carries 1-byte tensors only; {name!r} is {arr.dtype} (pass quantize_bits=8 for the paper's method)"
        )
    pieces = _c.encode_payload(flat, shape, cid, filt, level, threads)
    payload_len = sum(memoryview(p).nbytes for p in pieces)
    if codec == "auto" and cid != _c.RAW and payload_len >= flat.nbytes:
        cid, filt = _c.RAW, _c.FILTER_NONE
        pieces = _c.encode_payload(flat, shape, cid, filt, level, threads)
        payload_len = flat.nbytes
    csum = csum_fn(flat.view(np.uint8)) & 0xFFFFFFFFFFFFFFFF

    flags = _FLAG_QUANT if quant is not None else 0
    meta = [
        _RECORD.pack(len(bname), code, len(shape), cid, filt, flags, 0, payload_len, csum),
        bname,
        struct.pack(f"<{len(shape)}Q", *shape),
    ]
    if quant is not None:
        meta.append(_QUANT.pack(dtype_code(quant.dtype), quant.bits, b"\0" * 6, quant.lo, quant.hi))
    body = b"".join(meta)
    body += _CRC.pack(zlib.crc32(body))
    pad = -(offset + len(body)) % 8
    return pieces, body + b"\0" * pad


def _checked_quant(qt: QuantizedTensor) -> QuantizedTensor:
    if not isinstance(qt.bits, int) or not 1 <= qt.bits <= 16:
        raise CodecError(f"quantization bits must be in 1..16, got {qt.bits!r}")
    want = np.uint8 if qt.bits <= 8 else np.uint16
    if np.asarray(qt.q).dtype != want:
        raise CodecError(f"{qt.bits}-bit codes must be {np.dtype(want)}, got {np.asarray(qt.q).dtype}")
    if dtype_code(qt.dtype) not in _FLOAT_CODES:
        raise CodecError(f"quantized tensors must stand for a floating dtype, got {qt.dtype}")
    if not (math.isfinite(qt.lo) and math.isfinite(qt.hi) and qt.lo <= qt.hi):
        raise CodecError(f"quantization range [{qt.lo}, {qt.hi}] must be finite with lo <= hi")
    return qt


# -------------------------------------------------------------------- decode
def _as_bytes_view(frame: Any) -> memoryview:
    try:
        mv = memoryview(frame)
    except TypeError:
        raise CodecError(f"a frame must be bytes-like, got {type(frame).__name__}") from None
    if mv.ndim != 1 or mv.itemsize != 1 or not mv.c_contiguous:
        try:
            mv = mv.cast("B")
        except (TypeError, ValueError):
            raise CodecError("a frame must be a contiguous bytes-like object") from None
    elif mv.format != "B":
        mv = mv.cast("B")
    return mv


def _parse(mv: memoryview, max_bytes: int) -> tuple[Callable[[Any], int], list[FrameEntry]]:
    """Every record's metadata, all checked (including the size budget) before any payload is touched."""
    if not isinstance(max_bytes, int) or max_bytes < 0:
        raise ConfigError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
    size = len(mv)
    if size < _HEADER.size:
        raise CodecError(f"frame is {size} bytes, shorter than its {_HEADER.size}-byte header")
    magic, version, alg, reserved, count = _HEADER.unpack_from(mv)
    if magic != MAGIC:
        raise CodecError(f"not an activation frame (magic {bytes(magic)!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise CodecError(f"frame version {version} is not supported (this decoder reads version {VERSION})")
    if alg not in _CHECKSUM_BY_ID:
        raise CodecError(f"unknown checksum algorithm id {alg}")
    csum_name, csum_fn = _CHECKSUM_BY_ID[alg]
    if csum_fn is None:
        raise CodecError(f"frame uses checksum {csum_name!r}, whose package is not installed")
    if reserved:
        raise CodecError("frame header reserved field must be 0")
    room = (size - _HEADER.size) // _MIN_RECORD
    if count > room:
        raise CodecError(f"frame claims {count} tensors but has room for at most {room}")
    pos = _HEADER.size
    entries: list[FrameEntry] = []
    names: set[str] = set()
    budget = 0
    for index in range(count):
        where = f"tensor #{index}"
        if size - pos < _MIN_RECORD:
            raise CodecError(f"{where}: frame truncated inside the record header")
        start = pos
        name_len, code, ndim, cid, filt, flags, rsv, payload_len, csum = _RECORD.unpack_from(mv, pos)
        pos += _RECORD.size
        quant_len = _QUANT.size if flags & _FLAG_QUANT else 0
        meta_len = name_len + 8 * ndim + quant_len + _CRC.size
        if size - pos < meta_len:
            raise CodecError(f"{where}: frame truncated inside the record header")
        crc_at = pos + meta_len - _CRC.size
        (rec_crc,) = _CRC.unpack_from(mv, crc_at)
        if zlib.crc32(mv[start:crc_at]) != rec_crc:
            raise CodecError(f"{where}: record header fails its CRC (corrupt metadata)")
        try:
            name = str(mv[pos : pos + name_len], "utf-8")
        except UnicodeDecodeError:
            raise CodecError(f"{where}: name is not valid UTF-8") from None
        where = f"tensor {name!r}"
        pos += name_len
        if name in names:
            raise CodecError(f"{where}: name appears twice in the frame")
        names.add(name)
        if rsv or flags & ~_FLAG_QUANT:
            raise CodecError(f"{where}: reserved flags or fields are set")
        if ndim > MAX_NDIM:
            raise CodecError(f"{where}: {ndim} dimensions, more than {MAX_NDIM}")
        dt = _code_to_dtype(code)
        if cid not in _c.CODEC_NAMES:
            raise CodecError(f"{where}: unknown codec id {cid}")
        _c.check_filter(cid, filt, dt.itemsize)
        shape = struct.unpack_from(f"<{ndim}Q", mv, pos)
        pos += 8 * ndim
        n = math.prod(shape)
        if math.prod(d for d in shape if d) * dt.itemsize >= 1 << 63:  # not even an empty array can have this shape
            raise CodecError(f"{where}: shape {shape} is too large to represent")
        quant = None
        if quant_len:
            ocode, bits, qrsv, lo, hi = _QUANT.unpack_from(mv, pos)
            pos += quant_len
            if ocode not in _FLOAT_CODES:
                raise CodecError(f"{where}: quantized tensors must stand for a floating dtype (code {ocode})")
            if not 1 <= bits <= 16:
                raise CodecError(f"{where}: quantization bits {bits} outside 1..16")
            if code != (3 if bits <= 8 else 5):
                raise CodecError(f"{where}: {bits}-bit codes must be stored as {'uint8' if bits <= 8 else 'uint16'}")
            if any(qrsv) or not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise CodecError(f"{where}: invalid quantization parameters (lo={lo}, hi={hi})")
            quant = QuantParams(bits, lo, hi, _code_to_dtype(ocode))
        pos += _CRC.size
        pad = -pos % 8
        if size - pos < pad or any(mv[pos : pos + pad]):
            raise CodecError(f"{where}: missing or non-zero alignment padding")
        pos += pad
        if payload_len > size - pos:
            raise CodecError(f"{where}: payload of {payload_len} bytes runs past the frame end ({size - pos} left)")
        entry = FrameEntry(name, dt, shape, _c.CODEC_NAMES[cid], _c.FILTER_NAMES[filt], payload_len, csum, quant, pos)
        # Budget: the larger of the stored and the returned array, summed over the frame.
        budget += max(entry.raw_bytes, entry.out_bytes)
        if budget > max_bytes:
            raise FrameTooLargeError(f"{where}: frame decodes to more than max_bytes={max_bytes} bytes")
        if cid == _c.PNG and n == 0:
            raise CodecError(f"{where}: png payload for an empty tensor")
        pos += payload_len
        entries.append(entry)
    if pos != size:
        raise CodecError(f"{size - pos} unexpected bytes after the last tensor")
    return csum_fn, entries


def read_headers(frame: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[FrameEntry]:
    """Every tensor's metadata (name, dtype, shape, codec, sizes) without decoding any payload.

    Checks the frame structure exactly as :func:`decode` does (record CRCs,
    bounds, ``max_bytes``) but not the payloads or their checksums.
    """
    return _parse(_as_bytes_view(frame), max_bytes)[1]


def decode(
    frame: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES, dequantize: bool = True
) -> dict[str, Any]:
    """The tensors of a frame, bit for bit as encoded (quantized ones dequantized, unless told not to).

    Never produces more than ``max_bytes`` bytes of tensors (all sizes are
    checked before anything is decompressed): a frame over that limit raises
    :class:`FrameTooLargeError`, any other truncated, corrupt or inconsistent
    frame :class:`CodecError`, a bad ``max_bytes`` :class:`ConfigError`. The arrays
    are read-only; raw payloads are zero-copy views of ``frame``, so copy
    them (``np.array(a)``) before reusing a mutable buffer. With
    ``dequantize=False`` quantized tensors come back as
    :class:`QuantizedTensor`.
    """
    mv = _as_bytes_view(frame)
    csum_fn, entries = _parse(mv, max_bytes)
    out: dict[str, Any] = {}
    for e in entries:
        n = math.prod(e.shape)
        payload = mv[e.payload_offset : e.payload_offset + e.payload_bytes]
        try:
            flat = _c.decode_payload(payload, _c.CODEC_IDS[e.codec], _filter_id(e.filter), e.dtype, e.shape, n)
        except CodecError as err:
            raise CodecError(f"tensor {e.name!r}: {err}") from None
        except (ValueError, TypeError, IndexError, MemoryError, OverflowError, struct.error) as err:  # defence in depth
            raise CodecError(f"tensor {e.name!r}: payload cannot be decoded: {type(err).__name__}: {err}") from None
        raw = flat.view(np.uint8)
        if (csum_fn(raw) & 0xFFFFFFFFFFFFFFFF) != e.checksum:
            raise CodecError(f"tensor {e.name!r}: checksum mismatch (payload corrupt)")
        if e.dtype.kind == "b" and n and raw.max() > 1:
            raise CodecError(f"tensor {e.name!r}: bool tensor holds bytes other than 0 and 1")
        arr = flat.reshape(e.shape)
        if e.quant is not None:
            q = e.quant
            if n and int(arr.max()) > (1 << q.bits) - 1:
                raise CodecError(f"tensor {e.name!r}: code exceeds {q.bits} bits")
            arr.flags.writeable = False
            qt = QuantizedTensor(arr, q.lo, q.hi, q.bits, q.dtype)
            if not dequantize:
                out[e.name] = qt
                continue
            arr = _dequantize(qt)
        if sys.byteorder != "little" and arr.dtype.byteorder == "<":  # pragma: no cover - big-endian hosts
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arr.flags.writeable = False
        out[e.name] = arr
    return out


_FILTER_IDS = {v: k for k, v in _c.FILTER_NAMES.items()}


def _filter_id(name: str) -> int:
    return _FILTER_IDS[name]
