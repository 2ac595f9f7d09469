"""The zoo written as TFLite: layer counts, agreement with the ONNX form, slicing.

Oracle for the writer: the same spec written as ONNX and run by onnxruntime.
Every op's output (not only the model outputs) is compared, after mapping the
TFLite tensor back to the spec's layout with ``to_logical``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fixtures_tflite import live_tensors, run_schedule, schedules, tensor_names
from jointdnn_edge import ModelError, zoo
from jointdnn_edge.models import load_model
from jointdnn_edge.models import tflite_flatbuffer as tfb
from jointdnn_edge.models.litert_runtime import make_interpreter
from jointdnn_edge.models.tflite_model import TFLiteGraph
from jointdnn_edge.zoo.onnx_writer import to_model
from jointdnn_edge.zoo.spec import ModelSpec, SpecBuilder
from jointdnn_edge.zoo.tflite_writer import tensor_layouts, to_logical, to_tflite_input, write

NAMES = zoo.names()


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def _spec_inputs(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.random(t.shape, dtype=np.float32) for t in spec.inputs}


def _onnx_all_tensors(spec: ModelSpec, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every op output of the spec's ONNX form, computed by onnxruntime."""
    model = to_model(spec)
    have = {o.name for o in model.graph.output}
    model.graph.output.extend([v for v in model.graph.value_info if v.name not in have])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _tflite_all_tensors(spec: ModelSpec, data: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every op output of the TFLite form (LiteRT's built-in kernels), in the spec's logical layout."""
    interp = make_interpreter(data, xnnpack=False, preserve_all_tensors=True)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], to_tflite_input(spec, d["name"], feeds[d["name"]]))
    interp.invoke()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    layouts = tensor_layouts(spec)
    return {op.name: to_logical(spec, op.name, interp.get_tensor(index[op.name]), layouts) for op in spec.ops}


def _assert_formats_agree(spec: ModelSpec, rtol: float = 1e-5) -> float:
    feeds = _spec_inputs(spec)
    ref = _onnx_all_tensors(spec, feeds)
    got = _tflite_all_tensors(spec, write(spec), feeds)
    worst = 0.0
    for op in spec.ops:
        assert got[op.name].shape == ref[op.name].shape, op.name
        err = _rel_err(got[op.name], ref[op.name])
        assert err <= rtol, (op.name, err)
        worst = max(worst, err)
    return worst


@pytest.fixture(scope="module")
def tiny_specs() -> dict[str, ModelSpec]:
    return {name: zoo.spec(name, size="tiny") for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_zoo_tflite_has_the_documented_layer_counts(name, tiny_specs):
    spec = tiny_specs[name]
    data = zoo.write(spec, "tflite")
    g = load_model(data, name=name)
    assert isinstance(g, TFLiteGraph)
    assert g.n == len(spec.ops) == zoo.MODELS[name].layers
    assert [layer.name for layer in g.layers] == [op.name for op in spec.ops]
    # the same model in ONNX: same layers, edges and activation sizes; same merged count
    o = load_model(zoo.write(spec, "onnx"), name=name)
    assert [layer.name for layer in o.layers] == [layer.name for layer in g.layers]
    assert g.edges == o.edges
    assert g.out_bytes == o.out_bytes and g.input_bytes == o.input_bytes
    merged = load_model(data, merge_trivial=True)
    assert merged.n == load_model(zoo.write(spec, "onnx"), merge_trivial=True).n < g.n


@pytest.mark.parametrize("name", NAMES)
def test_every_layer_agrees_with_onnxruntime(name, tiny_specs):
    _assert_formats_agree(tiny_specs[name])


@pytest.mark.parametrize("name", NAMES)
def test_zoo_tflite_slicing_invariant(name, tiny_specs, litert):
    spec = tiny_specs[name]
    g = load_model(zoo.write(spec, "tflite"), name=name)
    feeds = {k: to_tflite_input(spec, k, v) for k, v in _spec_inputs(spec, seed=1).items()}
    whole = litert.run_model(g, feeds)
    for cuts in schedules(g.n, seed=len(name), count=3):
        got = run_schedule(litert, g, cuts, feeds)
        assert all(np.array_equal(got[k], v) for k, v in whole.items()), cuts


@pytest.mark.parametrize("name", ["resnet", "pix2pix"])
def test_zoo_cuts_across_skips_carry_every_live_tensor(name, tiny_specs):
    data = write(tiny_specs[name])
    g = load_model(data)
    model = tfb.read_model(data)
    widths = []
    for cut in range(1, g.n):
        tail = tfb.read_model(g.slice_bytes(cut, g.n - 1))
        want = live_tensors(model, g, cut)
        assert set(tensor_names(tail, tail.subgraphs[0].inputs)) == want, cut
        widths.append(len(want))
    # ResNet: block input and branch live together; Pix2Pix: every encoder output waits for its decoder
    assert max(widths) == (2 if name == "resnet" else 8)


def test_weights_of_the_written_model():
    spec = zoo.spec("alexnet", size="tiny")
    g = load_model(write(spec))
    for layer, op in zip(g.layers, spec.ops):
        if op.kind in ("conv", "fc"):
            assert layer.weight_bytes == 4 * sum(w.size for w in op.weights.values())


def test_zoo_build_and_export_bytes_are_the_writer_output(tiny_specs):
    data = zoo.build("chair", "tflite", size="tiny")
    assert tfb.is_tflite(data) and data == write(tiny_specs["chair"])


# ---------------------------------------------------------------- writer edges
def _custom_spec() -> ModelSpec:
    """Layout corner cases: fc on a 4-D input with H, W > 1, flatten + fc, batch norm, clip(-2, 2), avg pool."""
    b = SpecBuilder("layouts", seed=5)
    x = b.input("input", (2, 3, 9, 7))
    c = b.conv(x, 6, 3, 2, "same")
    n = b.batchnorm(c)
    p = b.avgpool(n, 3, 1, "same")
    f = b.fc(p, 10)  # a 4-D input of 5×4 pixels: the weight columns must be permuted
    r = b.clip(f, -2.0, 2.0)
    flat = b.flatten(b.leaky_relu(p, 0.1))
    g = b.fc(flat, 7)
    s = b.sigmoid(g)
    b.output(s, b.softmax(b.fc(r, 4)))
    return b.build()


def _rnn_spec(direction: str, activation: str, clip: float | None) -> ModelSpec:
    b = SpecBuilder(f"rnn_{direction}_{activation}", seed=7)
    x = b.input("frames", (6, 5))
    h = b.clip(b.fc(x, 8), 0.0, 20.0) if clip else b.relu(b.fc(x, 8))
    seq = b.reshape(h, (6, 1, 8))
    y = b.rnn(seq, 4, direction=direction, activation=activation, clip=clip)
    d = 2 if direction == "bidirectional" else 1
    out = b.reshape(y, (6, d * 4))
    b.output(b.tanh(b.fc(out, 3)))
    return b.build()


def test_writer_layout_corner_cases_agree_with_onnx():
    spec = _custom_spec()
    _assert_formats_agree(spec)
    layouts = tensor_layouts(spec)
    assert layouts["fc1"].scale == 0.5  # clip(-2, 2) is RELU_N1_TO_1 on values halved by fc1's weights
    assert layouts["clip1"].scale == 0.5 and layouts["fc3"].scale == 1.0
    assert layouts["flatten1"].perm is not None  # flattened in H, W, C order; fc2's columns follow it
    assert layouts["conv1"].nhwc and layouts["conv1"].shape == (2, 5, 4, 6)


@pytest.mark.parametrize(
    ("direction", "activation", "clip"),
    [
        ("forward", "tanh", None),
        ("forward", "relu", 20.0),
        ("bidirectional", "relu", None),
        ("bidirectional", "relu", 20.0),
    ],
)
def test_recurrent_ops_agree_with_onnx(direction, activation, clip, litert):
    spec = _rnn_spec(direction, activation, clip)
    _assert_formats_agree(spec)
    g = load_model(write(spec))
    feeds = _spec_inputs(spec, seed=2)
    whole = litert.run_model(g, feeds)
    # the recurrent state restarts on every call: running twice gives the same result
    assert all(np.array_equal(litert.run_model(g, feeds)[k], v) for k, v in whole.items())
    for cuts in schedules(g.n, seed=3, count=2):
        assert all(np.array_equal(run_schedule(litert, g, cuts, feeds)[k], v) for k, v in whole.items())


def test_deepspeech_clipped_relu_is_relu6_on_scaled_values(tiny_specs):
    layouts = tensor_layouts(tiny_specs["deepspeech"])
    assert layouts["fc1"].scale == pytest.approx(0.3) and layouts["birnn"].scale == pytest.approx(0.3)
    assert layouts["fc6"].scale == 1.0 and layouts["prob"].scale == 1.0
    data = write(tiny_specs["deepspeech"])
    model = tfb.read_model(data)
    kinds = [tfb.op_code_name(model, op) for op in model.subgraphs[0].operators]
    assert kinds.count("RELU6") == 4 and "BIDIRECTIONAL_SEQUENCE_RNN" in kinds


def test_writer_rejects_what_tflite_cannot_express():
    b = SpecBuilder("bad")
    x = b.input("x", (1, 4))
    b.output(b.clip(b.fc(x, 3), 1.0, 5.0))
    with pytest.raises(ModelError, match="clip"):
        write(b.build())
    b = SpecBuilder("bad2")
    x = b.input("x", (1, 4))
    b.output(b.clip(x, 0.0, 20.0))  # nothing before the clip can carry the 6/20 scale
    with pytest.raises(ModelError, match="scaled"):
        write(b.build())
    spec = zoo.spec("vgg16", size="tiny")
    onnx.checker.check_model(to_model(spec))  # the ONNX side of the comparison is itself valid
