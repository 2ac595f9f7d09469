"""The ASGI app: the model registry, the data plane over it, the REST routes over that, and authentication in front."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..errors import ConfigError
from ._auth import BearerAuthMiddleware
from ._dataplane import DataPlane
from ._errors import route_error
from ._limits import AdmissionLimiter, Limits
from ._registry import ModelRegistry
from ._routes import RestEndpoints

if TYPE_CHECKING:
    from ..models.executor import Executor
    from ..models.graph import ModelGraph

__all__ = ["create_app"]


def create_app(
    models: Iterable[ModelGraph] | Mapping[str, ModelGraph],
    *,
    token: str | None = None,
    limits: Limits | None = None,
    threads: int | None = None,
    optimization: str = "all",
    slowdown: float = 1.0,
    executors: Mapping[str, Executor] | None = None,
) -> Starlette:
    """The ASGI app serving ``models`` (by ``graph.name``, or by the mapping's keys).

    ``token``: require ``Authorization: Bearer <token>`` on every route but
    the health checks (None: no authentication). ``threads`` and
    ``optimization`` configure each model's executor (ONNX: onnxruntime
    intra-op threads and graph optimization; TFLite: interpreter threads);
    ``executors`` may give one per model name instead. ``slowdown`` >= 1
    emulates a slower or loaded cloud by stretching every computation to
    ``slowdown`` times its duration (for demos and tests). Invalid options
    raise :class:`~jointdnn_edge.ConfigError`.

    ``app.state.jointdnn.pending`` counts the requests admitted to compute
    and not finished (for tests and monitoring).
    """
    if not (isinstance(slowdown, (int, float)) and math.isfinite(slowdown) and slowdown >= 1.0):
        raise ConfigError(f"slowdown must be a finite number >= 1, got {slowdown!r}")
    if token is not None and not token:
        raise ConfigError("token must be a non-empty string or None")
    if limits is not None and not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a Limits, got {type(limits).__name__}")
    registry = ModelRegistry(models, threads=threads, optimization=optimization, executors=executors)
    limits = limits or Limits()
    admission = AdmissionLimiter(limits)
    endpoints = RestEndpoints(DataPlane(registry, limits, float(slowdown)), admission)
    app = Starlette(
        routes=endpoints.routes(),
        exception_handlers={HTTPException: route_error},
        middleware=[Middleware(BearerAuthMiddleware, token=token)],
    )
    app.state.jointdnn = admission
    return app
