"""Decoding untrusted bytes: corrupt, truncated, hostile and random frames.

The decoder must either return exactly what was encoded or raise CodecError,
never another exception, never hang, and never allocate much beyond the
caller's ``max_bytes`` (measured with tracemalloc, which sees numpy's and
Python's allocations).
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from fixtures_codec import load_reference_writer, post_relu
from jointdnn_edge import CodecError, ConfigError, FrameTooLargeError, codec

pytestmark = pytest.mark.pure

REF = load_reference_writer()


def _frames() -> list[tuple[bytes, dict[str, np.ndarray]]]:
    x = post_relu((2, 6, 7), 0.6, seed=1)
    tensors = {
        "relu": x,
        "ids": np.arange(-3, 9, dtype=np.int64),
        "mask": np.arange(13) % 2 == 0,
        "h": np.linspace(-1, 1, 40).astype(np.float16),
    }
    out = []
    for name in ("raw", "zstd", "sparse", "auto"):
        out.append((codec.encode(tensors, codec=name), tensors))
    for name, bits in (("png", 8), ("sparse", 12)):
        frame = codec.encode({"q": x}, codec=name, quantize_bits=bits)
        out.append((frame, dict(codec.decode(frame))))  # lossy: what the frame holds is the reference
    return out


FRAMES = _frames()


def same(out: dict[str, Any], want: dict[str, np.ndarray]) -> bool:
    if list(out) != list(want):
        return False
    return all(
        out[k].dtype == np.asarray(v).dtype
        and out[k].shape == np.shape(v)
        and out[k].tobytes() == np.asarray(v).tobytes()
        for k, v in want.items()
    )


def decode_or_error(data: bytes, max_bytes: int = 1 << 20) -> dict[str, Any] | None:
    """Decode; None on CodecError. Any other exception fails the test."""
    try:
        out = codec.decode(data, max_bytes=max_bytes)
    except CodecError:
        return None
    assert sum(a.nbytes for a in out.values()) <= max_bytes
    return out


def test_every_valid_frame_decodes() -> None:
    for frame, want in FRAMES:
        assert same(codec.decode(frame), want)


def test_every_truncation_is_rejected() -> None:
    for frame, _ in FRAMES:
        for cut in range(len(frame)):
            with pytest.raises(CodecError):
                codec.decode(frame[:cut])


def test_every_single_bit_flip_is_caught_or_harmless() -> None:
    for frame, want in FRAMES[2:5]:  # sparse, auto, png: the most structured payloads
        for pos in range(len(frame)):
            for bit in range(8):
                data = bytearray(frame)
                data[pos] ^= 1 << bit
                out = decode_or_error(bytes(data))
                assert out is None or same(out, want), (pos, bit)


@given(
    index=st.integers(0, len(FRAMES) - 1),
    edits=st.lists(
        st.tuples(st.sampled_from(["set", "insert", "delete", "splice"]), st.integers(0, 10**6), st.binary(max_size=9)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_frames_never_escape_codec_error(index: int, edits: list[tuple[str, int, bytes]]) -> None:
    frame, want = FRAMES[index]
    data = bytearray(frame)
    for op, where, blob in edits:
        pos = where % (len(data) + 1)
        if op == "set":
            data[pos : pos + len(blob)] = blob
        elif op == "insert":
            data[pos:pos] = blob
        elif op == "delete":
            del data[pos : pos + 1 + len(blob)]
        else:  # splice in a piece of another valid frame
            other = FRAMES[(index + 1) % len(FRAMES)][0]
            data[pos:] = other[where % len(other) :]
    out = decode_or_error(bytes(data))
    if out is not None and bytes(data) == frame:
        assert same(out, want)


PREFIXES = [b"", b"JDNF\x01\x01\x00\x00", b"JDNF\x01\x01\x00\x00\x01\x00\x00\x00"]


@given(data=st.binary(max_size=300), prefix=st.sampled_from(PREFIXES))
def test_random_bytes_never_escape_codec_error(data: bytes, prefix: bytes) -> None:
    decode_or_error(prefix + data)


def test_non_bytes_inputs_are_codec_errors() -> None:
    for bad in ("JDNF", 12, None, np.zeros((2, 2), np.float32)[:, :1]):
        with pytest.raises(CodecError):
            codec.decode(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_bytes"):
        codec.decode(FRAMES[0][0], max_bytes=-1)


# ------------------------------------------------------------ size limits
def test_max_bytes_is_enforced_before_decoding() -> None:
    a = post_relu((4, 32, 32), 0.5)
    frame = codec.encode({"a": a, "b": a}, codec="sparse")
    assert same(codec.decode(frame, max_bytes=2 * a.nbytes), {"a": a, "b": a})
    with pytest.raises(FrameTooLargeError, match="max_bytes"):
        codec.decode(frame, max_bytes=2 * a.nbytes - 1)
    with pytest.raises(FrameTooLargeError, match="max_bytes"):
        codec.read_headers(frame, max_bytes=a.nbytes)


def test_dequantized_size_counts_against_the_limit() -> None:
    a = post_relu((4, 32, 32), 0.5)
    frame = codec.encode({"a": a}, quantize_bits=8)  # 4 KB of codes, 16 KB of floats
    with pytest.raises(FrameTooLargeError, match="max_bytes"):
        codec.decode(frame, max_bytes=a.nbytes - 1)
    assert codec.decode(frame, max_bytes=a.nbytes)["a"].shape == a.shape


def _peak_during(fn: Any) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            fn()
        except CodecError:
            pass
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _zstd_zeros(n_mib: int, content_size: bool) -> bytes:
    """A zstd frame of ``n_mib`` MiB of zeros, built without holding them in memory."""
    cobj = zstandard.ZstdCompressor(level=1, write_content_size=content_size).compressobj()
    chunk = bytes(1 << 20)
    parts = [cobj.compress(chunk) for _ in range(n_mib)]
    parts.append(cobj.flush())
    return b"".join(parts)


@pytest.mark.parametrize("content_size", [True, False])
@pytest.mark.parametrize("where", ["zstd", "sparse_bitmap", "sparse_values"])
def test_decompression_bombs_are_stopped_without_allocating(content_size: bool, where: str) -> None:
    bomb = _zstd_zeros(64, content_size)  # 64 MiB of zeros in a few KB
    assert len(bomb) < 100_000
    spec = REF.t("x", "float32", [64], [1.0] * 64)
    if where == "zstd":
        payload = bomb
        spec["codec"] = "zstd"
    elif where == "sparse_bitmap":
        payload = struct.pack("<QQ", 64, len(bomb)) + bomb + REF.zstd_frame(spec["decoded"])
        spec["codec"] = "sparse"
    else:
        bitmap = REF.zstd_frame(b"\xff" * 8)
        payload = struct.pack("<QQ", 64, len(bitmap)) + bitmap + bomb
        spec["codec"] = "sparse"
    frame = REF.frame([{**spec, "filt": "none", "payload": payload}])
    with pytest.raises(CodecError):
        codec.decode(frame)
    assert _peak_during(lambda: codec.decode(frame)) < 4 << 20


def test_declared_giant_shapes_are_refused_before_allocation() -> None:
    for shape in ([1 << 40], [1 << 63, 1 << 63], [1 << 20, 1 << 20, 0, 1 << 30], [1 << 20, 0, 1 << 10]):
        spec = REF.t("x", "float32", [0], [])
        frame = REF.frame([{**spec, "shape": shape, "filt": "none", "codec": "zstd", "payload": REF.zstd_frame(b"")}])
        if shape[-1] == 1 << 10:  # a zero dimension makes it empty: a valid frame
            assert codec.decode(frame)["x"].shape == tuple(shape)
            continue
        if shape == [1 << 40]:  # representable, but over the default limit
            with pytest.raises(FrameTooLargeError, match="max_bytes"):
                codec.decode(frame)
        else:  # no array can have this shape, not even an empty one: a corrupt header
            with pytest.raises(CodecError, match="too large to represent"):
                codec.decode(frame)
        assert _peak_during(lambda f=frame: codec.decode(f)) < 1 << 20


def test_png_dimension_bomb_is_refused_before_inflating() -> None:
    # The IHDR claims 60000 x 60000 pixels (3.6 GB); the tensor header claims 4 x 4.
    spec = REF.t("p", "uint8", [4, 4], list(range(16)), "png")
    png = REF.png_payload(spec["decoded"], [4, 4], ihdr_override=(60000, 60000))
    frame = REF.frame([{**spec, "filt": "none", "payload": png}])
    with pytest.raises(CodecError, match=r"60000x60000"):
        codec.decode(frame)
    # IDAT inflating to 64 MiB for a 4 x 4 image: Pillow stops at the image size.
    rows = b"".join(b"\x00" + bytes(spec["decoded"][4 * y : 4 * y + 4]) for y in range(4))
    z = zlib.compressobj(9)
    idat = z.compress(rows) + b"".join(z.compress(bytes(1 << 20)) for _ in range(64)) + z.flush()
    png = b"\x89PNG\r\n\x1a\n" + REF.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
    png += REF.png_chunk(b"IDAT", idat) + REF.png_chunk(b"IEND", b"")
    frame = REF.frame([{**spec, "filt": "none", "payload": png}])
    peak = _peak_during(lambda: codec.decode(frame))
    assert peak < 8 << 20
    out = decode_or_error(frame)
    assert out is None or np.array_equal(out["p"], np.arange(16, dtype=np.uint8).reshape(4, 4))


def test_corrupt_png_data_is_a_codec_error() -> None:
    spec = REF.t("p", "uint8", [4, 4], list(range(16)), "png")
    good = REF.png_payload(spec["decoded"], [4, 4])
    idat_at = good.index(b"IDAT")
    length = struct.unpack(">I", good[idat_at - 4 : idat_at])[0]
    broken_body = b"\x78\x9c" + b"\xff" * (length - 2)  # valid zlib header, garbage deflate data
    chunk = REF.png_chunk(b"IDAT", broken_body)
    png = good[: idat_at - 4] + chunk + good[idat_at + 8 + length :]
    frame = REF.frame([{**spec, "filt": "none", "payload": png}])
    with pytest.raises(CodecError):
        codec.decode(frame)


def test_crafted_structural_defects(codec_ref: ModuleType) -> None:
    spec = codec_ref.with_payload(codec_ref.t("x", "uint8", [4], [1, 0, 2, 0], "sparse", "none"))
    ok = codec_ref.frame([spec])
    assert codec.decode(ok)["x"].tolist() == [1, 0, 2, 0]
    nnz, bm_len = struct.unpack_from("<QQ", spec["payload"])
    cases = {
        "claims more non-zeros than elements": struct.pack("<QQ", 5, bm_len) + spec["payload"][16:],
        "bitmap runs past the payload": struct.pack("<QQ", nnz, 10**6) + spec["payload"][16:],
        "shorter than its 16-byte header": b"\x00" * 8,
    }
    for why, payload in cases.items():
        frame = codec_ref.frame([{**spec, "payload": payload}])
        with pytest.raises(CodecError, match=why.split(" ")[-1]):
            codec.decode(frame)
    # bits set past the last element
    bitmap = zstandard.ZstdCompressor().compress(bytes([0b00010101]))
    vals = zstandard.ZstdCompressor().compress(bytes([1, 2, 3]))
    frame = codec_ref.frame([{**spec, "payload": struct.pack("<QQ", 3, len(bitmap)) + bitmap + vals}])
    with pytest.raises(CodecError, match="past the last element"):
        codec.decode(frame)
    # a zstd frame that needs a dictionary
    d = zstandard.train_dictionary(1024, [bytes([i % 7] * 64) for i in range(200)])
    with_dict = zstandard.ZstdCompressor(dict_data=d).compress(b"\x01\x00\x02\x00")
    frame = codec_ref.frame([{**spec, "codec": "zstd", "payload": with_dict}])
    with pytest.raises(CodecError, match="dictionary"):
        codec.decode(frame)
    # bad UTF-8 in a name
    bad_name = bytearray(ok)
    bad_name[36] = 0xFF  # the name's only byte
    body_end = 12 + 24 + 1 + 8
    bad_name[body_end : body_end + 4] = struct.pack("<I", zlib.crc32(bytes(bad_name[12:body_end])))
    with pytest.raises(CodecError, match="UTF-8"):
        codec.decode(bytes(bad_name))
