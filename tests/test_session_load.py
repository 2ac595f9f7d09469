"""A session against a saturated one-slot server (issue 14, item 5): the queue wait the server reports moves the
plan to the phone, and a background probe brings it back once the queue drains.

The server is real (uvicorn on 127.0.0.1, in-process so that the test can see its admission counter); the slot is
held by a request for a second model whose executor waits for a gate the test opens. The oracle is the planner's
own optimum for the link with the reported queue wait in its round trip (half per switch: a request is two).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fixtures_session import assert_close
from jointdnn_edge import CostTable, Network, codec, plan
from jointdnn_edge.client import CloudClient
from jointdnn_edge.models.executor import EmulatedDevice, executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.session import JointSession

LINK = Network.preset("wifi")
#: What the test holds the slot for once the session's request waits behind it (a lower bound on its queue wait).
HELD_S = 0.5


class _GatedDevice(EmulatedDevice):
    """The real executor, whose runs wait for ``gate`` (``entered`` is set once one is waiting): a busy slot."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def run(self, graph: Any, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return dict(self.inner.run(graph, first, last, feeds))


def _costs(n: int, skeleton: Mapping[str, Any]) -> CostTable:
    """The cloud far faster than the phone (0.05 vs 2 ms a layer): unloaded, the optimum sends the input up; a
    queue wait of ``HELD_S`` costs more than the whole model on the phone."""
    return CostTable.from_layers([2.0] * n, [0.05] * n, **skeleton)


def test_a_queued_cloud_moves_the_plan_to_the_phone_and_a_probe_brings_it_back(
    session_models: dict[str, Any], reference: Any
) -> None:
    from jointdnn_edge.server import BackgroundServer, Limits, create_app

    g = session_models["alexnet"]
    costs = _costs(g.n, g.cost_skeleton())
    everything_local = [(0, g.n - 1, "mobile")]
    assert _oracle_runs(costs, 0.0) != everything_local  # unloaded, the cloud is worth it
    assert _oracle_runs(costs, HELD_S * 1e3) == everything_local  # behind the held slot, it is not
    feeds = uniform_feeds(g, 3)
    want = reference(g, feeds)
    hog = _GatedDevice(executor_for(g, threads=1))
    app = create_app(
        {"alexnet": g, "hog": g}, limits=Limits(max_concurrency=1, max_queue=8), threads=1, executors={"hog": hog}
    )
    admission = app.state.jointdnn
    with BackgroundServer(app) as server, CloudClient(server.url, timeout=60.0) as other:
        # probe_interval_s=0: every load sample replaces the estimates, so the estimate is the last reported wait
        with JointSession(
            g, server.url, costs, network=LINK, lut_cells=(4, 4, 2), lut_build="blocking", probe_interval_s=0.0,
            executor=executor_for(g, threads=1), request_slack=(4.0, 30_000.0),  # no deadline cuts the wait short
        ) as session:  # fmt: skip
            assert_close(session.run(feeds), want)
            trace = session.last_trace
            assert trace is not None and trace.source == "lut" and "cloud" in {s.platform for s in trace.steps}

            # another phone's request holds the only slot; the session's next request queues behind it
            frame = codec.encode({n: feeds[n] for n in g.slice_io(0, g.n - 1)[0]}, codec="raw")
            holder = threading.Thread(target=other.infer_slice, args=("hog", 0, g.n - 1, frame), daemon=True)
            holder.start()
            assert hog.entered.wait(30)
            release = threading.Thread(target=_release_once_queued, args=(admission, hog.gate), daemon=True)
            release.start()
            assert_close(session.run(feeds), want)
            release.join(30)
            holder.join(30)
            trace = session.last_trace
            assert trace is not None
            queued = [s for s in trace.steps if s.platform == "cloud" and not s.fallback]
            assert len(queued) == 1 and queued[0].queue_ms > 0
            assert session._queue_ms == queued[0].queue_ms  # the server's report, as the session holds it

            # the next plan prices the cloud with that wait: the planner's optimum for it, all on the phone
            schedule, source, network, _ = session.plan()
            assert source.startswith("plan (cloud queue") and network.rtt_ms == pytest.approx(
                LINK.rtt_ms + queued[0].queue_ms / 2
            )
            assert _optimal(schedule, costs, network, session._slowdown) and schedule.runs() == everything_local

            # the load is gone: the local inference starts a probe, whose wait replaces the estimate
            assert_close(session.run(feeds), want)
            trace = session.last_trace
            assert trace is not None and [s.platform for s in trace.steps] == ["mobile"]
            probing = session._probing
            assert probing is not None
            probing.join(30)
            assert session._queue_ms < queued[0].queue_ms
            schedule, _, network, slowdown = session.plan()
            assert _optimal(schedule, costs, network, slowdown)
            assert schedule.runs() != everything_local  # back on the cloud (as planned unloaded)
            assert_close(session.run(feeds), want)
            trace = session.last_trace
            assert trace is not None and "cloud" in {s.platform for s in trace.steps}


def _optimal(schedule: Any, costs: CostTable, network: Network, slowdown: float) -> bool:
    """Whether ``schedule`` costs what the planner's optimum costs on the network and slowdown the session planned
    for (uniform layer costs make many groupings tie, and a lookup table may store another one than ``plan()``)."""
    oracle = plan(costs, network, cloud_slowdown=slowdown, cloud_keeps_tensors=False)
    value = schedule.evaluate(costs, network, cloud_slowdown=slowdown, cloud_keeps_tensors=False)
    return bool(value.latency_ms == pytest.approx(oracle.latency_ms, rel=1e-9))


def _oracle_runs(costs: CostTable, queue_ms: float) -> list[tuple[int, int, str]]:
    link = replace(LINK, rtt_ms=LINK.rtt_ms + queue_ms / 2.0)
    return plan(costs, link, cloud_keeps_tensors=False).runs()


def _release_once_queued(admission: Any, gate: threading.Event) -> None:
    """Open ``gate`` ``HELD_S`` after a second request was admitted (the session's, waiting for the slot)."""
    deadline = time.monotonic() + 30
    while admission.pending < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(HELD_S)
    gate.set()


def test_an_unloaded_session_on_a_fixed_link_does_not_probe(cloud: Any) -> None:
    """A session kept local by its cost table (not by the cloud's queue) on a fixed link has nothing to learn: no
    probe, as before."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([0.01] * g.n, [1000.0] * g.n, **g.cost_skeleton())  # the cloud never pays
    with JointSession(g, cloud.client(), costs, network=LINK, lut_cells=(2, 2, 1), probe_interval_s=0.0) as session:
        session.run(uniform_feeds(g, 7))
        trace = session.last_trace
        assert trace is not None and [s.platform for s in trace.steps] == ["mobile"]
        assert session._probing is None
