"""``jointdnn-edge android``: the workstation side of an Android app (``android_bridge/README.md``).

Both commands run the bridge's own tools (:func:`jointdnn_edge.android.export_slices`,
:func:`jointdnn_edge.android.build_lookup_table`), so the files they write are the ones an
app calling those functions would get.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import JointDNNError
from ._app import app, check_writable, console, fail, os_error_text

android_app = typer.Typer(
    help="Prepare an Android app's assets: its lookup table and the model slices it runs itself.",
    no_args_is_help=True,
)
app.add_typer(android_app, name="android")


def _reply(tool: Callable[[], str]) -> Any:
    """The JSON reply of a bridge tool; a bad input or an unreadable file as one ``error:`` line (exit 2)."""
    try:
        return json.loads(tool())
    except JointDNNError as e:
        raise fail(f"{type(e).__name__}: {e}", 2) from None
    except OSError as e:
        raise fail(os_error_text(e), 2) from None


@android_app.command("export-slices")
def export_slices(
    model: Path = typer.Argument(..., help="The model (.tflite or .onnx) the lookup table was built for."),
    lut: Path = typer.Argument(..., help="Lookup table file (`jointdnn-edge android build-lut`)."),
    out_dir: Path = typer.Argument(..., help="Folder for the slices and slices.json (created if missing)."),
) -> None:
    """Write every mobile run of the table's schedules as a standalone model, with a manifest (slices.json)."""
    from .. import android

    if out_dir.exists() and not out_dir.is_dir():
        raise fail(f"OUT_DIR {out_dir}: is a file; give a folder", 2)
    manifest = _reply(lambda: android.export_slices(str(model), str(lut), str(out_dir)))
    files = [r["file"] for r in manifest["runs"] if "file" in r]
    console.print(
        f"wrote {len(files)} mobile slices of {manifest['model']!r} and slices.json into {out_dir} "
        f"({len(manifest['runs'])} runs in the table's schedules)"
    )


@android_app.command("build-lut")
def build_lut(
    costs: Path = typer.Argument(..., help="Cost table JSON (from `jointdnn-edge profile`)."),
    out: Path = typer.Argument(..., help="Lookup table file to write."),
    options: Optional[str] = typer.Option(
        None,
        "--options",
        help='LookupTable.build options as a JSON object, e.g. \'{"network": "wifi", "deadline_ms": 200}\'.',
    ),
) -> None:
    """Build the lookup table an app loads with load_lookup_table (the same file `lut build` writes)."""
    from .. import android

    check_writable(out, "OUT")
    summary = _reply(lambda: android.build_lookup_table(str(costs), str(out), options))
    cells = "x".join(str(c) for c in summary["cells"])
    console.print(f"wrote {out}: {cells} cells, {summary['schedules']} distinct schedules")
