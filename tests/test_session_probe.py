"""The session's link probe: small, and started when an all-mobile plan rests on an unmeasured or stale estimate.

Found by the network lab: a session that plans all-mobile moves no bytes, so an estimate that was only a start-up
guess, or a bound left by a missed deadline, was never corrected (the full AlexNet ran all-mobile through a 3G phase
where a split was 8% faster). Real server on 127.0.0.1, link paced by the client; the oracle is the planner's plan on
the true link.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from jointdnn_edge import CostTable, JointSession, Network, zoo
from jointdnn_edge.client import Emulation
from jointdnn_edge.models.graph import PROBE_DOWN_BYTES, PROBE_UP_BYTES, probe_feeds, probe_layer, uniform_feeds
from jointdnn_edge.planner import plan

pytestmark = pytest.mark.usefixtures("cloud")


def test_probe_layer_moves_the_fewest_bytes_that_measure_both_ways() -> None:
    """Brute force over the layers' tensor sizes, and known answers: the small AlexNet's pool2 (57.6 kB in, 12.5 kB
    out), the tiny AlexNet's layer 0 (no layer has 8 kB out with 32 kB in: the fewest bytes with 32 kB in)."""
    g = zoo.load("alexnet", "onnx", size="small")
    sizes = []
    for i in range(g.n):
        ins, outs = g.slice_io(i, i)
        sizes.append((sum(g.tensor(n).nbytes for n in ins), sum(g.tensor(n).nbytes for n in outs)))
    fits = [i for i, (up, down) in enumerate(sizes) if up >= PROBE_UP_BYTES and down >= PROBE_DOWN_BYTES]
    assert probe_layer(g) == min(fits, key=lambda i: sum(sizes[i])) == 7
    feeds = probe_feeds(g, 7)
    assert sum(x.nbytes for x in feeds.values()) == sizes[7][0] == 57_600
    assert probe_layer(zoo.load("alexnet", size="tiny")) == 0


def test_a_local_session_on_a_wrong_estimate_probes_and_finds_the_split(cloud: Any) -> None:
    """The estimate says 0.001 Mbit/s (a guess, never measured here): the first inference runs all-mobile and probes;
    within three inferences the schedule costs what the planner's optimum on the true link costs (within 2%)."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())  # a 20x slower phone
    link = Emulation(up_mbps=20.0, down_mbps=50.0, rtt_ms=4.0)
    true_link = replace(Network.preset("wifi"), up_mbps=20.0, down_mbps=50.0, rtt_ms=2.0)  # rtt_ms: per switch
    best = plan(costs, true_link, cloud_keeps_tensors=False)
    assert "C" in best.bar()  # on the true link the cloud pays
    client = cloud.client(emulate=link)
    client.estimator.add_transfer("up", 1_000_000, 8000.0)  # the wrong estimate: 0.001 Mbit/s
    feeds = uniform_feeds(g, 3)
    costs_taken: list[float] = []
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=0.0) as session:
        for _ in range(3):
            session.run(feeds)
            trace = session.last_trace
            assert trace is not None and trace.fallback is None
            costs_taken.append(trace.schedule.evaluate(costs, true_link, cloud_keeps_tensors=False).latency_ms)
            if len(costs_taken) == 1:
                assert trace.schedule.bar() == "M" * g.n  # planned on the wrong estimate
                assert session.wait_for_probe(30)  # which started a probe
            session.wait_for_probe(30)
    assert costs_taken[0] > 1.02 * best.latency_ms
    assert costs_taken[-1] <= 1.02 * best.latency_ms, (costs_taken, best.bar())


def test_a_forced_or_fixed_session_does_not_probe(cloud: Any) -> None:
    """A schedule that does not follow the link has no use for a probe's bytes."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())
    feeds = uniform_feeds(g, 3)
    for kwargs in ({"force": "mobile"}, {"schedule": [(0, g.n - 1, "mobile")]}):
        client = cloud.client()
        with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=0.0, **kwargs) as session:
            session.run(feeds)
            assert not session.wait_for_probe(30)
            assert np.isfinite(session.last_trace.measured_ms if session.last_trace else np.nan)


def test_a_failed_cloud_step_counts_as_no_measurement(cloud: Any) -> None:
    """A missed deadline leaves a bound in the estimate, not a measurement: the next all-mobile inference probes,
    though the last probe is more recent than ``probe_interval_s``. (The lab's run: a 36 kB upload that waited for
    the server to load the slice missed its deadline, read 0.2 Mbit/s on a 1.1 Mbit/s link, and the session ran
    all-mobile through the phase.)"""
    import time

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())
    client = cloud.client(backoff=(0.01, 0.01))
    feeds = uniform_feeds(g, 3)
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 60.0, "request_slack": (0.0, 1.0)}
    with client, JointSession(g, client, costs, **kwargs) as session:
        session.warm_up()  # measures the link: the next 60 s need no probe
        session.run(feeds)  # a split, with a deadline of 1 ms: missed
        trace = session.last_trace
        assert trace is not None and trace.fallback is not None and "Deadline" in trace.fallback
        time.sleep(0.05)  # the circuit's back-off
        for _ in range(2):
            client.estimator.add_transfer("up", 1_000_000, 8000.0)  # an estimate that keeps the next plan local
        session.run(feeds)
        trace = session.last_trace
        assert trace is not None and trace.schedule.bar() == "M" * g.n
        assert session.wait_for_probe(30)  # probed: the last cloud step failed
