"""ONNX models as a :class:`~jointdnn_edge.models.graph.ModelGraph`, sliced with ``onnx.utils.Extractor``.

Loading *normalizes* the model so that every layer range can be cut out as a
standalone model:

1. the model inputs get static shapes (``batch_size`` for a dynamic first
   dimension, ``input_shapes`` for anything else) and ONNX shape inference
   (with data propagation) gives every tensor a static shape;
2. ``Shape``/``Size`` nodes become ``Constant`` nodes (their value is known
   once shapes are static), so shape arithmetic never ties a slice to
   activations produced outside it;
3. nodes whose inputs are all constants (``Constant`` nodes, initializers and
   what is computed from them only, e.g. a weight ``Transpose`` or
   ``DequantizeLinear``) are *weight nodes*: they are not layers, their
   source tensors count as the weight bytes of the first layer reading them,
   and the extractor copies them into every slice that needs them;
4. nodes whose outputs nothing reads are dropped.

:meth:`OnnxGraph.to_bytes` returns this normalized model, which computes the
same function as the original for the fixed input shapes.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ConfigError, ModelError
from .graph import Layer, ModelGraph, TensorInfo

__all__ = ["TRIVIAL_OPS", "OnnxGraph", "load_onnx"]

#: Operators merged into the layer producing their input when ``merge_trivial=True``:
#: activations, batch normalization, and shape-only ops.
TRIVIAL_OPS = frozenset(
    {
        # activations
        "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
        "Celu", "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu",
        # normalization with fixed statistics
        "BatchNormalization",
        # reshapes and no-ops
        "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout",
    }
)  # fmt: skip

#: Operators that are never constant-folded (their output is not a function of their inputs).
_NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_KNOWN_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
#: onnxruntime's contrib-op domain: accepted here, checked when a session is created.
_RUNTIME_DOMAINS = frozenset({"com.microsoft"})


class OnnxGraph(ModelGraph):
    """An ONNX model seen as layers; see the module docstring for the normalization."""

    format = "onnx"

    def __init__(
        self,
        model: onnx.ModelProto,
        name: str,
        layers: list[Layer],
        inputs: list[TensorInfo],
        outputs: list[TensorInfo],
        *,
        merge_trivial: bool,
    ) -> None:
        self.model = model
        self.name = name
        self.layers = layers
        self.inputs = inputs
        self.outputs = outputs
        self.merge_trivial = merge_trivial
        self._bytes: bytes | None = None
        self._extractor: onnx.utils.Extractor | None = None
        self._slices: collections.OrderedDict[tuple[int, int], bytes] = collections.OrderedDict()
        self._tensors = {t.name: t for t in inputs}
        self._tensors.update({t.name: t for layer in layers for t in layer.outputs})

    def tensor(self, name: str) -> TensorInfo:
        """Shape and dtype of a model input or a layer output."""
        return self._tensors[name]

    def to_bytes(self) -> bytes:
        """The normalized whole model, serialized."""
        if self._bytes is None:
            self._bytes = self.model.SerializeToString()
        return self._bytes

    def slice_model(self, first: int, last: int) -> onnx.ModelProto:
        """Layers ``first..last`` as a standalone ONNX model (``onnx.utils.Extractor``, in memory)."""
        ins, outs = self.slice_io(first, last)
        if self._extractor is None:
            self._extractor = onnx.utils.Extractor(self.model)
        try:
            sliced = self._extractor.extract_model(ins, outs)
        except ValueError as e:
            raise ModelError(f"cannot slice layers {first}..{last} of {self.name!r}: {e}") from None
        sliced.graph.name = f"{self.name}[{first}:{last}]"
        sliced.producer_name = "jointdnn-edge"
        return sliced

    def slice(self, first: int, last: int) -> OnnxGraph:
        """Layers ``first..last`` as a standalone :class:`OnnxGraph` (same layer rules)."""
        return load_onnx(
            self.slice_model(first, last), merge_trivial=self.merge_trivial, name=f"{self.name}[{first}:{last}]"
        )

    def slice_bytes(self, first: int, last: int) -> bytes:
        """Layers ``first..last`` as a serialized standalone ONNX model (a few recent ones are cached)."""
        key = (first, last)
        data = self._slices.get(key)
        if data is None:
            data = self.slice_model(first, last).SerializeToString()
            self._slices[key] = data
            while len(self._slices) > 8:
                self._slices.popitem(last=False)
        else:
            self._slices.move_to_end(key)
        return data


# ------------------------------------------------------------------ loading


def load_onnx(
    source: bytes | onnx.ModelProto | str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    merge_trivial: bool = False,
    name: str | None = None,
) -> OnnxGraph:
    """Load an ONNX model (bytes, ``ModelProto`` or path) as an :class:`OnnxGraph`.

    Raises :class:`ModelError` for undecodable or truncated data, control flow,
    operators the runtime lacks, and shapes that stay dynamic, naming the node.
    """
    model = _parse(source)
    _check_structure(model)
    try:
        onnx.checker.check_model(skeleton(model, stand_ins=True))
    except onnx.checker.ValidationError as e:
        raise ModelError(f"invalid ONNX model: {_first_line(e)}") from None
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    _name_nodes(model.graph)
    _fix_input_shapes(model, None if batch_size is None else int(batch_size), dict(input_shapes or {}))
    model = _infer_and_fold_shapes(model)
    consts = _constant_tensors(model.graph)
    _drop_dead_nodes(model.graph, consts)
    return _build_graph(model, consts, merge_trivial=merge_trivial, name=name)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _parse(source: bytes | onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            # onnx.load also resolves external-data files next to the model
            model = onnx.load(os.fspath(source))
        except FileNotFoundError as e:
            raise ModelError(f"{source}: {e.strerror}") from None
        except Exception as e:  # protobuf DecodeError and friends
            raise ModelError(f"{source}: not a readable ONNX model ({_first_line(e)})") from None
    else:
        data = bytes(source)
        if not data:
            raise ModelError("empty model data")
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as e:  # google.protobuf.message.DecodeError, RuntimeWarning-as-error, ...
            raise ModelError(
                f"not an ONNX model (protobuf decoding failed: {_first_line(e)}) and not a TFLite "
                "flatbuffer (no 'TFL3' identifier at bytes 4..8); the file may be truncated or of another format"
            ) from None
        for t in model.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise ModelError(f"initializer {t.name!r} is stored in an external file: load the model from its path")
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelError("not an ONNX model: it has no graph nodes (truncated or of another format)")
    if not model.opset_import:
        raise ModelError("ONNX model without opset imports (the file is probably truncated)")
    if model.functions:
        # local functions would hide their nodes from slicing: inline them
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    return model


def _check_structure(model: onnx.ModelProto) -> None:
    """Reject control flow and operators no runtime here implements, naming the node."""
    for i, node in enumerate(model.graph.node):
        label = f"node {node.name or f'#{i}'!r} ({node.domain + '::' if node.domain else ''}{node.op_type})"
        if node.op_type in _CONTROL_FLOW or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
        ):
            raise ModelError(f"{label} has a control-flow subgraph, which cannot be split into layers")
        if node.domain in _KNOWN_DOMAINS:
            if not onnx.defs.has(node.op_type, node.domain):
                raise ModelError(f"{label}: unknown ONNX operator")
        elif node.domain not in _RUNTIME_DOMAINS:
            raise ModelError(
                f"{label}: custom operator of domain {node.domain!r}, which onnxruntime does not implement"
            )


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give every node a unique, non-empty name (layers and errors refer to them)."""
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        base = node.name or f"{node.op_type}_{i}"
        nm, k = base, 1
        while nm in seen:
            nm, k = f"{base}_{k}", k + 1
        node.name = nm
        seen.add(nm)


def _fix_input_shapes(model: onnx.ModelProto, batch_size: int | None, input_shapes: dict[str, Sequence[int]]) -> None:
    """Make every model input static: ``input_shapes``, else the model's dims, else ``batch_size`` (default 1) first."""
    g = model.graph
    init_names = {t.name for t in g.initializer}
    # IR < 4 lists initializers among the inputs; they are weights, not feeds
    if any(i.name in init_names for i in g.input):
        kept = [i for i in g.input if i.name not in init_names]
        del g.input[:]
        g.input.extend(kept)  # copies: edit g.input below, not ``kept``
    real = list(g.input)
    unknown = set(input_shapes) - {i.name for i in real}
    if unknown:
        raise ModelError(
            f"input_shapes names {sorted(unknown)}, which are not inputs of the model ({[i.name for i in real]})"
        )
    for vi in real:
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"model input {vi.name!r} is not a tensor (sequences and maps are not supported)")
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            raise ModelError(f"model input {vi.name!r} has no shape; give input_shapes={{{vi.name!r}: (...)}}")
        given = input_shapes.get(vi.name)
        dims = tt.shape.dim
        if given is not None and len(given) != len(dims):
            raise ModelError(f"input_shapes[{vi.name!r}] has rank {len(given)}, the model input has rank {len(dims)}")
        for k, d in enumerate(dims):
            static = d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            if given is not None:
                want = int(given[k])
                if want < 1 or (static is not None and static != want):
                    raise ModelError(
                        f"input_shapes[{vi.name!r}][{k}] = {want} conflicts with the model's dimension {static}"
                    )
                value = want
            elif static is not None:
                if k == 0 and batch_size is not None and static != batch_size:
                    raise ModelError(f"model input {vi.name!r} has a fixed batch of {static}, not {batch_size}")
                value = static
            elif k == 0:
                value = 1 if batch_size is None else batch_size
            else:
                label = d.dim_param or "?"
                raise ModelError(
                    f"model input {vi.name!r} has a dynamic dimension {k} ({label}); "
                    f"give input_shapes={{{vi.name!r}: (...)}}"
                )
            d.Clear()
            d.dim_value = value
    # stale intermediate/ output shapes may carry symbolic dims: let inference redo them
    del g.value_info[:]
    for vo in g.output:
        if vo.type.HasField("tensor_type"):
            vo.type.tensor_type.ClearField("shape")


def _value_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    g = model.graph
    out = {vi.name: vi.type for vi in g.value_info}
    out.update({vi.name: vi.type for vi in g.input})
    out.update({vi.name: vi.type for vi in g.output})
    return out


def _static_shape(tp: onnx.TypeProto | None) -> tuple[int, ...] | None:
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in tp.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def _big(t: onnx.TensorProto) -> bool:
    return int(np.prod(list(t.dims), dtype=np.int64)) > _FOLD_LIMIT and t.data_type != onnx.TensorProto.STRING


def skeleton(model: onnx.ModelProto, *, stand_ins: bool = False) -> onnx.ModelProto:
    """A copy of ``model`` without the bytes of its large tensors (initializers and ``Constant`` values).

    Shape inference and the checker serialize the whole model, which costs
    seconds and gigabytes for a full-size VGG; they only need the weights'
    shapes. By default large tensors keep their dims and lose their data (for
    shape inference); ``stand_ins=True`` replaces them by one-element tensors
    of the same type instead, which ``onnx.checker`` (without ``full_check``)
    accepts and which still checks every node, attribute and name.
    """

    def strip(t: onnx.TensorProto) -> None:
        if not _big(t):
            return
        if stand_ins:
            itemsize = _np_dtype(t.data_type).itemsize
            t.CopyFrom(helper.make_tensor(t.name, t.data_type, [1], b"\0" * itemsize, raw=True))
        else:
            for f in _DATA_FIELDS:
                t.ClearField(f)

    sk = onnx.ModelProto()
    sk.CopyFrom(model)
    for t in sk.graph.initializer:
        strip(t)
    for node in sk.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                strip(a.t)
    return sk


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with inferred shapes (inference runs on a weight-less skeleton; the types are copied back)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton(model), check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        raise ModelError(f"ONNX shape inference failed with the given input shapes: {_first_line(e)}") from None
    g = model.graph
    del g.value_info[:]
    g.value_info.extend(inferred.graph.value_info)
    types = {vi.name: vi.type for vi in inferred.graph.output}
    for vo in g.output:
        if vo.name in types:
            vo.type.CopyFrom(types[vo.name])
    return model


def _infer_and_fold_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape inference, then ``Shape``/``Size`` of static tensors become constants (repeat until stable)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    for _ in range(8):
        model = _infer(model)
        types = _value_types(model)
        changed = False
        for idx, node in enumerate(model.graph.node):
            if node.op_type not in ("Shape", "Size") or node.domain not in ("", "ai.onnx"):
                continue
            shape = _static_shape(types.get(node.input[0]))
            if shape is None:
                continue
            if node.op_type == "Size":
                value = np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
            else:
                attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                start, end = attrs.get("start", 0), attrs.get("end", None)
                value = np.array(shape[start:end] if opset >= 15 else shape, dtype=np.int64)
            const = helper.make_node(
                "Constant",
                [],
                list(node.output),
                name=node.name,
                value=numpy_helper.from_array(value, node.output[0] + ".value"),
            )
            model.graph.node[idx].CopyFrom(const)
            changed = True
        changed |= _fold_small_constants(model, opset)
        if not changed:
            return model
    return model


#: Constant subexpressions up to this many elements are evaluated at load time (shape arithmetic);
#: larger ones (weights, weight transposes, dequantization) stay nodes and travel with their layer.
_FOLD_LIMIT = 4096


def _fold_small_constants(model: onnx.ModelProto, opset: int) -> bool:
    """Evaluate small all-constant nodes (e.g. ``Cast``/``Slice``/``Concat`` of folded shapes) into ``Constant`` nodes.

    Shape inference then sees literal ``Reshape`` targets and the like. Returns
    True when something was folded.
    """
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    values: dict[str, np.ndarray] = {}
    for t in g.initializer:
        if int(np.prod(list(t.dims), dtype=np.int64)) <= _FOLD_LIMIT and t.data_location != onnx.TensorProto.EXTERNAL:
            values[t.name] = numpy_helper.to_array(t)
    opsets = {o.domain or "": o.version for o in model.opset_import}
    opsets.setdefault("", opset)
    new_nodes: list[onnx.NodeProto] = []
    changed = False
    for node in g.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = next((a for a in node.attribute), None)
            small = attr is not None and (
                attr.type != onnx.AttributeProto.TENSOR
                or int(np.prod(list(attr.t.dims), dtype=np.int64)) <= _FOLD_LIMIT
            )
            if small and attr is not None and attr.name != "sparse_value":
                try:
                    outs: Any = ReferenceEvaluator(node, opsets=opsets).run(None, {})
                    values[node.output[0]] = np.asarray(outs[0])
                except Exception:  # an attribute form the reference cannot evaluate: leave it alone
                    pass
            new_nodes.append(node)
            continue
        ins = [t for t in node.input if t]
        foldable = (
            ins
            and node.domain in ("", "ai.onnx")
            and node.op_type not in _NONDETERMINISTIC
            and all(t in values for t in ins)
        )
        results = None
        if foldable:
            try:
                results = ReferenceEvaluator(node, opsets=opsets).run(None, {t: values[t] for t in ins})
            except Exception:  # leave nodes the reference evaluator cannot run to the runtime
                results = None
        if results is None or any(np.asarray(r).size > _FOLD_LIMIT for r in results):
            new_nodes.append(node)
            continue
        for k, (out, r) in enumerate(zip(node.output, results)):
            if not out:
                continue
            arr = np.asarray(r)
            values[out] = arr
            new_nodes.append(
                helper.make_node(
                    "Constant",
                    [],
                    [out],
                    name=node.name if k == 0 else f"{node.name}:{k}",
                    value=numpy_helper.from_array(arr, out + ".value"),
                )
            )
        changed = True
    if changed:
        del g.node[:]
        g.node.extend(new_nodes)
    return changed


def _constant_tensors(graph: onnx.GraphProto) -> set[str]:
    """Names of tensors computable from constants alone (initializers, Constant nodes, and nodes of those)."""
    consts = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type in _NONDETERMINISTIC:
            continue
        ins = [t for t in node.input if t]
        if all(t in consts for t in ins) and (ins or node.op_type in ("Constant", "ConstantOfShape")):
            consts.update(t for t in node.output if t)
    return consts


def _drop_dead_nodes(graph: onnx.GraphProto, consts: set[str]) -> None:
    """Remove nodes (and initializers) nothing needed reads; model outputs are needed."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(t in needed for t in node.output if t):
            keep.append(node)
            needed.update(t for t in node.input if t)
    if len(keep) != len(graph.node):
        keep.reverse()
        del graph.node[:]
        graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in needed]
    if len(inits) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(inits)


def _np_dtype(elem_type: int) -> np.dtype[Any]:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        raise ModelError(f"tensor element type {elem_type} has no numpy equivalent") from None


def _tensor_nbytes(t: onnx.TensorProto) -> int:
    n = int(np.prod(list(t.dims), dtype=np.int64)) if len(t.dims) else 1
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    return n * _np_dtype(t.data_type).itemsize


def _attr_summary(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (
            onnx.AttributeProto.TENSOR,
            onnx.AttributeProto.GRAPH,
            onnx.AttributeProto.GRAPHS,
            onnx.AttributeProto.TENSORS,
        ):
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _build_graph(model: onnx.ModelProto, consts: set[str], *, merge_trivial: bool, name: str | None) -> OnnxGraph:
    g = model.graph
    types = _value_types(model)
    model_outputs = [o.name for o in g.output]
    model_inputs = [i.name for i in g.input]

    # ---- weight sources: every constant tensor traced back to initializers / Constant nodes
    source_bytes: dict[str, int] = {t.name: _tensor_nbytes(t) for t in g.initializer}
    sources: dict[str, frozenset[str]] = {t.name: frozenset([t.name]) for t in g.initializer}
    for node in g.node:
        if not all(t in consts for t in node.output if t):
            continue
        if node.op_type == "Constant":
            nbytes = 0
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    nbytes += _tensor_nbytes(a.t)
                elif a.type in (onnx.AttributeProto.FLOATS, onnx.AttributeProto.INTS):
                    nbytes += 4 * len(a.floats) + 8 * len(a.ints)
                else:
                    nbytes += 8
            source_bytes[node.name] = nbytes
            src = frozenset([node.name])
        else:
            src = frozenset().union(*(sources.get(t, frozenset()) for t in node.input if t))
        for t in node.output:
            if t:
                sources[t] = src

    for out in model_outputs:
        if out in consts or out in model_inputs:
            raise ModelError(f"model output {out!r} is a constant or a model input: there is nothing to run")

    # ---- group the non-constant nodes into layers
    compute = [n for n in g.node if not all(t in consts for t in n.output if t)]
    consumers: dict[str, list[int]] = collections.defaultdict(list)
    for k, node in enumerate(compute):
        for t in node.input:
            if t and t not in consts:
                consumers[t].append(k)
    producer_node: dict[str, int] = {t: k for k, node in enumerate(compute) for t in node.output if t}
    group_of: list[int] = []
    groups: list[list[int]] = []
    for k, node in enumerate(compute):
        acts = [t for t in node.input if t and t not in consts]
        target = None
        if merge_trivial and node.op_type in TRIVIAL_OPS and len(set(acts)) == 1:
            src = acts[0]
            if src in producer_node and len(consumers[src]) == 1 and src not in model_outputs:
                target = group_of[producer_node[src]]
        if target is None:
            groups.append([k])
            group_of.append(len(groups) - 1)
        else:
            groups[target].append(k)
            group_of.append(target)

    # ---- layers
    attributed: set[str] = set()
    outputs_needed = set(model_outputs)
    layers: list[Layer] = []
    for index, members in enumerate(groups):
        nodes = [compute[k] for k in members]
        produced = [t for n in nodes for t in n.output if t]
        produced_set = set(produced)
        ins: list[str] = []
        weights: set[str] = set()
        for n in nodes:
            for t in n.input:
                if not t:
                    continue
                if t in consts:
                    weights.update(sources.get(t, ()))
                elif t not in produced_set and t not in ins:
                    ins.append(t)
        new_sources = weights - attributed
        attributed |= new_sources
        outs: list[TensorInfo] = []
        for t in produced:
            leaves = t in outputs_needed or any(group_of[c] != index for c in consumers.get(t, ()))
            if not leaves:
                continue
            shape = _static_shape(types.get(t))
            owner = next(n for n in nodes if t in n.output)
            if shape is None:
                raise ModelError(
                    f"node {owner.name!r} ({owner.op_type}): output {t!r} has no static shape with the given input "
                    "shapes (dynamic or data-dependent shape); fix the input shapes or simplify the model"
                )
            outs.append(TensorInfo(t, shape, _np_dtype(types[t].tensor_type.elem_type)))
        main = nodes[0]
        attrs = _attr_summary(main)
        if len(nodes) > 1:
            attrs["merged_op_types"] = [n.op_type for n in nodes[1:]]
        layers.append(
            Layer(
                index=index,
                name=main.name,
                op_type=main.op_type if not main.domain else f"{main.domain}::{main.op_type}",
                ops=tuple(n.name for n in nodes),
                inputs=tuple(ins),
                outputs=tuple(outs),
                weight_bytes=int(sum(source_bytes.get(s, 0) for s in new_sources)),
                attrs=attrs,
            )
        )

    inputs = []
    for vi in g.input:
        shape = _static_shape(vi.type)
        assert shape is not None  # fixed by _fix_input_shapes
        inputs.append(TensorInfo(vi.name, shape, _np_dtype(vi.type.tensor_type.elem_type)))
    by_name = {t.name: t for layer in layers for t in layer.outputs}
    outputs = [by_name[o] for o in model_outputs]
    graph_name = name or g.name or "model"
    return OnnxGraph(model, graph_name, layers, inputs, outputs, merge_trivial=merge_trivial)
