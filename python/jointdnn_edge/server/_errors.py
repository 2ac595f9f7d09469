"""Errors as HTTP answers: the status of each error class, and the one handler that answers with it.

The status comes from the error's class (or, for a :class:`ProtocolError`,
from its ``status``), never from its message. Every error answer is a JSON
object ``{"error": "<what was wrong>"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import (
    CodecError,
    ConfigError,
    ExecutionError,
    FrameTooLargeError,
    JointDNNError,
    ModelError,
    ProtocolError,
)
from ..protocol import dumps_json

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["error_response", "json_error", "json_response", "route_error", "status_of"]

logger = logging.getLogger("jointdnn_edge.server")

#: Error class -> (HTTP status, message), most specific first; the first class the error is an instance of
#: answers. A status of None means the error's own ``status`` (a :class:`ProtocolError`). In the message,
#: ``{error}`` is the error's text and ``{kind}`` its class name.
ERROR_STATUS: tuple[tuple[type[BaseException], int | None, str], ...] = (
    (ProtocolError, None, "{error}"),
    (FrameTooLargeError, 413, "bad activation frame: {error}"),
    (CodecError, 422, "bad activation frame: {error}"),
    (ModelError, 422, "{error}"),
    (ConfigError, 422, "{error}"),
    (ExecutionError, 500, "inference failed: {error}"),
    (JointDNNError, 500, "{kind}: {error}"),
    (MemoryError, 507, "not enough memory for this request"),
    (Exception, 500, "internal error: {kind}"),  # a bug: logged with its traceback, not told to the client
)

#: Headers that go with a status whatever the error: a 503 means "nothing was done, retry"; after a 408
#: (a body too slow to arrive) the server closes the connection rather than wait for the rest.
_STATUS_HEADERS: dict[int, dict[str, str]] = {503: {"Retry-After": "1"}, 408: {"Connection": "close"}}


def _rule(exc: BaseException) -> tuple[int, str]:
    """The status and message the table gives ``exc``."""
    for cls, status, template in ERROR_STATUS:
        if isinstance(exc, cls):
            if status is None:
                status = exc.status if isinstance(exc, ProtocolError) else 500
            return status, template.format(error=exc, kind=type(exc).__name__)
    return 500, f"internal error: {type(exc).__name__}"


def status_of(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (see :data:`ERROR_STATUS`)."""
    return _rule(exc)[0]


def json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A compact JSON response."""
    from starlette.responses import Response

    body = dumps_json(payload)
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error answer: ``{"error": message}`` with ``status`` (and the headers that status always carries)."""
    return json_response({"error": message}, status, {**_STATUS_HEADERS.get(status, {}), **(headers or {})})


def error_response(exc: BaseException, where: str = "a request") -> Response:
    """The answer to an exception a route or the data plane raised; logs those that are bugs (``where`` failed)."""
    status, message = _rule(exc)
    if not isinstance(exc, (JointDNNError, MemoryError)):
        logger.error("unexpected error answering %s", where, exc_info=exc)
    return json_error(status, message)


async def route_error(request: Request, exc: Exception) -> Response:
    """The answer to a request no route takes (Starlette's ``HTTPException``: 404 no such path, 405 wrong method)."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None) or "error"
    if status == 404:
        detail = f"no route {request.url.path!r} (see docs/server.md for the endpoints)"
    elif status == 405:
        detail = f"method {request.method} is not allowed on {request.url.path!r}"
    return json_error(status, str(detail))
