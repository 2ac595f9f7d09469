"""The models a server serves: loaded once, at start-up, from what the operator named; looked up by name.

Requests never name files: a model name in a URL is only looked up here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import protocol as P
from ..errors import ConfigError, ModelError, ProtocolError

if TYPE_CHECKING:
    from ..models.executor import Executor
    from ..models.graph import ModelGraph, TensorInfo

__all__ = ["ModelRegistry", "ServedModel", "load_models"]

#: The one version every served model has.
VERSION = "1"


def load_models(
    specs: Iterable[str],
    *,
    size: str | None = None,
    merge_trivial: bool = False,
) -> list[ModelGraph]:
    """Models named on a command line: ``PATH``, ``NAME=PATH`` or ``zoo:NAME`` (``size`` applies to zoo models).

    Only the operator's command line names files; requests never do.
    """
    from .. import zoo
    from ..models import load_model

    graphs = []
    for spec in specs:
        if spec.startswith("zoo:"):
            graphs.append(zoo.load(spec[4:], size=size, merge_trivial=merge_trivial))
            continue
        name, sep, path = spec.partition("=")
        if not sep or not name or os.path.exists(spec):
            name, path = "", spec
        if not os.path.isfile(path):
            raise ModelError(f"no such model file: {path}")
        graphs.append(load_model(path, merge_trivial=merge_trivial, name=name or None))
    return graphs


class ServedModel:
    """One served model: its graph, the executor that runs it, its digest and its inputs and outputs by name."""

    def __init__(self, graph: ModelGraph, executor: Executor) -> None:
        self.graph = graph
        self.executor = executor
        self.digest = P.model_digest(graph)
        self.inputs: dict[str, TensorInfo] = {t.name: t for t in graph.inputs}
        self.outputs: list[str] = [t.name for t in graph.outputs]
        #: the values of all the model's inputs together (what a JSON request may carry at most)
        self.input_values = sum(math.prod(t.shape) for t in graph.inputs)


class ModelRegistry:
    """The served models by name, each with its executor (built here unless given)."""

    def __init__(
        self,
        models: Iterable[ModelGraph] | Mapping[str, ModelGraph],
        *,
        threads: int | None = None,
        optimization: str = "all",
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        from ..models.executor import executor_for

        items = list(models.items()) if isinstance(models, Mapping) else [(g.name, g) for g in models]
        self._models: dict[str, ServedModel] = {}
        for name, graph in items:
            if not name or "/" in name:
                raise ConfigError(f"model name {name!r} cannot be used in a URL path")
            if name in self._models:
                raise ConfigError(f"two models are named {name!r}; serve one under another name (NAME=PATH)")
            if executors is not None and name in executors:
                executor = executors[name]
            else:
                options: dict[str, Any] = {"cache_size": 128}
                if graph.format == "onnx":
                    options["optimization"] = optimization
                executor = executor_for(graph, threads=threads, **options)
            self._models[name] = ServedModel(graph, executor)
        if not self._models:
            raise ConfigError("create_app needs at least one model")

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model served as ``name`` (and ``version``, when given); :class:`ProtocolError` (404) otherwise."""
        model = self._models.get(name)
        if model is None:
            raise ProtocolError(404, f"unknown model {name!r}; this server has {sorted(self._models)}")
        if version is not None and version != VERSION:
            raise ProtocolError(404, f"model {name!r} has no version {version!r} (only {VERSION!r})")
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)
