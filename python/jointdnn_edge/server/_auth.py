"""Bearer-token authentication, as pure ASGI middleware in front of the app."""

from __future__ import annotations

import hmac
from typing import Any

from ._errors import json_error

__all__ = ["BearerAuthMiddleware"]

#: Routes that need no token: load balancers' health checks (they say nothing about the models).
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")


class BearerAuthMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every HTTP route but :data:`OPEN_PATHS` (None: lets all in).

    The token is compared in constant time. 401 for a missing or malformed
    header, 403 for a wrong token, each with a ``WWW-Authenticate`` header.
    """

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._token is None or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        auth = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                auth = value
                break
        scheme, _, given = auth.partition(b" ")
        if not auth:
            response = json_error(401, "missing bearer token", {"WWW-Authenticate": 'Bearer realm="jointdnn-edge"'})
        elif scheme.lower() != b"bearer" or not given.strip():
            response = json_error(
                401, "Authorization must be 'Bearer <token>'", {"WWW-Authenticate": 'Bearer error="invalid_request"'}
            )
        elif not hmac.compare_digest(given.strip(), self._token):
            response = json_error(403, "invalid bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
