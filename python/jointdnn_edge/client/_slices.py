"""The client side of a split call, written once: encode a range's inputs, send them, check and decode the outputs.

Both the session (:class:`~jointdnn_edge.session.JointSession`, for its cloud
runs) and :class:`~jointdnn_edge.RemoteExecutor` (for profiling on the
server) run layers on the cloud through :meth:`SliceCall.run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..errors import ExecutionError, ProtocolError, RemoteError
from ..protocol import decode_frame_for
from ._inputs import as_model_tensor

if TYPE_CHECKING:
    from ..codec.frame import FrameEntry
    from ..lossy import LossySpec
    from ..models.graph import ModelGraph
    from ._client import CloudClient, SliceResponse

__all__ = ["SliceCall", "check_range", "decode_slice_outputs", "response_limit"]

#: A request's deadline in seconds (None: the client's timeout), or how to derive it from the frame's size in bytes.
Deadline: TypeAlias = float | Callable[[int], float | None] | None


@dataclass
class SliceCall:
    """One split call: layers ``first..last`` of ``graph`` on the cloud, and what it sent, got and cost on this side.

    :meth:`run` fills the record in as it goes, so that after a failed
    request it still says what was sent and under which deadline.
    ``encode_ms``/``decode_ms``: this device's codec time; ``frame_bytes``:
    the request's frame; ``codec_up``/``codec_down``: the codecs of the
    frames' tensors (``"+"``-joined); ``deadline_s``: the request's deadline
    (None: the client's timeout); ``ms``: the whole call, encoding to
    decoding; ``lossy``: the inputs sent lossily, ``{tensor: option label}``.
    """

    graph: ModelGraph
    first: int
    last: int
    encode_ms: float = 0.0
    frame_bytes: int = 0
    codec_up: str = ""
    deadline_s: float | None = None
    decode_ms: float = 0.0
    codec_down: str = ""
    ms: float = 0.0
    lossy: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        client: CloudClient,
        feeds: Mapping[str, Any],
        *,
        model: str,
        codec: str = "auto",
        level: int = 1,
        quantize_bits: int | None = None,
        digest: str | None = None,
        deadline_s: Deadline = None,
        lossy: Mapping[str, LossySpec] | None = None,
    ) -> tuple[dict[str, np.ndarray], SliceResponse]:
        """Run the range on ``client``'s server (which serves the graph as ``model``): its outputs and the response.

        Encodes the tensors the range reads (from ``feeds``) as one frame with
        ``codec``/``level``/``quantize_bits`` (the response comes back the same
        way), sends it with ``digest`` (the server refuses another model),
        and checks the answer holds exactly the tensors the range produces
        before decoding it (:func:`decode_slice_outputs`). ``deadline_s`` may
        be a function of the frame's size; it bounds the request as a whole.
        Inputs are cast to the model's dtypes within their kind before
        encoding. ``lossy`` gives a :class:`~jointdnn_edge.lossy.LossySpec`
        for inputs to send lossily instead (``docs/wire-format.md`` §9; the
        server must hold the same specs); others it names are ignored.
        Raises :class:`~jointdnn_edge.ExecutionError` for a range outside the
        model, missing inputs or inputs of the wrong shape or kind (nothing
        sent), the client's
        :class:`~jointdnn_edge.TransportError` subclasses, and
        :class:`~jointdnn_edge.CodecError` for a corrupt frame (counted as a
        cloud failure by ``client``'s circuit breaker).
        """
        from ..codec import encode, read_headers

        g, first, last = self.graph, self.first, self.last
        check_range(g, first, last)
        ins = g.slice_io(first, last)[0]
        missing = [n for n in ins if n not in feeds]
        if missing:
            raise ExecutionError(f"layers {first}..{last} of {g.name!r}: missing inputs {missing}")
        tensors = {n: as_model_tensor(g, n, feeds[n]) for n in ins}
        specs = {n: spec for n, spec in (lossy or {}).items() if n in tensors}
        t0 = time.perf_counter()
        sent_lossy = []
        if specs:
            from ..lossy import encode as lossy_encode

            sent_lossy = [(n, spec.digest.hex(), lossy_encode(tensors.pop(n), spec)) for n, spec in specs.items()]
            self.lossy = {n: spec.label for n, spec in specs.items()}
        frame = encode(tensors, codec=codec, level=level, quantize_bits=quantize_bits)
        self.encode_ms = (time.perf_counter() - t0) * 1e3
        self.frame_bytes = len(frame) + sum(len(p) for _, _, p in sent_lossy)
        self.codec_up = _codecs(read_headers(frame, max_bytes=1 << 62))
        self.deadline_s = deadline_s(len(frame)) if callable(deadline_s) else deadline_s
        decoded: list[tuple[dict[str, np.ndarray], list[FrameEntry]]] = []

        def check(frame_out: bytes) -> None:  # inside the request's breaker verdict: a corrupt frame counts
            t_got = time.perf_counter()
            decoded.append(decode_slice_outputs(g, first, last, frame_out))
            self.decode_ms = (time.perf_counter() - t_got) * 1e3

        resp = client.infer_slice(
            model,
            first,
            last,
            frame,
            codec=codec,
            level=level,
            quantize_bits=quantize_bits,
            digest=digest,
            deadline_s=self.deadline_s,
            max_response_bytes=response_limit(g, first, last),
            check_frame=check,
            lossy=sent_lossy,
        )
        outputs, heads = decoded[0]
        self.codec_down = _codecs(heads)
        self.ms = (time.perf_counter() - t0) * 1e3
        return outputs, resp


def check_range(graph: ModelGraph, first: int, last: int) -> None:
    """Raise :class:`~jointdnn_edge.ExecutionError` unless ``first..last`` is a layer range of ``graph``."""
    if not 0 <= first <= last < graph.n:
        raise ExecutionError(f"layer range {first}..{last} is outside 0..{graph.n - 1} of {graph.name!r}")


def response_limit(graph: ModelGraph, first: int, last: int) -> int:
    """The largest response body a split request for layers ``first..last`` may sensibly get back.

    Twice the raw size of the range's outputs (no codec makes data that much
    larger) plus room for the JSON header and the frame's records.
    """
    outs = graph.slice_io(first, last)[1]
    return 2 * sum(graph.tensor(n).nbytes for n in outs) + (1 << 16) + 64 * len(outs)


def decode_slice_outputs(
    graph: ModelGraph, first: int, last: int, frame: bytes
) -> tuple[dict[str, np.ndarray], list[FrameEntry]]:
    """The tensors of a split response frame for layers ``first..last``, and the frame's entries.

    Checks, before decoding any payload, that the frame holds exactly the
    tensors the range produces (``graph.slice_io(first, last)[1]``) with the
    model's dtypes and shapes, and decodes no more than their raw size
    (:func:`jointdnn_edge.protocol.decode_frame_for`). Raises
    :class:`~jointdnn_edge.RemoteError` for the wrong tensors and
    :class:`~jointdnn_edge.CodecError` for a corrupt frame.
    """
    outs = graph.slice_io(first, last)[1]
    raw_out = sum(graph.tensor(n).nbytes for n in outs)
    what = f"layers {first}..{last} of {graph.name!r} produce"
    try:
        return decode_frame_for(graph, outs, frame, max_bytes=raw_out, what=what)
    except ProtocolError as e:  # the server answered 200 with a frame that is not the range's
        raise RemoteError(f"cloud returned a wrong frame: {e.message}", 200) from None


def _codecs(entries: Sequence[FrameEntry]) -> str:
    """The codecs of a frame's tensors, each once, in order, joined by ``+``."""
    seen: list[str] = []
    for e in entries:
        if e.codec not in seen:
            seen.append(e.codec)
    return "+".join(seen)
