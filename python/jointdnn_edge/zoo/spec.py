"""The zoo's format-neutral layer IR: a model as a list of typed ops with weights.

Every zoo architecture (``zoo/architectures.py``) is described once in this IR
and written out by one writer per format: ``zoo/onnx_writer.py`` and
``zoo/tflite_writer.py``. **Each op becomes exactly one operator** of the
written model (one ONNX node, one TFLite operator), so a written model loaded
with ``load_model(..., merge_trivial=False)`` has exactly ``len(spec.ops)``
layers in both formats.

Conventions (the contract with the writers)
-------------------------------------------
* All tensors are ``float32``. Every op has exactly one output tensor, named
  like the op (``op.name``); ``op.inputs`` are activation tensor names (model
  inputs or earlier ops' outputs), never weights.
* Shapes are *logical* and channel-first: images are ``(N, C, H, W)``
  (ONNX's layout). An NHWC writer transposes 4-D shapes to ``(N, H, W, C)``
  and 4-D weights to its own layout; ``concat``/``softmax`` axes are given in
  the logical layout (always ``1``, the channel/feature axis, in the zoo).
* Weights are numpy ``float32`` arrays in ``op.weights`` in these layouts:

  =============  ==========================================================
  op             weights
  =============  ==========================================================
  ``conv``       ``weight (O, C/groups, kH, kW)`` (OIHW), ``bias (O,)`` optional
  ``deconv``     ``weight (C, O, kH, kW)`` (ONNX ConvTranspose), ``bias (O,)``
  ``fc``         ``weight (units, F)``, ``bias (units,)``; ``F`` = input
                 features flattened in logical C-major (``C, H, W``) order
  ``batchnorm``  ``scale, bias, mean, var`` (all ``(C,)``), attr ``epsilon``
  ``rnn``        ``W (D, H, I)``, ``R (D, H, H)``, ``B (D, 2H)`` (input then
                 recurrent bias), ONNX ``RNN`` layout; ``D`` = 1 or 2
  =============  ==========================================================

Op kinds and their semantics
----------------------------
``conv``/``deconv``/``maxpool``/``avgpool``
    attrs ``kernel (kh, kw)``, ``stride (sh, sw)``, ``padding`` (``"same"`` or
    ``"valid"``, TensorFlow's definitions) and ``pads (top, left, bottom,
    right)``, the explicit pads that ``padding`` resolves to (TF "SAME" puts
    the odd pixel at the bottom/right). ``conv`` also has ``dilation`` and
    ``groups`` (always 1 in the zoo). For ``deconv``, ``pads`` is the crop of
    the full transposed-convolution output (ONNX ``ConvTranspose`` pads);
    "same" gives ``out = in * stride``, "valid" ``out = (in - 1) * stride + k``.
    ``avgpool`` never counts padding.
``fc``
    ``y = x_flat @ weight.T + bias``. A 2-D input ``(N, F)`` gives ``(N, units)``;
    a 4-D input ``(N, C, H, W)`` is flattened C-major and gives ``(N, units, 1,
    1)`` (the rank is kept, as in OverFeat's "fully connected layers are
    convolutions": the ONNX writer emits a ``Conv`` whose kernel covers the
    whole input, an NHWC writer a FULLY_CONNECTED with weights permuted to
    ``H, W, C`` order and output ``(N, 1, 1, units)``).
``relu``/``tanh``/``sigmoid``, ``leaky_relu`` (attr ``alpha``), ``clip`` (attrs ``min``, ``max``)
    Elementwise.
``global_avgpool``
    ``(N, C, H, W) -> (N, C, 1, 1)``.
``lrn``
    attrs ``size, alpha, beta, bias`` with ONNX semantics:
    ``y = x / (bias + alpha / size * sum_{c' in window(c)} x[c']**2) ** beta``
    (TFLite's ``alpha`` is ONNX's ``alpha / size``; radius ``(size - 1) / 2``).
``batchnorm``
    Inference batch norm ``y = scale * (x - mean) / sqrt(var + epsilon) + bias``
    per channel (axis 1).
``add``
    Two inputs of the same shape.
``concat``
    attr ``axis`` (logical).
``flatten``
    ``(N, ...) -> (N, prod(...))`` in logical C-major order.
``reshape``
    attr ``shape``: the static target shape (row-major reinterpretation).
``softmax``
    attr ``axis`` (logical).
``rnn``
    Simple (Elman) recurrent layer, ONNX ``RNN`` semantics: input ``(T, N, I)``
    time-major, zero initial state, ``h_t = act(clip(W x_t + R h_{t-1} + Wb +
    Rb))``; attrs ``hidden``, ``direction`` (``"forward"`` or
    ``"bidirectional"``), ``activation`` (``"relu"`` or ``"tanh"``), ``clip``
    (``None`` or a threshold ``c``: the pre-activation is clipped to
    ``[-c, c]``, so relu with clip 20 is Deep Speech's ``min(max(z, 0), 20)``).
    Output ``(T, D, N, H)`` as ONNX's ``Y``; a writer whose recurrent op yields
    ``(T, N, D*H)`` (TFLite BIDIRECTIONAL_SEQUENCE_RNN with ``merge_outputs``)
    has the same memory layout when ``N == 1``, which the zoo guarantees.

Weights are seeded: op ``k`` of a spec draws from
``numpy.random.default_rng([seed, k])``, so a model's weights depend only on
the seed, its shapes and the op's position. With ``weights=False`` a spec
carries read-only zero views of the right shapes instead (no memory), which
is enough to count parameters or inspect shapes of the full-size models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError, UnknownNameError

__all__ = [
    "OP_KINDS",
    "ModelSpec",
    "OpSpec",
    "SpecBuilder",
    "TensorSpec",
]

#: Every op kind a spec may contain (see the module docstring for semantics).
OP_KINDS = frozenset(
    {
        "conv",
        "deconv",
        "fc",
        "relu",
        "clip",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "maxpool",
        "avgpool",
        "global_avgpool",
        "lrn",
        "batchnorm",
        "add",
        "concat",
        "flatten",
        "reshape",
        "softmax",
        "rnn",
    }
)

#: Weight names that are buffers (running statistics), not trainable parameters.
_BUFFERS = frozenset({"mean", "var"})


@dataclass(frozen=True)
class TensorSpec:
    """A model input: name and static logical shape (float32)."""

    name: str
    shape: tuple[int, ...]


@dataclass
class OpSpec:
    """One op: ``kind`` applied to ``inputs`` gives the tensor ``name`` of ``shape``."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Name of the op's output tensor (the op's own name)."""
        return self.name

    @property
    def params(self) -> int:
        """Trainable parameters of this op (batch-norm running statistics excluded)."""
        return sum(int(w.size) for k, w in self.weights.items() if k not in _BUFFERS)


@dataclass
class ModelSpec:
    """A whole model: inputs, ops in topological order, outputs, and descriptive info."""

    name: str
    inputs: list[TensorSpec]
    ops: list[OpSpec]
    outputs: list[str]
    #: free-form description: title, kind, paper layer count, knobs used, notes
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        """Trainable parameters of the whole model."""
        return sum(op.params for op in self.ops)

    @property
    def weight_bytes(self) -> int:
        """Bytes of all stored weights (float32), running statistics included."""
        return sum(int(w.size) * 4 for op in self.ops for w in op.weights.values())

    def shape(self, tensor: str) -> tuple[int, ...]:
        """Logical shape of a model input or op output."""
        for t in self.inputs:
            if t.name == tensor:
                return t.shape
        for op in self.ops:
            if op.name == tensor:
                return op.shape
        raise UnknownNameError(f"no tensor {tensor!r} in spec {self.name!r}")

    def op(self, name: str) -> OpSpec:
        """The op called ``name``."""
        for op in self.ops:
            if op.name == name:
                return op
        raise UnknownNameError(f"no op {name!r} in spec {self.name!r}")

    def validate(self) -> None:
        """Raise ``ValueError`` unless the spec is well formed (names, order, kinds)."""
        known = {t.name for t in self.inputs}
        for op in self.ops:
            if op.kind not in OP_KINDS:
                raise ModelError(f"op {op.name!r}: unknown kind {op.kind!r}")
            if op.name in known:
                raise ModelError(f"op {op.name!r}: duplicate tensor name")
            for t in op.inputs:
                if t not in known:
                    raise ModelError(f"op {op.name!r} reads {t!r}, which is not defined before it")
            known.add(op.name)
        for t in self.outputs:
            if t not in known:
                raise ModelError(f"model output {t!r} is not produced by any op")


# --------------------------------------------------------------- shapes


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def _conv_out(size: int, k: int, s: int, d: int, padding: str) -> tuple[int, int, int]:
    """Output size and (before, after) pads of one spatial dim (TF SAME/VALID rules)."""
    keff = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + keff - size, 0)
        return out, total // 2, total - total // 2
    if padding == "valid":
        out = (size - keff) // s + 1
        return out, 0, 0
    raise ConfigError(f"padding must be 'same' or 'valid', got {padding!r}")


class SpecBuilder:
    """Builds a :class:`ModelSpec` op by op, inferring shapes and drawing seeded weights.

    Each method appends one op and returns its output tensor name. ``weights=False``
    gives zero-memory placeholder weights (see the module docstring).
    """

    def __init__(self, name: str, *, seed: int = 0, weights: bool = True) -> None:
        self.name = name
        self.seed = int(seed)
        self.materialize = weights
        self.inputs: list[TensorSpec] = []
        self.ops: list[OpSpec] = []
        self.outputs: list[str] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._counts: dict[str, int] = {}

    # ------------------------------------------------------------- plumbing
    def input(self, name: str, shape: Sequence[int]) -> str:
        """Declare a model input."""
        shape = tuple(int(d) for d in shape)
        if any(d < 1 for d in shape):
            raise ModelError(f"input {name!r} has a non-positive dimension: {shape}")
        self.inputs.append(TensorSpec(name, shape))
        self._shapes[name] = shape
        return name

    def output(self, *tensors: str) -> None:
        """Mark tensors as model outputs."""
        self.outputs.extend(tensors)

    def shape(self, tensor: str) -> tuple[int, ...]:
        """Shape of a tensor defined so far."""
        return self._shapes[tensor]

    def _name(self, kind: str, name: str | None) -> str:
        if name is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}{self._counts[kind]}"
        if name in self._shapes:
            raise ModelError(f"duplicate op name {name!r}")
        return name

    def _rng(self) -> np.random.Generator:
        # one independent stream per op position: weights depend on (seed, k) only
        return np.random.default_rng([self.seed, len(self.ops)])

    def _normal(self, rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
        if not self.materialize:
            return _placeholder(shape)
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32, copy=False)

    def _uniform(self, rng: np.random.Generator, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
        if not self.materialize:
            return _placeholder(shape)
        return rng.uniform(lo, hi, size=shape).astype(np.float32)

    def _add(
        self,
        kind: str,
        inputs: Sequence[str],
        shape: tuple[int, ...],
        name: str | None,
        attrs: Mapping[str, Any] | None = None,
        weights: Mapping[str, np.ndarray] | None = None,
    ) -> str:
        for t in inputs:
            if t not in self._shapes:
                raise ModelError(f"{kind}: unknown input tensor {t!r}")
        if any(d < 1 for d in shape):
            raise ModelError(f"{kind} {name or ''}: input too small, output shape would be {shape}")
        op = OpSpec(
            self._name(kind, name),
            kind,
            tuple(inputs),
            tuple(int(d) for d in shape),
            dict(attrs or {}),
            dict(weights or {}),
        )
        self.ops.append(op)
        self._shapes[op.name] = op.shape
        return op.name

    def _rank4(self, x: str, kind: str) -> tuple[int, int, int, int]:
        s = self._shapes[x]
        if len(s) != 4:
            raise ModelError(f"{kind} needs a 4-D (N, C, H, W) input, {x!r} has shape {s}")
        return s

    # ------------------------------------------------------------ weighted
    def conv(
        self,
        x: str,
        channels: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        *,
        bias: bool = True,
        name: str | None = None,
    ) -> str:
        """2-D convolution (He-normal weights, small random bias)."""
        n, c, h, w = self._rank4(x, "conv")
        (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
        oh, pt, pb = _conv_out(h, kh, sh, 1, padding)
        ow, pl, pr = _conv_out(w, kw, sw, 1, padding)
        rng = self._rng()
        wts = {"weight": self._normal(rng, (channels, c, kh, kw), math.sqrt(2.0 / (c * kh * kw)))}
        if bias:
            wts["bias"] = self._normal(rng, (channels,), 0.01)
        attrs = {
            "kernel": (kh, kw),
            "stride": (sh, sw),
            "padding": padding,
            "pads": (pt, pl, pb, pr),
            "dilation": (1, 1),
            "groups": 1,
        }
        return self._add("conv", [x], (n, channels, oh, ow), name, attrs, wts)

    def deconv(
        self,
        x: str,
        channels: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        *,
        name: str | None = None,
    ) -> str:
        """Transposed convolution ("deconvolution")."""
        n, c, h, w = self._rank4(x, "deconv")
        (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
        pads = []
        out = []
        for size, k, s in ((h, kh, sh), (w, kw, sw)):
            if padding == "same":
                if k < s:
                    raise ModelError("deconv with padding 'same' needs kernel >= stride")
                total = k - s
                out.append(size * s)
                pads.append((total // 2, total - total // 2))
            elif padding == "valid":
                out.append((size - 1) * s + k)
                pads.append((0, 0))
            else:
                raise ConfigError(f"padding must be 'same' or 'valid', got {padding!r}")
        rng = self._rng()
        # effective fan-in of a transposed conv: each output sees C*kh*kw/(sh*sw) inputs
        fan_in = max(c * kh * kw / (sh * sw), 1.0)
        wts = {
            "weight": self._normal(rng, (c, channels, kh, kw), math.sqrt(2.0 / fan_in)),
            "bias": self._normal(rng, (channels,), 0.01),
        }
        attrs = {
            "kernel": (kh, kw),
            "stride": (sh, sw),
            "padding": padding,
            "pads": (pads[0][0], pads[1][0], pads[0][1], pads[1][1]),
        }
        return self._add("deconv", [x], (n, channels, out[0], out[1]), name, attrs, wts)

    def fc(self, x: str, units: int, *, name: str | None = None, gain: float = 2.0) -> str:
        """Fully connected layer on a 2-D or 4-D input (see the module docstring)."""
        s = self._shapes[x]
        if len(s) not in (2, 4):
            raise ModelError(f"fc needs a 2-D or 4-D input, {x!r} has shape {s}")
        features = int(np.prod(s[1:]))
        rng = self._rng()
        wts = {
            "weight": self._normal(rng, (units, features), math.sqrt(gain / features)),
            "bias": self._normal(rng, (units,), 0.01),
        }
        shape = (s[0], units) if len(s) == 2 else (s[0], units, 1, 1)
        return self._add("fc", [x], shape, name, {"units": units}, wts)

    def batchnorm(self, x: str, *, epsilon: float = 1e-5, gamma: float = 1.0, name: str | None = None) -> str:
        """Inference batch norm with plausible random statistics (``gamma`` scales ``scale``)."""
        c = self._rank4(x, "batchnorm")[1]
        rng = self._rng()
        wts = {
            "scale": self._uniform(rng, (c,), 0.8 * gamma, 1.2 * gamma),
            "bias": self._normal(rng, (c,), 0.05),
            "mean": self._normal(rng, (c,), 0.05),
            "var": self._uniform(rng, (c,), 0.8, 1.2),
        }
        return self._add("batchnorm", [x], self._shapes[x], name, {"epsilon": float(epsilon)}, wts)

    def rnn(
        self,
        x: str,
        hidden: int,
        *,
        direction: str = "forward",
        activation: str = "relu",
        clip: float | None = None,
        name: str | None = None,
    ) -> str:
        """Simple recurrent layer on a time-major ``(T, N, I)`` input."""
        s = self._shapes[x]
        if len(s) != 3:
            raise ModelError(f"rnn needs a (T, N, I) input, {x!r} has shape {s}")
        if direction not in ("forward", "bidirectional"):
            raise ConfigError(f"direction must be 'forward' or 'bidirectional', got {direction!r}")
        if activation not in ("relu", "tanh"):
            raise ConfigError(f"activation must be 'relu' or 'tanh', got {activation!r}")
        t, n, i = s
        d = 2 if direction == "bidirectional" else 1
        rng = self._rng()
        wts = {
            "W": self._normal(rng, (d, hidden, i), math.sqrt(2.0 / i)),
            # recurrent weights with spectral radius about 0.5, so the clipped-ReLU
            # recurrence neither dies nor saturates over long sequences
            "R": self._normal(rng, (d, hidden, hidden), 0.5 / math.sqrt(hidden)),
            "B": self._normal(rng, (d, 2 * hidden), 0.01),
        }
        attrs = {
            "hidden": hidden,
            "direction": direction,
            "activation": activation,
            "clip": None if clip is None else float(clip),
        }
        return self._add("rnn", [x], (t, d, n, hidden), name, attrs, wts)

    # ---------------------------------------------------------- weightless
    def relu(self, x: str, *, name: str | None = None) -> str:
        """ReLU."""
        return self._add("relu", [x], self._shapes[x], name)

    def clip(self, x: str, lo: float, hi: float, *, name: str | None = None) -> str:
        """Clip to ``[lo, hi]`` (clipped ReLU when ``lo == 0``)."""
        return self._add("clip", [x], self._shapes[x], name, {"min": float(lo), "max": float(hi)})

    def leaky_relu(self, x: str, alpha: float = 0.2, *, name: str | None = None) -> str:
        """Leaky ReLU."""
        return self._add("leaky_relu", [x], self._shapes[x], name, {"alpha": float(alpha)})

    def tanh(self, x: str, *, name: str | None = None) -> str:
        """tanh."""
        return self._add("tanh", [x], self._shapes[x], name)

    def sigmoid(self, x: str, *, name: str | None = None) -> str:
        """Logistic sigmoid."""
        return self._add("sigmoid", [x], self._shapes[x], name)

    def _pool(
        self,
        kind: str,
        x: str,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None,
        padding: str,
        name: str | None,
    ) -> str:
        n, c, h, w = self._rank4(x, kind)
        (kh, kw) = _pair(kernel)
        (sh, sw) = _pair(kernel if stride is None else stride)
        oh, pt, pb = _conv_out(h, kh, sh, 1, padding)
        ow, pl, pr = _conv_out(w, kw, sw, 1, padding)
        attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": padding, "pads": (pt, pl, pb, pr)}
        return self._add(kind, [x], (n, c, oh, ow), name, attrs)

    def maxpool(
        self,
        x: str,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        *,
        name: str | None = None,
    ) -> str:
        """Max pooling."""
        return self._pool("maxpool", x, kernel, stride, padding, name)

    def avgpool(
        self,
        x: str,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: str = "valid",
        *,
        name: str | None = None,
    ) -> str:
        """Average pooling (padding never counted)."""
        return self._pool("avgpool", x, kernel, stride, padding, name)

    def global_avgpool(self, x: str, *, name: str | None = None) -> str:
        """Global average pooling to ``(N, C, 1, 1)``."""
        n, c, _, _ = self._rank4(x, "global_avgpool")
        return self._add("global_avgpool", [x], (n, c, 1, 1), name)

    def lrn(
        self,
        x: str,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        bias: float = 1.0,
        *,
        name: str | None = None,
    ) -> str:
        """Local response normalization across channels (ONNX semantics)."""
        self._rank4(x, "lrn")
        attrs = {"size": int(size), "alpha": float(alpha), "beta": float(beta), "bias": float(bias)}
        return self._add("lrn", [x], self._shapes[x], name, attrs)

    def add(self, a: str, b: str, *, name: str | None = None) -> str:
        """Elementwise sum of two same-shaped tensors."""
        if self._shapes[a] != self._shapes[b]:
            raise ModelError(f"add: shapes differ: {self._shapes[a]} vs {self._shapes[b]}")
        return self._add("add", [a, b], self._shapes[a], name)

    def concat(self, tensors: Sequence[str], axis: int = 1, *, name: str | None = None) -> str:
        """Concatenate along a logical axis."""
        shapes = [self._shapes[t] for t in tensors]
        base = list(shapes[0])
        for s in shapes[1:]:
            if len(s) != len(base) or any(a != b for k, (a, b) in enumerate(zip(s, base)) if k != axis):
                raise ModelError(f"concat: incompatible shapes {shapes}")
        base[axis] = sum(s[axis] for s in shapes)
        return self._add("concat", list(tensors), tuple(base), name, {"axis": axis})

    def flatten(self, x: str, *, name: str | None = None) -> str:
        """Flatten all but the batch dimension (C-major)."""
        s = self._shapes[x]
        return self._add("flatten", [x], (s[0], int(np.prod(s[1:]))), name)

    def reshape(self, x: str, shape: Sequence[int], *, name: str | None = None) -> str:
        """Reinterpret a tensor with a new static shape."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) != int(np.prod(self._shapes[x])):
            raise ModelError(f"reshape: {self._shapes[x]} cannot become {shape}")
        return self._add("reshape", [x], shape, name, {"shape": shape})

    def softmax(self, x: str, axis: int = 1, *, name: str | None = None) -> str:
        """Softmax along a logical axis."""
        return self._add("softmax", [x], self._shapes[x], name, {"axis": axis})

    # ---------------------------------------------------------------- done
    def build(self, info: Mapping[str, Any] | None = None) -> ModelSpec:
        """The finished, validated spec."""
        spec = ModelSpec(self.name, list(self.inputs), list(self.ops), list(self.outputs), dict(info or {}))
        spec.info.setdefault("seed", self.seed)
        spec.validate()
        return spec


def _placeholder(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only all-zero float32 array of ``shape`` that owns no memory."""
    return np.broadcast_to(np.zeros((), dtype=np.float32), shape)
