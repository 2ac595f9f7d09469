"""``jointdnn-edge reproduce``: the JointDNN paper's inference results on device models of its hardware."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .. import reproduce as _reproduce
from .. import zoo
from ..errors import JointDNNError
from ._app import app, console, fail


@app.command("reproduce")
def reproduce(
    out: Path = typer.Option(..., "--out", help="Directory for results.json, report.md and the figures."),
    quick: bool = typer.Option(False, "--quick", help="Codec ratios from the tiny models, groups of at most 8 layers."),
    model: Optional[list[str]] = typer.Option(None, "--model", help="Only these zoo models (repeatable)."),
    mobile: str = typer.Option("jetson-tx2", "--mobile", help="Mobile device preset (docs/devices.md)."),
    cloud: str = typer.Option("tesla-k40c", "--cloud", help="Cloud device preset."),
    results_md: Optional[Path] = typer.Option(
        None, "--results-md", help="Also replace the 'Paper reproduction' section of this markdown file."
    ),
) -> None:
    """Run the paper's benchmarks x networks x objectives x transfer variants and write the report."""
    names = model or zoo.names()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("reproduce", total=2 * len(names))

        def step(message: str) -> None:
            bar.update(task, advance=0.5 if message.endswith("samples") else 1.5, description=message)

        try:
            _reproduce.run(out, quick=quick, models=names, mobile=mobile, cloud=cloud, progress=step)
        except JointDNNError as e:
            raise fail(str(e)) from None
    report = (out / "report.md").read_text(encoding="utf-8")
    if results_md is not None:
        figure_dir = results_md.parent / "reproduce"
        figure_dir.mkdir(parents=True, exist_ok=True)
        for png in out.glob("*.png"):
            shutil.copyfile(png, figure_dir / png.name)
        _reproduce.replace_section(results_md, "## Paper reproduction", _reproduce.results_section(report, "reproduce"))
    matched = report.count("| yes |")
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'}: {matched} claims match")
