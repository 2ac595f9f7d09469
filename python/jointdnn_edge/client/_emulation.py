"""A slower link than the real one, emulated by an httpx transport that wraps the transport doing the I/O.

The loopback is faster than any mobile network. :class:`EmulatedTransport`
composes with the real transport the way httpx composes transports: it waits
the emulated round trip before each request and paces the request body and
the response body to the emulated bandwidths, so the client (and the
:class:`~jointdnn_edge.BandwidthEstimator` it feeds) sees the emulated link
without knowing it is emulated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ..errors import ConfigError
from ._deadline import sleep_within_budget

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["EmulatedTransport", "Emulation"]


@dataclass(frozen=True)
class Emulation:
    """A slower link emulated by pacing: transfers take at least ``bytes * 8 / mbps``; each request adds ``rtt_ms``.

    Uploads are streamed in chunks with sleeps between them, downloads are
    read in chunks the same way, so the time a transfer takes (and what the
    :class:`~jointdnn_edge.BandwidthEstimator` measures) is what the
    emulated link would give, as long as the real link is faster. ``None``
    leaves a direction unpaced. ``burst_up_bytes`` / ``burst_down_bytes``:
    the first bytes of each request / response pass unpaced, as a shaper's
    token bucket passes its depth at once (a transfer of ``b`` bytes then
    takes ``max(0, b - burst) * 8 / mbps``). Every body gets the whole
    burst, as from a bucket that refilled since the last one; a real bucket
    refills at the rate, so requests back to back get less from it.
    """

    up_mbps: float | None = None
    down_mbps: float | None = None
    rtt_ms: float = 0.0
    burst_up_bytes: float = 0.0
    burst_down_bytes: float = 0.0

    def __post_init__(self) -> None:
        for name in ("up_mbps", "down_mbps"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"Emulation.{name} must be a positive number or None, got {v!r}")
        for name in ("rtt_ms", "burst_up_bytes", "burst_down_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"Emulation.{name} must be >= 0, got {v!r}")

    @classmethod
    def of(cls, network: Network) -> Emulation:
        """The bandwidths, round trip and bursts of a :class:`~jointdnn_edge.Network` (``Network.preset("3g")``)."""
        return cls(network.up_mbps, network.down_mbps, network.rtt_ms, *network.burst)


class EmulatedTransport(httpx.BaseTransport):
    """``inner`` (the transport that does the I/O) as seen over the slower link of ``emulation``.

    Each request first waits ``emulation.rtt_ms``; its body is sent at no
    more than ``emulation.up_mbps`` and the response body delivered at no
    more than ``emulation.down_mbps``. Everything else (connections, TLS,
    timeouts, the response's extensions) is ``inner``'s. Closing closes
    ``inner``.
    """

    def __init__(self, inner: httpx.BaseTransport, emulation: Emulation) -> None:
        self.inner = inner
        self.emulation = emulation

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through ``inner`` after the emulated round trip, both bodies paced."""
        emu = self.emulation
        if emu.rtt_ms > 0:
            sleep_within_budget(emu.rtt_ms / 1e3)  # the wait counts against the request's deadline
        if emu.up_mbps is not None:
            request = httpx.Request(
                request.method,
                request.url,
                headers=request.headers,
                stream=PacedStream(_sync(request.stream), emu.up_mbps, emu.burst_up_bytes),
                extensions=request.extensions,
            )
        response = self.inner.handle_request(request)
        if emu.down_mbps is None:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=PacedStream(_sync(response.stream), emu.down_mbps, emu.burst_down_bytes),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the wrapped transport (its connection pool)."""
        self.inner.close()


class PacedStream(httpx.SyncByteStream):
    """The bytes of ``inner`` in chunks of about 2 ms, each delivered no sooner than a ``mbps`` link would, the first
    ``burst_bytes`` at once.

    The clock starts at the first chunk, so the whole takes at least
    ``max(0, bytes - burst_bytes) * 8 / (mbps * 1e6)`` seconds from there.
    """

    def __init__(self, inner: Iterable[bytes], mbps: float, burst_bytes: float = 0.0) -> None:
        self.inner = inner
        self.rate = mbps * 1e6 / 8.0  # bytes per second
        self.burst = burst_bytes

    def __iter__(self) -> Iterator[bytes]:
        chunk = _chunk_for(self.rate)
        start: float | None = None
        delivered = 0
        for data in self.inner:
            view = memoryview(data)
            for off in range(0, len(view), chunk):
                piece = bytes(view[off : off + chunk])
                if start is None:
                    start = time.perf_counter()
                delivered += len(piece)
                wait = start + max(0.0, delivered - self.burst) / self.rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                yield piece

    def close(self) -> None:
        """Close the wrapped stream (a response's stream releases its connection)."""
        if isinstance(self.inner, httpx.SyncByteStream):
            self.inner.close()


def _chunk_for(rate: float) -> int:
    # about 2 ms of transfer per chunk (sleep granularity), between 1 KiB and 64 KiB
    return int(min(64 * 1024, max(1024, rate * 0.002)))


def _sync(stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> httpx.SyncByteStream:
    """``stream`` as the synchronous stream a synchronous transport is given (TypeError for an async one)."""
    if not isinstance(stream, httpx.SyncByteStream):
        raise TypeError(f"EmulatedTransport is synchronous; got an {type(stream).__name__} body")
    return stream
