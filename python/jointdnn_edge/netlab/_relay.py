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
"""

from __future__ import annotations

import asyncio
import contextlib
import random
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


class DelayRelay:
    """``127.0.0.1:port`` in namespace ``netns`` relayed to ``target``, with the delay of ``link()`` at each chunk."""

    def __init__(self, netns: str, target: tuple[str, int], link: Callable[[], LinkPoint], *, seed: int = 0) -> None:
        self.netns = netns
        self.target = target
        self.link = link
        self.port = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> DelayRelay:
        """Start the relay's loop on a thread inside the namespace; returns once it listens."""
        self._thread = threading.Thread(target=self._main, name="netlab-relay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection, and end the loop's thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> DelayRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The address the client connects to (inside the client namespace)."""
        return f"http://127.0.0.1:{self.port}"

    def _main(self) -> None:
        try:
            _enter_netns(self.netns)
            self._loop = loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):  # let every cancelled pipe finish, so none is destroyed pending
                loop.run_until_complete(asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5))
            loop.close()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(self._pipe(c_reader, s_writer), self._pipe(s_reader, c_writer), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the relay is stopping: end quietly (asyncio logs a connection task that ends cancelled)
        finally:
            for w in (c_writer, s_writer):
                w.close()

    def _delay_s(self, point: LinkPoint) -> float:
        d = point.rtt_ms / 2e3
        if point.jitter_ms > 0:
            d = max(0.0, d + self._rng.uniform(-point.jitter_ms, point.jitter_ms) / 1e3)
        if point.loss > 0 and self._rng.random() < point.loss:
            d += max(MIN_RTO_S, point.rtt_ms / 1e3)
        return d

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward ``reader`` to ``writer``, each chunk delayed, in order; EOF closes the write side."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def send() -> None:
            last = 0.0
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                while self.link().outage:
                    await asyncio.sleep(OUTAGE_POLL_S)
                last = max(due, last)
                wait = last - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((time.monotonic() + self._delay_s(self.link()), data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
