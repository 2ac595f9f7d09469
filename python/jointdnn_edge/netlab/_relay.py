"""A TCP relay in user space that adds round-trip delay, jitter and loss, and holds data through an outage.

The kernel here has ``tbf`` but not ``netem``, so delay cannot be added to
packets in the kernel. The relay, in the client namespace, accepts the
client's connections on 127.0.0.1 and opens one to the server across the
shaped veth pair for each; every chunk it reads is forwarded half a round
trip (plus jitter) later in each direction, in order. Loss on a TCP link
shows as a retransmission: with probability ``loss`` a chunk waits one
retransmission timeout more (``max(200 ms, round trip)``, Linux's minimum
RTO). While the link is out (a bandwidth of 0) nothing is forwarded. It is a
split-TCP proxy: the kernel TCP across the veth sees the shaper's rate, queue
and bursts, but not the added delay.

Each connection is opened to the server on a thread of its own (a connect
slowed by the shaped link holds up no other client's accept), and each
direction of each connection has a reading thread and a sending thread
that waits with ``time.sleep`` (``clock_nanosleep``, tens of microseconds
late). An asyncio loop cannot hold a delay that closely: its selector's
timeout is whole milliseconds rounded up, which added 1.2-1.7 ms to every
round trip (``benches/netlab/relay_precision.py``).
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from collections.abc import Callable

from ._lab import _enter_netns
from ._trace import LinkPoint

__all__ = ["DelayRelay"]

CHUNK = 64 * 1024
#: Chunks in flight per direction before the relay stops reading (backpressure instead of an unbounded buffer).
QUEUE_CHUNKS = 8
MIN_RTO_S = 0.2
OUTAGE_POLL_S = 0.02
#: The last part of a delay waited out by yielding rather than sleeping (see :func:`_sleep_until`).
SPIN_S = 0.001
#: The longest a connection's thread waits for the server to take it.
CONNECT_TIMEOUT_S = 5.0
#: How often the accepting thread looks whether the relay is stopping.
ACCEPT_POLL_S = 0.2


class DelayRelay:
    """``127.0.0.1:port`` in namespace ``netns`` relayed to ``target``, with the delay of ``link()`` at each chunk."""

    def __init__(self, netns: str, target: tuple[str, int], link: Callable[[], LinkPoint], *, seed: int = 0) -> None:
        self.netns = netns
        self.target = target
        self.link = link
        self.port = 0
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> DelayRelay:
        """Start accepting on a thread inside the namespace; returns once it listens."""
        self._thread = threading.Thread(target=self._accept_loop, name="netlab-relay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection, and end the relay's threads."""
        self._stopping.set()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for sock in conns:
            _shut(sock)
        for t in [self._thread, *threads]:
            if t is not None and t is not threading.current_thread():
                t.join(5)

    def __enter__(self) -> DelayRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The address the client connects to (inside the client namespace)."""
        return f"http://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        try:
            # setns moves this thread only: the listener and every socket it opens to the server are in the namespace
            _enter_netns(self.netns)
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(ACCEPT_POLL_S)
            self.port = listener.getsockname()[1]
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        with listener:
            while not self._stopping.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                client.settimeout(None)
                # connected on a thread of its own: a connect slowed by the shaped link (a SYN dropped behind an
                # aborted upload waits a second for its retry) must not hold up the next client's accept
                connecting = threading.Thread(target=self._connect, args=(client,), name="relay-connect")
                if not self._adopt((client,), [connecting]):  # it inherits this thread's namespace
                    break

    def _connect(self, client: socket.socket) -> None:
        """Open the server side of ``client``'s connection and relay the two; close ``client`` if it cannot."""
        try:
            server = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            server.settimeout(None)
        except OSError:
            with self._lock:
                self._conns.discard(client)
            client.close()
            return
        self._relay(client, server)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Start the four threads of one connection: each direction read and sent; the last one out closes both."""
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the relay's delay is the only one wanted
        left = [2]

        def done() -> None:
            with self._lock:
                left[0] -= 1
                last = left[0] == 0
                if last:
                    self._conns.difference_update((client, server))
            if last:
                client.close()
                server.close()

        threads = []
        for src, dst, name in ((client, server, "up"), (server, client, "down")):
            chunks: queue.Queue[tuple[float, bytes]] = queue.Queue(QUEUE_CHUNKS)
            threads.append(threading.Thread(target=self._read, args=(src, dst, chunks), name=f"relay-{name}-read"))
            threads.append(threading.Thread(target=self._send, args=(dst, src, chunks, done), name=f"relay-{name}"))
        self._adopt((client, server), threads)

    def _adopt(self, socks: tuple[socket.socket, ...], threads: list[threading.Thread]) -> bool:
        """Register ``socks`` and start ``threads`` (as daemons) for :meth:`stop` to end; False, with ``socks``
        closed and nothing started, once the relay is stopping. Started under the lock: stop() never sees a thread
        it cannot join yet."""
        with self._lock:
            if self._stopping.is_set():
                for sock in socks:
                    sock.close()
                return False
            self._conns.update(socks)
            self._threads = [t for t in self._threads if t.is_alive()] + threads
            for t in threads:
                t.daemon = True
                t.start()
        return True

    def _delay_s(self, point: LinkPoint) -> float:
        d = point.rtt_ms / 2e3
        if point.jitter_ms > 0 or point.loss > 0:
            with self._rng_lock:
                if point.jitter_ms > 0:
                    d = max(0.0, d + self._rng.uniform(-point.jitter_ms, point.jitter_ms) / 1e3)
                if point.loss > 0 and self._rng.random() < point.loss:
                    d += max(MIN_RTO_S, point.rtt_ms / 1e3)
        return d

    def _read(self, src: socket.socket, dst: socket.socket, chunks: queue.Queue[tuple[float, bytes]]) -> None:
        """Read ``src`` into ``chunks``, each with the time it is due; however reading ends, an empty chunk last."""
        end = 0.0
        try:
            while True:
                data = src.recv(CHUNK)
                due = time.monotonic() + self._delay_s(self.link())
                if not data:
                    end = due  # EOF travels like data
                    break
                chunks.put((due, data))
        except OSError:
            _shut(dst)  # the connection is broken: end the other direction too
        finally:
            chunks.put((end, b""))  # the sender's end, also after an unexpected error (else it waited forever)

    def _send(
        self, dst: socket.socket, src: socket.socket, chunks: queue.Queue[tuple[float, bytes]], done: Callable[[], None]
    ) -> None:
        """Send each chunk to ``dst`` when due, in order (never before an earlier one); EOF ends ``dst``'s writes."""
        last = 0.0
        try:
            while True:
                due, data = chunks.get()
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                while self.link().outage and not self._stopping.is_set():
                    time.sleep(OUTAGE_POLL_S)
                last = max(due, last)
                _sleep_until(last)
                dst.sendall(data)
        except OSError:
            _shut(src)  # the receiver is gone: stop reading what cannot be delivered,
            while chunks.get()[1]:  # and take what is queued until the reader's end, so it never blocks on a full queue
                pass
        finally:
            done()


def _sleep_until(due: float) -> None:
    """Return at ``time.monotonic()`` ``due``, within tens of microseconds: a sleep to :data:`SPIN_S` before it, then
    yielding the processor until it (a thread that slept longer woke up to 0.4 ms late on this machine's VM)."""
    wait = due - time.monotonic()
    if wait > SPIN_S:
        time.sleep(wait - SPIN_S)
    while time.monotonic() < due:
        time.sleep(0)  # releases the GIL each turn, so other threads of the process run between the checks


def _shut(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways, which wakes a thread blocked reading or writing it (close alone does not)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
