"""``jointdnn-edge zoo list`` and ``jointdnn-edge zoo export``: the paper's benchmark models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .. import zoo
from ..errors import JointDNNError
from ._app import app, check_writable, console, err_console

zoo_app = typer.Typer(
    help="The JointDNN paper's eight benchmark models (Table 2), built with seeded random weights.",
    no_args_is_help=True,
)
app.add_typer(zoo_app, name="zoo")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


@zoo_app.command("list")
def list_models() -> None:
    """List the zoo models: type, layer counts (ours and the paper's), parameters and input shape at full size."""
    table = Table(title="jointdnn-edge zoo (full size)")
    for col, justify in [
        ("name", "left"), ("type", "left"), ("layers", "right"), ("paper", "right"),
        ("parameters", "right"), ("input shape", "left"),
    ]:  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name in zoo.names():
        entry = zoo.MODELS[name]
        s = zoo.spec(name, weights=False)  # shapes only: no memory for the weights
        table.add_row(
            name, entry.kind, str(len(s.ops)), str(entry.paper_layers), f"{s.params:,}", _shape(s.inputs[0].shape)
        )
    console.print(table)


@zoo_app.command("export")
def export(
    name: str = typer.Argument(..., help="Zoo model name (see `zoo list`)."),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx or tflite."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: NAME.FORMAT)."),
    size: Optional[str] = typer.Option(None, "--size", help="Preset: full, small or tiny."),
    width: Optional[float] = typer.Option(None, "--width", help="Channel/unit multiplier (overrides --size)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Input size (overrides --size)."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    seed: int = typer.Option(0, "--seed", help="Weight seed."),
) -> None:
    """Write a zoo model as an ONNX or TFLite file."""
    fmt = format.lower()
    if fmt not in ("onnx", "tflite"):
        err_console.print(f"[red]error:[/] --format must be onnx or tflite, not {format!r}")
        raise typer.Exit(2)
    path = output if output is not None else Path(f"{name.lower()}.{fmt}")
    check_writable(path, "--output")
    try:
        data = zoo.build(name, fmt, size=size, width=width, resolution=resolution, batch=batch, seed=seed)
    except (JointDNNError, ImportError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    path.write_bytes(data)
    console.print(f"wrote {path} ({len(data):,} bytes)")
