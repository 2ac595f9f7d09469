"""The lab's experiment: four strategies take turns on one shaped link while the trace plays.

``jointdnn`` is the adaptive session (its lookup table, re-planned per
inference from its own client's estimate), ``mobile`` and ``cloud`` the
status-quo baselines, ``static`` the best schedule for the link measured at
the start, kept. Each strategy has its own client (its own connection and
estimator), so no strategy learns from another's transfers. Every output is
compared with the local whole-model output.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, JointDNNError
from ..network import Network
from ._device import EMULATIONS, PacedExecutor, mobile_costs, slowdown_for
from ._lab import SERVER_ADDR, Lab, LabUnavailableError, lab_unavailable_reason, shaper_burst_bytes
from ._relay import DelayRelay
from ._trace import LinkTrace

__all__ = ["STRATEGIES", "NetlabResult", "run_netlab"]

STRATEGIES = ("jointdnn", "mobile", "cloud", "static")
SERVER_PORT = 8000
#: The adaptive session's ``probe_interval_s`` in the lab: an all-mobile inference probes when the link was last
#: measured longer ago than this (s).
DEFAULT_PROBE_EVERY_S = 2.0
#: The adaptive session's ``ping_interval_s`` in the lab: between probes, two pings when the round trip was last
#: measured longer ago than this (s); a round trip that fell starts a probe at once.
DEFAULT_PING_EVERY_S = 0.5
#: Inferences of a strategy after a phase starts that do not count as settled (prediction error).
SETTLE_INFERENCES = 3
#: The adaptive session has adapted to a phase once its schedule costs at most this much more than the phase's
#: optimum, both priced by the planner on the shaped link (optima of neighbouring links differ by less than this).
ADAPTED_WITHIN = 0.02
SERVER_READY_S = 120.0
#: The link's rate (Mbit/s, both ways) while the lab has the server load its slices, before the trace.
WARM_MBPS = 1000.0
#: At most this many ranges loaded on the server before the trace (see _Driver._warm_server).
WARM_RANGES = 8
OUTPUT_RTOL = 1e-5
_SERVE = "import sys; sys.argv[0] = 'jointdnn-edge'; from jointdnn_edge.cli import main; main()"


@dataclass
class NetlabResult:
    """What the lab measured: per-inference records, per-strategy and per-phase summaries, and the set-up."""

    inferences: list[dict[str, Any]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)
    shapers: list[dict[str, Any]] = field(default_factory=list)

    def strategies(self) -> dict[str, dict[str, Any]]:
        """Per strategy: latency percentiles (ms), mean energy (mJ), fallbacks, wrong outputs, lost inferences."""
        out = {}
        for s in STRATEGIES:
            recs = [r for r in self.inferences if r["strategy"] == s]
            out[s] = {
                "n": len(recs),
                **_latency_stats([r["measured_ms"] for r in recs if r["measured_ms"] is not None]),
            }
            energy = [r["energy_mj"] for r in recs if r.get("energy_mj") is not None]
            out[s]["energy_mj"] = statistics.fmean(energy) if energy else None
            out[s]["fallbacks"] = sum(r["fallback"] is not None for r in recs)
            out[s]["wrong_outputs"] = sum(r["correct"] is False for r in recs)
            out[s]["lost"] = sum(r["measured_ms"] is None for r in recs)
        return out

    def phases(self) -> list[dict[str, Any]]:
        """Per phase of the trace: the link, each strategy's p50, and how the adaptive session followed it."""
        out = []
        for ph in self.trace.get("phases", []):
            recs = [r for r in self.inferences if ph["start_s"] <= r["t_s"] < ph["end_s"]]
            row: dict[str, Any] = {**ph, "p50_ms": {}, "n": {}}
            for s in STRATEGIES:
                lat = [r["measured_ms"] for r in recs if r["strategy"] == s and r["measured_ms"] is not None]
                row["p50_ms"][s] = statistics.median(lat) if lat else None
                row["n"][s] = len(lat)
            joint = [r for r in recs if r["strategy"] == "jointdnn"]
            settled = _mode([r["schedule"] for r in joint[SETTLE_INFERENCES:]] or [r["schedule"] for r in joint])
            row["jointdnn_schedule"] = settled
            row["jointdnn_settled_after"] = next((i for i, r in enumerate(joint) if r["schedule"] == settled), None)
            row["optimum_ms"] = next((r["shaped_optimum_ms"] for r in joint if r.get("shaped_optimum_ms")), None)
            row["jointdnn_adapted_after"] = next((i for i, r in enumerate(joint) if _adapted(r)), None)
            errs = [
                abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]
                for r in joint[SETTLE_INFERENCES:]
                if r["predicted_ms"] is not None and r["measured_ms"] and r["fallback"] is None
            ]
            row["jointdnn_settled_rel_error_p50"] = statistics.median(errs) if errs else None
            out.append(row)
        return out

    def goals(self) -> dict[str, Any]:
        """The issue's goals, as measured: see docs/netlab.md."""
        strategies = self.strategies()
        phases = self.phases()
        joint = [r for r in self.inferences if r["strategy"] == "jointdnn" and r["measured_ms"]]
        fractions = [r["decision_us"] / 1e3 / r["measured_ms"] for r in joint]
        per_phase_ok = []
        for ph in phases:
            p = ph["p50_ms"]
            others = [p[s] for s in ("mobile", "cloud", "static") if p[s] is not None]
            per_phase_ok.append(p["jointdnn"] is not None and bool(others) and p["jointdnn"] <= min(others))
        best_other = min((strategies[s]["p50_ms"] for s in ("mobile", "cloud", "static") if strategies[s]["n"]),
                         default=None)  # fmt: skip
        errors = [e for ph in phases if (e := ph["jointdnn_settled_rel_error_p50"]) is not None]
        return {
            "jointdnn_p50_no_worse_each_phase": per_phase_ok,
            "jointdnn_p50_ms": strategies["jointdnn"]["p50_ms"],
            "best_other_p50_ms": best_other,
            "adapted_after_inferences": [ph["jointdnn_adapted_after"] for ph in phases],
            "settled_rel_error_p50_by_phase": errors,
            "decision_fraction_max": max(fractions) if fractions else None,
            "decision_fraction_p50": statistics.median(fractions) if fractions else None,
            "wrong_outputs": sum(s["wrong_outputs"] for s in strategies.values()),
            "lost": sum(s["lost"] for s in strategies.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``jointdnn-edge netlab --json`` (docs/netlab.md)."""
        return {
            "strategies": self.strategies(),
            "inferences": self.inferences,
            "trace": self.trace,
            "phases": self.phases(),
            "goals": self.goals(),
            "probes": self.probes,
            "shapers": self.shapers,
            "setup": self.setup,
        }


def _latency_stats(lat: list[float]) -> dict[str, float | None]:
    if not lat:
        return {"p50_ms": None, "p95_ms": None, "mean_ms": None}
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "mean_ms": statistics.fmean(lat),
    }


def _adapted(rec: Mapping[str, Any]) -> bool:
    """Whether an inference ran a schedule within :data:`ADAPTED_WITHIN` of the optimum on the shaped link, without
    falling back (a record without the shaped costs, from an outage: never)."""
    cost, best = rec.get("shaped_cost_ms"), rec.get("shaped_optimum_ms")
    return rec["fallback"] is None and cost is not None and best is not None and cost <= (1 + ADAPTED_WITHIN) * best


def _mode(items: list[str]) -> str | None:
    return max(set(items), key=items.count) if items else None


def _outputs_equal(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> bool:
    """Same names, shapes and dtypes, and values within :data:`OUTPUT_RTOL` of the output's magnitude."""
    for name, w in want.items():
        g = got.get(name)
        if g is None or g.shape != w.shape or g.dtype != w.dtype:
            return False
        if w.size and float(np.max(np.abs(g.astype(np.float64) - w))) > OUTPUT_RTOL * (float(np.max(np.abs(w))) or 1.0):
            return False
    return True


def _model(model: str, size: str) -> tuple[Any, list[str]]:
    """The graph and the ``serve`` arguments that load the same model on the server."""
    from .. import zoo
    from ..models import load_model

    path = Path(model)
    if path.is_file():
        return load_model(str(path)), [str(path.resolve())]
    name = model.removeprefix("zoo:")
    return zoo.load(name, "onnx", size=size), [f"zoo:{name}", "--size", size]


def _host_costs(graph: Any, max_group: int) -> Any:
    """The demo's cost table of this CPU on one thread (both sides), with the codec's measured sizes and times."""
    from ..codec import compress_costs, layer_samples, profile_codec
    from ..models.executor import executor_for
    from ..models.graph import uniform_feeds
    from ..profiler import profile

    local = executor_for(graph, threads=1)
    costs = profile(graph, local, max_group=max_group, repeats=3, cloud_speedup=1.0, progress=False)
    samples = layer_samples(graph, [uniform_feeds(graph, 0)], executor=local)
    return compress_costs(costs, profile_codec(samples, repeats=1))


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabUnavailableError(f"the lab's server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise LabUnavailableError(f"the lab's server was not ready in {timeout_s:.0f} s: {log.read_text()[-2000:]}")


class _Player:
    """Plays a trace: the shapers follow it from :meth:`start` on (a thread), :meth:`link` says what holds now."""

    def __init__(self, lab: Lab, trace: LinkTrace, duration_s: float) -> None:
        self.lab, self.trace, self.duration_s = lab, trace, duration_s
        self.t0: float | None = None
        self.stop = threading.Event()
        self.error: BaseException | None = None
        #: The shapers' counters just before each change (Lab.shaper_stats), and at the end.
        self.shaper_log: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._play, name="netlab-player", daemon=True)

    def now(self) -> float:
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    def link(self) -> Any:
        return self.trace.at(self.now())

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread.start()

    def _play(self) -> None:
        shaped = None
        try:
            for t, point in self.trace.changes(self.duration_s):
                if self.stop.wait(max(0.0, t - self.now())):
                    return
                if (point.up_mbps, point.down_mbps) != shaped:
                    self.log_shapers()
                    self.lab.shape(point.up_mbps, point.down_mbps)
                    shaped = (point.up_mbps, point.down_mbps)
        except BaseException as e:  # reported by the driver
            self.error = e
            self.stop.set()

    def log_shapers(self) -> None:
        """Append the shapers' counters now to :attr:`shaper_log` (a diagnostic: never the reason a run fails)."""
        with contextlib.suppress(Exception):
            self.shaper_log.append({"t_s": round(self.now(), 3), **self.lab.shaper_stats()})

    def join(self) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def run_netlab(
    model: str = "alexnet",
    trace: LinkTrace | None = None,
    *,
    size: str = "small",
    duration_s: float | None = None,
    mobile_slowdown: float = 20.0,
    phone_ms: float | None = None,
    device: str = "host",
    emulation: str = "repeat",
    max_group: int = 4,
    radio: str | Network = "wifi",
    probe_every_s: float = DEFAULT_PROBE_EVERY_S,
    ping_every_s: float | None = DEFAULT_PING_EVERY_S,
    report: Callable[[str], None] | None = None,
) -> NetlabResult:
    """Build the lab, serve ``model`` inside it, and run the four strategies in turn while ``trace`` plays.

    ``duration_s`` defaults to the trace's length (a longer run repeats it).
    The emulated phone: ``device="host"`` is this CPU ``mobile_slowdown``
    times slower (or, with ``phone_ms``, as many times slower as makes the
    whole model take ``phone_ms``: the same phone in every run, whatever
    this CPU's profile drew; sleep emulation only), a device preset
    (:data:`jointdnn_edge.devices.DEVICES`) its
    model's times; ``emulation`` says how it is made slower (``"repeat"``:
    each slice computed ``mobile_slowdown`` times, host only; ``"sleep"``:
    computed once and padded to its time, see :mod:`._device`).
    ``probe_every_s`` and ``ping_every_s`` are the adaptive session's
    ``probe_interval_s`` and ``ping_interval_s``.
    Raises :class:`LabUnavailableError` (with the reason) where the lab cannot be built.
    """
    from ..client import BandwidthEstimator, CloudClient
    from ..demo import SlowedExecutor
    from ..models.executor import executor_for
    from ..models.graph import uniform_feeds
    from ..planner import plan

    say = report or (lambda _line: None)
    trace = trace if trace is not None else LinkTrace.from_csv(Path(__file__).parent / "traces" / "step.csv")
    duration = float(duration_s) if duration_s is not None else trace.duration_s
    if not (math.isfinite(duration) and duration > 0):
        raise ConfigError(f"duration must be a positive number of seconds, got {duration_s!r}")
    if not (isinstance(mobile_slowdown, (int, float)) and 1 <= mobile_slowdown < math.inf):
        raise ConfigError(f"mobile_slowdown must be a finite number >= 1, got {mobile_slowdown!r}")
    if emulation not in EMULATIONS:
        raise ConfigError(f"emulation must be one of {EMULATIONS}, got {emulation!r}")
    if phone_ms is not None and (device != "host" or emulation != "sleep"):
        raise ConfigError("phone_ms sets this CPU's slowdown: device='host' and emulation='sleep' only")
    if device != "host" and emulation == "repeat":
        raise ConfigError("a device model is emulated with emulation='sleep' (repeat only slows this CPU down)")
    if device != "host":
        from ..devices import device as device_preset

        device = device_preset(device).name  # a typed error for an unknown name, before the lab is built
    radio_net = Network.preset(radio) if isinstance(radio, str) else radio
    why = lab_unavailable_reason()
    if why is not None:
        raise LabUnavailableError(why)

    graph, serve_args = _model(model, size)
    say(f"model {graph.name}: {graph.n} layers, input {graph.input_bytes} B; profiling (groups of up to {max_group})")
    host = _host_costs(graph, max_group)
    if phone_ms is not None:
        mobile_slowdown = slowdown_for(host, phone_ms)
        say(f"phone {phone_ms:g} ms: this CPU's profile x {mobile_slowdown:.3g}")
    costs, mobile_setup = mobile_costs(graph, host, device, mobile_slowdown, max_group)
    if phone_ms is not None:
        mobile_setup["phone_ms"] = phone_ms
    inputs = uniform_feeds(graph, 1)
    reference = executor_for(graph, threads=1).run_model(graph, inputs)
    if emulation == "repeat":
        mobile_exec: Any = SlowedExecutor(executor_for(graph, threads=1), mobile_slowdown)
        mobile_desc = f"this CPU, 1 thread, {mobile_slowdown:g}x slower (each run of layers computed that many times)"
    else:
        mobile_exec = PacedExecutor(executor_for(graph, threads=1), costs.mobile_ms)
        what = f"this CPU's profile x {mobile_slowdown:g}" if device == "host" else f"the {device} device model"
        mobile_desc = f"this CPU, 1 thread, each run computed once and padded to {what}'s time for it"
    result = NetlabResult()
    result.trace = {**trace.to_dict(), "played_s": duration}
    result.trace["phases"] = [
        {"start_s": a, "end_s": b, **{k: v for k, v in p.to_dict().items() if k != "t_s"}}
        for a, b, p in trace.phases(duration)
    ]
    result.setup = {
        "model": graph.name,
        "layers": graph.n,
        "size": size,
        "mobile": mobile_desc,
        "mobile_costs": mobile_setup,
        "emulation": emulation,
        "cloud": "jointdnn-edge serve in the server namespace, 1 thread, this CPU",
        "link": "veth pair between two namespaces, tbf each way; delay, jitter, loss and outages by a user-space relay",
        "radio": radio_net.name or "custom",
        "probe_every_s": probe_every_s,
        "ping_every_s": ping_every_s,
    }

    first = trace.at(0.0)
    log = Path(tempfile.mkstemp(prefix="netlab-server-", suffix=".log")[1])
    with Lab(first.up_mbps, first.down_mbps) as lab, log.open("wb") as log_file:
        proc = lab.start_server(
            [sys.executable, "-c", _SERVE, "serve", *serve_args, "--host", SERVER_ADDR,
             "--port", str(SERVER_PORT), "--threads", "1", "--log-level", "warning"],
            log=log_file,
        )  # fmt: skip
        player = _Player(lab, trace, duration)
        lab.client_call(_wait_ready, f"http://{SERVER_ADDR}:{SERVER_PORT}", proc, log, SERVER_READY_S).result()
        say(f"server ready in namespace {lab.server_ns}; link {first.up_mbps:g}/{first.down_mbps:g} Mbit/s")
        with DelayRelay(lab.client_ns, (SERVER_ADDR, SERVER_PORT), player.link) as relay:
            driver = _Driver(graph, costs, relay.url, radio_net, mobile_exec, inputs, reference, player,
                             result, duration, (probe_every_s, ping_every_s), say)  # fmt: skip
            future = lab.client_call(driver.run, CloudClient, BandwidthEstimator, plan)
            try:
                while True:
                    try:
                        future.result(timeout=0.5)
                        break
                    except TimeoutError:
                        continue
            except BaseException:
                player.stop.set()
                with contextlib.suppress(BaseException):
                    future.result(timeout=30)
                raise
            finally:
                player.join()
                player.log_shapers()  # at the end
                result.shapers = player.shaper_log
        if player.error is not None:
            raise player.error
    with contextlib.suppress(OSError):
        log.unlink()
    return result


class _Driver:
    """The client side of the experiment, run on the lab's client thread (inside the client namespace)."""

    def __init__(self, graph: Any, costs: Any, url: str, radio: Network, mobile_exec: Any, inputs: Any,
                 reference: Any, player: _Player, result: NetlabResult, duration: float,
                 intervals: tuple[float, float | None], say: Callable[[str], None]) -> None:  # fmt: skip
        self.graph, self.costs, self.url, self.radio = graph, costs, url, radio
        self.mobile_exec, self.inputs, self.reference = mobile_exec, inputs, reference
        self.player, self.result, self.duration = player, result, duration
        self.intervals, self.say = intervals, say
        self._optima: dict[tuple[float, float, float], float] = {}

    def _planned_link(self, up_mbps: float, down_mbps: float, rtt_ms: float) -> Network:
        """A shaped link as the planner prices it: the lab's radio at these rates, half the round trip per platform
        switch (a request is two switches), and the shapers' bursts."""
        return replace(
            self.radio, up_mbps=up_mbps, down_mbps=down_mbps, rtt_ms=rtt_ms / 2,
            burst_up_bytes=float(shaper_burst_bytes(up_mbps)), burst_down_bytes=float(shaper_burst_bytes(down_mbps)),
        )  # fmt: skip

    def _shaped_costs(self, point: Any, schedule: Any) -> dict[str, float | None]:
        """``schedule``'s latency and the optimum, both priced by the planner on the shaped link (None in an outage).

        The oracle of "adapted" (:data:`ADAPTED_WITHIN`): what the schedule costs on the link as it really is, not
        on the estimate it was planned with.
        """
        from ..planner import plan

        if point.up_mbps <= 0 or point.down_mbps <= 0:
            return {"shaped_cost_ms": None, "shaped_optimum_ms": None}
        net = self._planned_link(point.up_mbps, point.down_mbps, point.rtt_ms)
        key = (point.up_mbps, point.down_mbps, point.rtt_ms)
        if key not in self._optima:
            self._optima[key] = plan(self.costs, net, cloud_keeps_tensors=False).latency_ms
        cost = schedule.evaluate(self.costs, net, cloud_keeps_tensors=False).latency_ms
        return {"shaped_cost_ms": cost, "shaped_optimum_ms": self._optima[key]}

    def run(self, client_cls: Any, estimator_cls: Any, plan: Any) -> None:
        from ..session import JointSession

        clients = {s: client_cls(self.url, estimator=estimator_cls()) for s in STRATEGIES}
        sessions: dict[str, Any] = {}
        try:
            # Only the adaptive session probes (its own small probe, started by an all-mobile inference when its
            # estimate is stale), and the lab waits for that probe before the next strategy runs: a probe beside
            # another strategy's transfer would share the link with it and both would measure a part of it (on 3G
            # the adaptive session's estimate read 0.3-0.5 of 1.1 Mbit/s). See _loop.
            common = {"network": "auto", "radio": self.radio, "executor": self.mobile_exec, "probe_interval_s": None}
            sessions["jointdnn"] = JointSession(
                self.graph, clients["jointdnn"], self.costs,
                **{**common, "probe_interval_s": self.intervals[0], "ping_interval_s": self.intervals[1]},
            )  # fmt: skip
            sessions["mobile"] = JointSession(self.graph, clients["mobile"], self.costs, force="mobile", **common)
            sessions["cloud"] = JointSession(self.graph, clients["cloud"], self.costs, force="cloud", **common)
            # static: the best schedule for the link its client measures now, kept for the whole run
            clients["static"].ping()
            warm = JointSession(self.graph, clients["static"], self.costs, **common)
            warm.probe(2)
            chosen = plan(self.costs, clients["static"].estimator.network(self.radio), cloud_keeps_tensors=False)
            sessions["static"] = JointSession(
                self.graph, clients["static"], self.costs, schedule=chosen.segments, **common
            )
            self.result.setup["static_schedule"] = chosen.bar()
            for name, session in sessions.items():
                session.warm_up(probe=name != "mobile")
            self._warm_server(sessions["jointdnn"], client_cls, estimator_cls)
            for session in sessions.values():
                session.run(self.inputs)  # warm: runtime sessions on both sides
            self.say(f"static schedule {chosen.bar()}; trace starts")
            self._loop(sessions, clients)
        finally:
            for c in clients.values():
                c.close()

    def _warm_server(self, session: Any, client_cls: Any, estimator_cls: Any) -> None:
        """Have the server load the cloud runs of the optimal schedules on the trace's links (and at half and twice
        their bandwidths, where an estimate may stray), at most :data:`WARM_RANGES`, as ``serve --preload`` would,
        with a client of its own (no strategy's estimator sees these transfers), before the trace starts.

        Otherwise the first request of each new split waits for the server to load its slice (seconds for the full
        AlexNet's classifier), misses its deadline, and leaves a low bound in the estimate. Not every schedule of
        the lookup table: each of the full AlexNet's slices that holds the classifier weighs 233 MB, and its table
        has dozens.
        """
        from ..codec import encode
        from ..models.graph import probe_feeds
        from ..planner import plan, runs_of

        links = sorted({(p.up_mbps, p.down_mbps, p.rtt_ms) for p in self.player.trace.points if not p.outage})
        ranges: list[tuple[int, int]] = []
        for f in (1.0, 0.5, 2.0):
            for up, down, rtt in links:
                net = self._planned_link(up * f, down * f, rtt)
                for a, b, where in runs_of(plan(self.costs, net, cloud_keeps_tensors=False).segments):
                    if where == "cloud" and (a, b) not in ranges:
                        ranges.append((a, b))
        ranges = ranges[:WARM_RANGES]
        lab, start = self.player.lab, self.player.trace.at(0.0)
        lab.shape(WARM_MBPS, WARM_MBPS)  # megabytes of inputs: seconds each on 3G
        try:
            with client_cls(self.url, estimator=estimator_cls()) as client:
                for first, last in ranges:
                    frame = encode(probe_feeds(self.graph, first, last), codec="raw")
                    client.infer_slice(session.model_name, first, last, frame, codec="raw", digest=session.digest)
        finally:
            lab.shape(start.up_mbps, start.down_mbps)
        self.result.setup["server_warmed_ranges"] = ranges

    def _loop(self, sessions: dict[str, Any], clients: dict[str, Any]) -> None:
        player = self.player
        player.start()
        while not player.stop.is_set():
            for name in STRATEGIES:
                t = player.now()
                if t >= self.duration or player.stop.is_set():
                    player.stop.set()
                    return
                before = clients[name].estimator.taken()
                rec = self._one(name, sessions[name], clients[name], t)
                if name == "jointdnn":
                    self._after_probe(sessions[name], clients[name], rec, before)

    def _after_probe(self, session: Any, client: Any, rec: Mapping[str, Any], before: Mapping[str, int]) -> None:
        """Wait for the probe the adaptive session started during its inference, if still running, and record it.

        An all-mobile inference moves nothing, so the samples its estimator took are its probe's.
        """
        t0 = time.perf_counter()
        waited = session.wait_for_probe()
        wait_ms = (time.perf_counter() - t0) * 1e3
        took = client.estimator.taken() != before
        if waited or (took and rec["bytes_up"] == 0 and rec["bytes_down"] == 0):
            self.result.probes.append({"t_s": rec["t_s"], "ms": wait_ms, "ok": took})

    def _one(self, name: str, session: Any, client: Any, t: float) -> dict[str, Any]:
        point = self.player.link()
        est = client.estimator
        rec: dict[str, Any] = {
            "t_s": round(t, 4),
            "strategy": name,
            "shaped_up_mbps": point.up_mbps,
            "shaped_down_mbps": point.down_mbps,
            "shaped_rtt_ms": point.rtt_ms,
            "est_up_mbps": est.up_mbps,
            "est_down_mbps": est.down_mbps,
            "est_rtt_ms": est.rtt_ms,
        }
        try:
            out = session.run(self.inputs)
        except JointDNNError as e:
            rec.update(predicted_ms=None, measured_ms=None, decision_us=None, schedule=None, fallback=str(e),
                       correct=None, energy_mj=None, bytes_up=0, bytes_down=0, source="lost")  # fmt: skip
            self.result.inferences.append(rec)
            return rec
        tr = session.last_trace
        rec.update(
            predicted_ms=tr.predicted_ms,
            measured_ms=tr.measured_ms,
            decision_us=tr.planning_ms * 1e3,
            schedule=tr.bar(),
            planned=tr.schedule.bar(),
            source=tr.source,
            fallback=tr.fallback,
            correct=_outputs_equal(out, self.reference),
            energy_mj=tr.energy_mj,
            bytes_up=tr.bytes_up,
            bytes_down=tr.bytes_down,
            planned_up_mbps=tr.network.up_mbps,
            planned_down_mbps=tr.network.down_mbps,
            planned_rtt_ms=tr.network.rtt_ms * 2,  # the round trip: the planner's rtt_ms is charged per switch
            # the burst the plan credited (the estimator's, learnt from its transfers' sizes and times)
            planned_burst_up_bytes=tr.network.burst_up_bytes,
            planned_burst_down_bytes=tr.network.burst_down_bytes,
            planned_cloud_slowdown=tr.cloud_slowdown,
            network_ms=sum(s.network_ms for s in tr.steps if s.platform == "cloud"),
            server_ms=sum(s.server_ms for s in tr.steps if s.platform == "cloud"),
            **self._shaped_costs(point, tr.schedule),
        )
        self.result.inferences.append(rec)
        return rec
