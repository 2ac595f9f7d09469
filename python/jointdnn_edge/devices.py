"""Device models: layer costs from FLOPs and memory traffic on hardware described by published figures.

A :class:`Device` is a roofline with a few more numbers: peak FP32 FLOP/s,
memory bandwidth, the fraction of peak each operator class reaches
(convolutions, fully connected / matrix products, elementwise / pooling /
normalization), a per-call dispatch overhead, a per-kernel launch overhead
and the compute power that turns time into mobile energy. A layer's work
(:class:`LayerWork`) is read from the model graph alone (shapes, operator
attributes and parameter sizes), so :func:`cost_table` builds a
:class:`~jointdnn_edge.CostTable` for a full-size model without running it.

Per layer: ``time = max(flops / (peak * efficiency[class]), bytes / bandwidth) + kernel_launch``
and ``bytes = weights + activations read + activations written``.

Groups of consecutive layers (what the profiler times as one sliced model)
are modelled as one call: one ``call_overhead`` per group instead of one per
layer, and a single-input pointwise layer (activation, batch norm) whose
input is produced inside the group by a layer with no other consumer is
*fused* into that producer: it launches no kernel, its input is not re-read
and the producer's output is not written (the fused layer writes it). Every
other layer keeps its own kernel and memory traffic. A group therefore never
costs more than the sum of its single layers. See ``docs/devices.md`` for
the presets' sources.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from .costs import CostTable
    from .models.graph import Layer, ModelGraph

__all__ = [
    "DEVICES",
    "OP_CLASSES",
    "Device",
    "LayerWork",
    "backward_cost_table",
    "backward_work",
    "cost_table",
    "device",
    "group_matrix",
    "layer_work",
    "work_ms",
]

#: The operator classes a device gives an efficiency for.
OP_CLASSES = ("conv", "matmul", "elementwise")

# op types (ONNX names and TFLite builtin names, lower case) -> class; the rest are elementwise or views
_CONV = {"conv", "convtranspose", "conv_2d", "depthwise_conv_2d", "transpose_conv", "conv_3d"}
_MATMUL = {"gemm", "matmul", "fully_connected", "batch_matmul", "rnn", "lstm", "gru"}
_RECURRENT = {"rnn", "lstm", "gru", "bidirectional_sequence_rnn", "unidirectional_sequence_rnn"}
#: operators that only reinterpret memory: no FLOPs, no traffic (the runtime aliases the buffer)
_VIEWS = {"reshape", "flatten", "squeeze", "unsqueeze", "identity", "dropout"}
#: single-input pointwise operators a runtime fuses into the kernel that produces their input
_FUSABLE = {
    "relu",
    "leakyrelu",
    "leaky_relu",
    "clip",
    "relu6",
    "tanh",
    "sigmoid",
    "logistic",
    "batchnormalization",
    "prelu",
}
#: FLOPs per output element of elementwise-class operators (others: 1)
_FLOPS_PER_ELEMENT = {"softmax": 5.0, "batchnormalization": 2.0, "tanh": 4.0, "sigmoid": 4.0, "logistic": 4.0}


@dataclass(frozen=True)
class Device:
    """A compute device as published figures (one parameter set, used for every model).

    ``peak_gflops``: FP32 peak; ``bandwidth_gbps``: memory bandwidth in GB/s
    (10^9 bytes), of which ``bandwidth_efficiency`` is reached by streaming
    kernels; ``efficiency``: the fraction of peak FLOP/s each class in
    :data:`OP_CLASSES` reaches; ``call_overhead_us``: the fixed cost of one
    invocation of a group of layers (framework dispatch and synchronization);
    ``kernel_launch_us``: each kernel launched in it; ``power_mw``: power while
    computing (energy = power x time; used for the mobile). ``source`` names
    where the figures come from.
    """

    name: str
    peak_gflops: float
    bandwidth_gbps: float
    efficiency: Mapping[str, float]
    call_overhead_us: float
    kernel_launch_us: float
    power_mw: float
    bandwidth_efficiency: float = 0.75
    source: str = ""

    def __post_init__(self) -> None:
        for field_name in ("peak_gflops", "bandwidth_gbps", "power_mw"):
            v = getattr(self, field_name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"device {self.name!r}: {field_name} must be finite and > 0, got {v!r}")
        for field_name in ("call_overhead_us", "kernel_launch_us"):
            v = getattr(self, field_name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"device {self.name!r}: {field_name} must be finite and >= 0, got {v!r}")
        if not 0 < self.bandwidth_efficiency <= 1:
            raise ConfigError(f"device {self.name!r}: bandwidth_efficiency must be in (0, 1]")
        if set(self.efficiency) != set(OP_CLASSES):
            raise ConfigError(f"device {self.name!r}: efficiency needs exactly the classes {OP_CLASSES}")
        if not all(0 < e <= 1 for e in self.efficiency.values()):
            raise ConfigError(f"device {self.name!r}: every efficiency must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON parameters."""
        d = asdict(self)
        d["efficiency"] = dict(self.efficiency)
        return d


#: Presets. Peak, bandwidth and power are the vendors' (or spec sheets') figures, see docs/devices.md;
#: efficiencies and overheads are one set per device class (embedded / phone GPU vs. server GPU), never per model.
DEVICES: dict[str, Device] = {
    d.name: d
    for d in [
        Device(
            "jetson-tx2",
            peak_gflops=665.0,
            bandwidth_gbps=59.7,
            efficiency={"conv": 0.5, "matmul": 0.4, "elementwise": 0.25},
            call_overhead_us=100.0,
            kernel_launch_us=20.0,
            power_mw=7500.0,
            source="NVIDIA Jetson TX2 module data sheet: Pascal GPU, 256 CUDA cores at 1.3 GHz "
            "(2 x 256 x 1.3e9 = 665 GFLOP/s FP32), 128-bit LPDDR4 59.7 GB/s, 7.5 W (Max-Q) module power. "
            "The JointDNN paper's mobile device.",
        ),
        Device(
            "tesla-k40c",
            peak_gflops=4290.0,
            bandwidth_gbps=288.0,
            efficiency={"conv": 0.6, "matmul": 0.5, "elementwise": 0.3},
            call_overhead_us=50.0,
            kernel_launch_us=8.0,
            power_mw=235000.0,
            source="NVIDIA Tesla K40 board specification: 2880 CUDA cores, 4.29 TFLOP/s FP32 peak "
            "(boost clock), 288 GB/s GDDR5, 235 W board power. The JointDNN paper's server GPU.",
        ),
        Device(
            "snapdragon-8-gen-2",
            peak_gflops=3700.0,
            bandwidth_gbps=64.0,
            efficiency={"conv": 0.4, "matmul": 0.3, "elementwise": 0.2},
            call_overhead_us=150.0,
            kernel_launch_us=25.0,
            power_mw=5000.0,
            source="Qualcomm Snapdragon 8 Gen 2, Adreno 740 GPU: 1024 ALUs at 719 MHz boost, about 3.7 TFLOP/s "
            "FP32; LPDDR5X-4200 on a 128-bit bus, 64 GB/s (third-party spec sheets: primua.com, nanoreview.net). "
            "5 W: a sustained phone-SoC power envelope (assumption, not a vendor figure).",
        ),
        Device(
            "h100-sxm",
            peak_gflops=66900.0,
            bandwidth_gbps=3350.0,
            efficiency={"conv": 0.6, "matmul": 0.5, "elementwise": 0.3},
            call_overhead_us=30.0,
            kernel_launch_us=5.0,
            power_mw=700000.0,
            source="NVIDIA H100 SXM5: 16,896 FP32 cores, 66.9 TFLOP/s FP32 (non-tensor), 80 GB HBM3 at 3.35 TB/s, "
            "up to 700 W (NVIDIA H100 data sheet, as summarised by glennklockwood.com/garden/processors/h100).",
        ),
    ]
}


def device(spec: str | Device) -> Device:
    """A :class:`Device` by preset name (case and ``_``/``-`` ignored), or ``spec`` itself."""
    if isinstance(spec, Device):
        return spec
    key = str(spec).lower().replace("_", "-")
    if key not in DEVICES:
        raise ConfigError(f"unknown device {spec!r}; choose one of {', '.join(DEVICES)}")
    return DEVICES[key]


# ------------------------------------------------------------------ work per layer
@dataclass(frozen=True)
class LayerWork:
    """What one layer does: FLOPs, bytes moved, and the operator class that sets its efficiency.

    ``in_bytes``: activations read (every input tensor once); ``out_bytes``:
    activations written; ``weight_bytes``: parameters read.
    """

    flops: float
    weight_bytes: float
    in_bytes: float
    out_bytes: float
    op_class: str

    @property
    def bytes(self) -> float:
        """All memory traffic of the layer run alone."""
        return self.weight_bytes + self.in_bytes + self.out_bytes


def _elements(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _base_op(layer: Layer) -> str:
    op = layer.op_type.split("::")[-1].lower()
    return op


def _layer_flops(graph: ModelGraph, layer: Layer, in_shapes: list[tuple[int, ...]]) -> tuple[float, str]:
    """FLOPs (2 per multiply-accumulate) and operator class of one layer, from shapes and attributes."""
    op = _base_op(layer)
    out_el = sum(_elements(t.shape) for t in layer.outputs)
    in_el = sum(_elements(s) for s in in_shapes)
    channels_last = graph.format == "tflite"
    x = in_shapes[0] if in_shapes else ()
    y = layer.outputs[0].shape if layer.outputs else ()
    if op in _VIEWS:
        return 0.0, "view"
    if op in _CONV:
        kernel = layer.attrs.get("kernel_shape")
        group = int(layer.attrs.get("group", 1))
        if kernel is not None and not channels_last and len(x) >= 2 and len(y) >= 2:
            k = _elements(kernel)
            if op == "convtranspose":  # every input element scatters into Cout/group x kernel outputs
                return 2.0 * in_el * (y[1] // group) * k, "conv"
            return 2.0 * out_el * (x[1] // group) * k, "conv"
        # no attributes (TFLite): every weight is used once per output position
        positions = out_el / max(1, (y[-1] if channels_last else y[1]) if len(y) >= 2 else 1)
        if "transpose" in op and len(x) >= 2:
            positions = in_el / max(1, x[-1] if channels_last else x[1])
        return 2.0 * positions * layer.weight_bytes / 4.0, "conv"
    if op in _RECURRENT or "sequence_rnn" in op:
        # h_t = act(W x_t + R h_{t-1}): (I + H) MACs per output element of every direction
        hidden = int(layer.attrs.get("hidden_size", y[-1] if y else 1))
        features = x[-1] if x else 0
        return 2.0 * out_el * (features + hidden), "matmul"
    if op in _MATMUL:
        k = x[-1] if x else 0
        return 2.0 * out_el * k, "matmul"
    if "pool" in op:
        kernel = layer.attrs.get("kernel_shape")
        if op.startswith("global") or kernel is None:
            return float(in_el), "elementwise"
        return float(out_el * _elements(kernel)), "elementwise"
    if op == "lrn":
        return float(out_el * (2 * int(layer.attrs.get("size", 5)) + 4)), "elementwise"
    if op == "concat":
        return 0.0, "elementwise"
    return float(out_el * _FLOPS_PER_ELEMENT.get(op, 1.0)), "elementwise"


def layer_work(graph: ModelGraph) -> list[LayerWork]:
    """The :class:`LayerWork` of every layer of ``graph`` (shapes and attributes only; nothing runs)."""
    shapes = {t.name: (t.shape, t.nbytes) for t in graph.inputs}
    for layer in graph.layers:
        for t in layer.outputs:
            shapes[t.name] = (t.shape, t.nbytes)
    out = []
    for layer in graph.layers:
        ins = [shapes[t] for t in layer.inputs if t in shapes]
        flops, op_class = _layer_flops(graph, layer, [s for s, _ in ins])
        if op_class == "view":
            out.append(LayerWork(0.0, 0.0, 0.0, 0.0, "elementwise"))
            continue
        out.append(
            LayerWork(
                flops=flops,
                weight_bytes=float(layer.weight_bytes),
                in_bytes=float(sum(b for _, b in ins)),
                out_bytes=float(layer.out_bytes),
                op_class=op_class,
            )
        )
    return out


#: Passes over a trained layer's parameters in one backward step: read for the input gradient, write the
#: weight gradient, then the SGD update reads weights and gradient and writes the weights.
WEIGHT_PASSES_BACKWARD = 5


def backward_work(work: LayerWork, *, input_gradient: bool = True) -> LayerWork:
    """The backward pass of a layer with ``work`` (batch as in ``work``), as one kernel's work.

    FLOPs: the weight gradient costs the forward FLOPs of a layer with
    weights (one product per multiply-accumulate, as the forward pass), and
    the input gradient the forward FLOPs again (every layer; skipped when
    ``input_gradient`` is False: the first trained layer passes nothing on).
    Memory: the output gradient and the stored input activations are read,
    the input gradient is written, and the parameters are passed over
    :data:`WEIGHT_PASSES_BACKWARD` times (one fewer without the input gradient).
    """
    weighted = work.weight_bytes > 0
    flops = (work.flops if weighted else 0.0) + (work.flops if input_gradient else 0.0)
    if not weighted and not input_gradient:
        return LayerWork(0.0, 0.0, 0.0, 0.0, work.op_class)
    passes = (WEIGHT_PASSES_BACKWARD - (0 if input_gradient else 1)) if weighted else 0
    return LayerWork(
        flops=flops,
        weight_bytes=passes * work.weight_bytes,
        in_bytes=work.out_bytes + work.in_bytes,
        out_bytes=work.in_bytes if input_gradient else 0.0,
        op_class=work.op_class,
    )


def batched(work: LayerWork, batch: int) -> LayerWork:
    """``work`` for ``batch`` inputs at once: FLOPs and activations scale, the weights are read once."""
    return replace(work, flops=work.flops * batch, in_bytes=work.in_bytes * batch, out_bytes=work.out_bytes * batch)


def work_ms(
    work: LayerWork, dev: Device, *, read_bytes: float | None = None, write_bytes: float | None = None
) -> float:
    """Roofline time of one kernel in ms, without launch or call overheads.

    ``read_bytes`` / ``write_bytes`` replace the layer's activation traffic
    (a fused kernel reads or writes less).
    """
    rd = work.in_bytes if read_bytes is None else read_bytes
    wr = work.out_bytes if write_bytes is None else write_bytes
    compute_s = work.flops / (dev.peak_gflops * 1e9 * dev.efficiency[work.op_class])
    memory_s = (work.weight_bytes + rd + wr) / (dev.bandwidth_gbps * 1e9 * dev.bandwidth_efficiency)
    return max(compute_s, memory_s) * 1e3


def _fusion_producers(graph: ModelGraph) -> list[int | None]:
    """For each layer, the layer it fuses into when both are in one group (``None``: it never fuses)."""
    edges = graph.edges
    consumers: dict[int, list[int]] = {}
    for u, v in edges:
        consumers.setdefault(u, []).append(v)
    model_out = set(graph.cost_skeleton()["outputs"])
    out: list[int | None] = []
    for layer in graph.layers:
        preds = [u for u, v in edges if v == layer.index]
        fuse = None
        if (
            _base_op(layer) in _FUSABLE
            and len(layer.inputs) == 1
            and len(preds) == 1
            and preds[0] >= 0
            and consumers.get(preds[0]) == [layer.index]
            and preds[0] not in model_out
        ):
            fuse = preds[0]
        out.append(fuse)
    return out


def group_matrix(
    works: Sequence[LayerWork], fused_into: Sequence[int | None], dev: Device, max_group: int | None = None
) -> np.ndarray:
    """``m[i, j]``: ms to run layers ``i..j`` as one group on ``dev`` (``inf`` past ``max_group``)."""
    n = len(works)
    call = dev.call_overhead_us / 1e3
    launch = dev.kernel_launch_us / 1e3
    fused_consumer: dict[int, int] = {p: k for k, p in enumerate(fused_into) if p is not None}
    alone = [work_ms(w, dev) for w in works]
    no_read = [work_ms(w, dev, read_bytes=0.0) for w in works]
    no_write = [work_ms(w, dev, write_bytes=0.0) for w in works]
    no_rw = [work_ms(w, dev, read_bytes=0.0, write_bytes=0.0) for w in works]
    is_kernel = [w.flops > 0 or w.bytes > 0 for w in works]
    m = np.full((n, n), np.inf)
    for i in range(n):
        last = n if max_group is None else min(n, i + max_group)
        for j in range(i, last):
            total = call
            for k in range(i, j + 1):
                p = fused_into[k]
                fused = p is not None and p >= i
                c = fused_consumer.get(k)
                writes_fused = c is not None and c <= j
                if fused:
                    total += no_rw[k] if writes_fused else no_read[k]
                else:
                    total += (no_write[k] if writes_fused else alone[k]) + (launch if is_kernel[k] else 0.0)
            m[i, j] = total
    return m


def cost_table(
    graph: ModelGraph,
    *,
    mobile: str | Device = "jetson-tx2",
    cloud: str | Device = "tesla-k40c",
    max_group: int | None = None,
    batch: int = 1,
) -> CostTable:
    """A :class:`CostTable` of ``graph`` from device models (no execution, no measurement).

    Mobile energy is the mobile device's ``power_mw`` times its time.
    ``meta["devices"]`` records both devices' parameters. ``batch``: inputs
    per run (the graph's shapes are one input's); activations and FLOPs scale
    with it, weights do not.
    """
    from .models.graph import costs_from

    mob, cld, works = _checked(graph, mobile, cloud, max_group, batch)
    fused = _fusion_producers(graph)
    meta = {
        "source": "device model",
        "devices": {"mobile": mob.to_dict(), "cloud": cld.to_dict()},
        "flops": [w.flops for w in works],
        "max_group": max_group,
        "batch": batch,
    }
    table = costs_from(
        graph,
        group_matrix(works, fused, mob, max_group),
        group_matrix(works, fused, cld, max_group),
        mobile_power_mw=mob.power_mw,
        meta=meta,
    )
    if batch == 1:
        return table
    return table.replace(out_bytes=np.asarray(table.out_bytes) * batch, input_bytes=table.input_bytes * batch)


def _checked(
    graph: ModelGraph, mobile: str | Device, cloud: str | Device, max_group: int | None, batch: int
) -> tuple[Device, Device, list[LayerWork]]:
    """Both devices and the (batched) work of every layer; ConfigError for a bad ``max_group`` or ``batch``."""
    if max_group is not None and max_group < 1:
        raise ConfigError(f"max_group must be >= 1, got {max_group}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be an integer >= 1, got {batch!r}")
    return device(mobile), device(cloud), [batched(w, batch) for w in layer_work(graph)]


def backward_cost_table(
    graph: ModelGraph,
    *,
    mobile: str | Device = "jetson-tx2",
    cloud: str | Device = "tesla-k40c",
    max_group: int | None = None,
    batch: int = 1,
    trainable_from: int = 0,
) -> CostTable:
    """The backward layers of ``graph`` as a table for :meth:`CostTable.training` (execution order, from device models).

    Layer ``k`` is the backward pass of forward layer ``N - 1 - k``
    (:func:`backward_work`; one kernel per layer, no fusion, one call per
    group); its ``out_bytes`` is the gradient it passes on (the size of the
    forward layer's inputs). Layers below ``trainable_from`` are not trained:
    they cost nothing, and the first trained layers (those reading nothing
    trained) compute no input gradient.
    """
    from .costs import CostTable

    mob, cld, works = _checked(graph, mobile, cloud, max_group, batch)
    n = len(works)
    if not 0 <= trainable_from < n:
        raise ConfigError(f"trainable_from must be in 0..{n - 1}, got {trainable_from!r}")
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in graph.edges:
        preds[v].append(u)
    back = [
        backward_work(w, input_gradient=any(u >= trainable_from for u in preds[f]))
        if f >= trainable_from
        else LayerWork(0.0, 0.0, 0.0, 0.0, w.op_class)
        for f, w in enumerate(works)
    ][::-1]
    skeleton = graph.cost_skeleton()
    sizes = [float(skeleton["input_bytes"])] + [float(b) for b in skeleton["out_bytes"]]
    grads = [batch * sum(sizes[u + 1] for u in (preds[f] or [-1])) for f in range(n)][::-1]
    none: list[int | None] = [None] * n
    meta = {"source": "device model (backward)", "batch": batch, "trainable_from": trainable_from}
    return CostTable(
        group_matrix(back, none, mob, max_group),
        group_matrix(back, none, cld, max_group),
        grads,
        batch * sizes[-1],
        mobile_power_mw=mob.power_mw,
        names=[f"{graph.layers[n - 1 - k].name}.backward" for k in range(n)],
        meta=meta,
    )
