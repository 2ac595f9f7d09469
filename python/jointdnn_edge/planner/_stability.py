"""How stable an optimal schedule is under the measured spread of its cost table.

A profile is a sample: profiled again, every group comes out a little
different, and where two schedules are close the optimum flips.
:func:`stability` redraws every group cost within its measured band
(:func:`jointdnn_edge.spread.resample`), plans each redrawn table with the
same request, and counts how often the optimum keeps the schedule's
placement (which layers run where; a different grouping on the same
platforms is not a flip) and which other placements appear.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..costs import CostTable
from ..errors import ConfigError, InfeasibleError
from ..network import Network
from ..spread import GroupSpread, resample
from ._plan import plan
from .schedule import Schedule, Segment, runs_of

__all__ = ["Stability", "stability"]

Placement = tuple[Segment, ...]


@dataclass(frozen=True)
class Stability:
    """The optimum's placement and how often resampled tables keep it.

    ``counts`` lists every placement that was optimal for some resampled
    table with its count, most frequent first (``None``: no schedule met the
    constraints).
    """

    schedule: Schedule
    samples: int
    seed: int
    counts: tuple[tuple[Placement | None, int], ...]

    @property
    def placement(self) -> Placement:
        """The optimum's runs ``(first, last, platform)``."""
        return tuple(runs_of(self.schedule.segments))

    @property
    def same(self) -> int:
        """Resampled tables whose optimum has the schedule's placement."""
        return dict(self.counts).get(self.placement, 0)

    @property
    def share(self) -> float:
        """``same / samples`` (1.0: never flips)."""
        return self.same / self.samples

    def alternatives(self) -> list[tuple[Placement | None, int]]:
        """The other placements that were optimal, most frequent first."""
        return [(p, c) for p, c in self.counts if p != self.placement]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""

        def runs(p: Placement | None) -> list[list[Any]] | None:
            return None if p is None else [list(r) for r in p]

        return {
            "placement": runs(self.placement),
            "samples": self.samples,
            "seed": self.seed,
            "same": self.same,
            "share": self.share,
            "alternatives": [{"placement": runs(p), "count": c} for p, c in self.alternatives()],
        }

    def summary(self, n: int) -> str:
        """One line: the share that keeps the schedule and the commonest alternatives as M/C bars."""
        alts = ", ".join(
            f"{'infeasible' if p is None else placement_bar(p, n)} {c / self.samples:.0%}"
            for p, c in self.alternatives()[:3]
        )
        return f"{self.share:.0%} of {self.samples} resamples within the measured spread keep this schedule" + (
            f"; others: {alts}" if alts else ""
        )


def placement_bar(placement: Placement, n: int) -> str:
    """``MMCC``-style bar of a placement (one letter per layer)."""
    letters = ["?"] * n
    for a, b, p in placement:
        letters[a : b + 1] = ["M" if p == "mobile" else "C"] * (b - a + 1)
    return "".join(letters)


def stability(
    costs: CostTable,
    network: Network | str,
    objective: str = "latency",
    *,
    samples: int = 200,
    seed: int = 0,
    spread: GroupSpread | None = None,
    **request: Any,
) -> Stability:
    """Plan ``costs`` as measured and ``samples`` times redrawn within ``spread``; count the optima.

    ``spread`` defaults to the one the table keeps (:meth:`GroupSpread.of`);
    a table without one raises :class:`ConfigError`. ``request`` takes the
    other :func:`plan` arguments (``phase``, ``solver``, ``cloud_slowdown``,
    constraints), used for every plan. The draws come from
    ``numpy.random.default_rng(seed)`` in the order :func:`resample`
    documents, one table after the other, so a seed gives one exact result.
    """
    if "force" in request:
        raise ConfigError("stability compares placements: force is not allowed")
    if not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
    if spread is None:
        spread = GroupSpread.of(costs)
        if spread is None:
            raise ConfigError("the cost table keeps no measured spread (profile it with jointdnn_edge.profile)")
    base = plan(costs, network, objective=objective, **request)
    rng = np.random.default_rng(seed)
    counts: Counter[Placement | None] = Counter()
    for _ in range(samples):
        table = resample(costs, spread, rng)
        try:
            s = plan(table, network, objective=objective, **request)
        except InfeasibleError:
            counts[None] += 1
            continue
        counts[tuple(runs_of(s.segments))] += 1
    ordered = tuple(sorted(counts.items(), key=lambda pc: (-pc[1], str(pc[0]))))
    return Stability(base, samples, seed, ordered)
