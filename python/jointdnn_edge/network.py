"""The mobile link: bandwidth and the JointDNN paper's linear radio power model.

Eshratifar, Abrishami, Pedram, arXiv 1801.08618, Eq. 21 and Table 3. This
module has no third-party imports, so that lookup tables can be read and
queried where numpy is not installed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .errors import ConfigError

__all__ = ["NETWORK_PRESETS", "Network", "Radio"]


def _is_real(v: object) -> bool:
    """A real number: int, float, or a numpy scalar (numpy registers them as numbers.Real); not bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class Radio(NamedTuple):
    """The bandwidth-independent part of a link: the paper's radio power model, the round trip and the burst.

    ``alpha_up`` / ``alpha_down``: mW per Mbit/s while uploading / downloading;
    ``beta``: base radio power (mW); ``rtt_ms``: one round trip per platform
    switch; ``burst_up_bytes`` / ``burst_down_bytes``: the bytes of a request /
    a response that a shaped link passes at once (a token bucket's depth), so
    that a transfer of ``b`` bytes takes ``max(0, b - burst) / rate`` (0: the
    paper's model). A lookup table is built for one radio over a range of
    bandwidths.
    The figures are checked where they are used (:meth:`with_bandwidth`, the
    planner, a lookup table), so that a table file's radio can be read first.
    """

    alpha_up: float
    alpha_down: float
    beta: float
    rtt_ms: float = 0.0
    burst_up_bytes: float = 0.0
    burst_down_bytes: float = 0.0

    @property
    def burst(self) -> tuple[float, float]:
        """``(burst_up_bytes, burst_down_bytes)``."""
        return (self.burst_up_bytes, self.burst_down_bytes)

    def without_burst(self) -> Radio:
        """This radio with no burst (every byte at the rate, as the paper prices it)."""
        return self._replace(burst_up_bytes=0.0, burst_down_bytes=0.0)

    def with_bandwidth(self, up_mbps: float, down_mbps: float, *, name: str | None = None) -> Network:
        """The link of this radio at these bandwidths (ConfigError for bad figures)."""
        return Network(up_mbps, down_mbps, *self, name=name)

    def checked(self, owner: str = "Radio") -> Radio:
        """This radio with its figures as plain floats; ConfigError (naming ``owner.field``) unless each is a
        finite number >= 0."""
        for attr, v in zip(self._fields, self):
            if not (_is_real(v) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{owner}.{attr} must be a finite number >= 0, got {v!r}")
        return Radio(*(float(v) for v in self))


@dataclass(frozen=True)
class Network:
    """A mobile link: bandwidth in Mbit/s and the paper's linear radio power model.

    Uploading ``b`` bytes takes ``8*b / (up_mbps * 1e6)`` seconds during which the
    radio draws ``alpha_up * up_mbps + beta`` mW; downloading likewise with the
    download figures. ``rtt_ms`` adds one round trip to the latency of every
    platform switch (0 in the paper). Waiting for the cloud costs the mobile no
    energy in this model, as in the paper. ``burst_up_bytes`` /
    ``burst_down_bytes`` are the bytes of each request / response the link
    passes at once (:class:`Radio`; 0 in the paper): the planner takes their
    time and the base power ``beta`` over it off each cloud run's transfers.
    ``radio`` is the bandwidth-independent part (:class:`Radio`);
    ``Network.of(radio, up, down)`` is the other way round.
    """

    up_mbps: float
    down_mbps: float
    alpha_up: float
    alpha_down: float
    beta: float
    rtt_ms: float = 0.0
    burst_up_bytes: float = 0.0
    burst_down_bytes: float = 0.0
    name: str | None = field(default=None, compare=False)
    #: The power model and round trip without the bandwidths (derived from the fields above).
    radio: Radio = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("up_mbps", "down_mbps"):
            v = getattr(self, attr)
            if not (_is_real(v) and math.isfinite(v) and v > 0):
                raise ConfigError(f"Network.{attr} must be a positive finite number, got {v!r}")
        radio = Radio(
            self.alpha_up, self.alpha_down, self.beta, self.rtt_ms, self.burst_up_bytes, self.burst_down_bytes
        ).checked("Network")
        for attr in ("up_mbps", "down_mbps"):
            v = getattr(self, attr)
            if not isinstance(v, (int, float)):  # numpy scalars (measured bandwidths) become plain floats
                object.__setattr__(self, attr, float(v))
        for attr, v in zip(radio._fields, radio):
            if not isinstance(getattr(self, attr), (int, float)):
                object.__setattr__(self, attr, v)
        object.__setattr__(self, "radio", radio)

    @classmethod
    def of(cls, radio: Radio, up_mbps: float, down_mbps: float, *, name: str | None = None) -> Network:
        """The link of ``radio`` at these bandwidths (the same as ``radio.with_bandwidth(up, down)``)."""
        return cls(up_mbps, down_mbps, *radio, name=name)

    @classmethod
    def preset(cls, name: str, *, rtt_ms: float = 0.0) -> Network:
        """The paper's Table 3 network ("3g", "4g" or "wifi"; case and dashes ignored)."""
        if not isinstance(name, str):
            raise ConfigError(f"network preset must be a name such as '4g', got {type(name).__name__}")
        key = name.lower().replace("-", "").replace("_", "")
        if key not in NETWORK_PRESETS:
            raise ConfigError(f"unknown network preset {name!r}; choose one of {sorted(NETWORK_PRESETS)}")
        return replace(NETWORK_PRESETS[key], rtt_ms=rtt_ms)

    def with_bandwidth(self, up_mbps: float, down_mbps: float) -> Network:
        """The same radio with other bandwidths (for measured or emulated links)."""
        return replace(self, up_mbps=float(up_mbps), down_mbps=float(down_mbps))

    @property
    def burst(self) -> tuple[float, float]:
        """``(burst_up_bytes, burst_down_bytes)``."""
        return (self.burst_up_bytes, self.burst_down_bytes)

    def without_burst(self) -> Network:
        """This link with no burst (every byte at the rate, as the paper prices it)."""
        return replace(self, burst_up_bytes=0.0, burst_down_bytes=0.0)

    def upload_ms(self, nbytes: float) -> float:
        """Milliseconds to upload ``nbytes`` at the link's rate (no burst)."""
        return 8.0 * nbytes / (self.up_mbps * 1e3)

    def download_ms(self, nbytes: float) -> float:
        """Milliseconds to download ``nbytes`` at the link's rate (no burst)."""
        return 8.0 * nbytes / (self.down_mbps * 1e3)

    def upload_mj(self, nbytes: float) -> float:
        """Mobile radio energy (mJ) to upload ``nbytes`` at the link's rate (no burst)."""
        return (self.alpha_up * self.up_mbps + self.beta) * self.upload_ms(nbytes) / 1e3

    def download_mj(self, nbytes: float) -> float:
        """Mobile radio energy (mJ) to download ``nbytes`` at the link's rate (no burst)."""
        return (self.alpha_down * self.down_mbps + self.beta) * self.download_ms(nbytes) / 1e3

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "up_mbps": self.up_mbps,
            "down_mbps": self.down_mbps,
            "alpha_up": self.alpha_up,
            "alpha_down": self.alpha_down,
            "beta": self.beta,
            "rtt_ms": self.rtt_ms,
            "burst_up_bytes": self.burst_up_bytes,
            "burst_down_bytes": self.burst_down_bytes,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Network:
        """Inverse of :meth:`to_dict`."""
        return cls(
            float(d["up_mbps"]),
            float(d["down_mbps"]),
            alpha_up=float(d["alpha_up"]),
            alpha_down=float(d["alpha_down"]),
            beta=float(d["beta"]),
            rtt_ms=float(d.get("rtt_ms", 0.0)),
            burst_up_bytes=float(d.get("burst_up_bytes", 0.0)),
            burst_down_bytes=float(d.get("burst_down_bytes", 0.0)),
            name=d.get("name"),
        )


#: The paper's Table 3 (average U.S. mobile networks; power model from Huang et
#: al., MobiSys'12): bandwidths in Mbit/s, alpha in mW per Mbit/s, beta in mW.
NETWORK_PRESETS: dict[str, Network] = {
    "3g": Network(1.1, 2.0275, alpha_up=868.98, alpha_down=122.12, beta=817.88, name="3g"),
    "4g": Network(5.85, 13.76, alpha_up=438.39, alpha_down=51.97, beta=1288.04, name="4g"),
    "wifi": Network(18.88, 54.97, alpha_up=283.17, alpha_down=137.01, beta=132.86, name="wifi"),
}
