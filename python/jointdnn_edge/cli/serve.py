"""``jointdnn-edge serve MODEL...``: the cloud endpoint (Open Inference Protocol over HTTP, uvicorn)."""

from __future__ import annotations

import os
from typing import Optional

import typer

from ..errors import JointDNNError
from ._app import app, err_console


@app.command("serve")
def serve_command(
    models: list[str] = typer.Argument(..., help="Models to serve: PATH (.onnx/.tflite), NAME=PATH, or zoo:NAME."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
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
    max_queue: int = typer.Option(256, "--max-queue", help="Requests waiting beyond that before 503."),
    slowdown: float = typer.Option(1.0, "--slowdown", help="Emulate a slower cloud: stretch compute by this factor."),
    ssl_keyfile: Optional[str] = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    ssl_certfile: Optional[str] = typer.Option(None, "--ssl-certfile", help="TLS certificate chain (PEM)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve MODELs to JointDNN sessions and to any Open Inference Protocol (KServe v2) client."""
    from ..server.app import Limits, MiB, serve

    try:
        limits = Limits(
            max_body_bytes=int(max_body_mb * MiB),
            max_decoded_bytes=int(max_decoded_mb * MiB),
            max_concurrency=max_concurrency or max(1, os.cpu_count() or 1),
            max_queue=max_queue,
        )
        if (ssl_keyfile is None) != (ssl_certfile is None):
            raise typer.BadParameter("TLS needs both --ssl-keyfile and --ssl-certfile")
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
