"""Lossy options for a cut tensor: error bounds worked out by hand, sizes, specs in JSON, hostile bytes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from jointdnn_edge import CodecError, ConfigError, FrameTooLargeError, lossy
from jointdnn_edge.lossy import LossyOption, LossySpec

#: a raw frame holding one 1-D uint8 tensor: 12-byte frame header + 24-byte record + 8 (shape) + 4 (CRC), no padding
FRAME_OVERHEAD = 12 + 24 + 8 + 4


def activations(seed: int = 0, shape: tuple[int, ...] = (2, 6, 5, 7)) -> np.ndarray:
    """Post-ReLU-like feature maps whose channels have different scales and are correlated."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    mix = rng.standard_normal((c, c)) * np.linspace(0.2, 3.0, c)[:, None]
    base = rng.standard_normal((shape[0], *shape[2:], c)) @ mix
    return np.maximum(np.moveaxis(base, -1, 1), 0).astype(np.float32)


@pytest.mark.parametrize("bits", [8, 6, 4, 2])
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_quantization_error_is_at_most_half_a_step_inside_the_clip_range(bits, granularity):
    x = activations()
    spec = lossy.fit(x, LossyOption(bits=bits, granularity=granularity, clip="minmax"))
    y = lossy.decode(lossy.encode(x, spec, frame_codec="raw"), spec, x.shape, x.dtype)
    # by hand: the clip range is the min/max (per channel: of each channel), the step (hi - lo) / (2^bits - 1)
    rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]).astype(np.float64)
    lo, hi = (rows.min(), rows.max()) if granularity == "tensor" else (rows.min(axis=0), rows.max(axis=0))
    step = (hi - lo) / (2**bits - 1)
    np.testing.assert_allclose(spec.steps, np.broadcast_to(step, spec.steps.shape), rtol=1e-12)
    err = np.abs(np.moveaxis(y, 1, -1).reshape(rows.shape) - rows)
    assert (err <= step / 2 + 1e-6 * np.maximum(1.0, np.abs(rows))).all()
    assert y.dtype == x.dtype and y.shape == x.shape


def test_values_outside_the_clip_range_are_clipped_to_it():
    x = activations()
    spec = lossy.fit(x, LossyOption(bits=4, clip="percentile", percentile=5.0))
    lo, hi = float(spec.lo[0]), float(spec.hi[0])
    assert lo < hi < float(x.max())
    y = lossy.decode(lossy.encode(x, spec), spec, x.shape)
    assert float(y.max()) == pytest.approx(hi, rel=1e-6) and float(y.min()) >= lo - 1e-6
    inside = (x >= lo) & (x <= hi)
    assert (np.abs(y - x)[inside] <= spec.steps[0] / 2 + 1e-5).all()


def test_mse_clip_is_no_worse_than_min_max_on_the_samples():
    rng = np.random.default_rng(3)
    x = rng.standard_t(2, size=(1, 4, 32, 32)).astype(np.float32)  # heavy tails: clipping pays off
    errs = {}
    for clip in ("minmax", "mse"):
        spec = lossy.fit(x, LossyOption(bits=4, granularity="channel", clip=clip))
        errs[clip] = float(np.mean((lossy.decode(lossy.encode(x, spec), spec, x.shape) - x) ** 2))
    assert errs["mse"] < errs["minmax"]


def test_projection_keeping_every_channel_is_exact_up_to_float_error():
    x = activations().astype(np.float64)
    spec = lossy.fit(x, LossyOption(bits=None, keep=x.shape[1]))
    y = lossy.decode(lossy.encode(x, spec, frame_codec="raw"), spec, x.shape, np.float64)
    # the projected values travel as float32: relative error of float32 rounding
    np.testing.assert_allclose(y, x, atol=1e-5 * float(np.abs(x).max()))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_projection_loses_the_energy_of_the_discarded_directions(k):
    """Squared error over the samples = sum of the discarded squared singular values of the centred data (SVD)."""
    x = activations(seed=k).astype(np.float64)
    spec = lossy.fit(x, LossyOption(bits=None, keep=k))
    p = spec.projection
    assert p is not None and p.k == k
    rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    # the projection itself, in float64 (the wire's float32 rounding is another, smaller error)
    back = (rows - p.mean) @ p.components.T @ p.components + p.mean
    singular = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
    expected = float(np.sum(singular[k:] ** 2))
    assert float(np.sum((back - rows) ** 2)) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # and through the wire: the same up to float32 rounding of the k coefficients
    y = lossy.decode(lossy.encode(x, spec), spec, x.shape, np.float64)
    wire = float(np.sum((np.moveaxis(y, 1, -1).reshape(rows.shape) - rows) ** 2))
    assert wire == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("bits", [8, 6, 4, 2, 1])
def test_sizes_are_bits_times_elements_over_8_plus_headers(bits):
    x = activations(shape=(1, 5, 3, 7))  # 105 elements: 6-, 4-, 2- and 1-bit codes leave a partly used last byte
    spec = lossy.fit(x, LossyOption(bits=bits, granularity="channel", keep=3))
    data = lossy.encode(x, spec, frame_codec="raw")
    n = 3 * 3 * 7
    assert len(data) == lossy.HEADER_BYTES + FRAME_OVERHEAD + math.ceil(bits * n / 8)
    assert lossy.packed_bytes(n, bits) == math.ceil(bits * n / 8)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
def test_packing_is_dense_lsb_first_and_reversible(bits):
    codes = np.random.default_rng(bits).integers(0, 2**bits, 37).astype(np.uint8)
    packed = lossy.pack_codes(codes, bits)
    stream = "".join(format(int(c), f"0{bits}b")[::-1] for c in codes)  # bit j of code i at i*bits + j
    stream += "0" * (-len(stream) % 8)
    by_hand = bytes(int(stream[i : i + 8][::-1], 2) for i in range(0, len(stream), 8))
    assert packed.tobytes() == by_hand
    np.testing.assert_array_equal(lossy.unpack_codes(packed, codes.size, bits), codes)


def test_spec_json_round_trip_is_exact_and_versioned():
    x = activations()
    spec = lossy.fit(x, "pca3+q4c")
    again = LossySpec.from_json(spec.to_json())
    assert again.to_json() == spec.to_json() and again.digest == spec.digest
    assert spec.projection is not None and again.projection is not None
    np.testing.assert_array_equal(again.projection.components, spec.projection.components)
    np.testing.assert_array_equal(again.lo, spec.lo)
    data = lossy.encode(x, spec)
    np.testing.assert_array_equal(lossy.decode(data, again, x.shape), lossy.decode(data, spec, x.shape))
    d = json.loads(spec.to_json())
    assert d["format"] == "jointdnn-lossy" and d["version"] == 1 and d["quantization"]["bits"] == 4


def _spec_dict() -> dict:
    return json.loads(lossy.fit(activations(), "pca3+q4c").to_json())


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(version=2),
        lambda d: d.update(format="other"),
        lambda d: d["quantization"].update(bits=9),
        lambda d: d["quantization"].update(bits=True),
        lambda d: d["quantization"].update(granularity="row"),
        lambda d: d["quantization"].update(lo=d["quantization"]["lo"][:-1]),
        lambda d: d["quantization"].update(lo=[v + 1e6 for v in d["quantization"]["lo"]]),  # lo > hi
        lambda d: d["projection"].update(k=2),
        lambda d: d["projection"].update(mean=d["projection"]["mean"][:-1]),
        lambda d: d.update(channels=-1),
        lambda d: d.pop("axis"),
        lambda d: d.update(projection=None, quantization=None),
    ],
)
def test_bad_specs_are_config_errors(change):
    d = _spec_dict()
    change(d)
    with pytest.raises(ConfigError):
        LossySpec.from_json(json.dumps(d))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '{"format": "jointdnn-lossy"}'])
def test_malformed_spec_json_is_a_config_error(text):
    with pytest.raises(ConfigError):
        LossySpec.from_json(text)


@pytest.mark.parametrize("text", ["", "q", "q9", "q0", "pca0", "pca1.5", "zz", "q4x", "pca2+"])
def test_bad_option_names_are_config_errors(text):
    with pytest.raises(ConfigError):
        lossy.parse_option(text)


def test_option_names_round_trip():
    for text in ("q8", "q4c", "pca64", "pca0.25+q4c", "pca3+q2"):
        assert lossy.parse_option(text).label == text


def test_a_spec_that_does_not_fit_the_tensor_is_a_config_error():
    x = activations()
    spec = lossy.fit(x, "q4")
    with pytest.raises(ConfigError):
        lossy.encode(x[:, :3], spec)
    with pytest.raises(ConfigError):
        lossy.decode(lossy.encode(x, spec), spec, (2, 5, 5, 7))
    with pytest.raises(ConfigError):
        lossy.decode(lossy.encode(x, spec), spec, x.shape, np.int32)
    with pytest.raises(CodecError):
        lossy.encode(np.full(x.shape, np.nan, np.float32), spec)


def test_bytes_from_another_spec_are_refused():
    x = activations()
    a, b = lossy.fit(x, "q4"), lossy.fit(x + 1, "q4")
    with pytest.raises(CodecError, match="another lossy spec"):
        lossy.decode(lossy.encode(x, a), b, x.shape)


def test_output_over_max_bytes_is_refused_before_decoding():
    x = activations()
    spec = lossy.fit(x, "q8")
    with pytest.raises(FrameTooLargeError):
        lossy.decode(lossy.encode(x, spec), spec, x.shape, max_bytes=x.nbytes - 1)


def test_corrupt_and_fuzzed_payloads_raise_typed_errors():
    x = activations()
    spec = lossy.fit(x, "pca3+q4c")
    good = lossy.encode(x, spec)
    rng = np.random.default_rng(7)
    cases = [good[:k] for k in (0, 3, 15, 16, 40, len(good) - 1)] + [good + b"\0", b"JDNF" + good[4:]]
    for _ in range(300):
        b = bytearray(good)
        for pos in rng.integers(0, len(b), int(rng.integers(1, 4))):
            b[pos] ^= int(rng.integers(1, 256))
        cases.append(bytes(b))
    cases += [bytes(rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8)) for _ in range(100)]
    for data in cases:
        try:
            y = lossy.decode(data, spec, x.shape)
        except CodecError:  # FrameTooLargeError is one
            continue
        # a flip the checksums cannot see (none expected), but the result must still be well formed
        assert y.shape == x.shape and np.isfinite(y).all()


def test_frame_declaring_more_than_the_spec_allows_is_refused():
    x = activations()
    spec = lossy.fit(x, "q8")
    from jointdnn_edge import codec

    header = lossy.encode(x, spec)[: lossy.HEADER_BYTES]
    big = codec.encode({"": np.zeros(x.size * 4, np.uint8)}, codec="zstd")  # a bomb-like larger payload
    with pytest.raises(CodecError, match="more than"):
        lossy.decode(header + big, spec, x.shape)
