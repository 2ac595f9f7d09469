"""The executor protocol: run a model, or any layer range of it, on this machine.

An executor turns a :class:`~jointdnn_edge.models.graph.ModelGraph` and a layer
range into outputs. Backends:

* :class:`~jointdnn_edge.models.ort_executor.OrtExecutor` (onnxruntime, CPU) for
  ``graph.format == "onnx"``;
* :class:`~jointdnn_edge.models.litert_executor.LiteRTExecutor` (LiteRT) for
  ``graph.format == "tflite"``;
* :class:`~jointdnn_edge.client.RemoteExecutor` runs the ranges on a
  jointdnn-edge cloud server instead (split requests), for profiling the
  cloud side of a cost table.

:func:`executor_for` picks one by the graph's format. Every backend caches
one runtime session per (graph, range) in a bounded LRU, so running the same
slices again (every inference of a session, every repeat of the profiler) pays
the slicing and session set-up once.

Contract (what the profiler and the session layer rely on):

``run(graph, first, last, feeds) -> dict[str, ndarray]``
    Runs layers ``first..last``. ``feeds`` maps the slice inputs (the names
    ``graph.slice_io(first, last)[0]``) to arrays; extra entries are ignored,
    so a dict of every live tensor can be passed. The result maps the slice
    outputs (``graph.slice_io(first, last)[1]``) to arrays. Raises
    :class:`~jointdnn_edge.ExecutionError` when inputs are missing or the
    runtime fails, :class:`~jointdnn_edge.ModelError` when the runtime cannot
    load the slice.
``run_model(graph, feeds) -> dict[str, ndarray]``
    The whole model, by model input and output names.
``info() -> dict``
    ``runtime`` (name), ``version``, ``threads`` and backend details
    (``providers`` and optimization level for onnxruntime).
``prepare(graph, first, last)`` (optional)
    A :class:`PreparedRun`: the cached session bound to the range, callable
    with ``feeds``; what ``run`` does minus the per-call look-ups. The
    profiler uses it when present.
``run_timed(graph, first, last, feeds) -> (outputs, compute_ms)`` (optional)
    ``run`` plus the compute time as the executor itself measured it; the
    profiler times such an executor by it instead of the wall clock (a
    remote executor reports the server's compute, without the network).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from .prepared import PreparedRun

if TYPE_CHECKING:
    from .graph import ModelGraph

__all__ = ["EmulatedDevice", "Executor", "PreparedRun", "executor_for"]


@runtime_checkable
class Executor(Protocol):
    """What every backend offers (see the module docstring)."""

    runtime: str

    def run(self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run layers ``first..last``; inputs and outputs named as ``graph.slice_io`` says."""
        ...

    def run_model(self, graph: ModelGraph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the whole model."""
        ...

    def info(self) -> dict[str, Any]:
        """Runtime name, version, threads and backend details."""
        ...


class EmulatedDevice(abc.ABC):
    """Base of executors that make ``inner`` look like a slower device: what is not about speed is ``inner``'s.

    Subclasses time :meth:`run` and :meth:`run_model`; loading a slice ahead of use (:meth:`prepare`), the
    slice cache and the runtime's name pass through, so a session's warm-up preloads the real sessions.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.runtime = getattr(inner, "runtime", "unknown")

    def prepare(self, graph: Any, first: int, last: int) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
        """Load the slice's runtime session ahead of use (when ``inner`` can), so no inference pays for it; the
        returned run goes through this device's :meth:`run` (a prepared run of ``inner`` would skip the pacing)."""
        prepare = getattr(self.inner, "prepare", None)
        if callable(prepare):
            prepare(graph, first, last)
        return partial(self.run, graph, first, last)

    @abc.abstractmethod
    def run(self, graph: Any, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inner.run`` of layers ``first..last``, taking the emulated device's time."""

    @property
    def cache_size(self) -> int | None:
        """``inner``'s slice cache size (``None``: unknown)."""
        return getattr(self.inner, "cache_size", None)


def executor_for(graph: ModelGraph | str, threads: int | None = None, **options: Any) -> Executor:
    """A new executor for ``graph``'s format (or a format name: ``"onnx"``/``"tflite"``).

    ``threads`` bounds the runtime's compute threads (``None``: the runtime's
    default); ``options`` go to the backend's constructor. An unknown format
    or a bad option is a :class:`~jointdnn_edge.ConfigError`.
    """
    fmt = graph if isinstance(graph, str) else getattr(graph, "format", None)
    if fmt == "onnx":
        from .ort_executor import OrtExecutor

        return OrtExecutor(threads=threads, **options)
    if fmt == "tflite":
        from .litert_executor import LiteRTExecutor

        return LiteRTExecutor(threads=threads, **options)
    raise ConfigError(f"no executor for model format {fmt!r} (expected 'onnx' or 'tflite')")
