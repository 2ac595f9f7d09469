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
from jointdnn_edge.models.graph import (
    PROBE_DOWN_BYTES,
    PROBE_UP_BYTES,
    SMALL_PROBE_UP_BYTES,
    probe_feeds,
    probe_layer,
    small_probe_layer,
    uniform_feeds,
)
from jointdnn_edge.planner import plan

pytestmark = pytest.mark.usefixtures("cloud")


def _brute_force_probe_layer(g: Any) -> int:
    """The layer with float inputs of at least PROBE_UP_BYTES and outputs of at least PROBE_DOWN_BYTES that moves the
    fewest bytes (layer 0 if none has)."""
    best = None
    for i in range(g.n):
        ins, outs = g.slice_io(i, i)
        up = sum(g.tensor(n).nbytes for n in ins)
        down = sum(g.tensor(n).nbytes for n in outs)
        floats = all(np.dtype(g.tensor(n).dtype).kind == "f" for n in ins)
        if floats and up >= PROBE_UP_BYTES and down >= PROBE_DOWN_BYTES and (best is None or up + down < best[0]):
            best = (up + down, i)
    return 0 if best is None else best[1]


def test_probe_layer_moves_the_fewest_bytes_that_measure_both_ways() -> None:
    """Brute force over the layers' tensor sizes; the small AlexNet's probe is its input (206 kB up, 92 kB down:
    no layer after it uploads 128 kB), the tiny pix2pix's a layer past its 786 kB input."""
    for g in (zoo.load("alexnet", "onnx", size="small"), zoo.load("pix2pix", size="tiny")):
        layer = probe_layer(g)
        assert layer == _brute_force_probe_layer(g), g.name
        feeds = probe_feeds(g, layer)
        assert set(feeds) == set(g.slice_io(layer, layer)[0])
        assert sum(x.nbytes for x in feeds.values()) >= PROBE_UP_BYTES
    assert probe_layer(zoo.load("alexnet", "onnx", size="small")) == 0
    pix = zoo.load("pix2pix", size="tiny")
    assert (
        probe_layer(pix) > 0
        and sum(pix.tensor(n).nbytes for n in pix.slice_io(probe_layer(pix), probe_layer(pix))[0]) < pix.input_bytes
    )
    assert probe_layer(zoo.load("alexnet", size="tiny")) == 0  # no layer uploads 128 kB: the model input


def _brute_force_small_probe_layer(g: Any, probe: int) -> int | None:
    """The layer other than ``probe`` with float inputs of SMALL_PROBE_UP_BYTES to half ``probe``'s upload that moves
    the fewest bytes."""
    ceiling = sum(g.tensor(n).nbytes for n in g.slice_io(probe, probe)[0]) / 2
    best = None
    for i in range(g.n):
        ins, outs = g.slice_io(i, i)
        up = sum(g.tensor(n).nbytes for n in ins)
        total = up + sum(g.tensor(n).nbytes for n in outs)
        floats = bool(ins) and all(np.dtype(g.tensor(n).dtype).kind == "f" for n in ins)
        if i != probe and floats and SMALL_PROBE_UP_BYTES <= up <= ceiling and (best is None or total < best[0]):
            best = (total, i)
    return None if best is None else best[1]


def test_the_small_probe_layer_uploads_a_quarter_to_a_half_of_the_probe() -> None:
    """Brute force over the layers' sizes: the small AlexNet's second probe is pool2 (58 kB up against the input's
    206 kB), the tiny pix2pix's a 33 kB layer; the tiny AlexNet has none (nothing past its input uploads 8 kB)."""
    for g in (zoo.load("alexnet", "onnx", size="small"), zoo.load("pix2pix", size="tiny")):
        small = small_probe_layer(g, probe_layer(g))
        assert small is not None and small == _brute_force_small_probe_layer(g, probe_layer(g)), g.name
    small_alexnet = zoo.load("alexnet", "onnx", size="small")
    assert small_probe_layer(small_alexnet, 0) == 7
    assert small_probe_layer(zoo.load("alexnet", size="tiny"), 0) is None


@pytest.mark.parametrize("burst", [16384.0, 0.0])
def test_a_local_sessions_probes_learn_the_links_burst(cloud: Any, burst: float) -> None:
    """A session kept on the phone moves nothing but its probes; their two sizes show the link's burst, which a split's
    small upload is priced by (the network lab's 33 ms phone stayed local on Wi-Fi because one-size probes never
    showed it). Oracle: the emulated link, whose first ``burst`` bytes of a request pass unpaced; the control without
    one learns (almost) none."""
    g = cloud.models["pix2pix"]
    costs = CostTable.from_layers([0.05] * g.n, [0.05] * g.n, **g.cost_skeleton())  # the phone as fast: local
    client = cloud.client(emulate=Emulation(up_mbps=10.0, down_mbps=50.0, rtt_ms=2.0, burst_up_bytes=burst))
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=None) as session:
        session.probe(2)  # two probes' worth: the probe layer and the smaller upload, twice
    net = client.estimator.network(Network.preset("wifi"))
    assert net.up_mbps == pytest.approx(10.0, rel=0.25)
    if burst:
        assert net.burst_up_bytes == pytest.approx(burst, rel=0.35)
    else:
        assert net.burst_up_bytes < 4096.0


def test_a_local_session_on_a_wrong_estimate_probes_and_finds_the_split(cloud: Any) -> None:
    """The estimate says 0.001 Mbit/s (a guess, never measured here): the first inference runs all-mobile and probes;
    within three inferences the schedule costs what the planner's optimum on the true link costs (within 2%)."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())  # a 20x slower phone
    link = Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=4.0)
    true_link = replace(Network.preset("wifi"), up_mbps=5.0, down_mbps=20.0, rtt_ms=2.0)  # rtt_ms: per switch
    best = plan(costs, true_link, cloud_keeps_tensors=False)
    # on the true link the first layer's 5.4 kB output goes to the cloud; an estimate from 2.6 to 77 Mbit/s plans so
    assert best.bar().startswith("M|C")
    client = cloud.client(emulate=link)
    client.estimator.add_transfer("up", 1_000_000, 8000.0)  # the wrong estimate: 0.001 Mbit/s
    feeds = uniform_feeds(g, 3)
    costs_taken: list[float] = []
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=0.0) as session:
        for _ in range(3):
            before = client.estimator.taken()
            session.run(feeds)
            trace = session.last_trace
            assert trace is not None and trace.fallback is None
            costs_taken.append(trace.schedule.evaluate(costs, true_link, cloud_keeps_tensors=False).latency_ms)
            session.wait_for_probe(30)
            if len(costs_taken) == 1:
                assert trace.schedule.bar() == "M" * g.n  # planned on the wrong estimate
                assert client.estimator.taken()["up"] >= before["up"] + 2  # and probed: two upload samples
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
        before = client.estimator.taken()
        session.run(feeds)
        trace = session.last_trace
        assert trace is not None and trace.schedule.bar() == "M" * g.n
        session.wait_for_probe(30)
        assert client.estimator.taken()["rtt"] >= before["rtt"] + 2  # probed (its two pings): the cloud step failed


def test_a_probe_past_layer_0_runs_on_the_server(cloud: Any) -> None:
    """The tiny pix2pix (a DAG) probes a layer past its input, with zeros: the server runs it and both directions are
    sampled (two requests, two round trips)."""
    g = cloud.models["pix2pix"]
    assert probe_layer(g) > 0
    client = cloud.client(emulate=Emulation(up_mbps=50.0, down_mbps=50.0, rtt_ms=2.0))  # transfers of 20 ms or more
    with client, JointSession(g, client, lut_build="never") as session:
        before = client.estimator.taken()
        session.probe(2)
        after = client.estimator.taken()
    # each probe: the probe layer both ways, then the smaller upload (its answer is no sample)
    assert after["up"] - before["up"] == 4 and after["down"] - before["down"] == 2, (before, after)
    assert after["rtt"] - before["rtt"] >= 2


def test_a_session_on_the_cloud_pings_when_its_round_trip_is_stale(cloud: Any) -> None:
    """A request that uploads 54 kB is a bandwidth sample, not a round-trip sample, so a session whose every request
    is one measured its round trip only when it started. Found by the lab: on a step from a 10 to a 1 ms round trip
    the estimate stayed at 11.6 ms and the upload estimate absorbed the difference (65 Mbit/s read on 18.9). The
    oracle is the emulated round trip, cut 20-fold under the session; the control session, which never pings
    (``probe_interval_s=None``), keeps the stale figure."""
    from jointdnn_edge.client import EmulatedTransport

    g = cloud.models["alexnet"]
    # the phone's first layer takes a second: every plan uploads the 54 kB input and runs the rest on the cloud
    costs = CostTable.from_layers([1000.0] + [5.0] * (g.n - 1), [0.05] * g.n, **g.cost_skeleton())
    feeds = uniform_feeds(g, 3)
    slow, fast = Emulation(up_mbps=2.0, down_mbps=20.0, rtt_ms=40.0), Emulation(up_mbps=2.0, down_mbps=20.0, rtt_ms=2.0)
    estimates = {}
    for interval in (0.0, None):
        client = cloud.client(emulate=slow)
        transport = client.http._transport
        assert isinstance(transport, EmulatedTransport)
        with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=interval) as session:
            session.run(feeds)
            session.wait_for_probe(30)
            trace = session.last_trace
            assert trace is not None and trace.schedule.bar().replace("|", "") == "C" * g.n and trace.fallback is None
            measured = client.estimator.rtt_ms
            assert measured is not None and measured >= slow.rtt_ms
            transport.emulation = fast
            for _ in range(3):
                session.run(feeds)
                session.wait_for_probe(30)
                trace = session.last_trace
                assert trace is not None and trace.schedule.bar().replace("|", "") == "C" * g.n
            estimates[interval] = (measured, client.estimator.rtt_ms)
    (before, after), (control_before, control_after) = estimates[0.0], estimates[None]
    assert after is not None and after < 0.5 * before  # 40 -> 2 ms: the estimate followed
    assert control_after == control_before  # without pings nothing measured the round trip again


def test_a_split_too_small_to_measure_the_link_probes_it(cloud: Any) -> None:
    """A wrong estimate (0.05 Mbit/s) makes the late split that uploads 64 bytes the best plan; a request that small
    measures no bandwidth, and the session is not local, so before it refreshed stale estimates it kept both to the
    end. Now the inference's probe corrects the estimate, and within three inferences the schedule costs what the
    planner's optimum on the true link costs (within 2%)."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())
    link = Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=4.0)
    true_link = replace(Network.preset("wifi"), up_mbps=5.0, down_mbps=20.0, rtt_ms=2.0)
    best = plan(costs, true_link, cloud_keeps_tensors=False)
    client = cloud.client(emulate=link)
    for _ in range(2):
        client.estimator.add_transfer("up", 1_000_000, 160.0)  # 0.05 Mbit/s
    wrong = plan(costs, client.estimator.network(Network.preset("wifi")), cloud_keeps_tensors=False)
    cut = wrong.segments[-1][0]
    sent = sum(g.tensor(n).nbytes for n in g.slice_io(cut, g.n - 1)[0])
    assert wrong.bar().startswith("M") and "C" in wrong.bar() and sent < client.estimator.min_bytes
    feeds = uniform_feeds(g, 3)
    costs_taken: list[float] = []
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=0.0) as session:
        for _ in range(3):
            session.run(feeds)
            trace = session.last_trace
            assert trace is not None and trace.fallback is None
            costs_taken.append(trace.schedule.evaluate(costs, true_link, cloud_keeps_tensors=False).latency_ms)
            session.wait_for_probe(30)
    assert costs_taken[0] > 1.02 * best.latency_ms  # planned on the wrong estimate
    assert costs_taken[-1] <= 1.02 * best.latency_ms, (costs_taken, best.bar())


def test_a_slowdown_no_cloud_step_renewed_expires(cloud: Any) -> None:
    """One slow cloud step (the server's compute 50x the table's) sends the session to the device, where nothing
    measures the cloud's compute again (a probe's one layer is no sample). After ``probe_interval_s`` the estimate
    expires, the next inference plans on the table's cloud times, and the real server, fast, keeps it there. The
    oracle is the planner's plan at each slowdown; the control session (``probe_interval_s=None``) stays local."""
    import time

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.5] * g.n, **g.cost_skeleton())
    radio = Network.preset("wifi")
    fast = plan(costs, radio, cloud_keeps_tensors=False)
    slow = plan(costs, radio, cloud_keeps_tensors=False, cloud_slowdown=50.0)
    assert "C" in fast.bar() and "C" not in slow.bar()
    feeds = uniform_feeds(g, 3)
    bars = {}
    for interval in (0.2, None):
        client = cloud.client()
        with client, JointSession(g, client, costs, network=radio, lut_build="never", probe_interval_s=interval) as s:
            predicted = sum(costs.cloud_ms[i, i] for i in range(g.n))
            s._track_cloud_load(0.0, 50.0 * predicted, predicted)  # what a response from a server 50x slow reports
            s.run(feeds)
            first = s.last_trace
            s.wait_for_probe(30)
            time.sleep(0.3)
            s.run(feeds)
            second = s.last_trace
            assert first is not None and second is not None
            bars[interval] = (first.schedule.bar(), second.schedule.bar())
    assert bars[0.2] == (slow.bar(), fast.bar())
    assert bars[None] == (slow.bar(), slow.bar())


def test_a_fresh_upload_and_a_stale_round_trip_ping_only(cloud: Any) -> None:
    """The inference's own 54 kB upload keeps the upload estimate fresh; once the round trip is older than the
    interval the session pings (two round-trip samples) and sends no probe (whose two uploads would be two more
    upload samples). The oracle is the estimator's count of samples taken."""
    import time

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([1000.0] + [5.0] * (g.n - 1), [0.05] * g.n, **g.cost_skeleton())
    feeds = uniform_feeds(g, 3)
    client = cloud.client(emulate=Emulation(up_mbps=20.0, down_mbps=20.0, rtt_ms=2.0))
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=0.3) as session:
        session.run(feeds)  # the first inference: a probe (no upload measured yet)
        session.wait_for_probe(30)
        time.sleep(0.35)  # the round trip's samples age past the interval
        before = client.estimator.taken()
        session.run(feeds)  # its upload is fresh; its round trip is not
        session.wait_for_probe(30)
        after = client.estimator.taken()
    assert after["up"] - before["up"] == 1  # the inference's own upload: no probe
    assert after["rtt"] - before["rtt"] == 2  # two pings


def test_one_refresh_per_interval_even_when_it_measures_nothing(cloud: Any) -> None:
    """With a sample floor no transfer reaches, the upload estimate never gets a sample, so it is always stale;
    the session still starts one refresh per ``probe_interval_s``, not one after every cloud inference. Under that
    floor every request is a round-trip sample: an inference adds one, a refresh four (two pings, two probe
    requests), so the estimator's round-trip count says how many refreshes ran."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([1000.0] + [5.0] * (g.n - 1), [0.05] * g.n, **g.cost_skeleton())
    feeds = uniform_feeds(g, 3)
    client = cloud.client()
    client.estimator.min_bytes = 10**12
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=60.0) as session:
        session.run(feeds)
        session.wait_for_probe(30)
        before = client.estimator.taken()["rtt"]
        for _ in range(4):
            session.run(feeds)
            assert session.last_trace is not None and "C" in session.last_trace.schedule.bar()
            session.wait_for_probe(30)
        assert client.estimator.taken()["rtt"] - before <= 4  # the four inferences' own: no refresh in the interval


def _local_on_paced_link(cloud: Any, link: Emulation) -> tuple[Any, CostTable, Any, Any, Any]:
    """``(graph, costs, feeds, client, transport)``: the AlexNet with a phone as fast as the cloud (its sessions stay
    local), and a client paced to ``link`` whose transport's emulation a test may change."""
    from jointdnn_edge.client import EmulatedTransport

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([0.05] * g.n, [0.05] * g.n, **g.cost_skeleton())
    client = cloud.client(emulate=link)
    transport = client.http._transport
    assert isinstance(transport, EmulatedTransport)
    return g, costs, uniform_feeds(g, 3), client, transport


def _wait_watch(session: Any, seconds: float) -> None:
    """Let the round trip age past the session's ping interval, and the background work end."""
    import time

    session.wait_for_probe(30)
    time.sleep(seconds)


def test_a_local_session_notices_a_new_network_by_its_round_trip(cloud: Any) -> None:
    """On a slow link with an 80 ms round trip the phone is best; the network then changes to a fast one with a 4 ms
    round trip, where a split is. With probes 60 s apart the session would stay local for a minute; its ping watch
    sees the round trip fall, probes at once, and within three inferences the schedule costs what the planner's
    optimum on the new link costs (within 2%). The oracle is the planner's plan on each true link; the control
    session (``ping_interval_s=None``) stays local."""
    from jointdnn_edge.client import EmulatedTransport

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())  # a 20x slower phone
    slow = Emulation(up_mbps=1.0, down_mbps=2.0, rtt_ms=80.0)
    fast = Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=4.0)
    wifi = Network.preset("wifi")
    on_slow = plan(costs, replace(wifi, up_mbps=1.0, down_mbps=2.0, rtt_ms=40.0), cloud_keeps_tensors=False)
    fast_link = replace(wifi, up_mbps=5.0, down_mbps=20.0, rtt_ms=2.0)  # rtt_ms: per switch
    best = plan(costs, fast_link, cloud_keeps_tensors=False)
    assert on_slow.bar() == "M" * g.n and "C" in best.bar()
    feeds = uniform_feeds(g, 3)
    taken: dict[float | None, list[float]] = {}
    for ping in (0.2, None):
        client = cloud.client(emulate=slow)
        transport = client.http._transport
        assert isinstance(transport, EmulatedTransport)
        kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 60.0, "ping_interval_s": ping}
        with client, JointSession(g, client, costs, **kwargs) as session:
            session.run(feeds)  # nothing measured yet: it probes the slow link
            _wait_watch(session, 0.25)
            session.run(feeds)
            assert session.last_trace is not None and session.last_trace.schedule.bar() == "M" * g.n
            _wait_watch(session, 0.25)
            transport.emulation = fast  # the phone joins another network
            taken[ping] = []
            for _ in range(3):
                session.run(feeds)
                trace = session.last_trace
                assert trace is not None and trace.fallback is None
                taken[ping].append(trace.schedule.evaluate(costs, fast_link, cloud_keeps_tensors=False).latency_ms)
                _wait_watch(session, 0.25)
    assert taken[0.2][-1] <= 1.02 * best.latency_ms, (taken, best.bar())
    assert all(t > 1.02 * best.latency_ms for t in taken[None]), taken  # no watch: local until the next probe


def test_a_steady_round_trip_starts_no_probe(cloud: Any) -> None:
    """On a link that does not change, each ping watch is two round-trip samples and nothing more: no probe's
    uploads. The oracle is the estimator's count of samples taken."""
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([5.0] * g.n, [0.05] * g.n, **g.cost_skeleton())
    feeds = uniform_feeds(g, 3)
    client = cloud.client(emulate=Emulation(up_mbps=1.0, down_mbps=2.0, rtt_ms=80.0))
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 60.0, "ping_interval_s": 0.1}
    with client, JointSession(g, client, costs, **kwargs) as session:
        session.run(feeds)
        _wait_watch(session, 0.15)
        before = client.estimator.taken()
        for _ in range(3):
            session.run(feeds)
            assert session.last_trace is not None and session.last_trace.schedule.bar() == "M" * g.n
            _wait_watch(session, 0.15)
        after = client.estimator.taken()
    assert after["rtt"] - before["rtt"] == 6  # three watches of two pings
    assert after["up"] == before["up"]  # and no probe


def test_a_slower_round_trip_relevels_the_estimate_without_a_probe(cloud: Any) -> None:
    """A session on the cloud whose round trip grows from 20 to 35 ms (a move to another network), under the
    estimator's own 2x step rule: its own uploads measure the bandwidth, and the ping watch takes the round trip to
    the new level at once (the median of the window would have held the old one for several more samples) and sends
    no probe, whose two uploads would cost seconds of a slow link. The oracles are the emulated round trip and the
    estimator's count of upload samples."""
    from jointdnn_edge.client import EmulatedTransport

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([1000.0] + [5.0] * (g.n - 1), [0.05] * g.n, **g.cost_skeleton())  # all-cloud
    feeds = uniform_feeds(g, 3)
    client = cloud.client(emulate=Emulation(up_mbps=20.0, down_mbps=20.0, rtt_ms=20.0))
    transport = client.http._transport
    assert isinstance(transport, EmulatedTransport)
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 60.0, "ping_interval_s": 0.2}
    with client, JointSession(g, client, costs, **kwargs) as session:
        session.run(feeds)  # nothing measured yet: a probe
        _wait_watch(session, 0.25)
        session.run(feeds)  # and a watch on the steady link
        _wait_watch(session, 0.25)
        before_rtt = client.estimator.rtt_ms
        transport.emulation = Emulation(up_mbps=20.0, down_mbps=20.0, rtt_ms=35.0)
        before = client.estimator.taken()
        session.run(feeds)
        assert session.last_trace is not None and "C" in session.last_trace.schedule.bar()
        session.wait_for_probe(30)
        after = client.estimator.taken()
        rtt = client.estimator.rtt_ms
    assert before_rtt is not None and 20.0 <= before_rtt < 26.0, before_rtt
    assert rtt is not None and 35.0 <= rtt < 50.0, rtt  # the new level, from the watch's two pings
    assert after["up"] - before["up"] == 1  # the inference's own upload: no probe
    assert after["rtt"] - before["rtt"] == 2  # the two pings


def test_probes_take_at_most_a_tenth_of_the_time(cloud: Any) -> None:
    """With ``probe_interval_s=0`` a local session would probe after every inference; a probe that took d seconds
    is followed by the next only d / PROBE_DUTY later (on a slow link a probe takes seconds). The oracle is the
    probe's duration, bounded here by the session's wait for it, and the estimator's count of upload samples (two
    per probe)."""
    import time

    from jointdnn_edge.session import PROBE_DUTY

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([0.05] * g.n, [0.05] * g.n, **g.cost_skeleton())  # the phone as fast: local
    feeds = uniform_feeds(g, 3)
    # a 40 ms round trip: a late ping is far from looking like a fall of 1.5x (the watch runs after each inference)
    client = cloud.client(emulate=Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=40.0))
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 0.0, "ping_interval_s": None}
    with client, JointSession(g, client, costs, **kwargs) as session:
        t0 = time.monotonic()
        session.run(feeds)
        assert session.wait_for_probe(30)  # the first inference probes: nothing was measured
        ended = time.monotonic()
        took = session._probe_s
        assert 0.02 < took <= ended - t0 and client.estimator.taken()["up"] == 2  # two 54 kB uploads at 5 Mbit/s
        assert session.last_trace is not None and "C" not in session.last_trace.schedule.bar()
        session.run(feeds)  # within took / PROBE_DUTY of the probe: none (its round trip's pings, at most)
        session.wait_for_probe(30)
        assert client.estimator.taken()["up"] == 2
        time.sleep(max(0.0, ended + took / PROBE_DUTY - time.monotonic()) + 0.05)
        session.run(feeds)  # past it: the next probe
        assert session.wait_for_probe(30) and client.estimator.taken()["up"] == 4


@pytest.mark.parametrize(("seen_by", "new_rtt_ms"), [("probe", 15.0), ("watch", 15.0), ("probe", 66.0)])
def test_a_probe_on_a_new_network_is_confirmed_at_once(cloud: Any, seen_by: str, new_rtt_ms: float) -> None:
    """Found by the network lab (33 and 39 ms phones): right after 3G -> Wi-Fi, a probe took 1.4-2.1 s on the new
    link while TCP recovered and read 1.4-1.7 Mbit/s; its duration put the next probe 14-17 s off (``PROBE_DUTY``),
    past the Wi-Fi phase. Here the round trip falls 120 -> 15 ms (or 66: under the estimator's own 2x step rule, so
    the probe drops the old round trips itself) while transfers stay slow (1 Mbit/s). The fall is
    seen by the probe's own pings, or by a ping watch that then probes; either way the next local inference probes
    again at once, though ``probe_interval_s`` is 30 s, and that probe, which sees no fall, sets the interval: the
    inference after it does not probe. The oracle is the estimator's count of upload samples (two per background
    probe)."""
    old_link = Emulation(up_mbps=1.0, down_mbps=20.0, rtt_ms=120.0)
    g, costs, feeds, client, transport = _local_on_paced_link(cloud, old_link)
    watch = 0.05 if seen_by == "watch" else None
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 30.0, "ping_interval_s": watch}
    with client, JointSession(g, client, costs, **kwargs) as session:
        session.probe()  # the old network: a 120 ms round trip
        for _ in range(6):
            client.ping()  # a round trip well established (a window full of it)
        transport.emulation = Emulation(up_mbps=1.0, down_mbps=20.0, rtt_ms=new_rtt_ms)
        uploads = []
        if seen_by == "probe":
            session.probe()  # its pings find the fall; its upload takes what it takes
        else:
            _wait_watch(session, watch)  # the round trip is older than the watch's interval: a watch, which probes
            base = client.estimator.taken()["up"]
            session.run(feeds)
            assert session.wait_for_probe(30)
            uploads.append(client.estimator.taken()["up"] - base)
        for _ in range(2):
            base = client.estimator.taken()["up"]
            session.run(feeds)
            session.wait_for_probe(30)
            uploads.append(client.estimator.taken()["up"] - base)
        assert uploads == ([2] if seen_by == "watch" else []) + [2, 0]


def test_a_round_trip_that_fell_by_steps_since_the_probe_starts_one(cloud: Any) -> None:
    """A slow ramp: the round trip falls 200 -> 160 -> 120 ms while the session stays local. Each step is under the
    watch's 1.5x against the estimate, which its pings carry along; the second is past it against the round trip
    the last probe measured, so the session probes then, and not at the first. The oracle is the estimator's count
    of upload samples (two per probe)."""
    g, costs, feeds, client, transport = _local_on_paced_link(cloud, Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=200))
    kwargs: dict[str, Any] = {"lut_build": "never", "probe_interval_s": 60.0, "ping_interval_s": 0.1}
    uploads = []
    with client, JointSession(g, client, costs, **kwargs) as session:
        session.warm_up()  # a probe, at 200 ms
        _wait_watch(session, 0.15)
        base = client.estimator.taken()["up"]
        assert base >= 1
        for rtt in (160.0, 160.0, 160.0, 120.0, 120.0):
            transport.emulation = Emulation(up_mbps=5.0, down_mbps=20.0, rtt_ms=rtt)
            session.run(feeds)
            _wait_watch(session, 0.15)
            uploads.append(client.estimator.taken()["up"] - base)
    assert uploads[:3] == [0, 0, 0]  # 160 against 200: no probe
    assert uploads[3] == 2 and uploads[4] == 2  # 120 against the probe's 200: one probe, then the new reference


def test_a_long_round_trip_is_measured_not_taken_for_a_failure(cloud: Any) -> None:
    """A 200 ms round trip: a fresh connection's three outlast the first link check's wait (250 ms). That run is local
    and says the check is pending; the check goes on in the background, the breaker counts no failure, and the next
    run plans on the measured link. Oracles: the emulated round trip, and the planner's plan on the estimated link.

    The first session gave the check up at its wait and counted a cloud failure: the circuit opened and the session
    stayed on the device for the back-off.
    """
    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([50.0] * g.n, [0.05] * g.n, **g.cost_skeleton())  # a slow phone: the cloud wins
    feeds = uniform_feeds(g, 3)
    client = cloud.client(emulate=Emulation(up_mbps=20.0, down_mbps=20.0, rtt_ms=200.0))
    with client, JointSession(g, client, costs, lut_build="never", probe_interval_s=60.0) as session:
        session.run(feeds)
        first = session.last_trace
        assert first is not None and first.source.startswith("mobile-only: link check pending")
        assert [s.platform for s in first.steps] == ["mobile"]
        assert session.wait_for_probe(10.0)
        assert client.circuit.failures == 0
        rtt = client.estimator.rtt_ms
        assert rtt is not None and 190.0 <= rtt <= 260.0, rtt
        session.run(feeds)
        second = session.last_trace
        assert second is not None and second.fallback is None and second.source.startswith("plan")
        want = plan(costs, client.estimator.network(session.radio), cloud_keeps_tensors=False)
        assert second.schedule.segments == want.segments and "cloud" in {s.platform for s in second.steps}


def test_rtt_moved_takes_a_change_of_network_not_jitter() -> None:
    """Known cases of the watch's rule: both pings past 1.5x and 2 ms of the estimate, on the same side."""
    from jointdnn_edge.session import _rtt_moved

    assert _rtt_moved(81.5, [41.5, 42.0]) == "down"  # 3G -> 4G: 2x, which the estimator's own 2x step rule misses
    assert _rtt_moved(11.5, [2.0, 1.9]) == "down" and _rtt_moved(10.0, [40.0, 41.0]) == "up"
    assert _rtt_moved(81.5, [41.5, 90.0]) is None  # one ping is one sample
    assert _rtt_moved(81.5, [41.5, 160.0]) is None  # opposite sides: no level
    assert _rtt_moved(1.0, [0.3, 0.4]) is None and _rtt_moved(0.5, [2.0, 2.2]) is None  # LAN jitter: < 2 ms apart
    assert _rtt_moved(80.0, [100.0, 110.0]) is None and _rtt_moved(40.0, []) is None, "within 1.5x, or no pings"
