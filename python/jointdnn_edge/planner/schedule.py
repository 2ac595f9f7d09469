"""Schedules: which layers run where, and what that costs.

:func:`evaluate_usage` computes a schedule's costs straight from the cost
model's definition, independently of every solver, so that solver output can
be checked against it (``Schedule.evaluate``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import CostTableError
from ..network import Network
from .usage import (
    BYTES_DOWN,
    BYTES_UP,
    CLOUD_MS,
    CODEC_MJ,
    CODEC_MS,
    CREDIT_DOWN,
    CREDIT_UP,
    DIMS,
    SWITCHES,
    dot,
    weights,
)

PLATFORMS = ("mobile", "cloud")

Segment = tuple[int, int, str]


def runs_of(segments: Iterable[Segment]) -> list[Segment]:
    """Maximal runs of consecutive layers on one platform: adjacent ``(first, last, platform)`` segments merged."""
    out: list[Segment] = []
    for a, b, p in segments:
        if out and out[-1][2] == p:
            out[-1] = (out[-1][0], b, p)
        else:
            out.append((a, b, p))
    return out


class Schedule:
    """A partition of the layers into groups, each run on ``"mobile"`` or ``"cloud"``.

    ``segments`` lists ``(first, last, platform)`` in layer order. The costs
    are those of the network and cloud slowdown the schedule was made for:
    ``latency_ms`` (all compute, transfers and round trips), ``mobile_energy_mj``
    (mobile compute and radio), ``cloud_ms`` (cloud compute, slowed down),
    ``bytes_up``/``bytes_down``, ``transfers`` (tensors and weight sets
    moved) and ``switches`` (changes of platform, the return of the results
    included). ``exact`` is False only for a lookup-table answer outside the
    table's exact region; ``solver`` names what produced it. ``lossy`` lists
    the tensors sent with a lossy option, ``(tensor, option)`` in tensor order
    (empty: every transfer is lossless), and ``accuracy_loss`` what those
    options cost in accuracy (``docs/planner.md``, "Accuracy budget").
    """

    __slots__ = (
        "segments",
        "latency_ms",
        "mobile_energy_mj",
        "cloud_ms",
        "bytes_up",
        "bytes_down",
        "transfers",
        "switches",
        "usage",
        "objective",
        "exact",
        "solver",
        "_lossy",  # unset on lossless schedules (the solvers' fast constructor does not touch them)
        "_accuracy_loss",
    )

    def __init__(
        self,
        segments: Iterable[Sequence[Any]],
        *,
        latency_ms: float,
        mobile_energy_mj: float,
        cloud_ms: float,
        bytes_up: float,
        bytes_down: float,
        transfers: int,
        switches: int,
        usage: Sequence[float] | None = None,
        objective: str | None = None,
        exact: bool = True,
        solver: str = "",
        lossy: Iterable[Sequence[Any]] = (),
        accuracy_loss: float = 0.0,
    ) -> None:
        self.segments: tuple[Segment, ...] = tuple((int(a), int(b), str(p)) for a, b, p in segments)
        self.latency_ms = float(latency_ms)
        self.mobile_energy_mj = float(mobile_energy_mj)
        self.cloud_ms = float(cloud_ms)
        self.bytes_up = float(bytes_up)
        self.bytes_down = float(bytes_down)
        self.transfers = int(transfers)
        self.switches = int(switches)
        self.usage = tuple(usage) if usage is not None else None
        self.objective = objective
        self.exact = exact
        self.solver = solver
        self._lossy: tuple[tuple[int, str], ...] = tuple(sorted((int(t), str(o)) for t, o in lossy))
        self._accuracy_loss = float(accuracy_loss)

    @property
    def lossy(self) -> tuple[tuple[int, str], ...]:
        """``(tensor, option label)`` of every tensor sent lossily (tensor numbering of :mod:`jointdnn_edge.costs`)."""
        return getattr(self, "_lossy", ())

    @property
    def accuracy_loss(self) -> float:
        """The accuracy the lossy options cost: the sum of their measured losses (0 when :attr:`lossy` is empty)."""
        return getattr(self, "_accuracy_loss", 0.0)

    def with_lossy(self, lossy: Iterable[Sequence[Any]], accuracy_loss: float) -> Schedule:
        """This schedule (same costs) marked with the lossy options its transfers use."""
        self._lossy = tuple(sorted((int(t), str(o)) for t, o in lossy))
        self._accuracy_loss = float(accuracy_loss)
        return self

    @staticmethod
    def _make(
        segments: tuple[Segment, ...],
        latency_ms: float,
        mobile_energy_mj: float,
        cloud_ms: float,
        usage: Sequence[float],
        transfers: int,
        objective: str | None,
        solver: str,
        exact: bool = True,
    ) -> Schedule:
        """Internal fast constructor for trusted solver output (segments already normalised).

        A static method: looking it up on the class makes no bound method (plans and queries are hot paths).
        """
        s = object.__new__(Schedule)
        s.segments = segments
        s.latency_ms = latency_ms
        s.mobile_energy_mj = mobile_energy_mj
        s.cloud_ms = cloud_ms
        s.bytes_up = usage[3]
        s.bytes_down = usage[4]
        s.transfers = transfers
        s.switches = int(usage[5] + 0.5)
        s.usage = usage  # type: ignore[assignment]  # solver output: a list or tuple of DIMS floats
        s.objective = objective
        s.exact = exact
        s.solver = solver
        return s

    @classmethod
    def from_usage(
        cls,
        segments: Iterable[Sequence[Any]],
        usage: Sequence[float],
        transfers: int,
        link: Network,
        slowdown: float,
        **kwargs: Any,
    ) -> Schedule:
        """A schedule whose costs are computed from its usage vector on ``link``."""
        return cls(
            segments,
            latency_ms=dot(weights("latency", link, slowdown), usage),
            mobile_energy_mj=dot(weights("energy", link, slowdown), usage),
            cloud_ms=usage[CLOUD_MS] * slowdown,
            bytes_up=usage[BYTES_UP],
            bytes_down=usage[BYTES_DOWN],
            transfers=transfers,
            switches=round(usage[5]),
            usage=usage,
            **kwargs,
        )

    # ----------------------------------------------------------------- views
    @property
    def n(self) -> int:
        """Number of layers covered."""
        return self.segments[-1][1] + 1 if self.segments else 0

    def placement(self) -> list[str]:
        """The platform of every layer, in order."""
        out: list[str] = []
        for a, b, p in self.segments:
            out.extend([p] * (b - a + 1))
        return out

    def runs(self) -> list[Segment]:
        """Maximal runs of consecutive layers on one platform (adjacent groups merged)."""
        return runs_of(self.segments)

    def pattern(self) -> str:
        """The run pattern, e.g. ``"mobile-cloud-mobile"``."""
        return "-".join(p for _, _, p in self.runs())

    def bar(self) -> str:
        """One character per layer: ``M`` mobile, ``C`` cloud, ``|`` between groups."""
        return "|".join(("M" if p == "mobile" else "C") * (b - a + 1) for a, b, p in self.segments)

    def __str__(self) -> str:
        runs = ", ".join(f"{p} {a}..{b}" for a, b, p in self.runs())
        text = (
            f"{runs}: {self.latency_ms:.3f} ms, {self.mobile_energy_mj:.3f} mJ, cloud {self.cloud_ms:.3f} ms, "
            f"{self.bytes_up:.0f} B up, {self.bytes_down:.0f} B down"
        )
        if self.lossy:
            options = ", ".join(f"tensor {t} {o}" for t, o in self.lossy)
            text += f"; lossy: {options} (accuracy loss {self.accuracy_loss:.4g})"
        return text

    def __repr__(self) -> str:
        return f"Schedule({list(self.segments)!r}, latency_ms={self.latency_ms:.6g}, solver={self.solver!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (
            self.segments == other.segments
            and self.lossy == other.lossy
            and all(
                math.isclose(getattr(self, k), getattr(other, k), rel_tol=1e-9, abs_tol=1e-9)
                for k in ("latency_ms", "mobile_energy_mj", "cloud_ms", "bytes_up", "bytes_down")
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``lossy`` and ``accuracy_loss`` only when a transfer is lossy)."""
        d = {
            "segments": [list(s) for s in self.segments],
            "latency_ms": self.latency_ms,
            "mobile_energy_mj": self.mobile_energy_mj,
            "cloud_ms": self.cloud_ms,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "transfers": self.transfers,
            "switches": self.switches,
            "objective": self.objective,
            "exact": self.exact,
            "solver": self.solver,
        }
        if self.lossy:
            d["lossy"] = [list(x) for x in self.lossy]
            d["accuracy_loss"] = self.accuracy_loss
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schedule:
        """Inverse of :meth:`to_dict`."""
        keys = ("latency_ms", "mobile_energy_mj", "cloud_ms", "bytes_up", "bytes_down", "transfers", "switches")
        return cls(
            d["segments"],
            **{k: d[k] for k in keys},
            objective=d.get("objective"),
            exact=d.get("exact", True),
            solver=d.get("solver", ""),
            lossy=d.get("lossy", ()),
            accuracy_loss=d.get("accuracy_loss", 0.0),
        )

    # ------------------------------------------------------------ evaluation
    def evaluate(
        self, costs: Any, network: Any, *, cloud_slowdown: float = 1.0, cloud_keeps_tensors: bool = True
    ) -> Schedule:
        """This schedule's costs on ``network`` (its burst included, but for a training table, which is priced without
        one as ``plan`` prices it) recomputed from the cost model's definition (no solver involved)."""
        training = getattr(costs, "phase", "inference") == "training"
        burst = (0.0, 0.0) if training else network.burst
        usage, transfers = evaluate_usage(costs, self.segments, cloud_keeps_tensors=cloud_keeps_tensors, burst=burst)
        return Schedule.from_usage(
            self.segments,
            usage,
            transfers,
            network,
            cloud_slowdown,
            objective=self.objective,
            solver="evaluate",
        )


def evaluate_usage(
    costs: Any,
    segments: Sequence[Sequence[Any]],
    *,
    cloud_keeps_tensors: bool = True,
    burst: tuple[float, float] = (0.0, 0.0),
) -> tuple[list[float], int]:
    """Usage vector and transfer count of ``segments`` on ``costs`` on a link that passes ``burst`` bytes (up, down)
    of each request at once, from the definition.

    Every group's compute cost; a layer on the cloud downloads its
    ``cloud_download_bytes``; every change of platform in the sequence
    ``mobile, groups…, mobile`` is one switch. Tensors (the model input
    starts on the mobile): when the cloud keeps tensors, a tensor whose
    producer's platform differs from the platform of at least one consumer
    is sent once that way and a model output produced on the cloud is
    downloaded; with a stateless cloud, a tensor produced in a cloud run
    (maximal sequence of cloud groups) is downloaded once if a layer outside
    that run reads it or it is a model output, and it is uploaded once to
    every other cloud run that reads it. Raises :class:`CostTableError` if
    the segments do not cover the layers in order or use a group that is not
    offered.

    Burst credit (``rust/core/src/evaluate.rs`` says why): each transfer goes
    with one group (:func:`_tensor_sends`; a weight set with its layer's), and
    the burst carries ``min(burst, bytes)`` of the uploads of a group that
    starts a cloud run and of the downloads of a group that follows one or is
    the last group and on the cloud.
    """
    u = [0.0] * DIMS
    place = _placement(costs, segments)
    for seg in segments:
        a, b, p = int(seg[0]), int(seg[1]), str(seg[2])
        if p == "mobile":
            u[0] += float(costs.mobile_ms[a][b])
            u[2] += float(costs.mobile_mj[a][b])
        else:
            u[1] += float(costs.cloud_ms[a][b])
    run = _run_ids(segments)
    sends = _tensor_sends(costs, place, run, cloud_keeps_tensors)
    transfers = 0
    for t, d, _ in sends:
        u[BYTES_UP + d] += float(costs.input_bytes if t == 0 else costs.out_bytes[t - 1])
        u[CODEC_MS] += float(costs.codec_ms[t][d])
        u[CODEC_MJ] += float(costs.codec_mj[t][d])
        transfers += 1
    for layer, p in enumerate(place):
        w = float(costs.cloud_download_bytes[layer])
        if p == "cloud" and w > 0:
            u[BYTES_DOWN] += w
            transfers += 1
    sent = bytes_sent_with(costs, place, sends)
    prev = "mobile"
    for k, seg in enumerate(segments):
        a, b, p = int(seg[0]), int(seg[1]), str(seg[2])
        if p != prev:
            u[SWITCHES] += 1
        up, down = (sum(sent[layer][d] for layer in range(a, b + 1)) for d in (0, 1))
        credit_up, credit_down = burst_credit(burst, up, down, p, prev, k + 1 == len(segments))
        u[CREDIT_UP] += credit_up
        u[CREDIT_DOWN] += credit_down
        prev = p
    if prev != "mobile":
        u[SWITCHES] += 1
    return u, transfers


def bytes_sent_with(costs: Any, place: Sequence[str], sends: Sequence[tuple[int, int, int]]) -> list[list[float]]:
    """Per layer, the bytes ``[up, down]`` sent with its group: the tensors ``sends`` (:func:`_tensor_sends` of
    ``place``) sends with it, and on the cloud its weight set."""
    sent = [[0.0, 0.0] for _ in place]
    for t, d, layer in sends:
        sent[layer][d] += float(costs.input_bytes if t == 0 else costs.out_bytes[t - 1])
    for layer, p in enumerate(place):
        if p == "cloud":
            sent[layer][1] += float(costs.cloud_download_bytes[layer])
    return sent


def burst_credit(
    burst: tuple[float, float], up: float, down: float, platform: str, before: str, last: bool
) -> tuple[float, float]:
    """The bytes ``(up, down)`` a link's ``burst`` carries of what a group on ``platform`` sends (``up``, ``down``),
    the group before it on ``before`` (``"mobile"`` for the first), ``last`` when it ends the schedule: the uploads of
    a group that starts a cloud run, the downloads of one that follows a cloud run or is the last and on the cloud."""
    credit_up = min(burst[0], up) if platform == "cloud" and before == "mobile" else 0.0
    ends_cloud_run = (platform == "mobile" and before == "cloud") or (platform == "cloud" and last)
    return credit_up, min(burst[1], down) if ends_cloud_run else 0.0


def _placement(costs: Any, segments: Sequence[Sequence[Any]]) -> list[str]:
    """Every layer's platform; :class:`CostTableError` unless the segments cover the layers with offered groups."""
    n = costs.n
    place: list[str] = []
    for seg in segments:
        a, b, p = int(seg[0]), int(seg[1]), str(seg[2])
        if a != len(place) or b < a or b >= n or p not in PLATFORMS:
            raise CostTableError(
                f"segments must cover layers 0..{n - 1} in order without gaps; got {tuple(seg)} "
                f"where layer {len(place)} was expected"
            )
        table = costs.mobile_ms if p == "mobile" else costs.cloud_ms
        if not math.isfinite(float(table[a][b])):
            raise CostTableError(f"group {a}..{b} is not offered on the {p}")
        place.extend([p] * (b - a + 1))
    if len(place) != n:
        raise CostTableError(f"segments cover {len(place)} layers but the model has {n}")
    return place


def _run_ids(segments: Sequence[Sequence[Any]]) -> list[int]:
    """Per layer, the index of its run (maximal sequence of groups on one platform)."""
    run: list[int] = []
    prev_p = None
    for seg in segments:
        a, b, p = int(seg[0]), int(seg[1]), str(seg[2])
        r = (run[-1] + (p != prev_p)) if run else 0
        run.extend([r] * (b - a + 1))
        prev_p = p
    return run


def tensor_consumers(costs: Any) -> list[list[int]]:
    """The layers that read each tensor: index 0 is the model input (read by every layer without a
    predecessor), index ``i + 1`` layer ``i``'s output."""
    consumers: list[list[int]] = [[] for _ in range(costs.n + 1)]
    has_pred = [False] * costs.n
    for a, b in costs.edges:
        consumers[a + 1].append(b)
        has_pred[b] = True
    for v in range(costs.n):
        if not has_pred[v]:
            consumers[0].append(v)
    return consumers


def _tensor_sends(
    costs: Any, place: Sequence[str], run: Sequence[int], cloud_keeps_tensors: bool
) -> list[tuple[int, int, int]]:
    """The tensor transfers of a placement, in tensor order: ``(tensor, 0, layer)`` up, ``(tensor, 1, layer)`` down
    (see :func:`evaluate_usage` for the rules), sent with the group of ``layer``: a model output produced on the
    cloud with its producer's; on a stateless cloud, a download with the first layer after its run (the hand-back);
    otherwise with its first reader on the platform it goes to (in each cloud run it goes to)."""
    consumers = tensor_consumers(costs)
    outputs = set(costs.outputs)
    sends: list[tuple[int, int, int]] = []
    for t, cons in enumerate(consumers):
        src = "mobile" if t == 0 else place[t - 1]
        is_output = t > 0 and (t - 1) in outputs
        if cloud_keeps_tensors:
            if is_output and src == "cloud":
                sends.append((t, 1, t - 1))
            elif any(place[c] != src for c in cons):
                sends.append((t, 0 if src == "mobile" else 1, min(c for c in cons if place[c] != src)))
            continue
        home = -1 if t == 0 else run[t - 1]
        if src == "cloud" and is_output:
            sends.append((t, 1, t - 1))
        elif src == "cloud" and any(run[c] != home for c in cons):
            sends.append((t, 1, next(layer for layer in range(t, len(run)) if run[layer] != home)))
        first_in_run: dict[int, int] = {}
        for c in sorted(cons):
            if place[c] == "cloud" and run[c] != home:
                first_in_run.setdefault(run[c], c)
        sends.extend((t, 0, c) for c in first_in_run.values())
    return sends


def tensor_sends(
    costs: Any, segments: Sequence[Sequence[Any]], *, cloud_keeps_tensors: bool = True
) -> list[tuple[int, int]]:
    """The tensors ``segments`` send, from the cost model's definition: ``(tensor, direction)`` per transfer,
    direction 0 up (to the cloud), 1 down (tensor numbering of :mod:`jointdnn_edge.costs`); a tensor sent to
    several cloud runs appears once per run. :class:`CostTableError` as :func:`evaluate_usage`."""
    sends = _tensor_sends(costs, _placement(costs, segments), _run_ids(segments), cloud_keeps_tensors)
    return [(t, d) for t, d, _ in sends]
