"""The circuit breaker of one cloud endpoint: closed, open for a jittered back-off, then half-open with one probe.

Every request a :class:`~jointdnn_edge.client.CloudClient` makes asks the
breaker first (:meth:`CircuitBreaker.admit`) and tells it how the request
ended. An outage counts once however many requests saw it: a failure counts
only when its request started after the breaker last changed state, so the
failures of requests already in flight when the circuit opened do not raise
the back-off again. The back-off is capped exponential with full jitter
(a random time in ``[0, min(cap, base * 2**k))``), so that separate clients
do not come back together.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "Ticket"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


@dataclass(frozen=True)
class Ticket:
    """A request the breaker let through: when it started (``time.monotonic()``) and whether it is the probe."""

    started: float
    probe: bool = False


class CircuitBreaker:
    """Closed / open / half-open health of one endpoint, safe to share between threads.

    ``base``/``cap``: seconds; the ``k``-th consecutive counted failure
    keeps the circuit open for ``min(cap, base * 2**(k-1))`` seconds, or for
    a uniformly random part of it when ``jitter`` (full jitter, the
    default). ``rng``: the random source (a fresh, OS-seeded one by default,
    so that no two clients draw alike).
    """

    def __init__(self, base: float, cap: float, *, jitter: bool = True, rng: random.Random | None = None) -> None:
        self.base = float(base)
        self.cap = float(cap)
        self.jitter = bool(jitter)
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._backoff: float | None = None
        self._changed = float("-inf")  # when the circuit last opened or closed
        self._probing = False
        self.last_error: str | None = None

    # ------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` (backing off) or ``"half-open"`` (the back-off is over: one probe may go)."""
        with self._lock:
            return self._state(time.monotonic())

    def _state(self, now: float) -> str:
        if self._failures == 0:
            return CLOSED
        return OPEN if now < self._open_until else HALF_OPEN

    @property
    def failures(self) -> int:
        """Consecutive counted failures (0 while closed): the back-off step the circuit is at."""
        with self._lock:
            return self._failures

    @property
    def available(self) -> bool:
        """Whether a request would be let through now (closed, or half-open with no probe in flight)."""
        if self._failures == 0:  # closed: one int read needs no lock (every inference asks; the lock costs µs cold)
            return True
        with self._lock:
            state = self._state(time.monotonic())
            return state == CLOSED or (state == HALF_OPEN and not self._probing)

    @property
    def down_for(self) -> float:
        """Seconds until the back-off is over (0 when closed or half-open)."""
        with self._lock:
            return max(0.0, self._open_until - time.monotonic()) if self._failures else 0.0

    @property
    def backoff_s(self) -> float | None:
        """The length of the current back-off (None while closed)."""
        with self._lock:
            return self._backoff if self._failures else None

    # ------------------------------------------------------------ requests
    def admit(self) -> Ticket | None:
        """A ticket for a request that may go now, or None: open, or half-open with its one probe in flight."""
        with self._lock:
            now = time.monotonic()
            state = self._state(now)
            if state == CLOSED:
                return Ticket(now)
            if state == OPEN or self._probing:
                return None
            self._probing = True
            return Ticket(now, probe=True)

    def succeeded(self, ticket: Ticket) -> None:
        """The endpoint answered ``ticket``'s request: a probe's answer closes the circuit."""
        with self._lock:
            if ticket.probe:
                self._probing = False
                self._close(time.monotonic())

    def failed(self, ticket: Ticket, reason: str) -> float:
        """``ticket``'s request met a cloud failure; returns the back-off now running (0 when closed).

        The failure counts (opens the circuit, or keeps it open one step
        longer) when the request is the probe or started after the circuit
        last changed state; otherwise it saw the outage already counted.
        """
        with self._lock:
            now = time.monotonic()
            if ticket.probe:
                self._probing = False
            if ticket.probe or ticket.started >= self._changed:
                self._open(now, reason)
            return max(0.0, self._open_until - now) if self._failures else 0.0

    def released(self, ticket: Ticket) -> None:
        """``ticket``'s request ended without saying anything of the endpoint: a probe frees its slot."""
        if ticket.probe:
            with self._lock:
                self._probing = False

    # ------------------------------------------------------------ by hand
    def mark_down(self, reason: str, started: float | None = None) -> float:
        """Count a failure of a request that started at ``started`` (``time.monotonic()``; default now).

        Returns the back-off now running (see :meth:`failed`).
        """
        return self.failed(Ticket(time.monotonic() if started is None else started), reason)

    def mark_up(self) -> None:
        """Close the circuit: the next failure backs off from the start again."""
        with self._lock:
            self._close(time.monotonic())

    # ------------------------------------------------------------ transitions
    def _open(self, now: float, reason: str) -> None:
        self._failures += 1
        step = min(self.cap, self.base * 2.0 ** (self._failures - 1))
        self._backoff = self._rng.uniform(0.0, step) if self.jitter else step
        self._open_until = now + self._backoff
        self._changed = now
        self.last_error = reason

    def _close(self, now: float) -> None:
        if self._failures:
            self._changed = now
        self._failures = 0
        self._open_until = 0.0
        self._backoff = None
