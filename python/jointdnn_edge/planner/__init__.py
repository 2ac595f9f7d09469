"""The planner: the optimal mobile/cloud schedule for a cost table and a network.

:func:`plan` answers one request exactly (shortest path over the JointDNN
state graph; exact label setting under constraints). :class:`LookupTable`
precomputes answers over a range of network conditions for per-inference
decisions. The work is done by the native core (``jointdnn_edge._core``)
when it is available, otherwise by the pure-Python reference implementation
(:mod:`.reference`), which computes the same answers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..errors import CostTableError, InfeasibleError, SolverError
from ..network import Network
from . import reference
from ._backend import native_available, native_module
from .lut import LookupTable
from .schedule import Schedule, evaluate_usage
from .usage import Link

__all__ = ["LookupTable", "Schedule", "evaluate_usage", "native_available", "plan"]

_SOLVERS = ("auto", "native", "python", "ilp", "brute")
_OBJECTIVES = ("latency", "energy")
_FORCES = ("mobile", "cloud")


def _prepare(costs: Any, phase: str) -> Any:
    """The table to plan on for ``phase`` (building and caching the training table when asked)."""
    cache = getattr(costs, "_cache", None)
    if cache is None:
        raise CostTableError(f"costs must be a CostTable, got {type(costs).__name__}")
    if phase == "inference":
        if costs.phase == "training":
            raise CostTableError("this is a training cost table: plan it with phase='training'")
        return costs
    if phase != "training":
        raise CostTableError(f"phase must be 'inference' or 'training', got {phase!r}")
    if costs.phase == "training":
        return costs
    cached = cache.get("training")
    if cached is None:
        from ..costs import CostTable

        cached = cache["training"] = CostTable.training(costs)
    return cached


def _native_problem(costs: Any, cloud_keeps_tensors: bool = True) -> Any:
    """The table compiled into the native state graph (cached on the table, per cloud memory model)."""
    key = "native" if cloud_keeps_tensors else "native-stateless"
    prob = costs._cache.get(key)
    if prob is None:
        mod = native_module()
        assert mod is not None
        prob = mod.Problem(
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
        costs._cache[key] = prob
    return prob


def _python_graph(costs: Any, cloud_keeps_tensors: bool = True) -> reference.StateGraph:
    """The table compiled into the pure-Python state graph (cached on the table, per cloud memory model)."""
    key = "python" if cloud_keeps_tensors else "python-stateless"
    g = costs._cache.get(key)
    if g is None:
        g = costs._cache[key] = reference.StateGraph.build(reference.Plain.of(costs), cloud_keeps_tensors)
    return g


def _finite_real(value: Any) -> bool:
    """A real number (int, float or a numpy scalar; not bool) with a finite float value (ints past ~1.8e308 are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_bound(name: str, value: float | None) -> float | None:
    """``value`` as a float, or None; CostTableError unless it is a finite number >= 0."""
    if value is None:
        return None
    if not (_finite_real(value) and value >= 0):
        raise CostTableError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def plan(
    costs: Any,
    network: Network | str,
    *,
    objective: str = "latency",
    deadline_ms: float | None = None,
    energy_budget_mj: float | None = None,
    cloud_budget_ms: float | None = None,
    cloud_slowdown: float = 1.0,
    phase: str = "inference",
    force: str | None = None,
    solver: str = "auto",
    cloud_keeps_tensors: bool = True,
) -> Schedule:
    """The optimal schedule of ``costs`` on ``network`` (a :class:`Network` or a preset name).

    ``objective`` is ``"latency"`` (end-to-end ms) or ``"energy"`` (mobile mJ).
    Constraints, in any combination: ``deadline_ms`` (latency),
    ``energy_budget_mj`` (mobile energy), ``cloud_budget_ms`` (cloud time,
    after ``cloud_slowdown``); when none can be met, :class:`InfeasibleError`
    names the constraint. ``force`` pins every layer to ``"mobile"`` or
    ``"cloud"`` (the status-quo baselines). ``phase="training"`` plans one
    online-training step (``CostTable.training``). ``cloud_keeps_tensors``
    (default, as in the paper): the cloud holds every tensor it has
    received or computed, so a tensor crosses the link at most once per
    direction; ``False`` models a stateless cloud server, where each run of
    cloud layers gets its inputs uploaded with the request and every tensor
    still needed afterwards comes back with the response (the same for
    chains; it matters for DAGs). ``solver``: ``"auto"``
    (native if available, else ``"python"``), ``"native"``, ``"python"``,
    ``"ilp"`` (HiGHS MILP) or ``"brute"`` (enumeration; small tables only).
    All solvers are exact and agree on the optimal cost.
    """
    costs = _prepare(costs, phase)
    if network.__class__ is not Network:
        if not isinstance(network, (Network, str)):
            raise CostTableError(f"network must be a Network or a preset name, got {type(network).__name__}")
        network = Network.preset(network) if isinstance(network, str) else network
    if objective not in _OBJECTIVES:
        raise CostTableError(f"objective must be 'latency' or 'energy', got {objective!r}")
    if force is not None and force not in _FORCES:
        raise CostTableError(f"force must be None, 'mobile' or 'cloud', got {force!r}")
    if cloud_slowdown != 1.0 or type(cloud_slowdown) is not float:
        if not (_finite_real(cloud_slowdown) and cloud_slowdown > 0):
            raise CostTableError(f"cloud_slowdown must be a positive finite number, got {cloud_slowdown!r}")
        cloud_slowdown = float(cloud_slowdown)
    if deadline_ms is not None or energy_budget_mj is not None or cloud_budget_ms is not None:
        deadline_ms = _check_bound("deadline_ms", deadline_ms)
        energy_budget_mj = _check_bound("energy_budget_mj", energy_budget_mj)
        cloud_budget_ms = _check_bound("cloud_budget_ms", cloud_budget_ms)
    if solver == "auto":
        solver = "native" if native_available() else "python"
    link = network._link  # type: ignore[attr-defined]
    if solver == "native":
        prob = costs._cache.get("native" if cloud_keeps_tensors else "native-stateless")
        if prob is None:
            if not native_available():
                raise CostTableError("solver='native' but the native module is not available (see native_available())")
            prob = _native_problem(costs, cloud_keeps_tensors)
        segs, usage, transfers, (lat, energy, cloud) = prob.solve(
            objective, link, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms, force
        )
        return Schedule._make(tuple(segs), lat, energy, cloud, usage, transfers, objective, "native")
    if solver not in _SOLVERS:
        raise CostTableError(f"solver must be one of {_SOLVERS}, got {solver!r}")
    if solver == "python":
        req = reference.Request(
            objective, Link(*link), cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms, force=force
        )
        segs, usage, transfers = reference.solve(_python_graph(costs, cloud_keeps_tensors), req)
    elif solver == "ilp":
        from .ilp import solve_ilp

        if not cloud_keeps_tensors and not (costs.is_chain and list(costs.outputs) == [costs.n - 1]):
            raise SolverError("the ILP formulations model a cloud that keeps tensors; use another solver")
        segs, usage, transfers = solve_ilp(
            costs,
            network,
            objective=objective,
            slowdown=cloud_slowdown,
            deadline_ms=deadline_ms,
            energy_budget_mj=energy_budget_mj,
            cloud_budget_ms=cloud_budget_ms,
            force=force,
        )
    else:
        from .brute import best

        found = best(
            costs,
            network,
            objective=objective,
            slowdown=cloud_slowdown,
            deadline_ms=deadline_ms,
            energy_budget_mj=energy_budget_mj,
            cloud_budget_ms=cloud_budget_ms,
            force=force,
            cloud_keeps_tensors=cloud_keeps_tensors,
        )
        if found is None:
            raise InfeasibleError("no schedule meets the constraints (brute force)", "constraints")
        segs, usage, transfers = found
    return Schedule.from_usage(segs, usage, transfers, Link(*link), cloud_slowdown, objective=objective, solver=solver)
