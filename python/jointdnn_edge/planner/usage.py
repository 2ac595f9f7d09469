"""Usage vectors: the bandwidth-independent totals every metric is computed from.

Pure Python (no numpy), computed from a :class:`~jointdnn_edge.network.Network`
(or, where bandwidths vary, its :class:`~jointdnn_edge.network.Radio`), shared
by the reference solver, the lookup table and
:class:`~jointdnn_edge.planner.schedule.Schedule`. Mirrors
``rust/core/src/problem.rs``; the formulas are documented there and in
``docs/planner.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from ..network import Network, Radio

DIMS = 10
MOBILE_MS, CLOUD_MS, MOBILE_MJ, BYTES_UP, BYTES_DOWN, SWITCHES, CODEC_MS, CODEC_MJ, CREDIT_UP, CREDIT_DOWN = range(DIMS)
RDIMS = 5

#: Relative slack on constraint bounds (values within it meet the bound).
TOLERANCE = 1e-9

METRICS = ("latency", "energy", "cloud")


def within(value: float, bound: float) -> bool:
    """Whether ``value`` meets ``bound`` up to :data:`TOLERANCE`."""
    return value <= bound + TOLERANCE * max(abs(bound), 1.0)


def weights(metric: str, link: Network, slowdown: float) -> list[float]:
    """``w`` such that ``metric = w · usage`` on the link ``link`` with cloud ``slowdown``.

    Bytes a burst carries (``CREDIT_UP`` / ``CREDIT_DOWN``) give back their time at the rate and the base power
    ``beta`` over it; the radio still spends ``alpha`` per bit on them."""
    w = [0.0] * DIMS
    if metric == "latency":
        w[MOBILE_MS] = 1.0
        w[CLOUD_MS] = slowdown
        w[BYTES_UP] = 8.0 / (link.up_mbps * 1e3)
        w[BYTES_DOWN] = 8.0 / (link.down_mbps * 1e3)
        w[SWITCHES] = link.rtt_ms
        w[CODEC_MS] = 1.0
        w[CREDIT_UP] = -w[BYTES_UP]
        w[CREDIT_DOWN] = -w[BYTES_DOWN]
    elif metric == "energy":
        w[MOBILE_MJ] = 1.0
        w[BYTES_UP] = 8.0 * (link.alpha_up * link.up_mbps + link.beta) / (link.up_mbps * 1e6)
        w[BYTES_DOWN] = 8.0 * (link.alpha_down * link.down_mbps + link.beta) / (link.down_mbps * 1e6)
        w[CODEC_MJ] = 1.0
        w[CREDIT_UP] = -8e-6 * link.beta / link.up_mbps
        w[CREDIT_DOWN] = -8e-6 * link.beta / link.down_mbps
    elif metric == "cloud":
        w[CLOUD_MS] = slowdown
    else:
        raise ConfigError(f"unknown metric {metric!r}")
    return w


def dot(w: Sequence[float], u: Sequence[float]) -> float:
    """``w · u``."""
    return sum(a * b for a, b in zip(w, u))


def reduce(u: Sequence[float], radio: Radio) -> tuple[float, float, float, float, float]:
    """Reduced coordinates ``[L0, E0, bytes_up, bytes_down, cloud_ms]`` for a fixed radio; the byte coordinates are
    the bytes sent at the rate (less the burst's credit)."""
    return (
        u[MOBILE_MS] + radio.rtt_ms * u[SWITCHES] + u[CODEC_MS],
        u[MOBILE_MJ] + u[CODEC_MJ] + 8e-6 * (radio.alpha_up * u[BYTES_UP] + radio.alpha_down * u[BYTES_DOWN]),
        u[BYTES_UP] - u[CREDIT_UP],
        u[BYTES_DOWN] - u[CREDIT_DOWN],
        u[CLOUD_MS],
    )


def reduced_weights(metric: str, radio: Radio, up_mbps: float, down_mbps: float, slowdown: float) -> list[float]:
    """``c`` with ``metric = c · reduce(usage)`` at the given bandwidths and slowdown."""
    if metric == "latency":
        return [1.0, 0.0, 8.0 / (up_mbps * 1e3), 8.0 / (down_mbps * 1e3), slowdown]
    if metric == "energy":
        return [0.0, 1.0, 8e-6 * radio.beta / up_mbps, 8e-6 * radio.beta / down_mbps, 0.0]
    if metric == "cloud":
        return [0.0, 0.0, 0.0, 0.0, slowdown]
    raise ConfigError(f"unknown metric {metric!r}")
