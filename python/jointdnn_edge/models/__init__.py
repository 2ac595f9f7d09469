"""Models as layer graphs: loading, slicing and running them.

``load_model(path_or_bytes)`` reads an ONNX or TFLite model into a
:class:`ModelGraph` (layers in topological order, tensors, sizes, edges);
``executor_for(graph)`` gives an executor that runs the whole model or any
layer range of it (onnxruntime for ONNX, LiteRT for TFLite).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, ModelError
from .executor import Executor, PreparedRun, executor_for
from .graph import Layer, ModelGraph, TensorInfo, costs_from, output_names, uniform_feeds

__all__ = [
    "Executor",
    "Layer",
    "ModelGraph",
    "PreparedRun",
    "TensorInfo",
    "costs_from",
    "executor_for",
    "is_tflite",
    "load_model",
    "output_names",
    "uniform_feeds",
]

_TFLITE_MAGIC = b"TFL3"


def is_tflite(data: bytes) -> bool:
    """True when ``data`` carries the TFLite flatbuffer identifier ``TFL3`` at bytes 4..8."""
    return len(data) >= 8 and bytes(data[4:8]) == _TFLITE_MAGIC


def load_model(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | Any,
    *,
    batch_size: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    merge_trivial: bool = False,
    name: str | None = None,
) -> ModelGraph:
    """Load an ONNX or TFLite model (path, bytes, or ``onnx.ModelProto``) as a :class:`ModelGraph`.

    The format is recognised by content: TFLite flatbuffers carry ``TFL3`` at
    bytes 4..8, anything else must decode as ONNX. ``batch_size`` fixes a
    dynamic batch dimension (ONNX default 1); ``input_shapes`` fixes other
    dynamic dimensions by input name (ONNX). ``merge_trivial`` merges
    activations, batch norm and reshapes into the layer they follow (the
    default is one layer per operator). Raises :class:`ModelError` for files
    that cannot be read, unknown formats and unsupported models,
    :class:`ConfigError` for a ``source`` of another type and for options
    that are invalid in themselves (``batch_size`` below 1, ``input_shapes``
    for TFLite).
    """
    if name is None and isinstance(source, (str, os.PathLike)):
        name = os.path.splitext(os.path.basename(os.fspath(source)))[0]
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise ModelError(f"{path}: {e.strerror or e}") from None
        if is_tflite(head):
            with open(path, "rb") as f:
                return _load_tflite(f.read(), batch_size, input_shapes, merge_trivial, name)
        if path.lower().endswith(".tflite"):
            raise ModelError(
                f"{path}: not a TFLite model (no 'TFL3' identifier at bytes 4-8; truncated or of another format)"
            )
        from .onnx_model import load_onnx

        # ONNX from a path: onnx.load resolves external-data files beside the model
        try:
            return load_onnx(
                path, batch_size=batch_size, input_shapes=input_shapes, merge_trivial=merge_trivial, name=name
            )
        except ModelError as e:
            if str(e).startswith(path):
                raise
            raise ModelError(f"{path}: {e}") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ModelError("empty model data")
        if is_tflite(data):
            return _load_tflite(data, batch_size, input_shapes, merge_trivial, name)
        from .onnx_model import load_onnx

        return load_onnx(data, batch_size=batch_size, input_shapes=input_shapes, merge_trivial=merge_trivial, name=name)
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        onnx = None  # type: ignore[assignment]
    if onnx is not None and isinstance(source, onnx.ModelProto):
        from .onnx_model import load_onnx

        return load_onnx(
            source, batch_size=batch_size, input_shapes=input_shapes, merge_trivial=merge_trivial, name=name
        )
    raise ConfigError(f"load_model takes a path, bytes or an onnx.ModelProto, not {type(source).__name__}")


def _load_tflite(
    data: bytes,
    batch_size: int | None,
    input_shapes: Mapping[str, Sequence[int]] | None,
    merge_trivial: bool,
    name: str | None,
) -> ModelGraph:
    from .tflite_model import load_tflite

    kwargs: dict[str, Any] = {"batch_size": batch_size, "merge_trivial": merge_trivial}
    if name is not None:
        kwargs["name"] = name
    if input_shapes:
        if "input_shapes" not in inspect.signature(load_tflite).parameters:
            raise ConfigError("input_shapes is not supported for TFLite models (use batch_size)")
        kwargs["input_shapes"] = input_shapes
    return load_tflite(data, **kwargs)
