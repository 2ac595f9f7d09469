"""``jointdnn-edge accuracy MODEL --task ocr|fidelity``: what lossy transfer of a cut tensor costs in accuracy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import JointDNNError
from ._app import app, check_writable, console, fail, os_error_text

TASKS = ("ocr", "fidelity")


def _read_lines(path: Path, option: str) -> list[str]:
    """The non-blank lines of a UTF-8 file; exit 2 when there are none, 1 when it cannot be read."""
    try:
        lines = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise fail(os_error_text(e) if isinstance(e, OSError) else f"{option} {path}: {e}") from None
    if not lines:
        raise fail(f"{option} {path}: no text lines", 2)
    return lines


def _int_list(text: str, option: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise fail(f"{option} {text!r}: expected integers separated by commas", 2) from None


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(s) for s in text.split(","))
    except ValueError:
        raise fail(f"--input-range {text!r}: expected two numbers, LO,HI", 2) from None
    return lo, hi


@app.command("accuracy")
def accuracy(
    model: Path = typer.Argument(
        ..., help="ocr: a PaddleOCR text recognizer (ONNX with 'character' metadata); fidelity: an image model."
    ),
    task: str = typer.Option("ocr", "--task", help="The task measured: ocr (ΔCER) or fidelity (output agreement)."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="ocr: file of labels, one text line per line."),
    fit_texts: Optional[Path] = typer.Option(None, "--fit-texts", help="ocr: labels to fit the options on."),
    count: Optional[int] = typer.Option(None, "--count", help="ocr: generated lines to measure (default 24)."),
    fonts: Optional[list[Path]] = typer.Option(None, "--fonts", help="ocr: TrueType fonts (default: DejaVu, STIX)."),
    sizes: str = typer.Option("28,36", "--sizes", help="ocr: font sizes in points, comma-separated."),
    images: int = typer.Option(64, "--images", help="fidelity: generated scenes to measure on."),
    fit_images: int = typer.Option(32, "--fit-images", help="fidelity: scenes (other photos) to fit on."),
    metric: str = typer.Option("auto", "--metric", help="fidelity: auto, detection, mask or output."),
    input_range: Optional[str] = typer.Option(
        None, "--input-range", help="fidelity: LO,HI the image is scaled to (default: known models, else 0,1)."
    ),
    options: Optional[str] = typer.Option(
        None, "--options", help="Lossy options, comma-separated (q8, q4c, pca0.25+q4c; default: a standard set)."
    ),
    cut: Optional[list[str]] = typer.Option(None, "--cut", help="Cut tensor name (repeatable; default: three cuts)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the table as JSON here."),
) -> None:
    """Accuracy of the full model and what each cut tensor × lossy option loses: ΔCER (ocr) or the
    disagreement with full-precision outputs (fidelity), on inputs the options were not fitted on."""
    from .. import lossy

    if task not in TASKS:
        raise fail(f"--task {task!r} is not supported (supported: {', '.join(TASKS)})", 2)
    if json_out is not None:
        check_writable(json_out, "--json")
    names = [o.strip() for o in options.split(",") if o.strip()] if options else list(lossy.DEFAULT_OPTIONS)
    try:
        opts = [o if o == lossy.LOSSLESS else lossy.parse_option(o) for o in names]
    except JointDNNError as e:
        raise fail(f"--options: {e}", 2) from None
    for name, value in (("--count", count), ("--images", images), ("--fit-images", fit_images)):
        if value is not None and value < 1:
            raise fail(f"{name} must be at least 1, got {value}", 2)
    try:
        if task == "ocr":
            lines = _read_lines(texts, "--texts") if texts is not None else None
            if lines is None and count is not None:
                lines = lossy.default_texts(count, kinds=lossy.TEXT_KINDS)
            fit_lines = _read_lines(fit_texts, "--fit-texts") if fit_texts is not None else None
            result = lossy.measure_ocr(
                model, options=opts, texts=lines, fit_texts=fit_lines, fonts=fonts or None,
                sizes=_int_list(sizes, "--sizes"), cuts=cut,
            )  # fmt: skip
        else:
            value_range = _range(input_range) if input_range is not None else None
            result = lossy.measure_fidelity(
                model, options=opts, images=images, fit_images=fit_images, cuts=cut, metric=metric,
                value_range=value_range,
            )  # fmt: skip
    except JointDNNError as e:
        raise fail(str(e)) from None
    console.print(_result_table(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")


def _table(title: str, delta: str) -> Table:
    table = Table(title=title)
    for col in ("cut", "shape", "option", "bytes", "8-bit lossless", "ratio", delta, "95% interval"):
        table.add_column(col, justify="left" if col in ("cut", "option", "shape") else "right")
    return table


def _add_row(table: Table, row: dict[str, Any], delta: float, ci: list[float]) -> None:
    table.add_row(
        row["cut"],
        "×".join(str(d) for d in row["shape"]),
        row["option"]["label"],
        f"{row['bytes']:,.0f}",
        f"{row['lossless_8bit_bytes']:,.0f}",
        f"{row['lossless_8bit_bytes'] / row['bytes']:.1f}×",
        f"{delta:+.4f}",
        f"[{ci[0]:+.4f}, {ci[1]:+.4f}]",
    )


def _result_table(result: dict[str, Any]) -> Table:
    """The measured table as printed: bytes against the task's delta and its interval."""
    held = result["held_out"]
    if result["task"] == "ocr":
        title = (
            f"{result['model']}: baseline CER {result['baseline_cer']:.4f} on {held['eval_texts']} texts "
            f"({held['eval_chars']} characters); options fitted on {held['fit_texts']} others"
        )
        label, key = "ΔCER", "delta_cer"
    else:
        title = (
            f"{result['model']}: {result['metric']} disagreement with full precision on {held['eval_images']} "
            f"images; options fitted on {held['fit_images']} others"
        )
        label, key = "delta", "delta"
    table = _table(title, label)
    for row in result["rows"]:
        _add_row(table, row, row[key], row[f"{key}_ci95"])
    return table
