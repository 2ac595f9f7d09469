"""Faults at the edges of the wire (issue 12): numeric headers and JSON that only one side would accept.

Each case is reproduced against a real server on 127.0.0.1 (the shared ``cloud`` fixture, or an app behind
a misbehaving ASGI front that rewrites what the server sends), and checked against the local outputs.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import httpx
import numpy as np
import pytest

from fixtures_session import TOKEN, assert_close
from jointdnn_edge import ProtocolError, RemoteError, codec
from jointdnn_edge import protocol as P
from jointdnn_edge.client import CloudClient
from jointdnn_edge.faults import InferenceFront
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.session import JointSession

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: strings that Python's str.isdigit() or int() accept but that are no ASCII decimal integer
NOT_ASCII_DECIMAL = ["²", "٣", "１２", "+5", "-1", "1_0", "", " ", "1 2", "0x10", "12abc", "1" * 19]


@pytest.mark.parametrize("text, value", [("0", 0), ("12", 12), (" 42\t", 42), ("000123", 123), ("9" * 18, 10**18 - 1)])
def test_decimal_headers_take_ascii_digits(text: str, value: int) -> None:
    assert P.parse_decimal(text, "x") == value


@pytest.mark.parametrize("text", NOT_ASCII_DECIMAL)
def test_decimal_headers_refuse_everything_else(text: str) -> None:
    with pytest.raises(ProtocolError) as e:
        P.parse_decimal(text, "Inference-Header-Content-Length")
    assert e.value.status == 400 and "Inference-Header-Content-Length" in str(e.value)


@pytest.mark.parametrize("text", ["²", "٣", "+5", "-1", "1_0"])
def test_server_answers_400_to_a_non_ascii_header_length(cloud: Any, text: str) -> None:
    g = cloud.models["alexnet"]
    x = uniform_feeds(g, 0)["input"]
    inp = {"name": "input", "datatype": "FP32", "shape": list(x.shape), "parameters": {"binary_data_size": x.nbytes}}
    head = json.dumps({"inputs": [inp]}).encode()
    headers = {**AUTH, "Inference-Header-Content-Length": text.encode("utf-8")}
    with httpx.Client(base_url=cloud.url, timeout=30.0) as http:
        r = http.post("/v2/models/alexnet/infer", content=head + x.tobytes(), headers=headers)  # type: ignore[arg-type]
        assert r.status_code == 400, r.text
        assert "Inference-Header-Content-Length" in r.json()["error"]
        assert http.get("/v2/health/ready").status_code == 200  # and it keeps serving


class _RewritingFront(InferenceFront):
    """An ASGI front before a real app that replaces one response header of every inference answer."""

    def __init__(self, app: Any, header: bytes, value: bytes) -> None:
        super().__init__(app)
        self.header, self.value = header, value

    async def infer(self, scope: Any, receive: Any, send: Any) -> None:
        async def rewrite(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, self.value if k.lower() == self.header else v) for k, v in message["headers"]]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, rewrite)


@pytest.mark.parametrize("value", ["²".encode(), "٣".encode(), b"-1"])
def test_client_types_a_bad_response_header_and_the_session_falls_back(session_models: Any, value: bytes) -> None:
    """The one fault that used to lose an inference: an untyped ValueError escaped ``session.run``."""
    from jointdnn_edge.server import BackgroundServer, create_app

    g = session_models["alexnet"]
    feeds = uniform_feeds(g, 5)
    front = _RewritingFront(create_app({"alexnet": g}, threads=1), b"inference-header-content-length", value)
    with BackgroundServer(front) as server, CloudClient(server.url, retries=0) as client:
        with pytest.raises(RemoteError):
            client.infer_slice("alexnet", 0, 20, codec.encode(feeds))
        client.mark_up()  # the failure above marked the cloud down; the session should try it again
        schedule = [(0, 9, "mobile"), (10, 20, "cloud")]
        with JointSession(g, client, schedule=schedule, executor=executor_for(g, threads=1)) as session:
            out = session.run(feeds)
            trace = session.last_trace
    assert trace is not None and trace.fallback is not None  # the cloud step failed and ran here instead
    assert_close(out, executor_for(g, threads=1).run_model(g, feeds))


def _strict_json(text: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_outputs_never_make_invalid_json(cloud: Any) -> None:
    """A NaN in an output asked for as JSON travels as binary data; the JSON part stays strict JSON."""
    g = cloud.models["alexnet"]
    x = uniform_feeds(g, 1)["input"].copy()
    x.reshape(-1)[::7] = np.nan  # NaN in, NaN out (convolutions propagate it)
    want = executor_for(g, threads=1).run_model(g, {"input": x})["prob"]
    assert np.isnan(want).any()
    inp = {"name": "input", "datatype": "FP32", "shape": list(x.shape), "parameters": {"binary_data_size": x.nbytes}}
    head = json.dumps({"inputs": [inp], "outputs": [{"name": "prob", "parameters": {"binary_data": False}}]}).encode()
    headers = {**AUTH, "Inference-Header-Content-Length": str(len(head))}
    with httpx.Client(base_url=cloud.url, timeout=30.0) as http:
        r = http.post("/v2/models/alexnet/infer", content=head + x.tobytes(), headers=headers)
    assert r.status_code == 200, r.text
    n = int(r.headers.get("Inference-Header-Content-Length", len(r.content)))
    header = _strict_json(r.content[:n])
    (out,) = header["outputs"]
    assert "data" not in out and out["parameters"]["binary_data_size"] == want.nbytes
    got = np.frombuffer(r.content[n:], dtype=np.float32).reshape(want.shape)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert_close({"prob": np.nan_to_num(got)}, {"prob": np.nan_to_num(want)})


def test_finite_outputs_asked_for_as_json_stay_json(cloud: Any) -> None:
    g = cloud.models["alexnet"]
    x = uniform_feeds(g, 2)["input"]
    want = executor_for(g, threads=1).run_model(g, {"input": x})["prob"]
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}],
        "outputs": [{"name": "prob", "parameters": {"binary_data": False}}],
    }
    with httpx.Client(base_url=cloud.url, timeout=30.0) as http:
        r = http.post("/v2/models/alexnet/infer", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    (out,) = _strict_json(r.content)["outputs"]
    got = np.asarray(out["data"], dtype=np.float32).reshape(want.shape)
    assert_close({"prob": got}, {"prob": want})
    assert all(math.isfinite(v) for v in out["data"])


def test_split_response_header_is_strict_json(cloud: Any) -> None:
    """Timings and parameters of a split answer parse with a strict JSON parser."""
    g = cloud.models["alexnet"]
    frame = codec.encode(uniform_feeds(g, 3))
    blob = struct.pack("<I", len(frame)) + frame
    header = {
        "inputs": [
            {"name": P.FRAME_TENSOR, "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}}
        ],
        "parameters": {P.P_FIRST: 0, P.P_LAST: 20},
    }
    head = json.dumps(header).encode()
    with httpx.Client(base_url=cloud.url, timeout=30.0) as http:
        r = http.post(
            "/v2/models/alexnet/infer",
            content=head + blob,
            headers={**AUTH, "Inference-Header-Content-Length": str(len(head))},
        )
    assert r.status_code == 200, r.text
    n = P.parse_decimal(r.headers["Inference-Header-Content-Length"], "length")
    params = _strict_json(r.content[:n])["parameters"]
    assert all(math.isfinite(params[k]) for k in (P.R_COMPUTE, P.R_DECODE, P.R_ENCODE, P.R_LOAD))


def test_a_fixed_schedule_the_table_cannot_price_fails_when_the_session_is_made(session_models: Any) -> None:
    """Issue 12, item 10: a group longer than the cost table offers is refused up front, not in ``run()``."""
    from jointdnn_edge import ConfigError, CostTable

    g = session_models["alexnet"]
    costs = CostTable.from_layers([1.0] * g.n, [0.1] * g.n, max_group=4, **g.cost_skeleton())
    too_long = [(0, 3, "mobile"), (4, 9, "cloud"), (10, g.n - 1, "mobile")]  # 4..9 is 6 layers
    with pytest.raises(ConfigError, match=r"layers 4\.\.9 as one group on the cloud"):
        JointSession(g, None, costs, network="wifi", schedule=too_long)
    offered = [(a, min(a + 3, g.n - 1), "mobile") for a in range(0, g.n, 4)]
    with JointSession(g, None, costs, network="wifi", schedule=offered, executor=executor_for(g, threads=1)) as s:
        feeds = uniform_feeds(g, 4)
        assert_close(s.run(feeds), executor_for(g, threads=1).run_model(g, feeds))
        assert s.last_trace is not None and s.last_trace.schedule.latency_ms == pytest.approx(g.n * 1.0)


def test_inputs_in_another_dtype_are_cast_before_anything_is_sent(cloud: Any) -> None:
    """Issue 12, item 5: float64 data (any array made from a Python list) is cast, not sent to get a 422."""
    from jointdnn_edge import ExecutionError

    g = cloud.models["alexnet"]
    x32 = uniform_feeds(g, 6)["input"]
    want = executor_for(g, threads=1).run_model(g, {"input": x32})
    schedule = [(0, g.n - 1, "cloud")]
    with JointSession(g, cloud.client(), schedule=schedule, executor=executor_for(g, threads=1)) as session:
        out = session.run({"input": x32.astype(np.float64).tolist()})
        trace = session.last_trace
        assert trace is not None and trace.fallback is None and trace.steps[0].platform == "cloud"
        assert_close(out, want)
        with pytest.raises(ExecutionError, match="no safe cast"):
            session.run({"input": np.ones(x32.shape, dtype=np.complex64)})
        assert session.cloud is not None and session.cloud.available  # a bad input is no cloud failure


def test_warm_up_loads_the_local_ranges_of_every_schedule_the_table_may_answer_with(cloud: Any) -> None:
    """After warm_up, an inference under any schedule of the lookup table opens no runtime session."""
    from jointdnn_edge import CostTable
    from jointdnn_edge.models.ort_executor import OrtExecutor

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([1.0] * g.n, [0.1] * g.n, **g.cost_skeleton())
    executor = OrtExecutor(threads=1, cache_size=64)
    with JointSession(g, cloud.client(), costs, executor=executor, lut_cells=(4, 4, 1)) as session:
        session.warm_up(probe=False)
        lut = session.lookup_table
        schedules = [segments for segments, _, _ in lut.candidates]
        assert len(schedules) >= 2  # more than one schedule is optimal somewhere in the box
        held = executor.cached()
        for segments in schedules:
            runs = [(a, b, p) for a, b, p in segments]
            merged: list[list[Any]] = []
            for a, b, p in runs:
                if merged and merged[-1][2] == p:
                    merged[-1][1] = b
                else:
                    merged.append([a, b, p])
            for a, b, p in merged:
                executor.prepare(g, a, b if p == "mobile" else g.n - 1)  # a run here, or a cloud run's fallback
        assert executor.cached() == held  # every one was loaded already


@pytest.mark.parametrize("interval", [0.0, None])
def test_a_session_kept_local_measures_the_link_in_the_background(cloud: Any, interval: float | None) -> None:
    """Found by the network lab: all-mobile inferences measure nothing, so a session kept local by a slow link
    never noticed a faster one. Now it probes in the background every ``probe_interval_s``."""
    from jointdnn_edge import CostTable

    g = cloud.models["alexnet"]
    costs = CostTable.from_layers([0.01] * g.n, [1000.0] * g.n, **g.cost_skeleton())  # the cloud never pays
    client = cloud.client()
    with JointSession(g, client, costs, lut_cells=(2, 2, 1), probe_interval_s=interval) as session:
        before = client.estimator.taken()
        session.run(uniform_feeds(g, 7))
        trace = session.last_trace
        assert trace is not None and all(s.platform == "mobile" for s in trace.steps)
        session.wait_for_probe(30)
        taken = client.estimator.taken()
        new = {kind: taken[kind] - before[kind] for kind in taken}
        if interval is None:  # the first link check's one ping, no probe
            assert new == {"up": 0, "down": 0, "rtt": 1}
        else:
            # the probe's pings and transfers were measured beside it (counted as taken: on loopback a request faster
            # than the round trip estimate makes the client forget the round trip, so the samples held may be none)
            assert sum(new.values()) > 1


def test_a_stale_round_trip_gives_no_absurd_upload_bandwidth(cloud: Any) -> None:
    """Found by the network lab: after the round trip fell, upload samples (request time minus the stale round
    trip) claimed about 1000 Mbit/s on a 19 Mbit/s link. A request faster than the round-trip estimate now makes
    the client forget it (the next plan pings again), and an upload lost in the round trip's error is no
    bandwidth sample."""
    from jointdnn_edge.client import Emulation

    g = cloud.models["alexnet"]
    up_mbps = 20.0
    client = cloud.client(emulate=Emulation(up_mbps=up_mbps, down_mbps=200.0, rtt_ms=5.0))
    with client:
        for _ in range(8):
            client.estimator.add_rtt(0.5)  # measured when the link was slow: 500 ms
        first, last = 0, 5  # the model input: the largest tensor of the tiny AlexNet
        frame = codec.encode(
            {n: np.ones(g.tensor(n).shape, g.tensor(n).dtype) for n in g.slice_io(first, last)[0]}, codec="raw"
        )
        assert len(frame) > 32 * 1024  # an upload of about 20 ms at 20 Mbit/s
        for _ in range(6):
            client.infer_slice("alexnet", first, last, frame, codec="raw")
        assert client.estimator.rtt_ms is None  # shown stale by the first request: forgotten, to be pinged again
        up = client.estimator.up_mbps
        assert up is None or up < 2 * up_mbps, up  # never the absurd figure
