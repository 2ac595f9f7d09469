"""``serve --ray --autoscale MIN:MAX`` scales up under load: a 1..2 deployment grows to two replicas.

A local Ray instance of its own (not test_ray.py's two-node cluster, whose
endpoint holds this process's Ray connection) serves the tiny AlexNet with
``autoscale=(1, 2)``; client threads keep more requests in flight than a
replica's compute slots until a second replica answers (the
``X-JointDNN-Replica`` header). The oracle of every answer is the local
whole-model run. No timing is asserted: the time bound only guards a hang.
Skipped, with the reason, where Ray Serve cannot be imported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest

from fixtures_ray import ray_temp_dir
from fixtures_session import TOKEN
from jointdnn_edge.models.graph import uniform_feeds

pytest.importorskip("ray.serve", reason="ray[serve] is not installed (pip install 'jointdnn-edge[ray]')")

from jointdnn_edge.server._ray import REPLICA_HEADER, RayEndpoint

#: client threads: requests in flight, well above the target of one per replica's compute slot
CLIENTS = 6
#: only guards a hang: Serve's handle pushes its metrics every 10 s, then the upscale delay and a replica start
SCALE_UP_BOUND_S = 90.0


def _request(g: Any, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The whole-model inference request (JSON tensors) for ``feeds``."""
    return {
        "inputs": [
            {"name": t.name, "shape": list(t.shape), "datatype": "FP32", "data": feeds[t.name].ravel().tolist()}
            for t in g.inputs
        ]
    }


def _matches(answer: dict[str, Any], want: dict[str, np.ndarray]) -> bool:
    """Whether the answer's output tensors equal ``want`` (up to the slicing tolerance)."""
    got = {o["name"]: np.asarray(o["data"], dtype=np.float32).reshape(o["shape"]) for o in answer["outputs"]}
    return set(got) == set(want) and all(
        got[n].shape == w.shape and np.allclose(got[n], w, rtol=1e-5, atol=1e-5 * (float(np.abs(w).max()) or 1.0))
        for n, w in want.items()
    )


def test_autoscale_grows_to_two_replicas_under_load_nothing_lost_nothing_wrong(reference: Any) -> None:
    from jointdnn_edge import zoo

    g = zoo.load("alexnet", size="tiny")
    feeds = [uniform_feeds(g, seed) for seed in range(4)]
    requests = [_request(g, f) for f in feeds]
    wants = [reference(g, f) for f in feeds]
    counts: Counter[str] = Counter()
    replicas: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(url: str, k: int) -> None:
        """Posts inferences until ``stop``; a 503 (admission refused) is counted and the same request retried."""
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            i = k
            while not stop.is_set():
                try:
                    answer = http.post(f"{url}/v2/models/alexnet/infer", json=requests[i % 4])
                except httpx.HTTPError:
                    outcome, tag = "lost", None
                else:
                    tag = answer.headers.get(REPLICA_HEADER)
                    if answer.status_code == 503:
                        outcome = "refused"
                    elif answer.status_code != 200:
                        outcome = "lost"
                    else:
                        outcome = "right" if _matches(answer.json(), wants[i % 4]) else "wrong"
                with lock:
                    counts[outcome] += 1
                    if tag is not None and outcome == "right":
                        replicas.add(tag)
                if outcome != "refused":
                    i += 1

    # replica_cpus 0.5: two replicas fit on any machine of 1 CPU or more; each computes one request at a time
    # (max_concurrency 1), so six clients keep about six requests per replica in flight against a target of one.
    with ray_temp_dir("jda"):
        endpoint = RayEndpoint(
            ["zoo:alexnet"], size="tiny", autoscale=(1, 2), replica_cpus=0.5, port=0, token=TOKEN, preload=["whole"]
        )
        with endpoint:
            assert endpoint.replica_count() == 1
            clients = [threading.Thread(target=client, args=(endpoint.url, k)) for k in range(CLIENTS)]
            started = time.monotonic()
            for t in clients:
                t.start()
            try:
                deadline = started + SCALE_UP_BOUND_S
                while time.monotonic() < deadline:
                    with lock:
                        if len(replicas) >= 2:
                            break
                    time.sleep(0.5)
                scaled_after_s = time.monotonic() - started
                running = endpoint.replica_count()
            finally:
                stop.set()
                for t in clients:
                    t.join(90)
    print(f"autoscale 1..2: second replica answered after {scaled_after_s:.1f} s; {dict(counts)}; {sorted(replicas)}")
    assert len(replicas) == 2, f"no second replica answered within {SCALE_UP_BOUND_S:g} s: {dict(counts)}"
    assert running == 2
    assert counts["wrong"] == 0 and counts["lost"] == 0 and counts["right"] > 0, dict(counts)
