"""Fixtures and helpers for the TFLite tests: hand-built models with numpy references, real photos.

The hand-built models come from :class:`GraphBuilder` and each has a numpy
reference implementation written independently of LiteRT (``ref_*`` below),
so tests can check the runtime, the writer and the slicer against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from jointdnn_edge.models import tflite_flatbuffer as tfb
from jointdnn_edge.models.graph import ModelGraph
from jointdnn_edge.models.tflite_flatbuffer import GraphBuilder

# ------------------------------------------------------------ numpy references


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def ref_conv2d(x, w_ohwi, b, stride=1, padding="SAME", dilation=1, depthwise=False):
    """NHWC convolution (cross-correlation), SAME padding split as TFLite does (extra on the bottom/right)."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w_ohwi.shape
    if padding == "SAME":
        (pt, pb), (pl, pr) = _same_pads(h, kh, stride, dilation), _same_pads(wd, kw, stride, dilation)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - ((kh - 1) * dilation + 1)) // stride + 1
    ow = (xp.shape[2] - ((kw - 1) * dilation + 1)) // stride + 1
    cout = w_ohwi.shape[3] if depthwise else o
    y = np.zeros((n, oh, ow, cout))
    for p in range(kh):
        for q in range(kw):
            patch = xp[:, p * dilation : p * dilation + (oh - 1) * stride + 1 : stride,
                       q * dilation : q * dilation + (ow - 1) * stride + 1 : stride, :]  # fmt: skip
            if depthwise:  # w is [1, kh, kw, c*m]
                m = cout // c
                y += np.repeat(patch, m, axis=3) * w_ohwi[0, p, q, :]
            else:
                y += np.einsum("nhwi,oi->nhwo", patch, w_ohwi[:, p, q, :].astype(np.float64))
    return y + (0 if b is None else b)


def ref_pool(x, kind, k, stride, padding="VALID"):
    """NHWC max / average pooling; average excludes padded cells, as TFLite does."""
    n, h, wd, c = x.shape
    (pt, pb), (pl, pr) = (
        (_same_pads(h, k, stride), _same_pads(wd, k, stride)) if padding == "SAME" else ((0, 0), (0, 0))
    )
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    ones = np.pad(np.ones((1, h, wd, 1)), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    acc = np.full((n, oh, ow, c), -np.inf) if kind == "max" else np.zeros((n, oh, ow, c))
    cnt = np.zeros((1, oh, ow, 1))
    for p in range(k):
        for q in range(k):
            sl = (slice(None), slice(p, p + (oh - 1) * stride + 1, stride), slice(q, q + (ow - 1) * stride + 1, stride))
            if kind == "max":
                acc = np.maximum(acc, xp[sl])
            else:
                acc += xp[sl]
                cnt += ones[sl]
    return acc if kind == "max" else acc / cnt


def ref_transpose_conv(x, w_ohwi, b, stride, out_hw, padding="SAME"):
    """TFLite TRANSPOSE_CONV: the full transposed convolution, cropped to ``out_hw`` (SAME centres the crop)."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w_ohwi.shape
    fh, fw = (h - 1) * stride + kh, (wd - 1) * stride + kw
    full = np.zeros((n, fh, fw, o))
    for p in range(kh):
        for q in range(kw):
            full[:, p : p + (h - 1) * stride + 1 : stride, q : q + (wd - 1) * stride + 1 : stride, :] += np.einsum(
                "nhwi,oi->nhwo", x.astype(np.float64), w_ohwi[:, p, q, :]
            )
    top = max(fh - out_hw[0], 0) // 2 if padding == "SAME" else 0
    left = max(fw - out_hw[1], 0) // 2 if padding == "SAME" else 0
    return full[:, top : top + out_hw[0], left : left + out_hw[1], :] + b


def ref_lrn(x, radius, bias, alpha, beta):
    """Across-channel LRN as TFLite defines it."""
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (0, 0), (0, 0), (radius, radius)))
    c = x.shape[3]
    s = sum(sq[..., j : j + c] for j in range(2 * radius + 1))
    return x / (bias + alpha * s) ** beta


def ref_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------- hand-built models


class Built:
    """A hand-built model: its bytes, the numpy reference, and the named weights it used."""

    def __init__(self, data: bytes, ref: Callable[[np.ndarray], Mapping[str, np.ndarray]], input_shape: Sequence[int]):
        self.data = data
        self.ref = ref
        self.input_shape = tuple(input_shape)


def _w(rng: np.random.Generator, *shape: int, scale: float = 0.3) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def build_chain(seed: int = 0, *, batch_dynamic: bool = False, batch: int = 1) -> Built:
    """conv → relu → maxpool → conv(s2, VALID, relu6) → LRN → avgpool(SAME) → reshape → fc → tanh → fc → softmax."""
    rng = np.random.default_rng(seed)
    w1, b1 = _w(rng, 8, 3, 3, 3), _w(rng, 8)
    w2, b2 = _w(rng, 6, 3, 3, 8), _w(rng, 6)
    f1, fb1 = _w(rng, 12, 2 * 2 * 6), _w(rng, 12)
    f2, fb2 = _w(rng, 5, 12), _w(rng, 5)
    g = GraphBuilder("chain")
    x = g.input("image", [batch, 16, 16, 3], batch_dynamic=batch_dynamic)
    y = g.conv2d("conv1", x, w1, b1)
    y = g.unary("relu1", "RELU", y)
    y = g.pool2d("pool1", "max", y, 2)
    y = g.conv2d("conv2", y, w2, b2, stride=2, padding="VALID", activation="RELU6")
    y = g.lrn("norm2", y, radius=1, bias=1.0, alpha=0.1, beta=0.75)
    y = g.pool2d("pool2", "avg", y, 2, padding="SAME")
    y = g.reshape("flatten", y, [-1, 2 * 2 * 6])
    y = g.fully_connected("fc1", y, f1, fb1)
    y = g.unary("tanh1", "TANH", y)
    y = g.fully_connected("fc2", y, f2, fb2)
    y = g.softmax("prob", y)
    data = g.finish([x], [y])

    def ref(img: np.ndarray) -> dict[str, np.ndarray]:
        h = np.maximum(ref_conv2d(img, w1, b1), 0)
        h = ref_pool(h, "max", 2, 2)
        h = np.clip(ref_conv2d(h, w2, b2, stride=2, padding="VALID"), 0, 6)
        h = ref_lrn(h, 1, 1.0, 0.1, 0.75)
        h = ref_pool(h, "avg", 2, 2, "SAME").reshape(-1, 24)
        h = np.tanh(h @ f1.T + fb1) @ f2.T + fb2
        return {"prob": ref_softmax(h)}

    return Built(data, ref, [batch, 16, 16, 3])


def build_residual(seed: int = 1) -> Built:
    """A residual block with a skip ADD, a depthwise branch joined by CONCATENATION, then MEAN → FC → LOGISTIC."""
    rng = np.random.default_rng(seed)
    w1, b1 = _w(rng, 8, 3, 3, 4), _w(rng, 8)
    w2, b2 = _w(rng, 8, 3, 3, 8), _w(rng, 8)
    w3, b3 = _w(rng, 8, 1, 1, 8), _w(rng, 8)
    dw, db = _w(rng, 1, 3, 3, 16), _w(rng, 16)
    f, fb = _w(rng, 3, 24), _w(rng, 3)
    g = GraphBuilder("residual")
    x = g.input("input", [1, 12, 12, 4])
    c1 = g.conv2d("conv1", x, w1, b1, activation="RELU")
    c2 = g.conv2d("conv2", c1, w2, b2)
    r2 = g.unary("relu2", "RELU", c2)
    c3 = g.conv2d("conv3", r2, w3, b3)
    s = g.binary("skip_add", "ADD", c1, c3)
    r = g.unary("relu3", "RELU", s)
    d = g.depthwise_conv2d("dwconv", r, dw, db, stride=2)
    p = g.pool2d("pool", "max", r, 3, stride=2, padding="SAME")
    cat = g.concat("concat", [p, d], axis=3)
    m = g.mean("gap", cat, [1, 2], keep_dims=False)
    fc = g.fully_connected("fc", m, f, fb)
    out = g.unary("score", "LOGISTIC", fc)
    data = g.finish([x], [out, r])

    def ref(img: np.ndarray) -> dict[str, np.ndarray]:
        h1 = np.maximum(ref_conv2d(img, w1, b1), 0)
        h3 = ref_conv2d(np.maximum(ref_conv2d(h1, w2, b2), 0), w3, b3)
        hr = np.maximum(h1 + h3, 0)
        hd = ref_conv2d(hr, dw, db, stride=2, depthwise=True)
        hp = ref_pool(hr, "max", 3, 2, "SAME")
        hm = np.concatenate([hp, hd], axis=3).mean(axis=(1, 2))
        return {"score": sigmoid(hm @ f.T + fb), "relu3": hr}

    return Built(data, ref, [1, 12, 12, 4])


def build_unet(seed: int = 2) -> Built:
    """A two-level U-Net: conv/pool encoder, TRANSPOSE_CONV decoder, CONCATENATION skips at both levels."""
    rng = np.random.default_rng(seed)
    e1w, e1b = _w(rng, 4, 3, 3, 3), _w(rng, 4)
    e2w, e2b = _w(rng, 8, 3, 3, 4), _w(rng, 8)
    bw, bb = _w(rng, 8, 3, 3, 8), _w(rng, 8)
    u1w, u1b = _w(rng, 8, 4, 4, 8), _w(rng, 8)
    d1w, d1b = _w(rng, 4, 3, 3, 16), _w(rng, 4)
    u2w, u2b = _w(rng, 4, 2, 2, 4), _w(rng, 4)
    ow, ob = _w(rng, 1, 1, 1, 8), _w(rng, 1)
    g = GraphBuilder("unet")
    x = g.input("image", [1, 16, 16, 3])
    e1 = g.conv2d("enc1", x, e1w, e1b, activation="RELU")
    p1 = g.pool2d("down1", "max", e1, 2)
    e2 = g.conv2d("enc2", p1, e2w, e2b, activation="RELU")
    p2 = g.pool2d("down2", "max", e2, 2)
    bt = g.conv2d("bottleneck", p2, bw, bb, activation="RELU")
    u1 = g.transpose_conv("up1", bt, u1w, u1b, output_hw=(8, 8), stride=2, padding="SAME")
    c1 = g.concat("cat1", [u1, e2], axis=3)
    d1 = g.conv2d("dec1", c1, d1w, d1b, activation="RELU")
    u2 = g.transpose_conv("up2", d1, u2w, u2b, output_hw=(16, 16), stride=2, padding="VALID")
    c2 = g.concat("cat2", [u2, e1], axis=3)
    o = g.conv2d("head", c2, ow, ob)
    out = g.unary("mask", "LOGISTIC", o)
    data = g.finish([x], [out])

    def ref(img: np.ndarray) -> dict[str, np.ndarray]:
        h1 = np.maximum(ref_conv2d(img, e1w, e1b), 0)
        h2 = np.maximum(ref_conv2d(ref_pool(h1, "max", 2, 2), e2w, e2b), 0)
        hb = np.maximum(ref_conv2d(ref_pool(h2, "max", 2, 2), bw, bb), 0)
        hu1 = ref_transpose_conv(hb, u1w, u1b, 2, (8, 8), "SAME")
        hd1 = np.maximum(ref_conv2d(np.concatenate([hu1, h2], 3), d1w, d1b), 0)
        hu2 = ref_transpose_conv(hd1, u2w, u2b, 2, (16, 16), "VALID")
        return {"mask": sigmoid(ref_conv2d(np.concatenate([hu2, h1], 3), ow, ob))}

    return Built(data, ref, [1, 16, 16, 3])


def build_fp16_shared(seed: int = 3) -> Built:
    """float16 weights decoded by DEQUANTIZE, one decoded filter shared by two convolutions."""
    rng = np.random.default_rng(seed)
    w = _w(rng, 6, 3, 3, 6).astype(np.float16)
    b = _w(rng, 6).astype(np.float16)
    g = GraphBuilder("fp16_shared")
    x = g.input("input", [1, 8, 8, 6])
    w16 = g.const("filter_fp16", w)
    b16 = g.const("bias_fp16", b)
    wf = g.tensor("filter", w.shape)
    bf = g.tensor("bias", b.shape)
    g.op("DEQUANTIZE", [w16], [wf])
    g.op("DEQUANTIZE", [b16], [bf])
    y1 = g.tensor("conv_a", [1, 8, 8, 6])
    g.op("CONV_2D", [x, wf, bf], [y1], _conv_opts())
    r1 = g.unary("relu_a", "RELU", y1)
    y2 = g.tensor("conv_b", [1, 8, 8, 6])
    g.op("CONV_2D", [r1, wf, bf], [y2], _conv_opts())
    out = g.binary("sum", "ADD", y2, x)
    data = g.finish([x], [out])
    w32, b32 = w.astype(np.float32), b.astype(np.float32)

    def ref(img: np.ndarray) -> dict[str, np.ndarray]:
        h = np.maximum(ref_conv2d(img, w32, b32), 0)
        return {"sum": ref_conv2d(h, w32, b32) + img}

    return Built(data, ref, [1, 8, 8, 6])


def _conv_opts() -> Any:
    o = tfb.fb.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor = 0, 1, 1, 1, 1
    return o


def build_while_model() -> bytes:
    """A valid model whose main subgraph loops with WHILE (cond: i < 3; body: i += 1, x += x)."""
    fb = tfb.fb

    def tensor(name: str, shape: list[int], ttype: int, buffer: int = 0) -> Any:
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buffer
        return t

    def op(code: int, ins: list[int], outs: list[int], opts: Any = None, kind: int = 0) -> Any:
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, ins, outs
        if opts is not None:
            o.builtinOptionsType, o.builtinOptions = kind, opts
        return o

    f32, i32, boolean = fb.TensorType.FLOAT32, fb.TensorType.INT32, fb.TensorType.BOOL
    codes = []
    for name in ("WHILE", "LESS", "ADD"):
        c = fb.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, name)
        c.version = 1
        codes.append(c)
    buffers = [fb.BufferT(), fb.BufferT(data=np.frombuffer(np.int32(0).tobytes(), np.uint8)),
               fb.BufferT(data=np.frombuffer(np.int32(3).tobytes(), np.uint8)),
               fb.BufferT(data=np.frombuffer(np.int32(1).tobytes(), np.uint8))]  # fmt: skip
    wopts = fb.WhileOptionsT()
    wopts.condSubgraphIndex, wopts.bodySubgraphIndex = 1, 2
    main = fb.SubGraphT()
    main.tensors = [tensor("i0", [], i32, 1), tensor("x", [2], f32), tensor("i_out", [], i32), tensor("y", [2], f32)]
    main.operators = [op(0, [0, 1], [2, 3], wopts, fb.BuiltinOptions.WhileOptions)]
    main.inputs, main.outputs, main.name = [1], [3], "main"
    cond = fb.SubGraphT()
    cond.tensors = [
        tensor("ci", [], i32),
        tensor("cx", [2], f32),
        tensor("limit", [], i32, 2),
        tensor("go", [], boolean),
    ]
    cond.operators = [op(1, [0, 2], [3], fb.LessOptionsT(), fb.BuiltinOptions.LessOptions)]
    cond.inputs, cond.outputs, cond.name = [0, 1], [3], "cond"
    body = fb.SubGraphT()
    body.tensors = [tensor("bi", [], i32), tensor("bx", [2], f32), tensor("one", [], i32, 3),
                    tensor("bi2", [], i32), tensor("bx2", [2], f32)]  # fmt: skip
    body.operators = [op(2, [0, 2], [3], fb.AddOptionsT(), fb.BuiltinOptions.AddOptions),
                      op(2, [1, 1], [4], fb.AddOptionsT(), fb.BuiltinOptions.AddOptions)]  # fmt: skip
    body.inputs, body.outputs, body.name = [0, 1], [3, 4], "body"
    m = fb.ModelT()
    m.version, m.operatorCodes, m.buffers, m.subgraphs = 3, codes, buffers, [main, cond, body]
    return tfb.serialize_model(m)


def build_custom_op_model(code: str = "JointdnnNoSuchOp") -> bytes:
    """RELU followed by a custom operator no runtime registers."""
    g = GraphBuilder("custom")
    x = g.input("input", [1, 4])
    r = g.unary("relu", "RELU", x)
    y = g.tensor("custom_out", [1, 4])
    g.op("CUSTOM", [r], [y], custom_code=code, custom_options=b"")
    return g.finish([x], [y])


def build_where_model() -> bytes:
    """WHERE on a boolean input: its output's row count depends on the data."""
    g = GraphBuilder("where")
    x = g.input("mask", [6], np.bool_)
    y = g.tensor("indices", [6, 1], np.int64, shape_signature=[-1, 1])
    g.op("WHERE", [x], [y], tfb.fb.WhereOptionsT())
    return g.finish([x], [y])


# -------------------------------------------------------------------- helpers


def live_tensors(model: Any, graph: Any, cut: int) -> set[str]:
    """Activations crossing a cut before layer ``cut``, recomputed from the flatbuffer's operator lists."""
    sg = model.subgraphs[0]
    const = {i for i, t in enumerate(sg.tensors) if t.buffer and model.buffers[t.buffer].data is not None}
    for op in sg.operators:  # weight decoding: ops reading only constants produce constants
        ins = [t for t in op.inputs if t >= 0]
        if ins and all(t in const for t in ins):
            const.update(op.outputs)
    before = {k for layer in graph.layers[:cut] for k in layer.attrs["operators"]}
    after = {k for layer in graph.layers[cut:] for k in layer.attrs["operators"]}
    produced_before = {t for k in before for t in sg.operators[k].outputs}
    read_after = {t for k in after for t in sg.operators[k].inputs if t >= 0}
    live = (produced_before | set(sg.inputs)) & read_after - const
    return {_tname(sg.tensors[t]) for t in live}


def _tname(tensor: Any) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def tensor_names(model: Any, indices: Sequence[int]) -> list[str]:
    """Names of tensors ``indices`` of the main subgraph of a parsed model."""
    return [_tname(model.subgraphs[0].tensors[i]) for i in indices]


def run_schedule(executor: Any, graph: ModelGraph, cuts: Sequence[int], feeds: Mapping[str, np.ndarray]) -> dict:
    """Run ``graph`` as consecutive slices split before each layer in ``cuts``; return the model outputs."""
    live = dict(feeds)
    bounds = [0, *sorted(cuts), graph.n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        ins, outs = graph.slice_io(a, b - 1)
        got = executor.run(graph, a, b - 1, {k: live[k] for k in ins})
        assert list(got) == outs
        live.update(got)
    return {t.name: live[t.name] for t in graph.outputs}


def schedules(n: int, seed: int, count: int = 4, max_cuts: int = 6) -> list[list[int]]:
    """A few cut sets over ``n`` layers: no cut, every cut, and random ones."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[], list(range(1, n))]
    for _ in range(count):
        k = int(rng.integers(1, min(max_cuts, n - 1) + 1))
        out.append(sorted(rng.choice(np.arange(1, n), size=k, replace=False).tolist()))
    return out


def photo(name: str, hw: tuple[int, int], scale: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A scikit-image sample photograph as a float32 NHWC batch of one, resized and mapped to ``scale``."""
    import skimage.data
    from skimage.transform import resize

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    x = resize(img[..., :3], hw, anti_aliasing=True).astype(np.float32)
    lo, hi = scale
    return (x * (hi - lo) + lo)[None]


@pytest.fixture(scope="session")
def mediapipe_dir(fixtures_dir: Path) -> Path:
    """Directory of the TFLite models extracted from the mediapipe 0.10.14 wheel."""
    return fixtures_dir / "mediapipe"


@pytest.fixture(scope="session")
def litert():
    """A LiteRT executor with its default XNNPACK delegate."""
    from jointdnn_edge.models.litert_executor import LiteRTExecutor

    return LiteRTExecutor()


def with_buffer_offsets(data: bytes) -> bytes:
    """The same model with every weight stored after the flatbuffer (``Buffer.offset``/``size``), as
    the converter writes models over 2 GiB."""
    import flatbuffers

    fb = tfb.fb
    model = tfb.read_model(data)
    payloads: list[bytes] = []
    for b in model.buffers:
        raw = b"" if b.data is None else bytes(np.asarray(b.data, np.uint8))
        payloads.append(raw)
        if raw:
            b.data, b.offset, b.size = None, 1, len(raw)  # placeholders, patched below
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=tfb.TFLITE_MAGIC)
    head = bytearray(builder.Output())
    out = head + b"\0" * (-len(head) % 16)
    offsets = {}
    for i, raw in enumerate(payloads):
        if raw:
            offsets[i] = len(out)
            out += raw + b"\0" * (-len(raw) % 16)
    packed = fb.Model.GetRootAs(out, 0)
    for i, off in offsets.items():
        tfb.fbu.update_packed_buffer(packed.Buffers(i), offset=off, size=len(payloads[i]))
    return bytes(out)


def _quant(scale: Sequence[float], zero_point: Sequence[int], axis: int = 0) -> Any:
    q = tfb.fb.QuantizationParametersT()
    q.scale = [float(s) for s in scale]
    q.zeroPoint = [int(z) for z in zero_point]
    q.quantizedDimension = axis
    return q


def build_int8(seed: int = 4) -> Built:
    """A fully int8 model: QUANTIZE → CONV_2D (per-channel int8 weights) → RELU → residual ADD → DEQUANTIZE.

    The reference is the float computation; int8 rounding keeps the model within a few output steps of it.
    """
    rng = np.random.default_rng(seed)
    w = _w(rng, 4, 3, 3, 4, scale=0.2)
    b = _w(rng, 4, scale=0.1)
    s_in, s_mid, s_out = 1 / 128, 0.02, 0.03
    s_w = np.abs(w).reshape(4, -1).max(axis=1) / 127
    g = GraphBuilder("int8")
    x = g.input("input", [1, 6, 6, 4])
    q = g.tensor("quantized", [1, 6, 6, 4], np.int8, quantization=_quant([s_in], [0]))
    g.op("QUANTIZE", [x], [q], tfb.fb.QuantizeOptionsT())
    wq = np.clip(np.round(w / s_w[:, None, None, None]), -127, 127).astype(np.int8)
    wi = g.tensor("conv/filter", wq.shape, np.int8, wq, quantization=_quant(s_w, [0] * 4, 0))
    bq = np.round(b / (s_in * s_w)).astype(np.int32)
    bi = g.tensor("conv/bias", bq.shape, np.int32, bq, quantization=_quant(s_in * s_w, [0] * 4, 0))
    c = g.tensor("conv", [1, 6, 6, 4], np.int8, quantization=_quant([s_mid], [-5]))
    g.op("CONV_2D", [q, wi, bi], [c], _conv_opts())
    r = g.tensor("relu", [1, 6, 6, 4], np.int8, quantization=_quant([s_mid], [-5]))
    g.op("RELU", [c], [r])
    a = g.tensor("add", [1, 6, 6, 4], np.int8, quantization=_quant([s_out], [3]))
    opts = tfb.fb.AddOptionsT()
    g.op("ADD", [r, q], [a], opts)
    y = g.tensor("output", [1, 6, 6, 4], np.float32)
    g.op("DEQUANTIZE", [a], [y], tfb.fb.DequantizeOptionsT())
    data = g.finish([x], [y])

    def ref(img: np.ndarray) -> dict[str, np.ndarray]:
        return {"output": np.maximum(ref_conv2d(img, w, b), 0) + img}

    return Built(data, ref, [1, 6, 6, 4])
