"""The format-neutral layer graph every model loader produces.

A :class:`ModelGraph` is a DNN seen the way the planner sees it: layers in
topological order, each a group of one or more operators of the underlying
model, with the tensors that flow between them. ONNX and TFLite loaders
(``models/onnx_model.py``, ``models/tflite_model.py``) subclass it and add the
format-specific parts: slicing a layer range into a standalone model.

Layer-graph conventions shared with :class:`jointdnn_edge.CostTable`:
layers are numbered ``0..N-1`` in topological order; ``edges`` holds ``(u, v)``
when layer ``v`` reads a tensor produced by layer ``u`` (``u = -1``: a model
input); a layer's *output bundle* is every tensor it produces that a later
layer reads or that is a model output, and ``out_bytes[i]`` is that bundle's
size.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError, UnknownNameError

if TYPE_CHECKING:
    from ..costs import CostTable


@dataclass(frozen=True)
class TensorInfo:
    """A named tensor with a static shape and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        """Bytes of the raw (uncompressed) tensor."""
        return int(np.prod(self.shape, dtype=np.int64)) * int(np.dtype(self.dtype).itemsize)


@dataclass(frozen=True)
class Layer:
    """One planner layer: one operator, or an operator with trivial ops merged into it."""

    index: int
    name: str
    op_type: str
    #: names of the underlying operators (one unless trivial ops were merged)
    ops: tuple[str, ...]
    #: tensors read from outside this layer (activations and model inputs, not weights)
    inputs: tuple[str, ...]
    #: tensors this layer produces that leave it (read later, or model outputs)
    outputs: tuple[TensorInfo, ...]
    #: bytes of the parameters (initializers, Constant nodes, TFLite constant buffers)
    weight_bytes: int = 0
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def out_bytes(self) -> int:
        """Bytes of this layer's output bundle."""
        return sum(t.nbytes for t in self.outputs)


class ModelGraph(abc.ABC):
    """A loaded model as a sequence of layers (see the module docstring).

    Subclasses fill :attr:`layers`, :attr:`inputs`, :attr:`outputs` and
    implement :meth:`slice_bytes` and :meth:`to_bytes`; the rest is shared.
    """

    #: "onnx" or "tflite"
    format: str
    name: str
    layers: list[Layer]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    # ------------------------------------------------------------- structure
    @property
    def n(self) -> int:
        """Number of layers."""
        return len(self.layers)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """``(u, v)`` for every layer ``v`` reading a tensor of layer ``u`` (``-1``: model input)."""
        producer = self._producers()
        out: set[tuple[int, int]] = set()
        for layer in self.layers:
            for t in layer.inputs:
                out.add((producer.get(t, -1), layer.index))
        return sorted(out)

    @property
    def input_bytes(self) -> int:
        """Bytes of all model inputs together."""
        return sum(t.nbytes for t in self.inputs)

    @property
    def out_bytes(self) -> list[int]:
        """Per-layer output-bundle bytes, for :class:`CostTable`."""
        return [layer.out_bytes for layer in self.layers]

    @property
    def weight_bytes(self) -> list[int]:
        """Per-layer parameter bytes."""
        return [layer.weight_bytes for layer in self.layers]

    def _producers(self) -> dict[str, int]:
        return {t.name: layer.index for layer in self.layers for t in layer.outputs}

    def tensor(self, name: str) -> TensorInfo:
        """Shape and dtype of a model input or a layer output."""
        for t in self.inputs:
            if t.name == name:
                return t
        for layer in self.layers:
            for t in layer.outputs:
                if t.name == name:
                    return t
        raise UnknownNameError(f"no tensor {name!r} in model {self.name!r}")

    def slice_io(self, first: int, last: int) -> tuple[list[str], list[str]]:
        """Names of the tensors a slice of layers ``first..last`` reads and writes.

        Inputs: every tensor the range reads that is produced before it (or is a
        model input), across skip connections too. Outputs: every tensor
        produced in the range that a later layer reads or that is a model output.
        Both lists are in a stable order (inputs by first use, outputs by producer).
        Memoized: executors, the profiler and sessions ask for the same ranges on
        every run, and a graph's layers do not change once loaded.
        """
        cache: dict[tuple[int, int], tuple[list[str], list[str]]] = self.__dict__.setdefault("_slice_io_cache", {})
        hit = cache.get((first, last))
        if hit is None:
            hit = cache[(first, last)] = self._compute_slice_io(first, last)
        return list(hit[0]), list(hit[1])

    def _compute_slice_io(self, first: int, last: int) -> tuple[list[str], list[str]]:
        self._check_range(first, last)
        produced_inside = {t.name for layer in self.layers[first : last + 1] for t in layer.outputs}
        ins: list[str] = []
        for layer in self.layers[first : last + 1]:
            for t in layer.inputs:
                if t not in produced_inside and t not in ins:
                    ins.append(t)
        model_outs = {t.name for t in self.outputs}
        later_reads = {t for layer in self.layers[last + 1 :] for t in layer.inputs}
        outs = [
            t.name
            for layer in self.layers[first : last + 1]
            for t in layer.outputs
            if t.name in later_reads or t.name in model_outs
        ]
        return ins, outs

    def _check_range(self, first: int, last: int) -> None:
        if not (0 <= first <= last < self.n):
            raise ModelError(f"layer range {first}..{last} is outside 0..{self.n - 1} of model {self.name!r}")

    def cost_skeleton(self) -> dict[str, Any]:
        """The structural arguments of :class:`CostTable` for this model (sizes, edges, names)."""
        return {
            "out_bytes": self.out_bytes,
            "input_bytes": self.input_bytes,
            "edges": self.edges,
            "weight_bytes": self.weight_bytes,
            "names": [layer.name for layer in self.layers],
            "outputs": sorted({self._producers()[t.name] for t in self.outputs}),
        }

    # ------------------------------------------------------------ per format
    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The whole model, serialized in its own format."""

    @abc.abstractmethod
    def slice_bytes(self, first: int, last: int) -> bytes:
        """A standalone model (same format) running layers ``first..last``.

        Its inputs and outputs are named and ordered as :meth:`slice_io` says.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, format={self.format!r}, layers={self.n})"


def uniform_feeds(graph: ModelGraph, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic random inputs for ``graph`` (uniform in [0, 1) for floats)."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for t in graph.inputs:
        dt = np.dtype(t.dtype)
        if dt.kind == "f":
            feeds[t.name] = rng.random(t.shape).astype(dt)
        elif dt.kind in "iu":
            feeds[t.name] = rng.integers(0, 8, size=t.shape).astype(dt)
        else:
            feeds[t.name] = rng.integers(0, 2, size=t.shape).astype(dt)
    return feeds


#: A link probe uploads at least this much ...
PROBE_UP_BYTES = 128 * 1024
#: ... and downloads at least this much when a layer allows. On the network lab's shaped links a 37 kB upload read
#: 0.64-1.18 Mbit/s on 3G (1.07 carried) and 9-24 on Wi-Fi (18.2), its 16 kB answer 1100-1400 Mbit/s down (55): a
#: small transfer is mostly round trip, slow start and the shaper's burst. 260 kB read 1.05-1.07 and 18-19.5.
PROBE_DOWN_BYTES = 64 * 1024


def probe_layer(graph: ModelGraph, up_bytes: int = PROBE_UP_BYTES, down_bytes: int = PROBE_DOWN_BYTES) -> int:
    """The layer a link probe runs on the cloud: of the layers whose inputs are all floating point (activations,
    which any values may fill) and add up to at least ``up_bytes``, with outputs of at least ``down_bytes``, the one
    that moves the fewest bytes; failing that the fewest bytes with ``up_bytes`` in; failing that layer 0 (the
    model input).

    Layer 0 of the full AlexNet sends 618 kB and gets 1.16 MB back (10 s on 3G); its ``relu5`` moves 173 kB each way.
    """
    fits: list[tuple[int, int]] = []
    uploads: list[tuple[int, int]] = []
    for i in range(graph.n):
        ins, outs = graph.slice_io(i, i)
        tensors = [graph.tensor(n) for n in ins]
        if not tensors or any(np.dtype(t.dtype).kind != "f" for t in tensors):
            continue
        up = sum(t.nbytes for t in tensors)
        down = sum(graph.tensor(n).nbytes for n in outs)
        if up >= up_bytes:
            uploads.append((up + down, i))
            if down >= down_bytes:
                fits.append((up + down, i))
    best = min(fits or uploads, default=(0, 0))
    return best[1]


#: A probe's second request uploads at least this much, and at most half the first's: two sizes let the estimator fit
#: the link's burst (``BandwidthEstimator``), which a local session would otherwise never see (its probes were all
#: one size, and a split's small upload is where the burst counts).
SMALL_PROBE_UP_BYTES = 32 * 1024


def small_probe_layer(graph: ModelGraph, probe: int, up_bytes: int = SMALL_PROBE_UP_BYTES) -> int | None:
    """The layer of a probe's second, smaller request: of the layers whose inputs are all floating point and add up
    to between ``up_bytes`` and half what layer ``probe`` uploads, the one that moves the fewest bytes; None when no
    layer does (the tiny zoo models: nothing past their input uploads 8 kB)."""
    ins = graph.slice_io(probe, probe)[0]
    ceiling = sum(graph.tensor(n).nbytes for n in ins) / 2
    fits: list[tuple[int, int]] = []
    for i in range(graph.n):
        if i == probe:
            continue
        ins, outs = graph.slice_io(i, i)
        tensors = [graph.tensor(n) for n in ins]
        if not tensors or any(np.dtype(t.dtype).kind != "f" for t in tensors):
            continue
        up = sum(t.nbytes for t in tensors)
        if up_bytes <= up <= ceiling:
            fits.append((up + sum(graph.tensor(n).nbytes for n in outs), i))
    return min(fits)[1] if fits else None


def probe_feeds(graph: ModelGraph, first: int, last: int | None = None) -> dict[str, np.ndarray]:
    """Inputs of layers ``first..last`` (default: ``first`` alone) for a request whose results are discarded (a link
    probe, a warm-up): :func:`uniform_feeds` from layer 0, zeros of each input's shape otherwise."""
    ins = graph.slice_io(first, first if last is None else last)[0]
    if first == 0:
        feeds = uniform_feeds(graph, 0)
        return {n: feeds[n] for n in ins}
    return {n: np.zeros(graph.tensor(n).shape, np.dtype(graph.tensor(n).dtype)) for n in ins}


def output_names(graph: ModelGraph) -> Sequence[str]:
    """Names of the model outputs, in model order."""
    return [t.name for t in graph.outputs]


def costs_from(graph: ModelGraph, mobile_ms: Any, cloud_ms: Any, **kwargs: Any) -> CostTable:
    """A :class:`CostTable` for ``graph`` from grouped times (structure taken from the graph)."""
    from ..costs import CostTable

    args = graph.cost_skeleton()
    args.update(kwargs)
    out_bytes, input_bytes = args.pop("out_bytes"), args.pop("input_bytes")
    return CostTable(mobile_ms, cloud_ms, out_bytes, input_bytes, **args)
