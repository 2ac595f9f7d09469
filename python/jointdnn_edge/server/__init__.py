"""The cloud endpoint: an Open Inference Protocol (KServe v2) server that runs any layer range of its models.

``create_app(models, token=..., limits=...)`` gives the ASGI app;
``serve([...])`` runs it under uvicorn (``jointdnn-edge serve``);
``BackgroundServer(app)`` runs it on a thread. :mod:`jointdnn_edge.protocol`
holds the message encoding shared with the client.
See ``docs/server.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError

if TYPE_CHECKING:
    from .app import BackgroundServer, Limits, app_from_env, create_app, load_models, serve

__all__ = ["BackgroundServer", "Limits", "ProtocolError", "app_from_env", "create_app", "load_models", "serve"]


def __getattr__(name: str) -> Any:
    # the app module imports starlette: load it on first use
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'jointdnn_edge.server' has no attribute {name!r}")
