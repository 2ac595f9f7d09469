"""Exact online-training schedules: both chains placed, and the activations the backward pass needs paid for.

The training step is the exact table of :func:`exact_training_table`: the N
forward layers, then the backward layers in execution order (the backward
of the last layer first), where the backward of layer ``f`` reads the
tensors forward layer ``f`` read (its stored input activations) and the
gradient from the backward of ``f``'s consumers. A tensor produced on one
platform and read on the other crosses the link once, right after it is
produced, and is kept where it arrived until its last reader (the cloud
keeps tensors, as in the paper). So when forward layer ``f + 1`` runs on
the same platform as layer ``f`` but its backward runs on the other one,
layer ``f``'s output is moved during the forward pass for the backward pass
alone: an *activation move*, priced like every transfer (bytes / bandwidth,
codec time and energy, radio energy). Backward layers that run on the cloud
download the weights they update (the paper's model).

Solvers, all exact for the table:

* ``"dp"`` (chains): a dynamic programme over layer positions. The backward
  of layer ``f`` sits at position ``f``, so every transfer, switch and
  weight download of the exact table involves layers at most one position
  apart; the state at a position is the platform and the start of the open
  group of each chain, and the forward and backward groupings are chosen
  independently. ``O(N · G²)`` states for groups of at most ``G`` layers.
* ``"ilp"`` (any DAG, and constraints): the HiGHS placement MILP
  (:mod:`.ilp`) on the same exact table.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..costs import CostTable
from ..errors import ConfigError, SolverError
from ..network import Network
from ._backend import check_request
from .schedule import Schedule, Segment, evaluate_usage, tensor_consumers
from .usage import BYTES_DOWN, BYTES_UP, CLOUD_MS, CODEC_MJ, CODEC_MS, DIMS, MOBILE_MJ, MOBILE_MS, SWITCHES, dot
from .usage import weights as metric_weights

__all__ = ["TRAINING_SOLVERS", "ActivationMove", "TrainingSchedule", "exact_training_table", "plan_training"]

TRAINING_SOLVERS = ("auto", "dp", "ilp")
_M, _C = 0, 1
_NAMES = ("mobile", "cloud")


@dataclass(frozen=True)
class ActivationMove:
    """A forward tensor moved only because a backward layer reads it on the other platform.

    ``tensor``: 0 is the model input, ``k + 1`` the output of forward layer
    ``k``; it is sent once to ``to`` right after it is produced and kept there
    for ``readers`` (forward layer numbers of the backward layers that read it).
    A model output read by the loss (the backward of the layer that produced
    it) is not one: the paper's chain moves it too.
    """

    tensor: int
    to: str
    bytes: float
    readers: tuple[int, ...]


@dataclass(frozen=True)
class TrainingSchedule:
    """One training step: forward groups, backward groups and the activation moves, with its costs.

    ``schedule`` covers the exact table's layers (``table``: forward ``0..N-1``,
    then the backward layers in execution order) and holds the costs;
    ``forward`` and ``backward`` are the same groups in forward layer numbers
    (``backward`` in execution order, the last layer's first).
    """

    schedule: Schedule
    table: CostTable
    forward: tuple[Segment, ...]
    backward: tuple[Segment, ...]
    activation_moves: tuple[ActivationMove, ...]
    solver: str

    @property
    def latency_ms(self) -> float:
        return self.schedule.latency_ms

    @property
    def mobile_energy_mj(self) -> float:
        return self.schedule.mobile_energy_mj

    @property
    def cloud_ms(self) -> float:
        return self.schedule.cloud_ms

    def pattern(self) -> str:
        """The run pattern of the whole step in execution order, e.g. ``"mobile-cloud-mobile"``."""
        return self.schedule.pattern()


# ------------------------------------------------------------------ the exact table
def exact_training_table(
    forward: CostTable,
    backward: CostTable | None = None,
    weight_bytes: Sequence[float] | None = None,
    *,
    trainable_from: int = 0,
) -> CostTable:
    """The exact training table: ``CostTable.training(..., activation_edges=True)`` for layers ``trainable_from..``.

    With ``trainable_from = k > 0`` only layers ``k..N-1`` are trained (fine-tuning):
    the backward pass stops after layer ``k``'s backward, so layers below ``k``
    have no backward layer, keep no activations and download no weights.
    """
    n = forward.n
    if not 0 <= int(trainable_from) < n:
        raise ConfigError(f"trainable_from must be in 0..{n - 1}, got {trainable_from!r}")
    k = int(trainable_from)
    full = CostTable.training(forward, backward, weight_bytes, activation_edges=True)
    full.meta["training"]["trainable_from"] = k
    if k == 0:
        return full
    m = 2 * n - k  # the backward layers of 0..k-1 are the last k in execution order

    def cut(a: Any) -> np.ndarray:
        return np.asarray(a)[:m, :m]

    return CostTable(
        cut(full.mobile_ms),
        cut(full.cloud_ms),
        np.asarray(full.out_bytes)[:m],
        full.input_bytes,
        mobile_mj=cut(full.mobile_mj),
        edges=[(u, v) for u, v in full.edges if v < m],
        weight_bytes=None if full.weight_bytes is None else np.asarray(full.weight_bytes)[:m],
        names=full.names[:m],
        outputs=(),
        cloud_download_bytes=np.asarray(full.cloud_download_bytes)[:m],
        codec_ms=np.asarray(full.codec_ms)[: m + 1],
        codec_mj=np.asarray(full.codec_mj)[: m + 1],
        phase="training",
        meta=full.meta,
    )


def _forward_layers(table: CostTable) -> int:
    info = table.meta.get("training") if table.phase == "training" else None
    if not isinstance(info, dict) or "forward_layers" not in info:
        raise ConfigError("plan_training takes an inference table or a table from exact_training_table")
    return int(info["forward_layers"])


def _position(i: int, n: int) -> int:
    """The forward layer number of layer ``i`` of a training table with ``n`` forward layers."""
    return i if i < n else 2 * n - 1 - i


# ------------------------------------------------------------------ the DP (chains)
class _Local:
    """Usage of every transfer, switch and weight download, charged at the later of the positions it involves.

    ``usage[k][(a, b, c, d)]``: what position ``k`` adds when the forward and
    backward layers at ``k - 1`` run on ``a``, ``b`` and those at ``k`` on
    ``c``, ``d`` (platform indices; a chain without a layer there ignores it).
    """

    def __init__(self, table: CostTable, n: int) -> None:
        self.n = n
        size = table.n
        at: dict[tuple[int, int], int] = {}  # (chain, position) -> layer
        for i in range(size):
            at[(0 if i < n else 1, _position(i, n))] = i
        self.at = at
        # terms: (position, layers, what it is, usage)
        terms: list[tuple[int, list[int], Any, list[float]]] = []
        if table.outputs:
            raise SolverError("a training table has no model outputs to return")
        for t, readers in enumerate(tensor_consumers(table)):
            producer = None if t == 0 else t - 1
            if not readers:
                continue
            layers = ([] if producer is None else [producer]) + readers
            for direction in (0, 1):
                u = [0.0] * DIMS
                u[BYTES_UP if direction == 0 else BYTES_DOWN] = float(
                    table.input_bytes if t == 0 else table.out_bytes[t - 1]
                )
                u[CODEC_MS] = float(table.codec_ms[t][direction])
                u[CODEC_MJ] = float(table.codec_mj[t][direction])
                terms.append((self._pos(layers), layers, ("tensor", producer, readers, direction, t), u))
        for i in range(size):
            w = float(table.cloud_download_bytes[i])
            if w > 0:
                u = [0.0] * DIMS
                u[BYTES_DOWN] = w
                terms.append((_position(i, n), [i], ("download", i), u))
        switch = [0.0] * DIMS
        switch[SWITCHES] = 1.0
        for i in range(-1, size):
            pair = [x for x in (i, i + 1) if 0 <= x < size]
            terms.append((self._pos(pair), pair, ("switch", i), switch))
        self.usage: list[dict[tuple[int, int, int, int], list[float]]] = []
        combos = [(a, b, c, d) for a in (0, 1) for b in (0, 1) for c in (0, 1) for d in (0, 1)]
        by_pos: list[list[tuple[Any, list[float]]]] = [[] for _ in range(n)]
        for pos, _, what, u in terms:
            by_pos[pos].append((what, u))
        for k in range(n):
            row = {}
            for combo in combos:
                total = [0.0] * DIMS
                for what, u in by_pos[k]:
                    if self._applies(what, k, combo, size):
                        total = [x + y for x, y in zip(total, u)]
                row[combo] = total
            self.usage.append(row)

    def _pos(self, layers: list[int]) -> int:
        ps = [_position(i, self.n) for i in layers] or [0]
        if max(ps) - min(ps) > 1:
            raise SolverError("the training table is not a chain: a tensor is read two or more layers away")
        return max(ps)

    def _platform(self, i: int, k: int, combo: tuple[int, int, int, int]) -> int:
        chain = 0 if i < self.n else 1
        pos = _position(i, self.n)
        return combo[(2 if pos == k else 0) + chain]

    def _applies(self, what: Any, k: int, combo: tuple[int, int, int, int], size: int) -> bool:
        kind = what[0]
        if kind == "download":
            return self._platform(what[1], k, combo) == _C
        if kind == "switch":
            i = what[1]
            a = _M if i < 0 else self._platform(i, k, combo)
            b = _M if i + 1 >= size else self._platform(i + 1, k, combo)
            return a != b
        _, producer, readers, direction, _t = what
        src = _M if producer is None else self._platform(producer, k, combo)
        if direction != src:  # this term is the transfer leaving the other platform
            return False
        return any(self._platform(r, k, combo) != src for r in readers)


_LOCAL: dict[int, _Local] = {}


def _local_of(table: CostTable, n: int) -> _Local:
    """The table's :class:`_Local`, built once while the table lives (a table is planned many times)."""
    found = _LOCAL.get(id(table))
    if found is None:
        found = _LOCAL[id(table)] = _Local(table, n)
        weakref.finalize(table, _LOCAL.pop, id(table), None)
    return found


def _solve_dp(table: CostTable, n: int, w: list[float], platforms: tuple[int, ...]) -> list[Segment]:
    """The optimal exact-table segments by the position DP (see the module docstring)."""
    size = table.n
    first_b = 2 * n - size  # the first trained layer: positions below it have no backward layer
    local = _local_of(table, n)
    lc = [{c: dot(w, u) for c, u in row.items()} for row in local.usage]
    longest = table.max_group()
    mobile_ms, cloud_ms, mobile_mj = table.mobile_ms, table.cloud_ms, table.mobile_mj

    def group(a: int, b: int, p: int) -> float:  # layers a..b of the table
        if p == _M:
            t = float(mobile_ms[a, b])
            return w[MOBILE_MS] * t + w[MOBILE_MJ] * float(mobile_mj[a, b]) if math.isfinite(t) else math.inf
        t = float(cloud_ms[a, b])
        return w[CLOUD_MS] * t if math.isfinite(t) else math.inf

    def fwd(a: int, b: int, p: int) -> float:
        return group(a, b, p)

    def bwd(a: int, b: int, p: int) -> float:  # forward positions a..b -> backward layers, execution order
        return group(2 * n - 1 - b, 2 * n - 1 - a, p)

    Key = tuple[int, int, int, int]  # (forward group start, platform, backward group start or -1, platform)
    layer: list[dict[Key, tuple[float, Key | None]]] = []
    start: dict[Key, tuple[float, Key | None]] = {}
    for pf in platforms:
        for pb in platforms if first_b == 0 else (_M,):
            key = (0, pf, 0 if first_b == 0 else -1, pb)
            start[key] = (lc[0][(_M, _M, pf, pb)], None)
    layer.append(start)
    for k in range(1, n):
        nxt: dict[Key, tuple[float, Key | None]] = {}
        for key, (v, _) in layer[-1].items():
            sf, pf, sb, pb = key
            f_opts = []
            if k - sf + 1 <= longest:
                f_opts.append((sf, pf, 0.0))
            close_f = fwd(sf, k - 1, pf)
            if math.isfinite(close_f):
                f_opts += [(k, q, close_f) for q in platforms]
            if k < first_b:
                b_opts = [(-1, _M, 0.0)]
            elif sb < 0:
                b_opts = [(k, q, 0.0) for q in platforms]
            else:
                b_opts = [(sb, pb, 0.0)] if k - sb + 1 <= longest else []
                close_b = bwd(sb, k - 1, pb)
                if math.isfinite(close_b):
                    b_opts += [(k, q, close_b) for q in platforms]
            for nsf, npf, cf in f_opts:
                for nsb, npb, cb in b_opts:
                    nv = v + cf + cb + lc[k][(pf, pb, npf, npb)]
                    nkey = (nsf, npf, nsb, npb)
                    old = nxt.get(nkey)
                    if old is None or nv < old[0]:
                        nxt[nkey] = (nv, key)
        layer.append(nxt)
    best_v, best_key = math.inf, None
    for key, (v, _) in layer[-1].items():
        sf, pf, sb, pb = key
        total = v + fwd(sf, n - 1, pf) + (bwd(sb, n - 1, pb) if sb >= 0 else 0.0)
        if total < best_v:
            best_v, best_key = total, key
    if best_key is None:
        raise SolverError("no training schedule: some layer is offered on neither allowed platform")
    keys: list[Key] = []
    cur: Key | None = best_key
    for k in range(n - 1, -1, -1):
        assert cur is not None
        keys.append(cur)
        cur = layer[k][cur][1]
    keys.reverse()  # keys[k]: the groups open at layer k
    fsegs: list[Segment] = []
    bsegs: list[Segment] = []
    for k, (sf, pf, sb, pb) in enumerate(keys):
        if k + 1 == n or keys[k + 1][0] != sf:
            fsegs.append((sf, k, _NAMES[pf]))
        if sb >= 0 and (k + 1 == n or keys[k + 1][2] != sb):
            bsegs.append((2 * n - 1 - k, 2 * n - 1 - sb, _NAMES[pb]))
    return fsegs + sorted(bsegs)


# ------------------------------------------------------------------ the request
def plan_training(
    forward: CostTable,
    network: Network | str,
    *,
    objective: str = "latency",
    backward: CostTable | None = None,
    weight_bytes: Sequence[float] | None = None,
    trainable_from: int = 0,
    force: str | None = None,
    cloud_slowdown: float = 1.0,
    deadline_ms: float | None = None,
    energy_budget_mj: float | None = None,
    cloud_budget_ms: float | None = None,
    solver: str = "auto",
) -> TrainingSchedule:
    """The optimal training step of ``forward`` on ``network``, activations moved and paid for.

    ``forward`` is an inference table (its exact training table is built with
    ``backward``, ``weight_bytes`` and ``trainable_from``, see
    :func:`exact_training_table`) or a table :func:`exact_training_table`
    returned. ``objective``, ``force``, ``cloud_slowdown`` and the bounds mean
    what they mean in :func:`~jointdnn_edge.planner.plan`. ``solver``:
    ``"dp"`` (chains, unconstrained), ``"ilp"`` (any table, bounds) or
    ``"auto"`` (the DP where it applies, else the ILP). Every answer is exact
    for the table and re-evaluated on it from the cost model's definition.
    Transfers are priced at the link's rate: a link's burst
    (``Network.burst_up_bytes``) is not credited, since a training step moves
    whole activations and weights, against which a burst of a few kilobytes
    is noise (the returned schedule's costs say so: they carry no credit).
    """
    network, slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms = check_request(
        network, objective, force, cloud_slowdown, deadline_ms, energy_budget_mj, cloud_budget_ms
    )
    network = network.without_burst()
    if solver not in TRAINING_SOLVERS:
        raise ConfigError(f"solver must be one of {TRAINING_SOLVERS}, got {solver!r}")
    if forward.phase == "training":
        if backward is not None or weight_bytes is not None or trainable_from:
            raise ConfigError("backward, weight_bytes and trainable_from describe an inference table")
        table = forward
    else:
        table = exact_training_table(forward, backward, weight_bytes, trainable_from=trainable_from)
    n = _forward_layers(table)
    if not (table.meta["training"].get("activation_edges") and n < table.n <= 2 * n):
        raise ConfigError("plan_training takes a table from exact_training_table (activation edges)")
    bounded = deadline_ms is not None or energy_budget_mj is not None or cloud_budget_ms is not None
    if solver == "auto":
        solver = "ilp" if bounded or not _is_local(table, n) else "dp"
    if solver == "dp":
        if bounded:
            raise ConfigError("the training DP plans without bounds; use solver='ilp' for bounds")
        platforms = (_M, _C) if force is None else ((_M,) if force == "mobile" else (_C,))
        segs = _solve_dp(table, n, metric_weights(objective, network, slowdown), platforms)
    else:
        from .ilp import solve_ilp

        segs, _, _ = solve_ilp(
            table,
            network,
            objective=objective,
            slowdown=slowdown,
            deadline_ms=deadline_ms,
            energy_budget_mj=energy_budget_mj,
            cloud_budget_ms=cloud_budget_ms,
            force=force,
            formulation="placement",
        )
    usage, transfers = evaluate_usage(table, segs)
    sched = Schedule.from_usage(segs, usage, transfers, network, slowdown, objective=objective, solver=solver)
    return _training_schedule(sched, table, n, solver)


def _is_local(table: CostTable, n: int) -> bool:
    pos = [_position(i, n) for i in range(table.n)]
    return all(abs((0 if u < 0 else pos[u]) - pos[v]) <= 1 for u, v in table.edges)


def _training_schedule(sched: Schedule, table: CostTable, n: int, solver: str) -> TrainingSchedule:
    place = sched.placement()
    fwd = tuple(s for s in sched.segments if s[0] < n)
    bwd = tuple((2 * n - 1 - b, 2 * n - 1 - a, p) for a, b, p in sched.segments if a >= n)
    moves = []
    for t, readers in enumerate(tensor_consumers(table)):
        if t > n:
            break
        src = "mobile" if t == 0 else place[t - 1]
        fwd_elsewhere = any(place[r] != src for r in readers if r < n)
        # the backward of the producer itself reads its output only as the loss (the chain's own edge)
        back = tuple(
            sorted(_position(r, n) for r in readers if r >= n and place[r] != src and _position(r, n) != t - 1)
        )
        if back and not fwd_elsewhere:
            to = "cloud" if src == "mobile" else "mobile"
            size = float(table.input_bytes if t == 0 else table.out_bytes[t - 1])
            moves.append(ActivationMove(t, to, size, back))
    return TrainingSchedule(sched, table, fwd, bwd, tuple(moves), solver)
