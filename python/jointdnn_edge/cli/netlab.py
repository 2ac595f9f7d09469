"""``jointdnn-edge netlab``: the adaptive session against mobile, cloud and static on a kernel-shaped link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import JointDNNError
from ._app import app, check_writable, console, err_console, fail


@app.command("netlab")
def netlab_command(
    model: str = typer.Argument("alexnet", help="Zoo model name (zoo:NAME too) or an .onnx file."),
    trace: str = typer.Option("step", "--trace", help="step, ramp, outage, a CSV or a Mahimahi trace file."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds to run (default: the trace's length)."),
    size: str = typer.Option("small", "--size", help="Zoo size preset: tiny, small or full."),
    mobile_slowdown: float = typer.Option(20.0, "--mobile-slowdown", min=1.0, help="Emulated device: x slower."),
    phone_ms: Optional[float] = typer.Option(
        None, "--phone-ms", help="Instead: the slowdown that makes the whole model take this long (with sleep)."
    ),
    device: str = typer.Option(
        "host", "--device", help="The emulated phone: host (this CPU, --mobile-slowdown x slower) or a device preset."
    ),
    emulation: str = typer.Option(
        "repeat", "--emulation", help="repeat: compute each slice N times (host only); sleep: once, padded to its time."
    ),
    max_group: int = typer.Option(4, "--max-group", min=1, help="Longest group of layers to profile."),
    rtt_ms: float = typer.Option(40.0, "--rtt-ms", min=0.0, help="Round trip for a Mahimahi trace (ms)."),
    probe_every: float = typer.Option(2.0, "--probe-every", min=0.1, help="Probe period while JointDNN stays local."),
    ping_every: float = typer.Option(
        0.5, "--ping-every", min=0.05, help="Round-trip watch between probes: two pings this often (s)."
    ),
    output: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the figure (PNG)."),
) -> None:
    """Build a two-namespace link shaped by tc, play a bandwidth trace on it, and compare the strategies (root)."""
    from ..netlab import load_trace, plot_netlab, run_netlab

    for path, option in ((output, "--json"), (plot, "--plot")):
        if path is not None:
            check_writable(path, option)
    try:
        link = load_trace(trace, rtt_ms=rtt_ms)
        result = run_netlab(
            model,
            link,
            size=size,
            duration_s=duration,
            mobile_slowdown=mobile_slowdown,
            phone_ms=phone_ms,
            device=device,
            emulation=emulation,
            max_group=max_group,
            probe_every_s=probe_every,
            ping_every_s=ping_every,
            report=lambda line: err_console.print(f"[dim]{line}[/]"),
        )
    except (JointDNNError, ValueError, ImportError) as e:
        raise fail(str(e)) from None
    doc = result.to_dict()
    _render(doc)
    if output is not None:
        output.write_text(json.dumps(doc, indent=1))
        console.print(f"wrote {output}")
    if plot is not None:
        plot_netlab(doc, plot)
        console.print(f"wrote {plot}")
    if doc["goals"]["wrong_outputs"]:
        raise typer.Exit(2)


def _render(doc: dict) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    table = Table(title=f"network lab: {doc['setup']['model']} on {doc['trace']['name']}")
    for col in ("strategy", "n", "p50 ms", "p95 ms", "mean ms", "energy mJ", "fallbacks", "wrong", "lost"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, s in doc["strategies"].items():
        table.add_row(name, str(s["n"]), ms(s["p50_ms"]), ms(s["p95_ms"]), ms(s["mean_ms"]), ms(s["energy_mj"]),
                      str(s["fallbacks"]), str(s["wrong_outputs"]), str(s["lost"]))  # fmt: skip
    console.print(table)
    phases = Table(title="p50 per phase (ms); JointDNN's settled schedule")
    for col in ("from s", "up/down Mbit/s", "rtt ms", "jointdnn", "mobile", "cloud", "static", "schedule", "after"):
        phases.add_column(col, justify="right")
    for ph in doc["phases"]:
        p = ph["p50_ms"]
        phases.add_row(f"{ph['start_s']:g}", f"{ph['up_mbps']:g}/{ph['down_mbps']:g}", f"{ph['rtt_ms']:g}",
                       ms(p["jointdnn"]), ms(p["mobile"]), ms(p["cloud"]), ms(p["static"]),
                       str(ph["jointdnn_schedule"]), str(ph["jointdnn_adapted_after"]))  # fmt: skip
    console.print(phases)
    console.print(f"goals: {json.dumps(doc['goals'])}", markup=False, highlight=False)
