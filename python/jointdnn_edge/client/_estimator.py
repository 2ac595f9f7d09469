"""The bandwidth and round-trip estimator the session plans with, fed by every transfer the client makes."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["BandwidthEstimator"]


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

    A step: when the newest ``shift_samples`` samples of a kind all lie more
    than ``shift_factor`` times above, or all below, what the older samples
    estimate, the link has changed and the older samples are dropped. On a
    shaped link a step from 3G to Wi-Fi otherwise took about six samples to
    show halfway (the harmonic mean holds on to the slow ones), and a round
    trip that fell from 80 to 10 ms took half the window. One burst, or one
    stall, is still only one sample. ``shift_factor=None`` turns this off.

    Slow news travels faster: a single bandwidth sample more than
    ``drop_factor`` times below what the held samples estimate is taken as
    a step at once (the older samples are dropped). The two errors cost
    differently: a stall taken for a step keeps the session on the device a
    little longer than needed (where it is never worse than mobile-only),
    while a real drop left to a second sample sends the next inference over
    the slow link with a plan made for the fast one (on the lab's 4G -> 3G
    step, 629 ms against 577 on the phone). ``drop_factor=None`` turns this
    off. Thread-safe.
    """

    def __init__(
        self,
        *,
        window: int = 8,
        decay: float = 0.7,
        min_bytes: int = 8192,
        shift_factor: float | None = 2.0,
        shift_samples: int = 2,
        drop_factor: float | None = 3.0,
    ) -> None:
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        if not 0 < decay <= 1:
            raise ConfigError(f"decay must be in (0, 1], got {decay}")
        if min_bytes < 0:
            raise ConfigError(f"min_bytes must be >= 0, got {min_bytes}")
        if shift_factor is not None and not (math.isfinite(shift_factor) and shift_factor > 1):
            raise ConfigError(f"shift_factor must be a finite number > 1 or None, got {shift_factor}")
        if shift_samples < 1:
            raise ConfigError(f"shift_samples must be >= 1, got {shift_samples}")
        if drop_factor is not None and not (math.isfinite(drop_factor) and drop_factor > 1):
            raise ConfigError(f"drop_factor must be a finite number > 1 or None, got {drop_factor}")
        self.drop_factor = None if drop_factor is None else float(drop_factor)
        self.shift_factor = None if shift_factor is None else float(shift_factor)
        self.shift_samples = int(shift_samples)
        self.window = int(window)
        self.decay = float(decay)
        self.min_bytes = int(min_bytes)
        self._up: deque[float] = deque(maxlen=self.window)
        self._down: deque[float] = deque(maxlen=self.window)
        self._rtt: deque[float] = deque(maxlen=self.window)
        self._taken = {"up": 0, "down": 0, "rtt": 0}
        self._rtt_at: float | None = None  # time.monotonic() of the newest round-trip sample held
        self._lock = threading.Lock()

    def add_transfer(self, direction: str, nbytes: float, seconds: float) -> bool:
        """Record ``nbytes`` moved ``"up"`` or ``"down"`` in ``seconds`` of network time; False if not a sample."""
        if direction not in ("up", "down"):
            raise ConfigError(f"direction must be 'up' or 'down', got {direction!r}")
        if nbytes < max(self.min_bytes, 1) or not (seconds > 0 and math.isfinite(seconds)):
            return False
        mbps = 8.0 * nbytes / seconds / 1e6
        with self._lock:
            samples = self._up if direction == "up" else self._down
            drop = self.drop_factor
            if drop is not None and samples and mbps * drop < (self._harmonic(samples) or 0.0):
                samples.clear()  # a drop this large is a step (see the class docstring), not to be averaged in
            samples.append(mbps)
            self._taken[direction] += 1
            self._forget_before_step(samples, self._harmonic)
        return True

    def add_rtt(self, seconds: float) -> bool:
        """Record one round trip of ``seconds`` (a small request's time minus the server's); False if unusable."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            return False
        with self._lock:
            self._rtt.append(seconds * 1e3)
            self._taken["rtt"] += 1
            self._rtt_at = time.monotonic()
            self._forget_before_step(self._rtt, statistics.median)
        return True

    def _forget_before_step(self, samples: deque[float], estimate: Callable[[Sequence[float]], float | None]) -> None:
        """Drop the samples older than the newest ``shift_samples`` when those all moved past ``shift_factor``."""
        k, f = self.shift_samples, self.shift_factor
        if f is None or len(samples) <= k:
            return
        held = list(samples)
        before = estimate(held[:-k])
        if before is None or before <= 0:
            return
        recent = held[-k:]
        if all(x > before * f for x in recent) or all(x < before / f for x in recent):
            samples.clear()
            samples.extend(recent)

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

    @property
    def rtt_age_s(self) -> float | None:
        """Seconds since the newest round-trip sample held (None when none is held).

        Transfers large enough to be bandwidth samples are no round-trip
        samples: a session whose every request is large measures its round
        trip only by pinging, and asks this when to ping again.
        """
        at = self._rtt_at  # one read of one attribute: no lock on the session's hot path
        return None if at is None else time.monotonic() - at

    def counts(self) -> dict[str, int]:
        """Samples currently held, by kind."""
        with self._lock:
            return {"up": len(self._up), "down": len(self._down), "rtt": len(self._rtt)}

    def taken(self) -> dict[str, int]:
        """Samples recorded since this estimator was made, by kind (held or since dropped: a measure of activity)."""
        with self._lock:
            return dict(self._taken)

    def network(self, radio: Network) -> Network:
        """``radio`` (a :class:`~jointdnn_edge.Network` for its power model) with the estimated link.

        Bandwidths without samples keep ``radio``'s; ``rtt_ms`` becomes half
        the estimated round trip, because the planner charges ``rtt_ms`` per
        platform switch and one request (a round trip) makes two switches.
        """
        up, down, rtt = self.up_mbps, self.down_mbps, self.rtt_ms
        return replace(
            radio,
            up_mbps=float(up if up is not None else radio.up_mbps),
            down_mbps=float(down if down is not None else radio.down_mbps),
            rtt_ms=float(rtt / 2.0 if rtt is not None else radio.rtt_ms),
        )

    def forget_rtt(self) -> None:
        """Forget the round-trip samples (shown stale), so that the next plan measures the round trip again."""
        with self._lock:
            self._rtt.clear()
            self._rtt_at = None

    def reset(self) -> None:
        """Forget every sample."""
        with self._lock:
            self._up.clear()
            self._down.clear()
            self._rtt.clear()
            self._rtt_at = None

    def __repr__(self) -> str:
        def f(x: float | None) -> str:
            return "?" if x is None else f"{x:.3g}"

        up, down, rtt = f(self.up_mbps), f(self.down_mbps), f(self.rtt_ms)
        return f"BandwidthEstimator(up={up} Mbit/s, down={down} Mbit/s, rtt={rtt} ms)"
