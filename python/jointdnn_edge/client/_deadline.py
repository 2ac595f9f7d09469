"""A total wall-clock budget for a request, however its bytes trickle.

httpx bounds each socket operation (connect, one write, one read), not a
request: a response trickling one byte at a time never trips a read timeout.
:class:`DeadlineBackend` wraps httpcore's network backend so that every
connect, write and read of a request made inside :func:`budget` waits at most
until that request's deadline, recomputed for each operation from what is
left of the budget. An operation that would start past the deadline fails at
once with httpcore's timeout for its phase; httpcore then closes the
connection (a half-read response is never handed back to the pool).

The deadline is per thread: a sync httpx request does all its I/O in the
thread that sends it (and reads its body).
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from ..errors import ConfigError

__all__ = ["DeadlineBackend", "bound_by_deadlines", "budget", "sleep_within_budget"]

_local = threading.local()

#: The most bytes handed to the socket under one timeout: a write overruns the deadline by at most the time a
#: slice this small takes to drain, not the time of the whole body.
_WRITE_SLICE = 16 * 1024


@contextmanager
def budget(deadline: float) -> Iterator[None]:
    """Inside this block, network I/O of this thread ends by ``deadline`` (``time.monotonic()`` seconds)."""
    outer = getattr(_local, "deadline", None)
    _local.deadline = deadline if outer is None else min(outer, deadline)
    try:
        yield
    finally:
        _local.deadline = outer


def _clip(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's budget; ``error`` when nothing is left."""
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the deadline of the thread using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clip(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # httpcore's sync stream re-arms the socket timeout after every partial send, so one write of a large
        # body to a slow reader could run many times past the deadline: write it in slices, each clipped anew
        view = memoryview(buffer)
        for offset in range(0, len(view), _WRITE_SLICE):
            self._inner.write(bytes(view[offset : offset + _WRITE_SLICE]), _clip(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> _Stream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _clip(timeout, httpcore.ConnectTimeout))
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend (``inner``), with the thread's request deadline applied to every operation, and
    :meth:`abort` to end every open connection's I/O at once."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner
        self._open: weakref.WeakSet[_Stream] = weakref.WeakSet()  # every stream made, until it is collected
        self._lock = threading.Lock()

    def _track(self, stream: _Stream) -> _Stream:
        with self._lock:
            self._open.add(stream)
        return stream

    def abort(self) -> None:
        """Shut down every open connection's socket, so that a request blocked on one (a cloud that accepted and
        never answers) ends now with a network error instead of at its deadline. For a client being closed."""
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed already, or never connected

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return self._track(_Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options)))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return self._track(_Stream(self._inner.connect_unix_socket(path, timeout, socket_options)))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bound_by_deadlines(transport: httpx.HTTPTransport) -> DeadlineBackend:
    """Make ``transport``'s connections honour the deadline of :func:`budget` (wraps its network backend, and
    returns the wrapper).

    httpx has no public hook for the backend of the connection pool it
    builds; the wrapper goes where httpcore keeps it, before any connection
    is made. Raises :class:`~jointdnn_edge.ConfigError` if this httpx/httpcore keeps it elsewhere (an httpx
    version the client does not support: a client without deadlines would be worse than none).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        raise ConfigError(
            f"httpx {httpx.__version__} / httpcore {httpcore.__version__}: cannot bound the transport by deadlines "
            "(its connection pool has no network backend where jointdnn-edge looks for it)"
        )
    bounded = DeadlineBackend(backend)
    pool._network_backend = bounded  # type: ignore[union-attr]
    return bounded


def sleep_within_budget(seconds: float) -> None:
    """Sleep ``seconds``, or until this thread's deadline and then raise ``httpx.ConnectTimeout``."""
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() + seconds > deadline:
        time.sleep(max(0.0, deadline - time.monotonic()))
        raise httpx.ConnectTimeout("the request's deadline passed during the emulated round trip")
    time.sleep(seconds)
