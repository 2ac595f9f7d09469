"""Task-agnostic fidelity of lossy transfer: a trained MediaPipe detector (BlazeFace) on scikit-image scenes,
and a hand-built model whose error bound is worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from jointdnn_edge import ConfigError, lossy
from jointdnn_edge.cli import app
from jointdnn_edge.lossy import LossyOption
from jointdnn_edge.lossy._fidelity import blazeface_anchors, box_iou, detections
from jointdnn_edge.models.tflite_flatbuffer import GraphBuilder

FACE = "face_detection_short_range.tflite"
#: the output of the 8th residual block, 1×16×16×64 (NHWC): the only tensor crossing a cut there
CUT = "activation_8"
OPTIONS = ["lossless", "q8c", "pca0.125+q4c"]


@pytest.fixture(scope="module")
def face(mediapipe_dir):
    return mediapipe_dir / FACE


@pytest.fixture(scope="module")
def table(face):
    return lossy.measure_fidelity(face, options=OPTIONS, images=9, fit_images=6, cuts=[CUT])


def test_box_iou_and_detection_agreement_by_hand():
    unit, half = [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5]
    assert box_iou(np.array([unit]), np.array([half, [2.0, 2.0, 3.0, 3.0]])).tolist() == [[0.5, 0.0]]
    assert lossy.detection_agreement(np.array([unit]), np.array([unit])) == 1.0
    assert lossy.detection_agreement(np.zeros((0, 4)), np.zeros((0, 4))) == 1.0  # neither detects: agree
    assert lossy.detection_agreement(np.array([unit]), np.zeros((0, 4))) == 0.0
    assert lossy.detection_agreement(np.array([unit]), np.array([half])) == 0.5
    # one matched pair at IoU 0.5, one box only the second run reports: 0.5 over 2 distinct detections
    assert lossy.detection_agreement(np.array([unit]), np.array([half, [5.0, 5.0, 6.0, 6.0]])) == 0.25


def test_mask_iou_and_relative_l2_by_hand():
    a = np.array([0.9, 0.9, 0.1, 0.6])
    b = np.array([0.9, 0.2, 0.7, 0.6])
    assert lossy.mask_iou(a, b) == pytest.approx(2 / 4)  # both: items 0, 3; either: 0, 1, 2, 3
    assert lossy.mask_iou(np.zeros(3), np.zeros(3)) == 1.0
    assert lossy.relative_l2([np.array([3.0, 4.0])], [np.array([3.0, 4.0])]) == 0.0
    assert lossy.relative_l2([np.array([3.0, 4.0])], [np.array([3.0, 5.0])]) == pytest.approx(1 / 5)


def test_anchors_follow_the_ssd_layout():
    anchors = blazeface_anchors((128, 128), 896)
    assert anchors is not None and anchors.shape == (896, 2)
    # stride 8: a 16×16 grid, 2 anchors per cell; then stride 16 (three layers): 8×8, 6 per cell
    assert anchors[0].tolist() == anchors[1].tolist() == [0.5 / 16, 0.5 / 16]
    assert anchors[2].tolist() == [1.5 / 16, 0.5 / 16]
    assert anchors[512].tolist() == anchors[517].tolist() == [0.5 / 8, 0.5 / 8]
    assert blazeface_anchors((224, 224), 2254) is not None  # pose detection's layout
    assert blazeface_anchors((128, 128), 1000) is None


def test_decoding_puts_a_box_where_the_regressor_says():
    anchors = blazeface_anchors((128, 128), 896)
    reg = np.zeros((896, 16))
    logits = np.full(896, -10.0)
    logits[[0, 1]] = [3.0, 2.0]  # two anchors of the same cell: NMS keeps the higher score
    reg[0, :4] = [16.0, 32.0, 64.0, 32.0]  # centre moved by (16, 32) px, 64 × 32 px
    boxes = detections(reg, logits, anchors, (128, 128))
    cx, cy = 0.5 / 16 + 16 / 128, 0.5 / 16 + 32 / 128
    assert boxes.shape == (2, 4)  # the second box (zero size) does not overlap the first
    assert np.allclose(boxes[0], [cx - 0.25, cy - 0.125, cx + 0.25, cy + 0.125])


def test_scenes_are_seeded_and_fit_and_eval_differ():
    a = lossy.scenes(4, (32, 32), split="eval")
    assert all(x.shape == (32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, lossy.scenes(4, (32, 32), split="eval")))
    fit = lossy.scenes(4, (32, 32), split="fit")
    assert not any(np.array_equal(x, y) for x, y in zip(a, fit))
    assert not set(lossy.EVAL_PHOTOS) & set(lossy.FIT_PHOTOS)


def test_table_follows_the_json_contract(table):
    assert table["task"] == "fidelity" and table["metric"] == "detection" and table["model"] == FACE[:-7]
    assert table["input_range"] == [-1.0, 1.0]
    held = table["held_out"]
    assert held["eval_images"] == 9 and held["fit_images"] == 6
    assert table["baseline"]["detections"] > 0  # the pasted LFW faces and the astronaut are found
    assert [r["option"]["label"] for r in table["rows"]] == OPTIONS
    for row in table["rows"]:
        assert {"cut", "option", "bytes", "lossless_8bit_bytes", "delta", "delta_ci95"} <= set(row)
        assert row["cut"] == CUT and row["shape"] == [1, 16, 16, 64]
        assert 0.0 <= row["delta_ci95"][0] <= row["delta_ci95"][1] <= 1.0
    _, q8c, small = table["rows"]
    n = 16 * 16 * 64
    assert q8c["bytes"] <= n + 64 + 16  # one byte per element, frame and lossy headers
    assert small["bytes"] <= n // 8 * 4 // 8 + 64 + 16  # 8 of 64 channels at 4 bits


def test_lossless_transfer_agrees_exactly(table):
    lossless = table["rows"][0]
    assert lossless["delta"] == 0.0 and lossless["delta_ci95"] == [0.0, 0.0]
    assert lossless["max_abs_diff"] == 0.0 and lossless["relative_l2"] == 0.0


def test_fewer_bits_and_channels_disagree_more(table):
    _, q8c, small = table["rows"]
    assert q8c["delta"] < 0.05 < small["delta"]
    assert q8c["relative_l2"] < small["relative_l2"]


def test_same_inputs_give_the_same_deltas(face, table):
    again = lossy.measure_fidelity(face, options=OPTIONS, images=9, fit_images=6, cuts=[CUT])
    for key in ("delta", "delta_ci95", "bytes", "max_abs_diff", "relative_l2"):
        assert [r[key] for r in again["rows"]] == [r[key] for r in table["rows"]], key


def test_q8_per_channel_error_bound_worked_out_by_hand(tmp_path):
    """RELU → RELU: the cut tensor is the (non-negative) input and the tail returns it unchanged, so the output
    error is the quantization error. Channel c spans [0, 2.55 (c + 1)] in 64 evenly spaced values: with min/max
    clipping its 8-bit step is 2.55 (c + 1) / 255 = 0.01 (c + 1), so no element is off by more than half of it,
    0.005 (c + 1): 0.015 at most, and every step's midpoint is hit (some error is near the bound)."""
    g = GraphBuilder("relu2")
    x = g.input("input", [1, 8, 8, 3])
    path = tmp_path / "relu2.tflite"
    path.write_bytes(g.finish([x], [g.unary("second", "RELU", g.unary("first", "RELU", x))]))
    known = np.stack([np.linspace(0.0, 2.55 * (c + 1), 64) for c in range(3)], axis=-1).reshape(1, 8, 8, 3)
    known = known.astype(np.float32)
    option = LossyOption(bits=8, granularity="channel", clip="minmax")
    table = lossy.measure_fidelity(path, options=[option], images=[known], fit_images=[known], cuts=["first"])
    (row,) = table["rows"]
    assert table["metric"] == "output"
    assert 0.004 < row["max_abs_diff"] <= 0.015 + 1e-6
    spec = lossy.fit(known, option, axis=3)
    assert np.allclose(spec.steps, [0.01, 0.02, 0.03])
    back = lossy.decode(lossy.encode(known, spec), spec, known.shape)
    per_channel = np.abs(back - known).reshape(-1, 3).max(axis=0)
    assert (per_channel <= np.array([0.005, 0.010, 0.015]) + 1e-6).all()


def test_bad_arguments_are_config_errors(face):
    with pytest.raises(ConfigError, match="mask"):
        lossy.measure_fidelity(face, options=["q8"], images=1, fit_images=1, cuts=[CUT], metric="mask")
    with pytest.raises(ConfigError, match="single-tensor cut"):
        lossy.measure_fidelity(face, options=["q8"], images=1, fit_images=1, cuts=["no-such-tensor"])
    with pytest.raises(ConfigError, match="shape"):
        lossy.measure_fidelity(face, options=["q8"], images=[np.zeros((1, 4, 4, 3))], fit_images=1, cuts=[CUT])


def test_cli_writes_the_fidelity_table(face, tmp_path):
    out = tmp_path / "fid.json"
    result = CliRunner().invoke(
        app, ["accuracy", str(face), "--task", "fidelity", "--images", "3", "--fit-images", "2",
              "--options", "lossless,q4c", "--cut", CUT, "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["task"] == "fidelity" and data["held_out"]["eval_images"] == 3
    assert [r["option"]["label"] for r in data["rows"]] == ["lossless", "q4c"]
    assert data["rows"][0]["delta"] == 0.0
    bad = CliRunner().invoke(app, ["accuracy", str(face), "--task", "fidelity", "--images", "0"])
    assert bad.exit_code == 2 and "--images" in bad.output
