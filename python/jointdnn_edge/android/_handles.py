"""Open sessions and cloud clients behind the integer handles Java holds.

Each handle has its own lock. Calls on a handle run concurrently (as they
would on the object itself), but closing it takes its lock, marks it closed
so no new call starts, waits for the calls already running, and closes the
object under that lock: a close never pulls an object out from under a call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ExecutionError

_KIND_WORDS = {"JointSession": "session", "CloudClient": "cloud client"}


class _Handle:
    """One registered object, the calls using it now, and whether it was closed."""

    __slots__ = ("obj", "lock", "users", "closed")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.lock = threading.Condition()
        self.users = 0
        self.closed = False

    def close(self) -> None:
        """Stop new calls, wait for running ones, then close the object, all under this handle's lock."""
        with self.lock:
            self.closed = True
            self.lock.wait_for(lambda: self.users == 0)
            self.obj.close()


_registry_lock = threading.Lock()
_registry: dict[int, _Handle] = {}  # handle -> a JointSession or CloudClient
_ids = itertools.count(1)


def register(obj: Any) -> int:
    """A new handle for ``obj`` (a JointSession or CloudClient)."""
    with _registry_lock:
        handle = next(_ids)
        _registry[handle] = _Handle(obj)
        return handle


def _missing(handle: Any, kind: str) -> ExecutionError:
    return ExecutionError(f"no open {_KIND_WORDS.get(kind, kind)} with handle {handle!r}")


def _find(handle: Any, kind: str) -> _Handle:
    try:
        key = int(handle)
    except (TypeError, ValueError):
        raise _missing(handle, kind) from None
    with _registry_lock:
        h = _registry.get(key)
    # kinds by class name: checking isinstance would import the session or the client (numpy, httpx)
    if h is None or type(h.obj).__name__ != kind:
        raise _missing(handle, kind)
    return h


@contextmanager
def using(handle: Any, kind: str) -> Iterator[Any]:
    """The open object of class ``kind`` behind ``handle``, kept open while the block runs.

    Raises :class:`ExecutionError` when there is no such open object.
    """
    h = _find(handle, kind)
    with h.lock:
        if h.closed:
            raise _missing(handle, kind)
        h.users += 1
    try:
        yield h.obj
    finally:
        with h.lock:
            h.users -= 1
            h.lock.notify_all()


def close(handle: Any, kind: str) -> None:
    """Close the object of class ``kind`` behind ``handle``; the handle becomes invalid."""
    h = _find(handle, kind)
    with _registry_lock:
        if _registry.get(int(handle)) is not h:  # another thread closed it first
            raise _missing(handle, kind)
        del _registry[int(handle)]
    h.close()


def close_all() -> None:
    """Close every open object (the handles become invalid)."""
    with _registry_lock:
        handles = list(_registry.values())
        _registry.clear()
    for h in handles:
        h.close()
