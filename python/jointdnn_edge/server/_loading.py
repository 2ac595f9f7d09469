"""Loading layer ranges: once however many requests ask at the same time, and ahead of time (preload).

A range (or the whole model) is loaded by the executor's ``prepare`` (slicing,
runtime set-up) and cached there. :class:`RangeLoader` makes concurrent first
requests for one range share a single load (single flight): the first loads,
the others wait for it and then find it cached, or raise its error when it
failed (a later request tries again). :class:`Preloader` loads the
ranges ``serve --preload`` names on a background thread, through the same
loader, before the server says it is ready.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, TextIO, Union

from ..errors import ConfigError, JointDNNError, ProtocolError
from ..models.graph import probe_layer

if TYPE_CHECKING:
    import numpy as np

    from ._registry import ModelRegistry, ServedModel

__all__ = ["WHOLE", "Preloader", "RangeKey", "RangeLoader", "preload_plan"]

logger = logging.getLogger("jointdnn_edge.server")

#: A loaded model or layer range: feeds by name in, outputs by name out.
Run = Callable[[Mapping[str, "np.ndarray"]], Mapping[str, "np.ndarray"]]
#: What is loaded: a layer range (first, last), or the whole model.
WHOLE = "whole"
RangeKey = Union[tuple[int, int], str]
#: How long a request waits for another's load of its range before a 503 (s): loads of big models take minutes.
DEFAULT_WAIT_TIMEOUT_S = 600.0
#: Ranges the executors' caches keep besides the preloaded ones.
_CACHE_HEADROOM = 128


def _open(model: ServedModel, key: RangeKey) -> Run:
    """``key`` of ``model`` loaded (or found in the executor's cache), ready to run."""
    executor, graph = model.executor, model.graph
    if isinstance(key, str):  # WHOLE
        prepare_model = getattr(executor, "prepare_model", None)
        if callable(prepare_model):
            run: Run = prepare_model(graph)
            return run
        return partial(executor.run_model, graph)
    first, last = key
    prepare = getattr(executor, "prepare", None)
    if callable(prepare):
        run = prepare(graph, first, last)
        return run
    return partial(executor.run, graph, first, last)


class _Flight:
    """One load in progress: set :attr:`done` when it has finished, with :attr:`error` when it failed."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class RangeLoader:
    """Loads ranges so that concurrent requests for one range share a single load.

    ``wait_timeout_s``: the longest a request waits for another's load of its
    range before it gives up with :class:`ProtocolError` (503, retry later).
    """

    def __init__(self, wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S) -> None:
        self.wait_timeout_s = wait_timeout_s
        self._guard = threading.Lock()
        self._loading: dict[tuple[int, RangeKey], _Flight] = {}

    def load(self, model: ServedModel, key: RangeKey) -> tuple[Run, float, float]:
        """``key`` of ``model`` ready to run; with the ms this call spent loading, and waiting for another's load.

        While one call loads a range, other calls for it wait, then take it
        from the executor's cache. When that load fails, its waiters raise
        the same error (they do not each try again); a later call tries anew.
        """
        flight_key = (id(model), key)
        waited = 0.0
        while True:
            with self._guard:
                flight = self._loading.get(flight_key)
                if flight is None:
                    flight = self._loading[flight_key] = _Flight()
                    break
            t0 = time.perf_counter()
            finished = flight.done.wait(self.wait_timeout_s)
            waited += time.perf_counter() - t0
            if not finished:
                raise ProtocolError(
                    503, f"layer range {key} is still loading after {self.wait_timeout_s:g} s; retry later"
                )
            if flight.error is not None:
                raise flight.error
            # loaded: this call takes it from the executor's cache (or loads it again if it was evicted meanwhile)
        t0 = time.perf_counter()
        try:
            run = _open(model, key)
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._guard:
                del self._loading[flight_key]
            flight.done.set()
        return run, (time.perf_counter() - t0) * 1e3, waited * 1e3


# ------------------------------------------------------------------ preloading
def _cloud_runs(segments: Iterable[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The layer ranges a schedule runs on the cloud: its maximal runs of cloud groups (one request each)."""
    runs: list[tuple[int, int]] = []
    previous = ""
    for first, last, platform in segments:
        if platform == "cloud":
            if previous == "cloud":
                runs[-1] = (runs[-1][0], last)
            else:
                runs.append((first, last))
        previous = platform
    return runs


def _spec_ranges(spec: str, kind: str, arg: str, models: list[ServedModel]) -> list[tuple[ServedModel, list[RangeKey]]]:
    """The ranges one preload spec names, with their models."""
    if kind == "whole":
        if arg:
            raise ConfigError(f"preload {spec!r}: 'whole' takes no argument")
        return [(m, [WHOLE]) for m in models]
    if kind == "all-groups":
        try:
            size = int(arg)
        except ValueError:
            size = 0
        if size < 1:
            raise ConfigError(f"preload {spec!r}: all-groups needs a positive group size, as all-groups:4")
        return [(m, [(a, b) for a in range(m.graph.n) for b in range(a, min(m.graph.n, a + size))]) for m in models]
    # kind == "lut"
    from ..planner.lut import LookupTable

    try:
        table = LookupTable.load(arg)
    except (OSError, JointDNNError) as e:
        raise ConfigError(f"preload {spec!r}: cannot read the lookup table: {e}") from None
    ranges: set[tuple[int, int]] = set()
    for segments, _, _ in table.candidates:
        ranges.update(_cloud_runs(segments))
    matching = [m for m in models if m.graph.n == table.n]
    if not matching:
        raise ConfigError(
            f"preload {spec!r}: the lookup table has {table.n} layers; no served model has "
            f"({', '.join(f'{m.graph.name}: {m.graph.n}' for m in models)})"
        )
    return [(m, sorted(ranges | {(probe_layer(m.graph),) * 2})) for m in matching]  # and the session's link probe


def preload_plan(registry: ModelRegistry, specs: Iterable[str]) -> list[tuple[ServedModel, RangeKey]]:
    """What the preload ``specs`` name, in order, without repeats; :class:`ConfigError` for a bad spec.

    A spec is ``[MODEL=]KIND[:ARG]``: ``whole`` (the whole model),
    ``all-groups:N`` (every layer range of at most N layers) or ``lut:FILE``
    (the cloud ranges a lookup table's schedules run, and the layer the
    session's link probe asks for, ``models.graph.probe_layer``; applied to the models with the table's
    layer count). Without ``MODEL=`` a spec applies to every served model.
    """
    plan: dict[tuple[int, RangeKey], tuple[ServedModel, RangeKey]] = {}
    for spec in specs:
        if not isinstance(spec, str):
            raise ConfigError(f"a preload spec is a string, got {spec!r}")
        name, rest = "", spec
        if spec.partition(":")[0] not in ("whole", "all-groups", "lut"):
            name, _, rest = spec.partition("=")
        kind, _, arg = rest.partition(":")
        if kind not in ("whole", "all-groups", "lut"):
            raise ConfigError(f"preload {spec!r}: expected [MODEL=]whole, [MODEL=]all-groups:N or [MODEL=]lut:FILE")
        models = [registry.get(name)] if name else [registry.get(n) for n in registry]
        for model, keys in _spec_ranges(spec, kind, arg, models):
            for key in keys:
                plan.setdefault((id(model), key), (model, key))
    return list(plan.values())


def _make_room(plan: list[tuple[ServedModel, RangeKey]]) -> None:
    """Grow each executor's cache (when it has a ``cache_size``) to keep its preloaded ranges and more."""
    counts: dict[int, tuple[Any, int]] = {}
    for model, _ in plan:
        executor, count = counts.get(id(model.executor), (model.executor, 0))
        counts[id(model.executor)] = (executor, count + 1)
    for executor, count in counts.values():
        size = getattr(executor, "cache_size", None)
        if isinstance(size, int) and size < count + _CACHE_HEADROOM:
            executor.cache_size = count + _CACHE_HEADROOM


class Preloader:
    """Loads a plan's ranges on a background thread; :attr:`done` is set when it has finished.

    Prints a progress line to ``stream`` (stderr) at the start, about every
    tenth of the plan, and at the end. A range that fails to load is
    reported and skipped: its requests will fail as they would have.
    """

    def __init__(
        self, loader: RangeLoader, plan: list[tuple[ServedModel, RangeKey]], stream: TextIO | None = None
    ) -> None:
        self.loader = loader
        self.plan = plan
        self.loaded = 0
        self.failed = 0
        self.done = threading.Event()
        self._stream = stream
        _make_room(plan)
        if not plan:
            self.done.set()

    def start(self) -> Preloader:
        """Start loading on a daemon thread (nothing to do when the plan is empty)."""
        if not self.done.is_set():
            threading.Thread(target=self._run, name="jointdnn-preload", daemon=True).start()
        return self

    def _say(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        print(f"jointdnn-edge serve: {line}", file=stream, flush=True)

    def _run(self) -> None:
        total = len(self.plan)
        models = len({id(m) for m, _ in self.plan})
        self._say(f"preloading {total} layer ranges of {models} model(s); not ready until done")
        t0 = time.perf_counter()
        step = max(1, total // 10)
        try:
            for i, (model, key) in enumerate(self.plan, 1):
                try:
                    self.loader.load(model, key)
                    self.loaded += 1
                except Exception as e:  # a range that cannot load fails its requests as it would have
                    self.failed += 1
                    logger.error("preload of %s %s failed: %s", model.graph.name, key, e)
                if i % step == 0 and i < total:
                    self._say(f"preloaded {i}/{total} ({time.perf_counter() - t0:.1f} s)")
            failed = f", {self.failed} failed" if self.failed else ""
            self._say(f"preloaded {self.loaded}/{total}{failed} in {time.perf_counter() - t0:.1f} s; ready")
        finally:
            self.done.set()
