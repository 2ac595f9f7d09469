"""Activation frames checked against the model they claim to belong to, on either side of the wire.

A split request carries the input tensors of a layer range in one codec frame
and its response carries the range's outputs. Before any payload is decoded,
both the server and the client check that the frame holds exactly the tensors
the range reads (or produces), with the model's dtypes and shapes, and decode
no more than their raw size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ProtocolError

if TYPE_CHECKING:
    from ..codec.frame import FrameEntry
    from ..models.graph import ModelGraph

__all__ = ["check_frame_tensors", "decode_frame_for"]


def check_frame_tensors(graph: ModelGraph, heads: Sequence[FrameEntry], names: Sequence[str], what: str) -> None:
    """Raise :class:`ProtocolError` (422) unless ``heads`` are exactly ``names`` with the model's dtypes and shapes.

    ``what`` says which frame it is (for example ``"layers 2..5 of 'alexnet' read"``), for the message.
    """
    got = {h.name for h in heads}
    missing = [n for n in names if n not in got]
    extra = sorted(got.difference(names))
    if missing or extra or len(heads) != len(names):
        parts = [f"lacks {missing}" if missing else "", f"has unexpected {extra}" if extra else ""]
        detail = " and ".join(p for p in parts if p) or "repeats a tensor"
        raise ProtocolError(422, f"{what} {list(names)}; the frame {detail}")
    for h in heads:
        want = graph.tensor(h.name)
        dt = h.quant.dtype if h.quant is not None else h.dtype
        if tuple(h.shape) != tuple(want.shape) or np.dtype(dt) != np.dtype(want.dtype):
            raise ProtocolError(
                422,
                f"tensor {h.name!r} is {np.dtype(dt)}{list(h.shape)} in the frame, "
                f"the model has {np.dtype(want.dtype)}{list(want.shape)}",
            )


def decode_frame_for(
    graph: ModelGraph, names: Sequence[str], frame: bytes | memoryview, *, max_bytes: int, what: str
) -> tuple[dict[str, np.ndarray], list[FrameEntry]]:
    """The tensors ``names`` of ``graph`` decoded from ``frame``, and the frame's entries.

    Reads the headers under ``max_bytes`` (:class:`~jointdnn_edge.FrameTooLargeError`
    past it), checks them with :func:`check_frame_tensors` (:class:`ProtocolError`),
    and only then decodes, never more than the tensors' raw size
    (:class:`~jointdnn_edge.CodecError` for a corrupt frame).
    """
    from ..codec import decode, read_headers

    heads = read_headers(frame, max_bytes=max_bytes)
    check_frame_tensors(graph, heads, names, what)
    raw = sum(graph.tensor(n).nbytes for n in names)
    return decode(frame, max_bytes=min(max_bytes, raw)), heads
