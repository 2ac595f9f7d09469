"""Running the app: on a thread (:class:`BackgroundServer`), under uvicorn (:func:`serve`), or in worker processes.

Worker processes (``serve(workers=N)``, or any ASGI server with
``--factory jointdnn_edge.server:app_from_env``) build their app from the
environment (:func:`app_from_env`). Under uvicorn, connections go through the
connection guard (:mod:`._guard`: header timeout, body deadline, connection cap).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import protocol as P
from ..errors import ConfigError, ServerError
from ._app import create_app
from ._limits import ENV_CONFIG, Limits, limits_from_config
from ._registry import load_models

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["BackgroundServer", "app_from_config", "app_from_env", "serve", "server_config"]


class BackgroundServer:
    """A uvicorn server for ``app`` on a daemon thread (tests, the demo, notebooks).

    Binds ``host:port`` before starting (``port=0``: a free port), so
    :attr:`url` is valid as soon as :meth:`start` returns. ``options`` go to
    ``uvicorn.Config`` (for example ``ssl_keyfile`` and ``ssl_certfile``
    for TLS). Unless ``options`` name another ``http`` protocol, connections
    go through the connection guard with the limits of ``app`` (an app of
    :func:`create_app`; the defaults otherwise). Use as a context manager, or
    call :meth:`start` and :meth:`stop`.
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
        """Start serving; returns once the server accepts connections (ServerError if it cannot)."""
        import uvicorn

        from ._guard import guarded_protocol

        options = dict(self._options)
        if "http" not in options:
            admission = getattr(getattr(self.app, "state", None), "jointdnn", None)
            options["http"] = guarded_protocol(getattr(admission, "limits", None) or Limits())
        config = uvicorn.Config(self.app, log_level=self._log_level, access_log=False, lifespan="off", **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="jointdnn-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServerError(f"the server on {self.url} did not start")
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


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory jointdnn_edge.server:app_from_env`` and for worker processes.

    Reads a JSON object from ``JOINTDNN_EDGE_SERVE_CONFIG`` (as
    :func:`app_from_config` takes it) and the token from
    ``JOINTDNN_EDGE_TOKEN``; :class:`~jointdnn_edge.ConfigError` when the
    variable is missing or not such an object.
    """
    raw = os.environ.get(ENV_CONFIG)
    try:
        cfg = json.loads(raw or "null")
    except ValueError as e:
        raise ConfigError(f"{ENV_CONFIG} is not valid JSON: {e}") from None
    return app_from_config(cfg, os.environ.get(P.TOKEN_ENV) or None)


def app_from_config(cfg: Any, token: str | None) -> Starlette:
    """The app a server configuration describes (worker processes, Ray Serve replicas).

    ``cfg``: a dict with ``models`` (a list of model specs as
    :func:`load_models` takes them) and optionally ``size``,
    ``merge_trivial``, ``threads``, ``optimization``, ``slowdown``,
    ``preload`` and the :class:`Limits` fields, as :func:`server_config`
    writes it; :class:`~jointdnn_edge.ConfigError` when it is not such a dict.
    """
    if not isinstance(cfg, dict) or not isinstance(cfg.get("models"), list):
        raise ConfigError(
            f"the server configuration ({ENV_CONFIG}) must be a JSON object with at least 'models' "
            "(a list of model specs)"
        )
    graphs = load_models(cfg["models"], size=cfg.get("size"), merge_trivial=bool(cfg.get("merge_trivial", False)))
    return create_app(
        graphs,
        token=token,
        limits=limits_from_config(cfg),
        threads=cfg.get("threads"),
        optimization=cfg.get("optimization", "all"),
        slowdown=cfg.get("slowdown", 1.0),
        preload=cfg.get("preload"),
    )


def server_config(
    models: Sequence[str],
    *,
    size: str | None = None,
    merge_trivial: bool = False,
    threads: int | None = None,
    optimization: str = "all",
    slowdown: float = 1.0,
    limits: Limits | None = None,
    preload: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The JSON-able configuration :func:`app_from_config` builds an app from (each process loads its own models)."""
    lim = limits or Limits()
    return {
        "models": list(models),
        "size": size,
        "merge_trivial": merge_trivial,
        "threads": threads,
        "optimization": optimization,
        "slowdown": slowdown,
        "preload": list(preload or []),
        **{k: getattr(lim, k) for k in Limits.__dataclass_fields__},
    }


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
    preload: Sequence[str] | None = None,
    workers: int = 1,
    ssl_keyfile: str | None = None,
    ssl_certfile: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``models`` (specs as :func:`load_models` takes them) with uvicorn until interrupted.

    ``token`` defaults to the ``JOINTDNN_EDGE_TOKEN`` environment variable.
    ``workers`` > 1 runs that many processes (each loads the models and
    preloads ``preload``, as :func:`create_app` takes it; any can answer any
    request). ``ssl_keyfile``/``ssl_certfile`` enable TLS. Connections go
    through the connection guard (``limits``' header and body timeouts and
    connection cap, per process).
    """
    import uvicorn

    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    token = token if token is not None else (os.environ.get(P.TOKEN_ENV) or None)
    lim = limits or Limits()
    tls = {"ssl_keyfile": ssl_keyfile, "ssl_certfile": ssl_certfile}
    guard = "jointdnn_edge.server._guard:GuardedH11Protocol"  # reads the limits from the environment, as below
    if workers > 1:
        cfg = server_config(
            models,
            size=size,
            merge_trivial=merge_trivial,
            threads=threads,
            optimization=optimization,
            slowdown=slowdown,
            limits=lim,
            preload=preload,
        )
        os.environ[ENV_CONFIG] = json.dumps(cfg)
        if token:
            os.environ[P.TOKEN_ENV] = token
        uvicorn.run(
            "jointdnn_edge.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            http=guard,
            **tls,  # type: ignore[arg-type]
        )
        return
    from ._guard import guarded_protocol

    graphs = load_models(models, size=size, merge_trivial=merge_trivial)
    app = create_app(
        graphs,
        token=token,
        limits=lim,
        threads=threads,
        optimization=optimization,
        slowdown=slowdown,
        preload=preload,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=guarded_protocol(lim),
        **tls,  # type: ignore[arg-type]
    )
