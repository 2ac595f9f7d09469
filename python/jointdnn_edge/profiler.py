"""Measure grouped layer costs of a model on this machine into a :class:`CostTable`.

The JointDNN paper profiles every group of consecutive layers, not only single
layers, because runtimes optimize across layers (fusions, layouts, caches) and
the sum of single-layer times misjudges a group (its section 2.2). Here every
group ``i..j`` (all ``N(N+1)/2`` of them, or those of at most ``max_group``
layers) is cut out as a standalone model, fed the tensors it would see in a
real run and timed: ``warmup`` untimed runs, then the median of ``repeats``
timed runs (``time.perf_counter_ns``).

Realistic inputs: the model inputs (``inputs=``, or seeded uniform noise) are
propagated layer by layer through the single-layer slices, so every group is
timed on the activations the whole model would produce (which matters for
data-dependent kernels and sparse activations). Each tensor is kept only as
long as a later group still needs it. The first run of a group is always
untimed (it yields the group's outputs) and counts as one of the ``warmup``
runs.

Energy: a :class:`DeviceProfile` turns time into mobile energy with a constant
compute power, or measures it with an ``energy_hook``. Cloud costs are either
profiled the same way with a ``cloud_executor``, mapped onto a device model
(``cloud=``), or scaled from the mobile times by ``cloud_speedup``;
``meta["cloud_source"]`` records which.

This machine is rarely the phone: ``mobile_slowdown`` multiplies every mobile
time by a known factor, ``mobile=`` maps the measured times onto a device
model one factor per operator class (:mod:`~jointdnn_edge.calibrate`).

Noise: beside each median the table keeps the band of its timed runs
(:class:`~jointdnn_edge.spread.GroupSpread`, in ``meta["spread"]``), and a
group timed below a group it contains, by more than both bands, is raised to
that group's time (``clamp_groups``; ``meta["group_check"]`` lists them).
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .calibrate import calibrated_ms
from .costs import DEFAULT_MOBILE_POWER_MW, CostTable
from .devices import Device, layer_work
from .devices import device as device_model
from .errors import ConfigError
from .spread import SPREAD_KEY, SPREAD_QUANTILES, GroupSpread, clamp_low_outliers

if TYPE_CHECKING:
    from .models.executor import Executor
    from .models.graph import ModelGraph

__all__ = ["DEFAULT_CLOUD_SPEEDUP", "DEVICE_PRESETS", "DeviceProfile", "count_groups", "profile"]

#: Cloud speed-up over the mobile device assumed when the cloud is not profiled:
#: the JointDNN paper's cloud GPU (Tesla K40C) has "more than one order of
#: magnitude" the compute capability of its mobile device (Jetson TX2), section 3.2.
DEFAULT_CLOUD_SPEEDUP = 10.0


@dataclass(frozen=True)
class DeviceProfile:
    """How mobile compute time becomes energy.

    ``compute_power_mw``: the device's power draw while computing (energy =
    power × time). ``energy_hook``: instead of a constant power, a function
    that takes a zero-argument callable running one group once and returns the
    energy of one run in mJ (it may run it several times around its sensor
    reads and average). ``source`` says where the number comes from.
    """

    name: str
    compute_power_mw: float | None = None
    energy_hook: Callable[[Callable[[], Any]], float] | None = field(default=None, compare=False)
    source: str = ""

    def __post_init__(self) -> None:
        if self.compute_power_mw is None and self.energy_hook is None:
            raise ConfigError(f"device {self.name!r}: give compute_power_mw or an energy_hook")
        if self.compute_power_mw is not None:
            p = self.compute_power_mw
            if not (isinstance(p, (int, float)) and math.isfinite(p) and p >= 0):
                raise ConfigError(f"device {self.name!r}: compute_power_mw must be finite and >= 0, got {p!r}")

    @classmethod
    def preset(cls, name: str) -> DeviceProfile:
        """One of :data:`DEVICE_PRESETS` (case and ``_``/``-`` ignored)."""
        key = name.lower().replace("_", "-")
        if key not in DEVICE_PRESETS:
            raise ConfigError(f"unknown device preset {name!r}; choose one of {', '.join(DEVICE_PRESETS)}")
        return DEVICE_PRESETS[key]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (for ``CostTable.meta``)."""
        return {
            "name": self.name,
            "compute_power_mw": self.compute_power_mw,
            "energy": "measured by energy_hook" if self.energy_hook is not None else "compute_power_mw x time",
            "source": self.source,
        }


#: Compute-power presets. Each number is what its ``source`` says, no more:
#: board or module power figures from the vendors' documents, not measurements
#: of DNN inference on them. Measure your device (or pass an energy hook) for
#: real energy numbers.
DEVICE_PRESETS: dict[str, DeviceProfile] = {
    p.name: p
    for p in [
        DeviceProfile(
            "jetson-tx2",
            DEFAULT_MOBILE_POWER_MW,
            source="NVIDIA Jetson TX2 module, default Max-Q mode: 7.5 W module power (NVIDIA Jetson TX2 "
            "data sheet). The mobile device of the JointDNN paper, which measured it with an INA226 power sensor.",
        ),
        DeviceProfile(
            "jetson-tx2-maxp",
            15000.0,
            source="NVIDIA Jetson TX2 module in Max-P mode: up to 15 W module power (NVIDIA Jetson TX2 data sheet).",
        ),
        DeviceProfile(
            "raspberry-pi-4",
            3000.0,
            source="Raspberry Pi 4 Model B: 5 V x 600 mA, the 'typical bare-board active current consumption' "
            "in the Raspberry Pi documentation's power-supply table; a CPU-bound DNN draws more "
            "(the recommended supply is 3.0 A).",
        ),
        DeviceProfile(
            "raspberry-pi-5",
            4000.0,
            source="Raspberry Pi 5: 5 V x 800 mA, the 'typical bare-board active current consumption' in the "
            "Raspberry Pi documentation's power-supply table; a CPU-bound DNN draws more (the recommended "
            "supply is 5.0 A).",
        ),
    ]
}


def count_groups(n: int, max_group: int | None) -> int:
    """Number of groups ``i..j`` profiled for ``n`` layers (all ``n(n+1)/2`` without a bound)."""
    if max_group is None or max_group >= n:
        return n * (n + 1) // 2
    m = max_group
    return m * n - m * (m - 1) // 2


def profile(
    graph: ModelGraph,
    executor: Any = None,
    *,
    max_group: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    inputs: Mapping[str, np.ndarray] | None = None,
    device: DeviceProfile | str | None = None,
    cloud_executor: Any = None,
    cloud_speedup: float | None = None,
    mobile_slowdown: float | None = None,
    mobile: Device | str | None = None,
    cloud: Device | str | None = None,
    clamp_groups: bool = True,
    threads: int | None = None,
    progress: bool | None = None,
    seed: int = 0,
) -> CostTable:
    """Profile every single layer and every group of consecutive layers of ``graph`` into a :class:`CostTable`.

    ``executor`` runs the mobile side (default: ``executor_for(graph,
    threads)``); groups longer than ``max_group`` are marked not offered
    (``inf``). Times are medians over ``repeats`` after ``warmup`` runs, in
    ms. ``inputs`` are the model inputs (default: seeded uniform noise).
    ``device`` (a :class:`DeviceProfile` or preset name; default
    ``"jetson-tx2"``, or the ``mobile`` device's power) gives mobile energy.

    The mobile side is this machine's times, times ``mobile_slowdown`` when
    given, or mapped onto the device model ``mobile`` (a
    :class:`~jointdnn_edge.devices.Device` or preset name) one factor per
    operator class (:func:`~jointdnn_edge.calibrate.calibrated_ms`). The
    cloud side is profiled with ``cloud_executor`` when given, else mapped
    from this machine's times onto the device model ``cloud``, else the
    mobile times divided by ``cloud_speedup`` (default
    :data:`DEFAULT_CLOUD_SPEEDUP`).

    The table keeps each group's spread (``meta["spread"]``); with
    ``clamp_groups`` (default) a group measured below a group it contains,
    beyond both spreads, is raised to it (``meta["group_check"]``), before
    any scaling. ``progress`` shows a progress bar (default: when stderr is
    a terminal). The table's ``meta`` records device, runtime, versions,
    calibration and settings. Invalid arguments (a bound, an unknown device
    preset, missing ``inputs``, conflicting options) raise
    :class:`~jointdnn_edge.ConfigError` before anything runs.

    An executor that offers ``run_timed(graph, first, last, feeds) -> (outputs,
    compute_ms)`` is timed by what it reports instead of the wall clock: that is
    how a remote cloud executor contributes its server-side compute time
    without the network's (``meta["cloud_timing"]`` says which was used).
    """
    from .models.executor import executor_for
    from .models.graph import costs_from, uniform_feeds

    n = graph.n
    if max_group is not None and (not isinstance(max_group, (int, np.integer)) or max_group < 1):
        raise ConfigError(f"max_group must be a positive integer or None, got {max_group!r}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    if sum(x is not None for x in (cloud_executor, cloud_speedup, cloud)) > 1:
        raise ConfigError(
            "cloud_executor, cloud (a device) and cloud_speedup each set the cloud side: give one, not both"
        )
    if cloud_speedup is not None and not (math.isfinite(cloud_speedup) and cloud_speedup > 0):
        raise ConfigError(f"cloud_speedup must be a positive number, got {cloud_speedup!r}")
    if mobile_slowdown is not None and mobile is not None:
        raise ConfigError("give mobile_slowdown or mobile (a device), not both")
    if mobile_slowdown is not None and not (
        isinstance(mobile_slowdown, (int, float)) and math.isfinite(mobile_slowdown) and mobile_slowdown > 0
    ):
        raise ConfigError(f"mobile_slowdown must be a positive number, got {mobile_slowdown!r}")
    mobile_dev = None if mobile is None else device_model(mobile)
    cloud_dev = None if cloud is None else device_model(cloud)
    if isinstance(device, str):
        device = DeviceProfile.preset(device)
    elif device is None:
        device = (
            DEVICE_PRESETS["jetson-tx2"]
            if mobile_dev is None
            else DeviceProfile(mobile_dev.name, mobile_dev.power_mw, source=mobile_dev.source)
        )
    if device.energy_hook is not None and (mobile_dev is not None or mobile_slowdown is not None):
        raise ConfigError("an energy_hook measures this machine: it cannot be combined with mobile or mobile_slowdown")
    if executor is None:
        executor = executor_for(graph, threads=threads)
    feeds = dict(uniform_feeds(graph, seed) if inputs is None else inputs)
    missing = [t.name for t in graph.inputs if t.name not in feeds]
    if missing:
        raise ConfigError(f"profile: inputs {missing} of {graph.name!r} are not given")

    passes = 2 if cloud_executor is not None else 1
    total = passes * count_groups(n, max_group)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    started = time.time()
    with _progress(show, total) as advance:
        host = _measure(graph, executor, feeds, max_group, repeats, warmup, device.energy_hook, advance, "mobile")
        cloud_runs = None
        if cloud_executor is not None:
            cloud_runs = _measure(graph, cloud_executor, feeds, max_group, repeats, warmup, None, advance, "cloud")

    check: dict[str, Any] = {"rule": "a group below a group it contains, beyond both spreads, takes its time"}
    if clamp_groups:
        for side, runs in (("mobile", host), ("cloud", cloud_runs)):
            if runs is not None:
                check[side] = [c.to_list() for c in runs.clamp()]
    else:
        check["rule"] = "off"

    calibration: dict[str, Any] = {}
    works = None if mobile_dev is None and cloud_dev is None else layer_work(graph)
    mobile_ms = host.ms
    if mobile_slowdown is not None:
        mobile_ms = host.ms * float(mobile_slowdown)
        calibration["mobile"] = {"slowdown": float(mobile_slowdown)}
    elif mobile_dev is not None and works is not None:
        mobile_ms, factors = calibrated_ms(host.ms, works, mobile_dev)
        calibration["mobile"] = {"device": mobile_dev.to_dict(), "class_factors": factors}
    if cloud_runs is not None:
        cloud_ms = cloud_runs.ms
    elif cloud_dev is not None and works is not None:
        cloud_ms, factors = calibrated_ms(host.ms, works, cloud_dev)
        calibration["cloud"] = {"device": cloud_dev.to_dict(), "class_factors": factors}
    else:
        cloud_ms = mobile_ms / (DEFAULT_CLOUD_SPEEDUP if cloud_speedup is None else float(cloud_speedup))

    meta: dict[str, Any] = {
        "profiler": {
            "repeats": int(repeats),
            "warmup": int(warmup),
            "max_group": None if max_group is None else int(max_group),
            "statistic": "median",
            "groups": count_groups(n, max_group),
            "inputs": "given" if inputs is not None else f"uniform noise, seed {seed}",
            "seconds": round(time.time() - started, 3),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "model": {
            "name": graph.name,
            "format": graph.format,
            "layers": n,
            "merge_trivial": getattr(graph, "merge_trivial", None),
        },
        "device": {**device.to_dict(), **machine_info()},
        "runtime": executor.info(),
        "versions": _versions(),
        "group_check": check,
    }
    if calibration:
        meta["calibration"] = calibration
    if cloud_executor is not None:
        meta["cloud_source"] = "profiled"
        meta["cloud_runtime"] = cloud_executor.info()
        meta["cloud_timing"] = (
            "reported by the executor" if callable(getattr(cloud_executor, "run_timed", None)) else "wall clock"
        )
    elif cloud_dev is not None:
        meta["cloud_source"] = f"mapped onto device model {cloud_dev.name}"
    else:
        meta["cloud_source"] = "scaled"
        meta["cloud_speedup"] = DEFAULT_CLOUD_SPEEDUP if cloud_speedup is None else float(cloud_speedup)
    if cloud_runs is None:
        spread = GroupSpread(host.lo, host.hi)
    else:
        spread = GroupSpread(host.lo, host.hi, cloud_runs.lo, cloud_runs.hi)
    meta[SPREAD_KEY] = spread.to_dict()
    if host.mj is not None:
        energy: dict[str, Any] = {"mobile_mj": host.mj}
    else:
        energy = {"mobile_power_mw": device.compute_power_mw}
    return costs_from(graph, mobile_ms, cloud_ms, meta=meta, **energy)


@dataclass
class _Runs:
    """One side's measurements: medians (ms), measured energy (mJ, or None) and relative quartile bands."""

    ms: np.ndarray
    mj: np.ndarray | None
    lo: np.ndarray
    hi: np.ndarray

    def clamp(self) -> list[Any]:
        """Raise groups timed below a group they contain; the groups raised.

        Energy measured by a hook is a measurement of its own, without a band: it is left as measured.
        """
        self.ms, self.lo, self.hi, clamped = clamp_low_outliers(self.ms, self.lo, self.hi)
        return clamped


def _measure(
    graph: ModelGraph,
    executor: Any,
    feeds: Mapping[str, np.ndarray],
    max_group: int | None,
    repeats: int,
    warmup: int,
    hook: Callable[[Callable[[], Any]], float] | None,
    advance: Callable[[str], None],
    side: str,
) -> _Runs:
    """Time every offered group with ``executor``: medians (``inf`` where not offered) and quartile bands."""
    n = graph.n
    ms = np.full((n, n), np.inf)
    lo = np.ones((n, n))
    hi = np.ones((n, n))
    mj = np.full((n, n), np.inf) if hook is not None else None
    # last layer reading each tensor: a tensor can be dropped once no group starting later needs it
    last_use: dict[str, int] = {}
    for layer in graph.layers:
        for t in layer.inputs:
            last_use[t] = max(last_use.get(t, -1), layer.index)
    live: dict[str, np.ndarray] = dict(feeds)
    prepare = getattr(executor, "prepare", None)
    timed = getattr(executor, "run_timed", None)
    timed = timed if callable(timed) else None
    for i in range(n):
        jmax = n - 1 if max_group is None else min(n - 1, i + max_group - 1)
        for j in range(i, jmax + 1):
            if callable(prepare):
                run = prepare(graph, i, j)
                names = run.input_names
            else:
                names = graph.slice_io(i, j)[0]
                run = _Bound(executor, graph, i, j)
            group_feeds = {name: live[name] for name in names}
            out = run(group_feeds)  # first run: warms caches, and gives layer i's outputs
            if j == i:
                live.update(out)
            for _ in range(max(warmup - 1, 0)):
                run(group_feeds)
            times = []
            for _ in range(repeats):
                if timed is not None:
                    # the executor measures itself (a remote cloud reports its compute time, not the network's)
                    times.append(float(timed(graph, i, j, group_feeds)[1]) * 1e6)
                    continue
                t0 = time.perf_counter_ns()
                run(group_feeds)
                times.append(time.perf_counter_ns() - t0)
            # a median of 0 (timer too coarse) would make the group look free: floor at 1 ns
            median = max(statistics.median(times), 1)
            ms[i, j] = median / 1e6
            low, high = np.percentile(np.maximum(times, 1), SPREAD_QUANTILES)
            lo[i, j], hi[i, j] = min(low / median, 1.0), max(high / median, 1.0)
            if mj is not None and hook is not None:
                mj[i, j] = float(hook(functools.partial(run, group_feeds)))
            advance(f"{side} {graph.layers[i].name} .. {graph.layers[j].name}")
        for name in [t for t, k in last_use.items() if k <= i and t in live]:
            del live[name]
    return _Runs(ms, mj, lo, hi)


class _Bound:
    """``executor.run`` bound to one range, for executors without ``prepare``."""

    def __init__(self, executor: Executor, graph: ModelGraph, first: int, last: int) -> None:
        self.executor, self.graph, self.first, self.last = executor, graph, first, last

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.executor.run(self.graph, self.first, self.last, feeds)


class _progress:
    """A rich progress bar (or nothing) as a context manager yielding ``advance(description)``."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total
        self._bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.show:
            return lambda _desc: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]profiling[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._bar.__enter__()
        task = self._bar.add_task("", total=self.total)

        def advance(desc: str) -> None:
            self._bar.update(task, advance=1, description=desc)

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def machine_info() -> dict[str, Any]:
    """Platform, CPU model and core count of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count()}


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("jointdnn-edge", "numpy", "onnx", "onnxruntime", "ai-edge-litert"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    if out.get("jointdnn-edge") is None:
        from . import __version__

        out["jointdnn-edge"] = __version__
    return out
