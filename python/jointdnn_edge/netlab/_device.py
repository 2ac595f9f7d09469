"""The lab's emulated phone: real execution on this CPU, slowed to a device's time per slice.

Two ways to be slower than this CPU. ``repeat`` (the issue's literal device:
this CPU ``slowdown`` times slower) computes each slice that many times, as
:class:`~jointdnn_edge.demo.SlowedExecutor` does. ``sleep`` computes each
slice once and then sleeps until the slice has taken the cost table's time
for it, so the outputs are still real (and checked) but the emulated device
costs the machine one run of CPU instead of ``slowdown``; its times also no
longer move with this CPU's load as long as one real run fits in them.

The cost table's mobile times come from this CPU's profile times
``slowdown``, or from a device model (:mod:`jointdnn_edge.devices`); a device
model faster than this CPU for some group cannot be emulated faster than
this CPU runs it, so the table takes the larger of the two for every group
(:func:`mobile_costs` says how many groups this CPU bounds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..models.executor import EmulatedDevice

__all__ = ["EMULATIONS", "PacedExecutor", "mobile_costs", "slowdown_for"]

#: How the emulated device is made slower than this CPU.
EMULATIONS = ("repeat", "sleep")


def slowdown_for(host: Any, phone_ms: float) -> float:
    """The factor that makes ``host`` (this CPU's cost table) an emulated phone whose whole model takes ``phone_ms``
    (its fastest split into profiled groups, as the planner prices all-mobile); at least 1.

    For runs that compare like with like: a factor fixed at 20 makes a phone that is 20 times this CPU's profile at
    the start of each run, which moved by a third between runs on this shared machine.
    """
    if not (isinstance(phone_ms, (int, float)) and math.isfinite(phone_ms) and phone_ms > 0):
        raise ConfigError(f"phone_ms must be a positive number of milliseconds, got {phone_ms!r}")
    m = np.asarray(host.mobile_ms, dtype=float)
    host_ms = float(_fastest_splits(m)[0, m.shape[0] - 1])  # the whole model on this CPU, as PacedExecutor runs it
    if host_ms > phone_ms:
        raise ConfigError(f"a {phone_ms:g} ms phone is faster than this CPU runs the model ({host_ms:.3g} ms)")
    return phone_ms / host_ms


def mobile_costs(graph: Any, host: Any, device: str, slowdown: float, max_group: int) -> tuple[Any, dict[str, Any]]:
    """The cost table with the emulated device's mobile times, and what they are (for the lab's set-up record).

    ``host``: the table profiled on this CPU (one thread). ``device``:
    ``"host"`` (``host`` times ``slowdown``) or a device preset name (its
    model's times, at least this CPU's; energy at its power).
    """
    if device == "host":
        return host.replace(mobile_ms=np.asarray(host.mobile_ms) * slowdown, mobile_power_mw=7500.0), {
            "device": "host",
            "slowdown": slowdown,
        }
    from ..devices import cost_table
    from ..devices import device as device_preset

    dev = device_preset(device)
    modelled = np.asarray(cost_table(graph, mobile=dev, max_group=max_group).mobile_ms)
    measured = np.asarray(host.mobile_ms)
    finite = np.isfinite(modelled) & np.isfinite(measured)
    bound = int(np.sum(finite & (measured > modelled)))
    mobile = np.where(finite, np.maximum(modelled, measured), np.inf)
    info = {"device": dev.name, "groups": int(finite.sum()), "groups_bound_by_this_cpu": bound}
    return host.replace(mobile_ms=mobile, mobile_power_mw=dev.power_mw), info


class PacedExecutor(EmulatedDevice):
    """``inner`` slowed to ``group_ms``: each run is computed once, then padded with a sleep to its time.

    ``group_ms[i, j]``: the device's time for layers ``i..j`` as one group
    (``inf``: not a group). A run of layers ``first..last`` takes the
    fastest split of it into groups, which is what the planner predicts for
    a run of consecutive mobile segments. A run slower than that on this CPU
    takes what it takes. Results are ``inner``'s, bit for bit.
    """

    def __init__(self, inner: Any, group_ms: Any) -> None:
        m = np.asarray(group_ms, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or not all(math.isfinite(m[i, i]) for i in range(m.shape[0])):
            raise ConfigError("group_ms must be a square matrix with a finite time for every single layer")
        super().__init__(inner)
        self._best = _fastest_splits(m)

    def target_ms(self, first: int, last: int) -> float:
        """The device's time for layers ``first..last`` (the fastest split into groups)."""
        return float(self._best[first, last])

    def _paced(self, target_ms: float, fn: Any) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out: dict[str, np.ndarray] = fn()
        left = target_ms / 1e3 - (time.perf_counter() - t0)
        if left > 0:
            time.sleep(left)
        return out

    def run(self, graph: Any, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inner.run``, taking the device's time."""
        return self._paced(self.target_ms(first, last), lambda: self.inner.run(graph, first, last, feeds))

    def run_model(self, graph: Any, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inner.run_model``, taking the device's time for every layer."""
        return self._paced(self.target_ms(0, graph.n - 1), lambda: self.inner.run_model(graph, feeds))

    def info(self) -> dict[str, Any]:
        """``inner.info()`` plus how it is paced."""
        return {**self.inner.info(), "emulated": "paced to the device's time per slice"}


def _fastest_splits(m: np.ndarray) -> np.ndarray:
    """``best[a, b]``: the least total time over the splits of layers ``a..b`` into groups of ``m``."""
    n = m.shape[0]
    best = np.full((n, n), np.inf)
    for a in range(n):
        row = best[a]
        for b in range(a, n):
            cands = [m[a, b]] + [row[k] + m[k + 1, b] for k in range(a, b) if math.isfinite(m[k + 1, b])]
            row[b] = min(cands)
    return best
