"""The planner hook: measured codec profiles folded into a CostTable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fixtures_codec import post_relu
from jointdnn_edge import CodecError, ConfigError, CostTable, codec, zoo
from jointdnn_edge.codec import CodecProfile, CodecStats
from jointdnn_edge.models import executor_for

pytestmark = pytest.mark.pure


def _table(n: int = 3) -> CostTable:
    return CostTable.from_layers(
        [1.0] * n, [0.1] * n, [4000.0 * (i + 1) for i in range(n)], 6000.0, mobile_power_mw=2000.0
    )


def test_profile_measures_real_frame_sizes() -> None:
    samples = {
        -1: [np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8)],
        0: [post_relu((8, 16, 16), 0.7, seed=s) for s in range(3)],
        1: [{"a": post_relu((4, 8, 8), 0.5), "b": np.arange(20, dtype=np.int32)}],
    }
    prof = codec.profile_codec(samples, codec="auto", repeats=2)
    assert set(prof.stats) == {-1, 0, 1}
    want0 = np.mean([len(codec.encode({"t": s})) for s in samples[0]])
    assert prof.stats[0].encoded_bytes == pytest.approx(want0)
    assert prof.stats[0].raw_bytes == samples[0][0].nbytes
    assert prof.stats[0].ratio == pytest.approx(samples[0][0].nbytes / want0)
    assert prof.stats[0].zero_ratio == pytest.approx(np.mean([codec.zero_ratio(s) for s in samples[0]]))
    assert prof.stats[0].codecs == ("sparse",)
    assert prof.stats[1].raw_bytes == samples[1][0]["a"].nbytes + 80
    assert prof.stats[1].encoded_bytes == len(codec.encode(samples[1][0]))
    for s in prof.stats.values():
        assert s.encode_ms > 0 and s.decode_ms > 0 and s.samples >= 1
    q = codec.profile_codec({0: samples[0][:1]}, quantize_bits=8, codec="png", repeats=1)
    assert q.stats[0].encoded_bytes == len(codec.encode({"t": samples[0][0]}, codec="png", quantize_bits=8))
    assert q.quantize_bits == 8 and q.codec == "png"


def test_profile_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="no samples"):
        codec.profile_codec({0: []})
    with pytest.raises(ConfigError, match="repeats"):
        codec.profile_codec({0: [np.ones(3)]}, repeats=0)


def test_compress_costs_by_hand() -> None:
    t = _table()
    mobile = CodecProfile(
        {
            -1: CodecStats(6000, 2000, encode_ms=1.0, decode_ms=0.5, zero_ratio=0.0, samples=1),
            1: CodecStats(8000, 2000, encode_ms=2.0, decode_ms=1.0, zero_ratio=0.7, samples=1),
        },
        device="phone",
    )
    cloud = mobile.scaled(encode=0.1, decode=0.2, device="server")
    out = codec.compress_costs(t, mobile, cloud, mobile_power_mw=3000.0)
    assert out.input_bytes == pytest.approx(2000.0)
    assert list(out.out_bytes) == pytest.approx([4000.0, 2000.0, 12000.0])  # layer 1: 8000 / 4; others untouched
    # rows: model input, layer 0, layer 1, layer 2; columns: upload, download
    assert out.codec_ms[0].tolist() == pytest.approx([1.0 + 0.05 * 2, 0.1 + 0.5])
    assert out.codec_ms[2].tolist() == pytest.approx([2.0 + 0.2, 0.2 + 1.0])
    assert out.codec_ms[1].tolist() == [0.0, 0.0] and out.codec_ms[3].tolist() == [0.0, 0.0]
    assert out.codec_mj[2].tolist() == pytest.approx([2.0 * 3.0, 1.0 * 3.0])  # mobile time x mobile power only
    assert out.codec_mj[0].tolist() == pytest.approx([1.0 * 3.0, 0.5 * 3.0])
    assert out.meta["codec"]["device"] == "phone"
    # everything else is unchanged
    assert np.array_equal(out.mobile_ms, t.mobile_ms) and np.array_equal(out.mobile_mj, t.mobile_mj)
    assert out.edges == t.edges and out.names == t.names
    # without a cloud profile, the mobile timings stand in for both ends
    same = codec.compress_costs(t, mobile, mobile_power_mw=3000.0)
    assert same.codec_ms[2].tolist() == pytest.approx([3.0, 3.0])


def test_compress_costs_rejects_unknown_layers() -> None:
    prof = CodecProfile({7: CodecStats(10, 5, 1, 1, 0, 1)})
    with pytest.raises(ConfigError, match="layer 7"):
        codec.compress_costs(_table(), prof)
    with pytest.raises(ConfigError, match="mobile_power_mw"):
        codec.compress_costs(_table(), CodecProfile({0: CodecStats(10, 5, 1, 1, 0, 1)}), mobile_power_mw=math.nan)


def test_measured_profile_end_to_end() -> None:
    acts = {i: [post_relu((8, 12, 12), 0.6, seed=i)] for i in range(3)}
    t = CostTable.from_layers([1.0] * 3, [0.1] * 3, [a[0].nbytes for a in acts.values()], 3 * 32 * 32 * 4)
    prof = codec.profile_codec(acts, repeats=1)
    out = codec.compress_costs(t, prof)
    for i in range(3):
        assert out.out_bytes[i] == pytest.approx(prof.stats[i].encoded_bytes)
        assert out.out_bytes[i] < t.out_bytes[i]
        assert out.codec_ms[i + 1, 0] == pytest.approx(prof.stats[i].encode_ms + prof.stats[i].decode_ms)
    assert out.input_bytes == t.input_bytes  # the model input was not profiled


def test_profile_json_round_trip(tmp_path: Path) -> None:
    prof = codec.profile_codec({0: [post_relu((4, 8, 8), 0.5)]}, repeats=1, device="test-box")
    prof.save(tmp_path / "p.json")
    back = CodecProfile.load(tmp_path / "p.json")
    assert back == prof
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CodecError, match="not JSON"):
        CodecProfile.load(tmp_path / "bad.json")
    with pytest.raises(CodecError, match="version-1"):
        CodecProfile.from_dict({"format": "other"})
    with pytest.raises(CodecError, match="malformed"):
        CodecProfile.from_dict({"format": "jointdnn-edge/codec-profile", "version": 1, "stats": {"x": {}}})
    with pytest.raises(ConfigError, match="time factors"):
        prof.scaled(encode=0)


def test_layer_samples_from_a_zoo_model() -> None:
    g = zoo.load("alexnet", size="tiny")
    feeds = {t.name: np.random.default_rng(0).random(t.shape).astype(t.dtype) for t in g.inputs}
    ex = executor_for(g)
    samples = codec.layer_samples(g, [feeds], executor=ex)
    assert set(samples) == {-1, *range(g.n)}
    assert samples[-1][0].keys() == feeds.keys()
    for layer in g.layers:
        bundle = samples[layer.index][0]
        assert list(bundle) == [t.name for t in layer.outputs]
        assert [v.shape for v in bundle.values()] == [tuple(t.shape) for t in layer.outputs]
    final = ex.run_model(g, feeds)
    for name, v in final.items():  # running layer by layer gives the whole model's outputs
        got = next(b[name] for b in samples[g.n - 1] if name in b)
        np.testing.assert_allclose(got, v, rtol=1e-5, atol=1e-6)
    relu = next(i for i, layer in enumerate(g.layers) if layer.op_type == "Relu")
    prof = codec.profile_codec({relu: samples[relu]}, repeats=1)
    assert prof.stats[relu].zero_ratio > 0.2 and prof.stats[relu].ratio > 1.0
    t = CostTable.from_layers([1.0] * g.n, [0.1] * g.n, g.out_bytes, g.input_bytes)
    assert codec.compress_costs(t, prof).out_bytes[relu] < t.out_bytes[relu]
