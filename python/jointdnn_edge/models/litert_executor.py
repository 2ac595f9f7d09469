"""Running TFLite models and their slices with the LiteRT interpreter.

:class:`LiteRTExecutor` runs a :class:`~jointdnn_edge.models.tflite_model.TFLiteGraph`
or any layer range of it. Each range is rewritten into a standalone model once
(``graph.slice_bytes``) and its interpreter is kept in a bounded LRU cache.

The interpreter comes from :mod:`.litert_runtime` (``ai_edge_litert``, else
``tflite_runtime``).

XNNPACK
-------
LiteRT applies its XNNPACK delegate to float models by default. The executor
keeps it (``xnnpack=True``): it is the fast CPU path, and it is the only place
where MediaPipe's ``Convolution2DTransposeBias`` custom op is implemented, so
models such as selfie segmentation do not run without it. Slices stay
bit-exact with the whole model under XNNPACK because every slice keeps its
constant weights (weight-decoding ``DEQUANTIZE``/``DENSIFY`` ops travel with
the layer that uses them), so each operator gets the same XNNPACK kernel, with
the same packed weights, as in the whole model. ``xnnpack=False`` selects the
built-in kernels (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``), which
are bit-exact too.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, ExecutionError, ModelError
from ._session_cache import CachingExecutor, SessionCache, require_format
from .graph import ModelGraph
from .litert_runtime import interpreter_module, make_interpreter, unresolved_op_error
from .prepared import PreparedRun

__all__ = ["LiteRTExecutor"]


@dataclass
class _Session:
    """One cached interpreter with its I/O maps; ``lock`` serializes use (interpreters are not thread-safe)."""

    interp: Any
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, int]
    lock: threading.Lock = field(default_factory=threading.Lock)


class LiteRTExecutor(CachingExecutor):
    """Runs TFLite graphs and layer ranges of them in LiteRT, caching one interpreter per range.

    ``threads``: interpreter threads (``None``: LiteRT's default, one).
    ``xnnpack``: keep LiteRT's default XNNPACK delegate (see the module docstring).
    ``cache_size``: interpreters kept, least recently used evicted first.
    """

    runtime = "litert"

    def __init__(self, threads: int | None = None, *, xnnpack: bool = True, cache_size: int = 32) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        self.threads = threads
        self.xnnpack = xnnpack
        self._cache: SessionCache[_Session] = SessionCache(cache_size)

    # ----------------------------------------------------------------- public
    def info(self) -> dict[str, Any]:
        """Runtime name, module, version, thread count and delegate choice."""
        try:
            mod = interpreter_module()
        except ImportError:
            return {"runtime": self.runtime, "version": None, "threads": self.threads, "xnnpack": self.xnnpack}
        package = mod.__name__.split(".")[0]
        version = None
        try:
            from importlib.metadata import version as dist_version

            version = dist_version(package.replace("_", "-"))
        except Exception:  # metadata missing in vendored installs
            version = getattr(__import__(package), "__version__", None)
        return {
            "runtime": self.runtime,
            "module": mod.__name__,
            "version": version,
            "threads": self.threads if self.threads is not None else 1,
            "xnnpack": self.xnnpack,
        }

    def run(self, graph: ModelGraph, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run layers ``first..last`` of ``graph``: ``feeds`` holds the slice inputs by name, the result its outputs.

        Names and order follow ``graph.slice_io(first, last)``; extra entries
        in ``feeds`` are ignored, so a dict of every live tensor can be passed.
        """
        ins, outs = graph.slice_io(first, last)
        session = self._session(graph, (first, last), lambda: graph.slice_bytes(first, last))
        return self._invoke(graph, session, ins, outs, feeds, f"layers {first}..{last}")

    def run_model(self, graph: ModelGraph, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the whole model: ``feeds`` by model input name, result by model output name."""
        session = self._session(graph, "model", graph.to_bytes)
        ins = [t.name for t in graph.inputs]
        outs = [t.name for t in graph.outputs]
        return self._invoke(graph, session, ins, outs, feeds, "the whole model")

    def prepare(self, graph: ModelGraph, first: int, last: int) -> PreparedRun:
        """Layers ``first..last`` loaded and bound: a callable ``feeds -> outputs`` (what ``run`` does)."""
        ins, outs = graph.slice_io(first, last)
        session = self._session(graph, (first, last), lambda: graph.slice_bytes(first, last))
        what = f"layers {first}..{last}"
        return PreparedRun(
            lambda feeds: self._invoke(graph, session, ins, outs, feeds, what), list(ins), list(outs), what
        )

    # ---------------------------------------------------------------- helpers
    def _session(self, graph: ModelGraph, key: Any, model_bytes: Callable[[], bytes]) -> _Session:
        require_format(graph, "tflite", "LiteRTExecutor runs TFLite graphs")
        return self._cache.get_or_open(graph, key, lambda: self._open(graph, model_bytes()))

    def _open(self, graph: ModelGraph, model: bytes) -> _Session:
        try:
            interp = make_interpreter(model, threads=self.threads, xnnpack=self.xnnpack)
        except ImportError as e:
            raise ExecutionError(str(e)) from None
        except ValueError as e:
            raise ModelError(f"LiteRT rejects a slice of {graph.name!r}: {e}") from None
        try:
            interp.allocate_tensors()
        except RuntimeError as e:
            model_obj = getattr(graph, "_model", None)
            err = unresolved_op_error(model_obj, str(e)) if model_obj is not None else None
            raise (err or ExecutionError(f"LiteRT cannot prepare {graph.name!r}: {e}")) from None
        inputs = {d["name"]: d for d in interp.get_input_details()}
        outputs = {d["name"]: int(d["index"]) for d in interp.get_output_details()}
        return _Session(interp, inputs, outputs)

    def _invoke(
        self,
        graph: ModelGraph,
        session: _Session,
        ins: list[str],
        outs: list[str],
        feeds: Mapping[str, Any],
        what: str,
    ) -> dict[str, np.ndarray]:
        missing = [n for n in ins if n not in feeds]
        if missing:
            raise ExecutionError(f"{graph.name!r} {what}: missing inputs {missing}")
        interp = session.interp
        with session.lock:
            resized = False
            arrays = {}
            for name in ins:
                detail = session.inputs.get(name)
                if detail is None:
                    raise ExecutionError(f"{graph.name!r} {what}: the runtime model has no input {name!r}")
                want = np.dtype(detail["dtype"])
                x = np.asarray(feeds[name])
                if x.dtype != want:
                    if x.dtype.kind != want.kind:
                        raise ExecutionError(f"input {name!r} has dtype {x.dtype}, the model expects {want}")
                    x = x.astype(want)
                if tuple(x.shape) != tuple(detail["shape"]):
                    try:
                        interp.resize_tensor_input(detail["index"], list(x.shape))
                    except (RuntimeError, ValueError) as e:
                        raise ExecutionError(
                            f"input {name!r} has shape {x.shape}, the model expects {tuple(detail['shape'])}: {e}"
                        ) from None
                    detail["shape"] = np.array(x.shape, dtype=np.int32)
                    resized = True
                arrays[detail["index"]] = np.asarray(x, order="C")  # keeps 0-d inputs 0-d
            try:
                if resized:
                    interp.allocate_tensors()
                for index, x in arrays.items():
                    interp.set_tensor(index, x)
                # stateful ops (sequence RNNs) start from their initial state on every call
                interp.reset_all_variables()
                interp.invoke()
                result = {}
                for name in outs:
                    index = session.outputs.get(name)
                    if index is None:
                        raise ExecutionError(f"{graph.name!r} {what}: the runtime model has no output {name!r}")
                    result[name] = interp.get_tensor(index)
            except (RuntimeError, ValueError) as e:
                raise ExecutionError(f"LiteRT failed running {graph.name!r} {what}: {e}") from None
        return result
