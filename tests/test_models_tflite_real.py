"""Real trained TFLite models (MediaPipe 0.10.14) on real photographs: structure, slicing, errors.

The models are BlazeFace (face_detection_short_range: residual blocks with
ADD skips), selfie segmentation (an encoder-decoder with long skips and
MediaPipe's Convolution2DTransposeBias, which only XNNPACK implements), pose
detection (sparse float16 weights: DENSIFY then DEQUANTIZE), palm detection
(feature pyramid with upsampling) and the face mesh. All store float16
weights decoded by DEQUANTIZE. Inputs are scikit-image's sample photographs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fixtures_tflite import live_tensors, photo, run_schedule, schedules, sigmoid, tensor_names
from jointdnn_edge import ModelError
from jointdnn_edge.models import load_model
from jointdnn_edge.models import tflite_flatbuffer as tfb
from jointdnn_edge.models.litert_executor import LiteRTExecutor
from jointdnn_edge.models.tflite_model import TFLiteGraph

# file, photo, value range of the input, operators, layers unmerged / merged
REAL = {
    "blazeface": ("face_detection_short_range.tflite", "astronaut", (-1.0, 1.0), 164, 90, 69),
    "selfie": ("selfie_segmentation.tflite", "astronaut", (0.0, 1.0), 246, 136, 92),
    "pose": ("pose_detection.tflite", "astronaut", (-1.0, 1.0), 291, 109, 103),
    "palm": ("palm_detection_lite.tflite", "coffee", (0.0, 1.0), 232, 119, 89),
    "face_mesh": ("face_landmark.tflite", "camera", (0.0, 1.0), 210, 97, 74),
}


def _load(mediapipe_dir: Path, key: str, merge: bool = False) -> TFLiteGraph:
    graph = load_model(mediapipe_dir / REAL[key][0], merge_trivial=merge)
    assert isinstance(graph, TFLiteGraph)
    return graph


def _feeds(graph: TFLiteGraph, key: str) -> dict[str, np.ndarray]:
    _, img, scale, *_ = REAL[key]
    (inp,) = graph.inputs
    return {inp.name: photo(img, inp.shape[1:3], scale)}


@pytest.mark.parametrize("key", sorted(REAL))
def test_layer_counts_follow_the_operator_lists(mediapipe_dir, key):
    """One layer per operator, less the weight-decoding ops (DEQUANTIZE / DENSIFY of constants)."""
    data = (mediapipe_dir / REAL[key][0]).read_bytes()
    model = tfb.read_model(data)
    kinds = Counter(tfb.op_code_name(model, op) for op in model.subgraphs[0].operators)
    n_ops, n_layers, n_merged = REAL[key][3:]
    assert sum(kinds.values()) == n_ops
    g = _load(mediapipe_dir, key)
    assert g.n == n_ops - kinds["DEQUANTIZE"] - kinds["DENSIFY"] == n_layers
    assert _load(mediapipe_dir, key, merge=True).n == n_merged
    assert not any(layer.op_type in ("DEQUANTIZE", "DENSIFY") for layer in g.layers)
    # weight bytes: the stored bytes of the distinct constant buffers each layer's operators read
    sg = model.subgraphs[0]

    def stored(ops):
        bufs = {sg.tensors[t].buffer for k in ops for t in sg.operators[k].inputs if t >= 0}
        return sum(len(model.buffers[b].data) for b in bufs if b and model.buffers[b].data is not None)

    assert g.weight_bytes == [stored(layer.attrs["operators"]) for layer in g.layers]
    assert stored(range(len(sg.operators))) <= sum(g.weight_bytes)  # shared constants count in each reader
    assert stored(range(len(sg.operators))) > 0.99 * sum(g.weight_bytes)


@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("key", sorted(REAL))
def test_slicing_invariant_on_real_models_and_photos(mediapipe_dir, litert, key, merge):
    g = _load(mediapipe_dir, key, merge)
    feeds = _feeds(g, key)
    whole = litert.run_model(g, feeds)
    for cuts in schedules(g.n, seed=sum(map(ord, key)), count=3):
        got = run_schedule(litert, g, cuts, feeds)
        for name, ref in whole.items():
            assert np.array_equal(got[name], ref), (key, cuts, name)


def test_blazeface_finds_the_astronauts_face(mediapipe_dir, litert):
    """Sanity of the input pipeline: the real detector fires on a real face, not on a cat."""
    g = _load(mediapipe_dir, "blazeface")
    face = litert.run_model(g, _feeds(g, "blazeface"))["classificators"]
    assert sigmoid(face.astype(np.float64)).max() > 0.8
    assert g.outputs[0].shape == (1, 896, 16) and g.outputs[1].shape == (1, 896, 1)


def test_selfie_segmentation_masks_the_astronaut(mediapipe_dir, litert):
    g = _load(mediapipe_dir, "selfie")
    (mask,) = litert.run_model(g, _feeds(g, "selfie")).values()
    mask = mask[0, ..., 0]
    assert mask.shape == (256, 256)
    assert mask[100:200, 80:180].mean() > 0.8  # the astronaut's torso
    assert mask[:40, :40].mean() < 0.1  # background in the top-left corner


@pytest.mark.parametrize("key", ["blazeface", "selfie"])
def test_real_cuts_across_skip_connections_carry_every_live_tensor(mediapipe_dir, litert, key):
    data = (mediapipe_dir / REAL[key][0]).read_bytes()
    model = tfb.read_model(data)
    g = _load(mediapipe_dir, key)
    feeds = _feeds(g, key)
    whole = litert.run_model(g, feeds)
    skip_cuts = []
    for cut in range(1, g.n):
        want = live_tensors(model, g, cut)
        tail = tfb.read_model(g.slice_bytes(cut, g.n - 1))
        assert set(tensor_names(tail, tail.subgraphs[0].inputs)) == want, cut
        if len(want) >= 2:
            skip_cuts.append(cut)
    assert len(skip_cuts) >= 10
    # two-slice schedules cut inside skip connections give the whole model's outputs
    for cut in skip_cuts[:: max(1, len(skip_cuts) // 6)]:
        got = run_schedule(litert, g, [cut], feeds)
        assert all(np.array_equal(got[k], v) for k, v in whole.items()), cut


def test_selfie_segmentation_needs_xnnpack(mediapipe_dir):
    """MediaPipe's transposed-conv custom op exists only in the XNNPACK delegate."""
    g = _load(mediapipe_dir, "selfie")
    ex = LiteRTExecutor(xnnpack=False)
    feeds = _feeds(g, "selfie")
    with pytest.raises(ModelError, match=r"operator 244 \(Convolution2DTransposeBias\)"):
        ex.run_model(g, feeds)
    # slices without that operator still run on the built-in kernels (different kernels: close, not equal)
    builtin = ex.run(g, 0, 20, feeds)
    xnnpack = LiteRTExecutor().run(g, 0, 20, feeds)
    for name, ref in xnnpack.items():
        assert np.max(np.abs(builtin[name] - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


def test_face_mesh_with_attention_is_rejected_for_its_custom_ops(mediapipe_dir):
    with pytest.raises(ModelError, match=r"operator \d+ \(Landmarks2TransformMatrix\) is a custom operator"):
        load_model(mediapipe_dir / "face_landmark_with_attention.tflite")
