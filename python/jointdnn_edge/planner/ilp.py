"""Integer linear programs for the planning problem, solved with HiGHS (``scipy.optimize.milp``).

Two formulations, both exact:

``"paper"`` (chains): the JointDNN paper's ILP (Eshratifar et al., Eqs. 2-20).
Binary ``m[i,j]`` / ``c[i,j]`` select group ``i..j`` on the mobile / cloud;
every layer is covered exactly once (Eq. 5); ``u[i,j] = m[i,j] · Σ_k c[j+1,k]``
and ``d[i,j] = c[i,j] · Σ_k m[j+1,k]`` (Eqs. 6-7, linearised with three
inequalities each; they may be continuous in [0, 1] since the inequalities
pin them to the product of binaries) mark an upload / download of layer
``j``'s output; a first group on the cloud uploads the input and a last group
on the cloud downloads the result (Eq. 3); in training, cloud groups download
their updated weights (Eq. 13). In a chain every transfer is one platform
switch, which is how a round trip (``rtt_ms``, zero in the paper) and codec
costs enter. Constraints are Eqs. 18-20.

``"placement"`` (any DAG): the same group variables, the cloud indicator of a
layer ``x[l] = Σ_{i<=l<=j} c[i,j]``, per-tensor transfer variables
``up[t] >= x[v] - x[p]`` and ``down[t] >= x[p] - x[v]`` over its consumers
``v`` (``down[t] >= x[p]`` for model outputs; the input has ``x = 0``), and
switch variables ``s[l] >= |x[l] - x[l-1]|`` with ``x[-1] = x[n] = 0``.

Use these to cross-check the state-graph solver or where an ILP is preferred;
the state-graph solver is orders of magnitude faster.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InfeasibleError, SolverError
from ..network import Network
from .schedule import evaluate_usage, tensor_consumers
from .usage import (
    BYTES_DOWN,
    BYTES_UP,
    CLOUD_MS,
    CODEC_MJ,
    CODEC_MS,
    CREDIT_DOWN,
    CREDIT_UP,
    DIMS,
    MOBILE_MJ,
    MOBILE_MS,
    SWITCHES,
    weights,
)

Segments = list[tuple[int, int, str]]


def _upload_usage(costs: Any, t: int) -> list[float]:
    u = [0.0] * DIMS
    u[BYTES_UP] = float(costs.input_bytes if t == 0 else costs.out_bytes[t - 1])
    u[CODEC_MS] = float(costs.codec_ms[t][0])
    u[CODEC_MJ] = float(costs.codec_mj[t][0])
    return u


def _download_usage(costs: Any, t: int) -> list[float]:
    u = [0.0] * DIMS
    u[BYTES_DOWN] = float(costs.input_bytes if t == 0 else costs.out_bytes[t - 1])
    u[CODEC_MS] = float(costs.codec_ms[t][1])
    u[CODEC_MJ] = float(costs.codec_mj[t][1])
    return u


class _Model:
    """A MILP under construction: variables with per-metric cost rows, linear constraints."""

    def __init__(self) -> None:
        self.usage: list[list[float]] = []  # per variable: its usage contribution
        self.integer: list[int] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, usage: list[float] | None = None, integer: bool = True) -> int:
        self.usage.append(usage or [0.0] * DIMS)
        self.integer.append(1 if integer else 0)
        return len(self.usage) - 1

    def row(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((coefs, lo, hi))

    def solve(self, w_obj: list[float], bounds: list[tuple[list[float], float]]) -> np.ndarray:
        from scipy.optimize import LinearConstraint, milp
        from scipy.sparse import coo_matrix

        u = np.asarray(self.usage)
        nv = len(self.usage)
        rows = list(self.rows)
        for w, b in bounds:
            coef = u @ np.asarray(w)
            rows.append(({i: float(c) for i, c in enumerate(coef) if c != 0.0}, -math.inf, b * (1 + 1e-9) + 1e-9))
        r, c, v = [], [], []
        for k, (coefs, _, _) in enumerate(rows):
            for i, x in coefs.items():
                r.append(k)
                c.append(i)
                v.append(x)
        a = coo_matrix((v, (r, c)), shape=(len(rows), nv)).tocsr()
        lo = np.array([x[1] for x in rows])
        hi = np.array([x[2] for x in rows])
        with _quiet_stdout():
            res = milp(
                c=u @ np.asarray(w_obj),
                integrality=np.asarray(self.integer),
                bounds=(0, 1),
                constraints=LinearConstraint(a, lo, hi),
                options={"mip_rel_gap": 1e-9, "presolve": True},
            )
        if res.status == 2:
            raise InfeasibleError("the ILP has no feasible solution under the constraints", "ilp")
        if res.x is None:
            raise SolverError(f"HiGHS failed: {res.message}")
        return np.asarray(res.x)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to stdout (some HiGHS builds print debug lines during MIP solves)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a real file (e.g. captured by a test runner)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _group_vars(
    m: _Model, costs: Any, force: str | None
) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    n = costs.n
    mob: dict[tuple[int, int], int] = {}
    cld: dict[tuple[int, int], int] = {}
    for i in range(n):
        for j in range(i, n):
            if force != "cloud" and math.isfinite(costs.mobile_ms[i][j]):
                u = [0.0] * DIMS
                u[MOBILE_MS] = float(costs.mobile_ms[i][j])
                u[MOBILE_MJ] = float(costs.mobile_mj[i][j])
                mob[i, j] = m.var(u)
            if force != "mobile" and math.isfinite(costs.cloud_ms[i][j]):
                u = [0.0] * DIMS
                u[CLOUD_MS] = float(costs.cloud_ms[i][j])
                u[BYTES_DOWN] = float(sum(costs.cloud_download_bytes[i : j + 1]))  # Eq. 13: updated weights
                cld[i, j] = m.var(u)
    # Eq. 5: every layer in exactly one group
    for layer in range(n):
        coefs = {v: 1.0 for (i, j), v in list(mob.items()) + list(cld.items()) if i <= layer <= j}
        m.row(coefs, 1.0, 1.0)
    return mob, cld


def _paper(
    costs: Any, force: str | None, burst: tuple[float, float]
) -> tuple[_Model, dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    n = costs.n
    m = _Model()
    mob, cld = _group_vars(m, costs, force)

    def credited(u: list[float]) -> list[float]:
        # on a chain each activation crosses at a switch, with the group that starts a cloud run (its upload) or
        # follows one (its download): evaluate_usage's rule credits it; weights only with the run's last group
        u = list(u)
        u[CREDIT_UP] = min(burst[0], u[BYTES_UP])
        u[CREDIT_DOWN] = min(burst[1], u[BYTES_DOWN])
        return u

    def starting(at: int, table: dict[tuple[int, int], int]) -> dict[int, float]:
        return {v: 1.0 for (i, _), v in table.items() if i == at}

    switch = [0.0] * DIMS
    switch[SWITCHES] = 1.0

    def plus(a: list[float], b: list[float]) -> list[float]:
        return [x + y for x, y in zip(a, b)]

    # Eqs. 6-7: u[i,j] = m[i,j] · (next group on the cloud); d[i,j] likewise.
    for table, other, transfer in ((mob, cld, _upload_usage), (cld, mob, _download_usage)):
        for (_, j), g in list(table.items()):
            if j + 1 >= n:
                continue
            nxt = starting(j + 1, other)
            if not nxt:
                continue
            p = m.var(plus(credited(transfer(costs, j + 1)), switch), integer=False)
            m.row({p: 1.0, g: -1.0}, -math.inf, 0.0)  # p <= m
            m.row({p: 1.0, **{k: -1.0 for k in nxt}}, -math.inf, 0.0)  # p <= Σ c
            m.row({g: 1.0, **nxt, p: -1.0}, -math.inf, 1.0)  # m + Σ c - p <= 1
    # Eq. 3, last two terms: input upload if the first group is on the cloud, result download if the last is.
    # The last group's response carries the result and the group's updated weights.
    for (i, j), g in cld.items():
        if i == 0:
            m.usage[g] = plus(m.usage[g], plus(credited(_upload_usage(costs, 0)), switch))
        if j == n - 1:
            m.usage[g] = plus(m.usage[g], plus(_download_usage(costs, n), switch))
            m.usage[g][CREDIT_DOWN] = min(burst[1], m.usage[g][BYTES_DOWN])
    return m, mob, cld


def _placement(costs: Any, force: str | None) -> tuple[_Model, dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    n = costs.n
    m = _Model()
    mob, cld = _group_vars(m, costs, force)
    x = [m.var(integer=False) for _ in range(n)]
    for layer in range(n):
        coefs = {v: -1.0 for (i, j), v in cld.items() if i <= layer <= j}
        coefs[x[layer]] = 1.0
        m.row(coefs, 0.0, 0.0)
    consumers = tensor_consumers(costs)
    outputs = set(costs.outputs)
    for t, cons in enumerate(consumers):
        xp = None if t == 0 else x[t - 1]
        up = m.var(_upload_usage(costs, t), integer=False)
        down = m.var(_download_usage(costs, t), integer=False)
        for v in cons:
            # up >= x_v - x_p ; down >= x_p - x_v
            m.row({up: 1.0, x[v]: -1.0, **({xp: 1.0} if xp is not None else {})}, 0.0, math.inf)
            if xp is not None:
                m.row({down: 1.0, xp: -1.0, x[v]: 1.0}, 0.0, math.inf)
        if t > 0 and (t - 1) in outputs and xp is not None:
            m.row({down: 1.0, xp: -1.0}, 0.0, math.inf)
    for layer in range(n + 1):
        s = m.var([1.0 if k == SWITCHES else 0.0 for k in range(DIMS)], integer=False)
        prev = x[layer - 1] if layer > 0 else None
        cur = x[layer] if layer < n else None
        a = {k: c for k, c in ((cur, 1.0), (prev, -1.0)) if k is not None}
        b = {k: -c for k, c in a.items()}
        m.row({s: 1.0, **b}, 0.0, math.inf)  # s >= cur - prev
        m.row({s: 1.0, **a}, 0.0, math.inf)  # s >= prev - cur
    return m, mob, cld


def solve_ilp(
    costs: Any,
    network: Network,
    *,
    objective: str = "latency",
    slowdown: float = 1.0,
    deadline_ms: float | None = None,
    energy_budget_mj: float | None = None,
    cloud_budget_ms: float | None = None,
    force: str | None = None,
    formulation: str = "auto",
) -> tuple[Segments, list[float], int]:
    """The optimum by MILP: ``(segments, usage, transfers)`` (usage re-evaluated from the definition).

    ``formulation``: ``"paper"`` (chains whose only output is the last layer),
    ``"placement"`` (any DAG) or ``"auto"``.
    """
    n = costs.n
    chain = list(costs.edges) == [(i, i + 1) for i in range(n - 1)] and list(costs.outputs) == [n - 1]
    if formulation == "auto":
        formulation = "paper" if chain else "placement"
    if formulation == "paper" and not chain:
        raise SolverError("the paper's ILP formulation covers chains whose only output is the last layer")
    if formulation not in ("paper", "placement"):
        raise SolverError(f"unknown ILP formulation {formulation!r}")
    burst = network.burst
    if formulation == "paper":
        model, mob, cld = _paper(costs, force, burst)
    elif burst != (0.0, 0.0):
        raise SolverError("the placement ILP does not model a link's burst; plan this DAG on such a link another way")
    else:
        model, mob, cld = _placement(costs, force)
    bounds = [
        (weights(metric, network, slowdown), b)
        for metric, b in (("latency", deadline_ms), ("energy", energy_budget_mj), ("cloud", cloud_budget_ms))
        if b is not None
    ]
    x = model.solve(weights(objective, network, slowdown), bounds)
    chosen = [(i, j, "mobile") for (i, j), v in mob.items() if x[v] > 0.5]
    chosen += [(i, j, "cloud") for (i, j), v in cld.items() if x[v] > 0.5]
    chosen.sort()
    usage, transfers = evaluate_usage(costs, chosen, burst=burst)
    return chosen, usage, transfers
