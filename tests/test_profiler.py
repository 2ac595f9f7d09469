"""The profiler: grouped costs that are finite and positive where offered, energy, cloud costs, JSON, a plan.

No wall-clock thresholds: the oracles are structure (which groups are
offered, how many the executor ran), exact relations (energy = power × time,
cloud = mobile / speed-up), the JSON round trip, and the model's own outputs
(a schedule planned from the table, run as slices, gives the whole model's
result).
"""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_models import assert_outputs_match, run_schedule
from jointdnn_edge import ConfigError, CostTable, DeviceProfile, profile
from jointdnn_edge.models import uniform_feeds
from jointdnn_edge.models.ort_executor import OrtExecutor
from jointdnn_edge.profiler import DEFAULT_CLOUD_SPEEDUP, DEVICE_PRESETS, count_groups


class CountingExecutor(OrtExecutor):
    """An OrtExecutor that counts the group runs it serves (a real executor, not a mock)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.runs: dict[tuple[int, int], int] = {}

    def prepare(self, graph, first, last):
        inner = super().prepare(graph, first, last)
        runs = self.runs

        class Counted:
            input_names = inner.input_names
            output_names = inner.output_names

            def __call__(self, feeds):
                runs[first, last] = runs.get((first, last), 0) + 1
                return inner(feeds)

        return Counted()


@pytest.fixture(scope="module")
def nin_table(zoo_graph):
    graph = zoo_graph("nin")
    ex = CountingExecutor(threads=1)
    table = profile(graph, ex, repeats=3, warmup=2, progress=False)
    return graph, ex, table


def test_all_groups_finite_positive(nin_table):
    graph, ex, t = nin_table
    n = graph.n
    assert t.n == n
    upper = np.triu(np.ones((n, n), bool))
    assert np.isfinite(t.mobile_ms[upper]).all() and (t.mobile_ms[upper] > 0).all()
    assert np.isfinite(t.cloud_ms[upper]).all() and (t.cloud_ms[upper] > 0).all()
    # every group ran warmup + repeats times, and nothing else ran
    assert len(ex.runs) == n * (n + 1) // 2 == count_groups(n, None)
    assert set(ex.runs.values()) == {2 + 3}
    # the table carries the graph's structure
    assert list(t.out_bytes) == graph.out_bytes and t.edges == tuple(graph.edges)
    assert t.names == tuple(layer.name for layer in graph.layers)


def test_energy_and_cloud_relations(nin_table):
    _, _, t = nin_table
    tx2 = DEVICE_PRESETS["jetson-tx2"].compute_power_mw
    np.testing.assert_allclose(t.mobile_mj, t.mobile_ms * tx2 / 1e3)
    np.testing.assert_allclose(t.cloud_ms, t.mobile_ms / DEFAULT_CLOUD_SPEEDUP)
    assert t.meta["cloud_source"] == "scaled" and t.meta["cloud_speedup"] == DEFAULT_CLOUD_SPEEDUP


def test_meta_records_device_runtime_versions(nin_table):
    _, _, t = nin_table
    m = t.meta
    assert m["runtime"]["runtime"] == "onnxruntime" and m["runtime"]["threads"] == 1
    assert m["device"]["name"] == "jetson-tx2" and m["device"]["cores"] >= 1 and m["device"]["platform"]
    assert m["versions"]["onnxruntime"] and m["versions"]["numpy"]
    assert m["profiler"]["repeats"] == 3 and m["profiler"]["statistic"] == "median"
    assert m["model"] == {"name": "nin", "format": "onnx", "layers": t.n, "merge_trivial": False}


def test_json_round_trip(nin_table, tmp_path):
    _, _, t = nin_table
    path = tmp_path / "costs.json"
    t.save(path)
    back = CostTable.load(path)
    for field in ("mobile_ms", "cloud_ms", "mobile_mj", "out_bytes"):
        assert np.array_equal(getattr(back, field), getattr(t, field))
    assert back.meta == t.meta and back.edges == t.edges


def test_plan_from_profiled_costs_runs_to_the_whole_models_output(nin_table):
    from jointdnn_edge.planner import plan

    graph, ex, t = nin_table
    feeds = uniform_feeds(graph, seed=9)
    whole = ex.run_model(graph, feeds)
    for network in ("3g", "wifi"):
        for objective in ("latency", "energy"):
            s = plan(t, network, objective=objective)
            bounds = [0] + [b + 1 for _, b, _ in s.segments]
            assert bounds[-1] == graph.n and all(a < b for a, b in zip(bounds, bounds[1:]))
            baselines = [plan(t, network, objective=objective, force=f) for f in ("mobile", "cloud")]
            key = "latency_ms" if objective == "latency" else "mobile_energy_mj"
            assert getattr(s, key) <= min(getattr(b, key) for b in baselines) * (1 + 1e-12)
            assert_outputs_match(run_schedule(ex, graph, bounds, feeds), whole, exact=False)


def test_max_group_bounds_the_groups(zoo_graph):
    graph = zoo_graph("resnet")
    ex = CountingExecutor(threads=1)
    t = profile(graph, ex, max_group=4, repeats=1, warmup=0, progress=False)
    n = graph.n
    i, j = np.indices((n, n))
    offered = (j >= i) & (j - i < 4)
    assert np.isfinite(t.mobile_ms[offered]).all() and (t.mobile_ms[offered] > 0).all()
    assert np.isinf(t.mobile_ms[~offered]).all() and np.isinf(t.mobile_mj[~offered]).all()
    assert len(ex.runs) == int(offered.sum()) == count_groups(n, 4)
    assert t.meta["profiler"]["max_group"] == 4


def test_energy_hook_and_profiled_cloud(zoo_graph):
    graph = zoo_graph("chair")
    calls = []

    def hook(run_once):
        out = run_once()  # a real run of the group
        calls.append(out)
        return 0.25 * len(calls)

    device = DeviceProfile("metered", energy_hook=hook, source="test hook")
    cloud = OrtExecutor(threads=1, optimization="disable")
    t = profile(graph, OrtExecutor(threads=1), device=device, cloud_executor=cloud, repeats=1, progress=False)
    n = graph.n
    assert len(calls) == n * (n + 1) // 2
    assert sorted(t.mobile_mj[np.triu_indices(n)]) == [0.25 * k for k in range(1, len(calls) + 1)]
    assert t.meta["cloud_source"] == "profiled" and t.meta["cloud_runtime"]["optimization"] == "disable"
    assert np.isfinite(t.cloud_ms[np.triu_indices(n)]).all()
    assert t.meta["device"]["energy"] == "measured by energy_hook"


def test_given_inputs_power_and_speedup(zoo_graph):
    graph = zoo_graph("deepspeech")
    feeds = {"features": np.full(graph.inputs[0].shape, 0.5, np.float32)}
    t = profile(graph, inputs=feeds, device=DeviceProfile("pi4ish", 3000.0), cloud_speedup=4.0, threads=1, repeats=2)
    np.testing.assert_allclose(t.mobile_mj, t.mobile_ms * 3.0)
    np.testing.assert_allclose(t.cloud_ms, t.mobile_ms / 4.0)
    assert t.meta["profiler"]["inputs"] == "given" and t.meta["cloud_speedup"] == 4.0


def test_presets_and_bad_arguments(zoo_graph):
    assert DeviceProfile.preset("Raspberry_Pi_4").compute_power_mw == 3000.0
    assert DeviceProfile.preset("raspberry-pi-5").compute_power_mw == 4000.0
    assert DeviceProfile.preset("jetson-tx2").compute_power_mw == 7500.0
    assert all(p.source for p in DEVICE_PRESETS.values())
    with pytest.raises(ConfigError, match="pixel-9"):
        DeviceProfile.preset("pixel-9")
    with pytest.raises(ConfigError, match="compute_power_mw"):
        DeviceProfile("nothing")
    with pytest.raises(ConfigError, match="compute_power_mw"):
        DeviceProfile("negative", compute_power_mw=-1.0)
    graph = zoo_graph("chair")
    with pytest.raises(ConfigError, match="max_group"):
        profile(graph, max_group=0, progress=False)
    with pytest.raises(ConfigError, match="repeats"):
        profile(graph, repeats=0, progress=False)
    with pytest.raises(ConfigError, match="not both"):
        profile(graph, cloud_speedup=2.0, cloud_executor=OrtExecutor(threads=1), progress=False)
    with pytest.raises(ConfigError, match="cloud_speedup"):
        profile(graph, cloud_speedup=0.0, progress=False)
    with pytest.raises(ConfigError, match="not given"):
        profile(graph, inputs={}, progress=False)


def test_count_groups():
    for n in range(1, 12):
        for m in [None, 1, 2, 3, 5, 20]:
            brute = sum(1 for i in range(n) for j in range(i, n) if m is None or j - i < m)
            assert count_groups(n, m) == brute
