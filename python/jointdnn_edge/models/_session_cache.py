"""The bounded, thread-safe cache of runtime sessions that every local executor keeps per (graph, range)."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from ..errors import ConfigError, ModelError

if TYPE_CHECKING:
    from .graph import ModelGraph

__all__ = ["CachingExecutor", "SessionCache", "require_format"]

S = TypeVar("S")

_token_counter = itertools.count(1)
_token_lock = threading.Lock()


def _graph_token(graph: ModelGraph) -> int:
    """A key for ``graph`` unique for the process's life (``id()`` is reused once a graph is collected)."""
    with _token_lock:
        token = graph.__dict__.get("_executor_token")
        if token is None:
            token = next(_token_counter)
            graph.__dict__["_executor_token"] = token
    return int(token)


def require_format(graph: ModelGraph, fmt: str, runs: str) -> None:
    """Raise :class:`ModelError` unless ``graph.format`` is ``fmt``; ``runs`` says what the executor runs."""
    if getattr(graph, "format", None) != fmt:
        raise ModelError(f"{runs}, not {getattr(graph, 'format', type(graph).__name__)!r}")


class SessionCache(Generic[S]):
    """At most ``size`` sessions by (graph, key), least recently used evicted first; safe across threads.

    Opening a session runs outside the lock, so two threads may open the same
    one at once; the first stored wins and both get it.
    """

    def __init__(self, size: int) -> None:
        self._sessions: OrderedDict[tuple[int, Any], S] = OrderedDict()
        self._lock = threading.Lock()
        self._size = 1
        self.size = size

    @property
    def size(self) -> int:
        """How many sessions are kept; setting it (ConfigError unless an integer >= 1) evicts any excess at once."""
        return self._size

    @size.setter
    def size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"cache_size must be an integer >= 1, got {size!r}")
        with self._lock:
            self._size = size
            while len(self._sessions) > size:
                self._sessions.popitem(last=False)

    def get_or_open(self, graph: ModelGraph, key: Any, open_session: Callable[[], S]) -> S:
        """The cached session of ``graph`` under ``key``, opened with ``open_session()`` on a miss."""
        full_key = (_graph_token(graph), key)
        with self._lock:
            session = self._sessions.get(full_key)
            if session is not None:
                self._sessions.move_to_end(full_key)
                return session
        session = open_session()
        with self._lock:
            existing = self._sessions.get(full_key)
            if existing is not None:
                return existing
            self._sessions[full_key] = session
            while len(self._sessions) > self._size:
                self._sessions.popitem(last=False)
        return session

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def clear(self) -> None:
        """Drop every session."""
        with self._lock:
            self._sessions.clear()


class CachingExecutor:
    """What every local executor shares: its :class:`SessionCache` and the ``cache_size`` that bounds it."""

    _cache: SessionCache[Any]

    @property
    def cache_size(self) -> int:
        """Sessions kept, least recently used evicted first (the server grows it to hold what it preloads)."""
        return self._cache.size

    @cache_size.setter
    def cache_size(self, size: int) -> None:
        self._cache.size = size

    def cached(self) -> int:
        """Number of sessions currently cached."""
        return len(self._cache)

    def clear(self) -> None:
        """Drop every cached session."""
        self._cache.clear()
