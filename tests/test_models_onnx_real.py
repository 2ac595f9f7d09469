"""Real trained ONNX CNNs (PP-OCR from the rapidocr-onnxruntime wheel) on real photographs.

The slicing invariant on production exporter output (Paddle2ONNX: weights as
Constant nodes, shape arithmetic, hard-swish patterns, FPN upsampling,
attention blocks), with scikit-image sample photos as inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fixtures_models import assert_outputs_match, photo_nchw, random_bounds, run_schedule
from jointdnn_edge.models import load_model
from jointdnn_edge.models.ort_executor import OrtExecutor

DET = "ch_PP-OCRv4_det_infer.onnx"
CLS = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
REC = "ch_PP-OCRv4_rec_infer.onnx"

#: (file, input shape, photo, normalization)
CASES = {
    # scikit-image's "text" sample at twice its size: the detector finds its printed lines
    "det": (DET, (1, 3, 352, 896), "text", "imagenet"),
    "cls": (CLS, (1, 3, 48, 192), "coffee", "pm1"),
    "rec": (REC, (1, 3, 48, 320), "text", "pm1"),
}


@pytest.fixture(scope="module")
def real(rapidocr_dir):
    cache = {}

    def get(key, merge_trivial=False):
        if (key, merge_trivial) not in cache:
            f, shape, img, norm = CASES[key]
            g = load_model(rapidocr_dir / f, input_shapes={"x": shape}, merge_trivial=merge_trivial)
            cache[key, merge_trivial] = (g, {"x": photo_nchw(img, shape[2], shape[3], normalize=norm)})
        return cache[key, merge_trivial]

    return get


def test_det_layers_and_weights_match_the_file(rapidocr_dir, real):
    g, _ = real("det")
    model = onnx.load(rapidocr_dir / DET)
    constants = [n for n in model.graph.node if n.op_type == "Constant"]
    assert g.n == len(model.graph.node) - len(constants)  # one layer per compute node
    const_bytes = sum(onnx.numpy_helper.to_array(n.attribute[0].t).nbytes for n in constants)
    assert sum(g.weight_bytes) == const_bytes  # every Constant counted once, as weights
    assert g.inputs[0].shape == (1, 3, 352, 896)
    assert g.outputs[0].shape == (1, 1, 352, 896)
    # a DAG: the FPN and the residual adds read tensors from far back
    assert any(v - u > 10 for u, v in g.edges if u >= 0)


@pytest.mark.parametrize("key", ["det", "cls", "rec"])
def test_slices_reproduce_the_whole_model_on_a_photo(key, real):
    g, feeds = real(key)
    exact = OrtExecutor(threads=1, optimization="disable")
    whole = exact.run_model(g, feeds)
    rng = np.random.default_rng(len(key))
    for cuts in (1, 4, 12):
        assert_outputs_match(run_schedule(exact, g, random_bounds(g.n, rng, cuts), feeds), whole, exact=True)
    fast = OrtExecutor(threads=1, optimization="all")
    whole_fast = fast.run_model(g, feeds)
    assert_outputs_match(whole_fast, whole, exact=False)
    for cuts in (3, 9):
        assert_outputs_match(run_schedule(fast, g, random_bounds(g.n, rng, cuts), feeds), whole_fast, exact=False)


def test_cls_every_tenth_cut_and_merged_layers(real):
    g, feeds = real("cls")
    ex = OrtExecutor(threads=1, optimization="disable")
    whole = ex.run_model(g, feeds)
    for k in range(5, g.n, 10):
        assert_outputs_match(run_schedule(ex, g, [0, k, g.n], feeds), whole, exact=True)
    merged, _ = real("cls", merge_trivial=True)
    assert merged.n < g.n
    rng = np.random.default_rng(0)
    got = run_schedule(ex, merged, random_bounds(merged.n, rng, 8), feeds)
    assert_outputs_match(got, whole, exact=True)


def test_outputs_are_plausible(real):
    g, feeds = real("cls")
    probs = OrtExecutor(threads=1).run_model(g, feeds)[g.outputs[0].name]
    assert probs.shape == (1, 2)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)
    g, feeds = real("det")
    heat = OrtExecutor(threads=1).run_model(g, feeds)[g.outputs[0].name]
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat.max() > 0.9 and 1e-4 < (heat > 0.3).mean() < 0.5  # text found, not everywhere
    g, feeds = real("rec")
    seq = OrtExecutor(threads=1).run_model(g, feeds)[g.outputs[0].name]
    assert seq.shape == (1, 40, 6625)
    np.testing.assert_allclose(seq.sum(axis=-1), 1.0, rtol=1e-4)


def test_dynamic_batch_takes_a_batch_size(rapidocr_dir):
    shape = (2, 3, 48, 192)
    g = load_model(rapidocr_dir / CLS, input_shapes={"x": shape})
    assert g.inputs[0].shape == shape and g.outputs[0].shape == (2, 2)
    x = np.concatenate(
        [photo_nchw("coffee", 48, 192, normalize="pm1"), photo_nchw("chelsea", 48, 192, normalize="pm1")]
    )
    ex = OrtExecutor(threads=1, optimization="disable")
    both = ex.run_model(g, {"x": x})[g.outputs[0].name]
    single = load_model(rapidocr_dir / CLS, input_shapes={"x": (1, 3, 48, 192)})
    for i in range(2):
        one = ex.run_model(single, {"x": x[i : i + 1]})[single.outputs[0].name]
        np.testing.assert_allclose(both[i : i + 1], one, rtol=1e-5, atol=1e-6)
