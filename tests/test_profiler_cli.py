"""``jointdnn-edge profile MODEL -o costs.json``."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from jointdnn_edge import CostTable, zoo
from jointdnn_edge.cli import app

runner = CliRunner()


def test_profile_zoo_model(tmp_path):
    out = tmp_path / "costs.json"
    res = runner.invoke(
        app,
        ["profile", "zoo:chair", "--size", "tiny", "--threads", "1", "--repeats", "2", "-o", str(out), "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    t = CostTable.load(out)
    n = zoo.MODELS["chair"].layers
    assert t.n == n
    upper = np.triu_indices(n)
    assert np.isfinite(t.mobile_ms[upper]).all() and (t.mobile_ms[upper] > 0).all()
    assert t.meta["cloud_source"] == "scaled" and t.meta["cloud_speedup"] == 10.0
    assert t.meta["runtime"]["threads"] == 1 and t.meta["model"]["name"] == "chair"


def test_profile_file_with_options(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(zoo.build("nin", size="tiny"))
    out = tmp_path / "c.json"
    res = runner.invoke(
        app,
        ["profile", str(model), "--max-group", "3", "--device", "raspberry-pi-4", "--cloud-speedup", "5",
         "--threads", "1", "--repeats", "1", "--optimization", "disable", "-o", str(out), "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    t = CostTable.load(out)
    i, j = np.indices((t.n, t.n))
    assert np.isinf(t.mobile_ms[(j - i) >= 3]).all() and np.isfinite(t.mobile_ms[(j >= i) & (j - i < 3)]).all()
    np.testing.assert_allclose(t.mobile_mj, t.mobile_ms * 3.0)
    np.testing.assert_allclose(t.cloud_ms, t.mobile_ms / 5)
    assert t.meta["runtime"]["optimization"] == "disable" and t.meta["device"]["name"] == "raspberry-pi-4"


def _dynamic_model() -> bytes:
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) / 27, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(
        nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, "h", "w"])], initializer=[w],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_profile_dynamic_input_shape(tmp_path):
    model = tmp_path / "dyn.onnx"
    model.write_bytes(_dynamic_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["profile", str(model), "-o", str(out), "--no-progress", "--threads", "1"])
    assert res.exit_code == 1 and "dynamic dimension" in res.output
    args = ["profile", str(model), "--input-shape", "x=2,3,8,8", "-o", str(out), "--no-progress", "--threads", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    t = CostTable.load(out)
    assert t.n == 2 and t.input_bytes == 2 * 3 * 8 * 8 * 4 and list(t.out_bytes) == [2 * 4 * 64 * 4] * 2


def test_profile_errors(tmp_path):
    res = runner.invoke(app, ["profile", str(tmp_path / "none.onnx"), "-o", str(tmp_path / "c.json")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["profile", "zoo:chair", "--input-shape", "oops", "-o", str(tmp_path / "c.json")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["profile", "zoo:lenet", "-o", str(tmp_path / "c.json")])
    assert res.exit_code == 1 and "unknown zoo model" in res.output
