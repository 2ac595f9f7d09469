"""The planner backend: which implementation runs, the request checks, and compiled cost tables.

Every caller plans through here: :func:`~jointdnn_edge.planner.plan`,
:meth:`LookupTable.build <jointdnn_edge.planner.LookupTable.build>`, the
lookup table's exact fallback and the Android bridge. :func:`compile` turns a
cost table into a :class:`Solver` (the native core's state graph, or the
pure-Python one) and keeps it for as long as the table lives;
:func:`compile_document` does the same for a cost table's JSON document
without numpy. :func:`check_request` is the one validation of a request's
arguments (objective, force, bounds, slowdown, network).

The native module (``jointdnn_edge._core``, built from ``rust/``) is used
when it imports, unless the environment variable ``JOINTDNN_EDGE_PURE`` is
set to something other than ``""`` or ``"0"`` (as the test suite does to run
the planner cases against the fallback, and as an app can do to compare).
This module needs neither numpy nor the native module.
"""

from __future__ import annotations

import math
import numbers
import os
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from types import MemberDescriptorType, ModuleType
from typing import Any, NamedTuple, Protocol, TypeVar

from ..errors import ConfigError, SolverError
from ..network import Network, Radio
from . import reference
from .schedule import Schedule

__all__ = [
    "CONSTRAINT_ARGS",
    "CostsLike",
    "FORCES",
    "GraphSize",
    "OBJECTIVES",
    "PHASES",
    "SOLVERS",
    "Solver",
    "check_bound",
    "check_force",
    "check_network",
    "check_objective",
    "check_radio",
    "check_request",
    "compile",
    "compile_document",
    "native_available",
    "native_module",
    "table_for_phase",
]

OBJECTIVES = ("latency", "energy")
FORCES = (None, "mobile", "cloud")
PHASES = ("inference", "training")
#: ``auto`` (native if available, else python) and the two compiled solvers, then the checkers.
SOLVERS = ("auto", "native", "python", "ilp", "brute")
#: plan()'s constraint arguments and the metric each bounds, in the planner's order.
CONSTRAINT_ARGS = (("deadline_ms", "latency"), ("energy_budget_mj", "energy"), ("cloud_budget_ms", "cloud"))

_module: ModuleType | None = None
_checked = False


def native_module() -> ModuleType | None:
    """The native extension module, or None when it is absent or disabled."""
    global _module, _checked
    if not _checked:
        _checked = True
        if os.environ.get("JOINTDNN_EDGE_PURE", "") in ("", "0"):
            try:
                from .. import _core

                _module = _core
            except ImportError:
                _module = None
    return _module


def native_available() -> bool:
    """True when plans and lookup tables are computed by the native (Rust) core."""
    return native_module() is not None


class CostsLike(Protocol):
    """What the planner reads from a cost table (:class:`~jointdnn_edge.costs.CostTable` is one).

    The group matrices and vectors are numpy arrays in a ``CostTable``; the
    pure-Python solver reads them through ``tolist()``.
    """

    @property
    def n(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def mobile_ms(self) -> Any: ...
    @property
    def cloud_ms(self) -> Any: ...
    @property
    def mobile_mj(self) -> Any: ...
    @property
    def out_bytes(self) -> Any: ...
    @property
    def input_bytes(self) -> float: ...
    @property
    def edges(self) -> Sequence[tuple[int, int]]: ...
    @property
    def outputs(self) -> Sequence[int]: ...
    @property
    def cloud_download_bytes(self) -> Any: ...
    @property
    def codec_ms(self) -> Any: ...
    @property
    def codec_mj(self) -> Any: ...
    @property
    def is_chain(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...


# ------------------------------------------------------------------ checks
def _finite_real(value: Any) -> bool:
    """A real number (int, float or a numpy scalar; not bool) with a finite float value (ints past ~1.8e308 are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_objective(objective: Any) -> str:
    """``objective`` if it is ``"latency"`` or ``"energy"``, else ConfigError."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be 'latency' or 'energy', got {objective!r}")
    return objective  # type: ignore[no-any-return]


def check_force(force: Any) -> str | None:
    """``force`` if it is None, ``"mobile"`` or ``"cloud"``, else ConfigError."""
    if force not in FORCES:
        raise ConfigError(f"force must be None, 'mobile' or 'cloud', got {force!r}")
    return force  # type: ignore[no-any-return]


def check_bound(name: str, value: Any) -> float | None:
    """``value`` as a float, or None; ConfigError unless it is a finite number >= 0."""
    if value is None:
        return None
    if not (_finite_real(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_slowdown(value: Any) -> float:
    """``value`` as a float; ConfigError unless it is a positive finite number."""
    if value.__class__ is float and value == 1.0:
        return value
    if not (_finite_real(value) and value > 0):
        raise ConfigError(f"cloud_slowdown must be a positive finite number, got {value!r}")
    return float(value)


def check_network(network: Any) -> Network:
    """A :class:`Network`, or the preset of that name; ConfigError otherwise."""
    if network.__class__ is Network:
        return network
    if isinstance(network, str):
        return Network.preset(network)
    if not isinstance(network, Network):
        raise ConfigError(f"network must be a Network or a preset name, got {type(network).__name__}")
    return network


def check_radio(radio: Any) -> Radio:
    """The :class:`Radio` of a Radio, a Network or a preset name (bandwidths do not matter); ConfigError otherwise."""
    if isinstance(radio, Radio):
        return radio
    if isinstance(radio, (Network, str)):
        return check_network(radio).radio
    raise ConfigError(f"network must be a Radio, a Network or a preset name, got {type(radio).__name__}")


def check_request(
    network: Any,
    objective: Any,
    force: Any,
    cloud_slowdown: Any,
    deadline_ms: Any,
    energy_budget_mj: Any,
    cloud_budget_ms: Any,
) -> tuple[Network, float, float | None, float | None, float | None]:
    """A planning request's arguments checked (ConfigError) and normalised.

    Returns ``(network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms)``.
    """
    if network.__class__ is not Network:
        network = check_network(network)
    if objective not in OBJECTIVES:
        check_objective(objective)
    if force is not None and force not in FORCES:
        check_force(force)
    if cloud_slowdown.__class__ is not float or cloud_slowdown != 1.0:
        cloud_slowdown = check_slowdown(cloud_slowdown)
    if deadline_ms is not None or energy_budget_mj is not None or cloud_budget_ms is not None:
        deadline_ms = check_bound("deadline_ms", deadline_ms)
        energy_budget_mj = check_bound("energy_budget_mj", energy_budget_mj)
        cloud_budget_ms = check_bound("cloud_budget_ms", cloud_budget_ms)
    return network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms


# ------------------------------------------------------------------ solvers
class GraphSize(NamedTuple):
    """The size of a compiled state graph."""

    states: int
    transitions: int
    cut_width: int


class Solver:
    """A cost table compiled for one cloud memory model: solves checked requests exactly.

    ``name`` is ``"native"`` or ``"python"``. :meth:`solve` takes arguments
    already checked by :func:`check_request`; :meth:`plan` checks them first.
    """

    name: str = ""
    __slots__ = ("solve_unconstrained",)

    #: :meth:`solve` for the common request (no constraint, no force, no label): ``plan()``'s fast path,
    #: called as ``solve_unconstrained(objective, network, cloud_slowdown)``. Each solver sets it to the
    #: shortest route it has (an attribute, not a method: the native one is a single native call).
    solve_unconstrained: Callable[[str, Network, float], Schedule]

    @property
    def size(self) -> GraphSize:
        """The size of the compiled state graph."""
        raise NotImplementedError

    def solve(
        self,
        objective: str,
        network: Network,
        cloud_slowdown: float = 1.0,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        force: str | None = None,
        label: str | None = None,
    ) -> Schedule:
        """The exact optimum as a :class:`Schedule` (``solver`` is ``label``, default :attr:`name`)."""
        raise NotImplementedError

    def lut_cells(
        self, spec: reference.LutSpec, cells: list[int], threads: int | None = None
    ) -> list[reference.LutCell]:
        """Lookup-table cells ``cells`` of ``spec``, built (the native solver's ``_core.LutCell`` has the fields
        of :class:`reference.LutCell`) on ``threads`` threads at most (None: as many as the solver uses)."""
        raise NotImplementedError

    def plan(
        self,
        network: Network | str,
        *,
        objective: str = "latency",
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        cloud_slowdown: float = 1.0,
        force: str | None = None,
    ) -> Schedule:
        """:func:`jointdnn_edge.plan` on this compiled table: the same checks, then :meth:`solve`."""
        net, slowdown, deadline, energy, cloud = check_request(
            network, objective, force, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms
        )
        return self.solve(objective, net, slowdown, deadline, energy, cloud, force)


class _NativeSolver(Solver):
    """The native core's state graph (``_core.Problem``)."""

    name = "native"
    __slots__ = ("_problem",)

    def __init__(self, problem: Any) -> None:
        self._problem = problem
        # One native call that builds the Schedule itself (no Python frame, no tuple in between), reusing
        # the segment and usage tuples of the previous answer when they are equal.
        self.solve_unconstrained = partial(problem.solve_schedule, Schedule._make)

    @property
    def size(self) -> GraphSize:
        problem = self._problem
        return GraphSize(problem.states, problem.transitions, problem.cut_width)

    def solve(
        self,
        objective: str,
        network: Network,
        cloud_slowdown: float = 1.0,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        force: str | None = None,
        label: str | None = None,
    ) -> Schedule:
        if deadline_ms is None and energy_budget_mj is None and cloud_budget_ms is None and force is None:
            s = self._problem.solve(objective, network, cloud_slowdown)  # fewer arguments to convert
        else:
            s = self._problem.solve(
                objective, network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms, force
            )
        return Schedule._make(
            s.segments, s.latency_ms, s.mobile_energy_mj, s.cloud_ms, s.usage, s.transfers, objective, label or "native"
        )

    def lut_cells(
        self, spec: reference.LutSpec, cells: list[int], threads: int | None = None
    ) -> list[reference.LutCell]:
        return self._problem.lut_cells(spec, cells, threads)  # type: ignore[no-any-return]


class _PythonSolver(Solver):
    """The pure-Python reference planner's state graph (the same answers, no numpy needed)."""

    name = "python"
    __slots__ = ("_graph",)

    def __init__(self, graph: reference.StateGraph) -> None:
        self._graph = graph
        self.solve_unconstrained = partial(_solve_python, graph)

    @property
    def size(self) -> GraphSize:
        return GraphSize(self._graph.num_states, len(self._graph.trans), self._graph.width)

    def solve(
        self,
        objective: str,
        network: Network,
        cloud_slowdown: float = 1.0,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        force: str | None = None,
        label: str | None = None,
    ) -> Schedule:
        bounds = (deadline_ms, energy_budget_mj, cloud_budget_ms)
        return _solve_python(self._graph, objective, network, cloud_slowdown, bounds, force, label or "python")

    def lut_cells(
        self, spec: reference.LutSpec, cells: list[int], threads: int | None = None
    ) -> list[reference.LutCell]:
        return [reference.lut_cell(self._graph, spec, c) for c in cells]  # one thread whatever ``threads``


def _solve_python(
    graph: reference.StateGraph,
    objective: str,
    network: Network,
    cloud_slowdown: float = 1.0,
    bounds: tuple[float | None, float | None, float | None] = (None, None, None),
    force: str | None = None,
    label: str = "python",
) -> Schedule:
    """The pure-Python planner's optimum as a :class:`Schedule`; ``bounds``: deadline, energy and cloud budgets. A
    module function, so that the solver keeps it as its ``solve_unconstrained`` (a partial) without a reference
    cycle to itself."""
    s = reference.solve(graph, reference.Request(objective, network, cloud_slowdown, *bounds, force=force))
    return Schedule._make(
        s.segments, s.latency_ms, s.mobile_energy_mj, s.cloud_ms, s.usage, s.transfers, objective, label
    )


def _native_problem(mod: ModuleType, costs: CostsLike, cloud_keeps_tensors: bool) -> Any:
    return mod.Problem(
        costs.mobile_ms,
        costs.cloud_ms,
        costs.mobile_mj,
        costs.out_bytes,
        costs.input_bytes,
        list(costs.edges),
        list(costs.outputs),
        costs.cloud_download_bytes,
        costs.codec_ms,
        costs.codec_mj,
        cloud_keeps_tensors,
    )


def _build(costs: CostsLike, solver: str, cloud_keeps_tensors: bool) -> Solver:
    """A new :class:`Solver` for ``solver`` (``auto``, ``native`` or ``python``)."""
    if solver not in ("auto", "native", "python"):
        raise ConfigError(f"solver must be one of {SOLVERS[:3]} to compile a table, got {solver!r}")
    mod = native_module() if solver != "python" else None
    if mod is not None:
        return _NativeSolver(_native_problem(mod, costs, cloud_keeps_tensors))
    if solver == "native":
        raise SolverError("solver='native' but the native module is not available (see native_available())")
    return _PythonSolver(reference.StateGraph.build(reference.Plain.of(costs), cloud_keeps_tensors))


# ------------------------------------------------------------------ caches
class _PerTable:
    """Values the planner keeps per live cost table, dropped with the table.

    A :class:`~jointdnn_edge.CostTable` holds them itself (its ``_planned`` slot: one attribute read on a plan's
    fast path; not pickled or copied). Other tables are keyed by identity (cost tables compare by value and are not
    hashable): ``entries[id(table)]`` is ``(weak reference to table, values)``.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, tuple[weakref.ref[Any], dict[Hashable, Any]]] = {}

    def of(self, table: Any) -> dict[Hashable, Any]:
        """The values kept for ``table`` (a fresh, unkept dict if it cannot be weakly referenced)."""
        try:
            return table._planned  # type: ignore[no-any-return]
        except AttributeError:
            if isinstance(getattr(type(table), "_planned", None), MemberDescriptorType):  # the slot, not set yet
                values: dict[Hashable, Any] = {}
                table._planned = values
                return values
        entry = self.entries.get(id(table))
        if entry is not None and entry[0]() is table:
            return entry[1]
        entries = self.entries
        key = id(table)

        def drop(ref: weakref.ref[Any]) -> None:
            if entries.get(key, (None,))[0] is ref:
                entries.pop(key, None)

        values = {}
        try:
            entries[key] = (weakref.ref(table, drop), values)
        except TypeError:  # no weak references to it: compile each time rather than keep it alive
            pass
        return values


_tables = _PerTable()


#: The key of a table's training table among its kept values (compiled solvers are keyed by str or tuple).
_TRAINING_TABLE = object()


_Table = TypeVar("_Table", bound=CostsLike)


def table_for_phase(costs: _Table, phase: str) -> _Table:
    """The table to plan on for ``phase``: ``costs`` itself, or its training table (built once and kept).

    A training table is built by ``CostTable.training``, so ``costs`` must be a CostTable for it.
    """
    table_phase = getattr(costs, "phase", None)
    if table_phase is None:
        raise ConfigError(f"costs must be a CostTable, got {type(costs).__name__}")
    if phase == "inference":
        if table_phase == "training":
            raise ConfigError("this is a training cost table: plan it with phase='training'")
        return costs
    if phase != "training":
        raise ConfigError(f"phase must be 'inference' or 'training', got {phase!r}")
    if table_phase == "training":
        return costs
    kept = _tables.of(costs)
    training = kept.get(_TRAINING_TABLE)
    if training is None:
        from ..costs import CostTable  # numpy: only a desktop plans training

        training = kept[_TRAINING_TABLE] = CostTable.training(costs)  # type: ignore[arg-type]
    return training  # type: ignore[return-value]


def compile(
    costs: CostsLike, *, phase: str = "inference", solver: str = "auto", cloud_keeps_tensors: bool = True
) -> Solver:
    """``costs`` (for ``phase``) compiled into a :class:`Solver`, kept while the table lives.

    ``solver``: ``"auto"`` (native if available, else python), ``"native"``
    (SolverError without the native module) or ``"python"``.
    """
    # the common request is keyed by the solver name alone (a str hashes once, a tuple every time)
    key: Hashable = (
        solver if cloud_keeps_tensors is True and phase == "inference" else (solver, cloud_keeps_tensors, phase)
    )
    kept = _tables.of(costs)
    found = kept.get(key)
    if found is None:
        found = kept[key] = _build(table_for_phase(costs, phase), solver, bool(cloud_keeps_tensors))
    return found


def compile_document(doc: Mapping[str, Any], *, cloud_keeps_tensors: bool = True) -> Solver:
    """A cost table's JSON document (:meth:`CostTable.to_dict`) compiled into a :class:`Solver`.

    Native when the native module and numpy are available, else pure Python
    (standard library only: a phone without numpy plans with this). The caller
    keeps the solver; nothing is cached here. CostTableError for a malformed document.
    """
    if native_module() is not None:
        try:
            from ..costs import CostTable  # the native path reads numpy arrays
        except ImportError:
            pass
        else:
            return compile(CostTable.from_dict(doc), cloud_keeps_tensors=cloud_keeps_tensors)
    return _PythonSolver(reference.StateGraph.build(reference.Plain.from_dict(doc), bool(cloud_keeps_tensors)))
