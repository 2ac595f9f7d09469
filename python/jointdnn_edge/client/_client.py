"""The HTTP client of one cloud endpoint: split and standard inference requests, deadlines, retries, health.

:class:`CloudClient` sends split requests (``docs/server.md``) and standard
Open Inference Protocol requests over one keep-alive ``httpx.Client``, with a
deadline per request, retries only where no computation can have happened
(the connection was refused, or the server answered 503 before computing),
and typed errors (:class:`~jointdnn_edge.TransportError` and subclasses).
It also keeps the endpoint's health: after a failure the caller marks the
cloud down for an exponential back-off, shared by every session using the
client. Every transfer feeds its :class:`~jointdnn_edge.BandwidthEstimator`;
an :class:`~jointdnn_edge.Emulation` is applied by wrapping the real
transport (:class:`EmulatedTransport`), not here.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from .. import protocol as P
from ..errors import (
    AuthError,
    CloudUnavailableError,
    ConfigError,
    DeadlineExceededError,
    ProtocolError,
    RemoteError,
)
from ..network import Network
from ._emulation import EmulatedTransport, Emulation
from ._estimator import BandwidthEstimator

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
    #: the request opened a new connection (its time includes the handshake: not a clean sample)
    fresh: bool


class CloudClient:
    """A client of one cloud endpoint (``url``: ``http(s)://host:port``), safe to share between threads.

    ``token``: bearer token sent with every request. ``timeout``: the
    longest any request may take (seconds), whatever deadline the caller
    asks for. ``retries``: extra tries after a refused connection or a 503
    (never after a request may have been computed). ``backoff``: (first,
    longest) seconds the cloud stays marked down after consecutive failures
    (doubling). ``estimator``: where transfer samples go (a new
    :class:`BandwidthEstimator` by default). ``emulate``: pace transfers as
    an :class:`Emulation` (or a :class:`~jointdnn_edge.Network`) would, by
    wrapping the real transport in an :class:`EmulatedTransport`.
    ``verify``: TLS certificate verification: True (the system's CAs),
    False, or an ``ssl.SSLContext`` (for example one trusting a private CA).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 2,
        backoff: tuple[float, float] = (1.0, 60.0),
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
            raise ConfigError(f"backoff must be (first, longest) with 0 < first <= longest, got {backoff!r}")
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url must start with http:// or https://, got {url!r}")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.estimator = estimator if estimator is not None else BandwidthEstimator()
        self.emulate = Emulation.of(emulate) if isinstance(emulate, Network) else emulate
        headers = {"User-Agent": "jointdnn-edge"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # TCP_NODELAY: a request's headers and body go out as separate writes; with Nagle's algorithm the
        # body would wait for the server's delayed ACK of the headers (about 40 ms on Linux)
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        transport: httpx.BaseTransport = httpx.HTTPTransport(verify=verify, limits=limits, socket_options=nodelay)
        if self.emulate is not None:
            transport = EmulatedTransport(transport, self.emulate)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, transport=transport)
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()  # connections seen (to spot new ones)
        self._failures = 0
        self._down_until = 0.0
        self.last_error: str | None = None

    # ------------------------------------------------------------- health
    @property
    def available(self) -> bool:
        """False while the cloud is marked down (see :meth:`mark_down`)."""
        with self._lock:
            return time.monotonic() >= self._down_until

    @property
    def down_for(self) -> float:
        """Seconds until the cloud may be tried again (0 when available)."""
        with self._lock:
            return max(0.0, self._down_until - time.monotonic())

    def mark_down(self, reason: str) -> float:
        """Mark the cloud down after a failure; returns the back-off in seconds (doubling, capped)."""
        with self._lock:
            self._failures += 1
            wait = min(self.backoff[1], self.backoff[0] * 2.0 ** (self._failures - 1))
            self._down_until = time.monotonic() + wait
            self.last_error = reason
            return wait

    def mark_up(self) -> None:
        """Mark the cloud healthy (after a success): the next failure backs off from the start again."""
        with self._lock:
            self._failures = 0
            self._down_until = 0.0

    # ------------------------------------------------------------- requests
    def ping(self) -> float:
        """One round trip to ``/v2/health/ready`` (recorded by the estimator); returns it in seconds.

        A ping that had to open a connection is repeated: the handshake is
        not part of a request's round trip on a kept-alive connection.
        """
        for _ in range(3):
            reply = self._request("GET", "/v2/health/ready", None, None, self.timeout)
            if reply.status != 200:
                raise RemoteError(f"health check answered {reply.status}", reply.status)
            if not reply.fresh:
                break
        rtt = reply.t_end - reply.t_send
        self.estimator.add_rtt(rtt)
        return rtt

    def server_metadata(self) -> dict[str, Any]:
        """``GET /v2``."""
        return self._get_json("/v2")

    def model_metadata(self, model: str) -> dict[str, Any]:
        """``GET /v2/models/{model}``: inputs, outputs and the server's ``jointdnn_*`` parameters."""
        return self._get_json(f"/v2/models/{_quote(model)}")

    def _get_json(self, path: str) -> dict[str, Any]:
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
    ) -> SliceResponse:
        """Run layers ``first..last`` of ``model`` on the cloud with the tensors in ``frame``.

        The response frame is encoded with ``codec``/``level`` (and
        ``quantize_bits`` when given). ``digest`` (see
        :func:`jointdnn_edge.protocol.model_digest`) makes the server
        refuse a model other than the client's. ``deadline_s`` bounds the
        whole request (default: the client's timeout); ``max_response_bytes``
        bounds the response body. Raises :class:`CloudUnavailableError`,
        :class:`DeadlineExceededError`, :class:`AuthError` or
        :class:`RemoteError`.
        """
        params: dict[str, Any] = {P.P_FIRST: int(first), P.P_LAST: int(last), P.P_CODEC: codec, P.P_LEVEL: int(level)}
        if quantize_bits is not None:
            params[P.P_QUANTIZE] = int(quantize_bits)
        if digest is not None:
            params[P.P_DIGEST] = digest
        blob = P.pack_bytes([frame])
        header = {
            "inputs": [
                {
                    "name": P.FRAME_TENSOR,
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": P.FRAME_TENSOR, "parameters": {"binary_data": True}}],
            "parameters": params,
        }
        body, json_len = P.body_parts(header, [blob])
        reply = self._post_infer(model, body, json_len, deadline_s, max_response_bytes)
        doc, sections = _parse_infer(reply)
        outputs = doc.get("outputs")
        frame_out = None
        if isinstance(outputs, list) and len(outputs) == 1 and sections[0] is not None:
            if outputs[0].get("name") == P.FRAME_TENSOR and outputs[0].get("datatype") == "BYTES":
                try:
                    (view,) = P.unpack_bytes(sections[0], 1, P.FRAME_TENSOR)
                    frame_out = bytes(view)
                except ProtocolError:
                    frame_out = None
        if frame_out is None:
            raise RemoteError(f"malformed split response: expected one binary BYTES output {P.FRAME_TENSOR!r}", 200)
        t = _timings(doc)
        return self._finish(reply, frame_out, t)

    def _finish(self, reply: _Reply, frame: bytes, t: Mapping[str, float]) -> SliceResponse:
        """Book the transfer into the estimator and build the response record."""
        est = self.estimator
        rtt_s = (est.rtt_ms or 0.0) / 1e3
        server_s = t.get(P.R_SERVER, 0.0) / 1e3
        # headers arrive after the upload, the server's work and one round trip; the body follows
        up_s = max(0.0, reply.t_headers - reply.t_send - server_s - rtt_s)
        down_s = max(0.0, reply.t_end - reply.t_headers)
        sent, got = reply.sent, len(reply.body)
        if reply.fresh:
            pass  # a new connection's handshake would pass for transfer time
        elif sent < est.min_bytes:
            est.add_rtt(max(0.0, reply.t_headers - reply.t_send - server_s))
        else:
            est.add_transfer("up", sent, up_s)
        if not reply.fresh:
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
        """A standard whole-model inference (binary tensors both ways); outputs by name."""
        entries, blobs = [], []
        for name, value in inputs.items():
            arr = np.asarray(value)
            dtype = P.datatype_of(arr.dtype)
            data = np.ascontiguousarray(arr, dtype=P.numpy_dtype(dtype)).tobytes()
            params = {"binary_data_size": len(data)}
            entries.append({"name": name, "datatype": dtype, "shape": list(arr.shape), "parameters": params})
            blobs.append(data)
        header: dict[str, Any] = {"inputs": entries, "parameters": {"binary_data_output": True}}
        if outputs is not None:
            header["outputs"] = [{"name": n, "parameters": {"binary_data": True}} for n in outputs]
        body, json_len = P.body_parts(header, blobs)
        reply = self._post_infer(model, body, json_len, deadline_s, None)
        doc, sections = _parse_infer(reply)
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
        """One request with retries where safe; raises typed errors. ``deadline``: seconds for everything."""
        start = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - (time.perf_counter() - start)
            if remaining <= 0:
                raise DeadlineExceededError(f"{method} {path}: deadline of {deadline * 1e3:.0f} ms passed")
            t_send = time.perf_counter()
            try:
                request = self.http.build_request(
                    method, path, content=body, headers=headers, timeout=httpx.Timeout(remaining)
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
            except httpx.TimeoutException as e:
                raise DeadlineExceededError(
                    f"{method} {path}: no answer within {deadline * 1e3:.0f} ms ({type(e).__name__})"
                ) from None
            except httpx.HTTPError as e:  # reset, protocol error mid-request: the server may have computed
                raise CloudUnavailableError(f"{method} {path} failed: {type(e).__name__}: {e}") from None
            sent = len(body) if body is not None else 0
            return _Reply(response.status_code, response.headers, data, t_send, t_headers, t_end, attempt, sent, fresh)

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
                raise RemoteError(f"the cloud's response is unusable: {e}", response.status_code) from None
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
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "available" if self.available else f"down for {self.down_for:.1f} s"
        return f"CloudClient({self.url!r}, {state}, {self.estimator!r})"


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


def _timings(doc: Mapping[str, Any]) -> dict[str, float]:
    params = doc.get("parameters")
    out: dict[str, float] = {}
    if isinstance(params, dict):
        for key in (P.R_COMPUTE, P.R_DECODE, P.R_ENCODE, P.R_QUEUE, P.R_LOAD, P.R_SERVER):
            v = params.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
                out[key] = float(v)
    return out
