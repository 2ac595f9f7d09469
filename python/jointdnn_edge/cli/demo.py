"""``jointdnn-edge demo``: mobile-only vs cloud-only vs JointDNN on a local server, under 3G, 4G and Wi-Fi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import JointDNNError
from ._app import app, check_writable, console, err_console


@app.command("demo")
def demo_command(
    model: str = typer.Option("alexnet", "--model", help="Zoo model (see `jointdnn-edge zoo list`)."),
    size: str = typer.Option("small", "--size", help="Zoo size preset: tiny, small or full."),
    fmt: str = typer.Option("onnx", "--format", help="Model format: onnx or tflite."),
    networks: str = typer.Option("3g,4g,wifi", "--networks", help="Comma-separated network presets."),
    runs: int = typer.Option(3, "--runs", min=1, help="Measured inferences per strategy and network."),
    mobile_slowdown: float = typer.Option(
        20.0, "--mobile-slowdown", min=1.0, help="Emulated mobile device: this CPU (1 thread) this many times slower."
    ),
    max_group: int = typer.Option(4, "--max-group", min=1, help="Longest group of layers to profile."),
    objective: str = typer.Option("latency", "--objective", help="JointDNN objective: latency or energy."),
    output: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON."),
) -> None:
    """Build a zoo model, profile it, start a local cloud server, and compare mobile-only, cloud-only and JointDNN."""
    from ..demo import render, run_demo

    if output is not None:
        check_writable(output, "--json")
    try:
        result = run_demo(
            model,
            size=size,
            format=fmt,
            presets=[p.strip() for p in networks.split(",") if p.strip()],
            runs=runs,
            mobile_slowdown=mobile_slowdown,
            max_group=max_group,
            objective=objective,
            progress=True,
            report=lambda line: err_console.print(f"[dim]{line}[/]"),
        )
    except (JointDNNError, ValueError, ImportError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    render(result, console)
    if output is not None:
        output.write_text(json.dumps(result.to_dict(), indent=2))
        console.print(f"wrote {output}")
    if not result.all_match:
        raise typer.Exit(2)
