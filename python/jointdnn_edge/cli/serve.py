"""``jointdnn-edge serve MODEL...``: the cloud endpoint (Open Inference Protocol over HTTP, uvicorn)."""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import typer

from ..errors import JointDNNError
from ._app import app, err_console

_MIB = 1 << 20
#: uvicorn's log levels
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _check_tls(keyfile: str, certfile: str) -> None:
    """Load the key and certificate once, so that a bad pair fails with a message that names the files."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as e:
        reason = getattr(e, "reason", None) or e.strerror or str(e)
        raise typer.BadParameter(
            f"cannot load the TLS certificate {certfile} with the key {keyfile} "
            f"(PEM files, the key unencrypted): {reason}"
        ) from None


@app.command("serve")
def serve_command(
    models: list[str] = typer.Argument(..., help="Models to serve: PATH (.onnx/.tflite), NAME=PATH, or zoo:NAME."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    token: Optional[str] = typer.Option(
        None,
        "--token",
        envvar="JOINTDNN_EDGE_TOKEN",
        show_envvar=True,
        help="Require 'Authorization: Bearer TOKEN' (health checks stay open).",
    ),
    size: Optional[str] = typer.Option(None, "--size", help="zoo: preset full, small or tiny."),
    merge_trivial: bool = typer.Option(False, "--merge-trivial", help="Merge trivial ops into their layer."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime compute threads per request."),
    optimization: str = typer.Option("all", "--optimization", help="onnxruntime graph optimization level."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each loads the models)."),
    max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="Largest request body (MiB)."),
    max_decoded_mb: float = typer.Option(256.0, "--max-decoded-mb", help="Largest decoded tensors per request (MiB)."),
    max_concurrency: Optional[int] = typer.Option(
        None, "--max-concurrency", help="Requests computing at once (default: CPU count)."
    ),
    max_queue: int = typer.Option(
        256, "--max-queue", help="Requests admitted beyond that (reading or waiting) before 503."
    ),
    max_inflight_mb: float = typer.Option(
        64.0, "--max-inflight-mb", help="Request bodies held at once, all requests together (MiB), before 503."
    ),
    max_connections: int = typer.Option(
        1024, "--max-connections", min=1, help="Open connections at once; more are answered 503 and closed."
    ),
    header_timeout: float = typer.Option(
        10.0, "--header-timeout", help="Seconds for a request's headers to arrive; then the connection is closed."
    ),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", help="Seconds for a request's whole body to arrive after its headers (else 408)."
    ),
    send_timeout: float = typer.Option(
        30.0,
        "--send-timeout",
        help="Seconds for a response to be all sent once it waits for the client to read; then the connection is "
        "dropped.",
    ),
    preload: Optional[list[str]] = typer.Option(
        None,
        "--preload",
        help="Load layer ranges before saying ready: [MODEL=]whole, [MODEL=]all-groups:N or [MODEL=]lut:FILE "
        "(repeatable).",
    ),
    slowdown: float = typer.Option(1.0, "--slowdown", help="Emulate a slower cloud: stretch compute by this factor."),
    ssl_keyfile: Optional[str] = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    ssl_certfile: Optional[str] = typer.Option(None, "--ssl-certfile", help="TLS certificate chain (PEM)."),
    log_level: str = typer.Option(
        "info", "--log-level", help="uvicorn log level: critical, error, warning, info, debug or trace."
    ),
    ray: bool = typer.Option(False, "--ray", help="Deploy on Ray Serve (replicas, restarts, scaling; docs/ray.md)."),
    address: Optional[str] = typer.Option(
        None, "--address", help="--ray: join this Ray cluster (default: start a local Ray instance)."
    ),
    replicas: int = typer.Option(1, "--replicas", min=1, help="--ray: replicas, each loading the models."),
    autoscale: Optional[str] = typer.Option(
        None, "--autoscale", help="--ray: MIN:MAX replicas, scaled on queue length (instead of --replicas)."
    ),
    replica_cpus: float = typer.Option(1.0, "--replica-cpus", help="--ray: CPUs each replica reserves."),
) -> None:
    """Serve MODELs to JointDNN sessions and to any Open Inference Protocol (KServe v2) client."""
    from ..server import Limits, serve

    try:
        limits = Limits(
            max_body_bytes=int(max_body_mb * _MIB),
            max_decoded_bytes=int(max_decoded_mb * _MIB),
            max_concurrency=max_concurrency or max(1, math.ceil(replica_cpus) if ray else os.cpu_count() or 1),
            max_queue=max_queue,
            max_inflight_bytes=int(max_inflight_mb * _MIB),
            max_connections=max_connections,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            send_timeout_s=send_timeout,
        )
        if (ssl_keyfile is None) != (ssl_certfile is None):
            raise typer.BadParameter("TLS needs both --ssl-keyfile and --ssl-certfile")
        for option, tls_file in (("--ssl-keyfile", ssl_keyfile), ("--ssl-certfile", ssl_certfile)):
            if tls_file is not None and not os.path.isfile(tls_file):
                raise typer.BadParameter(f"{option}: no such file: {tls_file}")
        if ssl_keyfile is not None and ssl_certfile is not None:
            _check_tls(ssl_keyfile, ssl_certfile)
        if log_level.lower() not in _LOG_LEVELS:
            raise typer.BadParameter(f"--log-level must be one of {', '.join(_LOG_LEVELS)}, not {log_level!r}")
        if ray:
            _serve_on_ray(models, address, replicas, autoscale, replica_cpus, workers, dict(
                host=host, port=port, token=token or None, size=size, merge_trivial=merge_trivial, threads=threads,
                optimization=optimization, slowdown=slowdown, limits=limits, preload=preload or None,
                ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
            ))  # fmt: skip
            return
        if address is not None or autoscale is not None or replicas != 1:
            raise typer.BadParameter("--address, --replicas and --autoscale go with --ray")
        serve(
            models,
            host=host,
            port=port,
            token=token or None,
            size=size,
            merge_trivial=merge_trivial,
            threads=threads,
            optimization=optimization,
            slowdown=slowdown,
            limits=limits,
            preload=preload or None,
            workers=workers,
            ssl_keyfile=ssl_keyfile,
            ssl_certfile=ssl_certfile,
            log_level=log_level,
        )
    except typer.BadParameter:
        raise
    except (JointDNNError, ValueError, ImportError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None


def _serve_on_ray(
    models: list[str],
    address: Optional[str],
    replicas: int,
    autoscale: Optional[str],
    replica_cpus: float,
    workers: int,
    options: dict[str, Any],
) -> None:
    """``serve --ray``: the endpoint on Ray Serve until Ctrl-C (the options that only uvicorn has are refused)."""
    from ..server._ray import parse_autoscale, serve_on_ray

    if workers != 1:
        raise typer.BadParameter("--workers is for uvicorn; with --ray use --replicas or --autoscale")
    if autoscale is not None and replicas != 1:
        raise typer.BadParameter("give --replicas or --autoscale, not both")
    bounds = parse_autoscale(autoscale) if autoscale is not None else None
    serve_on_ray(models, address=address, replicas=replicas, autoscale=bounds, replica_cpus=replica_cpus, **options)
