"""Tensors across the bridge: JSON metadata plus one little-endian, C-order buffer per tensor.

numpy, zstandard (and the codec) are imported only when a frame is handled,
so plan-only apps without them can still load this package.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import CodecError
from ._marshal import as_bytes, parse_json


def codec_module() -> Any:
    """The codec package, or a CodecError saying what to install (it needs numpy and zstandard)."""
    try:
        from .. import codec
    except ImportError as e:
        raise CodecError(f"the activation codec needs numpy and zstandard ({e})") from None
    return codec


def _tensor_specs(tensors_json: Any) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = parse_json(tensors_json, "tensors", list, CodecError)
    for i, t in enumerate(specs):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("dtype"), str):
            raise CodecError(f"tensor {i}: needs a string name and dtype")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CodecError(f"tensor {t['name']!r}: shape must be a list of non-negative integers")
    return specs


def _dtype(name: str, tensor: str) -> Any:
    """The little-endian numpy dtype of a wire dtype name (``codec.WIRE_DTYPES``; bfloat16 through ml_dtypes)."""
    import numpy as np

    if name not in codec_module().WIRE_DTYPES.values():
        raise CodecError(f"tensor {tensor!r}: unknown dtype {name!r}")
    if name != "bfloat16":
        return np.dtype(name).newbyteorder("<")
    try:
        import ml_dtypes
    except ImportError:
        raise CodecError(f"tensor {tensor!r}: bfloat16 needs the ml_dtypes package") from None
    return np.dtype(ml_dtypes.bfloat16)


def arrays(tensors_json: Any, blobs: Any) -> dict[str, Any]:
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
        data = as_bytes(buf, f"buffer of tensor {name!r}")
        want = math.prod(spec["shape"]) * dt.itemsize
        if len(data) != want:
            raise CodecError(f"tensor {name!r}: {len(data)} bytes given, {spec['shape']} {spec['dtype']} needs {want}")
        out[name] = np.frombuffer(data, dtype=dt).reshape(spec["shape"])
    return out


def flatten(named: Mapping[str, Any]) -> list[Any]:
    """``[metadata JSON, buffer, buffer, ...]``: the Java-friendly form of named arrays."""
    import numpy as np

    meta, bufs = [], []
    for name, a in named.items():
        a = np.asarray(a)
        meta.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape)})
        le = a.astype(a.dtype.newbyteorder("<"), copy=False) if a.dtype.byteorder == ">" else a
        bufs.append(np.ascontiguousarray(le).tobytes())
    return [json.dumps(meta), *bufs]


def describe_headers(entries: Any) -> list[dict[str, Any]]:
    """A frame's tensor headers (``codec.read_headers``) as plain JSON values."""
    return [
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
