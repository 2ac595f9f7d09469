"""The measured spread of a profiled cost table, and what it is used for.

The profiler times every group ``repeats`` times and keeps the median as the
group's cost. :class:`GroupSpread` keeps, beside it, the band the timed runs
fell in: their first and third quartiles *relative to the median*
(``lo <= 1 <= hi``). Quartiles, not the 10th and 90th percentiles: of the
five runs a profile takes by default those are nearly the fastest and the
slowest run, and on a shared machine one preempted run makes the slowest
tens of times the median; the quartiles stay where a second profile's median
is likely to fall. Relative, so the band stays true when a table is
rescaled (a calibrated profile, ``cloud_slowdown``, ``CostTable.replace``
with new byte counts). It lives in ``table.meta["spread"]`` as plain JSON and
so survives :meth:`CostTable.save` / :meth:`CostTable.load`.

Two uses:

* :func:`clamp_low_outliers`: a group can never take less time than a group
  it contains (it does all of that group's work and more). A group whose
  whole band lies below the band of a group it contains was timed on a lucky
  run; its median is raised to the contained group's, so that the planner's
  minimum over groupings does not pick it for its luck.
* :func:`resample`: a table whose every group cost is redrawn within its
  band (the planner's stability report, :func:`jointdnn_edge.planner.stability`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .costs import CostTable
from .errors import CostTableError

__all__ = [
    "SPREAD_KEY",
    "SPREAD_QUANTILES",
    "SPREAD_STATISTIC",
    "GroupSpread",
    "Clamped",
    "clamp_low_outliers",
    "resample",
]

#: where a table keeps its spread: ``table.meta[SPREAD_KEY]``
SPREAD_KEY = "spread"
#: the percentiles of the timed runs a band spans
SPREAD_QUANTILES = (25.0, 75.0)
#: what the bands are
SPREAD_STATISTIC = "p25 and p75 of the timed runs (linear interpolation), divided by their median"


def _band(name: str, a: Any, n: int) -> np.ndarray:
    m = np.array(a, dtype=np.float64)
    if m.shape != (n, n):
        raise CostTableError(f"spread {name} must be {n}x{n}, got shape {m.shape}")
    return m


@dataclass(frozen=True, eq=False)
class GroupSpread:
    """Per group, the band its timed runs fell in, relative to its median (``lo <= 1 <= hi``).

    ``mobile_lo`` / ``mobile_hi`` are ``N x N`` (read for ``j >= i``; 1 where
    a group is not offered). ``cloud_lo`` / ``cloud_hi`` are ``None`` when the
    cloud costs were derived from the same runs as the mobile costs (scaled
    or mapped onto a device model): then a lucky mobile run made the cloud
    cost lucky too, and :func:`resample` moves both together.
    """

    mobile_lo: np.ndarray
    mobile_hi: np.ndarray
    cloud_lo: np.ndarray | None = None
    cloud_hi: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.mobile_lo.shape[0] if self.mobile_lo.ndim == 2 else -1
        bands = [("mobile_lo", self.mobile_lo), ("mobile_hi", self.mobile_hi)]
        if (self.cloud_lo is None) != (self.cloud_hi is None):
            raise CostTableError("spread: give both cloud_lo and cloud_hi, or neither")
        if self.cloud_lo is not None and self.cloud_hi is not None:
            bands += [("cloud_lo", self.cloud_lo), ("cloud_hi", self.cloud_hi)]
        for name, band in bands:
            checked = _band(name, band, n)
            checked.setflags(write=False)
            object.__setattr__(self, name, checked)
        for lo, hi in self._pairs():
            upper = np.triu(np.ones((n, n), dtype=bool))
            if not (np.isfinite(lo[upper]).all() and np.isfinite(hi[upper]).all()):
                raise CostTableError("spread bands must be finite")
            if (lo[upper] <= 0).any() or (lo[upper] > 1).any() or (hi[upper] < 1).any():
                raise CostTableError("spread bands must satisfy 0 < lo <= 1 <= hi (relative to the median)")

    def _pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = [(self.mobile_lo, self.mobile_hi)]
        if self.cloud_lo is not None and self.cloud_hi is not None:
            pairs.append((self.cloud_lo, self.cloud_hi))
        return pairs

    @property
    def n(self) -> int:
        """Number of layers."""
        return int(self.mobile_lo.shape[0])

    @property
    def cloud_follows_mobile(self) -> bool:
        """True when the cloud costs came from the mobile runs (no band of their own)."""
        return self.cloud_lo is None

    @classmethod
    def zero(cls, n: int) -> GroupSpread:
        """No spread at all (every band is the median itself)."""
        ones = np.ones((n, n))
        return cls(ones, ones)

    # ------------------------------------------------------------- the table's meta
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (upper triangles, as :meth:`CostTable.to_dict` writes its matrices)."""

        def tri(m: np.ndarray) -> list[list[float]]:
            return [[float(m[i, j]) for j in range(i, self.n)] for i in range(self.n)]

        d: dict[str, Any] = {
            "statistic": SPREAD_STATISTIC,
            "n": self.n,
            "mobile": {"lo": tri(self.mobile_lo), "hi": tri(self.mobile_hi)},
        }
        if self.cloud_lo is not None and self.cloud_hi is not None:
            d["cloud"] = {"lo": tri(self.cloud_lo), "hi": tri(self.cloud_hi)}
        else:
            d["cloud"] = "follows mobile"
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupSpread:
        """Inverse of :meth:`to_dict`; :class:`CostTableError` on a malformed document."""
        try:
            n = int(d["n"])

            def full(rows: Sequence[Sequence[float]]) -> np.ndarray:
                if len(rows) != n or any(len(r) != n - i for i, r in enumerate(rows)):
                    raise CostTableError("spread bands must list N rows of N-i values")
                m = np.ones((n, n))
                for i, r in enumerate(rows):
                    m[i, i:] = [float(x) for x in r]
                return m

            cloud = d["cloud"]
            if cloud == "follows mobile":
                return cls(full(d["mobile"]["lo"]), full(d["mobile"]["hi"]))
            return cls(full(d["mobile"]["lo"]), full(d["mobile"]["hi"]), full(cloud["lo"]), full(cloud["hi"]))
        except CostTableError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CostTableError(f"malformed spread: {type(e).__name__}: {e}") from None

    @classmethod
    def of(cls, table: CostTable) -> GroupSpread | None:
        """The spread kept in ``table.meta`` (``None`` when the table has none, as a device-model table)."""
        d = table.meta.get(SPREAD_KEY)
        if d is None:
            return None
        if not isinstance(d, Mapping):
            raise CostTableError(f"meta[{SPREAD_KEY!r}] must be an object")
        spread = cls.from_dict(d)
        if spread.n != table.n:
            raise CostTableError(f"the table's spread is for {spread.n} layers, the table has {table.n}")
        return spread

    def attach(self, table: CostTable) -> CostTable:
        """A copy of ``table`` that keeps this spread in its meta."""
        if self.n != table.n:
            raise CostTableError(f"spread for {self.n} layers, table of {table.n}")
        return table.replace(meta={**table.meta, SPREAD_KEY: self.to_dict()})


# ------------------------------------------------------------------ low outliers
@dataclass(frozen=True)
class Clamped:
    """One group raised to the time of a group it contains: ``[first, last]`` measured ``measured_ms``."""

    first: int
    last: int
    measured_ms: float
    clamped_ms: float
    contained: tuple[int, int]

    def to_list(self) -> list[Any]:
        """``[first, last, measured_ms, clamped_ms, [contained first, last]]`` (for meta)."""
        return [self.first, self.last, self.measured_ms, self.clamped_ms, list(self.contained)]


def clamp_low_outliers(
    ms: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Clamped]]:
    """Raise each group whose band lies wholly below the band of a group it contains.

    ``ms`` holds medians (``inf``: not offered), ``lo`` / ``hi`` the relative
    bands. Groups are visited shortest first; a group's reference is the
    one of its two largest contained groups ``[i, j-1]`` and ``[i+1, j]``
    whose band starts higher (after their own clamping), so a group left
    alone has no band wholly below either of theirs.
    When the group's ``hi`` end is below the reference's ``lo`` end, the group
    takes the reference's median and band. Returns the new medians, bands
    and the list of clamped groups; groups within the spread are left alone.
    """
    ms, lo, hi = np.array(ms, dtype=np.float64), np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    n = ms.shape[0]
    clamped: list[Clamped] = []
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            if not np.isfinite(ms[i, j]):
                continue
            subs = [(a, b) for a, b in ((i, j - 1), (i + 1, j)) if np.isfinite(ms[a, b])]
            if not subs:
                continue
            # the contained group whose band starts highest: a band wholly below either one's lies below this one's
            a, b = max(subs, key=lambda s: ms[s] * lo[s])
            if ms[i, j] * hi[i, j] < ms[a, b] * lo[a, b]:
                clamped.append(Clamped(i, j, float(ms[i, j]), float(ms[a, b]), (a, b)))
                ms[i, j], lo[i, j], hi[i, j] = ms[a, b], lo[a, b], hi[a, b]
    return ms, lo, hi, clamped


# ------------------------------------------------------------------ resampling
def resample(table: CostTable, spread: GroupSpread, rng: np.random.Generator) -> CostTable:
    """``table`` with every group cost redrawn uniformly within its band.

    Each group's factor is ``lo + u * (hi - lo)`` with ``u`` uniform in
    [0, 1): one ``rng.random((N, N))`` draw for the mobile side, then one for
    the cloud side unless the cloud follows the mobile (then it reuses the
    mobile factors). Mobile energy moves with mobile time. Groups are drawn
    independently, as they were timed.
    """
    if spread.n != table.n:
        raise CostTableError(f"spread for {spread.n} layers, table of {table.n}")
    n = table.n
    u = rng.random((n, n))
    f_mobile = spread.mobile_lo + u * (spread.mobile_hi - spread.mobile_lo)
    if spread.cloud_lo is None or spread.cloud_hi is None:
        f_cloud = f_mobile
    else:
        u = rng.random((n, n))
        f_cloud = spread.cloud_lo + u * (spread.cloud_hi - spread.cloud_lo)
    return table.replace(
        mobile_ms=table.mobile_ms * f_mobile,
        mobile_mj=table.mobile_mj * f_mobile,
        cloud_ms=table.cloud_ms * f_cloud,
    )
