"""What one request may cost the server (:class:`Limits`), and the admission of requests to compute."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar

from ..errors import ConfigError, ProtocolError

if TYPE_CHECKING:
    import anyio

__all__ = ["AdmissionLimiter", "Limits", "MiB"]

MiB = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one request may cost the server.

    ``max_body_bytes``: the request body as received (and again after HTTP
    ``Content-Encoding`` decompression); ``max_json_bytes``: its JSON part;
    ``max_decoded_bytes``: the tensors a request may decode to (activation
    frames and JSON/binary tensors together); ``max_concurrency``: requests
    computing at once; ``max_queue``: requests waiting for a slot beyond that
    (more are refused with 503, which clients may retry).
    """

    max_body_bytes: int = 64 * MiB
    max_json_bytes: int = 16 * MiB
    max_decoded_bytes: int = 256 * MiB
    max_concurrency: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    max_queue: int = 256

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_json_bytes", "max_decoded_bytes", "max_concurrency"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError(f"max_queue must be a non-negative integer, got {self.max_queue!r}")


class AdmissionLimiter:
    """Runs requests' work on worker threads, ``max_concurrency`` at once, and refuses (503) beyond the queue.

    ``pending`` counts requests admitted and not finished; it is touched only
    on the event loop, so it needs no lock.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.pending = 0
        self._slots: anyio.CapacityLimiter | None = None

    def _capacity(self) -> anyio.CapacityLimiter:
        # created on first use: an anyio limiter belongs to the running event loop
        if self._slots is None:
            import anyio

            self._slots = anyio.CapacityLimiter(self.limits.max_concurrency)
        return self._slots

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` on a worker thread once a compute slot is free; :class:`ProtocolError` (503) when too busy."""
        import anyio.to_thread

        if self.pending >= self.limits.max_concurrency + self.limits.max_queue:
            raise ProtocolError(503, "server busy: too many requests in progress; retry later")
        self.pending += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._capacity())
        finally:
            self.pending -= 1
