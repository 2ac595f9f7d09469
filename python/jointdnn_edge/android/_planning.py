"""The bridge's process-global planner state and the decisions made on it.

One configuration per process (the loaded cost table and/or lookup table,
the radio, the defaults), replaced as a whole by every update so a
concurrent :func:`decide` never sees half of one. Every choice of planner
the bridge makes (native or pure Python, lookup table or exact plan) and
every link value it builds lives in this module.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, CostTableError, LookupTableError
from ..network import NETWORK_PRESETS, Network, Radio
from ..planner import LookupTable, Schedule, Solver, check_objective, compile_document, plan, runs_of
from ..planner import native_available as _native_available
from ..planner.reference import Plain

_COSTS_FORMAT = "jointdnn-edge/costtable"  # the "format" field of a cost table's JSON (costs.py)
_COSTS_VERSION = 1
_DEFAULT_RADIO = "4g"
#: decide() argument -> the planner's metric name, in the planner's constraint order
CONSTRAINTS = (("deadline_ms", "latency"), ("battery_mj", "energy"), ("cloud_budget_ms", "cloud"))
_ARG_OF_METRIC = {m: a for a, m in CONSTRAINTS}
_PLAN_ARG = {"latency": "deadline_ms", "energy": "energy_budget_mj", "cloud": "cloud_budget_ms"}
#: plan() options a lookup table records, with plan()'s defaults (a table answers only for its own values)
_PLAN_DEFAULTS: dict[str, Any] = {"cloud_keeps_tensors": True}


class Costs:
    """A cost table ready to plan on.

    With numpy importable it is a :class:`~jointdnn_edge.CostTable` and
    :func:`~jointdnn_edge.plan` does the work (native or pure Python). Without
    numpy the planner backend compiles the JSON document for its pure-Python
    solver (:func:`~jointdnn_edge.planner.compile_document`), the same
    computation ``plan(..., solver="python")`` performs.
    """

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.table: Any = None
        self._solvers: dict[bool, Solver] = {}
        try:
            from ..costs import CostTable  # imports numpy
        except ImportError:
            if doc.get("format") != _COSTS_FORMAT or doc.get("version") != _COSTS_VERSION:
                raise CostTableError("not a jointdnn-edge cost table (format/version fields)") from None
            plain = Plain.from_dict(doc)
            self.n = plain.n
            self.phase = str(doc.get("phase", "inference"))
            self.names = [str(x) for x in doc.get("names") or [f"layer{i}" for i in range(self.n)]]
            self.chain = [tuple(e) for e in plain.edges] == [(i, i + 1) for i in range(self.n - 1)]
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
        """The optimal schedule (``bounds``: planner metric -> bound; ``objective`` already checked)."""
        kw: dict[str, Any] = {_PLAN_ARG[m]: b for m, b in bounds.items()}
        if self.table is not None:
            return plan(self.table, network, objective=objective, cloud_slowdown=slowdown, **kw, **options)
        # numpy-free: the planner backend on the JSON document (plan()'s checks, its pure-Python solver)
        keeps = bool(options.pop("cloud_keeps_tensors", True))
        if options:
            raise ConfigError(f"planner options {sorted(options)} need numpy (not installed)")
        if self.phase != "inference":
            raise CostTableError("this is a training cost table; plan it with the desktop API (needs numpy)")
        solver = self._solvers.get(keeps)
        if solver is None:
            solver = self._solvers[keeps] = compile_document(self.doc, cloud_keeps_tensors=keeps)
        return solver.plan(network, objective=objective, cloud_slowdown=slowdown, **kw)

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "phase": self.phase,
            "chain": self.chain,
            "names": self.names,
            "planner": self.planner,
            "numpy": self.table is not None,
        }


def _radio_from(spec: Any) -> tuple[Radio, str | None]:
    """A radio from a preset name or a ``{"alpha_up", "alpha_down", "beta", "rtt_ms", "burst_up_bytes",
    "burst_down_bytes"}`` object, and its preset."""
    if isinstance(spec, str):
        return Network.preset(spec).radio, spec.lower()
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"preset", *Radio._fields}
        if unknown:
            raise ConfigError(f"unknown radio fields {sorted(unknown)}")
        if "preset" in spec:
            base = Network.preset(str(spec["preset"]), rtt_ms=float(spec.get("rtt_ms", 0.0)))
            bursts = {k: spec[k] for k in ("burst_up_bytes", "burst_down_bytes") if k in spec}
            return base.radio._replace(**bursts).checked(), str(spec["preset"]).lower()
        try:
            radio = Radio(
                spec["alpha_up"],
                spec["alpha_down"],
                spec["beta"],
                spec.get("rtt_ms", 0.0),
                spec.get("burst_up_bytes", 0.0),
                spec.get("burst_down_bytes", 0.0),
            )
        except KeyError as e:
            raise ConfigError(f"radio needs alpha_up, alpha_down and beta (missing {e})") from None
        return radio.checked(), None
    raise ConfigError(f"radio must be a preset name or an object, got {spec!r}")


def radio_of(spec: Any) -> Radio:
    """The radio of ``spec`` (a preset name or a radio object), for uses where bandwidth does not matter."""
    return _radio_from(spec)[0]


def session_radio(spec: Any) -> Network:
    """The session's ``radio``: a preset's network (its bandwidths are the estimate before any sample) or a radio
    object at the default preset's bandwidths."""
    radio, preset = _radio_from(spec)
    base = NETWORK_PRESETS[_DEFAULT_RADIO] if preset is None else Network.preset(preset)
    return Network.of(radio, base.up_mbps, base.down_mbps)


def fixed_network(spec: Mapping[str, Any]) -> Network:
    """A network from ``{"up_mbps", "down_mbps", ...radio}`` (the radio defaults to the 4G preset's)."""
    fields = dict(spec)
    up, down = fields.pop("up_mbps", None), fields.pop("down_mbps", None)
    if up is None or down is None:
        raise ConfigError('a fixed network needs up_mbps and down_mbps (or use "auto" or a preset name)')
    return Network.of(_radio_from(fields or _DEFAULT_RADIO)[0], float(up), float(down))


class State:
    """One immutable planner configuration; updates build a new one and swap it in."""

    __slots__ = ("costs", "lut", "radio", "radio_name", "objective", "options", "_embedded")

    def __init__(
        self,
        costs: Costs | None = None,
        lut: LookupTable | None = None,
        radio: Radio | None = None,
        radio_name: str | None = _DEFAULT_RADIO,
        objective: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.costs = costs
        self.lut = lut
        self.radio = radio if radio is not None else NETWORK_PRESETS[_DEFAULT_RADIO].radio
        self.radio_name = radio_name
        self.objective = objective
        self.options: dict[str, Any] = dict(options or {})
        self._embedded: Costs | None = None

    def replace(self, **changes: Any) -> State:
        fields = {k: getattr(self, k) for k in ("costs", "lut", "radio", "radio_name", "objective", "options")}
        fields.update(changes)
        return State(**fields)

    def cost_source(self) -> Costs | None:
        """The loaded cost table, else the one embedded in the loaded lookup table."""
        if self.costs is not None:
            return self.costs
        if self._embedded is None and self.lut is not None:
            doc = self.lut.embedded_costs  # the table embedded in the .lut file, if any
            if doc is not None:
                self._embedded = Costs(doc)
        return self._embedded

    def lut_answers(self, objective: str, bounds: Mapping[str, float]) -> bool:
        """True when the lookup table was built for exactly this request (so its answer is plan()'s)."""
        lut = self.lut
        if lut is None or lut.force is not None or lut.objective != objective:
            return False
        if getattr(lut, "max_accuracy_loss", None) is not None:  # its answers may be lossy; these plans are not
            return False
        if dict(lut.constraints) != dict(bounds) or tuple(lut.radio) != tuple(self.radio):
            return False
        missing = object()
        options = {**_PLAN_DEFAULTS, **self.options}
        return all(getattr(lut, k, missing) == v for k, v in options.items())

    def summary(self) -> dict[str, Any]:
        return {
            "costs": None if self.costs is None else self.costs.summary(),
            "lookup_table": None if self.lut is None else lut_summary(self.lut),
            "radio": self.radio._asdict(),
            "radio_name": self.radio_name,
            "objective": self.objective,
            "plan_options": self.options,
            "native": _native_available(),
        }


_state_lock = threading.Lock()  # serialises updates; readers take the current _state without it
_state = State()


def current() -> State:
    """The planner configuration now (never changes under the caller)."""
    return _state


def _update(**changes: Any) -> State:
    global _state
    with _state_lock:
        _state = _state.replace(**changes)
        return _state


def reset() -> None:
    """Forget the loaded tables and the configuration."""
    global _state
    with _state_lock:
        _state = State()


def lut_summary(lut: LookupTable) -> dict[str, Any]:
    """What the bridge tells Java about a lookup table (see ``load_lookup_table``)."""
    st = lut.stats()
    return {
        "n": lut.n,
        "objective": lut.objective,
        "constraints": {_ARG_OF_METRIC[m]: b for m, b in lut.constraints},
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


def load_costs(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Make the cost table ``doc`` the one decisions plan on; its summary."""
    costs = Costs(doc)
    lut = _state.lut
    if lut is not None and lut.n != costs.n:
        raise CostTableError(f"cost table has {costs.n} layers but the loaded lookup table has {lut.n}")
    _update(costs=costs)
    return costs.summary()


def load_lookup_table(lut: LookupTable) -> dict[str, Any]:
    """Make ``lut`` the table decisions query, adopting its radio and cloud model; its summary."""
    costs = _state.costs
    if costs is not None and costs.n != lut.n:
        raise LookupTableError(f"lookup table has {lut.n} layers but the loaded cost table has {costs.n}")
    # adopt what the table was built for, so exact plans outside it model the same radio and cloud
    options = dict(_state.options)
    options.update({k: getattr(lut, k) for k in _PLAN_DEFAULTS if hasattr(lut, k)})
    _update(lut=lut, radio=lut.radio, radio_name=None, options=options)
    return lut_summary(lut)


def configure(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the ``configure()`` options (``radio``, ``objective``, ``plan_options``); the whole configuration."""
    unknown = set(opts) - {"radio", "objective", "plan_options"}
    if unknown:
        raise ConfigError(f"unknown configure() keys {sorted(unknown)}")
    changes: dict[str, Any] = {}
    if "radio" in opts:
        changes["radio"], changes["radio_name"] = _radio_from(opts["radio"])
    if "objective" in opts:
        if opts["objective"] is not None:  # null: each decision's own, or the table's
            check_objective(opts["objective"])
        changes["objective"] = opts["objective"]
    if "plan_options" in opts:
        po = opts["plan_options"]
        if not isinstance(po, dict):
            raise ConfigError("plan_options must be a JSON object")
        changes["options"] = po
    return _update(**changes).summary()


def loaded_cost_table() -> Any:
    """The loaded (or embedded) cost table as a :class:`~jointdnn_edge.CostTable`, for a session."""
    src = _state.cost_source()
    if src is None or src.table is None:
        raise ConfigError('options "costs": "loaded" but no cost table is loaded (or numpy is missing)')
    return src.table


def _schedule_json(s: Schedule, source: str, bounds: Mapping[str, float], point: tuple[float, float, float]) -> str:
    d = s.to_dict()
    runs = s.runs()
    d["runs"] = [list(r) for r in runs]
    d["pattern"] = "-".join(p for _, _, p in runs)
    d["source"] = source
    d["constraints"] = {_ARG_OF_METRIC[m]: b for m, b in bounds.items()}
    d["up_mbps"], d["down_mbps"], d["cloud_slowdown"] = point
    return json.dumps(d)


def decide(up: float, down: float, slowdown: float, given: Mapping[str, float | None], objective: str | None) -> str:
    """The schedule JSON of ``decide()`` (``given``: planner metric -> bound or None, already checked)."""
    st = _state
    lut = st.lut
    if objective is None:
        objective = st.objective or (lut.objective if lut is not None else "latency")
    else:
        check_objective(objective)
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
            raise ConfigError("nothing to plan on: call load_costs or load_lookup_table first")
        raise ConfigError(
            "the loaded lookup table was built for another request (objective, bounds, radio or options) and "
            "embeds no cost table: load the cost table too, or build the table for this request"
        )
    network = Network.of(st.radio, up, down)
    s = costs.plan(network, objective, bounds, slowdown, **st.options)
    return _schedule_json(s, "plan", bounds, (up, down, slowdown))


def mobile_ranges() -> list[tuple[int, int]]:
    """Every ``(first, last)`` run on the mobile in the loaded lookup table's schedules, sorted."""
    lut = _state.lut
    if lut is None:
        raise LookupTableError("no lookup table loaded")
    return sorted({(a, b) for segs, _u, _k in lut.candidates for a, b, p in runs_of(segs) if p == "mobile"})
