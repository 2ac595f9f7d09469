"""``jointdnn-edge plan`` and ``jointdnn-edge lut``: schedules from cost tables."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from ..errors import JointDNNError
from ._app import app, check_writable, console, err_console, fail, os_error_text

if TYPE_CHECKING:
    from ..network import Network

EXAMPLES = {"alexnet": "example_alexnet.json"}

lut_app = typer.Typer(help="Build and query lookup tables (a schedule per inference in about a microsecond).")
app.add_typer(lut_app, name="lut")


def example_costs(name: str) -> Any:
    """A built-in example cost table (see scripts/make_example_costs.py for how it was made)."""
    from ..costs import CostTable

    data = resources.files("jointdnn_edge").joinpath("data", EXAMPLES[name]).read_text()
    return CostTable.from_dict(json.loads(data))


def load_costs(costs: Optional[Path], model: Optional[str], *, profile_repeats: int = 3) -> Any:
    """The cost table named on the command line: a file, a built-in example, or a zoo model profiled now."""
    from ..costs import CostTable

    if costs is not None and model is not None:
        raise typer.BadParameter("give --costs or --model, not both")
    if costs is not None:
        return CostTable.load(costs)
    name = (model or "alexnet").lower()
    if name in EXAMPLES:
        return example_costs(name)
    from .. import zoo
    from ..models import executor_for
    from ..profiler import profile

    if name.replace("-", "").replace("_", "") not in [z.replace("-", "") for z in zoo.names()]:
        raise typer.BadParameter(f"unknown model {model!r}: built-in examples {sorted(EXAMPLES)}, zoo {zoo.names()}")
    err_console.print(
        f"no cost table for {name!r}: profiling the zoo model (small preset) on this machine now; cloud = mobile / 10"
    )
    graph = zoo.load(name, size="small")
    return profile(graph, executor_for(graph, threads=1), max_group=8, repeats=profile_repeats, progress=True)


def costs_source(table: Any) -> str:
    """Which cost table a command used, in words: its ``meta["source"]``, what the profiler recorded, or its model."""
    meta = table.meta
    src = meta.get("source")
    if isinstance(src, str) and src:
        return src
    model = meta.get("model")
    if isinstance(model, dict) and isinstance(meta.get("profiler"), dict):
        # a table file may have been edited by hand: read its notes defensively, never fail on them
        device, calibration = _dict(meta.get("device")), _dict(meta.get("calibration"))
        cpu = device.get("cpu") or "this machine"
        mobile = _dict(calibration.get("mobile"))
        if "slowdown" in mobile:
            side = f"mobile = measured x {_num(mobile['slowdown'])}"
        elif "device" in mobile:
            side = f"mobile = measured, mapped onto {_dict(mobile['device']).get('name', '?')}"
        else:
            side = "mobile = measured"
        cloud = meta.get("cloud_source", "?")
        if cloud == "scaled":
            cloud = f"mobile / {_num(meta.get('cloud_speedup', '?'))}"
        return f"profiled: {model.get('name')} on {cpu}; {side}; cloud {cloud}"
    return f"model {model}" if isinstance(model, str) else "a cost table without a source note"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def network_from(name: str, up: Optional[float], down: Optional[float], rtt: Optional[float]) -> Network:
    """A preset network with optional bandwidth and round-trip overrides."""
    from ..network import Network

    net = Network.preset(name, rtt_ms=0.0 if rtt is None else rtt)
    if up is not None or down is not None:
        net = net.with_bandwidth(
            net.up_mbps if up is None else up,
            net.down_mbps if down is None else down,
        )
    return net


def _check_plot_path(path: Path) -> None:
    """Fail before planning when --plot names a file matplotlib cannot write (or matplotlib is missing)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise fail("--plot needs matplotlib: pip install 'jointdnn-edge[plot]'") from None
    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise fail(f"--plot {path}: give a file name ending in .png (or one of: {', '.join(sorted(formats))})")
    check_writable(path, "--plot")


@app.command("plan")
def plan_command(
    costs: Optional[Path] = typer.Option(None, "--costs", help="Cost table JSON (from `jointdnn-edge profile`)."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="alexnet (the default): the built-in synthetic example table; another zoo model: profiled now. "
        "The table used is printed.",
    ),
    network: str = typer.Option("4g", "--network", help="Network preset: 3g, 4g, wifi (the paper's Table 3)."),
    up_mbps: Optional[float] = typer.Option(None, "--up-mbps", help="Override the preset's upload bandwidth."),
    down_mbps: Optional[float] = typer.Option(None, "--down-mbps", help="Override the preset's download bandwidth."),
    rtt_ms: Optional[float] = typer.Option(None, "--rtt-ms", help="Round trip added per platform switch."),
    objective: str = typer.Option("latency", "--objective", help="latency or energy."),
    deadline_ms: Optional[float] = typer.Option(None, "--deadline-ms", help="Latency constraint (QoS)."),
    energy_budget_mj: Optional[float] = typer.Option(None, "--energy-budget-mj", help="Mobile energy constraint."),
    cloud_budget_ms: Optional[float] = typer.Option(None, "--cloud-budget-ms", help="Cloud time constraint."),
    cloud_slowdown: float = typer.Option(1.0, "--cloud-slowdown", help="Multiply cloud times (congestion)."),
    phase: str = typer.Option("inference", "--phase", help="inference or training (one online-training step)."),
    solver: str = typer.Option("auto", "--solver", help="auto, native, python, ilp or brute."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Draw the schedules to this image (.png; .svg and .pdf work too)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    stability_samples: int = typer.Option(
        200,
        "--stability-samples",
        min=0,
        help="Resampled tables for the stability line when the table keeps a measured spread (0: none).",
    ),
) -> None:
    """Print the optimal schedule, its costs, and mobile-only and cloud-only beside it."""
    from ..planner import plan, stability
    from ..planner._backend import table_for_phase
    from ..plots import describe, plot_schedules, schedule_text
    from ..spread import GroupSpread

    if plot is not None:
        _check_plot_path(plot)
    try:
        table = load_costs(costs, model)
        net = network_from(network, up_mbps, down_mbps, rtt_ms)
        kw: dict[str, Any] = dict(objective=objective, cloud_slowdown=cloud_slowdown, phase=phase, solver=solver)
        started = time.perf_counter()
        joint = plan(
            table,
            net,
            deadline_ms=deadline_ms,
            energy_budget_mj=energy_budget_mj,
            cloud_budget_ms=cloud_budget_ms,
            **kw,
        )
        solve_us = (time.perf_counter() - started) * 1e6
        rows = {"JointDNN": joint}
        for force in ("mobile", "cloud"):
            try:
                rows[f"{force}-only"] = plan(table, net, force=force, **kw)
            except JointDNNError:
                pass
        stable = None
        if stability_samples > 0 and GroupSpread.of(table) is not None:
            constraints: dict[str, Any] = dict(
                deadline_ms=deadline_ms, energy_budget_mj=energy_budget_mj, cloud_budget_ms=cloud_budget_ms
            )
            stable = stability(table, net, samples=stability_samples, **kw, **constraints)
    except JointDNNError as e:
        err_console.print(f"[red]error:[/red] {type(e).__name__}: {e}")
        raise typer.Exit(2) from None
    planned = table_for_phase(table, phase)  # the training table plan() built and kept
    if as_json:
        out = {k: {**describe(v), "segments": [list(s) for s in v.segments]} for k, v in rows.items()}
        doc = {"network": net.to_dict(), "objective": objective, "schedules": out, "costs": costs_source(table)}
        if stable is not None:
            doc["stability"] = stable.to_dict()
        console.print_json(json.dumps(doc))
    else:
        console.print(
            f"[bold]{planned.n} layers[/bold] ({phase}), network {net.name or 'custom'}: "
            f"up {net.up_mbps} / down {net.down_mbps} Mbit/s, rtt {net.rtt_ms} ms; objective {objective}"
        )
        console.print(f"[dim]cost table: {costs_source(table)}[/dim]")
        t = Table(show_header=True, header_style="bold")
        for col in ("schedule", "latency ms", "energy mJ", "cloud ms", "up bytes", "down bytes", "pattern"):
            t.add_column(col, justify="left" if col in ("schedule", "pattern") else "right", no_wrap=True)
        for k, s in rows.items():
            t.add_row(
                k,
                f"{s.latency_ms:.3f}",
                f"{s.mobile_energy_mj:.3f}",
                f"{s.cloud_ms:.3f}",
                f"{s.bytes_up:.0f}",
                f"{s.bytes_down:.0f}",
                s.pattern(),
            )
        console.print(t)
        base = [s for k, s in rows.items() if k != "JointDNN"]
        if base:
            attr = "latency_ms" if objective == "latency" else "mobile_energy_mj"
            best = min(getattr(s, attr) for s in base)
            console.print(
                f"JointDNN vs best single platform: {best / max(getattr(joint, attr), 1e-12):.2f}x on {objective}"
            )
        console.print(
            f"[bold]schedule[/bold] (M mobile, C cloud, | group boundary; solved in {solve_us:.0f} µs "
            f"incl. building the solver's graph on first use):"
        )
        console.print(joint.bar())
        for line in schedule_text(planned, joint):
            console.print("  " + line)
        if stable is not None:
            console.print(f"[bold]stability[/bold]: {stable.summary(planned.n)}")
    if plot is not None:
        try:
            plot_schedules(planned, rows, plot, title=f"{network} · {objective}")
        except ImportError as e:
            raise fail(str(e)) from None
        err_console.print(f"wrote {plot}")


@lut_app.command("build")
def lut_build(
    output: Path = typer.Option(..., "--output", "-o", help="Lookup table file to write."),
    costs: Optional[Path] = typer.Option(None, "--costs", help="Cost table JSON."),
    model: Optional[str] = typer.Option(None, "--model", help="Built-in example or zoo model (default alexnet)."),
    network: str = typer.Option("4g", "--network", help="Radio (power model, rtt) preset: 3g, 4g, wifi."),
    rtt_ms: Optional[float] = typer.Option(None, "--rtt-ms", help="Round trip per platform switch."),
    objective: str = typer.Option("latency", "--objective", help="latency or energy."),
    deadline_ms: Optional[float] = typer.Option(None, "--deadline-ms", help="Latency constraint (QoS)."),
    energy_budget_mj: Optional[float] = typer.Option(None, "--energy-budget-mj", help="Mobile energy constraint."),
    cloud_budget_ms: Optional[float] = typer.Option(None, "--cloud-budget-ms", help="Cloud time constraint."),
    up: tuple[float, float] = typer.Option((0.25, 100.0), "--up-mbps", help="Upload range LO HI."),
    down: tuple[float, float] = typer.Option((0.5, 200.0), "--down-mbps", help="Download range LO HI."),
    slowdown: tuple[float, float] = typer.Option((1.0, 1.0), "--cloud-slowdown", help="Slowdown range LO HI."),
    cells: tuple[int, int, int] = typer.Option((16, 16, 4), "--cells", help="Cells along up, down, slowdown."),
    phase: str = typer.Option("inference", "--phase", help="inference or training (one online-training step)."),
    embed_costs: bool = typer.Option(True, "--embed-costs/--no-embed-costs", help="Store the cost table too."),
) -> None:
    """Precompute the optimal schedules over a range of network conditions (parallel, with a progress bar)."""
    from ..planner import LookupTable

    check_writable(output, "--output")
    try:
        table = load_costs(costs, model)
        net = network_from(network, None, None, rtt_ms)
        started = time.perf_counter()
        lut = LookupTable.build(
            table,
            objective=objective,
            network=net,
            deadline_ms=deadline_ms,
            energy_budget_mj=energy_budget_mj,
            cloud_budget_ms=cloud_budget_ms,
            up_mbps=up,
            down_mbps=down,
            cloud_slowdown=slowdown,
            cells=cells,
            phase=phase,
            embed_costs=embed_costs,
            progress=True,
        )
        lut.save(output)
    except JointDNNError as e:
        err_console.print(f"[red]error:[/red] {type(e).__name__}: {e}")
        raise typer.Exit(2) from None
    st = lut.stats()
    console.print(f"[dim]cost table: {costs_source(table)}[/dim]")
    console.print(
        f"wrote {output} ({output.stat().st_size} bytes) in {time.perf_counter() - started:.2f} s: "
        f"{st['cells']} cells, {st['schedules']} distinct schedules, at most {st['max_per_cell']} per cell, "
        f"{st['solve_cells']} cells answered by a direct solve, {st['infeasible_cells']} infeasible"
    )


@lut_app.command("query")
def lut_query(
    table: Path = typer.Argument(..., help="Lookup table file."),
    up_mbps: float = typer.Option(..., "--up-mbps", help="Upload bandwidth now (Mbit/s)."),
    down_mbps: float = typer.Option(..., "--down-mbps", help="Download bandwidth now (Mbit/s)."),
    cloud_slowdown: float = typer.Option(1.0, "--cloud-slowdown", help="Cloud slowdown now (1: as profiled)."),
) -> None:
    """Print the table's schedule for these conditions."""
    from ..planner import LookupTable

    try:
        lut = LookupTable.load(table)
        s = lut.query(up_mbps, down_mbps, cloud_slowdown)
    except JointDNNError as e:
        err_console.print(f"[red]error:[/red] {type(e).__name__}: {e}")
        raise typer.Exit(2) from None
    except OSError as e:
        raise fail(os_error_text(e), 2) from None
    console.print(f"{s.bar()}\n{s}")
