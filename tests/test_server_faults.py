"""The server under faults (issue 12): one load per range however many ask, preload, and bounded holdings.

Every case runs a real server on 127.0.0.1 (in a thread, or a ``jointdnn-edge serve`` process whose memory
is read from /proc) and drives it with real clients or raw sockets: concurrent first requests, slow bodies,
half-sent headers, a large JSON body, a request past the admission limit, too many connections.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest

from jointdnn_edge import codec, zoo
from jointdnn_edge.client import CloudClient
from jointdnn_edge.errors import ModelError, RemoteError
from jointdnn_edge.faults import ServeProcess, open_sockets, raw_connection
from jointdnn_edge.models.graph import ModelGraph, uniform_feeds
from jointdnn_edge.models.ort_executor import OrtExecutor
from jointdnn_edge.server import BackgroundServer, Limits, create_app

MiB = 1 << 20


# ------------------------------------------------------------------ helpers
def _frame(graph: ModelGraph, first: int, last: int) -> bytes:
    """An activation frame of the inputs of layers ``first..last``."""
    feeds = uniform_feeds(graph, 0)
    tensors = {n: np.zeros(graph.tensor(n).shape, graph.tensor(n).dtype) for n in graph.slice_io(first, last)[0]}
    tensors.update({k: v for k, v in feeds.items() if k in tensors})
    return codec.encode(tensors, codec="raw")


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``sock`` within ``seconds`` (reading what it sent before), and what it sent."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:  # reset
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


@contextmanager
def _server_process(*args: str) -> Iterator[ServeProcess]:
    """``jointdnn-edge serve`` (alexnet, tiny) as a process with ``args``; killed at the end, on failure too."""
    with ServeProcess("zoo:alexnet", "--size", "tiny", "--threads", "1", *args) as p:
        yield p


def _infer_head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


# ------------------------------------------------------------------ single-flight loading
class _CountingExecutor(OrtExecutor):
    """The real onnxruntime executor, counting the sessions it opens (a miss of its cache opens one)."""

    def __init__(self) -> None:
        super().__init__(threads=1)
        self.opened = 0
        self._count_lock = threading.Lock()

    def _open(self, graph: ModelGraph, key: Any) -> Any:
        with self._count_lock:
            self.opened += 1
        return super()._open(graph, key)


def test_concurrent_first_requests_for_a_range_load_it_once() -> None:
    """Eight requests at once for a range nobody loaded: one loads it, the others wait and find it loaded."""
    g = zoo.load("resnet", size="tiny")
    first, last = 0, g.n - 1
    frame = _frame(g, first, last)
    executor = _CountingExecutor()
    app = create_app({"resnet": g}, limits=Limits(max_concurrency=8), executors={"resnet": executor})
    with BackgroundServer(app) as server, CloudClient(server.url, timeout=60.0) as client:
        barrier = threading.Barrier(8)
        replies: list[Any] = []
        errors: list[BaseException] = []

        def one() -> None:
            try:
                barrier.wait(10)
                replies.append(client.infer_slice("resnet", first, last, frame, codec="raw"))
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(replies) == 8
        # without single-flight loading, every request that missed the cache opened its own session
        assert executor.opened == 1, executor.opened
        # the one that loaded reports the load; the others report what they waited for as queueing
        loads = sorted(r.load_ms for r in replies)
        assert loads[-1] == max(r.load_ms for r in replies) > 0.0


class _FailingExecutor(_CountingExecutor):
    """The counting executor whose loads fail (ModelError, as onnxruntime's refusals do) once ``gate`` opens."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def _open(self, graph: ModelGraph, key: Any) -> Any:
        with self._count_lock:
            self.opened += 1
        assert self.gate.wait(60), "the test never opened the gate"
        time.sleep(0.1)
        raise ModelError("cannot load this range (injected)")


def test_a_failed_load_fails_its_waiters_once_and_a_later_request_tries_again() -> None:
    """Six requests at once for a range whose load fails: one load, six error answers; the next request retries."""
    g = zoo.load("resnet", size="tiny")
    first, last = 0, g.n - 1
    frame = _frame(g, first, last)
    gate = threading.Event()
    executor = _FailingExecutor(gate)
    app = create_app({"resnet": g}, limits=Limits(max_concurrency=6), executors={"resnet": executor})
    admission = app.state.jointdnn
    with BackgroundServer(app) as server, CloudClient(server.url, timeout=60.0, retries=0) as client:
        statuses: list[int | None] = []

        def one() -> None:
            try:
                client.infer_slice("resnet", first, last, frame, codec="raw")
            except RemoteError as e:
                statuses.append(e.status)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        # the load is held until all six are on worker threads (the loader is the first thing they reach there)
        deadline = time.monotonic() + 30
        while (admission._slots is None or admission._slots.borrowed_tokens < 6) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert admission._slots is not None and admission._slots.borrowed_tokens == 6
        time.sleep(0.2)
        gate.set()
        for t in threads:
            t.join(60)
        # before the fix, each waiter became the loader in turn: six loads, one after another
        assert executor.opened == 1, executor.opened
        assert statuses == [422] * 6, statuses
        with pytest.raises(RemoteError) as caught:  # a later request tries the load again
            client.infer_slice("resnet", first, last, frame, codec="raw")
        assert caught.value.status == 422
        assert executor.opened == 2, executor.opened


# ------------------------------------------------------------------ preload
class _GatedExecutor(OrtExecutor):
    """The real onnxruntime executor whose loads wait for ``gate``: the test decides when the preload may finish."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(threads=1)
        self.gate = gate

    def prepare(self, graph: ModelGraph, first: int, last: int) -> Any:
        assert self.gate.wait(60), "the test never opened the gate"
        return super().prepare(graph, first, last)

    def prepare_model(self, graph: ModelGraph) -> Any:
        assert self.gate.wait(60), "the test never opened the gate"
        return super().prepare_model(graph)


def test_preload_makes_ready_wait_and_the_first_request_finds_its_range_loaded() -> None:
    g = zoo.load("resnet", size="tiny")
    gate = threading.Event()
    executor = _GatedExecutor(gate)
    app = create_app({"resnet": g}, executors={"resnet": executor}, preload=["all-groups:10", "whole"],
                     preload_log=_Lines())  # fmt: skip
    preloader = app.state.jointdnn_preload
    try:
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            # the preload cannot finish while the gate is shut: not ready, yet alive
            assert http.get("/v2/health/ready").status_code == 503
            assert http.get("/v2/models/resnet/ready").status_code == 503
            assert http.get("/v2/health/live").status_code == 200
            gate.set()
            assert preloader.done.wait(60)
            assert http.get("/v2/health/ready").status_code == 200
            assert http.get("/v2/models/resnet/ready").status_code == 200
            assert preloader.loaded == len(preloader.plan) and preloader.failed == 0
            n = g.n
            assert len(preloader.plan) == sum(min(10, n - a) for a in range(n)) + 1
            assert executor.cached() == len(preloader.plan)  # every range of the plan is held
    finally:
        gate.set()
    lines = preloader._stream.lines
    assert lines[0].startswith("jointdnn-edge serve: preloading") and lines[-1].endswith("; ready"), lines

    with BackgroundServer(app) as server, CloudClient(server.url, timeout=60.0) as client:
        before = executor.cached()
        client.infer_slice("resnet", 2, 4, _frame(g, 2, 4), codec="raw")
        assert executor.cached() == before  # preloaded: this request opened no session
        client.infer_slice("resnet", 0, g.n - 1, _frame(g, 0, g.n - 1), codec="raw")
        assert executor.cached() == before + 1  # a range the preload did not cover is loaded on demand


class _Lines:
    """A text stream keeping the lines written to it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass


def test_serve_preload_prints_progress_and_is_ready_after_it(tmp_path: Any) -> None:
    """``serve --preload`` (ranges of a lookup table, all groups): ready only once loaded, with progress on stderr."""
    from jointdnn_edge import CostTable, LookupTable

    g = zoo.load("alexnet", size="tiny")
    costs = CostTable.from_layers([10.0] * g.n, [0.1] * g.n, **g.cost_skeleton())  # the cloud is worth it
    lut = LookupTable.build(costs, cells=(4, 4, 1))
    path = tmp_path / "t.lut"
    lut.save(path)
    lut_args = ["--preload", f"lut:{path}"]
    with _server_process("--preload", "all-groups:2", *lut_args) as p:
        with httpx.Client(base_url=p.url, timeout=30) as http:
            assert http.get("/v2/health/ready").status_code == 200
            body = json.dumps({"inputs": [_json_input(g)]})
            r = http.post("/v2/models/alexnet/infer", content=body)
            assert r.status_code == 200, r.text
        p.kill()
        err = p.log()
    assert "jointdnn-edge serve: preloading" in err and "; ready" in err, err


def _json_input(g: ModelGraph) -> dict[str, Any]:
    x = uniform_feeds(g, 0)[g.inputs[0].name]
    return {"name": g.inputs[0].name, "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}


# ------------------------------------------------------------------ what the server holds
def test_slow_bodies_are_cut_at_the_body_timeout_and_hold_little_memory() -> None:
    """Eight connections trickling 60 MiB bodies: each answered 408 and closed at the 1.5 s body timeout.

    The body budget is raised so that all eight are admitted (by default 64 MiB admits one and refuses the
    rest with 503 on their headers, which the next test covers): this one is about the body timeout.
    """
    with (
        _server_process(
            "--body-timeout", "1.5", "--header-timeout", "5", "--max-concurrency", "2", "--max-inflight-mb", "512"
        ) as p,
        open_sockets() as socks,
    ):
        rss0 = p.rss()
        for _ in range(8):
            s = raw_connection(p.port)
            socks.append(s)
            s.sendall(_infer_head("/v2/models/alexnet/infer", 60 * MiB, "Inference-Header-Content-Length: 10\r\n"))
        t0 = time.monotonic()
        peak = rss0
        chunk = b"\x00" * (64 * 1024)
        open_socks = list(socks)
        answers: dict[int, bytes] = {}
        while open_socks and time.monotonic() - t0 < 8.0:
            for s in list(open_socks):
                try:
                    s.sendall(chunk)  # about 640 KiB/s per connection: 60 MiB would take 90 s
                except OSError:
                    open_socks.remove(s)
            time.sleep(0.1)
            peak = max(peak, p.rss())
            if time.monotonic() - t0 > 1.0:
                for s in list(open_socks):
                    s.setblocking(False)
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    s.setblocking(True)
                    if data is not None:
                        answers[id(s)] = answers.get(id(s), b"") + data
                        if data == b"" or b"408" in answers[id(s)]:
                            open_socks.remove(s)
        elapsed = time.monotonic() - t0
        assert not open_socks, f"{len(open_socks)} slow bodies still open after {elapsed:.1f} s"
        assert elapsed < 5.0  # the timeout is 1.5 s
        assert sum(b"408" in a for a in answers.values()) >= 4, answers
        # the bodies would total 480 MiB; what arrived before the timeout is about 8 MiB
        assert peak - rss0 < 64 * MiB, (peak - rss0) / MiB
        with httpx.Client(base_url=p.url, timeout=30) as http:  # and it keeps serving
            assert http.get("/v2/health/ready").status_code == 200


def test_half_sent_headers_are_closed_at_the_header_timeout() -> None:
    port_server = _server_process("--header-timeout", "1", "--body-timeout", "5")
    with port_server as p, open_sockets() as socks:
        for i in range(50):
            s = raw_connection(p.port)
            socks.append(s)
            if i % 5:  # most send part of their headers, some nothing at all
                s.sendall(b"POST /v2/models/alexnet/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        t0 = time.monotonic()
        closed = [_closed_within(s, max(0.1, 4.0 - (time.monotonic() - t0)))[0] for s in socks]
        assert all(closed), f"{closed.count(False)} of 50 half-open connections still open after 4 s"
        # a kept-alive connection that begins a second request and stops is closed too
        s = raw_connection(p.port)
        socks.append(s)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /v2/health/live HTTP/1.1\r\n")
        done, got = _closed_within(s, 4.0)
        assert done and got.startswith(b"HTTP/1.1 200"), got
        with httpx.Client(base_url=p.url, timeout=30) as http:
            assert http.get("/v2/health/ready").status_code == 200


def _tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of ``sock`` (Linux ``tcpi_state``: 1 established, 7 closed), read without reading data."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _pix2pix_json_request() -> tuple[bytes, bytes]:
    """A JSON inference body for the tiny pix2pix (its answer is about 4 MB of JSON), and the whole request."""
    g = zoo.load("pix2pix", size="tiny")
    body = json.dumps({"inputs": [_json_input(g)]}).encode()
    return body, _infer_head("/v2/models/pix2pix/infer", len(body)) + body


def _slow_reader(port: int, socks: list[socket.socket]) -> socket.socket:
    """A connection to ``port`` with a 4 KiB receive buffer (set before connecting: no autotuning), so that an
    answer it does not read waits in the server; kept in ``socks`` to be closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    socks.append(s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    return s


def test_a_client_that_never_reads_its_answer_is_dropped_at_the_send_timeout() -> None:
    """Three pipelined requests for 4 MB JSON answers, none read: dropped at ``--send-timeout``, others served."""
    body, request = _pix2pix_json_request()
    with (
        ServeProcess("zoo:pix2pix", "--size", "tiny", "--threads", "1", "--send-timeout", "1") as p,
        open_sockets() as socks,
    ):
        s = _slow_reader(p.port, socks)
        s.sendall(request * 3)  # and never read: about 12 MB of answers wait in the server
        deadline = time.monotonic() + 20  # the answers are computed first; the send timeout is 1 s
        while _tcp_state(s) == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the server reset the connection (before the fix it held it, and the unsent answers, for ever)
        assert _tcp_state(s) == 7, _tcp_state(s)
        with httpx.Client(base_url=p.url, timeout=60) as http:  # and it keeps serving
            assert http.get("/v2/health/ready").status_code == 200
            r = http.post("/v2/models/pix2pix/infer", content=body)
            assert r.status_code == 200, r.text


def _read_response(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length from ``sock`` (headers and body); raises if cut."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before the headers"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.partition(b":")[::2] for line in head.split(b"\r\n")[1:])
    length = int(next(v for k, v in fields.items() if k.lower() == b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server cut the response at {len(body)} of {length} bytes"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_each_stalled_answer_on_a_kept_alive_connection_gets_the_whole_send_timeout() -> None:
    """Two 4 MB answers on one connection, each read only after a 2 s stall, with a 3 s send timeout: both arrive.

    The send deadline belongs to the answer that waits, not to the connection (a timer armed for the first
    answer must not cut the second one 1 s into its stall). Whether the first answer's timer would outlive it
    depends on the kernel's send buffer (it does when the last bytes leave the transport in more than one
    write); the guard ties the timer to the answer either way.
    """
    _, request = _pix2pix_json_request()
    with (
        ServeProcess("zoo:pix2pix", "--size", "tiny", "--threads", "1", "--send-timeout", "3") as p,
        open_sockets() as socks,
    ):
        s = _slow_reader(p.port, socks)
        answers = []
        for _ in range(2):
            s.sendall(request)
            time.sleep(2.0)  # the answer is computed and waits for the client to read (well within 3 s)
            answers.append(_read_response(s))
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        outputs = [json.loads(a.partition(b"\r\n\r\n")[2])["outputs"] for a in answers]
        assert outputs[0] == outputs[1]  # the same request twice: the same outputs, none lost


def test_a_15_mib_json_body_is_refused_before_it_is_parsed() -> None:
    with _server_process() as p, httpx.Client(base_url=p.url, timeout=60) as http:
        g = zoo.load("alexnet", size="tiny")
        assert (
            http.post("/v2/models/alexnet/infer", content=json.dumps({"inputs": [_json_input(g)]})).status_code == 200
        )
        rss0 = p.rss()
        values = ",".join(["0"] * (15 * MiB // 2))
        body = ('{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [' + values + "]}]}").encode()
        r = http.post("/v2/models/alexnet/infer", content=body)
        assert r.status_code == 413, r.text
        # sent without Content-Length (chunked): read up to the bound, then refused
        r = http.post("/v2/models/alexnet/infer", content=iter([body[i : i + MiB] for i in range(0, len(body), MiB)]))
        assert r.status_code == 413, r.text
        grown = p.rss() - rss0
        assert grown < 40 * MiB, grown / MiB  # parsed, it would have taken hundreds of MiB
        assert (
            http.post("/v2/models/alexnet/infer", content=json.dumps({"inputs": [_json_input(g)]})).status_code == 200
        )


def test_a_request_past_the_admission_limit_is_refused_before_its_body_is_read() -> None:
    g = zoo.load("alexnet", size="tiny")
    app = create_app({"alexnet": g}, limits=Limits(max_concurrency=1, max_queue=0, body_timeout_s=3.0), threads=1)
    with BackgroundServer(app) as server, open_sockets() as socks:
        # the one admitted request: its body trickles (it holds the only place while it is read)
        slow = raw_connection(server.port)
        socks.append(slow)
        slow.sendall(_infer_head("/v2/models/alexnet/infer", 1000) + b"{")
        deadline = time.monotonic() + 5
        while app.state.jointdnn.pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.jointdnn.pending == 1
        # the next one: 503 on its headers, though 8 MiB of its body have not been sent
        s = raw_connection(server.port)
        socks.append(s)
        t0 = time.monotonic()
        s.sendall(_infer_head("/v2/models/alexnet/infer", 8 * MiB, "Inference-Header-Content-Length: 2\r\n") + b"{")
        s.settimeout(2.0)
        answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in answer.lower(), answer
        assert time.monotonic() - t0 < 2.5  # before the 3 s body timeout: answered on the headers alone
        # the slow one gets its 408 at the body timeout, and the place is free again
        done, got = _closed_within(slow, 6.0)
        assert done and got.startswith(b"HTTP/1.1 408"), got
        assert app.state.jointdnn.pending == 0
        with httpx.Client(base_url=server.url, timeout=30) as http:
            r = http.post("/v2/models/alexnet/infer", content=json.dumps({"inputs": [_json_input(g)]}))
            assert r.status_code == 200, r.text


def test_the_body_budget_refuses_what_it_cannot_hold() -> None:
    g = zoo.load("alexnet", size="tiny")
    app = create_app({"alexnet": g}, limits=Limits(max_inflight_bytes=4 * MiB, body_timeout_s=3.0), threads=1)
    with BackgroundServer(app) as server, open_sockets() as socks:
        s = raw_connection(server.port)
        socks.append(s)
        s.sendall(_infer_head("/v2/models/alexnet/infer", 3 * MiB, "Inference-Header-Content-Length: 2\r\n") + b"{")
        deadline = time.monotonic() + 5
        while app.state.jointdnn.pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            r = http.post(
                "/v2/models/alexnet/infer",
                content=b"\x00" * (2 * MiB),
                headers={"Inference-Header-Content-Length": "2"},
            )
            assert r.status_code == 503 and "bytes" in r.json()["error"], r.text


def test_connections_past_the_cap_are_answered_503_and_closed() -> None:
    g = zoo.load("alexnet", size="tiny")
    app = create_app({"alexnet": g}, limits=Limits(max_connections=4, header_timeout_s=5.0), threads=1)
    with BackgroundServer(app) as server, open_sockets() as socks:
        for _ in range(4):
            socks.append(raw_connection(server.port))
        time.sleep(0.2)
        extra = raw_connection(server.port)
        socks.append(extra)
        done, got = _closed_within(extra, 3.0)
        assert done and got.startswith(b"HTTP/1.1 503"), got
        for s in socks[:4]:
            s.close()
        time.sleep(0.2)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize(
    "field, value",
    [
        ("header_timeout_s", 0),
        ("body_timeout_s", float("inf")),
        ("send_timeout_s", -1.0),
        ("max_connections", 0),
        ("max_inflight_bytes", -1),
    ],
)
def test_bad_limits_are_config_errors(field: str, value: Any) -> None:
    from jointdnn_edge import ConfigError

    with pytest.raises(ConfigError, match=field):
        Limits(**{field: value})


@pytest.mark.parametrize("spec", ["all-groups:0", "all-groups:x", "whole:1", "nothing", "nosuch=whole", "lut:/no/such"])
def test_bad_preload_specs_are_config_errors(spec: str) -> None:
    from jointdnn_edge import ConfigError, JointDNNError

    with pytest.raises((ConfigError, JointDNNError)):
        create_app([zoo.load("alexnet", size="tiny")], preload=[spec])


# ------------------------------------------------------------------ the fault tools themselves
def test_a_serve_process_starts_again_after_its_with_block_and_its_log_keeps_both_runs() -> None:
    p = ServeProcess("zoo:alexnet", "--size", "tiny", "--threads", "1", "--preload", "whole")
    try:
        with p:
            pass
        with p:  # leaving the block killed it; it starts again, logging to the same file
            pass
        assert p.log().count("; ready") == 2, p.log()
    finally:
        p.close()
    assert p.log() == ""  # closed: the log is gone


def test_closing_a_trickling_proxy_ends_its_connections() -> None:
    from jointdnn_edge.faults import TricklingProxy

    app = create_app([zoo.load("alexnet", size="tiny")], threads=1)
    with BackgroundServer(app) as server, open_sockets() as socks:
        proxy = TricklingProxy(("127.0.0.1", server.port), mode="all", delay=0.05)
        port = int(proxy.url.rsplit(":", 1)[1])
        s = raw_connection(port)
        socks.append(s)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(1) == b"H"  # trickling
        proxy.close()
        assert not proxy._tasks
        done, got = _closed_within(s, 5.0)
        assert done and not got.endswith(b"\r\n\r\n"), got  # cut mid-answer
