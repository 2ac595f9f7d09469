"""Reading, building and rewriting TFLite flatbuffers.

The TFLite half of the SDK needs three things from a ``.tflite`` file: parse
it into the flatbuffer object API that ``ai-edge-litert`` ships
(``schema_py_generated`` and ``tools.flatbuffer_utils``), cut a standalone
model out of one subgraph (slicing), and build a model from scratch (the zoo
writer and the tests). This module holds all three so that slices and zoo
models go through the same writer.

Everything raises :class:`~jointdnn_edge.errors.ModelError` on malformed input;
nothing here runs a model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ModelError

try:  # the schema ships with ai-edge-litert; tflite-runtime alone lacks it
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils as fbu
except ImportError as _e:  # pragma: no cover - exercised only without ai-edge-litert
    fb = None
    fbu = None
    _IMPORT_ERROR: ImportError | None = _e
else:
    _IMPORT_ERROR = None

__all__ = [
    "TFLITE_MAGIC",
    "fb",  # the LiteRT flatbuffer schema module (None without ai-edge-litert)
    "ModelBuilder",
    "extract_subgraph",
    "has_data",
    "is_tflite",
    "numpy_dtype",
    "op_code_name",
    "read_model",
    "serialize_model",
    "tensor_type",
]

#: file identifier stored at bytes 4..8 of every TFLite flatbuffer
TFLITE_MAGIC = b"TFL3"

# TFLite requires buffer data aligned for its widest element type; the schema
# asks for 16 (``force_align: 16``), which the generated Python packer ignores.
_BUFFER_ALIGN = 16
# flatbuffers use 32-bit offsets: a model (with inline buffers) must stay below 2 GiB.
_MAX_FLATBUFFER = 2**31 - 1


def _schema() -> Any:
    if fb is None:
        raise ModelError(f"reading TFLite models needs the ai-edge-litert package (its schema): {_IMPORT_ERROR}")
    return fb


def is_tflite(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` carries the TFLite file identifier (``TFL3`` at bytes 4..8)."""
    return len(data) >= 8 and bytes(data[4:8]) == TFLITE_MAGIC


# --------------------------------------------------------------------- enums
def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


_OP_NAMES: dict[int, str] = {}
_OP_CODES: dict[str, int] = {}
_TYPE_NAMES: dict[int, str] = {}
if fb is not None:
    _OP_NAMES = _enum_names(fb.BuiltinOperator)
    _OP_CODES = {v: k for k, v in _OP_NAMES.items()}
    _TYPE_NAMES = _enum_names(fb.TensorType)

# TensorType -> numpy dtype, for the types that numpy can hold.
_NUMPY_OF_TYPE: dict[str, Any] = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
    "COMPLEX64": np.complex64,
    "COMPLEX128": np.complex128,
}


def numpy_dtype(tensor_type: int) -> np.dtype[Any]:
    """The numpy dtype of a TFLite ``TensorType`` value; ModelError for types numpy lacks (STRING, INT4, ...)."""
    name = _TYPE_NAMES.get(tensor_type, str(tensor_type))
    if name not in _NUMPY_OF_TYPE:
        raise ModelError(f"TFLite tensor type {name} has no numpy equivalent")
    dtype: np.dtype[Any] = np.dtype(_NUMPY_OF_TYPE[name])
    return dtype


def tensor_type(dtype: Any) -> int:
    """The TFLite ``TensorType`` value of a numpy dtype."""
    dt = np.dtype(dtype)
    for name, np_type in _NUMPY_OF_TYPE.items():
        if np.dtype(np_type) == dt:
            return int(getattr(_schema().TensorType, name))
    raise ModelError(f"numpy dtype {dt} has no TFLite tensor type")


def op_code_name(model: Any, op: Any) -> str:
    """Readable type of an operator: the builtin name (``CONV_2D``), or a custom op's own code."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = fbu.get_builtin_code_from_operator_code(code)
    if builtin == fb.BuiltinOperator.CUSTOM:
        custom = code.customCode
        return custom.decode("utf-8", "replace") if isinstance(custom, (bytes, bytearray)) else str(custom)
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def builtin_code(model: Any, op: Any) -> int:
    """The builtin operator code of ``op`` (``BuiltinOperator.CUSTOM`` for custom ops)."""
    return int(fbu.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex]))


# ------------------------------------------------------------------- reading
def read_model(data: bytes | bytearray | memoryview) -> Any:
    """Parse a TFLite flatbuffer into a ``ModelT``, checking it is structurally sound.

    Buffers stored after the flatbuffer (``Buffer.offset``/``size``, used by
    models over 2 GiB) are read into memory. Raises ModelError for a wrong
    file identifier, a truncated file, or indices pointing outside their tables.
    """
    _schema()
    if len(data) < 8:
        raise ModelError(f"not a TFLite model: {len(data)} bytes is too short for a flatbuffer header")
    if not is_tflite(data):
        raise ModelError(f"not a TFLite model: file identifier is {bytes(data[4:8])!r}, expected {TFLITE_MAGIC!r}")
    buf = bytearray(data)
    root = int.from_bytes(buf[0:4], "little")
    if root + 4 > len(buf):
        raise ModelError(f"truncated TFLite model: root table at offset {root} is past the end ({len(buf)} bytes)")
    # offsets of external buffers must lie inside the file: check before the
    # reader slices them (a short slice would silently truncate the weights)
    try:
        packed = fb.Model.GetRootAs(buf, 0)
        for i in range(packed.BuffersLength()):
            b = packed.Buffers(i)
            if b.Offset() > 1 and b.Offset() + b.Size() > len(buf):
                raise ModelError(
                    f"truncated TFLite model: buffer {i} lies at bytes {b.Offset()}..{b.Offset() + b.Size()}"
                    f" but the file has {len(buf)}"
                )
        model = fbu.read_model_from_bytearray(buf)
    except ModelError:
        raise
    except Exception as e:  # the flatbuffers reader raises anything from struct.error to IndexError
        raise ModelError(f"corrupt or truncated TFLite model: {type(e).__name__}: {e}") from None
    _check_indices(model)
    return model


def _check_indices(model: Any) -> None:
    n_buffers = len(model.buffers or [])
    n_codes = len(model.operatorCodes or [])
    if not model.subgraphs:
        raise ModelError("TFLite model has no subgraph")
    for s, sg in enumerate(model.subgraphs):
        n_tensors = len(sg.tensors or [])
        for t, tensor in enumerate(sg.tensors or []):
            if not (0 <= tensor.buffer < max(n_buffers, 1)):
                raise ModelError(f"subgraph {s} tensor {t} refers to buffer {tensor.buffer} of {n_buffers}")
            if getattr(tensor, "externalBuffer", 0):
                raise ModelError(f"subgraph {s} tensor {t} keeps its data in an external file; not supported")
        for k, op in enumerate(sg.operators or []):
            if not (0 <= op.opcodeIndex < n_codes):
                raise ModelError(f"subgraph {s} operator {k} has operator code {op.opcodeIndex} of {n_codes}")
            for idx in list(op.inputs or []) + list(op.outputs or []) + list(op.intermediates or []):
                if not (-1 <= idx < n_tensors):
                    raise ModelError(f"subgraph {s} operator {k} refers to tensor {idx} of {n_tensors}")
        for idx in list(sg.inputs or []) + list(sg.outputs or []):
            if not (0 <= idx < n_tensors):
                raise ModelError(f"subgraph {s} input/output refers to tensor {idx} of {n_tensors}")


# ------------------------------------------------------------------- writing
class _AlignedBuffer:
    """A ``BufferT`` stand-in whose ``Pack`` aligns the data vector to 16 bytes, as the schema requires."""

    __slots__ = ("data", "offset", "size")

    def __init__(self, buffer: Any) -> None:
        self.data = buffer.data
        self.offset = buffer.offset
        self.size = buffer.size

    def Pack(self, builder: Any) -> int:
        data_off = None
        if self.data is not None:
            payload = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), _BUFFER_ALIGN)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data_off = builder.EndVector()
        fb.BufferStart(builder)
        if data_off is not None:
            fb.BufferAddData(builder, data_off)
        if self.offset:
            fb.BufferAddOffset(builder, self.offset)
        if self.size:
            fb.BufferAddSize(builder, self.size)
        return int(fb.BufferEnd(builder))


def serialize_model(model: Any) -> bytes:
    """Pack a ``ModelT`` into TFLite flatbuffer bytes (identifier ``TFL3``, buffers 16-byte aligned)."""
    import flatbuffers

    _schema()
    total = sum(int(np.asarray(b.data).size) for b in model.buffers or [] if b.data is not None)
    if total > _MAX_FLATBUFFER - (1 << 24):
        raise ModelError(f"model weights ({total} bytes) do not fit in one flatbuffer (2 GiB limit)")
    # pack a shallow copy whose buffers use the aligned packer (no global patching)
    packed = copy.copy(model)
    packed.buffers = [_AlignedBuffer(b) for b in model.buffers or []]
    builder = flatbuffers.Builder(max(1024, total + (1 << 16)))
    builder.Finish(packed.Pack(builder), file_identifier=TFLITE_MAGIC)
    return bytes(builder.Output())


def has_data(buffer: Any) -> bool:
    """True when a flatbuffer buffer holds bytes (buffer 0 and run-time tensors hold none)."""
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def extract_subgraph(
    model: Any,
    op_indices: Sequence[int],
    inputs: Sequence[int],
    outputs: Sequence[int],
    *,
    subgraph: int = 0,
    shapes: Mapping[int, Sequence[int]] | None = None,
    description: str | None = None,
) -> Any:
    """A new single-subgraph ``ModelT`` running operators ``op_indices`` of ``subgraph``.

    The new model's inputs and outputs are the tensors ``inputs`` / ``outputs``
    (indices into the old subgraph, kept in that order). Tensors, buffers and
    operator codes are pruned to what those operators use and renumbered;
    buffer 0 stays the empty sentinel; quantization and sparsity parameters are
    kept. ``shapes`` (old tensor index -> static shape) overrides tensor shapes
    and drops their shape signatures, which freezes a resolved dynamic batch.
    Signature defs and metadata are dropped: the slice's interface is its
    subgraph inputs and outputs. Buffer data is shared with ``model``, not copied.
    """
    _schema()
    sg = model.subgraphs[subgraph]
    ops = [sg.operators[i] for i in sorted(set(op_indices))]
    tensor_map: dict[int, int] = {}
    new_tensors: list[Any] = []
    buffer_map: dict[int, int] = {}
    new_buffers: list[Any] = [fb.BufferT()]
    code_map: dict[int, int] = {}
    new_codes: list[Any] = []

    def map_tensor(old: int) -> int:
        if old < 0:  # optional operand left out
            return old
        if old in tensor_map:
            return tensor_map[old]
        t = copy.copy(sg.tensors[old])
        if t.shape is not None:
            t.shape = list(t.shape)
        if t.shapeSignature is not None:
            t.shapeSignature = list(t.shapeSignature)
        if shapes is not None and old in shapes:
            t.shape = [int(d) for d in shapes[old]]
            t.shapeSignature = None
        buf = model.buffers[t.buffer] if model.buffers and t.buffer < len(model.buffers) else None
        if buf is not None and has_data(buf):
            if t.buffer not in buffer_map:
                buffer_map[t.buffer] = len(new_buffers)
                new_buffers.append(fb.BufferT(data=buf.data))
            t.buffer = buffer_map[t.buffer]
        else:
            t.buffer = 0
        tensor_map[old] = len(new_tensors)
        new_tensors.append(t)
        return tensor_map[old]

    new_ops = []
    for op in ops:
        new = copy.copy(op)
        if op.opcodeIndex not in code_map:
            code_map[op.opcodeIndex] = len(new_codes)
            new_codes.append(copy.copy(model.operatorCodes[op.opcodeIndex]))
        new.opcodeIndex = code_map[op.opcodeIndex]
        new.inputs = [map_tensor(i) for i in op.inputs or []]
        new.outputs = [map_tensor(i) for i in op.outputs or []]
        if op.intermediates is not None:
            new.intermediates = [map_tensor(i) for i in op.intermediates]
        new.debugMetadataIndex = -1
        new_ops.append(new)
    new_inputs = [map_tensor(i) for i in inputs]
    new_outputs = [map_tensor(i) for i in outputs]

    out = fb.ModelT()
    out.version = model.version or 3
    out.description = description if description is not None else model.description
    out.operatorCodes = new_codes
    out.buffers = new_buffers
    new_sg = fb.SubGraphT()
    new_sg.tensors = new_tensors
    new_sg.operators = new_ops
    new_sg.inputs = new_inputs
    new_sg.outputs = new_outputs
    new_sg.name = sg.name
    new_sg.debugMetadataIndex = -1
    out.subgraphs = [new_sg]
    return out


# ------------------------------------------------------------------ building
def _options_enum(options: Any, enum: Any) -> int | None:
    name = type(options).__name__
    if name.endswith("T"):
        value = getattr(enum, name[:-1], None)
        if isinstance(value, int):
            return value
    return None


class ModelBuilder:
    """Builds a single-subgraph TFLite model from scratch.

    Add tensors (:meth:`tensor`, :meth:`const`) and operators (:meth:`op`) in
    execution order, then :meth:`finish` with the model inputs and outputs.
    Operator options are the schema's object-API classes (``Conv2DOptionsT``
    ...); their union type is deduced from the class name.
    """

    def __init__(self, description: str = "jointdnn-edge") -> None:
        _schema()
        self._tensors: list[Any] = []
        self._ops: list[Any] = []
        self._buffers: list[Any] = [fb.BufferT()]
        self._codes: dict[tuple[int, str, int], int] = {}
        self._code_list: list[Any] = []
        self._names: set[str] = set()
        self.description = description

    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: Any = np.float32,
        data: np.ndarray | None = None,
        *,
        shape_signature: Sequence[int] | None = None,
        quantization: Any = None,
        is_variable: bool = False,
    ) -> int:
        """Add a tensor (with constant ``data`` when given) and return its index."""
        if name in self._names:
            raise ModelError(f"duplicate tensor name {name!r}")
        self._names.add(name)
        t = fb.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = tensor_type(dtype)
        if shape_signature is not None:
            t.shapeSignature = [int(d) for d in shape_signature]
        t.quantization = quantization
        t.isVariable = is_variable
        t.buffer = 0
        if data is not None:
            arr = np.array(data, dtype=np.dtype(dtype).newbyteorder("<"), order="C")  # keeps 0-d shapes
            if tuple(arr.shape) != tuple(t.shape):
                raise ModelError(f"tensor {name!r}: data shape {arr.shape} != declared shape {tuple(t.shape)}")
            t.buffer = len(self._buffers)
            self._buffers.append(fb.BufferT(data=np.frombuffer(arr.tobytes(), dtype=np.uint8)))
        self._tensors.append(t)
        return len(self._tensors) - 1

    def const(self, name: str, array: Any, dtype: Any = None) -> int:
        """Add a constant tensor holding ``array`` and return its index."""
        arr = np.asarray(array, dtype=dtype)
        return self.tensor(name, arr.shape, arr.dtype, arr)

    def shape_of(self, index: int) -> tuple[int, ...]:
        """Declared shape of tensor ``index``."""
        return tuple(self._tensors[index].shape)

    def op(
        self,
        op: str | int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: Any = None,
        *,
        custom_code: str | None = None,
        custom_options: bytes | None = None,
        version: int = 1,
    ) -> int:
        """Append an operator (builtin name like ``"CONV_2D"``, or ``"CUSTOM"`` with ``custom_code``)."""
        code = _OP_CODES[op] if isinstance(op, str) else int(op)
        key = (code, custom_code or "", version)
        if key not in self._codes:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = version
            if custom_code is not None:
                oc.customCode = custom_code
            self._codes[key] = len(self._code_list)
            self._code_list.append(oc)
        o = fb.OperatorT()
        o.opcodeIndex = self._codes[key]
        o.inputs = [int(i) for i in inputs]
        o.outputs = [int(i) for i in outputs]
        if options is not None:
            kind = _options_enum(options, fb.BuiltinOptions)
            if kind is not None:
                o.builtinOptionsType, o.builtinOptions = kind, options
            else:
                kind2 = _options_enum(options, fb.BuiltinOptions2)
                if kind2 is None:
                    raise ModelError(f"unknown operator options class {type(options).__name__}")
                o.builtinOptions2Type, o.builtinOptions2 = kind2, options
        if custom_options is not None:
            o.customOptions = np.frombuffer(bytes(custom_options), dtype=np.uint8)
        self._ops.append(o)
        return len(self._ops) - 1

    def model(self, inputs: Sequence[int], outputs: Sequence[int]) -> Any:
        """The ``ModelT`` with these subgraph inputs and outputs."""
        m = fb.ModelT()
        m.version = 3
        m.description = self.description
        m.operatorCodes = list(self._code_list)
        m.buffers = list(self._buffers)
        sg = fb.SubGraphT()
        sg.tensors = list(self._tensors)
        sg.operators = list(self._ops)
        sg.inputs = [int(i) for i in inputs]
        sg.outputs = [int(i) for i in outputs]
        sg.name = "main"
        m.subgraphs = [sg]
        return m

    def finish(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        """Serialize the model with these subgraph inputs and outputs."""
        return serialize_model(self.model(inputs, outputs))


# ---------------------------------------------------------- NHWC op emitters
_PADDING = {"SAME": 0, "VALID": 1}
_ACTIVATION = {None: 0, "NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    if size < eff:
        raise ModelError(f"window of {eff} does not fit an input of {size} with VALID padding")
    return (size - eff) // stride + 1


class GraphBuilder(ModelBuilder):
    """:class:`ModelBuilder` with one method per TFLite operator, inferring output shapes.

    Activations are NHWC float32. Each method appends exactly one operator and
    returns its output tensor index (``name`` names that tensor and, through
    it, the operator). Weights follow TFLite's layouts: ``CONV_2D`` and
    ``TRANSPOSE_CONV`` filters are OHWI, ``DEPTHWISE_CONV_2D`` filters
    ``[1, H, W, C*multiplier]``, ``FULLY_CONNECTED`` weights ``[out, in]``.
    """

    def input(self, name: str, shape: Sequence[int], dtype: Any = np.float32, *, batch_dynamic: bool = False) -> int:
        """A model input (``batch_dynamic`` writes a shape signature with a ``-1`` batch)."""
        sig = [-1, *list(shape)[1:]] if batch_dynamic else None
        return self.tensor(name, shape, dtype, shape_signature=sig)

    def _act(self, name: str, shape: Sequence[int], dtype: Any = np.float32) -> int:
        return self.tensor(name, shape, dtype)

    def _bias(self, name: str, bias: Any, n: int) -> int:
        b = np.zeros(n, np.float32) if bias is None else np.asarray(bias, np.float32)
        return self.const(f"{name}/bias", b)

    def conv2d(
        self,
        name: str,
        x: int,
        weight: Any,
        bias: Any = None,
        *,
        stride: int | Sequence[int] = 1,
        padding: str = "SAME",
        dilation: int | Sequence[int] = 1,
        activation: str | None = None,
    ) -> int:
        """``CONV_2D`` with an OHWI filter (grouped when the filter has fewer input channels than ``x``)."""
        w = np.asarray(weight, np.float32)
        return self._windowed_conv(
            "CONV_2D", fb.Conv2DOptionsT(), name, x, w, w.shape[0], bias, stride, padding, dilation, activation
        )

    def depthwise_conv2d(
        self,
        name: str,
        x: int,
        weight: Any,
        bias: Any = None,
        *,
        stride: int | Sequence[int] = 1,
        padding: str = "SAME",
        dilation: int | Sequence[int] = 1,
        activation: str | None = None,
    ) -> int:
        """``DEPTHWISE_CONV_2D`` with a ``[1, H, W, C*multiplier]`` filter."""
        w = np.asarray(weight, np.float32)
        opts = fb.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = w.shape[3] // self.shape_of(x)[3]
        return self._windowed_conv(
            "DEPTHWISE_CONV_2D", opts, name, x, w, w.shape[3], bias, stride, padding, dilation, activation
        )

    def _windowed_conv(
        self,
        op: str,
        opts: Any,
        name: str,
        x: int,
        w: np.ndarray,
        channels: int,
        bias: Any,
        stride: int | Sequence[int],
        padding: str,
        dilation: int | Sequence[int],
        activation: str | None,
    ) -> int:
        """Append ``op`` (``CONV_2D`` or ``DEPTHWISE_CONV_2D``, filter ``w`` of spatial size ``w.shape[1:3]``).

        The output has ``channels`` channels; ``opts`` (the op's options
        table, op-specific fields already set) gets padding, strides,
        dilations and the fused activation.
        """
        n, h, wd, _ = self.shape_of(x)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        out = [n, _out_size(h, w.shape[1], sh, dh, padding), _out_size(wd, w.shape[2], sw, dw, padding), channels]
        wi = self.const(f"{name}/filter", w)
        bi = self._bias(name, bias, channels)
        y = self._act(name, out)
        opts.padding, opts.strideH, opts.strideW = _PADDING[padding], sh, sw
        opts.dilationHFactor, opts.dilationWFactor = dh, dw
        opts.fusedActivationFunction = _ACTIVATION[activation]
        self.op(op, [x, wi, bi], [y], opts)
        return y

    def transpose_conv(
        self,
        name: str,
        x: int,
        weight: Any,
        bias: Any = None,
        *,
        output_hw: Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "VALID",
        activation: str | None = None,
    ) -> int:
        """``TRANSPOSE_CONV`` with an OHWI filter, producing ``[N, *output_hw, O]``.

        TFLite's padding here crops the full transposed convolution
        (``(in - 1) * stride + k`` per axis) down to ``output_hw``: VALID keeps
        its top-left corner, SAME removes ``(full - out) // 2`` from the top/left.
        """
        w = np.asarray(weight, np.float32)
        n = self.shape_of(x)[0]
        sh, sw = _pair(stride)
        out = [n, int(output_hw[0]), int(output_hw[1]), w.shape[0]]
        si = self.const(f"{name}/output_shape", np.array(out, np.int32))
        wi = self.const(f"{name}/filter", w)
        bi = self._bias(name, bias, w.shape[0])
        y = self._act(name, out)
        opts = fb.TransposeConvOptionsT()
        opts.padding, opts.strideH, opts.strideW = _PADDING[padding], sh, sw
        opts.fusedActivationFunction = _ACTIVATION[activation]
        # bias as a 4th input and fused activations need version 3/4 of the kernel
        self.op("TRANSPOSE_CONV", [si, wi, x, bi], [y], opts, version=4 if activation else 3)
        return y

    def pool2d(
        self,
        name: str,
        kind: str,
        x: int,
        size: int | Sequence[int],
        *,
        stride: int | Sequence[int] | None = None,
        padding: str = "VALID",
        activation: str | None = None,
    ) -> int:
        """``MAX_POOL_2D`` (``kind="max"``) or ``AVERAGE_POOL_2D`` (``kind="avg"``, padding excluded from the mean)."""
        kh, kw = _pair(size)
        sh, sw = _pair(stride if stride is not None else size)
        n, h, wd, c = self.shape_of(x)
        out = [n, _out_size(h, kh, sh, 1, padding), _out_size(wd, kw, sw, 1, padding), c]
        y = self._act(name, out)
        opts = fb.Pool2DOptionsT()
        opts.padding, opts.strideH, opts.strideW = _PADDING[padding], sh, sw
        opts.filterHeight, opts.filterWidth = kh, kw
        opts.fusedActivationFunction = _ACTIVATION[activation]
        self.op({"max": "MAX_POOL_2D", "avg": "AVERAGE_POOL_2D"}[kind], [x], [y], opts)
        return y

    def mean(self, name: str, x: int, axes: Sequence[int], *, keep_dims: bool = True) -> int:
        """``MEAN`` over ``axes`` (``[1, 2]`` is global average pooling in NHWC)."""
        shape = list(self.shape_of(x))
        axes = sorted(a % len(shape) for a in axes)
        out = (
            [1 if i in axes else d for i, d in enumerate(shape)]
            if keep_dims
            else [d for i, d in enumerate(shape) if i not in axes]
        )
        ai = self.const(f"{name}/axes", np.array(axes, np.int32))
        y = self._act(name, out)
        opts = fb.ReducerOptionsT()
        opts.keepDims = keep_dims
        self.op("MEAN", [x, ai], [y], opts)
        return y

    def fully_connected(
        self, name: str, x: int, weight: Any, bias: Any = None, *, activation: str | None = None
    ) -> int:
        """``FULLY_CONNECTED`` with ``[out, in]`` weights; higher-rank inputs flatten row-major to ``[-1, in]``."""
        w = np.asarray(weight, np.float32)
        total = int(np.prod(self.shape_of(x)))
        if total % w.shape[1]:
            raise ModelError(f"{name}: input of {total} elements does not flatten to rows of {w.shape[1]}")
        wi = self.const(f"{name}/weights", w)
        bi = self._bias(name, bias, w.shape[0])
        y = self._act(name, [total // w.shape[1], w.shape[0]])
        opts = fb.FullyConnectedOptionsT()
        opts.fusedActivationFunction = _ACTIVATION[activation]
        self.op("FULLY_CONNECTED", [x, wi, bi], [y], opts)
        return y

    def binary(self, name: str, kind: str, a: int, b: int, *, activation: str | None = None) -> int:
        """``ADD``/``MUL``/``SUB``/``DIV`` with numpy broadcasting."""
        out = list(np.broadcast_shapes(self.shape_of(a), self.shape_of(b)))
        y = self._act(name, out)
        options_cls = {"ADD": fb.AddOptionsT, "MUL": fb.MulOptionsT, "SUB": fb.SubOptionsT, "DIV": fb.DivOptionsT}
        opts = options_cls[kind]()
        opts.fusedActivationFunction = _ACTIVATION[activation]
        self.op(kind, [a, b], [y], opts)
        return y

    def concat(self, name: str, xs: Sequence[int], axis: int = -1) -> int:
        """``CONCATENATION`` along ``axis``."""
        shapes = [list(self.shape_of(x)) for x in xs]
        ax = axis % len(shapes[0])
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        y = self._act(name, out)
        opts = fb.ConcatenationOptionsT()
        opts.axis = ax
        self.op("CONCATENATION", list(xs), [y], opts)
        return y

    def reshape(self, name: str, x: int, shape: Sequence[int]) -> int:
        """``RESHAPE`` to ``shape`` (one ``-1`` allowed), the shape given as a constant input."""
        total = int(np.prod(self.shape_of(x)))
        out = [int(d) for d in shape]
        if -1 in out:
            known = int(np.prod([d for d in out if d != -1]))
            out[out.index(-1)] = total // known
        si = self.const(f"{name}/shape", np.array(shape, np.int32))
        y = self._act(name, out)
        opts = fb.ReshapeOptionsT()
        opts.newShape = [int(d) for d in shape]
        self.op("RESHAPE", [x, si], [y], opts)
        return y

    def transpose(self, name: str, x: int, perm: Sequence[int]) -> int:
        """``TRANSPOSE`` by ``perm``."""
        shape = self.shape_of(x)
        pi = self.const(f"{name}/perm", np.array(perm, np.int32))
        y = self._act(name, [shape[p] for p in perm])
        self.op("TRANSPOSE", [x, pi], [y], fb.TransposeOptionsT())
        return y

    def pad(self, name: str, x: int, pads: Sequence[Sequence[int]], value: float | None = None) -> int:
        """``PAD`` (zeros) or ``PADV2`` (constant ``value``) with ``pads[d] = (before, after)`` per dimension."""
        shape = self.shape_of(x)
        p = np.array(pads, np.int32).reshape(len(shape), 2)
        pi = self.const(f"{name}/paddings", p)
        y = self._act(name, [d + int(a) + int(b) for d, (a, b) in zip(shape, p)])
        if value is None:
            self.op("PAD", [x, pi], [y], fb.PadOptionsT())
        else:
            vi = self.const(f"{name}/value", np.array(value, np.float32))
            self.op("PADV2", [x, pi, vi], [y], fb.PadV2OptionsT())
        return y

    def softmax(self, name: str, x: int, beta: float = 1.0) -> int:
        """``SOFTMAX`` over the last axis."""
        y = self._act(name, self.shape_of(x))
        opts = fb.SoftmaxOptionsT()
        opts.beta = float(beta)
        self.op("SOFTMAX", [x], [y], opts)
        return y

    def lrn(self, name: str, x: int, *, radius: int, bias: float, alpha: float, beta: float) -> int:
        """``LOCAL_RESPONSE_NORMALIZATION`` over channels: ``x / (bias + alpha * sum_{|j|<=radius} x^2) ** beta``.

        (ONNX's ``LRN(size, alpha)`` is ``radius = (size - 1) // 2`` and ``alpha / size`` here.)
        """
        y = self._act(name, self.shape_of(x))
        opts = fb.LocalResponseNormalizationOptionsT()
        opts.radius, opts.bias, opts.alpha, opts.beta = int(radius), float(bias), float(alpha), float(beta)
        self.op("LOCAL_RESPONSE_NORMALIZATION", [x], [y], opts)
        return y

    def unary(self, name: str, kind: str, x: int, *, alpha: float | None = None) -> int:
        """An element-wise activation: ``RELU``, ``RELU6``, ``RELU_N1_TO_1``, ``TANH``, ``LOGISTIC``,
        ``HARD_SWISH``, ``ELU``, or ``LEAKY_RELU`` (with ``alpha``)."""
        y = self._act(name, self.shape_of(x))
        opts = None
        if kind == "LEAKY_RELU":
            opts = fb.LeakyReluOptionsT()
            opts.alpha = float(0.01 if alpha is None else alpha)
        self.op(kind, [x], [y], opts)
        return y
