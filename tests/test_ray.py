"""The endpoint on Ray Serve (``serve --ray``): two Ray nodes on this machine, real requests, a replica killed.

One Ray cluster of two nodes (each its own raylet and object store, 1 CPU
each, started by Ray's own ``ray.cluster_utils.Cluster``) serves the whole
module: a deployment of two 1-CPU replicas must put one on each node. The
oracle of every answer is the local whole-model run. The command test starts
``jointdnn-edge serve --ray`` (a local Ray instance of its own) and stops it
with Ctrl-C. Skipped, with the reason, where Ray Serve cannot be imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fixtures_ray import ray_temp_dir
from fixtures_session import TOKEN, assert_close
from jointdnn_edge import ConfigError
from jointdnn_edge.client import CloudClient
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.models.graph import uniform_feeds
from jointdnn_edge.session import JointSession

pytest.importorskip("ray.serve", reason="ray[serve] is not installed (pip install 'jointdnn-edge[ray]')")

from jointdnn_edge.server._ray import REPLICA_HEADER, RayEndpoint, parse_autoscale

M, C = "mobile", "cloud"
#: alexnet (tiny) schedules with cloud steps: whole model, a tail, two cloud runs between phone runs
SCHEDULES = [[(0, 20, C)], [(0, 6, M), (7, 20, C)], [(0, 2, M), (3, 7, C), (8, 12, M), (13, 17, C), (18, 20, M)]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two Ray nodes on this machine (1 CPU each), torn down after the module."""
    from ray.cluster_utils import Cluster

    with ray_temp_dir("jdr", grace_s=0) as temp:  # the cluster writes its address under Ray's temp dir
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": temp, "include_dashboard": False})
        try:
            c.add_node(num_cpus=1)
            c.wait_for_nodes()
            yield c
        finally:
            c.shutdown()


@pytest.fixture(scope="module")
def endpoint(cluster: Any) -> Iterator[RayEndpoint]:
    """The endpoint with two replicas (1 CPU each, so one per node), behind the test token."""
    with RayEndpoint(["zoo:alexnet"], size="tiny", address=cluster.address, replicas=2, port=0, token=TOKEN) as ep:
        yield ep


def _replicas_answering(url: str, n: int) -> set[str]:
    """The ``X-JointDNN-Replica`` tags of ``n`` health requests (node id/pid of the replica that answered)."""
    with httpx.Client(timeout=30) as http:
        return {http.get(f"{url}/v2/health/ready").headers[REPLICA_HEADER] for _ in range(n)}


def _inferences_answering(url: str, phones: int = 6, each: int = 6) -> set[str]:
    """The replica tags of ``phones`` x ``each`` concurrent whole-model inferences (JSON tensors)."""
    from concurrent.futures import ThreadPoolExecutor

    from jointdnn_edge import zoo

    g = zoo.load("alexnet", size="tiny")
    inputs = [
        {"name": t.name, "shape": list(f.shape), "datatype": "FP32", "data": f.ravel().tolist()}
        for t, f in ((t, uniform_feeds(g, 0)[t.name]) for t in g.inputs)
    ]

    def phone(_: int) -> set[str]:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            answers = [http.post(f"{url}/v2/models/alexnet/infer", json={"inputs": inputs}) for _ in range(each)]
        assert all(a.status_code == 200 for a in answers)
        return {a.headers[REPLICA_HEADER] for a in answers}

    with ThreadPoolExecutor(phones) as pool:
        return set().union(*pool.map(phone, range(phones)))


def test_replicas_on_both_nodes_answer(endpoint: RayEndpoint, cluster: Any) -> None:
    import ray

    assert endpoint.replica_count() == 2
    # the proxy prefers the replicas of its own node while they have room: a concurrent load reaches both
    tags = _inferences_answering(endpoint.url)
    nodes = {t.split("/")[0] for t in tags}
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(tags) == 2 and nodes == alive and len(alive) == 2


def test_whole_and_split_inference_match_local(endpoint: RayEndpoint, reference: Any) -> None:
    from jointdnn_edge import zoo

    g = zoo.load("alexnet", size="tiny")
    client = CloudClient(endpoint.url, token=TOKEN)
    for seed in range(3):
        feeds = uniform_feeds(g, seed)
        want = reference(g, feeds)
        assert_close(client.infer("alexnet", feeds), want)
        for schedule in SCHEDULES:
            with JointSession(g, client, schedule=schedule, executor=executor_for(g, threads=1)) as s:
                out = s.run(feeds)
                trace = s.last_trace
            assert trace is not None and trace.fallback is None
            assert_close(out, want)
    with httpx.Client(timeout=30) as http:  # the same routes and auth as under uvicorn
        assert http.get(f"{endpoint.url}/v2/models/alexnet").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        meta = http.get(f"{endpoint.url}/v2/models/alexnet", headers=auth)
        assert meta.status_code == 200 and meta.json()["name"] == "alexnet"
        assert http.get(f"{endpoint.url}/v2/models/nosuch/ready", headers=auth).status_code == 404


def test_tritonclient_speaks_to_the_ray_endpoint(endpoint: RayEndpoint, reference: Any) -> None:
    """A third-party Open Inference Protocol client (tritonclient, binary tensors) through Ray's proxy: the same
    answers, bit for bit, as a local run of the same runtime session."""
    import tritonclient.http as th

    from jointdnn_edge import zoo

    g = zoo.load("alexnet", size="tiny")
    (inp,), (out,) = g.inputs, g.outputs
    x = uniform_feeds(g, 11)
    client = th.InferenceServerClient(endpoint.url.removeprefix("http://"))
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.is_server_live() and client.is_model_ready("alexnet", headers=auth)
        tin = th.InferInput(inp.name, list(inp.shape), "FP32")
        tin.set_data_from_numpy(x[inp.name], binary_data=True)
        result = client.infer(
            "alexnet", [tin], outputs=[th.InferRequestedOutput(out.name, binary_data=True)], headers=auth
        )
        assert np.array_equal(result.as_numpy(out.name), reference(g, x)[out.name])
    finally:
        client.close()


def test_replica_killed_under_load_is_replaced_nothing_lost_nothing_wrong(
    endpoint: RayEndpoint, reference: Any
) -> None:
    from jointdnn_edge import zoo

    g = zoo.load("alexnet", size="tiny")
    inputs = [uniform_feeds(g, seed) for seed in range(4)]
    wants = [reference(g, f) for f in inputs]
    before = _replicas_answering(endpoint.url, 20)
    victim = int(sorted(before)[0].split("/")[1])
    stop = threading.Event()
    results = {"right": 0, "wrong": 0, "lost": 0, "fallbacks": 0}
    lock = threading.Lock()

    def phone(k: int) -> None:
        client = CloudClient(endpoint.url, token=TOKEN, timeout=20)
        with JointSession(g, client, schedule=SCHEDULES[k % 2], executor=executor_for(g, threads=1)) as s:
            i = 0
            while not stop.is_set():
                feeds, want = inputs[i % 4], wants[i % 4]
                i += 1
                try:
                    out = s.run(feeds)
                except Exception:
                    with lock:
                        results["lost"] += 1
                    continue
                ok = all(np.allclose(out[n], want[n], rtol=1e-4, atol=1e-5) for n in want)
                with lock:
                    results["right" if ok else "wrong"] += 1
                    results["fallbacks"] += s.last_trace is not None and s.last_trace.fallback is not None

    phones = [threading.Thread(target=phone, args=(k,)) for k in range(3)]
    for t in phones:
        t.start()
    try:
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 90
        replaced = False
        while time.monotonic() < deadline and not replaced:
            time.sleep(0.5)
            now = _replicas_answering(endpoint.url, 8) if endpoint.replica_count() == 2 else set()
            replaced = len(now) == 2 and all(int(t.split("/")[1]) != victim for t in now)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in phones:
            t.join(60)
    assert replaced, "Ray did not replace the killed replica within 90 s"
    print("replica kill:", results)
    assert results["wrong"] == 0 and results["lost"] == 0 and results["right"] > 0, results


def test_rayservice_manifest_is_a_valid_serve_config_whose_builder_serves(endpoint: RayEndpoint) -> None:
    import yaml
    from ray import serve
    from ray.serve.schema import ServeDeploySchema

    manifest = yaml.safe_load((Path(__file__).parents[1] / "deploy" / "rayservice.yaml").read_text())
    config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    (app,) = config.applications
    assert app.import_path == "jointdnn_edge.server:ray_app"
    # the builder with the manifest's args, on this cluster's models and no CPU of its own (both are taken)
    args = {**app.args, "models": ["zoo:alexnet"], "size": "tiny", "replica_cpus": 0, "preload": ["whole"]}
    from jointdnn_edge.server import ray_app

    serve.run(ray_app(args), name="built", route_prefix="/built")
    try:
        with httpx.Client(timeout=30) as http:
            assert http.get(f"{endpoint.url}/built/v2/health/ready").status_code == 200
        assert CloudClient(f"{endpoint.url}/built").model_metadata("alexnet")["name"] == "alexnet"
    finally:
        serve.delete("built")


def test_autoscale_spec_parsing() -> None:
    assert parse_autoscale("1:4") == (1, 4) and parse_autoscale("0:1") == (0, 1)
    for bad in ("4:1", "0:0", "2", "a:b", "-1:2"):
        with pytest.raises(ConfigError):
            parse_autoscale(bad)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command_starts_local_ray_and_tears_it_down_on_ctrl_c(tmp_path: Path, reference: Any) -> None:
    from jointdnn_edge import zoo

    # the command starts Ray in our RAY_TMPDIR: ray_temp_dir checks, on leaving, that it left no process there
    with ray_temp_dir("jdc"):
        port = _free_port()
        env = {**os.environ, "JOINTDNN_EDGE_TOKEN": TOKEN}  # RAY_TMPDIR: ours
        command = [
            sys.executable,
            "-c",
            "from jointdnn_edge.cli import main; main()",
            "serve",
            "zoo:alexnet",
            "--size",
            "tiny",
            "--ray",
        ]
        command += ["--replicas", "1", "--port", str(port), "--log-level", "warning"]
        log = (tmp_path / "serve.log").open("w+")
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()[-3000:]
                time.sleep(0.5)
            g = zoo.load("alexnet", size="tiny")
            feeds = uniform_feeds(g, 1)
            assert_close(CloudClient(url, token=TOKEN).infer("alexnet", feeds), reference(g, feeds))
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0, Path(log.name).read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def test_ray_options_need_ray() -> None:
    from typer.testing import CliRunner

    from jointdnn_edge.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["serve", "zoo:alexnet", "--replicas", "2"]).exit_code == 2
    assert runner.invoke(app, ["serve", "zoo:alexnet", "--ray", "--workers", "2"]).exit_code == 2
    assert runner.invoke(app, ["serve", "zoo:alexnet", "--ray", "--autoscale", "3:1"]).exit_code == 1
