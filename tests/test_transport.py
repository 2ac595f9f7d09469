"""The client: bandwidth estimation, link emulation, typed errors, retries and back-off.

Estimator values are checked against numbers computed by hand; everything
else talks to real uvicorn servers on 127.0.0.1.
"""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest

from fixtures_session import assert_close
from jointdnn_edge import (
    AuthError,
    CloudUnavailableError,
    DeadlineExceededError,
    Network,
    RemoteError,
    TransportError,
    codec,
)
from jointdnn_edge.client import BandwidthEstimator, CloudClient, Emulation
from jointdnn_edge.faults import InferenceFront
from jointdnn_edge.models.graph import uniform_feeds


# ------------------------------------------------------------------ estimator
def test_estimator_is_a_decayed_harmonic_mean() -> None:
    est = BandwidthEstimator(window=4, decay=0.5, min_bytes=1000)
    assert est.up_mbps is None and est.down_mbps is None and est.rtt_ms is None
    # 10, 20, 40 Mbit/s: 1 MB in 0.8 s, 0.4 s, 0.2 s
    for seconds in (0.8, 0.4, 0.2):
        assert est.add_transfer("up", 1_000_000, seconds)
    # newest first: 40 (w=1), 20 (w=0.5), 10 (w=0.25) -> 1.75 / (1/40 + 0.5/20 + 0.25/10) = 23.33...
    assert est.up_mbps == pytest.approx(1.75 / (1 / 40 + 0.5 / 20 + 0.25 / 10))
    assert est.up_mbps == pytest.approx(70 / 3)
    assert est.down_mbps is None  # directions are separate
    est.add_rtt(0.01)
    est.forget_rtt()
    assert est.counts() == {"up": 3, "down": 0, "rtt": 0}
    assert est.taken() == {"up": 3, "down": 0, "rtt": 1}  # what was recorded, held or forgotten since
    for seconds in (0.080, 0.081, 0.082, 0.040, 0.041):  # a round trip that halved (under the 2x step rule)
        est.add_rtt(seconds)
    assert est.rtt_ms == pytest.approx(61.0)  # the window of 4 (81, 82, 40, 41): neither level
    est.forget_rtt(keep=2)
    assert est.rtt_ms == pytest.approx(40.5) and est.counts()["rtt"] == 2 and est.age_s("rtt") is not None
    est.forget_rtt(keep=5)  # more than held: all of them
    assert est.counts()["rtt"] == 2


def test_estimator_window_small_transfers_and_outliers() -> None:
    est = BandwidthEstimator(window=3, decay=1.0, min_bytes=10_000)
    assert not est.add_transfer("down", 9_999, 0.001)  # latency-dominated: not a sample
    assert not est.add_transfer("down", 50_000, 0.0)  # no time measured: not a sample
    for _ in range(3):
        est.add_transfer("down", 125_000, 0.1)  # 10 Mbit/s
    assert est.down_mbps == pytest.approx(10.0)
    # one burst that looked 100x faster moves a harmonic mean little (an arithmetic mean would say 40)
    est.add_transfer("down", 125_000, 0.001)  # 1000 Mbit/s; window keeps the last three
    assert est.down_mbps == pytest.approx(3 / (1 / 10 + 1 / 10 + 1 / 1000))
    assert est.down_mbps < 15.1
    # the window forgets: three fresh 2 Mbit/s samples are all that count
    for _ in range(3):
        est.add_transfer("down", 125_000, 0.5)
    assert est.down_mbps == pytest.approx(2.0)


def test_estimator_rtt_median_and_network() -> None:
    est = BandwidthEstimator(window=5)
    for ms in (10, 12, 500, 11, 9):  # one stall does not move a median
        est.add_rtt(ms / 1e3)
    assert est.rtt_ms == pytest.approx(11.0)
    assert not est.add_rtt(float("nan"))
    radio = Network.preset("4g")
    net = est.network(radio)
    # no bandwidth samples: the radio's bandwidths; rtt per switch is half a round trip
    assert (net.up_mbps, net.down_mbps, net.rtt_ms) == (radio.up_mbps, radio.down_mbps, 5.5)
    assert (net.alpha_up, net.beta) == (radio.alpha_up, radio.beta)
    est.add_transfer("up", 1_000_000, 1.0)
    assert est.network(radio).up_mbps == pytest.approx(8.0)
    est.reset()
    assert est.counts() == {"up": 0, "down": 0, "rtt": 0}


def test_estimator_ages_count_from_the_newest_sample_of_each_kind() -> None:
    """Each age is read against time.monotonic() taken around its sample; samples of one kind leave the others'
    alone, a transfer too small to be a sample sets nothing, and a forgotten or reset kind has no age."""
    import time

    est = BandwidthEstimator(min_bytes=1000)
    assert [est.age_s(k) for k in ("up", "down", "rtt")] == [None, None, None]
    before = time.monotonic()
    est.add_rtt(0.01)
    after = time.monotonic()
    time.sleep(0.02)
    est.add_transfer("up", 1_000_000, 1.0)
    est.add_transfer("down", 10, 1.0)  # under min_bytes: no sample
    t1 = time.monotonic()
    age = est.age_s("rtt")
    t2 = time.monotonic()
    assert age is not None and t1 - after <= age <= t2 - before
    up = est.age_s("up")
    assert up is not None and up < t2 - after and est.age_s("down") is None
    est.forget_rtt()
    assert est.age_s("rtt") is None and est.age_s("up") is not None
    est.add_rtt(0.01)
    est.reset()
    assert [est.age_s(k) for k in ("up", "down", "rtt")] == [None, None, None]


def test_the_estimated_burst_is_the_fitted_lines_bytes_and_the_radios_until_a_line_is_fitted() -> None:
    """Oracle: the shaper's law ``(bytes - burst) / rate`` that timed the samples. The burst is the fitted line's, in
    bytes; a step voids it, and the radio's (a prior the app may know) stands until the next line."""
    import dataclasses

    radio = dataclasses.replace(Network.preset("wifi"), burst_up_bytes=5000.0)
    est = BandwidthEstimator()
    assert est.network(radio).burst_up_bytes == 5000.0  # no samples
    rate, burst = 18.88, 9440.0
    for nbytes in (13_314, 40_845) * 2:
        est.add_transfer("up", nbytes, (nbytes - burst) * 8 / (rate * 1e6))
    assert est.network(radio).burst_up_bytes == pytest.approx(burst)
    for _ in range(2):  # a step to a 4x slower link: the old burst is void
        est.add_transfer("up", 40_845, 40_845 * 8 / (rate / 4 * 1e6))
    assert est.network(radio).up_mbps < rate / 2 and est.network(radio).burst_up_bytes == 5000.0


def test_uploads_the_burst_carried_most_of_are_no_rate_samples() -> None:
    """After a line showed the burst, split uploads just over it (10.5 kB against 9.44) are timed mostly by noise:
    stretched by the offset more than MAX_FIT_RATIO times, they leave the rate and the step rules alone. Capped
    instead, they read 2.5 times the rate, and eight of them a step to 10 times it (found in review). Oracle: the
    shaper's law that timed every sample."""
    rate, burst = 18.88, 9440.0
    est = BandwidthEstimator()
    for nbytes in (206_384, 57_600) * 2:  # a probe's two sizes
        est.add_transfer("up", nbytes, (nbytes - burst) * 8 / (rate * 1e6))
    assert est.up_mbps == pytest.approx(rate) and est.network(Network.preset("wifi")).burst_up_bytes == pytest.approx(
        burst
    )
    for _ in range(8):
        est.add_transfer("up", 10_500, (10_500 - burst) * 8 / (rate * 1e6))
    net = est.network(Network.preset("wifi"))
    assert net.up_mbps == pytest.approx(rate) and net.burst_up_bytes == pytest.approx(burst)
    for _ in range(8):  # 13 kB is timed well enough (the offset stretches it 3.4x): a rate sample
        est.add_transfer("up", 13_314, (13_314 - burst) * 8 / (rate * 1e6))
    assert est.up_mbps == pytest.approx(rate) and est.counts()["up"] == est.window


def test_estimator_fits_rate_and_offset_when_sizes_differ() -> None:
    """Transfers timed by a shaper's law, ``(bytes - burst) / rate``: the samples of two sizes give back the rate
    and the burst as a negative offset (which ``network`` gives back as the link's burst); one size alone shows no
    offset, and after two sizes, samples of one size keep the offset. The oracle for noisy, many-sized samples is
    numpy's weighted polyfit (weights: the square roots of the decay's) and the harmonic mean of the corrected
    rates."""
    import numpy as np

    from jointdnn_edge.client._estimator import MAX_FIT_RESIDUAL, MIN_SIDE_SAMPLES, MIN_SIZE_SPREAD

    rate, burst = 18.88, 9440.0
    est = BandwidthEstimator()
    for nbytes in (13_314, 40_845, 13_314, 40_845):
        est.add_transfer("up", nbytes, (nbytes - burst) * 8 / (rate * 1e6))
    assert est.up_mbps == pytest.approx(rate)
    assert est.offsets_ms()["up"] == pytest.approx(-burst * 8 / (rate * 1e6) * 1e3)
    est.add_rtt(0.012)
    net = est.network(Network.preset("wifi"))
    assert net.up_mbps == pytest.approx(rate) and net.rtt_ms == pytest.approx(6.0)
    # the offset stands for the shaper's burst, which the link carries in bytes; the download has no samples
    assert net.burst_up_bytes == pytest.approx(burst) and net.burst_down_bytes == 0.0
    # what the harmonic mean of the two sizes' rates prices a 41 kB upload at, against the law
    one_size = BandwidthEstimator()
    for _ in range(4):
        one_size.add_transfer("up", 40_845, (40_845 - burst) * 8 / (rate * 1e6))
    assert one_size.offsets_ms() == {"up": 0.0, "down": 0.0}
    assert one_size.up_mbps == pytest.approx(40_845 * 8 / ((40_845 - burst) * 8 / rate))
    for _ in range(10):  # the two sizes' samples leave the window: the offset stays, so the rate does
        est.add_transfer("up", 13_314, (13_314 - burst) * 8 / (rate * 1e6))
    assert est.counts()["up"] == est.window and est.up_mbps == pytest.approx(rate)
    # a probe after small requests is no step: its rate with the offset taken out is the small ones'
    est.add_transfer("up", 206_384, (206_384 - burst) * 8 / (rate * 1e6))
    est.add_transfer("up", 206_384, (206_384 - burst) * 8 / (rate * 1e6))
    assert est.counts()["up"] == est.window and est.up_mbps == pytest.approx(rate)

    # one request slowed by something else (13 kB in 20 ms), then probes: no line, so no offset from it
    odd = BandwidthEstimator()
    odd.add_transfer("up", 13_314, 0.020)
    for _ in range(3):
        odd.add_transfer("up", 206_384, (206_384 - burst) * 8 / (rate * 1e6))
    assert odd.offsets_ms()["up"] == 0.0
    # one large upload caught by the end of an outage (0.49 s where its size takes 0.27), then smaller ones: the line
    # through it does not describe the link, and taken (-62 ms) it read the 18.9 Mbit/s link at 10.8 for good (the
    # network lab's outage trace, where it kept the session off all-cloud after the outage)
    caught = BandwidthEstimator()
    for _ in range(6):
        caught.add_transfer("up", 618_348, 618_348 * 8 / (rate * 1e6) + 0.002)
    caught.add_transfer("up", 618_348, 0.49)
    for _ in range(10):
        caught.add_transfer("up", 197_071, 197_071 * 8 / (rate * 1e6) + 0.0005)
    assert caught.offsets_ms()["up"] == 0.0
    assert caught.up_mbps == pytest.approx(197_071 * 8 / (197_071 * 8 / rate + 500), rel=1e-9)  # the small ones'
    # a link that fell within the window: large uploads timed at 18.9 Mbit/s, then small ones at 2: the line's
    # intercept is positive, and taken, it would read the small ones fast; it is not taken
    fell = BandwidthEstimator(shift_factor=None, drop_factor=None)
    for nbytes, mbps in ((618_000, 18.88), (618_000, 18.88), (173_000, 2.0), (173_000, 2.0)):
        fell.add_transfer("up", nbytes, nbytes * 8 / (mbps * 1e6))
    assert fell.offsets_ms()["up"] == 0.0 and fell.up_mbps is not None and fell.up_mbps < 5.0

    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(50):
        est = BandwidthEstimator(window=6, decay=0.8, shift_factor=None, drop_factor=None)
        x = rng.uniform(10_000, 200_000, 6)
        y = rng.choice([-0.003, 0.003]) + x * 8 / (rng.uniform(2, 50) * 1e6) * rng.uniform(0.9, 1.1, 6)
        for xi, yi in zip(x, y, strict=True):
            est.add_transfer("down", xi, yi)
        w = 0.8 ** np.arange(5, -1, -1)
        spread = np.sqrt(np.average((x - np.average(x, weights=w)) ** 2, weights=w)) / np.average(x, weights=w)
        slope, intercept = np.polyfit(x, y, 1, w=np.sqrt(w))
        described = np.all(np.abs(y - intercept - slope * x) <= MAX_FIT_RESIDUAL * y)
        offset = min(0.0, intercept)  # only a burst's credit is learnt
        t = y - offset
        below = int((x < np.average(x, weights=w)).sum())
        sided = min(below, len(x) - below) >= MIN_SIDE_SAMPLES
        if spread < MIN_SIZE_SPREAD or not sided or slope <= 0 or not described:
            continue
        if not np.all((t >= y / 4) & (t <= y * 4)):
            continue
        assert est.offsets_ms()["down"] == pytest.approx(offset * 1e3, rel=1e-6, abs=1e-9)
        assert est.down_mbps == pytest.approx(w.sum() / (w / (x * 8 / t / 1e6)).sum(), rel=1e-9)
        checked += 1
    assert checked >= 25


def test_estimator_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        BandwidthEstimator(window=0)
    with pytest.raises(ValueError):
        BandwidthEstimator(decay=0.0)
    with pytest.raises(ValueError):
        BandwidthEstimator().add_transfer("sideways", 1e6, 1.0)
    with pytest.raises(ValueError):
        Emulation(up_mbps=-1.0)


def test_emulation_is_a_transport_wrapping_any_other() -> None:
    """The emulated link composes with whatever transport does the I/O: round trip added, both bodies paced."""
    import time

    import httpx

    from jointdnn_edge.client import EmulatedTransport

    received: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request.read())
        return httpx.Response(200, content=b"d" * 50_000, extensions={"marker": "inner"})

    emulation = Emulation(up_mbps=8.0, down_mbps=8.0, rtt_ms=20.0)  # 1 MB/s each way
    with httpx.Client(transport=EmulatedTransport(httpx.MockTransport(handler), emulation)) as client:
        t0 = time.perf_counter()
        response = client.post("http://emulated.test/", content=b"u" * 30_000)
        elapsed = time.perf_counter() - t0
    assert received == [b"u" * 30_000] and response.content == b"d" * 50_000
    assert response.extensions["marker"] == "inner"  # the inner response's extensions (its connection) pass through
    assert elapsed >= 0.020 + 0.030 + 0.050  # round trip + 30 KB up + 50 KB down at 1 MB/s


# ------------------------------------------------------------------ client on the shared server
def _slice_frame(cloud: Any, name: str = "alexnet") -> tuple[Any, dict[str, np.ndarray], bytes]:
    g = cloud.models[name]
    feeds = uniform_feeds(g, 2)
    return g, feeds, codec.encode(feeds)


def test_split_request_and_connection_reuse(cloud: Any) -> None:
    from jointdnn_edge.models.executor import executor_for
    from jointdnn_edge.protocol import model_digest

    g, feeds, frame = _slice_frame(cloud)
    want = executor_for(g, threads=1).run(g, 0, 9, feeds)
    with cloud.client() as client:
        for _ in range(4):
            resp = client.infer_slice("alexnet", 0, 9, frame, codec="sparse", digest=model_digest(g))
            assert_close(codec.decode(resp.frame), want)
            assert resp.bytes_up > len(frame) and resp.bytes_down > len(resp.frame)
            assert resp.server_ms >= resp.compute_ms >= 0 and resp.wall_ms >= resp.server_ms
            assert resp.attempts == 1
        # keep-alive: four requests, one connection
        assert len(client._streams) == 1
        # whole-model convenience request (standard protocol)
        out = client.infer("alexnet", feeds)
        assert np.array_equal(out["prob"], executor_for(g, threads=1).run_model(g, feeds)["prob"])
        assert client.model_metadata("alexnet")["parameters"]["jointdnn_digest"] == model_digest(g)
        assert client.ping() >= 0 and client.estimator.rtt_ms is not None


def test_typed_errors(cloud: Any) -> None:
    frame = _slice_frame(cloud)[2]
    with cloud.client(token="wrong") as client:
        with pytest.raises(AuthError) as e:
            client.infer_slice("alexnet", 0, 1, frame)
        assert e.value.status == 403 and "invalid bearer token" in str(e.value)
    with cloud.client(token=None) as client:
        with pytest.raises(AuthError) as e:
            client.model_metadata("alexnet")
        assert e.value.status == 401
    with cloud.client() as client:
        with pytest.raises(RemoteError) as e:
            client.infer_slice("nope", 0, 1, frame)
        assert e.value.status == 404 and "unknown model 'nope'" in str(e.value)
        with pytest.raises(RemoteError) as e:
            client.infer_slice("alexnet", 0, 99, frame)
        assert e.value.status == 422 and "outside 0..20" in str(e.value)
        with pytest.raises(RemoteError) as e:
            client.infer_slice("alexnet", 0, 1, frame, digest="sha256:other")
        assert e.value.status == 409
        with pytest.raises(RemoteError, match="larger than"):
            client.infer_slice("alexnet", 0, 1, frame, max_response_bytes=100)
    assert issubclass(AuthError, TransportError) and issubclass(DeadlineExceededError, TransportError)


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CloudClient(f"http://127.0.0.1:{port}", retries=2)
    sent: list[str] = []
    client.http.event_hooks["request"] = [lambda request: sent.append(request.url.path)]
    with pytest.raises(CloudUnavailableError, match="cannot reach"):
        client.infer_slice("m", 0, 0, b"")
    assert sent == ["/v2/models/m/infer"] * 3  # nothing reached a server: tried once and retried twice
    client.close()


def test_backoff_doubles_and_is_capped_and_resets() -> None:
    client = CloudClient("http://127.0.0.1:9", backoff=(1.0, 5.0), jitter=False)
    assert client.available
    assert [client.mark_down("x") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert not client.available and 0 < client.down_for <= 5.0 and client.last_error == "x"
    client.mark_up()
    assert client.available and client.mark_down("y") == 1.0
    client.close()


def test_deadline_is_enforced_on_a_slow_server(session_models: Any) -> None:
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    app = create_app({"alexnet": g}, slowdown=5000.0, threads=1)  # every request computes for a long while
    frame = codec.encode(uniform_feeds(g, 0))
    with BackgroundServer(app) as server, CloudClient(server.url, retries=2) as client:
        client.ping()  # connection open: the deadline below covers only the request
        sent: list[str] = []
        client.http.event_hooks["request"] = [lambda request: sent.append(request.url.path)]
        with pytest.raises(DeadlineExceededError, match="no answer within 50 ms"):
            client.infer_slice("alexnet", 0, 20, frame, deadline_s=0.05)
        assert sent == ["/v2/models/alexnet/infer"]  # the server may be computing it: never retried


def test_emulated_link_paces_transfers_and_the_estimator_measures_it(cloud: Any) -> None:
    feeds = _slice_frame(cloud, "pix2pix")[1]
    frame = codec.encode(feeds, codec="raw")  # 786 KB
    up = 40.0  # Mbit/s
    with cloud.client(emulate=Emulation(up_mbps=up, down_mbps=None)) as client:
        client.ping()
        resp = client.infer_slice("pix2pix", 0, 0, frame, codec="raw")
        # pacing guarantees the upload takes at least bytes * 8 / rate
        assert resp.wall_ms >= resp.bytes_up * 8 / (up * 1e3)
        assert resp.up_ms + resp.server_ms + resp.down_ms <= resp.wall_ms + 1e-6
        est = client.estimator.up_mbps
        assert est is not None and est <= up * 1.05  # cannot look faster than the emulated link
    assert Emulation.of(Network.preset("3g")) == Emulation(1.1, 2.0275, 0.0)


def test_503_is_retried_only_within_the_retry_budget(session_models: Any) -> None:
    import threading
    import time

    from jointdnn_edge.server import BackgroundServer, Limits, create_app

    g = session_models["alexnet"]
    app = create_app({"alexnet": g}, limits=Limits(max_concurrency=1, max_queue=0), slowdown=2000.0, threads=1)
    frame = codec.encode(uniform_feeds(g, 0))
    with BackgroundServer(app) as server, CloudClient(server.url, retries=0) as client:
        t = threading.Thread(target=lambda: client.infer_slice("alexnet", 0, 20, frame))
        t.start()
        while app.state.jointdnn.pending == 0 and t.is_alive():
            time.sleep(0.005)
        with pytest.raises(RemoteError) as e:
            client.infer_slice("alexnet", 0, 20, frame)
        assert e.value.status == 503
        t.join()


class _Front(InferenceFront):
    """A misbehaving front (a proxy, a load balancer) before a real server app.

    Its first ``times`` inference requests are answered ``503`` (busy,
    ``Retry-After: 0``) or ``500`` without reaching the app, or (``"drop"``)
    reach the app, which computes, and lose the connection while the answer
    is being sent. ``seen`` counts the inference requests that arrived,
    ``computed`` those the app answered.
    """

    def __init__(self, app: Any, mode: str, times: int) -> None:
        super().__init__(app)
        self.mode, self.times = mode, times
        self.seen = self.computed = 0

    async def infer(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen += 1
        if self.seen <= self.times and self.mode in ("503", "500"):
            while (await receive()).get("more_body"):
                pass
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
            await send({"type": "http.response.start", "status": int(self.mode), "headers": headers})
            await send({"type": "http.response.body", "body": b'{"error": "front says no"}'})
            return
        self.computed += 1
        if self.seen <= self.times and self.mode == "drop":

            async def drop_body(message: Any) -> None:
                if message["type"] == "http.response.body":
                    raise ConnectionAbortedError("connection lost after computing")  # uvicorn closes it
                await send(message)

            await self.app(scope, receive, drop_body)
            return
        await self.app(scope, receive, send)


@pytest.mark.parametrize(
    "mode, times, retries, expect, seen, computed",
    [
        ("503", 2, 2, "ok", 3, 1),  # refused before computing: retried, computed once
        ("503", 3, 2, 503, 3, 0),  # more refusals than the retry budget: the 503 is reported
        ("500", 1, 2, 500, 1, 0),  # an error, perhaps after computing: never retried
        ("drop", 1, 2, "lost", 1, 1),  # connection lost after the server computed: never retried
    ],
)
def test_retries_only_where_nothing_was_computed(
    session_models: Any, mode: str, times: int, retries: int, expect: Any, seen: int, computed: int
) -> None:
    from jointdnn_edge.models.executor import executor_for
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 3)
    front = _Front(create_app({"alexnet": g}, threads=1), mode, times)
    with BackgroundServer(front) as server, CloudClient(server.url, retries=retries) as client:
        if expect == "ok":
            resp = client.infer_slice("alexnet", 0, 20, codec.encode(feeds))
            assert_close(codec.decode(resp.frame), executor_for(g, threads=1).run(g, 0, 20, feeds))
            assert resp.attempts == times + 1
        elif expect == "lost":
            with pytest.raises(CloudUnavailableError):
                client.infer_slice("alexnet", 0, 20, codec.encode(feeds))
        else:
            with pytest.raises(RemoteError) as e:
                client.infer_slice("alexnet", 0, 20, codec.encode(feeds))
            assert e.value.status == expect and "front says no" in str(e.value)
    assert (front.seen, front.computed) == (seen, computed)


def test_tls_through_uvicorn_options(session_models: Any, tmp_path: Any) -> None:
    """The server speaks HTTPS with uvicorn's ssl options; the client verifies it against a given CA."""
    import shutil
    import ssl
    import subprocess

    from jointdnn_edge.server import BackgroundServer, create_app

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    g = session_models["alexnet"]
    app = create_app({"alexnet": g}, token="tls-token", threads=1)
    frame = codec.encode(uniform_feeds(g, 0))
    with BackgroundServer(app, ssl_keyfile=str(key), ssl_certfile=str(cert)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        with CloudClient(server.url, token="tls-token", verify=trusted) as client:
            resp = client.infer_slice("alexnet", 0, 3, frame)
            assert list(codec.decode(resp.frame)) == g.slice_io(0, 3)[1]
        with CloudClient(server.url, token="tls-token", retries=0) as client:  # the system CAs do not know it
            with pytest.raises(CloudUnavailableError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
                client.infer_slice("alexnet", 0, 3, frame)


class _ClosingFront:
    """Answers every request with ``connection: close``: each request opens a new connection (a client whose
    requests come further apart than the keep-alive expiry, as on a slow link with a big model)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def close_after(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, close_after if scope["type"] == "http" else send)


def test_requests_on_new_connections_still_measure_the_link(session_models: Any) -> None:
    """Every request on a new connection: the measured handshake is taken out, and the transfers are samples.

    Before, a request on a new connection gave no sample, so a session whose inferences came further apart than
    the keep-alive expiry kept planning with the bandwidth of an earlier phase (the network lab on 3G)."""
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["pix2pix"]
    frame = codec.encode(uniform_feeds(g, 0), codec="raw")  # 786 KB
    up, down = 40.0, 80.0  # Mbit/s
    front = _ClosingFront(create_app({"pix2pix": g}, threads=1))
    with BackgroundServer(front) as server, CloudClient(server.url, emulate=Emulation(up, down, 0.0)) as client:
        client.ping()
        for _ in range(3):
            resp = client.infer_slice("pix2pix", 0, 0, frame, codec="raw")
            assert resp.bytes_up > len(frame)
        est = client.estimator
        assert est.up_mbps is not None and est.down_mbps is not None
        assert up * 0.6 <= est.up_mbps <= up * 1.05  # paced: cannot look faster, and not much slower
        assert down * 0.3 <= est.down_mbps <= down * 1.05


def test_a_missed_deadline_teaches_the_estimator_the_link_got_slower(cloud: Any) -> None:
    """The estimator believes 50 Mbit/s up; the link carries 2. The upload misses its deadline: the request's
    body over the time it had is a sample (at most 786 KB in 0.5 s: 12.6 Mbit/s), so the next plan sees a slower
    link instead of the same stale one (the network lab: three misses in a row after Wi-Fi -> 4G)."""
    from jointdnn_edge import DeadlineExceededError

    feeds = _slice_frame(cloud, "pix2pix")[1]
    frame = codec.encode(feeds, codec="raw")  # 786 KB: 3 s at 2 Mbit/s
    with cloud.client(emulate=Emulation(up_mbps=2.0, down_mbps=None)) as client:
        for _ in range(8):
            client.estimator.add_transfer("up", 1_000_000, 0.16)  # 50 Mbit/s, measured before the step
        taken = client.estimator.taken()["up"]
        with pytest.raises(DeadlineExceededError):
            client.infer_slice("pix2pix", 0, 0, frame, codec="raw", deadline_s=0.5)
        assert client.estimator.taken()["up"] == taken + 1
        est = client.estimator.up_mbps
        # the harmonic mean with one sample of at most 8 * 786e3 / 0.5 s among seven of 50 Mbit/s
        w = [0.7**k for k in range(8)]
        bound = sum(w) / (1 / (8 * len(frame) / 0.5 / 1e6) + sum(w[1:]) / 50)
        assert est is not None and est <= bound * 1.05 and est < 30
