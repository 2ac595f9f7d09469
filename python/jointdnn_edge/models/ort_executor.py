"""Running ONNX models and their slices with onnxruntime on the CPU.

Sessions are configured for reproducible, device-like measurements:
``intra_op_num_threads = threads`` (so a workstation can mimic a weak device
with ``threads=1`` or ``2``), one inter-op thread, sequential execution and
deterministic compute. The graph optimization level is a choice:

* ``"all"`` (the default) is what a deployment uses: operator fusions and
  onnxruntime's blocked (NCHWc) layouts, which is also why grouped layers
  can cost less than the sum of their parts (the JointDNN paper's point about
  profiling groups). A fusion cannot cross a slice boundary, so a cut can
  change the last bits of later results (see ``docs/models-onnx.md``);
* ``"basic"`` and ``"extended"`` apply fewer rewrites, but already fold
  batch norm into the preceding convolution, which a cut between them
  prevents; ``"disable"`` runs every node as written, and with it a model run
  as consecutive slices gives bit-identical outputs to the whole model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ExecutionError, ModelError
from ._session_cache import CachingExecutor, SessionCache, require_format
from .graph import ModelGraph
from .prepared import PreparedRun

__all__ = ["OPTIMIZATION_LEVELS", "OrtExecutor"]

#: Names accepted by ``OrtExecutor(optimization=...)``.
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


class OrtExecutor(CachingExecutor):
    """Runs ONNX graphs and layer ranges of them in onnxruntime, one cached session per range.

    ``threads``: intra-op threads (``None``: onnxruntime's default, one per
    physical core). ``optimization``: one of :data:`OPTIMIZATION_LEVELS`.
    ``providers``: execution providers (default CPU only). ``cache_size``:
    sessions kept, least recently used evicted first. ``spinning``: let idle
    worker threads spin (faster, but burns CPU between runs).
    """

    runtime = "onnxruntime"

    def __init__(
        self,
        threads: int | None = None,
        *,
        optimization: str = "all",
        providers: Sequence[str] | None = None,
        cache_size: int = 32,
        spinning: bool = True,
    ) -> None:
        if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        if optimization not in OPTIMIZATION_LEVELS:
            raise ConfigError(f"optimization must be one of {OPTIMIZATION_LEVELS}, got {optimization!r}")
        self.threads = None if threads is None else int(threads)
        self.optimization = optimization
        self.providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        self.spinning = spinning
        self._cache: SessionCache[PreparedRun] = SessionCache(cache_size)

    # ------------------------------------------------------------------ public
    def info(self) -> dict[str, Any]:
        """Runtime name and version, threads, providers and optimization level."""
        import onnxruntime as ort

        return {
            "runtime": self.runtime,
            "version": ort.__version__,
            "threads": self.threads if self.threads is not None else "default",
            "providers": list(self.providers),
            "optimization": self.optimization,
            "device": ort.get_device(),
        }

    def prepare(self, graph: ModelGraph, first: int, last: int) -> PreparedRun:
        """The cached session of layers ``first..last``, ready to call with feeds."""
        return self._get(graph, (first, last))

    def prepare_model(self, graph: ModelGraph) -> PreparedRun:
        """The cached session of the whole model."""
        return self._get(graph, "model")

    def run(self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run layers ``first..last`` of ``graph`` (see :mod:`jointdnn_edge.models.executor`)."""
        return self._get(graph, (first, last))(feeds)

    def run_model(self, graph: ModelGraph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the whole model: ``feeds`` by model input name, result by model output name."""
        return self._get(graph, "model")(feeds)

    # ----------------------------------------------------------------- helpers
    def _get(self, graph: ModelGraph, key: Any) -> PreparedRun:
        require_format(graph, "onnx", "OrtExecutor runs ONNX graphs")
        return self._cache.get_or_open(graph, key, lambda: self._open(graph, key))

    def _session_options(self) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if self.threads is not None:
            so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        so.use_deterministic_compute = True
        so.log_severity_level = 3  # errors only: slices legitimately trigger "unused initializer" notes
        if not self.spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _open(self, graph: ModelGraph, key: Any) -> PreparedRun:
        import onnxruntime as ort

        if key == "model":
            data = graph.to_bytes()
            ins, outs = [t.name for t in graph.inputs], [t.name for t in graph.outputs]
            what = f"{graph.name!r} (whole model)"
        else:
            first, last = key
            ins, outs = graph.slice_io(first, last)
            data = graph.slice_bytes(first, last)
            what = f"{graph.name!r} layers {first}..{last}"
        try:
            sess = ort.InferenceSession(data, sess_options=self._session_options(), providers=self.providers)
        except Exception as e:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"onnxruntime cannot load {what}: {_first_line(e)}") from None
        dtypes = {name: np.dtype(graph.tensor(name).dtype) for name in ins}

        def fn(feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
            arrays = {}
            for name in ins:
                x = np.asarray(feeds[name])
                want = dtypes[name]
                if x.dtype != want:
                    if x.dtype.kind != want.kind:
                        raise ExecutionError(f"{what}: input {name!r} has dtype {x.dtype}, the model expects {want}")
                    x = x.astype(want)
                arrays[name] = x
            try:
                values = sess.run(outs, arrays)
            except Exception as e:
                raise ExecutionError(f"onnxruntime failed running {what}: {_first_line(e)}") from None
            return dict(zip(outs, values))

        return PreparedRun(fn, list(ins), list(outs), what)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
