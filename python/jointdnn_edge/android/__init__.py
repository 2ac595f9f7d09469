"""Entry points for Android apps: Java or Kotlin calls them through Chaquopy.

An app gets this module with
``Python.getInstance().getModule("jointdnn_edge.android")`` and calls its
functions with ``callAttr("decide", 12.0, 30.0)``; ``android_bridge/`` holds
a typed Java facade (``JointDnn.java``) over exactly these functions, and its
README walks through an app from scratch.

**Java-friendly types only.** Arguments are ``str`` (JSON where structured),
numbers, ``None`` (Java ``null``), byte buffers (a Java ``byte[]`` arrives as
a Chaquopy ``jarray``, which has the buffer protocol) and lists of byte
buffers (``byte[][]``). Results are ``str`` (JSON), ``bytes``, ``bool``,
``int``, ``None`` or a list of those. Tensors cross the bridge as a JSON list
of ``{"name", "dtype", "shape"}`` plus one little-endian, C-order byte buffer
per tensor.

**Two modes.** *Plan-only*: the app runs its own TFLite slices (exported
on the workstation by ``jointdnn-edge android export-slices``) with the
Android LiteRT API and asks this module for the schedule of every
inference (:func:`decide`), for the activation codec (:func:`encode_frame`, :func:`decode_frame`) and to
send the cloud runs (:func:`open_cloud`, :func:`cloud_infer`,
:func:`cloud_estimate`). Loading and querying a lookup table needs neither
numpy nor the native module; a cost table needs numpy for the fastest path
but is planned without it too (the pure-Python planner reads the JSON
directly); the codec and the cloud client need numpy, zstandard and httpx.
*Full*: the SDK runs the slices itself (:func:`open_session`, :func:`run`,
:func:`last_trace`) where numpy, zstandard, httpx, flatbuffers and a TFLite
interpreter are installed through Chaquopy, together with the three
pure-Python flatbuffer-schema files of ``ai-edge-litert`` (which has no
Android wheel); ``android_bridge/README.md`` (Step 5) lists them.

**Planner.** The native (Rust) planner runs when its extension was built
for the device's ABI; otherwise the pure-Python fallback computes the same
decisions. :func:`native_available` tells whether the extension loaded.
Exact plans on a cost table reach it through numpy arrays, so without numpy
they run in pure Python even then; the ``planner`` field of
:func:`load_costs` says which one plans.

**Errors.** Every entry point raises the SDK's own exception classes
(:mod:`jointdnn_edge.errors`), which Chaquopy turns into
``com.chaquo.python.PyException``. Because the text of that exception
differs between Chaquopy versions, each failure is also recorded per thread:
:func:`last_error` returns it as JSON (``type``, ``message``, the class
hierarchy and the error's own fields such as ``constraint``), and the Java
facade rethrows it as a typed ``JointDnnException`` (a ``PyException``
subclass, so callers catching ``PyException`` still catch it). A bad
argument or option is a ``ConfigError``, a malformed cost table a
``CostTableError``.

**State.** One planner configuration per process (the loaded cost table
and/or lookup table, the radio, the defaults), replaced as a whole by the
``load_*``/:func:`configure` calls so a concurrent :func:`decide` never sees
half of an update; sessions are explicit integer handles.

**Inside.** ``_entry_points`` holds the functions Java calls (the bridge's
contract), ``_marshal`` the error records and Java argument conversion,
``_planning`` the planner state and every choice of planner, ``_frames``
tensors as JSON plus buffers, ``_handles`` the open sessions and cloud
clients, ``_sessions`` their construction from JSON options, ``_tools`` the
workstation tools (``jointdnn-edge android ...``, ``cli/android.py``).
"""

from __future__ import annotations

from ._entry_points import (
    API_VERSION,
    api_version,
    build_lookup_table,
    close_cloud,
    close_session,
    cloud_estimate,
    cloud_infer,
    configure,
    decide,
    decode_frame,
    encode_frame,
    export_slices,
    frame_info,
    info,
    last_trace,
    load_costs,
    load_costs_json,
    load_lookup_table,
    load_lookup_table_bytes,
    mobile_ranges,
    native_available,
    open_cloud,
    open_session,
    reset,
    run,
    version,
)
from ._marshal import last_error

__all__ = [
    "API_VERSION",
    "api_version",
    "build_lookup_table",
    "close_cloud",
    "close_session",
    "cloud_estimate",
    "cloud_infer",
    "configure",
    "decide",
    "decode_frame",
    "encode_frame",
    "export_slices",
    "frame_info",
    "info",
    "last_error",
    "last_trace",
    "load_costs",
    "load_costs_json",
    "load_lookup_table",
    "load_lookup_table_bytes",
    "mobile_ranges",
    "native_available",
    "open_cloud",
    "open_session",
    "reset",
    "run",
    "version",
]
