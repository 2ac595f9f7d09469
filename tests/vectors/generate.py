"""Reference writer of the activation wire format and generator of its test vectors.

This is a second, deliberately independent implementation of
``docs/wire-format.md``: plain Python (``struct``, ``zlib``) with
``zstandard`` only for zstd frames, no numpy and no ``jointdnn_edge`` code.
Tensor elements are given as Python values or explicit bit patterns, filters
are written as byte loops, and PNG images are assembled chunk by chunk.

``python tests/vectors/generate.py`` rewrites ``tests/vectors/*.jdnf`` (valid
frames, each described by a ``.json`` file: the tensors' exact bytes as hex and
whether the frame's bytes are stable across library versions) and
``tests/vectors/invalid/*.jdnf`` (frames a decoder must reject; the ``.json``
names the defect). ``build()`` returns the same files in memory; the test suite
compares it with the committed files and decodes every vector.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import zstandard

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------- constants
MAGIC = b"JDNF"
VERSION = 1
CHECKSUM_CRC32 = 1
DTYPES = {  # name: (code, struct format of one element, itemsize)
    "bool": (1, "?", 1),
    "int8": (2, "b", 1),
    "uint8": (3, "B", 1),
    "int16": (4, "h", 2),
    "uint16": (5, "H", 2),
    "int32": (6, "i", 4),
    "uint32": (7, "I", 4),
    "int64": (8, "q", 8),
    "uint64": (9, "Q", 8),
    "float16": (10, "e", 2),
    "bfloat16": (11, None, 2),
    "float32": (12, "f", 4),
    "float64": (13, "d", 8),
    "complex64": (14, "ff", 8),
    "complex128": (15, "dd", 16),
}
CODECS = {"raw": 0, "zstd": 1, "sparse": 2, "png": 3}
FILTERS = {"none": 0, "shuffle": 1, "delta": 2, "delta+shuffle": 3}


class Bits:
    """An element given by its bit pattern (NaN payloads, -0.0 written explicitly)."""

    def __init__(self, value: int):
        self.value = value


def element_bytes(dtype: str, v: Any) -> bytes:
    """Little-endian bytes of one element."""
    _, fmt, size = DTYPES[dtype]
    if isinstance(v, Bits):
        return v.value.to_bytes(size, "little")
    if dtype == "bfloat16":  # the upper half of the float32 (values chosen to be exact)
        return struct.pack("<f", v)[2:]
    if dtype.startswith("complex"):
        return struct.pack("<" + fmt, v.real, v.imag)
    return struct.pack("<" + fmt, v)


def tensor_bytes(dtype: str, values: list[Any]) -> bytes:
    return b"".join(element_bytes(dtype, v) for v in values)


# ----------------------------------------------------------------- filters
def shuffle(data: bytes, k: int) -> bytes:
    n = len(data) // k
    return bytes(data[i * k + j] for j in range(k) for i in range(n))


def delta(data: bytes, k: int) -> bytes:
    out = bytearray()
    prev = 0
    mod = 1 << (8 * k)
    for i in range(0, len(data), k):
        x = int.from_bytes(data[i : i + k], "little")
        out += ((x - prev) % mod).to_bytes(k, "little")
        prev = x
    return bytes(out)


def apply_filter(data: bytes, k: int, name: str) -> bytes:
    if name in ("delta", "delta+shuffle"):
        data = delta(data, k)
    if name in ("shuffle", "delta+shuffle"):
        data = shuffle(data, k)
    return data


# ------------------------------------------------------------------ codecs
def zstd_frame(data: bytes, content_size: bool = True) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_content_size=content_size).compress(data)


def sparse_payload(data: bytes, k: int, filt: str, content_size: bool = True) -> bytes:
    elems = [data[i : i + k] for i in range(0, len(data), k)]
    nonzero = [any(e) for e in elems]
    bitmap = bytearray((len(elems) + 7) // 8)
    for i, nz in enumerate(nonzero):
        if nz:
            bitmap[i // 8] |= 1 << (i % 8)
    values = b"".join(e for e, nz in zip(elems, nonzero) if nz)
    bm = zstd_frame(bytes(bitmap), content_size)
    vals = zstd_frame(apply_filter(values, k, filt), content_size)
    return struct.pack("<QQ", sum(nonzero), len(bm)) + bm + vals


def png_layout(shape: list[int]) -> tuple[int, int, int, int, int]:
    if len(shape) >= 2:
        c, h, w = math.prod(shape[:-2]), shape[-2], shape[-1]
    elif len(shape) == 1:
        c, h, w = 1, 1, shape[0]
    else:
        c, h, w = 1, 1, 1
    cols = 1
    while cols * cols < c:
        cols += 1
    rows = -(-c // cols)
    return c, h, w, rows, cols


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(ctype)))


def png_payload(
    data: bytes, shape: list[int], ihdr_override: tuple[int, int] | None = None, extra: bytes = b""
) -> bytes:
    c, h, w, rows, cols = png_layout(shape)
    width, height = cols * w, rows * h
    img = bytearray(width * height)
    for ch in range(c):
        r0, c0 = (ch // cols) * h, (ch % cols) * w
        for y in range(h):
            for x in range(w):
                img[(r0 + y) * width + c0 + x] = data[(ch * h + y) * w + x]
    raw = b"".join(b"\x00" + bytes(img[y * width : (y + 1) * width]) for y in range(height))  # filter type 0 rows
    pw, ph = ihdr_override or (width, height)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", pw, ph, 8, 0, 0, 0, 0))
        + extra
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ frames
def record(
    name: str,
    dtype: str,
    shape: list[int],
    codec: str,
    filt: str,
    decoded: bytes,
    payload: bytes,
    offset: int,
    quant: tuple[str, int, float, float] | None = None,
    checksum: int | None = None,
    crc_delta: int = 0,
    padding: bytes | None = None,
    flags: int = 0,
    payload_len: int | None = None,
    codec_id: int | None = None,
) -> bytes:
    """One tensor record starting at ``offset`` from the frame start; the keyword knobs make defective ones."""
    bname = name.encode("utf-8")
    flags |= 1 if quant else 0
    csum = zlib.crc32(decoded) if checksum is None else checksum
    body = struct.pack(
        "<HBBBBBBQQ",
        len(bname),
        DTYPES[dtype][0],
        len(shape),
        CODECS[codec] if codec_id is None else codec_id,
        FILTERS[filt],
        flags,
        0,
        len(payload) if payload_len is None else payload_len,
        csum,
    )
    body += bname + struct.pack(f"<{len(shape)}Q", *shape)
    if quant:
        qdtype, bits, lo, hi = quant
        body += struct.pack("<BB6sdd", DTYPES[qdtype][0], bits, bytes(6), lo, hi)
    body += struct.pack("<I", (zlib.crc32(body) + crc_delta) & 0xFFFFFFFF)
    pad = bytes(-(offset + len(body)) % 8) if padding is None else padding
    return body + pad + payload


def frame(records: list[dict[str, Any]], count: int | None = None, header: bytes | None = None) -> bytes:
    n = len(records) if count is None else count
    out = header if header is not None else struct.pack("<4sBBHI", MAGIC, VERSION, CHECKSUM_CRC32, 0, n)
    for r in records:
        kw = {("filt" if k == "filter" else k): v for k, v in r.items()}
        out += record(offset=len(out), **kw)
    return out


def dequantized(qdtype: str, bits: int, lo: float, hi: float, codes: list[int]) -> bytes:
    """The spec's dequantization: lo + q * ((hi - lo) / (2**bits - 1)) in binary64, rounded once to ``qdtype``."""
    step = (hi - lo) / float((1 << bits) - 1)
    return tensor_bytes(qdtype, [lo + q * step for q in codes])


# ----------------------------------------------------------------- vectors
NAN_PAYLOAD = Bits(0x7FC00001)
SNAN = Bits(0x7F800001)
NEG_ZERO = Bits(0x80000000)


def t(
    name: str, dtype: str, shape: list[int], values: list[Any], codec: str = "raw", filt: str = "none"
) -> dict[str, Any]:
    data = tensor_bytes(dtype, values)
    assert len(data) == math.prod(shape) * DTYPES[dtype][2], name
    return {"name": name, "dtype": dtype, "shape": shape, "codec": codec, "filter": filt, "decoded": data}


def with_payload(spec: dict[str, Any], content_size: bool = True) -> dict[str, Any]:
    k = DTYPES[spec["dtype"]][2]
    data, codec, filt = spec["decoded"], spec["codec"], spec["filter"]
    if codec == "raw":
        payload = data
    elif codec == "zstd":
        payload = zstd_frame(apply_filter(data, k, filt), content_size)
    elif codec == "sparse":
        payload = sparse_payload(data, k, filt, content_size)
    else:
        payload = png_payload(data, spec["shape"])
    return {**spec, "payload": payload}


def valid_vectors() -> dict[str, dict[str, Any]]:
    """name -> {description, stable, tensors: [spec with payload], [quant info]}."""
    relu = [0.0, 0.0, 1.25, 0.0, 3.5, NEG_ZERO, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0] * 10
    ramp = [(i * 3) % 256 for i in range(200)]
    v: dict[str, dict[str, Any]] = {}
    v["empty_frame"] = {"description": "A frame with no tensors.", "stable": True, "tensors": []}
    v["raw_basic"] = {
        "description": "Raw tensors: float32 specials (-0.0, inf, -inf, quiet NaN with payload, signalling NaN), "
        "int64, int8, an empty uint8 tensor, a bool scalar.",
        "stable": True,
        "tensors": [
            t("f32", "float32", [2, 3], [1.5, NEG_ZERO, math.inf, -math.inf, NAN_PAYLOAD, SNAN]),
            t("i64", "int64", [3], [-1, 0, 1 << 62]),
            t("i8", "int8", [2, 2], [-128, -1, 0, 127]),
            t("empty", "uint8", [0, 4], []),
            t("flag", "bool", [], [True]),
        ],
    }
    v["raw_all_dtypes"] = {
        "description": "One raw tensor of every dtype except bfloat16, names in non-ASCII UTF-8.",
        "stable": True,
        "tensors": [
            t("bool·b", "bool", [4], [True, False, False, True]),
            t("int8·i1", "int8", [3], [-5, 0, 5]),
            t("uint8·u1", "uint8", [3], [0, 128, 255]),
            t("int16·i2", "int16", [3], [-32768, 0, 32767]),
            t("uint16·u2", "uint16", [2], [0, 65535]),
            t("int32·i4", "int32", [2], [-(2**31), 2**31 - 1]),
            t("uint32·u4", "uint32", [2], [0, 2**32 - 1]),
            t("int64·i8", "int64", [2], [-(2**63), 2**63 - 1]),
            t("uint64·u8", "uint64", [2], [0, 2**64 - 1]),
            t("float16·f2", "float16", [4], [0.5, -2.0, math.inf, Bits(0x7E01)]),
            t("float32·f4", "float32", [1, 1, 2], [1e-45, -3.25]),
            t("float64·f8", "float64", [2], [math.pi, Bits(0x7FF8000000000123)]),
            t("complex64·c8", "complex64", [2], [complex(1, -1), complex(0.5, 2)]),
            t("complex128·c16", "complex128", [1], [complex(-0.25, 1e300)]),
        ],
    }
    v["raw_bfloat16"] = {
        "description": "A raw bfloat16 tensor (exact values: the upper half of their float32 patterns).",
        "stable": True,
        "tensors": [t("bf16", "bfloat16", [2, 2], [1.0, -2.5, 0.0, 3.0])],
    }
    v["zstd_shuffle_float32"] = {
        "description": "float32 post-ReLU values, zstd with the byte-shuffle filter.",
        "stable": False,
        "tensors": [t("act", "float32", [2, 6, 10], relu, "zstd", "shuffle")],
    }
    v["zstd_delta_uint8"] = {
        "description": "A uint8 ramp, zstd with the delta filter (wrapping modulo 256).",
        "stable": False,
        "tensors": [t("ramp", "uint8", [200], ramp, "zstd", "delta")],
    }
    v["zstd_delta_shuffle_int32"] = {
        "description": "int32 values, zstd with delta then shuffle; the zstd frame has no content-size field.",
        "stable": False,
        "content_size": False,
        "tensors": [t("ids", "int32", [5, 4], [i * 1000 - 7000 for i in range(20)], "zstd", "delta+shuffle")],
    }
    v["sparse_float32"] = {
        "description": "float32 post-ReLU values (with -0.0, which is not a zero) as sparse + shuffle; 121 elements "
        "so the bitmap's last byte is partly used.",
        "stable": False,
        "tensors": [t("act", "float32", [11, 11], [*relu, 0.0], "sparse", "shuffle")],
    }
    v["sparse_delta_uint8"] = {
        "description": "uint8 codes with zeros as sparse + delta.",
        "stable": False,
        "tensors": [
            t("codes", "uint8", [4, 25], [x if i % 3 else 0 for i, x in enumerate(ramp[:100])], "sparse", "delta")
        ],
    }
    v["sparse_all_zero"] = {
        "description": "An all-zero float16 tensor as sparse (no non-zero values: an empty value frame).",
        "stable": False,
        "tensors": [t("z", "float16", [3, 3], [0.0] * 9, "sparse", "shuffle")],
    }
    v["png_uint8"] = {
        "description": "The paper's method: 3 channels of 4x5 tiled into a 2x2 grid (10x8 image, one empty tile).",
        "stable": False,
        "tensors": [t("img", "uint8", [1, 3, 4, 5], [(i * 7) % 256 for i in range(60)], "png")],
    }
    codes = [0, 1, 127, 128, 254, 255]
    q8 = t("q", "uint8", [2, 3], codes)
    q8["quant"] = ("float32", 8, -1.5, 2.25)
    codes12 = [0, 1, 2048, 4095]
    q12 = t("q12", "uint16", [4], codes12, "zstd", "shuffle")
    q12["quant"] = ("float16", 12, -4.0, 4.0)
    q_const = t("qc", "uint8", [3], [0, 0, 0])
    q_const["quant"] = ("float64", 8, 0.75, 0.75)
    v["quant_raw"] = {
        "description": "Quantized tensors stored raw: 8-bit codes of a float32 tensor over [-1.5, 2.25] and a "
        "constant float64 tensor (lo == hi).",
        "stable": True,
        "tensors": [q8, q_const],
    }
    v["quant12_zstd"] = {
        "description": "12-bit codes (uint16) of a float16 tensor, zstd + shuffle.",
        "stable": False,
        "tensors": [q12],
    }
    return v


def invalid_vectors() -> dict[str, tuple[str, bytes]]:
    """name -> (substring of the error message, frame bytes)."""
    ok = t("x", "float32", [2, 2], [1.0, 0.0, 2.0, 3.0])
    base = with_payload(ok)

    def r(**kw: Any) -> dict[str, Any]:
        d = {k: base[k] for k in ("name", "dtype", "shape", "codec", "decoded", "payload")}
        d["filt"] = base["filter"]
        d.update(kw)
        return d

    good = frame([r()])
    bad_bool = t("b", "bool", [3], [True, False, True])
    bad_bool_data = b"\x01\x02\x00"
    big = 1 << 40
    bomb = zstd_frame(bytes(1 << 20))
    relu_u8 = t("u", "uint8", [16], [0, 3, 0, 0, 5, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 2], "sparse", "none")
    sp = sparse_payload(relu_u8["decoded"], 1, "none")
    sp_bad_nnz = struct.pack("<QQ", 4, struct.unpack_from("<QQ", sp)[1]) + sp[16:]
    png = t("p", "uint8", [2, 3], [1, 2, 3, 4, 5, 6], "png")
    text = png_chunk(b"tEXt", b"Comment\x00hello")
    out = {
        "bad_magic": ("not an activation frame", b"JDNX" + good[4:]),
        "bad_version": ("version 2", good[:4] + b"\x02" + good[5:]),
        "unknown_checksum": ("unknown checksum algorithm", good[:5] + b"\x09" + good[6:]),
        "truncated_header": ("shorter than its 12-byte header", good[:7]),
        "truncated_record": ("truncated inside the record header", good[:45]),
        "truncated_payload": ("runs past the frame end", good[:-1]),
        "trailing_bytes": ("unexpected bytes after the last tensor", good + b"\x00"),
        "count_too_large": ("claims", frame([r()], count=1000)),
        "record_crc": ("record header fails its CRC", frame([r(crc_delta=1)])),
        "checksum_mismatch": ("checksum mismatch", frame([r(payload=base["payload"][:-1] + b"\x41")])),
        "nonzero_padding": ("padding", frame([r(padding=b"\x00\x00\x00\x01")])),
        "duplicate_name": ("appears twice", frame([r(), r()])),
        "unknown_codec": ("unknown codec id", frame([r(codec_id=9)])),
        "filter_on_raw": ("takes no filter", frame([r(filt="shuffle")])),
        "reserved_flag": ("reserved", frame([r(flags=0x80)])),
        "over_max_bytes": ("max_bytes", frame([r(shape=[big, 4], payload=b"")])),
        "raw_length_mismatch": ("raw payload is", frame([r(shape=[2, 3])])),
        "zstd_content_size_mismatch": (
            "declares 1048576 bytes",
            frame([r(codec="zstd", payload=bomb)]),
        ),
        "zstd_bomb_no_content_size": (
            "zstd",
            frame([r(codec="zstd", payload=zstd_frame(bytes(1 << 20), content_size=False))]),
        ),
        "zstd_garbage": ("not a zstd frame", frame([r(codec="zstd", payload=b"\x00" * 16)])),
        "sparse_nnz_mismatch": (
            "marks 5 non-zero elements",
            frame([{**relu_u8, "payload": sp_bad_nnz}]),
        ),
        "bool_not_0_or_1": (
            "bool tensor holds bytes other than 0 and 1",
            frame([{**bad_bool, "decoded": bad_bool_data, "payload": bad_bool_data}]),
        ),
        "quant_code_too_large": (
            "code exceeds 4 bits",
            frame([{**t("q", "uint8", [2], [3, 16]), "payload": bytes([3, 16]), "quant": ("float32", 4, 0.0, 1.0)}]),
        ),
        "quant_bad_range": (
            "invalid quantization parameters",
            frame([{**t("q", "uint8", [2], [3, 1]), "payload": bytes([3, 1]), "quant": ("float32", 8, 1.0, 0.0)}]),
        ),
        "png_wrong_dimensions": (
            "png image is 4x2",
            frame([{**png, "payload": png_payload(png["decoded"], [2, 3], ihdr_override=(4, 2))}]),
        ),
        "png_extra_chunk": (
            "not allowed",
            frame([{**png, "payload": png_payload(png["decoded"], [2, 3], extra=text)}]),
        ),
        "png_on_float32": ("png payload needs a 1-byte dtype", frame([r(codec="png")])),
    }
    return {k: (msg, data) for k, (msg, data) in out.items()}


def tensor_json(spec: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": spec["name"],
        "dtype": spec["dtype"],
        "shape": spec["shape"],
        "codec": spec["codec"],
        "filter": spec["filter"],
        "data_hex": spec["decoded"].hex(),
        "crc32": f"0x{zlib.crc32(spec['decoded']):08x}",
        "quant": None,
    }
    if spec.get("quant"):
        qdtype, bits, lo, hi = spec["quant"]
        k = DTYPES[spec["dtype"]][2]
        data = spec["decoded"]
        codes = [int.from_bytes(data[i : i + k], "little") for i in range(0, len(data), k)]
        deq = dequantized(qdtype, bits, lo, hi, codes).hex()
        d["quant"] = {"dtype": qdtype, "bits": bits, "lo": lo, "hi": hi, "dequantized_hex": deq}
    return d


def build() -> dict[str, bytes]:
    """Every vector file (relative path -> bytes)."""
    files: dict[str, bytes] = {}
    for name, vec in valid_vectors().items():
        specs = [with_payload(s, vec.get("content_size", True)) for s in vec["tensors"]]
        files[f"{name}.jdnf"] = frame(specs)
        doc = {
            "description": vec["description"],
            "frame": f"{name}.jdnf",
            "bytes_stable": vec["stable"],
            "checksum": "crc32",
            "tensors": [tensor_json(s) for s in vec["tensors"]],
        }
        files[f"{name}.json"] = (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    for name, (msg, data) in invalid_vectors().items():
        files[f"invalid/{name}.jdnf"] = data
        doc = {"frame": f"{name}.jdnf", "error": msg, "max_bytes": 1 << 24}
        files[f"invalid/{name}.json"] = (json.dumps(doc, indent=1) + "\n").encode("utf-8")
    return files


def main() -> None:
    for rel, data in build().items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(build())} files under {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
