"""``jointdnn-edge zoo list`` / ``zoo export``."""

from __future__ import annotations

from typer.testing import CliRunner

from jointdnn_edge import zoo
from jointdnn_edge.cli import app
from jointdnn_edge.models import load_model

runner = CliRunner()


def test_zoo_list_shows_every_model_with_counts():
    res = runner.invoke(app, ["zoo", "list"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in zoo.names():
        assert name in res.output
    # full-size parameter counts and input shapes
    assert "138,357,544" in res.output and "11,689,512" in res.output
    assert "1×3×227×227" in res.output and "100×494" in res.output
    for name in zoo.names():
        row = next(line for line in res.output.splitlines() if f" {name} " in line)
        assert f" {zoo.MODELS[name].layers} " in row and f" {zoo.MODELS[name].paper_layers} " in row


def test_zoo_export_onnx(tmp_path):
    out = tmp_path / "r.onnx"
    res = runner.invoke(app, ["zoo", "export", "resnet", "--size", "tiny", "-o", str(out)])
    assert res.exit_code == 0, res.output
    graph = load_model(out)
    assert graph.n == 70 and graph.inputs[0].shape == (1, 3, 32, 32)
    res = runner.invoke(app, ["zoo", "export", "chair", "--width", "0.0625", "--resolution", "48", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert load_model(out).outputs[0].shape == (1, 3, 48, 48)


def test_zoo_export_tflite(tmp_path):
    out = tmp_path / "c.tflite"
    res = runner.invoke(app, ["zoo", "export", "chair", "--size", "tiny", "--format", "tflite", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    assert data[4:8] == b"TFL3"
    assert load_model(data).n == zoo.MODELS["chair"].layers


def test_zoo_export_errors(tmp_path):
    res = runner.invoke(app, ["zoo", "export", "chair", "--format", "caffe", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["zoo", "export", "lenet", "-o", str(tmp_path / "x")])
    assert res.exit_code == 1 and "unknown zoo model" in res.output
    res = runner.invoke(app, ["zoo", "export", "pix2pix", "--resolution", "100", "-o", str(tmp_path / "x")])
    assert res.exit_code == 1 and "256" in res.output
