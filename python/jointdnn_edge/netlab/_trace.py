"""Link traces: bandwidth and round trip over time, from the lab's CSV format or Mahimahi's.

A trace is a step function: each point holds from its time until the next
point's. The CSV format is ``time_s,up_mbps,down_mbps,rtt_ms`` with optional
``jitter_ms`` and ``loss`` columns (a bandwidth of 0 is an outage). Mahimahi's
format (the one published cellular traces use) lists, one per line, the
millisecond at which the link may deliver one 1500-byte packet; the trace
repeats. It is turned into a rate per ``bin_ms`` window.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["SHIPPED_TRACES", "LinkPoint", "LinkTrace", "load_trace"]

#: The traces shipped with the package (``netlab/traces/NAME.csv``).
SHIPPED_TRACES = ("step", "ramp", "outage")
#: Bytes per delivery opportunity in a Mahimahi trace.
MAHIMAHI_PACKET_BYTES = 1500


@dataclass(frozen=True)
class LinkPoint:
    """The link from ``t_s`` on: bandwidths (Mbit/s; 0 = no link), round trip, jitter (ms), loss probability."""

    t_s: float
    up_mbps: float
    down_mbps: float
    rtt_ms: float
    jitter_ms: float = 0.0
    loss: float = 0.0

    @property
    def outage(self) -> bool:
        """Whether the link carries nothing in either direction."""
        return self.up_mbps <= 0 or self.down_mbps <= 0

    def to_dict(self) -> dict[str, float]:
        """Plain-JSON form."""
        return dict(self.__dict__)


class LinkTrace:
    """A link over time: :class:`LinkPoint` s in increasing time, the first at 0, lasting ``duration_s``."""

    def __init__(self, points: Sequence[LinkPoint], *, duration_s: float | None = None, name: str = "trace") -> None:
        pts = sorted(points, key=lambda p: p.t_s)
        if not pts:
            raise ConfigError("a link trace needs at least one point")
        if pts[0].t_s != 0:
            raise ConfigError(f"a link trace starts at time 0, this one at {pts[0].t_s} s")
        for p in pts:
            figures = (p.t_s, p.up_mbps, p.down_mbps, p.rtt_ms, p.jitter_ms, p.loss)
            if not all(math.isfinite(v) and v >= 0 for v in figures) or p.loss >= 1:
                raise ConfigError(f"bad trace point {p}: figures must be finite and >= 0, loss below 1")
        last = pts[-1].t_s
        self.duration_s = float(duration_s) if duration_s is not None else last + max(1.0, last / max(len(pts) - 1, 1))
        if self.duration_s <= last:
            raise ConfigError(f"duration {self.duration_s} s ends before the last point ({last} s)")
        self.points = pts
        self.name = name
        self._times = [p.t_s for p in pts]

    def at(self, t_s: float) -> LinkPoint:
        """The link at ``t_s`` seconds (the trace repeats after ``duration_s``)."""
        t = t_s % self.duration_s if t_s >= 0 else 0.0
        return self.points[bisect.bisect_right(self._times, t) - 1]

    def changes(self, until_s: float) -> list[tuple[float, LinkPoint]]:
        """Every point in ``[0, until_s)``, the trace repeated as needed: ``(time, point)``."""
        out: list[tuple[float, LinkPoint]] = []
        base = 0.0
        while base < until_s:
            out.extend((base + p.t_s, p) for p in self.points if base + p.t_s < until_s)
            base += self.duration_s
        return out

    def phases(self, until_s: float) -> list[tuple[float, float, LinkPoint]]:
        """Intervals of ``[0, until_s)`` with one link each, equal neighbours merged: ``(start, end, point)``."""
        merged: list[tuple[float, float, LinkPoint]] = []
        for t, p in self.changes(until_s):
            same = merged and _figures(merged[-1][2]) == _figures(p)
            if same:
                continue
            if merged:
                merged[-1] = (merged[-1][0], t, merged[-1][2])
            merged.append((t, until_s, p))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"name": self.name, "duration_s": self.duration_s, "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_csv(cls, path: str | Path, *, name: str | None = None) -> LinkTrace:
        """Read ``time_s,up_mbps,down_mbps,rtt_ms[,jitter_ms][,loss]`` (a header line; ``#`` comments).

        A last row with only ``time_s`` filled in (or ``end`` as up_mbps) ends the trace there.
        """
        path = Path(path)
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        rows = list(csv.DictReader(lines))
        need = {"time_s", "up_mbps", "down_mbps", "rtt_ms"}
        if not rows or not need <= set(rows[0]):
            raise ConfigError(f"{path}: a trace CSV needs the columns {sorted(need)}")
        points, end = [], None
        for i, row in enumerate(rows, 2):
            try:
                if not (row.get("up_mbps") or "").strip() or row["up_mbps"].strip() == "end":
                    end = float(row["time_s"])
                    continue
                points.append(
                    LinkPoint(
                        float(row["time_s"]),
                        float(row["up_mbps"]),
                        float(row["down_mbps"]),
                        float(row["rtt_ms"]),
                        float(row.get("jitter_ms") or 0.0),
                        float(row.get("loss") or 0.0),
                    )
                )
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{path}, line {i}: {e}") from None
        return cls(points, duration_s=end, name=name or path.stem)

    @classmethod
    def from_mahimahi(
        cls,
        up: str | Path,
        down: str | Path | None = None,
        *,
        rtt_ms: float = 40.0,
        bin_ms: float = 1000.0,
        name: str | None = None,
    ) -> LinkTrace:
        """Mahimahi traces (``down`` defaults to ``up``) as rates per ``bin_ms``, with a fixed round trip."""
        ups = _mahimahi_rates(Path(up), bin_ms)
        downs = _mahimahi_rates(Path(down), bin_ms) if down is not None else ups
        n = max(len(ups), len(downs))
        points = [
            LinkPoint(i * bin_ms / 1e3, ups[i % len(ups)], downs[i % len(downs)], float(rtt_ms)) for i in range(n)
        ]
        return cls(points, duration_s=n * bin_ms / 1e3, name=name or Path(up).stem)


def _figures(p: LinkPoint) -> tuple[float, ...]:
    return (p.up_mbps, p.down_mbps, p.rtt_ms, p.jitter_ms, p.loss)


def _mahimahi_rates(path: Path, bin_ms: float) -> list[float]:
    """Mbit/s per ``bin_ms`` window of a Mahimahi trace (its length rounded up to whole windows)."""
    try:
        stamps = [int(ln) for ln in path.read_text().split()]
    except ValueError as e:
        raise ConfigError(f"{path}: a Mahimahi trace has one integer millisecond per line ({e})") from None
    if not stamps or any(b < a for a, b in zip(stamps, stamps[1:])) or stamps[0] < 0:
        raise ConfigError(f"{path}: a Mahimahi trace lists non-decreasing milliseconds, at least one")
    bins = max(1, math.ceil(max(stamps[-1], 1) / bin_ms))
    counts = [0] * bins
    for s in stamps:
        counts[min(int(s // bin_ms), bins - 1)] += 1
    return [c * MAHIMAHI_PACKET_BYTES * 8 / (bin_ms * 1e3) for c in counts]


def load_trace(spec: str | Path, *, rtt_ms: float = 40.0) -> LinkTrace:
    """A shipped trace by name (``step``, ``ramp``, ``outage``), a CSV file, or a Mahimahi file (any other file)."""
    if str(spec) in SHIPPED_TRACES:
        ref = resources.files(__package__) / "traces" / f"{spec}.csv"
        with resources.as_file(ref) as path:
            return LinkTrace.from_csv(path, name=str(spec))
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"trace {spec!r}: not one of {SHIPPED_TRACES} and no such file")
    if path.suffix.lower() == ".csv":
        return LinkTrace.from_csv(path)
    return LinkTrace.from_mahimahi(path, rtt_ms=rtt_ms)
