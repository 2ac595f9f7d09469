"""The session's lookup table is built in the background: inferences never wait for it.

Against the shared real server on 127.0.0.1. The oracle of every schedule is
``plan()`` called here on the same cost table and network; the outputs are
checked against the local whole-model outputs. Where a test must control
when a build finishes, it wraps the session's real build so that it starts
only once the test opens a gate; the build itself is the real one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pytest

from fixtures_session import assert_close
from jointdnn_edge import ConfigError, CostTable, Network, plan
from jointdnn_edge.client import BandwidthEstimator
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.session import JointSession

BUILDING = "plan (table building)"
#: A link on which the tiny AlexNet splits (mobile head, cloud middle, mobile tail) under fused_costs.
LINK = Network.preset("wifi").with_bandwidth(10.0, 10.0)


def fused_costs(graph: Any, seed: int = 3) -> CostTable:
    """Seeded per-layer times, groups 3 % cheaper per extra layer (as fused layers are): a unique optimum."""
    n = graph.n
    mobile = np.random.default_rng(seed).uniform(0.5, 2.0, n)
    span = np.maximum(np.subtract.outer(np.arange(n), np.arange(n)).T, 0)
    sizes = {k: v for k, v in graph.cost_skeleton().items() if k in ("out_bytes", "input_bytes")}

    def grouped(per_layer: np.ndarray) -> np.ndarray:
        sums = CostTable.from_layers(per_layer, per_layer, **sizes, max_group=8).mobile_ms
        return sums * 0.97**span

    return CostTable(grouped(mobile), grouped(mobile / 10), **graph.cost_skeleton())


class GatedBuild:
    """Wraps a session's real table build so that it starts only when the test sets ``gate``."""

    def __init__(self, session: JointSession) -> None:
        self.build = session._build_lut
        self.started = threading.Event()
        self.gate = threading.Event()
        self.calls = 0
        session._build_lut = self  # type: ignore[method-assign]

    def __call__(self, radio: Network, cancelled: threading.Event | None = None) -> Any:
        self.calls += 1
        self.started.set()
        assert self.gate.wait(120), "the test never opened the gate"
        return self.build(radio, cancelled)


def session_of(cloud: Any, g: Any, costs: CostTable, **kwargs: Any) -> JointSession:
    kwargs.setdefault("network", LINK)
    kwargs.setdefault("track_cloud_load", False)  # no slowdown samples: the same conditions every inference
    return JointSession(g, cloud.client(), costs, executor=executor_for(g, threads=1), **kwargs)


def test_inferences_are_planned_exactly_while_the_table_builds_then_from_the_table(cloud: Any, reference: Any) -> None:
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    want = plan(costs, LINK, cloud_keeps_tensors=False)
    assert {p for _, _, p in want.runs()} == {"mobile", "cloud"}, "the case should split"
    with session_of(cloud, g, costs) as s:
        build = GatedBuild(s)
        # two inferences in parallel while the build is held: both planned exactly, neither waits for it
        barrier = threading.Barrier(2)
        results: list[Any] = []
        errors: list[BaseException] = []

        def infer(seed: int) -> None:
            try:
                barrier.wait(30)
                planned = s.plan()
                feeds = uniform_feeds(g, seed)
                results.append((planned, feeds, s.run(feeds)))
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=infer, args=(seed,)) for seed in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors and len(results) == 2
        assert build.started.is_set() and not build.gate.is_set() and build.calls == 1  # one build for both
        for (schedule, source, network, _), feeds, out in results:
            assert source == BUILDING and network == LINK
            assert schedule.segments == want.segments
            assert schedule.latency_ms == pytest.approx(want.latency_ms, rel=1e-9)
            assert_close(out, reference(g, feeds))
        trace = s.last_trace
        assert trace is not None and trace.source == BUILDING and trace.setup_ms == 0
        assert trace.executed == [tuple(r) for r in want.runs()]
        build.gate.set()
        _ = s.lookup_table  # waits for the build in flight
        feeds = uniform_feeds(g, 3)
        out = s.run(feeds)
        trace = s.last_trace
        assert trace is not None and trace.source == "lut"
        assert trace.schedule.segments == want.segments
        assert trace.predicted_ms == pytest.approx(want.latency_ms, rel=1e-9)
        assert_close(out, reference(g, feeds))
        assert build.calls == 1 and s.lut_error is None


def test_warm_up_waits_for_the_table(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    with session_of(cloud, g, costs) as s:
        build = GatedBuild(s)
        after: list[str] = []
        worker = threading.Thread(target=lambda: (s.warm_up(probe=False), after.append(s.plan()[1])))
        worker.start()
        assert build.started.wait(60)
        worker.join(0.5)
        assert worker.is_alive(), "warm_up returned before its table was built"
        build.gate.set()
        worker.join(120)
        assert after == ["lut"]  # the table was ready when warm_up returned


def test_never_plans_every_inference_exactly(cloud: Any, reference: Any) -> None:
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    want = plan(costs, LINK, cloud_keeps_tensors=False)
    with session_of(cloud, g, costs, lut_build="never") as s:
        build = GatedBuild(s)
        assert s.warm_up(probe=False).segments == want.segments
        for seed in (1, 2):
            feeds = uniform_feeds(g, seed)
            assert_close(s.run(feeds), reference(g, feeds))
            trace = s.last_trace
            assert trace is not None and trace.source == "plan" and trace.schedule.segments == want.segments
        assert build.calls == 0 and s._building is None


def test_a_failed_build_leaves_the_session_planning_exactly(
    cloud: Any, reference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    want = plan(costs, LINK, cloud_keeps_tensors=False)
    # more cells than a table may have: the real build raises ConfigError
    with caplog.at_level(logging.WARNING, logger="jointdnn_edge.session"):
        with session_of(cloud, g, costs, lut_cells=(4096, 4096, 1)) as s:
            s.warm_up(probe=False)  # waits for the build, which fails; warm_up does not raise
            assert s.lut_error is not None and s.lut_error.startswith("ConfigError: cells must be")
            for seed in (1, 2):
                feeds = uniform_feeds(g, seed)
                assert_close(s.run(feeds), reference(g, feeds))
                trace = s.last_trace
                assert trace is not None and trace.source == f"plan (table build failed: {s.lut_error})"
                assert trace.schedule.segments == want.segments
            assert s._building is None  # not retried on the same radio
            with pytest.raises(ConfigError):
                _ = s.lookup_table  # asked for explicitly, the build raises
    assert "building the lookup table failed" in caplog.text


def test_close_cancels_a_slow_build(cloud: Any, reference: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A genuinely slow build (65536 cells with a slowdown axis: about 40 s on 2 shared cores) stops at close."""
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    with caplog.at_level(logging.INFO, logger="jointdnn_edge.session"):
        s = session_of(cloud, g, costs, lut_cells=(128, 128, 4), track_cloud_load=True)
        feeds = uniform_feeds(g, 1)
        assert_close(s.run(feeds), reference(g, feeds))
        assert s.last_trace is not None and s.last_trace.source == BUILDING
        building = s._building
        assert building is not None
        s.close()
        building.thread.join(60)
        assert not building.thread.is_alive()
    assert "lookup table build cancelled" in caplog.text
    assert s._table is None and s.lut_error is None


def test_a_round_trip_drift_plans_exactly_until_the_new_table_is_built(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    estimator = BandwidthEstimator()
    with JointSession(
        g, cloud.client(estimator=estimator), costs, network="auto", radio=LINK, track_cloud_load=False,
        executor=executor_for(g, threads=1), probe_interval_s=None,
    ) as s:  # fmt: skip
        s.warm_up(probe=False)  # measures the round trip and builds the table on it
        assert s.plan()[1] == "lut"
        build = GatedBuild(s)
        for _ in range(16):  # the link's round trip grows to 200 ms
            estimator.add_rtt(0.2)
        schedule, source, network, _ = s.plan()
        assert network.rtt_ms == pytest.approx(100.0) and source == BUILDING
        want = plan(costs, network, cloud_keeps_tensors=False)
        assert schedule.segments == want.segments
        build.gate.set()
        assert s.lookup_table.radio.rtt_ms == pytest.approx(100.0)
        schedule, source, _, _ = s.plan()
        assert source == "lut" and schedule.segments == want.segments and build.calls == 1


def test_a_learnt_burst_is_planned_with_and_rebuilds_the_table_once(cloud: Any) -> None:
    """Uploads timed by a shaper's law, ``(bytes - burst) / rate``, teach the estimator the burst; the session plans
    on it (exactly while a table for it builds, then from that table), and a refit that moves the burst's credit by
    less than the round trip's tolerance keeps the table."""
    g = cloud.models["alexnet"]
    costs = fused_costs(g)
    estimator = BandwidthEstimator()
    rate = LINK.up_mbps
    with JointSession(
        g, cloud.client(estimator=estimator), costs, network="auto", radio=LINK, track_cloud_load=False,
        executor=executor_for(g, threads=1), probe_interval_s=None,
    ) as s:  # fmt: skip
        s.warm_up(probe=False)
        assert s.plan()[1] == "lut" and s.lookup_table.radio.burst_up_bytes == 0.0
        build = GatedBuild(s)

        def shaped(burst: float) -> None:
            for nbytes in (13_314, 40_845) * 4:
                estimator.add_transfer("up", nbytes, (nbytes - burst) * 8 / (rate * 1e6))

        shaped(9440.0)
        schedule, source, network, _ = s.plan()
        assert network.burst_up_bytes == pytest.approx(9440.0) and source == BUILDING
        want = plan(costs, network, cloud_keeps_tensors=False)
        assert schedule.segments == want.segments and schedule.latency_ms == pytest.approx(want.latency_ms)
        build.gate.set()
        assert s.lookup_table.radio.burst_up_bytes == pytest.approx(9440.0)
        schedule, source, _, _ = s.plan()
        assert source == "lut" and schedule.segments == want.segments and build.calls == 1
        shaped(9000.0)  # 0.35 ms less credit at 10 Mbit/s: within the 1 ms tolerance
        assert s.plan()[2].burst_up_bytes == pytest.approx(9000.0)
        assert s.plan()[1] == "lut" and build.calls == 1


def test_lut_build_is_checked(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    with pytest.raises(ConfigError, match="lut_build"):
        JointSession(g, None, fused_costs(g), lut_build="later")
