"""The client under faults (issue 12, items 1, 2 and 5): a total deadline per cloud step, a circuit breaker.

Real servers on 127.0.0.1 only: a raw TCP proxy before a real ``BackgroundServer`` that trickles the
response one byte per 100 ms, a socket that accepts and never answers, a port nobody listens on, and a
server restarted on the same port. Wall-clock assertions keep margins machine noise cannot cross (the
unfixed client took 15 s and more where these allow 2 s).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fixtures_session import assert_close
from jointdnn_edge import (
    CloudUnavailableError,
    CodecError,
    CostTable,
    DeadlineExceededError,
    ExecutionError,
    RemoteError,
    codec,
)
from jointdnn_edge import protocol as P
from jointdnn_edge.client import CircuitBreaker, CloudClient, SliceCall
from jointdnn_edge.faults import InferenceFront, TricklingProxy, free_port
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.session import JointSession

M, C = "mobile", "cloud"


@pytest.fixture
def alexnet_server(session_models: Any) -> Iterator[Any]:
    """A real server of the tiny alexnet on 127.0.0.1 (no token), stopped at the end."""
    from jointdnn_edge.server import BackgroundServer, create_app

    with BackgroundServer(create_app({"alexnet": session_models["alexnet"]}, threads=1)) as server:
        yield server


def _costs(g: Any) -> CostTable:
    """A synthetic cost table that offers every group: the session derives each cloud step's deadline from it."""
    return CostTable.from_layers([1.0] * g.n, [0.1] * g.n, **g.cost_skeleton())


# ------------------------------------------------------------------ item 1: the deadline is total
@pytest.mark.parametrize("mode", ["all", "body"])
def test_a_trickling_response_cannot_stretch_the_deadline(session_models: Any, alexnet_server: Any, mode: str) -> None:
    """1 byte per 100 ms, in the headers or only in the body: the request ends at its deadline, not 15-40 s later."""
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 0)
    frame = codec.encode(feeds)
    with TricklingProxy(("127.0.0.1", alexnet_server.port), mode) as proxy, CloudClient(proxy.url, timeout=5) as client:
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.infer_slice("alexnet", 0, 20, frame, deadline_s=0.3)
        took = time.monotonic() - t0
        assert took < 2.0, took  # the unfixed client took about 40 s here
        assert client.circuit.state == "open"  # a timeout is a cloud failure
        # the half-read connection went nowhere near the pool: with the link healthy again, the next request works
        proxy.mode = "pass"
        client.mark_up()
        resp = client.infer_slice("alexnet", 0, 20, frame, deadline_s=10.0)
        out = codec.decode(resp.frame)
    assert_close(out, executor_for(g, threads=1).run_model(g, feeds))


def test_the_connect_phase_is_bounded_too() -> None:
    """A server that accepts and never answers: the request ends at its deadline."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        with CloudClient(f"http://127.0.0.1:{hole.getsockname()[1]}", timeout=5) as client:
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                client.infer_slice("m", 0, 0, b"x" * 1000, deadline_s=0.3)
            assert time.monotonic() - t0 < 2.0


def test_a_slow_reader_cannot_stretch_the_upload() -> None:
    """A server draining the request 64 KiB at a time and never answering: a 64 MiB upload ends at its deadline.

    httpcore re-arms the socket timeout after every partial send; the unfixed client took 7.4 s here.
    """
    stop = threading.Event()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)

        def drain_slowly() -> None:
            conn, _ = listener.accept()
            with conn:
                while not stop.is_set() and conn.recv(1 << 16):
                    time.sleep(0.005)

        reader = threading.Thread(target=drain_slowly, daemon=True)
        reader.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with CloudClient(url, timeout=30, retries=0) as client:
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                client.infer_slice("m", 0, 0, b"\0" * (64 << 20), deadline_s=0.5)
            took = time.monotonic() - t0
        stop.set()
        reader.join(5)
    assert took < 3.0, took


def test_the_session_falls_back_at_the_step_deadline(session_models: Any, alexnet_server: Any) -> None:
    """``session.run`` under a trickling link: correct outputs, the cloud step given up at its deadline."""
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 3)
    want = executor_for(g, threads=1).run_model(g, feeds)
    schedule = [(0, 9, M), (10, 20, C)]
    with TricklingProxy(("127.0.0.1", alexnet_server.port)) as proxy, CloudClient(proxy.url, timeout=30) as client:
        with JointSession(
            g, client, _costs(g), network="wifi", schedule=schedule, executor=executor_for(g, threads=1)
        ) as session:
            t0 = time.monotonic()
            out = session.run(feeds)
            took_ms = (time.monotonic() - t0) * 1e3
            trace = session.last_trace
    assert_close(out, want)
    assert trace is not None and trace.fallback is not None and trace.fallback.startswith("DeadlineExceededError")
    failed = trace.steps[1]
    assert failed.platform == C and failed.error is not None and failed.deadline_ms is not None
    print(f"\ncloud step deadline {failed.deadline_ms:.0f} ms, given up after {failed.ms:.0f} ms; run {took_ms:.0f} ms")
    assert failed.ms < failed.deadline_ms + 1000  # the goal is +100 ms; the unfixed client held it 15 s
    assert took_ms < failed.deadline_ms + 2000


def test_the_first_link_check_does_not_hold_planning_for_the_client_timeout(session_models: Any) -> None:
    """``network="auto"``, a cloud that accepts and never answers, a 2 s client timeout: each run is local and quick.

    The first session pinged with the client's timeout: every run() stalled for it in planning, with no fallback
    said. Now the check runs in the background: the first run waits for it as long as a cloud step would, later runs
    not at all, and the check fails at the client's timeout, which the breaker counts once.
    """
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 6)
    want = executor_for(g, threads=1).run_model(g, feeds)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        with CloudClient(url, timeout=2, retries=0, backoff=(30.0, 30.0), jitter=False) as client:
            session = JointSession(g, client, schedule=[(0, g.n - 1, C)], executor=executor_for(g, threads=1))
            took = []
            for _ in range(3):
                t0 = time.monotonic()
                out = session.run(feeds)
                took.append(time.monotonic() - t0)
                trace = session.last_trace
                assert_close(out, want)
                assert trace is not None and trace.source.startswith("mobile-only: link check pending")
                assert trace.fallback is not None and trace.fallback.startswith("link check pending")
                assert [s.platform for s in trace.steps] == [M]
            assert max(took) < 1.5, took  # never the client's 2 s
            assert client.circuit.failures == 0  # still pending
            assert session.wait_for_probe(5.0)
            assert client.circuit.failures == 1  # the check, at the client's timeout
            out = session.run(feeds)
            trace = session.last_trace
            assert_close(out, want)
            assert trace is not None and trace.source.startswith("mobile-only: cloud down")
            assert client.circuit.failures == 1


def test_a_link_check_that_fails_at_once_says_why(session_models: Any) -> None:
    """A refused connection fails the first link check within its wait: that run is local and says why."""
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 6)
    want = executor_for(g, threads=1).run_model(g, feeds)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with CloudClient(url, timeout=2, retries=0, backoff=(30.0, 30.0), jitter=False) as client:
            session = JointSession(g, client, schedule=[(0, g.n - 1, C)], executor=executor_for(g, threads=1))
            out = session.run(feeds)
            trace = session.last_trace
            assert_close(out, want)
            assert trace is not None and trace.source.startswith("mobile-only: link check failed")
            assert trace.fallback is not None and trace.fallback.startswith("link check failed (")
            assert [s.platform for s in trace.steps] == [M]
            assert client.circuit.failures == 1


def test_closing_a_client_ends_a_request_in_flight_on_a_silent_cloud() -> None:
    """A ping blocked on a cloud that accepted and never answers (30 s timeout) ends when another thread closes the
    client, as closed, not counted as a cloud failure. Before, httpx's close left the read to run to its timeout."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        client = CloudClient(f"http://127.0.0.1:{hole.getsockname()[1]}", timeout=30, retries=2)
        errors: list[BaseException] = []

        def ping() -> None:
            try:
                client.ping()
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=ping)
        thread.start()
        time.sleep(0.3)  # connected, the request sent, the read blocked
        assert thread.is_alive()
        client.close()
        thread.join(10.0)
        assert not thread.is_alive()  # a third of the timeout at most (it takes about a millisecond)
        assert len(errors) == 1 and isinstance(errors[0], CloudUnavailableError), errors
        assert "closed" in str(errors[0])
        assert client.circuit.failures == 0


def test_closing_a_session_does_not_wait_for_its_link_check(session_models: Any) -> None:
    """A session that owns its client, on a silent cloud: its first run leaves the link check pending in the
    background, and close() ends it with the client instead of waiting the client's 30 s out."""
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 6)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        client = CloudClient(f"http://127.0.0.1:{hole.getsockname()[1]}", timeout=30)
        session = JointSession(g, client, executor=executor_for(g, threads=1), close_cloud=True)
        session.run(feeds)
        trace = session.last_trace
        assert trace is not None and trace.source.startswith("mobile-only: link check pending")
        closer = threading.Thread(target=session.close)
        closer.start()
        closer.join(10.0)
        assert not closer.is_alive()
        assert client.closed and client.circuit.failures == 0


# ------------------------------------------------------------------ item 2: the circuit breaker
def _run_all(sessions: list[JointSession], feeds: dict[str, np.ndarray]) -> list[Any]:
    """Each session runs once, all at the same moment (one thread each); their traces."""
    barrier = threading.Barrier(len(sessions))
    traces: list[Any] = [None] * len(sessions)

    def one(i: int) -> None:
        barrier.wait()
        sessions[i].run(feeds)
        traces[i] = sessions[i].last_trace

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return traces


def test_an_outage_seen_by_8_sessions_counts_once_and_the_cloud_comes_back(session_models: Any) -> None:
    """Eight sessions sharing a client: the outage opens the circuit once; the cloud is used again soon after."""
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 4)
    want = executor_for(g, threads=1).run_model(g, feeds)
    app = create_app({"alexnet": g}, threads=1)
    port = free_port()
    client = CloudClient(f"http://127.0.0.1:{port}", timeout=1.5)
    sessions = [JointSession(g, client, schedule=[(0, 20, C)], executor=executor_for(g, threads=1)) for _ in range(8)]
    server: Any = None
    hole: socket.socket | None = None
    stop = threading.Event()
    try:
        server = BackgroundServer(app, port=port).start()
        assert all(t.fallback is None for t in _run_all(sessions, feeds))  # all on the cloud
        server.stop()
        # the server hangs (accepts, never answers): all eight requests are in flight when the first fails
        hole = socket.create_server(("127.0.0.1", port), backlog=32)
        traces = _run_all(sessions, feeds)
        assert all(t.fallback is not None for t in traces)
        for s in sessions:  # a session whose round trip was forgotten checks the link in the background
            s.wait_for_probe(5.0)
        assert client.circuit.failures == 1, client.circuit.failures  # counted once, not eight times
        hole.close()
        hole = None

        # down for a while, the sessions keep inferring locally; then the server is back on the same port
        used_cloud: list[float] = []
        lock = threading.Lock()

        def keep_running(s: JointSession) -> None:
            while not stop.is_set():
                assert_close(s.run(feeds), want)
                trace = s.last_trace
                if trace is not None and trace.fallback is None and any(st.platform == C for st in trace.steps):
                    with lock:
                        used_cloud.append(time.monotonic())
                    return
                time.sleep(0.02)

        threads = [threading.Thread(target=keep_running, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        time.sleep(3.0)
        assert not used_cloud and 2 <= client.circuit.failures <= 60  # one probe at a time, backing off
        assert client.down_for <= client.backoff[1]  # capped
        server = BackgroundServer(app, port=port).start()
        ready = time.monotonic()
        for t in threads:
            t.join(30)
        assert len(used_cloud) == 8
        first, last = min(used_cloud) - ready, max(used_cloud) - ready
        print(f"\ncloud used again {first:.2f} s after the server was ready ({last:.2f} s for all 8 sessions)")
        assert last < 5.0  # the goal is 2 s; the unfixed client took 48 s
        assert client.circuit.state == "closed"
    finally:
        stop.set()
        if hole is not None:
            hole.close()
        if server is not None:
            server.stop()
        client.close()


def test_half_open_lets_exactly_one_probe_through() -> None:
    breaker = CircuitBreaker(0.01, 0.01, jitter=False)
    breaker.mark_down("down")
    time.sleep(0.05)
    assert breaker.state == "half-open" and breaker.available
    barrier = threading.Barrier(8)
    tickets: list[Any] = []

    def admit() -> None:
        barrier.wait()
        tickets.append(breaker.admit())

    threads = [threading.Thread(target=admit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    probes = [t for t in tickets if t is not None]
    assert len(probes) == 1 and probes[0].probe and not breaker.available
    breaker.succeeded(probes[0])
    assert breaker.state == "closed" and breaker.available and breaker.failures == 0


def test_a_failed_probe_backs_off_one_step_more_and_stale_failures_do_not() -> None:
    breaker = CircuitBreaker(1.0, 4.0, jitter=False)
    early = breaker.admit()  # a request in flight before the outage
    assert early is not None
    assert breaker.mark_down("down") == pytest.approx(1.0, abs=0.01)
    assert breaker.failed(early, "same outage") == pytest.approx(1.0, abs=0.01) and breaker.failures == 1
    breaker.mark_up()
    assert breaker.failed(early, "from before the last close") == 0.0 and breaker.state == "closed"


def test_backoffs_are_capped_with_full_jitter_and_differ_between_clients() -> None:
    """Full jitter: each back-off is uniform in [0, min(cap, base * 2**(k-1))); two clients never draw alike."""
    dead = f"http://127.0.0.1:{free_port()}"
    drawn = []
    for _ in range(2):
        with CloudClient(dead, backoff=(0.01, 0.06), retries=0) as client:
            seq = []
            for k in range(1, 7):
                with pytest.raises(CloudUnavailableError, match="cannot reach"):  # sent: the half-open probe
                    client.infer_slice("m", 0, 0, b"")
                bound = min(0.06, 0.01 * 2 ** (k - 1))
                backoff = client.circuit.backoff_s
                assert backoff is not None and 0 <= backoff <= bound and client.circuit.failures == k
                seq.append(backoff)
                time.sleep(client.down_for + 0.002)
            drawn.append(seq)
    assert drawn[0] != drawn[1]
    many = [CircuitBreaker(0.25, 1.5) for _ in range(50)]
    first = [b.mark_down("x") for b in many]
    assert len(set(first)) == 50 and max(first) <= 0.25  # separate clients come back at separate times


class _CorruptingFront(InferenceFront):
    """An ASGI front before a real app that flips the first byte of the frame in every inference answer (a 200)."""

    async def infer(self, scope: Any, receive: Any, send: Any) -> None:
        start: dict[str, Any] = {}
        body = bytearray()

        async def corrupt(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = dict((k.lower(), v) for k, v in start["headers"])
            json_len = int(headers[P.HEADER_LENGTH.lower().encode()])
            body[json_len + 4] ^= 0xFF  # after the BYTES element's 4-byte length: the frame's magic
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, corrupt)


def test_a_probe_that_gets_a_corrupt_frame_backs_off_further(session_models: Any) -> None:
    """Every answer a 200 with a corrupt frame: each probe fails, the back-off grows, the circuit never closes.

    The unfixed client closed the circuit on each probe's 200 and then did not count the frame's failure.
    """
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 2)
    front = _CorruptingFront(create_app({"alexnet": g}, threads=1))
    with BackgroundServer(front) as server, CloudClient(server.url, retries=0, backoff=(0.02, 10.0), jitter=False) as c:
        failures = []
        for _ in range(4):
            deadline = time.monotonic() + 10
            while not c.available and time.monotonic() < deadline:
                time.sleep(0.005)
            with pytest.raises((CodecError, RemoteError)):
                SliceCall(g, 0, 5).run(c, feeds, model="alexnet")
            assert c.circuit.state != "closed"
            failures.append(c.circuit.failures)
    assert failures == [1, 2, 3, 4]


def test_closing_one_session_leaves_the_others_sharing_its_client_working(
    session_models: Any, alexnet_server: Any
) -> None:
    """A session closes only a client it made from a URL; a closed client fails typed, and the session falls back.

    The unfixed session closed the shared client, and the other session's next run raised httpx's RuntimeError.
    """
    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 7)
    want = executor_for(g, threads=1).run_model(g, feeds)
    schedule = [(0, 9, M), (10, 20, C)]
    with CloudClient(alexnet_server.url, retries=0) as client:
        a, b = (
            JointSession(g, client, network="wifi", schedule=schedule, executor=executor_for(g, threads=1))
            for _ in range(2)
        )
        assert_close(a.run(feeds), want)
        a.close()
        assert not client.closed
        assert_close(b.run(feeds), want)
        trace = b.last_trace
        assert trace is not None and trace.fallback is None and [s.platform for s in trace.steps] == [M, C]

        client.close()  # its owner closes it under the session: a typed failure, the session falls back
        with pytest.raises(CloudUnavailableError, match="closed"):
            client.infer_slice("alexnet", 0, 0, codec.encode(feeds))
        with pytest.raises(CloudUnavailableError, match="closed"):
            client.ping()
        assert_close(b.run(feeds), want)
        trace = b.last_trace
        assert trace is not None and trace.fallback is not None and trace.fallback.startswith("CloudUnavailableError")
        assert client.circuit.failures == 0  # a closed client says nothing of the cloud
        b.close()

    owner = JointSession(g, alexnet_server.url, network="wifi", schedule=schedule, executor=executor_for(g, threads=1))
    assert_close(owner.run(feeds), want)
    owner.close()  # a client the session made from the URL is the session's to close
    assert owner.cloud is not None and owner.cloud.closed


def test_client_errors_never_open_the_circuit(cloud: Any) -> None:
    """400/404/409/422: the server answered, the request was wrong; the cloud stays available."""
    g = cloud.models["alexnet"]
    frame = codec.encode(uniform_feeds(g, 0))
    with cloud.client() as client:
        for call, status in [
            (lambda: client.infer_slice("nope", 0, 1, frame), 404),
            (lambda: client.infer_slice("alexnet", 0, 99, frame), 422),
            (lambda: client.infer_slice("alexnet", 0, 1, frame, digest="sha256:other"), 409),
            (lambda: client.infer_slice("alexnet", 0, 1, b"not a frame"), 422),
        ]:
            with pytest.raises(RemoteError) as e:
                call()
            assert e.value.status in (400, status), e.value
            assert client.circuit.state == "closed" and client.available and client.last_error is None


# ------------------------------------------------------------------ item 5: inputs checked before sending
def test_infer_casts_within_kind_and_refuses_other_kinds_before_sending(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    x32 = uniform_feeds(g, 7)["input"]
    want = executor_for(g, threads=1).run_model(g, {"input": x32})
    with cloud.client() as client:
        out = client.infer("alexnet", {"input": x32.astype(np.float64).tolist()})  # a Python list: float64
        assert_close(out, want)
        sent: list[str] = []
        client.http.event_hooks["request"] = [lambda request: sent.append(request.url.path)]
        for bad, match in [
            ({"input": np.ones(x32.shape, np.complex64)}, "no safe cast"),
            ({"input": x32.astype("U8")}, "no safe cast"),  # strings are no float input
            ({"input": x32[..., :3]}, "shape"),
            ({"input": x32, "extra": x32}, "unknown"),
            ({}, "missing"),
        ]:
            with pytest.raises(ExecutionError, match=match):
                client.infer("alexnet", bad)
        assert sent == [] and client.available  # nothing was sent, nothing counted


def test_slice_call_casts_within_kind_and_refuses_other_kinds_before_sending(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    x32 = uniform_feeds(g, 8)["input"]
    want = executor_for(g, threads=1).run(g, 0, 5, {"input": x32})
    with cloud.client() as client:
        out, _ = SliceCall(g, 0, 5).run(client, {"input": x32.astype(np.float64)}, model="alexnet")
        assert_close(out, want)
        sent: list[str] = []
        client.http.event_hooks["request"] = [lambda request: sent.append(request.url.path)]
        with pytest.raises(ExecutionError, match="no safe cast"):
            SliceCall(g, 0, 5).run(client, {"input": np.ones(x32.shape, np.complex128)}, model="alexnet")
        with pytest.raises(ExecutionError, match="shape"):
            SliceCall(g, 0, 5).run(client, {"input": x32[0]}, model="alexnet", digest=P.model_digest(g))
        assert sent == [] and client.available


def test_a_full_connection_pool_is_the_clients_own_contention_not_a_cloud_failure(alexnet_server: Any) -> None:
    """One connection, held by a trickled answer: the next request waits for the pool until its deadline, and
    that is ClientBusyError (the session falls back), which the circuit breaker does not count."""
    from jointdnn_edge import ClientBusyError

    with TricklingProxy(("127.0.0.1", alexnet_server.port), "all", delay=0.02) as proxy:
        with CloudClient(proxy.url, timeout=10, max_connections=1, retries=0) as client:
            holder = threading.Thread(target=lambda: _swallow(client.ping), daemon=True)
            holder.start()
            time.sleep(0.3)  # the trickled ping holds the only connection
            with pytest.raises(ClientBusyError):
                client.ping(deadline_s=0.3)
            assert client.circuit.failures == 0 and client.available
            holder.join(30)


def _swallow(call: Any) -> None:
    try:
        call()
    except Exception:  # the holder's own outcome does not matter here
        pass


class _ExpiringServer:
    """A raw HTTP server on 127.0.0.1 that closes a kept-alive connection when its second request arrives,
    without a byte of answer: what a server expiring an idle connection does as the client reuses it.
    ``always_drop``: it closes every connection on its first request instead (a server that never answers)."""

    BODY = b'{"name": "expiring", "version": "1", "extensions": []}'

    def __init__(self, always_drop: bool = False) -> None:
        self.always_drop = always_drop
        self.requests = self.answered = self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            self.connections += 1
            with conn:
                for k in range(2):
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    self.requests += 1
                    if k == 1 or self.always_drop:
                        break  # closed with the request unanswered
                    self.answered += 1
                    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(self.BODY)}\r\n"
                    conn.sendall(head.encode() + b"\r\n" + self.BODY)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def test_a_kept_alive_connection_closed_before_any_answer_is_retried_on_a_new_one() -> None:
    """The server drops the reused connection under the second request: the client sends it again on a fresh
    connection and gets the answer (not CloudUnavailableError), and the circuit stays closed."""
    server = _ExpiringServer()
    try:
        with CloudClient(f"http://127.0.0.1:{server.port}", timeout=10, retries=1) as client:
            first = client.server_metadata()
            second = client.server_metadata()
            assert first == second == json.loads(_ExpiringServer.BODY)
            assert (server.connections, server.requests, server.answered) == (2, 3, 2)
            assert client.circuit.failures == 0 and client.available
    finally:
        server.close()


def test_a_server_that_always_closes_unanswered_costs_exactly_the_retries() -> None:
    """Retrying is bounded: 1 + retries tries, then CloudUnavailableError (counted by the breaker once)."""
    server = _ExpiringServer(always_drop=True)
    try:
        with CloudClient(f"http://127.0.0.1:{server.port}", timeout=10, retries=2) as client:
            with pytest.raises(CloudUnavailableError, match="without sending a response"):
                client.server_metadata()
            assert server.requests == 3 and server.answered == 0
            assert client.circuit.failures == 1
    finally:
        server.close()
