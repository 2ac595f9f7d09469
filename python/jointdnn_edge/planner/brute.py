"""Brute-force planning: the test oracle for small models.

Two exhaustive methods, independent of the state-graph solvers:

* :func:`all_schedules` enumerates every grouping and every platform choice
  (``2·3^(N-1)`` schedules when all groups are offered) and evaluates each
  with :func:`~jointdnn_edge.planner.schedule.evaluate_usage`. Handles any
  objective and constraints; practical to about N = 9.
* :func:`best_by_placement` enumerates the ``2^N`` per-layer placements;
  for a placement, transfers and switches are fixed (runs are maximal
  same-platform sequences either way) and the best grouping
  of each run of same-platform layers is an interval DP on one scalar cost.
  Exact for unconstrained objectives; practical to about N = 14. On a link
  with a burst the credit depends on the grouping within a run (a weight
  download or a DAG's later upload is credited only with the group that
  starts or ends the run), so the DP prices a run's first and last group with
  the credit of the transfers sent with it (which layer each transfer goes
  with is fixed by the placement).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from ..network import Network
from .schedule import _tensor_sends, burst_credit, bytes_sent_with, evaluate_usage
from .usage import CLOUD_MS, CREDIT_DOWN, CREDIT_UP, MOBILE_MJ, MOBILE_MS, dot, weights, within

Segments = list[tuple[int, int, str]]


def all_schedules(
    costs: Any,
    force: str | None = None,
    *,
    cloud_keeps_tensors: bool = True,
    burst: tuple[float, float] = (0.0, 0.0),
) -> Iterator[tuple[Segments, list[float], int]]:
    """Every schedule with its usage (on a link with ``burst``) and transfer count."""
    n = costs.n
    platforms = ("mobile", "cloud") if force is None else (force,)

    def rec(start: int, cur: Segments) -> Iterator[Segments]:
        if start == n:
            yield list(cur)
            return
        for end in range(start, n):
            for p in platforms:
                table = costs.mobile_ms if p == "mobile" else costs.cloud_ms
                if math.isfinite(table[start][end]):
                    cur.append((start, end, p))
                    yield from rec(end + 1, cur)
                    cur.pop()

    for segs in rec(0, []):
        u, k = evaluate_usage(costs, segs, cloud_keeps_tensors=cloud_keeps_tensors, burst=burst)
        yield segs, u, k


def best(
    costs: Any,
    network: Network,
    *,
    objective: str = "latency",
    slowdown: float = 1.0,
    deadline_ms: float | None = None,
    energy_budget_mj: float | None = None,
    cloud_budget_ms: float | None = None,
    force: str | None = None,
    cloud_keeps_tensors: bool = True,
) -> tuple[Segments, list[float], int] | None:
    """The optimum by full enumeration (None when nothing is feasible)."""
    w = {m: weights(m, network, slowdown) for m in ("latency", "energy", "cloud")}
    bounds = [
        (m, b)
        for m, b in (("latency", deadline_ms), ("energy", energy_budget_mj), ("cloud", cloud_budget_ms))
        if b is not None
    ]
    best_v = math.inf
    best_s = None
    for segs, u, k in all_schedules(costs, force, cloud_keeps_tensors=cloud_keeps_tensors, burst=network.burst):
        if not all(within(dot(w[m], u), b) for m, b in bounds):
            continue
        v = dot(w[objective], u)
        if v < best_v:
            best_v, best_s = v, (segs, u, k)
    return best_s


def best_by_placement(
    costs: Any,
    network: Network,
    *,
    objective: str = "latency",
    slowdown: float = 1.0,
    force: str | None = None,
    cloud_keeps_tensors: bool = True,
) -> tuple[float, Segments]:
    """Unconstrained optimum by enumerating per-layer placements (see the module docs)."""
    n = costs.n
    w = weights(objective, network, slowdown)
    bursty = network.burst != (0.0, 0.0)
    credit_up, credit_down = -w[CREDIT_UP], -w[CREDIT_DOWN]  # what a byte the burst carries saves

    def mobile_cost(i: int, j: int) -> float:
        t = costs.mobile_ms[i][j]
        return w[MOBILE_MS] * t + w[MOBILE_MJ] * costs.mobile_mj[i][j] if math.isfinite(t) else math.inf

    def cloud_cost(i: int, j: int) -> float:
        t = costs.cloud_ms[i][j]
        return w[CLOUD_MS] * t if math.isfinite(t) else math.inf

    group_cost = {"mobile": mobile_cost, "cloud": cloud_cost}
    choices: Sequence[tuple[str, ...]] = (
        list(itertools.product(("mobile", "cloud"), repeat=n)) if force is None else [(force,) * n]
    )

    def credit(sent: list[list[float]], a: int, b: int, p: str, before: str) -> float:
        """What the burst saves on the group a..b on ``p`` after a group on ``before``, ``sent[k]`` the bytes (up,
        down) sent with layer ``k``'s group."""
        if not bursty:
            return 0.0
        up, down = (sum(sent[k][d] for k in range(a, b + 1)) for d in (0, 1))
        carried_up, carried_down = burst_credit(network.burst, up, down, p, before, b == n - 1)
        return credit_up * carried_up + credit_down * carried_down

    best_v, best_segs = math.inf, []
    for place in choices:
        # bytes sent with each layer's group, by direction (fixed by the placement: see _tensor_sends)
        sent: list[list[float]] = []
        if bursty:
            runs = [0] * n
            for layer in range(1, n):
                runs[layer] = runs[layer - 1] + (place[layer] != place[layer - 1])
            sent = bytes_sent_with(costs, place, _tensor_sends(costs, place, runs, cloud_keeps_tensors))

        segs: Segments = []
        compute = 0.0
        i = 0
        while i < n:
            j = i
            while j + 1 < n and place[j + 1] == place[i]:
                j += 1
            # best grouping of the run i..j on place[i]: interval DP
            f = group_cost[place[i]]
            before_run = place[i - 1] if i > 0 else "mobile"
            dp = [0.0] + [math.inf] * (j - i + 1)
            cut = [0] * (j - i + 2)
            for e in range(1, j - i + 2):
                for s in range(e):
                    before = before_run if s == 0 else place[i]
                    v = dp[s] + f(i + s, i + e - 1) - credit(sent, i + s, i + e - 1, place[i], before)
                    if v < dp[e]:
                        dp[e], cut[e] = v, s
            run: Segments = []
            e = j - i + 1
            while e > 0:
                s = cut[e]
                run.append((i + s, i + e - 1, place[i]))
                e = s
            segs.extend(reversed(run))
            compute += dp[j - i + 1]
            i = j + 1
        if not math.isfinite(compute):
            continue
        u, _ = evaluate_usage(costs, segs, cloud_keeps_tensors=cloud_keeps_tensors, burst=network.burst)
        v = dot(w, u)
        if v < best_v:
            best_v, best_segs = v, segs
    return best_v, best_segs


def best_with_options(
    costs: Any,
    network: Network,
    options: Sequence[Any],
    max_accuracy_loss: float,
    *,
    objective: str = "latency",
    slowdown: float = 1.0,
    deadline_ms: float | None = None,
    energy_budget_mj: float | None = None,
    cloud_budget_ms: float | None = None,
    force: str | None = None,
    cloud_keeps_tensors: bool = True,
) -> tuple[Segments, list[float], int, list[Any], float] | None:
    """The optimum over every schedule and every choice of transfer option per uploaded tensor, by enumeration.

    ``options``: :class:`~jointdnn_edge.planner.TransferOption` values. A
    tensor the phone produced and uploads is sent losslessly or with any one
    of its options (the same at every upload); the choice's loss, the sum of
    its options' losses, must be within ``max_accuracy_loss``. Returns
    ``(segments, usage, transfers, options used, loss)``, ties going to the
    smaller loss; None when nothing is feasible.
    """
    from .schedule import tensor_sends

    w = {m: weights(m, network, slowdown) for m in ("latency", "energy", "cloud")}
    bounds = [
        (m, b)
        for m, b in (("latency", deadline_ms), ("energy", energy_budget_mj), ("cloud", cloud_budget_ms))
        if b is not None
    ]
    by_tensor: dict[int, list[Any]] = {}
    for o in options:
        by_tensor.setdefault(o.tensor, []).append(o)
    best_key: tuple[float, float] | None = None
    found = None
    burst = network.burst
    for segs, u, k in all_schedules(costs, force, cloud_keeps_tensors=cloud_keeps_tensors, burst=burst):
        place = [p for a, b, p in segs for _ in range(a, b + 1)]
        uploads: dict[int, int] = {}
        for t, d in tensor_sends(costs, segs, cloud_keeps_tensors=cloud_keeps_tensors):
            if d == 0 and (t == 0 or place[t - 1] == "mobile"):
                uploads[t] = uploads.get(t, 0) + 1
        lossable = [t for t in uploads if t in by_tensor]
        for picks in itertools.product(*[[None, *by_tensor[t]] for t in lossable]):
            used = [o for o in picks if o is not None]
            loss = sum(o.loss for o in used)
            if not within(loss, max_accuracy_loss):
                continue
            # the options' bytes in place of the tensors' (a phone's tensor is only ever uploaded): evaluated again,
            # since a burst's credit is not linear in the bytes
            v = u if not used else evaluate_usage(
                _Resized(costs, {o.tensor: o.bytes for o in used}), segs,
                cloud_keeps_tensors=cloud_keeps_tensors, burst=burst,
            )[0]  # fmt: skip
            if not all(within(dot(w[m], v), b) for m, b in bounds):
                continue
            key = (dot(w[objective], v), loss)
            if best_key is None or key < best_key:
                best_key, found = key, (segs, v, k, sorted(used), loss)
    return found


class _Resized:
    """``costs`` with some tensors' sizes replaced (tensor numbering of :mod:`jointdnn_edge.costs`), for
    :func:`~jointdnn_edge.planner.schedule.evaluate_usage`."""

    def __init__(self, costs: Any, sizes: dict[int, float]) -> None:
        self._costs = costs
        self.input_bytes = sizes.get(0, costs.input_bytes)
        self.out_bytes = [sizes.get(t + 1, b) for t, b in enumerate(costs.out_bytes)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._costs, name)
