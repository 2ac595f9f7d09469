"""The workstation side of an Android app: its lookup table and its model slices.

Both run wherever numpy and the SDK's tooling are installed (the
``jointdnn-edge android`` commands call them); :func:`build_lookup_table`
also runs on a phone, on the pure-Python planner.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, LookupTableError, SolverError
from ..planner import LookupTable, runs_of
from . import _planning


def export_slices(model_path: str, lut_path: str, out_dir: str) -> dict[str, Any]:
    """Write the mobile runs of a lookup table's schedules as standalone models, and their manifest.

    See ``jointdnn_edge.android.export_slices`` for the files and the manifest's fields.
    """
    from ..models import load_model

    graph = load_model(str(model_path))
    lut = LookupTable.load(str(lut_path))
    if lut.n != graph.n:
        raise LookupTableError(f"lookup table has {lut.n} layers, model {graph.name!r} has {graph.n}")
    os.makedirs(str(out_dir), exist_ok=True)
    runs = sorted({r for segs, _u, _k in lut.candidates for r in runs_of(segs)})
    ext = "tflite" if graph.format == "tflite" else "onnx"

    def describe(names: list[str]) -> list[dict[str, Any]]:
        return [{"name": n, "dtype": str(graph.tensor(n).dtype), "shape": list(graph.tensor(n).shape)} for n in names]

    manifest: dict[str, Any] = {"model": graph.name, "format": graph.format, "n": graph.n, "runs": []}
    for first, last, platform in runs:
        ins, outs = graph.slice_io(first, last)
        entry: dict[str, Any] = {"first": first, "last": last, "platform": platform}
        if platform == "mobile":
            entry["file"] = f"slice_{first}_{last}.{ext}"
            with open(os.path.join(str(out_dir), entry["file"]), "wb") as f:
                f.write(graph.slice_bytes(first, last))
        entry["inputs"], entry["outputs"] = describe(ins), describe(outs)
        manifest["runs"].append(entry)
    with open(os.path.join(str(out_dir), "slices.json"), "w", encoding="utf-8") as manifest_file:
        manifest_file.write(json.dumps(manifest, indent=1))
    return manifest


def build_lookup_table(costs_path: str, out_path: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Build a lookup table from a cost table file with ``LookupTable.build`` options, write it; its summary."""
    try:
        from ..costs import CostTable
    except ImportError as e:
        raise SolverError(f"building a lookup table needs numpy ({e})") from None
    opts = dict(options)
    for key in ("up_mbps", "down_mbps", "cloud_slowdown", "cells"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    if isinstance(opts.get("network"), Mapping):
        opts["network"] = _planning.radio_of(opts["network"])
    opts.pop("progress", None)
    table = CostTable.load(str(costs_path))
    try:
        lut = LookupTable.build(table, **opts)
    except TypeError as e:  # an unknown option
        raise ConfigError(f"bad lookup-table option: {e}") from None
    lut.save(str(out_path))
    return _planning.lut_summary(lut)
