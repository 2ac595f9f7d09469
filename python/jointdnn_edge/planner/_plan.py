"""``plan()``: one exact planning request, answered by the backend's compiled table or by a checker."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError, InfeasibleError, SolverError
from ..network import Network
from ._accuracy import accuracy_planner, budget_request
from ._backend import SOLVERS, CostsLike, _tables, check_request, compile, table_for_phase
from .schedule import Schedule

_COMPILED = ("auto", "native", "python")
_INF = math.inf


def plan(
    costs: CostsLike,
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
    max_accuracy_loss: float | None = None,
    accuracy: Any = None,
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
    All solvers are exact and agree on the optimal cost; the ILP refuses a
    DAG on a link with a burst (``Network.burst_up_bytes``), which it does
    not model. A training step is priced without the link's burst, as
    :func:`~jointdnn_edge.planner.plan_training` prices it.

    ``max_accuracy_loss`` with ``accuracy`` (an accuracy table, see
    :func:`~jointdnn_edge.planner.transfer_options`) plans under an accuracy
    budget: the split and the transfer option of every uploaded tensor are
    chosen together, exactly, and the schedule's ``lossy`` says which option
    each lossy upload uses (``docs/planner.md``, "Accuracy budget"; solvers
    ``auto``, ``native``, ``python`` and ``brute``).

    Bad arguments raise :class:`ConfigError`; ``solver="native"`` without the
    native module raises :class:`SolverError`.
    """
    if (
        network.__class__ is Network
        and deadline_ms is None
        and energy_budget_mj is None
        and cloud_budget_ms is None
        and force is None
        and cloud_slowdown.__class__ is float
        and 0.0 < cloud_slowdown < _INF
        and phase == "inference"
        and cloud_keeps_tensors is True
        and max_accuracy_loss is None
        and accuracy is None
        and (objective == "latency" or objective == "energy")
    ):
        # The common request, on a table compiled before: nothing to normalise (check_request would return
        # these arguments as they are), one lookup of the solver compile() kept. Plans are hot paths.
        try:
            compiled = costs._planned[solver]  # type: ignore[attr-defined]  # a CostTable keeps its solvers
        except (AttributeError, KeyError, TypeError):  # not compiled yet, another table type, a bad solver
            compiled = _tables.of(costs).get(solver) if solver.__class__ is str else None
        if compiled is not None:
            return compiled.solve_unconstrained(objective, network, cloud_slowdown)  # type: ignore[no-any-return]
    network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms = check_request(
        network, objective, force, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms
    )
    if phase == "training" and (network.burst_up_bytes or network.burst_down_bytes):
        network = network.without_burst()  # see the docstring
    if max_accuracy_loss is not None or accuracy is not None:
        return _plan_with_options(
            costs, network, objective, cloud_slowdown, (deadline_ms, energy_budget_mj, cloud_budget_ms), force,
            phase, solver, cloud_keeps_tensors, max_accuracy_loss, accuracy,
        )  # fmt: skip
    if solver in _COMPILED:
        compiled = compile(costs, phase=phase, solver=solver, cloud_keeps_tensors=cloud_keeps_tensors)
        return compiled.solve(objective, network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms, force)
    if solver not in SOLVERS:
        raise ConfigError(f"solver must be one of {SOLVERS}, got {solver!r}")
    costs = table_for_phase(costs, phase)
    # the checkers take the same checked request
    request: dict[str, Any] = {
        "objective": objective,
        "slowdown": cloud_slowdown,
        "deadline_ms": deadline_ms,
        "energy_budget_mj": energy_budget_mj,
        "cloud_budget_ms": cloud_budget_ms,
        "force": force,
    }
    if solver == "ilp":
        from .ilp import solve_ilp

        if not cloud_keeps_tensors and not (costs.is_chain and list(costs.outputs) == [costs.n - 1]):
            raise SolverError("the ILP formulations model a cloud that keeps tensors; use another solver")
        segs, usage, transfers = solve_ilp(costs, network, **request)
    else:
        from .brute import best

        found = best(costs, network, **request, cloud_keeps_tensors=cloud_keeps_tensors)
        if found is None:
            raise InfeasibleError("no schedule meets the constraints (brute force)", "constraints")
        segs, usage, transfers = found
    return Schedule.from_usage(segs, usage, transfers, network, cloud_slowdown, objective=objective, solver=solver)


def _plan_with_options(
    costs: CostsLike,
    network: Network,
    objective: str,
    slowdown: float,
    bounds: tuple[float | None, float | None, float | None],
    force: str | None,
    phase: str,
    solver: str,
    cloud_keeps_tensors: bool,
    max_accuracy_loss: Any,
    accuracy: Any,
) -> Schedule:
    """:func:`plan` under an accuracy budget (arguments but the budget's already checked)."""
    budget, options = budget_request(max_accuracy_loss, accuracy, phase)
    if solver == "brute":
        from .brute import best_with_options

        table = table_for_phase(costs, phase)
        deadline, energy, cloud = bounds
        found = best_with_options(
            table, network, options, budget, objective=objective, slowdown=slowdown, deadline_ms=deadline,
            energy_budget_mj=energy, cloud_budget_ms=cloud, force=force, cloud_keeps_tensors=cloud_keeps_tensors,
        )  # fmt: skip
        if found is None:
            raise InfeasibleError("no schedule meets the constraints (brute force)", "constraints")
        segs, usage, transfers, used, loss = found
        s = Schedule.from_usage(segs, usage, transfers, network, slowdown, objective=objective, solver="brute")
        return s.with_lossy([(o.tensor, o.option) for o in used], loss)
    if solver not in _COMPILED:
        raise ConfigError(f"an accuracy budget is planned by the solvers {(*_COMPILED, 'brute')}, not {solver!r}")
    return accuracy_planner(costs, options, solver=solver, cloud_keeps_tensors=cloud_keeps_tensors).solve(
        budget, objective, network, slowdown, *bounds, force
    )
