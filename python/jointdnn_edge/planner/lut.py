"""Lookup tables: the exact schedule for the current network in about a microsecond.

:meth:`LookupTable.build` precomputes, for a box of conditions (upload and
download bandwidth, cloud slowdown) and a fixed radio, objective and
constraints, the few schedules that can be optimal in each cell of the box
(see ``rust/core/src/lut.rs`` for why a cell's list contains the optimum at
*every* point of the cell). :meth:`LookupTable.query` evaluates a cell's
list at the query point and returns the best feasible schedule: the same
cost as an exact solve there. Cells whose list would be too long, and points
outside the box, are answered by an exact solve on the cost table embedded in
the file (``exact`` stays True); without an embedded table they get the best
stored schedule, flagged ``exact=False``.

Built with an accuracy budget (``max_accuracy_loss`` and ``accuracy``, as
:func:`~jointdnn_edge.planner.plan` takes them), a table stores schedules
together with the lossy transfer options their uploads use, and a query
answers what ``plan()`` under that budget answers (:mod:`._lut_budget`).

The file format (``docs/lookup-table-format.md``) is little-endian binary,
versioned and checksummed, and this module reads and queries it with the
standard library only: it loads on a phone without numpy or the native
module.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, InfeasibleError, LookupTableError
from ..network import Network, Radio
from . import reference as ref
from ._accuracy import AccuracyPlanner, TransferOption, accuracy_planner, budget_request
from ._backend import (
    CONSTRAINT_ARGS,
    FORCES,
    OBJECTIVES,
    CostsLike,
    Solver,
    check_bound,
    check_force,
    check_objective,
    check_radio,
    compile,
    compile_document,
    native_module,
    table_for_phase,
)
from ._lut_budget import check_lossy, lossy_from_json, lossy_to_json, merge_cells
from .schedule import Schedule
from .usage import BYTES_DOWN, BYTES_UP, CREDIT_DOWN, CREDIT_UP, DIMS, reduce

MAGIC = b"JDNNLUT\x00"
VERSION = 1
#: The version of a file with transfer options (flags bit 2): a reader of version 1 refuses it by number.
VERSION_LOSSY = 2
#: Added to the version of a table built for a radio with a burst: its radio record has the two burst fields and its
#: usage records the two credit dimensions (an older reader refuses it by number). Without a burst those are zero and
#: the file keeps the version 1 / 2 layout, which every reader reads.
VERSION_BURST = 2
#: Usage dimensions stored without a burst (the credit dimensions, last, are zero then).
_PLAIN_DIMS = 8
# The file format's codes: these tuples' orders are part of it.
_OBJECTIVES = OBJECTIVES
_METRICS = ("latency", "energy", "cloud")
_FORCES = FORCES

#: Default cells per axis (upload, download, slowdown).
DEFAULT_CELLS = (16, 16, 4)


class LookupTable:
    """A precomputed table of optimal schedules over a box of network conditions."""

    def __init__(
        self,
        *,
        n: int,
        objective: str,
        constraints: Sequence[tuple[str, float]],
        force: str | None,
        radio: Radio,
        up_mbps: tuple[float, float],
        down_mbps: tuple[float, float],
        cloud_slowdown: tuple[float, float],
        axes: tuple[int, int, int],
        candidates: Sequence[tuple[Sequence[tuple[int, int, str]], Sequence[float], int]],
        status: Sequence[int],
        offsets: Sequence[int],
        members: Sequence[int],
        costs: dict[str, Any] | None = None,
        cloud_keeps_tensors: bool = True,
        max_accuracy_loss: float | None = None,
        options: Sequence[TransferOption] = (),
        lossy: Sequence[Sequence[int]] | None = None,
    ) -> None:
        check_lossy(n, len(candidates), max_accuracy_loss, options, lossy)
        _check_fields(
            n,
            objective,
            constraints,
            force,
            radio,
            (up_mbps, down_mbps, cloud_slowdown),
            axes,
            candidates,
            status,
            offsets,
            members,
            costs,
        )
        self.n = n
        self.cloud_keeps_tensors = cloud_keeps_tensors
        self.objective = objective
        self.constraints = tuple((m, float(b)) for m, b in constraints)
        self.force = force
        self.radio = Radio(*radio)
        self.up_mbps: tuple[float, float] = (float(up_mbps[0]), float(up_mbps[1]))
        self.down_mbps: tuple[float, float] = (float(down_mbps[0]), float(down_mbps[1]))
        self.cloud_slowdown: tuple[float, float] = (float(cloud_slowdown[0]), float(cloud_slowdown[1]))
        self.axes = tuple(axes)
        self.candidates = [
            (tuple((int(a), int(b), str(p)) for a, b, p in s), tuple(u), int(k)) for s, u, k in candidates
        ]
        self.status = list(status)
        self.offsets = list(offsets)
        self.members = list(members)
        self._costs_dict = costs
        #: The accuracy budget the table was built for (None: every transfer lossless).
        self.max_accuracy_loss = None if lossy is None or max_accuracy_loss is None else float(max_accuracy_loss)
        #: The transfer options its stored schedules may use, and per stored schedule the indices of those it uses.
        self.options: tuple[TransferOption, ...] = tuple(options)
        self.lossy: list[tuple[int, ...]] | None = None if lossy is None else [tuple(u) for u in lossy]
        # per stored schedule, its Schedule.lossy and accuracy_loss (None: lossless); None: a plain table
        self._lossy_of: list[tuple[tuple[tuple[int, str], ...], float] | None] | None = (
            None if self.lossy is None else [self._used(u) if u else None for u in self.lossy]
        )
        self._accuracy: AccuracyPlanner | None = None  # the embedded table's, for fallbacks under the budget
        self._reduced = [reduce(u, self.radio) for _, u, _ in self.candidates]
        self._solver: Solver | None = None  # for cells and points the table cannot answer alone
        mod = native_module()
        index = (mod.LutIndex if mod is not None else ref.LutIndex)(**self._index_fields())
        self._query: Callable[[float, float, float], ref.LutAnswer | None] = index.query

    def _used(self, used: Sequence[int]) -> tuple[tuple[tuple[int, str], ...], float]:
        """What ``Schedule.lossy`` and ``accuracy_loss`` hold for a stored schedule using options ``used``."""
        ops = [self.options[i] for i in used]
        return tuple(sorted((o.tensor, o.option) for o in ops)), math.fsum(o.loss for o in ops)

    def _index_fields(self) -> dict[str, Any]:
        """The query side's fields, as the native ``LutIndex`` and its mirror ``reference.LutIndex`` take them."""
        return {
            "objective": self.objective,
            "constraints": list(self.constraints),
            "radio": self.radio,
            "up_mbps": self.up_mbps,
            "down_mbps": self.down_mbps,
            "cloud_slowdown": self.cloud_slowdown,
            "axes": list(self.axes),
            "reduced": self._reduced,
            "status": self.status,
            "offsets": self.offsets,
            "members": self.members,
        }

    # ----------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        costs: CostsLike,
        *,
        objective: str = "latency",
        network: Radio | Network | str = "4g",
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        up_mbps: tuple[float, float] = (0.25, 100.0),
        down_mbps: tuple[float, float] = (0.5, 200.0),
        cloud_slowdown: tuple[float, float] = (1.0, 1.0),
        cells: tuple[int, int, int] = DEFAULT_CELLS,
        force: str | None = None,
        phase: str = "inference",
        max_candidates: int = 256,
        cell_work_budget: int = ref.CELL_MAX_WORK,
        embed_costs: bool = True,
        solver: str = "auto",
        progress: Callable[[int, int], None] | bool = False,
        cloud_keeps_tensors: bool = True,
        max_accuracy_loss: float | None = None,
        accuracy: Any = None,
        threads: int | None = None,
    ) -> LookupTable:
        """Precompute the table for ``costs`` over the given ranges.

        ``network`` is the :class:`Radio` (alpha, beta, rtt), or a Network or
        preset name whose radio is taken (its bandwidths are ignored). Cells
        are log-spaced in bandwidth and linear in slowdown; a range with
        ``lo == hi`` gets one cell. ``progress`` is a callback
        ``(done, total)`` or True for a progress bar. ``embed_costs`` stores
        the cost table in the file so that cells and points the table cannot
        answer alone are solved exactly. ``cloud_keeps_tensors`` as in
        :func:`jointdnn_edge.plan` (False for a stateless cloud server).

        A cell stores at most ``max_candidates`` schedules and its enumeration
        may spend at most ``cell_work_budget`` label comparisons (tens of
        milliseconds natively); a cell over either limit is answered by a
        direct exact solve at query time (``stats()["solve_cells"]``). Cells
        spanning a wide range of bandwidths hit these limits: use more cells.

        ``max_accuracy_loss`` with ``accuracy`` (as :func:`~jointdnn_edge.planner.plan`
        takes them) builds a table under that accuracy budget: one build per
        assignment of transfer options within the budget (so the build costs
        that many plain builds), merged into one table whose answers are
        ``plan()``'s under the budget, each schedule carrying the options it
        uses (``docs/planner.md``, "Lookup tables under an accuracy budget").

        ``threads``: build on at most that many threads (None: every core);
        a session's background build takes one, so that it leaves the other
        cores to the inferences it runs beside.
        """
        if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
            raise ConfigError(f"threads must be an integer >= 1 or None, got {threads!r}")
        radio = check_radio(network)
        if phase == "training":  # a training step is priced without the link's burst, as plan() prices it
            radio = radio.without_burst()
        check_objective(objective)
        check_force(force)
        for name, r in (("up_mbps", up_mbps), ("down_mbps", down_mbps), ("cloud_slowdown", cloud_slowdown)):
            if not _is_range(r):
                raise ConfigError(f"{name} must be a (lo, hi) pair with 0 < lo <= hi, got {r!r}")
        cells = _counts(cells)  # type: ignore[assignment]
        if cells is None or math.prod(cells) > ref.MAX_CELLS:
            raise ConfigError(f"cells must be three positive counts, at most {ref.MAX_CELLS} cells in all")
        for name, v in (("cell_work_budget", cell_work_budget), ("max_candidates", max_candidates)):
            if not (isinstance(v, int) and 0 <= v < 2**63):
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        constraints = []
        for (arg, metric), value in zip(CONSTRAINT_ARGS, (deadline_ms, energy_budget_mj, cloud_budget_ms)):
            bound = check_bound(arg, value)
            if bound is not None:
                constraints.append((metric, bound))
        budgeted = max_accuracy_loss is not None or accuracy is not None
        if budgeted:
            budget, offered = budget_request(max_accuracy_loss, accuracy, phase)
            if solver not in ("auto", "native", "python"):
                raise ConfigError(f"a lookup table is built by the solvers auto, native and python, not {solver!r}")
            planner = accuracy_planner(costs, offered, solver=solver, cloud_keeps_tensors=cloud_keeps_tensors)
            assignments = [()] if force == "mobile" else planner.assignments(budget)
            solvers = [planner.solver_for(a) for a in assignments]
        else:
            assignments = [()]
            solvers = [compile(costs, phase=phase, solver=solver, cloud_keeps_tensors=cloud_keeps_tensors)]
        table = table_for_phase(costs, phase)
        spec = ref.LutSpec(
            objective=objective,
            constraints=constraints,
            radio=radio,
            up=(float(up_mbps[0]), float(up_mbps[1])),
            down=(float(down_mbps[0]), float(down_mbps[1])),
            slowdown=(float(cloud_slowdown[0]), float(cloud_slowdown[1])),
            cells=(int(cells[0]), int(cells[1]), int(cells[2])),
            force=force,
            max_candidates=max_candidates,
            max_work=int(cell_work_budget),
        )
        axes = spec.axes()
        total = spec.num_cells()
        report = _progress_reporter(progress, total * len(assignments))
        parts = [(a, functools.partial(s.lut_cells, spec, threads=threads)) for a, s in zip(assignments, solvers)]
        merged = merge_cells(table, parts, total, cloud_keeps_tensors=cloud_keeps_tensors, report=report)
        report(total * len(assignments), final=True)
        return cls(
            n=table.n,
            objective=objective,
            constraints=constraints,
            force=force,
            radio=radio,
            up_mbps=spec.up,
            down_mbps=spec.down,
            cloud_slowdown=spec.slowdown,
            axes=axes,
            candidates=merged.candidates,
            status=merged.status,
            offsets=merged.offsets,
            members=merged.members,
            costs=table.to_dict() if embed_costs else None,
            cloud_keeps_tensors=cloud_keeps_tensors,
            max_accuracy_loss=budget if budgeted else None,
            options=merged.options,
            lossy=merged.lossy if budgeted else None,
        )

    # ----------------------------------------------------------------- query
    def query(self, up_mbps: float, down_mbps: float, cloud_slowdown: float = 1.0) -> Schedule:
        """The optimal schedule at these conditions (see the module docs for the fallbacks).

        Raises :class:`InfeasibleError` when no schedule meets the constraints there.
        """
        try:
            found = self._query(up_mbps, down_mbps, cloud_slowdown)
        except (TypeError, OverflowError):
            raise ConfigError(
                f"up_mbps, down_mbps and cloud_slowdown must be numbers, got {(up_mbps, down_mbps, cloud_slowdown)!r}"
            ) from None
        except InfeasibleError:
            names = "+".join(a for a, m in CONSTRAINT_ARGS if m in dict(self.constraints)) or "groups"
            raise InfeasibleError(
                f"no schedule meets the table's constraints at up={up_mbps} Mbit/s, down={down_mbps} Mbit/s, "
                f"slowdown={cloud_slowdown}",
                names,
            ) from None
        if found is not None:
            segs, u, k = self.candidates[found.candidate]
            s = Schedule._make(
                segs, found.latency_ms, found.mobile_energy_mj, found.cloud_ms, u, k, self.objective, "lut"
            )
            if self._lossy_of is not None and (used := self._lossy_of[found.candidate]) is not None:
                s._lossy, s._accuracy_loss = used  # with_lossy's fields, normalised when the table was made
            return s
        return self._fallback(up_mbps, down_mbps, cloud_slowdown)

    def _fallback(self, up: float, down: float, slowdown: float) -> Schedule:
        """Exact solve with the embedded costs, else the best stored schedule (flagged inexact)."""
        for name, v in (("up_mbps", up), ("down_mbps", down), ("cloud_slowdown", slowdown)):
            if not (_is_real(v) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be positive and finite, got {v!r}")
        link = self.radio.with_bandwidth(float(up), float(down))
        slowdown = float(slowdown)
        if self._costs_dict is not None and self.max_accuracy_loss is not None:
            bounds = dict(self.constraints)
            deadline, energy, cloud = (bounds.get(m) for _, m in CONSTRAINT_ARGS)
            return self._accuracy_planner().solve(
                self.max_accuracy_loss, self.objective, link, slowdown, deadline, energy, cloud, self.force
            )
        if self._costs_dict is not None:
            if self._solver is None:
                self._solver = compile_document(self._costs_dict, cloud_keeps_tensors=self.cloud_keeps_tensors)
            bounds = dict(self.constraints)
            deadline, energy, cloud = (bounds.get(m) for _, m in CONSTRAINT_ARGS)
            return self._solver.solve(
                self.objective, link, slowdown, deadline, energy, cloud, self.force, label=f"lut/{self._solver.name}"
            )
        best = None
        for i, (segs, u, k) in enumerate(self.candidates):
            s = Schedule.from_usage(segs, u, k, link, slowdown, objective=self.objective, exact=False, solver="lut")
            if self._lossy_of is not None and (used := self._lossy_of[i]) is not None:
                s.with_lossy(*used)
            vals = {"latency": s.latency_ms, "energy": s.mobile_energy_mj, "cloud": s.cloud_ms}
            if not all(vals[m] <= b * (1 + 1e-9) + 1e-9 for m, b in self.constraints):
                continue
            if best is None or vals[self.objective] < getattr(best, _ATTR[self.objective]):
                best = s
        if best is None:
            raise InfeasibleError("no stored schedule meets the constraints here (and no cost table is embedded)")
        return best

    def _accuracy_planner(self) -> AccuracyPlanner:
        """The accuracy planner of the embedded cost table and the table's options (made on first use)."""
        if self._accuracy is None:
            from ..costs import CostTable  # an accuracy budget plans with numpy (its lossy options need it anyway)

            assert self._costs_dict is not None
            self._accuracy = AccuracyPlanner(
                CostTable.from_dict(self._costs_dict), self.options, cloud_keeps_tensors=self.cloud_keeps_tensors
            )
        return self._accuracy

    @property
    def embedded_costs(self) -> dict[str, Any] | None:
        """The cost table stored in the file (as :meth:`CostTable.to_dict` gives it), or None when not embedded."""
        return self._costs_dict

    # ----------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        """Cells, stored schedules, longest cell list, cells answered by a direct solve, infeasible cells."""
        sizes = [self.offsets[i + 1] - self.offsets[i] for i in range(len(self.status))]
        return {
            "cells": len(self.status),
            "schedules": len(self.candidates),
            "max_per_cell": max(sizes, default=0),
            "mean_per_cell": (sum(sizes) / len(sizes)) if sizes else 0.0,
            "solve_cells": sum(1 for s in self.status if s == ref.CELL_SOLVE),
            "infeasible_cells": sum(1 for s in self.status if s == ref.CELL_INFEASIBLE),
            "costs_embedded": self._costs_dict is not None,
            "max_accuracy_loss": self.max_accuracy_loss,
            "lossy_schedules": sum(1 for u in self.lossy or () if u),
        }

    def __repr__(self) -> str:
        st = self.stats()
        return (
            f"LookupTable(n={self.n}, objective={self.objective!r}, constraints={dict(self.constraints)}, "
            f"cells={st['cells']}, schedules={st['schedules']})"
        )

    # -------------------------------------------------------------- file I/O
    def to_bytes(self) -> bytes:
        """The table in the binary format of ``docs/lookup-table-format.md``."""
        out = bytearray()
        flags = (1 if self._costs_dict is not None else 0) | (0 if self.cloud_keeps_tensors else 2)
        flags |= 0 if self.lossy is None else 4
        # the burst layout when the radio has one (or, for a table made by hand, any schedule has a credit)
        credits = any(u[CREDIT_UP] or u[CREDIT_DOWN] for _, u, _ in self.candidates)
        bursty = bool(self.radio.burst_up_bytes or self.radio.burst_down_bytes or credits)
        version = (VERSION if self.lossy is None else VERSION_LOSSY) + (VERSION_BURST if bursty else 0)
        dims, fields = _layout(bursty)
        out += MAGIC
        out += struct.pack("<HHI", version, flags, self.n)
        out += struct.pack(
            "<BBBB", _OBJECTIVES.index(self.objective), _FORCES.index(self.force), len(self.constraints), 0
        )
        for m, b in self.constraints:
            out += struct.pack("<II d", _METRICS.index(m), 0, b)
        out += struct.pack(f"<{fields}d", *self.radio[:fields])
        out += struct.pack("<6d", *self.up_mbps, *self.down_mbps, *self.cloud_slowdown)
        out += struct.pack("<3I", *self.axes)
        out += struct.pack("<I", len(self.candidates))
        for segs, u, k in self.candidates:
            out += struct.pack(f"<{dims}dII", *u[:dims], k, len(segs))
            out += struct.pack(f"<{len(segs)}I", *(b | ((1 << 31) if p == "cloud" else 0) for _, b, p in segs))
        ncells = len(self.status)
        out += struct.pack(f"<{ncells}B", *self.status)
        out += b"\x00" * (-ncells % 4)
        out += struct.pack(f"<{ncells + 1}I", *self.offsets)
        out += struct.pack(f"<{len(self.members)}I", *self.members)
        if self._costs_dict is not None:
            blob = json.dumps(self._costs_dict, separators=(",", ":"), allow_nan=False).encode()
            out += struct.pack("<I", len(blob)) + blob
        if self.lossy is not None:
            assert self.max_accuracy_loss is not None
            section = lossy_to_json(self.max_accuracy_loss, self.options, self.lossy)
            blob = json.dumps(section, separators=(",", ":"), allow_nan=False).encode()
            out += struct.pack("<I", len(blob)) + blob
        out += struct.pack("<I", zlib.crc32(out))
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> LookupTable:
        """Parse :meth:`to_bytes` output; raises :class:`LookupTableError` on any inconsistency."""
        if not isinstance(data, (bytes, bytearray, memoryview)):  # bytes(int) would allocate that many zeros
            raise LookupTableError(f"a lookup table is read from bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < len(MAGIC) + 12 or data[: len(MAGIC)] != MAGIC:
            raise LookupTableError("not a jointdnn-edge lookup table (bad magic)")
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise LookupTableError("lookup table checksum mismatch: the file is corrupt or truncated")
        r = _Reader(data, len(MAGIC), len(data) - 4)
        version, flags, n = r.take("<HHI")
        if not 1 <= version <= VERSION_LOSSY + VERSION_BURST:
            raise LookupTableError(
                f"lookup table version {version} is not supported (this SDK reads 1 to {VERSION_LOSSY + VERSION_BURST})"
            )
        bursty = version > VERSION_LOSSY
        dims, fields = _layout(bursty)
        version -= VERSION_BURST if bursty else 0
        if bool(flags & 4) != (version == VERSION_LOSSY):
            raise LookupTableError(f"lookup table version {version} does not match its transfer-options flag")
        obj, force, ncon, _ = r.take("<BBBB")
        if obj >= len(_OBJECTIVES) or force >= len(_FORCES):
            raise LookupTableError("lookup table header has an unknown objective or force code")
        constraints = []
        for _ in range(ncon):
            m, _pad, b = r.take("<IId")
            if m >= len(_METRICS):
                raise LookupTableError(f"unknown constraint metric code {m}")
            constraints.append((_METRICS[m], b))
        radio = Radio(*r.take(f"<{fields}d"))
        rng = r.take("<6d")
        axes = tuple(r.take("<3I"))
        (ncand,) = r.take("<I")
        candidates = []
        for _ in range(ncand):
            vals = r.take(f"<{dims}dII")
            u, k, nseg = list(vals[:dims]) + [0.0] * (DIMS - dims), vals[dims], vals[dims + 1]
            if nseg > n:
                raise LookupTableError("a stored schedule has more segments than layers")
            segs = []
            first = 0
            for word in r.take(f"<{nseg}I"):
                last = word & 0x7FFFFFFF
                if last < first or last >= n:
                    raise LookupTableError("a stored schedule has inconsistent segments")
                segs.append((first, last, "cloud" if word >> 31 else "mobile"))
                first = last + 1
            if first != n:
                raise LookupTableError("a stored schedule does not cover every layer")
            candidates.append((segs, u, k))
        ncells = axes[0] * axes[1] * axes[2]
        if ncells > len(data):
            raise LookupTableError("lookup table cell count is implausible")
        status = list(r.take(f"<{ncells}B"))
        r.skip(-ncells % 4)
        offsets = list(r.take(f"<{ncells + 1}I"))
        if offsets[0] != 0 or any(a > b for a, b in zip(offsets, offsets[1:])) or any(s > 2 for s in status):
            raise LookupTableError("lookup table cell index is inconsistent")
        members = list(r.take(f"<{offsets[-1]}I"))
        if any(m >= ncand for m in members):
            raise LookupTableError("lookup table cell refers to a missing schedule")
        costs = r.json("embedded cost table") if flags & 1 else None
        budget: float | None = None
        options: tuple[TransferOption, ...] = ()
        lossy: list[tuple[int, ...]] | None = None
        if flags & 4:
            budget, options, lossy = lossy_from_json(r.json("transfer-options section"))
        if r.pos != r.end:
            raise LookupTableError("trailing bytes after the lookup table")
        return cls(
            n=n,
            objective=_OBJECTIVES[obj],
            constraints=constraints,
            force=_FORCES[force],
            radio=radio,
            up_mbps=(rng[0], rng[1]),
            down_mbps=(rng[2], rng[3]),
            cloud_slowdown=(rng[4], rng[5]),
            axes=axes,
            candidates=candidates,
            status=status,
            offsets=offsets,
            members=members,
            costs=costs,
            cloud_keeps_tensors=not flags & 2,
            max_accuracy_loss=budget,
            options=options,
            lossy=lossy,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table to ``path``."""
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LookupTable:
        """Read a table written by :meth:`save` (standard library only); LookupTableError if it cannot be read."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise LookupTableError(f"{path}: cannot read: {e.strerror or e}") from e
        return cls.from_bytes(data)


_ATTR = {"latency": "latency_ms", "energy": "mobile_energy_mj", "cloud": "cloud_ms"}


def _is_real(x: Any) -> bool:
    """An int or float (not bool) with a finite-or-infinite float value (not an int past ~1.8e308)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        float(x)
    except OverflowError:
        return False
    return True


def _is_range(r: Any) -> bool:
    """A ``(lo, hi)`` pair of finite numbers with ``0 < lo <= hi``."""
    try:
        lo, hi = r
    except (TypeError, ValueError):
        return False
    return _is_real(lo) and _is_real(hi) and math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi


def _counts(cells: Any) -> tuple[int, int, int] | None:
    """Three positive integer counts, or None."""
    try:
        a = tuple(int(c) for c in cells)
    except (TypeError, ValueError, OverflowError):
        return None
    return a if len(a) == 3 and all(c >= 1 for c in a) else None


def _layout(bursty: bool) -> tuple[int, int]:
    """Usage dimensions and radio fields a file stores: all of them in the burst layout, else the first 8 and 4."""
    return (DIMS, len(Radio._fields)) if bursty else (_PLAIN_DIMS, 4)


def _check_fields(
    n: Any,
    objective: Any,
    constraints: Any,
    force: Any,
    radio: Any,
    ranges: Any,
    axes: Any,
    candidates: Any,
    status: Any,
    offsets: Any,
    members: Any,
    costs: Any,
) -> None:
    """Raise :class:`LookupTableError` unless a table's fields are consistent (what a query relies on)."""

    def bad(msg: str) -> LookupTableError:
        return LookupTableError(f"inconsistent lookup table: {msg}")

    def nonneg(x: Any) -> bool:
        return _is_real(x) and math.isfinite(x) and x >= 0

    if not (isinstance(n, int) and n >= 1):
        raise bad(f"it needs at least one layer, got n={n!r}")
    if objective not in _OBJECTIVES or force not in _FORCES:
        raise bad(f"objective {objective!r} or force {force!r} is unknown")
    try:
        if len(radio) != len(Radio._fields) or not all(nonneg(x) for x in radio):
            raise bad(f"the radio must be {len(Radio._fields)} finite numbers >= 0, got {radio!r}")
        if not all(m in _METRICS and nonneg(b) for m, b in constraints):
            raise bad(f"constraints must be (metric, finite bound >= 0), got {constraints!r}")
        if len(ranges) != 3 or not all(_is_range(r) for r in ranges):
            raise bad(f"ranges must satisfy 0 < lo <= hi (finite), got {ranges!r}")
        a = tuple(axes)
        if len(a) != 3 or not all(isinstance(x, int) and x >= 1 for x in a) or math.prod(a) > ref.MAX_CELLS:
            raise bad(f"axes must be three positive counts, at most {ref.MAX_CELLS} cells, got {axes!r}")
        ncells = math.prod(a)
        if len(status) != ncells or any(s not in (0, 1, 2) for s in status):
            raise bad("cell statuses do not match the axes")
        if (
            len(offsets) != ncells + 1
            or offsets[0] != 0
            or any(x > y for x, y in zip(offsets, offsets[1:]))
            or offsets[-1] != len(members)
        ):
            raise bad("cell offsets are not non-decreasing from 0 to the member count")
        if any(not (isinstance(m, int) and 0 <= m < len(candidates)) for m in members):
            raise bad("a cell refers to a missing schedule")
        for segs, u, _k in candidates:
            if len(u) != DIMS or not all(nonneg(x) for x in u):
                raise bad(f"a stored schedule's usage must be {DIMS} finite numbers >= 0")
            if u[CREDIT_UP] > u[BYTES_UP] or u[CREDIT_DOWN] > u[BYTES_DOWN]:
                raise bad("a stored schedule's burst carries more bytes than it sends")
            first = 0
            for a0, b0, p in segs:
                if a0 != first or b0 < a0 or p not in ("mobile", "cloud"):
                    raise bad("a stored schedule has inconsistent segments")
                first = b0 + 1
            if first != n:
                raise bad("a stored schedule does not cover every layer")
    except LookupTableError:
        raise
    except (TypeError, ValueError) as e:
        raise bad(f"{type(e).__name__}: {e}") from None
    if costs is not None and not (isinstance(costs, dict) and costs.get("n") == n):
        raise bad("the embedded cost table is not a cost table of the same number of layers")


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > self.end:
            raise LookupTableError("lookup table is truncated")
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return vals

    def bytes(self, k: int) -> bytes:
        if self.pos + k > self.end:
            raise LookupTableError("lookup table is truncated")
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def skip(self, k: int) -> None:
        self.bytes(k)

    def json(self, what: str) -> Any:
        """A u32 length and that many bytes of UTF-8 JSON, parsed."""
        (k,) = self.take("<I")
        try:
            return json.loads(self.bytes(k).decode())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise LookupTableError(f"the {what} is not valid JSON: {e}") from None


def _progress_reporter(progress: Callable[[int, int], None] | bool, total: int) -> Callable[..., None]:
    """``report(done, final=False)``: forwards to a callback, drives a rich progress bar, or does nothing."""
    if callable(progress):
        callback = progress

        def forward(done: int, final: bool = False) -> None:
            if not final:
                callback(done, total)

        return forward
    if not progress:
        return lambda done, final=False: None
    from rich.progress import Progress

    bar = Progress(transient=False)
    bar.start()
    task = bar.add_task("lookup table", total=total)

    def report(done: int, final: bool = False) -> None:
        bar.update(task, completed=done)
        if final:
            bar.stop()

    return report
