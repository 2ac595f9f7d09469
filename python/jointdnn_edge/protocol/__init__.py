"""The wire between phone and cloud, shared by both sides: Open Inference Protocol messages and frame checks.

Imported by the client (:mod:`jointdnn_edge.client`) and by the server
(:mod:`jointdnn_edge.server`), which never import each other. No web
framework is imported here, so a device with only numpy and httpx can use it.
``docs/server.md`` is the normative description of the split extension.
"""

from __future__ import annotations

from ..errors import ProtocolError
from ._frames import check_frame_tensors, decode_frame_for
from ._messages import (
    FRAME_TENSOR,
    HEADER_LENGTH,
    P_CODEC,
    P_DIGEST,
    P_FIRST,
    P_LAST,
    P_LEVEL,
    P_LOSSY,
    P_QUANTIZE,
    PROTOCOL_VERSION,
    R_COMPUTE,
    R_DECODE,
    R_ENCODE,
    R_LOAD,
    R_QUEUE,
    R_SERVER,
    SERVER_NAME,
    TOKEN_ENV,
    body_parts,
    check_shape,
    datatype_of,
    dumps_json,
    model_digest,
    numpy_dtype,
    pack_bytes,
    parse_decimal,
    sections,
    split_body,
    unpack_bytes,
)

__all__ = [
    "FRAME_TENSOR",
    "HEADER_LENGTH",
    "PROTOCOL_VERSION",
    "P_CODEC",
    "P_DIGEST",
    "P_LOSSY",
    "P_FIRST",
    "P_LAST",
    "P_LEVEL",
    "P_QUANTIZE",
    "R_COMPUTE",
    "R_DECODE",
    "R_ENCODE",
    "R_LOAD",
    "R_QUEUE",
    "R_SERVER",
    "SERVER_NAME",
    "TOKEN_ENV",
    "ProtocolError",
    "body_parts",
    "check_frame_tensors",
    "check_shape",
    "datatype_of",
    "decode_frame_for",
    "dumps_json",
    "model_digest",
    "numpy_dtype",
    "pack_bytes",
    "parse_decimal",
    "sections",
    "split_body",
    "unpack_bytes",
]
