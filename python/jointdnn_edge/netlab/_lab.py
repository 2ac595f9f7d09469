"""Two network namespaces joined by a veth pair, shaped with ``tc tbf``: a real link on one machine.

The server side and the client side each get a namespace (``jdlab-PID-K-s``
and ``-c``) with one end of a veth pair and private addresses
(:data:`SERVER_ADDR`, :data:`CLIENT_ADDR`) that exist nowhere else. Each
end's egress is shaped by a token bucket (``tbf``): the client's is the
uplink, the server's the downlink; :meth:`Lab.shape` changes both with
``tc qdisc change``. Everything the lab makes (the namespaces, which take the
veth pair and its qdiscs with them, and the processes it started) is removed
by :meth:`Lab.close`, which runs on leaving the ``with`` block, on SIGTERM and
SIGINT (they raise in the main thread, so the block is left), and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import JointDNNError

__all__ = ["CLIENT_ADDR", "SERVER_ADDR", "Lab", "LabUnavailableError", "lab_unavailable_reason", "leftovers"]

#: The lab's addresses (a private /30 that exists only inside its namespaces).
SERVER_ADDR = "10.213.0.1"
CLIENT_ADDR = "10.213.0.2"
#: Every namespace and veth the lab makes starts with this.
PREFIX = "jdlab"
#: The largest packet on the lab's link (Ethernet's MTU and header): no segmentation offload (see Lab.open).
MTU_BYTES = 1514
#: Token-bucket burst: at least this many bytes (three packets), else this long at the rate (a real shaper's bucket).
MIN_BURST_BYTES = 4500
BURST_S = 0.004
#: Queue of the shaper: this long at the rate, at least this many bytes (a bottleneck's buffer).
QUEUE_S = 0.15
MIN_QUEUE_BYTES = 16_000
#: Rate of the shaper while the trace says there is no link (tbf has no zero; the relay holds the data).
OUTAGE_KBIT = 8
_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")


class LabUnavailableError(JointDNNError, RuntimeError):
    """The lab cannot be built here (not root, no ``ip``/``tc``, no namespaces or no ``tbf``); the message says why."""


def _run(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=20)


def shaper_burst_bytes(rate_mbps: float) -> int:
    """The depth of the lab's token bucket at ``rate_mbps``: the bytes it passes at once after a pause."""
    return max(MIN_BURST_BYTES, int(max(int(rate_mbps * 1e6), OUTAGE_KBIT * 1000) / 8 * BURST_S))


def _tbf(rate_mbps: float) -> list[str]:
    """``tc`` arguments of a token bucket at ``rate_mbps`` (0: :data:`OUTAGE_KBIT`)."""
    bits = max(int(rate_mbps * 1e6), OUTAGE_KBIT * 1000)
    burst = shaper_burst_bytes(rate_mbps)
    limit = max(MIN_QUEUE_BYTES, int(bits / 8 * QUEUE_S)) + burst
    return ["tbf", "rate", f"{bits}bit", "burst", str(burst), "limit", str(limit)]


_STATS = re.compile(
    r"Sent (?P<sent_bytes>\d+) bytes \d+ pkt \(dropped (?P<dropped>\d+), overlimits (?P<overlimits>\d+).*?"
    r"backlog (?P<backlog_bytes>\d+)b",
    re.S,
)


def _parse_stats(text: str) -> dict[str, int]:
    """The first qdisc's counters in ``tc -s qdisc show`` output (``{}`` if none)."""
    m = _STATS.search(text)
    return {k: int(v) for k, v in m.groupdict().items()} if m else {}


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can (tries a namespace, a veth and a tbf, then removes them)."""
    if sys.platform != "linux":
        return "the network lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the network lab needs `{tool}` (iproute2)"
    try:
        with Lab(probe=True):
            pass
    except LabUnavailableError as e:
        return str(e)
    return None


def leftovers() -> dict[str, list[str]]:
    """The lab's namespaces, and links in this namespace, that still exist (empty lists when all is clean)."""
    names = [ln.split()[0] for ln in _run(["ip", "netns", "list"]).stdout.splitlines() if ln.strip()]
    links = [ln for ln in _run(["ip", "-o", "link"]).stdout.splitlines() if PREFIX in ln or "jdl" in ln.split(":")[1]]
    return {"netns": [n for n in names if n.startswith(PREFIX)], "links": links}


def remove_stale() -> list[str]:
    """Remove the namespaces of labs whose process is gone (after a SIGKILL); returns their names."""
    removed = []
    for name in leftovers()["netns"]:
        parts = name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is not None and pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            _run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    return removed


def _enter_netns(name: str) -> None:
    """Move the calling thread into network namespace ``name`` (its sockets are made there from now on)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _die_with_parent() -> None:
    """In a child before exec: a session of its own, and SIGTERM when the lab's process dies."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Lab:
    """The lab's link: see the module docstring. Use as a context manager.

    ``up_mbps``/``down_mbps``: the first shaping. :meth:`client_call` runs a
    function on a thread inside the client namespace (sockets it opens are
    there); :meth:`start_server` runs a command inside the server namespace.
    """

    _count = 0

    def __init__(self, up_mbps: float = 100.0, down_mbps: float = 100.0, *, probe: bool = False) -> None:
        Lab._count += 1
        tag = f"{PREFIX}-{os.getpid()}-{Lab._count}"
        self.client_ns, self.server_ns = f"{tag}-c", f"{tag}-s"
        short = f"jdl{os.getpid() % 10_000_000}{Lab._count % 10}"
        self.client_dev, self.server_dev = f"{short}c", f"{short}s"
        self.shaped = (float(up_mbps), float(down_mbps))
        self._probe = probe
        self._made: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._client_pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._old_handlers: dict[int, Any] = {}

    # ------------------------------------------------------------ build and tear down
    def open(self) -> Lab:
        """Build the namespaces, the veth pair and the shapers (LabUnavailableError, all undone, if any step fails)."""
        atexit.register(self.close)
        try:
            remove_stale()
            for ns in (self.client_ns, self.server_ns):
                self._ip("netns", "add", ns)
                self._made.append(ns)
            self._ip("link", "add", self.client_dev, "netns", self.client_ns, "type", "veth",
                     "peer", "name", self.server_dev, "netns", self.server_ns)  # fmt: skip
            for ns, dev, addr in ((self.client_ns, self.client_dev, CLIENT_ADDR),
                                  (self.server_ns, self.server_dev, SERVER_ADDR)):  # fmt: skip
                self._ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
                self._ip("-n", ns, "link", "set", "lo", "up")
                # One MTU per packet, as on a radio link. With segmentation offload, TCP queues packets of several
                # MTUs, and tbf passes one only when its bucket holds all of it: a packet queued under a large
                # bucket (Wi-Fi's 9.4 kB) stalled the link for good after a change to a smaller one (4G's 4.5 kB).
                self._ip("-n", ns, "link", "set", dev, "gso_max_size", str(MTU_BYTES), "gso_max_segs", "1")
                self._ip("-n", ns, "link", "set", dev, "up")
            self._tc("add", *self.shaped)
        except BaseException:
            self.close()
            raise
        if not self._probe:
            self._client_pool = ThreadPoolExecutor(
                1, "netlab-client", initializer=_enter_netns, initargs=(self.client_ns,)
            )
        return self

    def close(self) -> None:
        """Stop the lab's processes and remove its namespaces (with the veth pair and qdiscs); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._client_pool is not None:
            self._client_pool.shutdown(wait=False, cancel_futures=True)
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for ns in reversed(self._made):
            _run(["ip", "netns", "del", ns], check=False)
        self._made.clear()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> Lab:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, _raise_interrupt)
        try:
            return self.open()
        except BaseException:
            self._restore_handlers()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        finally:
            self._restore_handlers()

    def _restore_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    # ------------------------------------------------------------ the link
    def shape(self, up_mbps: float, down_mbps: float) -> None:
        """Change the shapers to ``up_mbps`` (client egress) and ``down_mbps`` (server egress); 0 is an outage."""
        self._tc("change", up_mbps, down_mbps)
        self.shaped = (float(up_mbps), float(down_mbps))

    def _tc(self, verb: str, up_mbps: float, down_mbps: float) -> None:
        for ns, dev, rate in ((self.client_ns, self.client_dev, up_mbps), (self.server_ns, self.server_dev, down_mbps)):
            self._cmd(["tc", "-n", ns, "qdisc", verb, "dev", dev, "root", *_tbf(rate)])

    def qdiscs(self) -> dict[str, str]:
        """``tc qdisc show`` of each end (for tests and reports)."""
        return {
            ns: _run(["tc", "-n", ns, "qdisc", "show", "dev", dev], check=False).stdout.strip()
            for ns, dev in ((self.client_ns, self.client_dev), (self.server_ns, self.server_dev))
        }

    def shaper_stats(self) -> dict[str, dict[str, int]]:
        """Counters of each shaper since it was made (``tc -s``): ``sent_bytes``, ``dropped``, ``overlimits``,
        ``backlog_bytes`` (queued now), by ``"up"`` (client egress) and ``"down"``; empty for one ``tc`` did not
        report. What the lab's JSON logs at each change of the trace, to tell a stalled link from a slow server."""
        out: dict[str, dict[str, int]] = {}
        for side, ns, dev in (("up", self.client_ns, self.client_dev), ("down", self.server_ns, self.server_dev)):
            text = _run(["tc", "-s", "-n", ns, "qdisc", "show", "dev", dev], check=False).stdout
            out[side] = _parse_stats(text)
        return out

    def _ip(self, *args: str) -> None:
        self._cmd(["ip", *args])

    def _cmd(self, args: list[str]) -> None:
        try:
            proc = _run(args, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LabUnavailableError(f"`{' '.join(args)}` failed: {e}") from None
        if proc.returncode != 0:
            why = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise LabUnavailableError(f"`{' '.join(args)}` failed: {why}")

    # ------------------------------------------------------------ what runs inside
    def start_server(self, argv: Sequence[str], *, log: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the server namespace (``ip netns exec``); it is stopped by :meth:`close`."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, *argv],
            stdout=log,
            stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self._procs.append(proc)
        return proc

    def client_call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on the lab's client thread, inside the client namespace."""
        if self._client_pool is None:
            raise LabUnavailableError("the lab is not open")
        return self._client_pool.submit(fn, *args, **kwargs)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
