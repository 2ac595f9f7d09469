"""ONNX model graphs: loading, layer granularity, slicing across skip connections, the executor, errors.

Oracles: the whole model's own outputs (slices run in sequence must
reproduce them), live-tensor sets computed here straight from the zoo specs,
byte counts computed from the ONNX protobufs, and hand-built models with
known structure.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from fixtures_models import assert_outputs_match, random_bounds, run_schedule
from jointdnn_edge import ConfigError, ExecutionError, ModelError, zoo
from jointdnn_edge.models import executor_for, load_model, uniform_feeds
from jointdnn_edge.models.onnx_model import OnnxGraph
from jointdnn_edge.models.ort_executor import OrtExecutor

NAMES = zoo.names()


# ------------------------------------------------------------- slicing invariant


@pytest.mark.parametrize("name", NAMES)
def test_every_single_cut_reproduces_the_whole_model(name, zoo_graph):
    """Two slices [0, k) + [k, n) for every k: bit-exact with graph optimizations off."""
    graph = zoo_graph(name)
    ex = OrtExecutor(threads=1, optimization="disable")
    feeds = uniform_feeds(graph, seed=1)
    whole = ex.run_model(graph, feeds)
    for k in range(1, graph.n):
        env = run_schedule(ex, graph, [0, k, graph.n], feeds)
        assert_outputs_match(env, whole, exact=True)


@pytest.mark.parametrize("name", NAMES)
def test_random_schedules_with_full_optimization(name, zoo_graph):
    """Multi-switch schedules under ORT_ENABLE_ALL: fusions stop at cuts, so allow the documented 1e-5."""
    graph = zoo_graph(name)
    ex = OrtExecutor(threads=1, optimization="all")
    feeds = uniform_feeds(graph, seed=2)
    whole = ex.run_model(graph, feeds)
    rng = np.random.default_rng(3)
    for cuts in (1, 3, 6, graph.n - 1):
        env = run_schedule(ex, graph, random_bounds(graph.n, rng, cuts), feeds)
        assert_outputs_match(env, whole, exact=False)


@given(st.data())
def test_any_partition_of_the_unet_and_resnet(zoo_graph, data):
    name = data.draw(st.sampled_from(["pix2pix", "resnet"]))
    graph = zoo_graph(name)
    cuts = data.draw(st.sets(st.integers(1, graph.n - 1), max_size=8))
    ex = _shared_disabled_executor()
    feeds = uniform_feeds(graph, seed=4)
    whole = ex.run_model(graph, feeds)
    env = run_schedule(ex, graph, [0, *sorted(cuts), graph.n], feeds)
    assert_outputs_match(env, whole, exact=True)


_EXECUTOR: list[OrtExecutor] = []


def _shared_disabled_executor() -> OrtExecutor:
    if not _EXECUTOR:
        _EXECUTOR.append(OrtExecutor(threads=1, optimization="disable", cache_size=64))
    return _EXECUTOR[0]


# ------------------------------------------------------- skip connections


def _spec_live(spec, k: int) -> tuple[set[str], set[str]]:
    """From the spec alone: tensors a slice starting at op k reads from before it; tensors ops < k hand on."""
    before = {t.name for t in spec.inputs} | {op.name for op in spec.ops[:k]}
    reads_after = {t for op in spec.ops[k:] for t in op.inputs}
    needed = reads_after | set(spec.outputs)
    ins = {t for t in reads_after if t in before}
    outs = {op.name for op in spec.ops[:k] if op.name in needed}
    return ins, outs


@pytest.mark.parametrize("name", ["resnet", "pix2pix"])
def test_cuts_carry_every_live_tensor(name, zoo_graph):
    spec = zoo.spec(name, size="tiny")
    graph = zoo_graph(name)
    for k in range(1, graph.n):
        want_ins, want_outs = _spec_live(spec, k)
        ins, _ = graph.slice_io(k, graph.n - 1)
        _, outs = graph.slice_io(0, k - 1)
        assert set(ins) == want_ins, k
        assert set(outs) == want_outs, k


def test_unet_bottleneck_cut_carries_all_seven_skips(zoo_graph):
    graph = zoo_graph("pix2pix")
    k = [layer.name for layer in graph.layers].index("dec1_relu")
    ins, _ = graph.slice_io(k, graph.n - 1)
    assert set(ins) == {f"enc{i}" for i in range(1, 9)}
    # and the slice that starts there really consumes them all
    sliced = graph.slice(k, graph.n - 1)
    assert isinstance(sliced, OnnxGraph)
    assert sorted(t.name for t in sliced.inputs) == sorted(ins)


def test_resnet_edges_include_the_shortcuts(zoo_graph):
    spec = zoo.spec("resnet", size="tiny")
    graph = zoo_graph("resnet")
    index = {op.name: i for i, op in enumerate(spec.ops)}
    want = {(index.get(t, -1), i) for i, op in enumerate(spec.ops) for t in op.inputs}
    assert set(graph.edges) == want
    # the identity shortcut of the first block: pool1 feeds both conv1 and the add
    assert (index["pool1"], index["layer1.0.add"]) in want


def test_graph_slice_runs_like_the_executor(zoo_graph):
    graph = zoo_graph("chair")
    ex = executor_for(graph, threads=1)
    feeds = uniform_feeds(graph)
    env = dict(feeds)
    env.update(ex.run(graph, 0, 4, env))
    sub = graph.slice(5, graph.n - 1)
    assert [t.name for t in sub.inputs] == graph.slice_io(5, graph.n - 1)[0]
    got = ex.run_model(sub, env)
    want = ex.run(graph, 5, graph.n - 1, env)
    for k, v in want.items():
        assert np.array_equal(got[k], v)


# --------------------------------------------------------- layer granularity


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(array, name))


def _model(nodes, inputs, outputs, inits=(), opset=17) -> bytes:
    g = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8).SerializeToString()


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _conv_bn_relu_model() -> tuple[bytes, int]:
    """conv (weights as Constant nodes, one transposed by a weight-only node) -> bn -> relu -> flatten -> gemm."""
    rng = np.random.default_rng(0)
    w_t = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)  # stored HWIO, transposed to OIHW in-graph
    bias = rng.standard_normal(4).astype(np.float32)
    bn = [np.ones(4, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32), np.ones(4, np.float32)]
    fc_w = rng.standard_normal((4 * 6 * 6, 5)).astype(np.float32)
    nodes = [
        _const("w_hwio", w_t),
        helper.make_node("Transpose", ["w_hwio"], ["w"], name="w_to_oihw", perm=[3, 2, 0, 1]),
        _const("b", bias),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        *[_const(f"bn{i}", a) for i, a in enumerate(bn)],
        helper.make_node("BatchNormalization", ["c", "bn0", "bn1", "bn2", "bn3"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc"),
    ]
    inits = [numpy_helper.from_array(fc_w, "fc_w")]
    data = _model(nodes, [_vi("x", ["batch", 2, 6, 6])], [_vi("y", ["batch", 5])], inits)
    conv_weight_bytes = w_t.nbytes + bias.nbytes
    return data, conv_weight_bytes


def test_constant_nodes_are_weights_not_layers():
    data, conv_bytes = _conv_bn_relu_model()
    g = load_model(data)
    assert [layer.op_type for layer in g.layers] == ["Conv", "BatchNormalization", "Relu", "Flatten", "Gemm"]
    assert g.layers[0].weight_bytes == conv_bytes  # Constant node + weight-only Transpose source, once
    assert g.layers[1].weight_bytes == 4 * 4 * 4
    assert g.layers[4].weight_bytes == 4 * 6 * 6 * 5 * 4
    assert g.layers[0].inputs == ("x",)
    assert g.layers[0].outputs[0].shape == (1, 4, 6, 6)
    assert g.out_bytes == [4 * 36 * 4] * 4 + [5 * 4]
    assert g.edges == [(-1, 0), (0, 1), (1, 2), (2, 3), (3, 4)]
    # slices carry the Constant and Transpose nodes they need and run
    ex = OrtExecutor(threads=1, optimization="disable")
    feeds = uniform_feeds(g)
    whole = ex.run_model(g, feeds)
    for k in range(1, g.n):
        assert_outputs_match(run_schedule(ex, g, [0, k, g.n], feeds), whole, exact=True)


def test_merge_trivial_merges_bn_relu_and_flatten():
    data, conv_bytes = _conv_bn_relu_model()
    g = load_model(data, merge_trivial=True)
    assert [layer.ops for layer in g.layers] == [("conv", "bn", "relu", "flatten"), ("fc",)]
    assert g.layers[0].weight_bytes == conv_bytes + 4 * 4 * 4
    assert g.layers[0].outputs[0].name == "f"
    assert g.layers[0].attrs["merged_op_types"] == ["BatchNormalization", "Relu", "Flatten"]


def test_trivial_op_does_not_merge_across_a_fork():
    # relu's input is read by the relu and by the add: merging would hide a tensor the add needs
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Add", ["c", "r"], ["y"], name="add"),
    ]
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    g = load_model(_model(nodes, [_vi("x", [1, 2, 4, 4])], [_vi("y", [1, 2, 4, 4])], [w]), merge_trivial=True)
    assert [layer.ops for layer in g.layers] == [("conv",), ("relu",), ("add",)]


def test_batch_size_and_input_shapes():
    data, _ = _conv_bn_relu_model()
    g = load_model(data, batch_size=4)
    assert g.inputs[0].shape == (4, 2, 6, 6)
    assert g.outputs[0].shape == (4, 5)
    out = executor_for(g, threads=1).run_model(g, uniform_feeds(g))
    assert out["y"].shape == (4, 5)
    assert load_model(data, input_shapes={"x": (3, 2, 6, 6)}).inputs[0].shape == (3, 2, 6, 6)
    with pytest.raises(ModelError, match="conflicts"):
        load_model(data, input_shapes={"x": (3, 5, 6, 6)})
    with pytest.raises(ModelError, match="not inputs"):
        load_model(data, input_shapes={"nope": (1,)})
    # a fixed batch is kept, and a different batch_size is an error rather than ignored
    fixed = zoo.build("chair", size="tiny")
    assert load_model(fixed, batch_size=1).inputs[0].shape == (1, 813)
    with pytest.raises(ModelError, match="fixed batch"):
        load_model(fixed, batch_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        load_model(fixed, batch_size=0)


def test_shape_arithmetic_is_folded_not_a_layer():
    # Reshape target computed from Shape(x) and constants: no layer, and slices stay standalone
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"], name="reshape"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    g = load_model(_model(nodes, [_vi("x", ["b", 3, 4])], [_vi("y", ["b", "f"])], inits), batch_size=2)
    assert [layer.op_type for layer in g.layers] == ["Relu", "Reshape"]
    assert g.outputs[0].shape == (2, 12)
    ex = OrtExecutor(threads=1)
    feeds = uniform_feeds(g)
    assert_outputs_match(run_schedule(ex, g, [0, 1, 2], feeds), ex.run_model(g, feeds), exact=True)


# ----------------------------------------------------------------- executor


def test_executor_cache_is_bounded_and_reused(zoo_graph):
    graph = zoo_graph("nin")
    ex = OrtExecutor(threads=1, cache_size=3)
    feeds = uniform_feeds(graph)
    first = ex.prepare(graph, 0, 0)
    assert ex.prepare(graph, 0, 0) is first
    env = dict(feeds)
    for i in range(5):
        env.update(ex.run(graph, i, i, env))
    assert ex.cached() == 3
    assert ex.prepare(graph, 0, 0) is not first  # evicted and rebuilt
    # another graph object never shares sessions, even with equal content
    other = zoo.load("nin", size="tiny")
    assert ex.prepare(other, 4, 4) is not ex.prepare(graph, 4, 4)


def test_executor_errors(zoo_graph):
    graph = zoo_graph("chair")
    ex = OrtExecutor(threads=1)
    with pytest.raises(ExecutionError, match="missing inputs"):
        ex.run(graph, 0, 2, {})
    with pytest.raises(ExecutionError, match="dtype"):
        ex.run_model(graph, {"code": np.zeros((1, 813), dtype=np.int32)})
    with pytest.raises(ExecutionError):
        ex.run_model(graph, {"code": np.zeros((2, 7), dtype=np.float32)})
    with pytest.raises(ModelError, match="outside"):
        ex.run(graph, 3, graph.n, {})
    with pytest.raises(ConfigError, match="threads"):
        OrtExecutor(threads=0)
    with pytest.raises(ConfigError, match="caffe"):
        executor_for("caffe")
    info = OrtExecutor(threads=2, optimization="basic").info()
    assert info["runtime"] == "onnxruntime" and info["threads"] == 2 and info["optimization"] == "basic"
    assert info["providers"] == ["CPUExecutionProvider"]


def test_float64_feeds_are_cast(zoo_graph):
    graph = zoo_graph("chair")
    ex = OrtExecutor(threads=1)
    x = np.random.default_rng(0).random((1, 813))
    a = ex.run_model(graph, {"code": x})
    b = ex.run_model(graph, {"code": x.astype(np.float32)})
    assert np.array_equal(a["deconv4"], b["deconv4"])


# -------------------------------------------------------------------- errors


def test_truncated_files_raise_model_error(tmp_path):
    data = zoo.build("alexnet", size="tiny")
    for cut in (1, 9, 100, len(data) // 3, len(data) // 2, len(data) - 3):
        with pytest.raises(ModelError):
            load_model(data[:cut])
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        load_model(p)


def test_wrong_magic_and_foreign_bytes(fixtures_dir, tmp_path):
    tfl = (fixtures_dir / "mediapipe" / "face_detection_short_range.tflite").read_bytes()
    assert tfl[4:8] == b"TFL3"
    broken = tfl[:4] + b"TFL9" + tfl[8:]
    with pytest.raises(ModelError, match="TFL3"):
        load_model(broken)
    with pytest.raises(ModelError):
        load_model(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ModelError, match="empty"):
        load_model(b"")
    with pytest.raises(ModelError):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="int"):
        load_model(12345)


def test_unsupported_ops_name_the_node():
    x, y = _vi("x", [1, 4]), _vi("y", [1, 4])
    custom = helper.make_node("Frobnicate", ["x"], ["y"], name="my_custom", domain="com.example")
    g = helper.make_graph([custom], "m", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(ModelError, match="my_custom"):
        load_model(m.SerializeToString())
    unknown = helper.make_node("NoSuchOperator", ["x"], ["y"], name="mystery")
    with pytest.raises(ModelError, match="mystery"):
        load_model(_model([unknown], [x], [y]))


def test_control_flow_is_rejected_naming_the_node():
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [_vi("t", [1, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", [1, 4])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["y"], name="branchy", then_branch=then_g, else_branch=else_g),
    ]
    zero = numpy_helper.from_array(np.array(0, np.float32), "zero")
    with pytest.raises(ModelError, match=r"branchy.*control-flow"):
        load_model(_model(nodes, [_vi("x", [1, 4])], [_vi("y", [1, 4])], [zero]))


def test_dynamic_shapes_raise_model_error():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    data = _model(nodes, [_vi("x", [1, 3, "h", "w"])], [_vi("y", [1, 3, "h", "w"])])
    with pytest.raises(ModelError, match="'x' has a dynamic dimension 2"):
        load_model(data)
    assert load_model(data, input_shapes={"x": (1, 3, 5, 7)}).outputs[0].shape == (1, 3, 5, 7)
    # a data-dependent shape stays dynamic whatever the input shape
    nz = [
        helper.make_node("NonZero", ["x"], ["idx"], name="where_nonzero"),
        helper.make_node("Cast", ["idx"], ["y"], name="cast", to=TensorProto.FLOAT),
    ]
    with pytest.raises(ModelError, match="where_nonzero"):
        load_model(_model(nz, [_vi("x", [2, 3])], [_vi("y", [2, "n"])]))
