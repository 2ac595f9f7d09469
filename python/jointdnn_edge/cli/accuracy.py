"""``jointdnn-edge accuracy MODEL --task ocr``: what lossy transfer of a cut tensor costs in accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import JointDNNError
from ._app import app, check_writable, console, fail, os_error_text


@app.command("accuracy")
def accuracy(
    model: Path = typer.Argument(..., help="A PaddleOCR text recognizer (ONNX with 'character' metadata)."),
    task: str = typer.Option("ocr", "--task", help="The task measured: ocr."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="File of labels, one text line per line."),
    fonts: Optional[list[Path]] = typer.Option(None, "--fonts", help="TrueType fonts (default: DejaVu)."),
    sizes: str = typer.Option("28,36", "--sizes", help="Font sizes in points, comma-separated."),
    options: Optional[str] = typer.Option(
        None, "--options", help="Lossy options, comma-separated (q8, q4c, pca0.25+q4c; default: a standard set)."
    ),
    cut: Optional[list[str]] = typer.Option(None, "--cut", help="Cut tensor name (repeatable; default: three cuts)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the table as JSON here."),
) -> None:
    """Character error rate of the full model, and its increase per cut tensor and lossy option."""
    from .. import lossy

    if task != "ocr":
        raise fail(f"--task {task!r} is not supported (supported: ocr)", 2)
    if json_out is not None:
        check_writable(json_out, "--json")
    lines = None
    if texts is not None:
        try:
            lines = [t for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise fail(os_error_text(e) if isinstance(e, OSError) else f"--texts {texts}: {e}") from None
        if not lines:
            raise fail(f"--texts {texts}: no text lines", 2)
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise fail(f"--sizes {sizes!r}: expected integers separated by commas", 2) from None
    names = [o.strip() for o in options.split(",") if o.strip()] if options else list(lossy.DEFAULT_OPTIONS)
    try:
        opts = [lossy.parse_option(o) for o in names]
    except JointDNNError as e:
        raise fail(f"--options: {e}", 2) from None
    try:
        result = lossy.measure_ocr(model, options=opts, texts=lines, fonts=fonts or None, sizes=size_list, cuts=cut)
    except JointDNNError as e:
        raise fail(str(e)) from None
    table = Table(title=f"{result['model']}: baseline CER {result['baseline_cer']:.4f} on {len(result['texts'])} texts")
    for col in ("cut", "shape", "option", "bytes", "8-bit lossless", "ratio", "ΔCER"):
        table.add_column(col, justify="left" if col in ("cut", "option", "shape") else "right")
    for row in result["rows"]:
        table.add_row(
            row["cut"],
            "×".join(str(d) for d in row["shape"]),
            row["option"]["label"],
            f"{row['bytes']:,.0f}",
            f"{row['lossless_8bit_bytes']:,.0f}",
            f"{row['lossless_8bit_bytes'] / row['bytes']:.1f}×",
            f"{row['delta_cer']:+.4f}",
        )
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
