"""The LiteRT interpreter: where it comes from, how it is made, and what its operator failures mean.

The interpreter comes from ``ai_edge_litert.interpreter`` and, when only that
is installed, from ``tflite_runtime.interpreter`` (note: ``tflite-runtime``
2.14, the last release, needs ``numpy < 2``). Both the TFLite loader (which
probes a model once in LiteRT) and :class:`~.litert_executor.LiteRTExecutor`
use this module.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ModelError
from . import tflite_flatbuffer as tfb

__all__ = ["interpreter_module", "make_interpreter", "unresolved_op_error"]


def interpreter_module() -> Any:
    """The LiteRT interpreter module: ``ai_edge_litert.interpreter``, else ``tflite_runtime.interpreter``.

    Raises ImportError when neither is installed.
    """
    try:
        from ai_edge_litert import interpreter as mod
    except ImportError:
        try:
            from tflite_runtime import interpreter as mod
        except ImportError:
            raise ImportError(
                "running TFLite models needs ai-edge-litert (or tflite-runtime; version 2.14 needs numpy < 2)"
            ) from None
    return mod


def make_interpreter(
    model: bytes, *, threads: int | None = None, xnnpack: bool = True, preserve_all_tensors: bool = False
) -> Any:
    """A LiteRT ``Interpreter`` over the flatbuffer ``model`` (tensors not yet allocated).

    ``xnnpack=False`` disables the default XNNPACK delegate. Raises ImportError
    without a runtime and ValueError for a flatbuffer LiteRT rejects.
    """
    mod = interpreter_module()
    kwargs: dict[str, Any] = {"model_content": bytes(model), "num_threads": threads}
    resolver = getattr(mod, "OpResolverType", None)
    if not xnnpack:
        if resolver is None:  # very old runtimes have no choice of resolver
            raise ImportError("this LiteRT runtime cannot disable its default delegates")
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    return mod.Interpreter(**kwargs)


def unresolved_op_error(model: Any, message: str) -> ModelError | None:
    """Map a LiteRT 'unresolved custom op' failure to a ModelError naming the operator."""
    m = re.search(r"unresolved custom op: ([^\s.]+)", message) or re.search(
        r"Didn't find (?:custom|op for builtin) (?:op(?:code)? )?(?:for name )?'([^']+)'", message
    )
    if m is None:
        return None
    sg = model.subgraphs[0]
    wanted = m.group(1)
    node = re.search(r"Node number (\d+) \(", message)
    ks = [k for k, op in enumerate(sg.operators or []) if tfb.op_code_name(model, op) == wanted]
    if node is not None and int(node.group(1)) in ks:
        k = int(node.group(1))
    elif ks:
        k = ks[0]
    else:
        return ModelError(f"the LiteRT runtime lacks an operator this model uses: {message.strip()}")
    return ModelError(f"operator {k} ({wanted}) is a custom operator the installed LiteRT runtime lacks")
