"""What one request, and all of them together, may cost the server (:class:`Limits`), and admission to it.

Admission happens before a request's body is read: a request the server
would refuse (503) is refused on its headers, and the bytes of the bodies
being read and computed on are held to a budget.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..errors import ConfigError, ProtocolError

if TYPE_CHECKING:
    import anyio

__all__ = ["ENV_CONFIG", "Admission", "AdmissionLimiter", "Limits", "MiB", "limits_from_config"]

MiB = 1 << 20

T = TypeVar("T")

#: The environment variable holding a server's configuration for worker processes (see ``app_from_env``).
ENV_CONFIG = "JOINTDNN_EDGE_SERVE_CONFIG"


@dataclass(frozen=True)
class Limits:
    """What one request, and all requests together, may cost the server.

    ``max_body_bytes``: the request body as received (and again after HTTP
    ``Content-Encoding`` decompression); ``max_json_bytes``: its JSON part
    (further held, per model, to what a valid request can need);
    ``max_decoded_bytes``: the tensors a request may decode to (activation
    frames and JSON/binary tensors together); ``max_concurrency``: requests
    computing at once; ``max_queue``: requests admitted beyond that (reading
    their body or waiting for a slot; more are refused with 503, which
    clients may retry); ``max_inflight_bytes``: the bodies of all admitted
    requests together (a request whose ``Content-Length`` would pass it is
    refused with 503 before its body is read).

    Timeouts (seconds): ``header_timeout_s`` for a request's headers to
    arrive, counted from the connection (or the request's first byte on a
    kept-alive connection); ``body_timeout_s`` for its whole body, counted
    from the end of its headers (408); ``send_timeout_s`` for a response
    to be all sent, counted from when it first has to wait for the client
    to read it (then the connection is dropped). ``max_connections``: open connections
    at once; more are answered 503 and closed as they are accepted. The
    header timeout and the connection cap are enforced by the connection
    guard :func:`serve` and :class:`BackgroundServer` install in uvicorn,
    and so is the send timeout.
    """

    max_body_bytes: int = 64 * MiB
    max_json_bytes: int = 16 * MiB
    max_decoded_bytes: int = 256 * MiB
    max_concurrency: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    max_queue: int = 256
    max_inflight_bytes: int = 64 * MiB
    max_connections: int = 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_json_bytes",
            "max_decoded_bytes",
            "max_concurrency",
            "max_inflight_bytes",
            "max_connections",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.max_queue, int) or isinstance(self.max_queue, bool) or self.max_queue < 0:
            raise ConfigError(f"max_queue must be a non-negative integer, got {self.max_queue!r}")
        for name in ("header_timeout_s", "body_timeout_s", "send_timeout_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number of seconds, got {v!r}")


def limits_from_config(cfg: dict[str, Any]) -> Limits:
    """The :class:`Limits` whose fields ``cfg`` names (the others default); :class:`ConfigError` if one is bad."""
    values: dict[str, Any] = {}
    for f in fields(Limits):
        if f.name in cfg:
            try:
                values[f.name] = float(cfg[f.name]) if f.name.endswith("_s") else int(cfg[f.name])
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{ENV_CONFIG}: {f.name} must be a number ({e})") from None
    return Limits(**values)


def limits_from_env() -> Limits:
    """The :class:`Limits` of ``JOINTDNN_EDGE_SERVE_CONFIG`` (defaults when unset or without limits)."""
    try:
        cfg = json.loads(os.environ.get(ENV_CONFIG) or "{}")
    except ValueError as e:
        raise ConfigError(f"{ENV_CONFIG} is not valid JSON: {e}") from None
    return limits_from_config(cfg if isinstance(cfg, dict) else {})


class Admission:
    """One admitted request's share of the body budget; :meth:`hold` takes more of it as bytes arrive."""

    def __init__(self, limiter: AdmissionLimiter) -> None:
        self._limiter = limiter
        self.held = 0

    def hold(self, nbytes: int) -> None:
        """Hold ``nbytes`` more of the body budget; :class:`ProtocolError` (503) when the budget is spent."""
        limiter = self._limiter
        if limiter.inflight_bytes + nbytes > limiter.limits.max_inflight_bytes:
            raise ProtocolError(503, "server busy: too many request bytes in progress; retry later")
        limiter.inflight_bytes += nbytes
        self.held += nbytes


class AdmissionLimiter:
    """Admits requests before their bodies are read, and runs their work on worker threads.

    At most ``max_concurrency + max_queue`` requests are admitted at once
    (``pending``), their bodies together at most ``max_inflight_bytes``
    (``inflight_bytes``); beyond that a request is refused with 503. Of the
    admitted, ``max_concurrency`` compute at once. The counters are touched
    only on the event loop, so they need no lock.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.pending = 0
        self.inflight_bytes = 0
        self._slots: anyio.CapacityLimiter | None = None

    def _capacity(self) -> anyio.CapacityLimiter:
        # created on first use: an anyio limiter belongs to the running event loop
        if self._slots is None:
            import anyio

            self._slots = anyio.CapacityLimiter(self.limits.max_concurrency)
        return self._slots

    @asynccontextmanager
    async def admit(self, declared_bytes: int = 0) -> AsyncIterator[Admission]:
        """Admit one request whose body declares ``declared_bytes``; :class:`ProtocolError` (503) when too busy."""
        if self.pending >= self.limits.max_concurrency + self.limits.max_queue:
            raise ProtocolError(503, "server busy: too many requests in progress; retry later")
        admission = Admission(self)
        admission.hold(declared_bytes)
        self.pending += 1
        try:
            yield admission
        finally:
            self.pending -= 1
            self.inflight_bytes -= admission.held

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on a worker thread once a compute slot is free (call it within :meth:`admit`)."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(work, limiter=self._capacity())
