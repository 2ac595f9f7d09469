"""Planning under an accuracy budget: the split and each cut tensor's transfer option, chosen together, exactly.

A *transfer option* is another way to send one tensor to the cloud: fewer
bytes (a lossy option of :mod:`jointdnn_edge.lossy`) at a measured accuracy
cost. The accuracy loss of a schedule is the sum of the costs of the options
its uploads use, each tensor counted once (the assumption: losses add up
over tensors; ``docs/planner.md``, "Accuracy budget").

The search is exact and leaves the work to the compiled planner. For an
*assignment* (an option for some tensors) the cost table is rewritten: an
assigned tensor's bytes become the option's, and a download of it costs
:data:`PENALTY` (options are applied on the phone, before upload; a tensor
the cloud produced is never sent lossily). The optimum over schedules and
options is the best of the compiled planner's optima over the assignments
whose loss fits the budget: a schedule with the options it uses is feasible
for the assignment of exactly those options, priced there as it runs, and
any answer for an assignment loses at most that assignment's loss (it may
leave some assigned tensors unsent). Options are pruned per tensor to those
no other option beats in both bytes and loss, and to those smaller than the
lossless transfer; neither pruning removes an optimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import ConfigError, InfeasibleError
from ..network import Network
from ._backend import _tables, check_bound, compile
from .schedule import Schedule, tensor_sends
from .usage import CODEC_MS, within

__all__ = [
    "PENALTY",
    "AccuracyPlanner",
    "TransferOption",
    "accuracy_planner",
    "budget_request",
    "lossy_uploads",
    "transfer_options",
]

#: What a download of a tensor assigned a lossy option costs the compiled planner (ms and mJ): more than any
#: schedule, so its answers never rely on one (a schedule carrying it is discarded).
PENALTY = 1e12


class TransferOption(NamedTuple):
    """Sending ``tensor`` (cost-table numbering: 0 the model input, ``k + 1`` layer ``k``'s output) with ``option``:
    ``bytes`` per transfer instead of the table's, at accuracy cost ``loss`` (>= 0)."""

    tensor: int
    option: str
    bytes: float
    loss: float


def transfer_options(accuracy: Any, *, tensor_of: Mapping[str, int] | None = None) -> tuple[TransferOption, ...]:
    """The transfer options of an accuracy table, in its order.

    ``accuracy``: the JSON document of ``jointdnn-edge accuracy`` (``{"rows":
    [{"cut", "option", "bytes", "delta_cer", ...}]}``), its rows, or
    :class:`TransferOption` values. A row's tensor is ``tensor_of[cut]`` when
    ``tensor_of`` is given, else its ``layer`` + 1; its option is the
    option's ``label``; its loss is ``delta_cer`` (a negative measured change,
    noise on a finite text set, counts as 0). :class:`ConfigError` for a
    malformed row or a tensor given twice the same option.
    """
    rows = accuracy.get("rows") if isinstance(accuracy, Mapping) else accuracy
    if rows is None or isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise ConfigError("accuracy must be an accuracy table (a JSON object with 'rows'), its rows or TransferOptions")
    out: list[TransferOption] = []
    seen: set[tuple[int, str]] = set()
    for i, row in enumerate(rows):
        opt = row if isinstance(row, TransferOption) else _from_row(i, row, tensor_of)
        if not (isinstance(opt.tensor, int) and opt.tensor >= 0):
            raise ConfigError(f"accuracy row {i}: tensor must be an index >= 0, got {opt.tensor!r}")
        if not (math.isfinite(opt.bytes) and opt.bytes >= 0 and math.isfinite(opt.loss) and opt.loss >= 0):
            raise ConfigError(f"accuracy row {i}: bytes and loss must be finite and >= 0, got {opt.bytes}, {opt.loss}")
        if (opt.tensor, opt.option) in seen:
            raise ConfigError(f"accuracy row {i}: tensor {opt.tensor} has option {opt.option!r} twice")
        seen.add((opt.tensor, opt.option))
        out.append(opt)
    return tuple(out)


def _from_row(i: int, row: Any, tensor_of: Mapping[str, int] | None) -> TransferOption:
    if not isinstance(row, Mapping):
        raise ConfigError(f"accuracy row {i} must be an object, got {type(row).__name__}")
    try:
        cut, option = row["cut"], row["option"]
        label = str(option["label"]) if isinstance(option, Mapping) else str(option)
        if tensor_of is not None:
            if cut not in tensor_of:
                raise ConfigError(f"accuracy row {i}: cut {cut!r} is not a tensor this model can send")
            tensor = int(tensor_of[cut])
        elif "layer" in row:
            tensor = int(row["layer"]) + 1
        else:
            raise ConfigError(f"accuracy row {i} has no 'layer': give tensor_of to place cut {cut!r}")
        return TransferOption(tensor, label, float(row["bytes"]), max(0.0, float(row["delta_cer"])))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"malformed accuracy row {i}: {type(e).__name__}: {e}") from None


def budget_request(max_accuracy_loss: Any, accuracy: Any, phase: str) -> tuple[float, tuple[TransferOption, ...]]:
    """The checked budget and the transfer options of an accuracy table; :class:`ConfigError` unless both are
    given, the budget is a finite number >= 0, the table is well formed and the phase is inference."""
    if max_accuracy_loss is None or accuracy is None:
        raise ConfigError("planning under an accuracy budget needs both max_accuracy_loss and accuracy")
    budget = check_bound("max_accuracy_loss", max_accuracy_loss)
    assert budget is not None
    if phase != "inference":
        raise ConfigError("lossy transfer options are for inference; plan training without an accuracy budget")
    return budget, transfer_options(accuracy)


def lossy_uploads(
    costs: Any, segments: Sequence[Sequence[Any]], assigned: Mapping[int, TransferOption], cloud_keeps_tensors: bool
) -> list[TransferOption]:
    """The assigned options ``segments`` use: those of the tensors it uploads (each once, in tensor order)."""
    up = sorted({t for t, d in tensor_sends(costs, segments, cloud_keeps_tensors=cloud_keeps_tensors) if d == 0})
    return [assigned[t] for t in up if t in assigned]


class AccuracyPlanner:
    """A cost table and its transfer options, compiled for exact planning under an accuracy budget.

    Keeps one compiled solver per assignment it has planned with (the
    rewritten tables), so repeated requests cost only the solves.
    """

    def __init__(
        self,
        costs: Any,
        options: Sequence[TransferOption],
        *,
        solver: str = "auto",
        cloud_keeps_tensors: bool = True,
    ) -> None:
        if getattr(costs, "phase", "inference") != "inference" or not callable(getattr(costs, "replace", None)):
            raise ConfigError("planning under an accuracy budget takes an inference CostTable")
        for o in options:
            if o.tensor > costs.n:
                raise ConfigError(f"transfer option {o.option!r} is for tensor {o.tensor}; the model has 0..{costs.n}")
        self.costs = costs
        self.options = tuple(options)
        self.solver = solver
        self.cloud_keeps_tensors = bool(cloud_keeps_tensors)
        self._compiled: dict[tuple[TransferOption, ...], Any] = {}

    def tensor_bytes(self, t: int) -> float:
        """The bytes the cost table sends for tensor ``t`` (losslessly)."""
        return float(self.costs.input_bytes if t == 0 else self.costs.out_bytes[t - 1])

    def frontier(self, budget: float) -> dict[int, list[TransferOption]]:
        """Per tensor, the options worth trying within ``budget``: under the budget, smaller than the lossless
        transfer, and not beaten by another option in both bytes and loss (ascending loss, descending bytes)."""
        by_tensor: dict[int, list[TransferOption]] = {}
        for o in sorted(self.options, key=lambda o: (o.tensor, o.loss, o.bytes, o.option)):
            if not within(o.loss, budget) or o.bytes >= self.tensor_bytes(o.tensor):
                continue
            kept = by_tensor.setdefault(o.tensor, [])
            if not kept or o.bytes < kept[-1].bytes:
                kept.append(o)
        return by_tensor

    def assignments(self, budget: float) -> list[tuple[TransferOption, ...]]:
        """Every assignment (at most one option per tensor, from :meth:`frontier`) whose losses sum within
        ``budget``; the lossless one (empty) first."""
        choices = list(self.frontier(budget).values())
        out: list[tuple[TransferOption, ...]] = []

        def extend(i: int, chosen: tuple[TransferOption, ...], loss: float) -> None:
            if i == len(choices):
                out.append(chosen)
                return
            extend(i + 1, chosen, loss)
            for o in choices[i]:
                if within(loss + o.loss, budget):
                    extend(i + 1, (*chosen, o), loss + o.loss)

        extend(0, (), 0.0)
        return out

    def solver_for(self, assignment: tuple[TransferOption, ...]) -> Any:
        """The compiled solver of ``assignment``'s rewritten table (compiled once, then kept)."""
        found = self._compiled.get(assignment)
        if found is not None:
            return found[1]
        table = self.costs
        if assignment:
            out_bytes = [float(b) for b in table.out_bytes]
            input_bytes = float(table.input_bytes)
            codec_ms = [list(map(float, r)) for r in table.codec_ms]
            codec_mj = [list(map(float, r)) for r in table.codec_mj]
            for o in assignment:
                if o.tensor == 0:
                    input_bytes = o.bytes
                else:
                    out_bytes[o.tensor - 1] = o.bytes
                codec_ms[o.tensor][1] += PENALTY
                codec_mj[o.tensor][1] += PENALTY
            table = table.replace(out_bytes=out_bytes, input_bytes=input_bytes, codec_ms=codec_ms, codec_mj=codec_mj)
        compiled = compile(table, solver=self.solver, cloud_keeps_tensors=self.cloud_keeps_tensors)
        self._compiled[assignment] = (table, compiled)  # the table lives as long as its compiled solver
        return compiled

    def solve(
        self,
        max_accuracy_loss: float,
        objective: str,
        network: Network,
        cloud_slowdown: float = 1.0,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        force: str | None = None,
    ) -> Schedule:
        """The exact optimum over schedules and options whose accuracy loss is within ``max_accuracy_loss``
        (arguments checked by ``check_request``); :class:`InfeasibleError` when no schedule meets the constraints."""
        attr = "latency_ms" if objective == "latency" else "mobile_energy_mj"
        best: tuple[float, float, int] | None = None
        chosen: Schedule | None = None
        failure: InfeasibleError | None = None
        assignments = [()] if force == "mobile" else self.assignments(max_accuracy_loss)
        for assignment in assignments:
            try:
                s = self.solver_for(assignment).solve(
                    objective, network, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms, force
                )
            except InfeasibleError as e:
                failure = failure or e
                continue
            if s.usage[CODEC_MS] >= PENALTY / 2:  # downloads an assigned tensor: priced wrongly, covered elsewhere
                continue
            value = getattr(s, attr)
            if best is not None and value > best[0]:
                continue
            used = lossy_uploads(self.costs, s.segments, {o.tensor: o for o in assignment}, self.cloud_keeps_tensors)
            key = (value, sum(o.loss for o in used), len(used))
            if best is None or key < best:
                best, chosen = key, s.with_lossy([(o.tensor, o.option) for o in used], key[1])
        if chosen is None:
            raise failure or InfeasibleError("no schedule meets the constraints", "constraints")
        return chosen


def accuracy_planner(
    costs: Any, options: Sequence[TransferOption], *, solver: str = "auto", cloud_keeps_tensors: bool = True
) -> AccuracyPlanner:
    """The :class:`AccuracyPlanner` of ``costs`` and ``options``, kept while the table lives (with its compiled
    assignments), as the backend keeps compiled tables."""
    key = ("accuracy", solver, bool(cloud_keeps_tensors), tuple(options))
    kept = _tables.of(costs)
    found: AccuracyPlanner | None = kept.get(key)
    if found is None:
        found = kept[key] = AccuracyPlanner(costs, options, solver=solver, cloud_keeps_tensors=cloud_keeps_tensors)
    return found
