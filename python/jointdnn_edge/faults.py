"""Fault injection on one machine: a cloud server you can kill and restart, and a link that trickles.

The tests and ``benches/faults.py`` use these to reproduce the faults of
``docs/reliability.md``; an app can use them the same way to check its own
handling of a dying or crawling cloud. Everything listens on, and connects
to, 127.0.0.1 only.

* :class:`ServeProcess`: ``jointdnn-edge serve`` in a child process that leads
  its own process group, so :meth:`ServeProcess.kill` (SIGKILL) takes its
  worker processes with it; it can be started again on the same port.
* :class:`TricklingProxy`: a TCP proxy before a server that forwards requests
  untouched and sends the response one byte per ``delay`` seconds (all of it,
  or all but the first response's headers).
* :class:`InferenceFront`: an ASGI app before a real server app that passes
  everything through but inference requests, which a subclass may refuse,
  rewrite, corrupt or drop (a misbehaving proxy or load balancer).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, ClassVar

from .errors import ConfigError, ServerError

__all__ = ["InferenceFront", "ServeProcess", "TricklingProxy", "free_port", "open_sockets", "raw_connection"]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_connection(port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` with Nagle off, so each ``sendall`` leaves at once."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


@contextmanager
def open_sockets() -> Iterator[list[socket.socket]]:
    """A list to put sockets in; every one is closed at the end, on failure too."""
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


class ServeProcess:
    """``jointdnn-edge serve SERVE_ARGS`` in a child process on 127.0.0.1.

    :meth:`start` launches it and returns once ``/v2/health/ready`` answers 200
    (``launched`` and ``ready`` record when, in ``time.monotonic()`` seconds);
    :meth:`kill` SIGKILLs its process group. The same object may be started
    again on the same ``port``. ``env``: extra environment variables (the
    server's ``JOINTDNN_EDGE_TOKEN`` is removed unless given here). The
    server's stderr goes to a file (:meth:`log`), never to a pipe nobody reads;
    :meth:`close` (or garbage collection) removes it; leaving a ``with``
    block only kills the server, so that it can be started again.
    Every process still running is killed by :meth:`kill_all`, which a
    SIGTERM handler or ``atexit`` can call.
    """

    live: ClassVar[set[ServeProcess]] = set()

    def __init__(self, *serve_args: str, port: int | None = None, env: Mapping[str, str] | None = None) -> None:
        self.args = list(serve_args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.launched = self.ready = 0.0
        self._log = self._new_log()

    @staticmethod
    def _new_log() -> IO[bytes]:
        # appending: the child's writes land at the end whatever the offset; read with pread, never seek
        return tempfile.TemporaryFile(mode="a+b")

    def start(self, timeout: float = 90.0) -> ServeProcess:
        """Launch the server and wait until it is ready; ServerError (with its log) if it exits or times out."""
        import httpx

        if self.proc is not None and self.proc.poll() is None:
            raise ConfigError(f"the server on {self.url} is running already")
        if self._log.closed:
            self._log = self._new_log()
        cmd = [sys.executable, "-c", "from jointdnn_edge.cli import main; main()", "serve", *self.args]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        environ = {k: v for k, v in os.environ.items() if k != "JOINTDNN_EDGE_TOKEN"}
        environ.update(self.env)
        self.launched = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=self._log, env=environ, start_new_session=True
        )
        ServeProcess.live.add(self)
        deadline = self.launched + timeout
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    ServeProcess.live.discard(self)
                    raise ServerError(f"the server exited with {self.proc.returncode}: {self.log()[-2000:]}")
                try:
                    if http.get(self.url + "/v2/health/ready").status_code == 200:
                        self.ready = time.monotonic()
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        self.kill()
        raise ServerError(f"the server on {self.url} did not become ready within {timeout:g} s")

    @property
    def pid(self) -> int:
        """The server's process id (the leader of its process group)."""
        if self.proc is None:
            raise ConfigError("the server was never started")
        return self.proc.pid

    def rss(self) -> int:
        """The server's resident memory in bytes (VmRSS from /proc; Linux)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise ServerError(f"no VmRSS for process {self.pid}")

    def log(self) -> str:
        """What the server wrote on stderr so far."""
        if self._log.closed:
            return ""
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server and its workers (the process group it leads) and wait until it is gone."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the whole group is gone already
            pass
        self.proc.wait(timeout=30)
        ServeProcess.live.discard(self)

    @classmethod
    def kill_all(cls) -> None:
        """Kill every server process of this class still running."""
        for p in list(cls.live):
            p.kill()

    def __enter__(self) -> ServeProcess:
        running = self.proc is not None and self.proc.poll() is None
        return self if running else self.start()

    def close(self) -> None:
        """Kill the server and remove its log (a later :meth:`start` begins a new one)."""
        self.kill()
        self._log.close()

    def __exit__(self, *exc: Any) -> None:
        self.kill()


class TricklingProxy:
    """A TCP proxy on 127.0.0.1 before ``upstream`` (host, port) that can slow what the server sends.

    ``mode``: ``"pass"`` forwards as is; ``"all"`` sends the response one byte
    per ``delay`` seconds; ``"body"`` forwards the headers of a connection's
    first response at once and trickles everything after them (the bytes of
    later responses on a kept-alive connection, headers included, trickle
    too). ``mode`` may be changed at any time. The request goes
    through untouched. Runs an asyncio loop on its own thread; :meth:`close`
    stops it and every connection.
    """

    MODES = ("pass", "all", "body")

    def __init__(self, upstream: tuple[str, int], mode: str = "all", delay: float = 0.1) -> None:
        if mode not in self.MODES:
            raise ConfigError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.upstream, self.mode, self.delay = upstream, mode, delay
        self.loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="trickling-proxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:  # the server is down: the client sees the connection close
                return
            forward = asyncio.ensure_future(self._pipe(reader, up_writer, slow=False))
            try:
                await self._pipe(up_reader, writer, slow=True)
            finally:
                forward.cancel()
                up_writer.close()
        finally:  # cancelled (close()) or not, the client's connection is closed and the task forgotten
            writer.close()
            self._tasks.discard(task)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
        """Copy ``src`` to ``dst`` until either end closes (slowly when ``slow``); a cancellation propagates."""
        seen = b""  # response bytes so far, until the end of the first response's headers
        try:
            while data := await src.read(65536):
                if not slow or self.mode == "pass":
                    dst.write(data)
                    await dst.drain()
                    continue
                if self.mode == "body" and b"\r\n\r\n" not in seen:
                    seen += data
                    end = seen.find(b"\r\n\r\n")
                    head = data if end < 0 else data[: len(data) - (len(seen) - end - 4)]
                    dst.write(head)
                    await dst.drain()
                    data = data[len(head) :]
                for i in range(len(data)):
                    dst.write(data[i : i + 1])
                    await dst.drain()
                    await asyncio.sleep(self.delay)
        except ConnectionError:  # either end went away: the connection is over
            pass

    def close(self) -> None:
        """Stop listening, cut every connection and stop the loop's thread."""

        async def stop() -> None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> TricklingProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InferenceFront:
    """An ASGI front before ``app`` (a real server app): inference requests (paths ending in ``/infer``) go to
    :meth:`infer`, everything else straight to ``app``. As such it changes nothing; a subclass overrides
    :meth:`infer` to misbehave the way a proxy or a load balancer can (refuse, rewrite, corrupt, drop)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/infer"):
            await self.infer(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def infer(self, scope: Any, receive: Any, send: Any) -> None:
        """Handle one inference request; by default, pass it to the app untouched."""
        await self.app(scope, receive, send)
