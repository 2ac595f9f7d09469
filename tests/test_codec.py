"""Round trips, payload layouts and quantization of jointdnn_edge.codec.

Oracles: bit equality of the decoded bytes with the input (``view(np.uint8)``),
payload layouts re-derived here with plain Python loops, the PNG tiling read
back with Pillow directly, and dequantized values recomputed with Python floats.
"""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from fixtures_codec import post_relu
from jointdnn_edge import CodecError, ConfigError, codec
from jointdnn_edge.codec import codecs as C

pytestmark = pytest.mark.pure

try:
    import ml_dtypes

    BF16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover
    BF16 = None

DTYPES = [
    np.dtype(d)
    for d in (
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
] + ([BF16] if BF16 is not None else [])
LOSSLESS = ("raw", "zstd", "sparse", "auto")


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bytes (NaN payloads and -0.0 included)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def random_tensor(dtype: np.dtype, shape: tuple[int, ...], seed: int, zero_frac: float) -> np.ndarray:
    """Random bit patterns (every NaN payload possible) with about ``zero_frac`` all-zero elements."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    a = raw.view(dtype).reshape(shape).copy()
    flat = a.reshape(-1)
    flat[rng.random(n) < zero_frac] = np.zeros(1, dtype)[0]
    return a


SPECIALS32 = np.array(
    [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0x7F800001, 0xFFFFFFFF, 0x00000001],
    dtype=np.uint32,
).view(np.float32)


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1,), (7,), (3, 4, 5), (2, 3, 9, 11)], ids=str)
def test_every_dtype_and_shape_round_trips(dtype: np.dtype, shape: tuple[int, ...]) -> None:
    a = random_tensor(dtype, shape, seed=len(shape), zero_frac=0.5)
    for name in LOSSLESS:
        out = codec.decode(codec.encode({"t": a}, codec=name))["t"]
        assert same_bits(out, a), name
    if dtype.itemsize == 1 and a.size:
        assert same_bits(codec.decode(codec.encode({"t": a}, codec="png"))["t"], a)


@pytest.mark.parametrize("name", LOSSLESS)
def test_float_specials_survive_bit_for_bit(name: str) -> None:
    f32 = np.tile(SPECIALS32, 40).reshape(8, 45)
    f16 = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7E01, 0x7C01, 0x0001], np.uint16).view(np.float16)
    f64 = np.array([0, 1 << 63, 0x7FF0000000000000, 0x7FF8000000000001, 0x7FF0000000000001], np.uint64).view(np.float64)
    tensors = {"f32": f32, "f16": np.tile(f16, 30), "f64": np.tile(f64, 30), "scalar": np.float32(-0.0)}
    out = codec.decode(codec.encode(tensors, codec=name))
    for k, v in tensors.items():
        assert same_bits(out[k], np.asarray(v)), k


@st.composite
def tensors(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
    return random_tensor(dtype, shape, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([0.0, 0.3, 0.9, 1.0])))


@given(a=tensors(), name=st.sampled_from(LOSSLESS), level=st.sampled_from([-3, 1, 5]))
def test_round_trip_property(a: np.ndarray, name: str, level: int) -> None:
    out = codec.decode(codec.encode({"x": a}, codec=name, level=level))
    assert list(out) == ["x"]
    assert same_bits(out["x"], a)


def test_many_tensors_keep_order_names_and_codecs(activation: np.ndarray) -> None:
    tensors = {
        "conv1/relu": activation,
        "ids": np.arange(100, dtype=np.int64),
        "mask": np.arange(30) % 3 == 0,
        "": np.float32(1.5),
        "ünïcødé ✓": np.zeros((0, 5), np.float16),
    }
    frame = codec.encode(tensors)
    out = codec.decode(frame)
    assert list(out) == list(tensors)
    for k, v in tensors.items():
        assert same_bits(out[k], np.asarray(v)), k
    heads = {e.name: e for e in codec.read_headers(frame)}
    assert heads["conv1/relu"].codec == "sparse"  # 60% zeros
    assert heads["ünïcødé ✓"].codec == "raw" and heads["ünïcødé ✓"].payload_bytes == 0  # empty: always raw
    assert heads[""].codec == "raw"  # 4 bytes: too small to compress
    assert heads["conv1/relu"].shape == (1, 16, 24, 24) and heads["conv1/relu"].dtype == np.float32


def test_non_contiguous_and_big_endian_inputs() -> None:
    base = post_relu((6, 8, 10), 0.5)
    cases = {
        "fortran": np.asfortranarray(base),
        "strided": base[:, ::2, 1::3],
        "transposed": base.transpose(2, 0, 1),
        "big_endian": base.astype(">f4"),
        "big_endian_i64": np.arange(50, dtype=">i8"),
    }
    out = codec.decode(codec.encode(cases))
    for k, v in cases.items():
        want = np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<"))
        assert same_bits(out[k], want), k
        assert np.array_equal(out[k], v)


def test_decoded_arrays_are_read_only_and_raw_is_zero_copy() -> None:
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    frame = codec.encode({"a": a, "s": post_relu((4, 8, 8), 0.5)}, codec="raw")
    out = codec.decode(frame)
    assert not out["a"].flags.writeable and not out["s"].flags.writeable
    assert np.shares_memory(out["a"], np.frombuffer(frame, np.uint8))  # a view of the frame, no copy
    assert out["a"].flags.aligned
    sparse = codec.decode(codec.encode({"s": post_relu((4, 8, 8), 0.5)}, codec="sparse"))["s"]
    assert not sparse.flags.writeable


def test_decodes_from_unaligned_memoryview_slices() -> None:
    a = np.arange(40, dtype=np.float64)
    frame = codec.encode({"a": a}, codec="raw")
    buf = bytearray(b"\x00" + frame + b"\x00")
    out = codec.decode(memoryview(buf)[1:-1])["a"]  # payload now at an odd address
    assert out.flags.aligned
    assert same_bits(out, a)


def test_multithreaded_zstd_round_trips() -> None:
    a = post_relu((1, 64, 64, 80), 0.4)  # 1.3 MB: above the threading threshold
    for name in ("zstd", "sparse"):
        assert same_bits(codec.decode(codec.encode({"a": a}, codec=name, threads=2))["a"], a)


# --------------------------------------------------------- payload layouts
def test_raw_record_layout_matches_the_spec_by_hand() -> None:
    a = np.array([[1.0, -0.0], [np.inf, 2.5]], np.float32)
    frame = codec.encode({"xy": a}, codec="raw")
    assert frame[:12] == b"JDNF" + bytes([1, 1, 0, 0]) + struct.pack("<I", 1)
    name_len, dtype, ndim, cid, filt, flags, rsv, plen, csum = struct.unpack_from("<HBBBBBBQQ", frame, 12)
    assert (name_len, dtype, ndim, cid, filt, flags, rsv, plen) == (2, 12, 2, 0, 0, 0, 0, 16)
    assert csum == zlib.crc32(a.tobytes())
    assert frame[36:38] == b"xy" and struct.unpack_from("<2Q", frame, 38) == (2, 2)
    assert struct.unpack_from("<I", frame, 54)[0] == zlib.crc32(frame[12:54])
    assert frame[58:64] == bytes(6)  # padding to offset 64
    assert frame[64:] == a.tobytes() and len(frame) == 80


def test_sparse_payload_layout_by_hand() -> None:
    a = np.array([0, 3, 0, 0, 7, 0, 0, 0, 1, 0], np.int16)
    e = codec.read_headers(frame := codec.encode({"a": a}, codec="sparse"))[0]
    assert (e.codec, e.filter) == ("sparse", "shuffle")
    payload = frame[e.payload_offset : e.payload_offset + e.payload_bytes]
    nnz, bm_len = struct.unpack_from("<QQ", payload)
    assert nnz == 3
    bitmap = zstandard.ZstdDecompressor().decompress(payload[16 : 16 + bm_len])
    bits = [(bitmap[i // 8] >> (i % 8)) & 1 for i in range(a.size)]
    assert bits == [int(v != 0) for v in a]
    values = zstandard.ZstdDecompressor().decompress(payload[16 + bm_len :])
    nz = [int(v) for v in a if v]
    le = b"".join(struct.pack("<h", v) for v in nz)
    assert values == bytes(le[j] for j in range(0, 6, 2)) + bytes(le[j] for j in range(1, 6, 2))  # shuffled


def test_negative_zero_is_a_nonzero_element_for_sparse() -> None:
    a = np.array([0.0, -0.0, 0.0, np.nan, 0.0], np.float32)
    assert codec.zero_ratio(a) == pytest.approx(0.6)
    e = codec.read_headers(frame := codec.encode({"a": a}, codec="sparse"))[0]
    payload = frame[e.payload_offset :]
    assert struct.unpack_from("<Q", payload)[0] == 2
    assert same_bits(codec.decode(frame)["a"], a)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "uint64"])
def test_delta_filter_matches_a_python_loop(dtype: str) -> None:
    a = (np.arange(300, dtype=np.int64) * 37 % 251).astype(dtype)
    flat = np.ascontiguousarray(a)
    k = flat.dtype.itemsize
    for filt in (C.FILTER_DELTA, C.FILTER_DELTA_SHUFFLE):
        got = bytes(C._apply_filter(flat, filt))
        mod = 1 << (8 * k)
        prev, ref = 0, bytearray()
        for v in flat.tolist():
            ref += ((int(v) - prev) % mod).to_bytes(k, "little")
            prev = int(v)
        if filt == C.FILTER_DELTA_SHUFFLE:
            ref = bytearray(ref[i * k + j] for j in range(k) for i in range(flat.size))
        assert got == bytes(ref)
        back = C._undo_filter(got, filt, flat.dtype, flat.size)
        assert same_bits(back, flat)


def test_png_codec_tiles_channels_as_the_paper_does() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (1, 5, 3, 4), dtype=np.uint8)  # 5 channels -> 3 columns x 2 rows of 3x4 tiles
    frame = codec.encode({"a": a}, codec="png")
    e = codec.read_headers(frame)[0]
    img = np.asarray(Image.open(io.BytesIO(frame[e.payload_offset :])))
    assert img.shape == (6, 12)
    for c in range(5):
        r0, c0 = (c // 3) * 3, (c % 3) * 4
        assert np.array_equal(img[r0 : r0 + 3, c0 : c0 + 4], a[0, c])
    assert not img[3:6, 8:12].any()  # the unused sixth tile is black
    assert same_bits(codec.decode(frame)["a"], a)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((), (1, 1, 1, 1, 1)), ((9,), (1, 1, 9, 1, 1)), ((4, 6), (1, 4, 6, 1, 1)), ((2, 5, 3, 3), (10, 3, 3, 3, 4))],
)
def test_png_layout(shape: tuple[int, ...], layout: tuple[int, ...]) -> None:
    assert C.png_layout(shape) == layout


def test_png_needs_one_byte_elements() -> None:
    with pytest.raises(CodecError, match="quantize_bits=8"):
        codec.encode({"a": np.ones((2, 2), np.float32)}, codec="png")
    out = codec.decode(codec.encode({"a": np.ones((2, 3, 3), np.float32) * 0.5}, codec="png", quantize_bits=8))
    assert np.array_equal(out["a"], np.full((2, 3, 3), 0.5, np.float32))


# ----------------------------------------------------------------- auto
def test_auto_choices() -> None:
    heads = codec.read_headers(
        codec.encode(
            {
                "tiny": np.arange(4, dtype=np.float32),
                "relu": post_relu((8, 32, 32), 0.6),
                "dense": np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32),
                "noise": np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8),
            }
        )
    )
    got = {e.name: e for e in heads}
    assert got["tiny"].codec == "raw"
    assert got["relu"].codec == "sparse"
    assert got["dense"].codec in ("zstd", "raw")
    assert got["noise"].codec == "raw"  # incompressible: auto falls back to raw, never expands
    for e in heads:
        assert e.payload_bytes <= e.raw_bytes


def test_auto_picks_delta_for_smooth_bytes_only() -> None:
    ramp = (np.arange(20000) // 7 % 256).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 4, 20000, dtype=np.uint8) * 60
    assert C.FILTER_DELTA == codec.choice.choose_filter(ramp, C.ZSTD)
    assert C.FILTER_NONE == codec.choice.choose_filter(noise, C.ZSTD)
    assert C.FILTER_SHUFFLE == codec.choice.choose_filter(ramp.astype(np.float32), C.SPARSE)


def test_sparse_beats_plain_zstd_on_post_relu_data() -> None:
    a = post_relu((16, 40, 40), 0.7)
    sizes = {c: len(codec.encode({"a": a}, codec=c)) for c in ("raw", "zstd", "sparse")}
    assert sizes["sparse"] < sizes["zstd"] < sizes["raw"]
    assert a.nbytes / sizes["sparse"] > 2.0


# ------------------------------------------------------------ quantization
@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
@pytest.mark.parametrize("lo_hi", [(0.0, 6.0), (-3.0, -1.0), (-2.0, 5.0)])
def test_quantize_error_within_half_a_step(bits: int, lo_hi: tuple[float, float]) -> None:
    lo, hi = lo_hi
    x = np.random.default_rng(bits).uniform(lo, hi, (3, 50)).astype(np.float32)
    qt = codec.quantize(x, bits)
    assert qt.q.dtype == (np.uint8 if bits <= 8 else np.uint16)
    assert int(qt.q.max()) <= (1 << bits) - 1
    assert qt.lo == float(x.min()) and qt.hi == float(x.max())
    err = codec.quantization_error(x, qt)
    assert err.max_abs <= qt.error_bound * (1 + 1e-4) + 4 * np.finfo(np.float32).eps * max(abs(lo), abs(hi))
    assert err.bound == qt.error_bound and err.rmse <= err.max_abs


def test_dequantize_follows_the_spec_formula() -> None:
    x = np.array([-1.5, -0.2, 0.0, 0.7, 2.25], np.float32)
    qt = codec.quantize(x, 8)
    step = (qt.hi - qt.lo) / 255.0
    want = [struct.unpack("<f", struct.pack("<f", qt.lo + int(q) * step))[0] for q in qt.q]  # binary64, then float32
    assert codec.dequantize(qt).tolist() == want
    assert codec.dequantize(qt).dtype == np.float32


def test_quantize_constant_and_empty_tensors() -> None:
    c = np.full((4, 4), -2.5, np.float32)
    qt = codec.quantize(c)
    assert qt.step == 0.0 and not qt.q.any()
    assert np.array_equal(codec.dequantize(qt), c)
    e = codec.quantize(np.zeros((0, 3), np.float16))
    assert codec.dequantize(e).shape == (0, 3) and codec.dequantize(e).dtype == np.float16


@pytest.mark.parametrize("dtype", ["float16", "float64", *(["bfloat16"] if BF16 is not None else [])])
def test_quantize_other_float_dtypes(dtype: str) -> None:
    dt = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    x = np.linspace(-1, 3, 200).astype(dt)
    qt = codec.quantize(x, 8)
    back = codec.dequantize(qt)
    assert back.dtype == dt
    tol = qt.error_bound + 4 * float(np.finfo(np.float16).eps if dt.itemsize == 2 else 0.0) * 3 + 1e-12
    assert np.max(np.abs(back.astype(np.float64) - x.astype(np.float64))) <= tol + (0.02 if dtype == "bfloat16" else 0)


def test_quantize_rejects_what_it_cannot_represent() -> None:
    with pytest.raises(CodecError, match="NaN or infinity"):
        codec.quantize(np.array([1.0, np.nan], np.float32))
    with pytest.raises(CodecError, match="NaN or infinity"):
        codec.quantize(np.array([1.0, np.inf], np.float32))
    with pytest.raises(CodecError, match="floating"):
        codec.quantize(np.arange(5))
    for bits in (0, 17, 2.5, True):
        with pytest.raises(ConfigError, match="bits"):
            codec.quantize(np.ones(3, np.float32), bits)  # type: ignore[arg-type]


def test_quantized_tensors_travel_with_their_parameters() -> None:
    x = post_relu((4, 16, 16), 0.5)
    ids = np.arange(10, dtype=np.int32)
    for name in ("raw", "zstd", "sparse", "auto", "png"):
        tensors = {"x": x} if name == "png" else {"x": x, "ids": ids}
        frame = codec.encode(tensors, codec=name, quantize_bits=8)
        out = codec.decode(frame)
        assert out["x"].dtype == np.float32
        assert np.array_equal(out["x"], codec.dequantize(codec.quantize(x, 8)))
        if "ids" in tensors:
            assert same_bits(out["ids"], ids)  # integers are never quantized
        raw = codec.decode(frame, dequantize=False)["x"]
        assert isinstance(raw, codec.QuantizedTensor) and np.array_equal(raw.q, codec.quantize(x, 8).q)
        e = codec.read_headers(frame)[0]
        assert e.quant is not None and e.quant.bits == 8 and e.dtype == np.uint8 and e.out_bytes == x.nbytes
    q12 = codec.quantize(x, 12)
    out12 = codec.decode(codec.encode({"x": q12}, codec="zstd"))["x"]
    assert np.array_equal(out12, codec.dequantize(q12))


def test_encode_validates_quantized_tensor_values() -> None:
    good = codec.quantize(np.ones(3, np.float32))
    bad = [
        codec.QuantizedTensor(good.q.astype(np.uint16), 0.0, 1.0, 8, np.dtype(np.float32)),
        codec.QuantizedTensor(good.q, 1.0, 0.0, 8, np.dtype(np.float32)),
        codec.QuantizedTensor(good.q, 0.0, math.nan, 8, np.dtype(np.float32)),
        codec.QuantizedTensor(good.q, 0.0, 1.0, 8, np.dtype(np.int32)),
    ]
    for qt in bad:
        with pytest.raises(CodecError):
            codec.encode({"q": qt})


# ----------------------------------------------------------- encode errors
@pytest.mark.parametrize(
    ("tensors", "kwargs", "error", "match"),
    [
        ({"a": np.array(["x"])}, {}, CodecError, "cannot be sent"),
        ({"a": np.array([object()])}, {}, CodecError, "cannot be sent"),
        ({1: np.ones(2)}, {}, CodecError, "names must be strings"),
        ({"a" * 70000: np.ones(2)}, {}, CodecError, "longer than 65535"),
        ({"a": np.ones(2)}, {"codec": "lz4"}, ConfigError, "unknown codec"),
        ({"a": np.ones(2)}, {"checksum": "md5"}, ConfigError, "unknown checksum"),
        ({"a": np.ones(2)}, {"level": "3"}, ConfigError, "level"),
        ({"a": np.ones(2)}, {"quantize_bits": 0}, ConfigError, "bits"),
        ({"a": np.ones([1] * 33)}, {}, CodecError, "dimensions"),
        ({"a": np.array([1, 2], np.uint8).view(np.bool_)}, {}, CodecError, "bool tensor"),
    ],
)
def test_encode_rejects_bad_input(tensors: dict, kwargs: dict, error: type[Exception], match: str) -> None:
    """Bad data is a CodecError, a bad option a ConfigError (never one for the other)."""
    with pytest.raises(error, match=match) as raised:
        codec.encode(tensors, **kwargs)
    assert isinstance(raised.value, CodecError) == (error is CodecError)


def test_encode_takes_a_mapping() -> None:
    with pytest.raises(CodecError, match="mapping"):
        codec.encode([np.ones(2)])  # type: ignore[arg-type]


# --------------------------------------------------------------- checksums
def test_checksum_is_crc32_of_the_decoded_bytes_for_every_codec(activation: np.ndarray) -> None:
    want = zlib.crc32(activation.tobytes())
    for name in ("raw", "zstd", "sparse"):
        assert codec.read_headers(codec.encode({"a": activation}, codec=name))[0].checksum == want


@pytest.mark.parametrize("name", ["crc32c", "xxh3"])
def test_optional_checksums(name: str, activation: np.ndarray) -> None:
    if name not in codec.CHECKSUMS:
        with pytest.raises(ConfigError, match="not installed"):
            codec.encode({"a": activation}, checksum=name)
        return
    frame = codec.encode({"a": activation}, checksum=name)
    assert frame[5] == {"crc32c": 2, "xxh3": 3}[name]
    assert same_bits(codec.decode(frame)["a"], activation)
    corrupt = bytearray(frame)
    corrupt[-1] ^= 1
    with pytest.raises(CodecError):
        codec.decode(bytes(corrupt))


# --------------------------------------------------------------- estimates
def test_zero_ratio_counts_all_zero_bytes_only() -> None:
    assert codec.zero_ratio(np.array([0.0, -0.0, 1.0, 0.0], np.float32)) == 0.5
    assert codec.zero_ratio(np.zeros((0,))) == 0.0
    assert codec.zero_ratio(np.array([0, 0, 0, 5], np.int8)) == 0.75


def test_estimate_ratio_is_exact_on_small_tensors(activation: np.ndarray) -> None:
    for name in ("zstd", "sparse", "auto", "raw"):
        payload = codec.read_headers(codec.encode({"t": activation}, codec=name))[0].payload_bytes
        assert codec.estimate_ratio(activation, name) == pytest.approx(activation.nbytes / payload)
    q_payload = codec.read_headers(codec.encode({"t": activation}, codec="png", quantize_bits=8))[0].payload_bytes
    assert codec.estimate_ratio(activation, "png", quantize_bits=8) == pytest.approx(activation.nbytes / q_payload)
    assert codec.estimate_ratio(np.zeros((0, 2)), "sparse") == 1.0


def test_estimate_ratio_from_a_sample_is_close(activation: np.ndarray) -> None:
    big = np.concatenate([post_relu((1, 16, 48, 48), 0.6, seed=s) for s in range(6)], axis=1)  # 884 KB
    for name in ("sparse", "zstd"):
        exact = big.nbytes / codec.read_headers(codec.encode({"t": big}, codec=name))[0].payload_bytes
        est = codec.estimate_ratio(big, name, sample_bytes=1 << 17)
        assert est == pytest.approx(exact, rel=0.1)
    flat = big.reshape(-1)
    exact = flat.nbytes / codec.read_headers(codec.encode({"t": flat}, codec="sparse"))[0].payload_bytes
    assert codec.estimate_ratio(flat, "sparse", sample_bytes=1 << 17) == pytest.approx(exact, rel=0.1)
