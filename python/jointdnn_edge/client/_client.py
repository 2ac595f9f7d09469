"""The HTTP client of one cloud endpoint: split and standard inference requests, deadlines, retries, health.

:class:`CloudClient` sends split requests (``docs/server.md``) and standard
Open Inference Protocol requests over one keep-alive ``httpx.Client``, with a
deadline per request, retries only where no computation can have happened
(the connection was refused, the server answered 503 before computing, or
a kept-alive connection was closed under the request before any answer),
and typed errors (:class:`~jointdnn_edge.TransportError` and subclasses).
A request's deadline is a total wall-clock budget (connect, send, headers,
body), however slowly the bytes come (:mod:`._deadline`). The client keeps
the endpoint's health in a circuit breaker (:mod:`._breaker`) shared by every
session using it: cloud failures open it for a capped, jittered back-off,
counted once per outage; client errors (bad input) never do. Every transfer feeds
its :class:`~jointdnn_edge.BandwidthEstimator`; an
:class:`~jointdnn_edge.Emulation` is applied by wrapping the real
transport (:class:`EmulatedTransport`), not here.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from .. import protocol as P
from ..errors import (
    AuthError,
    ClientBusyError,
    CloudUnavailableError,
    CodecError,
    ConfigError,
    DeadlineExceededError,
    ProtocolError,
    RemoteError,
    TransportError,
)
from ..network import Network
from ._breaker import CircuitBreaker, Ticket
from ._deadline import bound_by_deadlines, budget
from ._emulation import EmulatedTransport, Emulation
from ._estimator import BandwidthEstimator
from ._inputs import InputSpec, check_inputs, input_specs

__all__ = ["CloudClient", "SliceResponse"]


@dataclass(frozen=True)
class SliceResponse:
    """What a split request returned, and what it cost.

    ``frame``: the activation frame of the slice's outputs (not decoded);
    ``compute_ms``/``decode_ms``/``encode_ms``/``queue_ms``/``load_ms``/
    ``server_ms``: the server's own times (``load_ms``: setting up a layer
    range it had not run before; ``server_ms``: everything from the body's
    arrival to the response); ``wall_ms``: the request as seen by the client;
    ``up_ms``/``down_ms``: network time estimated for each direction;
    ``bytes_up``/``bytes_down``: HTTP bodies; ``attempts``: tries (retries
    included).
    """

    frame: bytes
    compute_ms: float
    decode_ms: float
    encode_ms: float
    queue_ms: float
    load_ms: float
    server_ms: float
    wall_ms: float
    up_ms: float
    down_ms: float
    bytes_up: int
    bytes_down: int
    attempts: int


@dataclass
class _Reply:
    status: int
    headers: Any
    body: bytes
    t_send: float
    t_headers: float
    t_end: float
    attempts: int
    sent: int
    #: the request opened a new connection
    fresh: bool
    #: seconds the new connection's handshakes (TCP, TLS) took, measured; 0 on a reused connection
    handshake_s: float = 0.0


class CloudClient:
    """A client of one cloud endpoint (``url``: ``http(s)://host:port``), safe to share between threads.

    ``token``: bearer token sent with every request. ``timeout``: the
    longest any request may take (seconds, connect to last byte), whatever
    deadline the caller asks for. ``retries``: extra tries after a refused
    connection, a 503, or a connection the server closed before answering
    (a kept-alive connection it had just expired), all within the request's
    deadline. ``backoff``: (base, cap) seconds of the
    circuit breaker: the ``k``-th consecutive counted failure keeps the
    circuit open for a random time in ``[0, min(cap, base * 2**(k-1)))``
    (``jitter=False``: exactly that bound). ``estimator``: where transfer
    samples go (a new :class:`BandwidthEstimator` by default). ``emulate``:
    pace transfers as an :class:`Emulation` (or a
    :class:`~jointdnn_edge.Network`) would, by wrapping the real transport
    in an :class:`EmulatedTransport`. ``verify``: TLS certificate
    verification: True (the system's CAs), False, or an ``ssl.SSLContext``
    (for example one trusting a private CA).

    Under faults (``docs/session.md``): a request never outlives its
    deadline by more than the scheduler's latency, however slowly the
    server answers; while the circuit is open every request fails at once
    with :class:`~jointdnn_edge.CloudUnavailableError` (nothing is sent);
    when the back-off is over, one request (the probe) goes, and its answer
    closes the circuit or opens it for the next back-off step.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 2,
        backoff: tuple[float, float] = (0.25, 1.5),
        jitter: bool = True,
        estimator: BandwidthEstimator | None = None,
        emulate: Emulation | Network | None = None,
        verify: Any = True,
        max_connections: int = 64,
    ) -> None:
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if retries < 0:
            raise ConfigError(f"retries must be >= 0, got {retries}")
        if not (0 < backoff[0] <= backoff[1]):
            raise ConfigError(f"backoff must be (base, cap) seconds with 0 < base <= cap, got {backoff!r}")
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url must start with http:// or https://, got {url!r}")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.estimator = estimator if estimator is not None else BandwidthEstimator()
        self.emulate = Emulation.of(emulate) if isinstance(emulate, Network) else emulate
        self.max_connections = int(max_connections)
        headers = {"User-Agent": "jointdnn-edge"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # keep-alive expiry under uvicorn's 5 s: a connection idle that long is not reused just as the server
        # closes it (the request would fail with no byte of answer, counted as a cloud failure)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=4.0
        )
        # TCP_NODELAY: a request's headers and body go out as separate writes; with Nagle's algorithm the
        # body would wait for the server's delayed ACK of the headers (about 40 ms on Linux)
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        real = httpx.HTTPTransport(verify=verify, limits=limits, socket_options=nodelay)
        self._backend = bound_by_deadlines(real)
        transport: httpx.BaseTransport = real
        if self.emulate is not None:
            transport = EmulatedTransport(transport, self.emulate)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, transport=transport)
        #: set by :meth:`close`: every later request fails at once with CloudUnavailableError (nothing counted)
        self.closed = False
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()  # connections seen (to spot new ones)
        self.circuit = CircuitBreaker(self.backoff[0], self.backoff[1], jitter=jitter)
        self._specs: dict[str, list[InputSpec]] = {}  # model inputs by model name, for infer()

    # ------------------------------------------------------------- health
    @property
    def available(self) -> bool:
        """Whether a request would be sent now: the circuit is closed, or half-open with no probe in flight."""
        return self.circuit.available

    @property
    def down_for(self) -> float:
        """Seconds of back-off left before the cloud is tried again (0 when closed or half-open)."""
        return self.circuit.down_for

    @property
    def last_error(self) -> str | None:
        """The failure that last opened the circuit (or kept it open)."""
        return self.circuit.last_error

    def mark_down(self, reason: str, *, started: float | None = None) -> float:
        """Count a cloud failure the client could not see itself (e.g. a corrupt answer); returns the back-off.

        ``started``: when the failed request began (``time.monotonic()``;
        default now): a request that started before the circuit last opened
        saw an outage already counted, and does not lengthen the back-off.
        """
        return self.circuit.mark_down(reason, started)

    def mark_up(self) -> None:
        """Close the circuit by hand: the next failure backs off from the start again."""
        self.circuit.mark_up()

    @contextmanager
    def _guarded(self) -> Iterator[Ticket]:
        """Let a call through the circuit breaker and tell it how the call ended.

        Raises :class:`CloudUnavailableError` at once (nothing sent) while the
        circuit is open or its one probe is in flight, or when the client is
        closed. A :class:`~jointdnn_edge.CodecError` raised inside (a 200
        answer whose frame is corrupt) is a cloud failure like a malformed
        answer: a probe that gets one does not close the circuit.
        """
        if self.closed:
            raise CloudUnavailableError(f"{self.url}: the client is closed")
        ticket: Ticket | None = None
        try:  # the ticket is taken inside: an interrupt right after admit() still frees the probe's slot
            ticket = self.circuit.admit()
            if ticket is None:
                raise CloudUnavailableError(
                    f"{self.url} is not tried now: circuit {self.circuit.state}, {self.down_for:.2f} s of back-off "
                    f"left (last error: {self.last_error})"
                )
            yield ticket
        except (TransportError, CodecError) as e:
            if ticket is not None and (self.closed or self.http.is_closed):  # closed under the request: no verdict
                self.circuit.released(ticket)
            elif ticket is not None:
                if isinstance(e, CodecError) or is_cloud_failure(e):
                    self.circuit.failed(ticket, f"{type(e).__name__}: {e}")
                else:  # the server answered: it is up, the request was wrong
                    self.circuit.succeeded(ticket)
            raise
        except BaseException:
            if ticket is not None:
                self.circuit.released(ticket)
            raise
        self.circuit.succeeded(ticket)

    # ------------------------------------------------------------- requests
    def ping(self, deadline_s: float | None = None) -> float:
        """One round trip to ``/v2/health/ready`` (recorded by the estimator); returns it in seconds.

        A ping that had to open a connection is repeated: the handshake is
        not part of a request's round trip on a kept-alive connection.
        ``deadline_s`` bounds the whole ping, repeats included (default: the
        client's timeout); raises :class:`DeadlineExceededError` past it.
        """
        limit = self.timeout if deadline_s is None else min(self.timeout, max(0.0, float(deadline_s)))
        end = time.monotonic() + limit
        with self._guarded():
            for _ in range(3):
                reply = self._request("GET", "/v2/health/ready", None, None, end - time.monotonic())
                if reply.status != 200:
                    raise RemoteError(f"health check answered {reply.status}", reply.status)
                if not reply.fresh:
                    break
        rtt = reply.t_end - reply.t_send - reply.handshake_s  # a server closing every connection: still a sample
        self.estimator.add_rtt(rtt)
        return rtt

    def server_metadata(self) -> dict[str, Any]:
        """``GET /v2``."""
        return self._get_json("/v2")

    def model_metadata(self, model: str) -> dict[str, Any]:
        """``GET /v2/models/{model}``: inputs, outputs and the server's ``jointdnn_*`` parameters."""
        return self._get_json(f"/v2/models/{_quote(model)}")

    def _get_json(self, path: str) -> dict[str, Any]:
        with self._guarded():
            reply = self._request("GET", path, None, None, self.timeout)
            _raise_for_status(reply)
        try:
            doc = json.loads(reply.body)
        except ValueError as e:
            raise RemoteError(f"{path}: response is not JSON: {e}", reply.status) from None
        if not isinstance(doc, dict):
            raise RemoteError(f"{path}: response is not a JSON object", reply.status)
        return doc

    def infer_slice(
        self,
        model: str,
        first: int,
        last: int,
        frame: bytes,
        *,
        codec: str = "auto",
        level: int = 1,
        quantize_bits: int | None = None,
        digest: str | None = None,
        deadline_s: float | None = None,
        max_response_bytes: int | None = None,
        check_frame: Callable[[bytes], object] | None = None,
        lossy: Sequence[tuple[str, str, bytes]] = (),
        upload_sample_only: bool = False,
    ) -> SliceResponse:
        """Run layers ``first..last`` of ``model`` on the cloud with the tensors in ``frame``.

        The response frame is encoded with ``codec``/``level`` (and
        ``quantize_bits`` when given). ``digest`` (see
        :func:`jointdnn_edge.protocol.model_digest`) makes the server
        refuse a model other than the client's. ``deadline_s`` bounds the
        whole request (default: the client's timeout); ``max_response_bytes``
        bounds the response body. ``check_frame`` is called with the response
        frame before the circuit breaker hears how the request ended, so that
        a frame it refuses (by raising :class:`~jointdnn_edge.CodecError` or
        :class:`RemoteError`) counts as a cloud failure, of the probe too.
        ``lossy``: ``(tensor, spec digest hex, payload)`` of inputs sent
        lossily (``docs/wire-format.md`` §9) beside ``frame``, under specs the
        server holds. ``upload_sample_only``: the request gives the estimator
        at most an upload sample, no round trip and no download (a probe's
        small request, whose answer, and at high rates its upload, may fit in
        a shaper's burst: its times say nothing of the round trip or the
        download rate).
        Raises :class:`CloudUnavailableError`,
        :class:`DeadlineExceededError`, :class:`AuthError` or
        :class:`RemoteError`.
        """
        params: dict[str, Any] = {P.P_FIRST: int(first), P.P_LAST: int(last), P.P_CODEC: codec, P.P_LEVEL: int(level)}
        if quantize_bits is not None:
            params[P.P_QUANTIZE] = int(quantize_bits)
        if digest is not None:
            params[P.P_DIGEST] = digest
        if lossy:
            params[P.P_LOSSY] = [[name, spec] for name, spec, _ in lossy]
        blob = P.pack_bytes([frame, *(payload for _, _, payload in lossy)])
        header = {
            "inputs": [
                {
                    "name": P.FRAME_TENSOR,
                    "datatype": "BYTES",
                    "shape": [1 + len(lossy)],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": P.FRAME_TENSOR, "parameters": {"binary_data": True}}],
            "parameters": params,
        }
        body, json_len = P.body_parts(header, [blob])
        with self._guarded():
            reply = self._post_infer(model, body, json_len, deadline_s, max_response_bytes)
            doc, sections = _parse_infer(reply)
            frame_out = _frame_output(doc, sections)
            if check_frame is not None:
                check_frame(frame_out)
        return self._finish(reply, frame_out, _timings(doc), upload_sample_only)

    def _finish(
        self, reply: _Reply, frame: bytes, t: Mapping[str, float], upload_sample_only: bool = False
    ) -> SliceResponse:
        """Book the transfer into the estimator (only an upload sample with ``upload_sample_only``, see
        :meth:`infer_slice`) and build the response record."""
        est = self.estimator
        rtt_s = (est.rtt_ms or 0.0) / 1e3
        server_s = t.get(P.R_SERVER, 0.0) / 1e3
        # headers arrive after the upload, the server's work and one round trip; the body follows. On a new
        # connection the handshakes came first: their measured time is no transfer time.
        raw_s = max(0.0, reply.t_headers - reply.t_send - server_s - reply.handshake_s)  # upload + one round trip
        up_s = max(0.0, raw_s - rtt_s)
        down_s = max(0.0, reply.t_end - reply.t_headers)
        sent, got = reply.sent, len(reply.body)
        # a new connection whose handshake went unmeasured (a transport without httpcore's trace) gives no sample
        clean = not reply.fresh or reply.handshake_s > 0
        if not clean:
            pass
        elif upload_sample_only:
            if raw_s > rtt_s and up_s >= _MIN_UPLOAD_SHARE * raw_s:
                est.add_transfer("up", sent, up_s)  # below min_bytes the estimator refuses it
        elif reply.fresh and sent < est.min_bytes:
            pass  # a round trip on a new connection: its request may have waited for the handshake's last ACK
        elif sent < est.min_bytes:
            est.add_rtt(raw_s)  # a small request is a round trip
        elif raw_s <= rtt_s:
            # the whole request took less than the round-trip estimate: the estimate is stale (the link got
            # faster). Its time includes the upload, so it is no round-trip sample either: forget the round
            # trip, and the session's next plan pings to measure it cleanly.
            est.forget_rtt()
        elif up_s >= _MIN_UPLOAD_SHARE * raw_s:
            est.add_transfer("up", sent, up_s)
        # else: the upload is a sliver of the request, within the round trip's error: no bandwidth sample
        if clean and not upload_sample_only:
            est.add_transfer("down", got, down_s)
        return SliceResponse(
            frame=frame,
            compute_ms=t.get(P.R_COMPUTE, 0.0),
            decode_ms=t.get(P.R_DECODE, 0.0),
            encode_ms=t.get(P.R_ENCODE, 0.0),
            queue_ms=t.get(P.R_QUEUE, 0.0),
            load_ms=t.get(P.R_LOAD, 0.0),
            server_ms=t.get(P.R_SERVER, 0.0),
            wall_ms=(reply.t_end - reply.t_send) * 1e3,
            up_ms=up_s * 1e3,
            down_ms=down_s * 1e3,
            bytes_up=sent,
            bytes_down=got,
            attempts=reply.attempts,
        )

    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        outputs: Sequence[str] | None = None,
        deadline_s: float | None = None,
    ) -> dict[str, np.ndarray]:
        """A standard whole-model inference (binary tensors both ways); outputs by name.

        The inputs are checked against the model's metadata (fetched once per
        model) before anything is sent: names and shapes must match, dtypes
        are cast within their kind (float64 data to a float32 input); anything
        else is an :class:`~jointdnn_edge.ExecutionError`, never a request the
        server would refuse.
        """
        entries, blobs = [], []
        for name, arr in check_inputs(self._input_specs(model), inputs, model).items():
            data = np.ascontiguousarray(arr).tobytes()
            params = {"binary_data_size": len(data)}
            datatype = P.datatype_of(arr.dtype)
            entries.append({"name": name, "datatype": datatype, "shape": list(arr.shape), "parameters": params})
            blobs.append(data)
        header: dict[str, Any] = {"inputs": entries, "parameters": {"binary_data_output": True}}
        if outputs is not None:
            header["outputs"] = [{"name": n, "parameters": {"binary_data": True}} for n in outputs]
        body, json_len = P.body_parts(header, blobs)
        with self._guarded():
            reply = self._post_infer(model, body, json_len, deadline_s, None)
            doc, sections = _parse_infer(reply)
            return _outputs(doc, sections)

    def _input_specs(self, model: str) -> list[InputSpec]:
        """The inputs ``model`` takes, as the server describes them (asked once per model)."""
        specs = self._specs.get(model)
        if specs is None:
            specs = self._specs[model] = input_specs(self.model_metadata(model))
        return specs

    # ------------------------------------------------------------ plumbing
    def _post_infer(
        self, model: str, body: bytes, json_len: int | None, deadline_s: float | None, max_response: int | None
    ) -> _Reply:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
        if json_len is not None:
            headers[P.HEADER_LENGTH] = str(json_len)
        deadline = self.timeout if deadline_s is None else min(self.timeout, max(0.0, float(deadline_s)))
        reply = self._request("POST", f"/v2/models/{_quote(model)}/infer", body, headers, deadline, max_response)
        _raise_for_status(reply)
        return reply

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        deadline: float,
        max_response: int | None = None,
    ) -> _Reply:
        """One request with retries where safe; raises typed errors.

        ``deadline``: seconds for everything (retries, connecting, sending,
        the headers and the whole body), enforced on every socket operation
        (:func:`._deadline.budget`), so a server trickling its answer cannot
        stretch it.
        """
        with budget(time.monotonic() + deadline):
            start = time.perf_counter()
            attempt = 0
            while True:
                attempt += 1
                if self.closed:  # closed under the request (its connection shut down): no retry
                    raise _closed_under(method, path)
                remaining = deadline - (time.perf_counter() - start)
                if remaining <= 0:
                    raise DeadlineExceededError(f"{method} {path}: deadline of {deadline * 1e3:.0f} ms passed")
                t_send = time.perf_counter()
                handshake = _HandshakeClock()
                try:
                    request = self.http.build_request(
                        method,
                        path,
                        content=body,
                        headers=headers,
                        timeout=httpx.Timeout(remaining),
                        extensions={"trace": handshake},
                    )
                    response = self.http.send(request, stream=True)
                    try:
                        t_headers = time.perf_counter()
                        fresh = self._fresh(response)
                        if response.status_code == 503 and attempt <= self.retries:
                            response.read()
                            wait = _retry_after(response, attempt)
                            if time.perf_counter() - start + wait < deadline:
                                time.sleep(wait)
                                continue
                        data = self._read(response, start, deadline, max_response, method, path)
                        t_end = time.perf_counter()
                    finally:
                        response.close()
                except httpx.ConnectError as e:  # refused / unreachable: nothing was sent, so a retry is safe
                    if attempt <= self.retries:
                        wait = 0.05 * 2 ** (attempt - 1)
                        if time.perf_counter() - start + wait < deadline:
                            time.sleep(wait)
                            continue
                    raise CloudUnavailableError(f"cannot reach {self.url}: {e}") from None
                except (httpx.RemoteProtocolError, httpx.WriteError) as e:
                    # A kept-alive connection closed under the request (the server expired it as it was reused):
                    # either the request was not all written, or no byte of an answer came back. Inference has
                    # no side effects, so a fresh connection may carry it again; any other protocol error is a
                    # cloud failure (below).
                    if _closed_before_answer(e) and attempt <= self.retries:
                        continue  # (a client closed meanwhile stops at the loop's top)
                    if self.closed:  # its socket shut down by close()
                        raise _closed_under(method, path) from None
                    raise CloudUnavailableError(f"{method} {path} failed: {type(e).__name__}: {e}") from None
                except httpx.PoolTimeout:
                    raise ClientBusyError(
                        f"{method} {path}: all {self.max_connections} connections of this client stayed busy for "
                        f"{deadline * 1e3:.0f} ms"
                    ) from None
                except httpx.TimeoutException as e:
                    self._bound_upload(e, body, time.perf_counter() - t_send)
                    raise DeadlineExceededError(
                        f"{method} {path}: no answer within {deadline * 1e3:.0f} ms ({type(e).__name__})"
                    ) from None
                except httpx.HTTPError as e:  # reset, protocol error mid-request: the server may have computed
                    if self.closed:  # its socket shut down by close()
                        raise _closed_under(method, path) from None
                    raise CloudUnavailableError(f"{method} {path} failed: {type(e).__name__}: {e}") from None
                except RuntimeError:  # httpx's "the client has been closed" (by another thread, mid-request)
                    if self.closed or self.http.is_closed:
                        raise _closed_under(method, path) from None
                    raise
                sent = len(body) if body is not None else 0
                return _Reply(
                    response.status_code,
                    response.headers,
                    data,
                    t_send,
                    t_headers,
                    t_end,
                    attempt,
                    sent,
                    fresh,
                    handshake.seconds,
                )

    def _bound_upload(self, error: httpx.TimeoutException, body: bytes | None, seconds: float) -> None:
        """Book a request that ran out of time sending its body or waiting for the answer as an upload sample.

        Its body took no more than ``seconds`` to go up only if the answer was late (a read timeout: the sample
        errs low), and longer if the write itself timed out (it errs high); either way it is evidence a stale
        estimate lacks: after a step down, a session planning on the old bandwidth would otherwise miss one
        deadline after another, each miss teaching the estimator nothing (found by the network lab).
        """
        if body is not None and isinstance(error, (httpx.WriteTimeout, httpx.ReadTimeout)):
            self.estimator.add_transfer("up", len(body), seconds)

    def _fresh(self, response: Any) -> bool:
        """Whether ``response`` came over a connection this client had not used before."""
        stream = response.extensions.get("network_stream")
        if stream is None:
            return False
        with self._lock:
            if stream in self._streams:
                return False
            self._streams.add(stream)
            return True

    def _read(
        self, response: Any, start: float, deadline: float, max_response: int | None, method: str, path: str
    ) -> bytes:
        """The response body as it arrives, within the deadline and no larger than ``max_response``."""
        declared = response.headers.get("content-length")
        if max_response is not None and declared is not None:
            try:
                length = P.parse_decimal(declared, "Content-Length")
            except ProtocolError as e:
                # no status: an unusable answer is a cloud failure whatever its status (a 4xx would not count)
                raise RemoteError(f"the cloud's response ({response.status_code}) is unusable: {e}") from None
            if length > max_response:
                raise RemoteError(f"response of {length} bytes is larger than the {max_response} expected", 200)
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_raw():
            chunks.append(chunk)
            total += len(chunk)
            if max_response is not None and total > max_response:
                raise RemoteError(f"response is larger than the {max_response} bytes expected", 200)
            if time.perf_counter() - start > deadline:
                raise DeadlineExceededError(f"{method} {path}: response still arriving after {deadline * 1e3:.0f} ms")
        return b"".join(chunks)

    def close(self) -> None:
        """Close the connection pool; a request in flight on another thread ends now, and every later one fails at
        once, with :class:`CloudUnavailableError` (neither counted as a cloud failure)."""
        self.closed = True
        # Sockets are shut down before httpx closes them: a read blocked on a closed descriptor runs on to its
        # deadline (a silent cloud held close() for the client's timeout); one shut down returns at once.
        self._backend.abort()
        self.http.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "available" if self.available else f"down for {self.down_for:.1f} s"
        return f"CloudClient({self.url!r}, {state}, {self.estimator!r})"


#: An upload shorter than this share of its request (upload + round trip) is no bandwidth sample: the round
#: trip's estimate errs by more than that, and the sample would claim an absurd bandwidth (the network lab saw
#: 1000 Mbit/s on a 19 Mbit/s link right after the round trip fell).
_MIN_UPLOAD_SHARE = 0.1


class _HandshakeClock:
    """httpcore's ``trace`` extension: adds up how long a request's new connection took to open (TCP, TLS)."""

    __slots__ = ("seconds", "_started")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event in ("connection.connect_tcp.started", "connection.start_tls.started"):
            self._started = time.perf_counter()
        elif event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self.seconds += time.perf_counter() - self._started


def _closed_under(method: str, path: str) -> CloudUnavailableError:
    """The error of a request whose client was closed under it (by another thread): not a cloud failure."""
    return CloudUnavailableError(f"{method} {path}: the client is closed")


def _closed_before_answer(error: httpx.HTTPError) -> bool:
    """Whether ``error`` means the connection closed before the request was all sent or any answer byte came."""
    if isinstance(error, httpx.WriteError):
        return True
    return "without sending a response" in str(error)  # httpcore's words for EOF before a status line


def _quote(name: str) -> str:
    return quote(name, safe="")


def _retry_after(response: Any, attempt: int) -> float:
    try:  # only the delta-seconds form; anything else (an HTTP date, garbage) backs off on its own
        base = float(P.parse_decimal(response.headers.get("retry-after", ""), "Retry-After", max_digits=6))
    except ProtocolError:
        base = 0.05 * 2 ** (attempt - 1)
    return min(base, 2.0)


def _raise_for_status(reply: _Reply) -> None:
    if reply.status == 200:
        return
    message = ""
    try:
        doc = json.loads(reply.body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            message = doc["error"]
    except ValueError:
        pass
    if not message:
        message = reply.body[:200].decode("utf-8", "replace") or f"HTTP {reply.status}"
    if reply.status in (401, 403):
        raise AuthError(f"cloud refused the credentials ({reply.status}): {message}", reply.status)
    raise RemoteError(f"cloud answered {reply.status}: {message}", reply.status)


def _parse_infer(reply: _Reply) -> tuple[dict[str, Any], list[memoryview | None]]:
    """An inference response's JSON and the binary sections of its outputs; RemoteError when malformed."""
    try:
        doc, binary = P.split_body(reply.body, reply.headers.get(P.HEADER_LENGTH), max_json_bytes=len(reply.body) + 1)
        outputs = doc.get("outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise ProtocolError(502, "response has no 'outputs' list")
        sections = P.sections(outputs, binary, "output")
    except ProtocolError as e:
        raise RemoteError(f"malformed inference response: {e.message}", reply.status) from None
    return doc, sections


def _outputs(doc: Mapping[str, Any], sections: Sequence[memoryview | None]) -> dict[str, np.ndarray]:
    """The output tensors of a standard inference response, by name; RemoteError when malformed."""
    result: dict[str, np.ndarray] = {}
    for out, blob in zip(doc.get("outputs") or [], sections):
        try:
            shape = P.check_shape(out.get("shape"), f"output {out.get('name')!r}")
            dt = P.numpy_dtype(out.get("datatype"))
            if blob is not None:
                arr = np.frombuffer(blob, dtype=dt).reshape(shape).copy()
            else:
                arr = np.asarray(out.get("data"), dtype=dt).reshape(shape)
        except (ProtocolError, ValueError, TypeError) as e:
            raise RemoteError(f"malformed output {out.get('name')!r}: {e}", 200) from None
        result[str(out.get("name"))] = arr
    return result


def _frame_output(doc: Mapping[str, Any], sections: Sequence[memoryview | None]) -> bytes:
    """The activation frame of a split response (its one binary BYTES output); RemoteError when malformed."""
    outputs = doc.get("outputs")
    if isinstance(outputs, list) and len(outputs) == 1 and sections[0] is not None:
        if outputs[0].get("name") == P.FRAME_TENSOR and outputs[0].get("datatype") == "BYTES":
            try:
                (view,) = P.unpack_bytes(sections[0], 1, P.FRAME_TENSOR)
                return bytes(view)
            except ProtocolError:
                pass
    raise RemoteError(f"malformed split response: expected one binary BYTES output {P.FRAME_TENSOR!r}", 200)


def is_cloud_failure(error: TransportError) -> bool:
    """Whether ``error`` says the cloud failed (counts for the circuit breaker), not that the request was wrong.

    Unreachable, too slow, 5xx, 429, refused credentials (401/403: the cloud
    is unusable until they change, so it is backed off too), or an answer
    that is not a valid response are cloud failures; other 4xx client errors
    (bad input, unknown or other model, too large: 400, 404, 409, 413, 422)
    are not: the server answered, the request was wrong; nor is a full pool of
    this client's own connections (:class:`~jointdnn_edge.ClientBusyError`).
    """
    if isinstance(error, ClientBusyError):
        return False  # this client's own pool was full: the cloud did nothing wrong
    if isinstance(error, RemoteError) and error.status is not None and 400 <= error.status < 500:
        return error.status in (401, 403, 429)
    return True


def _timings(doc: Mapping[str, Any]) -> dict[str, float]:
    params = doc.get("parameters")
    out: dict[str, float] = {}
    if isinstance(params, dict):
        for key in (P.R_COMPUTE, P.R_DECODE, P.R_ENCODE, P.R_QUEUE, P.R_LOAD, P.R_SERVER):
            v = params.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
                out[key] = float(v)
    return out
