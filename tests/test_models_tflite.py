"""TFLite loading, slicing and execution on hand-built models checked against numpy references.

Oracles: independent numpy implementations of each model (``fixtures_tflite.ref_*``),
the whole model run by LiteRT (slices in sequence must reproduce it bit for bit),
and live-tensor sets recomputed from the raw flatbuffer.
"""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_tflite import (
    build_chain,
    build_custom_op_model,
    build_fp16_shared,
    build_int8,
    build_residual,
    build_unet,
    build_where_model,
    build_while_model,
    live_tensors,
    run_schedule,
    schedules,
    tensor_names,
    with_buffer_offsets,
)
from jointdnn_edge import ConfigError, ExecutionError, ModelError
from jointdnn_edge.models import load_model
from jointdnn_edge.models import tflite_flatbuffer as tfb
from jointdnn_edge.models.executor import Executor, executor_for
from jointdnn_edge.models.graph import ModelGraph
from jointdnn_edge.models.litert_executor import LiteRTExecutor
from jointdnn_edge.models.litert_runtime import make_interpreter
from jointdnn_edge.models.tflite_model import TFLiteGraph, load_tflite

BUILDERS = {"chain": build_chain, "residual": build_residual, "unet": build_unet, "fp16_shared": build_fp16_shared}


def _input(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _close(got: np.ndarray, ref: np.ndarray, rtol: float = 1e-5) -> bool:
    """Max error relative to the tensor's magnitude (float32 kernels vs float64 references)."""
    return float(np.max(np.abs(got - ref))) <= rtol * max(1.0, float(np.max(np.abs(ref))))


# ------------------------------------------------------------------ numerics
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_hand_built_models_match_numpy_references(kind, litert):
    built = BUILDERS[kind]()
    g = load_tflite(built.data, name=kind)
    x = _input(built.input_shape)
    out = litert.run_model(g, {g.inputs[0].name: x})
    ref = built.ref(x)
    assert set(out) == set(ref)
    for name in ref:
        assert out[name].shape == ref[name].shape
        assert _close(out[name], ref[name]), name


@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_slices_in_sequence_reproduce_the_whole_model_bit_exactly(kind, merge, litert):
    built = BUILDERS[kind]()
    g = load_tflite(built.data, merge_trivial=merge, name=kind)
    feeds = {g.inputs[0].name: _input(built.input_shape, seed=3)}
    whole = litert.run_model(g, feeds)
    for cuts in schedules(g.n, seed=len(kind)):
        got = run_schedule(litert, g, cuts, feeds)
        for name, ref in whole.items():
            assert np.array_equal(got[name], ref), (cuts, name)


@pytest.mark.parametrize("kind", ["chain", "unet"])
def test_builtin_kernels_without_xnnpack_are_bit_exact_too(kind):
    built = BUILDERS[kind]()
    g = load_tflite(built.data)
    ex = LiteRTExecutor(xnnpack=False, threads=2)
    feeds = {g.inputs[0].name: _input(built.input_shape)}
    whole = ex.run_model(g, feeds)
    assert _close(whole[g.outputs[0].name], built.ref(feeds[g.inputs[0].name])[g.outputs[0].name])
    for cuts in schedules(g.n, seed=7, count=2):
        got = run_schedule(ex, g, cuts, feeds)
        assert all(np.array_equal(got[k], whole[k]) for k in whole)


# ------------------------------------------------------------------ structure
def test_chain_layers_edges_and_sizes():
    built = build_chain()
    g = load_tflite(built.data, name="chain")
    assert g.format == "tflite" and g.n == 11
    assert [layer.op_type for layer in g.layers] == [
        "CONV_2D", "RELU", "MAX_POOL_2D", "CONV_2D", "LOCAL_RESPONSE_NORMALIZATION", "AVERAGE_POOL_2D",
        "RESHAPE", "FULLY_CONNECTED", "TANH", "FULLY_CONNECTED", "SOFTMAX",
    ]  # fmt: skip
    assert [layer.name for layer in g.layers][:3] == ["conv1", "relu1", "pool1"]
    assert g.edges == [(-1, 0)] + [(i, i + 1) for i in range(10)]
    # out bytes: float32 element counts of each layer's output
    sizes = [16 * 16 * 8, 16 * 16 * 8, 8 * 8 * 8, 3 * 3 * 6, 3 * 3 * 6, 2 * 2 * 6, 24, 12, 12, 5, 5]
    assert g.out_bytes == [4 * s for s in sizes]
    assert g.input_bytes == 16 * 16 * 3 * 4
    # weights: float32 filters and biases; the reshape's int32 target shape (2 values)
    conv1, conv2, fc1, fc2 = 4 * (8 * 27 + 8), 4 * (6 * 72 + 6), 4 * (12 * 24 + 12), 4 * (5 * 12 + 5)
    assert g.weight_bytes == [conv1, 0, 0, conv2, 0, 0, 8, fc1, 0, fc2, 0]
    merged = load_tflite(built.data, merge_trivial=True)
    assert merged.n == 8
    assert merged.layers[0].ops == ("conv1", "relu1")
    assert merged.layers[4].ops == ("pool2", "flatten")  # the reshape joins its producer
    assert merged.layers[5].ops == ("fc1", "tanh1")
    assert sum(merged.weight_bytes) == sum(g.weight_bytes)


def test_residual_graph_is_a_dag_with_skip_edges():
    g = load_tflite(build_residual().data)
    names = [layer.name for layer in g.layers]
    idx = {n: i for i, n in enumerate(names)}
    assert (idx["conv1"], idx["skip_add"]) in g.edges  # the skip connection
    assert (idx["relu3"], idx["pool"]) in g.edges and (idx["relu3"], idx["dwconv"]) in g.edges
    assert {t.name for t in g.outputs} == {"score", "relu3"}
    skel = g.cost_skeleton()
    assert skel["outputs"] == sorted([idx["score"], idx["relu3"]])


def test_weight_decoding_ops_fold_into_their_consumers():
    """DEQUANTIZE of float16 weights is never a layer; a decoded weight shared by two layers is decoded in both."""
    built = build_fp16_shared()
    g = load_tflite(built.data)
    assert [layer.op_type for layer in g.layers] == ["CONV_2D", "RELU", "CONV_2D", "ADD"]
    assert g.layers[0].attrs["op_types"] == ("DEQUANTIZE", "DEQUANTIZE", "CONV_2D")
    assert g.layers[2].attrs["op_types"] == ("CONV_2D",)
    assert g.layers[0].weight_bytes == 2 * (6 * 3 * 3 * 6 + 6)  # the stored float16 bytes
    assert g.layers[2].weight_bytes == 0
    # a slice of the second conv alone re-decodes the shared weights and takes no weight as input
    ins, outs = g.slice_io(2, 2)
    assert ins == ["relu_a"] and outs == ["conv_b"]
    sliced = tfb.read_model(g.slice_bytes(2, 2))
    kinds = [tfb.op_code_name(sliced, op) for op in sliced.subgraphs[0].operators]
    assert kinds == ["DEQUANTIZE", "DEQUANTIZE", "CONV_2D"]


@pytest.mark.parametrize("kind", ["residual", "unet"])
def test_cuts_across_skip_connections_carry_every_live_tensor(kind, litert):
    built = BUILDERS[kind]()
    g = load_tflite(built.data)
    model = tfb.read_model(built.data)
    widest = 0
    for cut in range(1, g.n):
        head, tail = tfb.read_model(g.slice_bytes(0, cut - 1)), tfb.read_model(g.slice_bytes(cut, g.n - 1))
        want = live_tensors(model, g, cut)
        tail_inputs = set(tensor_names(tail, tail.subgraphs[0].inputs))
        assert tail_inputs == want, cut
        outputs_in_head = {t.name for t in g.outputs} & {t.name for layer in g.layers[:cut] for t in layer.outputs}
        assert (
            set(tensor_names(head, head.subgraphs[0].outputs)) == (want - {t.name for t in g.inputs}) | outputs_in_head
        )
        widest = max(widest, len(want))
    assert widest >= 2  # some cut lies inside a skip connection
    if kind == "unet":
        # inside the bottleneck both encoder skips are live at once
        ins, _ = g.slice_io([layer.name for layer in g.layers].index("up1"), g.n - 1)
        assert set(ins) == {"bottleneck", "enc2", "enc1"}


def test_slice_flatbuffer_is_pruned_and_renumbered():
    built = build_unet()
    g = load_tflite(built.data)
    first, last = 5, 7  # up1, cat1, dec1
    ins, outs = g.slice_io(first, last)
    m = tfb.read_model(g.slice_bytes(first, last))
    sg = m.subgraphs[0]
    assert len(m.subgraphs) == 1
    assert tensor_names(m, sg.inputs) == ins and tensor_names(m, sg.outputs) == outs
    assert m.buffers[0].data is None or len(m.buffers[0].data) == 0  # the empty sentinel stays first
    used = {t.buffer for t in sg.tensors if t.buffer}
    assert used == set(range(1, len(m.buffers)))  # only the buffers this slice reads
    assert [tfb.op_code_name(m, op) for op in sg.operators] == ["TRANSPOSE_CONV", "CONCATENATION", "CONV_2D"]
    assert len(m.operatorCodes) == 3
    assert not m.signatureDefs and not m.metadata


def test_slice_returns_a_standalone_graph(litert):
    built = build_residual()
    g = load_tflite(built.data, name="res")
    part = g.slice(2, 6)
    assert isinstance(part, TFLiteGraph) and part.n == 5
    ins, outs = g.slice_io(2, 6)
    assert [t.name for t in part.inputs] == ins and [t.name for t in part.outputs] == outs
    x = _input(built.input_shape)
    live = dict(litert.run(g, 0, 1, {g.inputs[0].name: x}))
    direct = litert.run(g, 2, 6, live)
    assert all(np.array_equal(v, direct[k]) for k, v in litert.run_model(part, live).items())


def test_to_bytes_keeps_the_original_file():
    built = build_chain()
    assert load_tflite(built.data).to_bytes() == built.data


def test_duplicate_and_empty_tensor_names_are_made_unique(litert):
    built = build_chain()
    model = tfb.read_model(built.data)
    sg = model.subgraphs[0]
    sg.tensors[sg.operators[1].outputs[0]].name = "conv1"  # relu1 now clashes with conv1
    sg.tensors[sg.operators[2].outputs[0]].name = ""
    data = tfb.serialize_model(model)
    g = load_tflite(data)
    names = [layer.name for layer in g.layers]
    assert len(set(names)) == len(names) and all(names)
    x = _input(built.input_shape)
    whole = litert.run_model(g, {g.inputs[0].name: x})
    assert _close(whole["prob"], built.ref(x)["prob"])
    assert np.array_equal(run_schedule(litert, g, [1, 2, 3], {g.inputs[0].name: x})["prob"], whole["prob"])


# -------------------------------------------------------------- dynamic batch
def test_dynamic_batch_needs_a_batch_size_and_is_frozen_into_slices(litert):
    built = build_chain(batch_dynamic=True)
    with pytest.raises(ModelError, match="dynamic batch"):
        load_tflite(built.data)
    g = load_tflite(built.data, batch_size=3)
    assert g.inputs[0].shape == (3, 16, 16, 3) and g.outputs[0].shape == (3, 5)
    assert g.out_bytes[0] == 3 * 16 * 16 * 8 * 4
    x = _input((3, 16, 16, 3))
    whole = litert.run_model(g, {"image": x})
    assert _close(whole["prob"], built.ref(x)["prob"])
    for cuts in schedules(g.n, seed=2, count=2):
        assert np.array_equal(run_schedule(litert, g, cuts, {"image": x})["prob"], whole["prob"])
    sliced = tfb.read_model(g.slice_bytes(3, 5))
    assert all(t.shapeSignature is None or -1 not in list(t.shapeSignature) for t in sliced.subgraphs[0].tensors)


def test_fixed_batch_rejects_another_batch_size():
    with pytest.raises(ModelError, match="fixed batch"):
        load_tflite(build_chain().data, batch_size=2)
    with pytest.raises(ConfigError, match="positive"):
        load_tflite(build_chain().data, batch_size=0)
    with pytest.raises(ConfigError, match="input_shapes"):
        load_model(build_chain().data, input_shapes={"x": (1, 4)})


def test_data_dependent_shapes_are_rejected_naming_the_operator():
    with pytest.raises(ModelError, match=r"operator 0 \(WHERE\)"):
        load_tflite(build_where_model())


# --------------------------------------------------------------- bad models
def test_control_flow_is_rejected_naming_the_operator():
    data = build_while_model()
    interp = make_interpreter(data)  # a valid model LiteRT runs ...
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], np.array([1.0, 2.0], np.float32))
    interp.invoke()
    assert interp.get_tensor(interp.get_output_details()[0]["index"]).tolist() == [8.0, 16.0]
    with pytest.raises(ModelError, match=r"operator 0 \(WHILE\)"):  # ... that cannot be sliced
        load_tflite(data)


def test_custom_ops_the_runtime_lacks_are_rejected_naming_the_operator():
    with pytest.raises(ModelError, match=r"operator 1 \(JointdnnNoSuchOp\)"):
        load_tflite(build_custom_op_model())


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda d: b"", "too short"),
        (lambda d: d[:7], "too short"),
        (lambda d: d[:4] + b"ONNX" + d[8:], "file identifier"),
        (lambda d: d[:200], "truncated"),
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: d[:-16], "truncated"),
    ],
)
def test_truncated_and_foreign_files_raise_model_error(mangle, match):
    with pytest.raises(ModelError, match=match):
        load_tflite(mangle(build_chain().data))


def test_load_model_dispatches_tflite_bytes_and_paths(tmp_path):
    built = build_residual()
    g = load_model(built.data)
    assert isinstance(g, TFLiteGraph) and g.n == 12
    path = tmp_path / "residual.tflite"
    path.write_bytes(built.data)
    g2 = load_model(path, merge_trivial=True)
    assert isinstance(g2, TFLiteGraph) and g2.name == "residual" and g2.n == 9


# ------------------------------------------------------------------- executor
def test_executor_protocol_info_and_dispatch():
    ex = executor_for("tflite", threads=2)
    assert isinstance(ex, LiteRTExecutor) and isinstance(ex, Executor)
    info = ex.info()
    assert info["runtime"] == "litert" and info["threads"] == 2 and info["version"]
    assert info["xnnpack"] is True


def test_executor_caches_interpreters_in_a_bounded_lru():
    built = build_chain()
    g = load_tflite(built.data)
    ex = LiteRTExecutor(cache_size=2)
    x = {"image": _input(built.input_shape)}
    a = ex.run(g, 0, 3, x)
    ex.run(g, 0, 3, x)
    assert ex.cached() == 1
    ex.run(g, 0, 1, x)
    ex.run(g, 0, 2, x)
    assert ex.cached() == 2  # the oldest range was evicted
    assert np.array_equal(ex.run(g, 0, 3, x)["conv2"], a["conv2"])  # and is rebuilt on demand


def test_prepared_run_matches_run():
    built = build_unet()
    g = load_tflite(built.data)
    ex = LiteRTExecutor()
    x = {"image": _input(built.input_shape)}
    prepared = ex.prepare(g, 0, 4)
    assert prepared.input_names == ["image"] and prepared.output_names == g.slice_io(0, 4)[1]
    got = prepared(x)
    assert all(np.array_equal(got[k], v) for k, v in ex.run(g, 0, 4, x).items())


def test_executor_errors_are_typed():
    built = build_chain()
    g = load_tflite(built.data)
    ex = LiteRTExecutor()
    with pytest.raises(ExecutionError, match="missing inputs"):
        ex.run(g, 1, 2, {"image": _input(built.input_shape)})
    with pytest.raises(ExecutionError, match="dtype"):
        ex.run(g, 0, 0, {"image": np.zeros(built.input_shape, np.int32)})
    with pytest.raises(ModelError, match="outside"):
        ex.run(g, 3, 99, {})

    class NotTFLite(ModelGraph):
        format = "onnx"
        name = "x"

        def to_bytes(self) -> bytes:
            return b""

        def slice_bytes(self, first: int, last: int) -> bytes:
            return b""

    with pytest.raises(ModelError, match="TFLite"):
        ex.run_model(NotTFLite(), {})
    with pytest.raises(ConfigError, match="threads"):
        LiteRTExecutor(threads=0)


def test_weights_stored_after_the_flatbuffer_are_read_and_sliced(litert):
    built = build_unet()
    data = with_buffer_offsets(built.data)
    packed = tfb.fb.Model.GetRootAs(bytearray(data), 0)
    assert all(packed.Buffers(i).DataLength() == 0 for i in range(packed.BuffersLength()))
    assert any(packed.Buffers(i).Offset() > 1 for i in range(packed.BuffersLength()))
    g = load_tflite(data)
    plain = load_tflite(built.data)
    assert g.weight_bytes == plain.weight_bytes and g.edges == plain.edges
    x = {"image": _input(built.input_shape)}
    whole = litert.run_model(g, x)  # LiteRT reads the offset buffers of the original file
    assert _close(whole["mask"], built.ref(x["image"])["mask"])
    assert np.array_equal(whole["mask"], litert.run_model(plain, x)["mask"])
    for cuts in schedules(g.n, seed=11, count=2):
        assert np.array_equal(run_schedule(litert, g, cuts, x)["mask"], whole["mask"])
    with pytest.raises(ModelError, match="truncated"):
        load_tflite(data[:-64])


def test_int8_quantized_models_keep_their_quantization_across_cuts(litert):
    built = build_int8()
    g = load_tflite(built.data)
    assert [layer.op_type for layer in g.layers] == ["QUANTIZE", "CONV_2D", "RELU", "ADD", "DEQUANTIZE"]
    assert g.out_bytes[:4] == [6 * 6 * 4] * 4  # int8 activations: one byte each
    x = {"input": _input(built.input_shape) - np.float32(0.3)}
    whole = litert.run_model(g, x)
    assert np.max(np.abs(whole["output"] - built.ref(x["input"])["output"])) <= 2 * 0.03  # two output steps
    for cuts in schedules(g.n, seed=5):
        got = run_schedule(litert, g, cuts, x)
        assert np.array_equal(got["output"], whole["output"]), cuts
    # the slice's int8 filter keeps its per-channel scales
    sliced = tfb.read_model(g.slice_bytes(1, 2))
    original = tfb.read_model(built.data).subgraphs[0]
    (want,) = [t for t in original.tensors if tensor_names_of(t) == "conv/filter"]
    got_t = sliced.subgraphs[0].tensors[sliced.subgraphs[0].operators[0].inputs[1]]
    assert tensor_names_of(got_t) == "conv/filter"
    assert list(got_t.quantization.scale) == list(want.quantization.scale)
    assert got_t.quantization.quantizedDimension == 0


def tensor_names_of(tensor) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
