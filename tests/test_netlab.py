"""The network lab (docs/netlab.md): traces, the kernel-shaped link, its teardown, and a short adaptive run.

The lab needs root, ``ip``/``tc`` and network namespaces; where they are
missing the lab tests skip with the lab's own reason. Nothing here asserts a
timing: the short run asserts that the adaptive session switched schedules
with the link and that every output was right.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from jointdnn_edge.client import BandwidthEstimator
from jointdnn_edge.errors import ConfigError
from jointdnn_edge.netlab import SHIPPED_TRACES, LinkTrace, lab_unavailable_reason, leftovers, load_trace

REASON = lab_unavailable_reason()
needs_lab = pytest.mark.skipif(REASON is not None, reason=f"network lab unavailable: {REASON}")


def _clean() -> None:
    left = leftovers()
    assert left == {"netns": [], "links": []}, left


# ------------------------------------------------------------------ traces
def test_shipped_traces_load_and_step_uses_table3() -> None:
    from jointdnn_edge.network import NETWORK_PRESETS

    for name in SHIPPED_TRACES:
        tr = load_trace(name)
        assert tr.points[0].t_s == 0 and tr.duration_s > tr.points[-1].t_s
    step = load_trace("step")
    seq = [(p.up_mbps, p.down_mbps) for p in step.points]
    want = [NETWORK_PRESETS[k] for k in ("3g", "wifi", "4g", "3g")]
    assert seq == [(n.up_mbps, n.down_mbps) for n in want]
    assert step.at(25).up_mbps == NETWORK_PRESETS["wifi"].up_mbps and step.at(80.5) == step.at(0.5)  # repeats
    assert any(p.outage for p in load_trace("outage").points)


def test_csv_and_mahimahi_traces(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("# c\ntime_s,up_mbps,down_mbps,rtt_ms,loss\n0,1,2,30,0.1\n5,3,4,20,0\n9,end,,\n")
    tr = LinkTrace.from_csv(csv)
    assert tr.duration_s == 9 and tr.at(6).rtt_ms == 20 and tr.at(1).loss == 0.1
    assert [(a, b) for a, b, _ in tr.phases(12)] == [(0, 5), (5, 9), (9, 12)]
    # Mahimahi: one 1500-byte opportunity per ms for 1 s (12 Mbit/s), then one per 4 ms (3 Mbit/s)
    mm = tmp_path / "link.mahi"
    mm.write_text("\n".join(str(ms) for ms in list(range(0, 1000)) + list(range(1000, 2000, 4))) + "\n")
    m = LinkTrace.from_mahimahi(mm, rtt_ms=50)
    assert [round(p.up_mbps, 3) for p in m.points] == [12.0, 3.0] and m.at(0).rtt_ms == 50
    assert load_trace(mm).duration_s == 2.0
    assert load_trace(str(Path(__file__).parents[1] / "python/jointdnn_edge/netlab/traces/example.mahi")).points
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,up_mbps,down_mbps,rtt_ms\n0,-1,2,3\n")
    with pytest.raises(ConfigError):
        LinkTrace.from_csv(bad)
    with pytest.raises(ConfigError):
        load_trace("no-such-trace")


# ------------------------------------------------------------------ the estimator on a step (what the lab showed)
def test_estimator_follows_a_step_in_two_samples_a_large_drop_in_one_but_not_one_burst() -> None:
    est = BandwidthEstimator()
    for _ in range(8):
        est.add_transfer("up", 170_000, 170_000 * 8 / 1.1e6)  # 3G: 1.1 Mbit/s
    est.add_transfer("up", 170_000, 170_000 * 8 / 18.88e6)  # one fast sample (a burst, or the step's first)
    assert est.up_mbps is not None and est.up_mbps < 2.0
    est.add_transfer("up", 170_000, 170_000 * 8 / 18.88e6)  # the second: the link changed
    assert est.up_mbps == pytest.approx(18.88)
    est.add_transfer("up", 170_000, 170_000 * 8 / 5.85e6)  # and down again: a drop of over 3x is a step at once
    assert est.up_mbps == pytest.approx(5.85)
    est.add_transfer("up", 170_000, 170_000 * 8 / 2.5e6)  # a drop under 3x is one sample among the others
    assert est.up_mbps is not None and 3.0 < est.up_mbps < 5.0
    est.add_transfer("up", 170_000, 170_000 * 8 / 2.5e6)  # until a second one agrees
    assert est.up_mbps == pytest.approx(2.5)
    for ms in (80, 82, 79, 81, 80, 10):
        est.add_rtt(ms / 1e3)
    assert est.rtt_ms == pytest.approx(80)  # one short round trip is not a step
    est.add_rtt(0.011)
    assert est.rtt_ms == pytest.approx(10.5)
    off = BandwidthEstimator(shift_factor=None)
    for mbps in [1.1] * 8 + [18.88] * 2:
        off.add_transfer("up", 170_000, 170_000 * 8 / (mbps * 1e6))
    assert off.up_mbps is not None and off.up_mbps < 3.0
    slow = BandwidthEstimator(shift_factor=None, drop_factor=None)  # both off: a drop is averaged in
    for mbps in [18.88] * 8 + [1.1]:
        slow.add_transfer("up", 170_000, 170_000 * 8 / (mbps * 1e6))
    assert slow.up_mbps is not None and slow.up_mbps > 3.0
    with pytest.raises(ConfigError):
        BandwidthEstimator(shift_factor=1.0)
    with pytest.raises(ConfigError):
        BandwidthEstimator(drop_factor=0.5)


# ------------------------------------------------------------------ the lab
@needs_lab
def test_lab_builds_shapes_and_leaves_nothing() -> None:
    from jointdnn_edge.netlab import Lab

    _clean()
    with Lab(1.1, 2.0) as lab:
        q = lab.qdiscs()
        assert "tbf" in q[lab.client_ns] and "1100Kbit" in q[lab.client_ns] and "2Mbit" in q[lab.server_ns]
        lab.shape(18.88, 0)  # 0: an outage (the shaper's floor)
        q = lab.qdiscs()
        assert "18880Kbit" in q[lab.client_ns] and "8Kbit" in q[lab.server_ns]
        names = leftovers()["netns"]
        assert lab.client_ns in names and lab.server_ns in names
        proc = lab.start_server(["sleep", "60"])
    assert proc.poll() is not None  # stopped with the lab
    _clean()
    with pytest.raises(RuntimeError), Lab(5, 5):
        raise RuntimeError("failure inside the lab")
    _clean()


_ECHO_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    while True:
        c, _ = s.accept()
        while data := c.recv(65536):
            c.sendall(data)
        c.close()
""")


_SINK_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
    while True:
        c, _ = s.accept()
        total = 0
        while data := c.recv(65536):
            total += len(data)
        c.sendall(str(total).encode())
        c.close()
""")


def _upload(addr: tuple[str, int], nbytes: int) -> int:
    """Send ``nbytes`` to the sink at ``addr``; the count it received."""
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection(addr, timeout=60)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with conn:
        conn.sendall(b"x" * nbytes)
        conn.shutdown(socket.SHUT_WR)
        return int(conn.recv(64))


@needs_lab
def test_a_rate_change_under_a_full_queue_does_not_stall_the_shaper() -> None:
    """Found by the lab's stall (for 20-60 s every strategy's requests failed): ``tbf`` sends a packet only when its
    bucket holds the whole packet's tokens. With the veth's segmentation offload on, TCP queued packets of several
    MTUs under Wi-Fi's 9.4 kB bucket; after the change to 4G (4.5 kB) the one at the head could never pass, and the
    uplink stayed stalled until a change made the bucket large again (the shaper's counters: 9 kB sent in 40 s, a
    43 kB backlog). The lab's veths now send MTU-sized packets, as a radio link does. The oracle is the byte count
    the server received: a bulk upload caught by repeated falls of the rate arrives whole."""
    from jointdnn_edge.netlab import SERVER_ADDR, Lab

    _clean()
    nbytes = 3_000_000
    with Lab(54.97, 54.97) as lab:
        lab.start_server([sys.executable, "-c", _SINK_SERVER, "9010"])
        sent = lab.client_call(_upload, (SERVER_ADDR, 9010), nbytes)
        for up in (18.88, 5.85, 18.88, 5.85, 18.88, 5.85):  # each change while the upload fills the queue
            time.sleep(0.25)
            lab.shape(up, 54.97)
        assert sent.result(timeout=60) == nbytes  # 3 MB at 5.85 Mbit/s: 4 s; stalled: never
        stats = lab.shaper_stats()["up"]
        assert stats["backlog_bytes"] == 0 and stats["sent_bytes"] >= nbytes
    _clean()


@needs_lab
def test_relay_delays_by_at_least_the_round_trip_in_order_and_holds_through_an_outage() -> None:
    """Through the relay to an echo server across the veth pair: every byte comes back, in order, never sooner than
    the trace's round trip (a lower bound, which is the relay's promise; how close it keeps to the round trip is
    measured by benches/netlab/relay_precision.py), and nothing moves while the link is out."""
    import socket

    from jointdnn_edge.netlab import SERVER_ADDR, DelayRelay, Lab
    from jointdnn_edge.netlab._trace import LinkPoint

    _clean()
    point = [LinkPoint(0.0, 50.0, 50.0, rtt_ms=20.0)]
    with Lab(50, 50) as lab:
        lab.start_server([sys.executable, "-c", _ECHO_SERVER, "9009"])

        def exchange(port: int) -> list[tuple[float, bytes]]:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                out = []
                for k, size in enumerate((1, 100, 70_000, 300_000)):  # one chunk up to several of the relay's
                    msg = bytes((k + i) % 251 for i in range(size))
                    t0 = time.monotonic()
                    s.sendall(msg)
                    got = b""
                    while len(got) < size:
                        got += s.recv(1 << 20)
                    out.append((time.monotonic() - t0, got == msg))
                return out

        with DelayRelay(lab.client_ns, (SERVER_ADDR, 9009), lambda: point[0]) as relay:
            for _ in range(50):  # the echo server's start
                try:
                    lab.client_call(socket.create_connection, (SERVER_ADDR, 9009)).result().close()
                    break
                except OSError:
                    time.sleep(0.1)
            timings = lab.client_call(exchange, relay.port).result()
            assert all(same for _, same in timings)
            assert all(took >= 0.020 for took, _ in timings), timings
            point[0] = LinkPoint(0.0, 0.0, 0.0, rtt_ms=20.0)  # an outage for 0.3 s, then the link again
            link_back = threading.Timer(0.3, lambda: point.__setitem__(0, LinkPoint(0.0, 50.0, 50.0, rtt_ms=20.0)))
            link_back.start()
            held = lab.client_call(exchange, relay.port).result()
            link_back.join()
            assert all(same for _, same in held) and held[0][0] >= 0.25, held
    _clean()


@needs_lab
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_lab_is_torn_down_on_a_signal(sig: int) -> None:
    _clean()
    code = textwrap.dedent(
        """
        import sys, time
        from jointdnn_edge.netlab import Lab
        with Lab(1, 1) as lab:
            lab.start_server(["sleep", "60"])
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert leftovers()["netns"]
    proc.send_signal(sig)
    proc.wait(timeout=30)
    time.sleep(0.2)
    _clean()


@needs_lab
def test_short_trace_adapts_and_is_correct(tmp_path: Path) -> None:
    """3G, then a fast link: the adaptive session stays local, then uses the cloud; every output right, none lost."""
    from jointdnn_edge.netlab import plot_netlab, run_netlab

    csv = tmp_path / "short.csv"
    csv.write_text("time_s,up_mbps,down_mbps,rtt_ms\n0,1.1,2.0275,80\n12,200,200,2\n26,end,,\n")
    _clean()
    # the adaptive session probes by itself (every 6 s while local) and the lab waits for the probe before the next
    # strategy: a background probe used to run beside the cloud strategy's upload and measure half the link
    result = run_netlab("alexnet", LinkTrace.from_csv(csv), size="small", probe_every_s=6.0)
    _clean()
    doc = json.loads(json.dumps(result.to_dict()))  # the JSON contract
    for s in ("jointdnn", "mobile", "cloud", "static"):
        stats = doc["strategies"][s]
        assert {"p50_ms", "p95_ms", "mean_ms", "energy_mj", "fallbacks", "wrong_outputs", "lost"} <= set(stats)
        assert stats["n"] > 0 and stats["wrong_outputs"] == 0 and stats["lost"] == 0
    keys = {"t_s", "strategy", "shaped_up_mbps", "shaped_down_mbps", "est_up_mbps", "est_down_mbps",
            "predicted_ms", "measured_ms", "decision_us", "schedule"}  # fmt: skip
    assert all(keys <= set(r) for r in doc["inferences"])
    joint = [r for r in doc["inferences"] if r["strategy"] == "jointdnn"]
    slow = [r["schedule"] for r in joint if r["t_s"] < 12]
    fast = [r["schedule"] for r in joint if r["t_s"] >= 12]
    assert slow and all("C" not in s for s in slow), slow  # 3G: the activations are too big to send
    assert any("C" in s for s in fast), fast  # the fast link: the adaptive session switched to the cloud
    assert all(r["correct"] for r in doc["inferences"])
    # the shapers' counters before each change of the trace (its start, its one step) and at the end; every
    # request went through both
    assert [round(x["t_s"]) for x in doc["shapers"]] == [0, 12, 26], doc["shapers"]
    end = doc["shapers"][-1]
    assert end["up"]["sent_bytes"] > 0 and end["down"]["sent_bytes"] > 0 and end["up"]["backlog_bytes"] >= 0
    # the 3G upload estimate is the shaped rate less TCP/IP headers (1448 of 1500 bytes), within 15%
    payload = 1.1 * 1448 / 1500
    ests = [r["est_up_mbps"] for r in joint if r["t_s"] < 12 and r["est_up_mbps"] is not None]
    assert ests and all(abs(e - payload) <= 0.15 * payload for e in ests), ests
    plot_netlab(doc, tmp_path / "lab.png")
    assert (tmp_path / "lab.png").stat().st_size > 0


def test_shaper_stats_parse_tc_output() -> None:
    """A known ``tc -s qdisc show`` text (tbf, as iproute2 prints it) and one with no counters."""
    from jointdnn_edge.netlab._lab import _parse_stats

    text = (
        "qdisc tbf 8001: root refcnt 2 rate 1100Kbit burst 4500b lat 164.0ms \n"
        " Sent 123456 bytes 100 pkt (dropped 3, overlimits 45 requeues 0) \n"
        " backlog 1514b 1p requeues 0\n"
    )
    assert _parse_stats(text) == {"sent_bytes": 123456, "dropped": 3, "overlimits": 45, "backlog_bytes": 1514}
    assert _parse_stats("") == {}


# ------------------------------------------------------------------ the emulated device
def test_paced_executor_takes_the_fastest_split_and_keeps_outputs() -> None:
    """The paced device's time for a run is the cheapest split into groups (brute force), its outputs the CPU's."""
    import itertools

    import numpy as np

    from jointdnn_edge import zoo
    from jointdnn_edge.models.executor import executor_for
    from jointdnn_edge.models.graph import uniform_feeds
    from jointdnn_edge.netlab._device import PacedExecutor

    rng = np.random.default_rng(0)
    n = 6
    m = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(i, min(n, i + 3)):  # groups of up to 3 layers
            m[i, j] = float(rng.uniform(1, 10))
    graph = zoo.load("alexnet", "onnx", size="tiny")
    local = executor_for(graph, threads=1)
    paced = PacedExecutor(local, m)
    for a in range(n):
        for b in range(a, n):
            brute = min(
                sum(m[s, e - 1] for s, e in itertools.pairwise((a, *cuts, b + 1)))
                for k in range(b - a + 1)
                for cuts in itertools.combinations(range(a + 1, b + 1), k)
            )
            assert paced.target_ms(a, b) == pytest.approx(brute)
    feeds = uniform_feeds(graph, 1)
    big = np.full((graph.n, graph.n), np.inf)
    np.fill_diagonal(big, 1.0)
    t0 = time.perf_counter()
    out = PacedExecutor(local, big).run_model(graph, feeds)
    assert time.perf_counter() - t0 >= graph.n * 1e-3  # at least the device's time (a lower bound, not a timing)
    want = local.run_model(graph, feeds)
    assert all(np.array_equal(out[k], want[k]) for k in want)
    with pytest.raises(ConfigError):
        PacedExecutor(local, np.full((3, 3), np.inf))


def test_emulated_device_options_are_checked_before_the_lab_is_built() -> None:
    from jointdnn_edge.netlab import run_netlab

    with pytest.raises(ConfigError, match="emulation"):
        run_netlab("alexnet", emulation="twice")
    with pytest.raises(ConfigError, match="sleep"):
        run_netlab("alexnet", device="jetson-tx2", emulation="repeat")
    with pytest.raises(ConfigError, match="unknown device"):
        run_netlab("alexnet", device="no-such-phone", emulation="sleep")
    with pytest.raises(ConfigError, match="phone_ms"):
        run_netlab("alexnet", phone_ms=40.0)  # repeat: this CPU computed N times moves with its load
    with pytest.raises(ConfigError, match="phone_ms"):
        run_netlab("alexnet", phone_ms=40.0, device="jetson-tx2", emulation="sleep")


def test_a_phone_set_by_its_time_takes_that_time_all_mobile() -> None:
    """``phone_ms``: the planner's all-mobile latency on the scaled table is the phone time asked for (the planner's
    search is the oracle of the factor's own grouping DP); a phone faster than this CPU is refused."""
    import numpy as np

    from jointdnn_edge import Network, zoo
    from jointdnn_edge.devices import cost_table
    from jointdnn_edge.netlab._device import mobile_costs, slowdown_for
    from jointdnn_edge.planner import plan

    graph = zoo.load("alexnet", "onnx", size="tiny")
    host = cost_table(graph, mobile="tesla-k40c", max_group=3)  # stands in for a profile of this CPU
    wifi = Network.preset("wifi")
    host_ms = plan(host, wifi, force="mobile", cloud_keeps_tensors=False).latency_ms
    assert host_ms < float(np.nansum(np.diag(np.asarray(host.mobile_ms))))  # grouping is faster: the DP matters
    for phone_ms in (host_ms, 30.0 * host_ms, 1234.5):
        factor = slowdown_for(host, phone_ms)
        table, info = mobile_costs(graph, host, "host", factor, 3)
        assert plan(table, wifi, force="mobile", cloud_keeps_tensors=False).latency_ms == pytest.approx(phone_ms)
        assert info["slowdown"] == factor
    with pytest.raises(ConfigError, match="faster than this CPU"):
        slowdown_for(host, host_ms / 2)
    with pytest.raises(ConfigError, match="positive"):
        slowdown_for(host, float("nan"))


def test_mobile_costs_of_a_device_model_are_never_faster_than_this_cpu() -> None:
    """A preset's times where this CPU can pad to them, this CPU's own where the model is faster (element-wise max)."""
    import numpy as np

    from jointdnn_edge import zoo
    from jointdnn_edge.devices import DEVICES, cost_table
    from jointdnn_edge.netlab._device import mobile_costs

    graph = zoo.load("alexnet", "onnx", size="tiny")
    host = cost_table(graph, mobile="tesla-k40c", max_group=3)  # stands in for a profile of this CPU
    slowed, info = mobile_costs(graph, host, "host", 20.0, 3)
    assert np.array_equal(slowed.mobile_ms, np.asarray(host.mobile_ms) * 20.0) and info["slowdown"] == 20.0
    table, info = mobile_costs(graph, host, "jetson-tx2", 20.0, 3)
    model = np.asarray(cost_table(graph, mobile="jetson-tx2", max_group=3).mobile_ms)
    measured = np.asarray(host.mobile_ms)
    finite = np.isfinite(model)
    assert np.array_equal(np.asarray(table.mobile_ms)[finite], np.maximum(model, measured)[finite])
    assert info["groups_bound_by_this_cpu"] == int(np.sum(measured[finite] > model[finite]))
    power_w = DEVICES["jetson-tx2"].power_mw / 1e3  # energy at the device's power
    assert np.allclose(np.asarray(table.mobile_mj)[finite], np.asarray(table.mobile_ms)[finite] * power_w)
