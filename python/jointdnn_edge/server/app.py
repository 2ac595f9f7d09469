"""The cloud endpoint: an ASGI app (Starlette) that runs any layer range of its models on request.

It speaks the Open Inference Protocol (KServe v2) over REST, including the
binary tensor extension, so standard clients (tritonclient, KServe clients)
can run whole models; a JointDNN split request is an ordinary inference
request whose parameters name a layer range and whose one BYTES input carries
an activation frame (``docs/server.md``).

The server is stateless: nothing survives a request except cached runtime
sessions, so any replica can answer any request. Requests never name files:
models are loaded once, at start-up, from what the operator passed.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .. import protocol as P
from ..errors import CodecError, ConfigError, ExecutionError, JointDNNError, ModelError, ProtocolError

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from ..models.graph import ModelGraph

__all__ = ["BackgroundServer", "Limits", "create_app", "load_models", "serve"]

logger = logging.getLogger("jointdnn_edge.server")

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one request may cost the server.

    ``max_body_bytes``: the request body as received (and again after HTTP
    ``Content-Encoding`` decompression); ``max_json_bytes``: its JSON part;
    ``max_decoded_bytes``: the tensors a request may decode to (activation
    frames and JSON/binary tensors together); ``max_concurrency``: requests
    computing at once; ``max_queue``: requests waiting for a slot beyond that
    (more are refused with 503, which clients may retry).
    """

    max_body_bytes: int = 64 * MiB
    max_json_bytes: int = 16 * MiB
    max_decoded_bytes: int = 256 * MiB
    max_concurrency: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    max_queue: int = 256

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_json_bytes", "max_decoded_bytes", "max_concurrency"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError(f"max_queue must be a non-negative integer, got {self.max_queue!r}")


class _Model:
    """One served model: its graph, executor, digest and I/O description."""

    def __init__(self, graph: ModelGraph, executor: Any) -> None:
        self.graph = graph
        self.executor = executor
        self.digest = P.model_digest(graph)
        self.inputs = {t.name: t for t in graph.inputs}
        self.outputs = [t.name for t in graph.outputs]

    def metadata(self, limits: Limits, slowdown: float = 1.0) -> dict[str, Any]:
        g = self.graph
        info = self.executor.info() if callable(getattr(self.executor, "info", None)) else {}
        runtime: dict[str, Any] = {"jointdnn_runtime": str(info.get("runtime", "unknown"))}
        if info.get("version") is not None:
            runtime["jointdnn_runtime_version"] = str(info["version"])
        if isinstance(info.get("threads"), int):
            runtime["jointdnn_threads"] = info["threads"]
        return {
            "name": g.name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx" if g.format == "onnx" else "litert_tflite",
            "inputs": [{"name": t.name, "datatype": P.datatype_of(t.dtype), "shape": list(t.shape)} for t in g.inputs],
            "outputs": [
                {"name": t.name, "datatype": P.datatype_of(t.dtype), "shape": list(t.shape)} for t in g.outputs
            ],
            "parameters": {
                "jointdnn_protocol": P.PROTOCOL_VERSION,
                "jointdnn_digest": self.digest,
                "jointdnn_layers": g.n,
                "jointdnn_format": g.format,
                "jointdnn_max_body_bytes": limits.max_body_bytes,
                "jointdnn_max_decoded_bytes": limits.max_decoded_bytes,
                **runtime,
                "jointdnn_slowdown": slowdown,
            },
        }


class _State:
    """Everything the app's handlers share (read-only after start-up, except the pending counter)."""

    def __init__(self, models: dict[str, _Model], token: str | None, limits: Limits, slowdown: float) -> None:
        self.models = models
        self.token = token
        self.limits = limits
        self.slowdown = slowdown
        self.pending = 0  # requests admitted and not finished; touched only on the event loop
        self._limiter: Any = None

    def limiter(self) -> Any:
        # created on first use: an anyio limiter belongs to the running event loop
        if self._limiter is None:
            import anyio

            self._limiter = anyio.CapacityLimiter(self.limits.max_concurrency)
        return self._limiter


# ------------------------------------------------------------------ loading
def load_models(
    specs: Iterable[str],
    *,
    size: str | None = None,
    merge_trivial: bool = False,
) -> list[ModelGraph]:
    """Models named on a command line: ``PATH``, ``NAME=PATH`` or ``zoo:NAME`` (``size`` applies to zoo models).

    Only the operator's command line names files; requests never do.
    """
    from .. import zoo
    from ..models import load_model

    graphs = []
    for spec in specs:
        if spec.startswith("zoo:"):
            graphs.append(zoo.load(spec[4:], size=size, merge_trivial=merge_trivial))
            continue
        name, sep, path = spec.partition("=")
        if not sep or not name or os.path.exists(spec):
            name, path = "", spec
        if not os.path.isfile(path):
            raise ModelError(f"no such model file: {path}")
        graphs.append(load_model(path, merge_trivial=merge_trivial, name=name or None))
    return graphs


def create_app(
    models: Iterable[ModelGraph] | Mapping[str, ModelGraph],
    *,
    token: str | None = None,
    limits: Limits | None = None,
    threads: int | None = None,
    optimization: str = "all",
    slowdown: float = 1.0,
    executors: Mapping[str, Any] | None = None,
) -> Starlette:
    """The ASGI app serving ``models`` (by ``graph.name``, or by the mapping's keys).

    ``token``: require ``Authorization: Bearer <token>`` on every route but
    the health checks (None: no authentication). ``threads`` and
    ``optimization`` configure each model's executor (ONNX: onnxruntime
    intra-op threads and graph optimization; TFLite: interpreter threads);
    ``executors`` may give one per model name instead. ``slowdown`` >= 1
    emulates a slower or loaded cloud by stretching every computation to
    ``slowdown`` times its duration (for demos and tests).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from ..models.executor import executor_for

    if not (isinstance(slowdown, (int, float)) and math.isfinite(slowdown) and slowdown >= 1.0):
        raise ConfigError(f"slowdown must be a finite number >= 1, got {slowdown!r}")
    if token is not None and not token:
        raise ConfigError("token must be a non-empty string or None")
    items = list(models.items()) if isinstance(models, Mapping) else [(g.name, g) for g in models]
    served: dict[str, _Model] = {}
    for name, graph in items:
        if not name or "/" in name:
            raise ConfigError(f"model name {name!r} cannot be used in a URL path")
        if name in served:
            raise ConfigError(f"two models are named {name!r}; serve one under another name (NAME=PATH)")
        if executors is not None and name in executors:
            ex = executors[name]
        else:
            opts: dict[str, Any] = {"cache_size": 128}
            if graph.format == "onnx":
                opts["optimization"] = optimization
            ex = executor_for(graph, threads=threads, **opts)
        served[name] = _Model(graph, ex)
    if not served:
        raise ConfigError("create_app needs at least one model")
    state = _State(served, token, limits or Limits(), float(slowdown))

    routes = [
        Route("/v2", partial(_server_metadata, state), methods=["GET"]),
        Route("/v2/health/live", _health, methods=["GET"]),
        Route("/v2/health/ready", _health, methods=["GET"]),
        Route("/v2/models/{name}", partial(_model_metadata, state), methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", partial(_model_metadata, state), methods=["GET"]),
        Route("/v2/models/{name}/ready", partial(_model_ready, state), methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", partial(_model_ready, state), methods=["GET"]),
        Route("/v2/models/{name}/infer", partial(_infer, state), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", partial(_infer, state), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", None) or "error"
        if status == 404:
            detail = f"no route {request.url.path!r} (see docs/server.md for the endpoints)"
        elif status == 405:
            detail = f"method {request.method} is not allowed on {request.url.path!r}"
        return _error(status, str(detail))

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(_AuthMiddleware, token=token)],
    )
    app.state.jointdnn = state
    return app


# ------------------------------------------------------------------ helpers
def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    from starlette.responses import Response

    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return _json({"error": message}, status, headers)


class _AuthMiddleware:
    """Bearer-token check in front of the app (pure ASGI); health checks stay open for load balancers."""

    _OPEN = ("/v2/health/live", "/v2/health/ready")

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._token is None or scope.get("path") in self._OPEN:
            await self.app(scope, receive, send)
            return
        auth = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                auth = value
                break
        scheme, _, given = auth.partition(b" ")
        if not auth:
            response = _error(401, "missing bearer token", {"WWW-Authenticate": 'Bearer realm="jointdnn-edge"'})
        elif scheme.lower() != b"bearer" or not given.strip():
            response = _error(
                401, "Authorization must be 'Bearer <token>'", {"WWW-Authenticate": 'Bearer error="invalid_request"'}
            )
        elif not hmac.compare_digest(given.strip(), self._token):
            response = _error(403, "invalid bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


async def _health(request: Request) -> Response:
    from starlette.responses import Response

    return Response(b"", status_code=200)


async def _server_metadata(state: _State, request: Request) -> Response:
    return _json(
        {
            "name": P.SERVER_NAME,
            "version": __version__,
            "extensions": ["binary_tensor_data", "jointdnn_split"],
        }
    )


def _lookup(state: _State, request: Request) -> _Model:
    name = request.path_params["name"]
    version = request.path_params.get("version")
    model = state.models.get(name)
    if model is None:
        raise ProtocolError(404, f"unknown model {name!r}; this server has {sorted(state.models)}")
    if version is not None and version != "1":
        raise ProtocolError(404, f"model {name!r} has no version {version!r} (only '1')")
    return model


async def _model_metadata(state: _State, request: Request) -> Response:
    try:
        return _json(_lookup(state, request).metadata(state.limits, state.slowdown))
    except ProtocolError as e:
        return _error(e.status, e.message)


async def _model_ready(state: _State, request: Request) -> Response:
    from starlette.responses import Response

    try:
        _lookup(state, request)
    except ProtocolError as e:
        return _error(e.status, e.message)
    return Response(b"", status_code=200)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) by Content-Length first, then by counting."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ProtocolError(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise ProtocolError(413, f"request body of {int(declared)} bytes exceeds the server's limit of {limit}")
    chunks: list[bytes] = []
    total = 0
    over = False
    async for chunk in request.stream():
        total += len(chunk)
        if over or total > limit:
            # keep reading (bounded) and discarding, so that the client gets the answer, not a reset connection
            over = True
            chunks.clear()
            if total > 4 * limit:
                break
            continue
        chunks.append(chunk)
    if over:
        raise ProtocolError(413, f"request body exceeds the server's limit of {limit} bytes")
    return b"".join(chunks)


async def _infer(state: _State, request: Request) -> Response:
    import anyio
    from starlette.responses import Response

    try:
        model = _lookup(state, request)
        body = await _read_body(request, state.limits.max_body_bytes)
    except ProtocolError as e:
        return _error(e.status, e.message)
    except Exception:  # the client went away mid-body, or similar
        return _error(400, "could not read the request body")
    limits = state.limits
    if state.pending >= limits.max_concurrency + limits.max_queue:
        return _error(503, "server busy: too many requests in progress; retry later", {"Retry-After": "1"})
    state.pending += 1
    arrived = time.perf_counter()
    try:
        status, headers, content = await anyio.to_thread.run_sync(
            partial(
                _process,
                state,
                model,
                body,
                request.headers.get(P.HEADER_LENGTH),
                request.headers.get("content-encoding"),
                arrived,
            ),
            limiter=state.limiter(),
        )
    finally:
        state.pending -= 1
    return Response(content, status_code=status, headers=headers)


def _process(
    state: _State,
    model: _Model,
    body: bytes,
    header_length: str | None,
    encoding: str | None,
    arrived: float,
) -> tuple[int, dict[str, str], bytes]:
    """Answer one inference request (runs on a worker thread): status, headers and body."""
    started = time.perf_counter()
    timings = {P.R_QUEUE: (started - arrived) * 1e3}
    try:
        body = _decompress(body, encoding, state.limits.max_body_bytes)
        header, binary = P.split_body(body, header_length, max_json_bytes=state.limits.max_json_bytes)
        params = header.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(400, "request 'parameters' must be an object")
        if P.P_FIRST in params or P.P_LAST in params:
            out_header, blobs = _split(state, model, header, params, binary, timings)
        else:
            out_header, blobs = _whole(state, model, header, params, binary, timings)
    except ProtocolError as e:
        return _error_tuple(e.status, e.message)
    except CodecError as e:
        return _error_tuple(422, f"bad activation frame: {e}")
    except ModelError as e:
        return _error_tuple(422, str(e))
    except ExecutionError as e:
        return _error_tuple(500, f"inference failed: {e}")
    except JointDNNError as e:
        return _error_tuple(500, f"{type(e).__name__}: {e}")
    except MemoryError:
        return _error_tuple(507, "not enough memory for this request")
    except Exception as e:  # keep serving whatever a request does; log the unexpected
        logger.exception("unexpected error answering a request for %s", model.graph.name)
        return _error_tuple(500, f"internal error: {type(e).__name__}")
    timings[P.R_SERVER] = (time.perf_counter() - arrived) * 1e3
    out_header.setdefault("parameters", {}).update({k: round(v, 4) for k, v in timings.items()})
    content, json_len = P.body_parts(out_header, blobs)
    # Server-Timing names: jointdnn_compute_ms -> compute
    headers = {"Server-Timing": ", ".join(f"{k[len('jointdnn_') : -3]};dur={v:.3f}" for k, v in timings.items())}
    if json_len is None:
        headers["Content-Type"] = "application/json"
    else:
        headers["Content-Type"] = "application/octet-stream"
        headers[P.HEADER_LENGTH] = str(json_len)
    return 200, headers, content


def _error_tuple(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps({"error": message}).encode()


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after HTTP ``Content-Encoding`` (gzip or deflate), never more than ``limit`` bytes (413)."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    enc = encoding.strip().lower()
    if enc not in ("gzip", "deflate"):
        raise ProtocolError(415, f"unsupported Content-Encoding {encoding!r} (gzip, deflate or identity)")
    d = zlib.decompressobj(wbits=(16 if enc == "gzip" else 0) + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise ProtocolError(400, f"body is not valid {enc} data: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ProtocolError(413, f"{enc} body decompresses to more than the server's limit of {limit} bytes")
    if not d.eof:
        raise ProtocolError(400, f"{enc} body is truncated")
    return out


def _entries(header: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    entries = header.get(key)
    if key == "inputs" and entries is None:
        raise ProtocolError(400, "request has no 'inputs'")
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ProtocolError(400, f"'{key}' must be a list of objects")
    for e in entries:
        if not isinstance(e.get("name"), str):
            raise ProtocolError(400, f"every entry of '{key}' needs a string 'name'")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise ProtocolError(400, f"'{key}' names a tensor twice")
    return entries


def _int_param(params: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    v = params.get(key, default)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(400, f"parameter {key} must be an integer, got {v!r}")
    return v


def _split(
    state: _State,
    model: _Model,
    header: Mapping[str, Any],
    params: Mapping[str, Any],
    binary: memoryview,
    timings: dict[str, float],
) -> tuple[dict[str, Any], list[bytes]]:
    """A JointDNN split request: run layers first..last on the frame's tensors, answer with a frame."""
    from ..codec import CODECS, decode, encode, read_headers

    graph = model.graph
    first, last = _int_param(params, P.P_FIRST), _int_param(params, P.P_LAST)
    if first is None or last is None:
        raise ProtocolError(400, f"a split request needs both {P.P_FIRST} and {P.P_LAST}")
    if not 0 <= first <= last < graph.n:
        raise ProtocolError(422, f"layer range {first}..{last} is outside 0..{graph.n - 1} of model {graph.name!r}")
    digest = params.get(P.P_DIGEST)
    if digest is not None and digest != model.digest:
        raise ProtocolError(
            409, f"model {graph.name!r} on this server differs from the client's (digest {model.digest})"
        )
    codec = params.get(P.P_CODEC, "auto")
    if codec not in CODECS:
        raise ProtocolError(422, f"{P.P_CODEC} must be one of {list(CODECS)}, got {codec!r}")
    level = _int_param(params, P.P_LEVEL, 1)
    assert level is not None
    if not -7 <= level <= 22:
        raise ProtocolError(422, f"{P.P_LEVEL} must be in -7..22, got {level}")
    bits = _int_param(params, P.P_QUANTIZE)
    if bits is not None and not 1 <= bits <= 16:
        raise ProtocolError(422, f"{P.P_QUANTIZE} must be in 1..16, got {bits}")

    entries = _entries(header, "inputs")
    if len(entries) != 1 or entries[0]["name"] != P.FRAME_TENSOR:
        raise ProtocolError(400, f"a split request has exactly one input, {P.FRAME_TENSOR!r}")
    entry = entries[0]
    if entry.get("datatype") != "BYTES" or entry.get("shape") != [1]:
        raise ProtocolError(400, f"input {P.FRAME_TENSOR!r} must be BYTES with shape [1]")
    (blob,) = P.sections(entries, binary, "input")
    if blob is None:
        raise ProtocolError(400, f"input {P.FRAME_TENSOR!r} must be sent as binary data (binary_data_size)")
    (frame,) = P.unpack_bytes(blob, 1, P.FRAME_TENSOR)

    ins, outs = graph.slice_io(first, last)
    t0 = time.perf_counter()
    limit = state.limits.max_decoded_bytes
    try:
        heads = read_headers(frame, max_bytes=limit)
    except CodecError as e:
        raise ProtocolError(422 if "max_bytes" not in str(e) else 413, f"bad activation frame: {e}") from None
    got = {h.name: h for h in heads}
    missing = [n for n in ins if n not in got]
    extra = [n for n in got if n not in ins]
    if missing or extra:
        raise ProtocolError(
            422,
            f"layers {first}..{last} of {graph.name!r} read {ins}; the frame "
            + (f"lacks {missing}" if missing else "")
            + (" and " if missing and extra else "")
            + (f"has unexpected {extra}" if extra else ""),
        )
    for h in heads:
        want = graph.tensor(h.name)
        dt = h.quant.dtype if h.quant is not None else h.dtype
        if tuple(h.shape) != tuple(want.shape) or np.dtype(dt) != np.dtype(want.dtype):
            raise ProtocolError(
                422,
                f"tensor {h.name!r} is {np.dtype(dt)}{list(h.shape)} in the frame, "
                f"the model expects {np.dtype(want.dtype)}{list(want.shape)}",
            )
    expected = sum(graph.tensor(n).nbytes for n in ins)
    feeds = decode(frame, max_bytes=min(limit, max(expected, 0)))
    t1 = time.perf_counter()
    # loading a range the first time (slicing, runtime set-up) is not compute: report it apart
    prepare = getattr(model.executor, "prepare", None)
    if callable(prepare):
        run = prepare(graph, first, last)
        t1b = time.perf_counter()
        result = run(feeds)
    else:
        t1b = t1
        result = model.executor.run(graph, first, last, feeds)
    t2 = time.perf_counter()
    timings[P.R_LOAD] = (t1b - t1) * 1e3
    t1 = t1b
    _stretch(state.slowdown, t2 - t1)
    t3 = time.perf_counter()
    out_frame = encode({n: result[n] for n in outs}, codec=codec, level=level, quantize_bits=bits)
    t4 = time.perf_counter()
    timings[P.R_DECODE] = (t1 - t0) * 1e3
    timings[P.R_COMPUTE] = (t3 - t1) * 1e3
    timings[P.R_ENCODE] = (t4 - t3) * 1e3
    blob_out = P.pack_bytes([out_frame])
    out_header = {
        "model_name": graph.name,
        "model_version": "1",
        "outputs": [
            {
                "name": P.FRAME_TENSOR,
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"binary_data_size": len(blob_out)},
            }
        ],
        "parameters": {P.P_FIRST: first, P.P_LAST: last},
    }
    if isinstance(header.get("id"), str):
        out_header["id"] = header["id"]
    return out_header, [blob_out]


def _stretch(slowdown: float, seconds: float) -> None:
    """Emulate a slower cloud: wait so that a computation of ``seconds`` takes ``slowdown`` times as long."""
    if slowdown > 1.0 and seconds > 0:
        time.sleep(seconds * (slowdown - 1.0))


def _whole(
    state: _State,
    model: _Model,
    header: Mapping[str, Any],
    params: Mapping[str, Any],
    binary: memoryview,
    timings: dict[str, float],
) -> tuple[dict[str, Any], list[bytes]]:
    """A standard inference request on the whole model (JSON and/or binary tensors)."""
    graph = model.graph
    entries = _entries(header, "inputs")
    blobs = P.sections(entries, binary, "input")
    t0 = time.perf_counter()
    feeds: dict[str, np.ndarray] = {}
    budget = state.limits.max_decoded_bytes
    for entry, blob in zip(entries, blobs):
        name = entry["name"]
        info = model.inputs.get(name)
        if info is None:
            raise ProtocolError(400, f"model {graph.name!r} has no input {name!r} (inputs: {list(model.inputs)})")
        shape = P.check_shape(entry.get("shape"), f"input {name!r}")
        want_type = P.datatype_of(info.dtype)
        if entry.get("datatype") != want_type:
            raise ProtocolError(
                400, f"input {name!r} has datatype {entry.get('datatype')!r}, the model expects {want_type}"
            )
        if shape != tuple(info.shape):
            raise ProtocolError(400, f"input {name!r} has shape {list(shape)}, the model expects {list(info.shape)}")
        dt = P.numpy_dtype(want_type)
        nbytes = math.prod(shape) * dt.itemsize
        budget -= nbytes
        if budget < 0:
            raise ProtocolError(413, f"the request's tensors exceed {state.limits.max_decoded_bytes} bytes")
        if blob is not None:
            if "data" in entry:
                raise ProtocolError(400, f"input {name!r} has both binary data and JSON 'data'")
            if len(blob) != nbytes:
                raise ProtocolError(
                    400, f"input {name!r}: {len(blob)} bytes of binary data, {want_type}{list(shape)} needs {nbytes}"
                )
            arr = np.frombuffer(blob, dtype=dt).reshape(shape)
        else:
            arr = _json_tensor(entry.get("data"), dt, shape, name)
        feeds[name] = arr.astype(np.dtype(info.dtype), copy=False)
    missing = [n for n in model.inputs if n not in feeds]
    if missing:
        raise ProtocolError(400, f"request lacks inputs {missing} of model {graph.name!r}")

    requested = _entries(header, "outputs")
    unknown = [e["name"] for e in requested if e["name"] not in model.outputs]
    if unknown:
        raise ProtocolError(400, f"model {graph.name!r} has no outputs {unknown} (outputs: {model.outputs})")
    default_binary = params.get("binary_data_output", False) is True
    if requested:
        chosen = [(e["name"], _binary_wanted(e, default_binary)) for e in requested]
    else:
        chosen = [(n, default_binary) for n in model.outputs]

    t1 = time.perf_counter()
    prepare = getattr(model.executor, "prepare_model", None)
    if callable(prepare):
        run = prepare(graph)
        t1b = time.perf_counter()
        result = run(feeds)
    else:
        t1b = t1
        result = model.executor.run_model(graph, feeds)
    t2 = time.perf_counter()
    timings[P.R_LOAD] = (t1b - t1) * 1e3
    t1 = t1b
    _stretch(state.slowdown, t2 - t1)
    t3 = time.perf_counter()
    outputs: list[dict[str, Any]] = []
    out_blobs: list[bytes] = []
    for name, as_binary in chosen:
        arr = np.asarray(result[name])
        dtype_name = P.datatype_of(arr.dtype)
        item: dict[str, Any] = {"name": name, "datatype": dtype_name, "shape": list(arr.shape)}
        if as_binary:
            data = np.ascontiguousarray(arr, dtype=P.numpy_dtype(dtype_name)).tobytes()
            item["parameters"] = {"binary_data_size": len(data)}
            out_blobs.append(data)
        else:
            item["data"] = arr.reshape(-1).tolist()
        outputs.append(item)
    t4 = time.perf_counter()
    timings[P.R_DECODE] = (t1 - t0) * 1e3
    timings[P.R_COMPUTE] = (t3 - t1) * 1e3
    timings[P.R_ENCODE] = (t4 - t3) * 1e3
    out_header: dict[str, Any] = {"model_name": graph.name, "model_version": "1", "outputs": outputs}
    if isinstance(header.get("id"), str):
        out_header["id"] = header["id"]
    return out_header, out_blobs


def _binary_wanted(entry: Mapping[str, Any], default: bool) -> bool:
    params = entry.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(400, f"output {entry['name']!r}: parameters must be an object")
    value = params.get("binary_data", default)
    if not isinstance(value, bool):
        raise ProtocolError(400, f"output {entry['name']!r}: binary_data must be true or false")
    return value


def _json_tensor(data: Any, dt: np.dtype, shape: tuple[int, ...], name: str) -> np.ndarray:  # type: ignore[type-arg]
    """A JSON tensor (row-major ``data``, flat or nested) as an array of ``dt`` and ``shape``."""
    if data is None:
        raise ProtocolError(400, f"input {name!r} has neither 'data' nor binary_data_size")
    if not isinstance(data, list):
        data = [data]
    try:
        if dt.kind == "b":
            arr = np.asarray(data)
            if arr.dtype != np.bool_:
                raise TypeError("BOOL data must be true/false")
        else:
            arr = np.asarray(data)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"numbers expected, got {arr.dtype}")
            if dt.kind in "iu" and arr.dtype.kind == "f":
                raise TypeError("integers expected, got fractions")
            arr = arr.astype(dt)
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(400, f"input {name!r}: 'data' is not a {np.dtype(dt)} tensor: {e}") from None
    if arr.size != math.prod(shape):
        raise ProtocolError(
            400, f"input {name!r}: 'data' has {arr.size} elements, shape {list(shape)} needs {math.prod(shape)}"
        )
    return arr.reshape(shape)


# ------------------------------------------------------------------ running
class BackgroundServer:
    """A uvicorn server for ``app`` on a daemon thread (tests, the demo, notebooks).

    Binds ``host:port`` before starting (``port=0``: a free port), so
    :attr:`url` is valid as soon as :meth:`start` returns. ``options`` go to
    ``uvicorn.Config`` (for example ``ssl_keyfile`` and ``ssl_certfile``
    for TLS). Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning", **options: Any
    ) -> None:
        self.app = app
        self.host = host
        self._options = options
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
        # it a response's body waits for the client's delayed ACK of its headers (about 40 ms on Linux)
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        self._log_level = log_level
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._options.get("ssl_certfile") else "http"
        return f"{scheme}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        """Start serving; returns once the server accepts connections (raises RuntimeError if it cannot)."""
        import uvicorn

        config = uvicorn.Config(self.app, log_level=self._log_level, access_log=False, lifespan="off", **self._options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="jointdnn-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_ENV_CONFIG = "JOINTDNN_EDGE_SERVE_CONFIG"


def app_from_env() -> Any:
    """App factory for ``uvicorn --factory jointdnn_edge.server:app_from_env`` and for worker processes.

    Reads a JSON object from ``JOINTDNN_EDGE_SERVE_CONFIG`` (``models``: list
    of model specs as :func:`load_models` takes them; ``size``,
    ``merge_trivial``, ``threads``, ``optimization``, ``slowdown`` and the
    :class:`Limits` fields) and the token from ``JOINTDNN_EDGE_TOKEN``.
    """
    raw = os.environ.get(_ENV_CONFIG)
    if not raw:
        raise RuntimeError(f"set {_ENV_CONFIG} to a JSON object with at least 'models'")
    cfg = json.loads(raw)
    graphs = load_models(cfg["models"], size=cfg.get("size"), merge_trivial=bool(cfg.get("merge_trivial", False)))
    limit_fields = {k: int(cfg[k]) for k in Limits.__dataclass_fields__ if k in cfg}
    return create_app(
        graphs,
        token=os.environ.get(P.TOKEN_ENV) or None,
        limits=Limits(**limit_fields),
        threads=cfg.get("threads"),
        optimization=cfg.get("optimization", "all"),
        slowdown=float(cfg.get("slowdown", 1.0)),
    )


def serve(
    models: list[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    size: str | None = None,
    merge_trivial: bool = False,
    threads: int | None = None,
    optimization: str = "all",
    slowdown: float = 1.0,
    limits: Limits | None = None,
    workers: int = 1,
    ssl_keyfile: str | None = None,
    ssl_certfile: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``models`` (specs as :func:`load_models` takes them) with uvicorn until interrupted.

    ``token`` defaults to the ``JOINTDNN_EDGE_TOKEN`` environment variable.
    ``workers`` > 1 runs that many processes (each loads the models; any can
    answer any request). ``ssl_keyfile``/``ssl_certfile`` enable TLS.
    """
    import uvicorn

    token = token if token is not None else (os.environ.get(P.TOKEN_ENV) or None)
    lim = limits or Limits()
    tls = {"ssl_keyfile": ssl_keyfile, "ssl_certfile": ssl_certfile}
    if workers > 1:
        cfg = {
            "models": list(models),
            "size": size,
            "merge_trivial": merge_trivial,
            "threads": threads,
            "optimization": optimization,
            "slowdown": slowdown,
            **{k: getattr(lim, k) for k in Limits.__dataclass_fields__},
        }
        os.environ[_ENV_CONFIG] = json.dumps(cfg)
        if token:
            os.environ[P.TOKEN_ENV] = token
        uvicorn.run(
            "jointdnn_edge.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **tls,  # type: ignore[arg-type]
        )
        return
    graphs = load_models(models, size=size, merge_trivial=merge_trivial)
    app = create_app(graphs, token=token, limits=lim, threads=threads, optimization=optimization, slowdown=slowdown)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **tls)  # type: ignore[arg-type]
