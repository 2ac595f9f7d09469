"""Profiling the cloud side of a cost table on a real server: :class:`RemoteExecutor`.

Oracles: the local runtimes' outputs for the same slices (onnxruntime and
LiteRT in this process), the groups a profile must offer (counted by hand),
the model digest computed locally, and ratios between two profiles whose
only difference is known: a server whose executor computes every run
``K`` times (:class:`SlowedExecutor`), and a client whose link adds a round
trip far longer than any group's compute. No test compares a time with a
fixed number of milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures_session import TOKEN, assert_close, live_tensors_at
from jointdnn_edge import ExecutionError, RemoteError, RemoteExecutor, plan, profile, zoo
from jointdnn_edge.client import CloudClient, Emulation
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.protocol import model_digest


def _offered(n: int, max_group: int) -> np.ndarray:
    """The groups i..j a profile with ``max_group`` measures: j - i < max_group (the rest stay inf)."""
    i, j = np.indices((n, n))
    return (j >= i) & (j - i < max_group)


def _cloud_profile(graph: Any, remote: RemoteExecutor, max_group: int, repeats: int = 2) -> Any:
    return profile(graph, executor_for(graph, threads=1), max_group=max_group, repeats=repeats,
                   cloud_executor=remote, progress=False)  # fmt: skip


@pytest.mark.parametrize(
    "name, first, last",
    [
        ("alexnet", 0, 20),
        ("alexnet", 3, 11),
        ("resnet", 10, 30),  # cuts inside residual blocks: several live tensors each way
        ("pix2pix", 4, 33),  # U-Net skips cross the range
        ("alexnet_tflite", 5, 14),
    ],
)
def test_remote_executor_runs_slices_like_the_local_runtime(cloud: Any, name: str, first: int, last: int) -> None:
    g = cloud.models[name]
    local = executor_for(g, threads=1)
    env = live_tensors_at(local, g, first, 21)
    want = local.run(g, first, last, env)
    with RemoteExecutor(cloud.client()) as remote:
        got, compute_ms = remote.run_timed(g, first, last, env)
        assert list(got) == g.slice_io(first, last)[1]
        assert_close(got, want)
        assert np.isfinite(compute_ms) and compute_ms >= 0
        prepared = remote.prepare(g, first, last)
        assert prepared.input_names == g.slice_io(first, last)[0]
        assert_close(prepared(env), want)


def test_remote_executor_whole_model_and_refusals(cloud: Any, reference: Any) -> None:
    g = cloud.models["alexnet"]
    feeds = uniform_feeds(g, 5)
    with RemoteExecutor(cloud.url, token=TOKEN, codec="raw") as remote:
        # the chain's slices reproduce the whole model bit for bit: nothing lossy on the way
        assert np.array_equal(remote.run_model(g, feeds)["prob"], reference(g, feeds)["prob"])
        with pytest.raises(ExecutionError, match="missing inputs"):
            remote.run(g, 0, 3, {})
        with pytest.raises(ExecutionError, match="outside"):
            remote.run(g, 4, 21, feeds)
        # the same architecture loaded with other options has other layers: the server refuses to time it
        merged = zoo.load("alexnet", size="tiny", merge_trivial=True)
        assert merged.name == "alexnet" and model_digest(merged) != model_digest(g)
        with pytest.raises(RemoteError) as e:
            remote.run(merged, 0, 0, uniform_feeds(merged, 0))
        assert e.value.status == 409
        with RemoteExecutor(cloud.client(), "nope") as unknown, pytest.raises(RemoteError) as e:
            unknown.run(g, 0, 0, feeds)
        unknown.client.close()
        assert e.value.status == 404
    with pytest.raises(ValueError, match="token"):
        RemoteExecutor(cloud.client(), token=TOKEN)


def test_profile_measures_the_cloud_on_the_server(cloud: Any) -> None:
    g = cloud.models["resnet"]
    with RemoteExecutor(cloud.client()) as remote:
        costs = _cloud_profile(g, remote, max_group=3)
    meta = costs.meta
    assert meta["cloud_source"] == "profiled" and meta["cloud_timing"] == "reported by the executor"
    rt = meta["cloud_runtime"]
    assert rt["runtime"] == "remote" and rt["url"] == cloud.url and rt["model"] == "resnet"
    # what the server says it ran: the digest is the one computed here, the runtime the fixture configured
    assert rt["server"]["digest"] == model_digest(g) and rt["server"]["runtime"] == "onnxruntime"
    assert rt["server"]["threads"] == 1 and rt["server"]["slowdown"] == 1.0
    offered = _offered(g.n, 3)
    cloud_ms = np.asarray(costs.cloud_ms)
    assert np.array_equal(np.isfinite(cloud_ms), offered)
    assert np.all(cloud_ms[offered] > 0)
    assert np.array_equal(np.isfinite(np.asarray(costs.mobile_ms)), offered)
    s = plan(costs, "wifi")
    assert s.segments[0][0] == 0 and s.segments[-1][1] == g.n - 1 and np.isfinite(s.latency_ms)


def test_profiled_cloud_times_follow_a_slowed_server() -> None:
    """A server K times slower profiles about K times slower, whichever way it is slowed.

    Two ways: an executor that computes every run K times
    (:class:`SlowedExecutor`; its repeats run on warm caches, so it costs
    somewhat less than K cold runs), and the server's ``slowdown`` (each
    computation stretched to K times its duration, sleep overshoot
    included). AlexNet at its small size, so that compute, not per-call
    overhead, dominates every group.
    """
    from jointdnn_edge.demo import SlowedExecutor
    from jointdnn_edge.server import BackgroundServer, create_app

    g = zoo.load("alexnet", size="small")
    k = 6.0
    apps = {
        "fast": create_app({"alexnet": g}, threads=1),
        "slowed executor": create_app(
            {"alexnet": g}, executors={"alexnet": SlowedExecutor(executor_for(g, threads=1), k)}
        ),
        "server slowdown": create_app({"alexnet": g}, threads=1, slowdown=k),
    }
    totals = {}
    for label, app in apps.items():
        with BackgroundServer(app) as server, RemoteExecutor(CloudClient(server.url)) as remote:
            costs = _cloud_profile(g, remote, max_group=2, repeats=3)
            remote.client.close()
        assert costs.meta["cloud_runtime"]["server"]["slowdown"] == (k if label == "server slowdown" else 1.0)
        cloud_ms = np.asarray(costs.cloud_ms)
        totals[label] = float(cloud_ms[np.isfinite(cloud_ms)].sum())
    ratios = {label: totals[label] / totals["fast"] for label in apps}
    assert k / 3 < ratios["slowed executor"] < 2 * k, ratios
    # sleeping overshoots by tens of microseconds, which matters for the smallest groups: a wider upper bound
    assert k / 2 < ratios["server slowdown"] < 3 * k, ratios


def test_profiled_cloud_times_exclude_the_network(cloud: Any) -> None:
    """A link that adds 15 ms to every request leaves the cloud profile within a small factor of a direct one.

    Had the profile timed requests by the wall clock, each of the 21 layers
    would have cost at least the 15 ms the emulation sleeps before sending,
    some 300 times what they compute here. Requests spaced out by the round
    trip do compute somewhat slower (colder caches on the server), hence a
    factor, not equality.
    """
    from jointdnn_edge import codec

    g = cloud.models["alexnet"]
    frame = codec.encode(uniform_feeds(g, 0))
    totals, walls = {}, {}
    for label, emulate in (("direct", None), ("far", Emulation(rtt_ms=15.0))):
        with RemoteExecutor(cloud.client(emulate=emulate)) as remote:
            costs = _cloud_profile(g, remote, max_group=1, repeats=3)
            # the round trip is really paid: the emulation sleeps that long before each request
            walls[label] = remote.client.infer_slice("alexnet", 0, 0, frame).wall_ms
            remote.client.close()
        totals[label] = float(np.trace(np.asarray(costs.cloud_ms)))
    assert walls["far"] >= 15.0
    assert 1 / 10 < totals["far"] / totals["direct"] < 10, (totals, walls)


def test_profile_command_with_a_cloud(cloud: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jointdnn_edge import CostTable
    from jointdnn_edge.cli import app

    out = tmp_path / "costs.json"
    args = ["profile", "zoo:alexnet", "--size", "tiny", "--max-group", "2", "--repeats", "1", "--threads", "1",
            "--cloud", cloud.url, "-o", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, args, env={"JOINTDNN_EDGE_TOKEN": TOKEN})
    assert res.exit_code == 0, res.output
    t = CostTable.load(out)
    assert t.meta["cloud_source"] == "profiled" and t.meta["cloud_timing"] == "reported by the executor"
    assert t.meta["cloud_runtime"]["server"]["digest"] == model_digest(cloud.models["alexnet"])
    assert np.array_equal(np.isfinite(np.asarray(t.cloud_ms)), _offered(21, 2))
    json.loads(out.read_text())
    # without the token the server refuses, and the command says so
    res = CliRunner().invoke(app, args, env={"JOINTDNN_EDGE_TOKEN": ""})
    assert res.exit_code == 1 and "missing bearer token" in res.output
    res = CliRunner().invoke(app, [*args, "--cloud-speedup", "4"], env={"JOINTDNN_EDGE_TOKEN": TOKEN})
    assert res.exit_code == 2 and "not both" in res.output
