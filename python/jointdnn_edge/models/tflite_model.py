"""TFLite models as planner layer graphs, sliced by rewriting the flatbuffer.

:func:`load_tflite` reads a ``.tflite`` flatbuffer (through the schema that
``ai-edge-litert`` ships) into a :class:`TFLiteGraph`: the operators of the
main subgraph, in the model's own execution order (which TFLite guarantees is
topological), grouped into planner layers.

Layer granularity
-----------------
* By default every operator is one layer, with one exception: operators that
  read only constants — TFLite's ``DEQUANTIZE`` of float16/int8 weights, and
  ``DENSIFY`` of sparse weights — are weight decoding, not computation on
  activations. They never form a layer of their own; they belong to the layer
  that consumes the decoded weight, and every slice that needs such a weight
  re-runs its decoding ops. Were they layers, a cut between one and its
  consumer would send a decoded weight over the link as if it were an
  activation (twice the size of the stored float16), the consumer would see a
  run-time weight (XNNPACK then refuses to delegate it, and MediaPipe's
  ``Convolution2DTransposeBias`` exists only inside XNNPACK), and the layer
  would hang off the graph with no activation input.
* ``merge_trivial=True`` also folds trivial operators into the layer that
  produces their input, giving the paper's layer granularity: activations
  (``RELU``, ``RELU6``, ``LOGISTIC``, ``TANH``, ``HARD_SWISH``, ``PRELU``, ...),
  batch-norm-like ops (element-wise ``MUL``/``ADD``/``SUB``/``DIV`` with one
  constant operand, and 1×1 stride-1 ``DEPTHWISE_CONV_2D`` with multiplier 1,
  i.e. a per-channel ``x * a + b``), and ``RESHAPE``/``SQUEEZE``/``EXPAND_DIMS``.
  An op is folded only when its single activation input is read by nothing
  else and is not a model output, so no tensor inside a layer is needed
  outside it.

A layer is named after its first operator's first output tensor; ``Layer.ops``
names every operator of the layer the same way (TFLite operators carry no
names of their own), and ``Layer.attrs["operators"]`` gives their indices.
Weight bytes are the stored sizes of the constant buffers the layer's
operators read.

Slicing
-------
:meth:`TFLiteGraph.slice_bytes` writes a new flatbuffer holding one subgraph
with the range's operators (plus the weight-decoding operators they need),
the tensors and buffers those use (renumbered, buffer 0 kept as the empty
sentinel), the operator codes they use, and inputs/outputs exactly as
:meth:`~jointdnn_edge.models.graph.ModelGraph.slice_io` lists them. Signature
defs and metadata are dropped from slices; the whole model (``to_bytes``) is
the original file unless tensor names had to be made unique or a dynamic
batch was fixed, in which case it is rewritten the same way.

Rejected with :class:`~jointdnn_edge.errors.ModelError`: wrong file identifier,
truncated or corrupt flatbuffers, control flow (``WHILE``, ``IF``,
``CALL_ONCE``, StableHLO regions), resource variables, custom operators the
installed LiteRT runtime cannot resolve, dynamic dimensions other than the
batch, and shapes that stay data-dependent once the batch is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError, UnknownNameError
from . import tflite_flatbuffer as tfb
from .graph import Layer, ModelGraph, TensorInfo
from .litert_runtime import make_interpreter, unresolved_op_error

__all__ = ["TFLiteGraph", "load_tflite"]

# Operators whose semantics involve other subgraphs: a slice of one subgraph cannot carry them.
_CONTROL_FLOW = frozenset(
    {
        "WHILE",
        "IF",
        "CALL",
        "CALL_ONCE",
        "STABLEHLO_WHILE",
        "STABLEHLO_CASE",
        "STABLEHLO_COMPOSITE",
        "STABLEHLO_REDUCE",
        "STABLEHLO_REDUCE_WINDOW",
        "STABLEHLO_SORT",
        "STABLEHLO_SCATTER",
    }
)
# Operators with state outside the tensors (resource variables, hash tables).
_RESOURCE_OPS = frozenset(
    {
        "VAR_HANDLE",
        "READ_VARIABLE",
        "ASSIGN_VARIABLE",
        "HASHTABLE",
        "HASHTABLE_FIND",
        "HASHTABLE_IMPORT",
        "HASHTABLE_SIZE",
    }
)
_ACTIVATIONS = frozenset(
    {
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "RELU_0_TO_1",
        "LOGISTIC",
        "TANH",
        "HARD_SWISH",
        "LEAKY_RELU",
        "PRELU",
        "ELU",
        "GELU",
    }
)
_RESHAPES = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
_AFFINE = frozenset({"MUL", "ADD", "SUB", "DIV"})


class TFLiteGraph(ModelGraph):
    """A TFLite model as a planner layer graph; see the module docstring for the layer rules.

    Build with :func:`load_tflite`. The parsed flatbuffer stays in memory so
    that slices are rewritten without re-reading the file.
    """

    format = "tflite"

    def __init__(
        self,
        data: bytes,
        model: Any,
        *,
        name: str,
        shapes: dict[int, tuple[int, ...]],
        frozen_shapes: bool,
        renamed: bool,
        merge_trivial: bool,
        batch_size: int | None,
    ) -> None:
        self.name = name
        self.merge_trivial = merge_trivial
        self.batch_size = batch_size
        self._data = data
        self._model = model
        self._sg = model.subgraphs[0]
        self._shapes = shapes
        # shapes are written into slices only when the file's own shapes are not final
        self._frozen_shapes = frozen_shapes
        self._rewrite_whole = frozen_shapes or renamed
        self._whole: bytes | None = None
        self._build()

    # --------------------------------------------------------------- building
    def _tensor_info(self, idx: int) -> TensorInfo:
        t = self._sg.tensors[idx]
        return TensorInfo(_name(t), tuple(self._shapes[idx]), tfb.numpy_dtype(t.type))

    def _build(self) -> None:
        model, sg = self._model, self._sg
        ops = sg.operators or []
        tensors = sg.tensors or []
        self._op_types = [tfb.op_code_name(model, op) for op in ops]
        buffers = model.buffers or []
        self._constant = {
            i for i, t in enumerate(tensors) if t.buffer and t.buffer < len(buffers) and tfb.has_data(buffers[t.buffer])
        }
        # variable tensors hold state that lives with the operator, not an activation
        self._state = {i for i, t in enumerate(tensors) if t.isVariable}
        model_inputs = list(sg.inputs or [])
        model_outputs = list(sg.outputs or [])
        out_set = set(model_outputs)

        producer: dict[int, int] = {}
        consumers: dict[int, list[int]] = {}
        for k, op in enumerate(ops):
            for t in op.outputs or []:
                if t >= 0:
                    producer[t] = k
            for t in _ins(op):
                consumers.setdefault(t, []).append(k)
        self._producer = producer
        for t in model_outputs:
            if t not in producer:
                raise ModelError(f"model output {_name(tensors[t])!r} is not produced by any operator")

        # tensors computed from constants alone (decoded weights) and the ops computing them
        weight_like = set(self._constant) | self._state
        weight_ops: set[int] = set()
        for k, op in enumerate(ops):
            ins = _ins(op)
            outs = [t for t in op.outputs or [] if t >= 0]
            if (
                ins
                and all(t in weight_like for t in ins)
                and not (set(outs) & out_set)
                and not (set(outs) & self._state)
            ):
                weight_ops.add(k)
                weight_like.update(outs)
        self._weight_like = weight_like
        self._weight_ops = weight_ops

        def activation_ins(k: int) -> list[int]:
            return [t for t in _ins(ops[k]) if t not in weight_like]

        # group[k] = the anchor operator of k's layer
        group: dict[int, int] = {}
        for k in range(len(ops)):
            if k in weight_ops:
                continue
            group[k] = k
            if not self.merge_trivial:
                continue
            kind = self._op_types[k]
            a_ins = activation_ins(k)
            trivial = (
                kind in _ACTIVATIONS
                or kind in _RESHAPES
                or (kind in _AFFINE and len(_ins(ops[k])) == 2)
                or self._is_channel_affine(k)
            )
            if trivial and len(a_ins) == 1:
                t = a_ins[0]
                p = producer.get(t)
                if p is not None and p in group and t not in out_set and consumers.get(t) == [k]:
                    group[k] = group[p]
        # weight-decoding ops join the layer of their first consumer outside the weight ops
        for k in sorted(weight_ops, reverse=True):
            for t in ops[k].outputs or []:
                for c in consumers.get(t, []):
                    anchor = group.get(c)
                    if anchor is not None and (k not in group or anchor < group[k]):
                        group[k] = anchor
        # weight ops feeding nothing (dead code) are dropped from every layer

        members: dict[int, list[int]] = {}
        for k, anchor in group.items():
            members.setdefault(anchor, []).append(k)
        anchors = sorted(members)

        layer_of_op: dict[int, int] = {}
        for li, anchor in enumerate(anchors):
            for k in members[anchor]:
                layer_of_op[k] = li
        readers: dict[int, set[int]] = {}  # tensor -> layers reading it as an activation
        for k, li in layer_of_op.items():
            if k in weight_ops:
                continue
            for t in activation_ins(k):
                readers.setdefault(t, set()).add(li)

        self._layer_ops: list[tuple[int, ...]] = []
        layers: list[Layer] = []
        for li, anchor in enumerate(anchors):
            ks = tuple(sorted(members[anchor]))
            produced = {t for k in ks for t in ops[k].outputs or [] if t >= 0}
            l_ins: list[str] = []
            for k in ks:
                if k in weight_ops:
                    continue
                for t in activation_ins(k):
                    nm = _name(tensors[t])
                    if t not in produced and nm not in l_ins:
                        l_ins.append(nm)
            l_outs = [
                self._tensor_info(t)
                for k in ks
                if k not in weight_ops
                for t in ops[k].outputs or []
                if t >= 0 and (t in out_set or readers.get(t, set()) - {li})
            ]
            weight_buffers = {tensors[t].buffer: t for k in ks for t in _ins(ops[k]) if t in self._constant}
            w_bytes = sum(len(buffers[b].data) for b in weight_buffers)
            layers.append(
                Layer(
                    index=li,
                    name=self._op_name(anchor),
                    op_type=self._op_types[anchor],
                    ops=tuple(self._op_name(k) for k in ks),
                    inputs=tuple(l_ins),
                    outputs=tuple(l_outs),
                    weight_bytes=int(w_bytes),
                    attrs={"operators": ks, "op_types": tuple(self._op_types[k] for k in ks)},
                )
            )
            self._layer_ops.append(ks)
        self.layers = layers
        self.inputs = [self._tensor_info(t) for t in model_inputs]
        self.outputs = [self._tensor_info(t) for t in model_outputs]
        self._index_of = {_name(t): i for i, t in enumerate(tensors)}

    def _is_channel_affine(self, k: int) -> bool:
        """True for a 1×1, stride-1 depthwise convolution with multiplier 1: a per-channel
        ``x * a + b``, which is how a batch norm is written as a single TFLite operator."""
        if self._op_types[k] != "DEPTHWISE_CONV_2D":
            return False
        op = self._sg.operators[k]
        opts = op.builtinOptions
        ins = list(op.inputs or [])
        if opts is None or len(ins) < 2 or ins[1] < 0 or ins[1] not in self._weight_like:
            return False
        shape = tuple(self._shapes.get(ins[1], ()))
        return (
            len(shape) == 4
            and shape[:3] == (1, 1, 1)
            and int(opts.depthMultiplier or 1) == 1
            and (opts.strideH, opts.strideW) == (1, 1)
        )

    def _op_name(self, k: int) -> str:
        outs = [t for t in self._sg.operators[k].outputs or [] if t >= 0]
        return _name(self._sg.tensors[outs[0]]) if outs else f"op{k}_{self._op_types[k]}"

    # ---------------------------------------------------------------- queries
    def tensor(self, name: str) -> TensorInfo:
        """Shape and dtype of any tensor of the main subgraph (activations, inputs, weights)."""
        idx = self._index_of.get(name)
        if idx is None or idx not in self._shapes:
            raise UnknownNameError(f"no tensor {name!r} in the main subgraph of model {self.name!r}")
        return self._tensor_info(idx)

    def op_types(self) -> list[str]:
        """Type of every operator of the main subgraph, in execution order."""
        return list(self._op_types)

    def tensor_index(self, name: str) -> int:
        """Index of the tensor ``name`` in the main subgraph."""
        try:
            return self._index_of[name]
        except KeyError:
            raise ModelError(f"no tensor {name!r} in model {self.name!r}") from None

    def slice_ops(self, first: int, last: int) -> list[int]:
        """Operator indices a slice of layers ``first..last`` runs, in execution order.

        These are the range's own operators plus the weight-decoding operators
        (see the module docstring) that its operators need and that belong to
        layers outside the range.
        """
        self._check_range(first, last)
        chosen = {k for ks in self._layer_ops[first : last + 1] for k in ks}
        stack = list(chosen)
        while stack:
            k = stack.pop()
            for t in _ins(self._sg.operators[k]):
                p = self._producer.get(t)
                if t in self._weight_like and p is not None and p not in chosen:
                    chosen.add(p)
                    stack.append(p)
        return sorted(chosen)

    # ---------------------------------------------------------------- writing
    def _rewrite(self, ops: Sequence[int], ins: Sequence[int], outs: Sequence[int], description: str) -> bytes:
        shapes = None
        if self._frozen_shapes:
            shapes = {i: s for i, s in self._shapes.items() if i not in self._constant}
        m = tfb.extract_subgraph(self._model, ops, ins, outs, shapes=shapes, description=description)
        return tfb.serialize_model(m)

    def to_bytes(self) -> bytes:
        """The whole model as a TFLite flatbuffer (the original file when it needed no rewriting)."""
        if not self._rewrite_whole:
            return self._data
        if self._whole is None:
            self._whole = self._rewrite(
                range(len(self._sg.operators or [])),
                list(self._sg.inputs or []),
                list(self._sg.outputs or []),
                f"{self.name} (jointdnn-edge)",
            )
        return self._whole

    def slice_bytes(self, first: int, last: int) -> bytes:
        """A standalone TFLite model running layers ``first..last``, with the inputs/outputs of ``slice_io``."""
        ins, outs = self.slice_io(first, last)
        return self._rewrite(
            self.slice_ops(first, last),
            [self.tensor_index(t) for t in ins],
            [self.tensor_index(t) for t in outs],
            f"{self.name} layers {first}..{last} (jointdnn-edge)",
        )

    def slice(self, first: int, last: int) -> TFLiteGraph:
        """Layers ``first..last`` as a standalone :class:`TFLiteGraph` (same layer rules)."""
        return load_tflite(
            self.slice_bytes(first, last), merge_trivial=self.merge_trivial, name=f"{self.name}[{first}:{last}]"
        )


# -------------------------------------------------------------------- helpers
def _name(tensor: Any) -> str:
    n = tensor.name
    return n.decode("utf-8", "replace") if isinstance(n, (bytes, bytearray)) else str(n or "")


def _ins(op: Any) -> list[int]:
    return [t for t in op.inputs or [] if t >= 0]


def _uniquify_names(sg: Any) -> bool:
    """Give every tensor of ``sg`` a distinct non-empty name (executors map tensors by name)."""
    seen: set[str] = set()
    changed = False
    for i, t in enumerate(sg.tensors or []):
        nm = _name(t)
        if not nm or nm in seen:
            base = nm or "tensor"
            nm = f"{base}__{i}"
            while nm in seen:
                nm += "_"
            t.name = nm
            changed = True
        seen.add(nm)
    return changed


def _signature(t: Any) -> list[int]:
    sig = t.shapeSignature
    return [int(d) for d in (sig if sig is not None and len(sig) else t.shape if t.shape is not None else [])]


def _check_supported(model: Any) -> None:
    sg = model.subgraphs[0]
    for k, op in enumerate(sg.operators or []):
        kind = tfb.op_code_name(model, op)
        if kind in _CONTROL_FLOW:
            raise ModelError(
                f"operator {k} ({kind}) is control flow over other subgraphs; only single-subgraph models can be sliced"
            )
        if kind in _RESOURCE_OPS:
            raise ModelError(f"operator {k} ({kind}) uses resource variables, which a slice cannot carry")
        for t in list(op.inputs or []) + list(op.outputs or []):
            if t >= 0:
                try:
                    tfb.numpy_dtype(sg.tensors[t].type)
                except ModelError as e:
                    raise ModelError(f"operator {k} ({kind}) uses tensor {_name(sg.tensors[t])!r}: {e}") from None


def _input_shapes(sg: Any, batch_size: int | None) -> dict[int, tuple[int, ...]]:
    """The static shape of each model input once the batch is fixed."""
    shapes: dict[int, tuple[int, ...]] = {}
    dynamic_batch = False
    for t in sg.inputs or []:
        tensor = sg.tensors[t]
        sig = _signature(tensor)
        if any(d < 0 for d in sig[1:]):
            raise ModelError(
                f"model input {_name(tensor)!r} has shape {sig}: only the batch (first) dimension may be dynamic"
            )
        if sig and sig[0] < 0:
            dynamic_batch = True
            if batch_size is None:
                raise ModelError(f"model input {_name(tensor)!r} has a dynamic batch ({sig}); pass batch_size")
            sig = [int(batch_size), *sig[1:]]
        elif batch_size is not None and sig and sig[0] != batch_size:
            raise ModelError(f"model input {_name(tensor)!r} has a fixed batch of {sig[0]}, not {batch_size}")
        shapes[t] = tuple(sig)
    if batch_size is not None and not dynamic_batch and not (sg.inputs or []):
        raise ModelError("batch_size given for a model without inputs")
    return shapes


def _interpreter(data: bytes, *, delegates: bool, preserve: bool = False) -> Any:
    return make_interpreter(data, threads=1, xnnpack=delegates, preserve_all_tensors=preserve)


def _probe_runtime(model: Any, data: bytes) -> None:
    """Allocate the model in LiteRT once so that custom ops it lacks fail at load time."""
    try:
        interp = _interpreter(data, delegates=True)
    except ImportError:
        return  # no runtime installed: nothing to check against
    except ValueError as e:
        raise ModelError(f"LiteRT rejects the model: {e}") from None
    try:
        interp.allocate_tensors()
    except RuntimeError as e:
        err = unresolved_op_error(model, str(e))
        raise (err or ModelError(f"LiteRT cannot prepare the model: {e}")) from None


def _infer_shapes(model: Any, data: bytes, input_shapes: dict[int, tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
    """Static shapes of every tensor once the inputs have ``input_shapes``, found by running LiteRT.

    The model is run twice (zeros, then random values); a tensor whose shape
    differs between the runs depends on the data, which a static slice cannot
    express, and is reported with its producing operator.
    """
    sg = model.subgraphs[0]
    try:
        interp = _interpreter(data, delegates=False, preserve=True)
    except ImportError:
        raise ModelError("resolving a dynamic batch needs the LiteRT interpreter (ai-edge-litert)") from None
    try:
        details = interp.get_input_details()
        for d in details:
            interp.resize_tensor_input(d["index"], list(input_shapes[d["index"]]))
        interp.allocate_tensors()
        runs = []
        rng = np.random.default_rng(0)
        for fill in ("zeros", "random"):
            for d in details:
                shape = input_shapes[d["index"]]
                dt = np.dtype(d["dtype"])
                x = np.zeros(shape, dt) if fill == "zeros" else (rng.random(shape) * 4).astype(dt)
                interp.set_tensor(d["index"], x)
            interp.invoke()
            runs.append({td["index"]: tuple(int(v) for v in td["shape"]) for td in interp.get_tensor_details()})
    except (RuntimeError, ValueError) as e:
        err = unresolved_op_error(model, str(e))
        raise (err or ModelError(f"cannot resolve the shapes of the model with LiteRT: {e}")) from None
    producer = {t: k for k, op in enumerate(sg.operators or []) for t in op.outputs or []}
    shapes: dict[int, tuple[int, ...]] = {}
    for i, t in enumerate(sg.tensors or []):
        a, b = runs[0].get(i), runs[1].get(i)
        if a is None:
            shapes[i] = tuple(int(d) for d in (t.shape if t.shape is not None else []))
            continue
        if a != b:
            k = producer.get(i)
            who = f"operator {k} ({tfb.op_code_name(model, sg.operators[k])})" if k is not None else "a model input"
            raise ModelError(
                f"{who} gives tensor {_name(t)!r} a data-dependent shape ({a} vs {b}); it cannot be sliced"
            )
        shapes[i] = a
    return shapes


def load_tflite(
    data: bytes | bytearray | memoryview,
    *,
    batch_size: int | None = None,
    merge_trivial: bool = False,
    name: str | None = None,
) -> TFLiteGraph:
    """Load a TFLite flatbuffer as a :class:`TFLiteGraph` (layers as the module docstring describes).

    ``batch_size`` fixes a dynamic batch (required when the model has one; it
    must match a fixed batch otherwise). Raises ModelError for anything the
    slicer cannot handle, naming the operator at fault.
    """
    data = bytes(data)
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    model = tfb.read_model(data)
    # extra subgraphs are either control-flow bodies (rejected here, naming the
    # operator) or other signatures, which slices of the main subgraph never use
    _check_supported(model)
    sg = model.subgraphs[0]
    if not sg.operators:
        raise ModelError("TFLite model has no operators")
    renamed = _uniquify_names(sg)

    try:  # LiteRT's own verifier catches corruption the Python reader lets through
        _interpreter(data, delegates=False)
    except ImportError:
        pass
    except ValueError as e:
        raise ModelError(f"corrupt TFLite model: {e}") from None

    input_shapes = _input_shapes(sg, None if batch_size is None else int(batch_size))
    dynamic = any(any(d < 0 for d in _signature(t)) for t in sg.tensors or [])
    if dynamic:
        shapes = _infer_shapes(model, data, input_shapes)
    else:
        shapes = {i: tuple(int(d) for d in (t.shape if t.shape is not None else [])) for i, t in enumerate(sg.tensors)}
    if any(tfb.builtin_code(model, op) == tfb.fb.BuiltinOperator.CUSTOM for op in sg.operators):
        _probe_runtime(model, data)
    return TFLiteGraph(
        data,
        model,
        name=name or "model",
        shapes=shapes,
        frozen_shapes=dynamic,
        renamed=renamed,
        merge_trivial=merge_trivial,
        batch_size=None if batch_size is None else int(batch_size),
    )
