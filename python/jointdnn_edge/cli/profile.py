"""``jointdnn-edge profile MODEL -o costs.json``: measure grouped layer costs on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..costs import CostTable
from ..errors import JointDNNError
from ._app import app, check_writable, console, err_console


def _parse_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``NAME=D1,D2,...`` items as ``{NAME: (D1, D2, ...)}``."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--input-shape takes NAME=D1,D2,..., got {item!r}")
        try:
            out[name] = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            raise typer.BadParameter(f"--input-shape dimensions must be integers, got {item!r}") from None
    return out


@app.command("profile")
def profile_command(
    model: str = typer.Argument(..., help="Model file (.onnx or .tflite), or zoo:NAME for a zoo model."),
    output: Path = typer.Option(..., "--output", "-o", help="Cost table JSON to write."),
    max_group: Optional[int] = typer.Option(
        None, "--max-group", help="Longest group of layers to profile (default: all)."
    ),
    repeats: int = typer.Option(5, "--repeats", help="Timed runs per group (the median is kept)."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed runs per group before timing."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="Runtime compute threads (mimic a weak device with 1-2)."
    ),
    cloud_speedup: Optional[float] = typer.Option(
        None, "--cloud-speedup", help="Cloud time = mobile time / this ratio (default 10; not with --cloud)."
    ),
    cloud: Optional[str] = typer.Option(
        None,
        "--cloud",
        help="Profile the cloud side on this jointdnn-edge server (URL), by the compute time it reports.",
    ),
    cloud_model: Optional[str] = typer.Option(
        None, "--cloud-model", help="Name the server serves the model under (default: the model's name)."
    ),
    token: Optional[str] = typer.Option(
        None, "--token", envvar="JOINTDNN_EDGE_TOKEN", show_envvar=True, help="Bearer token for --cloud."
    ),
    mobile_slowdown: Optional[float] = typer.Option(
        None, "--mobile-slowdown", help="Mobile time = this machine's time x this factor (not with --mobile-device)."
    ),
    mobile_device: Optional[str] = typer.Option(
        None,
        "--mobile-device",
        help="Map this machine's times onto a device model per operator class "
        "(jetson-tx2, tesla-k40c, snapdragon-8-gen-2, h100-sxm; docs/devices.md).",
    ),
    cloud_device: Optional[str] = typer.Option(
        None,
        "--cloud-device",
        help="Cloud times: this machine's times mapped onto this device model (not with --cloud or --cloud-speedup).",
    ),
    clamp_groups: bool = typer.Option(
        True,
        "--clamp-groups/--no-clamp-groups",
        help="Raise a group timed below a group it contains (beyond both spreads) to that group's time.",
    ),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        help="Energy preset: jetson-tx2 (default), jetson-tx2-maxp, raspberry-pi-4, raspberry-pi-5 "
        "(default with --mobile-device: that device's power).",
    ),
    power_mw: Optional[float] = typer.Option(None, "--power-mw", help="Compute power in mW (overrides --device's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size for a dynamic batch dimension."),
    input_shape: list[str] = typer.Option([], "--input-shape", help="NAME=D1,D2,... for dynamic inputs (repeatable)."),
    merge_trivial: bool = typer.Option(
        False, "--merge-trivial", help="Merge activations, batch norm and reshapes into their layer."
    ),
    optimization: str = typer.Option(
        "all", "--optimization", help="onnxruntime graph optimization: all, extended, basic, disable."
    ),
    size: Optional[str] = typer.Option(None, "--size", help="zoo: preset full, small or tiny."),
    width: Optional[float] = typer.Option(None, "--width", help="zoo: channel/unit multiplier."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="zoo: input size."),
    seed: int = typer.Option(0, "--seed", help="zoo weight seed and input noise seed."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress", help="Show a progress bar (default: when stderr is a terminal)."
    ),
) -> None:
    """Profile every group of consecutive layers of MODEL and write a cost table for `jointdnn-edge plan`."""
    from .. import zoo
    from ..models import executor_for, load_model
    from ..profiler import DeviceProfile, count_groups, profile

    check_writable(output, "--output")
    try:
        shapes = _parse_shapes(input_shape)
        if model.startswith("zoo:"):
            name = model[4:]
            graph = zoo.load(
                name,
                size=size,
                width=width,
                resolution=resolution,
                batch=batch_size or 1,
                seed=seed,
                merge_trivial=merge_trivial,
            )
        else:
            if not Path(model).exists():
                raise typer.BadParameter(f"no such file: {model}")
            graph = load_model(model, batch_size=batch_size, input_shapes=shapes or None, merge_trivial=merge_trivial)
        dev = None if device is None else DeviceProfile.preset(device)
        if power_mw is not None:
            dev = DeviceProfile(
                f"{dev.name if dev else mobile_device or 'mobile'} ({power_mw:g} mW given)",
                float(power_mw),
                source="given on the command line",
            )
        if sum(x is not None for x in (cloud, cloud_speedup, cloud_device)) > 1:
            raise typer.BadParameter(
                "--cloud, --cloud-speedup and --cloud-device each set the cloud side: give one, not both"
            )
        options = {"optimization": optimization} if graph.format == "onnx" else {}
        executor = executor_for(graph, threads=threads, **options)
        remote = None
        if cloud is not None:
            from ..client import RemoteExecutor

            remote = RemoteExecutor(cloud, cloud_model, token=token or None)
        console.print(
            f"profiling {graph.name} ({graph.format}, {graph.n} layers, {count_groups(graph.n, max_group)} groups) "
            f"with {executor.info().get('runtime')}" + (f", and on the cloud at {cloud}" if cloud else "")
        )
        try:
            costs = profile(
                graph, executor, max_group=max_group, repeats=repeats, warmup=warmup, device=dev,
                cloud_executor=remote, cloud_speedup=cloud_speedup, mobile_slowdown=mobile_slowdown,
                mobile=mobile_device, cloud=cloud_device, clamp_groups=clamp_groups, progress=progress, seed=seed,
            )  # fmt: skip
        finally:
            if remote is not None:
                remote.close()
        costs.save(output)
    except typer.BadParameter:
        raise
    except (JointDNNError, ValueError, ImportError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    singles = float(np.trace(costs.mobile_ms))
    console.print(
        f"wrote {output}: {costs.n} layers, mobile {singles:.3f} ms as single layers"
        + (f", {costs.mobile_ms[0, -1]:.3f} ms as one group" if np.isfinite(costs.mobile_ms[0, -1]) else "")
        + f"; cloud {costs.meta.get('cloud_source')}"
    )
    for line in profile_notes(costs):
        console.print("  " + line)


def profile_notes(costs: CostTable) -> list[str]:
    """What a profiled table's meta says about calibration, spread and clamped groups, in a few lines."""
    from ..spread import GroupSpread

    lines = []
    for side, cal in costs.meta.get("calibration", {}).items():
        if "slowdown" in cal:
            lines.append(f"{side}: this machine's times x {cal['slowdown']:g}")
        else:
            factors = ", ".join(f"{c} x{f:.3g}" for c, f in cal["class_factors"].items())
            lines.append(f"{side}: mapped onto {cal['device']['name']} ({factors})")
    spread = GroupSpread.of(costs)
    if spread is not None:
        upper = np.triu(np.ones((costs.n, costs.n), dtype=bool)) & np.isfinite(costs.mobile_ms)
        width = np.median(spread.mobile_hi[upper] - spread.mobile_lo[upper])
        lines.append(f"spread: median interquartile band {width:.1%} of a group's median (mobile runs)")
    check = costs.meta.get("group_check", {})
    raised = {side: len(check.get(side, [])) for side in ("mobile", "cloud") if check.get(side)}
    if raised:
        lines.append(
            "raised to a group they contain: "
            + ", ".join(f"{k} {side} groups" for side, k in raised.items())
            + ' (meta["group_check"])'
        )
    return lines
