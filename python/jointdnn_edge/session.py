"""The joint session: split every inference between this device and the cloud, re-planned each time.

Per inference, :meth:`JointSession.run` reads the current network estimate,
asks the lookup table for the optimal schedule (solving it exactly while the
table is built in the background), runs the
mobile runs of layers locally and sends the cloud runs to the endpoint as
split requests, and returns the model outputs. ``session.last_trace`` tells
what happened: the schedule, each run's times, bytes and codecs, and the
predicted against the measured latency.

Nothing is lost when the cloud fails: if a request cannot be delivered, misses
its deadline (a total budget per cloud step, derived from the step's predicted
time), is refused or comes back corrupt, the session runs the rest of the
model locally from the layer that failed and records the fallback in the
trace. The client's circuit breaker counts the failure (once per outage, not
for client errors) and keeps the cloud out of plans while it backs off. The outputs equal the local whole-model
outputs up to the slicing tolerance of the executors (``docs/session.md``).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .client import CloudClient, SliceCall, as_model_tensor, is_cloud_failure
from .errors import CodecError, ConfigError, ExecutionError, InfeasibleError, JointDNNError, TransportError
from .network import Network, Radio
from .planner import LookupTable, Schedule, check_bound, check_force, check_objective, plan, runs_of

if TYPE_CHECKING:
    from .costs import CostTable
    from .lossy import LossySpec
    from .models.graph import ModelGraph
    from .planner import TransferOption

__all__ = ["JointSession", "Step", "Trace"]

logger = logging.getLogger("jointdnn_edge.session")

#: Bandwidth box of the session's lookup table (Mbit/s); points outside are solved exactly.
DEFAULT_LUT_UP = (0.1, 1000.0)
DEFAULT_LUT_DOWN = (0.1, 1000.0)
#: Cloud slowdown box of the lookup table (measured server time over the cost table's cloud time).
DEFAULT_LUT_SLOWDOWN = (1.0, 8.0)
#: When the session builds its lookup table (``lut_build``): see :class:`JointSession`.
LUT_BUILDS = ("background", "blocking", "never")
#: How long :meth:`JointSession.close` waits for a cancelled table build to stop (s); it stops at its next cells.
BUILD_JOIN_S = 2.0
#: A queue-wait estimate up to this (ms) is never planned for: half of it per switch stays within the 1 ms floor of
#: the round-trip tolerance (:func:`_drifted`), so :meth:`JointSession._with_queue` would return the link as it is.
#: The hot path compares against it instead of calling that method.
_QUEUE_WAIT_IGNORED_MS = 2.0
#: A background ping watch (``ping_interval_s``) takes the network to have changed when both its pings lie more than
#: this factor above, or below, the round-trip estimate, and more than :data:`RTT_MOVED_MS` from it. Below the
#: estimator's own step factor (2): radios' round trips differ about 2x (the lab's 3G, 4G and Wi-Fi: 80, 40, 10 ms),
#: and a step from 80 to 40 ms measured as 81.5 -> 41.5 would not pass 2x.
RTT_MOVED_FACTOR = 1.5
#: See :data:`RTT_MOVED_FACTOR` (ms): a LAN's sub-millisecond jitter is no change of network.
RTT_MOVED_MS = 2.0
#: The most of the time background probes may take: a session waits at least ten times its last probe's duration
#: before the next (a full AlexNet's probe takes 4.4 s of a 3G link; every ``probe_interval_s`` = 5 s it would hold
#: the radio 90 % of the time). The duration measured, not one priced on the estimate: an estimate a failure left
#: low would price the probe that corrects it dear and put it off (in the lab, for the rest of the run). A probe on a
#: network whose round trip just fell sets no floor (see ``JointSession._measure_link``).
PROBE_DUTY = 0.1
#: The real split requests of a background probe: two samples, so that the estimator drops the older ones at once
#: when the link has changed.
PROBE_REQUESTS = 2
#: Looked up once, for JointSession.run: a lookup in a module's dict costs ~0.1 µs (numpy's: ~0.4 µs) on the cold
#: caches the runtime leaves behind (benches/session_overhead.py)
_NDARRAY = np.ndarray
_perf_counter = time.perf_counter
#: What :meth:`JointSession.run` reads of a schedule: ``(runs, predicted ms, predicted mJ, all on this device)``.
_Facts = tuple[list[tuple[int, int, str]], float | None, float | None, bool]


@dataclass
class Step:
    """One executed run of consecutive layers on one platform.

    ``ms``: wall time of the step on this device (a cloud step includes
    encoding, the request and decoding); ``compute_ms``: the layers' compute
    (mobile executor, or as the server reports it); ``encode_ms``/``decode_ms``:
    this device's codec time; ``server_ms``: the server's whole handling;
    ``queue_ms``: the part of it spent waiting for a compute slot;
    ``network_ms``: request wall time minus ``server_ms``; ``codec_up``/
    ``codec_down``: codecs of the frames' tensors; ``fallback``: a local run
    replacing failed cloud work; ``error``: why this cloud step failed;
    ``deadline_ms``: the deadline the cloud request was given (None: the
    client's timeout, when there is no cost table to predict from);
    ``lossy``: the inputs this cloud step sent lossily, ``{tensor: option}``.
    """

    first: int
    last: int
    platform: str
    ms: float = 0.0
    compute_ms: float = 0.0
    bytes_up: int = 0
    bytes_down: int = 0
    encode_ms: float = 0.0
    decode_ms: float = 0.0
    server_ms: float = 0.0
    queue_ms: float = 0.0
    network_ms: float = 0.0
    codec_up: str = ""
    codec_down: str = ""
    fallback: bool = False
    error: str | None = None
    deadline_ms: float | None = None
    lossy: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dict(self.__dict__)


@dataclass
class Trace:
    """What one :meth:`JointSession.run` did.

    ``schedule``: the plan (its costs are the predictions); ``source``: where
    it came from (``"lut"``, ``"plan"``, ``"plan (table building)"``, ``"fixed"``, ``"mobile-only: ..."``);
    ``network``/``cloud_slowdown``: the conditions planned for (the round
    trip with the cloud's queue wait, when it is planned for); ``steps``:
    what ran, in order (a failed cloud step, then the local fallback);
    ``predicted_ms``/``measured_ms``: end-to-end latency; ``predicted_energy_mj``
    and ``energy_mj`` (mobile compute at ``power_mw``, the cost table's mobile
    power, plus radio energy of the bytes actually moved, on ``network``;
    worked out from the steps when read; None without a cost table); ``fallback``: the reason
    the cloud was given up on this inference, if it was; ``backoff_s``: the
    back-off the client's circuit breaker is in after the failure (None when
    the failure did not open it, e.g. a 4xx); ``planning_ms``: time to pick the
    schedule; ``setup_ms``: one-time work this inference waited for (profiling
    the model; building the lookup table with ``lut_build="blocking"``), not
    counted in ``measured_ms``.
    """

    schedule: Schedule
    source: str
    network: Network
    cloud_slowdown: float
    steps: list[Step] = field(default_factory=list)
    predicted_ms: float | None = None
    measured_ms: float = 0.0
    predicted_energy_mj: float | None = None
    power_mw: float | None = None
    fallback: str | None = None
    backoff_s: float | None = None
    planning_ms: float = 0.0
    setup_ms: float = 0.0
    # JointSession.run passes every field above by position: a new field goes last, with a default.

    @property
    def energy_mj(self) -> float | None:
        """Mobile energy estimate (mJ): the steps' mobile compute and codec work at ``power_mw``, plus the radio
        energy of the bytes they moved on ``network``, each cloud step's request and response less what the link's
        burst saves, as the planner prices them (None without a power)."""
        power = self.power_mw
        if power is None:
            return None
        busy_ms = 0.0  # mobile compute, and codec work for the cloud steps
        radio = 0.0
        net = self.network
        for s in self.steps:
            if s.platform == "mobile":
                busy_ms += s.compute_ms
            else:
                busy_ms += s.encode_ms + s.decode_ms
                if s.bytes_up or s.bytes_down:
                    radio += net.upload_mj(s.bytes_up) + net.download_mj(s.bytes_down)
                    if net.burst_up_bytes or net.burst_down_bytes:  # the burst's bytes: no base power over them
                        saved_ms = net.upload_ms(min(net.burst_up_bytes, s.bytes_up)) + net.download_ms(
                            min(net.burst_down_bytes, s.bytes_down)
                        )
                        radio -= net.beta * saved_ms / 1e3
        return busy_ms * power / 1e3 + radio

    @property
    def bytes_up(self) -> int:
        """Bytes sent to the cloud (HTTP bodies)."""
        return sum(s.bytes_up for s in self.steps)

    @property
    def bytes_down(self) -> int:
        """Bytes received from the cloud (HTTP bodies)."""
        return sum(s.bytes_down for s in self.steps)

    @property
    def executed(self) -> list[tuple[int, int, str]]:
        """The runs that produced the outputs (failed cloud steps left out)."""
        return [(s.first, s.last, s.platform) for s in self.steps if s.error is None]

    def bar(self) -> str:
        """The executed placement, one character per layer: ``M`` mobile, ``C`` cloud, ``|`` between runs."""
        return "|".join(("M" if p == "mobile" else "C") * (b - a + 1) for a, b, p in self.executed)

    def summary(self) -> str:
        """A few human-readable lines."""
        pred = f"{self.predicted_ms:.1f} ms" if self.predicted_ms is not None else "n/a"
        net = self.network
        burst = net.burst_up_bytes or net.burst_down_bytes
        lines = [
            f"schedule {self.schedule.bar()} ({self.source}); planned for up {net.up_mbps:.3g} / "
            f"down {net.down_mbps:.3g} Mbit/s, rtt {2 * net.rtt_ms:.3g} ms"
            + (f", burst {net.burst_up_bytes:.0f} / {net.burst_down_bytes:.0f} B" if burst else ""),
            f"latency predicted {pred}, measured {self.measured_ms:.1f} ms; "
            f"{self.bytes_up} B up, {self.bytes_down} B down",
        ]
        if self.setup_ms > 0:
            lines.append(f"  (first use: {self.setup_ms:.0f} ms of one-time set-up before this inference)")
        for s in self.steps:
            what = f"  {s.platform:6} {s.first}..{s.last}: {s.ms:.2f} ms (compute {s.compute_ms:.2f})"
            if s.platform == "cloud":
                what += f", {s.bytes_up} B up [{s.codec_up}], {s.bytes_down} B down [{s.codec_down}]"
                if s.lossy:
                    what += " lossy " + ", ".join(f"{t}={o}" for t, o in s.lossy.items())
            if s.fallback:
                what += " [local fallback]"
            if s.error:
                what += f" FAILED: {s.error}"
            lines.append(what)
        if self.fallback:
            lines.append(f"  cloud given up: {self.fallback}; back-off {self.backoff_s or 0:.2f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (costs a fixed schedule was not evaluated with are null)."""
        schedule = self.schedule.to_dict()
        schedule = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in schedule.items()}
        return {
            "schedule": schedule,
            "source": self.source,
            "network": self.network.to_dict(),
            "cloud_slowdown": self.cloud_slowdown,
            "steps": [s.to_dict() for s in self.steps],
            "predicted_ms": self.predicted_ms,
            "measured_ms": self.measured_ms,
            "predicted_energy_mj": self.predicted_energy_mj,
            "energy_mj": self.energy_mj,
            "power_mw": self.power_mw,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "fallback": self.fallback,
            "backoff_s": self.backoff_s,
            "planning_ms": self.planning_ms,
            "setup_ms": self.setup_ms,
        }


class JointSession:
    """Runs a model split between this device and a cloud endpoint, re-planning every inference.

    ``model``: a :class:`~jointdnn_edge.ModelGraph` (or a path / bytes for
    :func:`~jointdnn_edge.load_model`). ``cloud``: a
    :class:`~jointdnn_edge.client.CloudClient`, a URL, or None (everything
    local). ``costs``: the model's :class:`~jointdnn_edge.CostTable`; None
    profiles this device when a plan is first needed (cloud times = mobile
    times / 10, corrected online by the measured cloud slowdown).
    ``network``: ``"auto"`` (the client's bandwidth estimator, with the
    power model of ``radio``), a preset name or a fixed
    :class:`~jointdnn_edge.Network`. ``objective`` and the constraints
    (``deadline_ms``, ``energy_budget_mj``, ``cloud_budget_ms``) are the
    planner's.

    Other options: ``schedule`` fixes the split (a
    :class:`~jointdnn_edge.Schedule` or ``(first, last, platform)``
    segments), ``force="mobile"|"cloud"`` plans the status-quo baselines;
    ``codec``/``codec_level`` choose the activation codec (lossless;
    ``quantize_bits`` makes it lossy, only when asked); ``executor`` the
    local runtime, which both profiles (when ``costs`` is None) and runs
    the mobile layers; without one, ``executor_for(model, threads=threads)``
    with ``threads=1`` by default (``None``: the runtime's own default, one
    thread per core for onnxruntime, whose per-slice thread pools make
    profiling many times slower where cores are few or shared);
    ``model_name`` the name on the server (default ``model.name``).
    ``request_slack`` = ``(factor, ms)``: a cloud request's deadline is
    ``factor`` times its predicted time plus ``ms`` (``Step.deadline_ms``).
    ``track_cloud_load``: estimate the cloud's slowdown and queue wait from
    the compute and queue times the server reports, and plan with them (a
    queued request's wait counts like a longer round trip). ``on_infeasible``: ``"best"`` runs the
    unconstrained optimum when no schedule meets the constraints (the trace
    says so), ``"raise"`` raises :class:`~jointdnn_edge.InfeasibleError`.
    ``probe_interval_s``: with ``network="auto"``, an inference planned
    entirely on this device starts a :meth:`probe` in the background when
    the link was last measured longer ago than this (None: never), or than
    ten times the last probe's duration if longer (:data:`PROBE_DUTY`: on a
    slow link a probe takes seconds; after a probe on a network whose round
    trip just fell, the next local inference probes again at once), so that a
    session kept local by a slow link notices when the link gets faster; on
    any link, so does one kept local by the cloud's queue, so that it notices
    when the queue drains. Load estimates older than this are stale: the
    next sample replaces them. A failed cloud step counts as no measurement
    (what a missed deadline leaves in the estimate is a bound), and a forced
    or fixed schedule never probes. After an inference that used the cloud,
    an upload or round-trip estimate whose newest sample is older than this
    is re-measured in the background (the upload by a probe, as rarely as
    above; the round trip by two pings): a request measures the bandwidth it
    carries enough bytes for, never the round trip.
    ``ping_interval_s``: between probes, an adaptive inference with
    ``network="auto"`` pings the cloud twice in the background when the
    round trip was last measured longer ago than this (or than
    ``probe_interval_s``, if shorter; None: only then). When both pings lie
    more than :data:`RTT_MOVED_FACTOR` times (and :data:`RTT_MOVED_MS`) above
    or below the round-trip estimate, the network has changed (Wi-Fi to
    cellular, a handover): the old round-trip samples are dropped. When the
    round trip fell that far, from the estimate or from where the last probe
    left it (a slow ramp), the link is probed at once, instead of when
    ``probe_interval_s`` runs out (a slower network shows in the next
    upload, and a session kept local stays local on it). A session kept on
    the device by a slow link thus notices a faster one within about this
    interval for two small requests' worth of radio time; a change of
    bandwidth alone still waits for the next probe.
    ``probe_interval_s=None`` turns off every background request.
    ``max_accuracy_loss`` with ``accuracy`` (an accuracy table of this
    model, ``jointdnn-edge accuracy --json``) and ``lossy_specs`` (the rows'
    options fitted, ``{cut tensor: [LossySpec, ...]}``, e.g. by
    :func:`jointdnn_edge.lossy.fit_table`; the server must hold the same
    specs) plans every inference under that accuracy budget, exactly, with
    a lookup table built under the budget: the schedule may send a cut
    tensor with a lossy option, the session encodes it so and ``Step.lossy``
    says which. Rows with no fitted spec are not offered.
    ``lut_build``: ``"background"`` (default) builds the lookup table on a
    background thread when first needed and after the round trip drifts,
    planning each inference exactly with :func:`~jointdnn_edge.plan` until it
    is ready (the trace's ``source`` says ``"plan (table building)"``);
    ``"blocking"`` makes the inference that needs it wait for the build;
    ``"never"`` plans every inference exactly. A failed build is logged,
    kept in ``lut_error``, and the session goes on planning exactly.
    ``close_cloud``: whether :meth:`close` closes the client (default: only
    a client the session made itself from a URL; a client passed in may be
    shared by other sessions and is the caller's to close).

    A session may be used from several threads; each :meth:`run` is
    independent and ``last_trace`` is the latest one to finish.
    """

    #: ``(cost table, its mobile power in mW)``, read once per table by :meth:`_power_mw`.
    _power: tuple[Any, float | None] | None = None
    #: The last lookup-table answer, ``(table, (up, down, slowdown), schedule)``, kept by :meth:`_query`.
    _answer: tuple[Any, tuple[float, float, float], Schedule] | None = None
    #: The last lookup-table plan on a fixed link, ``((table, radio), network, slowdown, what _plan returned)``: what
    #: :meth:`_plan` returns again while the table, the link object and the slowdown stay the same.
    _lut_plan: tuple[tuple[LookupTable, Radio], Network, float, tuple[Schedule, str, Network, float]] | None = None
    #: ``(schedule, its facts)`` of the last inference, kept by :meth:`_facts`.
    _facts_of: tuple[Schedule, _Facts] | None = None

    def __init__(
        self,
        model: ModelGraph | str | bytes,
        cloud: CloudClient | str | None = None,
        costs: CostTable | None = None,
        network: Network | str = "auto",
        objective: str = "latency",
        *,
        deadline_ms: float | None = None,
        energy_budget_mj: float | None = None,
        cloud_budget_ms: float | None = None,
        schedule: Schedule | Sequence[Sequence[Any]] | None = None,
        force: str | None = None,
        radio: Network | str = "wifi",
        codec: str = "auto",
        codec_level: int = 1,
        quantize_bits: int | None = None,
        executor: Any = None,
        threads: int | None = 1,
        model_name: str | None = None,
        request_slack: tuple[float, float] = (4.0, 250.0),
        track_cloud_load: bool = True,
        on_infeasible: str = "best",
        lut_cells: tuple[int, int, int] = (16, 16, 4),
        lut_build: str = "background",
        profile_max_group: int | None = 8,
        probe_interval_s: float | None = 5.0,
        ping_interval_s: float | None = 1.0,
        close_cloud: bool | None = None,
        max_accuracy_loss: float | None = None,
        accuracy: Any = None,
        lossy_specs: Mapping[str, Sequence[LossySpec]] | None = None,
    ) -> None:
        from .codec import CODECS
        from .models import ModelGraph, load_model
        from .models.executor import executor_for
        from .protocol import model_digest

        self.graph: ModelGraph = model if isinstance(model, ModelGraph) else load_model(model)
        g = self.graph
        # a client passed in may be shared with other sessions: it is the caller's to close
        self._close_cloud = isinstance(cloud, str) if close_cloud is None else bool(close_cloud)
        if isinstance(cloud, str):
            cloud = CloudClient(cloud)
        self.cloud: CloudClient | None = cloud
        self.model_name = model_name or g.name
        self.executor = executor if executor is not None else executor_for(g, threads=threads)
        self.objective = check_objective(objective)
        self.constraints: dict[str, Any] = {
            k: check_bound(k, v)
            for k, v in (
                ("deadline_ms", deadline_ms),
                ("energy_budget_mj", energy_budget_mj),
                ("cloud_budget_ms", cloud_budget_ms),
            )
            if v is not None
        }
        check_force(force)
        if force is not None and schedule is not None:
            raise ConfigError("give schedule or force, not both")
        self.force = force
        if isinstance(network, str) and network != "auto":
            network = Network.preset(network)
        if not (network == "auto" or isinstance(network, Network)):
            raise ConfigError(f"network must be 'auto', a preset name or a Network, got {network!r}")
        self.network = network
        self.radio = Network.preset(radio) if isinstance(radio, str) else radio
        if codec not in CODECS:
            raise ConfigError(f"unknown codec {codec!r}; choose one of {CODECS}")
        self.codec = codec
        self.codec_level = int(codec_level)
        self.quantize_bits = quantize_bits
        self.request_slack = (float(request_slack[0]), float(request_slack[1]))
        self.track_cloud_load = track_cloud_load
        if on_infeasible not in ("best", "raise"):
            raise ConfigError(f"on_infeasible must be 'best' or 'raise', got {on_infeasible!r}")
        self.on_infeasible = on_infeasible
        if probe_interval_s is not None and not (
            isinstance(probe_interval_s, (int, float)) and math.isfinite(probe_interval_s) and probe_interval_s >= 0
        ):
            raise ConfigError(f"probe_interval_s must be a finite number >= 0 or None, got {probe_interval_s!r}")
        self.probe_interval_s = probe_interval_s
        if ping_interval_s is not None and not (
            isinstance(ping_interval_s, (int, float)) and math.isfinite(ping_interval_s) and ping_interval_s >= 0
        ):
            raise ConfigError(f"ping_interval_s must be a finite number >= 0 or None, got {ping_interval_s!r}")
        self.ping_interval_s = ping_interval_s
        self._pinged_at = -math.inf  # when the last background ping watch started (monotonic s)
        self._measured_at = -math.inf  # when a cloud step or a probe last measured the link (monotonic s)
        self._probing: threading.Thread | None = None  # the background probe, once started
        self._refreshed_at = -math.inf  # when the last refresh after a cloud inference started (monotonic s)
        self._probe_s = 0.0  # how long the last probe that succeeded took (s): see PROBE_DUTY
        self._probed_rtt_ms: float | None = None  # the round trip that probe's pings measured: see _watch_quietly
        self._closed = False  # set by close(): no background probe starts after it
        self._link_failure: str | None = None  # why the latest first-round-trip check failed: see _check_link
        self.lut_cells = lut_cells
        self.profile_max_group = profile_max_group
        self.digest = model_digest(g)
        self._costs = costs
        if costs is not None and costs.n != g.n:
            raise ConfigError(f"the cost table has {costs.n} layers, model {g.name!r} has {g.n}")
        self._fixed: Schedule | None = None
        if schedule is not None:
            self._fixed = self._as_schedule(schedule)
            if costs is not None:
                _check_offered(self._fixed, costs)
        if lut_build not in LUT_BUILDS:
            raise ConfigError(f"lut_build must be one of {LUT_BUILDS}, got {lut_build!r}")
        self.lut_build = lut_build
        # the ready lookup table and the radio (round trip, bursts) it was built for, swapped as one
        self._table: tuple[LookupTable, Radio] | None = None
        self._building: _TableBuild | None = None  # the background build in flight
        self._build_wanted: Network | None = None  # the link a plan found no table for: built once it is done
        self._failed_radio: Radio | None = None  # the radio a build last failed for: not retried there
        #: Why the latest lookup-table build failed (None: none did); the session plans exactly meanwhile.
        self.lut_error: str | None = None
        self.max_accuracy_loss = check_bound("max_accuracy_loss", max_accuracy_loss)
        self._options, self._lossy_specs = self._transfer_options(accuracy, lossy_specs)
        self._lock = threading.RLock()
        self._slowdown = 1.0
        self._queue_ms = 0.0  # the cloud's queue-wait estimate (ms): waiting for a compute slot
        self._load_seen_at = time.monotonic()  # when the server last reported its load (monotonic s)
        self._slowdown_at = self._load_seen_at  # when the last slowdown sample came (a probe's compute is none)
        self.last_trace: Trace | None = None

    # ------------------------------------------------------------ set-up
    def _transfer_options(
        self, accuracy: Any, lossy_specs: Mapping[str, Sequence[LossySpec]] | None
    ) -> tuple[tuple[TransferOption, ...] | None, dict[tuple[int, str], tuple[str, LossySpec]]]:
        """The accuracy table's options that have a fitted spec, and each one's tensor name and spec."""
        if self.max_accuracy_loss is None and accuracy is None and lossy_specs is None:
            return None, {}
        if self.max_accuracy_loss is None or accuracy is None or lossy_specs is None:
            raise ConfigError("an accuracy budget needs max_accuracy_loss, accuracy and lossy_specs")
        from .lossy import cut_tensors, spec_for
        from .planner import transfer_options

        offered = transfer_options(accuracy, tensor_of=cut_tensors(self.graph, accuracy))
        rows = list(accuracy["rows"] if isinstance(accuracy, Mapping) else accuracy)  # checked by both above
        options: list[TransferOption] = []
        specs: dict[tuple[int, str], tuple[str, LossySpec]] = {}
        for row, option in zip(rows, offered):
            spec = spec_for(row["option"], lossy_specs.get(row["cut"], ()))
            if spec is not None:
                options.append(option)
                specs[(option.tensor, option.option)] = (row["cut"], spec)
        if not options:
            raise ConfigError("no row of the accuracy table has a fitted spec in lossy_specs")
        return tuple(options), specs

    @property
    def costs(self) -> CostTable:
        """The cost table (profiled on first use when none was given)."""
        if self._costs is None:
            with self._lock:
                if self._costs is None:
                    self._costs = self._profile()
        return self._costs

    def _profile(self) -> CostTable:
        from .codec import compress_costs, layer_samples, profile_codec
        from .models.graph import uniform_feeds
        from .profiler import profile

        g = self.graph
        logger.info("profiling %s (%d layers) for the session's cost table", g.name, g.n)
        table = profile(g, self.executor, max_group=self.profile_max_group, repeats=3, progress=False)
        if self.codec != "raw" or self.quantize_bits is not None:
            samples = layer_samples(g, [uniform_feeds(g, 0)], executor=self.executor)
            prof = profile_codec(samples, codec=self.codec, level=self.codec_level, quantize_bits=self.quantize_bits)
            table = compress_costs(table, prof)
        return table

    @property
    def lookup_table(self) -> LookupTable:
        """The session's lookup table: the built one (waiting for a build in flight), else built now.

        Built over the default bandwidth and slowdown box; a build that fails here raises.
        """
        building = self._building
        if building is not None:
            building.thread.join()
        with self._lock:
            if self._table is None:
                self._ping_if_unmeasured()  # a failure is the circuit breaker's; the table is built on the radio
                radio = self._network_now()
                self._table = (self._build_lut(radio), radio.radio)
            return self._table[0]

    def _build_lut(self, radio: Network, cancelled: threading.Event | None = None) -> LookupTable:
        """The session's lookup table on ``radio``; raises :class:`_BuildCancelled` soon after ``cancelled`` is set.

        The build checks ``cancelled`` before it starts and after each block of cells. A build that can be
        cancelled is a background one and takes one thread.
        """

        def check(done: int = 0, total: int = 0) -> None:
            if cancelled is not None and cancelled.is_set():
                raise _BuildCancelled

        check()
        return LookupTable.build(
            self.costs,
            objective=self.objective,
            network=radio,
            up_mbps=DEFAULT_LUT_UP,
            down_mbps=DEFAULT_LUT_DOWN,
            cloud_slowdown=DEFAULT_LUT_SLOWDOWN if self.track_cloud_load else (1.0, 1.0),
            cells=self.lut_cells if self.track_cloud_load else (self.lut_cells[0], self.lut_cells[1], 1),
            cloud_keeps_tensors=False,  # the server is stateless: see docs/session.md
            max_accuracy_loss=self.max_accuracy_loss,  # None, or set with the options (see _transfer_options)
            accuracy=self._options,
            progress=check if cancelled is not None else False,
            # a background build runs beside inferences: one core, the others theirs (on the network lab's two
            # cores a build on both slowed the requests it overlapped up to 2x)
            threads=1 if cancelled is not None else None,
            **self.constraints,
        )

    def _table_for(self, network: Network, *, start: bool = True) -> LookupTable | None:
        """The table to plan on ``network`` with, or None to plan exactly (starting a background build if needed and
        ``start``; else the caller starts it with :meth:`_start_build`).

        A table whose round trip or burst has drifted from ``network``'s is not used: its radio is stale.
        """
        table = self._table
        if table is not None and not (isinstance(self.network, str) and _stale(table[1], network)):
            return table[0] if self.lut_build != "never" else None  # a table asked for by hand is not used
        if self.lut_build == "never":
            return None
        if self.lut_build == "blocking":
            with self._lock:  # the table's radio (round trip included) is fixed when built
                built = self._table
                if built is table or built is None:  # not rebuilt by another thread meanwhile
                    self._table = built = (self._build_lut(network), network.radio)
                return built[0]
        if start:
            self._start_build(network)
        return None

    def _start_build(self, network: Network) -> None:
        """Start a background build of the table for ``network`` unless one runs, the session is closed, or a build
        for this radio failed."""
        if self._building is None:
            with self._lock:
                if self._building is None and self._may_build(network):
                    self._building = _TableBuild(self, network)

    def _may_build(self, network: Network) -> bool:
        """Whether a table for ``network`` may be built: the session open, and no build failed for its radio."""
        failed = self._failed_radio is not None and not _stale(self._failed_radio, network)
        return not self._closed and not failed

    def _finish_build(self, build: _TableBuild, table: LookupTable | None, error: BaseException | None) -> None:
        """Install a background build's table (unless it was cancelled), or record why it failed."""
        with self._lock:
            if self._building is build:
                self._building = None
            if isinstance(error, _BuildCancelled):
                logger.info("lookup table build cancelled: the session closed")
            elif build.cancelled.is_set():
                logger.info("lookup table built after its session closed: dropped")
            elif error is not None:
                self.lut_error = f"{type(error).__name__}: {error}"
                self._failed_radio = build.radio
                logger.warning("building the lookup table failed (%s); planning each inference exactly", self.lut_error)
            elif table is not None:
                self._table = (table, build.radio)
                self.lut_error = self._failed_radio = None

    def _wait_for_table(self) -> None:
        """Have the table the next plan would use ready: start its build if needed and wait for it (never raises)."""
        if self.cloud is None or self._fixed is not None or self.force is not None or not self.cloud.available:
            return
        self._ping_if_unmeasured()
        self._table_for(self._network_now())
        building = self._building
        if building is not None:
            building.thread.join()

    def _as_schedule(self, schedule: Schedule | Sequence[Sequence[Any]]) -> Schedule:
        segs = schedule.segments if isinstance(schedule, Schedule) else tuple(tuple(s) for s in schedule)
        n, pos = self.graph.n, 0
        for seg in segs:
            if len(seg) != 3 or seg[0] != pos or not (seg[0] <= seg[1] < n) or seg[2] not in ("mobile", "cloud"):
                raise ConfigError(
                    f"schedule segments must cover layers 0..{n - 1} in order as (first, last, platform); got {seg!r}"
                )
            pos = int(seg[1]) + 1
        if pos != n:
            raise ConfigError(f"schedule covers layers 0..{pos - 1}, the model has {n}")
        return Schedule(segs, latency_ms=math.nan, mobile_energy_mj=math.nan, cloud_ms=math.nan, bytes_up=math.nan,
                        bytes_down=math.nan, transfers=0, switches=0, solver="fixed")  # fmt: skip

    # ------------------------------------------------------------ planning
    def _network_now(self) -> Network:
        """The network to plan on: the fixed one, or the estimate (with ``radio``'s power model)."""
        if isinstance(self.network, Network):
            return self.network
        if self.cloud is None:
            return self.radio
        return self.cloud.estimator.network(self.radio)

    def _ping_if_unmeasured(self) -> str | None:
        """With ``network="auto"`` and no round trip measured yet, measure one; why the cloud is not to be used for
        now (``"link check failed (...)"`` or ``"link check pending (...)"``), or None.

        The ping runs on the session's background thread with the client's
        timeout, and planning waits for it as long as a cloud step would wait
        (``request_slack`` on a fresh connection's three round trips on
        ``radio``): a cloud that accepts and never answers must not hold
        planning for the client's timeout. A link that answers later (a long
        round trip: a fresh connection costs three) is measured all the same
        and used from the next inference on; until then each inference runs
        on the device without waiting again. Only a cloud failure counts as
        failed (see :func:`~jointdnn_edge.client.is_cloud_failure`), and the
        client's circuit breaker counts it: a check that ran out of this wait
        is no failure.
        """
        cloud = self.cloud
        if isinstance(self.network, Network) or cloud is None:
            return None
        if cloud.estimator.rtt_ms is not None or not cloud.available:
            return None
        started = False
        with self._lock:
            check = self._probing
            if check is None or not check.is_alive():
                if not self._background_free():
                    return None  # closed
                self._link_failure = None
                self._start_background(self._check_link)
                check, started = self._probing, True
        assert check is not None
        factor, slack_ms = self.request_slack
        wait_ms = factor * 3 * self.radio.rtt_ms + slack_ms
        if started:
            check.join(wait_ms / 1e3)
        if check.is_alive():
            return f"link check pending (no round trip within {wait_ms:.0f} ms; measuring in the background)"
        failure = self._link_failure
        return None if failure is None else f"link check failed ({failure})"

    def _check_link(self) -> None:
        """The first round trip (:meth:`_ping_if_unmeasured`), on the background thread: one ping with the client's
        timeout; a cloud failure's reason is kept in ``_link_failure`` (the circuit breaker counted it)."""
        assert self.cloud is not None
        try:
            self.cloud.ping()
        except TransportError as e:  # a 4xx says the cloud is up (the inference's own request will tell more)
            if is_cloud_failure(e):
                self._link_failure = f"{type(e).__name__}: {e}"
        except Exception as e:  # e.g. the client closed under it by its owner: a background ping never raises
            self._link_failure = f"{type(e).__name__}: {e}"

    def _evaluate(self, schedule: Schedule, network: Network, slowdown: float) -> Schedule:
        """``schedule`` with its costs on ``network`` (as is when there is no cost table to evaluate on)."""
        if self._costs is None:
            return schedule
        return schedule.evaluate(self._costs, network, cloud_slowdown=slowdown, cloud_keeps_tensors=False)

    def _mobile_only(self, network: Network) -> Schedule:
        if self._costs is None:  # no profiling just to run locally
            return self._as_schedule([(0, self.graph.n - 1, "mobile")])
        return plan(self.costs, network, objective=self.objective, force="mobile", cloud_keeps_tensors=False)

    def plan(self) -> tuple[Schedule, str, Network, float]:
        """The schedule the next inference would use: ``(schedule, source, network, cloud_slowdown)``."""
        try:
            return self._plan(self._ping_if_unmeasured())
        finally:
            self._start_wanted_build()

    def _start_wanted_build(self) -> None:
        """Start the background table build the last plan found missing (see :meth:`_plan`), if any."""
        wanted = self._build_wanted
        if wanted is not None:
            self._build_wanted = None
            self._start_build(wanted)

    def _plan(self, link_unready: str | None) -> tuple[Schedule, str, Network, float]:
        """:meth:`plan`, once the first round trip is measured, or its check failed or is pending (``link_unready``)."""

        link = network = self._network_now()
        slowdown = self._slowdown if self.track_cloud_load else 1.0
        if slowdown != 1.0 and self._adapts and self.probe_interval_s is not None:
            if time.monotonic() - self._slowdown_at > self.probe_interval_s:
                # Stale: nothing has measured the cloud's compute for a probe interval (the session ran here). The
                # cloud is assumed back to the table's speed; the next cloud step measures it again.
                self._slowdown = slowdown = 1.0
        if self.cloud is None:
            return self._mobile_only(network), "mobile-only: no cloud", network, slowdown
        if link_unready is not None:
            return self._mobile_only(network), f"mobile-only: {link_unready}", network, slowdown
        if not self.cloud.circuit.available:  # the client's ``available``, one property call fewer
            state = self.cloud.circuit.state
            why = f"mobile-only: cloud down ({state}, {self.cloud.down_for:.2f} s left; {self.cloud.last_error})"
            return self._mobile_only(network), why, network, slowdown
        network = link if self._queue_ms <= _QUEUE_WAIT_IGNORED_MS else self._with_queue(link)
        if self._fixed is not None:
            return self._evaluate(self._fixed, network, slowdown), "fixed", network, slowdown
        try:
            if self.force is not None:
                return self._plan_exactly(network, slowdown), "plan", network, slowdown
            kept = self._lut_plan
            if kept is not None and kept[0] is self._table and kept[1] is network and kept[2] == slowdown:
                if self.lut_build != "never":  # the same table, fixed link and slowdown: the same answer
                    return kept[3]
            table = self._table
            lut = self._table_for(link, start=False)
            if lut is not None and network is link:  # the table holds the link's round trip, not a queue wait
                planned = self._query(lut, network, slowdown), "lut", network, slowdown
                if network is self.network and table is not None and table[0] is lut:  # a fixed link: kept
                    self._lut_plan = (table, network, slowdown, planned)
                return planned
            if lut is None and self.lut_build == "background" and self._building is None and self._may_build(link):
                # Started once the decision (and, in run(), the inference) is done: a build's first half millisecond
                # is Python set-up that holds the GIL, and a plan made beside it took 30x as long (0.6 ms against
                # 21 us here, 14.7 ms once on the network lab's two busy cores; benches/plan_beside_build.py).
                self._build_wanted = link
            source = self._exact_source() if network is link else f"plan (cloud queue {self._queue_ms:.0f} ms)"
            return self._plan_exactly(network, slowdown), source, network, slowdown
        except InfeasibleError as e:
            if self.on_infeasible == "raise" or not self.constraints:
                raise
            best = plan(
                self.costs, network, objective=self.objective, cloud_slowdown=slowdown, cloud_keeps_tensors=False
            )
            return best, f"plan (infeasible: {e.constraint or e}; unconstrained optimum)", network, slowdown

    def _with_queue(self, link: Network) -> Network:
        """``link`` with the cloud's queue-wait estimate in its round trip: a request waits once and makes two
        switches, so half the wait per switch. ``link`` itself while the wait is within what a lookup table's
        round trip tolerates (see :func:`_drifted`), or while the load is not tracked."""
        half = self._queue_ms / 2.0
        if not self.track_cloud_load or not _drifted(link.rtt_ms, link.rtt_ms + half):
            return link
        return replace(link, rtt_ms=link.rtt_ms + half)

    def _query(self, lut: LookupTable, network: Network, slowdown: float) -> Schedule:
        """``lut``'s answer on ``network`` and ``slowdown``: the last answer again (the same schedule object) when the
        table, bandwidths and slowdown are those of the last query, which is exact (a query reads nothing else)."""
        point = (network.up_mbps, network.down_mbps, slowdown)
        last = self._answer
        if last is not None and last[0] is lut and last[1] == point:
            return last[2]
        schedule = lut.query(*point)
        self._answer = (lut, point, schedule)
        return schedule

    def _facts(self, schedule: Schedule) -> _Facts:
        """What :meth:`run` reads of ``schedule``: its runs, predicted latency and energy (None when it was not
        priced) and whether it runs everything here; computed once per schedule object (a repeated lookup-table
        answer is the same object)."""
        kept = self._facts_of
        if kept is not None and kept[0] is schedule:
            return kept[1]
        runs = schedule.runs()
        priced = math.isfinite(schedule.latency_ms)
        facts = (
            runs,
            schedule.latency_ms if priced else None,
            schedule.mobile_energy_mj if priced else None,
            len(runs) == 1 and runs[0][2] == "mobile",
        )
        self._facts_of = (schedule, facts)
        return facts

    def _plan_exactly(self, network: Network, slowdown: float) -> Schedule:
        """What the lookup table answers, solved now (transfers under the accuracy budget, if any).

        A forced plan (the status-quo baselines) is always solved so, without the constraints.
        """
        kwargs: dict[str, Any] = {"objective": self.objective, "cloud_slowdown": slowdown, "cloud_keeps_tensors": False}
        if self._options is not None:
            kwargs.update(max_accuracy_loss=self.max_accuracy_loss, accuracy=self._options)
        if self.force is not None:
            return plan(self.costs, network, force=self.force, **kwargs)
        return plan(self.costs, network, **kwargs, **self.constraints)

    def _exact_source(self) -> str:
        """The trace's ``source`` of a schedule planned exactly because no lookup table is ready."""
        if self._building is not None or self._build_wanted is not None:
            return "plan (table building)"
        if self.lut_error is not None:
            return f"plan (table build failed: {self.lut_error})"
        return "plan"

    def _prepare(self) -> bool:
        """Do the one-time work planning will need, so that it is not timed as inference: profile the model, and
        with ``lut_build="blocking"`` build the lookup table (otherwise it is built in the background, if at all).

        True when there was such work to do.
        """
        if self._table is not None:  # built: the per-inference case (a forced plan never builds one)
            return False
        if self.cloud is None or self._fixed is not None or not self.cloud.available:
            return False
        profiled = self._costs is None
        if profiled:
            _ = self.costs
        if self.force is None and self.lut_build == "blocking":
            _ = self.lookup_table
            return True
        return profiled

    # ------------------------------------------------------------ running
    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One inference: the model outputs by name (see the class docstring for what happens)."""

        t_start = _perf_counter()
        setup_ms = 0.0
        if self._table is None and self._prepare():  # one-time work (with a table built there is none): not timed
            t_prepared = _perf_counter()
            setup_ms, t_start = (t_prepared - t_start) * 1e3, t_prepared
        g = self.graph
        tensors: dict[str, Any] = {}
        for name, shape, dtype in self._input_specs:
            try:
                x = inputs[name]
            except KeyError:
                raise ExecutionError(f"input {name!r} of model {g.name!r} is missing") from None
            # an array of the model's shape and dtype is what as_model_tensor would return as is (a builtin dtype is
            # one object: identity first, numpy's comparison only when that fails)
            ok = x.__class__ is _NDARRAY and x.shape == shape and (x.dtype is dtype or x.dtype == dtype)
            tensors[name] = x if ok else as_model_tensor(g, name, x)
        estimated = not isinstance(self.network, Network)  # a fixed link needs no ping
        link_unready = self._ping_if_unmeasured() if estimated else None
        schedule, source, network, slowdown = self._plan(link_unready)
        t_planned = _perf_counter()
        runs, predicted_ms, predicted_mj, local = self._facts(schedule)
        fallback = backoff_s = None
        power = self._power_mw()
        if link_unready is not None and self.cloud is not None:  # the cloud was given up before any step
            fallback, backoff_s = link_unready, self.cloud.circuit.backoff_s
        # Every field by position, in the order Trace declares them: a keyword call costs microseconds on the caches
        # the runtime leaves cold (a dict of keywords matched by name against 13 parameters).
        trace = Trace(
            schedule,
            source,
            network,
            slowdown,
            [],  # steps
            predicted_ms,
            0.0,  # measured_ms, at the end
            predicted_mj,
            power,  # power_mw: energy_mj is worked out from it and the steps when read
            fallback,
            backoff_s,
            (t_planned - t_start) * 1e3,  # planning_ms
            setup_ms,
        )
        steps = trace.steps
        for first, last, platform in runs:
            if platform == "mobile":
                steps.append(self._run_mobile(first, last, tensors))
                continue
            assert self.cloud is not None
            step = Step(first, last, "cloud")
            t_step = _perf_counter()
            try:
                self._run_cloud(step, tensors, network, slowdown, schedule.lossy)
            except (TransportError, CodecError) as e:
                reason = f"{type(e).__name__}: {e}"
                step.ms = (_perf_counter() - t_step) * 1e3  # what the failed attempt cost
                trace.backoff_s = self.cloud.circuit.backoff_s  # the client counted the failure (or not: a 4xx)
                self._measured_at = -math.inf  # a missed deadline left a bound, not a measurement: probe when local
                trace.fallback = reason
                step.error = reason
                trace.steps.append(step)
                logger.warning("cloud failed at layers %d..%d (%s); finishing locally", first, last, reason)
                trace.steps.append(self._run_mobile(first, g.n - 1, tensors, fallback=True))
                break
            trace.steps.append(step)
            self._measured_at = time.monotonic()
        outputs: dict[str, np.ndarray] = {}
        for name in self._output_names:  # a loop: cheaper than a comprehension's function on cold caches
            outputs[name] = tensors[name]
        trace.measured_ms = (_perf_counter() - t_start) * 1e3
        self.last_trace = trace
        self._start_wanted_build()  # after the inference, not beside its decision (see _plan)
        # Nothing measured the link (nor the cloud's queue) on this run: probe it, once the inference is done, so
        # that the probe shares neither this inference's CPU nor its time (a caller with the link to share waits for
        # it: wait_for_probe).
        if local:
            if (estimated or self._queue_ms > _QUEUE_WAIT_IGNORED_MS) and self._adapts:
                self._probe_if_stale(estimated)
        elif estimated and self._adapts:
            self._refresh_if_stale()
        return outputs

    __call__ = run

    def _run_mobile(self, first: int, last: int, tensors: dict[str, Any], fallback: bool = False) -> Step:
        # the step is made before the runtime runs, not after it, when the interpreter's caches are cold
        step = Step(first, last, "mobile")
        if fallback:
            step.fallback = True
        t0 = _perf_counter()
        result = self.executor.run(self.graph, first, last, tensors)
        step.ms = step.compute_ms = (_perf_counter() - t0) * 1e3
        tensors.update(result)
        return step

    def _run_cloud(
        self,
        step: Step,
        tensors: dict[str, Any],
        network: Network,
        slowdown: float,
        lossy: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Run ``step``'s layers on the cloud and fill in the step (what was sent too, in case the request fails).

        ``lossy``: the schedule's lossy options, ``(tensor, option)``; those of the step's inputs are applied.
        """

        g = self.graph
        assert self.cloud is not None
        first, last = step.first, step.last
        raw_out = sum(g.tensor(n).nbytes for n in g.slice_io(first, last)[1])
        predicted_cloud = self._predicted_cloud_ms(first, last)
        call = SliceCall(g, first, last)
        specs = dict(self._lossy_specs[x] for x in lossy)
        try:
            result, resp = call.run(
                self.cloud,
                tensors,
                model=self.model_name,
                codec=self.codec,
                level=self.codec_level,
                quantize_bits=self.quantize_bits,
                digest=self.digest,
                deadline_s=lambda frame_bytes: self._deadline_s(
                    frame_bytes, raw_out, predicted_cloud, network, slowdown
                ),
                lossy=specs,
            )
        finally:
            step.encode_ms, step.codec_up = call.encode_ms, call.codec_up
            step.lossy = {
                name: option for t, option in lossy if (name := self._lossy_specs[(t, option)][0]) in call.lossy
            }
            step.deadline_ms = None if call.deadline_s is None else call.deadline_s * 1e3
        tensors.update(result)
        self._track_cloud_load(resp.queue_ms, resp.compute_ms, predicted_cloud)
        step.ms = call.ms
        step.compute_ms = resp.compute_ms
        step.bytes_up, step.bytes_down = resp.bytes_up, resp.bytes_down
        step.decode_ms = call.decode_ms
        step.server_ms, step.queue_ms = resp.server_ms, resp.queue_ms
        step.network_ms = resp.wall_ms - resp.server_ms
        step.codec_down = call.codec_down

    def _track_cloud_load(self, queue_ms: float, compute_ms: float, predicted_cloud: float | None) -> None:
        """Fold a response's reported queue wait and compute time (over ``predicted_cloud``, the cost table's time
        for it; None: no slowdown sample) into the load estimates, the newest weighing 0.3; after a gap longer than
        ``probe_interval_s`` the estimates are stale and the sample replaces them."""
        if not self.track_cloud_load:
            return
        now = time.monotonic()
        kept = self._kept_weight(self._load_seen_at, now)
        self._load_seen_at = now
        if math.isfinite(queue_ms) and queue_ms >= 0:
            self._queue_ms = kept * self._queue_ms + (1.0 - kept) * queue_ms
        if predicted_cloud and compute_ms > 0:
            sample = compute_ms / predicted_cloud
            kept = self._kept_weight(self._slowdown_at, now)
            self._slowdown = min(100.0, max(0.05, kept * self._slowdown + (1.0 - kept) * sample))
            self._slowdown_at = now

    def _kept_weight(self, fed_at: float, now: float) -> float:
        """The weight an estimate last fed at ``fed_at`` keeps against a new sample: 0.7, or 0 once it is older than
        ``probe_interval_s`` (stale: the sample replaces it)."""
        interval = self.probe_interval_s
        return 0.0 if interval is not None and now - fed_at > interval else 0.7

    def _deadline_s(
        self, frame_bytes: int, raw_out: int, predicted_cloud: float | None, network: Network, slowdown: float
    ) -> float | None:
        """A cloud request's deadline: ``factor`` x its predicted time + ``slack`` ms (None without a cost table).

        The prediction: uploading the frame actually built, the cloud compute
        of the range (times the current slowdown), downloading the range's
        outputs uncompressed, and one round trip (two switches of ``rtt_ms``).
        """
        if predicted_cloud is None:
            return None
        step_ms = (
            network.upload_ms(frame_bytes)
            + predicted_cloud * slowdown
            + network.download_ms(raw_out)
            + 2 * network.rtt_ms
        )
        return (self.request_slack[0] * step_ms + self.request_slack[1]) / 1e3

    def _predicted_cloud_ms(self, first: int, last: int) -> float | None:
        """Cloud compute of layers ``first..last`` per the cost table (single layers summed if not offered)."""
        if self._costs is None:
            return None
        t = float(self._costs.cloud_ms[first, last])
        if not math.isfinite(t):
            t = float(sum(self._costs.cloud_ms[i, i] for i in range(first, last + 1)))
        return t

    def _power_mw(self) -> float | None:
        """The mobile's compute power in the cost table (mW), read once per table (no numpy per inference)."""
        c = self._costs
        if c is None:
            return None
        kept = self._power
        if kept is None or kept[0] is not c:
            ms, mj = float(c.mobile_ms[0, 0]), float(c.mobile_mj[0, 0])
            self._power = kept = (c, mj / ms * 1e3 if ms > 0 else None)
        return kept[1]

    @functools.cached_property
    def _adapts(self) -> bool:
        """Whether the schedule follows the link (not forced, not fixed): only then is a probe worth its bytes."""
        return self.force is None and self._fixed is None

    @functools.cached_property
    def _output_names(self) -> tuple[str, ...]:
        """The model outputs' names, in order."""
        return tuple(t.name for t in self.graph.outputs)

    @functools.cached_property
    def _input_specs(self) -> tuple[tuple[str, tuple[int, ...], np.dtype], ...]:
        """``(name, shape, dtype)`` of each model input, for the inputs' fast check in :meth:`run`."""
        return tuple((t.name, tuple(t.shape), np.dtype(t.dtype)) for t in self.graph.inputs)

    # ------------------------------------------------------------ helpers
    def probe(self, repeats: int = 1) -> None:
        """Measure the link with two round trips and ``repeats`` real split requests, results discarded: one layer on
        the cloud, the one of :func:`~jointdnn_edge.models.graph.probe_layer` (at least 128 kB up and 64 kB down
        where the model has such a layer, the fewest bytes that do: the full AlexNet's probe moves 173 kB each way,
        not its 618 kB input and 1.16 MB back), each followed by a smaller upload where the model has a layer for
        it (:func:`~jointdnn_edge.models.graph.small_probe_layer`), so that the estimate sees the link's burst.

        Useful before the first inference with ``network="auto"``, and when
        the schedule stays on the mobile (no transfers, so nothing to measure).
        Each request's queue wait updates the cloud's queue estimate (its
        compute, one small layer sent alone, says little of the slowdown).
        """
        self._measure_link(repeats, new_network=False)

    def _measure_link(self, repeats: int, *, new_network: bool) -> None:
        """:meth:`probe`; ``new_network``: a ping watch already saw the round trip step down from the estimate. A probe
        on a new network (so seen, or found by its own pings) sets no duty floor, and the next local inference probes
        again."""
        from .codec import encode
        from .models.graph import probe_feeds, probe_layer, small_probe_layer

        if self.cloud is None:
            return
        started = time.monotonic()
        layer = probe_layer(self.graph)
        frame = encode(probe_feeds(self.graph, layer), codec="raw")
        # A second, smaller upload: two sizes show the link's burst (BandwidthEstimator), which a session kept local
        # never learnt from one-size probes, and which is what a split's small upload is priced by. It gives only its
        # upload sample: its answer, small enough to fit in a shaper's burst, would read an absurd rate, and its time
        # is no round trip.
        small = small_probe_layer(self.graph, layer)
        small_frame = None if small is None else encode(probe_feeds(self.graph, small), codec="raw")
        before_ms = self.cloud.estimator.rtt_ms
        # opens the connection (a handshake is no bandwidth sample); the round trip, which the upload samples
        # subtract, moves to a new level at the estimator's second sample
        pings = [1e3 * self.cloud.ping() for _ in range(2)]
        # the watch's second reference, set before the requests (a failed request leaves no stale one behind); the
        # lower ping, since a late one (a radio waking up) would make the next watch's pings look like a fall
        self._probed_rtt_ms = min(pings)
        # A round trip that fell says the network changed: this probe's time, and what it reads, may still be the old
        # network's (in the lab, right after 3G -> Wi-Fi, probes took 1.4-2.1 s on the Wi-Fi while TCP recovered from
        # the 3G queue's drops, and read 1.4-1.7 Mbit/s), so it sets no duty floor and is confirmed by another. As a
        # floor, it held the next probe off for 14-17 s, the session on the phone through the Wi-Fi phase, and the
        # watch quiet (its reference, these pings, was already the new round trip).
        if not new_network and before_ms is not None and _rtt_moved(before_ms, pings) == "down":
            new_network = True
            # the old network's round trips, as the watch drops them: under the estimator's own 2x step rule, a fall
            # of 1.5-2x would leave its median where it was, and the confirming probe would see the fall again
            self.cloud.estimator.forget_rtt(keep=len(pings))
        server_s = 0.0
        for _ in range(repeats):
            resp = self.cloud.infer_slice(self.model_name, layer, layer, frame, codec="raw", digest=self.digest)
            self._track_cloud_load(resp.queue_ms, 0.0, None)
            server_s += resp.server_ms / 1e3
            if small is not None and small_frame is not None:
                resp = self.cloud.infer_slice(
                    self.model_name, small, small, small_frame, codec="raw", digest=self.digest, upload_sample_only=True
                )
                self._track_cloud_load(resp.queue_ms, 0.0, None)
                server_s += resp.server_ms / 1e3
        if new_network:
            # Measured by what may still be the old network's time: the next local inference probes again, at once,
            # and that probe sets the interval (one more probe per change of network).
            self._measured_at, self._probe_s = -math.inf, 0.0
        else:
            self._measured_at = time.monotonic()
            # the link's time only: a session kept local by the cloud's queue must not probe the rarer for that queue
            self._probe_s = max(0.0, self._measured_at - started - server_s)

    def wait_for_probe(self, timeout_s: float | None = None) -> bool:
        """Wait for the background probe in flight, if any (it ends within the client's timeout); whether one was.

        For a caller that wants the link to itself next (the network lab's strategies take turns on one link: a
        probe beside another transfer would measure a part of it, and so would that transfer).
        """
        probing = self._probing
        if probing is None or not probing.is_alive():
            return False
        probing.join(timeout_s)
        return True

    def _probe_if_stale(self, estimated: bool) -> None:
        """After an inference planned entirely on this device: start a background :meth:`probe` when the link
        estimate is stale, or the cloud's queue estimate keeps the session off a fixed link (see
        ``probe_interval_s``); else, on an ``estimated`` link, a ping watch when the round trip is older than
        ``ping_interval_s``."""
        if self.probe_interval_s is None or self.cloud is None:
            return
        if isinstance(self.network, Network) and self._with_queue(self.network) is self.network:
            return
        with self._lock:
            now = time.monotonic()
            if not self._background_free():
                return
            if now - self._measured_at >= self._probe_every(self.probe_interval_s):
                self._measured_at = now  # one probe per interval, even if it fails
                self._start_background(self._probe_quietly)
            elif estimated:
                self._watch_if_stale(now)

    def _refresh_if_stale(self) -> None:
        """After an inference that used the cloud: re-measure in the background what was last measured longer ago
        than ``probe_interval_s``: the upload by a :meth:`probe` (which pings too), the round trip alone by two pings.

        A schedule's own requests measure only what they carry: a request large
        enough to be a bandwidth sample is no round-trip sample (without pings
        the upload estimate, which subtracts the round trip, absorbed its
        error: 65 Mbit/s read on an 18.9 Mbit/s link after the lab's step from
        a 10 to a 1 ms round trip), and one too small measures no bandwidth
        (a session whose estimate a slow request had cut to 5 Mbit/s kept a
        schedule that uploads 2 kB, and the estimate, to the end of the phase).
        The download is not refreshed so: most splits get a few kB back, so a
        stale download would send a probe after nearly every inference (on the
        lab's 4G, 0.86 s of link per 3.3 s inference), for an estimate those
        splits barely use; a probe refreshes it when the session runs locally.
        """
        interval, cloud = self.probe_interval_s, self.cloud
        if interval is None or cloud is None:
            return
        age, rtt_age = cloud.estimator.age_s("up"), cloud.estimator.age_s("rtt")
        if age is not None and age < interval and rtt_age is not None and rtt_age < self._ping_every():
            return  # both fresh: the common case, decided without the lock
        with self._lock:
            now = time.monotonic()
            if not self._background_free():
                return
            # one probe per interval, even one that measured nothing (a probe whose upload was no sample)
            if (age is None or age >= interval) and now - self._refreshed_at >= self._probe_every(interval):
                self._refreshed_at = self._measured_at = now
                self._start_background(self._probe_quietly)
            else:
                self._watch_if_stale(now)

    def _probe_every(self, interval: float) -> float:
        """Seconds between background probes: ``interval``, or the last probe's duration over :data:`PROBE_DUTY` if
        longer."""
        return max(interval, self._probe_s / PROBE_DUTY)

    def _ping_every(self) -> float:
        """Seconds between ping watches: ``ping_interval_s``, at most ``probe_interval_s`` (set)."""
        probe_every, ping_every = self.probe_interval_s, self.ping_interval_s
        assert probe_every is not None
        return probe_every if ping_every is None else min(ping_every, probe_every)

    def _watch_if_stale(self, now: float) -> None:
        """Start a ping watch (:meth:`_watch_quietly`) when the round trip was last measured, and the last watch
        started, longer ago than ``ping_interval_s`` (or ``probe_interval_s``, if shorter). Called with the lock held,
        after :meth:`_background_free`."""
        assert self.cloud is not None
        every = self._ping_every()
        age = self.cloud.estimator.age_s("rtt")
        if (age is None or age >= every) and now - self._pinged_at >= every:
            self._pinged_at = now
            self._start_background(self._watch_quietly)

    def _background_free(self) -> bool:
        """Whether a background probe or ping may start now: the session open, the cloud up, none still running.
        Called with the lock held."""
        if self._closed or self.cloud is None or not self.cloud.available:
            return False
        return self._probing is None or not self._probing.is_alive()

    def _start_background(self, work: Callable[[], None]) -> None:
        """Run ``work`` (a probe or pings) on the session's background thread. Called with the lock held, after
        :meth:`_background_free`."""
        thread = threading.Thread(target=work, name="jointdnn-probe", daemon=True)
        thread.start()
        self._probing = thread  # only a started thread: close() and wait_for_probe join it

    def _watch_quietly(self) -> None:
        """Two pings (round-trip samples). When both moved past :data:`RTT_MOVED_FACTOR` and :data:`RTT_MOVED_MS`
        of the estimate, the network changed: the older round-trip samples are dropped. When both fell that far below
        the estimate, or below the round trip of the last probe (a slow ramp, which the estimate follows), the link
        may be faster: probe it at once (see ``ping_interval_s``)."""
        cloud = self.cloud
        assert cloud is not None
        try:
            before = cloud.estimator.rtt_ms
            pings = [cloud.ping() * 1e3 for _ in range(2)]
        except Exception as e:  # the circuit breaker counted a cloud failure; a background ping never raises
            logger.info("background round-trip ping failed: %s: %s", type(e).__name__, e)
            return
        moved = None if before is None else _rtt_moved(before, pings)
        if moved is not None:
            logger.info("round trip moved from %.1f to %s ms", before, [round(x, 1) for x in pings])
            cloud.estimator.forget_rtt(keep=len(pings))  # the old network's: the pings are the new level's first
        probed = self._probed_rtt_ms
        if moved == "down" or (probed is not None and _rtt_moved(probed, pings) == "down"):
            # A faster network: measure its bandwidth now, whatever the probe interval (a probe's duty floor is
            # the slow link's; this one is quick). A slower one needs no probe (a second of a 3G link): a schedule
            # that uses the cloud measures it with its next upload (a drop is a step at once), and one kept on this
            # device by the faster link stays there on a slower one.
            with self._lock:
                if self._closed:
                    return
                self._measured_at = time.monotonic()
            # a step against the estimate is a new network, whose first probe is confirmed (see _measure_link); a
            # fall only against the last probe's round trip is a slow ramp on the same one
            self._probe_quietly(new_network=moved == "down")

    def _probe_quietly(self, new_network: bool = False) -> None:
        try:
            self._measure_link(PROBE_REQUESTS, new_network=new_network)
        except JointDNNError as e:  # the client's circuit breaker counted a cloud failure; nothing was lost
            logger.info("background link probe failed: %s", e)
        except Exception as e:  # e.g. the client closed under it by its owner: a background probe never raises
            logger.info("background link probe failed: %s: %s", type(e).__name__, e)

    def warm_up(self, probe: bool = True) -> Schedule:
        """Do now what the first inference would otherwise wait for, and return the schedule planned for now.

        Profiles and builds the lookup table when needed (waiting for a
        background build; not with ``lut_build="never"``), measures the link
        with :meth:`probe` (when ``probe`` and a cloud is set; a cloud that
        cannot be reached opens the client's circuit, nothing is raised), and loads the
        runtime sessions of the local ranges the session may run: the planned
        schedule's mobile runs and the local fallback from each of its cloud
        runs first, then (with ``network="auto"``) those of every other
        schedule the lookup table may answer with, as many as the executor's
        cache holds. So neither the
        first inference nor the first one after the link changes pays for
        loading a slice.
        """
        self._prepare()
        if probe and self.cloud is not None and self.cloud.available:
            try:
                self.probe()
            except TransportError:
                pass  # the client's circuit breaker counted it
        if self.lut_build != "never":
            self._wait_for_table()
        schedule = self.plan()[0]
        prepare = getattr(self.executor, "prepare", None)
        if callable(prepare):
            schedules = [schedule.segments]
            table = self._table
            if table is not None and not isinstance(self.network, Network):  # the link may change
                schedules += [segments for segments, _, _ in table[0].candidates]
            ranges = _local_ranges(schedules, self.graph.n)
            for first, last in ranges[: getattr(self.executor, "cache_size", len(ranges))]:
                prepare(self.graph, first, last)
        return schedule

    def close(self) -> None:
        """Wait for a background probe, cancel a lookup-table build, and close the cloud client if the session owns
        it (see ``close_cloud``).

        A client passed in stays open: other sessions may share it. A cancelled build stops at its next block of
        cells; close waits up to ``BUILD_JOIN_S`` for it, and logs a warning if it is still running then.
        """
        with self._lock:
            self._closed = True
            probing = self._probing
            building = self._building
        if building is not None:
            building.cancelled.set()
        if self.cloud is not None and self._close_cloud:
            self.cloud.close()  # first: a probe or ping in flight on the session's own client ends with it
        if probing is not None:
            probing.join()  # a probe is bounded by the client's timeout
        if building is not None:
            building.thread.join(BUILD_JOIN_S)
            if building.thread.is_alive():
                logger.warning("the cancelled lookup table build is still running; it stops at its next cells")

    def __enter__(self) -> JointSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.cloud.url if self.cloud is not None else "no cloud"
        return f"JointSession({self.graph.name!r}, {where}, objective={self.objective!r})"


class _BuildCancelled(JointDNNError):
    """A background lookup-table build stopped because its session closed (never leaves the build thread)."""


class _TableBuild:
    """One lookup-table build for a session on a daemon thread, started when made; ``cancelled`` stops it."""

    def __init__(self, session: JointSession, radio: Network) -> None:
        self.radio = radio.radio
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(session, radio), name="jointdnn-lut", daemon=True)
        self.thread.start()

    def _run(self, session: JointSession, radio: Network) -> None:
        table: LookupTable | None = None
        error: BaseException | None = None
        try:
            table = session._build_lut(radio, self.cancelled)
        except BaseException as e:  # recorded by the session, which plans exactly: a build never loses inferences
            error = e
        session._finish_build(self, table, error)


def _local_ranges(schedules: Sequence[Sequence[tuple[int, int, str]]], n: int) -> list[tuple[int, int]]:
    """The layer ranges run here by these schedules, in order, each once: every mobile run, and from each cloud
    run's first layer to the end (the local fallback when that run fails)."""
    ranges: dict[tuple[int, int], None] = {}
    for segments in schedules:
        for first, last, platform in runs_of(segments):
            ranges[(first, last) if platform == "mobile" else (first, n - 1)] = None
    return list(ranges)


def _drifted(built: float, now: float) -> bool:
    """Whether a round-trip estimate moved enough from the one a table was built with to rebuild it."""
    return abs(now - built) > max(1.0, 0.5 * built)


def _stale(built: Radio, link: Network) -> bool:
    """Whether ``link`` moved enough from the radio a table was built for to rebuild it: its round trip, or the time
    a burst saves at the link's rate (:func:`_drifted` on both; a refit of the burst moves it a little at every few
    samples, and a rebuild on both busy cores slowed the requests it overlapped)."""
    if _drifted(built.rtt_ms, link.rtt_ms):
        return True
    if built.burst_up_bytes == link.burst_up_bytes and built.burst_down_bytes == link.burst_down_bytes:
        return False
    up, down = 8e-3 / link.up_mbps, 8e-3 / link.down_mbps  # ms per byte
    return _drifted(built.burst_up_bytes * up, link.burst_up_bytes * up) or _drifted(
        built.burst_down_bytes * down, link.burst_down_bytes * down
    )


def _check_offered(schedule: Schedule, costs: CostTable) -> None:
    """ConfigError unless every group of the fixed ``schedule`` is offered by ``costs`` on its platform.

    Checked when the session is made, so that a schedule the table cannot price fails there rather than
    in the first :meth:`JointSession.run`.
    """
    for first, last, platform in schedule.segments:
        table = costs.mobile_ms if platform == "mobile" else costs.cloud_ms
        if not math.isfinite(float(table[first][last])):
            raise ConfigError(
                f"the fixed schedule runs layers {first}..{last} as one group on the {platform}, which the cost "
                f"table does not offer (its largest group is {costs.max_group()} layers); split that segment"
            )


def _rtt_moved(estimate_ms: float, pings_ms: Sequence[float]) -> str | None:
    """``"up"`` when every one of ``pings_ms`` lies more than :data:`RTT_MOVED_FACTOR` times and :data:`RTT_MOVED_MS`
    above ``estimate_ms``, ``"down"`` when every one lies as far below it, else None: a round trip that changed, not
    jitter (``ping_interval_s``)."""
    if not pings_ms:
        return None
    if all(x > estimate_ms * RTT_MOVED_FACTOR and x - estimate_ms > RTT_MOVED_MS for x in pings_ms):
        return "up"
    if all(x * RTT_MOVED_FACTOR < estimate_ms and estimate_ms - x > RTT_MOVED_MS for x in pings_ms):
        return "down"
    return None
