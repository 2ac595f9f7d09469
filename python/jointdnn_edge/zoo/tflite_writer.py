"""Write a zoo :class:`~jointdnn_edge.zoo.spec.ModelSpec` as a TFLite model, one operator per op.

The model goes through the same flatbuffer builder as the slicer
(:class:`~jointdnn_edge.models.tflite_flatbuffer.GraphBuilder`), so a written
model loaded with ``load_model(..., merge_trivial=False)`` has exactly
``len(spec.ops)`` layers, named like the spec's ops.

Layouts
-------
TFLite is channel-last: a logical ``(N, C, H, W)`` tensor is stored
``(N, H, W, C)``; 2-D and 3-D tensors keep their logical shape. Use
:func:`to_tflite_input` / :func:`to_logical` to move arrays across that
boundary (:func:`tensor_layouts` says how each tensor is held). Two spec ops
have no one-operator TFLite form at face value and are rewritten exactly (up
to float rounding):

* ``fc`` on a 4-D input becomes ``FULLY_CONNECTED``, which flattens NHWC
  activations in ``H, W, C`` order, so the weight columns are permuted from
  the spec's ``C, H, W`` order; its output is ``(N, units)``, the same memory as
  the logical ``(N, units, 1, 1)``. When an ``fc`` output is reshaped to an
  image (Chair), the fc's rows are permuted so that the ``RESHAPE`` yields NHWC.
* ``clip(0, m)`` (Deep Speech's clipped ReLU, ``m = 20``) has no operator:
  ``RELU6`` computes it on activations scaled by ``6 / m``. The scale is folded
  into the producing fc or recurrent op's weights and divided out again in the
  consuming fc, so the tensors of that stretch hold ``6 / m`` times the logical
  values while everything outside it (and every model output) is unchanged.
  The recurrent op's own clipped ReLU is handled the same way (fused ``RELU6``),
  and ``clip(-m, m)`` is ``RELU_N1_TO_1`` on values scaled by ``1 / m``. Such a
  clip must read an fc, conv, deconv or rnn output that nothing else reads, and
  feed (through relu, pooling or reshapes) another one; anything else raises
  :class:`~jointdnn_edge.errors.ModelError`.

``batchnorm`` is a per-channel affine map, written as a 1×1 ``DEPTHWISE_CONV_2D``
with multiplier 1 (TFLite has no batch-norm operator, and the model stays at
one operator per op); ``lrn`` uses TFLite's convention (radius ``(size-1)/2``,
``alpha / size``); ``rnn`` becomes ``UNIDIRECTIONAL_SEQUENCE_RNN`` or
``BIDIRECTIONAL_SEQUENCE_RNN`` (time-major, merged outputs, the two ONNX biases
summed), whose ``(T, N, D*H)`` output has the memory layout of ONNX's
``(T, D, N, H)`` since the zoo's sequences have ``N == 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models import tflite_flatbuffer as tfb
from ..models.tflite_flatbuffer import GraphBuilder
from .spec import ModelSpec, OpSpec

__all__ = ["TensorLayout", "tensor_layouts", "to_logical", "to_tflite_input", "write"]

# ops that act element by element, so a permutation of features passes through them
_ELEMENTWISE = frozenset({"relu", "leaky_relu", "clip", "tanh", "sigmoid"})
# ops commuting with a positive scale: f(s * x) = s * f(x)
_HOMOGENEOUS = frozenset({"relu", "leaky_relu", "maxpool", "avgpool", "global_avgpool", "flatten", "reshape"})
# ops whose weights can absorb any scale of their input
_ABSORBING = frozenset({"fc", "conv", "deconv", "rnn"})


@dataclass
class _Layout:
    """How a TFLite tensor holds a logical spec tensor.

    ``perm``: for 2-D tensors, TFLite feature ``j`` is logical feature ``perm[j]``
    (``None``: identity); ``scale``: the TFLite values are ``scale`` times the logical ones.
    """

    index: int
    nhwc: bool
    perm: np.ndarray | None = None
    scale: float = 1.0


def _hwc_perm(c: int, h: int, w: int) -> np.ndarray | None:
    """Logical C-major feature index of each position of an H, W, C flattening (None when identical)."""
    if h * w == 1:
        return None
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def _clip_form(op: OpSpec) -> tuple[str, float]:
    """The TFLite activation computing ``op`` (a clip) and the scale its input must carry."""
    lo, hi = float(op.attrs["min"]), float(op.attrs["max"])
    if lo == 0.0 and hi > 0:
        return "RELU6", 6.0 / hi
    if lo == -hi and hi > 0:
        return "RELU_N1_TO_1", 1.0 / hi
    raise ModelError(f"op {op.name!r}: clip({lo}, {hi}) has no TFLite activation (needs min 0 or min = -max)")


@dataclass(frozen=True)
class TensorLayout:
    """How the written TFLite model holds one logical spec tensor.

    ``nhwc``: a 4-D image stored channel-last; ``perm``: for a 2-D tensor, TFLite
    feature ``j`` is logical feature ``perm[j]`` (``None``: same order); ``scale``:
    TFLite values are ``scale`` times the logical ones; ``shape``: the TFLite shape.
    """

    nhwc: bool
    perm: np.ndarray | None
    scale: float
    shape: tuple[int, ...]


class _ShapeOnlyBuilder(GraphBuilder):
    """A builder that records tensors and operators but drops constant data (layout planning)."""

    def tensor(self, name: str, shape: Any, dtype: Any = np.float32, data: Any = None, **kwargs: Any) -> int:
        return super().tensor(name, shape, dtype, None, **kwargs)


class _Writer:
    def __init__(self, spec: ModelSpec, builder: GraphBuilder | None = None) -> None:
        spec.validate()
        self.spec = spec
        self.g = builder if builder is not None else GraphBuilder(str(spec.info.get("title", spec.name)))
        self.layout: dict[str, _Layout] = {}
        self.consumers: dict[str, list[OpSpec]] = {}
        for op in spec.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)
        self.outputs = set(spec.outputs)

    # ---------------------------------------------------------- look-ahead
    def _wanted(self, tensor: str) -> tuple[float | None, np.ndarray | None]:
        """The scale and feature order that ``tensor``'s consumers want it produced in.

        Scale ``None`` means "any": the path leads only through scale-commuting
        ops into an op that absorbs a scale in its weights.
        """
        users = self.consumers.get(tensor, [])
        if tensor in self.outputs or len(users) != 1:
            return 1.0, None
        c = users[0]
        if c.kind in _ABSORBING:
            return None, None
        if c.kind == "clip":
            return _clip_form(c)[1], self._wanted(c.name)[1]
        if c.kind == "reshape":
            src, dst = self.spec.shape(tensor), c.shape
            scale = self._wanted(c.name)[0]
            return scale, (_hwc_perm(*dst[1:]) if len(src) == 2 and len(dst) == 4 else None)
        if c.kind in _HOMOGENEOUS:
            scale, perm = self._wanted(c.name)
            return scale, perm if c.kind in _ELEMENTWISE else None
        if c.kind in _ELEMENTWISE:  # tanh, sigmoid: the order passes through, a scale does not
            return 1.0, self._wanted(c.name)[1]
        return 1.0, None

    def _scale(self, tensor: str) -> float:
        scale = self._wanted(tensor)[0]
        return 1.0 if scale is None else scale

    # ------------------------------------------------------------- helpers
    def _in(self, op: OpSpec, i: int = 0, *, plain: bool = False) -> _Layout:
        lay = self.layout[op.inputs[i]]
        if plain and (lay.perm is not None or lay.scale != 1.0):
            raise ModelError(f"op {op.name!r} ({op.kind}) cannot take a permuted or rescaled input")
        return lay

    def _set(self, op: OpSpec, index: int, *, nhwc: bool, perm: np.ndarray | None = None, scale: float = 1.0) -> None:
        self.layout[op.name] = _Layout(index, nhwc, perm, scale)

    def _bias(self, op: OpSpec, n: int) -> np.ndarray:
        b = op.weights.get("bias")
        return np.zeros(n, np.float32) if b is None else np.asarray(b, np.float32)

    # ---------------------------------------------------------------- emit
    def write(self) -> bytes:
        ins, outs = self.emit_all()
        return self.g.finish(ins, outs)

    def emit_all(self) -> tuple[list[int], list[int]]:
        """Emit every input and op; return the model's input and output tensor indices."""
        g = self.g
        ins = []
        for t in self.spec.inputs:
            nhwc = len(t.shape) == 4
            shape = (t.shape[0], t.shape[2], t.shape[3], t.shape[1]) if nhwc else t.shape
            idx = g.input(t.name, shape)
            self.layout[t.name] = _Layout(idx, nhwc)
            ins.append(idx)
        for op in self.spec.ops:
            emit = getattr(self, f"_op_{op.kind}", None)
            if emit is None:
                raise ModelError(f"op {op.name!r}: no TFLite form for kind {op.kind!r}")
            emit(op)
        outs = []
        for out in self.spec.outputs:
            lay = self.layout[out]
            if lay.perm is not None or lay.scale != 1.0:  # _wanted() never asks this of an output
                raise ModelError(f"internal: model output {out!r} left permuted or rescaled")
            outs.append(lay.index)
        return ins, outs

    def _need_nhwc(self, op: OpSpec) -> _Layout:
        lay = self._in(op)
        if not lay.nhwc:
            raise ModelError(f"op {op.name!r} ({op.kind}) needs a 4-D image input")
        return lay

    def _op_conv(self, op: OpSpec) -> None:
        a = op.attrs
        if int(a.get("groups", 1)) != 1:
            raise ModelError(f"op {op.name!r}: grouped convolution is not supported by the TFLite writer")
        lay = self._need_nhwc(op)
        scale = self._scale(op.name)
        w = np.transpose(op.weights["weight"], (0, 2, 3, 1)) * np.float32(scale / lay.scale)
        b = self._bias(op, w.shape[0]) * np.float32(scale)
        y = self.g.conv2d(
            op.name, lay.index, w, b, stride=a["stride"], padding=a["padding"].upper(), dilation=a.get("dilation", 1)
        )
        self._set(op, y, nhwc=True, scale=scale)

    def _op_deconv(self, op: OpSpec) -> None:
        a = op.attrs
        lay = self._need_nhwc(op)
        scale = self._scale(op.name)
        # ONNX ConvTranspose weights are (C_in, C_out, kH, kW); TFLite wants (C_out, kH, kW, C_in)
        w = np.transpose(op.weights["weight"], (1, 2, 3, 0)) * np.float32(scale / lay.scale)
        b = self._bias(op, w.shape[0]) * np.float32(scale)
        y = self.g.transpose_conv(
            op.name, lay.index, w, b, output_hw=op.shape[2:], stride=a["stride"], padding=a["padding"].upper()
        )
        self._set(op, y, nhwc=True, scale=scale)

    def _op_fc(self, op: OpSpec) -> None:
        lay = self._in(op)
        src = self.spec.shape(op.inputs[0])
        w = np.asarray(op.weights["weight"], np.float32)
        perm_in = _hwc_perm(*src[1:]) if lay.nhwc else lay.perm
        if perm_in is not None:
            w = w[:, perm_in]
        wanted, perm_out = self._wanted(op.name)
        scale = 1.0 if wanted is None else wanted
        b = self._bias(op, w.shape[0])
        if perm_out is not None:
            w, b = w[perm_out, :], b[perm_out]
        w = w * np.float32(scale / lay.scale)
        y = self.g.fully_connected(op.name, lay.index, w, b * np.float32(scale))
        self._set(op, y, nhwc=False, perm=perm_out, scale=scale)

    def _op_batchnorm(self, op: OpSpec) -> None:
        lay = self._need_nhwc(op)
        if lay.scale != 1.0:
            raise ModelError(f"op {op.name!r}: batchnorm on a rescaled input")
        wt = op.weights
        a = wt["scale"] / np.sqrt(wt["var"] + np.float32(op.attrs["epsilon"]))
        c = wt["bias"] - wt["mean"] * a
        c_out = a.shape[0]
        y = self.g.depthwise_conv2d(op.name, lay.index, a.reshape(1, 1, 1, c_out), c, stride=1, padding="VALID")
        self._set(op, y, nhwc=True)

    def _unary(self, op: OpSpec, kind: str, *, alpha: float | None = None, homogeneous: bool = True) -> None:
        lay = self._in(op)
        if not homogeneous and lay.scale != 1.0:
            raise ModelError(f"op {op.name!r} ({op.kind}) cannot take a rescaled input")
        y = self.g.unary(op.name, kind, lay.index, alpha=alpha)
        self._set(op, y, nhwc=lay.nhwc, perm=lay.perm, scale=lay.scale)

    def _op_relu(self, op: OpSpec) -> None:
        self._unary(op, "RELU")

    def _op_leaky_relu(self, op: OpSpec) -> None:
        self._unary(op, "LEAKY_RELU", alpha=float(op.attrs["alpha"]))

    def _op_tanh(self, op: OpSpec) -> None:
        self._unary(op, "TANH", homogeneous=False)

    def _op_sigmoid(self, op: OpSpec) -> None:
        self._unary(op, "LOGISTIC", homogeneous=False)

    def _op_clip(self, op: OpSpec) -> None:
        kind, scale = _clip_form(op)
        lay = self._in(op)
        if lay.scale != scale:
            raise ModelError(
                f"op {op.name!r}: clip to [{op.attrs['min']}, {op.attrs['max']}] needs an input scaled by {scale}"
                " (its producer must be an fc, conv or rnn op read by nothing else)"
            )
        wanted = self._wanted(op.name)[0]
        if wanted is not None and wanted != scale:
            raise ModelError(
                f"op {op.name!r}: clip to [{op.attrs['min']}, {op.attrs['max']}] is written as {kind} on values"
                f" scaled by {scale}, so its output must feed (through relu, pooling or reshapes) an fc, conv,"
                " deconv or rnn op that undoes the scale, not a model output or several consumers"
            )
        y = self.g.unary(op.name, kind, lay.index)
        self._set(op, y, nhwc=lay.nhwc, perm=lay.perm, scale=lay.scale)

    def _pool(self, op: OpSpec, kind: str) -> None:
        lay = self._need_nhwc(op)
        a = op.attrs
        y = self.g.pool2d(op.name, kind, lay.index, a["kernel"], stride=a["stride"], padding=a["padding"].upper())
        self._set(op, y, nhwc=True, scale=lay.scale)

    def _op_maxpool(self, op: OpSpec) -> None:
        self._pool(op, "max")

    def _op_avgpool(self, op: OpSpec) -> None:
        self._pool(op, "avg")

    def _op_global_avgpool(self, op: OpSpec) -> None:
        lay = self._need_nhwc(op)
        y = self.g.mean(op.name, lay.index, [1, 2], keep_dims=True)
        self._set(op, y, nhwc=True, scale=lay.scale)

    def _op_lrn(self, op: OpSpec) -> None:
        lay = self._need_nhwc(op)
        if lay.scale != 1.0:
            raise ModelError(f"op {op.name!r}: lrn on a rescaled input")
        a = op.attrs
        size = int(a["size"])
        if size % 2 == 0:
            raise ModelError(f"op {op.name!r}: TFLite LRN needs an odd size, got {size}")
        y = self.g.lrn(
            op.name, lay.index, radius=(size - 1) // 2, bias=a["bias"], alpha=a["alpha"] / size, beta=a["beta"]
        )
        self._set(op, y, nhwc=True)

    def _op_add(self, op: OpSpec) -> None:
        a, b = self._in(op, 0, plain=True), self._in(op, 1, plain=True)
        y = self.g.binary(op.name, "ADD", a.index, b.index)
        self._set(op, y, nhwc=a.nhwc)

    def _op_concat(self, op: OpSpec) -> None:
        lays = [self._in(op, i, plain=True) for i in range(len(op.inputs))]
        axis = int(op.attrs["axis"]) % len(op.shape)
        nhwc = lays[0].nhwc
        if any(lay.nhwc != nhwc for lay in lays):
            raise ModelError(f"op {op.name!r}: concat of image and non-image tensors")
        if nhwc:
            axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis]
        y = self.g.concat(op.name, [lay.index for lay in lays], axis=axis)
        self._set(op, y, nhwc=nhwc)

    def _op_flatten(self, op: OpSpec) -> None:
        lay = self._in(op)
        src = self.spec.shape(op.inputs[0])
        if lay.nhwc:
            perm = _hwc_perm(*src[1:])
        elif lay.perm is None:
            perm = None
        else:
            raise ModelError(f"op {op.name!r}: flatten of a permuted tensor")
        y = self.g.reshape(op.name, lay.index, list(op.shape))
        self._set(op, y, nhwc=False, perm=perm, scale=lay.scale)

    def _op_reshape(self, op: OpSpec) -> None:
        lay = self._in(op)
        dst = op.shape
        if lay.nhwc:
            raise ModelError(f"op {op.name!r}: reshape of an image tensor is not supported (use flatten)")
        if len(dst) == 4:
            want = _hwc_perm(*dst[1:])
            same = (want is None and lay.perm is None) or (
                want is not None and lay.perm is not None and np.array_equal(want, lay.perm)
            )
            if not same:
                raise ModelError(f"op {op.name!r}: reshape to an image needs its input in H, W, C order")
            y = self.g.reshape(op.name, lay.index, [dst[0], dst[2], dst[3], dst[1]])
            self._set(op, y, nhwc=True, scale=lay.scale)
            return
        if lay.perm is not None:
            raise ModelError(f"op {op.name!r}: reshape of a permuted tensor")
        y = self.g.reshape(op.name, lay.index, list(dst))
        self._set(op, y, nhwc=False, scale=lay.scale)

    def _op_softmax(self, op: OpSpec) -> None:
        lay = self._in(op, plain=True)
        axis = int(op.attrs["axis"]) % len(op.shape)
        tfl_rank = len(self.g.shape_of(lay.index))
        # the logical softmax axis must be TFLite's last axis (SOFTMAX works on the last one)
        if lay.nhwc:
            last = axis == 1
        else:
            last = axis == len(op.shape) - 1 or (tfl_rank == 2 and axis == 1)
        if not last:
            raise ModelError(f"op {op.name!r}: softmax over logical axis {axis} is not TFLite's last axis")
        y = self.g.softmax(op.name, lay.index)
        self._set(op, y, nhwc=lay.nhwc)

    def _op_rnn(self, op: OpSpec) -> None:
        lay = self._in(op)
        if lay.perm is not None:
            raise ModelError(f"op {op.name!r}: rnn on a permuted input")
        a = op.attrs
        t, n, _ = self.spec.shape(op.inputs[0])
        hidden = int(a["hidden"])
        bidir = a["direction"] == "bidirectional"
        if bidir and n != 1:
            raise ModelError(f"op {op.name!r}: a bidirectional rnn needs batch 1 for ONNX's output layout")
        wanted = self._wanted(op.name)[0]
        clip = a.get("clip")
        scale = 1.0 if wanted is None else wanted
        if a["activation"] == "tanh":
            if clip is not None:
                raise ModelError(f"op {op.name!r}: a clipped tanh rnn has no TFLite form")
            act = tfb._ACTIVATION["TANH"]
        elif clip is None:
            act = tfb._ACTIVATION["RELU"]
        else:
            # relu(clip(z, -c, c)) = min(max(z, 0), c) = (c / 6) * relu6(z * 6 / c): the output
            # carries the scale 6 / c, which its consumers must accept
            scale = 6.0 / float(clip)
            if wanted is not None and wanted != scale:
                raise ModelError(
                    f"op {op.name!r}: a clipped rnn must feed (through reshapes) an fc, conv or rnn op in TFLite"
                )
            act = tfb._ACTIVATION["RELU6"]
        s_in = lay.scale
        w, r, bb = (np.asarray(op.weights[k], np.float32) for k in ("W", "R", "B"))
        g = self.g
        operands: list[int] = [lay.index]
        d = 2 if bidir else 1
        for k, tag in enumerate(["fw", "bw"][:d]):
            operands += [
                g.const(f"{op.name}.{tag}.W", w[k] * np.float32(scale / s_in)),
                g.const(f"{op.name}.{tag}.R", r[k]),
                g.const(f"{op.name}.{tag}.B", (bb[k, :hidden] + bb[k, hidden:]) * np.float32(scale)),
                g.tensor(f"{op.name}.{tag}.state", [n, hidden], is_variable=True),
            ]
        y = g.tensor(op.name, [t, n, d * hidden])
        if bidir:
            opts = tfb.fb.BidirectionalSequenceRNNOptionsT()
            opts.timeMajor, opts.mergeOutputs, opts.fusedActivationFunction = True, True, act
            g.op("BIDIRECTIONAL_SEQUENCE_RNN", [*operands, -1, -1, -1], [y], opts)
        else:
            opts = tfb.fb.SequenceRNNOptionsT()
            opts.timeMajor, opts.fusedActivationFunction = True, act
            g.op("UNIDIRECTIONAL_SEQUENCE_RNN", operands, [y], opts)
        self._set(op, y, nhwc=False, scale=scale)


def write(spec: ModelSpec) -> bytes:
    """The TFLite flatbuffer of ``spec``: NHWC, one operator per op (see the module docstring)."""
    return _Writer(spec).write()


def to_tflite_input(spec: ModelSpec, name: str, array: np.ndarray) -> np.ndarray:
    """A logical (spec-layout) input array as the TFLite model takes it (NCHW images become NHWC)."""
    shape = next(t.shape for t in spec.inputs if t.name == name)
    x = np.asarray(array, np.float32)
    if tuple(x.shape) != tuple(shape):
        raise ModelError(f"input {name!r} has shape {x.shape}, the spec says {shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if len(shape) == 4 else x


def tensor_layouts(spec: ModelSpec) -> dict[str, TensorLayout]:
    """How the written TFLite model holds each spec tensor (inputs and op outputs).

    Runs the writer without storing weights, so it costs little more than the spec.
    """
    w = _Writer(spec, builder=_ShapeOnlyBuilder())
    w.emit_all()
    return {
        name: TensorLayout(lay.nhwc, lay.perm, lay.scale, w.g.shape_of(lay.index)) for name, lay in w.layout.items()
    }


def to_logical(
    spec: ModelSpec, name: str, array: np.ndarray, layouts: dict[str, TensorLayout] | None = None
) -> np.ndarray:
    """A tensor of the written TFLite model (an input or op output) in the spec's logical layout and scale.

    ``layouts`` (from :func:`tensor_layouts`) saves recomputing them for each call.
    """
    lay = (layouts or tensor_layouts(spec))[name]
    x = np.asarray(array)
    if tuple(x.shape) != tuple(lay.shape):
        raise ModelError(f"tensor {name!r} has shape {x.shape}, the TFLite model holds {lay.shape}")
    if lay.nhwc:
        x = x.transpose(0, 3, 1, 2)
    elif lay.perm is not None:
        flat = x.reshape(x.shape[0], -1)
        out = np.empty_like(flat)
        out[:, lay.perm] = flat
        x = out
    x = np.ascontiguousarray(x).reshape(spec.shape(name))
    return x / np.float32(lay.scale) if lay.scale != 1.0 else x
