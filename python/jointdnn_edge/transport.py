"""Talking to the cloud endpoint: the HTTP client, the bandwidth estimator and link emulation.

:class:`CloudClient` sends split requests (``docs/server.md``) and standard
Open Inference Protocol requests over one keep-alive ``httpx.Client``, with a
deadline per request, retries only where no computation can have happened
(the connection was refused, or the server answered 503 before computing),
and typed errors (:class:`~jointdnn_edge.TransportError` and subclasses).
It also keeps the endpoint's health: after a failure the caller marks the
cloud down for an exponential back-off, shared by every session using the
client.

Every transfer feeds a :class:`BandwidthEstimator`, which the session reads
before each inference to plan on the current network. :class:`Emulation`
paces transfers as if the link were slower than it is (the loopback is faster
than any mobile network), for demos and tests.
"""

from __future__ import annotations

import math
import socket
import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import protocol as P
from .errors import (
    AuthError,
    CloudUnavailableError,
    ConfigError,
    DeadlineExceededError,
    ExecutionError,
    ProtocolError,
    RemoteError,
    TransportError,
)

if TYPE_CHECKING:
    from .codec.frame import FrameEntry
    from .models.executor import PreparedRun
    from .models.graph import ModelGraph
    from .network import Network

__all__ = ["BandwidthEstimator", "CloudClient", "Emulation", "RemoteExecutor", "SliceResponse", "decode_slice_outputs"]


# ------------------------------------------------------------------ estimator
class BandwidthEstimator:
    """Current upload and download bandwidth (Mbit/s) and round-trip time (ms) from observed transfers.

    Bandwidth: each transfer of at least ``min_bytes`` gives a throughput
    sample ``8 * bytes / seconds / 1e6``; the estimate is the weighted
    harmonic mean of the last ``window`` samples, the newest weighing 1 and
    each older one ``decay`` times the next::

        estimate = sum(w_k) / sum(w_k / x_k),    w_k = decay ** age_k

    that is, an exponentially weighted average of seconds per bit, turned back
    into a rate. A harmonic mean follows the slow samples, which are the ones
    that cost latency, and a single burst (a transfer that fit in a socket
    buffer) barely moves it; smaller transfers are dominated by latency and
    are not bandwidth samples. Round trip: the median of the last ``window``
    samples. Before the first sample of a kind, the estimate is ``None``.
    Thread-safe.
    """

    def __init__(self, *, window: int = 8, decay: float = 0.7, min_bytes: int = 8192) -> None:
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        if not 0 < decay <= 1:
            raise ConfigError(f"decay must be in (0, 1], got {decay}")
        if min_bytes < 0:
            raise ConfigError(f"min_bytes must be >= 0, got {min_bytes}")
        self.window = int(window)
        self.decay = float(decay)
        self.min_bytes = int(min_bytes)
        self._up: deque[float] = deque(maxlen=self.window)
        self._down: deque[float] = deque(maxlen=self.window)
        self._rtt: deque[float] = deque(maxlen=self.window)
        self._lock = threading.Lock()

    def add_transfer(self, direction: str, nbytes: float, seconds: float) -> bool:
        """Record ``nbytes`` moved ``"up"`` or ``"down"`` in ``seconds`` of network time; False if not a sample."""
        if direction not in ("up", "down"):
            raise ConfigError(f"direction must be 'up' or 'down', got {direction!r}")
        if nbytes < max(self.min_bytes, 1) or not (seconds > 0 and math.isfinite(seconds)):
            return False
        mbps = 8.0 * nbytes / seconds / 1e6
        with self._lock:
            (self._up if direction == "up" else self._down).append(mbps)
        return True

    def add_rtt(self, seconds: float) -> bool:
        """Record one round trip of ``seconds`` (a small request's time minus the server's); False if unusable."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            return False
        with self._lock:
            self._rtt.append(seconds * 1e3)
        return True

    def _harmonic(self, samples: Sequence[float]) -> float | None:
        if not samples:
            return None
        num = den = 0.0
        w = 1.0
        for x in reversed(samples):  # newest first
            num += w
            den += w / x
            w *= self.decay
        return num / den

    @property
    def up_mbps(self) -> float | None:
        """Upload bandwidth estimate (None before the first sample)."""
        with self._lock:
            return self._harmonic(list(self._up))

    @property
    def down_mbps(self) -> float | None:
        """Download bandwidth estimate (None before the first sample)."""
        with self._lock:
            return self._harmonic(list(self._down))

    @property
    def rtt_ms(self) -> float | None:
        """Round-trip estimate in ms (None before the first sample)."""
        with self._lock:
            return statistics.median(self._rtt) if self._rtt else None

    def counts(self) -> dict[str, int]:
        """Samples currently held, by kind."""
        with self._lock:
            return {"up": len(self._up), "down": len(self._down), "rtt": len(self._rtt)}

    def network(self, radio: Network) -> Network:
        """``radio`` (a :class:`~jointdnn_edge.Network` for its power model) with the estimated link.

        Bandwidths without samples keep ``radio``'s; ``rtt_ms`` becomes half
        the estimated round trip, because the planner charges ``rtt_ms`` per
        platform switch and one request (a round trip) makes two switches.
        """
        from dataclasses import replace

        up, down, rtt = self.up_mbps, self.down_mbps, self.rtt_ms
        return replace(
            radio,
            up_mbps=float(up if up is not None else radio.up_mbps),
            down_mbps=float(down if down is not None else radio.down_mbps),
            rtt_ms=float(rtt / 2.0 if rtt is not None else radio.rtt_ms),
        )

    def reset(self) -> None:
        """Forget every sample."""
        with self._lock:
            self._up.clear()
            self._down.clear()
            self._rtt.clear()

    def __repr__(self) -> str:
        def f(x: float | None) -> str:
            return "?" if x is None else f"{x:.3g}"

        up, down, rtt = f(self.up_mbps), f(self.down_mbps), f(self.rtt_ms)
        return f"BandwidthEstimator(up={up} Mbit/s, down={down} Mbit/s, rtt={rtt} ms)"


# ------------------------------------------------------------------ emulation
@dataclass(frozen=True)
class Emulation:
    """A slower link emulated by pacing: transfers take at least ``bytes * 8 / mbps``; each request adds ``rtt_ms``.

    Uploads are streamed in chunks with sleeps between them, downloads are
    read in chunks the same way, so the time a transfer takes (and what the
    :class:`BandwidthEstimator` measures) is what the emulated link would
    give, as long as the real link is faster. ``None`` leaves a direction
    unpaced.
    """

    up_mbps: float | None = None
    down_mbps: float | None = None
    rtt_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("up_mbps", "down_mbps"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"Emulation.{name} must be a positive number or None, got {v!r}")
        if not (isinstance(self.rtt_ms, (int, float)) and math.isfinite(self.rtt_ms) and self.rtt_ms >= 0):
            raise ConfigError(f"Emulation.rtt_ms must be >= 0, got {self.rtt_ms!r}")

    @classmethod
    def of(cls, network: Network) -> Emulation:
        """The bandwidths and round trip of a :class:`~jointdnn_edge.Network` (e.g. ``Network.preset("3g")``)."""
        return cls(network.up_mbps, network.down_mbps, network.rtt_ms)


def _chunk_for(rate_bps: float) -> int:
    # about 2 ms of transfer per chunk (sleep granularity), between 1 KiB and 64 KiB
    return int(min(64 * 1024, max(1024, rate_bps * 0.002)))


def _paced(data: bytes, mbps: float) -> Iterator[bytes]:
    """``data`` in chunks, sleeping so that the whole takes at least ``len(data) * 8 / (mbps * 1e6)`` s."""
    rate = mbps * 1e6 / 8.0
    chunk = _chunk_for(rate)
    start = time.perf_counter()
    view = memoryview(data)
    for off in range(0, len(data), chunk):
        piece = bytes(view[off : off + chunk])
        yield piece
        wait = start + (off + len(piece)) / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


# ------------------------------------------------------------------ client
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
    an :class:`Emulation` (or a :class:`~jointdnn_edge.Network`) would.
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
        import httpx

        from .network import Network

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
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=self.timeout,
            transport=httpx.HTTPTransport(verify=verify, limits=limits, socket_options=nodelay),
        )
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
            import json

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
        import httpx

        start = time.perf_counter()
        emu = self.emulate
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - (time.perf_counter() - start)
            if remaining <= 0:
                raise DeadlineExceededError(f"{method} {path}: deadline of {deadline * 1e3:.0f} ms passed")
            t_send = time.perf_counter()
            try:
                if emu is not None and emu.rtt_ms > 0:
                    time.sleep(emu.rtt_ms / 1e3)
                content: Any = body
                if body is not None and emu is not None and emu.up_mbps is not None:
                    content = _paced(body, emu.up_mbps)
                request = self.http.build_request(
                    method, path, content=content, headers=headers, timeout=httpx.Timeout(remaining)
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
        """The response body, paced as the emulated download link would deliver it, within the deadline."""
        emu = self.emulate
        rate = emu.down_mbps * 1e6 / 8.0 if emu is not None and emu.down_mbps is not None else None
        declared = response.headers.get("content-length")
        if max_response is not None and declared is not None and declared.isdigit() and int(declared) > max_response:
            raise RemoteError(f"response of {declared} bytes is larger than the {max_response} expected", 200)
        chunks: list[bytes] = []
        total = 0
        t0 = time.perf_counter()
        for chunk in response.iter_raw(_chunk_for(rate) if rate else 65536):
            chunks.append(chunk)
            total += len(chunk)
            if max_response is not None and total > max_response:
                raise RemoteError(f"response is larger than the {max_response} bytes expected", 200)
            if rate:
                wait = t0 + total / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
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
    from urllib.parse import quote

    return quote(name, safe="")


def _retry_after(response: Any, attempt: int) -> float:
    value = response.headers.get("retry-after", "")
    base = float(value) if value.strip().isdigit() else 0.05 * 2 ** (attempt - 1)
    return min(base, 2.0)


def _raise_for_status(reply: _Reply) -> None:
    if reply.status == 200:
        return
    message = ""
    try:
        import json

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


# ------------------------------------------------------------------ slices
def response_limit(graph: ModelGraph, first: int, last: int) -> int:
    """The largest response body a split request for layers ``first..last`` may sensibly get back.

    Twice the raw size of the range's outputs (no codec makes data that much
    larger) plus room for the JSON header and the frame's records.
    """
    outs = graph.slice_io(first, last)[1]
    return 2 * sum(graph.tensor(n).nbytes for n in outs) + (1 << 16) + 64 * len(outs)


def decode_slice_outputs(
    graph: ModelGraph, first: int, last: int, frame: bytes
) -> tuple[dict[str, np.ndarray], list[FrameEntry]]:
    """The tensors of a split response frame for layers ``first..last``, and the frame's entries.

    Checks, before decoding any payload, that the frame holds exactly the
    tensors the range produces (``graph.slice_io(first, last)[1]``) with the
    model's dtypes and shapes, and decodes no more than their raw size.
    Raises :class:`~jointdnn_edge.RemoteError` for the wrong tensors and
    :class:`~jointdnn_edge.CodecError` for a corrupt frame.
    """
    from .codec import decode, read_headers

    outs = graph.slice_io(first, last)[1]
    expected = {n: graph.tensor(n) for n in outs}
    raw_out = sum(t.nbytes for t in expected.values())
    heads = read_headers(frame, max_bytes=raw_out)
    got = {h.name for h in heads}
    if got != set(outs) or len(heads) != len(outs):
        raise RemoteError(
            f"cloud returned tensors {sorted(got)} for layers {first}..{last} of {graph.name!r}, expected {outs}", 200
        )
    for h in heads:
        want = expected[h.name]
        dt = h.quant.dtype if h.quant is not None else h.dtype
        if tuple(h.shape) != tuple(want.shape) or np.dtype(dt) != np.dtype(want.dtype):
            raise RemoteError(
                f"cloud returned {h.name!r} as {np.dtype(dt)}{list(h.shape)}, "
                f"the model has {np.dtype(want.dtype)}{list(want.shape)}",
                200,
            )
    return decode(frame, max_bytes=raw_out), heads


class RemoteExecutor:
    """The executor protocol (``docs``: :mod:`jointdnn_edge.models.executor`) over split requests to a cloud server.

    Each :meth:`run` sends the range's input tensors to the server as one
    activation frame (:meth:`CloudClient.infer_slice`) and returns the
    tensors it answers with, checked against the model (names, dtypes,
    shapes). :meth:`run_timed` also returns the compute time the server
    reports, without the network, the codecs, queueing or the first-time
    set-up of a range; the profiler uses it to profile the cloud side of a
    cost table on the cloud itself::

        costs = profile(graph, cloud_executor=RemoteExecutor(CloudClient(url, token=token)))

    ``cloud``: a :class:`CloudClient` (closed by :meth:`close` only when this
    executor created it from a URL; ``token`` goes with a URL). ``model``:
    the name the server serves the model under (default: ``graph.name`` of
    each call). ``codec``/``level``: the activation codec both ways
    (lossless). ``deadline_s``: per request (default: the client's
    timeout). ``check_digest``: send the model digest, so that a server
    holding another model (or the same file loaded with other options)
    refuses with :class:`~jointdnn_edge.RemoteError` 409 instead of timing
    something else. Failures raise the client's typed
    :class:`~jointdnn_edge.TransportError` subclasses; nothing is retried that the
    client would not retry. Thread-safe.
    """

    runtime = "remote"

    def __init__(
        self,
        cloud: CloudClient | str,
        model: str | None = None,
        *,
        token: str | None = None,
        codec: str = "auto",
        level: int = 1,
        deadline_s: float | None = None,
        check_digest: bool = True,
    ) -> None:
        from .codec import CODECS

        if isinstance(cloud, str):
            cloud = CloudClient(cloud, token=token)
            self._owns_client = True
        else:
            if token is not None:
                raise ConfigError("token= goes with a URL; a CloudClient brings its own")
            self._owns_client = False
        if codec not in CODECS:
            raise ConfigError(f"unknown codec {codec!r}; choose one of {CODECS}")
        if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and deadline_s > 0):
            raise ConfigError(f"deadline_s must be a positive number of seconds or None, got {deadline_s!r}")
        self.client: CloudClient = cloud
        self.model = model
        self.codec = codec
        self.level = int(level)
        self.deadline_s = None if deadline_s is None else float(deadline_s)
        self.check_digest = bool(check_digest)
        self._served: str | None = model

    def run_timed(
        self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], float]:
        """Run layers ``first..last`` on the server: ``(outputs, compute_ms)`` as the server measured it."""
        resp, outputs = self._request(graph, first, last, feeds)
        return outputs, resp.compute_ms

    def run(self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run layers ``first..last`` on the server; inputs and outputs named as ``graph.slice_io`` says."""
        return self._request(graph, first, last, feeds)[1]

    def run_model(self, graph: ModelGraph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The whole model on the server (one split request for every layer): outputs by model output name."""
        return self.run(graph, 0, graph.n - 1, feeds)

    def prepare(self, graph: ModelGraph, first: int, last: int) -> PreparedRun:
        """Layers ``first..last`` bound to this executor (nothing is loaded here: the server caches its sessions)."""
        from .models.executor import PreparedRun

        self._check_range(graph, first, last)
        ins, outs = graph.slice_io(first, last)
        what = f"{self._name(graph)} layers {first}..{last} on {self.client.url}"
        return PreparedRun(lambda feeds: self.run(graph, first, last, feeds), list(ins), list(outs), what)

    def _name(self, graph: ModelGraph) -> str:
        return self.model if self.model is not None else graph.name

    @staticmethod
    def _check_range(graph: ModelGraph, first: int, last: int) -> None:
        if not 0 <= first <= last < graph.n:
            raise ExecutionError(f"layer range {first}..{last} is outside 0..{graph.n - 1} of {graph.name!r}")

    def _request(
        self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]
    ) -> tuple[SliceResponse, dict[str, np.ndarray]]:
        from .codec import encode

        self._check_range(graph, first, last)
        ins = graph.slice_io(first, last)[0]
        missing = [n for n in ins if n not in feeds]
        if missing:
            raise ExecutionError(f"layers {first}..{last} of {graph.name!r}: missing inputs {missing}")
        name = self._name(graph)
        frame = encode({n: np.asarray(feeds[n]) for n in ins}, codec=self.codec, level=self.level)
        resp = self.client.infer_slice(
            name,
            first,
            last,
            frame,
            codec=self.codec,
            level=self.level,
            digest=P.model_digest(graph) if self.check_digest else None,
            deadline_s=self.deadline_s,
            max_response_bytes=response_limit(graph, first, last),
        )
        outputs, _ = decode_slice_outputs(graph, first, last, resp.frame)
        self._served = name
        return resp, outputs

    def info(self) -> dict[str, Any]:
        """``runtime: "remote"``, the URL, codec, and what the server says of the model it ran (when reachable)."""
        out: dict[str, Any] = {
            "runtime": self.runtime,
            "url": self.client.url,
            "model": self._served,
            "codec": self.codec,
            "timing": "server-reported compute (jointdnn_compute_ms)",
        }
        try:
            server = self.client.server_metadata()
            out["server"] = {"name": server.get("name"), "version": server.get("version")}
            if self._served is not None:
                params = self.client.model_metadata(self._served).get("parameters") or {}
                out["server"].update({k[len("jointdnn_") :]: v for k, v in params.items() if k.startswith("jointdnn_")})
        except TransportError as e:
            out["server"] = f"unavailable: {e}"
        return out

    def close(self) -> None:
        """Close the client if this executor created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RemoteExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteExecutor({self.client.url!r}, model={self.model!r}, codec={self.codec!r})"
