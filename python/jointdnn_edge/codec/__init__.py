"""Lossless activation codec and its wire format (``docs/wire-format.md``).

Communication dominates a split DNN's cost, so activations sent between the
mobile and the cloud are packed into a self-describing *frame*: several named
tensors, each with its dtype, shape, codec and a checksum of its bytes.

>>> import numpy as np
>>> from jointdnn_edge import codec
>>> x = np.maximum(np.random.default_rng(0).standard_normal((1, 8, 16, 16), np.float32), 0)
>>> frame = codec.encode({"conv1": x})
>>> bool(np.array_equal(codec.decode(frame)["conv1"], x))
True

Codecs (:data:`CODECS`): ``raw``; ``zstd`` with a byte-shuffle (multi-byte
elements) or delta (bytes) filter; ``sparse`` (zero bitmap plus the non-zero
elements, both zstd-compressed) for post-ReLU tensors; ``png``, the JointDNN
paper's method (8-bit channels tiled into one grayscale image), kept as the
baseline; ``auto`` picks per tensor. Everything is lossless bit for bit;
quantization (:func:`quantize`) is separate, explicit and lossy.

:func:`decode` is safe on untrusted bytes: it never allocates more than
``max_bytes`` for tensors (:class:`jointdnn_edge.FrameTooLargeError` for a
frame over it) and raises :class:`jointdnn_edge.CodecError` on anything
malformed. Bad options (an unknown codec name, a bad level) are
:class:`jointdnn_edge.ConfigError`. :func:`profile_codec` and :func:`compress_costs` feed
measured compressed sizes and codec times into a :class:`~jointdnn_edge.CostTable`.
"""

from __future__ import annotations

from .choice import SPARSE_MIN_ZERO_RATIO, zero_ratio
from .codecs import DEFAULT_LEVEL
from .estimate import CodecProfile, CodecStats, compress_costs, estimate_ratio, layer_samples, profile_codec
from .frame import (
    CHECKSUMS,
    CODECS,
    DEFAULT_MAX_BYTES,
    WIRE_DTYPES,
    FrameEntry,
    QuantParams,
    decode,
    encode,
    read_headers,
)
from .quantize import QuantizationError, QuantizedTensor, dequantize, quantization_error, quantize

__all__ = [
    "CHECKSUMS",
    "CODECS",
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_BYTES",
    "SPARSE_MIN_ZERO_RATIO",
    "WIRE_DTYPES",
    "CodecProfile",
    "CodecStats",
    "FrameEntry",
    "QuantParams",
    "QuantizationError",
    "QuantizedTensor",
    "compress_costs",
    "decode",
    "dequantize",
    "encode",
    "estimate_ratio",
    "layer_samples",
    "profile_codec",
    "quantization_error",
    "quantize",
    "read_headers",
    "zero_ratio",
]
