"""The cloud endpoint: an Open Inference Protocol (KServe v2) server that runs any layer range of its models.

``create_app(models, token=..., limits=...)`` gives the ASGI app;
``serve([...])`` runs it under uvicorn (``jointdnn-edge serve``);
``BackgroundServer(app)`` runs it on a thread; ``RayEndpoint([...])``
deploys it on Ray Serve (``serve --ray``; ``ray_app`` is its application
builder for Serve configs and KubeRay). :mod:`jointdnn_edge.protocol`
holds the message encoding shared with the client. See ``docs/server.md``.

Inside, the way KServe and MLServer are built: REST routes (``_routes``) over
a data plane (``_dataplane``: whole-model and split inference, one timed run)
over the model registry (``_registry``); authentication (``_auth``), limits
and admission (``_limits``), errors as HTTP statuses (``_errors``), the
assembled app (``_app``) and the runners (``_runner``). The package imports
none of them, nor starlette or uvicorn, until a name below is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError

if TYPE_CHECKING:
    from ._app import create_app
    from ._limits import Limits
    from ._ray import RayEndpoint, ray_app
    from ._registry import load_models
    from ._runner import BackgroundServer, app_from_env, serve

__all__ = [
    "BackgroundServer",
    "Limits",
    "ProtocolError",
    "RayEndpoint",
    "app_from_env",
    "create_app",
    "load_models",
    "ray_app",
    "serve",
]

#: public name -> the private module defining it (imported on first use: some import starlette)
_LAZY = {
    "BackgroundServer": "._runner",
    "Limits": "._limits",
    "app_from_env": "._runner",
    "create_app": "._app",
    "load_models": "._registry",
    "RayEndpoint": "._ray",
    "ray_app": "._ray",
    "serve": "._runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jointdnn_edge.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
