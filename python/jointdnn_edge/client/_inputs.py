"""Inputs checked and cast before anything is sent: a request the server would refuse (422) is never made.

A cloud failure costs every session sharing a client its cloud (the circuit
opens); a wrong input is the caller's, and is a typed
:class:`~jointdnn_edge.ExecutionError` here, before any byte goes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import protocol as P
from ..errors import ExecutionError, ProtocolError, RemoteError

if TYPE_CHECKING:
    from ..models.graph import ModelGraph

__all__ = ["InputSpec", "as_model_dtype", "as_model_tensor", "check_inputs", "input_specs"]


def as_model_dtype(x: np.ndarray, dtype: Any, name: str) -> np.ndarray:
    """``x`` in the model's ``dtype``: cast within its kind (a list of Python floats is float64; a float32 model
    takes it), :class:`~jointdnn_edge.ExecutionError` across kinds (floats for an integer input)."""
    want = np.dtype(dtype)
    if x.dtype == want:
        return x
    if not np.can_cast(x.dtype, want, casting="same_kind"):
        raise ExecutionError(f"input {name!r} is {x.dtype}, the model expects {want} (no safe cast)")
    return x.astype(want)


def as_model_tensor(graph: ModelGraph, name: str, value: Any) -> np.ndarray:
    """``value`` as the model's tensor ``name``: its shape (ExecutionError otherwise) and its dtype (cast within
    kind, :func:`as_model_dtype`)."""
    x = np.asarray(value)
    want = graph.tensor(name)
    if tuple(x.shape) != tuple(want.shape):
        raise ExecutionError(f"input {name!r} has shape {x.shape}, model {graph.name!r} expects {tuple(want.shape)}")
    return as_model_dtype(x, want.dtype, name)


@dataclass(frozen=True)
class InputSpec:
    """One model input as the server describes it: numpy ``dtype`` (None: ``BYTES``) and ``shape`` (-1: any)."""

    name: str
    dtype: np.dtype | None
    shape: tuple[int, ...]


def input_specs(metadata: Mapping[str, Any]) -> list[InputSpec]:
    """The inputs of a model's metadata (``GET /v2/models/{model}``); RemoteError when it does not describe them."""
    specs = []
    try:
        entries = metadata.get("inputs")
        if not isinstance(entries, list):
            raise ProtocolError(502, "no 'inputs' list")
        for e in entries:
            datatype = e.get("datatype")
            dtype = None if datatype == "BYTES" else P.numpy_dtype(datatype)
            shape = e.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= -1 for d in shape):
                raise ProtocolError(502, f"input {e.get('name')!r} has shape {shape!r}")
            specs.append(InputSpec(str(e.get("name")), dtype, tuple(shape)))
    except (ProtocolError, AttributeError) as e:
        raise RemoteError(f"the cloud's model metadata is unusable: {e}", 200) from None
    return specs


def check_inputs(specs: Sequence[InputSpec], inputs: Mapping[str, Any], model: str) -> dict[str, np.ndarray]:
    """``inputs`` as arrays the model takes: every input present, none unknown, shapes matching, dtypes cast
    within their kind; :class:`~jointdnn_edge.ExecutionError` otherwise."""
    known = {s.name for s in specs}
    unknown = sorted(set(inputs).difference(known))
    missing = [s.name for s in specs if s.name not in inputs]
    if unknown or missing:
        raise ExecutionError(f"model {model!r} takes inputs {sorted(known)}; missing {missing}, unknown {unknown}")
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        x = np.asarray(inputs[spec.name])
        if len(x.shape) != len(spec.shape) or any(w not in (-1, d) for d, w in zip(x.shape, spec.shape)):
            raise ExecutionError(f"input {spec.name!r} has shape {x.shape}, model {model!r} expects {spec.shape}")
        if spec.dtype is None:  # numeric tensors only: the server's models take no strings
            raise ExecutionError(f"input {spec.name!r} of model {model!r} is BYTES, which this client does not send")
        out[spec.name] = as_model_dtype(x, spec.dtype, spec.name)
    return out
