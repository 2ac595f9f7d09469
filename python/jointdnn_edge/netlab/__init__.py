"""The network lab: a real, kernel-shaped link on one machine, and the adaptive session measured on it.

Two network namespaces joined by a veth pair, ``tc tbf`` shaping each way,
a user-space relay for delay, jitter, loss and outages (the kernel has no
``netem``), bandwidth changed over time from a trace, the server inside one
namespace and the sessions inside the other. See ``docs/netlab.md``.
"""

from __future__ import annotations

from ._lab import CLIENT_ADDR, SERVER_ADDR, Lab, LabUnavailableError, lab_unavailable_reason, leftovers
from ._plot import plot_netlab
from ._relay import DelayRelay
from ._run import STRATEGIES, NetlabResult, run_netlab
from ._trace import SHIPPED_TRACES, LinkPoint, LinkTrace, load_trace

__all__ = [
    "CLIENT_ADDR",
    "SERVER_ADDR",
    "SHIPPED_TRACES",
    "STRATEGIES",
    "DelayRelay",
    "Lab",
    "LabUnavailableError",
    "LinkPoint",
    "LinkTrace",
    "NetlabResult",
    "lab_unavailable_reason",
    "leftovers",
    "load_trace",
    "plot_netlab",
    "run_netlab",
]
