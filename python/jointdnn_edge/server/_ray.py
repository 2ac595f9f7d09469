"""The endpoint on Ray Serve: the app of :func:`~._app.create_app` in every replica of one Ray Serve deployment.

Each replica is a Ray actor that builds the same Starlette app as ``serve``
does (routes, data plane, registry, auth, limits, frames, digest check) from
the configuration of :func:`~._runner.server_config`, so it loads the models
once and caches its layer-range sessions for its lifetime. A replica becomes
ready (Ray routes to it, ``serve.run`` returns) only once its preload has
finished. Ray Serve's HTTP proxy takes the connections and forwards each
request's ASGI messages to a replica, which answers with a
``X-JointDNN-Replica`` header naming its Ray node and process.

Needs the optional ``ray[serve]`` (``pip install "jointdnn-edge[ray]"``);
nothing here imports it until an endpoint starts.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import protocol as P
from ..errors import ConfigError, ServerError
from ._limits import Limits, limits_from_config
from ._runner import app_from_config, server_config

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REPLICA_HEADER", "RayEndpoint", "parse_autoscale", "ray_app", "serve_on_ray"]

#: response header naming the replica that answered: ``<Ray node id>/<process id>``
REPLICA_HEADER = "x-jointdnn-replica"
#: the Ray Serve application's name (one per cluster)
APP_NAME = "jointdnn-edge"
#: Serve's logging for the proxy, the controller and the replicas: no line per request (it costs CPU per request)
QUIET_LOGS = {"log_level": "WARNING", "enable_access_log": False}


def _import_ray() -> Any:
    """The ``ray`` module with Ray Serve; :class:`ConfigError` naming the extra when it is not installed."""
    # Serve's background threads (a handle's router) can call Ray after ray.shutdown(); Ray would then start a
    # new instance from that thread and exit the process with status 1 when that fails. Set before Ray is imported.
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    try:
        import ray
        import ray.serve
    except ImportError as e:
        raise ConfigError(f'--ray needs Ray Serve: pip install "jointdnn-edge[ray]" ({e})') from None
    return ray


def parse_autoscale(spec: str) -> tuple[int, int]:
    """``"MIN:MAX"`` as two replica counts, 0 <= MIN <= MAX, MAX >= 1; :class:`ConfigError` otherwise."""
    low, sep, high = spec.partition(":")
    try:
        bounds = (int(low), int(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or not (0 <= bounds[0] <= bounds[1] and bounds[1] >= 1):
        raise ConfigError(f"autoscale must be MIN:MAX replica counts with 0 <= MIN <= MAX and MAX >= 1, got {spec!r}")
    return bounds


class ReplicaHeader:
    """ASGI middleware adding ``X-JointDNN-Replica: <tag>`` to every HTTP response (which replica answered)."""

    def __init__(self, app: ASGIApp, tag: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.encode(), tag.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)


class Replica:
    """One Ray Serve replica: the app built from ``config`` (models loaded, preload finished) before it serves.

    Ray Serve wraps this class (``serve.ingress()``) and calls
    ``__serve_build_asgi_app__`` once the constructor has returned.
    """

    def __init__(self, config: dict[str, Any], token: str | None) -> None:
        ray = _import_ray()
        self.endpoint = app_from_config(config, token or os.environ.get(P.TOKEN_ENV) or None)
        self.preload = self.endpoint.state.jointdnn_preload
        self.preload.done.wait()  # not ready (no traffic routed here) until the preload has finished
        self.endpoint.add_middleware(ReplicaHeader, tag=f"{ray.get_runtime_context().get_node_id()}/{os.getpid()}")

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self.endpoint

    def check_health(self) -> None:
        """Ray Serve's periodic health check: healthy once preloaded (always, after the constructor)."""
        if not self.preload.done.is_set():
            raise ServerError("replica still preloading")


def deployment_options(
    limits: Limits, *, replicas: int, autoscale: tuple[int, int] | None, replica_cpus: float
) -> dict[str, Any]:
    """The Ray Serve deployment's options: replica count or autoscaling, CPUs, and queues sized by ``limits``.

    A replica takes as many requests at once as its admission limits admit
    (``max_concurrency + max_queue``), which queue and refuse (503) as
    under uvicorn: Ray's router, which backs off and probes again while
    every replica is full, never holds a request (with a replica taking
    only a few, it added seconds of latency and cut throughput tenfold).
    The router picks the shorter of two replicas' queues. Autoscaling
    targets one request per compute slot, queued ones included.
    """
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": replica_cpus},
        "max_ongoing_requests": limits.max_concurrency + limits.max_queue,
        "health_check_period_s": 2.0,
    }
    if autoscale is None:
        options["num_replicas"] = replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": autoscale[0],
            "initial_replicas": max(1, autoscale[0]),
            "max_replicas": autoscale[1],
            "target_ongoing_requests": limits.max_concurrency,
            "upscale_delay_s": 3.0,
            "downscale_delay_s": 60.0,
        }
    return options


def application(config: dict[str, Any], token: str | None, options: dict[str, Any]) -> Any:
    """The Ray Serve application: one deployment of :class:`Replica` built from ``config``, with ``options``."""
    serve = _import_ray().serve
    return serve.deployment(name="jointdnn", **options)(serve.ingress()(Replica)).bind(config, token)


def ray_app(args: dict[str, Any]) -> Any:
    """Ray Serve application builder (``import_path: jointdnn_edge.server:ray_app`` in a Serve config or RayService).

    ``args`` is the server configuration as :func:`~._runner.server_config`
    writes it (at least ``models``; ``size``, ``threads``, ``preload`` and the
    :class:`Limits` fields optional), plus ``replica_cpus`` (default 1); the
    token comes from ``JOINTDNN_EDGE_TOKEN`` in the replicas' environment.
    Replica counts and autoscaling go in the config's ``deployments`` section,
    which overrides the defaults set here (one replica).
    """
    cfg = dict(args)
    cpus = float(cfg.pop("replica_cpus", 1.0))
    limits = limits_from_config(cfg)
    cfg.setdefault("threads", max(1, math.ceil(cpus)))
    options = deployment_options(limits, replicas=1, autoscale=None, replica_cpus=cpus)
    return application(cfg, None, options)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RayEndpoint:
    """The endpoint deployed on Ray Serve: start it, use :attr:`url`, stop it (or use as a context manager).

    ``models`` and the options from ``size`` to ``preload`` are those of
    :func:`~._runner.serve`. ``address``: join that Ray cluster (``None``:
    start a local Ray instance with ``num_cpus`` CPUs, default enough for
    the replicas, and shut it down on :meth:`stop`). ``replicas`` fixed
    replicas, or ``autoscale=(MIN, MAX)`` on queue length; each replica
    reserves ``replica_cpus`` CPUs and runs ``threads`` compute threads
    (default: its CPUs, rounded up). The proxy listens on ``host:port``
    (0: a free port) on the head node only (``proxy_location``).
    :meth:`start` raises :class:`~jointdnn_edge.ServerError` when the
    replicas are not all running within ``ready_timeout_s``.
    """

    def __init__(
        self,
        models: Sequence[str],
        *,
        address: str | None = None,
        replicas: int = 1,
        autoscale: tuple[int, int] | None = None,
        replica_cpus: float = 1.0,
        num_cpus: int | None = None,
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
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        proxy_location: str = "HeadOnly",
        ready_timeout_s: float = 300.0,
    ) -> None:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            raise ConfigError(f"replicas must be a positive integer, got {replicas!r}")
        if not (isinstance(replica_cpus, (int, float)) and math.isfinite(replica_cpus) and replica_cpus > 0):
            raise ConfigError(f"replica_cpus must be a positive number, got {replica_cpus!r}")
        self.address = address
        self.host = host
        self.port = port or _free_port(host)
        self.limits = limits or Limits(max_concurrency=max(1, math.ceil(replica_cpus)))
        self.token = token
        self.config = server_config(
            models,
            size=size,
            merge_trivial=merge_trivial,
            threads=threads or max(1, math.ceil(replica_cpus)),
            optimization=optimization,
            slowdown=slowdown,
            limits=self.limits,
            preload=preload,
        )
        self.options = deployment_options(
            self.limits, replicas=replicas, autoscale=autoscale, replica_cpus=replica_cpus
        )
        most = autoscale[1] if autoscale is not None else replicas
        self.num_cpus = num_cpus or max(os.cpu_count() or 1, math.ceil(most * replica_cpus))
        self.tls = {"ssl_keyfile": ssl_keyfile, "ssl_certfile": ssl_certfile}
        self.proxy_location = proxy_location
        self.ready_timeout_s = float(ready_timeout_s)
        self._started_ray = False
        self._running = False

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the Ray Serve proxy."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls['ssl_certfile'] else 'http'}://{host}:{self.port}"

    def start(self) -> RayEndpoint:
        """Connect to (or start) Ray, deploy the replicas; returns once every replica is loaded and ready."""
        ray = _import_ray()
        serve = ray.serve
        if ray.is_initialized():
            raise ServerError("Ray is already initialized in this process; one RayEndpoint per process")
        # One proxy on the head: it must spread requests over every node's replicas, not fill its own node's
        # first (Ray's default for a proxy on every node). The Serve controller and its proxy inherit this job's
        # environment when this job starts Serve.
        runtime_env = {"env_vars": {"RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0"}}
        if self.proxy_location != "HeadOnly":
            runtime_env = {}
        if self.address is None:
            ray.init(
                address="local",
                num_cpus=self.num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env=runtime_env,
            )
            self._started_ray = True
        else:
            ray.init(address=self.address, log_to_driver=False, runtime_env=runtime_env)
        try:
            serve.start(
                proxy_location=self.proxy_location,
                http_options={"host": self.host, "port": self.port, **self.tls},
                logging_config=QUIET_LOGS,
            )
            self._running = True
            self._deploy(application(self.config, self.token, self.options))
        except BaseException:
            self.stop()
            raise
        return self

    def _deploy(self, app: Any) -> None:
        """Deploy ``app`` and wait until every replica runs, within ``ready_timeout_s`` (else ServerError).

        On this thread (Serve's ``run`` from another thread left a thread behind that touched Ray after
        ``ray.shutdown()``, which made Ray exit the process with status 1).
        """
        serve = _import_ray().serve
        target = serve.RunTarget(target=app, name=APP_NAME, route_prefix="/", logging_config=QUIET_LOGS)
        serve.run_many([target], wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            status = serve.status().applications.get(APP_NAME)
            state = str(getattr(status, "status", "NOT_STARTED"))
            if state.endswith("RUNNING"):
                return
            if state.endswith("DEPLOY_FAILED"):
                raise ServerError(f"the deployment failed: {self._status()}")
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the replicas were not all running within {self.ready_timeout_s:g} s "
                    f"(not enough CPUs in the cluster for the replicas?): {self._status()}"
                )
            time.sleep(0.2)

    def _status(self) -> str:
        """Ray Serve's message about the deployment (why replicas are not running)."""
        try:
            app = _import_ray().serve.status().applications.get(APP_NAME)
            return "; ".join(f"{d.status}: {d.message}" for d in app.deployments.values()) if app else "no application"
        except Exception as e:  # the status is only an explanation
            return f"no status ({e})"

    def replica_count(self) -> int:
        """Replicas running now (Ray Serve's status)."""
        ray = _import_ray()
        app = ray.serve.status().applications.get(APP_NAME)
        if app is None:
            return 0
        return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())

    def stop(self) -> None:
        """Delete the application; shut Serve and Ray down if this endpoint started Ray, else disconnect."""
        ray = _import_ray()
        serve = ray.serve
        if not ray.is_initialized():
            return
        try:
            if self._running and not self._started_ray:
                serve.delete(APP_NAME)  # a cluster we joined keeps running; Ray we started goes down whole below
        finally:
            self._running = False
            ray.shutdown()

    def __enter__(self) -> RayEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_on_ray(models: Sequence[str], *, say: Any = print, **options: Any) -> None:
    """Run a :class:`RayEndpoint` (``options`` as it takes them) until Ctrl-C or SIGTERM, then tear it down."""

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    endpoint = RayEndpoint(models, **options)
    try:
        endpoint.start()
        say(f"serving on {endpoint.url} with Ray Serve ({endpoint.replica_count()} replicas ready); Ctrl-C stops")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        say("stopping")
    finally:
        endpoint.stop()
        signal.signal(signal.SIGTERM, previous)
