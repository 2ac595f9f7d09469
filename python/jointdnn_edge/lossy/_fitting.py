"""From an accuracy table to what planning and sending need: each row's tensor, and its option fitted as a spec.

The accuracy table (``jointdnn-edge accuracy --json``) names each row's cut
tensor and option; the planner numbers tensors (0 the model input, ``k + 1``
layer ``k``'s output) and the phone and the cloud need the fitted
:class:`LossySpec`. :func:`cut_tensors` maps names to numbers,
:func:`fit_table` fits every row's option on sample activations (the same
fit as the measurement when given the same samples), :func:`spec_for` finds
the spec of a row's option among fitted ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ._accuracy import channel_axis
from ._spec import LossySpec, fit, parse_option

if TYPE_CHECKING:
    from ..models.graph import ModelGraph

__all__ = ["cut_tensors", "fit_table", "spec_for"]


def _rows(accuracy: Any) -> list[Mapping[str, Any]]:
    rows = accuracy.get("rows") if isinstance(accuracy, Mapping) else accuracy
    if rows is None or isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise ConfigError("accuracy must be an accuracy table (a JSON object with 'rows') or its rows")
    rows = list(rows)
    if not all(isinstance(r, Mapping) and isinstance(r.get("cut"), str) and "option" in r for r in rows):
        raise ConfigError("every accuracy row needs a 'cut' tensor name and an 'option'")
    return rows


def cut_tensors(graph: ModelGraph, accuracy: Any) -> dict[str, int]:
    """The planner's number of every cut tensor the table names: 0 for the model's only input, ``k + 1`` for the
    only output of layer ``k``. :class:`ConfigError` for a tensor the cost table cannot price alone (another
    output of the same layer, one of several inputs) or one the model lacks."""
    producers = {t.name: layer.index for layer in graph.layers for t in layer.outputs}
    out: dict[str, int] = {}
    for cut in dict.fromkeys(r["cut"] for r in _rows(accuracy)):
        if cut in producers:
            layer = graph.layers[producers[cut]]
            if len(layer.outputs) != 1:
                raise ConfigError(f"cut {cut!r} is one of {len(layer.outputs)} outputs of layer {layer.index}")
            out[cut] = layer.index + 1
        elif [t.name for t in graph.inputs] == [cut]:
            out[cut] = 0
        else:
            raise ConfigError(f"model {graph.name!r} has no layer output {cut!r} (or it is one of several inputs)")
    return out


def _option_fields(option: Any) -> Mapping[str, Any] | None:
    """What a row's option says of the fitted spec: its ``describe()`` fields (None: only a label)."""
    return option if isinstance(option, Mapping) and "bits" in option else None


def spec_for(option: Any, specs: Iterable[LossySpec]) -> LossySpec | None:
    """The spec among ``specs`` that is the row's ``option``: the same :meth:`LossySpec.describe` fields when the
    row gives them, else the same recipe as the label (bits, granularity, channels kept); None if none is."""
    fields = _option_fields(option)
    for spec in specs:
        if fields is not None:
            if all(fields.get(k) == v for k, v in spec.describe().items()):
                return spec
            continue
        label = option.get("label") if isinstance(option, Mapping) else option
        recipe = parse_option(str(label))
        keep = spec.projection.k if spec.projection is not None else None
        if (recipe.bits, recipe.kept(spec.channels), recipe.bits and recipe.granularity) == (
            spec.bits,
            keep,
            spec.bits and spec.granularity,
        ):
            return spec
    return None


def fit_table(
    graph: ModelGraph,
    accuracy: Any,
    samples: Sequence[Mapping[str, Any]],
    *,
    executor: Any = None,
) -> dict[str, list[LossySpec]]:
    """Every row's option fitted on the cut tensor's activations for ``samples`` (model input feeds), by cut.

    The channel axis is the measurement's (axis 1 of a 4-D feature map,
    else the last); the clip method is the row's (default ``mse``).
    """
    from ..models.executor import executor_for

    if not samples:
        raise ConfigError("fit_table needs at least one sample input")
    rows = _rows(accuracy)
    tensors = cut_tensors(graph, rows)
    ex = executor if executor is not None else executor_for(graph, threads=1)
    out: dict[str, list[LossySpec]] = {}
    for cut, t in tensors.items():
        if t == 0:
            acts = [np.asarray(s[cut]) for s in samples]
        else:
            acts = [ex.run(graph, 0, t - 1, dict(s))[cut] for s in samples]
        axis = channel_axis(graph, acts[0].shape)
        for r in rows:
            if r["cut"] != cut:
                continue
            option = r["option"]
            label = option.get("label") if isinstance(option, Mapping) else option
            clip = option.get("clip", "mse") if isinstance(option, Mapping) else "mse"
            out.setdefault(cut, []).append(fit(acts, parse_option(str(label), clip=clip), axis=axis))
    return out
