"""The zoo: the paper's eight benchmarks build, pass onnx.checker, run, and have the documented layer counts.

Oracles: the documented/published layer and parameter counts, onnx.checker,
and a float64 numpy interpreter of the spec IR written here, independently of
the ONNX writer, against which onnxruntime's outputs are compared.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from jointdnn_edge import ConfigError, ModelError, zoo
from jointdnn_edge.models import executor_for, load_model
from jointdnn_edge.zoo.spec import ModelSpec, SpecBuilder

NAMES = zoo.names()

#: layer counts: ours (documented in zoo/__init__.py and docs/zoo.md) and the paper's Table 2
DOCUMENTED = {
    "alexnet": (21, 21),
    "overfeat": (19, 14),
    "deepspeech": (13, 10),
    "resnet": (70, 70),
    "vgg16": (37, 37),
    "nin": (29, 29),
    "chair": (12, 10),
    "pix2pix": (39, 32),
}

# ------------------------------------------------------------ numpy reference


def _conv(x, w, b, stride, pads):
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    kh, kw = w.shape[2:]
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    y = np.einsum("nchwij,ocij->nohw", win, w)
    return y if b is None else y + b[None, :, None, None]


def _deconv(x, w, b, stride, pads):
    n, _, h, wd = x.shape
    _, o, kh, kw = w.shape
    sh, sw = stride
    full = np.zeros((n, o, (h - 1) * sh + kh, (wd - 1) * sw + kw))
    for p in range(kh):
        for q in range(kw):
            full[:, :, p : p + (h - 1) * sh + 1 : sh, q : q + (wd - 1) * sw + 1 : sw] += np.einsum(
                "nchw,co->nohw", x, w[:, :, p, q]
            )
    pt, pl, pb, pr = pads
    return full[:, :, pt : full.shape[2] - pb, pl : full.shape[3] - pr] + b[None, :, None, None]


def _pool(x, kind, kernel, stride, pads):
    pt, pl, pb, pr = pads
    fill = -np.inf if kind == "maxpool" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    win = sliding_window_view(xp, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    if kind == "maxpool":
        return win.max(axis=(4, 5))
    ones = np.pad(np.ones(x.shape[2:]), ((pt, pb), (pl, pr)))
    count = sliding_window_view(ones, kernel)[:: stride[0], :: stride[1]].sum(axis=(2, 3))
    return win.sum(axis=(4, 5)) / count


def _lrn(x, size, alpha, beta, bias):
    c = x.shape[1]
    sq = x**2
    out = np.empty_like(x)
    lo_off, hi_off = (size - 1) // 2, size - 1 - (size - 1) // 2
    for ch in range(c):
        s = sq[:, max(0, ch - lo_off) : min(c, ch + hi_off + 1)].sum(axis=1)
        out[:, ch] = x[:, ch] / (bias + alpha / size * s) ** beta
    return out


def _rnn(x, W, R, B, hidden, clip, act):
    t_len, n, _ = x.shape
    d = W.shape[0]
    y = np.zeros((t_len, d, n, hidden))
    f = (lambda z: np.maximum(z, 0)) if act == "relu" else np.tanh
    for k in range(d):
        h = np.zeros((n, hidden))
        steps = range(t_len) if k == 0 else reversed(range(t_len))
        for t in steps:
            z = x[t] @ W[k].T + h @ R[k].T + B[k, :hidden] + B[k, hidden:]
            if clip is not None:
                z = np.clip(z, -clip, clip)
            h = f(z)
            y[t, k] = h
    return y


def numpy_forward(spec: ModelSpec, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor of ``spec`` computed in float64 numpy from the spec's own semantics."""
    env = {k: v.astype(np.float64) for k, v in feeds.items()}
    for op in spec.ops:
        xs = [env[t] for t in op.inputs]
        x = xs[0]
        a, w = op.attrs, {k: np.asarray(v, dtype=np.float64) for k, v in op.weights.items()}
        k = op.kind
        if k == "conv":
            y = _conv(x, w["weight"], w.get("bias"), a["stride"], a["pads"])
        elif k == "deconv":
            y = _deconv(x, w["weight"], w["bias"], a["stride"], a["pads"])
        elif k == "fc":
            y = (x.reshape(x.shape[0], -1) @ w["weight"].T + w["bias"]).reshape(op.shape)
        elif k == "relu":
            y = np.maximum(x, 0)
        elif k == "clip":
            y = np.clip(x, a["min"], a["max"])
        elif k == "leaky_relu":
            y = np.where(x >= 0, x, a["alpha"] * x)
        elif k == "tanh":
            y = np.tanh(x)
        elif k == "sigmoid":
            y = 1 / (1 + np.exp(-x))
        elif k in ("maxpool", "avgpool"):
            y = _pool(x, k, a["kernel"], a["stride"], a["pads"])
        elif k == "global_avgpool":
            y = x.mean(axis=(2, 3), keepdims=True)
        elif k == "lrn":
            y = _lrn(x, a["size"], a["alpha"], a["beta"], a["bias"])
        elif k == "batchnorm":
            sh = (1, -1, 1, 1)
            y = w["scale"].reshape(sh) * (x - w["mean"].reshape(sh)) / np.sqrt(w["var"].reshape(sh) + a["epsilon"]) + w[
                "bias"
            ].reshape(sh)
        elif k == "add":
            y = xs[0] + xs[1]
        elif k == "concat":
            y = np.concatenate(xs, axis=a["axis"])
        elif k in ("flatten", "reshape"):
            y = x.reshape(op.shape)
        elif k == "softmax":
            e = np.exp(x - x.max(axis=a["axis"], keepdims=True))
            y = e / e.sum(axis=a["axis"], keepdims=True)
        elif k == "rnn":
            y = _rnn(x, w["W"], w["R"], w["B"], a["hidden"], a["clip"], a["activation"])
        else:  # pragma: no cover
            raise AssertionError(k)
        assert y.shape == op.shape, (op.name, y.shape, op.shape)
        env[op.name] = y
    return env


def _feeds(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.random(t.shape, dtype=np.float32) for t in spec.inputs}


# ---------------------------------------------------------------------- tests


def test_documented_counts_match_the_registry():
    for name, (ours, paper) in DOCUMENTED.items():
        assert zoo.MODELS[name].layers == ours
        assert zoo.MODELS[name].paper_layers == paper
    assert set(NAMES) == set(DOCUMENTED)


@pytest.mark.parametrize("name", NAMES)
def test_layer_counts(name, zoo_graph):
    ours, _ = DOCUMENTED[name]
    spec_full = zoo.spec(name, weights=False)
    assert len(spec_full.ops) == ours
    # the scale knobs never change the structure
    tiny = zoo.spec(name, size="tiny")
    assert [op.kind for op in tiny.ops] == [op.kind for op in spec_full.ops]
    graph = zoo_graph(name)
    assert graph.n == ours
    assert [layer.name for layer in graph.layers] == [op.name for op in tiny.ops]


def test_merge_trivial_counts(zoo_graph):
    # activations merged into their conv/fc: the non-activation layer counts
    assert zoo_graph("overfeat", merge_trivial=True).n == 12
    assert zoo_graph("alexnet", merge_trivial=True).n == 14  # 5 conv, 2 lrn, 3 pool, 3 fc, softmax
    assert zoo_graph("vgg16", merge_trivial=True).n == 22  # 13 conv, 5 pool, 3 fc, softmax
    merged = zoo_graph("resnet", merge_trivial=True)
    assert merged.n == 70 - 20 - 17 - 1  # 20 bn and 17 relu merged, and the flatten into the pool
    assert merged.layers[0].ops == ("conv1", "bn1", "relu1")


def _alexnet_params() -> int:
    # (k*k*cin + 1) * cout per conv, (in + 1) * out per fc; Caffe's single-tower AlexNet
    convs = [(11, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    return sum((k * k * i + 1) * o for k, i, o in convs) + sum((i + 1) * o for i, o in fcs)


def _overfeat_params() -> int:
    # OverFeat fast, Sermanet et al. Table 1
    convs = [(11, 3, 96), (5, 96, 256), (3, 256, 512), (3, 512, 1024), (3, 1024, 1024)]
    fcs = [(1024 * 6 * 6, 3072), (3072, 4096), (4096, 1000)]
    return sum((k * k * i + 1) * o for k, i, o in convs) + sum((i + 1) * o for i, o in fcs)


def _nin_params() -> int:
    convs = [(11, 3, 96), (1, 96, 96), (1, 96, 96), (5, 96, 256), (1, 256, 256), (1, 256, 256),
             (3, 256, 384), (1, 384, 384), (1, 384, 384), (3, 384, 1024), (1, 1024, 1024), (1, 1024, 1000)]  # fmt: skip
    return sum((k * k * i + 1) * o for k, i, o in convs)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("vgg16", 138_357_544),  # torchvision vgg16
        ("resnet", 11_689_512),  # torchvision resnet18 (bn weight+bias, no conv bias)
        ("alexnet", _alexnet_params()),
        ("overfeat", _overfeat_params()),
        ("nin", _nin_params()),
    ],
)
def test_full_size_parameter_counts(name, params):
    assert zoo.spec(name, weights=False).params == params


@pytest.mark.parametrize(
    ("name", "tensor", "shape"),
    [
        ("alexnet", "pool5", (1, 256, 6, 6)),
        ("overfeat", "pool5", (1, 1024, 6, 6)),
        ("vgg16", "pool5", (1, 512, 7, 7)),
        ("resnet", "layer4.1.relu2", (1, 512, 7, 7)),
        ("nin", "pool3", (1, 384, 6, 6)),
        ("nin", "pool1", (1, 96, 27, 27)),
        ("chair", "deconv4", (1, 3, 128, 128)),
        ("pix2pix", "enc8", (1, 512, 1, 1)),
        ("pix2pix", "output", (1, 3, 256, 256)),
        ("deepspeech", "birnn", (100, 2, 1, 2048)),
        ("deepspeech", "prob", (100, 29)),
    ],
)
def test_full_size_shapes_follow_the_papers(name, tensor, shape):
    assert zoo.spec(name, weights=False).shape(tensor) == shape


@pytest.mark.parametrize("name", NAMES)
def test_checker_runtime_and_numpy_reference(name):
    spec = zoo.spec(name, size="tiny")
    model = onnx.load_from_string(zoo.write(spec))
    onnx.checker.check_model(model, full_check=True)
    graph = load_model(model)
    ex = executor_for(graph, threads=1)
    feeds = _feeds(spec)
    got = ex.run_model(graph, feeds)
    ref = numpy_forward(spec, feeds)
    for out in spec.outputs:
        assert got[out].shape == spec.shape(out)
        assert np.isfinite(got[out]).all()
        scale = float(np.abs(ref[out]).max())
        np.testing.assert_allclose(got[out], ref[out], rtol=1e-4, atol=1e-4 * scale)
    # intermediate tensors too (one slice per layer), which catches errors a softmax would hide
    env = dict(feeds)
    for i in range(graph.n):
        env.update(ex.run(graph, i, i, env))
    for op in spec.ops:
        scale = float(np.abs(ref[op.name]).max()) or 1.0
        np.testing.assert_allclose(env[op.name], ref[op.name], rtol=1e-4, atol=1e-4 * scale, err_msg=op.name)


def test_tiny_conv_against_numpy_with_same_padding():
    # stride 2 on an even input: TF "same" puts the odd padding row/column at the bottom/right
    b = SpecBuilder("tiny", seed=3)
    x = b.input("input", (2, 3, 8, 10))
    y = b.conv(x, 4, 3, 2, "same")
    assert b.ops[-1].attrs["pads"] == (0, 0, 1, 1)
    y = b.relu(y)
    y = b.avgpool(y, 3, 2, "same")
    y = b.fc(y, 5)
    y = b.softmax(y)
    b.output(y)
    spec = b.build()
    graph = load_model(zoo.write(spec))
    feeds = _feeds(spec, 1)
    got = executor_for(graph, threads=1).run_model(graph, feeds)[y]
    # direct numpy: pad bottom/right by one, correlate, relu, average without padding, fc, softmax
    xin = feeds["input"].astype(np.float64)
    w = spec.ops[0].weights["weight"].astype(np.float64)
    conv = np.zeros((2, 4, 4, 5))
    xp = np.pad(xin, ((0, 0), (0, 0), (0, 1), (0, 1)))
    for i in range(4):
        for j in range(5):
            conv[:, :, i, j] = np.einsum("ncij,ocij->no", xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3], w)
    conv += spec.ops[0].weights["bias"][None, :, None, None]
    r = np.maximum(conv, 0)
    assert got.shape == (2, 5, 1, 1)
    pooled = _pool(r, "avgpool", (3, 3), (2, 2), spec.ops[2].attrs["pads"])
    logits = pooled.reshape(2, -1) @ spec.ops[3].weights["weight"].T.astype(np.float64) + spec.ops[3].weights["bias"]
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(got.reshape(2, 5), want, rtol=1e-5, atol=1e-6)


def test_seeded_weights_are_reproducible():
    a = zoo.build("chair", size="tiny", seed=5)
    assert a == zoo.build("chair", size="tiny", seed=5)
    assert a != zoo.build("chair", size="tiny", seed=6)


def test_deepspeech_fc5_sums_the_two_directions():
    spec = zoo.spec("deepspeech", size="tiny")
    w = spec.op("fc5").weights["weight"]
    h = w.shape[1] // 2
    assert np.array_equal(w[:, :h], w[:, h:])
    assert spec.op("birnn").attrs == {"hidden": h, "direction": "bidirectional", "activation": "relu", "clip": 20.0}


def test_bad_knobs_raise_config_error_and_unbuildable_models_model_error():
    with pytest.raises(ConfigError, match="unknown zoo model"):
        zoo.spec("lenet")
    with pytest.raises(ConfigError, match="unknown size"):
        zoo.spec("alexnet", size="huge")
    with pytest.raises(ConfigError, match="width"):
        zoo.spec("alexnet", width=0)
    with pytest.raises(ConfigError, match="multiple of 256"):
        zoo.spec("pix2pix", resolution=128)
    with pytest.raises(ModelError, match="too small"):
        zoo.spec("alexnet", resolution=40, weights=False)
    with pytest.raises(ConfigError, match="batch must be 1"):
        zoo.spec("deepspeech", batch=2, weights=False)
    with pytest.raises(ConfigError, match="format"):
        zoo.build("chair", "caffe", size="tiny")


def test_batch_knob(zoo_graph):
    g = zoo_graph("vgg16", batch=3)
    assert g.inputs[0].shape == (3, 3, 32, 32)
    assert g.outputs[0].shape == (3, 1000, 1, 1)
