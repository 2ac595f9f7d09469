"""An executor whose "device" is the cloud server: each layer range runs as one split request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import protocol as P
from ..errors import ConfigError, TransportError
from ._client import CloudClient, SliceResponse
from ._slices import SliceCall, check_range

if TYPE_CHECKING:
    from ..models.executor import PreparedRun
    from ..models.graph import ModelGraph

__all__ = ["RemoteExecutor"]


class RemoteExecutor:
    """The executor protocol (``docs``: :mod:`jointdnn_edge.models.executor`) over split requests to a cloud server.

    Each :meth:`run` sends the range's input tensors to the server as one
    activation frame (:meth:`CloudClient.infer_slice`) and returns the
    tensors it answers with, checked against the model (names, dtypes,
    shapes). :meth:`run_timed` also returns the compute time the server
    reports, without the network, the codecs, queueing or the first-time
    set-up of a range; the profiler uses it to profile the cloud side of a
    cost table on the cloud itself::

        costs = profile(graph, cloud_executor=RemoteExecutor(CloudClient(url, token=token)))

    ``cloud``: a :class:`CloudClient` (closed by :meth:`close` only when this
    executor created it from a URL; ``token`` goes with a URL). ``model``:
    the name the server serves the model under (default: ``graph.name`` of
    each call). ``codec``/``level``: the activation codec both ways
    (lossless). ``deadline_s``: per request (default: the client's
    timeout). ``check_digest``: send the model digest, so that a server
    holding another model (or the same file loaded with other options)
    refuses with :class:`~jointdnn_edge.RemoteError` 409 instead of timing
    something else. Failures raise the client's typed
    :class:`~jointdnn_edge.TransportError` subclasses; nothing is retried that the
    client would not retry. Thread-safe.
    """

    runtime = "remote"

    def __init__(
        self,
        cloud: CloudClient | str,
        model: str | None = None,
        *,
        token: str | None = None,
        codec: str = "auto",
        level: int = 1,
        deadline_s: float | None = None,
        check_digest: bool = True,
    ) -> None:
        from ..codec import CODECS

        if isinstance(cloud, str):
            cloud = CloudClient(cloud, token=token)
            self._owns_client = True
        else:
            if token is not None:
                raise ConfigError("token= goes with a URL; a CloudClient brings its own")
            self._owns_client = False
        if codec not in CODECS:
            raise ConfigError(f"unknown codec {codec!r}; choose one of {CODECS}")
        if deadline_s is not None and not (isinstance(deadline_s, (int, float)) and deadline_s > 0):
            raise ConfigError(f"deadline_s must be a positive number of seconds or None, got {deadline_s!r}")
        self.client: CloudClient = cloud
        self.model = model
        self.codec = codec
        self.level = int(level)
        self.deadline_s = None if deadline_s is None else float(deadline_s)
        self.check_digest = bool(check_digest)
        self._served: str | None = model

    def run_timed(
        self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], float]:
        """Run layers ``first..last`` on the server: ``(outputs, compute_ms)`` as the server measured it."""
        outputs, resp = self._call(graph, first, last, feeds)
        return outputs, resp.compute_ms

    def run(self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run layers ``first..last`` on the server; inputs and outputs named as ``graph.slice_io`` says."""
        return self._call(graph, first, last, feeds)[0]

    def run_model(self, graph: ModelGraph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The whole model on the server (one split request for every layer): outputs by model output name."""
        return self.run(graph, 0, graph.n - 1, feeds)

    def prepare(self, graph: ModelGraph, first: int, last: int) -> PreparedRun:
        """Layers ``first..last`` bound to this executor (nothing is loaded here: the server caches its sessions)."""
        from ..models.executor import PreparedRun

        check_range(graph, first, last)
        ins, outs = graph.slice_io(first, last)
        what = f"{self._name(graph)} layers {first}..{last} on {self.client.url}"
        return PreparedRun(lambda feeds: self.run(graph, first, last, feeds), list(ins), list(outs), what)

    def _name(self, graph: ModelGraph) -> str:
        return self.model if self.model is not None else graph.name

    def _call(
        self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], SliceResponse]:
        """One split call for layers ``first..last`` (:meth:`SliceCall.run`): the outputs and the response."""
        name = self._name(graph)
        result = SliceCall(graph, first, last).run(
            self.client,
            feeds,
            model=name,
            codec=self.codec,
            level=self.level,
            digest=P.model_digest(graph) if self.check_digest else None,
            deadline_s=self.deadline_s,
        )
        self._served = name
        return result

    def info(self) -> dict[str, Any]:
        """``runtime: "remote"``, the URL, codec, and what the server says of the model it ran (when reachable)."""
        out: dict[str, Any] = {
            "runtime": self.runtime,
            "url": self.client.url,
            "model": self._served,
            "codec": self.codec,
            "timing": "server-reported compute (jointdnn_compute_ms)",
        }
        try:
            server = self.client.server_metadata()
            out["server"] = {"name": server.get("name"), "version": server.get("version")}
            if self._served is not None:
                params = self.client.model_metadata(self._served).get("parameters") or {}
                out["server"].update({k[len("jointdnn_") :]: v for k, v in params.items() if k.startswith("jointdnn_")})
        except TransportError as e:
            out["server"] = f"unavailable: {e}"
        return out

    def close(self) -> None:
        """Close the client if this executor created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RemoteExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteExecutor({self.client.url!r}, model={self.model!r}, codec={self.codec!r})"
