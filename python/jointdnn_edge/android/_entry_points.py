"""Every function the Java facade calls, with its arguments and JSON replies (the bridge's contract).

Each one converts Java's arguments, delegates to the private modules of
this package, and records a failure for :func:`last_error`. Their names,
signatures and replies are what ``android_bridge/`` relies on: change them
together with the facade and :data:`API_VERSION`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from .. import __version__
from ..errors import CostTableError, LookupTableError
from ..planner import LookupTable
from ..planner import native_available as _native_available
from . import _frames, _handles, _planning, _sessions, _tools
from ._marshal import as_bytes, entry, finite, number, optional_number, parse_json, read_file

#: Version of this bridge's calling conventions; the Java facade checks it at start-up.
API_VERSION = 1


# ------------------------------------------------------------------- info
@entry
def version() -> str:
    """The SDK version, e.g. ``"0.1.0"``."""
    return __version__


@entry
def api_version() -> int:
    """:data:`API_VERSION`: the Java facade refuses to run against a different one."""
    return API_VERSION


@entry
def native_available() -> bool:
    """True when the native (Rust) planner runs; False: the pure-Python fallback (same decisions, slower)."""
    return _native_available()


@entry
def info() -> str:
    """JSON: SDK and bridge versions, which planner runs, whether numpy is importable, and the planner state."""
    try:
        import numpy  # noqa: F401

        has_numpy = True
    except ImportError:
        has_numpy = False
    return json.dumps(
        {
            "version": __version__,
            "api_version": API_VERSION,
            "native": _native_available(),
            "numpy": has_numpy,
            "python": ".".join(map(str, sys.version_info[:3])),
            "state": _planning.current().summary(),
        }
    )


# ------------------------------------------------------------------- planning
@entry
def load_costs(path: str) -> str:
    """Load a cost table file (``jointdnn-edge profile`` output) as the table :func:`decide` plans on.

    Returns JSON ``{"n", "phase", "chain", "names", "planner", "numpy"}``.
    A loaded lookup table stays loaded; both must have the same layer count.
    """
    data = read_file(path, "cost table", CostTableError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CostTableError(f"cost table {path} is not UTF-8 text") from None
    return load_costs_json(text)


@entry
def load_costs_json(text: str) -> str:
    """Like :func:`load_costs`, from the JSON text itself (e.g. read from an Android asset)."""
    return json.dumps(_planning.load_costs(parse_json(text, "cost table", dict, CostTableError)))


@entry
def load_lookup_table(path: str) -> str:
    """Load a lookup table file (``jointdnn-edge lut build`` output, same format on every platform).

    The radio (power model, round trip) and the cloud memory model
    (``cloud_keeps_tensors``) become the table's own. Returns
    JSON describing the table: ``n``, ``objective``, ``constraints``,
    ``radio``, the bandwidth and slowdown ranges, ``cells``, ``schedules``,
    ``costs_embedded``, ``planner``.
    """
    return load_lookup_table_bytes(read_file(path, "lookup table", LookupTableError))


@entry
def load_lookup_table_bytes(data: Any) -> str:
    """Like :func:`load_lookup_table`, from the file's bytes (e.g. an Android asset read into a ``byte[]``)."""
    return json.dumps(_planning.load_lookup_table(LookupTable.from_bytes(as_bytes(data, "lookup table"))))


@entry
def configure(options_json: str) -> str:
    """Set planner defaults from a JSON object; returns the whole configuration as JSON.

    Keys (all optional): ``radio`` (``"3g"``, ``"4g"``, ``"wifi"``,
    ``{"preset": "4g", "rtt_ms": 30}`` or ``{"alpha_up", "alpha_down",
    "beta", "rtt_ms"}``: the power model in mW per Mbit/s and mW, Eq. 21
    of the paper; either object may add ``burst_up_bytes`` and
    ``burst_down_bytes``, a shaped link's burst), ``objective`` (``"latency"``, ``"energy"`` or null: the
    lookup table's, else latency), ``plan_options`` (extra keyword arguments
    of :func:`~jointdnn_edge.plan`, e.g. ``{"cloud_keeps_tensors": false}``).
    Raises :class:`~jointdnn_edge.errors.ConfigError` for a bad option.
    """
    return json.dumps(_planning.configure(parse_json(options_json, "options", dict)))


@entry
def decide(
    up_mbps: float,
    down_mbps: float,
    battery_mj: float | None = None,
    deadline_ms: float | None = None,
    cloud_slowdown: float | None = 1.0,
    objective: str | None = None,
    cloud_budget_ms: float | None = None,
) -> str:
    """The schedule for this inference, as JSON (call it before every inference).

    ``up_mbps``/``down_mbps``: the bandwidth now; ``battery_mj``: the most
    mobile energy (mJ) this inference may use; ``deadline_ms``: its latency
    bound; ``cloud_budget_ms``: a bound on cloud time; ``cloud_slowdown``:
    how much slower than profiled the cloud is now. ``objective``:
    ``"latency"`` or ``"energy"`` (default: :func:`configure`'s, else the
    lookup table's, else latency).

    With a lookup table loaded, a bound left ``None`` is the table's own, and
    the table answers whenever the request is the one it was built for
    (objective, bounds, radio, options); anything else is an exact plan on
    the loaded cost table (or the one embedded in the table file). Either
    way the answer is the schedule :func:`~jointdnn_edge.plan` returns.

    JSON fields: those of :meth:`Schedule.to_dict` (``segments``,
    ``latency_ms``, ``mobile_energy_mj``, ``cloud_ms``, ``bytes_up``,
    ``bytes_down``, ``transfers``, ``switches``, ``objective``, ``exact``,
    ``solver``) plus ``runs`` (adjacent groups on one platform merged),
    ``pattern``, ``source`` (``"lut"`` or ``"plan"``), ``constraints`` (the
    bounds applied) and the conditions. Raises :class:`InfeasibleError` when
    no schedule meets the bounds, :class:`~jointdnn_edge.errors.ConfigError`
    for a bad argument or when nothing is loaded to plan on.
    """
    up = number(up_mbps, "up_mbps", positive=True)
    down = number(down_mbps, "down_mbps", positive=True)
    slowdown = 1.0 if cloud_slowdown is None else number(cloud_slowdown, "cloud_slowdown", positive=True)
    given = {
        "latency": optional_number(deadline_ms, "deadline_ms"),
        "energy": optional_number(battery_mj, "battery_mj"),
        "cloud": optional_number(cloud_budget_ms, "cloud_budget_ms"),
    }
    return _planning.decide(up, down, slowdown, given, objective)


@entry
def mobile_ranges() -> str:
    """JSON list of ``[first, last]``: every run of layers on the mobile in the loaded lookup table's schedules.

    These are the slices a plan-only app needs as standalone TFLite models
    (export them on the workstation with ``jointdnn-edge android export-slices``).
    An exact plan outside the table can produce other ranges.
    """
    return json.dumps([list(r) for r in _planning.mobile_ranges()])


@entry
def reset() -> None:
    """Forget the loaded tables and configuration, and close every open session and cloud client."""
    _planning.reset()
    _handles.close_all()


# ------------------------------------------------------------------- workstation tools
@entry
def export_slices(model_path: str, lut_path: str, out_dir: str) -> str:
    """Workstation side of plan-only mode: every run a lookup table's schedules use, ready for the app.

    For each run of layers in the table's stored schedules, writes the
    mobile runs as standalone models (``slice_<first>_<last>.tflite`` or
    ``.onnx``, inputs and outputs named and ordered as
    ``graph.slice_io`` says) into ``out_dir``, and returns (and writes as
    ``slices.json``) a manifest: ``model`` (the name the cloud server knows
    it by) and ``runs``, a list of ``{"first", "last", "platform", "file"
    (mobile runs), "inputs", "outputs"}`` with each tensor's ``name``,
    ``dtype`` and ``shape``. Bundle the directory in the app's assets. Needs
    numpy and the model's Python tooling (not for use on the phone); the
    command line is ``jointdnn-edge android export-slices``.
    """
    return json.dumps(_tools.export_slices(model_path, lut_path, out_dir), indent=1)


@entry
def build_lookup_table(costs_path: str, out_path: str, options_json: str | None = None) -> str:
    """Build a lookup table from a cost table file and write it to ``out_path`` (needs numpy).

    ``options_json``: keyword arguments of :meth:`LookupTable.build` as a
    JSON object (``objective``, ``network`` as a preset name or radio object,
    ``deadline_ms``, ``energy_budget_mj``, ``cloud_budget_ms``, ``up_mbps``,
    ``down_mbps``, ``cloud_slowdown`` as ``[lo, hi]``, ``cells`` as
    ``[up, down, slowdown]``, ``embed_costs``, ...). Usually done on the
    workstation (``jointdnn-edge android build-lut`` or ``jointdnn-edge lut
    build``); the pure-Python planner builds the same file on a phone, more
    slowly. Returns the table's summary as :func:`load_lookup_table` does
    (it does not load it). Raises :class:`~jointdnn_edge.errors.ConfigError`
    for a bad option.
    """
    options = parse_json(options_json, "options", dict)
    return json.dumps(_tools.build_lookup_table(costs_path, out_path, options))


# ------------------------------------------------------------------- codec
@entry
def encode_frame(
    tensors_json: str, blobs: Iterable[Any], codec: str | None = "auto", quantize_bits: int | None = None
) -> bytes:
    """One activation frame (``docs/wire-format.md``) holding the given tensors (needs numpy).

    ``tensors_json``: JSON list of ``{"name", "dtype", "shape"}`` (``dtype``
    one of the wire format's, ``codec.WIRE_DTYPES``); ``blobs``: one
    little-endian, C-order byte buffer per tensor (a Java ``byte[][]``).
    ``codec``: ``"auto"``, ``"raw"``, ``"zstd"``, ``"sparse"`` or ``"png"``;
    ``quantize_bits`` (1..16) makes float tensors lossy 8-bit style codes,
    None keeps them exact. Raises :class:`CodecError`.
    """
    codec_module = _frames.codec_module()
    arrays = _frames.arrays(tensors_json, blobs)
    bits = None if quantize_bits is None else int(quantize_bits)
    data: bytes = codec_module.encode(arrays, codec=codec or "auto", quantize_bits=bits)
    return data


@entry
def decode_frame(frame: Any, max_bytes: int | None = None) -> list[Any]:
    """The tensors of a frame as ``[metadata JSON, buffer, buffer, ...]`` (needs numpy).

    The metadata is a JSON list of ``{"name", "dtype", "shape"}`` in frame
    order; each buffer holds that tensor little-endian in C order (quantized
    tensors come back dequantized). ``max_bytes`` bounds the decoded size
    (default the codec's, 256 MiB). Raises :class:`CodecError` on any
    malformed, corrupt or oversized frame.
    """
    codec_module = _frames.codec_module()
    limit = codec_module.DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    return _frames.flatten(codec_module.decode(as_bytes(frame, "frame"), max_bytes=limit))


@entry
def frame_info(frame: Any, max_bytes: int | None = None) -> str:
    """JSON list describing each tensor of a frame without decoding payloads (needs numpy).

    Fields: ``name``, ``dtype`` (as stored), ``shape``, ``codec``,
    ``payload_bytes``, ``raw_bytes``, ``quantized_bits`` (null when exact).
    """
    codec_module = _frames.codec_module()
    limit = codec_module.DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    entries = codec_module.read_headers(as_bytes(frame, "frame"), max_bytes=limit)
    return json.dumps(_frames.describe_headers(entries))


# ------------------------------------------------------------------- full mode: sessions
@entry
def open_session(model_path: str, cloud_url: str | None = None, options_json: str | None = None) -> int:
    """Full mode: open a split-inference session; returns its handle (needs numpy and a model runtime).

    ``model_path``: a ``.tflite`` (LiteRT / tflite-runtime) or ``.onnx``
    (onnxruntime) file. ``cloud_url``: the jointdnn-edge server
    (``http(s)://host:port``), None for everything on the device.
    ``options_json`` (all optional): ``token`` and ``timeout`` (seconds) of
    the cloud client; ``costs`` (a cost table path, or ``"loaded"`` for the
    one loaded with :func:`load_costs`; without one the session profiles
    the model on first use); ``network`` (``"auto"``: measured, a preset
    name, or ``{"up_mbps", "down_mbps", ...radio}`` fixed); ``radio`` (preset
    or radio object, for ``"auto"``); ``objective``, ``deadline_ms``,
    ``battery_mj``, ``cloud_budget_ms``; ``schedule`` (fixed
    ``[[first, last, platform], ...]``); and any other keyword argument of
    :class:`~jointdnn_edge.session.JointSession` (``codec``,
    ``quantize_bits``, ``threads``, ``model_name``, ``on_infeasible``, ...).
    An unknown or bad option raises :class:`~jointdnn_edge.errors.ConfigError`.
    Close it with :func:`close_session`.
    """
    opts = parse_json(options_json, "options", dict)
    return _handles.register(_sessions.open_session(model_path, cloud_url, opts))


@entry
def run(handle: int, tensors_json: str, blobs: Iterable[Any]) -> list[Any]:
    """One split inference: the model inputs in (as :func:`encode_frame` takes tensors), the outputs out.

    Returns ``[metadata JSON, buffer, ...]`` as :func:`decode_frame` does,
    one entry per model output in model order. The session plans the split
    for the current network, runs the mobile layers here and the cloud
    layers on the server, and finishes locally if the cloud fails.
    """
    with _handles.using(handle, "JointSession") as session:
        return _frames.flatten(session.run(_frames.arrays(tensors_json, blobs)))


@entry
def last_trace(handle: int) -> str | None:
    """JSON of what the session's last :func:`run` did, or None before the first.

    Fields of :meth:`jointdnn_edge.session.Trace.to_dict` (``schedule``,
    ``source``, ``network``, ``steps`` with times and bytes, ``predicted_ms``,
    ``measured_ms``, ``energy_mj``, ``fallback``, ...), plus ``summary``, a
    human-readable account for logs. Unknown numbers are null.
    """
    with _handles.using(handle, "JointSession") as session:
        trace = session.last_trace
        if trace is None:
            return None
        doc = trace.to_dict()
        doc["summary"] = trace.summary()
    return json.dumps(finite(doc))


@entry
def close_session(handle: int) -> None:
    """Close a session (its cloud connections); the handle becomes invalid."""
    _handles.close(handle, "JointSession")


# ------------------------------------------------------------------- plan-only mode: the cloud
@entry
def open_cloud(url: str, token: str | None = None, timeout: float | None = None) -> int:
    """A client of the jointdnn-edge server at ``url`` for plan-only apps; returns its handle.

    It sends the cloud runs of a schedule (:func:`cloud_infer`) and measures
    the link while doing so (:func:`cloud_estimate`). ``token``: bearer
    token; ``timeout``: the longest a request may take (seconds, default 30).
    """
    return _handles.register(_sessions.cloud_client(url, token, timeout))


@entry
def cloud_infer(
    handle: int,
    model: str,
    first: int,
    last: int,
    frame: Any,
    codec: str | None = "auto",
    quantize_bits: int | None = None,
    deadline_s: float | None = None,
) -> list[Any]:
    """Run layers ``first..last`` of ``model`` on the cloud; returns ``[response frame, info JSON]``.

    ``frame``: the run's input tensors as :func:`encode_frame` packs them
    (the tensors ``graph.slice_io(first, last)`` names). The response frame
    holds the run's outputs, encoded with ``codec`` (decode it with
    :func:`decode_frame`). Info: the server's ``compute_ms`` and
    ``server_ms``, the request's ``wall_ms``, ``bytes_up``/``bytes_down``.
    Raises :class:`~jointdnn_edge.CloudUnavailableError`,
    :class:`~jointdnn_edge.DeadlineExceededError`, :class:`~jointdnn_edge.AuthError`
    or :class:`~jointdnn_edge.RemoteError`.
    """
    with _handles.using(handle, "CloudClient") as client:
        resp = client.infer_slice(
            str(model),
            int(first),
            int(last),
            as_bytes(frame, "frame"),
            codec=codec or "auto",
            quantize_bits=None if quantize_bits is None else int(quantize_bits),
            deadline_s=None if deadline_s is None else float(deadline_s),
        )
    info = {
        k: getattr(resp, k)
        for k in ("compute_ms", "server_ms", "wall_ms", "up_ms", "down_ms", "bytes_up", "bytes_down", "attempts")
    }
    return [resp.frame, json.dumps(finite(info))]


@entry
def cloud_estimate(handle: int) -> str:
    """JSON of the link as measured by this client's requests: ``up_mbps``, ``down_mbps``, ``rtt_ms``.

    A figure is null until enough traffic measured it; ``available`` is
    False while the client marks the cloud down after failures (for
    ``down_for_s`` more seconds). Feed the bandwidths to :func:`decide`.
    """
    with _handles.using(handle, "CloudClient") as client:
        est = client.estimator
        link = {
            "up_mbps": est.up_mbps,
            "down_mbps": est.down_mbps,
            "rtt_ms": est.rtt_ms,
            "available": client.available,
            "down_for_s": client.down_for,
        }
    return json.dumps(finite(link))


@entry
def close_cloud(handle: int) -> None:
    """Close a cloud client; the handle becomes invalid."""
    _handles.close(handle, "CloudClient")
