"""Pure-Python implementation of the exact planner (no numpy, no native code).

It mirrors the Rust core function for function (``rust/core/src``:
``structure.rs``, ``search.rs``, ``plan.rs``, ``lut.rs``): the same state
graph, shortest path, label-setting search and lookup-table cells. It runs
where the native module was not built (Android without a native wheel, or
``JOINTDNN_EDGE_PURE=1``), and the test suite runs the same cases through
both to check one against the other. See the Rust modules for the
algorithms' descriptions and correctness arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import ConfigError, CostTableError, InfeasibleError, SolverError
from ..network import Network, Radio
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
    RDIMS,
    SWITCHES,
    dot,
    reduce,
    reduced_weights,
    weights,
    within,
)

MOBILE, CLOUD = 0, 1
ON_BOTH = 2
PLATFORM_NAMES = ("mobile", "cloud")

MAX_WIDTH = 31
MAX_STATES = 1 << 21
MAX_TRANSITIONS = 1 << 22
DEFAULT_MAX_LABELS = 2_000_000
#: Label comparisons one exact search may spend. Counted as ``search.rs`` counts them, but lower than
#: its 2e9 (seconds natively): a comparison costs about a microsecond here, so this is about a minute
#: on a phone rather than an hour; past it the search stops with SolverError.
DEFAULT_MAX_WORK = 50_000_000
#: Dominance comparisons one lookup-table cell may spend before it is answered by direct solves.
CELL_MAX_WORK = 1 << 24
#: Most cells a lookup table may have (``lut::MAX_CELLS``).
MAX_CELLS = 1 << 22

Segments = list[tuple[int, int, str]]
#: Bytes a link passes at once per request, ``(up, down)`` (``problem::Burst``).
Burst = tuple[float, float]
NO_BURST: Burst = (0.0, 0.0)


# ------------------------------------------------- results (mirrors of the native classes)
class Solution(NamedTuple):
    """The exact optimum of one request (mirror of the native ``Solution``): the schedule, its
    resource usage and its costs on the request's network."""

    segments: tuple[tuple[int, int, str], ...]
    usage: tuple[float, ...]
    transfers: int
    latency_ms: float
    mobile_energy_mj: float
    cloud_ms: float


class Candidate(NamedTuple):
    """A schedule stored in a lookup-table cell (mirror of the native ``Candidate``)."""

    segments: tuple[tuple[int, int, str], ...]
    usage: tuple[float, ...]
    transfers: int


class LutCell(NamedTuple):
    """One built lookup-table cell (mirror of the native ``LutCell``).

    ``status`` is ``"exact"`` (the candidates hold the optimum everywhere in the cell),
    ``"solve"`` (queries here solve directly) or ``"infeasible"``.
    """

    status: str
    candidates: list[Candidate]


class LutAnswer(NamedTuple):
    """The best stored schedule at a query point (mirror of the native ``LutAnswer``):
    its index among the table's stored schedules and its costs there."""

    candidate: int
    latency_ms: float
    mobile_energy_mj: float
    cloud_ms: float


@dataclass
class Plain:
    """A cost table as plain Python lists (what the reference solver reads)."""

    n: int
    mobile_ms: list[list[float]]
    cloud_ms: list[list[float]]
    mobile_mj: list[list[float]]
    out_bytes: list[float]
    input_bytes: float
    edges: list[tuple[int, int]]
    outputs: list[int]
    cloud_download_bytes: list[float]
    codec_ms: list[tuple[float, float]]
    codec_mj: list[tuple[float, float]]

    @classmethod
    def of(cls, costs: Any) -> Plain:
        """From a :class:`~jointdnn_edge.CostTable` (numpy arrays) or its JSON dict."""
        if isinstance(costs, Mapping):
            return cls.from_dict(costs)
        return cls(
            n=costs.n,
            mobile_ms=costs.mobile_ms.tolist(),
            cloud_ms=costs.cloud_ms.tolist(),
            mobile_mj=costs.mobile_mj.tolist(),
            out_bytes=[float(x) for x in costs.out_bytes],
            input_bytes=float(costs.input_bytes),
            edges=[tuple(e) for e in costs.edges],
            outputs=list(costs.outputs),
            cloud_download_bytes=[float(x) for x in costs.cloud_download_bytes],
            codec_ms=[tuple(r) for r in costs.codec_ms.tolist()],
            codec_mj=[tuple(r) for r in costs.codec_mj.tolist()],
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plain:
        """From a cost table's JSON form (:meth:`CostTable.to_dict`), without numpy."""
        try:
            n = int(d["n"])

            def full(rows: Sequence[Sequence[float | None]]) -> list[list[float]]:
                m = [[math.inf] * n for _ in range(n)]
                for i, r in enumerate(rows):
                    for k, x in enumerate(r):
                        m[i][i + k] = math.inf if x is None else float(x)
                return m

            has_succ = {int(u) for u, _ in d["edges"]}
            return cls(
                n=n,
                mobile_ms=full(d["mobile_ms"]),
                cloud_ms=full(d["cloud_ms"]),
                mobile_mj=full(d["mobile_mj"]),
                out_bytes=[float(x) for x in d["out_bytes"]],
                input_bytes=float(d["input_bytes"]),
                edges=[(int(u), int(v)) for u, v in d["edges"]],
                outputs=list(d["outputs"])
                if d.get("outputs") is not None
                else [i for i in range(n) if i not in has_succ],
                cloud_download_bytes=[float(x) for x in (d.get("cloud_download_bytes") or [0.0] * n)],
                codec_ms=[tuple(r) for r in (d.get("codec_ms") or [(0.0, 0.0)] * (n + 1))],
                codec_mj=[tuple(r) for r in (d.get("codec_mj") or [(0.0, 0.0)] * (n + 1))],
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CostTableError(f"malformed cost table: {type(e).__name__}: {e}") from None

    def group(self, i: int, j: int, p: int) -> float:
        return (self.mobile_ms if p == MOBILE else self.cloud_ms)[i][j]

    def tensor_bytes(self, t: int) -> float:
        return self.input_bytes if t == 0 else self.out_bytes[t - 1]


def topology(c: Plain) -> tuple[list[list[int]], list[bool], list[list[int]]]:
    """Per layer the tensors it reads; per tensor whether it is a model output; live tensors per boundary."""
    n = c.n
    preds: list[set[int]] = [set() for _ in range(n)]
    for u, v in c.edges:
        preds[v].add(u + 1)
    pred_lists = [sorted(p) if p else [0] for p in preds]
    last_use: list[int | None] = [None] * (n + 1)
    for v, ps in enumerate(pred_lists):
        for t in ps:
            last_use[t] = v if last_use[t] is None else max(last_use[t], v)  # type: ignore[type-var]
    returns = [False] * (n + 1)
    for o in c.outputs:
        returns[o + 1] = True
    live = [
        [t for t in range(n + 1) if (t == 0 or t <= p) and last_use[t] is not None and last_use[t] >= p]  # type: ignore[operator]
        for p in range(n + 1)
    ]
    return pred_lists, returns, live


@dataclass
class StateGraph:
    """The explicit state graph (see ``rust/core/src/structure.rs``)."""

    n: int
    boundary: list[int]
    trans_start: list[int]
    #: per transition: (to, first, last, platform, transfers, usage, the bytes (up, down) a burst may carry)
    trans: list[tuple[int, int, int, int, int, tuple[float, ...], Burst]]
    width: int

    @property
    def num_states(self) -> int:
        return len(self.boundary)

    def is_terminal(self, s: int) -> bool:
        return self.boundary[s] == self.n

    @classmethod
    def build(cls, c: Plain, cloud_keeps_tensors: bool = True) -> StateGraph:
        """Builds the state graph of ``c`` (mirror of ``StateGraph::build``; see it for the cloud memory models)."""
        n = c.n
        preds, returns, live = topology(c)
        width = max((len(x) for x in live), default=0)
        if width > MAX_WIDTH:
            raise SolverError(
                f"the graph is too wide for the exact planner: {width} tensors are live at one cut "
                f"(limit {MAX_WIDTH}); merge layers or plan a coarser graph"
            )
        keys: list[list[int]] = [[] for _ in range(n + 1)]
        index: list[dict[int, int]] = [{} for _ in range(n + 1)]
        keys[0].append(0)
        index[0][0] = 0
        raw: list[tuple[int, int, int, int, int, int, tuple[float, ...], Burst]] = []
        out_count: list[list[int]] = [[] for _ in range(n + 1)]
        res = [MOBILE] * (n + 1)
        total_states = 1
        for p in range(n):
            local = 0
            while local < len(keys[p]):
                key = keys[p][local]
                last = key & 1
                produced = 0
                for platform in (MOBILE, CLOUD):
                    for slot, t in enumerate(live[p]):
                        res[t] = (key >> (1 + 2 * slot)) & 3
                    usage = [0.0] * DIMS
                    transfers = 0
                    if not cloud_keeps_tensors and platform == MOBILE and last == CLOUD:
                        # a cloud run ends: the stateless cloud hands back what only it holds, then forgets
                        for t in live[p]:
                            if res[t] == CLOUD:
                                _send(c, t, MOBILE, usage)
                                transfers += 1
                            res[t] = MOBILE
                    for q in range(p, n):
                        for t in preds[q]:
                            if t == 0 or t <= p:
                                r = res[t]
                                if r != ON_BOTH and r != platform:
                                    _send(c, t, platform, usage)
                                    transfers += 1
                                    res[t] = ON_BOTH
                        t_out = q + 1
                        res[t_out] = platform
                        if returns[t_out] and platform == CLOUD:
                            _send(c, t_out, MOBILE, usage)
                            transfers += 1
                            res[t_out] = ON_BOTH
                        if platform == CLOUD and c.cloud_download_bytes[q] > 0.0:
                            usage[BYTES_DOWN] += c.cloud_download_bytes[q]
                            transfers += 1
                        compute = c.group(p, q, platform)
                        if not math.isfinite(compute):
                            continue
                        u = list(usage)
                        if platform == MOBILE:
                            u[MOBILE_MS] += compute
                            u[MOBILE_MJ] += c.mobile_mj[p][q]
                        else:
                            u[CLOUD_MS] += compute
                        if platform != last:
                            u[SWITCHES] += 1.0
                        if q + 1 == n and platform == CLOUD:
                            u[SWITCHES] += 1.0
                        new_key = platform
                        for slot, t in enumerate(live[q + 1]):
                            new_key |= res[t] << (1 + 2 * slot)
                        nxt = q + 1
                        target = index[nxt].get(new_key)
                        if target is None:
                            total_states += 1
                            if total_states > MAX_STATES:
                                raise SolverError(_too_many("states", MAX_STATES, width))
                            target = len(keys[nxt])
                            keys[nxt].append(new_key)
                            index[nxt][new_key] = target
                        if len(raw) >= MAX_TRANSITIONS:
                            raise SolverError(_too_many("transitions", MAX_TRANSITIONS, width))
                        # the request this transition starts, the response it ends (``transfer_usage``)
                        starts = platform == CLOUD and last == MOBILE
                        ends = (platform == MOBILE and last == CLOUD) or (q + 1 == n and platform == CLOUD)
                        eligible = (u[BYTES_UP] if starts else 0.0, u[BYTES_DOWN] if ends else 0.0)
                        raw.append((nxt, target, p, q, platform, transfers, tuple(u), eligible))
                        produced += 1
                out_count[p].append(produced)
                local += 1
        offset = [0] * (n + 2)
        for p in range(n + 1):
            offset[p + 1] = offset[p] + len(keys[p])
        num_states = offset[n + 1]
        boundary = [p for p in range(n + 1) for _ in keys[p]]
        trans_start = [0]
        acc = 0
        for p in range(n):
            for k in out_count[p]:
                acc += k
                trans_start.append(acc)
        while len(trans_start) < num_states + 1:
            trans_start.append(acc)
        trans = [(offset[b] + loc, p, q, plat, tr, u, e) for (b, loc, p, q, plat, tr, u, e) in raw]
        return cls(n, boundary, trans_start, trans, width)


def _too_many(what: str, limit: int, width: int) -> str:
    return (
        f"the exact planner's state graph exceeds {limit} {what} (cut width {width}); "
        "offer fewer group lengths (max_group) or merge layers"
    )


def _send(c: Plain, t: int, to: int, usage: list[float]) -> None:
    b = c.tensor_bytes(t)
    if to == CLOUD:
        usage[BYTES_UP] += b
        d = 0
    else:
        usage[BYTES_DOWN] += b
        d = 1
    usage[CODEC_MS] += c.codec_ms[t][d]
    usage[CODEC_MJ] += c.codec_mj[t][d]


# --------------------------------------------------------------------- search
def _allows(force: str | None, platform: int) -> bool:
    return force is None or PLATFORM_NAMES[platform] == force


def transition_usage(t: tuple[Any, ...], burst: Burst) -> Sequence[float]:
    """A transition's usage on a link with ``burst``: the credit dimensions set to ``min(burst, eligible)`` (mirror of
    ``StateGraph::transfer_usage``, which says which bytes are eligible)."""
    if burst == NO_BURST:
        return t[5]  # type: ignore[no-any-return]
    u = list(t[5])
    u[CREDIT_UP] = min(burst[0], t[6][0])
    u[CREDIT_DOWN] = min(burst[1], t[6][1])
    return u


def transition_costs(g: StateGraph, w: Sequence[float], force: str | None, burst: Burst = NO_BURST) -> list[float]:
    """Per transition ``w · usage`` on a link with ``burst`` (``inf`` where ``force`` forbids the platform)."""
    return [dot(w, transition_usage(t, burst)) if _allows(force, t[3]) else math.inf for t in g.trans]


def shortest_path(g: StateGraph, costs: Sequence[float]) -> tuple[float, list[int]] | None:
    """Cheapest path to a terminal state, as transition indices (None if none)."""
    ns = g.num_states
    dist = [math.inf] * ns
    via = [-1] * ns
    dist[0] = 0.0
    ts, trans = g.trans_start, g.trans
    for s in range(ns):
        d = dist[s]
        if d == math.inf:
            continue
        for k in range(ts[s], ts[s + 1]):
            nd = d + costs[k]
            to = trans[k][0]
            if nd < dist[to]:
                dist[to] = nd
                via[to] = k
    ends = [s for s in range(ns) if g.is_terminal(s) and dist[s] < math.inf]
    if not ends:
        return None
    end = min(ends, key=lambda s: dist[s])
    path = []
    s = end
    while s != 0:
        k = via[s]
        path.append(k)
        s = _source_of(g, k)
    path.reverse()
    return dist[end], path


def _source_of(g: StateGraph, k: int) -> int:
    import bisect

    return bisect.bisect_right(g.trans_start, k) - 1


def cost_to_go(g: StateGraph, costs: Sequence[float]) -> list[float]:
    """Least remaining cost from each state to the end."""
    ns = g.num_states
    h = [math.inf] * ns
    ts, trans = g.trans_start, g.trans
    for s in range(ns - 1, -1, -1):
        if g.is_terminal(s):
            h[s] = 0.0
            continue
        best = math.inf
        for k in range(ts[s], ts[s + 1]):
            v = costs[k] + h[trans[k][0]]
            if v < best:
                best = v
        h[s] = best
    return h


def path_segments(g: StateGraph, path: Iterable[int]) -> Segments:
    return [(g.trans[k][1], g.trans[k][2], PLATFORM_NAMES[g.trans[k][3]]) for k in path]


def path_usage(g: StateGraph, path: Iterable[int], burst: Burst = NO_BURST) -> tuple[list[float], int]:
    """The summed usage (on a link with ``burst``) and transfer count of ``path``'s transitions."""
    u = [0.0] * DIMS
    n = 0
    for k in path:
        t = g.trans[k]
        tu = transition_usage(t, burst)
        for j in range(DIMS):
            u[j] += tu[j]
        n += t[4]
    return u, n


@dataclass
class LabelProblem:
    """Inputs of :func:`label_search` (see ``search.rs``)."""

    graph: StateGraph
    dim: int
    delta: list[list[float]]
    allowed: list[bool]
    objective: list[float]
    constraints: list[tuple[list[float], float]] = field(default_factory=list)
    objective_cap: float = math.inf
    max_labels: int = DEFAULT_MAX_LABELS
    max_work: int = DEFAULT_MAX_WORK


#: Relative slack when comparing label vectors: the same totals summed in another order may differ in the last bits.
DOMINANCE_SLACK = 1e-12


def _le(a: Sequence[float], b: Sequence[float], d: int) -> bool:
    """``a <= b`` in every coordinate, up to :data:`DOMINANCE_SLACK`."""
    return all(a[j] <= b[j] + DOMINANCE_SLACK * abs(b[j]) for j in range(d))


def label_search(lp: LabelProblem, mode: str) -> list[tuple[list[int], list[float]]]:
    """Exact label setting; ``mode`` "best" or "all" (see ``search.rs``). Returns ``(path, value)`` pairs."""
    g, d = lp.graph, lp.dim

    def apply(f: Sequence[float], v: Sequence[float]) -> float:
        return sum(f[k] * v[k] for k in range(d))

    def bound_of(f: Sequence[float]) -> list[float]:
        costs = [apply(f, dv) if ok else math.inf for dv, ok in zip(lp.delta, lp.allowed)]
        return cost_to_go(g, costs)

    lb_obj = bound_of(lp.objective)
    lb_con = [bound_of(f) for f, _ in lp.constraints]
    cap = lp.objective_cap
    work = 0  # dominance comparisons, counted as search.rs counts them
    # arena of labels: (vector, previous label, transition)
    vec: list[list[float]] = [[0.0] * d]
    prev: list[int] = [-1]
    via: list[int] = [-1]
    ns = g.num_states
    alive: list[list[int]] = [[] for _ in range(ns)]
    alive[0].append(0)
    if lb_obj[0] == math.inf or any(not within(lb[0], b) for (_, b), lb in zip(lp.constraints, lb_con)):
        return []
    ts, trans = g.trans_start, g.trans
    for s in range(ns):
        if g.is_terminal(s):
            continue
        labels, alive[s] = alive[s], []
        for li in labels:
            base = vec[li]
            for k in range(ts[s], ts[s + 1]):
                if not lp.allowed[k]:
                    continue
                to = trans[k][0]
                dv = lp.delta[k]
                v = [base[j] + dv[j] for j in range(d)]
                if any(not within(apply(f, v) + lb[to], b) for (f, b), lb in zip(lp.constraints, lb_con)):
                    continue
                obj_lb = apply(lp.objective, v) + lb_obj[to]
                if mode == "best":
                    if obj_lb >= cap:
                        continue
                elif not within(obj_lb, cap):
                    continue
                here = alive[to]
                work += len(here)
                if work > lp.max_work:
                    raise SolverError(
                        f"the exact constrained search exceeded its budget of {lp.max_work} label comparisons; "
                        'loosen the constraints, offer fewer group lengths, or use solver="ilp"'
                    )
                if any(_le(vec[m], v, d) for m in here):
                    continue
                here[:] = [m for m in here if not _le(v, vec[m], d)]
                if len(vec) >= lp.max_labels:
                    raise SolverError(
                        f"the exact constrained search exceeded {lp.max_labels} labels; loosen the constraints, "
                        'offer fewer group lengths, or use solver="ilp"'
                    )
                vec.append(v)
                prev.append(li)
                via.append(k)
                here.append(len(vec) - 1)
                if mode == "best" and g.is_terminal(to):
                    val = apply(lp.objective, v)
                    if val < cap:
                        cap = val
    finals = [li for s in range(ns) if g.is_terminal(s) for li in alive[s]]

    def path_of(li: int) -> list[int]:
        out = []
        while prev[li] != -1:
            out.append(via[li])
            li = prev[li]
        out.reverse()
        return out

    if mode == "best":
        if not finals:
            return []
        best = min(finals, key=lambda li: apply(lp.objective, vec[li]))
        return [(path_of(best), vec[best])]
    finals.sort(key=lambda li: vec[li])
    kept: list[int] = []
    for li in finals:
        v = vec[li]
        if any(_le(vec[m], v, d) for m in kept):
            continue
        if not within(apply(lp.objective, v), cap):
            continue
        kept.append(li)
    return [(path_of(li), vec[li]) for li in kept]


# ---------------------------------------------------------------------- plan
@dataclass
class Request:
    """One planning request (mirror of ``plan::Request``)."""

    objective: str
    link: Network
    slowdown: float = 1.0
    deadline_ms: float | None = None
    energy_budget_mj: float | None = None
    cloud_budget_ms: float | None = None
    force: str | None = None
    max_labels: int = DEFAULT_MAX_LABELS
    max_work: int = DEFAULT_MAX_WORK

    def constraints(self) -> list[tuple[str, str, float]]:
        out = []
        if self.deadline_ms is not None:
            out.append(("deadline_ms", "latency", self.deadline_ms))
        if self.energy_budget_mj is not None:
            out.append(("energy_budget_mj", "energy", self.energy_budget_mj))
        if self.cloud_budget_ms is not None:
            out.append(("cloud_budget_ms", "cloud", self.cloud_budget_ms))
        return out


_DESCRIBE = {"latency": "latency (ms)", "energy": "mobile energy (mJ)", "cloud": "cloud time (ms)"}


def _validate(req: Request) -> None:
    """Mirror of ``Request::validate`` (with ``Network::validate``)."""
    link = req.link
    for name, v in (("up_mbps", link.up_mbps), ("down_mbps", link.down_mbps)):
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be positive and finite, got {v}")
    for name, v in (
        ("alpha_up", link.alpha_up),
        ("alpha_down", link.alpha_down),
        ("beta", link.beta),
        ("rtt_ms", link.rtt_ms),
    ):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{name} must be finite and >= 0, got {v}")
    if not (math.isfinite(req.slowdown) and req.slowdown > 0):
        raise ConfigError(f"cloud_slowdown must be positive and finite, got {req.slowdown}")
    if req.objective not in ("latency", "energy"):
        raise ConfigError("the objective must be latency or energy")
    for name, _, b in req.constraints():
        if not (math.isfinite(b) and b >= 0):
            raise ConfigError(f"{name} must be finite and >= 0, got {b}")


def _no_path(g: StateGraph, req: Request, metric: str) -> Exception:
    """Why a search for ``metric`` found no schedule (mirror of ``plan::no_path``)."""
    structural = [0.0 if _allows(req.force, t[3]) else math.inf for t in g.trans]
    if shortest_path(g, structural) is None:
        return InfeasibleError("no schedule exists with the offered groups", "groups")
    return CostTableError(
        f"every schedule's {_DESCRIBE[metric]} overflows to infinity or is undefined: the cost table or "
        "network values are too large for floating point"
    )


def solve(g: StateGraph, req: Request) -> Solution:
    """The exact optimum of ``req`` (mirror of ``plan::solve``)."""
    _validate(req)
    link = req.link
    burst = link.burst
    w_obj = weights(req.objective, link, req.slowdown)
    found = shortest_path(g, transition_costs(g, w_obj, req.force, burst))
    if found is None:
        raise _no_path(g, req, req.objective)
    best_path = found[1]
    constraints = req.constraints()
    ws = {m: weights(m, link, req.slowdown) for m in ("latency", "energy", "cloud")}

    def meets(u: Sequence[float]) -> bool:
        return all(within(dot(ws[m], u), b) for _, m, b in constraints)

    u_best, _ = path_usage(g, best_path, burst)
    if meets(u_best):
        return _solution(g, best_path, req)
    incumbent: tuple[float, list[int]] | None = None
    for name, m, b in constraints:
        # every schedule exists (the objective's search found one): no path means overflow
        found_m = shortest_path(g, transition_costs(g, ws[m], req.force, burst))
        if found_m is None:
            raise _no_path(g, req, m)
        least, path = found_m
        if not within(least, b):
            raise InfeasibleError(
                f"no schedule meets {name} = {b}: the least {_DESCRIBE[m]} any schedule reaches is {least:.6f}",
                name,
                least,
            )
        u, _ = path_usage(g, path, burst)
        if meets(u):
            v = dot(w_obj, u)
            if incumbent is None or v < incumbent[0]:
                incumbent = (v, path)
    dim = 1 + len(constraints)
    wl = [w_obj] + [ws[m] for _, m, _ in constraints]
    lp = LabelProblem(
        graph=g,
        dim=dim,
        delta=[[dot(w, transition_usage(t, burst)) for w in wl] for t in g.trans],
        allowed=[_allows(req.force, t[3]) for t in g.trans],
        objective=[1.0] + [0.0] * (dim - 1),
        constraints=[([1.0 if j == k + 1 else 0.0 for j in range(dim)], b) for k, (_, _, b) in enumerate(constraints)],
        objective_cap=incumbent[0] if incumbent else math.inf,
        max_labels=req.max_labels,
        max_work=req.max_work,
    )
    res = label_search(lp, "best")
    if res:
        return _solution(g, res[0][0], req)
    if incumbent:
        return _solution(g, incumbent[1], req)
    names = "+".join(name for name, _, _ in constraints)
    together = " and ".join(f"{name} = {b}" for name, _, b in constraints)
    raise InfeasibleError(f"no schedule meets {together} together (each can be met alone)", names)


def _solution(g: StateGraph, path: list[int], req: Request) -> Solution:
    """``path`` as a :class:`Solution`, its costs on ``req``'s network and slowdown."""
    link, slowdown = req.link, req.slowdown
    u, n = path_usage(g, path, link.burst)
    return Solution(
        tuple(path_segments(g, path)),
        tuple(u),
        n,
        dot(weights("latency", link, slowdown), u),
        dot(weights("energy", link, slowdown), u),
        u[CLOUD_MS] * slowdown,
    )


# ------------------------------------------------------------ lookup tables
@dataclass
class LutSpec:
    """What a lookup table is built for (mirror of ``lut::LutSpec``)."""

    objective: str
    constraints: list[tuple[str, float]]
    radio: Radio
    up: tuple[float, float]
    down: tuple[float, float]
    slowdown: tuple[float, float]
    cells: tuple[int, int, int]
    force: str | None = None
    max_candidates: int = 256
    max_labels: int = DEFAULT_MAX_LABELS
    max_work: int = CELL_MAX_WORK

    def axes(self) -> tuple[int, int, int]:
        def k(r: tuple[float, float], c: int) -> int:
            return 1 if r[0] == r[1] else max(c, 1)

        return (k(self.up, self.cells[0]), k(self.down, self.cells[1]), k(self.slowdown, self.cells[2]))

    def num_cells(self) -> int:
        a = self.axes()
        return a[0] * a[1] * a[2]

    def cell_corners(self, c: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """``(x_lo, x_hi)`` of cell ``c`` as ``(up_mbps, down_mbps, slowdown)``."""
        nu, nd, ns = self.axes()
        iu, id_, is_ = c // (nd * ns), (c // ns) % nd, c % ns
        u0, u1 = _log_edges(self.up, nu, iu)
        d0, d1 = _log_edges(self.down, nd, id_)
        s0, s1 = _lin_edges(self.slowdown, ns, is_)
        return (u1, d1, s0), (u0, d0, s1)

    def request_at(self, point: tuple[float, float, float]) -> Request:
        r = Request(self.objective, Network.of(self.radio, point[0], point[1]), point[2], force=self.force)
        r.max_labels = self.max_labels
        r.max_work = self.max_work  # the cell's budget bounds its corner solve too
        for m, b in self.constraints:
            if m == "latency":
                r.deadline_ms = b
            elif m == "energy":
                r.energy_budget_mj = b
            else:
                r.cloud_budget_ms = b
        return r


def _log_edges(r: tuple[float, float], k: int, i: int) -> tuple[float, float]:
    lo, hi = r
    if k == 1:
        return lo, hi
    span = math.log(hi / lo)
    a = lo if i == 0 else lo * math.exp(span * i / k)
    b = hi if i + 1 == k else lo * math.exp(span * (i + 1) / k)
    return a, b


def _lin_edges(r: tuple[float, float], k: int, i: int) -> tuple[float, float]:
    lo, hi = r
    if k == 1:
        return lo, hi
    a = lo if i == 0 else lo + (hi - lo) * i / k
    b = hi if i + 1 == k else lo + (hi - lo) * (i + 1) / k
    return a, b


#: A cell's status codes in a table's index (``LutIndex.status``, the file format) and their names.
CELL_EXACT, CELL_SOLVE, CELL_INFEASIBLE = 0, 1, 2
CELL_STATUSES = ("exact", "solve", "infeasible")


def lut_cell(g: StateGraph, spec: LutSpec, c: int) -> LutCell:
    """Builds one cell (mirror of ``lut::build_cell``)."""
    lo, hi = spec.cell_corners(c)
    try:
        u = solve(g, spec.request_at(hi)).usage
        cap = dot(weights(spec.objective, Network.of(spec.radio, hi[0], hi[1]), hi[2]), u)
    except InfeasibleError:
        cap = math.inf
    except SolverError:  # over the cell's budget: queries here solve directly
        return LutCell("solve", [])
    objective = reduced_weights(spec.objective, spec.radio, *lo)
    constraints = [(reduced_weights(m, spec.radio, *lo), b) for m, b in spec.constraints]
    relevant = [any(f[k] != 0.0 for f in [objective] + [f for f, _ in constraints]) for k in range(RDIMS)]
    delta = []
    burst = spec.radio.burst
    for t in g.trans:
        r = reduce(transition_usage(t, burst), spec.radio)
        delta.append([r[k] if relevant[k] else 0.0 for k in range(RDIMS)])
    lp = LabelProblem(
        graph=g,
        dim=RDIMS,
        delta=delta,
        allowed=[_allows(spec.force, t[3]) for t in g.trans],
        objective=objective,
        constraints=constraints,
        objective_cap=cap,
        max_labels=spec.max_labels,
        max_work=spec.max_work,
    )
    try:
        found = label_search(lp, "all")
    except SolverError:
        return LutCell("solve", [])
    if not found:
        return LutCell("infeasible", [])
    if len(found) > spec.max_candidates:
        return LutCell("solve", [])
    out = []
    for path, _ in found:
        usage, transfers = path_usage(g, path, burst)
        out.append(Candidate(tuple(path_segments(g, path)), tuple(usage), transfers))
    return LutCell("exact", out)


_NO_STORED_SCHEDULE = "no stored schedule meets the constraints here"


class LutIndex:
    """The query side of a lookup table (mirror of the native ``LutIndex``; the caller checks the fields)."""

    __slots__ = ("objective", "constraints", "radio", "ranges", "axes", "reduced", "status", "offsets", "members")

    def __init__(
        self,
        *,
        objective: str,
        constraints: Sequence[tuple[str, float]],
        radio: Radio,
        up_mbps: tuple[float, float],
        down_mbps: tuple[float, float],
        cloud_slowdown: tuple[float, float],
        axes: Sequence[int],
        reduced: Sequence[Sequence[float]],
        status: Sequence[int],
        offsets: Sequence[int],
        members: Sequence[int],
    ) -> None:
        self.objective = objective
        self.constraints = constraints
        self.radio = radio
        self.ranges = (up_mbps, down_mbps, cloud_slowdown)
        self.axes = axes
        self.reduced = reduced
        self.status = status
        self.offsets = offsets
        self.members = members

    def query(self, up_mbps: float, down_mbps: float, slowdown: float) -> LutAnswer | None:
        """The best stored schedule at the point, None where the table cannot answer alone,
        InfeasibleError where nothing is feasible."""
        objective, constraints, radio = self.objective, self.constraints, self.radio
        reduced, status, offsets, members = self.reduced, self.status, self.offsets, self.members
        cell = 0
        for (lo, hi), k, v, log in zip(self.ranges, self.axes, (up_mbps, down_mbps, slowdown), (True, True, False)):
            slack = 1e-12 * max(abs(hi), 1.0)
            if not (v > 0 and lo - slack <= v <= hi + slack):
                return None
            if k == 1:
                i = 0
            else:
                f = math.log(v / lo) / math.log(hi / lo) if log else (v - lo) / (hi - lo)
                i = min(max(math.floor(f * k), 0), k - 1)
            cell = cell * k + i
        if status[cell] == CELL_SOLVE:
            return None
        if status[cell] == CELL_INFEASIBLE:
            raise InfeasibleError(_NO_STORED_SCHEDULE)
        wl = reduced_weights("latency", radio, up_mbps, down_mbps, slowdown)
        we = reduced_weights("energy", radio, up_mbps, down_mbps, slowdown)
        wc = reduced_weights("cloud", radio, up_mbps, down_mbps, slowdown)
        best: tuple[int, float, tuple[float, float, float]] | None = None
        for m in members[offsets[cell] : offsets[cell + 1]]:
            r = reduced[m]
            vals = {"latency": dot(wl, r), "energy": dot(we, r), "cloud": dot(wc, r)}
            if not all(within(vals[name], b) for name, b in constraints):
                continue
            o = vals[objective]
            if best is None or o < best[1]:
                best = (m, o, (vals["latency"], vals["energy"], vals["cloud"]))
        if best is None:
            raise InfeasibleError(_NO_STORED_SCHEDULE)
        return LutAnswer(best[0], *best[2])
