"""The bandwidth and round-trip estimator the session plans with, fed by every transfer the client makes."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["BandwidthEstimator"]


#: Held samples whose sizes vary less than this (weighted standard deviation over mean) give no fitted line.
MIN_SIZE_SPREAD = 0.25
#: A line is fitted only through at least this many held samples on each side of their mean size.
MIN_SIDE_SAMPLES = 2
#: A sample whose time the offset would stretch more than this factor is no rate sample: the burst carried most of it,
#: and the rest is too short to time (a line through noise can be steep, too). Capped at this factor instead, a split
#: upload just over the burst (10.5 kB on the lab's Wi-Fi, 9.4 kB burst) read 2.5 times the rate, and eight of them
#: a step to 10 times it. It still feeds the line.
MAX_FIT_RATIO = 4.0
#: A line leaves the offset as it is when a held sample lies further from it than this share of the sample's time:
#: the line does not describe the link (in the network lab, one upload caught by the end of an outage took 0.49 s
#: where its size took 0.27; the line through it and the next, smaller uploads gave -62 ms, which read an 18.9 Mbit/s
#: link at 8-11 and kept the session off the schedule it should have run).
MAX_FIT_RESIDUAL = 0.25


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
    off.

    Size: a shaper lets a burst through at line rate and TCP's slow start
    holds a new flow back, so a transfer's time is not proportional to its
    bytes, and a rate measured on one size misprices another (in the lab, on
    an 18.9 Mbit/s link whose shaper passes 9.4 kB at once, 13 kB uploads
    read 45 Mbit/s and 206 kB ones 18.8, enough to pick the worse of two
    splits, and to take a probe after small requests for a step). So a
    transfer is modelled as ``seconds = offset + bytes / rate``. When the held
    samples of a kind differ in size (weighted coefficient of variation at
    least :data:`MIN_SIZE_SPREAD`, and :data:`MIN_SIDE_SAMPLES` of them on
    each side of the mean size, and the line within :data:`MAX_FIT_RESIDUAL`
    of each), ``offset`` is the intercept of their
    weighted least-squares line when that is negative (a burst's credit),
    else 0: a link that changed within the window makes a positive one
    (large transfers timed on the fast link, small ones on the slow), which
    would hide the change. It is kept while later samples are of one size,
    and set back to 0 at a step. Every rule above works on the samples'
    rates with the offset taken out, ``bytes / (seconds - offset)``, so the
    estimate is the link's rate at the margin; a sample that this would
    stretch more than :data:`MAX_FIT_RATIO` times (the burst carried most of
    it) is no rate sample, and with none left the estimate stands; :meth:`offsets_ms` gives the offsets, and
    :meth:`network` the bursts they stand for. Thread-safe.
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
        # (bytes, seconds) of each held bandwidth sample, the newest on the right
        self._held: dict[str, deque[tuple[float, float]]] = {
            "up": deque(maxlen=self.window),
            "down": deque(maxlen=self.window),
        }
        self._offset = {"up": 0.0, "down": 0.0}  # seconds: see the class docstring
        # bytes the link passes at once, the fitted line's crossing of the bytes axis (None: no line fitted since the
        # last step; network() then keeps the radio's)
        self._burst: dict[str, float | None] = {"up": None, "down": None}
        self._estimate: dict[str, float | None] = {"up": None, "down": None}  # Mbit/s, worked out at each sample
        self._rtt: deque[float] = deque(maxlen=self.window)
        self._taken = {"up": 0, "down": 0, "rtt": 0}
        # time.monotonic() of the newest sample held, by kind (None: none held)
        self._sampled_at: dict[str, float | None] = {"up": None, "down": None, "rtt": None}
        self._lock = threading.Lock()

    def add_transfer(self, direction: str, nbytes: float, seconds: float) -> bool:
        """Record ``nbytes`` moved ``"up"`` or ``"down"`` in ``seconds`` of network time; False if not a sample."""
        if direction not in ("up", "down"):
            raise ConfigError(f"direction must be 'up' or 'down', got {direction!r}")
        if nbytes < max(self.min_bytes, 1) or not (seconds > 0 and math.isfinite(seconds)):
            return False
        sample = (float(nbytes), float(seconds))
        with self._lock:
            held = self._held[direction]
            estimate, drop = self._estimate[direction], self.drop_factor
            offset = self._offset[direction]
            if drop is not None and estimate is not None and _timed(sample, offset):
                if _rate(sample, offset) * drop < estimate:
                    self._step(direction, 0)  # a drop this large is a step (see the class docstring)
            held.append(sample)
            self._taken[direction] += 1
            self._sampled_at[direction] = time.monotonic()
            self._refit(direction)
            if self._moved(self._rates(direction), self._harmonic):  # a step (see the class docstring)
                self._step(direction, self.shift_samples)
                self._refit(direction)
            # held samples the burst carried are no rate samples: with none left, the estimate stands
            self._estimate[direction] = self._harmonic(self._rates(direction)) or self._estimate[direction]
        return True

    def add_rtt(self, seconds: float) -> bool:
        """Record one round trip of ``seconds`` (a small request's time minus the server's); False if unusable."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            return False
        with self._lock:
            self._rtt.append(seconds * 1e3)
            self._taken["rtt"] += 1
            self._sampled_at["rtt"] = time.monotonic()
            self._forget_before_step(self._rtt, statistics.median)
        return True

    def _moved(self, values: Sequence[float], estimate: Callable[[Sequence[float]], float | None]) -> bool:
        """Whether the newest ``shift_samples`` of ``values`` all lie past ``shift_factor`` of what ``estimate`` makes
        of the older ones (see the class docstring)."""
        k, f = self.shift_samples, self.shift_factor
        if f is None or len(values) <= k:
            return False
        before = estimate(values[:-k])
        if before is None or before <= 0:
            return False
        recent = values[-k:]
        return all(x > before * f for x in recent) or all(x < before / f for x in recent)

    def _forget_before_step(self, samples: deque[float], estimate: Callable[[Sequence[float]], float | None]) -> None:
        """Drop the samples older than the newest ``shift_samples`` when those all moved past ``shift_factor``."""
        if self._moved(list(samples), estimate):
            _keep_newest(samples, self.shift_samples)

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

    def _rates(self, direction: str) -> list[float]:
        """The held samples' rates (Mbit/s), oldest first, with the offset taken out; samples the offset would stretch
        more than :data:`MAX_FIT_RATIO` left out."""
        offset = self._offset[direction]
        return [_rate(sample, offset) for sample in self._held[direction] if _timed(sample, offset)]

    def _step(self, direction: str, keep: int) -> None:
        """The link changed: keep only the newest ``keep`` samples, and the offset learned before is void."""
        _keep_newest(self._held[direction], keep)
        self._offset[direction] = 0.0
        self._burst[direction] = None

    def _refit(self, direction: str) -> None:
        """Set the offset to the intercept of the weighted line through the held samples when their sizes differ
        enough to tell it from the rate (see the class docstring); else leave it."""
        points = list(self._held[direction])
        sw = sx = sy = 0.0
        w = 1.0
        for x, y in reversed(points):  # newest first, the weights of _harmonic
            sw, sx, sy = sw + w, sx + w * x, sy + w * y
            w *= self.decay
        if sw == 0:
            return
        mx, my = sx / sw, sy / sw
        vxx = vxy = 0.0
        w = 1.0
        for x, y in reversed(points):
            vxx += w * (x - mx) ** 2
            vxy += w * (x - mx) * (y - my)
            w *= self.decay
        below = sum(x < mx for x, _ in points)
        if min(below, len(points) - below) < MIN_SIDE_SAMPLES:
            return  # one odd sample (a request slowed by something else than the link) would make the line
        if vxx > 0 and vxy > 0 and math.sqrt(vxx / sw) >= MIN_SIZE_SPREAD * mx:
            slope = vxy / vxx
            intercept = my - slope * mx
            if any(abs(y - intercept - slope * x) > MAX_FIT_RESIDUAL * y for x, y in points):
                return  # a sample the line does not describe (see MAX_FIT_RESIDUAL)
            # Only a burst's credit is learnt. A positive intercept is what a link that changed within the window
            # shows (on the lab's ramp down, large uploads timed on the fast link and small ones on the slow:
            # +tens of ms, which hid the fall), as well as slow start; it is taken for neither.
            self._offset[direction] = min(0.0, intercept)
            # the burst in bytes (a bucket's depth, which does not move with the rate): where the line crosses zero
            # time
            self._burst[direction] = max(0.0, -intercept) / slope

    @property
    def up_mbps(self) -> float | None:
        """Upload bandwidth estimate (None before the first sample)."""
        with self._lock:
            return self._estimate["up"]

    @property
    def down_mbps(self) -> float | None:
        """Download bandwidth estimate (None before the first sample)."""
        with self._lock:
            return self._estimate["down"]

    def offsets_ms(self) -> dict[str, float]:
        """The transfer offsets, ms, by direction: what a transfer costs beyond its bytes at the rate (negative: a
        burst let through; 0.0 until samples of different sizes have shown one)."""
        with self._lock:
            return {d: offset * 1e3 for d, offset in self._offset.items()}

    @property
    def rtt_ms(self) -> float | None:
        """Round-trip estimate in ms (None before the first sample)."""
        with self._lock:
            return statistics.median(self._rtt) if self._rtt else None

    def age_s(self, kind: str) -> float | None:
        """Seconds since the newest sample of ``kind`` (``"up"``, ``"down"`` or ``"rtt"``) held; None when none is.

        A session asks this when to measure again: a transfer too small to
        be a bandwidth sample measures nothing, and one large enough is no
        round-trip sample, so a schedule can leave any estimate unmeasured.
        """
        at = self._sampled_at[kind]  # one read of one dict item: no lock on the session's hot path
        return None if at is None else time.monotonic() - at

    def counts(self) -> dict[str, int]:
        """Samples currently held, by kind."""
        with self._lock:
            return {"up": len(self._held["up"]), "down": len(self._held["down"]), "rtt": len(self._rtt)}

    def taken(self) -> dict[str, int]:
        """Samples recorded since this estimator was made, by kind (held or since dropped: a measure of activity)."""
        with self._lock:
            return dict(self._taken)

    def network(self, radio: Network) -> Network:
        """``radio`` (a :class:`~jointdnn_edge.Network` for its power model) with the estimated link.

        Bandwidths without samples keep ``radio``'s; ``rtt_ms`` becomes half
        the estimated round trip, because the planner charges ``rtt_ms`` per
        platform switch and one request (a round trip) makes two switches.
        A negative offset (:meth:`offsets_ms`) is a burst's credit: the link
        passes the bytes where the fitted line crosses zero time at once
        (``-offset`` times the line's rate). They become the link's
        ``burst_up_bytes`` / ``burst_down_bytes``, which the planner credits
        once per request and direction (each cloud run is one upload and one
        download), so that a small split's upload is priced at what it costs,
        not at the rate alone. Bursts are in bytes, as a shaper's bucket is,
        and change only when a line is fitted again, not with every sample
        that moves the rate. A direction with no line fitted since its last
        step keeps ``radio``'s burst (a fitted line that shows none gives 0).
        """
        with self._lock:
            up, down = self._estimate["up"], self._estimate["down"]
            burst_up, burst_down = self._burst["up"], self._burst["down"]
            rtt = statistics.median(self._rtt) if self._rtt else None
        return replace(
            radio,
            up_mbps=float(up if up is not None else radio.up_mbps),
            down_mbps=float(down if down is not None else radio.down_mbps),
            rtt_ms=float(rtt / 2.0 if rtt is not None else radio.rtt_ms),
            burst_up_bytes=float(burst_up if burst_up is not None else radio.burst_up_bytes),
            burst_down_bytes=float(burst_down if burst_down is not None else radio.burst_down_bytes),
        )

    def forget_rtt(self, keep: int = 0) -> None:
        """Forget the round-trip samples (shown stale) but the newest ``keep``; with none left, the next plan
        measures the round trip again."""
        with self._lock:
            _keep_newest(self._rtt, keep)
            if not self._rtt:
                self._sampled_at["rtt"] = None

    def reset(self) -> None:
        """Forget every sample."""
        with self._lock:
            for direction, held in self._held.items():
                held.clear()
                self._offset[direction] = 0.0
                self._burst[direction] = None
                self._estimate[direction] = None
            self._rtt.clear()
            self._sampled_at = dict.fromkeys(self._sampled_at)

    def __repr__(self) -> str:
        def f(x: float | None) -> str:
            return "?" if x is None else f"{x:.3g}"

        up, down, rtt = f(self.up_mbps), f(self.down_mbps), f(self.rtt_ms)
        return f"BandwidthEstimator(up={up} Mbit/s, down={down} Mbit/s, rtt={rtt} ms)"


def _keep_newest(samples: deque[Any], keep: int) -> None:
    """Drop all but the newest ``keep`` of ``samples`` (all of them when ``keep`` <= 0; none when it exceeds them)."""
    recent = list(samples)[-keep:] if keep > 0 else []
    samples.clear()
    samples.extend(recent)


def _rate(sample: tuple[float, float], offset: float) -> float:
    """Mbit/s of a ``(bytes, seconds)`` sample with ``offset`` (<= 0) seconds taken out."""
    nbytes, seconds = sample
    return 8.0 * nbytes / (seconds - offset) / 1e6


def _timed(sample: tuple[float, float], offset: float) -> bool:
    """Whether the sample is a rate sample with ``offset`` taken out: its time stretched at most :data:`MAX_FIT_RATIO`
    times (a transfer the burst carried most of is not)."""
    return sample[1] - offset <= sample[1] * MAX_FIT_RATIO
