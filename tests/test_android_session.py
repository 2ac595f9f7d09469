"""Full mode and the plan-only cloud client of the Android bridge, against a real local server.

The server is the test run's shared one (``cloud`` in ``fixtures_session.py``: the SDK's own
server on 127.0.0.1, behind a bearer token), which serves the tiny zoo AlexNet as
``alexnet_tflite``; the "phone" holds the same ``.tflite`` file. Outputs are checked against the
whole model run locally with the same runtime, schedules against :func:`jointdnn_edge.plan`.
"""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jointdnn_edge import CostTable, Network, codec, zoo
from jointdnn_edge import android as bridge
from jointdnn_edge.errors import AuthError, CodecError, ConfigError, ExecutionError, ModelError, TransportError
from jointdnn_edge.models import executor_for, load_model
from jointdnn_edge.planner import plan

pytest.importorskip("ai_edge_litert")


SERVED = "alexnet_tflite"  # the shared server's name for the model; the file's stem says the same


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("android_session") / f"{SERVED}.tflite"
    path.write_bytes(zoo.build("alexnet", size="tiny", format="tflite"))
    return path


@pytest.fixture(scope="module")
def graph(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def server(cloud, model_path):
    """The shared server, after checking it serves the very model the phone holds."""
    from jointdnn_edge.protocol import model_digest

    assert model_digest(cloud.models[SERVED]) == model_digest(load_model(model_path))
    return cloud


@pytest.fixture(scope="module")
def feeds(graph) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {t.name: rng.random(t.shape).astype(t.dtype) for t in graph.inputs}


@pytest.fixture(scope="module")
def expected(graph, feeds) -> dict[str, np.ndarray]:
    """The whole model run locally: what any split must give."""
    ex = executor_for(graph, threads=1)
    out = ex.run(graph, 0, graph.n - 1, dict(feeds))
    return {t.name: out[t.name] for t in graph.outputs}


@pytest.fixture(autouse=True)
def fresh_bridge():
    bridge.reset()
    yield
    bridge.reset()


def as_java(arrays: dict[str, np.ndarray]) -> tuple[str, list[array.array]]:
    meta = json.dumps([{"name": k, "dtype": a.dtype.name, "shape": list(a.shape)} for k, a in arrays.items()])
    return meta, [array.array("b", np.ascontiguousarray(a).tobytes()) for a in arrays.values()]


def from_java(parts: list) -> dict[str, np.ndarray]:
    meta = json.loads(parts[0])
    return {
        m["name"]: np.frombuffer(buf, dtype=np.dtype(m["dtype"]).newbyteorder("<")).reshape(m["shape"])
        for m, buf in zip(meta, parts[1:])
    }


def assert_same_outputs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


def free_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


def synthetic_costs(graph) -> CostTable:
    """A cost table for the model (made-up compute times; real sizes from the graph)."""
    rng = np.random.default_rng(1)
    mobile = rng.uniform(2.0, 20.0, graph.n)
    sk = graph.cost_skeleton()
    return CostTable.from_layers(
        mobile, mobile / 10, sk["out_bytes"], sk["input_bytes"], edges=sk["edges"], outputs=sk["outputs"],
        names=sk["names"], mobile_power_mw=2500.0, max_group=8,
    )  # fmt: skip


# ------------------------------------------------------------------ full mode
def test_a_fixed_split_runs_its_cloud_layers_on_the_server(model_path, graph, server, feeds, expected):
    split = [[0, 7, "mobile"], [8, graph.n - 1, "cloud"]]
    opts = {"schedule": split, "network": "wifi", "token": server.token}
    handle = bridge.open_session(str(model_path), server.url, json.dumps(opts))
    assert isinstance(handle, int)
    assert bridge.last_trace(handle) is None
    meta, blobs = as_java(feeds)
    assert_same_outputs(from_java(bridge.run(handle, meta, blobs)), expected)
    trace = json.loads(bridge.last_trace(handle))
    assert trace["source"] == "fixed" and trace["fallback"] is None
    assert trace["schedule"]["segments"] == split
    steps = trace["steps"]
    assert [(s["first"], s["last"], s["platform"]) for s in steps] == [tuple(x) for x in split]
    ins, _outs = graph.slice_io(8, graph.n - 1)
    assert steps[1]["bytes_up"] > sum(graph.tensor(n).nbytes for n in ins) // 20  # the activation went up
    assert steps[1]["bytes_down"] > 0 and trace["measured_ms"] > 0
    assert "cloud" in trace["summary"]
    bridge.close_session(handle)
    with pytest.raises(ExecutionError, match="no open session"):
        bridge.run(handle, meta, blobs)


@pytest.mark.pure
def test_the_session_plans_with_the_loaded_cost_table(model_path, graph, server, feeds, expected):
    costs = synthetic_costs(graph)
    bridge.load_costs_json(json.dumps(costs.to_dict()))
    opts = {
        "costs": "loaded",
        "token": server.token,
        "network": {"up_mbps": 40.0, "down_mbps": 80.0, "preset": "wifi"},
        "objective": "latency",
        "lut_cells": [16, 16, 1],  # a JSON list where the session takes a tuple
        "track_cloud_load": False,
        "lut_build": "blocking",  # the first inference waits for the table, to check its answer
    }
    handle = bridge.open_session(str(model_path), server.url, json.dumps(opts))
    meta, blobs = as_java(feeds)
    assert_same_outputs(from_java(bridge.run(handle, meta, blobs)), expected)
    trace = json.loads(bridge.last_trace(handle))
    want = plan(costs, Network.preset("wifi").with_bandwidth(40.0, 80.0), cloud_keeps_tensors=False)
    assert trace["source"] == "lut"
    got = trace["schedule"]
    placement = [p for a, b, p in got["segments"] for _ in range(a, b + 1)]
    assert placement == want.placement()  # tied groupings aside, the same split
    assert abs(got["latency_ms"] - want.latency_ms) <= 1e-9 * want.latency_ms
    assert trace["network"]["up_mbps"] == 40.0


CHAQUOPY_LIKE = """
import json, sys
import numpy as np
import ai_edge_litert
from jointdnn_edge import android as bridge
args = json.loads(sys.argv[1])
layout = list(ai_edge_litert.__path__)  # the schema-only package, before anything loads the interpreter
handle = bridge.open_session(args["model"], args["url"], json.dumps(args["options"]))
feeds = dict(np.load(args["feeds"]))
meta = json.dumps([{"name": k, "dtype": a.dtype.name, "shape": list(a.shape)} for k, a in feeds.items()])
parts = bridge.run(handle, meta, [a.astype(a.dtype.newbyteorder("<")).tobytes() for a in feeds.values()])
outs = {m["name"]: np.frombuffer(b, dtype=np.dtype(m["dtype"]).newbyteorder("<")).reshape(m["shape"])
        for m, b in zip(json.loads(parts[0]), parts[1:])}
np.savez(args["outs"], **outs)
trace = json.loads(bridge.last_trace(handle))
print(json.dumps({"layout": layout, "trace": trace, "modules": sorted(sys.modules)}))
"""


def test_full_mode_needs_only_the_tflite_schema_and_a_tflite_runtime_interpreter(
    model_path, graph, server, feeds, expected, tmp_path
):
    """The Python packages a Chaquopy app can have (android_bridge/README.md, full mode), simulated here.

    No ai-edge-litert wheel exists for Android: the app carries its three pure-Python flatbuffer
    modules as a small ``ai_edge_litert`` package, and the interpreter comes from
    ``tflite_runtime.interpreter`` (Chaquopy's tflite-runtime). Here a stand-in ``tflite_runtime``
    lends the workstation's LiteRT interpreter, since tflite-runtime itself is not installed.
    """
    import ai_edge_litert

    real = Path(ai_edge_litert.__file__).parent
    site = tmp_path / "site"
    (site / "ai_edge_litert" / "tools").mkdir(parents=True)
    (site / "ai_edge_litert" / "__init__.py").write_text("")
    for rel in ("schema_py_generated.py", "tools/flatbuffer_utils.py", "tools/mmap_utils.py"):
        (site / "ai_edge_litert" / rel).write_bytes((real / rel).read_bytes())
    (site / "tflite_runtime").mkdir()
    (site / "tflite_runtime" / "__init__.py").write_text("")
    (site / "tflite_runtime" / "interpreter.py").write_text(
        "# stand-in for Chaquopy's tflite-runtime: the workstation's interpreter under its name\n"
        "import ai_edge_litert\n"
        f"ai_edge_litert.__path__.append({str(real)!r})\n"
        "from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: F401\n"
    )
    split = [[0, 7, "mobile"], [8, graph.n - 1, "cloud"]]
    args = {
        "model": str(model_path),
        "url": server.url,
        "options": {"schedule": split, "network": "wifi", "token": server.token},
        "feeds": str(tmp_path / "feeds.npz"),
        "outs": str(tmp_path / "outs.npz"),
    }
    np.savez(args["feeds"], **feeds)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", CHAQUOPY_LIKE, json.dumps(args)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["layout"] == [str(site / "ai_edge_litert")]
    assert "tflite_runtime.interpreter" in out["modules"]
    assert out["trace"]["fallback"] is None and out["trace"]["steps"][1]["platform"] == "cloud"
    assert_same_outputs(dict(np.load(args["outs"])), expected)


def test_when_the_cloud_is_down_the_session_finishes_on_the_device(model_path, graph, feeds, expected):
    split = [[0, 3, "mobile"], [4, graph.n - 1, "cloud"]]
    opts = {"schedule": split, "network": "4g", "timeout": 5}
    handle = bridge.open_session(str(model_path), free_port_url(), json.dumps(opts))
    meta, blobs = as_java(feeds)
    assert_same_outputs(from_java(bridge.run(handle, meta, blobs)), expected)
    trace = json.loads(bridge.last_trace(handle))
    assert trace["fallback"] and "CloudUnavailableError" in trace["fallback"]
    assert trace["steps"][-1]["fallback"] is True and trace["steps"][-1]["last"] == graph.n - 1


def test_without_a_cloud_everything_runs_on_the_device(model_path, feeds, expected):
    handle = bridge.open_session(str(model_path), None, None)
    meta, blobs = as_java(feeds)
    assert_same_outputs(from_java(bridge.run(handle, meta, blobs)), expected)
    assert json.loads(bridge.last_trace(handle))["source"].startswith("mobile-only")


def test_session_errors_are_typed(model_path, tmp_path, feeds):
    with pytest.raises(ConfigError, match="bad session option"):
        bridge.open_session(str(model_path), None, json.dumps({"colour": "red"}))
    with pytest.raises(TransportError):
        bridge.open_session(str(model_path), "ftp://example.org", None)
    assert "TransportError" in json.loads(bridge.last_error())["hierarchy"]
    with pytest.raises(ConfigError, match="no cost table is loaded"):
        bridge.open_session(str(model_path), None, json.dumps({"costs": "loaded"}))
    (tmp_path / "junk.tflite").write_bytes(b"junk")
    with pytest.raises(ModelError):
        bridge.open_session(str(tmp_path / "junk.tflite"), None, None)
    assert json.loads(bridge.last_error())["type"] == "ModelError"
    handle = bridge.open_session(str(model_path), None, None)
    meta, _ = as_java(feeds)
    with pytest.raises(CodecError, match="bytes given"):
        bridge.run(handle, meta, [b"short"])
    assert json.loads(bridge.last_error())["type"] == "CodecError"
    with pytest.raises(ExecutionError, match="no open session"):
        bridge.last_trace(handle + 1000)
    bridge.reset()  # closes every session
    with pytest.raises(ExecutionError):
        bridge.close_session(handle)


# ------------------------------------------------------------------ plan-only: the cloud client
def test_plan_only_app_sends_a_cloud_run_and_reads_the_link_estimate(graph, server, feeds):
    handle = bridge.open_cloud(server.url, server.token, 10.0)
    first, last = 5, graph.n - 1
    local = executor_for(graph, threads=1)
    tensors = dict(feeds)
    tensors.update(local.run(graph, 0, first - 1, tensors))  # what the app's LiteRT slice 0..4 produced
    ins, outs = graph.slice_io(first, last)
    meta, blobs = as_java({n: tensors[n] for n in ins})
    frame = bridge.encode_frame(meta, blobs, "auto")
    reply, info = bridge.cloud_infer(handle, SERVED, first, last, array.array("b", frame))
    assert isinstance(reply, bytes) and isinstance(info, str)  # what the facade reads as byte[] and JSON
    got = from_java(bridge.decode_frame(reply))
    want = local.run(graph, first, last, {n: tensors[n] for n in ins})
    assert set(got) == set(outs)
    for k in outs:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    info = json.loads(info)
    assert info["bytes_up"] >= len(frame) and info["bytes_down"] > 0 and info["wall_ms"] > 0
    est = json.loads(bridge.cloud_estimate(handle))
    assert set(est) == {"up_mbps", "down_mbps", "rtt_ms", "available", "down_for_s"} and est["available"] is True
    bridge.close_cloud(handle)
    with pytest.raises(ExecutionError, match="no open cloud client"):
        bridge.cloud_estimate(handle)


def test_a_wrong_token_is_an_auth_error_with_its_status(graph, server, feeds):
    handle = bridge.open_cloud(server.url, "not-the-token", 10.0)
    frame = codec.encode({graph.inputs[0].name: feeds[graph.inputs[0].name]})
    with pytest.raises(AuthError) as raised:
        bridge.cloud_infer(handle, SERVED, 0, 0, frame)
    err = json.loads(bridge.last_error())
    assert err["type"] == "AuthError" and err["status"] == raised.value.status in (401, 403)
    assert err["hierarchy"][:4] == ["AuthError", "RemoteError", "TransportError", "JointDNNError"]


def test_a_cloud_that_is_not_there_is_a_transport_error(graph, feeds):
    handle = bridge.open_cloud(free_port_url(), None, 5.0)
    frame = codec.encode({graph.inputs[0].name: feeds[graph.inputs[0].name]})
    with pytest.raises(TransportError):
        bridge.cloud_infer(handle, graph.name, 0, 0, frame)
    err = json.loads(bridge.last_error())
    assert err["type"] == "CloudUnavailableError" and err["hierarchy"][:3] == [
        "CloudUnavailableError",
        "TransportError",
        "JointDNNError",
    ]


# ------------------------------------------------------------------ plan-only, end to end
def run_tflite_slice(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An exported slice run by the bare LiteRT interpreter, as the app's Interpreter would run it."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


@pytest.mark.pure
def test_plan_only_app_end_to_end_with_exported_slices(model_path, graph, server, feeds, expected, tmp_path):
    """Workstation: table + slices; phone: decide, run mobile slices itself, send cloud runs; same outputs."""
    from jointdnn_edge.planner import LookupTable

    costs = synthetic_costs(graph)
    lut = LookupTable.build(costs, network="wifi", cells=(16, 16, 1), cloud_keeps_tensors=False)
    lut.save(tmp_path / "model.lut")
    manifest = json.loads(bridge.export_slices(str(model_path), str(tmp_path / "model.lut"), str(tmp_path / "assets")))
    assert json.loads((tmp_path / "assets" / "slices.json").read_text()) == manifest
    assert manifest["model"] == graph.name and manifest["n"] == graph.n
    runs = {(r["first"], r["last"], r["platform"]): r for r in manifest["runs"]}
    for (a, b, p), r in runs.items():
        ins, outs = graph.slice_io(a, b)
        assert [t["name"] for t in r["inputs"]] == ins and [t["name"] for t in r["outputs"]] == outs
        assert ("file" in r) == (p == "mobile")
    bridge.load_lookup_table(str(tmp_path / "model.lut"))  # the phone loads the same file
    assert {(a, b) for a, b, p in runs if p == "mobile"} == {tuple(x) for x in json.loads(bridge.mobile_ranges())}

    cloud = bridge.open_cloud(server.url, server.token, 10.0)
    seen_patterns = set()
    for up, down in [(0.5, 1.0), (8.0, 20.0), (40.0, 80.0), (300.0, 600.0)]:
        schedule = json.loads(bridge.decide(up, down))
        seen_patterns.add(schedule["pattern"])
        tensors: dict[str, np.ndarray] = dict(feeds)
        for first, last, platform in schedule["runs"]:
            r = runs[(first, last, platform)]
            ins = {t["name"]: tensors[t["name"]] for t in r["inputs"]}
            if platform == "mobile":
                tensors.update(run_tflite_slice(tmp_path / "assets" / r["file"], ins))
            else:
                frame = bridge.encode_frame(*as_java(ins))
                reply, _info = bridge.cloud_infer(cloud, manifest["model"], first, last, frame)
                tensors.update(from_java(bridge.decode_frame(reply)))
        assert_same_outputs({k: tensors[k] for k in expected}, expected)
    assert len(seen_patterns) >= 2, seen_patterns  # the split moved with the bandwidth


def test_android_export_slices_command_writes_what_the_bridge_writes(model_path, graph, tmp_path):
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app
    from jointdnn_edge.planner import LookupTable

    LookupTable.build(synthetic_costs(graph), network="wifi", cells=(8, 8, 1)).save(tmp_path / "model.lut")
    lut = str(tmp_path / "model.lut")
    r = CliRunner().invoke(app, ["android", "export-slices", str(model_path), lut, str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    manifest = json.loads(bridge.export_slices(str(model_path), lut, str(tmp_path / "api")))
    assert json.loads((tmp_path / "cli" / "slices.json").read_text()) == manifest
    files = sorted(p.name for p in (tmp_path / "api").iterdir())
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == files and "slices.json" in files
    for name in files:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()
    other = tmp_path / "other.lut"  # a table for a 3-layer chain, not this model
    LookupTable.build(CostTable.from_layers([5.0] * 3, [0.5] * 3, [100] * 3, 100), cells=(2, 2, 1)).save(other)
    (tmp_path / "file").write_text("")
    for args, needle in [
        ([str(model_path), lut, str(tmp_path / "file")], "is a file"),
        ([str(tmp_path / "none.tflite"), lut, str(tmp_path / "x")], "none.tflite"),
        ([str(model_path), str(other), str(tmp_path / "x")], "LookupTableError: lookup table has 3 layers"),
    ]:
        r = CliRunner().invoke(app, ["android", "export-slices", *args], terminal_width=200)
        assert r.exit_code == 2, r.output
        assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
        assert "error:" in r.output and needle in " ".join(r.output.split()), r.output
