"""Cloud load benchmark (issue 14): the cloud's work per inference (the paper's Table 4) and scale-out on Ray Serve.

Usage: python benches/cloud_load.py [--quick] [--parts table4,replicas,overload] [--results benches/RESULTS.md]
       [--json OUT]

Every server is a real ``jointdnn-edge serve`` process on 127.0.0.1 serving
the zoo's AlexNet (``size="small"``), one compute thread and one request
computing at a time per process or replica, so that "one replica" is one
core's worth of server:

1. **table4**: N phones (threads, each a ``JointSession`` on an emulated
   device 20x slower than this CPU that computes once and waits out the rest,
   over a client link paced at the paper's 3G / 4G / Wi-Fi rates) against one
   server process. Per network and objective (latency, energy), the phones run
   cloud-only (``force="cloud"``) and then JointDNN; the server's CPU seconds
   (``/proc``) per inference give its workload, the reduction is compared with
   the paper's Table 4, and ``1 / CPU s`` is the inferences per second one
   core sustains. Every output is checked against the local run.
2. **replicas**: an asyncio load generator (one thread, ``httpx.AsyncClient``,
   closed loop) posts whole-model binary inferences from 16 and 32 clients to
   plain uvicorn (``--workers 1|2``) and to Ray Serve (``--ray --replicas
   1|2``): throughput, p50 and p99, and the ratio of two replicas to one.
3. **overload**: 32 phones on Wi-Fi against one single-slot server: JointDNN
   sessions (tracking the cloud's slowdown and queue wait from the compute and
   queue times it reports) against cloud-only ones; p95 latency, and the
   inferences that used the cloud.

The machine's cores are shared with the load generator and the phones: the
section says on how many cores it ran and the load it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.progress import Progress

from faults import SIZE, SLOWDOWN, Model, close_enough  # benches/ is on sys.path when this script runs
from jointdnn_edge import Network, __version__
from jointdnn_edge import protocol as P
from jointdnn_edge.client import CloudClient
from jointdnn_edge.demo import SlowedExecutor
from jointdnn_edge.faults import ServeProcess
from jointdnn_edge.models.executor import executor_for
from jointdnn_edge.session import JointSession

console = Console(width=120)
NETWORKS = ("3g", "4g", "wifi")
OBJECTIVES = ("latency", "energy")
#: the paper's Table 4: cloud workload reduction (%) by objective and network
PAPER = {"latency": {"3g": 84, "4g": 49, "wifi": 12}, "energy": {"3g": 73, "4g": 49, "wifi": 51}}
#: one request computing at a time, one compute thread: a process or replica is one core's worth of server
ONE_SLOT = ("--threads", "1", "--max-concurrency", "1", "--max-queue", "1024")


class SleepingDevice(SlowedExecutor):
    """The emulated device: computes each slice once (spares the cores), then waits until ``factor`` times the
    compute's CPU time has passed.

    CPU time, not wall time: the phones share this machine's few cores, and a real phone does not wait for the
    others' compute; a slice preempted for a while would otherwise also wait ``factor - 1`` times the preemption.
    """

    def _timed(self, fn: Any) -> dict[str, np.ndarray]:
        t0, cpu0 = time.perf_counter(), time.thread_time()  # one compute thread: the slice runs on this one
        out = fn()
        cpu = time.thread_time() - cpu0
        time.sleep(max(0.0, self.factor * cpu - (time.perf_counter() - t0)))
        return dict(out)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` (every thread; /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def process_tree(root: int) -> list[int]:
    """``root`` and every process descending from it (a Ray instance started by ``serve --ray`` included)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def component(pid: int) -> str:
    """What a server process is, by its name: Ray's proxy, replica, raylet... or the server process itself."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"
    for prefix, what in (("ray::ProxyActor", "Ray proxy"), ("ray::ServeRepli", "replicas"), ("raylet", "raylet"),
                         ("gcs_server", "GCS"), ("ray::ServeContr", "Serve controller")):  # fmt: skip
        if name.startswith(prefix):
            return what
    return "other" if name.startswith("ray::") else "server processes"


def cpu_by_component(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds of ``pids`` now, summed per :func:`component`."""
    out: dict[str, float] = {}
    for pid in pids:
        what = component(pid)
        out[what] = out.get(what, 0.0) + cpu_seconds([pid])
    return out


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def stop_server(server: ServeProcess) -> None:
    """Ctrl-C the server (``serve --ray`` tears its Ray instance down), then kill what is left."""
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGINT)
        try:
            server.proc.wait(60)
        except Exception:
            pass
    server.close()


# ------------------------------------------------------------------ phones (table4, overload)
@dataclass
class PhoneRun:
    """What N phones did in one cell: inferences, outputs checked, latencies, and the server's CPU."""

    mode: str
    network: str
    objective: str
    phones: int
    seconds: float
    inferences: int = 0
    wrong: int = 0
    lost: int = 0
    cloud_steps: int = 0
    server_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def cpu_ms_per_inference(self) -> float:
        return 1e3 * self.server_cpu_s / max(1, self.inferences)


def run_phones(
    model: Model, server: ServeProcess, mode: str, network: str, objective: str, phones: int, seconds: float
) -> PhoneRun:
    """``phones`` sessions inferring for ``seconds`` (``mode``: "cloud-only" or "jointdnn"); server CPU counted."""
    run = PhoneRun(mode, network, objective, phones, seconds)
    link = Network.preset(network)
    lock = threading.Lock()
    start = threading.Barrier(phones + 1)
    stop = threading.Event()

    def phone(k: int) -> None:
        client = CloudClient(server.url, emulate=link, timeout=60)
        force = "cloud" if mode == "cloud-only" else None
        device = SleepingDevice(executor_for(model.graph, threads=1), SLOWDOWN)
        with JointSession(
            model.graph, client, model.costs, network=link, objective=objective, radio=link, force=force,
            executor=device, close_cloud=True, lut_build="blocking",
        ) as s:  # fmt: skip
            s.run(model.feeds[0])  # warm: metadata, ranges loaded, the lookup table built before the clock starts
            start.wait()
            i = k
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    out = s.run(model.feeds[i % len(model.feeds)])
                except Exception:
                    with lock:
                        run.lost += 1
                    continue
                ms = (time.perf_counter() - t0) * 1e3
                ok = close_enough(out, model.want[i % len(model.want)])
                trace = s.last_trace
                clouded = trace is not None and any(st.platform == "cloud" and not st.fallback for st in trace.steps)
                i += 1
                with lock:
                    if not stop.is_set():
                        run.inferences += 1
                        run.wrong += not ok
                        run.cloud_steps += clouded
                        run.latencies_ms.append(ms)

    threads = [threading.Thread(target=phone, args=(k,), daemon=True) for k in range(phones)]
    for t in threads:
        t.start()
    start.wait()
    cpu0 = cpu_seconds([server.pid])
    time.sleep(seconds)
    with lock:
        stop.set()
        run.server_cpu_s = cpu_seconds([server.pid]) - cpu0
    for t in threads:
        t.join(120)
    return run


def table4(model: Model, phones: int, seconds: float, progress: Progress) -> list[PhoneRun]:
    runs = []
    task = progress.add_task("table 4 (phones x networks x objectives)", total=len(NETWORKS) * len(OBJECTIVES) * 2)
    with ServeProcess("zoo:alexnet", "--size", SIZE, *ONE_SLOT) as server:
        for network in NETWORKS:
            for objective in OBJECTIVES:
                for mode in ("cloud-only", "jointdnn"):
                    runs.append(run_phones(model, server, mode, network, objective, phones, seconds))
                    progress.advance(task)
        stop_server(server)
    return runs


def overload(model: Model, phones: int, seconds: float, progress: Progress) -> list[PhoneRun]:
    runs = []
    task = progress.add_task(f"overload ({phones} phones, one slot)", total=2)
    with ServeProcess("zoo:alexnet", "--size", SIZE, *ONE_SLOT) as server:
        for mode in ("cloud-only", "jointdnn"):
            runs.append(run_phones(model, server, mode, "wifi", "latency", phones, seconds))
            progress.advance(task)
        stop_server(server)
    return runs


# ------------------------------------------------------------------ the load generator (replicas)
@dataclass
class LoadRun:
    server: str
    replicas: int
    clients: int
    seconds: float
    ok: int = 0
    refused: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    #: CPU seconds while measured: the load generator's and the server's processes' by component
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    @property
    def cores_busy(self) -> float:
        """CPU seconds of every measured process per second of the run."""
        return sum(self.cpu_s.values()) / self.seconds

    def cpu_ms_per_inference(self, component: str) -> float:
        """CPU ms one answered inference cost ``component`` (0 for a component not measured)."""
        return 1e3 * self.cpu_s.get(component, 0.0) / max(1, self.ok)


def whole_model_body(model: Model) -> tuple[bytes, int | None]:
    """A whole-model inference request with binary tensors (what ``CloudClient.infer`` sends)."""
    entries, blobs = [], []
    for name, arr in model.feeds[0].items():
        data = np.ascontiguousarray(arr).tobytes()
        entries.append({"name": name, "datatype": P.datatype_of(arr.dtype), "shape": list(arr.shape),
                        "parameters": {"binary_data_size": len(data)}})  # fmt: skip
        blobs.append(data)
    return P.body_parts({"inputs": entries, "parameters": {"binary_data_output": True}}, blobs)


async def load(
    url: str, server_pid: int, body: bytes, json_len: int | None, clients: int, seconds: float, warmup: float
) -> LoadRun:
    """``clients`` closed-loop clients posting ``body`` for ``warmup + seconds``; the last ``seconds`` counted.

    The CPU of the server's process tree (``server_pid`` and its descendants) and of this process is taken over
    the counted seconds.
    """
    headers = {"Content-Type": "application/octet-stream"}
    if json_len is not None:
        headers[P.HEADER_LENGTH] = str(json_len)
    run = LoadRun("", 0, clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        t_start = time.perf_counter() + warmup
        t_end = t_start + seconds

        async def measure_cpu() -> None:
            await asyncio.sleep(max(0.0, t_start - time.perf_counter()))
            tree = process_tree(server_pid)
            before, gen0 = cpu_by_component(tree), time.process_time()
            await asyncio.sleep(max(0.0, t_end - time.perf_counter()))
            after = cpu_by_component(tree)
            run.cpu_s = {k: after[k] - before.get(k, 0.0) for k in after}
            run.cpu_s["load generator"] = time.process_time() - gen0

        async def client() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    return
                try:
                    r = await http.post(f"{url}/v2/models/alexnet/infer", content=body, headers=headers)
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                t1 = time.perf_counter()
                if t0 < t_start or t1 > t_end:
                    continue
                if status == 200:
                    run.ok += 1
                    run.latencies_ms.append((t1 - t0) * 1e3)
                elif status == 503:
                    run.refused += 1
                else:
                    run.failed += 1

        await asyncio.gather(measure_cpu(), *(client() for _ in range(clients)))
    return run


def replicas(model: Model, seconds: float, client_counts: Sequence[int], progress: Progress) -> list[LoadRun]:
    body, json_len = whole_model_body(model)
    variants = [("uvicorn", 1), ("uvicorn", 2), ("ray", 1), ("ray", 2)]
    runs = []
    task = progress.add_task("replicas (servers x clients)", total=len(variants) * len(client_counts))
    for kind, n in variants:
        scale = ("--workers", str(n)) if kind == "uvicorn" else ("--ray", "--replicas", str(n))
        server = ServeProcess("zoo:alexnet", "--size", SIZE, *ONE_SLOT, *scale)
        try:
            server.start(timeout=180)
            asyncio.run(load(server.url, server.pid, body, json_len, 4, 2.0, 0.5))  # every replica loads its model
            for clients in client_counts:
                run = asyncio.run(load(server.url, server.pid, body, json_len, clients, seconds, 1.0))
                run.server, run.replicas = kind, n
                runs.append(run)
                progress.advance(task)
        finally:
            stop_server(server)
    return runs


# ------------------------------------------------------------------ the report
def _pct(x: float) -> str:
    return f"{x:.0f} %" if np.isfinite(x) else "n/a"


def section(
    t4: list[PhoneRun], reps: list[LoadRun], over: list[PhoneRun], command: str, elapsed: float, loadavg: str
) -> str:
    lines = [
        "## Cloud load",
        "",
        f"`{command}` — jointdnn-edge {__version__}, {platform.machine()}, {os.cpu_count()} cores shared with the "
        f"phones and the load generator (load average at the start: {loadavg}), {elapsed:.0f} s. The zoo's AlexNet "
        f"({SIZE}); each server process or Ray replica computes one request at a time on one thread. Figures from a "
        "busy machine are noisy; the ratios are same-run.",
        "",
    ]
    if t4:
        lines += [
            "### The cloud's workload (the paper's Table 4, as server CPU)",
            "",
            f"{t4[0].phones} phones (emulated device {SLOWDOWN:g}x slower than this CPU, link paced at the preset's "
            f"rates) for {t4[0].seconds:g} s per cell against one server process. Server CPU per inference from "
            "`/proc`; capacity = inferences per second one server core sustains at that CPU cost.",
            "",
            "| network | objective | mode | inferences | wrong | lost | cloud used | server CPU ms / inference "
            "| capacity / core | workload reduction | paper |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i in range(0, len(t4), 2):
            cloud, joint = t4[i], t4[i + 1]
            reduction = 100 * (1 - joint.cpu_ms_per_inference / cloud.cpu_ms_per_inference)
            for r in (cloud, joint):
                cap = 1e3 / r.cpu_ms_per_inference if r.cpu_ms_per_inference > 0 else float("inf")
                red = _pct(reduction) if r is joint else ""
                paper = f"{PAPER[r.objective][r.network]} %" if r is joint else ""
                lines.append(
                    f"| {r.network} | {r.objective} | {r.mode} | {r.inferences} | {r.wrong} | {r.lost} | "
                    f"{r.cloud_steps}/{r.inferences} | {r.cpu_ms_per_inference:.2f} | {cap:.0f}/s | {red} | {paper} |"
                )
        lines += [
            "",
            "The same whole-model request costs the server more CPU on a slower link: the paced upload arrives in "
            "smaller chunks, each a wake-up of the server's event loop. 'cloud used' counts inferences with a step "
            "on the cloud; where JointDNN keeps everything on the phone, the server's CPU is the session's probes.",
            "",
        ]
    if reps:
        lines += [
            "### Throughput against replicas (whole model, asyncio load generator)",
            "",
            "Closed-loop clients on one asyncio thread posting binary whole-model inferences; "
            f"{reps[0].seconds:g} s measured per row after a 1 s warm-up.",
            "",
            "| server | replicas | clients | inferences/s | p50 ms | p99 ms | 503 | failed | vs 1 replica |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        base = {(r.server, r.clients): r.throughput for r in reps if r.replicas == 1}
        for r in reps:
            ratio = r.throughput / base[(r.server, r.clients)] if base.get((r.server, r.clients)) else float("nan")
            lines.append(
                f"| {r.server} | {r.replicas} | {r.clients} | {r.throughput:.1f} | "
                f"{percentile(r.latencies_ms, 50):.1f} | {percentile(r.latencies_ms, 99):.1f} | {r.refused} | "
                f"{r.failed} | {ratio:.2f}x |"
            )
        uv = {(r.replicas, r.clients): r.throughput for r in reps if r.server == "uvicorn"}
        proxy = [
            f"{r.clients} clients, {r.replicas} replica(s): {r.throughput / uv[(r.replicas, r.clients)]:.2f}x"
            for r in reps
            if r.server == "ray" and uv.get((r.replicas, r.clients))
        ]
        lines += [
            "",
            "Ray Serve against plain uvicorn at the same replica count (the proxy's cost): " + "; ".join(proxy),
        ]
        names = ["load generator", "server processes", "replicas", "Ray proxy", "raylet", "GCS", "Serve controller"]
        names += sorted({k for r in reps for k in r.cpu_s} - set(names))
        lines += [
            "",
            "Where the CPU goes: CPU ms per inference over the measured seconds, by process (`/proc`: the server's "
            "process tree and the load generator). 'server processes' are uvicorn's (master and workers) or, with "
            "Ray, the `serve` command's driver; 'cores busy' is the CPU of all of them per second of the run.",
            "",
            "| server | replicas | clients | " + " | ".join(names) + " | total | cores busy |",
            "|---|---|---|" + "---|" * (len(names) + 2),
        ]
        for r in reps:
            per = [r.cpu_ms_per_inference(k) for k in names]
            cells = " | ".join(f"{v:.2f}" for v in per)
            lines.append(f"| {r.server} | {r.replicas} | {r.clients} | {cells} | {sum(per):.2f} | {r.cores_busy:.2f} |")
        lines += ["", *_replica_ceiling(reps)]
        lines.append("")
    if over:
        lines += [
            "### Overload shifts work to the phones",
            "",
            f"{over[0].phones} phones on Wi-Fi against one single-slot server for {over[0].seconds:g} s; the JointDNN "
            "sessions track the cloud's slowdown and its queue wait from the compute and queue times it reports, and "
            "plan the wait like a longer round trip; a session kept on the phone by the queue probes it (one small "
            "request) every 5 s. The emulated phone waits out its compute's CPU time, not its wall time, so the "
            "phones sharing this machine's cores do not slow each other down 20-fold.",
            "",
            "| mode | inferences | wrong | lost | cloud used | p50 ms | p95 ms | server CPU ms / inference |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in over:
            lines.append(
                f"| {r.mode} | {r.inferences} | {r.wrong} | {r.lost} | {r.cloud_steps}/{r.inferences} | "
                f"{percentile(r.latencies_ms, 50):.0f} | {percentile(r.latencies_ms, 95):.0f} | "
                f"{r.cpu_ms_per_inference:.2f} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def _replica_ceiling(reps: list[LoadRun]) -> list[str]:
    """Why a second Ray replica adds what it adds: how busy one replica keeps the machine's cores, and the ceiling
    that leaves for a second (cores / cores busy), beside the measured gain."""
    cores = os.cpu_count() or 1
    out = []
    for one in (r for r in reps if r.server == "ray" and r.replicas == 1):
        two = next((r for r in reps if r.server == "ray" and r.replicas == 2 and r.clients == one.clients), None)
        if two is None or not one.throughput:
            continue
        busy, ms = one.cores_busy, one.cpu_ms_per_inference
        total = sum(ms(k) for k in one.cpu_s)
        out.append(
            f"- {one.clients} clients: one Ray replica keeps {busy:.2f} of the {cores} cores busy "
            f"({total:.1f} ms of CPU per inference: replica {ms('replicas'):.1f}, proxy {ms('Ray proxy'):.1f}, "
            f"raylet {ms('raylet'):.1f}, load generator {ms('load generator'):.1f}), so at the same CPU per "
            f"inference a second replica can add about {cores / busy:.2f}x on these cores; measured "
            f"{two.throughput / one.throughput:.2f}x."
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short cells and fewer phones (development)")
    ap.add_argument("--parts", default="table4,replicas,overload", help="comma-separated: table4,replicas,overload")
    ap.add_argument("--results", type=Path, default=None, help="write the section into this RESULTS.md")
    ap.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"table4", "replicas", "overload"}
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, lambda s, f: (ServeProcess.kill_all(), os._exit(128 + s)))
    seconds = 4.0 if args.quick else 20.0
    phones = 4 if args.quick else 8
    loadavg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.monotonic()
    console.print("building the model, its cost table and its oracle")
    model = Model.build()
    t4: list[PhoneRun] = []
    reps: list[LoadRun] = []
    over: list[PhoneRun] = []
    try:
        with Progress(console=console) as progress:
            if "table4" in parts:
                t4 = table4(model, phones, seconds, progress)
            if "replicas" in parts:
                reps = replicas(model, seconds, (16, 32), progress)
            if "overload" in parts:
                over = overload(model, 16 if args.quick else 32, seconds, progress)
    finally:
        ServeProcess.kill_all()
    command = "python benches/cloud_load.py" + (" --quick" if args.quick else "")
    if parts != {"table4", "replicas", "overload"}:
        command += f" --parts {','.join(sorted(parts))}"
    text = section(t4, reps, over, command, time.monotonic() - started, loadavg)
    print(text)
    if args.json is not None:
        doc = {
            "table4": [asdict(r) for r in t4],
            "replicas": [asdict(r) for r in reps],
            "overload": [asdict(r) for r in over],
        }
        args.json.write_text(json.dumps(doc, indent=1))
    if args.results is not None:
        from solver import write_section

        write_section(args.results, "## Cloud load", text)


if __name__ == "__main__":
    main()
