"""The ASGI app: the model registry, the data plane over it, the REST routes over that, and authentication in front."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from ..errors import ConfigError
from ._auth import BearerAuthMiddleware
from ._dataplane import DataPlane
from ._errors import route_error
from ._limits import AdmissionLimiter, Limits
from ._loading import Preloader, preload_plan
from ._registry import ModelRegistry
from ._routes import RestEndpoints

if TYPE_CHECKING:
    from ..lossy import LossySpec
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
    preload: Sequence[str] | None = None,
    preload_log: TextIO | None = None,
    lossy_specs: Iterable[LossySpec] = (),
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

    ``preload``: layer ranges to load before the server says it is ready,
    as specs ``[MODEL=]whole``, ``[MODEL=]all-groups:N`` (every range of at
    most N layers) or ``[MODEL=]lut:FILE`` (the cloud ranges of a lookup
    table's schedules). They load on a background thread started here, with
    progress lines on ``preload_log`` (default stderr); until it has finished,
    ``/v2/health/ready`` and the models' ready routes answer 503 (``live``
    answers 200, and inference requests are served, sharing the loads).

    ``lossy_specs``: the lossy specs (``docs/lossy.md``) split requests may
    name to send an input lossily (``docs/wire-format.md`` §9), by digest.

    ``app.state.jointdnn.pending`` counts the requests admitted (reading
    their body, waiting or computing) and not finished, and
    ``app.state.jointdnn_preload`` is the :class:`~._loading.Preloader`
    (``done``, ``loaded``, ``failed``), for tests and monitoring.
    """
    if not (isinstance(slowdown, (int, float)) and math.isfinite(slowdown) and slowdown >= 1.0):
        raise ConfigError(f"slowdown must be a finite number >= 1, got {slowdown!r}")
    if token is not None and not token:
        raise ConfigError("token must be a non-empty string or None")
    if limits is not None and not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a Limits, got {type(limits).__name__}")
    registry = ModelRegistry(models, threads=threads, optimization=optimization, executors=executors)
    limits = limits or Limits()
    if isinstance(preload, str):
        raise ConfigError(f"preload must be a list of specs, got the string {preload!r}")
    plan = preload_plan(registry, preload or [])
    admission = AdmissionLimiter(limits)
    from ..lossy import LossySpec

    specs = list(lossy_specs)
    if not all(isinstance(spec, LossySpec) for spec in specs):
        raise ConfigError("lossy_specs must be LossySpec values")
    dataplane = DataPlane(registry, limits, float(slowdown), {spec.digest.hex(): spec for spec in specs})
    preloader = Preloader(dataplane.loader, plan, preload_log)
    dataplane.ready = preloader.done
    app = Starlette(
        routes=RestEndpoints(dataplane, admission).routes(),
        exception_handlers={HTTPException: route_error},
        middleware=[Middleware(BearerAuthMiddleware, token=token)],
    )
    app.state.jointdnn = admission
    app.state.jointdnn_preload = preloader.start()
    return app
