"""The planner: the optimal mobile/cloud schedule for a cost table and a network.

:func:`plan` answers one request exactly (shortest path over the JointDNN
state graph; exact label setting under constraints). :class:`LookupTable`
precomputes answers over a range of network conditions for per-inference
decisions. The work is done by the native core (``jointdnn_edge._core``)
when it is available, otherwise by the pure-Python reference implementation
(:mod:`.reference`), which computes the same answers; :mod:`._backend` picks
one, checks requests and keeps the compiled tables (:func:`compile`,
:func:`compile_document`). :func:`stability` says how often the optimum
stays optimal when a profiled table is redrawn within its measured spread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._accuracy import AccuracyPlanner, TransferOption, transfer_options
from ._backend import (
    CostsLike,
    Solver,
    check_bound,
    check_force,
    check_objective,
    compile,
    compile_document,
    native_available,
)
from ._plan import plan
from .lut import LookupTable
from .schedule import Schedule, evaluate_usage, runs_of

if TYPE_CHECKING:
    from ._stability import Stability, stability

__all__ = [
    "AccuracyPlanner",
    "CostsLike",
    "LookupTable",
    "Schedule",
    "Solver",
    "Stability",
    "TransferOption",
    "check_bound",
    "check_force",
    "check_objective",
    "compile",
    "compile_document",
    "evaluate_usage",
    "native_available",
    "plan",
    "runs_of",
    "stability",
    "transfer_options",
]


def __getattr__(name: str) -> Any:
    # stability needs numpy; the planner itself must import without it (the Android bridge's numpy-free path)
    if name in ("Stability", "stability"):
        from . import _stability

        return getattr(_stability, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
