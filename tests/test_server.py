"""The cloud server: Open Inference Protocol conformance, split requests, authentication, hostile input.

Every test talks to a real uvicorn server on 127.0.0.1 (``cloud`` fixture)
with real clients: httpx, raw sockets, and tritonclient (a third-party
client that knows nothing about this project).
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from fixtures_session import MAX_BODY, MAX_DECODED, TOKEN, assert_close, live_tensors_at
from jointdnn_edge import codec
from jointdnn_edge import protocol as P
from jointdnn_edge.models.graph import uniform_feeds

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def http(cloud: Any) -> httpx.Client:
    return httpx.Client(base_url=cloud.url, headers=AUTH, timeout=30.0)


def split_body(frame: bytes, first: int | None, last: int | None, **params: Any) -> tuple[bytes, dict[str, str]]:
    """A split request body (as docs/server.md specifies it) and its headers; a None bound is left out."""
    blob = struct.pack("<I", len(frame)) + frame
    bounds = {k: v for k, v in (("jointdnn_first", first), ("jointdnn_last", last)) if v is not None}
    header = {
        "inputs": [
            {"name": "jointdnn_frame", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}}
        ],
        "parameters": {**bounds, **params},
    }
    head = json.dumps(header).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def read_split_response(resp: httpx.Response) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the frame of a split response, parsed by hand from the binary layout."""
    n = int(resp.headers["Inference-Header-Content-Length"])
    header = json.loads(resp.content[:n])
    blob = resp.content[n:]
    (size,) = struct.unpack_from("<I", blob)
    assert header["outputs"][0]["parameters"]["binary_data_size"] == len(blob) == 4 + size
    return header, blob[4:]


def still_serving(cloud: Any) -> None:
    """The server answers health checks and computes a correct split after whatever came before."""
    g = cloud.models["alexnet"]
    feeds = uniform_feeds(g, 3)
    with http(cloud) as c:
        assert c.get("/v2/health/live").status_code == 200
        body, headers = split_body(codec.encode(feeds), 0, 2)
        resp = c.post("/v2/models/alexnet/infer", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        from jointdnn_edge.models.executor import executor_for

        want = executor_for(g, threads=1).run(g, 0, 2, feeds)
        assert_close(codec.decode(read_split_response(resp)[1]), want)


# ------------------------------------------------------------------ protocol
def test_metadata_and_health(cloud: Any) -> None:
    with http(cloud) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 200
        meta = c.get("/v2").json()
        assert meta["name"] == "jointdnn-edge" and "binary_tensor_data" in meta["extensions"]
        for name, g in cloud.models.items():
            m = c.get(f"/v2/models/{name}").json()
            assert m["name"] == name and m["versions"] == ["1"]
            assert m["inputs"] == [{"name": t.name, "datatype": "FP32", "shape": list(t.shape)} for t in g.inputs]
            assert [o["name"] for o in m["outputs"]] == [t.name for t in g.outputs]
            assert m["parameters"]["jointdnn_layers"] == g.n
            assert m["parameters"]["jointdnn_digest"] == P.model_digest(g)
            assert c.get(f"/v2/models/{name}/ready").status_code == 200
            assert c.get(f"/v2/models/{name}/versions/1").json() == m
        for path in ("/v2/models/nope", "/v2/models/alexnet/versions/2", "/v2/models/nope/ready", "/nope"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"], path
        r = c.delete("/v2/models/alexnet")
        assert r.status_code == 405 and "not allowed" in r.json()["error"]


@pytest.mark.parametrize("name", ["alexnet", "resnet", "alexnet_tflite"])
def test_tritonclient_binary_whole_model(cloud: Any, reference: Any, name: str) -> None:
    import tritonclient.http as th

    g = cloud.models[name]
    x = uniform_feeds(g, 7)
    (inp,) = g.inputs
    (out,) = g.outputs
    client = th.InferenceServerClient(cloud.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_model_ready(name, headers=dict(AUTH))
        tin = th.InferInput(inp.name, list(inp.shape), "FP32")
        tin.set_data_from_numpy(x[inp.name], binary_data=True)
        result = client.infer(
            name, [tin], outputs=[th.InferRequestedOutput(out.name, binary_data=True)], headers=dict(AUTH)
        )
        got = result.as_numpy(out.name)
        want = reference(g, x)[out.name]
        # a whole-model request runs the same runtime session type: bit-exact
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want)
        params = result.get_response()["parameters"]
        assert params["jointdnn_compute_ms"] >= 0 and params["jointdnn_server_ms"] >= params["jointdnn_compute_ms"]
    finally:
        client.close()


def test_tritonclient_json_and_gzip(cloud: Any, reference: Any) -> None:
    import tritonclient.http as th

    g = cloud.models["alexnet"]
    x = uniform_feeds(g, 8)["input"]
    want = reference(g, {"input": x})["prob"]
    client = th.InferenceServerClient(cloud.url.removeprefix("http://"))
    try:
        tin = th.InferInput("input", list(x.shape), "FP32")
        tin.set_data_from_numpy(x, binary_data=False)
        r = client.infer("alexnet", [tin], outputs=[th.InferRequestedOutput("prob", binary_data=False)],
                         headers=dict(AUTH))  # fmt: skip
        np.testing.assert_array_equal(r.as_numpy("prob"), want)  # JSON floats round-trip float32 exactly
        tin.set_data_from_numpy(x, binary_data=True)
        r = client.infer("alexnet", [tin], headers=dict(AUTH), request_compression_algorithm="gzip")
        np.testing.assert_array_equal(r.as_numpy("prob"), want)
    finally:
        client.close()


@pytest.mark.parametrize("name, first, last", [("alexnet", 0, 20), ("alexnet", 5, 12), ("pix2pix", 21, 38)])
def test_split_request_by_hand(cloud: Any, name: str, first: int, last: int) -> None:
    """A split request built from docs/server.md alone runs exactly the slice the executor runs."""
    from jointdnn_edge.models.executor import executor_for

    g = cloud.models[name]
    ex = executor_for(g, threads=1)
    env = live_tensors_at(ex, g, first, 4)
    ins, outs = g.slice_io(first, last)
    body, headers = split_body(codec.encode({n: env[n] for n in ins}), first, last, jointdnn_codec="zstd")
    with http(cloud) as c:
        resp = c.post(f"/v2/models/{name}/infer", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    header, frame = read_split_response(resp)
    assert header["model_name"] == name
    assert header["parameters"]["jointdnn_first"] == first and header["parameters"]["jointdnn_last"] == last
    assert {e.codec for e in codec.read_headers(frame)} <= {"zstd", "raw"}
    got = codec.decode(frame)
    assert list(got) == outs
    assert_close(got, ex.run(g, first, last, env))


# ------------------------------------------------------------------ auth
def test_auth_refuses_missing_and_wrong_tokens(cloud: Any) -> None:
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException

    with httpx.Client(base_url=cloud.url) as c:
        r = c.get("/v2/models/alexnet")
        assert r.status_code == 401 and r.json()["error"] == "missing bearer token"
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.get("/v2/models/alexnet", headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        r = c.post("/v2/models/alexnet/infer", headers={"Authorization": "Bearer wrong"}, content=b"{}")
        assert r.status_code == 403 and r.json()["error"] == "invalid bearer token"
        r = c.get("/v2", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert r.status_code == 403
        # health checks stay open for load balancers, and say nothing about models
        assert c.get("/v2/health/ready").status_code == 200
    client = th.InferenceServerClient(cloud.url.removeprefix("http://"))
    try:
        x = uniform_feeds(cloud.models["alexnet"], 0)["input"]
        tin = th.InferInput("input", list(x.shape), "FP32")
        tin.set_data_from_numpy(x)
        with pytest.raises(InferenceServerException, match="missing bearer token"):
            client.infer("alexnet", [tin])
    finally:
        client.close()


def test_token_from_the_environment_with_worker_processes(spawn_server: Any, reference: Any) -> None:
    """``serve --workers 2`` with the token only in ``JOINTDNN_EDGE_TOKEN``: the workers enforce it and compute."""
    from jointdnn_edge import zoo
    from jointdnn_edge.client import CloudClient

    token = "token-from-the-environment"
    server = spawn_server("zoo:alexnet", "--size", "tiny", "--threads", "1", "--workers", "2",
                          env={"JOINTDNN_EDGE_TOKEN": token})  # fmt: skip
    g = zoo.load("alexnet", size="tiny")
    feeds = uniform_feeds(g, 4)
    want = reference(g, feeds)
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        assert c.get("/v2/models/alexnet").status_code == 401
        assert c.get("/v2/models/alexnet", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    for _ in range(4):  # new connections: either worker may accept them; any must answer the same
        with CloudClient(server.url, token=token) as client:
            resp = client.infer_slice("alexnet", 0, 20, codec.encode(feeds), digest=P.model_digest(g))
            assert np.array_equal(codec.decode(resp.frame)["prob"], want["prob"])


# ------------------------------------------------------------------ hostile input
def _whole(name: str = "input", **entry: Any) -> dict[str, Any]:
    base = {"name": name, "datatype": "FP32", "shape": [1, 3, 67, 67]}
    base.update(entry)
    return {"inputs": [base]}


def _frame_with(tensors: dict[str, np.ndarray]) -> bytes:
    return codec.encode(tensors, codec="raw")


def _hostile_cases(cloud: Any) -> list[tuple[str, bytes, dict[str, str], int, str]]:
    """(label, body, headers, expected status, expected message fragment)."""
    g = cloud.models["alexnet"]
    x = uniform_feeds(g, 0)["input"]
    good = _frame_with({"input": x})
    jh = {"Content-Type": "application/json"}
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("bad json", b"{not json", jh, 400, "not valid JSON"),
        ("json array", b"[1, 2]", jh, 400, "must be a JSON object"),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, jh, 400, "JSON"),
        ("no inputs", b"{}", jh, 400, "no 'inputs'"),
        ("inputs not a list", json.dumps({"inputs": 3}).encode(), jh, 400, "list of objects"),
        ("unknown input", json.dumps(_whole("nope", data=[0])).encode(), jh, 400, "has no input 'nope'"),
        ("wrong datatype", json.dumps(_whole(datatype="INT8", data=[0])).encode(), jh, 400, "expects FP32"),
        ("unknown datatype", json.dumps(_whole(datatype="FP128", data=[0])).encode(), jh, 400, "expects FP32"),
        ("wrong shape", json.dumps(_whole(shape=[1, 3, 2, 2], data=[0] * 12)).encode(), jh, 400, "expects [1, 3, 67"),
        ("negative dim", json.dumps(_whole(shape=[1, -3, 67, 67], data=[0])).encode(), jh, 400, "non-negative"),
        ("short data", json.dumps(_whole(data=[0.5] * 10)).encode(), jh, 400, "has 10 elements"),
        ("string data", json.dumps(_whole(data=["a"] * 13467)).encode(), jh, 400, "not a float32 tensor"),
        ("no data", json.dumps(_whole()).encode(), jh, 400, "neither 'data' nor binary_data_size"),
        (
            "unknown output",
            json.dumps({**_whole(data=[0.0] * 13467), "outputs": [{"name": "x"}]}).encode(),
            jh,
            400,
            "no outputs ['x']",
        ),
    ]
    head = json.dumps(_whole(parameters={"binary_data_size": x.nbytes})).encode()
    cases += [
        (
            "header length not a number",
            head + x.tobytes(),
            {"Inference-Header-Content-Length": "12abc"},
            400,
            "non-negative decimal",
        ),
        (
            "header length past the body",
            head,
            {"Inference-Header-Content-Length": str(len(head) + 5)},
            400,
            "has only",
        ),
        (
            "binary shorter than declared",
            head + x.tobytes()[:-4],
            {"Inference-Header-Content-Length": str(len(head))},
            400,
            "runs past the end",
        ),
        (
            "trailing bytes",
            head + x.tobytes() + b"xx",
            {"Inference-Header-Content-Length": str(len(head))},
            400,
            "not claimed",
        ),
    ]
    neg = json.dumps(_whole(parameters={"binary_data_size": -4})).encode()
    cases.append(("negative binary size", neg, {"Inference-Header-Content-Length": str(len(neg))}, 400,
                  "non-negative integer"))  # fmt: skip
    # split requests
    for label, frame, params, status, msg in [
        ("range past the end", good, {"jointdnn_last": 21}, 422, "outside 0..20"),
        ("range reversed", good, {"jointdnn_first": 5, "jointdnn_last": 2}, 422, "outside"),
        ("range not an integer", good, {"jointdnn_first": "0"}, 400, "must be an integer"),
        ("range incomplete", good, {"jointdnn_last": None}, 400, "needs both"),
        ("garbage frame", b"\x00" * 64, {}, 422, "bad activation frame"),
        ("truncated frame", good[:-9], {}, 422, "bad activation frame"),
        ("frame lacks a tensor", _frame_with({"other": x}), {}, 422, "lacks ['input']"),
        ("frame with an extra tensor", _frame_with({"input": x, "extra": x}), {}, 422, "unexpected ['extra']"),
        ("frame with the wrong shape", _frame_with({"input": x[:, :, :5]}), {}, 422, "the model has float32"),
        ("frame with the wrong dtype", _frame_with({"input": x.astype(np.float64)}), {}, 422, "float64"),
        ("digest mismatch", good, {"jointdnn_digest": "sha256:00"}, 409, "differs from the client's"),
        ("unknown codec", good, {"jointdnn_codec": "lzma"}, 422, "jointdnn_codec must be one of"),
        ("bad zstd level", good, {"jointdnn_level": 99}, 422, "jointdnn_level"),
    ]:
        params = {"jointdnn_first": 0, "jointdnn_last": 3, **params}
        first, last = params.pop("jointdnn_first"), params.pop("jointdnn_last")
        body, headers = split_body(frame, first, last, **params)
        cases.append((label, body, headers, status, msg))
    # a frame whose header claims a tensor far larger than the per-request decode limit
    huge = bytearray(_frame_with({"input": np.zeros((1,), np.float32)}))
    rec = struct.Struct("<HBBBBBBQQ")
    name_len = rec.unpack_from(huge, 12)[0]
    struct.pack_into("<Q", huge, 12 + rec.size + name_len, MAX_DECODED)  # shape[0]
    import zlib

    crc_at = 12 + rec.size + name_len + 8
    struct.pack_into("<I", huge, crc_at, zlib.crc32(bytes(huge[12:crc_at])))
    body, headers = split_body(bytes(huge), 0, 3)
    cases.append(("frame claiming a huge tensor", body, headers, 413, "max_bytes"))
    # a split request whose frame is not sent as binary
    hdr = {"inputs": [{"name": "jointdnn_frame", "datatype": "BYTES", "shape": [1], "data": ["x"]}],
           "parameters": {"jointdnn_first": 0, "jointdnn_last": 0}}  # fmt: skip
    cases.append(("frame as JSON", json.dumps(hdr).encode(), jh, 400, "must be sent as binary"))
    # HTTP-level
    cases.append(("unsupported encoding", gzip.compress(b"{}"), {"Content-Encoding": "br"}, 415, "Content-Encoding"))
    bomb = gzip.compress(b"\x00" * (MAX_BODY + 1024))
    cases.append(("gzip bomb", bomb, {"Content-Encoding": "gzip"}, 413, "decompresses to more than"))
    cases.append(("bad gzip", b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"}, 400, "not valid gzip"))
    return cases


def test_hostile_requests_get_clear_4xx_and_the_server_keeps_serving(cloud: Any) -> None:
    cases = _hostile_cases(cloud)
    with http(cloud) as c:
        for label, body, headers, status, fragment in cases:
            r = c.post("/v2/models/alexnet/infer", content=body, headers=headers)
            assert r.status_code == status, f"{label}: {r.status_code} {r.text[:300]}"
            message = r.json()["error"]
            assert fragment in message, f"{label}: {message!r}"
    still_serving(cloud)


def test_oversized_bodies_are_refused_with_413(cloud: Any) -> None:
    with http(cloud) as c:
        # counted while streaming (chunked upload: no Content-Length to check first)
        def chunks() -> Any:
            for _ in range(MAX_BODY // 65536 + 2):
                yield b"\x00" * 65536

        r = c.post("/v2/models/alexnet/infer", content=chunks())
        assert r.status_code == 413 and "exceeds the server's limit" in r.json()["error"]
        r = c.post("/v2/models/alexnet/infer", content=b"\x00" * (MAX_BODY + 1))
        assert r.status_code == 413 and f"limit of {MAX_BODY}" in r.json()["error"]
    # a declared length far beyond the limit is refused before any byte of the body is read
    with socket.create_connection(("127.0.0.1", int(cloud.url.rsplit(":", 1)[1]))) as s:
        s.sendall(
            b"POST /v2/models/alexnet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Length: 1000000000000\r\n\r\n"
        )  # fmt: skip
        reply = b""
        while b"}" not in reply:  # the JSON error body, after the headers
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 413") and b"exceeds the server's limit" in reply
    still_serving(cloud)


def test_request_paths_never_reach_the_filesystem(cloud: Any) -> None:
    with http(cloud) as c:
        for path in (
            "/v2/models/..%2F..%2Fetc%2Fpasswd/infer",
            "/v2/models/%2Fetc%2Fpasswd",
            "/v2/models/../../etc/passwd",
            "/v2/models/alexnet/versions/..%2F1",
        ):
            r = c.get(path) if "infer" not in path else c.post(path, content=b"{}")
            assert r.status_code in (404, 405), path
            assert "root:" not in r.text


def test_garbage_on_the_socket_does_not_stop_the_server(cloud: Any) -> None:
    port = int(cloud.url.rsplit(":", 1)[1])
    for junk in (
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"GET /" + b"a" * 70000,
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(junk)
            try:
                s.recv(4096)
            except (ConnectionResetError, TimeoutError):
                pass
    # a client that promises a body and hangs up half-way
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /v2/models/alexnet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Length: 5000\r\n\r\n{\"inputs\""
        )  # fmt: skip
    still_serving(cloud)


def test_busy_server_answers_503_and_recovers(session_models: Any) -> None:
    """Beyond max_concurrency + max_queue requests, the server refuses with 503 (safe to retry) instead of queueing."""
    from jointdnn_edge.server import BackgroundServer, Limits, create_app

    g = session_models["alexnet"]
    app = create_app({"alexnet": g}, limits=Limits(max_concurrency=1, max_queue=0), slowdown=2000.0, threads=1)
    body, headers = split_body(codec.encode(uniform_feeds(g, 0)), 0, 20)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        first: dict[str, Any] = {}
        t = threading.Thread(target=lambda: first.update(r=c.post("/v2/models/alexnet/infer", content=body,
                                                                  headers=headers)))  # fmt: skip
        t.start()
        state = app.state.jointdnn
        while state.pending == 0 and t.is_alive():
            time.sleep(0.005)
        r = c.post("/v2/models/alexnet/infer", content=body, headers=headers)
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        t.join()
        assert first["r"].status_code == 200
        assert c.get("/v2/health/live").status_code == 200


# ------------------------------------------------------------------ errors as statuses
def test_the_status_comes_from_the_error_class_not_its_message() -> None:
    from jointdnn_edge import errors as E
    from jointdnn_edge.server._errors import status_of

    assert status_of(E.FrameTooLargeError("frame decodes to more than allowed")) == 413
    assert status_of(E.CodecError("max_bytes must be a non-negative integer")) == 422  # the text says max_bytes
    assert status_of(E.ProtocolError(409, "digest")) == 409 and status_of(E.ProtocolError(503, "busy")) == 503
    assert status_of(E.ModelError("x")) == 422 and status_of(E.ConfigError("x")) == 422
    assert status_of(E.ExecutionError("x")) == 500 and status_of(E.JointDNNError("x")) == 500
    assert status_of(MemoryError()) == 507 and status_of(KeyError("x")) == 500


class _FailingExecutor:
    """Runs nothing: raises ``error`` on every run (and has no ``prepare``)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def run(self, graph: Any, first: int, last: int, feeds: Any) -> Any:
        raise self.error

    def run_model(self, graph: Any, feeds: Any) -> Any:
        raise self.error

    def info(self) -> dict[str, Any]:
        return {"runtime": "failing"}


@pytest.mark.parametrize(
    "error, status, fragment",
    [
        (RuntimeError("secret detail"), 500, "internal error: RuntimeError"),
        (MemoryError(), 507, "not enough memory"),
    ],
)
def test_runtime_failures_answer_json_errors(session_models: Any, error: Exception, status: int, fragment: str) -> None:
    from jointdnn_edge.errors import ExecutionError
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    executors = {"alexnet": _FailingExecutor(error), "broken": _FailingExecutor(ExecutionError("the runtime broke"))}
    app = create_app({"alexnet": g, "broken": g}, executors=executors)
    body, headers = split_body(codec.encode(uniform_feeds(g, 0)), 0, 20)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/v2/models/alexnet/infer", content=body, headers=headers)
        assert r.status_code == status and fragment in r.json()["error"]
        assert "secret detail" not in r.text  # a bug's details stay in the server's log
        r = c.post("/v2/models/broken/infer", content=body, headers=headers)
        assert r.status_code == 500 and r.json()["error"] == "inference failed: the runtime broke"
        assert c.get("/v2/models/alexnet").json()["parameters"]["jointdnn_runtime"] == "failing"


def test_app_from_env_refuses_a_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from jointdnn_edge.errors import ConfigError
    from jointdnn_edge.server import app_from_env

    for raw in (None, "{not json", '["zoo:alexnet"]', '{"size": "tiny"}'):
        if raw is None:
            monkeypatch.delenv("JOINTDNN_EDGE_SERVE_CONFIG", raising=False)
        else:
            monkeypatch.setenv("JOINTDNN_EDGE_SERVE_CONFIG", raw)
        with pytest.raises(ConfigError, match="JOINTDNN_EDGE_SERVE_CONFIG"):
            app_from_env()
