"""Type stubs of the native planner core (``rust/python``), checked by ``python -m mypy.stubtest``.

Use the public API in :mod:`jointdnn_edge.planner` instead of this module:
it validates arguments, keeps the compiled state graph while the cost table
lives (``planner._backend``) and turns results into :class:`~jointdnn_edge.planner.Schedule` objects.
"""

from collections.abc import Callable
from typing import Final, Protocol, TypeVar, final

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

_T = TypeVar("_T")

__all__ = [
    "Candidate",
    "LutAnswer",
    "LutCell",
    "LutIndex",
    "Problem",
    "Solution",
    "__version__",
    "parallelism",
    "sparse_expand",
]

__version__: Final[str]

_Segments: TypeAlias = tuple[tuple[int, int, str], ...]
_Usage: TypeAlias = tuple[float, ...]

class _Radio(Protocol):
    """Read by attribute name: ``jointdnn_edge.network.Radio`` (or a Network's ``radio``)."""

    @property
    def alpha_up(self) -> float: ...
    @property
    def alpha_down(self) -> float: ...
    @property
    def beta(self) -> float: ...
    @property
    def rtt_ms(self) -> float: ...

class _Network(Protocol):
    """Read by attribute name: ``jointdnn_edge.network.Network`` (bandwidths and a radio)."""

    @property
    def up_mbps(self) -> float: ...
    @property
    def down_mbps(self) -> float: ...
    @property
    def radio(self) -> _Radio: ...

class _LutSpec(Protocol):
    """Read by attribute name: ``jointdnn_edge.planner.reference.LutSpec``."""

    @property
    def objective(self) -> str: ...
    @property
    def constraints(self) -> list[tuple[str, float]]: ...
    @property
    def radio(self) -> _Radio: ...
    @property
    def up(self) -> tuple[float, float]: ...
    @property
    def down(self) -> tuple[float, float]: ...
    @property
    def slowdown(self) -> tuple[float, float]: ...
    @property
    def cells(self) -> tuple[int, int, int]: ...
    @property
    def force(self) -> str | None: ...
    @property
    def max_candidates(self) -> int: ...
    @property
    def max_labels(self) -> int: ...
    @property
    def max_work(self) -> int: ...

@final
class Solution:
    """The exact optimum of one request (``Problem.solve``): the schedule, its resource usage and its costs."""

    @property
    def segments(self) -> _Segments:
        """``((first, last, "mobile" | "cloud"), …)`` in layer order."""
    @property
    def usage(self) -> _Usage:
        """The schedule's resource usage vector (ten floats, ``jointdnn_edge.planner.usage``)."""
    @property
    def transfers(self) -> int:
        """Tensors and weight sets moved between the platforms."""
    @property
    def latency_ms(self) -> float:
        """End-to-end latency (ms) on the request's network."""
    @property
    def mobile_energy_mj(self) -> float:
        """Mobile energy (mJ): compute and radio."""
    @property
    def cloud_ms(self) -> float:
        """Cloud compute time (ms), slowed down."""

@final
class Candidate:
    """A schedule stored in a lookup-table cell: its segments and resource usage."""

    @property
    def segments(self) -> _Segments:
        """``((first, last, "mobile" | "cloud"), …)`` in layer order."""
    @property
    def usage(self) -> _Usage:
        """The schedule's resource usage vector (ten floats)."""
    @property
    def transfers(self) -> int:
        """Tensors and weight sets moved between the platforms."""

@final
class LutCell:
    """One built lookup-table cell (``Problem.lut_cells``)."""

    @property
    def status(self) -> str:
        """``"exact"`` (the candidates hold the optimum everywhere in the cell), ``"solve"`` (too many
        candidates or over the work budget: queries here solve directly) or ``"infeasible"``."""
    @property
    def candidates(self) -> list[Candidate]:
        """The cell's candidate schedules, empty unless the status is ``"exact"``."""

@final
class LutAnswer:
    """The best stored schedule at a query point (``LutIndex.query``): its index among the table's
    stored schedules and its costs there."""

    @property
    def candidate(self) -> int:
        """Index of the schedule among the table's stored schedules."""
    @property
    def latency_ms(self) -> float:
        """End-to-end latency (ms) at the query point."""
    @property
    def mobile_energy_mj(self) -> float:
        """Mobile energy (mJ) at the query point."""
    @property
    def cloud_ms(self) -> float:
        """Cloud compute time (ms) at the query point."""

@final
class Problem:
    """A cost table compiled into the exact planner's state graph (built once, solved many times).

    Arrays are float64 (any memory layout): ``mobile_ms``, ``cloud_ms``, ``mobile_mj`` are N×N
    (``inf``: group not offered), ``out_bytes`` and ``cloud_download_bytes``
    have N entries, ``codec_ms`` and ``codec_mj`` are (N+1)×2. They are copied
    into Rust memory once, before the GIL is released for the build. Raises
    ``CostTableError`` for malformed data and ``SolverError`` when the graph
    exceeds the exact planner's limits. ``cloud_keeps_tensors=False`` models a
    stateless cloud server (see ``jointdnn_edge.plan``).
    """

    def __new__(
        cls,
        mobile_ms: npt.NDArray[np.float64],
        cloud_ms: npt.NDArray[np.float64],
        mobile_mj: npt.NDArray[np.float64],
        out_bytes: npt.NDArray[np.float64],
        input_bytes: float,
        edges: list[tuple[int, int]],
        outputs: list[int],
        cloud_download_bytes: npt.NDArray[np.float64],
        codec_ms: npt.NDArray[np.float64],
        codec_mj: npt.NDArray[np.float64],
        cloud_keeps_tensors: bool = True,
    ) -> Problem: ...
    @property
    def n(self) -> int:
        """Number of layers."""
    @property
    def states(self) -> int:
        """Number of states of the state graph."""
    @property
    def transitions(self) -> int:
        """Number of transitions of the state graph."""
    @property
    def cut_width(self) -> int:
        """Cut width of the state graph (the most tensors alive across a layer boundary)."""
    @property
    def nbytes(self) -> int:
        """Bytes the state graph holds (group columns, runs, transfer vectors)."""
    def solve(
        self,
        objective: str,
        network: _Network,
        slowdown: float = 1.0,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        force: str | None = None,
    ) -> Solution:
        """The exact optimum as a :class:`Solution`.

        ``network`` is a ``jointdnn_edge.Network`` (read by attribute name).
        Raises ``InfeasibleError`` naming the constraint that cannot be met,
        ``ConfigError`` for bad arguments, ``CostTableError`` for costs so large
        that every schedule's value overflows, ``SolverError`` past the search's budgets.
        The GIL is released during the solve.
        """
    def solve_schedule(self, make: Callable[..., _T], objective: str, network: _Network, slowdown: float = 1.0) -> _T:
        """The unconstrained optimum as ``make(segments, latency_ms, mobile_energy_mj, cloud_ms, usage, transfers,
        objective, "native")`` (the planner passes ``Schedule._make``): :meth:`solve`'s fields without a
        :class:`Solution` in between. When the segments (or the usage) equal the previous answer's, the same
        tuple objects are handed out again. Raises as :meth:`solve`.
        """
    def lut_cells(self, spec: _LutSpec, cells: list[int], threads: int | None = None) -> list[LutCell]:
        """Builds lookup-table cells of ``spec`` in parallel: one :class:`LutCell` per number in ``cells``, on
        rayon's global pool, or on a pool of ``threads`` threads of its own.

        A cell whose enumeration (or corner solve) needs more than ``spec.max_work`` label comparisons
        gets status ``"solve"``. At most 2**22 cells; ``cells`` must be
        cell numbers below the spec's cell count (``ConfigError`` otherwise, as for bad ranges or names).
        The GIL is released during the build.
        """

@final
class LutIndex:
    """The query side of a lookup table: stored schedules' reduced coordinates and per-cell lists.

    The constructor raises ``LookupTableError`` unless the fields are consistent (positive axes,
    at most 2**22 cells, valid ranges and radio, finite non-negative coordinates, offsets and
    members in range), so that a query cannot fail. ``status`` holds each cell's code as the
    lookup-table file stores it (0 exact, 1 solve directly, 2 infeasible).
    """

    def __new__(
        cls,
        *,
        objective: str,
        constraints: list[tuple[str, float]],
        radio: _Radio,
        up_mbps: tuple[float, float],
        down_mbps: tuple[float, float],
        cloud_slowdown: tuple[float, float],
        axes: list[int],
        reduced: list[tuple[float, float, float, float, float]],
        status: list[int],
        offsets: list[int],
        members: list[int],
    ) -> LutIndex: ...
    def query(self, up_mbps: float, down_mbps: float, slowdown: float) -> LutAnswer | None:
        """The best stored schedule at the point, or None where the table cannot answer alone
        (solve directly); ``InfeasibleError`` where nothing is feasible."""

def parallelism() -> int:
    """Number of threads the parallel lookup-table build uses."""

def sparse_expand(
    bitmap: npt.NDArray[np.uint8],
    values: npt.NDArray[np.uint8],
    itemsize: int,
    n: int,
    out: npt.NDArray[np.uint8],
) -> None:
    """Scatter the packed non-zero elements ``values`` into the zeroed buffer ``out`` of ``n * itemsize``
    bytes, element ``i`` taken when bit ``i`` of ``bitmap`` is set (the codec's sparse layout).

    Raises ``CodecError`` when the sizes disagree (too few or too many packed values, short buffers)
    or an array is not contiguous. Works on the arrays' memory in place with the GIL released: no other
    thread may write to them during the call (the codec passes arrays it has just made).
    """
