"""The REST endpoints of the Open Inference Protocol (KServe v2), thin over the data plane.

Each endpoint parses the HTTP request (path, headers, body, ``Content-Encoding``,
the binary tensor extension's header length), calls the data plane, and builds
the HTTP response. Every exception an endpoint raises is answered by
:func:`~._errors.error_response`, with the status its class maps to.

An inference is admitted on its headers, before its body is read (refusals:
413 by ``Content-Length``, 503 when busy); the body must then arrive within
``Limits.body_timeout_s`` (408), and its JSON part is bounded by what the
model's inputs can need before it is parsed.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable
from functools import partial, wraps
from typing import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import protocol as P
from ..errors import ProtocolError
from ._dataplane import DataPlane, InferenceResult
from ._errors import error_response, json_response
from ._limits import Admission, AdmissionLimiter
from ._registry import ServedModel

__all__ = ["RestEndpoints"]

Endpoint = Callable[[Request], Awaitable[Response]]


def _answering_errors(endpoint: Endpoint) -> Endpoint:
    """``endpoint``, answering whatever it raises with the error table's status and a JSON body."""

    @wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:  # keep serving whatever a request does
            return error_response(exc, f"{request.method} {request.url.path}")

    return answer


class RestEndpoints:
    """The REST routes of ``dataplane``; inference runs on worker threads admitted by ``admission``."""

    def __init__(self, dataplane: DataPlane, admission: AdmissionLimiter) -> None:
        self.dataplane = dataplane
        self.admission = admission

    def routes(self) -> list[Route]:
        """Every route, each answering its errors as JSON."""
        health = _answering_errors(self.health)
        server = _answering_errors(self.server_metadata)
        model = _answering_errors(self.model_metadata)
        ready = _answering_errors(self.model_ready)
        infer = _answering_errors(self.infer)
        return [
            Route("/v2", server, methods=["GET"]),
            Route("/v2/health/live", health, methods=["GET"]),
            Route("/v2/health/ready", _answering_errors(self.server_ready), methods=["GET"]),
            Route("/v2/models/{name}", model, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", model, methods=["GET"]),
            Route("/v2/models/{name}/ready", ready, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}/ready", ready, methods=["GET"]),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        """``GET /v2/health/live``: 200, empty (the server answers)."""
        return Response(b"", status_code=200)

    async def server_ready(self, request: Request) -> Response:
        """``GET /v2/health/ready``: 200, empty, once the preload (if any) has finished; 503 before."""
        self._check_ready()
        return Response(b"", status_code=200)

    def _check_ready(self) -> None:
        if not self.dataplane.ready.is_set():
            raise ProtocolError(503, "not ready: preloading layer ranges")

    async def server_metadata(self, request: Request) -> Response:
        """``GET /v2``."""
        return json_response(self.dataplane.server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]``."""
        return json_response(self.dataplane.model_metadata(*_model_path(request)))

    async def model_ready(self, request: Request) -> Response:
        """``GET /v2/models/{name}[/versions/{version}]/ready``: 200 when the model is served and preloaded."""
        self.dataplane.model(*_model_path(request))
        self._check_ready()
        return Response(b"", status_code=200)

    async def infer(self, request: Request) -> Response:
        """``POST /v2/models/{name}[/versions/{version}]/infer``: whole-model or split inference."""
        model = self.dataplane.model(*_model_path(request))
        limits = self.dataplane.limits
        header_length = request.headers.get(P.HEADER_LENGTH)
        encoding = request.headers.get("content-encoding")
        declared = _declared_length(request, limits.max_body_bytes)
        limit = limits.max_body_bytes
        if header_length is None and _identity(encoding):  # the body is all JSON: bounded by the model's inputs
            limit = min(limit, self.dataplane.max_json_bytes(model))
            if declared is not None and declared > limit:
                raise ProtocolError(
                    413, f"JSON body of {declared} bytes exceeds what this model's inputs need ({limit})"
                )
        async with self.admission.admit(declared or 0) as admission:
            body = await _read_body(request, limit, admission, limits.body_timeout_s, declared=declared)
            arrived = time.perf_counter()
            answer = partial(self._answer, model, body, header_length, encoding, arrived)
            return await self.admission.run(answer)

    def _answer(
        self,
        model: ServedModel,
        body: bytes | bytearray,
        header_length: str | None,
        encoding: str | None,
        arrived: float,
    ) -> Response:
        """Decode the body, run the inference, encode the response (on a worker thread)."""
        started = time.perf_counter()
        body = _decompress(body, encoding, self.dataplane.limits.max_body_bytes)
        max_json = self.dataplane.max_json_bytes(model)
        _check_json_part(body, header_length, max_json, self.dataplane.max_json_values(model))
        header, binary = P.split_body(body, header_length, max_json_bytes=max_json)
        result = self.dataplane.infer(model, header, binary)
        queue_ms = (started - arrived) * 1e3 + result.waited_ms
        return _inference_response(result, queue_ms=queue_ms, arrived=arrived)


def _model_path(request: Request) -> tuple[str, str | None]:
    """The model name and version (None when the path has none) of a ``/v2/models/...`` route."""
    return request.path_params["name"], request.path_params.get("version")


def _inference_response(result: InferenceResult, queue_ms: float, arrived: float) -> Response:
    """The HTTP response of an inference: the timings in its parameters and ``Server-Timing``, the binary layout."""
    timings = {P.R_QUEUE: queue_ms, **result.timings, P.R_SERVER: (time.perf_counter() - arrived) * 1e3}
    result.header.setdefault("parameters", {}).update({k: round(v, 4) for k, v in timings.items()})
    content, json_len = P.body_parts(result.header, result.blobs)
    # Server-Timing names: jointdnn_compute_ms -> compute
    headers = {"Server-Timing": ", ".join(f"{k[len('jointdnn_') : -3]};dur={v:.3f}" for k, v in timings.items())}
    if json_len is None:
        headers["Content-Type"] = "application/json"
    else:
        headers["Content-Type"] = "application/octet-stream"
        headers[P.HEADER_LENGTH] = str(json_len)
    return Response(content, status_code=200, headers=headers)


def _identity(encoding: str | None) -> bool:
    """Whether ``Content-Encoding`` leaves the body as it is."""
    return encoding is None or encoding.strip().lower() in ("", "identity")


def _declared_length(request: Request, limit: int) -> int | None:
    """The body's ``Content-Length`` (None when not given); 413 when over ``limit``, before any byte is read."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    length = P.parse_decimal(declared, "Content-Length")
    if length > limit:
        raise ProtocolError(413, f"request body of {length} bytes exceeds the server's limit of {limit}")
    return length


async def _read_body(
    request: Request, limit: int, admission: Admission, timeout_s: float, *, declared: int | None
) -> bytearray:
    """The request body within ``timeout_s`` (408), refusing more than ``limit`` bytes (413) by counting.

    The body grows in one buffer as it arrives (never held twice, and a slow
    sender holds only what it has sent). Bytes of a body without a
    ``Content-Length`` (``declared``: already counted against the admission's
    budget) are counted as they arrive (503 when the budget is spent).
    """
    import anyio

    body = bytearray()
    total = 0
    over = False
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                total += len(chunk)
                if over or total > limit:
                    # keep reading (bounded) and discarding, so that the client gets the answer, not a reset
                    over = True
                    body = bytearray()
                    if total > 4 * limit:
                        break
                    continue
                if declared is None:
                    admission.hold(len(chunk))
                body += chunk
    except TimeoutError:
        raise ProtocolError(408, f"the request body did not arrive within {timeout_s:g} s") from None
    except ProtocolError:
        raise
    except Exception:  # the client went away mid-body, or similar
        raise ProtocolError(400, "could not read the request body") from None
    if over:
        raise ProtocolError(413, f"request body exceeds the server's limit of {limit} bytes")
    return body


def _check_json_part(body: bytes | bytearray, header_length: str | None, max_bytes: int, max_values: int) -> None:
    """Refuse (413) a JSON part longer than ``max_bytes`` or with more than ``max_values`` values, before parsing it.

    Values are counted by their separating commas (a C-speed scan), so a
    body of many small numbers cannot grow into far more Python objects
    than the model's inputs can take.
    """
    json_len = len(body) if header_length is None else min(len(body), P.parse_decimal(header_length, P.HEADER_LENGTH))
    if json_len > max_bytes:
        raise ProtocolError(413, f"JSON part of {json_len} bytes exceeds what this model's inputs need ({max_bytes})")
    if body.count(b",", 0, json_len) > max_values:
        raise ProtocolError(413, f"JSON part holds more values than this model's inputs take ({max_values})")


def _decompress(body: bytes | bytearray, encoding: str | None, limit: int) -> bytes | bytearray:
    """The body after HTTP ``Content-Encoding`` (gzip or deflate), never more than ``limit`` bytes (413)."""
    if _identity(encoding):
        return body
    enc = (encoding or "").strip().lower()
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
