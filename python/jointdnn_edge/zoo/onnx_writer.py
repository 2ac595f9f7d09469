"""Write a zoo :class:`~jointdnn_edge.zoo.spec.ModelSpec` as an ONNX model, one node per op.

Weights become initializers named ``<op>.<weight>``; small constant operands
(clip bounds, reshape targets) become initializers too, so they count as
weights and never as layers. The model uses opset 17 and IR version 8, which
every onnxruntime since 1.13 reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ModelError
from ..models.onnx_model import skeleton
from .spec import ModelSpec, OpSpec

__all__ = ["OPSET", "to_model", "write"]

OPSET = 17
IR_VERSION = 8


def write(spec: ModelSpec) -> bytes:
    """The serialized ONNX model of ``spec``."""
    data: bytes = to_model(spec).SerializeToString()
    return data


def to_model(spec: ModelSpec) -> onnx.ModelProto:
    """The ONNX model of ``spec`` (structure checked with ``onnx.checker``)."""
    spec.validate()
    # built in place, not with helper.make_graph/make_model, which copy every
    # initializer again (seconds and gigabytes for the full-size models)
    model = onnx.ModelProto()
    model.ir_version = IR_VERSION
    model.producer_name = "jointdnn-edge.zoo"
    opset = model.opset_import.add()
    opset.domain, opset.version = "", OPSET
    g = model.graph
    g.name = spec.name
    for op in spec.ops:
        node, weights = _node(spec, op)
        g.node.append(node)
        for wname, array in weights:
            t = g.initializer.add()
            t.name = wname
            t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
            t.dims.extend(array.shape)
            # ONNX raw data is little-endian whatever the host
            t.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    g.input.extend(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)) for t in spec.inputs)
    g.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, list(spec.shape(t))) for t in spec.outputs)
    g.value_info.extend(
        helper.make_tensor_value_info(op.name, TensorProto.FLOAT, list(op.shape))
        for op in spec.ops
        if op.name not in spec.outputs
    )
    model.doc_string = str(spec.info.get("title", spec.name))
    for key, value in sorted(spec.info.items()):
        if isinstance(value, (str, int, float, bool)):
            entry = model.metadata_props.add()
            entry.key, entry.value = f"jointdnn.{key}", str(value)
    # structural check; a weight-less skeleton keeps full-size models fast to check
    onnx.checker.check_model(skeleton(model, stand_ins=True))
    return model


def _node(spec: ModelSpec, op: OpSpec) -> tuple[onnx.NodeProto, list[tuple[str, np.ndarray]]]:
    """One ONNX node for ``op`` plus the initializers it reads, as ``(name, array)``."""
    k, name, ins = op.kind, op.name, list(op.inputs)
    w = op.weights
    a = op.attrs
    inits: list[tuple[str, np.ndarray]] = []

    def weight(key: str, array: Any = None, dtype: Any = np.float32) -> str:
        tname = f"{name}.{key}"
        inits.append((tname, np.ascontiguousarray(np.asarray(w[key] if array is None else array, dtype=dtype))))
        return tname

    if k == "conv":
        args = [*ins, weight("weight")] + ([weight("bias")] if "bias" in w else [])
        node = helper.make_node(
            "Conv",
            args,
            [name],
            name=name,
            kernel_shape=list(a["kernel"]),
            strides=list(a["stride"]),
            pads=_onnx_pads(a["pads"]),
            dilations=list(a["dilation"]),
            group=int(a["groups"]),
        )
    elif k == "deconv":
        node = helper.make_node(
            "ConvTranspose",
            [*ins, weight("weight"), weight("bias")],
            [name],
            name=name,
            kernel_shape=list(a["kernel"]),
            strides=list(a["stride"]),
            pads=_onnx_pads(a["pads"]),
        )
    elif k == "fc":
        in_shape = spec.shape(ins[0])
        if len(in_shape) == 2:
            node = helper.make_node("Gemm", [*ins, weight("weight"), weight("bias")], [name], name=name, transB=1)
        else:
            # a 4-D input: a Conv whose kernel covers the whole input is flatten + fc in one node
            _, c, h, wd = in_shape
            kernel = np.reshape(w["weight"], (w["weight"].shape[0], c, h, wd))
            node = helper.make_node(
                "Conv", [*ins, weight("weight", kernel), weight("bias")], [name], name=name, kernel_shape=[h, wd]
            )
    elif k == "relu":
        node = helper.make_node("Relu", ins, [name], name=name)
    elif k == "tanh":
        node = helper.make_node("Tanh", ins, [name], name=name)
    elif k == "sigmoid":
        node = helper.make_node("Sigmoid", ins, [name], name=name)
    elif k == "leaky_relu":
        node = helper.make_node("LeakyRelu", ins, [name], name=name, alpha=float(a["alpha"]))
    elif k == "clip":
        lo = weight("min", np.float32(a["min"]))
        hi = weight("max", np.float32(a["max"]))
        node = helper.make_node("Clip", [*ins, lo, hi], [name], name=name)
    elif k in ("maxpool", "avgpool"):
        kw: dict[str, Any] = {
            "kernel_shape": list(a["kernel"]),
            "strides": list(a["stride"]),
            "pads": _onnx_pads(a["pads"]),
        }
        if k == "avgpool":
            kw["count_include_pad"] = 0
        node = helper.make_node("MaxPool" if k == "maxpool" else "AveragePool", ins, [name], name=name, **kw)
    elif k == "global_avgpool":
        node = helper.make_node("GlobalAveragePool", ins, [name], name=name)
    elif k == "lrn":
        node = helper.make_node(
            "LRN",
            ins,
            [name],
            name=name,
            size=int(a["size"]),
            alpha=float(a["alpha"]),
            beta=float(a["beta"]),
            bias=float(a["bias"]),
        )
    elif k == "batchnorm":
        node = helper.make_node(
            "BatchNormalization",
            [*ins, weight("scale"), weight("bias"), weight("mean"), weight("var")],
            [name],
            name=name,
            epsilon=float(a["epsilon"]),
        )
    elif k == "add":
        node = helper.make_node("Add", ins, [name], name=name)
    elif k == "concat":
        node = helper.make_node("Concat", ins, [name], name=name, axis=int(a["axis"]))
    elif k == "flatten":
        node = helper.make_node("Flatten", ins, [name], name=name, axis=1)
    elif k == "reshape":
        node = helper.make_node("Reshape", [*ins, weight("shape", np.array(a["shape"]), np.int64)], [name], name=name)
    elif k == "softmax":
        node = helper.make_node("Softmax", ins, [name], name=name, axis=int(a["axis"]))
    elif k == "rnn":
        d = 2 if a["direction"] == "bidirectional" else 1
        act = {"relu": "Relu", "tanh": "Tanh"}[a["activation"]]
        kw = {"hidden_size": int(a["hidden"]), "direction": a["direction"], "activations": [act] * d}
        if a.get("clip") is not None:
            kw["clip"] = float(a["clip"])
        node = helper.make_node("RNN", [*ins, weight("W"), weight("R"), weight("B")], [name], name=name, **kw)
    else:  # pragma: no cover - validate() rejects unknown kinds
        raise ModelError(f"op {name!r}: no ONNX form for kind {k!r}")
    return node, inits


def _onnx_pads(pads: tuple[int, int, int, int]) -> list[int]:
    """Spec pads (top, left, bottom, right) to ONNX's (h_begin, w_begin, h_end, w_end)."""
    top, left, bottom, right = pads
    return [top, left, bottom, right]
