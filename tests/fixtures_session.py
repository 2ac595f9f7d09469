"""Fixtures for the server, transport, session and demo tests: real uvicorn servers on 127.0.0.1.

``cloud`` is one server for the whole run, in a background thread, serving
tiny zoo models (a chain, two DAGs, and a TFLite model) behind a bearer
token. ``spawn_server`` starts a server as a separate process
(:class:`jointdnn_edge.faults.ServeProcess`) that a test may kill. Nothing here targets
any address but 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

from jointdnn_edge.faults import ServeProcess
from jointdnn_edge.models.executor import Executor
from jointdnn_edge.models.graph import ModelGraph, uniform_feeds

TOKEN = "test-token-0123456789"
#: Limits of the shared server: small enough that tests can exceed them cheaply.
MAX_BODY = 4 << 20
MAX_JSON = 1 << 20
MAX_DECODED = 16 << 20


@dataclass
class Cloud:
    """The shared test server: its URL, token, models (by served name) and app."""

    url: str
    token: str
    models: dict[str, ModelGraph]
    app: Any

    def client(self, **kwargs: Any) -> Any:
        """A new :class:`CloudClient` of this server (with the token unless ``token=`` is given)."""
        from jointdnn_edge.client import CloudClient

        kwargs.setdefault("token", self.token)
        return CloudClient(self.url, **kwargs)


@pytest.fixture(scope="session")
def session_models() -> dict[str, ModelGraph]:
    """Tiny zoo models by served name: alexnet (chain), resnet and pix2pix (DAGs), alexnet_tflite."""
    from jointdnn_edge import zoo
    from jointdnn_edge.models import load_model

    return {
        "alexnet": zoo.load("alexnet", size="tiny"),
        "resnet": zoo.load("resnet", size="tiny"),
        "pix2pix": zoo.load("pix2pix", size="tiny"),
        "alexnet_tflite": load_model(zoo.build("alexnet", "tflite", size="tiny"), name="alexnet_tflite"),
    }


@pytest.fixture(scope="session")
def cloud(session_models: dict[str, ModelGraph]) -> Iterator[Cloud]:
    """A real uvicorn server on a free 127.0.0.1 port for the whole test run."""
    from jointdnn_edge.server import BackgroundServer, Limits, create_app

    limits = Limits(
        max_body_bytes=MAX_BODY, max_json_bytes=MAX_JSON, max_decoded_bytes=MAX_DECODED, max_concurrency=4, max_queue=64
    )
    app = create_app(session_models, token=TOKEN, limits=limits, threads=1)
    with BackgroundServer(app) as server:
        yield Cloud(server.url, TOKEN, session_models, app)


@pytest.fixture(scope="session")
def reference() -> Callable[[ModelGraph, Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """``reference(graph, feeds)``: the local whole-model outputs (the oracle of every split test)."""
    from jointdnn_edge.models.executor import executor_for

    executors: dict[int, Any] = {}

    def run(graph: ModelGraph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        ex = executors.setdefault(id(graph), executor_for(graph, threads=1))
        return ex.run_model(graph, feeds)

    return run


@pytest.fixture
def spawn_server() -> Iterator[Callable[..., ServeProcess]]:
    """``spawn_server(*serve_args)``: a server process, killed at the end of the test if still running."""
    started: list[ServeProcess] = []

    def spawn(*args: str, env: Mapping[str, str] | None = None) -> ServeProcess:
        p = ServeProcess(*args, env=env)
        started.append(p)
        return p.start()

    yield spawn
    for p in started:
        p.kill()


def assert_close(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> None:
    """Outputs equal up to the slicing tolerance (1e-5 relative to the output's largest magnitude)."""
    assert set(got) == set(want)
    for name, w in want.items():
        g = np.asarray(got[name])
        assert g.shape == w.shape and g.dtype == w.dtype, name
        scale = float(np.abs(w).max()) or 1.0
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def live_tensors_at(executor: Executor, g: ModelGraph, first: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded uniform feeds run locally through layers ``0..first-1``: all a slice starting at ``first`` may read."""
    env = dict(uniform_feeds(g, seed))
    if first > 0:
        env.update(executor.run(g, 0, first - 1, env))
    return env
