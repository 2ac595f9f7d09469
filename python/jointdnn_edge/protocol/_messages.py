"""Open Inference Protocol (KServe v2) messages, shared by the cloud server and the client.

This module knows the REST encoding of the protocol and of its binary tensor
extension, and the names of the parameters that carry a JointDNN split
request (``docs/server.md`` is the normative description). It imports no
web framework, so the client side (``jointdnn_edge.client``) can use it
on a device where only httpx and numpy are installed.

Binary tensor extension, in short: a body is a JSON header followed by the
binary blobs of the tensors that declare ``parameters.binary_data_size``, in
the order they appear in the header; the header's length in bytes travels in
the ``Inference-Header-Content-Length`` HTTP header. A ``BYTES`` tensor's
binary form is, per element, a 4-byte little-endian length and the bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ProtocolError

if TYPE_CHECKING:
    from ..models.graph import ModelGraph

#: Name the server reports in ``GET /v2``.
SERVER_NAME = "jointdnn-edge"
#: Version of the split-request parameters below (reported in ``GET /v2`` and model metadata).
PROTOCOL_VERSION = 1
#: HTTP header giving the length of the JSON part of a body with binary data.
HEADER_LENGTH = "Inference-Header-Content-Length"
#: Environment variable holding the server's bearer token.
TOKEN_ENV = "JOINTDNN_EDGE_TOKEN"
#: The one BYTES tensor (shape ``[1]``) that carries an activation frame in a split request and its response.
FRAME_TENSOR = "jointdnn_frame"

# request parameters of a split request
P_FIRST = "jointdnn_first"
P_LAST = "jointdnn_last"
P_CODEC = "jointdnn_codec"
P_LEVEL = "jointdnn_level"
P_QUANTIZE = "jointdnn_quantize_bits"
P_DIGEST = "jointdnn_digest"
#: ``[[tensor, spec digest hex], ...]``: inputs sent lossily (``docs/wire-format.md`` §9), each as one more
#: element of the frame tensor after the frame, in this order, under the spec of that digest the server holds.
P_LOSSY = "jointdnn_lossy"
# response parameters (every inference response)
R_COMPUTE = "jointdnn_compute_ms"
R_DECODE = "jointdnn_decode_ms"
R_ENCODE = "jointdnn_encode_ms"
R_QUEUE = "jointdnn_queue_ms"
R_LOAD = "jointdnn_load_ms"
R_SERVER = "jointdnn_server_ms"

_DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BY_DTYPE = {dt: name for name, dt in _DATATYPES.items()}
_LEN = struct.Struct("<I")


def datatype_of(dtype: Any) -> str:
    """The protocol datatype name of a numpy dtype (``float32`` -> ``"FP32"``; strings and bytes -> ``"BYTES"``)."""
    dt = np.dtype(dtype)
    if dt.kind in "OSU":
        return "BYTES"
    name = _BY_DTYPE.get(dt.newbyteorder("<") if dt.byteorder == ">" else dt)
    if name is None:
        raise ProtocolError(422, f"dtype {dt} has no Open Inference Protocol datatype")
    return name


def numpy_dtype(datatype: Any) -> np.dtype:
    """The little-endian numpy dtype of a protocol datatype name (not ``BYTES``)."""
    if not isinstance(datatype, str) or datatype not in _DATATYPES:
        known = ", ".join([*_DATATYPES, "BYTES"])
        raise ProtocolError(400, f"unknown or unsupported datatype {datatype!r} (known: {known})")
    return _DATATYPES[datatype]


def pack_bytes(items: Sequence[bytes]) -> bytes:
    """The binary form of a BYTES tensor: each element as a 4-byte little-endian length and its bytes."""
    parts: list[bytes] = []
    for item in items:
        parts.append(_LEN.pack(len(item)))
        parts.append(bytes(item) if not isinstance(item, bytes) else item)
    return b"".join(parts)


def unpack_bytes(blob: memoryview, count: int, what: str) -> list[memoryview]:
    """The ``count`` elements of a BYTES tensor's binary form (zero-copy views); raises ProtocolError if malformed."""
    out: list[memoryview] = []
    pos = 0
    for i in range(count):
        if len(blob) - pos < 4:
            raise ProtocolError(400, f"{what}: BYTES element {i} has no length prefix (data truncated)")
        (n,) = _LEN.unpack_from(blob, pos)
        pos += 4
        if n > len(blob) - pos:
            raise ProtocolError(400, f"{what}: BYTES element {i} claims {n} bytes, only {len(blob) - pos} remain")
        out.append(blob[pos : pos + n])
        pos += n
    if pos != len(blob):
        raise ProtocolError(400, f"{what}: {len(blob) - pos} bytes after the last BYTES element")
    return out


def parse_decimal(text: str, what: str, *, max_digits: int = 18) -> int:
    """``text`` (surrounding blanks allowed) as a non-negative integer of ASCII digits only; ProtocolError (400) else.

    ``str.isdigit`` and ``int`` accept other scripts' digits and signs; an HTTP
    header or parameter must not, on either side of the wire.
    """
    digits = text.strip(" \t")
    if not (0 < len(digits) <= max_digits and digits.isascii() and digits.isdigit()):
        raise ProtocolError(400, f"{what} must be a non-negative decimal integer of at most {max_digits} digits")
    return int(digits)


def dumps_json(doc: Any) -> bytes:
    """``doc`` as compact, strict JSON (UTF-8): a non-finite number is a ValueError, never a bare ``NaN``."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def body_parts(header: Mapping[str, Any], blobs: Sequence[Any]) -> tuple[bytes, int | None]:
    """A body of ``header`` (strict JSON) and binary ``blobs``; the JSON length for the header (None without blobs)."""
    head = dumps_json(header)
    if not blobs:
        return head, None
    return b"".join([head, *(bytes(b) if not isinstance(b, bytes) else b for b in blobs)]), len(head)


def split_body(
    body: bytes | bytearray, header_length: str | None, *, max_json_bytes: int
) -> tuple[dict[str, Any], memoryview]:
    """The JSON header (an object) and the binary remainder of a body; raises ProtocolError (400/413)."""
    mv = memoryview(body)
    if header_length is None:
        json_len = len(mv)
    else:
        json_len = parse_decimal(header_length, HEADER_LENGTH)
        if json_len > len(mv):
            raise ProtocolError(400, f"{HEADER_LENGTH} is {json_len} but the body has only {len(mv)} bytes")
    if json_len > max_json_bytes:
        raise ProtocolError(413, f"JSON header of {json_len} bytes exceeds the server's limit of {max_json_bytes}")
    try:
        header = json.loads(bytes(mv[:json_len]))
    except RecursionError:
        raise ProtocolError(400, "request JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(400, f"request header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError(400, f"request header must be a JSON object, got {type(header).__name__}")
    return header, mv[json_len:]


def sections(entries: Sequence[Mapping[str, Any]], binary: memoryview, what: str) -> list[memoryview | None]:
    """Each entry's binary blob (None for JSON entries), cut from ``binary`` in order; checks every size.

    An entry is binary when its ``parameters.binary_data_size`` is given; the
    sizes must be non-negative integers adding up to exactly the bytes after
    the JSON header.
    """
    out: list[memoryview | None] = []
    pos = 0
    for entry in entries:
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(400, f"{what} {entry.get('name')!r}: parameters must be an object")
        size = params.get("binary_data_size")
        if size is None:
            out.append(None)
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(
                400, f"{what} {entry.get('name')!r}: binary_data_size must be a non-negative integer, got {size!r}"
            )
        if size > len(binary) - pos:
            raise ProtocolError(
                400,
                f"{what} {entry.get('name')!r}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - pos} bytes left)",
            )
        out.append(binary[pos : pos + size])
        pos += size
    if pos != len(binary):
        raise ProtocolError(400, f"{len(binary) - pos} bytes of binary data are not claimed by any {what}")
    return out


def check_shape(shape: Any, what: str) -> tuple[int, ...]:
    """A protocol shape (a list of non-negative integers) as a tuple; raises ProtocolError otherwise."""
    if not isinstance(shape, list) or len(shape) > 32:
        raise ProtocolError(400, f"{what}: shape must be a list of at most 32 dimensions, got {shape!r}")
    dims = []
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise ProtocolError(400, f"{what}: shape dimensions must be non-negative integers, got {shape!r}")
        dims.append(d)
    if math.prod(dims) > 1 << 48:
        raise ProtocolError(400, f"{what}: shape {shape} is too large")
    return tuple(dims)


def model_digest(graph: ModelGraph) -> str:
    """A fingerprint of a loaded model: its serialized bytes and its layer split (cached on the graph).

    Client and server compare it so that layer indices and tensor names mean
    the same thing on both sides; loading the same file with other options
    (``merge_trivial``, batch size) gives another digest.
    """
    cached = graph.__dict__.get("_jointdnn_digest")
    if cached is None:
        h = hashlib.sha256()
        h.update(graph.format.encode())
        h.update(graph.to_bytes())
        layout = [[layer.name, list(layer.inputs), [t.name for t in layer.outputs]] for layer in graph.layers]
        h.update(json.dumps(layout, separators=(",", ":")).encode())
        cached = graph.__dict__["_jointdnn_digest"] = "sha256:" + h.hexdigest()
    return str(cached)
