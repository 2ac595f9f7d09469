"""``jointdnn-edge demo``: the whole system on one machine, in well under a minute.

Builds a zoo model, profiles it, starts a cloud server on 127.0.0.1 in the
background, and runs inferences under each of the paper's network presets
three ways: everything on the mobile, everything on the cloud, and the
JointDNN split re-planned per inference. It reports predicted and measured
latency, the mobile energy estimate, the bytes sent and the schedule, and
checks that every output equals the local whole-model output.

What is emulated, and how (also printed with the results):

* the **mobile device** is this machine's CPU with one thread, slowed down by
  ``mobile_slowdown`` (default 20: the paper puts its server GPU at more
  than an order of magnitude beyond its Jetson TX2): each mobile run of layers is computed that
  many times (:class:`SlowedExecutor`);
* the **cloud** is the local server, one thread, at this machine's speed;
* the **link** is the loopback, paced by the client (:class:`~jointdnn_edge.client.Emulation`)
  to the preset's bandwidths;
* **energy** is the paper's model: the mobile's compute power (Jetson TX2,
  7.5 W) times its compute time, plus the radio power model of Table 3 for the
  bytes moved.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError
from .models.executor import EmulatedDevice
from .network import Network
from .planner import check_objective

__all__ = ["DemoResult", "DemoRow", "SlowedExecutor", "run_demo"]

#: Default emulated mobile/cloud compute gap (see the module docstring).
DEFAULT_MOBILE_SLOWDOWN = 20.0
#: Relative tolerance of the output check (the slicing invariant of docs/models-onnx.md).
OUTPUT_RTOL = 1e-5


class SlowedExecutor(EmulatedDevice):
    """An executor ``factor`` times slower than ``inner``: a weaker device that still computes.

    Each run is computed ``floor(factor)`` times (the first result is kept;
    the repeats run on warm caches, as the profiler's timed runs do) and
    then waits for the fractional part of ``factor`` times one run. Results
    are ``inner``'s, bit for bit.
    """

    def __init__(self, inner: Any, factor: float) -> None:
        if not factor >= 1.0:
            raise ConfigError(f"factor must be >= 1, got {factor!r}")
        super().__init__(inner)
        self.factor = float(factor)

    def _timed(self, fn: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = fn()
        one = time.perf_counter() - t0
        whole = int(self.factor)
        for _ in range(whole - 1):
            fn()
        if self.factor > whole:
            time.sleep(one * (self.factor - whole))
        return out

    def run(self, graph: Any, first: int, last: int, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inner.run``, slowed down."""
        return self._timed(lambda: self.inner.run(graph, first, last, feeds))

    def run_model(self, graph: Any, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inner.run_model``, slowed down."""
        return self._timed(lambda: self.inner.run_model(graph, feeds))

    def info(self) -> dict[str, Any]:
        """``inner.info()`` plus the slowdown."""
        return {**self.inner.info(), "emulated_slowdown": self.factor}


@dataclass
class DemoRow:
    """Medians over the measured runs of one strategy under one network."""

    network: str
    strategy: str
    schedule: str
    pattern: str
    predicted_ms: float | None
    measured_ms: float
    energy_mj: float | None
    predicted_energy_mj: float | None
    bytes_up: int
    bytes_down: int
    outputs_match: bool
    max_abs_diff: float
    estimate: tuple[float, float]
    fallbacks: int = 0


@dataclass
class DemoResult:
    """Everything the demo measured, plus the set-up it ran with."""

    model: str
    layers: int
    rows: list[DemoRow] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    @property
    def all_match(self) -> bool:
        """Whether every inference's outputs equalled the local whole-model outputs."""
        return all(r.outputs_match for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "model": self.model,
            "layers": self.layers,
            "setup": self.setup,
            "rows": [dict(r.__dict__) for r in self.rows],
        }


def _close(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> tuple[bool, float]:
    ok, worst = True, 0.0
    for name, w in want.items():
        g = got[name]
        diff = float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0
        worst = max(worst, diff)
        scale = float(np.max(np.abs(w))) if w.size else 1.0
        if g.shape != w.shape or g.dtype != w.dtype or diff > OUTPUT_RTOL * (scale or 1.0):
            ok = False
    return ok, worst


def run_demo(
    model: str = "alexnet",
    *,
    size: str = "small",
    format: str = "onnx",
    presets: Sequence[str] = ("3g", "4g", "wifi"),
    runs: int = 3,
    mobile_slowdown: float = DEFAULT_MOBILE_SLOWDOWN,
    max_group: int = 4,
    objective: str = "latency",
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring) and return its measurements.

    ``runs`` measured inferences per strategy and network (after one
    warm-up); ``max_group`` bounds the profiled groups (profiling time grows
    with it); ``report`` receives progress lines.
    """
    from . import zoo
    from .client import BandwidthEstimator, CloudClient, Emulation
    from .codec import compress_costs, layer_samples, profile_codec
    from .models.executor import executor_for
    from .models.graph import uniform_feeds
    from .profiler import profile
    from .server import BackgroundServer, create_app
    from .session import JointSession

    say = report or (lambda _line: None)
    # check the cheap arguments before the minutes of building, profiling and serving
    presets = list(presets)
    if not presets:
        raise ConfigError("give at least one network preset (3g, 4g, wifi)")
    for preset in presets:
        Network.preset(preset)
    check_objective(objective)
    if not (isinstance(runs, int) and runs >= 1):
        raise ConfigError(f"runs must be a positive integer, got {runs!r}")
    if not (isinstance(mobile_slowdown, (int, float)) and 1 <= mobile_slowdown < float("inf")):
        raise ConfigError(f"mobile_slowdown must be a finite number >= 1, got {mobile_slowdown!r}")
    if not (isinstance(max_group, int) and max_group >= 1):
        raise ConfigError(f"max_group must be a positive integer, got {max_group!r}")
    t_start = time.perf_counter()
    graph = zoo.load(model, format, size=size)
    say(f"built zoo model {graph.name} ({format}, {size}): {graph.n} layers, input {graph.input_bytes} B")

    local = executor_for(graph, threads=1)
    costs = profile(graph, local, max_group=max_group, repeats=3, cloud_speedup=1.0, progress=progress)
    samples = layer_samples(graph, [uniform_feeds(graph, 0)], executor=local)
    costs = compress_costs(costs, profile_codec(samples, repeats=1))
    # mobile = this CPU (1 thread) slowed down; cloud = this CPU (1 thread): the server below
    costs = costs.replace(mobile_ms=np.asarray(costs.mobile_ms) * mobile_slowdown, mobile_power_mw=7500.0)
    single = float(np.trace(costs.cloud_ms))
    say(
        f"profiled {graph.n} layers (groups of up to {max_group}): {single:.1f} ms as single layers on this CPU; "
        f"emulated mobile {mobile_slowdown:g}x slower"
    )

    inputs = uniform_feeds(graph, 1)
    reference = local.run_model(graph, inputs)
    mobile_exec = SlowedExecutor(executor_for(graph, threads=1), mobile_slowdown)
    app = create_app([graph], threads=1)
    result = DemoResult(graph.name, graph.n)
    k = mobile_slowdown
    result.setup = {
        "size": size,
        "format": format,
        "mobile": f"this CPU, 1 thread, {k:g}x slower (emulated: each run of layers computed {k:g} times)",
        "cloud": "local server on 127.0.0.1, 1 thread",
        "link": "loopback paced to each preset's bandwidth",
        "energy": "Jetson TX2 compute power 7.5 W and the paper's Table 3 radio model",
        "runs": runs,
        "objective": objective,
    }
    with BackgroundServer(app) as server:
        say(f"cloud server listening on {server.url}")
        for preset in presets:
            net = Network.preset(preset)
            client = CloudClient(server.url, emulate=Emulation.of(net), estimator=BandwidthEstimator())
            # cloud-only first: its large uploads give the estimator samples before JointDNN plans
            strategies: list[tuple[str, str | None]] = [
                ("cloud-only", "cloud"),
                ("JointDNN", None),
                ("mobile-only", "mobile"),
            ]
            for label, force in strategies:
                session = JointSession(
                    graph,
                    client,
                    costs,
                    network="auto",
                    objective=objective,
                    radio=net,
                    executor=mobile_exec,
                    force=force,
                )
                session.warm_up(probe=False)  # the lookup table built now, not beside the timed runs
                session.run(inputs)  # warm-up: runtime sessions on both sides, estimator samples
                lat, pred, energy, pred_e = [], [], [], []
                match, worst, fallbacks = True, 0.0, 0
                trace = None
                for _ in range(runs):
                    out = session.run(inputs)
                    trace = session.last_trace
                    assert trace is not None
                    ok, diff = _close(out, reference)
                    match &= ok
                    worst = max(worst, diff)
                    lat.append(trace.measured_ms)
                    if trace.predicted_ms is not None:
                        pred.append(trace.predicted_ms)
                    if trace.energy_mj is not None:
                        energy.append(trace.energy_mj)
                    if trace.predicted_energy_mj is not None:
                        pred_e.append(trace.predicted_energy_mj)
                    fallbacks += trace.fallback is not None
                assert trace is not None
                est = client.estimator.network(net)
                result.rows.append(
                    DemoRow(
                        network=preset,
                        strategy=label,
                        schedule=trace.bar(),
                        pattern=trace.schedule.pattern(),
                        predicted_ms=statistics.median(pred) if pred else None,
                        measured_ms=statistics.median(lat),
                        energy_mj=statistics.median(energy) if energy else None,
                        predicted_energy_mj=statistics.median(pred_e) if pred_e else None,
                        bytes_up=trace.bytes_up,
                        bytes_down=trace.bytes_down,
                        outputs_match=match,
                        max_abs_diff=worst,
                        estimate=(est.up_mbps, est.down_mbps),
                        fallbacks=fallbacks,
                    )
                )
                say(f"{preset:5} {label:12} measured {statistics.median(lat):8.1f} ms")
            client.close()
    result.setup["seconds"] = round(time.perf_counter() - t_start, 1)
    return result


def render(result: DemoResult, console: Any) -> None:
    """Print the demo's table and notes on a rich console."""
    from rich.table import Table

    runs = result.setup["runs"]
    table = Table(title=f"JointDNN demo: {result.model} ({result.layers} layers), medians of {runs} runs")
    for col, justify in [
        ("network", "left"),
        ("est. up/down", "right"),
        ("strategy", "left"),
        ("pred. ms", "right"),
        ("meas. ms", "right"),
        ("energy mJ", "right"),
        ("up B", "right"),
        ("down B", "right"),
    ]:
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("schedule", overflow="fold")
    last = None
    for r in result.rows:
        if last is not None and r.network != last:
            table.add_section()
        first = r.network != last
        last = r.network
        table.add_row(
            r.network if first else "",
            f"{r.estimate[0]:.3g}/{r.estimate[1]:.3g}" if first else "",
            f"[bold]{r.strategy}[/]" if r.strategy == "JointDNN" else r.strategy,
            "-" if r.predicted_ms is None else f"{r.predicted_ms:.1f}",
            f"{r.measured_ms:.1f}",
            "-" if r.energy_mj is None else f"{r.energy_mj:.1f}",
            f"{r.bytes_up:,}",
            f"{r.bytes_down:,}",
            r.schedule,
        )
    console.print(table)
    ok = result.all_match
    worst = max((r.max_abs_diff for r in result.rows), default=0.0)
    console.print(
        ("[green]outputs match[/]" if ok else "[red]OUTPUTS DIFFER[/]")
        + f" the local whole-model outputs in every run (max |diff| {worst:.2g}, tolerance {OUTPUT_RTOL:g} x max|y|)"
    )
    s = result.setup
    console.print(
        "schedule: one letter per layer, M mobile, C cloud, | between runs; est.: the client's bandwidth estimate "
        "in Mbit/s (a direction without large transfers keeps the preset's); energy: mobile, estimated\n"
        f"[dim]mobile: {s['mobile']}\ncloud: {s['cloud']}\nlink: {s['link']}\nenergy: {s['energy']}\n"
        "predicted: the planner's cost model on the estimated link; measured: wall time; "
        f"took {s.get('seconds', 0)} s[/]"
    )
