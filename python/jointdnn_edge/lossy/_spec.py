"""What a lossy option is: a recipe (:class:`LossyOption`) and, fitted on activations, a spec (:class:`LossySpec`).

The spec is the contract between the phone and the cloud: both sides read the
same JSON (``to_json()`` / ``from_json()``), which carries every fitted
parameter (the channel projection's mean and components, the clip ranges), so
the decoder needs nothing but the spec, the bytes and the tensor's shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "SPEC_FORMAT",
    "SPEC_VERSION",
    "CLIP_METHODS",
    "GRANULARITIES",
    "LossyOption",
    "LossySpec",
    "Projection",
    "fit",
    "parse_option",
]

SPEC_FORMAT = "jointdnn-lossy"
SPEC_VERSION = 1
#: How the clip range of each quantized channel (or of the whole tensor) is chosen on the samples.
CLIP_METHODS = ("minmax", "percentile", "mse")
GRANULARITIES = ("tensor", "channel")
#: Percentile pairs ``(q, 100 - q)`` the ``mse`` method chooses among (0: the min/max range).
_MSE_PERCENTILES = (0.0, 0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0)
#: Samples subsampled to at most this many rows per channel when choosing clips (keeps fitting fast).
_MAX_CLIP_ROWS = 200_000


@dataclass(frozen=True)
class LossyOption:
    """An unfitted recipe: ``bits`` (1..8, or None: floats sent losslessly), ``granularity``, ``clip``, ``keep``.

    ``keep`` is the channel projection's size: None (no projection), an int
    (channels kept) or a float in (0, 1] (that fraction of the channels,
    rounded up).
    """

    bits: int | None = 8
    granularity: str = "tensor"
    clip: str = "mse"
    percentile: float = 0.01
    keep: int | float | None = None

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        _check_choice("granularity", self.granularity, GRANULARITIES)
        _check_choice("clip", self.clip, CLIP_METHODS)
        if not (isinstance(self.percentile, (int, float)) and 0.0 <= self.percentile < 50.0):
            raise ConfigError(f"percentile must be in [0, 50), got {self.percentile!r}")
        k = self.keep
        if k is not None and (
            isinstance(k, bool)
            or not isinstance(k, (int, float))
            or (isinstance(k, int) and k < 1)
            or (isinstance(k, float) and not 0.0 < k <= 1.0)
        ):
            raise ConfigError(f"keep must be None, a channel count >= 1 or a fraction in (0, 1], got {k!r}")
        if self.bits is None and k is None:
            raise ConfigError("an option needs quantization bits, a projection (keep) or both")

    def kept(self, channels: int) -> int | None:
        """Channels the projection keeps out of ``channels`` (None: no projection)."""
        if self.keep is None:
            return None
        k = self.keep if isinstance(self.keep, int) else math.ceil(self.keep * channels)
        return max(1, min(int(k), channels))

    @property
    def label(self) -> str:
        """Short name, the inverse of :func:`parse_option` (``pca0.25+q4c``, ``q8``)."""
        parts = []
        if self.keep is not None:
            parts.append(f"pca{self.keep}")
        if self.bits is not None:
            parts.append(f"q{self.bits}{'c' if self.granularity == 'channel' else ''}")
        return "+".join(parts)


_OPTION_RE = re.compile(r"^(?:pca(?P<keep>\d+(?:\.\d+)?)(?:\+(?=q)|$))?(?:q(?P<bits>\d+)(?P<c>c?))?$")


def parse_option(text: str, *, clip: str = "mse") -> LossyOption:
    """``q8`` (8 bits per tensor), ``q4c`` (per channel), ``pca64`` / ``pca0.25`` (keep 64 channels / a quarter),
    combined with ``+`` (``pca0.25+q4c``). :class:`ConfigError` for anything else."""
    m = _OPTION_RE.match(text.strip())
    if not text.strip() or m is None or (m["keep"] is None and m["bits"] is None):
        raise ConfigError(f"bad lossy option {text!r}: expected e.g. q8, q4c, pca64, pca0.25+q4c")
    keep: int | float | None = None
    if m["keep"] is not None:
        keep = float(m["keep"]) if "." in m["keep"] else int(m["keep"])
    bits = int(m["bits"]) if m["bits"] is not None else None
    try:
        return LossyOption(bits=bits, granularity="channel" if m["c"] else "tensor", clip=clip, keep=keep)
    except ConfigError as e:
        raise ConfigError(f"bad lossy option {text!r}: {e}") from None


@dataclass(frozen=True, eq=False)
class Projection:
    """A channel projection: ``y = (x - mean) @ components.T`` on the phone, ``x ≈ y @ components + mean`` back."""

    #: ``(C,)`` float64
    mean: np.ndarray
    #: ``(k, C)`` float64, orthonormal rows (principal directions, largest variance first)
    components: np.ndarray

    @property
    def k(self) -> int:
        return int(self.components.shape[0])


@dataclass(frozen=True, eq=False)
class LossySpec:
    """A fitted lossy option for one tensor; what both sides read (see ``docs/lossy.md``).

    ``axis``/``channels``: the channel axis of the tensor and its size;
    ``projection``: None or the fitted channel projection; ``bits``: None
    (floats sent losslessly) or 1..8; ``lo``/``hi``: the clip range, one
    value (per tensor) or one per coded channel (per channel).
    """

    axis: int
    channels: int
    bits: int | None
    granularity: str
    clip: str
    lo: np.ndarray
    hi: np.ndarray
    projection: Projection | None = None

    def __post_init__(self) -> None:
        _check_bits(self.bits)
        _check_choice("granularity", self.granularity, GRANULARITIES)
        _check_choice("clip", self.clip, CLIP_METHODS)
        if self.bits is None:  # nothing quantized: one canonical form, so equal specs have equal JSON
            object.__setattr__(self, "granularity", "tensor")
            object.__setattr__(self, "clip", "minmax")
        object.__setattr__(self, "lo", np.asarray(self.lo, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "hi", np.asarray(self.hi, dtype=np.float64).reshape(-1))
        if isinstance(self.axis, bool) or not isinstance(self.axis, int) or not 0 <= self.axis < 32:
            raise ConfigError(f"spec axis must be an integer in 0..31, got {self.axis!r}")
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) or self.channels < 1:
            raise ConfigError(f"spec channels must be a positive integer, got {self.channels!r}")
        p = self.projection
        if p is not None:
            if p.mean.shape != (self.channels,) or p.components.ndim != 2 or p.components.shape[1] != self.channels:
                raise ConfigError(
                    f"projection of shape mean {p.mean.shape}, components {p.components.shape} "
                    f"does not fit {self.channels} channels"
                )
            if not 1 <= p.k <= self.channels:
                raise ConfigError(f"projection keeps {p.k} of {self.channels} channels")
            if not (np.isfinite(p.mean).all() and np.isfinite(p.components).all()):
                raise ConfigError("projection parameters must be finite")
        if self.bits is not None:
            ranges = 1 if self.granularity == "tensor" else self.coded_channels
            if self.lo.shape != (ranges,) or self.hi.shape != (ranges,):
                raise ConfigError(f"{self.granularity} quantization needs {ranges} clip range(s), got {self.lo.shape}")
            if not (np.isfinite(self.lo).all() and np.isfinite(self.hi).all() and (self.lo <= self.hi).all()):
                raise ConfigError("clip ranges must be finite with lo <= hi")
        elif self.projection is None:
            raise ConfigError("a spec needs quantization bits, a projection or both")

    @property
    def coded_channels(self) -> int:
        """Channels on the wire: the projection's k, else the tensor's C."""
        return self.projection.k if self.projection is not None else self.channels

    @property
    def steps(self) -> np.ndarray:
        """Quantization step of each clip range (``(hi - lo) / (2**bits - 1)``); empty when not quantized."""
        if self.bits is None:
            return np.zeros(0)
        return np.asarray((self.hi - self.lo) / float((1 << self.bits) - 1))

    def coded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape sent for a tensor of ``shape`` (C replaced by k); :class:`ConfigError` if it does not fit."""
        shape = tuple(int(d) for d in shape)
        if self.axis >= len(shape) or shape[self.axis] != self.channels:
            raise ConfigError(f"spec for {self.channels} channels on axis {self.axis} does not fit shape {shape}")
        return shape[: self.axis] + (self.coded_channels,) + shape[self.axis + 1 :]

    def describe(self) -> dict[str, Any]:
        """The option without its fitted arrays (what a results table shows)."""
        return {
            "bits": self.bits,
            "granularity": self.granularity,
            "clip": self.clip,
            "keep": None if self.projection is None else self.projection.k,
            "channels": self.channels,
        }

    @property
    def label(self) -> str:
        keep = self.projection.k if self.projection is not None else None
        return LossyOption(
            bits=self.bits, granularity=self.granularity, keep=keep, clip=self.clip
        ).label  # same naming as the recipe, with the absolute k

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values (floats as float64 ``repr``, so a round trip is exact)."""
        proj = None
        if self.projection is not None:
            proj = {
                "k": self.projection.k,
                "mean": [float(v) for v in self.projection.mean],
                "components": [[float(v) for v in row] for row in self.projection.components],
            }
        quant = None
        if self.bits is not None:
            quant = {
                "bits": self.bits,
                "granularity": self.granularity,
                "clip": self.clip,
                "lo": [float(v) for v in self.lo],
                "hi": [float(v) for v in self.hi],
            }
        return {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "axis": self.axis,
            "channels": self.channels,
            "projection": proj,
            "quantization": quant,
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal specs give equal strings and the same :attr:`digest`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def digest(self) -> bytes:
        """First 8 bytes of the SHA-256 of :meth:`to_json`; encoded bytes carry it, so a mismatched spec is caught."""
        return hashlib.sha256(self.to_json().encode("utf-8")).digest()[:8]

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> LossySpec:
        """Read a spec; :class:`ConfigError` for malformed JSON, another format or version, or bad parameters."""
        try:
            d = json.loads(text) if isinstance(text, (str, bytes)) else text
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"lossy spec is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ConfigError("lossy spec must be a JSON object")
        if d.get("format") != SPEC_FORMAT:
            raise ConfigError(f"not a lossy spec (format {d.get('format')!r}, expected {SPEC_FORMAT!r})")
        if d.get("version") != SPEC_VERSION:
            raise ConfigError(f"lossy spec version {d.get('version')!r} is not supported (this reads {SPEC_VERSION})")
        try:
            proj = None
            if d.get("projection") is not None:
                p = d["projection"]
                proj = Projection(_floats(p["mean"], 1), _floats(p["components"], 2))
                if p["k"] != proj.k:
                    raise ConfigError(f"projection k={p['k']!r} but {proj.k} components")
            q = d.get("quantization")
            if q is not None:
                bits, gran, clip = q["bits"], q["granularity"], q["clip"]
                lo, hi = _floats(q["lo"], 1), _floats(q["hi"], 1)
            else:
                bits, gran, clip = None, "tensor", "minmax"
                lo = hi = np.zeros(0)
            return cls(d["axis"], d["channels"], bits, gran, clip, lo, hi, proj)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"malformed lossy spec: {type(e).__name__}: {e}") from None


def _floats(value: Any, ndim: int) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != ndim:
        raise ConfigError(f"expected a {ndim}-D list of numbers, got {a.ndim}-D")
    return a


def _check_bits(bits: Any) -> None:
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8):
        raise ConfigError(f"lossy bits must be None or an integer in 1..8, got {bits!r}")


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {choices}")


# ---------------------------------------------------------------- fitting
def channels_last(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` as rows of channels: ``(elements / C, C)``, float64."""
    return np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1).reshape(-1, x.shape[axis])


def fit_projection(rows: np.ndarray, k: int) -> Projection:
    """PCA over channels: the mean and the ``k`` eigenvectors of the channel covariance with the largest eigenvalues."""
    mean = rows.mean(axis=0)
    centred = rows - mean
    cov = centred.T @ centred / max(1, rows.shape[0])
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1][:k]
    comps = vectors[:, order].T
    # A deterministic sign per component (eigenvectors are defined up to sign): largest entry positive.
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return Projection(mean, comps * signs[:, None])


def _range_mse(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Mean squared quantization error per column of ``rows`` with clip range ``[lo, hi]`` (column-wise)."""
    levels = (1 << bits) - 1
    step = (hi - lo) / levels
    safe = np.where(step > 0, step, 1.0)
    q = np.clip(np.rint((rows - lo) / safe), 0, levels)
    back = lo + q * step
    return np.asarray(np.mean((back - rows) ** 2, axis=0))


def fit_clip(rows: np.ndarray, bits: int, method: str, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip range per column of ``rows``: min/max, a percentile pair, or the MSE-best of a few percentile pairs."""
    if method == "minmax":
        return rows.min(axis=0), rows.max(axis=0)
    if method == "percentile":
        return np.percentile(rows, percentile, axis=0), np.percentile(rows, 100.0 - percentile, axis=0)
    best_lo, best_hi, best_err = rows.min(axis=0), rows.max(axis=0), None
    for p in _MSE_PERCENTILES:
        lo, hi = np.percentile(rows, p, axis=0), np.percentile(rows, 100.0 - p, axis=0)
        err = _range_mse(rows, lo, hi, bits)
        if best_err is None:
            best_lo, best_hi, best_err = lo, hi, err
            continue
        better = err < best_err
        best_lo, best_hi, best_err = (
            np.where(better, lo, best_lo),
            np.where(better, hi, best_hi),
            np.minimum(err, best_err),
        )
    return best_lo, best_hi


def fit(samples: Any, option: LossyOption | str, *, axis: int = 1) -> LossySpec:
    """Fit ``option`` on sample activations of one tensor: ``samples`` is one array or a list of same-shaped arrays.

    The projection (if any) is fitted first, then the clip ranges on the
    projected samples, so the quantizer sees what it will code.
    :class:`ConfigError` for an empty, non-finite or ill-shaped sample set.
    """
    opt = parse_option(option) if isinstance(option, str) else option
    arrays = [np.asarray(s) for s in (samples if isinstance(samples, (list, tuple)) else [samples])]
    if not arrays or any(a.shape != arrays[0].shape for a in arrays) or arrays[0].size == 0:
        raise ConfigError("fit needs one or more non-empty sample arrays of the same shape")
    ndim = arrays[0].ndim
    if not -ndim <= axis < ndim:
        raise ConfigError(f"axis {axis} is outside a {ndim}-D tensor")
    axis %= ndim
    rows = np.concatenate([channels_last(a, axis) for a in arrays])
    if not np.isfinite(rows).all():
        raise ConfigError("sample activations hold NaN or infinity")
    channels = rows.shape[1]
    k = opt.kept(channels)
    proj = fit_projection(rows, k) if k is not None else None
    coded = (rows - proj.mean) @ proj.components.T if proj is not None else rows
    if opt.bits is None:
        lo = hi = np.zeros(0)
    else:
        if coded.shape[0] > _MAX_CLIP_ROWS:  # a fixed, seeded subsample: fitting is reproducible
            pick = np.random.default_rng(0).choice(coded.shape[0], _MAX_CLIP_ROWS, replace=False)
            coded = coded[np.sort(pick)]
        cols = coded if opt.granularity == "channel" else coded.reshape(-1, 1)
        lo, hi = fit_clip(cols, opt.bits, opt.clip, opt.percentile)
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    return LossySpec(axis, channels, opt.bits, opt.granularity, opt.clip, lo, hi, proj)
