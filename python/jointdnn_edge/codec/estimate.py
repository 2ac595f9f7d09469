"""Ratio estimates and the planner hook (the codec ``auto`` picks is :mod:`.choice`'s).

* :func:`estimate_ratio` predicts one codec's compression ratio on a tensor
  from a sample of it.
* :func:`profile_codec` measures, on sample activations of each layer, the
  real frame sizes and encode/decode times on this machine, and
  :func:`compress_costs` folds such a profile into a :class:`CostTable`:
  compressed ``out_bytes``/``input_bytes`` and per-transfer codec time and
  mobile energy (``codec_ms``/``codec_mj``), the way the JointDNN paper adds
  the compression cost into its formulation (section 4.2).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..costs import DEFAULT_MOBILE_POWER_MW, CostTable
from ..errors import CodecError, ConfigError
from . import codecs as _c
from .choice import zero_ratio
from .frame import decode, encode, read_headers
from .quantize import QuantizedTensor, is_float, quantize

if TYPE_CHECKING:
    from ..models import Executor, ModelGraph

__all__ = [
    "estimate_ratio",
    "CodecStats",
    "CodecProfile",
    "profile_codec",
    "compress_costs",
    "layer_samples",
]


def _sample(a: np.ndarray, sample_bytes: int) -> np.ndarray:
    """A part of ``a`` of about ``sample_bytes`` that keeps its local structure.

    Whole 2-D planes (channels) evenly spread over the tensor when they fit,
    else evenly spread contiguous runs of the flattened tensor.
    """
    if a.nbytes <= sample_bytes:
        return a
    k = a.dtype.itemsize
    if a.ndim >= 3:
        h, w = a.shape[-2], a.shape[-1]
        plane = h * w * k
        if 0 < plane <= sample_bytes:
            planes = a.reshape(-1, h, w)
            count = max(1, sample_bytes // plane)
            idx = np.linspace(0, planes.shape[0] - 1, count).round().astype(np.intp)
            return planes[np.unique(idx)]
    flat = a.reshape(-1)
    runs = 16
    length = max(1, sample_bytes // (k * runs))
    starts = np.linspace(0, flat.size - length, runs).round().astype(np.intp)
    return np.concatenate([flat[s : s + length] for s in np.unique(starts)])


def estimate_ratio(
    tensor: np.ndarray | QuantizedTensor,
    codec: str = "auto",
    *,
    level: int = _c.DEFAULT_LEVEL,
    quantize_bits: int | None = None,
    sample_bytes: int = 1 << 20,
) -> float:
    """Expected ``tensor.nbytes / payload bytes`` of ``codec`` on ``tensor``.

    Exact (the tensor is encoded) up to ``sample_bytes``; larger tensors are
    estimated from a structure-preserving sample of that size. With
    ``quantize_bits`` the ratio includes the quantization's own reduction
    (float32 to 8 bits alone is 4x). Frame headers (about 50 bytes a tensor)
    are not counted; :func:`profile_codec` measures whole frames.
    """
    if isinstance(tensor, QuantizedTensor):
        a, orig_itemsize = np.asarray(tensor.q), np.dtype(tensor.dtype).itemsize
    else:
        a = np.asarray(tensor)
        orig_itemsize = a.dtype.itemsize
    if a.size == 0:
        return 1.0
    s = _sample(np.ascontiguousarray(a), sample_bytes)
    value: Any = s
    if isinstance(tensor, QuantizedTensor):
        value = QuantizedTensor(np.ascontiguousarray(s), tensor.lo, tensor.hi, tensor.bits, tensor.dtype)
    elif quantize_bits is not None and is_float(a.dtype):
        value = quantize(s, quantize_bits)
    payload = read_headers(encode({"t": value}, codec=codec, level=level))[0].payload_bytes
    return float(s.size * orig_itemsize / max(1, payload))


# --------------------------------------------------------------- profiling
@dataclass(frozen=True)
class CodecStats:
    """Measured codec behaviour on one layer's output (means over the sample inputs)."""

    #: bytes of the output as the layer produces it
    raw_bytes: float
    #: bytes of the frame actually sent
    encoded_bytes: float
    #: time to encode one output on the machine that measured it (median of repeats, mean over samples)
    encode_ms: float
    #: time to decode one frame
    decode_ms: float
    zero_ratio: float
    samples: int
    #: codec of each tensor in the last sample's frame
    codecs: tuple[str, ...] = ()

    @property
    def ratio(self) -> float:
        """``raw_bytes / encoded_bytes``."""
        return self.raw_bytes / self.encoded_bytes if self.encoded_bytes else 1.0


@dataclass(frozen=True)
class CodecProfile:
    """Per-layer codec measurements: key ``-1`` is the model input, ``k`` layer ``k``'s output."""

    stats: Mapping[int, CodecStats]
    codec: str = "auto"
    level: int = _c.DEFAULT_LEVEL
    quantize_bits: int | None = None
    #: what measured it (free text; defaults to the host's platform string)
    device: str = field(default_factory=platform.platform)

    def ratios(self) -> dict[int, float]:
        """Expected compression ratio per layer key."""
        return {k: s.ratio for k, s in self.stats.items()}

    def scaled(self, encode: float = 1.0, decode: float = 1.0, device: str | None = None) -> CodecProfile:
        """The same sizes with times multiplied (e.g. a phone measured ``encode``x slower than this host)."""
        if not (encode > 0 and decode > 0 and math.isfinite(encode) and math.isfinite(decode)):
            raise ConfigError("time factors must be positive and finite")
        stats = {
            k: replace(s, encode_ms=s.encode_ms * encode, decode_ms=s.decode_ms * decode) for k, s in self.stats.items()
        }
        return replace(self, stats=stats, device=self.device if device is None else device)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "format": "jointdnn-edge/codec-profile",
            "version": 1,
            "codec": self.codec,
            "level": self.level,
            "quantize_bits": self.quantize_bits,
            "device": self.device,
            "stats": {str(k): {**asdict(s), "codecs": list(s.codecs)} for k, s in sorted(self.stats.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CodecProfile:
        """Inverse of :meth:`to_dict`; :class:`CodecError` on a malformed document."""
        if d.get("format") != "jointdnn-edge/codec-profile" or d.get("version") != 1:
            raise CodecError("not a version-1 codec profile")
        try:
            stats = {int(k): CodecStats(**{**v, "codecs": tuple(v.get("codecs", ()))}) for k, v in d["stats"].items()}
            return cls(stats, str(d["codec"]), int(d["level"]), d.get("quantize_bits"), str(d.get("device", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise CodecError(f"malformed codec profile: {type(e).__name__}: {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CodecProfile:
        """Read a profile written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_dict(json.load(f))
        except json.JSONDecodeError as e:
            raise CodecError(f"{path}: not JSON: {e}") from None


def _bundle(sample: Any) -> dict[str, Any]:
    if isinstance(sample, Mapping):
        return dict(sample)
    return {"t": sample}


def profile_codec(
    samples: Mapping[int, Sequence[Any]],
    *,
    codec: str = "auto",
    level: int = _c.DEFAULT_LEVEL,
    quantize_bits: int | None = None,
    repeats: int = 3,
    device: str | None = None,
) -> CodecProfile:
    """Measure sizes and codec times per layer on sample activations.

    ``samples[k]`` lists sample outputs of layer ``k`` (``-1``: the model
    input), each an array or a mapping of names to arrays (a layer's output
    bundle, sent as one frame). Every sample is encoded and decoded
    ``repeats`` times; the median time counts. The decoded tensors are
    checked against the originals (lossless codecs) so a broken codec cannot
    produce a flattering profile.
    """
    if repeats < 1:
        raise ConfigError("repeats must be >= 1")
    out: dict[int, CodecStats] = {}
    for key, lst in samples.items():
        lst = list(lst)
        if not lst:
            raise ConfigError(f"layer {key}: no samples")
        raw, enc, ems, dms, zrs = [], [], [], [], []
        names: tuple[str, ...] = ()
        for sample in lst:
            bundle = _bundle(sample)
            raw.append(sum(np.asarray(v).nbytes for v in bundle.values()))
            te, td = [], []
            frame = b""
            for _ in range(repeats):
                t0 = time.perf_counter()
                frame = encode(bundle, codec=codec, level=level, quantize_bits=quantize_bits)
                t1 = time.perf_counter()
                back = decode(frame, max_bytes=max(1, 8 * raw[-1]))
                t2 = time.perf_counter()
                te.append(t1 - t0)
                td.append(t2 - t1)
            if quantize_bits is None:
                for name, v in bundle.items():
                    a = np.ascontiguousarray(np.asarray(v))
                    b = back[name]
                    same = b.shape == a.shape and b.tobytes() == a.tobytes()
                    if not same:
                        raise CodecError(f"layer {key}: tensor {name!r} did not survive the round trip")
            enc.append(len(frame))
            ems.append(statistics.median(te) * 1e3)
            dms.append(statistics.median(td) * 1e3)
            zrs.append(statistics.fmean(zero_ratio(np.asarray(v)) for v in bundle.values()) if bundle else 0.0)
            names = tuple(e.codec for e in read_headers(frame))
        out[int(key)] = CodecStats(
            raw_bytes=statistics.fmean(raw),
            encoded_bytes=statistics.fmean(enc),
            encode_ms=statistics.fmean(ems),
            decode_ms=statistics.fmean(dms),
            zero_ratio=statistics.fmean(zrs),
            samples=len(lst),
            codecs=names,
        )
    return CodecProfile(out, codec, level, quantize_bits, platform.platform() if device is None else device)


def compress_costs(
    table: CostTable,
    mobile: CodecProfile,
    cloud: CodecProfile | None = None,
    *,
    mobile_power_mw: float = DEFAULT_MOBILE_POWER_MW,
) -> CostTable:
    """``table`` with compressed transfer sizes and codec costs from measured profiles.

    For every layer key ``k`` in ``mobile`` (``-1``: the model input):
    the transferred size becomes the table's size divided by the measured
    ratio; an upload costs ``mobile.encode_ms + cloud.decode_ms`` of codec time
    and ``mobile.encode_ms * mobile_power_mw`` of mobile energy, a download
    ``cloud.encode_ms + mobile.decode_ms`` and ``mobile.decode_ms *
    mobile_power_mw``. ``mobile`` should be measured on (or scaled to, see
    :meth:`CodecProfile.scaled`) the mobile device and ``cloud`` on the
    server; without ``cloud`` the mobile timings stand in for both. Layers
    missing from the profile keep their sizes and codec costs.
    """
    cloud = mobile if cloud is None else cloud
    if not (math.isfinite(mobile_power_mw) and mobile_power_mw >= 0):
        raise ConfigError(f"mobile_power_mw must be finite and >= 0, got {mobile_power_mw!r}")
    n = table.n
    out_bytes = np.array(table.out_bytes, dtype=np.float64)
    input_bytes = float(table.input_bytes)
    codec_ms = np.array(table.codec_ms, dtype=np.float64)
    codec_mj = np.array(table.codec_mj, dtype=np.float64)
    for k, s in mobile.stats.items():
        if not -1 <= k < n:
            raise ConfigError(f"profile has layer {k}, the table has layers 0..{n - 1} (and -1, the model input)")
        c = cloud.stats.get(k, s)
        if k == -1:
            input_bytes = input_bytes / s.ratio
        else:
            out_bytes[k] = out_bytes[k] / s.ratio
        row = k + 1
        codec_ms[row, 0] = s.encode_ms + c.decode_ms
        codec_ms[row, 1] = c.encode_ms + s.decode_ms
        codec_mj[row, 0] = s.encode_ms * mobile_power_mw / 1e3
        codec_mj[row, 1] = s.decode_ms * mobile_power_mw / 1e3
    meta = dict(table.meta)
    meta["codec"] = {
        "codec": mobile.codec,
        "level": mobile.level,
        "quantize_bits": mobile.quantize_bits,
        "device": mobile.device,
    }
    return table.replace(out_bytes=out_bytes, input_bytes=input_bytes, codec_ms=codec_ms, codec_mj=codec_mj, meta=meta)


def layer_samples(
    graph: ModelGraph,
    inputs: Sequence[Mapping[str, np.ndarray]],
    *,
    executor: Executor | None = None,
    include_input: bool = True,
) -> dict[int, list[dict[str, np.ndarray]]]:
    """Every layer's output bundle on each sample input, in the form :func:`profile_codec` takes.

    Runs ``graph`` one layer at a time with ``executor`` (default: the
    graph format's executor from :func:`jointdnn_edge.models.executor_for`),
    so that each layer's bundle is exactly what a split after that layer
    would send. Key ``-1`` holds the model inputs unless ``include_input`` is
    false. Meant for profiling on a few samples, not for serving.
    """
    from ..models import executor_for

    ex = executor if executor is not None else executor_for(graph)
    out: dict[int, list[dict[str, np.ndarray]]] = {}
    for feeds in inputs:
        env: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in feeds.items()}
        if include_input:
            out.setdefault(-1, []).append({t.name: env[t.name] for t in graph.inputs})
        for layer in graph.layers:
            ins, outs = graph.slice_io(layer.index, layer.index)
            res = ex.run(graph, layer.index, layer.index, {k: env[k] for k in ins})
            env.update(res)
            out.setdefault(layer.index, []).append({k: res[k] for k in outs})
    return out
