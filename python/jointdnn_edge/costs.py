"""Cost model: what running layers on each platform, and moving tensors between them, costs.

A :class:`CostTable` describes one DNN as layers ``0..N-1`` in topological order:
the time (and mobile energy) of running every offered *group* of consecutive
layers on the mobile device or on the cloud, the size of every layer's output,
and which layer consumes which output. The link between the two platforms is a
:class:`jointdnn_edge.network.Network` (re-exported here).

Tensor numbering used throughout the planner: tensor ``0`` is the model input
(it starts on the mobile), tensor ``k + 1`` is the output of layer ``k``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, CostTableError
from .network import NETWORK_PRESETS, Network

__all__ = [
    "CostTable",
    "Network",
    "NETWORK_PRESETS",
    "DEFAULT_MOBILE_POWER_MW",
    "DEFAULT_BACKWARD_FACTOR",
]

#: Mobile compute power (mW) used to turn mobile times into energy when a table
#: gives no energy measurements. 7.5 W is the module power of the NVIDIA Jetson
#: TX2 in its default "Max-Q" mode (NVIDIA Jetson TX2 module data sheet), the
#: mobile platform of the JointDNN paper, whose authors measured it with an
#: INA226 power monitor. Override it with ``mobile_power_mw`` or measured
#: ``mobile_mj`` for any other device.
DEFAULT_MOBILE_POWER_MW = 7500.0

#: When only forward costs are known, a backward layer is assumed to cost this
#: many times its forward layer (one product for the input gradient and one for
#: the weight gradient, the usual rule of thumb). Profile the backward pass for
#: real numbers and pass them to :meth:`CostTable.training`.
DEFAULT_BACKWARD_FACTOR = 2.0

_FORMAT = "jointdnn-edge/costtable"
_VERSION = 1


def _float64(a: Any) -> np.ndarray:
    """``a`` as a new float64 array; complex input is refused rather than cast to its real part."""
    if np.iscomplexobj(a):
        raise TypeError("complex values are not costs")
    return np.array(a, dtype=np.float64, copy=True, order="C")


def _as_matrix(name: str, a: Any, n: int | None) -> np.ndarray:
    try:
        m = _float64(a)
    except (TypeError, ValueError, OverflowError) as e:
        raise CostTableError(f"{name} must be a numeric N×N array: {e}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise CostTableError(f"{name} must be a non-empty square N×N array, got shape {m.shape}")
    if n is not None and m.shape[0] != n:
        raise CostTableError(f"{name} is {m.shape[0]}×{m.shape[0]} but mobile_ms is {n}×{n}")
    n = m.shape[0]
    upper = np.triu(np.ones((n, n), dtype=bool))
    vals = m[upper]
    if np.isnan(vals).any():
        i, j = np.argwhere(np.isnan(m) & upper)[0]
        raise CostTableError(f"{name}[{i}, {j}] is NaN; use inf to mark a group that is not offered")
    if (vals < 0).any():
        i, j = np.argwhere((m < 0) & upper)[0]
        raise CostTableError(f"{name}[{i}, {j}] = {m[i, j]} is negative")
    diag = np.diagonal(m)
    if not np.isfinite(diag).all():
        i = int(np.argwhere(~np.isfinite(diag))[0][0])
        raise CostTableError(f"{name}[{i}, {i}] must be finite: every single layer must be offered")
    m[~upper] = np.inf  # only j >= i is meaningful; keep the rest canonical
    m.setflags(write=False)
    return m


def _as_vector(name: str, a: Any, n: int) -> np.ndarray:
    try:
        v = _float64(a).reshape(-1)
    except (TypeError, ValueError, OverflowError) as e:
        raise CostTableError(f"{name} must be a numeric vector: {e}") from None
    if v.shape != (n,):
        raise CostTableError(f"{name} must have {n} entries, got {v.shape[0]}")
    if not np.isfinite(v).all() or (v < 0).any():
        i = int(np.argwhere(~np.isfinite(v) | (v < 0))[0][0])
        raise CostTableError(f"{name}[{i}] = {v[i]} must be finite and >= 0")
    v.setflags(write=False)
    return v


def _as_edges(edges: Iterable[Sequence[int]] | None, n: int) -> tuple[tuple[int, int], ...]:
    if edges is None:
        return tuple((i, i + 1) for i in range(n - 1))
    out = set()
    for e in edges:
        try:
            u, v = (int(x) for x in e)
        except (TypeError, ValueError, OverflowError):
            raise CostTableError(f"edge {e!r} is not a pair of layer indices") from None
        if not (-1 <= u < v < n):
            raise CostTableError(
                f"edge ({u}, {v}) is invalid: need -1 <= u < v < {n} "
                "(layers in topological order; -1 is the model input)"
            )
        out.add((u, v))
    return tuple(sorted(out))


def _codec_overhead(name: str, a: Any, n: int) -> np.ndarray:
    if a is None:
        m = np.zeros((n + 1, 2))
    else:
        try:
            m = _float64(a)
        except (TypeError, ValueError, OverflowError) as e:
            raise CostTableError(f"{name} must be an (N+1)×2 array: {e}") from None
        if m.shape != (n + 1, 2):
            raise CostTableError(
                f"{name} must have shape ({n + 1}, 2) (rows: model input, then layers; columns: up, down), "
                f"got {m.shape}"
            )
        if not np.isfinite(m).all() or (m < 0).any():
            raise CostTableError(f"{name} must be finite and >= 0")
    m.setflags(write=False)
    return m


class CostTable:
    """Grouped layer costs of one DNN on the mobile device and on the cloud.

    ``mobile_ms[i, j]`` / ``cloud_ms[i, j]`` (read for ``j >= i``) is the time to
    run layers ``i..j`` as one group on that platform; ``inf`` marks a group
    that is not offered (single layers must be finite). ``out_bytes[i]`` is the
    size of layer ``i``'s output as sent over the link; ``input_bytes`` the size
    of the model input, which starts on the mobile. ``mobile_mj`` is the mobile
    compute energy of each group; by default ``mobile_ms * mobile_power_mw``
    (:data:`DEFAULT_MOBILE_POWER_MW` when that is not given either).

    ``edges`` lists ``(u, v)`` with ``u < v`` when layer ``v`` consumes layer
    ``u``'s output (``u = -1``: the model input); the default is the chain
    ``(i, i + 1)``. Layers without a predecessor consume the model input. A
    tensor needed on the other platform is sent once however many consumers
    it has there. ``outputs`` lists the layers whose outputs are model outputs
    and must end on the mobile (default: the layers without successors).

    ``weight_bytes[i]`` is layer ``i``'s parameter size; ``cloud_download_bytes[i]``
    what must be downloaded when layer ``i`` runs on the cloud (non-zero only
    in training tables: weights updated on the cloud). ``codec_ms`` and
    ``codec_mj`` (shape ``(N+1, 2)``, rows: model input then each layer's
    output; columns: upload, download) add compression time and mobile energy
    to every transfer of that tensor in that direction.
    """

    __slots__ = (
        "n",
        "mobile_ms",
        "cloud_ms",
        "mobile_mj",
        "out_bytes",
        "input_bytes",
        "edges",
        "outputs",
        "weight_bytes",
        "cloud_download_bytes",
        "codec_ms",
        "codec_mj",
        "names",
        "phase",
        "meta",
        # What the planner compiled from this table (planner._backend: solvers, the training table), kept with it
        # so that a plan finds them with one attribute read; never pickled or copied (see __getstate__).
        "_planned",
        "__weakref__",  # other table types are kept per live table in a weak map (planner._backend)
    )

    def __init__(
        self,
        mobile_ms: Any,
        cloud_ms: Any,
        out_bytes: Any,
        input_bytes: float,
        *,
        mobile_mj: Any = None,
        mobile_power_mw: float | None = None,
        edges: Iterable[Sequence[int]] | None = None,
        weight_bytes: Any = None,
        names: Sequence[str] | None = None,
        outputs: Iterable[int] | None = None,
        cloud_download_bytes: Any = None,
        codec_ms: Any = None,
        codec_mj: Any = None,
        phase: str = "inference",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.mobile_ms = _as_matrix("mobile_ms", mobile_ms, None)
        n = self.n = int(self.mobile_ms.shape[0])
        self.cloud_ms = _as_matrix("cloud_ms", cloud_ms, n)
        if mobile_mj is not None:
            if mobile_power_mw is not None:
                raise ConfigError("give mobile_mj or mobile_power_mw, not both")
            self.mobile_mj = _as_matrix("mobile_mj", mobile_mj, n)
        else:
            try:
                power = DEFAULT_MOBILE_POWER_MW if mobile_power_mw is None else float(mobile_power_mw)
            except (TypeError, ValueError, OverflowError):
                power = math.nan
            if not (math.isfinite(power) and power >= 0):
                raise ConfigError(f"mobile_power_mw must be finite and >= 0, got {mobile_power_mw!r}")
            with np.errstate(invalid="ignore", over="ignore"):  # an overflow leaves inf: refused below
                mj = self.mobile_ms * (power / 1e3)
            self.mobile_mj = _as_matrix("mobile_mj", np.where(np.isfinite(self.mobile_ms), mj, np.inf), n)
        offered = np.isfinite(self.mobile_ms) != np.isfinite(self.mobile_mj)
        if offered.any():  # the native core refuses such a table too (problem.rs)
            i, j = np.argwhere(offered)[0]
            raise CostTableError(
                f"mobile_ms[{i}, {j}] and mobile_mj[{i}, {j}] disagree on whether the group is offered"
            )
        self.out_bytes = _as_vector("out_bytes", out_bytes, n)
        try:
            self.input_bytes = float(input_bytes)
        except (TypeError, ValueError, OverflowError):
            raise CostTableError(f"input_bytes must be a number, got {input_bytes!r}") from None
        if not (math.isfinite(self.input_bytes) and self.input_bytes >= 0):
            raise CostTableError(f"input_bytes must be finite and >= 0, got {input_bytes!r}")
        self.edges = _as_edges(edges, n)
        has_succ = {u for u, _ in self.edges if u >= 0}
        if outputs is None:
            self.outputs = tuple(i for i in range(n) if i not in has_succ)
        else:
            try:
                outs = sorted({int(i) for i in outputs})
            except (TypeError, ValueError, OverflowError):
                raise CostTableError(f"outputs must be layer indices, got {outputs!r}") from None
            if outs and not (0 <= outs[0] and outs[-1] < n):
                raise CostTableError(f"outputs must be layer indices in 0..{n - 1}, got {outs}")
            self.outputs = tuple(outs)
        self.weight_bytes = None if weight_bytes is None else _as_vector("weight_bytes", weight_bytes, n)
        self.cloud_download_bytes = _as_vector(
            "cloud_download_bytes", np.zeros(n) if cloud_download_bytes is None else cloud_download_bytes, n
        )
        self.codec_ms = _codec_overhead("codec_ms", codec_ms, n)
        self.codec_mj = _codec_overhead("codec_mj", codec_mj, n)
        if names is None:
            self.names = tuple(f"layer{i}" for i in range(n))
        else:
            self.names = tuple(str(x) for x in names)
            if len(self.names) != n:
                raise CostTableError(f"names has {len(self.names)} entries, expected {n}")
        if phase not in ("inference", "training"):
            raise ConfigError(f"phase must be 'inference' or 'training', got {phase!r}")
        self.phase = phase
        self.meta: dict[str, Any] = dict(meta or {})

    # ------------------------------------------------------------------ views
    @property
    def is_chain(self) -> bool:
        """True when every layer consumes exactly the previous layer's output."""
        return self.edges == tuple((i, i + 1) for i in range(self.n - 1))

    def predecessors(self, layer: int) -> tuple[int, ...]:
        """Tensors consumed by ``layer`` (tensor numbering: 0 = model input, k+1 = layer k)."""
        preds = tuple(u + 1 for u, v in self.edges if v == layer)
        return preds if preds else (0,)

    def group_ms(self, first: int, last: int, platform: str) -> float:
        """Time of layers ``first..last`` as one group on ``platform`` (``inf`` if not offered)."""
        table = self.mobile_ms if platform == "mobile" else self.cloud_ms
        return float(table[first, last])

    def max_group(self) -> int:
        """Length of the longest offered group on either platform."""
        best = 1
        for m in (self.mobile_ms, self.cloud_ms):
            for d in range(self.n - 1, 0, -1):
                if d + 1 <= best:
                    break
                if np.isfinite(np.diagonal(m, offset=d)).any():
                    best = d + 1
                    break
        return best

    def __repr__(self) -> str:
        kind = "chain" if self.is_chain else f"DAG, {len(self.edges)} edges"
        return f"CostTable(n={self.n}, {kind}, phase={self.phase!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CostTable):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """The fields, for pickle and copy: without what the planner compiled from them (native objects, and
        derived from this very table: a copy or an unpickled table compiles its own)."""
        left_out = ("_planned", "__weakref__")
        return None, {k: getattr(self, k) for k in self.__slots__ if k not in left_out and hasattr(self, k)}

    # --------------------------------------------------------- constructors
    @classmethod
    def from_layers(
        cls,
        mobile_ms: Sequence[float],
        cloud_ms: Sequence[float],
        out_bytes: Sequence[float],
        input_bytes: float,
        *,
        mobile_mj: Sequence[float] | None = None,
        mobile_power_mw: float | None = None,
        max_group: int | None = None,
        **kwargs: Any,
    ) -> CostTable:
        """A table from per-layer costs, where a group costs the sum of its layers.

        Groups longer than ``max_group`` are not offered (``None``: all groups).
        This ignores the speed-ups libraries get from fusing layers; profile
        groups (:func:`jointdnn_edge.profile`) to capture them.
        """
        m = _as_vector("mobile_ms", mobile_ms, len(mobile_ms))
        n = m.shape[0]
        c = _as_vector("cloud_ms", cloud_ms, n)
        mats = [_group_sums(m, max_group), _group_sums(c, max_group)]
        mj = None
        if mobile_mj is not None:
            if mobile_power_mw is not None:
                raise ConfigError("give mobile_mj or mobile_power_mw, not both")
            mj = _group_sums(_as_vector("mobile_mj", mobile_mj, n), max_group)
        return cls(mats[0], mats[1], out_bytes, input_bytes, mobile_mj=mj, mobile_power_mw=mobile_power_mw, **kwargs)

    @classmethod
    def training(
        cls,
        forward: CostTable,
        backward: CostTable | None = None,
        weight_bytes: Sequence[float] | None = None,
        *,
        activation_edges: bool = False,
    ) -> CostTable:
        """The online-training table: N forward layers then N mirrored backward layers.

        Layer ``N + k`` is the backward pass of forward layer ``N - 1 - k``, so
        ``backward`` lists its layers in execution order (its ``out_bytes[k]``
        is the gradient that layer passes on; its edges are ignored: they are
        the forward edges reversed). Without ``backward``, each backward group
        costs :data:`DEFAULT_BACKWARD_FACTOR` times the mirrored forward group
        and passes on a gradient the size of the forward layer's input.

        When a backward layer runs on the cloud, the weights it updates
        (``weight_bytes``, default ``forward.weight_bytes``) are downloaded to
        the mobile, as in the paper. The training step ends when the weights
        are back on the mobile: no activation must return.

        By default the table is the paper's graph: one chain of 2N layers.
        ``activation_edges=True`` also makes the backward pass of layer f read
        layer f's input activations, as real back-propagation does. That is
        exact too, but it keeps every forward activation live until its
        backward layer, so the planner's cut width equals the depth and its
        state graph grows as 2^N: use it for small networks only (the planner
        raises :class:`SolverError` past its limits).
        """
        if forward.phase != "inference":
            raise ConfigError("CostTable.training takes an inference (forward) table")
        n = forward.n
        if weight_bytes is None:
            if forward.weight_bytes is None:
                raise CostTableError("training needs weight_bytes (or a forward table that has weight_bytes)")
            wb = np.asarray(forward.weight_bytes)
        else:
            wb = _as_vector("weight_bytes", weight_bytes, n)
        rev = np.arange(n)[::-1]
        if backward is None:
            bm = forward.mobile_ms[np.ix_(rev, rev)].T * DEFAULT_BACKWARD_FACTOR
            bc = forward.cloud_ms[np.ix_(rev, rev)].T * DEFAULT_BACKWARD_FACTOR
            bmj = forward.mobile_mj[np.ix_(rev, rev)].T * DEFAULT_BACKWARD_FACTOR
            # backward of layer f emits the gradient w.r.t. f's input
            in_bytes = [_input_bytes_of(forward, f) for f in range(n)]
            b_out = np.array([in_bytes[n - 1 - k] for k in range(n)])
            b_codec_ms = np.zeros((n + 1, 2))
            b_codec_mj = np.zeros((n + 1, 2))
        else:
            if backward.n != n:
                raise CostTableError(f"backward has {backward.n} layers, forward has {n}")
            bm, bc, bmj = backward.mobile_ms, backward.cloud_ms, backward.mobile_mj
            b_out = np.asarray(backward.out_bytes)
            b_codec_ms, b_codec_mj = backward.codec_ms, backward.codec_mj
        big = 2 * n
        mm = np.full((big, big), np.inf)
        cm = np.full((big, big), np.inf)
        mj = np.full((big, big), np.inf)
        for dst, src in ((mm, (forward.mobile_ms, bm)), (cm, (forward.cloud_ms, bc)), (mj, (forward.mobile_mj, bmj))):
            dst[:n, :n] = src[0]
            dst[n:, n:] = src[1]
        edges = set(forward.edges)
        has_succ = {u for u, _ in forward.edges if u >= 0}
        for s in range(n):
            if s not in has_succ:  # the loss gradient enters the backward pass here
                edges.add((s, n + (n - 1 - s)))
        for u, v in forward.edges:
            if u >= 0:
                edges.add((n + (n - 1 - v), n + (n - 1 - u)))
        if activation_edges:
            for f in range(n):
                preds = [u for u, v in forward.edges if v == f]
                for u in preds or [-1]:
                    edges.add((u, n + (n - 1 - f)))
        download = np.zeros(big)
        download[n:] = wb[::-1]
        codec_ms = np.vstack([forward.codec_ms, b_codec_ms[1:]])
        codec_mj = np.vstack([forward.codec_mj, b_codec_mj[1:]])
        names = list(forward.names) + [f"{forward.names[n - 1 - k]}.backward" for k in range(n)]
        meta = dict(forward.meta)
        # a profile's per-group spread (spread.SPREAD_KEY) is N x N: it does not describe the 2N-layer table
        meta.pop("spread", None)
        meta["training"] = {
            "forward_layers": n,
            "activation_edges": activation_edges,
            "backward": "given" if backward else f"{DEFAULT_BACKWARD_FACTOR}x forward",
        }
        return cls(
            mm,
            cm,
            np.concatenate([forward.out_bytes, b_out]),
            forward.input_bytes,
            mobile_mj=mj,
            edges=sorted(edges),
            weight_bytes=np.concatenate([wb, np.zeros(n)]),
            names=names,
            outputs=(),
            cloud_download_bytes=download,
            codec_ms=codec_ms,
            codec_mj=codec_mj,
            phase="training",
            meta=meta,
        )

    # -------------------------------------------------------------- JSON I/O
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``inf`` as ``null``; only the j >= i triangle is kept)."""

        def tri(m: np.ndarray) -> list[list[float | None]]:
            return [[_num(m[i, j]) for j in range(i, self.n)] for i in range(self.n)]

        return {
            "format": _FORMAT,
            "version": _VERSION,
            "n": self.n,
            "phase": self.phase,
            "names": list(self.names),
            "mobile_ms": tri(self.mobile_ms),
            "cloud_ms": tri(self.cloud_ms),
            "mobile_mj": tri(self.mobile_mj),
            "out_bytes": [float(x) for x in self.out_bytes],
            "input_bytes": self.input_bytes,
            "edges": [list(e) for e in self.edges],
            "outputs": list(self.outputs),
            "weight_bytes": None if self.weight_bytes is None else [float(x) for x in self.weight_bytes],
            "cloud_download_bytes": [float(x) for x in self.cloud_download_bytes],
            "codec_ms": self.codec_ms.tolist(),
            "codec_mj": self.codec_mj.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostTable:
        """Inverse of :meth:`to_dict`; raises :class:`CostTableError` on a malformed document."""
        if not isinstance(d, Mapping):
            raise CostTableError(f"a cost table document is a JSON object (dict), got {type(d).__name__}")
        if d.get("format") != _FORMAT:
            raise CostTableError(f"not a cost table (format field is {d.get('format')!r})")
        if d.get("version") != _VERSION:
            raise CostTableError(f"cost table version {d.get('version')!r} is not supported (expected {_VERSION})")
        try:
            n = int(d["n"])

            def full(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
                if len(rows) != n or any(len(r) != n - i for i, r in enumerate(rows)):
                    raise CostTableError("group matrices must list N rows of N-i values")
                m = np.full((n, n), np.inf)
                for i, r in enumerate(rows):
                    m[i, i:] = [np.inf if x is None else float(x) for x in r]
                return m

            return cls(
                full(d["mobile_ms"]),
                full(d["cloud_ms"]),
                d["out_bytes"],
                d["input_bytes"],
                mobile_mj=full(d["mobile_mj"]),
                edges=[tuple(e) for e in d["edges"]],
                weight_bytes=d.get("weight_bytes"),
                names=d.get("names"),
                outputs=d.get("outputs"),
                cloud_download_bytes=d.get("cloud_download_bytes"),
                codec_ms=d.get("codec_ms"),
                codec_mj=d.get("codec_mj"),
                phase=d.get("phase", "inference"),
                meta=d.get("meta") or {},
            )
        except CostTableError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CostTableError(f"malformed cost table: {type(e).__name__}: {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON (exact: floats round-trip bit for bit)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, allow_nan=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CostTable:
        """Read a table written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise CostTableError(f"{path}: not JSON: {e}") from None
        except UnicodeDecodeError:
            # a binary file: a model, a lookup table, ...
            raise CostTableError(f"{path}: not a cost table (binary, not JSON text)") from None
        except OSError as e:
            raise CostTableError(f"{path}: cannot read: {e.strerror or e}") from e
        if not isinstance(d, dict):
            raise CostTableError(f"{path}: not a cost table")
        try:
            return cls.from_dict(d)
        except CostTableError as e:
            raise CostTableError(f"{path}: {e}") from None

    def replace(self, **changes: Any) -> CostTable:
        """A copy with some constructor arguments changed (e.g. compressed ``out_bytes``)."""
        args: dict[str, Any] = {
            "mobile_ms": self.mobile_ms,
            "cloud_ms": self.cloud_ms,
            "out_bytes": self.out_bytes,
            "input_bytes": self.input_bytes,
            "mobile_mj": self.mobile_mj,
            "edges": self.edges,
            "weight_bytes": self.weight_bytes,
            "names": self.names,
            "outputs": self.outputs,
            "cloud_download_bytes": self.cloud_download_bytes,
            "codec_ms": self.codec_ms,
            "codec_mj": self.codec_mj,
            "phase": self.phase,
            "meta": self.meta,
        }
        unknown = set(changes) - set(args) - {"mobile_power_mw"}
        if unknown:
            raise ConfigError(f"unknown CostTable fields: {sorted(unknown)}")
        if "mobile_power_mw" in changes and "mobile_mj" not in changes:
            args["mobile_mj"] = None
        args.update(changes)
        positional = [args.pop(k) for k in ("mobile_ms", "cloud_ms", "out_bytes", "input_bytes")]
        return CostTable(*positional, **args)


def _num(x: float) -> float | None:
    return None if math.isinf(x) else float(x)


def _group_sums(v: np.ndarray, max_group: int | None) -> np.ndarray:
    n = v.shape[0]
    if max_group is not None and max_group < 1:
        raise CostTableError(f"max_group must be >= 1, got {max_group}")
    csum = np.concatenate([[0.0], np.cumsum(v)])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = csum[j + 1] - csum[i]
    ok = j >= i
    if max_group is not None:
        ok &= (j - i + 1) <= max_group
    return np.where(ok, m, np.inf)


def _input_bytes_of(t: CostTable, layer: int) -> float:
    """Bytes of everything ``layer`` consumes (the size of its input gradient in training)."""
    return float(sum(t.input_bytes if p == 0 else t.out_bytes[p - 1] for p in t.predecessors(layer)))
