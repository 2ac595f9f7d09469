"""Profile noise and calibration: the spread a profile keeps, low outliers, stability, host-to-device mapping.

Oracles: exact relations (a slowdown scales every group by exactly its
factor; calibrated singles of a class sum to the device model's), a layer
priced by hand, the JSON round trip, the containment rule checked group by
group, the resampling draws replayed by hand, and the optimum of every
resampled table found again by brute force.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jointdnn_edge import ConfigError, CostTable, Network, profile
from jointdnn_edge.calibrate import calibrated_ms, class_factors, class_of
from jointdnn_edge.devices import DEVICES, Device, LayerWork, group_matrix, layer_work
from jointdnn_edge.models.ort_executor import OrtExecutor
from jointdnn_edge.planner import plan, runs_of, stability
from jointdnn_edge.planner.brute import best_by_placement
from jointdnn_edge.spread import SPREAD_KEY, GroupSpread, clamp_low_outliers, resample


class ModelClockExecutor(OrtExecutor):
    """A real ONNX Runtime executor that reports a fixed compute time per group (as a remote server reports its own).

    The time of group ``i..j`` is ``sum(k + 1 for k in i..j) / 100`` ms: deterministic, so two profiles agree
    exactly, and never less for a group than for a group inside it.
    """

    def run_timed(self, graph: Any, first: int, last: int, feeds: Any) -> tuple[dict[str, np.ndarray], float]:
        return self.run(graph, first, last, feeds), sum(k + 1 for k in range(first, last + 1)) / 100


@pytest.fixture(scope="module")
def nin(zoo_graph: Any) -> Any:
    return zoo_graph("nin")


@pytest.fixture(scope="module")
def clocked(nin: Any) -> CostTable:
    return profile(nin, ModelClockExecutor(threads=1), max_group=4, repeats=2, warmup=0, progress=False)


# ------------------------------------------------------------------ calibration
def test_a_known_slowdown_scales_every_mobile_group_exactly(nin: Any, clocked: CostTable) -> None:
    slow = profile(
        nin, ModelClockExecutor(threads=1), max_group=4, repeats=2, warmup=0, progress=False, mobile_slowdown=3.5
    )
    assert np.array_equal(slow.mobile_ms, clocked.mobile_ms * 3.5)
    np.testing.assert_allclose(slow.mobile_mj, clocked.mobile_mj * 3.5, rtol=1e-12)
    # the cloud stays "mobile / 10" of the mobile the table reports
    assert np.array_equal(slow.cloud_ms, slow.mobile_ms / 10.0)
    assert slow.meta["calibration"] == {"mobile": {"slowdown": 3.5}}


def test_calibrated_times_on_hand_computed_layers() -> None:
    # 1 TFLOP/s, no bandwidth limit to speak of, 100 us per call, no launch cost
    dev = Device(
        "hand",
        peak_gflops=1000.0,
        bandwidth_gbps=1e9,
        efficiency={"conv": 0.5, "matmul": 0.4, "elementwise": 0.25},
        call_overhead_us=100.0,
        kernel_launch_us=0.0,
        power_mw=1000.0,
    )
    works = [
        LayerWork(1e9, 0.0, 0.0, 0.0, "conv"),  # 1e9 / 0.5e12 s = 2 ms + 0.1 ms call = 2.1 ms
        LayerWork(4e8, 0.0, 0.0, 0.0, "matmul"),  # 4e8 / 0.4e12 s = 1 ms + 0.1 = 1.1 ms
        LayerWork(2.5e8, 0.0, 0.0, 0.0, "conv"),  # 0.5 ms + 0.1 = 0.6 ms
        LayerWork(0.0, 0.0, 0.0, 0.0, "elementwise"),  # a view: the call alone, 0.1 ms
    ]
    host = np.array(
        [
            [4.2, 12.0, 14.0, 14.1],
            [np.inf, 11.0, 11.5, 11.6],
            [np.inf, np.inf, 1.0, 1.1],
            [np.inf, np.inf, np.inf, 0.2],
        ]
    )
    factors = class_factors(np.diagonal(host), works, dev)
    assert factors == pytest.approx({"conv": (2.1 + 0.6) / (4.2 + 1.0), "matmul": 1.1 / 11.0, "overhead": 0.5})
    assert [class_of(w) for w in works] == ["conv", "matmul", "conv", "overhead"]
    mapped, got = calibrated_ms(host, works, dev)
    assert got == factors
    r = factors["conv"]
    singles = [4.2 * r, 1.1, 1.0 * r, 0.1]
    np.testing.assert_allclose(np.diagonal(mapped), singles, rtol=1e-12)
    # a group keeps its measured gain over its singles
    np.testing.assert_allclose(mapped[0, 1], 12.0 * (singles[0] + singles[1]) / (4.2 + 11.0), rtol=1e-12)
    np.testing.assert_allclose(mapped[1, 3], 11.6 * sum(singles[1:]) / (11.0 + 1.0 + 0.2), rtol=1e-12)
    assert np.isinf(mapped[2, 0])
    # one common factor for every class is a uniform slowdown
    flat = class_factors([2.0, 2.0, 2.0, 2.0], works, dev)
    assert flat["overhead"] == pytest.approx(0.05)


def test_device_mapping_through_profile(nin: Any, clocked: CostTable) -> None:
    tx2, k40 = DEVICES["jetson-tx2"], DEVICES["tesla-k40c"]
    t = profile(
        nin, ModelClockExecutor(threads=1), max_group=4, repeats=2, warmup=0, progress=False,
        mobile="jetson-tx2", cloud="tesla-k40c",
    )  # fmt: skip
    works = layer_work(nin)
    expected_mobile, factors = calibrated_ms(clocked.mobile_ms, works, tx2)
    np.testing.assert_allclose(t.mobile_ms, expected_mobile, rtol=1e-12)
    np.testing.assert_allclose(t.cloud_ms, calibrated_ms(clocked.mobile_ms, works, k40)[0], rtol=1e-12)
    # the calibrated singles of each class sum to the device model's singles of that class
    model = np.diagonal(group_matrix(works, [None] * len(works), tx2, max_group=1))
    for c in factors:
        members = [k for k, w in enumerate(works) if class_of(w) == c]
        assert np.diagonal(t.mobile_ms)[members].sum() == pytest.approx(model[members].sum(), rel=1e-12)
    # energy from the mobile device's power; meta says what was done
    np.testing.assert_allclose(t.mobile_mj, t.mobile_ms * tx2.power_mw / 1e3, rtol=1e-12)
    assert t.meta["calibration"]["mobile"]["class_factors"] == factors
    assert t.meta["cloud_source"] == "mapped onto device model tesla-k40c"


def test_conflicting_calibration_options_are_refused(nin: Any) -> None:
    for kw in (
        {"mobile_slowdown": 2.0, "mobile": "jetson-tx2"},
        {"cloud": "tesla-k40c", "cloud_speedup": 5.0},
        {"mobile_slowdown": 0.0},
        {"mobile": "no-such-device"},
    ):
        with pytest.raises(ConfigError):
            profile(nin, ModelClockExecutor(threads=1), progress=False, **kw)


# ------------------------------------------------------------------ the spread and its JSON
def test_a_profile_keeps_its_spread_through_save_and_load(zoo_graph: Any, tmp_path: Any) -> None:
    t = profile(zoo_graph("nin"), OrtExecutor(threads=1), max_group=3, repeats=4, warmup=0, progress=False)
    spread = GroupSpread.of(t)
    assert spread is not None and spread.cloud_follows_mobile and spread.n == t.n
    upper = np.triu(np.ones((t.n, t.n), dtype=bool))
    assert (spread.mobile_lo[upper] <= 1).all() and (spread.mobile_hi[upper] >= 1).all()
    path = tmp_path / "c.json"
    t.save(path)
    back = GroupSpread.of(CostTable.load(path))
    assert back is not None
    assert np.array_equal(back.mobile_lo, spread.mobile_lo) and np.array_equal(back.mobile_hi, spread.mobile_hi)
    # the containment rule holds in the profiled table: no group's band lies below a group it contains
    ms, lo, hi = t.mobile_ms, spread.mobile_lo, spread.mobile_hi
    for i in range(t.n):
        for j in range(i + 1, t.n):
            if np.isfinite(ms[i, j]):
                for a, b in ((i, j - 1), (i + 1, j)):
                    assert ms[i, j] * hi[i, j] >= ms[a, b] * lo[a, b]


def test_a_spread_that_does_not_fit_the_table_is_refused() -> None:
    t = CostTable.from_layers([1.0, 2.0], [0.1, 0.2], [10.0, 10.0], 10.0)
    with pytest.raises(Exception, match="spread"):
        GroupSpread.zero(3).attach(t)
    bad = t.replace(meta={SPREAD_KEY: {**GroupSpread.zero(2).to_dict(), "n": 3}})
    with pytest.raises(Exception, match="spread"):
        GroupSpread.of(bad)
    with pytest.raises(Exception, match="lo <= 1 <= hi"):
        GroupSpread(np.full((2, 2), 1.1), np.ones((2, 2)))


# ------------------------------------------------------------------ low outliers
def test_a_group_timed_below_a_group_it_contains_is_raised() -> None:
    singles = [1.0, 2.0, 3.0, 4.0, 5.0]
    ms = CostTable.from_layers(singles, singles, [1.0] * 5, 1.0).mobile_ms.copy()
    ms[1, 3] = 0.2 * ms[1, 3]  # 1.8 ms for layers 1..3, which contain 2..3 (7 ms)
    ms[0, 1] = 0.9 * ms[0, 1]  # 2.7 ms for 0..1: faster than its singles, not than layer 1 (2 ms)
    lo, hi = np.full((5, 5), 0.9), np.full((5, 5), 1.1)
    new_ms, _, _, clamped = clamp_low_outliers(ms, lo, hi)
    assert [(c.first, c.last, c.contained) for c in clamped] == [(1, 3, (2, 3))]
    assert clamped[0].measured_ms == pytest.approx(1.8) and new_ms[1, 3] == pytest.approx(7.0)
    changed = ~np.isclose(new_ms, ms) & np.isfinite(ms)
    assert list(zip(*np.nonzero(changed))) == [(1, 3)]
    # a group within the spread of what it contains is left alone
    near = ms.copy()
    near[2, 3] = 0.85 * 4.0  # below layer 3 alone (4 ms), but the bands overlap
    assert not clamp_low_outliers(near, lo, hi)[3][1:]


def test_without_spread_any_group_below_a_contained_group_is_raised() -> None:
    ms = np.array([[1.0, 0.5], [np.inf, 2.0]])
    out, _, _, clamped = clamp_low_outliers(ms, np.ones((2, 2)), np.ones((2, 2)))
    assert out[0, 1] == 2.0 and [(c.first, c.last) for c in clamped] == [(0, 1)]


# ------------------------------------------------------------------ stability
def _fast() -> Network:
    return Network.preset("wifi").with_bandwidth(1000.0, 1000.0)


def test_a_table_without_spread_is_fully_stable() -> None:
    t = CostTable.from_layers([3.0, 1.0, 4.0, 1.0], [0.5, 2.0, 0.5, 2.0], [1e4, 1e3, 1e4, 10.0], 1e5)
    st = stability(GroupSpread.zero(4).attach(t), _fast(), samples=50, seed=3)
    assert st.same == st.samples == 50 and st.share == 1.0 and st.alternatives() == []
    assert st.placement == tuple(runs_of(plan(t, _fast()).segments))


def test_two_schedules_tied_within_the_spread_flip_about_half_the_time() -> None:
    # one layer, no bytes to move: mobile 10 ms +- 20 %, cloud 10 ms and a hair (no spread of its own)
    t = CostTable(np.array([[10.0]]), np.array([[10.0 + 1e-9]]), [0.0], 0.0)
    spread = GroupSpread(np.array([[0.8]]), np.array([[1.2]]), np.ones((1, 1)), np.ones((1, 1)))
    st = stability(spread.attach(t), _fast(), samples=400, seed=11)
    assert st.placement == ((0, 0, "mobile"),)
    # replay the draws: per sample one uniform for the mobile band, then one for the cloud's
    rng = np.random.default_rng(11)
    draws = [(rng.random((1, 1))[0, 0], rng.random((1, 1))[0, 0]) for _ in range(400)]
    expected = sum(0.8 + u * 0.4 < 1.0 + 1e-10 for u, _ in draws)
    assert st.same == expected
    assert 400 * 0.5 - 4 * 10 <= st.same <= 400 * 0.5 + 4 * 10  # binomial(400, 1/2): 4 sigma
    assert dict(st.alternatives()) == {((0, 0, "cloud"),): 400 - expected}
    assert stability(spread.attach(t), _fast(), samples=400, seed=11) == st


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_stability_agrees_with_brute_force_on_a_tiny_table(objective: str) -> None:
    rng = np.random.default_rng(5)
    n = 4
    t = CostTable.from_layers(rng.uniform(1, 5, n), rng.uniform(0.5, 3, n), rng.uniform(1e3, 4e4, n), 2e4, max_group=3)
    spread = GroupSpread(
        np.triu(rng.uniform(0.5, 1.0, (n, n))) + np.tril(np.ones((n, n)), -1),
        np.triu(rng.uniform(1.0, 1.8, (n, n))) + np.tril(np.ones((n, n)), -1),
    )
    net = Network.preset("wifi")
    st = stability(t, net, objective, samples=60, seed=2, spread=spread)
    draws = np.random.default_rng(2)
    counts: dict[Any, int] = {}
    for _ in range(60):
        _, segs = best_by_placement(resample(t, spread, draws), net, objective=objective)
        key = tuple(runs_of(segs))
        counts[key] = counts.get(key, 0) + 1
    assert dict(st.counts) == counts
    assert len(counts) > 1  # the spread is wide enough to flip this table
    assert sum(c for _, c in st.counts) == 60


def test_stability_needs_a_spread() -> None:
    t = CostTable.from_layers([1.0], [1.0], [1.0], 1.0)
    with pytest.raises(ConfigError, match="spread"):
        stability(t, "wifi")


# ------------------------------------------------------------------ the command line
def test_plan_model_names_the_table_it_uses_and_its_stability() -> None:
    import json

    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["plan", "--model", "nin", "--network", "wifi", "--json", "--stability-samples", "20"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output[r.output.index("{") :])
    assert doc["costs"].startswith("profiled: nin on ") and "cloud mobile / 10" in doc["costs"]
    st = doc["stability"]
    assert st["samples"] == 20 and st["same"] + sum(a["count"] for a in st["alternatives"]) == 20
    assert st["placement"] == [list(s) for s in runs_of(doc["schedules"]["JointDNN"]["segments"])]
    r = runner.invoke(app, ["plan", "--model", "nin", "--stability-samples", "10"])
    assert r.exit_code == 0 and "cost table: profiled: nin" in r.output and "stability:" in r.output
    # the built-in example is named as the synthetic table it is, and keeps no spread to report
    r = runner.invoke(app, ["plan", "--model", "alexnet"])
    assert "cost table: synthetic example" in r.output and "stability:" not in r.output
    for unknown in ("no-such-model", "alexnet2"):
        r = runner.invoke(app, ["plan", "--model", unknown])
        assert r.exit_code != 0 and "unknown model" in r.output


def test_profile_command_calibrates(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    out = tmp_path / "c.json"
    args = [
        "profile",
        "zoo:nin",
        "--size",
        "tiny",
        "--max-group",
        "2",
        "--repeats",
        "2",
        "--no-progress",
        "-o",
        str(out),
    ]
    r = CliRunner().invoke(app, [*args, "--mobile-device", "jetson-tx2", "--cloud-device", "h100-sxm"])
    assert r.exit_code == 0, r.output
    t = CostTable.load(out)
    assert set(t.meta["calibration"]) == {"mobile", "cloud"} and "mapped onto jetson-tx2" in r.output
    np.testing.assert_allclose(t.mobile_mj, t.mobile_ms * DEVICES["jetson-tx2"].power_mw / 1e3)
    assert GroupSpread.of(t) is not None and "spread:" in r.output
    r = CliRunner().invoke(app, [*args, "--mobile-slowdown", "4"])
    assert r.exit_code == 0 and CostTable.load(out).meta["calibration"] == {"mobile": {"slowdown": 4.0}}
    r = CliRunner().invoke(app, [*args, "--mobile-slowdown", "4", "--mobile-device", "jetson-tx2"])
    assert r.exit_code != 0 and "not both" in r.output


def test_a_training_table_built_from_a_profile_plans_from_the_command_line(tmp_path: Any) -> None:
    """The forward table's N-layer spread does not describe its 2N-layer training table: it is not carried over."""
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    t = CostTable.from_layers([3.0, 1.0, 4.0], [0.5, 2.0, 0.5], [1e4, 1e3, 1e4], 1e5, weight_bytes=[1e3] * 3)
    t = GroupSpread(np.full((3, 3), 0.9), np.full((3, 3), 1.1)).attach(t)
    training = CostTable.training(t)
    assert GroupSpread.of(training) is None
    path = tmp_path / "training.json"
    training.save(path)
    r = CliRunner().invoke(app, ["plan", "--costs", str(path), "--phase", "training"])
    assert r.exit_code == 0, r.output
    with pytest.raises(ConfigError, match="spread"):
        stability(training, "wifi", phase="training")
    # the inference table keeps its spread, and its training plans are resampled through it
    assert stability(t, "wifi", phase="training", samples=5).samples == 5


def test_a_negative_stability_sample_count_is_refused() -> None:
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    r = CliRunner().invoke(app, ["plan", "--stability-samples", "-3"])
    assert r.exit_code == 2 and "stability-samples" in r.output


def test_a_group_below_the_narrow_band_of_its_cheaper_contained_group_is_raised() -> None:
    """Layers 0..2 in 6 ms contain 1..2, timed at 9 ms every run: raised, though 0..1 (10 ms, wide band) admits 6 ms."""
    ms = np.array([[4.0, 10.0, 6.0], [np.inf, 5.0, 9.0], [np.inf, np.inf, 4.0]])
    lo, hi = np.ones((3, 3)), np.ones((3, 3))
    lo[0, 1], hi[0, 1] = 0.5, 1.5
    new_ms, new_lo, _, clamped = clamp_low_outliers(ms, lo, hi)
    assert [(c.first, c.last, c.contained) for c in clamped] == [(0, 2, (1, 2))]
    assert new_ms[0, 2] == 9.0 and new_lo[0, 2] == 1.0
    # the rule the profiled tables are checked against: no band lies wholly below a contained group's band
    for a, b in ((0, 1), (1, 2)):
        assert new_ms[0, 2] * hi[0, 2] >= new_ms[a, b] * new_lo[a, b]


def test_plan_names_a_hand_edited_profiled_table_without_failing() -> None:
    """A table file whose profiler notes were edited (no cloud_speedup, a device that is no object) still plans,
    and the source line says what it can."""
    from jointdnn_edge.cli.plan import costs_source

    t = CostTable.from_layers([1.0, 2.0], [0.1, 0.2], [1e3, 1e3], 1e3)
    t.meta.update({"model": {"name": "hand"}, "profiler": {}, "device": "phone", "cloud_source": "scaled"})
    t.meta["calibration"] = {"mobile": {"slowdown": 20.0}}
    assert costs_source(t) == "profiled: hand on this machine; mobile = measured x 20; cloud mobile / ?"
