"""Entry points for Android apps: Java or Kotlin calls them through Chaquopy.

An app gets this module with
``Python.getInstance().getModule("jointdnn_edge.android")`` and calls its
functions with ``callAttr("decide", 12.0, 30.0)``; ``android_bridge/`` holds
a typed Java facade (``JointDnn.java``) over exactly these functions, and its
README walks through an app from scratch.

**Java-friendly types only.** Arguments are ``str`` (JSON where structured),
numbers, ``None`` (Java ``null``), byte buffers (a Java ``byte[]`` arrives as
a Chaquopy ``jarray``, which has the buffer protocol) and lists of byte
buffers (``byte[][]``). Results are ``str`` (JSON), ``bytes``, ``bool``,
``int``, ``None`` or a list of those. Tensors cross the bridge as a JSON list
of ``{"name", "dtype", "shape"}`` plus one little-endian, C-order byte buffer
per tensor.

**Two modes.** *Plan-only*: the app runs its own TFLite slices (exported
on the workstation by :func:`export_slices`) with the Android LiteRT API and
asks this module for the schedule of every inference (:func:`decide`), for
the activation codec (:func:`encode_frame`, :func:`decode_frame`) and to
send the cloud runs (:func:`open_cloud`, :func:`cloud_infer`,
:func:`cloud_estimate`). Loading and querying a lookup table needs neither
numpy nor the native module; a cost table needs numpy for the fastest path
but is planned without it too (the pure-Python planner reads the JSON
directly); the codec and the cloud client need numpy, zstandard and httpx.
*Full*: the SDK runs the slices itself (:func:`open_session`, :func:`run`,
:func:`last_trace`) where numpy, zstandard, httpx, flatbuffers and a TFLite
interpreter are installed through Chaquopy, together with the three
pure-Python flatbuffer-schema files of ``ai-edge-litert`` (which has no
Android wheel); ``android_bridge/README.md`` (Step 5) lists them.

**Planner.** The native (Rust) planner runs when its extension was built
for the device's ABI; otherwise the pure-Python fallback computes the same
decisions. :func:`native_available` tells whether the extension loaded.
Exact plans on a cost table reach it through numpy arrays, so without numpy
they run in pure Python even then; the ``planner`` field of
:func:`load_costs` says which one plans.

**Errors.** Every entry point raises the SDK's own exception classes
(:mod:`jointdnn_edge.errors`), which Chaquopy turns into
``com.chaquo.python.PyException``. Because the text of that exception
differs between Chaquopy versions, each failure is also recorded per thread:
:func:`last_error` returns it as JSON (``type``, ``message``, the class
hierarchy and the error's own fields such as ``constraint``), and the Java
facade rethrows it as a typed ``JointDnnException`` (a ``PyException``
subclass, so callers catching ``PyException`` still catch it).

**State.** One planner configuration per process (the loaded cost table
and/or lookup table, the radio, the defaults), replaced as a whole by the
``load_*``/:func:`configure` calls so a concurrent :func:`decide` never sees
half of an update; sessions are explicit integer handles.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from . import __version__
from .errors import (
    CodecError,
    CostTableError,
    ExecutionError,
    InfeasibleError,
    JointDNNError,
    LookupTableError,
    ModelError,
    RemoteError,
    TransportError,
)
from .network import NETWORK_PRESETS, Network
from .planner import LookupTable, Schedule, plan, reference
from .planner import native_available as _native_available
from .planner.usage import Link, Radio

__all__ = [
    "API_VERSION",
    "api_version",
    "build_lookup_table",
    "close_cloud",
    "close_session",
    "cloud_estimate",
    "cloud_infer",
    "configure",
    "decide",
    "decode_frame",
    "encode_frame",
    "export_slices",
    "frame_info",
    "info",
    "last_error",
    "last_trace",
    "load_costs",
    "load_costs_json",
    "load_lookup_table",
    "load_lookup_table_bytes",
    "mobile_ranges",
    "native_available",
    "open_cloud",
    "open_session",
    "reset",
    "run",
    "version",
]

#: Version of this bridge's calling conventions; the Java facade checks it at start-up.
API_VERSION = 1

_COSTS_FORMAT = "jointdnn-edge/costtable"  # the "format" field of a cost table's JSON (costs.py)
_COSTS_VERSION = 1
_DEFAULT_RADIO = "4g"
#: decide() argument -> the planner's metric name, in the planner's constraint order
_CONSTRAINTS = (("deadline_ms", "latency"), ("battery_mj", "energy"), ("cloud_budget_ms", "cloud"))
_PLAN_ARG = {"latency": "deadline_ms", "energy": "energy_budget_mj", "cloud": "cloud_budget_ms"}
#: plan() options a lookup table records, with plan()'s defaults (a table answers only for its own values)
_PLAN_DEFAULTS: dict[str, Any] = {"cloud_keeps_tensors": True}

F = TypeVar("F", bound=Callable[..., Any])


# ------------------------------------------------------------------- errors
_local = threading.local()


def _describe(e: BaseException) -> dict[str, Any]:
    """An exception as plain JSON: class, message, class hierarchy and the SDK error's own fields."""
    cls = type(e)
    out: dict[str, Any] = {
        "type": cls.__name__,
        "module": cls.__module__,
        "message": str(e),
        "sdk_error": isinstance(e, JointDNNError),
        # the Java side tests membership ("is this a TransportError?") without knowing Python's classes
        "hierarchy": [k.__name__ for k in cls.__mro__ if k not in (object, BaseException)],
    }
    if isinstance(e, InfeasibleError):
        out["constraint"] = e.constraint
        out["best"] = e.best if e.best is None or math.isfinite(e.best) else None
    if isinstance(e, RemoteError):
        out["status"] = e.status
    return out


def _entry(fn: F) -> F:
    """Marks a function as a bridge entry point: its failures are recorded for :func:`last_error`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _local.error = None
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            _local.error = _describe(e)
            raise

    return cast(F, wrapper)


def last_error() -> str | None:
    """JSON describing the exception the last entry point called on this thread raised, or None.

    Fields: ``type`` (class name, e.g. ``"InfeasibleError"``), ``module``,
    ``message``, ``sdk_error`` (a :class:`~jointdnn_edge.JointDNNError`),
    ``hierarchy`` (class names from the class itself up to ``Exception``),
    and where they apply ``constraint``/``best`` (:class:`InfeasibleError`)
    and ``status`` (:class:`RemoteError`). Reset to None by every successful
    entry-point call on the same thread.
    """
    err = getattr(_local, "error", None)
    return None if err is None else json.dumps(err)


# ----------------------------------------------------------------- argument helpers
def _number(value: Any, name: str, *, positive: bool = False, optional: bool = False) -> float | None:
    """``value`` as a finite float (``None`` passes when ``optional``); CostTableError otherwise."""
    if value is None and optional:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CostTableError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        raise CostTableError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return x


def _bytes(data: Any, what: str) -> bytes:
    """A byte buffer from Java or Python as ``bytes``.

    Accepts ``bytes``, anything with the buffer protocol (``bytearray``,
    ``memoryview``, Chaquopy's ``jarray`` of Java ``byte``) and, as a last
    resort, a sequence of integers, where Java's signed bytes (-128..127)
    stand for 128..255.
    """
    if isinstance(data, bytes):
        return data
    if data is None:
        raise CodecError(f"{what} is null")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        pass
    try:
        return bytes(int(v) & 0xFF for v in data)
    except (TypeError, ValueError):
        raise CodecError(f"{what} must be a byte buffer, got {type(data).__name__}") from None


def _json(text: Any, what: str, kind: type) -> Any:
    """Parse ``text`` as JSON of type ``kind`` (None or "" give an empty one)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return kind()
    if not isinstance(text, str):
        text = str(text)  # a Java String arrives as str; anything else by its text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise CostTableError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise CostTableError(f"{what} must be a JSON {'object' if kind is dict else 'array'}")
    return value


# ------------------------------------------------------------------- planner state
class _Costs:
    """A cost table ready to plan on.

    With numpy importable it is a :class:`~jointdnn_edge.CostTable` and
    :func:`~jointdnn_edge.plan` does the work (native or pure Python). Without
    numpy the pure-Python planner runs on the JSON document directly, the
    same computation ``plan(..., solver="python")`` performs.
    """

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.table: Any = None
        self._plain: reference.Plain | None = None
        self._graphs: dict[bool, reference.StateGraph] = {}
        try:
            from .costs import CostTable  # imports numpy
        except ImportError:
            if doc.get("format") != _COSTS_FORMAT or doc.get("version") != _COSTS_VERSION:
                raise CostTableError("not a jointdnn-edge cost table (format/version fields)") from None
            self._plain = reference.Plain.from_dict(doc)
            self.n = self._plain.n
            self.phase = str(doc.get("phase", "inference"))
            self.names = [str(x) for x in doc.get("names") or [f"layer{i}" for i in range(self.n)]]
            self.chain = [tuple(e) for e in self._plain.edges] == [(i, i + 1) for i in range(self.n - 1)]
        else:
            self.table = CostTable.from_dict(doc)
            self.n = self.table.n
            self.phase = self.table.phase
            self.names = list(self.table.names)
            self.chain = self.table.is_chain

    @property
    def planner(self) -> str:
        """Which planner a decision on this table runs: ``"native"`` or ``"python"``."""
        return "native" if self.table is not None and _native_available() else "python"

    def plan(
        self, network: Network, objective: str, bounds: Mapping[str, float], slowdown: float, **options: Any
    ) -> Schedule:
        """The optimal schedule (``bounds``: planner metric -> bound)."""
        kw: dict[str, Any] = {_PLAN_ARG[m]: b for m, b in bounds.items()}
        if self.table is not None:
            return plan(self.table, network, objective=objective, cloud_slowdown=slowdown, **kw, **options)
        # numpy-free: the checks plan() makes, then its pure-Python branch
        keeps = bool(options.pop("cloud_keeps_tensors", True))
        if options:
            raise CostTableError(f"planner options {sorted(options)} need numpy (not installed)")
        if self.phase != "inference":
            raise CostTableError("this is a training cost table; plan it with the desktop API (needs numpy)")
        if objective not in ("latency", "energy"):
            raise CostTableError(f"objective must be 'latency' or 'energy', got {objective!r}")
        graph = self._graphs.get(keeps)
        if graph is None:
            assert self._plain is not None
            graph = self._graphs[keeps] = reference.StateGraph.build(self._plain, keeps)
        link = Link.of(network)
        req = reference.Request(objective, link, slowdown, **kw)
        segs, usage, transfers = reference.solve(graph, req)
        return Schedule.from_usage(segs, usage, transfers, link, slowdown, objective=objective, solver="python")

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "phase": self.phase,
            "chain": self.chain,
            "names": self.names,
            "planner": self.planner,
            "numpy": self.table is not None,
        }


class _State:
    """One immutable planner configuration; updates build a new one and swap it in."""

    __slots__ = ("costs", "lut", "radio", "radio_name", "objective", "options", "_embedded")

    def __init__(
        self,
        costs: _Costs | None = None,
        lut: LookupTable | None = None,
        radio: Radio | None = None,
        radio_name: str | None = _DEFAULT_RADIO,
        objective: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.costs = costs
        self.lut = lut
        self.radio = radio if radio is not None else _radio_of(NETWORK_PRESETS[_DEFAULT_RADIO])
        self.radio_name = radio_name
        self.objective = objective
        self.options: dict[str, Any] = dict(options or {})
        self._embedded: _Costs | None = None

    def replace(self, **changes: Any) -> _State:
        fields = {k: getattr(self, k) for k in ("costs", "lut", "radio", "radio_name", "objective", "options")}
        fields.update(changes)
        return _State(**fields)

    def cost_source(self) -> _Costs | None:
        """The loaded cost table, else the one embedded in the loaded lookup table."""
        if self.costs is not None:
            return self.costs
        if self._embedded is None and self.lut is not None:
            doc = self.lut.embedded_costs  # the table embedded in the .lut file, if any
            if doc is not None:
                self._embedded = _Costs(doc)
        return self._embedded

    def lut_answers(self, objective: str, bounds: Mapping[str, float]) -> bool:
        """True when the lookup table was built for exactly this request (so its answer is plan()'s)."""
        lut = self.lut
        if lut is None or lut.force is not None or lut.objective != objective:
            return False
        if dict(lut.constraints) != dict(bounds) or tuple(lut.radio) != tuple(self.radio):
            return False
        missing = object()
        options = {**_PLAN_DEFAULTS, **self.options}
        return all(getattr(lut, k, missing) == v for k, v in options.items())

    def summary(self) -> dict[str, Any]:
        return {
            "costs": None if self.costs is None else self.costs.summary(),
            "lookup_table": None if self.lut is None else _lut_summary(self.lut),
            "radio": self.radio._asdict(),
            "radio_name": self.radio_name,
            "objective": self.objective,
            "plan_options": self.options,
            "native": _native_available(),
        }


def _radio_of(network: Network) -> Radio:
    return Radio(float(network.alpha_up), float(network.alpha_down), float(network.beta), float(network.rtt_ms))


def _radio_from(spec: Any) -> tuple[Radio, str | None]:
    """A radio from a preset name or a ``{"alpha_up", "alpha_down", "beta", "rtt_ms"}`` object."""
    if isinstance(spec, str):
        return _radio_of(Network.preset(spec)), spec.lower()
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"preset", "alpha_up", "alpha_down", "beta", "rtt_ms"}
        if unknown:
            raise CostTableError(f"unknown radio fields {sorted(unknown)}")
        if "preset" in spec:
            base = Network.preset(str(spec["preset"]), rtt_ms=float(spec.get("rtt_ms", 0.0)))
            return _radio_of(base), str(spec["preset"]).lower()
        try:
            net = Network(
                1.0,
                1.0,
                alpha_up=spec["alpha_up"],
                alpha_down=spec["alpha_down"],
                beta=spec["beta"],
                rtt_ms=spec.get("rtt_ms", 0.0),
            )
        except KeyError as e:
            raise CostTableError(f"radio needs alpha_up, alpha_down and beta (missing {e})") from None
        return _radio_of(net), None
    raise CostTableError(f"radio must be a preset name or an object, got {spec!r}")


_state_lock = threading.Lock()  # serialises updates; readers take the current _state without it
_state = _State()


def _update(**changes: Any) -> _State:
    global _state
    with _state_lock:
        _state = _state.replace(**changes)
        return _state


def _lut_summary(lut: LookupTable) -> dict[str, Any]:
    st = lut.stats()
    names = {m: a for a, m in _CONSTRAINTS}
    return {
        "n": lut.n,
        "objective": lut.objective,
        "constraints": {names[m]: b for m, b in lut.constraints},
        "force": lut.force,
        "radio": lut.radio._asdict(),
        "up_mbps": list(lut.up_mbps),
        "down_mbps": list(lut.down_mbps),
        "cloud_slowdown": list(lut.cloud_slowdown),
        "cells": list(lut.axes),
        "schedules": st["schedules"],
        "costs_embedded": st["costs_embedded"],
        "cloud_keeps_tensors": getattr(lut, "cloud_keeps_tensors", True),
        "planner": "native" if _native_available() else "python",
    }


def _schedule_json(s: Schedule, source: str, bounds: Mapping[str, float], point: tuple[float, float, float]) -> str:
    names = {m: a for a, m in _CONSTRAINTS}
    d = s.to_dict()
    runs = s.runs()
    d["runs"] = [list(r) for r in runs]
    d["pattern"] = "-".join(p for _, _, p in runs)
    d["source"] = source
    d["constraints"] = {names[m]: b for m, b in bounds.items()}
    d["up_mbps"], d["down_mbps"], d["cloud_slowdown"] = point
    return json.dumps(d)


# ------------------------------------------------------------------- info
@_entry
def version() -> str:
    """The SDK version, e.g. ``"0.1.0"``."""
    return __version__


@_entry
def api_version() -> int:
    """:data:`API_VERSION`: the Java facade refuses to run against a different one."""
    return API_VERSION


@_entry
def native_available() -> bool:
    """True when the native (Rust) planner runs; False: the pure-Python fallback (same decisions, slower)."""
    return _native_available()


@_entry
def info() -> str:
    """JSON: SDK and bridge versions, which planner runs, whether numpy is importable, and the planner state."""
    try:
        import numpy  # noqa: F401

        has_numpy = True
    except ImportError:
        has_numpy = False
    return json.dumps(
        {
            "version": __version__,
            "api_version": API_VERSION,
            "native": _native_available(),
            "numpy": has_numpy,
            "python": ".".join(map(str, sys.version_info[:3])),
            "state": _state.summary(),
        }
    )


# ------------------------------------------------------------------- planning
def _read_file(path: str, what: str, error: type[JointDNNError]) -> bytes:
    """The bytes of ``path``; ``error`` naming ``what`` could not be read."""
    try:
        with open(str(path), "rb") as f:
            return f.read()
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None


@_entry
def load_costs(path: str) -> str:
    """Load a cost table file (``jointdnn-edge profile`` output) as the table :func:`decide` plans on.

    Returns JSON ``{"n", "phase", "chain", "names", "planner", "numpy"}``.
    A loaded lookup table stays loaded; both must have the same layer count.
    """
    data = _read_file(path, "cost table", CostTableError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CostTableError(f"cost table {path} is not UTF-8 text") from None
    return load_costs_json(text)


@_entry
def load_costs_json(text: str) -> str:
    """Like :func:`load_costs`, from the JSON text itself (e.g. read from an Android asset)."""
    costs = _Costs(_json(text, "cost table", dict))
    lut = _state.lut
    if lut is not None and lut.n != costs.n:
        raise CostTableError(f"cost table has {costs.n} layers but the loaded lookup table has {lut.n}")
    _update(costs=costs)
    return json.dumps(costs.summary())


@_entry
def load_lookup_table(path: str) -> str:
    """Load a lookup table file (``jointdnn-edge lut build`` output, same format on every platform).

    The radio (power model, round trip) and the cloud memory model
    (``cloud_keeps_tensors``) become the table's own. Returns
    JSON describing the table: ``n``, ``objective``, ``constraints``,
    ``radio``, the bandwidth and slowdown ranges, ``cells``, ``schedules``,
    ``costs_embedded``, ``planner``.
    """
    return load_lookup_table_bytes(_read_file(path, "lookup table", LookupTableError))


@_entry
def load_lookup_table_bytes(data: Any) -> str:
    """Like :func:`load_lookup_table`, from the file's bytes (e.g. an Android asset read into a ``byte[]``)."""
    lut = LookupTable.from_bytes(_bytes(data, "lookup table"))
    costs = _state.costs
    if costs is not None and costs.n != lut.n:
        raise LookupTableError(f"lookup table has {lut.n} layers but the loaded cost table has {costs.n}")
    # adopt what the table was built for, so exact plans outside it model the same radio and cloud
    options = dict(_state.options)
    options.update({k: getattr(lut, k) for k in _PLAN_DEFAULTS if hasattr(lut, k)})
    _update(lut=lut, radio=Radio(*lut.radio), radio_name=None, options=options)
    return json.dumps(_lut_summary(lut))


@_entry
def configure(options_json: str) -> str:
    """Set planner defaults from a JSON object; returns the whole configuration as JSON.

    Keys (all optional): ``radio`` (``"3g"``, ``"4g"``, ``"wifi"``,
    ``{"preset": "4g", "rtt_ms": 30}`` or ``{"alpha_up", "alpha_down",
    "beta", "rtt_ms"}``: the power model in mW per Mbit/s and mW, Eq. 21
    of the paper), ``objective`` (``"latency"``, ``"energy"`` or null: the
    lookup table's, else latency), ``plan_options`` (extra keyword arguments
    of :func:`~jointdnn_edge.plan`, e.g. ``{"cloud_keeps_tensors": false}``).
    """
    opts = _json(options_json, "options", dict)
    unknown = set(opts) - {"radio", "objective", "plan_options"}
    if unknown:
        raise CostTableError(f"unknown configure() keys {sorted(unknown)}")
    changes: dict[str, Any] = {}
    if "radio" in opts:
        changes["radio"], changes["radio_name"] = _radio_from(opts["radio"])
    if "objective" in opts:
        if opts["objective"] not in (None, "latency", "energy"):
            raise CostTableError(f"objective must be 'latency', 'energy' or null, got {opts['objective']!r}")
        changes["objective"] = opts["objective"]
    if "plan_options" in opts:
        po = opts["plan_options"]
        if not isinstance(po, dict):
            raise CostTableError("plan_options must be a JSON object")
        changes["options"] = po
    return json.dumps(_update(**changes).summary())


@_entry
def decide(
    up_mbps: float,
    down_mbps: float,
    battery_mj: float | None = None,
    deadline_ms: float | None = None,
    cloud_slowdown: float | None = 1.0,
    objective: str | None = None,
    cloud_budget_ms: float | None = None,
) -> str:
    """The schedule for this inference, as JSON (call it before every inference).

    ``up_mbps``/``down_mbps``: the bandwidth now; ``battery_mj``: the most
    mobile energy (mJ) this inference may use; ``deadline_ms``: its latency
    bound; ``cloud_budget_ms``: a bound on cloud time; ``cloud_slowdown``:
    how much slower than profiled the cloud is now. ``objective``:
    ``"latency"`` or ``"energy"`` (default: :func:`configure`'s, else the
    lookup table's, else latency).

    With a lookup table loaded, a bound left ``None`` is the table's own, and
    the table answers whenever the request is the one it was built for
    (objective, bounds, radio, options); anything else is an exact plan on
    the loaded cost table (or the one embedded in the table file). Either
    way the answer is the schedule :func:`~jointdnn_edge.plan` returns.

    JSON fields: those of :meth:`Schedule.to_dict` (``segments``,
    ``latency_ms``, ``mobile_energy_mj``, ``cloud_ms``, ``bytes_up``,
    ``bytes_down``, ``transfers``, ``switches``, ``objective``, ``exact``,
    ``solver``) plus ``runs`` (adjacent groups on one platform merged),
    ``pattern``, ``source`` (``"lut"`` or ``"plan"``), ``constraints`` (the
    bounds applied) and the conditions. Raises :class:`InfeasibleError` when
    no schedule meets the bounds.
    """
    st = _state
    up = cast(float, _number(up_mbps, "up_mbps", positive=True))
    down = cast(float, _number(down_mbps, "down_mbps", positive=True))
    slowdown = 1.0 if cloud_slowdown is None else cast(float, _number(cloud_slowdown, "cloud_slowdown", positive=True))
    given = {
        "latency": _number(deadline_ms, "deadline_ms", optional=True),
        "energy": _number(battery_mj, "battery_mj", optional=True),
        "cloud": _number(cloud_budget_ms, "cloud_budget_ms", optional=True),
    }
    lut = st.lut
    if objective is None:
        objective = st.objective or (lut.objective if lut is not None else "latency")
    table_bounds = dict(lut.constraints) if lut is not None else {}
    bounds: dict[str, float] = {}
    for m, b in given.items():
        b = b if b is not None else table_bounds.get(m)
        if b is not None:
            bounds[m] = b
    if lut is not None and st.lut_answers(objective, bounds):
        return _schedule_json(lut.query(up, down, slowdown), "lut", bounds, (up, down, slowdown))
    costs = st.cost_source()
    if costs is None:
        if lut is None:
            raise CostTableError("nothing to plan on: call load_costs or load_lookup_table first")
        raise CostTableError(
            "the loaded lookup table was built for another request (objective, bounds, radio or options) and "
            "embeds no cost table: load the cost table too, or build the table for this request"
        )
    network = Network(up, down, *st.radio)
    s = costs.plan(network, cast(str, objective), bounds, slowdown, **st.options)
    return _schedule_json(s, "plan", bounds, (up, down, slowdown))


@_entry
def mobile_ranges() -> str:
    """JSON list of ``[first, last]``: every run of layers on the mobile in the loaded lookup table's schedules.

    These are the slices a plan-only app needs as standalone TFLite models
    (export them on the workstation with ``graph.slice_bytes(first, last)``).
    An exact plan outside the table can produce other ranges.
    """
    lut = _state.lut
    if lut is None:
        raise LookupTableError("no lookup table loaded")
    ranges = {(a, b) for segs, _u, _k in lut.candidates for a, b, p in _runs_of(segs) if p == "mobile"}
    return json.dumps([list(r) for r in sorted(ranges)])


def _runs_of(segs: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Adjacent segments on one platform merged (as :meth:`Schedule.runs`)."""
    out: list[tuple[int, int, str]] = []
    for a, b, p in segs:
        if out and out[-1][2] == p:
            out[-1] = (out[-1][0], b, p)
        else:
            out.append((a, b, p))
    return out


@_entry
def export_slices(model_path: str, lut_path: str, out_dir: str) -> str:
    """Workstation side of plan-only mode: every run a lookup table's schedules use, ready for the app.

    For each run of layers in the table's stored schedules, writes the
    mobile runs as standalone models (``slice_<first>_<last>.tflite`` or
    ``.onnx``, inputs and outputs named and ordered as
    ``graph.slice_io`` says) into ``out_dir``, and returns (and writes as
    ``slices.json``) a manifest: ``model`` (the name the cloud server knows
    it by) and ``runs``, a list of ``{"first", "last", "platform", "file"
    (mobile runs), "inputs", "outputs"}`` with each tensor's ``name``,
    ``dtype`` and ``shape``. Bundle the directory in the app's assets. Needs
    numpy and the model's Python tooling (not for use on the phone).
    """
    import os

    from .models import load_model

    graph = load_model(str(model_path))
    lut = LookupTable.load(str(lut_path))
    if lut.n != graph.n:
        raise LookupTableError(f"lookup table has {lut.n} layers, model {graph.name!r} has {graph.n}")
    os.makedirs(str(out_dir), exist_ok=True)
    runs = sorted({r for segs, _u, _k in lut.candidates for r in _runs_of(segs)})
    ext = "tflite" if graph.format == "tflite" else "onnx"

    def describe(names: list[str]) -> list[dict[str, Any]]:
        return [{"name": n, "dtype": str(graph.tensor(n).dtype), "shape": list(graph.tensor(n).shape)} for n in names]

    manifest: dict[str, Any] = {"model": graph.name, "format": graph.format, "n": graph.n, "runs": []}
    for first, last, platform in runs:
        ins, outs = graph.slice_io(first, last)
        entry: dict[str, Any] = {"first": first, "last": last, "platform": platform}
        if platform == "mobile":
            entry["file"] = f"slice_{first}_{last}.{ext}"
            with open(os.path.join(str(out_dir), entry["file"]), "wb") as f:
                f.write(graph.slice_bytes(first, last))
        entry["inputs"], entry["outputs"] = describe(ins), describe(outs)
        manifest["runs"].append(entry)
    text = json.dumps(manifest, indent=1)
    with open(os.path.join(str(out_dir), "slices.json"), "w", encoding="utf-8") as manifest_file:
        manifest_file.write(text)
    return text


@_entry
def build_lookup_table(costs_path: str, out_path: str, options_json: str | None = None) -> str:
    """Build a lookup table from a cost table file and write it to ``out_path`` (needs numpy).

    ``options_json``: keyword arguments of :meth:`LookupTable.build` as a
    JSON object (``objective``, ``network`` as a preset name or radio object,
    ``deadline_ms``, ``energy_budget_mj``, ``cloud_budget_ms``, ``up_mbps``,
    ``down_mbps``, ``cloud_slowdown`` as ``[lo, hi]``, ``cells`` as
    ``[up, down, slowdown]``, ``embed_costs``, ...). Usually done on the
    workstation (``jointdnn-edge lut build``); the pure-Python planner
    builds the same file on a phone, more slowly. Returns the table's
    summary as :func:`load_lookup_table` does (it does not load it).
    """
    try:
        from .costs import CostTable
    except ImportError as e:
        raise CostTableError(f"building a lookup table needs numpy ({e})") from None
    opts = _json(options_json, "options", dict)
    for key in ("up_mbps", "down_mbps", "cloud_slowdown", "cells"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    if isinstance(opts.get("network"), Mapping):
        radio, _ = _radio_from(opts["network"])
        opts["network"] = Network(1.0, 1.0, *radio)
    opts.pop("progress", None)
    table = CostTable.load(str(costs_path))
    try:
        lut = LookupTable.build(table, **opts)
    except TypeError as e:  # an unknown option
        raise CostTableError(f"bad lookup-table option: {e}") from None
    lut.save(str(out_path))
    return json.dumps(_lut_summary(lut))


@_entry
def reset() -> None:
    """Forget the loaded tables and configuration, and close every open session and cloud client."""
    global _state
    with _state_lock:
        _state = _State()
    with _handles_lock:
        objs = list(_handles.values())
        _handles.clear()
    for obj in objs:
        obj.close()


# ------------------------------------------------------------------- codec
def _codec_module() -> Any:
    """The codec package, or a CodecError saying what to install (it needs numpy and zstandard)."""
    try:
        from . import codec
    except ImportError as e:
        raise CodecError(f"the activation codec needs numpy and zstandard ({e})") from None
    return codec


def _tensor_specs(tensors_json: Any) -> list[dict[str, Any]]:
    specs = _json(tensors_json, "tensors", list)
    for i, t in enumerate(specs):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("dtype"), str):
            raise CodecError(f"tensor {i}: needs a string name and dtype")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CodecError(f"tensor {t['name']!r}: shape must be a list of non-negative integers")
    return specs


def _dtype(name: str, tensor: str) -> Any:
    """The little-endian numpy dtype called ``name`` (``bfloat16`` through ml_dtypes)."""
    import numpy as np

    try:
        if name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(name).newbyteorder("<")
    except (TypeError, ImportError):
        raise CodecError(f"tensor {tensor!r}: unknown dtype {name!r}") from None


def _arrays(tensors_json: Any, blobs: Any) -> dict[str, Any]:
    """Tensors from JSON metadata plus one little-endian C-order buffer each, as numpy arrays (no copies)."""
    import numpy as np

    specs = _tensor_specs(tensors_json)
    bufs = [] if blobs is None else list(blobs)
    if len(bufs) != len(specs):
        raise CodecError(f"{len(specs)} tensors described but {len(bufs)} buffers given")
    out: dict[str, Any] = {}
    for spec, buf in zip(specs, bufs):
        name = spec["name"]
        if name in out:
            raise CodecError(f"tensor name {name!r} appears twice")
        dt = _dtype(spec["dtype"], name)
        data = _bytes(buf, f"buffer of tensor {name!r}")
        want = math.prod(spec["shape"]) * dt.itemsize
        if len(data) != want:
            raise CodecError(f"tensor {name!r}: {len(data)} bytes given, {spec['shape']} {spec['dtype']} needs {want}")
        out[name] = np.frombuffer(data, dtype=dt).reshape(spec["shape"])
    return out


def _flatten(arrays: Mapping[str, Any]) -> list[Any]:
    """``[metadata JSON, buffer, buffer, ...]``: the Java-friendly form of named arrays."""
    import numpy as np

    meta, bufs = [], []
    for name, a in arrays.items():
        a = np.asarray(a)
        meta.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape)})
        le = a.astype(a.dtype.newbyteorder("<"), copy=False) if a.dtype.byteorder == ">" else a
        bufs.append(np.ascontiguousarray(le).tobytes())
    return [json.dumps(meta), *bufs]


@_entry
def encode_frame(
    tensors_json: str, blobs: Iterable[Any], codec: str | None = "auto", quantize_bits: int | None = None
) -> bytes:
    """One activation frame (``docs/wire-format.md``) holding the given tensors (needs numpy).

    ``tensors_json``: JSON list of ``{"name", "dtype", "shape"}``;
    ``blobs``: one little-endian, C-order byte buffer per tensor (a Java
    ``byte[][]``). ``codec``: ``"auto"``, ``"raw"``, ``"zstd"``, ``"sparse"``
    or ``"png"``; ``quantize_bits`` (1..16) makes float tensors lossy 8-bit
    style codes, None keeps them exact. Raises :class:`CodecError`.
    """
    _codec = _codec_module()
    arrays = _arrays(tensors_json, blobs)
    bits = None if quantize_bits is None else int(quantize_bits)
    return _codec.encode(arrays, codec=codec or "auto", quantize_bits=bits)


@_entry
def decode_frame(frame: Any, max_bytes: int | None = None) -> list[Any]:
    """The tensors of a frame as ``[metadata JSON, buffer, buffer, ...]`` (needs numpy).

    The metadata is a JSON list of ``{"name", "dtype", "shape"}`` in frame
    order; each buffer holds that tensor little-endian in C order (quantized
    tensors come back dequantized). ``max_bytes`` bounds the decoded size
    (default the codec's, 256 MiB). Raises :class:`CodecError` on any
    malformed, corrupt or oversized frame.
    """
    _codec = _codec_module()
    limit = _codec.DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    return _flatten(_codec.decode(_bytes(frame, "frame"), max_bytes=limit))


@_entry
def frame_info(frame: Any, max_bytes: int | None = None) -> str:
    """JSON list describing each tensor of a frame without decoding payloads (needs numpy).

    Fields: ``name``, ``dtype`` (as stored), ``shape``, ``codec``,
    ``payload_bytes``, ``raw_bytes``, ``quantized_bits`` (null when exact).
    """
    _codec = _codec_module()
    limit = _codec.DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    entries = _codec.read_headers(_bytes(frame, "frame"), max_bytes=limit)
    return json.dumps(
        [
            {
                "name": e.name,
                "dtype": e.dtype.name,
                "shape": list(e.shape),
                "codec": e.codec,
                "payload_bytes": e.payload_bytes,
                "raw_bytes": e.raw_bytes,
                "quantized_bits": None if e.quant is None else e.quant.bits,
            }
            for e in entries
        ]
    )


# ------------------------------------------------------------------- handles
_handles_lock = threading.Lock()
_handles: dict[int, Any] = {}  # handle -> JointSession or CloudClient
_handle_ids = itertools.count(1)


def _register(obj: Any) -> int:
    with _handles_lock:
        handle = next(_handle_ids)
        _handles[handle] = obj
        return handle


def _lookup(handle: Any, kind: str) -> Any:
    """The open object behind ``handle``; ExecutionError when there is none of that kind."""
    try:
        obj = _handles.get(int(handle))
    except (TypeError, ValueError):
        obj = None
    if obj is None or type(obj).__name__ != kind:
        raise ExecutionError(
            f"no open {'session' if kind == 'JointSession' else 'cloud client'} with handle {handle!r}"
        )
    return obj


def _close(handle: Any, kind: str) -> None:
    obj = _lookup(handle, kind)
    with _handles_lock:
        _handles.pop(int(handle), None)
    obj.close()


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN; Android's org.json refuses it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _cloud_client(url: str, token: str | None, timeout: float | None) -> Any:
    try:
        from .transport import CloudClient
    except ImportError as e:
        raise TransportError(f"the cloud client needs httpx and numpy ({e})") from None
    try:
        return CloudClient(str(url), token=token or None, timeout=30.0 if timeout is None else float(timeout))
    except ValueError as e:  # a malformed URL or timeout
        raise TransportError(str(e)) from None


# ------------------------------------------------------------------- full mode: sessions
def _session_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    """JointSession keyword arguments from the JSON options (see :func:`open_session`)."""
    kw = dict(opts)
    for key in ("token", "timeout"):
        kw.pop(key, None)
    if "battery_mj" in kw:
        kw["energy_budget_mj"] = kw.pop("battery_mj")
    costs = kw.get("costs")
    if costs == "loaded":
        src = _state.cost_source()
        if src is None or src.table is None:
            raise CostTableError('options "costs": "loaded" but no cost table is loaded (or numpy is missing)')
        kw["costs"] = src.table
    elif isinstance(costs, str):
        from .costs import CostTable

        kw["costs"] = CostTable.load(costs)
    radio = kw.get("radio")
    if isinstance(radio, Mapping):
        kw["radio"] = Network(1.0, 1.0, *_radio_from(radio)[0])
    net = kw.get("network")
    if isinstance(net, Mapping):
        spec = dict(net)
        up, down = spec.pop("up_mbps", None), spec.pop("down_mbps", None)
        if up is None or down is None:
            raise CostTableError('a fixed network needs up_mbps and down_mbps (or use "auto" or a preset name)')
        kw["network"] = Network(float(up), float(down), *_radio_from(spec or _DEFAULT_RADIO)[0])
    for key in ("request_slack", "lut_cells"):
        if isinstance(kw.get(key), list):
            kw[key] = tuple(kw[key])
    return kw


@_entry
def open_session(model_path: str, cloud_url: str | None = None, options_json: str | None = None) -> int:
    """Full mode: open a split-inference session; returns its handle (needs numpy and a model runtime).

    ``model_path``: a ``.tflite`` (LiteRT / tflite-runtime) or ``.onnx``
    (onnxruntime) file. ``cloud_url``: the jointdnn-edge server
    (``http(s)://host:port``), None for everything on the device.
    ``options_json`` (all optional): ``token`` and ``timeout`` (seconds) of
    the cloud client; ``costs`` (a cost table path, or ``"loaded"`` for the
    one loaded with :func:`load_costs`; without one the session profiles
    the model on first use); ``network`` (``"auto"``: measured, a preset
    name, or ``{"up_mbps", "down_mbps", ...radio}`` fixed); ``radio`` (preset
    or radio object, for ``"auto"``); ``objective``, ``deadline_ms``,
    ``battery_mj``, ``cloud_budget_ms``; ``schedule`` (fixed
    ``[[first, last, platform], ...]``); and any other keyword argument of
    :class:`~jointdnn_edge.session.JointSession` (``codec``,
    ``quantize_bits``, ``threads``, ``model_name``, ``on_infeasible``, ...).
    Close it with :func:`close_session`.
    """
    try:
        from .session import JointSession
    except ImportError as e:
        raise ModelError(f"full mode needs numpy and a model runtime installed ({e})") from None
    opts = _json(options_json, "options", dict)
    kw = _session_kwargs(opts)
    cloud = _cloud_client(cloud_url, opts.get("token"), opts.get("timeout")) if cloud_url else None
    try:
        session = JointSession(str(model_path), cloud, **kw)
    except TypeError as e:  # an unknown option
        if cloud is not None:
            cloud.close()
        raise CostTableError(f"bad session option: {e}") from None
    except BaseException:
        if cloud is not None:
            cloud.close()
        raise
    return _register(session)


@_entry
def run(handle: int, tensors_json: str, blobs: Iterable[Any]) -> list[Any]:
    """One split inference: the model inputs in (as :func:`encode_frame` takes tensors), the outputs out.

    Returns ``[metadata JSON, buffer, ...]`` as :func:`decode_frame` does,
    one entry per model output in model order. The session plans the split
    for the current network, runs the mobile layers here and the cloud
    layers on the server, and finishes locally if the cloud fails.
    """
    session = _lookup(handle, "JointSession")
    return _flatten(session.run(_arrays(tensors_json, blobs)))


@_entry
def last_trace(handle: int) -> str | None:
    """JSON of what the session's last :func:`run` did, or None before the first.

    Fields of :meth:`jointdnn_edge.session.Trace.to_dict` (``schedule``,
    ``source``, ``network``, ``steps`` with times and bytes, ``predicted_ms``,
    ``measured_ms``, ``energy_mj``, ``fallback``, ...), plus ``summary``, a
    human-readable account for logs. Unknown numbers are null.
    """
    trace = _lookup(handle, "JointSession").last_trace
    if trace is None:
        return None
    doc = trace.to_dict()
    doc["summary"] = trace.summary()
    return json.dumps(_finite(doc))


@_entry
def close_session(handle: int) -> None:
    """Close a session (its cloud connections); the handle becomes invalid."""
    _close(handle, "JointSession")


# ------------------------------------------------------------------- plan-only mode: the cloud
@_entry
def open_cloud(url: str, token: str | None = None, timeout: float | None = None) -> int:
    """A client of the jointdnn-edge server at ``url`` for plan-only apps; returns its handle.

    It sends the cloud runs of a schedule (:func:`cloud_infer`) and measures
    the link while doing so (:func:`cloud_estimate`). ``token``: bearer
    token; ``timeout``: the longest a request may take (seconds, default 30).
    """
    return _register(_cloud_client(url, token, timeout))


@_entry
def cloud_infer(
    handle: int,
    model: str,
    first: int,
    last: int,
    frame: Any,
    codec: str | None = "auto",
    quantize_bits: int | None = None,
    deadline_s: float | None = None,
) -> list[Any]:
    """Run layers ``first..last`` of ``model`` on the cloud; returns ``[response frame, info JSON]``.

    ``frame``: the run's input tensors as :func:`encode_frame` packs them
    (the tensors ``graph.slice_io(first, last)`` names). The response frame
    holds the run's outputs, encoded with ``codec`` (decode it with
    :func:`decode_frame`). Info: the server's ``compute_ms`` and
    ``server_ms``, the request's ``wall_ms``, ``bytes_up``/``bytes_down``.
    Raises :class:`~jointdnn_edge.CloudUnavailableError`,
    :class:`~jointdnn_edge.DeadlineExceededError`, :class:`~jointdnn_edge.AuthError`
    or :class:`~jointdnn_edge.RemoteError`.
    """
    client = _lookup(handle, "CloudClient")
    resp = client.infer_slice(
        str(model),
        int(first),
        int(last),
        _bytes(frame, "frame"),
        codec=codec or "auto",
        quantize_bits=None if quantize_bits is None else int(quantize_bits),
        deadline_s=None if deadline_s is None else float(deadline_s),
    )
    info = {
        k: getattr(resp, k)
        for k in ("compute_ms", "server_ms", "wall_ms", "up_ms", "down_ms", "bytes_up", "bytes_down", "attempts")
    }
    return [resp.frame, json.dumps(_finite(info))]


@_entry
def cloud_estimate(handle: int) -> str:
    """JSON of the link as measured by this client's requests: ``up_mbps``, ``down_mbps``, ``rtt_ms``.

    A figure is null until enough traffic measured it; ``available`` is
    False while the client marks the cloud down after failures (for
    ``down_for_s`` more seconds). Feed the bandwidths to :func:`decide`.
    """
    client = _lookup(handle, "CloudClient")
    est = client.estimator
    return json.dumps(
        _finite(
            {
                "up_mbps": est.up_mbps,
                "down_mbps": est.down_mbps,
                "rtt_ms": est.rtt_ms,
                "available": client.available,
                "down_for_s": client.down_for,
            }
        )
    )


@_entry
def close_cloud(handle: int) -> None:
    """Close a cloud client; the handle becomes invalid."""
    _close(handle, "CloudClient")
